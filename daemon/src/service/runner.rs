//! One attempt of a check: resolve its secrets (and check them against the
//! plugin's schema), call the plugin's `collect` in the sandbox, normalise
//! and mask what came back ([`super::report`]), and hand the result to the
//! writer.
//!
//! No text a plugin returns leaves here unmasked: error messages, report
//! strings, streamed ids and their asset keys all pass the check's
//! [`Redactor`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::report::{brief, failure_class, normalise, short_text, stored_message};
use super::writer::{Completed, Judge, Message};
use crate::clock::SharedClock;
use crate::config::{Check, Config, ResolvedConfig, SecretRef, resolve_secrets};
use crate::health::FailureClass;
use crate::metrics::Metrics;
use crate::plugin::{
    CollectRequest, FailedPlugin, Invocation, Plugin, PluginSet, Redactor, RunError, RunLabels,
    missing_because,
};
use crate::reconcile::{IdCollector, IdSet, IdSetBuilder};
use crate::scheduler::{Executor, RetryPolicy, Trigger, Verdict};
use crate::store::{ObservationRow, RunFailure, RunRow, Trigger as StoredTrigger, to_ms};

/// What the runner reads on every attempt; swapped whole on a config reload,
/// so an attempt runs start to end on the version it began with.
pub struct Loaded {
    pub config: Arc<Config>,
    /// By name: the folder loader refuses two files of one name.
    pub plugins: Arc<HashMap<String, Plugin>>,
    /// Plugin files that did not load: the runs of checks that need them
    /// fail saying why.
    pub failed: Arc<Vec<FailedPlugin>>,
    /// Each plugin's config schema, compiled on first use, to check the
    /// values of secrets (which the config file does not show) at run time.
    schemas: Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>,
}

impl Loaded {
    pub fn new(config: Arc<Config>, plugins: PluginSet) -> Self {
        Self {
            config,
            plugins: Arc::new(
                plugins
                    .loaded
                    .into_iter()
                    .map(|p| (p.name().to_owned(), p))
                    .collect(),
            ),
            failed: Arc::new(plugins.failed),
            schemas: Mutex::new(HashMap::new()),
        }
    }

    /// `plugin`'s config schema as a validator (`None` when it has none
    /// that compiles: the config check at load has said so already).
    fn schema(&self, plugin: &Plugin) -> Option<Arc<jsonschema::Validator>> {
        let mut schemas = self
            .schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        schemas
            .entry(plugin.name().to_owned())
            .or_insert_with(|| {
                let schema = serde_json::from_str(&plugin.descriptor().config_schema).ok()?;
                jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    }
}

pub struct Runner {
    loaded: RwLock<Arc<Loaded>>,
    writer: mpsc::Sender<Message>,
    clock: SharedClock,
    retry: RetryPolicy,
    last_success: Mutex<HashMap<String, SystemTime>>,
    runs: AtomicU64,
    metrics: Arc<Metrics>,
}

/// What a successful `collect` gave.
#[derive(Default)]
struct Collected {
    observations: Vec<ObservationRow>,
    ids: BTreeMap<String, Arc<IdSet>>,
}

/// How an attempt failed before or inside the plugin.
pub struct Failed {
    pub class: FailureClass,
    pub message: String,
    retry_after: Option<Duration>,
}

impl Failed {
    /// `err` with its message masked and bounded as it is stored.
    fn from_run(err: RunError, redactor: &Redactor) -> Self {
        let retry_after = match &err {
            RunError::Connector { retry_after, .. } => *retry_after,
            _ => None,
        };
        Failed {
            class: failure_class(err.class()),
            // The class is kept beside the message: a plugin's own error is
            // its message alone, not "system error: ...".
            message: stored_message(
                &match err {
                    RunError::Connector { message, .. } => message,
                    other => other.to_string(),
                },
                redactor,
            ),
            retry_after,
        }
    }

    fn config(message: String) -> Self {
        Failed {
            class: FailureClass::Config,
            message,
            retry_after: None,
        }
    }
}

impl Runner {
    pub fn new(
        loaded: Loaded,
        writer: mpsc::Sender<Message>,
        clock: SharedClock,
        retry: RetryPolicy,
        last_success: HashMap<String, SystemTime>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            loaded: RwLock::new(Arc::new(loaded)),
            writer,
            clock,
            retry,
            last_success: Mutex::new(last_success),
            runs: AtomicU64::new(0),
            metrics,
        }
    }

    /// Later attempts use `loaded`; attempts in flight keep theirs.
    pub fn swap(&self, loaded: Loaded) {
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(loaded);
    }

    pub fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A run id unique within this process and sortable by start time.
    fn run_id(&self, started: SystemTime) -> String {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        format!("{:013x}-{:08x}-{n:x}", to_ms(started), std::process::id())
    }

    /// Calls the plugin.
    async fn collect(
        &self,
        loaded: &Loaded,
        check: &Check,
        run_id: &str,
        attempt: u32,
    ) -> Result<Collected, Failed> {
        let (plugin, mut invocation) = prepare(loaded, check)?;
        let redactor = Redactor::new(&invocation.secrets);
        // The host enforces the check's id limit as ids arrive.
        let ids = Arc::new(IdCollector::new());
        invocation.ids = Some(ids.clone());
        let request = CollectRequest {
            run_id: run_id.to_owned(),
            last_success: self
                .last_success
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&check.id)
                .copied(),
            attempt,
        };
        let report = plugin
            .collect(&invocation, &request)
            .await
            .map_err(|err| Failed::from_run(err, &redactor))?;
        let normalised = normalise(report, &redactor).map_err(|err| Failed {
            class: FailureClass::System,
            message: stored_message(&err.to_string(), &redactor),
            retry_after: None,
        })?;
        if !normalised.changes.is_empty() {
            tracing::warn!(check = %check.id, run = run_id, changes = %normalised.changes, "the report was normalised before it was stored");
        }
        let ids = masked_ids(ids.take(), redactor).await;
        Ok(Collected {
            observations: normalised.observations,
            ids,
        })
    }
}

/// The streamed id sets with their asset keys and ids masked. A set is
/// rebuilt only when one of its ids holds a secret (on the blocking pool:
/// sets can hold millions); one that no longer fits the set's limits once
/// masked is dropped, so this run reconciles nothing for that asset.
async fn masked_ids(
    ids: BTreeMap<String, IdSet>,
    redactor: Redactor,
) -> BTreeMap<String, Arc<IdSet>> {
    if redactor.is_empty() {
        return ids.into_iter().map(|(a, set)| (a, Arc::new(set))).collect();
    }
    let masked = tokio::task::spawn_blocking(move || {
        let mut out = BTreeMap::new();
        for (asset, set) in ids {
            let asset = stored_message(&asset, &redactor);
            if !set.iter().any(|id| redactor.finds(id)) {
                out.insert(asset, Arc::new(set));
                continue;
            }
            let mut builder = IdSetBuilder::new();
            match builder.extend(set.iter().map(|id| redactor.redact(id))) {
                Ok(()) => {
                    out.insert(asset, Arc::new(builder.finish()));
                }
                Err(err) => {
                    tracing::warn!(asset, error = %err, "ids holding a secret no longer fit once masked; not reconciled this run");
                }
            }
        }
        out
    })
    .await;
    match masked {
        Ok(ids) => ids,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// The plugin of `check` and the invocation of any of its calls: the plugin
/// config with secrets resolved, the check's limits and grants. The secrets
/// are resolved only for the plugin the check names, from the file it pins.
pub fn prepare<'a>(loaded: &'a Loaded, check: &Check) -> Result<(&'a Plugin, Invocation), Failed> {
    let plugin = loaded.plugins.get(&check.connector).ok_or_else(|| {
        Failed::config(match missing_because(&loaded.failed, &check.connector) {
            Some(why) => format!("connector {:?} is not loaded: {why}", check.connector),
            None => format!(
                "connector {:?} is not loaded (is its .wasm in {}?)",
                check.connector,
                loaded.config.plugins_dir.display()
            ),
        })
    })?;
    // Validation refuses a config whose pin does not match; this holds the
    // line should a plugin and a config ever be paired otherwise.
    if let Some(pin) = &check.plugin_sha256
        && pin != plugin.sha256()
    {
        return Err(Failed::config(format!(
            "connector {:?} is loaded from {} whose sha256 is {}, not the pinned {pin}; the check's secrets were not sent to it",
            check.connector,
            plugin.path().display(),
            plugin.sha256()
        )));
    }
    let resolved = resolve_secrets(&check.config).map_err(|e| Failed::config(e.to_string()))?;
    if let Some(schema) = loaded.schema(plugin) {
        check_secret_values(&schema, check, &resolved).map_err(Failed::config)?;
    }
    let invocation = Invocation {
        labels: RunLabels {
            plugin: check.connector.clone(),
            check: check.id.clone(),
            tenant: tenant_of(&loaded.config, &check.system),
        },
        config: resolved.json,
        secrets: resolved.secrets,
        limits: check.limits.clone(),
        grants: check.grants.clone(),
        ids: None,
    };
    Ok((plugin, invocation))
}

/// Checks the resolved secrets of `check` against the plugin's schema: the
/// config file holds only references, so a `pattern` or `format` on a secret
/// field can only be checked once the value is read. The error names the
/// field, where the secret came from and the rule, never the value.
fn check_secret_values(
    schema: &jsonschema::Validator,
    check: &Check,
    resolved: &ResolvedConfig,
) -> Result<(), String> {
    if check.config.secrets.is_empty() {
        return Ok(());
    }
    let Ok(instance) = serde_json::from_str::<serde_json::Value>(&resolved.json) else {
        return Ok(());
    };
    let at: HashMap<&str, &SecretRef> = check
        .config
        .secrets
        .iter()
        .map(|s| (s.at.as_str(), s))
        .collect();
    let broken: Vec<String> = schema
        .iter_errors(&instance)
        .filter_map(|err| {
            let secret = at.get(err.instance_path().as_str())?;
            use jsonschema::error::ValidationErrorKind as Kind;
            let rule = match err.kind() {
                Kind::Pattern { pattern } => format!("does not match the pattern {pattern:?}"),
                Kind::Format { format } => format!("is not a valid {format:?}"),
                Kind::MinLength { limit } => format!("is shorter than {limit} characters"),
                Kind::MaxLength { limit } => format!("is longer than {limit} characters"),
                other => format!("breaks the schema's {:?} rule", other.keyword()),
            };
            Some(format!(
                "{} (line {}): the secret from {} {rule}",
                secret.pointer, secret.line, secret.source
            ))
        })
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "connector {:?} refuses the check's secrets: {}",
            check.connector,
            broken.join("; ")
        ))
    }
}

/// The tenant of the first flow `system` is part of, for log fields.
fn tenant_of(config: &Config, system: &str) -> Option<String> {
    config
        .flows
        .iter()
        .find(|f| f.upstream == system || f.downstream.iter().any(|d| d == system))
        .map(|f| f.tenant.clone())
}

#[async_trait::async_trait]
impl Executor for Runner {
    async fn execute(&self, check_id: &str, attempt: u32, trigger: Trigger) -> Verdict {
        let loaded = self.loaded();
        let Some(check) = loaded.config.check(check_id) else {
            return Verdict::Done;
        };
        let started = self.clock.now();
        let clock_start = Instant::now();
        let run_id = self.run_id(started);
        let result = self.collect(&loaded, check, &run_id, attempt).await;
        let took = clock_start.elapsed();
        let finished = started + took;

        let (collected, failed) = match result {
            Ok(collected) => (collected, None),
            Err(failed) => (Collected::default(), Some(failed)),
        };
        let verdict = match &failed {
            Some(f) if f.class == FailureClass::Transient => Verdict::Transient {
                retry_after: f.retry_after,
            },
            _ => Verdict::Done,
        };
        let will_retry =
            matches!(verdict, Verdict::Transient { .. }) && attempt < self.retry.max_attempts;
        let completed = Completed {
            run: RunRow {
                id: run_id,
                check_id: check.id.clone(),
                connector: check.connector.clone(),
                plugin_version: loaded
                    .plugins
                    .get(&check.connector)
                    .map(|p| short_text(&p.descriptor().version))
                    .unwrap_or_default(),
                trigger: match trigger {
                    Trigger::Schedule => StoredTrigger::Schedule,
                    Trigger::Manual => StoredTrigger::Manual,
                    Trigger::Retry => StoredTrigger::Retry,
                },
                attempt,
                started_at: started,
                finished_at: finished,
                failure: failed.as_ref().map(|f| RunFailure {
                    class: f.class,
                    message: f.message.clone(),
                }),
                assets: u32::try_from(collected.observations.len()).unwrap_or(u32::MAX),
            },
            system: check.system.clone(),
            observations: collected.observations,
            ids: collected.ids,
            judge: if will_retry { Judge::No } else { Judge::Yes },
            stored: None,
        };
        self.metrics.run(
            &check.connector,
            failed.as_ref().map(|f| f.class),
            took.as_secs_f64(),
        );
        if completed.run.succeeded() {
            self.last_success
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(check.id.clone(), finished);
        } else if let Some(f) = &completed.run.failure {
            tracing::warn!(check = %check.id, attempt, class = f.class.as_str(), error = %brief(&f.message), "run failed");
        }

        // Not waiting for the commit keeps a run's permit free of the
        // database's latency; the bounded queue still holds runners back when
        // the writer falls behind, and the writer keeps queue order.
        if self
            .writer
            .send(Message::Run(Box::new(completed)))
            .await
            .is_err()
        {
            tracing::error!(check = %check.id, "the writer has stopped; run not stored");
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streamed_ids_and_their_assets_are_masked() {
        let secret = "tok-9d8e7f6a";
        let mut with_secret = IdSetBuilder::new();
        with_secret
            .extend(["a".to_owned(), format!("user-{secret}")])
            .unwrap();
        let mut plain = IdSetBuilder::new();
        plain.extend(["b", "c"]).unwrap();
        let ids = BTreeMap::from([
            (format!("asset-{secret}"), with_secret.finish()),
            ("plain".to_owned(), plain.finish()),
        ]);
        let masked = masked_ids(ids, Redactor::new(&[secret.to_owned()])).await;
        let keys: Vec<&str> = masked.keys().map(String::as_str).collect();
        assert_eq!(keys, ["asset-[REDACTED]", "plain"]);
        let ids: Vec<&str> = masked["asset-[REDACTED]"].iter().collect();
        assert!(
            ids.contains(&"user-[REDACTED]") && ids.contains(&"a"),
            "{ids:?}"
        );
        assert_eq!(masked["plain"].len(), 2);
    }
}

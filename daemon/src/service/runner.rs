//! One attempt of a check: resolve its secrets, call the plugin's `collect` in
//! the sandbox, hand the result to the writer and wait for it to commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use super::report::{failure_class, observation_row};
use super::writer::{Completed, Message};
use crate::clock::SharedClock;
use crate::config::{Check, Config, resolve_secrets};
use crate::health::FailureClass;
use crate::metrics::Metrics;
use crate::plugin::{
    CollectRequest, FailedPlugin, Invocation, Plugin, PluginSet, RunError, RunLabels,
    missing_because,
};
use crate::reconcile::{IdCollector, IdSet};
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
        }
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
    ids: BTreeMap<String, IdSet>,
}

/// How an attempt failed before or inside the plugin.
pub struct Failed {
    pub class: FailureClass,
    pub message: String,
    retry_after: Option<Duration>,
}

impl From<RunError> for Failed {
    fn from(err: RunError) -> Self {
        let retry_after = match &err {
            RunError::Connector { retry_after, .. } => *retry_after,
            _ => None,
        };
        Failed {
            class: failure_class(err.class()),
            // The class is kept beside the message: a plugin's own error is
            // its message alone, not "system error: ...".
            message: match err {
                RunError::Connector { message, .. } => message,
                other => other.to_string(),
            },
            retry_after,
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
        let report = plugin.collect(&invocation, &request).await?;
        let observations = report.observations.iter().map(observation_row).collect();
        Ok(Collected {
            observations,
            ids: ids.take(),
        })
    }
}

/// The plugin of `check` and the invocation of any of its calls: the plugin
/// config with secrets resolved, the check's limits and grants. The secrets
/// are resolved only for the plugin the check names, from the file it pins.
pub fn prepare<'a>(loaded: &'a Loaded, check: &Check) -> Result<(&'a Plugin, Invocation), Failed> {
    let config_failure = |message: String| Failed {
        class: FailureClass::Config,
        message,
        retry_after: None,
    };
    let plugin = loaded.plugins.get(&check.connector).ok_or_else(|| {
        config_failure(match missing_because(&loaded.failed, &check.connector) {
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
        return Err(config_failure(format!(
            "connector {:?} is loaded from {} whose sha256 is {}, not the pinned {pin}; the check's secrets were not sent to it",
            check.connector,
            plugin.path().display(),
            plugin.sha256()
        )));
    }
    let resolved = resolve_secrets(&check.config).map_err(|e| Failed {
        class: FailureClass::Config,
        message: e.to_string(),
        retry_after: None,
    })?;
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
                    .map(|p| p.descriptor().version.clone())
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
            judge: !will_retry,
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
            tracing::warn!(check = %check.id, attempt, class = f.class.as_str(), error = %f.message, "run failed");
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

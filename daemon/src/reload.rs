//! Building a config and its plugins from disk, and swapping them into a
//! running daemon.
//!
//! It owns the sequence "read the file, load the plugins it names, validate
//! everything, refuse what needs a restart, then swap", the status of the
//! latest attempt (shown by the API), and watching the config and plugin
//! folders so a change on disk does the same. It must not decide what a change means
//! for health or schedules: [`Service::reconfigure`] does that.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::clock::SharedClock;
use crate::config::{Config, Options};
use crate::plugin::{Plugin, PluginHost};
use crate::service::{Service, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every config error, one per line with its place.
    #[error("invalid config:\n{0}")]
    Invalid(String),
    #[error("{0}; the running plugins are kept")]
    Plugin(String),
    #[error("plugin {plugin} describes an invalid config schema: {message}")]
    PluginSchema { plugin: String, message: String },
    #[error(
        "changing {} needs a restart; the running config is unchanged",
        .0.join(" and ")
    )]
    RestartNeeded(Vec<&'static str>),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// A config file with the plugins its folder holds, validated against them.
pub struct Prepared {
    pub config: Config,
    pub plugins: Vec<Plugin>,
}

/// How a plugin file that does not load is taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Logged and skipped: a broken file no check uses must not keep the
    /// daemon down (a check that names it fails validation).
    Skip,
    /// As `Skip`, except that a file among these (the plugins running now)
    /// refuses the whole change: a plugin replaced by a broken file keeps
    /// its running version, and the operator is told which file it is.
    RefuseReplaced(Vec<PathBuf>),
}

/// Reads `file`, loads the plugins in the folder it names and validates the
/// config against their schemas.
pub async fn prepare(
    host: &PluginHost,
    file: &Path,
    broken: &Broken,
) -> Result<Prepared, ReloadError> {
    let text = std::fs::read_to_string(file).map_err(|source| ReloadError::Read {
        path: file.to_owned(),
        source,
    })?;
    // The plugin folder comes from the config itself: read it without plugin
    // schemas first, then validate fully with them.
    let draft = crate::config::parse_with(
        &text,
        file,
        &BTreeMap::new(),
        Options {
            require_known_connectors: false,
        },
    )
    .map_err(|errors| ReloadError::Invalid(errors.to_string()))?;
    let plugins = load_plugins(host, &draft.plugins_dir, broken).await?;
    let schemas = plugin_schemas(&plugins)?;
    let config = crate::config::parse_with(&text, file, &schemas, Options::default())
        .map_err(|errors| ReloadError::Invalid(errors.to_string()))?;
    Ok(Prepared { config, plugins })
}

/// Loads every `*.wasm` in `dir`. A file that does not load is logged and
/// skipped (a check that names it then fails validation as an unknown
/// connector), or as `broken` says.
pub async fn load_plugins(
    host: &PluginHost,
    dir: &Path,
    broken: &Broken,
) -> Result<Vec<Plugin>, ReloadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ReloadError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    tracing::info!(folder = %dir.display(), files = files.len(), "loading plugins");
    let mut plugins = Vec::new();
    for file in files {
        match host.load(&file).await {
            Ok(plugin) => plugins.push(plugin),
            Err(err) if matches!(broken, Broken::RefuseReplaced(running) if running.contains(&file)) =>
            {
                return Err(ReloadError::Plugin(err.to_string()));
            }
            Err(err) => tracing::error!(error = %err, "plugin not loaded"),
        }
    }
    Ok(plugins)
}

/// Each plugin's config schema, by plugin name.
pub fn plugin_schemas(
    plugins: &[Plugin],
) -> Result<BTreeMap<String, serde_json::Value>, ReloadError> {
    plugins
        .iter()
        .map(|plugin| {
            serde_json::from_str(&plugin.descriptor().config_schema)
                .map(|schema| (plugin.name().to_owned(), schema))
                .map_err(|e| ReloadError::PluginSchema {
                    plugin: plugin.name().to_owned(),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The latest reload attempt, for the API and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadStatus {
    pub file: PathBuf,
    /// When the config in force was loaded.
    pub loaded_at: SystemTime,
    pub attempted_at: Option<SystemTime>,
    /// Why the latest attempt failed; `None` once one succeeds.
    pub last_error: Option<String>,
    pub succeeded: u64,
    pub failed: u64,
}

/// What a reload changed, by check id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

/// Reloads the daemon's config file on demand (the `reloadConfig` mutation;
/// file watching and SIGHUP call the same).
pub struct Reloader {
    host: PluginHost,
    clock: SharedClock,
    status: Mutex<ReloadStatus>,
    /// One reload at a time: two racing would swap in whichever ends last.
    busy: tokio::sync::Mutex<()>,
}

impl Reloader {
    pub fn new(host: PluginHost, file: PathBuf, clock: SharedClock) -> Self {
        let now = clock.now();
        Self {
            host,
            clock,
            status: Mutex::new(ReloadStatus {
                file,
                loaded_at: now,
                attempted_at: None,
                last_error: None,
                succeeded: 0,
                failed: 0,
            }),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub fn status(&self) -> ReloadStatus {
        self.lock_status().clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Builds the config on disk and swaps it into `service`; on any error the
    /// running config stays as it is and the error is kept in the status.
    pub async fn reload(&self, service: &Service) -> Result<ReloadSummary, ReloadError> {
        let _one = self.busy.lock().await;
        let file = self.lock_status().file.clone();
        let result = self.swap(service, &file).await;
        let now = self.clock.now();
        let mut status = self.lock_status();
        status.attempted_at = Some(now);
        service.metrics().reload(result.is_ok());
        match &result {
            Ok(summary) => {
                status.loaded_at = now;
                status.last_error = None;
                status.succeeded += 1;
                tracing::info!(
                    added = summary.added.len(),
                    removed = summary.removed.len(),
                    changed = summary.changed.len(),
                    "config reloaded"
                );
            }
            Err(err) => {
                status.last_error = Some(err.to_string());
                status.failed += 1;
                tracing::error!(error = %err, "config not reloaded; the running config is unchanged");
            }
        }
        result
    }

    async fn swap(&self, service: &Service, file: &Path) -> Result<ReloadSummary, ReloadError> {
        let old = service.loaded();
        let running = old.plugins.values().map(|p| p.path().to_owned()).collect();
        let prepared = prepare(&self.host, file, &Broken::RefuseReplaced(running)).await?;
        let restart = old.config.restart_needed(&prepared.config);
        if !restart.is_empty() {
            return Err(ReloadError::RestartNeeded(restart));
        }
        let summary = summarize(&old.config, &prepared.config);
        service
            .reconfigure(prepared.config, prepared.plugins)
            .await?;
        Ok(summary)
    }
}

fn summarize(old: &Config, new: &Config) -> ReloadSummary {
    let old_ids: BTreeSet<&str> = old.checks.iter().map(|c| c.id.as_str()).collect();
    let new_ids: BTreeSet<&str> = new.checks.iter().map(|c| c.id.as_str()).collect();
    ReloadSummary {
        added: new_ids
            .difference(&old_ids)
            .map(|s| s.to_string())
            .collect(),
        removed: old_ids
            .difference(&new_ids)
            .map(|s| s.to_string())
            .collect(),
        changed: new
            .checks
            .iter()
            .filter(|c| old.check(&c.id).is_some_and(|o| o != *c))
            .map(|c| c.id.clone())
            .collect(),
    }
}

/// How long the files must be quiet before a change is read: editors write
/// in several steps, and copying a plugin takes a moment.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// Keeps the watch alive; dropping it stops watching.
pub struct Watch {
    _debouncer: notify_debouncer_full::Debouncer<
        notify::RecommendedWatcher,
        notify_debouncer_full::RecommendedCache,
    >,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reloads `service` whenever the config file or a `*.wasm` in `plugins_dir`
/// changes. It watches the folders, not the file: an editor's atomic save
/// replaces the file, which would end a watch on the file itself.
pub fn watch(
    reloader: Arc<Reloader>,
    service: Arc<Service>,
    plugins_dir: &Path,
) -> Result<Watch, notify::Error> {
    use notify::{EventKind, RecursiveMode};

    let file = reloader.lock_status().file.clone();
    let file = std::fs::canonicalize(&file).unwrap_or(file);
    let config_dir = file.parent().map(Path::to_owned).unwrap_or_default();
    let plugins_dir = std::fs::canonicalize(plugins_dir).unwrap_or_else(|_| plugins_dir.to_owned());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let relevant = {
        let (file, plugins_dir) = (file.clone(), plugins_dir.clone());
        move |path: &Path| {
            path == file
                || (path.starts_with(&plugins_dir) && path.extension().is_some_and(|e| e == "wasm"))
        }
    };
    let mut debouncer = notify_debouncer_full::new_debouncer(
        DEBOUNCE,
        None,
        move |result: notify_debouncer_full::DebounceEventResult| match result {
            Ok(events) => {
                let changed = events.iter().any(|e| {
                    !matches!(e.kind, EventKind::Access(_)) && e.paths.iter().any(|p| relevant(p))
                });
                if changed {
                    let _ = tx.send(());
                }
            }
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "watching the config and plugin folders");
                }
            }
        },
    )?;
    debouncer.watch(&config_dir, RecursiveMode::NonRecursive)?;
    if plugins_dir != config_dir {
        debouncer.watch(&plugins_dir, RecursiveMode::NonRecursive)?;
    }
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Changes that came in while reloading are read by this one.
            while rx.try_recv().is_ok() {}
            tracing::info!("the config or a plugin changed: reloading");
            let _ = reloader.reload(&service).await;
        }
    });
    tracing::info!(config = %config_dir.display(), plugins = %plugins_dir.display(), "watching for changes");
    Ok(Watch {
        _debouncer: debouncer,
        task,
    })
}

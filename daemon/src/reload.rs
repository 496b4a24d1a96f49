//! Building a config and its plugins from disk, and swapping them into a
//! running daemon.
//!
//! It owns the sequence "read the file, load the plugins it names, validate
//! everything, refuse what needs a restart, then swap" and the status of the
//! latest attempt (shown by the API). It must not decide what a change means
//! for health or schedules: [`Service::reconfigure`] does that.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

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

/// Reads `file`, loads the plugins in the folder it names and validates the
/// config against their schemas.
pub async fn prepare(host: &PluginHost, file: &Path) -> Result<Prepared, ReloadError> {
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
    let plugins = load_plugins(host, &draft.plugins_dir).await?;
    let schemas = plugin_schemas(&plugins)?;
    let config = crate::config::parse_with(&text, file, &schemas, Options::default())
        .map_err(|errors| ReloadError::Invalid(errors.to_string()))?;
    Ok(Prepared { config, plugins })
}

/// Loads every `*.wasm` in `dir`; a broken plugin is reported and skipped (a
/// check that names it then fails validation as an unknown connector).
pub async fn load_plugins(host: &PluginHost, dir: &Path) -> Result<Vec<Plugin>, ReloadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ReloadError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    let mut plugins = Vec::new();
    for file in files {
        match host.load(&file).await {
            Ok(plugin) => plugins.push(plugin),
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
        let prepared = prepare(&self.host, file).await?;
        let old = service.loaded();
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

//! The daemon's one TOML config file: reading it, validating it and typing it.
//!
//! This module must not start anything, touch the database or load plugins: it
//! is handed the plugins' config schemas as data. [`load`] and [`parse`] run
//! every layer and report every problem at once, each with its place (file,
//! line, column, JSON pointer):
//!
//! 1. TOML syntax;
//! 2. the JSON Schema of the file (`config/tributary.schema.json`, embedded as
//!    [`SCHEMA`]);
//! 3. each check's `config` against its connector's own JSON Schema, secret
//!    references (`{ env = "NAME" }`, `{ file = "path" }`) standing for strings;
//! 4. meaning: unique ids, references that resolve, durations, sizes, hosts and
//!    cron expressions that parse, thresholds that make sense.
//!
//! A check may pin its plugin file's sha256 (`plugin_sha256`); a check whose
//! connector's plugin file failed to load can be kept (the daemon) or refused
//! (`tributary validate`), as [`Options`] say.
//!
//! Secrets stay unresolved in [`Config`]; [`resolve_secrets`] reads them for a
//! run.

mod error;
mod model;
mod secrets;
mod source;
mod units;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

pub use error::{ConfigError, ConfigErrors, SHOWN_ERRORS};
pub use model::{
    AlertChannel, AlertDelivery, AlertRoute, Alerts, Api, ApiLimits, ApiToken, ApiWebSocket,
    ChannelKind, Check, Config, CronSchedule, EmailChannel, Flow, Introspection, Links,
    OPENLINEAGE_CONNECTOR, OpenLineageJobs, PUSH_CONNECTOR, PersistedQueries, PushCheck, PushToken,
    Retention, Role, Schedule, Scheduler, Server, Storage, System, Tenant,
};
pub use secrets::{CheckConfig, ResolvedConfig, Secret, SecretRef, SecretSource, resolve_secrets};
pub use units::{Jitter, parse_jitter, parse_size};

/// The JSON Schema (draft 2020-12) of the config file.
pub const SCHEMA: &str = include_str!("../../../config/tributary.schema.json");

/// The longest a check's `timeout` may be.
pub const MAX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3_600);

/// The shortest interval of an `every` schedule.
pub const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How strictly to read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Whether a check naming a connector absent from the plugin schemas is an
    /// error. Turn off to check a file without its plugins at hand (its known
    /// connectors' configs are still checked).
    pub require_known_connectors: bool,
    /// Whether a check whose connector's plugin file failed to load is kept
    /// (its runs then fail, saying why) rather than refused: the daemon keeps
    /// it, so one broken plugin file does not stop every other check.
    pub keep_checks_of_failed_plugins: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            require_known_connectors: true,
            keep_checks_of_failed_plugins: false,
        }
    }
}

/// What a config is checked against: the connectors its plugin folder
/// loaded, and the plugin files that failed.
#[derive(Debug, Clone, Default)]
pub struct Connectors {
    pub loaded: BTreeMap<String, Connector>,
    pub failed: Vec<crate::plugin::FailedPlugin>,
}

/// A loaded connector, as the config sees it.
#[derive(Debug, Clone)]
pub struct Connector {
    /// The JSON Schema of its config.
    pub schema: Value,
    /// The file it was loaded from and that file's sha256, for
    /// `plugin_sha256` pins; `None` when unknown (pins are not checked).
    pub file: Option<(PathBuf, String)>,
}

impl Connectors {
    /// Connectors known only by their config schemas.
    pub fn from_schemas(schemas: &BTreeMap<String, Value>) -> Self {
        Self {
            loaded: schemas
                .iter()
                .map(|(name, schema)| {
                    let connector = Connector {
                        schema: schema.clone(),
                        file: None,
                    };
                    (name.clone(), connector)
                })
                .collect(),
            failed: Vec::new(),
        }
    }
}

/// Reads, validates and types the config file at `path`. `plugin_schemas` maps
/// each connector's name to the JSON Schema of its config.
pub fn load(path: &Path, plugin_schemas: &BTreeMap<String, Value>) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::one(ConfigError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            pointer: String::new(),
            message: format!("cannot read the config file: {e}"),
        })
    })?;
    parse(&text, path, plugin_schemas)
}

/// Validates and types config `text`; `origin` names it in errors.
pub fn parse(
    text: &str,
    origin: &Path,
    plugin_schemas: &BTreeMap<String, Value>,
) -> Result<Config, ConfigErrors> {
    parse_with(text, origin, plugin_schemas, Options::default())
}

/// [`parse`] with [`Options`].
pub fn parse_with(
    text: &str,
    origin: &Path,
    plugin_schemas: &BTreeMap<String, Value>,
    options: Options,
) -> Result<Config, ConfigErrors> {
    parse_against(
        text,
        origin,
        &Connectors::from_schemas(plugin_schemas),
        options,
    )
}

/// Where a config file's plugins and data live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    pub plugins_dir: PathBuf,
    pub data_dir: PathBuf,
}

/// The folders config `text` names, read after checking only its TOML
/// syntax: so a file that does not parse is refused before any plugin is
/// compiled, and the full validation runs once, against the plugins.
pub fn folders(text: &str, origin: &Path) -> Result<Folders, ConfigErrors> {
    validate::folders(text, origin)
}

/// [`parse_with`] against loaded `connectors`: their schemas, their files'
/// hashes (for `plugin_sha256` pins) and the plugin files that failed.
pub fn parse_against(
    text: &str,
    origin: &Path,
    connectors: &Connectors,
    options: Options,
) -> Result<Config, ConfigErrors> {
    validate::run(text, origin, connectors, options)
}

//! Secret references in a check's plugin config and in alert channels, and
//! their resolution.
//!
//! Inside a check's `config`, a table with exactly one key, `env` or `file`,
//! whose value is a string, is a secret reference: `{ env = "NAME" }` reads the
//! daemon's environment variable `NAME`, `{ file = "path" }` reads the file
//! (one trailing newline trimmed; a relative path is relative to the daemon's
//! working directory). References stay in the config as written; they are only
//! resolved for a run, and the resolved values never appear in `Debug` output
//! or error messages.
//!
//! An alert channel's secrets (`[[alerts.channels]]`: a webhook's signing
//! secret, a Slack URL, a PagerDuty key, an SMTP password) use the same
//! references but are read when the config is loaded or reloaded, into a
//! [`Secret`]: a channel with a missing secret is a config error then, not a
//! failed delivery hours later.

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::error::ConfigError;
use super::source::escape;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
            SecretSource::File(path) => write!(f, "secret file {}", path.display()),
        }
    }
}

/// One secret reference inside a check's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// JSON pointer inside the plugin config (`/token`).
    pub at: String,
    /// JSON pointer in the file (`/checks/0/config/token`).
    pub pointer: String,
    pub line: usize,
    pub column: usize,
    pub source: SecretSource,
}

/// The secret reference `value` is, if it is one.
pub(crate) fn as_secret_ref(value: &Value) -> Option<SecretSource> {
    let object = value.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let (key, value) = object.iter().next()?;
    let text = value.as_str()?;
    match key.as_str() {
        "env" => Some(SecretSource::Env(text.to_owned())),
        "file" => Some(SecretSource::File(PathBuf::from(text))),
        _ => None,
    }
}

/// Every secret reference in `value`, as (pointer inside `value`, source).
pub(crate) fn find_secret_refs(value: &Value, at: &str, out: &mut Vec<(String, SecretSource)>) {
    if let Some(source) = as_secret_ref(value) {
        out.push((at.to_owned(), source));
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                find_secret_refs(v, &format!("{at}/{}", escape(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_secret_refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A check's plugin config as written: plain values and secret references.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// The config with secret references in place (safe to show).
    pub value: Value,
    pub secrets: Vec<SecretRef>,
    /// The config file, for errors.
    pub file: PathBuf,
}

/// A plugin config with its secrets read: what a run hands the plugin.
#[derive(Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    /// The config as JSON text, secrets in place.
    pub json: String,
    /// The secret values, for redacting them from the plugin's logs.
    pub secrets: Vec<String>,
}

impl fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedConfig")
            .field(
                "json",
                &format_args!("<{} bytes, redacted>", self.json.len()),
            )
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .finish()
    }
}

/// Reads every secret `config` refers to and puts it in place of its reference.
/// An error names the variable or file and its place, never a value.
pub fn resolve_secrets(config: &CheckConfig) -> Result<ResolvedConfig, ConfigError> {
    let mut value = config.value.clone();
    let mut secrets = Vec::with_capacity(config.secrets.len());
    for secret in &config.secrets {
        let error = |message: String| ConfigError {
            file: config.file.clone(),
            line: secret.line,
            column: secret.column,
            pointer: secret.pointer.clone(),
            message,
        };
        let text = read_secret(&secret.source).map_err(error)?;
        match value.pointer_mut(&secret.at) {
            Some(slot) => *slot = Value::String(text.clone()),
            None => return Err(error("secret reference not found in the config".into())),
        }
        secrets.push(text);
    }
    let json = serde_json::to_string(&value).expect("a JSON value always serialises");
    Ok(ResolvedConfig { json, secrets })
}

/// Reads the secret `source` names: one trailing newline of a file trimmed.
/// The error names the variable or file, never a value.
pub(crate) fn read_secret(source: &SecretSource) -> Result<String, String> {
    match source {
        SecretSource::Env(name) => match std::env::var(name) {
            Ok(v) => Ok(v),
            Err(std::env::VarError::NotPresent) => {
                Err(format!("environment variable {name} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(format!("environment variable {name} is not valid UTF-8"))
            }
        },
        SecretSource::File(path) => match std::fs::read(path) {
            Ok(bytes) => {
                let mut text = String::from_utf8(bytes)
                    .map_err(|_| format!("secret file {} is not valid UTF-8", path.display()))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(text)
            }
            Err(e) => Err(format!(
                "cannot read secret file {}: {}",
                path.display(),
                e.kind()
            )),
        },
    }
}

/// A secret read when the config was loaded (an alert channel's). Its value
/// shows nowhere: `Debug` names only where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: SecretSource,
    value: String,
}

impl Secret {
    pub(crate) fn new(source: SecretSource, value: String) -> Self {
        Self { source, value }
    }

    /// The value, for the one place that sends it (a request, a signature).
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn source(&self) -> &SecretSource {
        &self.source
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<from {}>)", self.source)
    }
}

//! Structured logging to the daemon's log.
//!
//! Each call becomes one line in the daemon's log (via the contract's
//! `host.log` import), tagged by the host with the tenant, flow, check and
//! plugin, plus the fields you pass. Plain `println!`/`eprintln!` also reach
//! the daemon's log, but without levels or fields.
//!
//! ```ignore
//! use plugin_sdk::log;
//!
//! log::info("fetched stats", &[("tenant", &cfg.tenant), ("received", &97)]);
//! log::warn("page was empty", &[]);
//! ```
//!
//! Secrets in the config are redacted by the host, but do not log them.

use std::fmt::Display;

use crate::__bindings::tributary::connector::host;
use crate::LogLevel;

/// Write one log line at `level` with `fields` (key, value).
pub fn log(level: LogLevel, message: &str, fields: &[(&str, &dyn Display)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.to_string()))
        .collect();
    host::log(level, message, &fields);
}

/// Log at `trace` level: very detailed, usually off.
pub fn trace(message: &str, fields: &[(&str, &dyn Display)]) {
    log(LogLevel::Trace, message, fields);
}

/// Log at `debug` level.
pub fn debug(message: &str, fields: &[(&str, &dyn Display)]) {
    log(LogLevel::Debug, message, fields);
}

/// Log at `info` level.
pub fn info(message: &str, fields: &[(&str, &dyn Display)]) {
    log(LogLevel::Info, message, fields);
}

/// Log at `warn` level.
pub fn warn(message: &str, fields: &[(&str, &dyn Display)]) {
    log(LogLevel::Warn, message, fields);
}

/// Log at `error` level.
pub fn error(message: &str, fields: &[(&str, &dyn Display)]) {
    log(LogLevel::Error, message, fields);
}

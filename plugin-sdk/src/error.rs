//! Helpers on [`ConnectorError`], the classified error of every call.
//!
//! The class tells the daemon what to do: only [`ErrorClass::Transient`] is
//! retried; `config` and `auth` need a human; `system` means the monitored
//! system failed or answered something unusable.

use std::fmt::Display;
use std::time::Duration;

use crate::{ConnectorError, ErrorClass};

impl ErrorClass {
    /// The class as the contract spells it: `config`, `auth`, `transient`,
    /// `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Config => "config",
            ErrorClass::Auth => "auth",
            ErrorClass::Transient => "transient",
            ErrorClass::System => "system",
        }
    }

    /// Parse `config`, `auth`, `transient` or `system`.
    pub fn parse(s: &str) -> Option<ErrorClass> {
        match s {
            "config" => Some(ErrorClass::Config),
            "auth" => Some(ErrorClass::Auth),
            "transient" => Some(ErrorClass::Transient),
            "system" => Some(ErrorClass::System),
            _ => None,
        }
    }
}

impl ConnectorError {
    /// An error of the given class.
    pub fn new(class: ErrorClass, message: impl Display) -> Self {
        ConnectorError {
            class,
            message: message.to_string(),
            retry_after_ms: None,
        }
    }

    /// The check's configuration is wrong: a bad field, an unknown database,
    /// a host the check does not grant. Not retried.
    ///
    /// ```ignore
    /// return Err(ConnectorError::config(format_args!("unknown tenant {tenant:?}")));
    /// ```
    pub fn config(message: impl Display) -> Self {
        Self::new(ErrorClass::Config, message)
    }

    /// Credentials were refused or lack a permission. Not retried.
    pub fn auth(message: impl Display) -> Self {
        Self::new(ErrorClass::Auth, message)
    }

    /// A temporary condition (timeout, 429, 503): the daemon retries. Add
    /// [`retry_after`](Self::retry_after) when the system said how long to
    /// wait.
    pub fn transient(message: impl Display) -> Self {
        Self::new(ErrorClass::Transient, message)
    }

    /// The monitored system failed or answered something unusable. Not
    /// retried.
    pub fn system(message: impl Display) -> Self {
        Self::new(ErrorClass::System, message)
    }

    /// How long the system asked us to wait before trying again.
    ///
    /// ```ignore
    /// ConnectorError::transient("rate limited").retry_after(Duration::from_secs(30))
    /// ```
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.retry_after_ms = Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Like [`retry_after`](Self::retry_after), in milliseconds.
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }

    /// Prefix the message with what was being done: `fetching stats: <message>`.
    /// The class is kept.
    pub fn context(mut self, context: impl Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Whether the daemon will retry a run that failed with this error.
    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}

/// JSON that cannot be read or written is the system's fault (a config is
/// parsed by [`parse_config`](crate::parse_config), which says `config`).
impl From<serde_json::Error> for ConnectorError {
    fn from(err: serde_json::Error) -> Self {
        ConnectorError::system(format_args!("invalid JSON: {err}"))
    }
}

/// A missing or forbidden file is a config problem (wrong path or no grant);
/// a timeout is transient; anything else is a system error.
impl From<std::io::Error> for ConnectorError {
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind;
        match err.kind() {
            ErrorKind::NotFound | ErrorKind::PermissionDenied => ConnectorError::config(err),
            ErrorKind::TimedOut | ErrorKind::Interrupted | ErrorKind::WouldBlock => {
                ConnectorError::transient(err)
            }
            _ => ConnectorError::system(err),
        }
    }
}

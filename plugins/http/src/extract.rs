//! Reading values out of a JSON answer: by JSON Pointer (RFC 6901,
//! `/data/count`) or by JMESPath (`data.items[?status=='failed'] | length(@)`),
//! and turning what was found into counts, text and times with errors that
//! say which asset, field and expression, and what was seen instead.

use plugin_sdk::{ConnectorError, Timestamp};
use serde_json::Value;

use crate::config::TimeFormat;

enum Source {
    Pointer(String),
    JmesPath(jmespath::Expression<'static>),
}

/// A compiled `{ pointer = ... }` or `{ jmespath = ... }`.
pub struct Expr {
    source: Source,
}

impl Expr {
    /// Exactly one of `pointer` and `jmespath`; a bad one is a config error
    /// at `place`.
    pub fn compile(
        pointer: Option<&str>,
        jmespath: Option<&str>,
        place: &str,
    ) -> Result<Expr, ConnectorError> {
        let source = match (pointer, jmespath) {
            (Some(_), Some(_)) => {
                return Err(ConnectorError::config(format_args!(
                    "{place}: set `pointer` or `jmespath`, not both"
                )));
            }
            (None, None) => {
                return Err(ConnectorError::config(format_args!(
                    "{place}: set `pointer` (e.g. \"/data/count\") or `jmespath` (e.g. \"data.count\")"
                )));
            }
            (Some(pointer), None) => {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(ConnectorError::config(format_args!(
                        "{place}.pointer: {pointer:?} is not a JSON Pointer: it must start with \"/\" (or be \"\" for the whole answer)"
                    )));
                }
                Source::Pointer(pointer.to_owned())
            }
            (None, Some(text)) => match jmespath::compile(text) {
                Ok(expr) => Source::JmesPath(expr),
                Err(err) => {
                    return Err(ConnectorError::config(format_args!(
                        "{place}.jmespath: {text:?} does not compile: {} (column {})",
                        err.reason, err.column
                    )));
                }
            },
        };
        Ok(Expr { source })
    }

    /// `pointer /a/b` or `jmespath a.b`, for messages.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Pointer(p) => format!("pointer {p}"),
            Source::JmesPath(e) => format!("jmespath {}", e.as_str()),
        }
    }

    /// The expression as written, for condition labels.
    pub fn text(&self) -> &str {
        match &self.source {
            Source::Pointer(p) => p,
            Source::JmesPath(e) => e.as_str(),
        }
    }

    /// What the expression finds in `doc`; `null` counts as nothing. A
    /// JMESPath runtime error (a function given the wrong type) is the
    /// answer's fault: `Err` with the reason.
    pub fn eval(&self, doc: &Value) -> Result<Option<Value>, String> {
        let found = match &self.source {
            Source::Pointer(p) => doc.pointer(p).cloned(),
            Source::JmesPath(expr) => {
                let result = expr.search(doc).map_err(|e| e.reason.to_string())?;
                Some(serde_json::to_value(&*result).map_err(|e| e.to_string())?)
            }
        };
        Ok(found.filter(|v| !v.is_null()))
    }
}

/// Where a value is read, for messages: `asset "documents": counts.received:
/// pointer /documents/received ... in the answer to GET http://...`.
pub struct Site<'a> {
    pub subject: &'a str,
    pub place: &'a str,
    pub expr: &'a Expr,
    /// `the answer to GET http://host/path`, `item 3 of errors.items`...
    pub within: &'a str,
}

impl Site<'_> {
    fn error(&self, what: std::fmt::Arguments<'_>) -> ConnectorError {
        ConnectorError::system(format_args!(
            "{}: {}: {} {what}",
            self.subject,
            self.place,
            self.expr.describe()
        ))
    }

    /// Evaluate against `doc`: `None` when nothing was found and the field
    /// is optional, a `system` error when it was required.
    pub fn find(&self, doc: &Value, optional: bool) -> Result<Option<Value>, ConnectorError> {
        match self.expr.eval(doc) {
            Err(reason) => Err(self.error(format_args!("failed on {}: {reason}", self.within))),
            Ok(None) if optional => Ok(None),
            Ok(None) => Err(self.error(format_args!(
                "found nothing in {} (mark the field `optional = true` if it may be absent)",
                self.within
            ))),
            Ok(Some(value)) => Ok(Some(value)),
        }
    }

    pub fn wrong(&self, value: &Value, wanted: &str) -> ConnectorError {
        self.error(format_args!(
            "gave {} in {}, not {wanted}",
            shown(value),
            self.within
        ))
    }

    pub fn count(&self, value: &Value) -> Result<u64, ConnectorError> {
        as_count(value).ok_or_else(|| self.wrong(value, "a non-negative integer"))
    }

    /// A string, or a number or boolean as its text (ids are often numbers).
    pub fn text(&self, value: &Value) -> Result<String, ConnectorError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.wrong(value, "text, a number or a boolean")),
        }
    }

    pub fn array<'v>(&self, value: &'v Value) -> Result<&'v Vec<Value>, ConnectorError> {
        value.as_array().ok_or_else(|| self.wrong(value, "a list"))
    }

    pub fn time(
        &self,
        value: &Value,
        format: Option<TimeFormat>,
    ) -> Result<Timestamp, ConnectorError> {
        let format = format.unwrap_or(TimeFormat::Rfc3339);
        let parsed = match (format, value) {
            (TimeFormat::Rfc3339, Value::String(s)) => Timestamp::parse_rfc3339(s).ok(),
            (TimeFormat::UnixSeconds, Value::Number(n)) => {
                n.as_i64().map(Timestamp::from_unix).or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite())
                        .map(Timestamp::from_unix_f64)
                })
            }
            (TimeFormat::UnixMillis, Value::Number(n)) => {
                n.as_i64().map(Timestamp::from_unix_millis)
            }
            _ => None,
        };
        parsed.ok_or_else(|| {
            let wanted = match format {
                TimeFormat::Rfc3339 => {
                    "an RFC 3339 time such as \"2026-11-20T10:00:00Z\" (set `format = \"unix_seconds\"` or \"unix_millis\" for numbers)"
                }
                TimeFormat::UnixSeconds => "a number of seconds since the Unix epoch",
                TimeFormat::UnixMillis => "a whole number of milliseconds since the Unix epoch",
            };
            self.wrong(value, wanted)
        })
    }
}

/// A JSON number that is a whole, non-negative count (`5` or `5.0`).
pub fn as_count(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9_007_199_254_740_992.0)
            .map(|f| f as u64)
    })
}

/// A value as a message shows it: `"1180" (text)`, kept short.
pub fn shown(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let mut text = value.to_string();
    if text.chars().count() > 80 {
        text = text.chars().take(80).collect::<String>() + "…";
    }
    format!("{text} ({kind})")
}

/// JMESPath truthiness: `false`, `null`, `""`, `[]` and `{}` are false,
/// everything else (every number too) is true.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

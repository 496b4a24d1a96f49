//! Plugin output (the `log` import, stdout and stderr) into `tracing`.
//!
//! Every line carries the plugin and check, secrets are masked and control
//! characters escaped ([`escape_controls`]) before anything is written, fields
//! are capped in number and size, and a per-run line and byte budget keeps a
//! chatty or hostile plugin from flooding the daemon's log. The tail of stderr
//! is kept so a panic message can become the reason a run failed.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::bindings::types::LogLevel;
use super::redact::Redactor;
use super::sandbox::Limits;

/// Longest line written to the log; the rest is cut.
const MAX_LINE: usize = 4096;
/// Most fields of one `log` call that are read; the rest are counted.
pub(crate) const MAX_FIELDS: usize = 32;
/// Longest field key and value kept; the rest is cut.
const MAX_FIELD_KEY: usize = 64;
const MAX_FIELD_VALUE: usize = 1024;
/// How much of stderr is kept to explain a panic.
const STDERR_TAIL: usize = 4096;

/// Who is speaking: attached to every line a plugin writes.
#[derive(Debug, Clone, Default)]
pub struct RunLabels {
    pub plugin: String,
    pub check: String,
    pub tenant: Option<String>,
}

/// The sink for everything one run writes.
pub(crate) struct PluginLog {
    labels: RunLabels,
    redactor: Redactor,
    lines_left: AtomicU32,
    bytes_left: AtomicU64,
    /// Set once either budget is spent, when the one warning is written.
    silenced: AtomicBool,
    stderr_tail: Mutex<Vec<u8>>,
}

macro_rules! event {
    ($level:expr, $log:expr, $source:expr, $fields:expr, $message:expr) => {{
        let (labels, source, fields, message) = (&$log.labels, $source, $fields, $message);
        let tenant = labels.tenant.as_deref().unwrap_or("");
        match $level {
            LogLevel::Trace => tracing::trace!(target: "plugin", plugin = %labels.plugin, check = %labels.check, tenant, source, fields, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "plugin", plugin = %labels.plugin, check = %labels.check, tenant, source, fields, "{message}"),
            LogLevel::Info => tracing::info!(target: "plugin", plugin = %labels.plugin, check = %labels.check, tenant, source, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", plugin = %labels.plugin, check = %labels.check, tenant, source, fields, "{message}"),
            LogLevel::Error => tracing::error!(target: "plugin", plugin = %labels.plugin, check = %labels.check, tenant, source, fields, "{message}"),
        }
    }};
}

impl PluginLog {
    pub(crate) fn new(labels: RunLabels, secrets: &[String], limits: &Limits) -> Self {
        Self {
            labels,
            redactor: Redactor::new(secrets),
            lines_left: AtomicU32::new(limits.log_lines),
            bytes_left: AtomicU64::new(limits.log_bytes),
            silenced: AtomicBool::new(false),
            stderr_tail: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Whether a line could still be written; lets callers skip reading one.
    pub(crate) fn has_budget(&self) -> bool {
        !self.silenced.load(Ordering::Relaxed)
    }

    /// A line from the `log` import, whose fields were capped as they were read
    /// ([`field_key`], [`field_value`]); `dropped` fields past [`MAX_FIELDS`]
    /// are counted in one more field.
    pub(crate) fn plugin_line(
        &self,
        level: LogLevel,
        message: &str,
        fields: &[(String, String)],
        dropped: usize,
    ) {
        if dropped == 0 {
            return self.line(level, "log", message, fields);
        }
        let mut fields = fields.to_vec();
        fields.push(("fields_dropped".into(), dropped.to_string()));
        self.line(level, "log", message, &fields);
    }

    /// Writes one line, unless the run has used up its line or byte budget.
    /// Text is cut to size, masked, and its control characters escaped.
    pub(crate) fn line(
        &self,
        level: LogLevel,
        source: &str,
        message: &str,
        fields: &[(String, String)],
    ) {
        let message = truncate(message, MAX_LINE);
        let fields = &fields[..fields.len().min(MAX_FIELDS + 1)];
        let cost = message.len()
            + fields
                .iter()
                .map(|(k, v)| k.len().min(MAX_FIELD_KEY) + v.len().min(MAX_FIELD_VALUE) + 2)
                .sum::<usize>();
        if !self.spend(cost as u64) {
            return;
        }
        let message = escape_controls(&self.redactor.redact(message)).into_owned();
        let fields = fields
            .iter()
            .map(|(k, v)| {
                let value = self.redactor.redact(truncate(v, MAX_FIELD_VALUE));
                format!(
                    "{}={}",
                    escape_controls(truncate(k, MAX_FIELD_KEY)),
                    escape_controls(&value)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        event!(level, self, source, fields.as_str(), message);
    }

    /// Takes one line and `bytes` from the budgets; the first time either is
    /// short, writes the one warning and refuses everything after.
    fn spend(&self, bytes: u64) -> bool {
        if self.silenced.load(Ordering::Relaxed) {
            return false;
        }
        let line = self
            .lines_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        let bytes = self
            .bytes_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_sub(bytes)
            });
        let which = match (line, bytes) {
            (Ok(_), Ok(_)) => return true,
            (Err(_), _) => "line",
            (_, Err(_)) => "byte",
        };
        if !self.silenced.swap(true, Ordering::Relaxed) {
            let message = format!(
                "log {which} limit reached (limits.log_lines, limits.log_bytes); dropping the rest of this run's plugin output"
            );
            event!(LogLevel::Warn, self, "host", "", message);
        }
        false
    }

    /// The panic message in what the plugin wrote to stderr, if there is one.
    pub(crate) fn panic_message(&self) -> Option<String> {
        let tail = self.stderr_tail.lock().expect("stderr tail lock");
        let text = String::from_utf8_lossy(&tail);
        let start = text.rfind("panicked at")?;
        let panic = &text[start..];
        let panic = panic.split("\nnote:").next().unwrap_or(panic);
        Some(self.redactor.redact(panic.trim()).into_owned())
    }

    fn keep_stderr(&self, bytes: &[u8]) {
        let mut tail = self.stderr_tail.lock().expect("stderr tail lock");
        tail.extend_from_slice(bytes);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
}

/// A field key as the log keeps it, copied only up to its cap.
pub(crate) fn field_key(key: &str) -> String {
    truncate(key, MAX_FIELD_KEY).to_owned()
}

/// A field value as the log keeps it, copied only up to its cap.
pub(crate) fn field_value(value: &str) -> String {
    truncate(value, MAX_FIELD_VALUE).to_owned()
}

/// Makes text from a plugin safe to print on one line: control characters
/// (newlines, escape sequences, C1 codes) and the invisible Unicode marks that
/// reorder or hide text become visible escapes such as `\n` or `\u{1b}`, so a
/// plugin cannot forge a log line or drive the reader's terminal. Other text,
/// including non-ASCII letters and backslashes, is left as is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !text.contains(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A plugin's stdout or stderr, as WASI sees it.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    log: Arc<PluginLog>,
    stderr: bool,
}

impl GuestOutput {
    pub(crate) fn stdout(log: Arc<PluginLog>) -> Self {
        Self { log, stderr: false }
    }

    pub(crate) fn stderr(log: Arc<PluginLog>) -> Self {
        Self { log, stderr: true }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    /// Our own stream rather than wasmtime's adapter around `async_stream`: that
    /// adapter logs the raw bytes at debug level, secrets included.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

impl GuestOutput {
    fn writer(&self) -> LineWriter {
        LineWriter {
            out: self.clone(),
            pending: Vec::new(),
        }
    }
}

/// Turns a byte stream into log lines.
struct LineWriter {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        if text.is_empty() {
            return;
        }
        let (level, source) = if self.out.stderr {
            (LogLevel::Warn, "stderr")
        } else {
            (LogLevel::Info, "stdout")
        };
        self.out.log.line(level, source, text, &[]);
    }

    fn flush_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        self.emit(&pending);
    }

    fn take(&mut self, buf: &[u8]) {
        if self.out.stderr {
            self.out.log.keep_stderr(buf);
        }
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.pending.len() > MAX_LINE {
            self.flush_pending();
        }
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.take(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.take(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush_pending();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.flush_pending();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_message_is_found_in_stderr_tail() {
        let log = PluginLog::new(
            RunLabels::default(),
            &["s3cret-value".into()],
            &Limits::default(),
        );
        log.keep_stderr(b"noise\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom s3cret-value\nnote: run with `RUST_BACKTRACE=1`\n");
        assert_eq!(
            log.panic_message().unwrap(),
            "panicked at src/lib.rs:3:5:\nboom [REDACTED]"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_kept() {
        assert!(matches!(
            escape_controls("plain ünïcode \\ text"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("a\nb\r\tc\u{1b}[31m\u{7f}\u{85}\u{202e}d"),
            "a\\nb\\r\\tc\\u{1b}[31m\\u{7f}\\u{85}\\u{202e}d"
        );
    }

    #[test]
    fn the_byte_budget_ends_the_output_before_the_line_budget() {
        let limits = Limits {
            log_bytes: 100,
            ..Limits::default()
        };
        let log = PluginLog::new(RunLabels::default(), &[], &limits);
        assert!(log.spend(60));
        assert!(!log.spend(60));
        assert!(!log.has_budget());
        assert!(!log.spend(1), "nothing after the budget ran out");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}

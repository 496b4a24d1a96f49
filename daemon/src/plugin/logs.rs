//! Plugin output (the `log` import, stdout and stderr) into `tracing`.
//!
//! Every line carries the plugin and check, secrets are masked before anything
//! is written, and a per-run line budget keeps a chatty or hostile plugin from
//! flooding the daemon's log. The tail of stderr is kept so a panic message can
//! become the reason a run failed.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::bindings::types::LogLevel;
use super::redact::Redactor;

/// Longest line written to the log; the rest is cut.
const MAX_LINE: usize = 4096;
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
    pub(crate) fn new(labels: RunLabels, secrets: &[String], max_lines: u32) -> Self {
        Self {
            labels,
            redactor: Redactor::new(secrets),
            lines_left: AtomicU32::new(max_lines),
            stderr_tail: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Writes one line, unless the run has used up its budget.
    pub(crate) fn line(
        &self,
        level: LogLevel,
        source: &str,
        message: &str,
        fields: &[(String, String)],
    ) {
        match self
            .lines_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        {
            Ok(1) => {
                let message =
                    "log line limit reached; dropping the rest of this run's plugin output";
                event!(LogLevel::Warn, self, "host", "", message);
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
        let message = self.redactor.redact(truncate(message, MAX_LINE));
        let fields = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", self.redactor.redact(truncate(v, MAX_LINE))))
            .collect::<Vec<_>>()
            .join(" ");
        event!(level, self, source, fields.as_str(), message);
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
        let log = PluginLog::new(RunLabels::default(), &["s3cret-value".into()], 10);
        log.keep_stderr(b"noise\nthread '<unnamed>' panicked at src/lib.rs:3:5:\nboom s3cret-value\nnote: run with `RUST_BACKTRACE=1`\n");
        assert_eq!(
            log.panic_message().unwrap(),
            "panicked at src/lib.rs:3:5:\nboom [REDACTED]"
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}

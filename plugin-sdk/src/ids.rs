//! Stream record ids to the host.
//!
//! A report carries counts; the ids behind them (to find which records are
//! missing) can number millions, so they never travel in the report. Hand
//! them to the host in batches instead, during `collect`, with [`emit`] or,
//! more conveniently, an [`IdStream`] that buffers and flushes every
//! [`DEFAULT_BATCH`] ids.
//!
//! ```ignore
//! use plugin_sdk::ids::IdStream;
//!
//! let mut ids = IdStream::new("documents");
//! for page in pages {
//!     ids.extend(page.ids)?;
//! }
//! let total = ids.finish()?; // flushes the rest; says how many were sent
//! ```
//!
//! The host fails a call once the run's id limit is reached; the error is
//! returned to you (usually: propagate it with `?`).

use crate::__bindings::tributary::connector::host;
use crate::ConnectorError;

/// How many ids an [`IdStream`] buffers before it hands them to the host.
pub const DEFAULT_BATCH: usize = 10_000;

/// Hand one batch of ids seen on `asset` to the host. Prefer [`IdStream`]
/// unless you already have batches of a sensible size (a few thousand).
pub fn emit(asset: &str, ids: &[String]) -> Result<(), ConnectorError> {
    if ids.is_empty() {
        return Ok(());
    }
    host::emit_ids(asset, ids)
}

/// Buffers ids for one asset and hands them to the host in batches.
///
/// Call [`finish`](IdStream::finish) at the end to flush the last batch and
/// see any error. An `IdStream` dropped without `finish` flushes what it
/// holds and ignores a failure (the run goes on without those ids).
#[derive(Debug)]
pub struct IdStream {
    asset: String,
    batch: Vec<String>,
    batch_size: usize,
    sent: u64,
    failed: bool,
}

impl IdStream {
    /// A stream for `asset` that flushes every [`DEFAULT_BATCH`] ids.
    pub fn new(asset: impl Into<String>) -> Self {
        Self::with_batch_size(asset, DEFAULT_BATCH)
    }

    /// A stream for `asset` that flushes every `batch_size` ids (at least 1).
    pub fn with_batch_size(asset: impl Into<String>, batch_size: usize) -> Self {
        let batch_size = batch_size.max(1);
        IdStream {
            asset: asset.into(),
            batch: Vec::with_capacity(batch_size.min(DEFAULT_BATCH)),
            batch_size,
            sent: 0,
            failed: false,
        }
    }

    /// The asset the ids belong to.
    pub fn asset(&self) -> &str {
        &self.asset
    }

    /// Add one id; flushes when the batch is full.
    pub fn push(&mut self, id: impl Into<String>) -> Result<(), ConnectorError> {
        self.batch.push(id.into());
        if self.batch.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Add many ids; flushes whenever the batch is full.
    pub fn extend<I>(&mut self, ids: I) -> Result<(), ConnectorError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        for id in ids {
            self.push(id)?;
        }
        Ok(())
    }

    /// Hand the buffered ids to the host now.
    pub fn flush(&mut self) -> Result<(), ConnectorError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let result = emit(&self.asset, &self.batch);
        match result {
            Ok(()) => {
                self.sent += self.batch.len() as u64;
                self.batch.clear();
                Ok(())
            }
            Err(err) => {
                // Do not retry the same batch from `Drop`.
                self.failed = true;
                self.batch.clear();
                Err(err)
            }
        }
    }

    /// How many ids the host has accepted so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Flush the rest and return how many ids the host accepted in all.
    pub fn finish(mut self) -> Result<u64, ConnectorError> {
        self.flush()?;
        Ok(self.sent)
    }
}

impl Drop for IdStream {
    fn drop(&mut self) {
        if !self.failed {
            let _ = self.flush();
        }
    }
}

//! Id sets pushed in batches and not yet finished: held in memory per token,
//! bounded, until a report names them (then they are reconciled as a whole)
//! or they expire. An unfinished set is never reconciled, so a client that
//! dies halfway leaves no half set behind, only memory that expires.
//!
//! They are not stored: a restart loses them, and a report naming a lost set
//! is refused, so the client sends its batches again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::reconcile::{IdSet, IdSetBuilder, LimitError, Limits};

/// Most unfinished sets one token holds at once.
pub const MAX_OPEN_PER_TOKEN: usize = 16;
/// An unfinished set no batch or report touched for this long is dropped.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Which set: the token that sends it, its check and asset, and the name the
/// client gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetKey {
    pub token: String,
    pub check: String,
    pub asset: String,
    pub set: String,
}

struct Open {
    builder: IdSetBuilder,
    ids: u64,
    touched: Instant,
}

/// Why a batch was not added.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(
        "this token has {} unfinished id sets already; finish one with a report naming it, or wait {}m for idle ones to expire",
        MAX_OPEN_PER_TOKEN,
        IDLE_EXPIRY.as_secs() / 60
    )]
    TooManyOpen,
    #[error("the id set is over its limit ({0}); it is dropped: start it again under a new name")]
    Limit(LimitError),
}

#[derive(Default)]
pub struct PendingIds {
    open: Mutex<HashMap<SetKey, Open>>,
}

impl PendingIds {
    /// Adds `ids` to the set `key` (opening it), within `limits`; returns
    /// the set's size so far.
    pub fn add(&self, key: SetKey, ids: &[String], limits: Limits) -> Result<u64, BatchError> {
        let now = Instant::now();
        let mut open = lock(&self.open);
        open.retain(|_, o| now.duration_since(o.touched) < IDLE_EXPIRY);
        if !open.contains_key(&key)
            && open.keys().filter(|k| k.token == key.token).count() >= MAX_OPEN_PER_TOKEN
        {
            return Err(BatchError::TooManyOpen);
        }
        let entry = open.entry(key.clone()).or_insert_with(|| Open {
            builder: IdSetBuilder::with_limits(limits),
            ids: 0,
            touched: now,
        });
        entry.touched = now;
        if let Err(e) = entry.builder.extend(ids) {
            open.remove(&key);
            return Err(BatchError::Limit(e));
        }
        entry.ids += ids.len() as u64;
        Ok(entry.ids)
    }

    /// Whether the set `key` is open.
    pub fn has(&self, key: &SetKey) -> bool {
        lock(&self.open).contains_key(key)
    }

    /// Takes the set `key` out to finish it, if it is open.
    pub fn take(&self, key: &SetKey) -> Option<IdSetBuilder> {
        lock(&self.open).remove(key).map(|o| o.builder)
    }
}

/// Finishes a set off the runtime: sorting a million ids takes tens of
/// milliseconds.
pub async fn finish(builder: IdSetBuilder) -> Arc<IdSet> {
    match tokio::task::spawn_blocking(move || Arc::new(builder.finish())).await {
        Ok(set) => set,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! When each push token was last let through: kept in memory for the API
//! (`push.tokens.lastUsedAt`) and written to the store in the background, at
//! most once per token every [`WRITE_EVERY`], so a report's answer never
//! waits on it, a busy token costs one row write per period, and a restart
//! shows what was written (all of it after a clean stop; up to
//! [`WRITE_EVERY`] less after a crash).
//!
//! It owns this bookkeeping only; the push API tells it of each use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::store::{Store, from_ms, to_ms};

/// How often the uses noted since the last write are written.
pub const WRITE_EVERY: Duration = Duration::from_secs(10);

struct Used {
    at: SystemTime,
    /// Whether `at` is in the store already.
    written: bool,
}

/// The tokens' latest uses, by SHA-256.
pub struct TokenUse {
    used: Mutex<HashMap<String, Used>>,
}

impl TokenUse {
    /// Starting from what the store holds.
    pub fn new(stored: Vec<(String, SystemTime)>) -> Self {
        let used = stored
            .into_iter()
            .map(|(sha256, at)| (sha256, Used { at, written: true }))
            .collect();
        Self {
            used: Mutex::new(used),
        }
    }

    /// The token with `sha256` was let through at `at` (kept to the
    /// millisecond, as the store keeps it, so a restart shows the same).
    pub fn note(&self, sha256: &str, at: SystemTime) {
        let at = from_ms(to_ms(at));
        let mut used = lock(&self.used);
        match used.get_mut(sha256) {
            Some(u) if u.at >= at => {}
            Some(u) => *u = Used { at, written: false },
            None => {
                used.insert(sha256.to_owned(), Used { at, written: false });
            }
        }
    }

    /// When the token with `sha256` was last let through, if ever.
    pub fn last(&self, sha256: &str) -> Option<SystemTime> {
        lock(&self.used).get(sha256).map(|u| u.at)
    }

    /// Writes the uses noted since the last write. What the store refuses is
    /// tried again next time (unless a newer use replaced it meanwhile).
    pub async fn write(&self, store: &Store) {
        let unwritten: Vec<(String, SystemTime)> = lock(&self.used)
            .iter_mut()
            .filter(|(_, u)| !u.written)
            .map(|(sha256, u)| {
                u.written = true;
                (sha256.clone(), u.at)
            })
            .collect();
        if unwritten.is_empty() {
            return;
        }
        if let Err(err) = store.note_push_tokens_used(&unwritten).await {
            tracing::warn!(error = %err, tokens = unwritten.len(), "writing push tokens' last use failed; trying again later");
            let mut used = lock(&self.used);
            for (sha256, at) in unwritten {
                if let Some(u) = used.get_mut(&sha256).filter(|u| u.at == at) {
                    u.written = false;
                }
            }
        }
    }
}

/// Writes `uses` every [`WRITE_EVERY`] until aborted.
pub async fn keep_writing(uses: Arc<TokenUse>, store: Store) {
    let mut every = tokio::time::interval(WRITE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        uses.write(&store).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! Who may push, how often, and whether a request was seen before: push
//! tokens (their SHA-256 looked up in the config in force), a token bucket
//! per token, and the `Idempotency-Key`s being stored.
//!
//! It owns this bookkeeping only; the handlers decide what to answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::Digest;
use tokio::time::Instant;

use crate::config::Config;

/// A token the config knows, and for which check.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The token's SHA-256, lowercase hex: what every bookkeeping keys on.
    pub sha256: String,
    pub check: String,
}

/// The push tokens of one config, by SHA-256.
struct Tokens {
    config: Arc<Config>,
    by_hash: HashMap<String, Holder>,
}

impl Tokens {
    fn new(config: Arc<Config>) -> Self {
        let by_hash = (config.checks.iter())
            .filter_map(|c| c.push.as_ref().map(|p| (c, p)))
            .flat_map(|(c, p)| {
                p.tokens.iter().map(|t| {
                    let holder = Holder {
                        sha256: t.sha256.clone(),
                        check: c.id.clone(),
                    };
                    (t.sha256.clone(), holder)
                })
            })
            .collect();
        Self { config, by_hash }
    }
}

/// A token's bucket: `level` requests may be sent now; it refills at the
/// check's rate up to the same number.
struct Bucket {
    level: f64,
    at: Instant,
}

/// Idempotency keys seen: a retry is answered from here, or from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Being stored now.
    InFlight,
    /// Stored.
    Stored,
}

/// Most idempotency keys remembered; past it the stored ones are forgotten
/// (the store still answers for them).
const MAX_REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct Gate {
    tokens: Mutex<Option<Tokens>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    seen: Mutex<HashMap<String, Seen>>,
}

impl Gate {
    /// The holder of `token` under `config`, if any push check lists it.
    pub fn holder(&self, config: &Arc<Config>, token: &str) -> Option<Holder> {
        let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        let mut tokens = lock(&self.tokens);
        if !tokens
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(&t.config, config))
        {
            *tokens = Some(Tokens::new(config.clone()));
        }
        tokens.as_ref()?.by_hash.get(&hash).cloned()
    }

    /// Takes one request from `holder`'s bucket at `rate` per second;
    /// `Err` says how long until one is free.
    pub fn take(&self, holder: &Holder, rate: u32) -> Result<(), Duration> {
        let rate = f64::from(rate.max(1));
        let at = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = buckets
            .entry(holder.sha256.clone())
            .or_insert(Bucket { level: rate, at });
        let level = (bucket.level + at.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = at;
        if level >= 1.0 {
            bucket.level = level - 1.0;
            Ok(())
        } else {
            bucket.level = level;
            Err(Duration::from_secs_f64((1.0 - level) / rate))
        }
    }

    /// Marks `run_id` in flight unless it was seen: `Some` says how.
    pub fn begin(&self, run_id: &str) -> Option<Seen> {
        let mut seen = lock(&self.seen);
        if let Some(s) = seen.get(run_id) {
            return Some(s.clone());
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, s| *s == Seen::InFlight);
        }
        seen.insert(run_id.to_owned(), Seen::InFlight);
        None
    }

    /// `run_id` was stored (`true`) or not (`false`: a retry may try again).
    pub fn end(&self, run_id: &str, stored: bool) {
        let mut seen = lock(&self.seen);
        if stored {
            seen.insert(run_id.to_owned(), Seen::Stored);
        } else {
            seen.remove(run_id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! Writes the database could not take: held in commit order, bounded,
//! retried with backoff until it answers again.
//!
//! While the database is down or unreachable, runs go on and their results
//! wait here instead of being lost; the health book has already judged them,
//! so what is held is exactly what would have been committed. Order matters
//! (event sequence numbers, the latest state per entity): once anything is
//! held, later writes queue behind it. Past the limit the oldest runs are
//! dropped, counted and logged. This module owns only the queue and its
//! timing; the writer decides what is held and writes it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::WriteBatch;

/// The first wait before writing again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One transaction's worth of writes, one part per run (a mute or a
/// staleness sweep is a part without runs), so a refused write can be split.
#[derive(Debug, Default)]
pub struct Held {
    pub parts: Vec<WriteBatch>,
}

impl Held {
    /// The runs it holds.
    pub fn runs(&self) -> usize {
        self.parts.iter().map(|p| p.runs.len()).sum()
    }

    /// How many runs it counts for against the limit (a write without runs
    /// counts as one).
    fn weight(&self) -> usize {
        self.runs().max(1)
    }
}

#[derive(Debug)]
pub struct Backlog {
    held: VecDeque<Held>,
    runs: usize,
    limit: usize,
    backoff: Duration,
    retry_at: Option<Instant>,
}

impl Backlog {
    /// A backlog holding at most `limit` runs.
    pub fn new(limit: usize) -> Self {
        Self {
            held: VecDeque::new(),
            runs: 0,
            limit: limit.max(1),
            backoff: FIRST_BACKOFF,
            retry_at: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Runs held now.
    pub fn runs(&self) -> usize {
        self.runs
    }

    /// A reloaded config may change the limit; what is held stays until the
    /// next push trims it.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// Holds `held` behind everything held before. The first hold schedules
    /// a retry. Returns how many runs were dropped, oldest first, to stay
    /// within the limit.
    pub fn push(&mut self, held: Held, now: Instant) -> usize {
        if self.held.is_empty() {
            self.backoff = FIRST_BACKOFF;
            self.retry_at = Some(now + self.backoff);
        }
        self.runs += held.weight();
        self.held.push_back(held);
        let mut dropped = 0;
        // The newest write is always kept: it carries the latest state.
        while self.runs > self.limit && self.held.len() > 1 {
            let oldest = self.pop().expect("more than one is held");
            dropped += oldest.runs();
        }
        dropped
    }

    pub fn front(&self) -> Option<&Held> {
        self.held.front()
    }

    /// Puts `held` back first: what is left of a split front write, to be
    /// written before anything behind it.
    pub fn push_front(&mut self, held: Held, now: Instant) {
        if self.held.is_empty() {
            self.backoff = FIRST_BACKOFF;
            self.retry_at = Some(now + self.backoff);
        }
        self.runs += held.weight();
        self.held.push_front(held);
    }

    /// Takes the oldest held write (it was written, or it is given up).
    pub fn pop(&mut self) -> Option<Held> {
        let held = self.held.pop_front()?;
        self.runs -= held.weight();
        if self.held.is_empty() {
            self.retry_at = None;
        }
        Some(held)
    }

    /// When to try writing again; `None` when nothing is held.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Writing failed again: wait longer before the next try.
    pub fn failed_again(&mut self, now: Instant) {
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.retry_at = Some(now + self.backoff);
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::store::{RunRow, RunWrite, Trigger};

    fn held(runs: usize) -> Held {
        let run = |i: usize| RunWrite {
            run: RunRow {
                id: format!("run-{i}"),
                check_id: "c".into(),
                connector: "example".into(),
                plugin_version: "1".into(),
                trigger: Trigger::Schedule,
                attempt: 1,
                started_at: SystemTime::UNIX_EPOCH,
                finished_at: SystemTime::UNIX_EPOCH,
                failure: None,
                assets: 0,
            },
            observations: Vec::new(),
            id_sets: Vec::new(),
            reconciliations: Vec::new(),
        };
        Held {
            parts: vec![WriteBatch {
                runs: (0..runs).map(run).collect(),
                ..WriteBatch::default()
            }],
        }
    }

    #[test]
    fn writes_are_held_in_order_and_counted_by_runs() {
        let now = Instant::now();
        let mut b = Backlog::new(100);
        assert_eq!(b.push(held(3), now), 0);
        assert_eq!(
            b.push(held(0), now),
            0,
            "a write without runs counts as one"
        );
        assert_eq!(b.push(held(5), now), 0);
        assert_eq!(b.runs(), 9);
        assert_eq!(b.pop().unwrap().runs(), 3);
        assert_eq!(b.pop().unwrap().runs(), 0);
        assert_eq!(b.front().unwrap().runs(), 5);
        assert_eq!(b.runs(), 5);
    }

    #[test]
    fn past_the_limit_the_oldest_runs_are_dropped_but_never_the_newest_write() {
        let now = Instant::now();
        let mut b = Backlog::new(10);
        b.push(held(4), now);
        b.push(held(4), now);
        assert_eq!(b.push(held(4), now), 4, "the oldest 4 go");
        assert_eq!(b.runs(), 8);
        assert_eq!(b.push(held(30), now), 8, "everything older goes");
        assert_eq!((b.runs(), b.held.len()), (30, 1), "the newest stays");
    }

    #[test]
    fn retries_back_off_until_the_backlog_is_empty() {
        let now = Instant::now();
        let mut b = Backlog::new(10);
        assert_eq!(b.retry_at(), None);
        b.push(held(1), now);
        assert_eq!(b.retry_at(), Some(now + FIRST_BACKOFF));
        b.failed_again(now);
        assert_eq!(b.retry_at(), Some(now + 2 * FIRST_BACKOFF));
        for _ in 0..10 {
            b.failed_again(now);
        }
        assert_eq!(b.retry_at(), Some(now + MAX_BACKOFF));
        b.pop();
        assert_eq!(b.retry_at(), None);
        b.push(held(1), now);
        assert_eq!(
            b.retry_at(),
            Some(now + FIRST_BACKOFF),
            "a new outage starts over"
        );
    }
}

//! The scheduler: decides when each check runs and how many run at once.
//!
//! It owns:
//! - **when**: interval schedules (measured from the previous scheduled start, so
//!   they never drift) and cron schedules (UTC, read from the [`Clock`] seam), each
//!   start delayed by the check's random [`Jitter`];
//! - **how many**: never two runs of one check at once, a global cap and optional
//!   per-connector caps, waiting runs starting in due order;
//! - **retries**: a [`Verdict::Transient`] attempt is retried with exponential
//!   backoff (honouring the executor's `retry_after` hint), never past the check's
//!   own next scheduled run; anything else is not retried;
//! - **run-now** on demand, **hot reload** of the job set, and a **graceful
//!   shutdown** that stops taking work, lets in-flight runs finish up to a grace
//!   deadline and then cancels the rest.
//!
//! It must not touch plugins, storage, health or config files: a run is one call
//! of an [`Executor`], which does the work and records the result. The daemon
//! turns config checks into [`Job`]s, waits for SIGINT/SIGTERM, calls
//! [`Scheduler::shutdown`] and, once that returns (no run in flight, none will
//! start), flushes and closes the store.
//!
//! # Timing rules
//! - An interval check's first slot is when it is scheduled (at start, or when
//!   added or changed by a reload); each next slot is one interval after the
//!   previous slot. A cron check's slots are its occurrences.
//! - A slot's run comes due after a uniform random delay of up to the jitter:
//!   a fraction of the interval (for cron, of the gap to the following
//!   occurrence), or a fixed duration, never more than that period.
//! - A slot that comes due while the check is busy (running, waiting for a
//!   permit, or waiting to retry) is skipped. Slots missed outright (the process
//!   was suspended, the wall clock jumped) are skipped too, not run in a burst.
//! - A retry that would come due at or after the check's next slot is dropped:
//!   that run comes soon enough.
//!
//! # Cost
//! One Tokio task drives every check: a min-heap of timers and, per connector, a
//! queue of runs waiting for a permit. A scheduled check costs its entry, its id
//! and connector names and one timer: about 0.4 KB for an interval check and
//! 0.7 KB for a cron one (croner's parsed pattern is large), measured over
//! 10,000 checks. A task exists only for an attempt in flight, and no thread is
//! ever started, so 10,000 checks take a few megabytes.
//!
//! [`Clock`]: crate::clock::Clock

mod driver;
mod state;
mod timing;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::clock::SharedClock;
use crate::config::{Jitter, Schedule};

use state::State;
pub use timing::next_cron_occurrence;

/// A check as the scheduler sees it: what to call it, whose cap it counts
/// against, and when it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The check id, passed to [`Executor::execute`].
    pub id: String,
    /// The connector (plugin) name, for the per-connector cap.
    pub connector: String,
    pub schedule: Schedule,
    pub jitter: Jitter,
    /// A backstop for one attempt: past it the attempt's future is dropped and
    /// the attempt is not retried. The executor enforces the check's own timeout
    /// and records the failure; set this a little above that timeout, so that a
    /// wedged attempt cannot hold a permit for ever.
    pub deadline: Option<Duration>,
}

/// Concurrency caps, counted in attempts in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    /// Across all checks. 0 is read as 1: a zero cap would stall every check
    /// without a word (the config forbids it anyway).
    pub global: u32,
    /// By connector name; a connector without an entry has only the global cap.
    /// 0 is read as 1, as for `global`.
    pub per_connector: BTreeMap<String, u32>,
}

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per run, the first included (1 means no retry; 0 is read as 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub base: Duration,
    /// The longest wait backoff alone gives; a larger `retry_after` hint from the
    /// executor still wins, because the system asked for it.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retrying after attempt `failed` (1-based) ended transient:
    /// `base * 2^(failed - 1)` capped at `max`, or the hint when that is longer.
    fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        let backoff = self
            .base
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max));
        retry_after.map_or(backoff, |hint| hint.max(backoff))
    }
}

/// Why an attempt started; the executor records it with the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// The check's schedule came due.
    Schedule,
    /// Someone asked through [`Scheduler::run_now`].
    Manual,
    /// An earlier attempt of the same run ended [`Verdict::Transient`].
    Retry,
}

/// How one attempt ended, as far as scheduling cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Finished: succeeded, or failed in a way a retry would not fix (config,
    /// auth, system errors). Not retried.
    Done,
    /// Failed in a way that may pass on its own; retried with backoff.
    Transient {
        /// How long the system asked us to wait (e.g. HTTP `Retry-After`).
        retry_after: Option<Duration>,
    },
}

/// Runs checks. The scheduler decides when; the executor does the work (plugin,
/// storage, health) and reports how the attempt ended.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + 'static {
    /// One attempt of a check (`attempt` counts from 1 within a run).
    ///
    /// Must be cancel-safe: at the shutdown deadline, or past a [`Job::deadline`],
    /// the future is dropped, so a half-written run must roll back on drop.
    async fn execute(&self, check: &str, attempt: u32, trigger: Trigger) -> Verdict;
}

/// What [`Scheduler::run_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunNow {
    /// A run is waiting for a permit: queued by this call, or already waiting
    /// (then no duplicate is added).
    Queued,
    /// A run of the check is in flight; no second one is started or queued.
    AlreadyRunning,
}

/// Why the scheduler refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedulerError {
    #[error("no check {0:?} is scheduled")]
    UnknownCheck(String),
    #[error("the scheduler is shutting down and takes no more work")]
    ShuttingDown,
}

/// A snapshot for metrics and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Attempts in flight.
    pub running: usize,
    /// Runs due but waiting for a permit.
    pub queued: usize,
    /// Checks scheduled.
    pub jobs: usize,
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Attempts in flight when shutdown began that ended on their own.
    pub finished: usize,
    /// Attempts still in flight at the grace deadline, dropped.
    pub cancelled: usize,
    /// Runs that were waiting for a permit and never started.
    pub not_started: usize,
}

/// A handle on the running scheduler. Clones share it: the API can call
/// [`run_now`](Self::run_now) while the config watcher calls
/// [`replace_jobs`](Self::replace_jobs).
///
/// Dropping every handle without [`shutdown`](Self::shutdown) leaves it running
/// until the Tokio runtime stops.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

/// What the handles and the driver task share.
struct Shared {
    state: Mutex<State>,
    /// Wakes the driver when a handle changed the state (run-now, reload, caps,
    /// shutdown); it sleeps on its next timer otherwise.
    wake: Notify,
    clock: SharedClock,
    /// `Some` once the driver has stopped.
    report: watch::Receiver<Option<ShutdownReport>>,
}

impl Shared {
    /// The state, even after a panic elsewhere: every mutation leaves it
    /// consistent, and a scheduler that can still shut down beats a cascade of
    /// panics through the API.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Scheduler {
    /// Schedules `jobs` and starts the driver task. Interval jobs first run at
    /// once (delayed by their jitter), cron jobs at their next occurrence.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn start(
        jobs: Vec<Job>,
        caps: Caps,
        retry: RetryPolicy,
        executor: Arc<dyn Executor>,
        clock: SharedClock,
    ) -> Self {
        let mut state = State::new(caps, retry);
        let count = jobs.len();
        state.replace(jobs, Instant::now(), clock.now());
        let (report_tx, report) = watch::channel(None);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Notify::new(),
            clock,
            report,
        });
        tokio::spawn(driver::drive(shared.clone(), executor, report_tx));
        tracing::info!(jobs = count, "scheduler started");
        Self { shared }
    }

    /// Queues a run of `check` at once (it still waits for a permit under the
    /// caps). A retry the check was waiting for is replaced by this run.
    pub fn run_now(&self, check: &str) -> Result<RunNow, SchedulerError> {
        let outcome = self.shared.lock().run_now(check, Instant::now());
        if outcome == Ok(RunNow::Queued) {
            self.shared.wake.notify_one();
        }
        outcome
    }

    /// Replaces the job set (config hot reload). A job whose schedule, connector
    /// and jitter are unchanged keeps its next due time; a new or changed job is
    /// scheduled as at start; a removed job stops (an attempt in flight finishes,
    /// unretried). A check never runs twice at once across a reload, even if it
    /// is removed and added back while running. Ignored once shutdown began.
    pub fn replace_jobs(&self, jobs: Vec<Job>) {
        let now = Instant::now();
        let wall = self.shared.clock.now();
        self.shared.lock().replace(jobs, now, wall);
        self.shared.wake.notify_one();
    }

    /// Replaces the concurrency caps (config hot reload). Lowering a cap cancels
    /// nothing: new attempts wait until the count is under it.
    pub fn set_caps(&self, caps: Caps) {
        self.shared.lock().set_caps(caps);
        self.shared.wake.notify_one();
    }

    /// The load right now, for metrics and the API.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    /// The checks with an attempt in flight (a check removed by a reload
    /// while running included), for views narrower than [`stats`](Self::stats).
    pub fn running_checks(&self) -> Vec<Arc<str>> {
        self.shared.lock().running_checks()
    }

    /// Stops taking work: no new attempt starts (runs waiting for a permit are
    /// dropped, pending retries forgotten, [`run_now`](Self::run_now) fails).
    /// In-flight attempts get until `grace` from now to end; the rest are then
    /// cancelled (their futures dropped). Returns once none is in flight.
    ///
    /// Any handle may call it; concurrent calls share one shutdown, the first
    /// call's `grace` counting.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let deadline = timing::later(Instant::now(), grace);
        self.shared.lock().begin_stop(deadline);
        self.shared.wake.notify_one();
        let mut report = self.shared.report.clone();
        match report.wait_for(Option::is_some).await {
            Ok(done) => (*done).unwrap_or_default(),
            Err(_) => {
                tracing::error!("the scheduler task ended without a shutdown report");
                ShutdownReport::default()
            }
        }
    }
}

//! The one task that drives every check: it sleeps until the next timer, a nudge
//! from a handle or the end of an attempt, then starts whatever may start. Each
//! attempt runs in a task of its own, so slow executors never hold up timing.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::{Id, JoinError, JoinSet};
use tokio::time::Instant;
use tracing::Instrument;

use super::state::Start;
use super::{Executor, Shared, ShutdownReport, Verdict};

pub(super) async fn drive(
    shared: Arc<Shared>,
    executor: Arc<dyn Executor>,
    report: watch::Sender<Option<ShutdownReport>>,
) {
    let mut driver = Driver {
        shared,
        executor,
        runs: JoinSet::new(),
        in_flight: HashMap::new(),
    };
    let deadline = driver.schedule().await;
    let outcome = driver.stop(deadline).await;
    report.send_replace(Some(outcome));
}

struct Driver {
    shared: Arc<Shared>,
    executor: Arc<dyn Executor>,
    runs: JoinSet<Verdict>,
    /// The attempt behind each task, to return its permit when the task ends,
    /// however it ends.
    in_flight: HashMap<Id, Start>,
}

impl Driver {
    /// Runs the schedule until shutdown begins; returns the grace deadline.
    async fn schedule(&mut self) -> Instant {
        loop {
            // Attempts that ended meanwhile free their check first, so a slot
            // due at the same instant is not skipped for a run already over.
            while let Some(joined) = self.runs.try_join_next_with_id() {
                self.settle(joined);
            }
            let (starts, next) = {
                let mut state = self.shared.lock();
                if let Some(deadline) = state.stopping() {
                    return deadline;
                }
                let now = Instant::now();
                state.fire_due(now, self.shared.clock.now());
                (state.take_startable(now), state.next_timer())
            };
            for start in starts {
                self.spawn(start);
            }
            let timer = async move {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.shared.wake.notified() => {}
                () = timer => {}
                Some(joined) = self.runs.join_next_with_id(), if !self.runs.is_empty() => {
                    self.settle(joined);
                }
            }
        }
    }

    fn spawn(&mut self, start: Start) {
        tracing::debug!(
            check = %start.check,
            attempt = start.attempt,
            trigger = ?start.trigger,
            waited = ?start.waited,
            "run started"
        );
        let span = tracing::info_span!(
            "check_run",
            check = %start.check,
            attempt = start.attempt,
            trigger = ?start.trigger
        );
        let executor = self.executor.clone();
        let check = start.check.clone();
        let (attempt, trigger, deadline) = (start.attempt, start.trigger, start.deadline);
        let task = async move {
            let run = executor.execute(&check, attempt, trigger);
            let Some(limit) = deadline else {
                return run.await;
            };
            match tokio::time::timeout(limit, run).await {
                Ok(verdict) => verdict,
                Err(_) => {
                    tracing::warn!(
                        ?limit,
                        "attempt passed its deadline and was dropped; not retried"
                    );
                    Verdict::Done
                }
            }
        };
        let id = self.runs.spawn(task.instrument(span)).id();
        self.in_flight.insert(id, start);
    }

    /// Returns the permit of an ended attempt and lets the state decide what
    /// follows. True if the attempt was cancelled (only shutdown cancels).
    fn settle(&mut self, joined: Result<(Id, Verdict), JoinError>) -> bool {
        let (id, ended) = match joined {
            Ok((id, verdict)) => (id, Ok(verdict)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(start) = self.in_flight.remove(&id) else {
            return false;
        };
        let (verdict, cancelled) = match ended {
            Ok(verdict) => (verdict, false),
            Err(e) if e.is_cancelled() => {
                tracing::info!(check = %start.check, attempt = start.attempt, "run cancelled at the shutdown deadline");
                (Verdict::Done, true)
            }
            Err(e) => {
                tracing::error!(check = %start.check, attempt = start.attempt, error = %e, "attempt panicked; not retried");
                (Verdict::Done, false)
            }
        };
        self.shared.lock().finish(&start, verdict, Instant::now());
        cancelled
    }

    /// Lets in-flight attempts end until `deadline`, then cancels the rest.
    async fn stop(&mut self, deadline: Instant) -> ShutdownReport {
        let not_started = self.shared.lock().drop_pending();
        tracing::info!(
            in_flight = self.runs.len(),
            not_started,
            "scheduler stopping: no new runs start"
        );
        let mut report = ShutdownReport {
            not_started,
            ..ShutdownReport::default()
        };
        let mut expiry = std::pin::pin!(tokio::time::sleep_until(deadline));
        while !self.runs.is_empty() {
            tokio::select! {
                Some(joined) = self.runs.join_next_with_id() => {
                    self.settle(joined);
                    report.finished += 1;
                }
                () = &mut expiry => break,
            }
        }
        self.runs.abort_all();
        while let Some(joined) = self.runs.join_next_with_id().await {
            if self.settle(joined) {
                report.cancelled += 1;
            } else {
                report.finished += 1;
            }
        }
        tracing::info!(
            finished = report.finished,
            cancelled = report.cancelled,
            not_started = report.not_started,
            "scheduler stopped"
        );
        report
    }
}

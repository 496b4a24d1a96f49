//! The scheduler's bookkeeping: every job's phase, the timers, the queues of
//! runs waiting for a permit, and the permit counts. No I/O and no awaiting, so
//! the handles and the driver share it under one short-held lock.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::timing::{Planned, first_slot, later, next_slot};
use super::{Caps, Job, RetryPolicy, RunNow, SchedulerError, Stats, Trigger, Verdict};
use crate::config::{Jitter, Schedule};

/// A run waiting for a permit, in due order: (due, sequence, check id).
type Waiting = (Instant, u64, Arc<str>);

pub(super) struct State {
    jobs: HashMap<Arc<str>, Entry>,
    /// Min-heap of slot and retry timers. An entry is current only while its
    /// job still holds the same sequence number (see [`is_current`]);
    /// stale ones are skipped when popped and purged on reload.
    timers: BinaryHeap<Reverse<Timer>>,
    /// Runs waiting for a permit, by connector, so that a connector at its cap
    /// does not hold up the others.
    ready: BTreeMap<Arc<str>, BTreeSet<Waiting>>,
    running: usize,
    running_by_connector: HashMap<Arc<str>, u32>,
    caps: Caps,
    retry: RetryPolicy,
    /// Jobs in the current set (entries kept only for a run in flight excluded).
    live: usize,
    /// Source of unique sequence numbers: they name timers and queue places,
    /// and break ties between runs due at the same instant (first come first).
    seq: u64,
    /// Set when shutdown began: the grace deadline.
    stop: Option<Instant>,
}

struct Entry {
    connector: Arc<str>,
    schedule: Schedule,
    jitter: Jitter,
    deadline: Option<Duration>,
    /// False once removed from the job set while an attempt is in flight; the
    /// entry goes when the attempt ends. Keeping it is what stops a re-added
    /// check from starting a second run beside the old one.
    live: bool,
    /// The next slot; `None` for a cron pattern with no further occurrence.
    slot: Option<Slot>,
    phase: Phase,
}

#[derive(Clone, Copy)]
struct Slot {
    planned: Planned,
    seq: u64,
}

/// Where a job is between runs. One phase per job is what guarantees never two
/// runs at once: a run is queued only from `Idle` or `RetryWait`.
#[derive(Clone, Copy)]
enum Phase {
    Idle,
    /// A retry is due when the timer with this sequence fires.
    RetryWait {
        attempt: u32,
        seq: u64,
    },
    /// Waiting for a permit at this place in its connector's queue.
    Queued {
        due: Instant,
        seq: u64,
        trigger: Trigger,
        attempt: u32,
    },
    Running {
        attempt: u32,
    },
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: Instant,
    seq: u64,
    kind: TimerKind,
    check: Arc<str>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Slot,
    Retry,
}

/// An attempt the driver is to start: it holds a permit from now on.
pub(super) struct Start {
    pub check: Arc<str>,
    pub connector: Arc<str>,
    pub attempt: u32,
    pub trigger: Trigger,
    pub deadline: Option<Duration>,
    /// How long it waited for a permit.
    pub waited: Duration,
}

/// What a reload did, for the log.
#[derive(Debug, Default)]
struct Reload {
    kept: usize,
    rescheduled: usize,
    added: usize,
    removed: usize,
}

impl State {
    pub(super) fn new(caps: Caps, retry: RetryPolicy) -> Self {
        Self {
            jobs: HashMap::new(),
            timers: BinaryHeap::new(),
            ready: BTreeMap::new(),
            running: 0,
            running_by_connector: HashMap::new(),
            caps,
            retry,
            live: 0,
            seq: 0,
            stop: None,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub(super) fn stopping(&self) -> Option<Instant> {
        self.stop
    }

    pub(super) fn set_caps(&mut self, caps: Caps) {
        self.caps = caps;
    }

    pub(super) fn stats(&self) -> Stats {
        Stats {
            running: self.running,
            queued: self.ready.values().map(BTreeSet::len).sum(),
            jobs: self.live,
        }
    }

    /// The checks with an attempt in flight.
    pub(super) fn running_checks(&self) -> Vec<Arc<str>> {
        (self.jobs.iter())
            .filter(|(_, e)| matches!(e.phase, Phase::Running { .. }))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Swaps in a new job set; see [`super::Scheduler::replace_jobs`].
    pub(super) fn replace(&mut self, jobs: Vec<Job>, now: Instant, wall: SystemTime) {
        if self.stop.is_some() {
            tracing::debug!("job set not replaced: the scheduler is shutting down");
            return;
        }
        let mut incoming: HashMap<Arc<str>, Job> = HashMap::with_capacity(jobs.len());
        for job in jobs {
            let id = Arc::<str>::from(job.id.as_str());
            if incoming.insert(id.clone(), job).is_some() {
                tracing::warn!(check = %id, "duplicate check id in the job set; the last one wins");
            }
        }
        let mut reload = Reload::default();
        let existing: Vec<Arc<str>> = self.jobs.keys().cloned().collect();
        for check in existing {
            match incoming.remove(&check) {
                Some(job) => {
                    if self.update(&check, job, now, wall) {
                        reload.kept += 1;
                    } else {
                        reload.rescheduled += 1;
                    }
                }
                None => {
                    if self.remove(&check) {
                        reload.removed += 1;
                    }
                }
            }
        }
        for (check, job) in incoming {
            let slot = first_slot(&job.schedule, job.jitter, now, wall);
            self.jobs.insert(
                check.clone(),
                Entry {
                    connector: Arc::from(job.connector),
                    schedule: job.schedule,
                    jitter: job.jitter,
                    deadline: job.deadline,
                    live: true,
                    slot: None,
                    phase: Phase::Idle,
                },
            );
            self.arm_slot(&check, slot);
            reload.added += 1;
        }
        self.live = self.jobs.values().filter(|e| e.live).count();
        let jobs = &self.jobs;
        self.timers.retain(|Reverse(t)| is_current(jobs, t));
        tracing::info!(
            jobs = self.live,
            kept = reload.kept,
            rescheduled = reload.rescheduled,
            added = reload.added,
            removed = reload.removed,
            "job set replaced"
        );
    }

    /// Updates an existing entry from `job`; true when its timing is kept.
    fn update(&mut self, check: &Arc<str>, job: Job, now: Instant, wall: SystemTime) -> bool {
        let Some(e) = self.jobs.get_mut(check) else {
            return false;
        };
        let unchanged = e.live
            && e.schedule == job.schedule
            && e.jitter == job.jitter
            && *e.connector == *job.connector;
        e.deadline = job.deadline;
        if unchanged {
            return true;
        }
        if *e.connector != *job.connector {
            // A run waiting for a permit waits under the new connector's cap,
            // keeping its place in due order.
            let connector = Arc::<str>::from(job.connector);
            if let Phase::Queued { due, seq, .. } = e.phase {
                let place = (due, seq, check.clone());
                remove_waiting(&mut self.ready, &e.connector, &place);
                self.ready
                    .entry(connector.clone())
                    .or_default()
                    .insert(place);
            }
            e.connector = connector;
        }
        e.schedule = job.schedule;
        e.jitter = job.jitter;
        e.live = true;
        let slot = first_slot(&e.schedule, e.jitter, now, wall);
        self.arm_slot(check, slot);
        false
    }

    /// Drops a job from the set; true if it was in it. A run in flight finishes
    /// (its entry goes then); a queued run or pending retry is dropped.
    fn remove(&mut self, check: &Arc<str>) -> bool {
        let Some(e) = self.jobs.get_mut(check) else {
            return false;
        };
        let was_live = e.live;
        match e.phase {
            Phase::Running { .. } => {
                e.live = false;
                e.slot = None;
            }
            Phase::Queued { due, seq, .. } => {
                remove_waiting(&mut self.ready, &e.connector, &(due, seq, check.clone()));
                self.jobs.remove(check);
            }
            Phase::Idle | Phase::RetryWait { .. } => {
                self.jobs.remove(check);
            }
        }
        was_live
    }

    /// Gives `check` its next slot and a timer for it (or none: the cron
    /// pattern has no further occurrence).
    fn arm_slot(&mut self, check: &Arc<str>, planned: Option<Planned>) {
        let seq = self.next_seq();
        let Some(e) = self.jobs.get_mut(check) else {
            return;
        };
        e.slot = planned.map(|planned| Slot { planned, seq });
        match planned {
            Some(p) => self.timers.push(Reverse(Timer {
                at: p.fire,
                seq,
                kind: TimerKind::Slot,
                check: check.clone(),
            })),
            None => tracing::info!(
                check = %check,
                "the cron pattern has no further occurrence; the check runs only on demand"
            ),
        }
    }

    /// When the driver must next wake for a timer.
    pub(super) fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(t)| t.at)
    }

    /// Handles every timer due by `now`: slots queue runs (or are skipped while
    /// the check is busy) and arm the next slot; retries queue their attempt.
    pub(super) fn fire_due(&mut self, now: Instant, wall: SystemTime) {
        while self.timers.peek().is_some_and(|Reverse(t)| t.at <= now) {
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            match timer.kind {
                TimerKind::Slot => self.slot_due(timer, now, wall),
                TimerKind::Retry => self.retry_due(timer),
            }
        }
    }

    fn slot_due(&mut self, timer: Timer, now: Instant, wall: SystemTime) {
        let Some(e) = self.jobs.get_mut(&timer.check) else {
            return;
        };
        let Some(slot) = e.slot.filter(|s| s.seq == timer.seq) else {
            return;
        };
        if matches!(e.phase, Phase::Idle) {
            enqueue(
                &mut self.ready,
                &timer.check,
                e,
                timer.at,
                timer.seq,
                Trigger::Schedule,
                1,
            );
        } else {
            tracing::debug!(check = %timer.check, "slot skipped: the check's previous run has not finished");
        }
        let next = next_slot(&e.schedule, e.jitter, slot.planned.at, now, wall);
        self.arm_slot(&timer.check, next);
    }

    fn retry_due(&mut self, timer: Timer) {
        let Some(e) = self.jobs.get_mut(&timer.check) else {
            return;
        };
        if let Phase::RetryWait { attempt, seq } = e.phase
            && seq == timer.seq
        {
            enqueue(
                &mut self.ready,
                &timer.check,
                e,
                timer.at,
                timer.seq,
                Trigger::Retry,
                attempt,
            );
        }
    }

    pub(super) fn run_now(&mut self, check: &str, now: Instant) -> Result<RunNow, SchedulerError> {
        if self.stop.is_some() {
            return Err(SchedulerError::ShuttingDown);
        }
        let seq = self.next_seq();
        let Some(e) = self.jobs.get_mut(check).filter(|e| e.live) else {
            return Err(SchedulerError::UnknownCheck(check.to_owned()));
        };
        match e.phase {
            Phase::Running { .. } => Ok(RunNow::AlreadyRunning),
            Phase::Queued { .. } => Ok(RunNow::Queued),
            Phase::Idle | Phase::RetryWait { .. } => {
                enqueue(
                    &mut self.ready,
                    &Arc::from(check),
                    e,
                    now,
                    seq,
                    Trigger::Manual,
                    1,
                );
                tracing::debug!(check, "run requested");
                Ok(RunNow::Queued)
            }
        }
    }

    /// Takes runs off the queues, earliest due first, while the caps allow;
    /// each returned [`Start`] holds a permit until [`State::finish`].
    pub(super) fn take_startable(&mut self, now: Instant) -> Vec<Start> {
        let mut starts = Vec::new();
        if self.stop.is_some() {
            return starts;
        }
        let global = usize::try_from(self.caps.global.max(1)).unwrap_or(usize::MAX);
        while self.running < global {
            let Some(connector) = self
                .ready
                .iter()
                .filter(|(connector, _)| self.has_room(connector))
                .filter_map(|(connector, queue)| queue.first().map(|w| (w, connector)))
                .min_by(|a, b| a.0.cmp(b.0))
                .map(|(_, connector)| connector.clone())
            else {
                break;
            };
            let Some(queue) = self.ready.get_mut(&connector) else {
                break;
            };
            let Some((due, _, check)) = queue.pop_first() else {
                break;
            };
            if queue.is_empty() {
                self.ready.remove(&connector);
            }
            let Some(e) = self.jobs.get_mut(&check) else {
                continue;
            };
            let Phase::Queued {
                trigger, attempt, ..
            } = e.phase
            else {
                continue;
            };
            e.phase = Phase::Running { attempt };
            self.running += 1;
            *self
                .running_by_connector
                .entry(connector.clone())
                .or_default() += 1;
            starts.push(Start {
                check,
                connector,
                attempt,
                trigger,
                deadline: e.deadline,
                waited: now.saturating_duration_since(due),
            });
        }
        starts
    }

    fn has_room(&self, connector: &str) -> bool {
        self.caps.per_connector.get(connector).is_none_or(|cap| {
            let running = self.running_by_connector.get(connector).copied();
            running.unwrap_or(0) < (*cap).max(1)
        })
    }

    /// Returns the permit of an attempt that ended at `now` and decides what
    /// follows: nothing, or a retry if the verdict is transient, attempts are
    /// left and the retry would start before the check's next scheduled run.
    pub(super) fn finish(&mut self, start: &Start, verdict: Verdict, now: Instant) {
        self.running = self.running.saturating_sub(1);
        if let Some(n) = self.running_by_connector.get_mut(&start.connector) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.running_by_connector.remove(&start.connector);
            }
        }
        let seq = self.next_seq();
        let check = &start.check;
        let Some(e) = self.jobs.get_mut(check) else {
            return;
        };
        let Phase::Running { attempt } = e.phase else {
            return;
        };
        e.phase = Phase::Idle;
        if !e.live {
            self.jobs.remove(check);
            return;
        }
        let Verdict::Transient { retry_after } = verdict else {
            return;
        };
        if self.stop.is_some() {
            return;
        }
        if attempt >= self.retry.max_attempts.max(1) {
            tracing::info!(check = %check, attempts = attempt, "transient failure on the last attempt; not retried");
            return;
        }
        let delay = self.retry.delay(attempt, retry_after);
        let at = later(now, delay);
        if let Some(slot) = e.slot
            && at >= slot.planned.fire
        {
            tracing::debug!(check = %check, attempt, ?delay, "retry dropped: the check's next scheduled run comes first");
            return;
        }
        e.phase = Phase::RetryWait {
            attempt: attempt + 1,
            seq,
        };
        self.timers.push(Reverse(Timer {
            at,
            seq,
            kind: TimerKind::Retry,
            check: check.clone(),
        }));
        tracing::debug!(check = %check, attempt = attempt + 1, ?delay, "retry scheduled");
    }

    /// Begins shutdown: from now on nothing starts and `run_now` fails.
    pub(super) fn begin_stop(&mut self, deadline: Instant) {
        self.stop.get_or_insert(deadline);
    }

    /// Drops all pending work (queued runs, timers); returns how many queued
    /// runs will never start.
    pub(super) fn drop_pending(&mut self) -> usize {
        let mut dropped = 0;
        for (_, queue) in std::mem::take(&mut self.ready) {
            for (_, _, check) in queue {
                dropped += 1;
                if let Some(e) = self.jobs.get_mut(&check) {
                    e.phase = Phase::Idle;
                }
            }
        }
        self.timers.clear();
        dropped
    }

    #[cfg(test)]
    pub(super) fn entry_size() -> usize {
        std::mem::size_of::<Entry>()
    }
}

/// Whether a timer still stands: its job holds the same sequence number for
/// its slot or its pending retry.
fn is_current(jobs: &HashMap<Arc<str>, Entry>, t: &Timer) -> bool {
    jobs.get(&t.check).is_some_and(|e| match t.kind {
        TimerKind::Slot => e.slot.is_some_and(|s| s.seq == t.seq),
        TimerKind::Retry => matches!(e.phase, Phase::RetryWait { seq, .. } if seq == t.seq),
    })
}

fn enqueue(
    ready: &mut BTreeMap<Arc<str>, BTreeSet<Waiting>>,
    check: &Arc<str>,
    e: &mut Entry,
    due: Instant,
    seq: u64,
    trigger: Trigger,
    attempt: u32,
) {
    ready
        .entry(e.connector.clone())
        .or_default()
        .insert((due, seq, check.clone()));
    e.phase = Phase::Queued {
        due,
        seq,
        trigger,
        attempt,
    };
}

fn remove_waiting(
    ready: &mut BTreeMap<Arc<str>, BTreeSet<Waiting>>,
    connector: &str,
    place: &Waiting,
) {
    if let Some(queue) = ready.get_mut(connector) {
        queue.remove(place);
        if queue.is_empty() {
            ready.remove(connector);
        }
    }
}

//! The one writer: takes completed runs, reconciles their ids, judges their
//! health, writes all of it in one transaction and publishes what committed.
//!
//! Being the only writer is what keeps health consistent (the book in memory
//! and the database move together) and event sequence numbers monotonic in
//! commit order. Runs that arrive while a transaction is being written are
//! written together in the next one (group commit): each run is still all or
//! nothing, and a busy daemon commits far less often than it runs.
//!
//! Each run's writes are kept as a part of their own: when the database
//! refuses a group (data it cannot take, a constraint), the writer writes the
//! parts one by one, so only the refused run fails; it is stored as a failed
//! run with the database's reason and judged UNKNOWN like any failed run.
//! Everything here is linear in the size of the runs written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use self::budgets::Budgets;
use self::slices::{Judged, Slicer};
use super::backlog::{Backlog, Held};
use super::report::{brief, facts, stored_message};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::events::{EventBus, RunCompleted};
use crate::health::{
    AssetFacts, Book, Coverage, EntityRef, FailureClass, Mute, Outcome, Status, Topology, When,
    Window,
};
use crate::metrics::Metrics;
use crate::reconcile::{IdSet, difference};
use crate::store::{
    AuditEntry, HealthEvent, IdSetRow, NewEvent, ObservationRow, Period, ReconciliationRow, Rollup,
    RunFailure, RunRow, RunWrite, Store, StoreError, WindowRow, WriteBatch, to_ms,
};

/// Most runs written in one transaction.
const MAX_BATCH: usize = 512;
/// How often checks are swept for staleness.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// Longest wait before maintenance and suppression marks are looked at
/// again, whatever the windows' next boundary: the wall clock may jump.
const MARKS_EVERY: Duration = Duration::from_secs(60);

/// Id sets written earlier in the batch being prepared, by (system, asset):
/// newer than what the store holds.
type PendingSets = HashMap<(String, String), Arc<IdSet>>;

/// A downstream asset's counts as its flow's latest reconciliation gives them.
struct Recounted {
    system: String,
    asset: String,
    expected: u64,
    received: u64,
    missing: u64,
}

/// A finished run on its way to the store.
#[derive(Debug)]
pub struct Completed {
    pub run: RunRow,
    /// The check's system.
    pub system: String,
    /// What the run said of each asset, when it succeeded.
    pub observations: Vec<ObservationRow>,
    /// Id sets the run streamed, by asset.
    pub ids: BTreeMap<String, Arc<IdSet>>,
    pub judge: Judge,
    /// Told once the run is durably stored: committed, or held in the
    /// backlog until the database takes it (a push is answered then).
    pub stored: Option<oneshot::Sender<()>>,
}

/// Whether a run's verdict reaches current health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// A finished run: judged.
    Yes,
    /// A transient failure that will be retried: stored, but not judged, so
    /// one blip does not flap health.
    No,
    /// A pushed report: judged unless it is older than the check's latest
    /// report, which it cannot overrule; then it only adds to history (its
    /// run, observations and rollups; its ids are not reconciled).
    IfLatest,
}

/// What the writer is asked to do.
pub enum Message {
    /// Store a completed run and the health it causes.
    Run(Box<Completed>),
    /// Mute an entity (`Some`) or lift its mute (`None`); the reply says
    /// whether the entity has health to mute.
    Mute {
        entity: EntityRef,
        mute: Option<Mute>,
        audit: AuditEntry,
        reply: oneshot::Sender<Result<bool, String>>,
    },
    /// Write what is queued before this, then end. Writes the database
    /// did not take are tried again until `until`, then given up.
    Stop { until: tokio::time::Instant },
    /// A reloaded config: judge and reconcile by it from now on.
    Configure {
        config: Arc<Config>,
        topology: Topology,
    },
    /// Make a maintenance window (from the API), recorded with `audit`.
    CreateWindow {
        row: WindowRow,
        audit: AuditEntry,
        reply: oneshot::Sender<Result<(), WindowError>>,
    },
    /// End an API window now; what it held back and is still bad is
    /// announced in the same transaction.
    EndWindow {
        name: String,
        audit: AuditEntry,
        reply: oneshot::Sender<Result<WindowRow, WindowError>>,
    },
}

/// Why a window could not be made or ended.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("a maintenance window named {0:?} exists already")]
    NameTaken(String),
    #[error("no maintenance window named {0:?} was made through the API")]
    NotFound(String),
    #[error("the maintenance window {0:?} comes from the config file: edit the file to change it")]
    FromConfig(String),
    #[error("the maintenance window {0:?} is over already")]
    Over(String),
    #[error("the change could not be stored: {0}")]
    Store(String),
    #[error("the daemon is stopping")]
    Stopped,
}

pub struct Writer {
    store: Store,
    book: Book,
    config: Arc<Config>,
    bus: EventBus,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// Writes waiting for the database to answer again.
    backlog: Backlog,
    /// How many runs the backlog holds, for readiness checks elsewhere.
    held: Arc<AtomicUsize>,
    windows: Windows,
    /// Judges SLO slices from what is written.
    slicer: Slicer,
    /// What SLO figures were read, and the reasons they give.
    budgets: Budgets,
}

/// The maintenance windows made through the API (the config's are in the
/// config), and where the writer tells the API which windows are in force.
struct Windows {
    api: Vec<WindowRow>,
    coverage: watch::Sender<Arc<Coverage>>,
}

impl Writer {
    pub fn new(
        store: Store,
        book: Book,
        config: Arc<Config>,
        bus: EventBus,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        held: Arc<AtomicUsize>,
    ) -> Self {
        metrics.checks_by_health(&book.checks_by_status());
        let mut writer = Self {
            slicer: Slicer::new(&config),
            budgets: Budgets::new(book.with_slo_reasons()),
            store,
            book,
            backlog: Backlog::new(config.storage.write_buffer),
            held,
            config,
            bus,
            clock,
            metrics,
            windows: Windows {
                api: Vec::new(),
                coverage: watch::channel(Arc::default()).0,
            },
        };
        writer.set_windows();
        writer
    }

    /// Adds the windows made through the API that the database holds (at
    /// start).
    pub fn load_windows(&mut self, api: Vec<WindowRow>) {
        self.windows.api = api;
        self.set_windows();
    }

    /// The windows in force as the writer sets them, for the API.
    pub fn coverage(&self) -> watch::Receiver<Arc<Coverage>> {
        self.windows.coverage.subscribe()
    }

    /// Runs until every sender is dropped and the queue is drained: what is
    /// queued at shutdown is still written.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Windows that ended (and upstreams that recovered) while the daemon
        // was down: announce what they held back.
        self.release_marks().await;
        // Before the first run is judged: a restart keeps SLO reasons.
        self.refresh_budgets().await;
        loop {
            let marks_at = tokio::time::sleep(self.until_next_boundary());
            let retry_at = self.backlog.retry_at();
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // A push check's heartbeat verdict is due at its own time, not
            // at the next sweep.
            let deadline = self.next_deadline();
            let heartbeat = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = retry => self.flush().await,
                () = heartbeat => self.sweep().await,
                msg = rx.recv() => {
                    let Some(first) = msg else { break };
                    let mut stop = None;
                    let mut runs = Vec::new();
                    let mut next = Some(first);
                    while let Some(msg) = next.take() {
                        match msg {
                            Message::Run(c) => runs.push(*c),
                            Message::Mute { entity, mute, audit, reply } => {
                                // Runs queued before the mute are judged without it.
                                self.write_runs(std::mem::take(&mut runs)).await;
                                let _ = reply.send(self.set_mute(entity, mute, audit).await);
                            }
                            Message::Stop { until } => stop = Some(until),
                            Message::Configure { config, topology } => {
                                // Runs queued before the reload are judged by the old rules.
                                self.write_runs(std::mem::take(&mut runs)).await;
                                self.backlog.set_limit(config.storage.write_buffer);
                                // New and changed SLOs judge from now on.
                                self.slicer = Slicer::new(&config);
                                self.budgets.reconfigure();
                                self.config = config;
                                self.book.set_topology(topology, self.clock.now());
                                self.set_windows();
                                self.metrics.checks_by_health(&self.book.checks_by_status());
                                // A removed window or flow lets go of what it held.
                                self.release_marks().await;
                            }
                            Message::CreateWindow { row, audit, reply } => {
                                self.write_runs(std::mem::take(&mut runs)).await;
                                let _ = reply.send(self.create_window(row, audit).await);
                            }
                            Message::EndWindow { name, audit, reply } => {
                                self.write_runs(std::mem::take(&mut runs)).await;
                                let _ = reply.send(self.end_window(&name, audit).await);
                            }
                        }
                        if runs.len() < MAX_BATCH && stop.is_none() {
                            next = rx.try_recv().ok();
                        }
                    }
                    self.write_runs(runs).await;
                    if let Some(until) = stop {
                        self.drain_backlog(until).await;
                        break;
                    }
                    self.refresh_budgets().await;
                }
                _ = sweep.tick() => {
                    self.sweep().await;
                    self.refresh_budgets().await;
                }
                () = marks_at => self.release_marks().await,
            }
        }
        tracing::debug!("writer drained and stopped");
    }

    /// At shutdown: keeps trying what is held until `until` (the database may
    /// come back within the grace period), then says what could not be
    /// written.
    async fn drain_backlog(&mut self, until: tokio::time::Instant) {
        if self.backlog.is_empty() {
            return;
        }
        tracing::warn!(
            runs = self.backlog.runs(),
            "stopping with writes held: trying them until the grace period ends"
        );
        loop {
            self.flush().await;
            let Some(retry_at) = self.backlog.retry_at() else {
                return;
            };
            if retry_at >= until {
                break;
            }
            tokio::time::sleep_until(retry_at).await;
        }
        if tokio::time::Instant::now() < until {
            tokio::time::sleep_until(until).await;
            self.flush().await;
        }
        let runs = self.backlog.runs();
        if runs > 0 {
            tracing::error!(
                runs,
                "stopped with {runs} held runs the database did not take: they are lost"
            );
            self.metrics.runs_dropped(runs);
        }
    }

    async fn write_runs(&mut self, runs: Vec<Completed>) {
        if runs.is_empty() {
            return;
        }
        let mut pending_sets: PendingSets = HashMap::new();
        let mut parts = Vec::with_capacity(runs.len());
        let mut stored = Vec::new();
        for mut c in runs {
            stored.extend(c.stored.take());
            parts.push(self.prepare(c, &mut pending_sets).await);
        }
        // Refused runs are stored as failed runs by the split; nothing to add.
        let _ = self.commit(Held { parts }).await;
        // Committed or held: either way durable for the daemon's life.
        for tell in stored {
            let _ = tell.send(());
        }
    }

    /// Writes `held` in one transaction and publishes what it committed. While
    /// the database is unavailable (or anything is held already, to keep
    /// commit order) it is held instead, to be written when the database
    /// answers. A write the database refuses is split (see [`Self::split`]);
    /// an error means it refused a part without runs (a mute, a sweep).
    async fn commit(&mut self, held: Held) -> Result<(), StoreError> {
        if !self.backlog.is_empty() {
            self.hold(held);
            return Ok(());
        }
        match self.write(&held.parts).await {
            Ok(events) => {
                self.publish(events, &held.parts);
                Ok(())
            }
            Err(err) if err.is_unavailable() => {
                tracing::warn!(error = %err, "the database is unavailable: holding writes until it answers");
                self.store.reset_writer().await;
                self.hold(held);
                Ok(())
            }
            Err(err) => {
                self.store.reset_writer().await;
                self.split(held.parts, err).await
            }
        }
    }

    fn hold(&mut self, held: Held) {
        let dropped = self.backlog.push(held, tokio::time::Instant::now());
        if dropped > 0 {
            self.slicer.resync();
            tracing::error!(
                dropped,
                limit = self.config.storage.write_buffer,
                "the write buffer is full: the oldest held runs are lost"
            );
            self.metrics.runs_dropped(dropped);
        }
        self.backlog_changed();
    }

    /// Tells the metrics and readiness how much is held.
    fn backlog_changed(&self) {
        let runs = self.backlog.runs();
        self.held.store(runs, Ordering::Relaxed);
        self.metrics.write_buffer(runs);
    }

    /// Writes what is held, oldest first, until the backlog is empty or the
    /// database is still unavailable.
    async fn flush(&mut self) {
        while let Some(front) = self.backlog.front() {
            match self.write(&front.parts).await {
                Ok(events) => {
                    let held = self.backlog.pop().expect("the front was there");
                    self.publish(events, &held.parts);
                    if self.backlog.is_empty() {
                        tracing::info!("the database answers again: every held write is stored");
                    }
                }
                Err(err) if err.is_unavailable() => {
                    self.store.reset_writer().await;
                    self.backlog.failed_again(tokio::time::Instant::now());
                    tracing::debug!(error = %err, held = self.backlog.runs(), "the database is still unavailable");
                    break;
                }
                Err(err) => {
                    self.store.reset_writer().await;
                    let held = self.backlog.pop().expect("the front was there");
                    // A lost health update leaves the book ahead of the
                    // database; it can only catch up once nothing is held.
                    if self.split(held.parts, err).await.is_err() && self.backlog.is_empty() {
                        self.reload_book().await;
                    }
                    if self
                        .backlog
                        .retry_at()
                        .is_some_and(|at| at > tokio::time::Instant::now())
                    {
                        // The split found the database unavailable again.
                        break;
                    }
                }
            }
        }
        self.backlog_changed();
    }

    /// The database refused `parts` written together (`err`): writes them one
    /// at a time, in order, so it refuses only what it cannot take. A refused
    /// part's runs are stored as failed runs saying why (without their
    /// observations, ids or health) and, once the book is back in line with
    /// the database, judged like any failed run. Should the database become
    /// unavailable meanwhile, the parts left are held, first in line. An
    /// error means a part without runs was refused and is lost.
    async fn split(&mut self, parts: Vec<WriteBatch>, err: StoreError) -> Result<(), StoreError> {
        let mut rest: VecDeque<WriteBatch> = parts.into();
        if rest.len() > 1 {
            tracing::warn!(error = %err, runs = rest.iter().map(|p| p.runs.len()).sum::<usize>(), "the database refused a group of runs: writing them one by one");
        }
        // A single part was refused already: no need to ask again.
        let mut known = (rest.len() == 1).then_some(err);
        let mut lost = None;
        let mut refused: Vec<RunRow> = Vec::new();
        while let Some(part) = rest.pop_front() {
            let result = match known.take() {
                Some(err) => Err(err),
                None => self.write(std::slice::from_ref(&part)).await,
            };
            match result {
                Ok(events) => self.publish(events, std::slice::from_ref(&part)),
                Err(err) if err.is_unavailable() => {
                    rest.push_front(part);
                    let now = tokio::time::Instant::now();
                    self.backlog.push_front(Held { parts: rest.into() }, now);
                    self.backlog.failed_again(now);
                    self.metrics.write_buffer(self.backlog.runs());
                    tracing::warn!(error = %err, "the database is unavailable: holding writes until it answers");
                    break;
                }
                Err(err) if part.runs.is_empty() => {
                    tracing::error!(error = %err, "the database refused a health update; it is lost");
                    self.slicer.resync();
                    lost = Some(err);
                }
                Err(err) => {
                    self.slicer.resync();
                    refused.extend(self.store_refused(part, &err).await);
                }
            }
        }
        if !refused.is_empty() {
            if self.backlog.is_empty() {
                self.reload_book().await;
                self.judge_refused(&refused).await;
            } else {
                // The book is ahead of the database by what is held: its
                // next run judges the check.
                tracing::warn!(
                    runs = refused.len(),
                    "runs refused while writes are held are judged by their next run"
                );
            }
        }
        lost.map_or(Ok(()), Err)
    }

    /// Stores the runs of a refused `part` as failed runs with the
    /// database's reason; returns them (none when even that was refused).
    async fn store_refused(&mut self, part: WriteBatch, err: &StoreError) -> Vec<RunRow> {
        let reason = format!("the database refused this run's data: {err}");
        let runs: Vec<RunWrite> = part
            .runs
            .into_iter()
            .map(|w| RunWrite {
                run: RunRow {
                    failure: Some(RunFailure {
                        class: FailureClass::System,
                        message: stored_message(&reason, &crate::plugin::Redactor::default()),
                    }),
                    assets: 0,
                    ..w.run
                },
                observations: Vec::new(),
                id_sets: Vec::new(),
                reconciliations: Vec::new(),
            })
            .collect();
        for w in &runs {
            tracing::error!(check = %w.run.check_id, run = %w.run.id, error = %brief(&reason), "the database refused a run's data: stored as a failed run");
        }
        let failed = WriteBatch {
            runs,
            ..WriteBatch::default()
        };
        match self.write(std::slice::from_ref(&failed)).await {
            Ok(events) => {
                self.publish(events, std::slice::from_ref(&failed));
                failed.runs.into_iter().map(|w| w.run).collect()
            }
            Err(err) => {
                tracing::error!(error = %err, runs = failed.runs.len(), "the database refused even the failed runs; they are lost");
                self.metrics.runs_dropped(failed.runs.len());
                Vec::new()
            }
        }
    }

    /// Judges runs the database refused as failed runs (UNKNOWN, with the
    /// reason), in one write.
    async fn judge_refused(&mut self, runs: &[RunRow]) {
        let mut part = WriteBatch::default();
        for run in runs {
            let Some(failure) = &run.failure else {
                continue;
            };
            let outcome = self.book.record_failure(
                &run.check_id,
                failure.class,
                &brief(&failure.message),
                run.started_at,
            );
            self.add(&mut part, outcome, Some(run), &[], false, run.started_at);
        }
        match self.write(std::slice::from_ref(&part)).await {
            Ok(events) => self.publish(events, &[]),
            Err(err) => {
                tracing::error!(error = %err, "writing the health of refused runs failed");
                self.reload_book().await;
            }
        }
    }

    /// One transaction, timed for the metrics.
    async fn write(&self, parts: &[WriteBatch]) -> Result<Vec<HealthEvent>, StoreError> {
        let started = std::time::Instant::now();
        let result = self.store.write_parts(parts).await;
        self.metrics
            .store_write(started.elapsed().as_secs_f64(), result.is_err());
        result
    }

    /// What committed goes to the bus (and the metrics): health events in
    /// sequence order, then the runs of `parts`.
    fn publish(&mut self, events: Vec<HealthEvent>, parts: &[WriteBatch]) {
        self.budgets
            .written(parts.iter().flat_map(|p| p.slices.iter()));
        let checks_changed = events
            .iter()
            .any(|e| matches!(e.entity, EntityRef::Check(_)));
        for event in events {
            self.metrics.health_event(event.entity.kind(), event.to);
            self.bus.publish_health(event);
        }
        if checks_changed {
            self.metrics.checks_by_health(&self.book.checks_by_status());
        }
        for write in parts.iter().flat_map(|p| p.runs.iter()) {
            self.bus.publish_run(run_completed(&write.run));
        }
    }

    /// Sets or lifts a mute and records who did it, in one transaction.
    async fn set_mute(
        &mut self,
        entity: EntityRef,
        mute: Option<Mute>,
        audit: AuditEntry,
    ) -> Result<bool, String> {
        let Some(update) = self.book.set_mute(&entity, mute) else {
            return Ok(false);
        };
        let part = WriteBatch {
            health: vec![update],
            audit: vec![audit],
            ..WriteBatch::default()
        };
        match self.commit(Held { parts: vec![part] }).await {
            Ok(()) => Ok(true),
            Err(err) => {
                self.reload_book().await;
                Err(err.to_string())
            }
        }
    }

    /// Every maintenance window: the config's, then the API's.
    fn all_windows(&self) -> Vec<Window> {
        let api = self.windows.api.iter().map(|row| Window {
            name: row.name.clone(),
            reason: row.reason.clone(),
            scope: row.scope.clone(),
            when: When::Once {
                start: row.start,
                end: row.end,
            },
        });
        self.config.maintenance.iter().cloned().chain(api).collect()
    }

    /// Hands the windows to the book and tells the API.
    fn set_windows(&mut self) {
        self.book.set_windows(self.all_windows());
        self.windows
            .coverage
            .send_replace(Arc::new(self.book.coverage()));
    }

    /// How long until a window starts or ends (at most [`MARKS_EVERY`]).
    fn until_next_boundary(&self) -> Duration {
        let now = self.clock.now();
        self.book
            .windows()
            .iter()
            .filter_map(|w| w.next_boundary(now))
            .filter_map(|t| t.duration_since(now).ok())
            .min()
            .map_or(MARKS_EVERY, |d| d.min(MARKS_EVERY))
    }

    /// Announces what ended windows and recovered upstreams held back.
    async fn release_marks(&mut self) {
        let now = self.clock.now();
        let outcome = self.book.release_marks(now);
        self.write_outcome(outcome, now, "what maintenance or suppression held back")
            .await;
    }

    /// Writes the health `outcome` of no run (a sweep, marks let go); when
    /// the database refuses it, the book starts again from what it holds.
    async fn write_outcome(&mut self, outcome: Outcome, now: SystemTime, what: &str) {
        if outcome.updates.is_empty() {
            return;
        }
        let mut part = WriteBatch::default();
        self.add(&mut part, outcome, None, &[], false, now);
        if let Err(err) = self.commit(Held { parts: vec![part] }).await {
            tracing::error!(error = %err, "writing {what} failed");
            self.reload_book().await;
        }
    }

    /// Makes an API window: its name must be new among all windows.
    async fn create_window(
        &mut self,
        row: WindowRow,
        audit: AuditEntry,
    ) -> Result<(), WindowError> {
        let taken = self.config.maintenance.iter().map(|w| &w.name);
        if taken
            .chain(self.windows.api.iter().map(|w| &w.name))
            .any(|n| *n == row.name)
        {
            return Err(WindowError::NameTaken(row.name));
        }
        self.write_window(row, audit).await
    }

    /// Ends an API window now.
    async fn end_window(
        &mut self,
        name: &str,
        audit: AuditEntry,
    ) -> Result<WindowRow, WindowError> {
        let now = self.clock.now();
        let Some(row) = self.windows.api.iter().find(|w| w.name == name) else {
            return Err(if self.config.maintenance.iter().any(|w| w.name == name) {
                WindowError::FromConfig(name.to_owned())
            } else {
                WindowError::NotFound(name.to_owned())
            });
        };
        if row.end <= now {
            return Err(WindowError::Over(name.to_owned()));
        }
        let mut row = row.clone();
        // A window that had not started yet ends before it begins.
        row.end = now.max(row.start);
        self.write_window(row.clone(), audit).await?;
        Ok(row)
    }

    /// Stores a made or ended window with its audit entry and, in the same
    /// transaction, what the change lets go of.
    async fn write_window(&mut self, row: WindowRow, audit: AuditEntry) -> Result<(), WindowError> {
        let before = self.windows.api.clone();
        match self.windows.api.iter_mut().find(|w| w.name == row.name) {
            Some(w) => *w = row.clone(),
            None => self.windows.api.push(row.clone()),
        }
        self.set_windows();
        let now = self.clock.now();
        let outcome = self.book.release_marks(now);
        let mut part = WriteBatch {
            audit: vec![audit],
            windows: vec![row],
            ..WriteBatch::default()
        };
        self.add(&mut part, outcome, None, &[], false, now);
        match self.commit(Held { parts: vec![part] }).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.windows.api = before;
                self.set_windows();
                self.reload_book().await;
                Err(WindowError::Store(err.to_string()))
            }
        }
    }

    /// Adds `outcome` (of `run`, with its `observations`; `counted` when
    /// the book's count history holds them already) to `batch`, with the
    /// SLO slice events it gives.
    fn add(
        &mut self,
        batch: &mut WriteBatch,
        outcome: Outcome,
        run: Option<&RunRow>,
        observations: &[ObservationRow],
        counted: bool,
        now: SystemTime,
    ) {
        let judged = Judged {
            samples: &outcome.samples,
            run,
            observations,
            counted,
            now,
        };
        self.slicer.judge(
            &self.book,
            &judged,
            &mut batch.slices,
            &mut batch.slo_members,
        );
        add_outcome(batch, outcome, run, observations, now);
    }

    /// The book moved ahead of a write that failed: start again from what the
    /// database holds.
    async fn reload_book(&mut self) {
        match self.store.for_writer().all_health().await {
            Ok(stored) => {
                let topology = self.book.topology().clone();
                self.book = Book::new(topology, stored, self.clock.now());
                self.book.set_windows(self.all_windows());
            }
            Err(err) => tracing::error!(error = %err, "reloading health after a failed write"),
        }
    }

    /// Everything one run writes, and the health it causes: its part of a
    /// write.
    async fn prepare(&mut self, c: Completed, pending_sets: &mut PendingSets) -> WriteBatch {
        let mut part = WriteBatch::default();
        // Health is judged as of the run's start: what the plugin saw was
        // true then (as dbt judges freshness at its snapshot time), and a slow
        // run must not make data look older than it was.
        let now = c.run.started_at;
        let judge = match c.judge {
            Judge::IfLatest if self.book.is_older_than_latest(&c.run.check_id, now) => {
                self.history_only(c, &mut part);
                return part;
            }
            Judge::IfLatest | Judge::Yes => true,
            Judge::No => false,
        };
        let mut observations = c.observations;
        let mut id_sets = Vec::new();
        let mut reconciliations = Vec::new();
        let mut downstream = Vec::new();
        // Where each asset's observation is, for the ids' reconciled counts.
        let at: HashMap<String, usize> = if c.ids.is_empty() {
            HashMap::new()
        } else {
            observations
                .iter()
                .enumerate()
                .map(|(i, o)| (o.asset.clone(), i))
                .collect()
        };
        for (asset, set) in c.ids {
            let encoded = {
                let set = set.clone();
                off_the_runtime(move || set.encode()).await
            };
            id_sets.push(IdSetRow {
                system_id: c.system.clone(),
                asset: asset.clone(),
                check_id: c.run.check_id.clone(),
                run_id: c.run.id.clone(),
                observed_at: now,
                count: set.len() as u64,
                encoded,
            });
            for rec in self.reconcile(&c.system, &asset, &set, pending_sets).await {
                if rec.system_id == c.system {
                    // This run is downstream: its counts are what the ids say.
                    if let Some(obs) = at.get(&asset).map(|&i| &mut observations[i]) {
                        let missing = rec.missing_ids.len() as u64;
                        if obs.missing.is_none_or(|m| missing > m) {
                            obs.expected = Some(rec.expected);
                            obs.received = Some(rec.received);
                            obs.missing = Some(missing);
                        }
                    }
                } else {
                    downstream.push(Recounted {
                        system: rec.system_id.clone(),
                        asset: asset.clone(),
                        expected: rec.expected,
                        received: rec.received,
                        missing: rec.missing_ids.len() as u64,
                    });
                }
                reconciliations.push(ReconciliationRow {
                    run_id: c.run.id.clone(),
                    computed_at: now,
                    ..rec
                });
            }
            pending_sets.insert((c.system.clone(), asset), set);
        }

        if judge {
            let outcome = match &c.run.failure {
                None => {
                    let assets = observations
                        .iter()
                        .map(|row| (row.asset.clone(), facts(row)))
                        .collect::<Vec<(String, AssetFacts)>>();
                    self.book.record_success(&c.run.check_id, assets, now)
                }
                // Reasons carry a brief of the message; the run keeps it whole.
                Some(f) => {
                    self.book
                        .record_failure(&c.run.check_id, f.class, &brief(&f.message), now)
                }
            };
            self.add(&mut part, outcome, Some(&c.run), &observations, true, now);
        }
        for recount in downstream {
            self.re_evaluate_downstream(recount, now, &mut part).await;
        }
        part.runs.push(RunWrite {
            run: c.run,
            observations,
            id_sets,
            reconciliations,
        });
        part
    }

    /// Stores a report older than its check's latest as history: the run,
    /// its observations and the rollup samples its rules give, without
    /// changing current health or reconciling its ids (newer sets exist).
    fn history_only(&mut self, c: Completed, part: &mut WriteBatch) {
        let now = c.run.started_at;
        if c.run.failure.is_none() {
            let assets = c
                .observations
                .iter()
                .map(|row| (row.asset.clone(), facts(row)))
                .collect();
            let samples = self.book.judge_only(&c.run.check_id, assets, now);
            let outcome = Outcome {
                samples,
                ..Outcome::default()
            };
            self.add(part, outcome, Some(&c.run), &c.observations, false, now);
        }
        part.runs.push(RunWrite {
            run: c.run,
            observations: c.observations,
            id_sets: Vec::new(),
            reconciliations: Vec::new(),
        });
    }

    /// Judges again, with the reconciled counts, each downstream asset whose
    /// upstream ids just arrived, so its health does not wait for its own next
    /// run. An asset whose latest run failed stays as it is (UNKNOWN).
    async fn re_evaluate_downstream(
        &mut self,
        r: Recounted,
        now: SystemTime,
        batch: &mut WriteBatch,
    ) {
        let checks: Vec<String> = self
            .book
            .topology()
            .checks_of_system(&r.system)
            .filter(|check| self.book.knows_asset(check, &r.asset))
            .map(str::to_owned)
            .collect();
        if !self.backlog.is_empty() {
            // Nothing to read it from while the database is unavailable; its
            // own next run judges it.
            return;
        }
        for check in checks {
            let latest_run = self.store.for_writer().runs(&check, None, 1).await;
            if !latest_run.is_ok_and(|runs| runs.first().is_some_and(|run| run.succeeded())) {
                continue;
            }
            let Ok(Some(latest)) = self
                .store
                .for_writer()
                .asset_observations(&check, &r.asset, 1)
                .await
                .map(|mut o| o.pop())
            else {
                continue;
            };
            let mut row = latest.observation;
            row.expected = Some(r.expected);
            row.received = Some(r.received);
            row.missing = Some(r.missing);
            let outcome = self.book.re_evaluate(&check, &r.asset, facts(&row), now);
            self.add(batch, outcome, None, std::slice::from_ref(&row), false, now);
        }
    }

    /// The differences `set` (of `asset` in `system`) takes part in: as the
    /// upstream of a flow, against each downstream system's latest ids; as a
    /// downstream, against the upstream's latest ids.
    async fn reconcile(
        &self,
        system: &str,
        asset: &str,
        set: &Arc<IdSet>,
        pending_sets: &PendingSets,
    ) -> Vec<ReconciliationRow> {
        let mut out = Vec::new();
        for flow in &self.config.flows {
            let pairs: Vec<(&str, &str)> = if flow.upstream == system {
                flow.downstream
                    .iter()
                    .map(|d| (flow.upstream.as_str(), d.as_str()))
                    .collect()
            } else if flow.downstream.iter().any(|d| d == system) {
                vec![(flow.upstream.as_str(), system)]
            } else {
                continue;
            };
            for (up, down) in pairs {
                let other = if up == system { down } else { up };
                let Some(other_set) = self.latest_set(other, asset, pending_sets).await else {
                    continue;
                };
                let (upstream, downstream) = if up == system {
                    (set.clone(), other_set)
                } else {
                    (other_set, set.clone())
                };
                let diff = off_the_runtime(move || difference(&upstream, &downstream)).await;
                out.push(ReconciliationRow {
                    flow_id: flow.id.clone(),
                    system_id: down.to_owned(),
                    asset: asset.to_owned(),
                    run_id: String::new(),
                    computed_at: SystemTime::UNIX_EPOCH,
                    expected: diff.expected,
                    received: diff.received,
                    missing_ids: diff.missing,
                });
            }
        }
        out
    }

    async fn latest_set(
        &self,
        system: &str,
        asset: &str,
        pending_sets: &PendingSets,
    ) -> Option<Arc<IdSet>> {
        if let Some(set) = pending_sets.get(&(system.to_owned(), asset.to_owned())) {
            return Some(set.clone());
        }
        if !self.backlog.is_empty() {
            // The database is unavailable, and what it holds is older than
            // what is waiting for it: reconcile again once it answers.
            return None;
        }
        match self.store.for_writer().id_set(system, asset).await {
            Ok(Some(row)) => match off_the_runtime(move || IdSet::decode(&row.encoded)).await {
                Ok(set) => Some(Arc::new(set)),
                Err(err) => {
                    tracing::error!(system, asset, error = %err, "stored id set unreadable; skipped");
                    None
                }
            },
            Ok(None) => None,
            Err(err) => {
                tracing::error!(system, asset, error = %err, "reading an id set failed");
                None
            }
        }
    }

    /// When the next heartbeat deadline passes, on the runtime's clock.
    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        let now = self.clock.now();
        let at = self.book.next_deadline(now)?;
        let wait = at.duration_since(now).unwrap_or_default();
        Some(tokio::time::Instant::now() + wait.min(SWEEP_EVERY))
    }

    /// Gives the book the SLO reasons that changed since the figures were
    /// last read, and writes what they change (see [`budgets`]). Skipped
    /// while writes are held: the store is behind, and the next refresh
    /// reads again.
    async fn refresh_budgets(&mut self) {
        if !self.backlog.is_empty() {
            return;
        }
        self.sync_slo_members().await;
        let now = self.clock.now();
        let changed = match self
            .budgets
            .refresh(
                &self.config.slos,
                &self.store.for_writer(),
                &self.metrics,
                to_ms(now),
            )
            .await
        {
            Ok(changed) => changed,
            Err(err) => {
                tracing::error!(error = %err, "reading SLO figures failed; read again at the next sweep");
                return;
            }
        };
        let mut all = Outcome::default();
        for c in changed {
            let outcome = self
                .book
                .set_slo_reasons(&c.entity, c.reasons, c.further, now);
            all.updates.extend(outcome.updates);
            all.changes.extend(outcome.changes);
        }
        // No samples: an SLO's verdict is not an evaluation of a run, for
        // the rollups nor for the SLOs' own slices.
        self.write_outcome(all, now, "SLO reasons").await;
    }

    /// Tells the store every entity each SLO covers, after a start or a
    /// reload (the lists show them, slices or not); tried again at the next
    /// refresh when the database refuses.
    async fn sync_slo_members(&mut self) {
        if !self.slicer.unsynced() {
            return;
        }
        let store = self.store.for_writer();
        for (slo, covered) in self.slicer.coverage(&self.config, &self.book) {
            if let Err(err) = store.set_slo_members(&slo, &covered).await {
                tracing::error!(slo = %slo, error = %err, "storing which entities an SLO covers failed; tried again at the next sweep");
                return;
            }
        }
        self.slicer.synced();
    }

    /// Marks stale checks UNKNOWN, and push checks past their heartbeat
    /// deadline UNKNOWN or UNHEALTHY.
    async fn sweep(&mut self) {
        let now = self.clock.now();
        let outcome = self.book.sweep_stale(now);
        self.write_outcome(outcome, now, "stale health").await;
    }
}

/// Runs CPU-bound id-set work (tens of milliseconds per million ids) on the
/// blocking pool, so the runtime's workers keep serving other tasks.
async fn off_the_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Adds the states, events and rollup samples of `outcome` to `batch`.
fn add_outcome(
    batch: &mut WriteBatch,
    outcome: Outcome,
    run: Option<&RunRow>,
    observations: &[ObservationRow],
    now: SystemTime,
) {
    // Found by key, not searched: a report of N assets is O(N) here.
    let by_asset: HashMap<&str, &ObservationRow> =
        observations.iter().map(|o| (o.asset.as_str(), o)).collect();
    batch.health.extend(outcome.updates);
    batch.events.extend(
        outcome
            .changes
            .into_iter()
            .map(|(entity, change)| NewEvent {
                entity,
                change,
                run_id: run.map(|r| r.id.clone()),
                at: now,
            }),
    );
    for (entity, status) in outcome.samples {
        let obs = match &entity {
            EntityRef::Asset { asset, .. } => by_asset.get(asset.as_str()).copied(),
            _ => None,
        };
        for period in [Period::Hour, Period::Day] {
            batch.rollups.push(Rollup {
                entity: entity.clone(),
                period,
                bucket_start: period.bucket_start(now),
                worst: status,
                evaluations: 1,
                healthy: u64::from(status == Status::Healthy),
                runs: u64::from(run.is_some()),
                failed_runs: u64::from(run.is_some_and(|r| !r.succeeded())),
                expected: obs.and_then(|o| o.expected),
                received: obs.and_then(|o| o.received),
                errored: obs.and_then(|o| o.errored),
                missing: obs.and_then(|o| o.missing),
                max_lag: obs
                    .and_then(|o| o.freshness)
                    .map(|f| now.duration_since(f).unwrap_or_default()),
            });
        }
    }
}

fn run_completed(run: &RunRow) -> RunCompleted {
    RunCompleted {
        run_id: run.id.clone(),
        check_id: run.check_id.clone(),
        connector: run.connector.clone(),
        succeeded: run.succeeded(),
        error_class: run.failure.as_ref().map(|f| f.class.as_str().to_owned()),
        error_message: run.failure.as_ref().map(|f| f.message.clone()),
        started_at: run.started_at,
        duration: run.duration(),
        assets: run.assets,
    }
}

mod budgets;
mod slices;
#[cfg(test)]
mod tests;

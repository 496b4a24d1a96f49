//! The running daemon: wires a valid config, the loaded plugins, the store, the
//! health book, the scheduler and the event bus together, and takes them down
//! in order.
//!
//! It owns the path of one run (scheduler -> [`runner`] -> plugin -> [`writer`]
//! -> store -> bus) and background upkeep (staleness, retention, the alert
//! dispatcher, announcing what maintenance windows and failing upstreams held
//! back once they let go), operators' acts on alert delivery
//! ([`alerting`]: retry, enable, test a channel) and SLO figures on read
//! ([`slos`]). It must not parse config, speak HTTP or know a vendor: those
//! are the config module, the API and the plugins.

mod alerting;
mod backlog;
mod report;
mod runner;
mod slos;
mod token_use;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::alerts::dispatcher::{self, DisabledChannels, Dispatcher, Nudge};
use crate::clock::SharedClock;
use crate::config::{Config, Schedule};
use crate::events::EventBus;
use crate::health::{
    Book, CheckPlace, Coverage, Deadlines, EntityRef, Expect, FlowPlace, Mute, Topology, Window,
};
use crate::metrics::{Metrics, Sample};
use crate::plugin::{ActionOutcome, DeleteScope, PluginSet, Redactor, RunError};
use crate::scheduler::{
    Caps, Executor, Job, RetryPolicy, RunNow, Scheduler, SchedulerError, ShutdownReport, Stats,
    Trigger, next_cron_occurrence,
};
use crate::store::{AuditEntry, Store, StoreError, WindowRow, to_ms};

pub use alerting::{ChannelTest, Retried};
pub use report::{Normalised, ReportError, normalise};
pub use runner::Loaded;
pub use slos::{MAX_SLICES, SliceView, SloStatus};
pub use writer::WindowError;

/// A report that came over HTTP to a push check instead of from a plugin
/// run, already checked and normalised by the push API.
#[derive(Debug)]
pub struct Pushed {
    pub check: String,
    /// Derived from the `Idempotency-Key` when there is one, so a retry
    /// names the run it repeats.
    pub run_id: String,
    /// When what it says was true: the report's `at`, or its arrival.
    pub at: SystemTime,
    pub observations: Vec<crate::store::ObservationRow>,
    /// Finished id sets, by asset.
    pub ids: std::collections::BTreeMap<String, Arc<crate::reconcile::IdSet>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the daemon is stopping")]
    Stopped,
    #[error("the change could not be stored: {0}")]
    Store(String),
}

/// Why an on-demand plugin action did not happen or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no check {0:?} is configured")]
    UnknownCheck(String),
    #[error("connector {connector} does not implement {action}")]
    Unsupported {
        connector: String,
        action: &'static str,
    },
    #[error("{0}")]
    Failed(String),
}

/// An on-demand call of a plugin's optional action on one asset.
#[derive(Debug, Clone)]
pub enum Action {
    /// Ask the monitored system to send these records again (all when empty).
    Resync { asset: String, ids: Vec<String> },
    /// Ask the monitored system to delete data of the asset.
    Delete { asset: String, scope: DeleteScope },
}

/// When a started daemon runs its checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// On their schedules: the daemon.
    Scheduled,
    /// Only through [`Service::run_once`]: one check tried by hand.
    OnDemand,
}

/// Completed runs waiting for the writer; runners wait when it is full.
const WRITE_QUEUE: usize = 4096;
/// How often old data is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The daemon's moving parts while it runs. Shared (`Arc`) by the API and the
/// command line; [`Service::stop`] takes the parts down once.
pub struct Service {
    scheduler: Mutex<Option<Scheduler>>,
    runner: Arc<runner::Runner>,
    writer_tx: mpsc::Sender<writer::Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    pruner: JoinHandle<()>,
    /// Delivers alerts; told of every new config.
    dispatcher: Option<JoinHandle<()>>,
    alerts_config: watch::Sender<Arc<Config>>,
    /// The channels the dispatcher found disabled, for the API.
    disabled_channels: DisabledChannels,
    /// Wakes the dispatcher for a pass now.
    alert_nudge: Nudge,
    store: Store,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    /// Runs the writer holds because the database did not take them.
    held_writes: Arc<AtomicUsize>,
    /// When each push token (by SHA-256) was last let through.
    push_tokens_used: Arc<token_use::TokenUse>,
    /// Writes the tokens' last use to the store now and then.
    push_tokens_writer: JoinHandle<()>,
    /// The maintenance windows in force, as the writer last set them.
    coverage: watch::Receiver<Arc<Coverage>>,
    /// Who rolls up into whom in the config in force: which entities an
    /// SLO's scope covers.
    topology: Mutex<Arc<Topology>>,
}

impl Service {
    /// Starts the daemon on `config` with `plugins` (those of its folder that
    /// loaded, and those that failed), from the health `store` already holds;
    /// its checks run on their schedules, or only when
    /// [`run_once`](Self::run_once) asks (`tributary run`).
    pub async fn start(
        config: Config,
        plugins: impl Into<PluginSet>,
        store: Store,
        bus: EventBus,
        clock: SharedClock,
        runs: Runs,
    ) -> Result<Service, StoreError> {
        let config = Arc::new(config);
        let stored = store.all_health().await?;
        let last_success: HashMap<String, _> = stored
            .iter()
            .filter_map(|(e, h)| match e {
                EntityRef::Check(id) => h.last_success.map(|t| (id.clone(), t)),
                _ => None,
            })
            .collect();
        let shared_topology = Arc::new(topology(&config, &clock));
        let book = Book::new((*shared_topology).clone(), stored, clock.now());
        let metrics = Arc::new(Metrics::new());
        let (writer_tx, writer_rx) = mpsc::channel(WRITE_QUEUE);
        // Before the writer starts: every event it publishes wakes the
        // dispatcher (those before are in the outbox its first pass reads).
        let alert_events = bus.health_events();
        let held_writes = Arc::new(AtomicUsize::new(0));
        let api_windows = store.maintenance_windows().await?;
        let mut writer = writer::Writer::new(
            store.clone(),
            book,
            config.clone(),
            bus,
            clock.clone(),
            metrics.clone(),
            held_writes.clone(),
        );
        writer.load_windows(api_windows);
        let coverage = writer.coverage();
        let writer = tokio::spawn(writer.run(writer_rx));

        let retry = RetryPolicy::default();
        let runner = Arc::new(runner::Runner::new(
            Loaded::new(config.clone(), plugins.into()),
            writer_tx.clone(),
            clock.clone(),
            retry,
            last_success,
            metrics.clone(),
        ));
        let scheduler = Scheduler::start(
            match runs {
                Runs::Scheduled => jobs(&config),
                Runs::OnDemand => Vec::new(),
            },
            caps(&config),
            retry,
            runner.clone(),
            clock.clone(),
        );
        let push_tokens_used = Arc::new(token_use::TokenUse::new(store.push_tokens_used().await?));
        let push_tokens_writer = tokio::spawn(token_use::keep_writing(
            push_tokens_used.clone(),
            store.clone(),
        ));
        let (alerts_config, alerts_rx) = watch::channel(config.clone());
        let pruner = tokio::spawn(prune(
            store.clone(),
            alerts_config.subscribe(),
            clock.clone(),
        ));
        // A check tried by hand (`tributary run`) sends nothing: its events
        // wait in the outbox for the daemon.
        let disabled_channels = dispatcher::stored_disabled(&store, &config).await?;
        let alert_nudge = Nudge::default();
        let dispatcher = (runs == Runs::Scheduled).then(|| {
            tokio::spawn(
                Dispatcher::new(
                    store.clone(),
                    alerts_rx,
                    clock.clone(),
                    metrics.clone(),
                    disabled_channels.clone(),
                    alert_events,
                    alert_nudge.clone(),
                )
                .run(),
            )
        });
        tracing::info!(
            checks = config.checks.len(),
            flows = config.flows.len(),
            store = ?store.backend(),
            "daemon running"
        );
        Ok(Service {
            scheduler: Mutex::new(Some(scheduler)),
            runner,
            writer_tx,
            writer: Mutex::new(Some(writer)),
            pruner,
            dispatcher,
            alerts_config,
            disabled_channels,
            alert_nudge,
            store,
            clock,
            metrics,
            held_writes,
            push_tokens_used,
            push_tokens_writer,
            coverage,
            topology: Mutex::new(shared_topology),
        })
    }

    /// Runs waiting for the database to take them: while there are any,
    /// the daemon is not ready (what it serves lags what it ran).
    pub fn held_writes(&self) -> usize {
        self.held_writes.load(Ordering::Relaxed)
    }

    /// Wakes the alert dispatcher for a pass now, for what it would
    /// otherwise find only at its next due time (e.g. a delivery made due
    /// by hand).
    pub fn nudge_alerts(&self) {
        self.alert_nudge.notify_one();
    }

    /// The daemon's metrics, for the modules that report into them.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// What a scrape of `/metrics` gets now.
    pub fn metrics_text(&self) -> String {
        let stats = self.stats();
        let loaded = self.loaded();
        self.metrics.render(Sample {
            plugins_loaded: loaded.plugins.len(),
            plugins_failed: loaded.failed.len(),
            write_queue: WRITE_QUEUE - self.writer_tx.capacity(),
            running: stats.running,
            waiting: stats.queued,
            checks: stats.jobs,
        })
    }

    /// The config and plugins in force: what new runs use and the API shows.
    pub fn loaded(&self) -> Arc<Loaded> {
        self.runner.loaded()
    }

    /// Swaps in a new, already validated config and its plugins. Checks that
    /// did not change keep their schedule and health; removed checks stop;
    /// runs in flight finish on the version they started with.
    pub async fn reconfigure(
        &self,
        config: Config,
        plugins: impl Into<PluginSet>,
    ) -> Result<(), ServiceError> {
        let config = Arc::new(config);
        let new_topology = topology(&config, &self.clock);
        *lock(&self.topology) = Arc::new(new_topology.clone());
        self.writer_tx
            .send(writer::Message::Configure {
                config: config.clone(),
                topology: new_topology,
            })
            .await
            .map_err(|_| ServiceError::Stopped)?;
        self.runner
            .swap(Loaded::new(config.clone(), plugins.into()));
        self.alerts_config.send_replace(config.clone());
        let guard = lock(&self.scheduler);
        let scheduler = guard.as_ref().ok_or(ServiceError::Stopped)?;
        scheduler.set_caps(caps(&config));
        scheduler.replace_jobs(jobs(&config));
        Ok(())
    }

    /// Calls `action` of `check`'s plugin now, in the sandbox with the
    /// check's config, secrets, limits and grants.
    pub async fn act(&self, check_id: &str, action: Action) -> Result<ActionOutcome, ActionError> {
        let loaded = self.loaded();
        let check = loaded
            .config
            .check(check_id)
            .ok_or_else(|| ActionError::UnknownCheck(check_id.to_owned()))?;
        let (plugin, invocation) =
            runner::prepare(&loaded, check).map_err(|f| ActionError::Failed(f.message))?;
        // What the plugin says goes back to the API caller: masked.
        let redactor = Redactor::new(&invocation.secrets);
        let (name, result) = match &action {
            Action::Resync { asset, ids } => {
                ("resync", plugin.resync(&invocation, asset, ids).await)
            }
            Action::Delete { asset, scope } => {
                ("delete", plugin.delete(&invocation, asset, scope).await)
            }
        };
        match result {
            Ok(mut outcome) => {
                if let Some(message) = &mut outcome.message {
                    *message = report::stored_message(message, &redactor);
                }
                Ok(outcome)
            }
            Err(RunError::Unsupported(_)) => Err(ActionError::Unsupported {
                connector: check.connector.clone(),
                action: name,
            }),
            Err(other) => Err(ActionError::Failed(report::stored_message(
                &other.to_string(),
                &redactor,
            ))),
        }
    }

    /// Runs `check` once now, outside the schedule and without retries, and
    /// hands the result to the writer like any run. The run is committed
    /// when the bus publishes it.
    pub async fn run_once(&self, check: &str) -> Result<(), ActionError> {
        match self.loaded().config.check(check) {
            None => return Err(ActionError::UnknownCheck(check.to_owned())),
            Some(c) if c.push.is_some() => {
                return Err(ActionError::Unsupported {
                    connector: c.connector.clone(),
                    action: "run (it is reported to, over /push/v1)",
                });
            }
            Some(_) => {}
        }
        self.runner.execute(check, 1, Trigger::Manual).await;
        Ok(())
    }

    /// Stores a pushed report as a run of its check, through the same path
    /// as a plugin's (reconciliation, health, roll-up, events, history), and
    /// returns once it is durably stored: committed, or held in the write
    /// backlog while the database is unavailable.
    pub async fn accept_push(&self, pushed: Pushed) -> Result<(), ActionError> {
        let loaded = self.loaded();
        let check = loaded
            .config
            .check(&pushed.check)
            .filter(|c| c.push.is_some())
            .ok_or_else(|| ActionError::UnknownCheck(pushed.check.clone()))?;
        let (tell, stored) = oneshot::channel();
        let completed = writer::Completed {
            run: crate::store::RunRow {
                id: pushed.run_id,
                check_id: check.id.clone(),
                connector: check.connector.clone(),
                plugin_version: String::new(),
                trigger: crate::store::Trigger::Push,
                attempt: 1,
                started_at: pushed.at,
                finished_at: pushed.at,
                failure: None,
                assets: u32::try_from(pushed.observations.len()).unwrap_or(u32::MAX),
            },
            system: check.system.clone(),
            observations: pushed.observations,
            ids: pushed.ids,
            judge: writer::Judge::IfLatest,
            stored: Some(tell),
        };
        let stopped = || ActionError::Failed(ServiceError::Stopped.to_string());
        self.writer_tx
            .send(writer::Message::Run(Box::new(completed)))
            .await
            .map_err(|_| stopped())?;
        stored.await.map_err(|_| stopped())
    }

    /// Records lineage edges a run event named, seen `at`. Not through the
    /// writer: edges are names, not health, and every run of a job names
    /// them again, so one that fails to be written (the database away) is
    /// written with the next run.
    pub async fn record_lineage(
        &self,
        edges: &[crate::store::LineageEdge],
        at: SystemTime,
    ) -> Result<(), ServiceError> {
        self.store
            .record_lineage(edges, at)
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))
    }

    /// The push token with `sha256` was let through at `at` (written to
    /// the store later, in the background).
    pub fn note_push_token(&self, sha256: &str, at: SystemTime) {
        self.push_tokens_used.note(sha256, at);
    }

    /// When the push token with `sha256` was last let through.
    pub fn push_token_used(&self, sha256: &str) -> Option<SystemTime> {
        self.push_tokens_used.last(sha256)
    }

    /// Queues a run of `check` now.
    pub fn run_now(&self, check: &str) -> Result<RunNow, SchedulerError> {
        match lock(&self.scheduler).as_ref() {
            Some(scheduler) => scheduler.run_now(check),
            None => Err(SchedulerError::ShuttingDown),
        }
    }

    /// Mutes `entity` until `until` with `reason` (or, with `None`, lifts its
    /// mute), recorded in the audit log as done by `actor`. Health is still
    /// computed and events still written, marked muted. `Ok(false)` when the
    /// entity has no health yet.
    pub async fn mute(
        &self,
        entity: EntityRef,
        mute: Option<Mute>,
        actor: &str,
    ) -> Result<bool, ServiceError> {
        let (action, detail) = match &mute {
            Some(m) => (
                "mute",
                serde_json::json!({
                    "until_ms": crate::store::to_ms(m.until),
                    "reason": m.reason,
                }),
            ),
            None => ("unmute", serde_json::json!({})),
        };
        let audit = AuditEntry {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: crate::store::entity_key(&entity),
            detail: detail.to_string(),
        };
        let (reply, answer) = oneshot::channel();
        self.writer_tx
            .send(writer::Message::Mute {
                entity,
                mute,
                audit,
                reply,
            })
            .await
            .map_err(|_| ServiceError::Stopped)?;
        answer
            .await
            .map_err(|_| ServiceError::Stopped)?
            .map_err(ServiceError::Store)
    }

    /// Why the alert channel `name` is disabled (a receiver said its
    /// destination is gone), or `None` while it is enabled.
    pub fn channel_disabled(&self, name: &str) -> Option<String> {
        let disabled = self.disabled_channels.lock();
        disabled
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every maintenance window (the config's, then those made through the
    /// API, ended ones included).
    pub fn maintenance_windows(&self) -> Vec<Window> {
        self.coverage.borrow().windows.clone()
    }

    /// A maintenance window in force at some time in `[from, to)` that
    /// covers `entity`, among every window known (ended ones included): what
    /// a day of history is drawn as.
    pub fn maintenance_during(
        &self,
        entity: &EntityRef,
        from: SystemTime,
        to: SystemTime,
    ) -> Option<Window> {
        let coverage = self.coverage.borrow().clone();
        // Most days overlap no window: the entity's places are found only
        // for one that does.
        let mut places = None;
        coverage
            .windows
            .iter()
            .filter(|w| w.overlaps(from, to))
            .find(|w| {
                let places = places.get_or_insert_with(|| coverage.topology.places(entity));
                w.scope.covers(entity, places)
            })
            .cloned()
    }

    /// The maintenance window in force now that covers `entity`.
    pub fn maintenance_of(&self, entity: &EntityRef) -> Option<Window> {
        self.coverage
            .borrow()
            .window_of(entity, self.clock.now())
            .cloned()
    }

    /// Makes a one-off maintenance window, recorded in the audit log as done
    /// by `actor`.
    pub async fn create_window(&self, row: WindowRow, actor: &str) -> Result<(), WindowError> {
        let audit = AuditEntry {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: "create_maintenance_window".to_owned(),
            target: format!("maintenance:{}", row.name),
            detail: serde_json::json!({
                "start_ms": crate::store::to_ms(row.start),
                "end_ms": crate::store::to_ms(row.end),
                "reason": row.reason,
                "scope": {
                    "tenant": row.scope.tenant,
                    "flow": row.scope.flow,
                    "system": row.scope.system,
                    "check": row.scope.check,
                    "asset": row.scope.asset,
                },
            })
            .to_string(),
        };
        let (reply, answer) = oneshot::channel();
        self.ask(writer::Message::CreateWindow { row, audit, reply }, answer)
            .await
    }

    /// Ends a window made through the API now; entities it held back that
    /// are still not HEALTHY are announced.
    pub async fn end_window(&self, name: &str, actor: &str) -> Result<WindowRow, WindowError> {
        let audit = AuditEntry {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: "end_maintenance_window".to_owned(),
            target: format!("maintenance:{name}"),
            detail: "{}".to_owned(),
        };
        let (reply, answer) = oneshot::channel();
        let message = writer::Message::EndWindow {
            name: name.to_owned(),
            audit,
            reply,
        };
        self.ask(message, answer).await
    }

    async fn ask<T>(
        &self,
        message: writer::Message,
        answer: oneshot::Receiver<Result<T, WindowError>>,
    ) -> Result<T, WindowError> {
        self.writer_tx
            .send(message)
            .await
            .map_err(|_| WindowError::Stopped)?;
        answer.await.map_err(|_| WindowError::Stopped)?
    }

    /// Scheduler figures; all zero once stopped.
    pub fn stats(&self) -> Stats {
        lock(&self.scheduler)
            .as_ref()
            .map(Scheduler::stats)
            .unwrap_or_default()
    }

    /// The checks running now; none once stopped.
    pub fn running_checks(&self) -> Vec<Arc<str>> {
        lock(&self.scheduler)
            .as_ref()
            .map(Scheduler::running_checks)
            .unwrap_or_default()
    }

    /// Stops taking work, lets runs in flight finish for up to `grace` (then
    /// cancels them), writes everything already queued (what the database
    /// does not take is tried until `grace` has passed), and closes the store.
    /// A second call finds nothing left to stop.
    pub async fn stop(&self, grace: Duration) -> ShutdownReport {
        let Some(scheduler) = lock(&self.scheduler).take() else {
            return ShutdownReport::default();
        };
        let until = tokio::time::Instant::now() + grace;
        let report = scheduler.shutdown(grace).await;
        self.pruner.abort();
        // A message being sent is sent again after a restart, same id.
        if let Some(dispatcher) = &self.dispatcher {
            dispatcher.abort();
        }
        // No run can send any more; the writer drains what is queued before
        // this message, tries what the database has not taken yet until the
        // grace period ends, then ends.
        let _ = self.writer_tx.send(writer::Message::Stop { until }).await;
        let writer = lock(&self.writer).take();
        if let Some(writer) = writer
            && let Err(err) = writer.await
        {
            tracing::error!(error = %err, "the writer task failed");
        }
        self.push_tokens_writer.abort();
        self.push_tokens_used.write(&self.store).await;
        self.store.close().await;
        // The scheduler has logged what finished and what was cancelled.
        tracing::info!("daemon stopped");
        report
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The scheduler's view of the checks. An attempt gets a backstop deadline a
/// little past the check's own timeout, which the plugin host enforces.
fn jobs(config: &Config) -> Vec<Job> {
    config
        .checks
        .iter()
        // Push checks are reported to, never run.
        .filter(|c| c.push.is_none())
        .map(|c| Job {
            id: c.id.clone(),
            connector: c.connector.clone(),
            schedule: c.schedule.clone(),
            jitter: config.scheduler.jitter,
            deadline: Some(c.limits.deadline + Duration::from_secs(5)),
        })
        .collect()
}

fn caps(config: &Config) -> Caps {
    Caps {
        global: config.scheduler.max_concurrent_runs,
        per_connector: config.scheduler.per_connector.clone(),
    }
}

/// Who rolls up into whom, and each check's rules and typical interval.
fn topology(config: &Config, clock: &SharedClock) -> Topology {
    let checks = config
        .checks
        .iter()
        .map(|c| CheckPlace {
            id: c.id.clone(),
            system: c.system.clone(),
            rules: c.rules.clone(),
            expect: match &c.push {
                Some(push) => Expect::Reports(Deadlines {
                    check: push.expect,
                    assets: push.deadlines.clone(),
                }),
                None => Expect::Runs(interval(&c.schedule, clock)),
            },
        })
        .collect();
    let flows = config
        .flows
        .iter()
        .map(|f| FlowPlace {
            id: f.id.clone(),
            tenant: f.tenant.clone(),
            systems: std::iter::once(f.upstream.clone())
                .chain(f.downstream.iter().cloned())
                .collect(),
        })
        .collect();
    Topology::new(config.tenants.iter().map(|t| t.id.clone()), checks, flows)
}

/// The time between runs; for cron, the gap between its next two occurrences
/// (a day when it has none).
fn interval(schedule: &Schedule, clock: &SharedClock) -> Duration {
    match schedule {
        Schedule::Every(d) => *d,
        Schedule::Cron(c) => {
            let now = chrono::DateTime::<Utc>::from(clock.now());
            next_cron_occurrence(&c.cron, now)
                .and_then(|a| next_cron_occurrence(&c.cron, a).map(|b| b - a))
                .and_then(|gap| gap.to_std().ok())
                .unwrap_or(Duration::from_secs(86_400))
        }
    }
}

/// Prunes old data every [`PRUNE_EVERY`] by the config in force: raw data
/// and rollups by their retention, SLO slices once older than the longest
/// SLO window.
async fn prune(store: Store, config: watch::Receiver<Arc<Config>>, clock: SharedClock) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        let config = config.borrow().clone();
        let now = clock.now();
        if let Some(before) = crate::slo::keep_slices_from(&config.slos, to_ms(now)) {
            match store.prune_slices(before).await {
                Ok(n) if n > 0 => tracing::info!(slices = n, "pruned old SLO slices"),
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "pruning old SLO slices failed"),
            }
        }
        match store.prune(config.storage.retention, now).await {
            Ok(p) if p.runs + p.rollups > 0 => {
                tracing::info!(runs = p.runs, rollups = p.rollups, "pruned old data")
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "pruning old data failed"),
        }
    }
}

//! The dispatcher: the service's task that turns committed health events
//! into delivered messages, at least once, in three steps each pass:
//!
//! 1. **route**: take events from the outbox (written with each event, in
//!    its transaction), match them to routes, fold them into their groups,
//!    and remove them from the outbox in the same transaction that stores
//!    the groups: an event is routed exactly once, even across a crash;
//! 2. **group**: for each group whose message is due, make the message (one
//!    per channel, each with an id it keeps on every attempt) and store it
//!    with the group's new state, in one transaction;
//! 3. **deliver**: send due messages, a group's in order, with one shared
//!    HTTP client (no redirects, a timeout), each channel's rate, and
//!    retries on the Standard Webhooks schedule with jitter until the
//!    give-up age. `Retry-After` holds the whole channel; a receiver saying
//!    the destination is gone (410) disables the channel until its
//!    definition changes (a reload) or an operator enables it, its messages
//!    kept pending meanwhile. The disabling is stored: a restart keeps it.
//!
//! [`probe`] is one attempt outside all this (`testAlertChannel`): the same
//! request building and sending, nothing stored, the receiver's answer kept.
//!
//! A message marked delivered was taken by the receiver; one sent but not
//! marked (a crash in between) is sent again under the same id, so
//! receivers dedup on it. The database is the only state that matters: an
//! outage makes ticks fail and retry, and nothing is lost.
//!
//! **When it works.** It does not poll. A pass runs when the writer
//! publishes a health event on the bus (the event's outbox row committed
//! with it), when the dispatcher's own next due time comes (the earliest
//! group message or delivery due, as the tables say after each pass), when
//! the config changes or something nudges it ([`Nudge`], e.g. a retry asked
//! through the API), and at the latest every `poll_interval` (10 s): the
//! safety net for what another process (`tributary run`) or a crash left.
//! An idle daemon with alerts configured issues no statement in between.
//! A pass that leaves work due at once (a full batch) is followed by
//! another at once. With no route configured, events only leave the
//! outbox (one read, one delete per 2,000): the outbox is still written in
//! each event's transaction, so a route added later sees only what comes
//! after it, never a backlog.
//!
//! It must not judge health nor change events.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use super::email::{self, Mailer};
use super::grouping::{Disposition, Group, disposition};
use super::message::{Message, Outcome};
use super::routes::{self, Places};
use super::{pagerduty, slack, webhook};
use crate::clock::SharedClock;
use crate::config::{AlertChannel, AlertRoute, ChannelKind, Config};
use crate::events::{Received, Subscription};
use crate::health::EntityRef;
use crate::metrics::Metrics;
use crate::store::{
    AlertGroupRow, DeliveryRow, DeliveryStatus, DeliveryUpdate, DisabledChannelRow, HealthEvent,
    NewDelivery, Store, StoreError, from_ms, to_ms,
};

/// Events routed per transaction.
const ROUTE_BATCH: i64 = 2_000;
/// Groups flushed per tick.
const FLUSH_BATCH: i64 = 500;
/// Deliveries tried per tick.
const SEND_BATCH: i64 = 500;
/// Requests in flight at once, across channels without a rate.
const CONCURRENCY: usize = 32;
/// The most of a receiver's answer read (enough for any status word).
const MAX_ANSWER: usize = 64 * 1024;
/// The wait after a pass that failed (the database away): soon, not busy.
const AFTER_ERROR: Duration = Duration::from_secs(1);
/// The least wait after a pass that did nothing: whatever the tables say is
/// due, the loop never spins.
const IDLE_FLOOR: Duration = Duration::from_millis(50);

/// Wakes the dispatcher for a pass now (e.g. a delivery retried by hand).
pub type Nudge = Arc<Notify>;

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored alert state is not readable: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The channels a receiver disabled, each with the reason it gave. The
/// dispatcher sets an entry (a `Disable` outcome, or the store's record at
/// start) and clears it when the definition changes; the service clears it
/// when an operator enables the channel; the API reads it.
pub type DisabledChannels = Arc<Mutex<HashMap<String, String>>>;

/// The channels of `config` the store says a receiver disabled under their
/// present definition: what the API shows from the start, before the
/// dispatcher's first round.
pub async fn stored_disabled(
    store: &Store,
    config: &Config,
) -> Result<DisabledChannels, StoreError> {
    let rows = store.alert_disabled_channels().await?;
    let disabled = (rows.into_iter())
        .filter(|r| {
            (config.alerts.channel(&r.channel)).is_some_and(|c| fingerprint(c) == r.fingerprint)
        })
        .map(|r| (r.channel, r.reason))
        .collect();
    Ok(Arc::new(Mutex::new(disabled)))
}

/// A channel as the dispatcher holds it between ticks.
struct ChannelState {
    definition: AlertChannel,
    /// No request before this (ms): `Retry-After`, and the rate.
    free_at: i64,
    mailer: Option<Mailer>,
}

pub struct Dispatcher {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    timeout: Duration,
    channels: HashMap<String, ChannelState>,
    places: Option<(Arc<Config>, Places)>,
    disabled: DisabledChannels,
    /// Health events published: each wakes a pass. `None` once the bus is
    /// gone.
    events: Option<Subscription<HealthEvent>>,
    nudge: Nudge,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap_or_default()
}

impl Dispatcher {
    pub fn new(
        store: Store,
        config: watch::Receiver<Arc<Config>>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
        disabled: DisabledChannels,
        events: Subscription<HealthEvent>,
        nudge: Nudge,
    ) -> Self {
        let timeout = config.borrow().alerts.delivery.timeout;
        Self {
            store,
            config,
            clock,
            metrics,
            client: client(timeout),
            timeout,
            channels: HashMap::new(),
            places: None,
            disabled,
            events: Some(events),
            nudge,
        }
    }

    /// Runs passes, each when woken (see the module doc), until the task is
    /// aborted.
    pub async fn run(mut self) {
        let mut config_open = true;
        loop {
            let wait = match self.pass().await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::warn!(error = %err, "alert dispatch failed; trying again");
                    AFTER_ERROR
                }
            };
            let poll = self.config.borrow().alerts.delivery.poll_interval;
            let wait = wait.min(poll);
            if wait.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            let events = &mut self.events;
            let config = &mut self.config;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.nudge.notified() => {}
                changed = config.changed(), if config_open => config_open = changed.is_ok(),
                received = next_event(events) => match received {
                    // The rest of a burst is read from the outbox anyway.
                    Received::Message(_) | Received::Lagged(_) => {
                        if let Some(events) = events {
                            events.skip_buffered();
                        }
                    }
                    Received::Closed => *events = None,
                },
            }
        }
    }

    /// One pass, then how long until the next is due: zero when a batch was
    /// full, the time to the earliest due group or delivery otherwise.
    async fn pass(&mut self) -> Result<Duration, DispatchError> {
        let done = self.tick().await?;
        if done.full {
            return Ok(Duration::ZERO);
        }
        let due = self.store.alert_next_due().await?;
        // A disabled channel's messages wait for its definition to change
        // (a config change wakes a pass); the others for their time and
        // their channel's hold.
        let disabled: HashSet<String> = self.disabled().keys().cloned().collect();
        let deliveries = (due.deliveries.iter())
            .filter(|(name, _)| !disabled.contains(*name))
            .map(|(name, at)| match self.channels.get(name) {
                Some(channel) => (*at).max(channel.free_at),
                None => *at,
            });
        let Some(next) = due.flush_at.into_iter().chain(deliveries).min() else {
            return Ok(Duration::MAX);
        };
        let wait = Duration::from_millis(u64::try_from(next - self.now()).unwrap_or(0));
        Ok(if done.work == 0 {
            wait.max(IDLE_FLOOR)
        } else {
            wait
        })
    }

    fn now(&self) -> i64 {
        to_ms(self.clock.now())
    }

    fn disabled(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.disabled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One round of routing, grouping and delivering.
    pub async fn tick(&mut self) -> Result<Done, DispatchError> {
        let config = self.config.borrow_and_update().clone();
        self.sync(&config).await?;
        let mut work = 0;
        loop {
            let routed = self.route(&config).await?;
            work += routed;
            if routed < ROUTE_BATCH as usize {
                break;
            }
        }
        let flushed = self.flush(&config).await?;
        let sent = self.deliver(&config).await?;
        let backlog = self.store.alert_backlog().await?;
        let oldest = backlog
            .oldest
            .map_or(0, |t| (self.now() - t).max(0) / 1_000);
        self.metrics
            .alert_backlog(backlog.pending + backlog.outbox, oldest);
        Ok(Done {
            work: work + flushed + sent,
            full: flushed == FLUSH_BATCH as usize || sent == SEND_BATCH as usize,
        })
    }

    /// Takes in a changed config: channels whose definition changed start
    /// afresh, enabled (a stored disabling of the old definition is
    /// forgotten); new ones, as at start, are disabled if the store says a
    /// receiver disabled this very definition; removed ones go.
    async fn sync(&mut self, config: &Arc<Config>) -> Result<(), DispatchError> {
        let delivery = &config.alerts.delivery;
        if delivery.timeout != self.timeout {
            self.timeout = delivery.timeout;
            self.client = client(delivery.timeout);
        }
        self.channels
            .retain(|name, _| config.alerts.channel(name).is_some());
        self.disabled()
            .retain(|name, _| config.alerts.channel(name).is_some());
        let mut stored: Option<Vec<DisabledChannelRow>> = None;
        for channel in &config.alerts.channels {
            let same = self
                .channels
                .get(&channel.name)
                .is_some_and(|s| s.definition == *channel);
            if same {
                continue;
            }
            if stored.is_none() {
                stored = Some(self.store.alert_disabled_channels().await?);
            }
            let kept = (stored.iter().flatten()).find(|r| r.channel == channel.name);
            match kept {
                Some(row) if row.fingerprint == fingerprint(channel) => {
                    self.disabled()
                        .insert(channel.name.clone(), row.reason.clone());
                }
                Some(_) => {
                    tracing::info!(channel = %channel.name, "alert channel changed: enabled again");
                    self.store.alert_enable_channel(&channel.name).await?;
                    self.disabled().remove(&channel.name);
                }
                None => {
                    self.disabled().remove(&channel.name);
                }
            }
            let mailer = match &channel.kind {
                ChannelKind::Email(settings) => match Mailer::new(&email::settings(settings)) {
                    Ok(mailer) => Some(mailer),
                    Err(err) => {
                        tracing::warn!(channel = %channel.name, error = %err, "email channel not usable");
                        None
                    }
                },
                _ => None,
            };
            self.channels.insert(
                channel.name.clone(),
                ChannelState {
                    definition: channel.clone(),
                    free_at: 0,
                    mailer,
                },
            );
        }
        let fresh = self
            .places
            .as_ref()
            .is_some_and(|(c, _)| Arc::ptr_eq(c, config));
        if !fresh {
            self.places = Some((config.clone(), Places::new(config)));
        }
        Ok(())
    }

    /// Routes one batch of outbox events: every group they touch read in
    /// one statement, all written in one transaction. How many were taken.
    async fn route(&mut self, config: &Config) -> Result<usize, DispatchError> {
        let seqs = self.store.alert_outbox_seqs(ROUTE_BATCH).await?;
        let Some(&first) = seqs.first() else {
            return Ok(0);
        };
        if config.alerts.routes.is_empty() {
            // Nowhere to go: the events only leave the outbox.
            self.store.alert_commit(&[], &[], &seqs).await?;
            return Ok(seqs.len());
        }
        let wanted: HashSet<i64> = seqs.iter().copied().collect();
        let limit = u32::try_from(ROUTE_BATCH).unwrap_or(u32::MAX);
        let events: Vec<_> = self
            .store
            .events_after(first - 1, limit)
            .await?
            .into_iter()
            .filter(|e| wanted.contains(&e.seq))
            .collect();
        let now = self.now();
        let places = &self.places.as_ref().expect("synced before routing").1;
        // First what each event does to which group, then those groups read
        // at once, then the effects applied in event order.
        let mut effects: Vec<(&AlertRoute, String, Effect)> = Vec::new();
        for event in &events {
            let here = places.of(&event.entity);
            for route in &config.alerts.routes {
                let Some(place) = routes::matching(route, &event.entity, &here) else {
                    continue;
                };
                match disposition(event, route.min_status) {
                    Disposition::Notify => {
                        let key = routes::group_key(route, place);
                        effects.push((route, key, Effect::Apply(event, place.clone())));
                    }
                    Disposition::Suppressed(upstream) => {
                        self.metrics.alert_suppressed("dependency");
                        let up_places = places.of(&upstream);
                        let Some(up) = routes::matching(route, &upstream, &up_places) else {
                            continue;
                        };
                        let Some(step) = place.path.last().cloned() else {
                            continue;
                        };
                        let key = routes::group_key(route, up);
                        effects.push((route, key, Effect::Fold(upstream, step)));
                    }
                    quiet => {
                        if let Some(reason) = quiet.reason() {
                            self.metrics.alert_suppressed(reason);
                        }
                    }
                }
            }
        }
        let keys: Vec<(String, String)> = (effects.iter())
            .map(|(route, key, _)| (route.name.clone(), key.clone()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut groups: HashMap<(String, String), Group> = HashMap::with_capacity(keys.len());
        for (id, state) in self.store.alert_groups(&keys).await? {
            groups.insert(id, serde_json::from_str(&state)?);
        }
        for (route, key, effect) in effects {
            let group = groups.entry((route.name.clone(), key)).or_default();
            match effect {
                Effect::Apply(event, place) => group.apply(route, event, &place, now),
                Effect::Fold(upstream, step) => {
                    group.fold(&upstream, step);
                }
            }
        }
        let rows: Vec<AlertGroupRow> = groups
            .into_iter()
            .map(|((route, group_key), group)| {
                let route_config = config.alerts.routes.iter().find(|r| r.name == route);
                row(route, group_key, &group, route_config)
            })
            .collect::<Result<_, _>>()?;
        self.store.alert_commit(&rows, &[], &seqs).await?;
        Ok(seqs.len())
    }

    /// Makes the messages of the groups due now, stored in one transaction
    /// with the groups' new states. How many groups were due.
    async fn flush(&mut self, config: &Config) -> Result<usize, DispatchError> {
        let now = self.now();
        let mut rows: Vec<AlertGroupRow> = Vec::new();
        let mut deliveries = Vec::new();
        let due = self.store.alert_due_groups(now, FLUSH_BATCH).await?;
        let count = due.len();
        for stored in due {
            let route = config.alerts.routes.iter().find(|r| r.name == stored.route);
            let mut group: Group = match (&stored.state, route) {
                (Some(state), Some(_)) => serde_json::from_str(state)?,
                // The route was removed: its groups go with it.
                _ => Group::default(),
            };
            if let Some(route) = route
                && let Some((state, alerts, truncated)) =
                    group.flush(route, config.alerts.link_base.as_deref(), now)
            {
                for channel in &route.channels {
                    let message = Message {
                        id: new_id(),
                        state,
                        group_key: stored.group_key.clone(),
                        route: route.name.clone(),
                        alerts: alerts.clone(),
                        truncated,
                        at: from_ms(now),
                    };
                    deliveries.push(NewDelivery {
                        id: message.id.clone(),
                        channel: channel.clone(),
                        route: route.name.clone(),
                        group_key: stored.group_key.clone(),
                        message: serde_json::to_string(&message)?,
                        created_at: now,
                        entities: message.entity_keys(),
                        tenant: message.tenant(),
                    });
                }
            }
            rows.push(row(stored.route, stored.group_key, &group, route)?);
        }
        if !rows.is_empty() {
            self.store.alert_commit(&rows, &deliveries, &[]).await?;
        }
        Ok(count)
    }

    /// Sends the messages due now: a channel without a rate takes them
    /// [`CONCURRENCY`] at a time, a rate-limited one one per pass; what
    /// became of them is stored in one transaction. How many were due.
    async fn deliver(&mut self, config: &Config) -> Result<usize, DispatchError> {
        let now = self.now();
        let delivery = &config.alerts.delivery;
        let mut updates: Vec<(i64, DeliveryUpdate)> = Vec::new();
        let mut sends: Vec<(DeliveryRow, Message)> = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        let mut put_off: HashMap<i64, Vec<i64>> = HashMap::new();
        let due = self.store.alert_due_deliveries(now, SEND_BATCH).await?;
        let count = due.len();
        for due in due {
            let Some(channel) = self.channels.get(&due.channel) else {
                let update = DeliveryUpdate::Failed {
                    status: DeliveryStatus::Dropped,
                    error: "the channel is no longer configured".into(),
                };
                updates.push((due.n, update));
                continue;
            };
            if self.disabled().contains_key(&due.channel) {
                continue;
            }
            let rated = !channel.definition.min_interval.is_zero();
            if channel.free_at > now || (rated && taken.contains(&due.channel)) {
                let at = channel
                    .free_at
                    .max(now + ms(channel.definition.min_interval));
                put_off.entry(at).or_default().push(due.n);
                continue;
            }
            taken.insert(due.channel.clone());
            let message: Message = serde_json::from_str(&due.message)?;
            sends.push((due, message));
        }
        for (at, ns) in put_off {
            self.store.alert_put_off(&ns, at).await?;
        }
        let client = &self.client;
        let channels = &self.channels;
        let at = self.clock.now();
        let outcomes: Vec<(DeliveryRow, Outcome)> = futures_util::stream::iter(sends)
            .map(|(due, message)| async move {
                let outcome = match channels.get(&due.channel) {
                    Some(channel) => {
                        let mailer = channel.mailer.as_ref();
                        let answers = &mut Vec::new();
                        send(client, &channel.definition, mailer, &message, at, answers).await
                    }
                    None => Outcome::Retry {
                        after: None,
                        reason: "the channel went away".into(),
                    },
                };
                (due, outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let now = self.now();
        let mut disabling: Vec<DisabledChannelRow> = Vec::new();
        for (due, outcome) in outcomes {
            let Some(channel) = self.channels.get_mut(&due.channel) else {
                continue;
            };
            channel.free_at = channel
                .free_at
                .max(now.saturating_add(ms(channel.definition.min_interval)));
            let (update, label) = match outcome {
                Outcome::Delivered => (DeliveryUpdate::Delivered, "delivered"),
                Outcome::Retry { after, reason } => {
                    if let Some(after) = after {
                        channel.free_at = channel.free_at.max(now.saturating_add(ms(after)));
                    }
                    if now - due.created_at >= ms(delivery.give_up_after) {
                        tracing::warn!(channel = %due.channel, id = %due.id, %reason, "alert given up");
                        let error =
                            format!("given up after {} attempts: {reason}", due.attempts + 1);
                        (
                            DeliveryUpdate::Failed {
                                status: DeliveryStatus::GaveUp,
                                error,
                            },
                            "gave_up",
                        )
                    } else {
                        let wait =
                            after.map_or_else(|| backoff(&delivery.retry_schedule, &due), ms);
                        let next_at = now.saturating_add(wait);
                        (
                            DeliveryUpdate::Retry {
                                next_at,
                                error: reason,
                            },
                            "retry",
                        )
                    }
                }
                Outcome::Reject { reason } => {
                    tracing::warn!(channel = %due.channel, id = %due.id, %reason, "alert refused by the receiver");
                    (
                        DeliveryUpdate::Failed {
                            status: DeliveryStatus::Rejected,
                            error: reason,
                        },
                        "rejected",
                    )
                }
                Outcome::Disable { reason } => {
                    tracing::error!(channel = %due.channel, %reason, "alert channel disabled until its definition changes or an operator enables it");
                    disabling.push(DisabledChannelRow {
                        channel: due.channel.clone(),
                        fingerprint: fingerprint(&channel.definition),
                        reason: reason.clone(),
                    });
                    (
                        DeliveryUpdate::Retry {
                            next_at: now,
                            error: reason,
                        },
                        "disabled",
                    )
                }
            };
            self.metrics.alert_delivery(&due.channel, label);
            updates.push((due.n, update));
        }
        // Stored before the API shows it, so what it shows survives a restart.
        for row in disabling {
            self.store.alert_disable_channel(&row, now).await?;
            self.disabled().insert(row.channel, row.reason);
        }
        if !updates.is_empty() {
            self.store.alert_attempted(&updates, now).await?;
        }
        Ok(count)
    }
}

/// What a pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// Events routed, groups due and deliveries due.
    pub work: usize,
    /// Whether a batch was full: more is due at once.
    pub full: bool,
}

/// What an event does to a group of a route.
enum Effect<'e> {
    /// Its entity's change, at its place.
    Apply(&'e HealthEvent, routes::Place),
    /// Listed under its failing upstream's alert.
    Fold(EntityRef, super::message::Step),
}

/// The next event published, or never once the bus is gone.
async fn next_event(events: &mut Option<Subscription<HealthEvent>>) -> Received<Arc<HealthEvent>> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// The stored form of `group`: deleted when empty.
fn row(
    route: String,
    group_key: String,
    group: &Group,
    config: Option<&AlertRoute>,
) -> Result<AlertGroupRow, serde_json::Error> {
    let keep = config.is_some() && !group.is_empty();
    Ok(AlertGroupRow {
        route,
        group_key,
        state: keep.then(|| serde_json::to_string(group)).transpose()?,
        flush_at: config.filter(|_| keep).and_then(|r| group.due(r)),
    })
}

/// A message id: `msg_` and 128 random bits, no `.` (Standard Webhooks).
fn new_id() -> String {
    format!("msg_{:032x}", rand::random::<u128>())
}

/// The wait before attempt `attempts + 2`: the schedule's step (its last
/// repeating), jittered by ±20% so receivers coming back are not stormed.
fn backoff(schedule: &[Duration], due: &DeliveryRow) -> i64 {
    let step = usize::try_from(due.attempts).unwrap_or(usize::MAX);
    let base = schedule
        .get(step)
        .or(schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(5));
    let factor = 0.8 + 0.4 * rand::random::<f64>();
    ms(base.mul_f64(factor))
}

/// What a receiver answered one request, as `testAlertChannel` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Its HTTP status and the first bytes of its body.
    Http { status: u16, body: Vec<u8> },
    /// No answer: the connection failed or timed out (the error, never the
    /// URL).
    None(String),
}

/// One [`probe`]: what became of it, and what the receiver said to each
/// request (several for PagerDuty, none for email).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub outcome: Outcome,
    pub answers: Vec<Answer>,
    pub latency: Duration,
}

/// Sends `messages` on `channel` in order, stopping at the first not
/// delivered, with a client of the dispatcher's settings: a test
/// (`testAlertChannel`). Nothing is stored and the channel's state (rate,
/// disabled) is neither read nor changed.
pub async fn probe(
    channel: &AlertChannel,
    timeout: Duration,
    messages: &[Message],
    now: std::time::SystemTime,
) -> Probe {
    let client = client(timeout);
    let mailer = match &channel.kind {
        ChannelKind::Email(settings) => Mailer::new(&email::settings(settings)).ok(),
        _ => None,
    };
    let started = Instant::now();
    let mut answers = Vec::new();
    let mut outcome = Outcome::Delivered;
    for message in messages {
        outcome = send(
            &client,
            channel,
            mailer.as_ref(),
            message,
            now,
            &mut answers,
        )
        .await;
        if outcome != Outcome::Delivered {
            break;
        }
    }
    Probe {
        outcome,
        answers,
        latency: started.elapsed(),
    }
}

/// What `channel`'s stored disabling is tied to: a SHA-256 of its whole
/// definition, secrets included, so that any change (a new URL, a rotated
/// secret) enables it again. A digest, never a secret itself.
fn fingerprint(channel: &AlertChannel) -> String {
    let mut hash = Sha256::new();
    // Debug shows everything but the secrets' values, which follow.
    hash.update(format!("{channel:?}"));
    for secret in secrets_of(channel) {
        hash.update([0]);
        hash.update(secret);
    }
    hex::encode(hash.finalize())
}

/// The secret values of `channel` (signing secrets, a Slack URL, a routing
/// key, an SMTP password): what must never be shown.
pub fn secrets_of(channel: &AlertChannel) -> Vec<String> {
    let secrets: Vec<&crate::config::Secret> = match &channel.kind {
        ChannelKind::Webhook { secrets, .. } => secrets.iter().collect(),
        ChannelKind::Slack { webhook_url } => vec![webhook_url],
        ChannelKind::PagerDuty { routing_key, .. } => vec![routing_key],
        ChannelKind::Email(email) => email.password.iter().collect(),
    };
    secrets.into_iter().map(|s| s.expose().to_owned()).collect()
}

/// One attempt at `message` on `channel`, each HTTP exchange's answer
/// added to `answers`.
async fn send(
    client: &reqwest::Client,
    channel: &AlertChannel,
    mailer: Option<&Mailer>,
    message: &Message,
    now: std::time::SystemTime,
    answers: &mut Vec<Answer>,
) -> Outcome {
    match &channel.kind {
        ChannelKind::Webhook { url, secrets } => {
            let Ok(uri) = url.parse::<http::Uri>() else {
                return Outcome::Reject {
                    reason: "url is not a URL".into(),
                };
            };
            let keys: Vec<webhook::SigningKey> = secrets
                .iter()
                .filter_map(|s| webhook::SigningKey::new(s.expose()).ok())
                .collect();
            let request = webhook::request(&uri, &keys, message, now);
            match exchange(client, request, answers).await {
                Ok((status, headers, _)) => webhook::classify(status, &headers, now),
                Err(outcome) => outcome,
            }
        }
        ChannelKind::Slack { webhook_url } => {
            let Ok(settings) = slack::SlackSettings::new(webhook_url.expose()) else {
                return Outcome::Reject {
                    reason: "webhook_url is not a URL".into(),
                };
            };
            match exchange(client, slack::request(&settings, message), answers).await {
                Ok((status, headers, body)) => slack::classify(status, &headers, &body, now),
                Err(outcome) => outcome,
            }
        }
        ChannelKind::PagerDuty { routing_key, url } => {
            let Ok(settings) =
                pagerduty::PagerDutySettings::new(routing_key.expose(), url.as_deref())
            else {
                return Outcome::Reject {
                    reason: "routing_key or url refused".into(),
                };
            };
            for request in pagerduty::requests(&settings, message) {
                let outcome = match exchange(client, request, answers).await {
                    Ok((status, headers, body)) => {
                        pagerduty::classify(status, &headers, &body, now)
                    }
                    Err(outcome) => outcome,
                };
                if outcome != Outcome::Delivered {
                    return outcome;
                }
            }
            Outcome::Delivered
        }
        ChannelKind::Email(_) => match mailer {
            Some(mailer) => mailer.send(message).await,
            None => Outcome::Reject {
                reason: "the email channel's settings are not usable".into(),
            },
        },
    }
}

/// Sends `request`; the answer's status, headers and first bytes (also
/// added to `answers`), or the outcome of getting none. Errors never show
/// the URL (a Slack URL is a secret).
async fn exchange(
    client: &reqwest::Client,
    request: http::Request<Vec<u8>>,
    answers: &mut Vec<Answer>,
) -> Result<(http::StatusCode, http::HeaderMap, Vec<u8>), Outcome> {
    let mut no_answer = |err: reqwest::Error| {
        let reason = format!("no answer: {}", err.without_url());
        answers.push(Answer::None(reason.clone()));
        Outcome::Retry {
            after: None,
            reason,
        }
    };
    let request = match reqwest::Request::try_from(request) {
        Ok(request) => request,
        Err(err) => return Err(no_answer(err)),
    };
    let mut response = match client.execute(request).await {
        Ok(response) => response,
        Err(err) => return Err(no_answer(err)),
    };
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    answers.push(Answer::Http {
        status: status.as_u16(),
        body: body.clone(),
    });
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, SecretSource};

    fn hook(url: &str, secret: &str) -> AlertChannel {
        AlertChannel {
            name: "hook".into(),
            kind: ChannelKind::Webhook {
                url: url.into(),
                secrets: vec![Secret::new(SecretSource::Env("S".into()), secret.into())],
            },
            min_interval: Duration::ZERO,
        }
    }

    /// A stored disabling holds for the very definition it was made under:
    /// a new URL or a rotated secret enables the channel again.
    #[test]
    fn a_channel_fingerprint_changes_with_its_url_and_its_secret() {
        let a = fingerprint(&hook("http://127.0.0.1/a", "whsec_one"));
        assert_eq!(a, fingerprint(&hook("http://127.0.0.1/a", "whsec_one")));
        assert_ne!(a, fingerprint(&hook("http://127.0.0.1/b", "whsec_one")));
        assert_ne!(a, fingerprint(&hook("http://127.0.0.1/a", "whsec_two")));
        assert_eq!(a.len(), 64, "a hex SHA-256");
    }
}

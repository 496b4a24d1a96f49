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
//! 3. **deliver**: record what became of the sends that came back, then
//!    hand due messages to sends of their own, a group's in order, with one
//!    shared HTTP client (no redirects), a timeout, each channel's rate, and
//!    retries on the Standard Webhooks schedule with jitter until the
//!    give-up age. `Retry-After` holds the whole channel; a receiver saying
//!    the destination is gone (410) disables the channel until its
//!    definition changes (a reload) or an operator enables it, its messages
//!    kept pending meanwhile. The disabling is stored: a restart keeps it.
//!
//! **Sends in flight.** A pass never waits for a receiver: each message
//! goes out in a task of its own and the pass ends; what became of it comes
//! back later and wakes a pass, which records it with whatever else came
//! back (one transaction, as before). So a receiver that hangs or trickles
//! its answer holds only its own channel, for at most the delivery timeout
//! (a deadline on the whole exchange, body included, of which at most
//! [`MAX_ANSWER`] bytes are read): the other channels' messages, and the
//! routing and grouping steps, go on meanwhile. A channel has at most
//! [`PER_CHANNEL`] sends in flight (one if it has a rate), and all channels
//! together at most [`IN_FLIGHT`]: a channel at its bound, and every
//! message in flight, is left out of the due queries (and out of the next
//! due time: its sends coming back wake the pass), so nothing is sent twice
//! at once and a busy channel's backlog never crowds out the others'. A
//! message in flight stays pending in the store: a crash mid-send sends it
//! again, under the same id. A send in flight when a reload changes or
//! removes its channel ends under the definition it started with; its
//! outcome is recorded for its message, but a 410 or `Retry-After` from
//! the old definition does not touch the new one.
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
//! another at once; sends coming back wake one (those coming back within
//! [`GATHER`] of the first recorded together). With no route configured,
//! events only leave the outbox (one read, one delete per 2,000): the
//! outbox is still written in each event's transaction, so a route added
//! later sees only what comes after it, never a backlog.
//!
//! It must not judge health nor change events.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use tokio::sync::{Notify, watch};
use tokio::task::{Id, JoinSet};

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
    NewDelivery, NotNow, Store, StoreError, from_ms, to_ms,
};

/// Events routed per transaction.
const ROUTE_BATCH: i64 = 2_000;
/// Groups flushed per tick.
const FLUSH_BATCH: i64 = 500;
/// Deliveries read per tick, at most (fewer when fewer sends can start).
const SEND_BATCH: i64 = 500;
/// Sends in flight at once on one channel without a rate (one with a rate:
/// one).
const PER_CHANNEL: usize = 32;
/// Sends in flight at once over all channels: what hanging receivers can
/// hold of the daemon (a task, a connection and a message each).
const IN_FLIGHT: usize = 256;
/// How long a pass woken by a send coming back waits for the others in
/// flight to come back too, so their outcomes are recorded in one
/// transaction rather than one each.
const GATHER: Duration = Duration::from_millis(10);
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
    /// Shared with its sends in flight, which outlive a reload.
    definition: Arc<AlertChannel>,
    /// No request before this (ms): `Retry-After`, and the rate.
    free_at: i64,
    mailer: Option<Arc<Mailer>>,
    /// Its sends in flight.
    sending: usize,
}

impl ChannelState {
    /// The most sends it may have in flight.
    fn most(&self) -> usize {
        if self.definition.min_interval.is_zero() {
            PER_CHANNEL
        } else {
            1
        }
    }

    /// Whether it may have no more sends in flight now.
    fn busy(&self) -> bool {
        self.sending >= self.most()
    }
}

/// A message handed to a send of its own, until its outcome comes back.
struct InFlight {
    due: DeliveryRow,
    /// The definition it was sent under: its outcome touches the channel's
    /// state only if that is still the channel's.
    definition: Arc<AlertChannel>,
}

pub struct Dispatcher {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    channels: HashMap<String, ChannelState>,
    places: Option<(Arc<Config>, Places)>,
    disabled: DisabledChannels,
    /// Health events published: each wakes a pass. `None` once the bus is
    /// gone.
    events: Option<Subscription<HealthEvent>>,
    nudge: Nudge,
    /// The sends in flight (dropped with the dispatcher, which aborts
    /// them), each with its message.
    sends: JoinSet<Outcome>,
    in_flight: HashMap<Id, InFlight>,
    /// Sends that came back, not yet recorded.
    returned: Vec<(InFlight, Outcome)>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The client every attempt goes through; it has no timeout of its own:
/// [`within`] is the one deadline, on the whole attempt.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
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
        Self {
            store,
            config,
            clock,
            metrics,
            client: client(),
            channels: HashMap::new(),
            places: None,
            disabled,
            events: Some(events),
            nudge,
            sends: JoinSet::new(),
            in_flight: HashMap::new(),
            returned: Vec::new(),
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
            let sends = &mut self.sends;
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                Some(first) = sends.join_next_with_id(), if !sends.is_empty() => {
                    self.came_back(first);
                    self.gather().await;
                }
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

    /// Takes a send that came back (a panicked one is tried again).
    fn came_back(&mut self, joined: Result<(Id, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match joined {
            Ok(done) => done,
            Err(err) => (err.id(), retry("the send failed".into())),
        };
        if let Some(sent) = self.in_flight.remove(&id) {
            self.returned.push((sent, outcome));
        }
    }

    /// Waits up to [`GATHER`] for the other sends in flight to come back,
    /// taking each.
    async fn gather(&mut self) {
        let window = tokio::time::sleep(GATHER);
        tokio::pin!(window);
        while !self.sends.is_empty() {
            tokio::select! {
                () = &mut window => break,
                Some(joined) = self.sends.join_next_with_id() => self.came_back(joined),
            }
        }
    }

    /// The channels and messages the due queries leave out now: disabled
    /// channels, channels with all the sends in flight they may have, and
    /// the messages in flight.
    fn not_now(&self) -> NotNow {
        let mut channels: Vec<String> = self.disabled().keys().cloned().collect();
        channels.extend(
            (self.channels.iter())
                .filter(|(_, c)| c.busy())
                .map(|(name, _)| name.clone()),
        );
        NotNow {
            channels,
            ns: self.in_flight.values().map(|s| s.due.n).collect(),
        }
    }

    /// One pass, then how long until the next is due: zero when a batch was
    /// full, the time to the earliest due group or delivery otherwise.
    async fn pass(&mut self) -> Result<Duration, DispatchError> {
        let done = self.tick().await?;
        if done.full {
            return Ok(Duration::ZERO);
        }
        // A disabled channel's messages wait for its definition to change
        // (a config change wakes a pass), a busy channel's for its sends to
        // come back (which wakes a pass); the others for their time and
        // their channel's hold.
        let due = self.store.alert_next_due(&self.not_now()).await?;
        // With every send in flight it may have, no delivery is due before
        // one comes back (which wakes a pass).
        let room = self.in_flight.len() < IN_FLIGHT;
        let deliveries = (due.deliveries.iter()).filter(|_| room).map(|(name, at)| {
            match self.channels.get(name) {
                Some(channel) => (*at).max(channel.free_at),
                None => *at,
            }
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
    async fn tick(&mut self) -> Result<Done, DispatchError> {
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
        let (sent, more) = self.deliver(&config).await?;
        let backlog = self.store.alert_backlog().await?;
        let oldest = backlog
            .oldest
            .map_or(0, |t| (self.now() - t).max(0) / 1_000);
        self.metrics
            .alert_backlog(backlog.pending + backlog.outbox, oldest);
        Ok(Done {
            work: work + flushed + sent,
            full: flushed == FLUSH_BATCH as usize || more,
        })
    }

    /// Takes in a changed config: channels whose definition changed start
    /// afresh, enabled (a stored disabling of the old definition is
    /// forgotten); new ones, as at start, are disabled if the store says a
    /// receiver disabled this very definition; removed ones go.
    async fn sync(&mut self, config: &Arc<Config>) -> Result<(), DispatchError> {
        self.channels
            .retain(|name, _| config.alerts.channel(name).is_some());
        self.disabled()
            .retain(|name, _| config.alerts.channel(name).is_some());
        let mut stored: Option<Vec<DisabledChannelRow>> = None;
        for channel in &config.alerts.channels {
            let same = self
                .channels
                .get(&channel.name)
                .is_some_and(|s| *s.definition == *channel);
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
                    Ok(mailer) => Some(Arc::new(mailer)),
                    Err(err) => {
                        tracing::warn!(channel = %channel.name, error = %err, "email channel not usable");
                        None
                    }
                },
                _ => None,
            };
            // Its sends in flight under the old definition still count.
            let sending = self.channels.get(&channel.name).map_or(0, |c| c.sending);
            self.channels.insert(
                channel.name.clone(),
                ChannelState {
                    definition: Arc::new(channel.clone()),
                    free_at: 0,
                    mailer,
                    sending,
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

    /// Records what became of the sends that came back, in one
    /// transaction, then hands the messages due now to sends of their own
    /// (see the module doc): a channel without a rate up to
    /// [`PER_CHANNEL`] in flight, a rate-limited one one at a time. How
    /// many were due, and whether more may be.
    async fn deliver(&mut self, config: &Config) -> Result<(usize, bool), DispatchError> {
        while let Some(joined) = self.sends.try_join_next_with_id() {
            self.came_back(joined);
        }
        let mut updates = self.record(config).await?;
        let now = self.now();
        let mut put_off: HashMap<i64, Vec<i64>> = HashMap::new();
        // No more read than sends can start (the rest stays due, read when
        // a send comes back), but at least one: with every channel busy, a
        // message of a channel no longer configured is still read, and
        // dropped.
        let room = self.room().max(1);
        let due = if self.in_flight.len() >= IN_FLIGHT {
            Vec::new()
        } else {
            // Those just come back are still pending in the store until
            // the updates below are written with this pass's.
            let mut not_now = self.not_now();
            not_now.ns.extend(updates.iter().map(|(n, _)| *n));
            self.store.alert_due_deliveries(now, room, &not_now).await?
        };
        let count = due.len();
        let more = count > 0 && count == usize::try_from(room).unwrap_or(usize::MAX);
        let at = self.clock.now();
        for due in due {
            let Some(channel) = self.channels.get_mut(&due.channel) else {
                let update = DeliveryUpdate::Failed {
                    status: DeliveryStatus::Dropped,
                    error: "the channel is no longer configured".into(),
                };
                updates.push((due.n, update));
                continue;
            };
            let rated = !channel.definition.min_interval.is_zero();
            if channel.free_at > now || (rated && channel.busy()) {
                let at = channel
                    .free_at
                    .max(now + ms(channel.definition.min_interval));
                put_off.entry(at).or_default().push(due.n);
                continue;
            }
            if channel.busy() || self.in_flight.len() >= IN_FLIGHT {
                // Due still: taken when a send comes back.
                continue;
            }
            let message: Message = serde_json::from_str(&due.message)?;
            channel.sending += 1;
            let definition = channel.definition.clone();
            let mailer = channel.mailer.clone();
            let client = self.client.clone();
            let timeout = config.alerts.delivery.timeout;
            let sent = definition.clone();
            let task = self.sends.spawn(async move {
                let answers = &mut Vec::new();
                let sending = send(&client, &sent, mailer.as_deref(), &message, at, answers);
                within(timeout, sending).await.unwrap_or_else(retry)
            });
            self.in_flight
                .insert(task.id(), InFlight { due, definition });
        }
        for (at, ns) in put_off {
            self.store.alert_put_off(&ns, at).await?;
        }
        if !updates.is_empty() {
            self.store.alert_attempted(&updates, now).await?;
        }
        Ok((count, more))
    }

    /// How many sends can start now: what the channels not disabled have
    /// left of their bound, within [`IN_FLIGHT`] and [`SEND_BATCH`].
    fn room(&self) -> i64 {
        let disabled = self.disabled();
        let channels: usize = (self.channels.iter())
            .filter(|(name, _)| !disabled.contains_key(*name))
            .map(|(_, c)| c.most().saturating_sub(c.sending))
            .sum();
        let room = channels.min(IN_FLIGHT.saturating_sub(self.in_flight.len()));
        i64::try_from(room).map_or(SEND_BATCH, |room| room.min(SEND_BATCH))
    }

    /// What becomes of the messages whose sends came back: the updates to
    /// store (with those of this pass). A disabling is stored at once.
    async fn record(
        &mut self,
        config: &Config,
    ) -> Result<Vec<(i64, DeliveryUpdate)>, DispatchError> {
        let delivery = &config.alerts.delivery;
        let now = self.now();
        let mut updates: Vec<(i64, DeliveryUpdate)> = Vec::new();
        let mut disabling: Vec<DisabledChannelRow> = Vec::new();
        for (sent, outcome) in std::mem::take(&mut self.returned) {
            let due = sent.due;
            // The send's slot is freed whatever the channel's definition is
            // now; its rate and holds apply only to the definition it went
            // out under.
            let mut current = None;
            if let Some(channel) = self.channels.get_mut(&due.channel) {
                channel.sending = channel.sending.saturating_sub(1);
                if Arc::ptr_eq(&channel.definition, &sent.definition) {
                    channel.free_at = channel
                        .free_at
                        .max(now.saturating_add(ms(channel.definition.min_interval)));
                    current = Some(channel);
                }
            }
            let (update, label) = match outcome {
                Outcome::Delivered => (DeliveryUpdate::Delivered, "delivered"),
                Outcome::Retry { after, reason } => {
                    if let (Some(channel), Some(after)) = (current, after) {
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
                    if current.is_some() {
                        tracing::error!(channel = %due.channel, %reason, "alert channel disabled until its definition changes or an operator enables it");
                        disabling.push(DisabledChannelRow {
                            channel: due.channel.clone(),
                            fingerprint: fingerprint(&sent.definition),
                            reason: reason.clone(),
                        });
                    }
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
        Ok(updates)
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
    let client = client();
    let mailer = match &channel.kind {
        ChannelKind::Email(settings) => Mailer::new(&email::settings(settings)).ok(),
        _ => None,
    };
    let started = Instant::now();
    let mut answers = Vec::new();
    let mut outcome = Outcome::Delivered;
    for message in messages {
        let sending = send(
            &client,
            channel,
            mailer.as_ref(),
            message,
            now,
            &mut answers,
        );
        outcome = match within(timeout, sending).await {
            Ok(outcome) => outcome,
            Err(reason) => {
                answers.push(Answer::None(reason.clone()));
                retry(reason)
            }
        };
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

/// What `sending` (one attempt) comes to within `timeout`, or why it came
/// to nothing (then it is tried again, under the same id): the one
/// deadline on an attempt, however it is held (a connection accepted and
/// never answered, a status line or a body trickled byte by byte,
/// PagerDuty's two requests, an SMTP exchange). An answer not whole by then
/// is no answer, even after a 2xx status line.
async fn within(
    timeout: Duration,
    sending: impl Future<Output = Outcome>,
) -> Result<Outcome, String> {
    (tokio::time::timeout(timeout, sending).await)
        .map_err(|_| format!("no answer within {timeout:?}"))
}

/// A retry for `reason`, the schedule deciding when.
fn retry(reason: String) -> Outcome {
    Outcome::Retry {
        after: None,
        reason,
    }
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
        retry(reason)
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
    // The rest is never read: the connection is dropped with it.
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
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

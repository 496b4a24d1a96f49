//! The dispatcher: the service's task that turns committed health events
//! into delivered messages, at least once, in three steps each tick:
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
//! It must not judge health nor change events.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use futures_util::StreamExt;
use tokio::sync::watch;

use super::email::{self, Mailer};
use super::grouping::{Disposition, Group, disposition};
use super::message::{Message, Outcome};
use super::routes::{self, Places};
use super::{pagerduty, slack, webhook};
use crate::clock::SharedClock;
use crate::config::{AlertChannel, AlertRoute, ChannelKind, Config};
use crate::metrics::Metrics;
use crate::store::{
    AlertGroupRow, DeliveryRow, DeliveryStatus, DeliveryUpdate, DisabledChannelRow, NewDelivery,
    Store, StoreError, from_ms, to_ms,
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
        }
    }

    /// Ticks until the task is aborted.
    pub async fn run(mut self) {
        loop {
            if let Err(err) = self.tick().await {
                tracing::warn!(error = %err, "alert dispatch failed; trying again");
            }
            let poll = self.config.borrow().alerts.delivery.poll_interval;
            tokio::time::sleep(poll).await;
        }
    }

    fn now(&self) -> i64 {
        to_ms(self.clock.now())
    }

    fn disabled(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.disabled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One round of routing, grouping and delivering.
    pub async fn tick(&mut self) -> Result<(), DispatchError> {
        let config = self.config.borrow().clone();
        self.sync(&config).await?;
        while self.route(&config).await? {}
        self.flush(&config).await?;
        self.deliver(&config).await?;
        let backlog = self.store.alert_backlog().await?;
        let oldest = backlog
            .oldest
            .map_or(0, |t| (self.now() - t).max(0) / 1_000);
        self.metrics
            .alert_backlog(backlog.pending + backlog.outbox, oldest);
        Ok(())
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

    /// Routes one batch of outbox events; `true` when there may be more.
    async fn route(&mut self, config: &Config) -> Result<bool, DispatchError> {
        let seqs = self.store.alert_outbox_seqs(ROUTE_BATCH).await?;
        let Some(&first) = seqs.first() else {
            return Ok(false);
        };
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
        let mut groups: HashMap<(String, String), Group> = HashMap::new();
        for event in &events {
            let here = places.of(&event.entity);
            for route in &config.alerts.routes {
                let Some(place) = routes::matching(route, &event.entity, &here) else {
                    continue;
                };
                match disposition(event, route.min_status) {
                    Disposition::Notify => {
                        let key = routes::group_key(route, place);
                        let group = load(&self.store, &mut groups, route, key).await?;
                        group.apply(route, event, place, now);
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
                        let group = load(&self.store, &mut groups, route, key).await?;
                        group.fold(&upstream, step);
                    }
                    quiet => {
                        if let Some(reason) = quiet.reason() {
                            self.metrics.alert_suppressed(reason);
                        }
                    }
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
        Ok(seqs.len() as i64 == ROUTE_BATCH)
    }

    /// Makes the messages of the groups due now, stored in one transaction
    /// with the groups' new states.
    async fn flush(&mut self, config: &Config) -> Result<(), DispatchError> {
        let now = self.now();
        let mut rows: Vec<AlertGroupRow> = Vec::new();
        let mut deliveries = Vec::new();
        for stored in self.store.alert_due_groups(now, FLUSH_BATCH).await? {
            let route = config.alerts.routes.iter().find(|r| r.name == stored.route);
            let mut group: Group = match (&stored.state, route) {
                (Some(state), Some(_)) => serde_json::from_str(state)?,
                // The route was removed: its groups go with it.
                _ => Group::default(),
            };
            if let Some(route) = route
                && let Some((state, alerts)) =
                    group.flush(route, config.alerts.link_base.as_deref(), now)
            {
                for channel in &route.channels {
                    let message = Message {
                        id: new_id(),
                        state,
                        group_key: stored.group_key.clone(),
                        route: route.name.clone(),
                        alerts: alerts.clone(),
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
        Ok(())
    }

    /// Sends the messages due now: a channel without a rate takes them
    /// [`CONCURRENCY`] at a time, a rate-limited one one per tick; what
    /// became of them is stored in one transaction.
    async fn deliver(&mut self, config: &Config) -> Result<(), DispatchError> {
        let now = self.now();
        let delivery = &config.alerts.delivery;
        let mut updates: Vec<(i64, DeliveryUpdate)> = Vec::new();
        let mut sends: Vec<(DeliveryRow, Message)> = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        for due in self.store.alert_due_deliveries(now, SEND_BATCH).await? {
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
                self.store.alert_put_off(due.n, at).await?;
                continue;
            }
            taken.insert(due.channel.clone());
            let message: Message = serde_json::from_str(&due.message)?;
            sends.push((due, message));
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
        Ok(())
    }
}

/// The group in `groups`, loaded from the store the first time.
async fn load<'g>(
    store: &Store,
    groups: &'g mut HashMap<(String, String), Group>,
    route: &AlertRoute,
    key: String,
) -> Result<&'g mut Group, DispatchError> {
    let id = (route.name.clone(), key);
    if !groups.contains_key(&id) {
        let group = match store.alert_group(&id.0, &id.1).await? {
            Some(state) => serde_json::from_str(&state)?,
            None => Group::default(),
        };
        groups.insert(id.clone(), group);
    }
    Ok(groups.get_mut(&id).expect("inserted above"))
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

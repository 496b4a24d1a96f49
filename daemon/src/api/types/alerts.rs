//! Alert channels and deliveries as clients see them: what `alertChannels`
//! and `alertDeliveries` list and `testAlertChannel` answers. Never a
//! secret nor a URL's path or query (a Slack URL is itself the secret): an
//! operator or admin sees the host a channel talks to, a viewer not even that.

use super::*;
use crate::alerts::dispatcher::Answer;
use crate::alerts::message::{Message, Outcome};
use crate::alerts::{pagerduty, wording};
use crate::config::{AlertChannel, ChannelKind, Role};
use crate::service::ChannelTest;
use crate::store::{DeliveryRecord, DeliveryStatus};

/// What a channel speaks.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AlertChannelKind {
    Webhook,
    Slack,
    PagerDuty,
    Email,
}

/// An alert channel from `[[alerts.channels]]`.
#[derive(SimpleObject)]
#[graphql(name = "AlertChannel")]
pub struct AlertChannelNode {
    pub name: String,
    pub kind: AlertChannelKind,
    /// False once a receiver said the destination is gone (e.g. a 410):
    /// its messages wait until the channel's definition changes.
    pub enabled: bool,
    /// Why it is disabled, in the receiver's words.
    pub disabled_reason: Option<String>,
    /// The host it sends to (operator and admin only; null for a viewer).
    pub host: Option<String>,
}

fn url_host(url: &str) -> Option<String> {
    reqwest::Url::parse(url).ok()?.host_str().map(str::to_owned)
}

/// The channel as `view` may see it; `disabled` is the dispatcher's reason.
pub fn alert_channel(
    view: &View,
    channel: &AlertChannel,
    disabled: Option<String>,
) -> AlertChannelNode {
    let (kind, host) = match &channel.kind {
        ChannelKind::Webhook { url, .. } => (AlertChannelKind::Webhook, url_host(url)),
        ChannelKind::Slack { webhook_url } => {
            (AlertChannelKind::Slack, url_host(webhook_url.expose()))
        }
        ChannelKind::PagerDuty { url, .. } => (
            AlertChannelKind::PagerDuty,
            url_host(url.as_deref().unwrap_or(pagerduty::EVENTS_URL)),
        ),
        ChannelKind::Email(email) => (AlertChannelKind::Email, Some(email.host.clone())),
    };
    AlertChannelNode {
        name: channel.name.clone(),
        kind,
        enabled: disabled.is_none(),
        disabled_reason: disabled,
        host: host.filter(|_| view.principal.role >= Role::Operator),
    }
}

/// Where a delivery stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::store::DeliveryStatus")]
pub enum AlertDeliveryStatus {
    /// Not yet taken by the receiver; tried again at `nextAttemptAt`.
    Pending,
    Delivered,
    /// The receiver refused this message for good (e.g. a 400).
    Rejected,
    /// Not taken before the give-up age (`alerts.delivery.give_up_after`).
    GaveUp,
    /// Its channel was removed from the config.
    Dropped,
}

/// Whether a message says its entities are bad or have recovered.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::alerts::message::AlertState")]
pub enum AlertMessageState {
    Firing,
    Resolved,
}

/// One entity a delivered (or pending) message is about.
#[derive(SimpleObject)]
pub struct DeliveredAlert {
    /// Its global id (as `node(id:)` takes it).
    pub entity_id: ID,
    /// `Tenant > Flow > System > Check > Asset`, names.
    pub path: String,
    /// Its status when the message was made.
    pub status: HealthStatus,
}

/// One message to one channel: made once, sent until delivered, refused or
/// given up (`alertDeliveries`).
#[derive(SimpleObject)]
#[graphql(name = "AlertDelivery")]
pub struct AlertDeliveryNode {
    /// The message's id, the same on every attempt (Standard Webhooks'
    /// `webhook-id`): what receivers dedup on and `retryDelivery` takes.
    pub id: ID,
    pub channel: String,
    pub route: String,
    /// What the group shares (`group_by`'s values).
    pub group_key: String,
    pub status: AlertDeliveryStatus,
    pub state: AlertMessageState,
    /// The message's headline, as channels show it.
    pub summary: String,
    pub alerts: Vec<DeliveredAlert>,
    /// Attempts made so far (a channel's rate or `Retry-After` put one off
    /// without counting it).
    pub attempts: i32,
    /// What the receiver (or the connection) said last time it was not
    /// taken.
    pub last_error: Option<String>,
    /// When it is tried next: pending deliveries only.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The delivery `record` as the API shows it; `None` when its message is
/// not readable or names an entity `view` may not see (a tenant's token
/// never learns another tenant's entity names).
pub fn alert_delivery(view: &View, record: DeliveryRecord) -> Option<AlertDeliveryNode> {
    if let Some(own) = view.tenant_scope()
        && record.tenant.as_deref() != Some(own)
    {
        return None;
    }
    let message: Message = serde_json::from_str(&record.message).ok()?;
    if view.tenant_scope().is_some() && !message.alerts.iter().all(|a| view.sees(&a.entity)) {
        return None;
    }
    let pending = record.status == DeliveryStatus::Pending;
    Some(AlertDeliveryNode {
        id: ID(record.id),
        channel: record.channel,
        route: record.route,
        group_key: record.group_key,
        status: record.status.into(),
        state: message.state.into(),
        summary: wording::headline(&message),
        alerts: (message.alerts.iter())
            .map(|a| DeliveredAlert {
                entity_id: ids::entity_id(&a.entity),
                path: wording::path(a),
                status: a.status.into(),
            })
            .collect(),
        attempts: i32::try_from(record.attempts).unwrap_or(i32::MAX),
        last_error: record.last_error,
        next_attempt_at: pending.then(|| time(from_ms(record.next_at))),
        created_at: time(from_ms(record.created_at)),
        delivered_at: record.delivered_at.map(|t| time(from_ms(t))),
    })
}

/// What `testAlertChannel` found.
#[derive(SimpleObject)]
pub struct AlertChannelTest {
    /// The receiver took the test message (for PagerDuty: the trigger and
    /// its resolve).
    pub delivered: bool,
    /// Why not, when not: the meaning the dispatcher gives the answer.
    pub error: Option<String>,
    /// Each request's answer, in order (none for email).
    pub answers: Vec<AlertChannelAnswer>,
    /// From the first request to the last answer.
    pub latency_ms: i32,
}

/// What a receiver answered one request.
#[derive(SimpleObject)]
pub struct AlertChannelAnswer {
    /// The HTTP status; null when there was no answer.
    pub status: Option<i32>,
    /// The first bytes of the body (at most 512), or the connection error;
    /// the channel's secrets masked.
    pub excerpt: String,
}

pub fn channel_test(test: ChannelTest) -> AlertChannelTest {
    let error = match &test.probe.outcome {
        Outcome::Delivered => None,
        Outcome::Retry { reason, .. }
        | Outcome::Reject { reason }
        | Outcome::Disable { reason } => Some(reason.clone()),
    };
    AlertChannelTest {
        delivered: error.is_none(),
        error,
        answers: (test.probe.answers.iter().zip(test.excerpts))
            .map(|(answer, excerpt)| AlertChannelAnswer {
                status: match answer {
                    Answer::Http { status, .. } => Some(i32::from(*status)),
                    Answer::None(_) => None,
                },
                excerpt,
            })
            .collect(),
        latency_ms: i32::try_from(test.probe.latency.as_millis()).unwrap_or(i32::MAX),
    }
}

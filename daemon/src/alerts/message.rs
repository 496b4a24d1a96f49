//! What one alert message says, whatever channel carries it: the entities it
//! is about (one, or a group that changed together), each with its place in
//! tenant > flow > system > check > asset, its status, reasons and counts;
//! and what a receiver's answer means for the delivery ([`Outcome`]).
//!
//! Channels render a [`Message`] into their wire format and classify the
//! answer; they must not decide who is notified or when (routing, grouping,
//! retries and suppression happen before and after them).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::health::{EntityRef, Reason, RuleKind, Status};
use crate::store::entity_key;

/// The made-up tenant a test message is about.
pub const TEST_TENANT: &str = "tributary-test";

// Messages are kept in the outbox as JSON (`alerts::outbox`), so every
// attempt sends what the first one did.

/// One notification to one channel. Built once and kept in the outbox, so
/// every attempt sends the same content under the same [`id`](Self::id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Stable across retries: Standard Webhooks' `webhook-id`, the SMTP
    /// `Message-ID`'s local part, the idempotency key a receiver dedups on.
    pub id: String,
    /// Whether the group is still bad or has recovered.
    pub state: AlertState,
    /// What the group shares (`group_by`'s values, e.g. `tenant=acme`), the
    /// same for every message of the group, so receivers can thread them.
    pub group_key: String,
    /// The route that matched.
    pub route: String,
    /// The entities this message is about, worst first; never empty; at
    /// most `alerts::grouping::MAX_LISTED`.
    pub alerts: Vec<Alert>,
    /// How many more entities of the group there were, not listed (the
    /// least bad): "and N more". Absent in messages kept from before.
    #[serde(default)]
    pub truncated: usize,
    /// When the message was made.
    pub at: SystemTime,
}

impl Message {
    /// The store keys of the entities it is about, each once.
    pub fn entity_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.alerts.iter().map(|a| entity_key(&a.entity)).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// A message that says it is a test of `channel` (`testAlertChannel`):
    /// one alert about a made-up tenant `tributary-test`, WARNING while
    /// `state` is firing, with a dedup key of its own (PagerDuty's trigger
    /// and resolve of a test share it and touch no real incident).
    pub fn test(channel: &str, state: AlertState, at: SystemTime) -> Message {
        let status = match state {
            AlertState::Firing => Status::Warning,
            AlertState::Resolved => Status::Healthy,
        };
        let text = format!("a test of alert channel {channel:?}: nothing is wrong");
        Message {
            id: format!("msg_test_{:032x}", rand::random::<u128>()),
            state,
            group_key: "test".to_owned(),
            route: "test".to_owned(),
            alerts: vec![Alert {
                entity: EntityRef::Tenant(TEST_TENANT.to_owned()),
                path: vec![Step {
                    kind: "tenant",
                    key: TEST_TENANT.to_owned(),
                    name: "Tributary test message".to_owned(),
                }],
                status,
                previous: None,
                reasons: vec![Reason::new(RuleKind::NoData, status, text)],
                counts: None,
                since: at,
                seq: 0,
                link: None,
                dedup_key: format!("tributary:test:{channel}"),
                also_affected: Vec::new(),
                owner: None,
                labels: BTreeMap::new(),
            }],
            truncated: 0,
            at,
        }
    }

    /// The one tenant every alert's path starts at; `None` when they span
    /// tenants (or a path has no tenant): who may read the delivery.
    pub fn tenant(&self) -> Option<String> {
        let tenant_of = |a: &Alert| {
            a.path
                .first()
                .filter(|s| s.kind == "tenant")
                .map(|s| s.key.clone())
        };
        let mut tenants = self.alerts.iter().map(tenant_of);
        let first = tenants.next()??;
        tenants
            .all(|t| t.as_deref() == Some(first.as_str()))
            .then_some(first)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertState {
    /// At least one entity of the group is still at or above the route's
    /// minimum status.
    Firing,
    /// Every entity of the group has recovered.
    Resolved,
}

/// One entity's change, as a message reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub entity: EntityRef,
    /// From the tenant down to the entity, each step with its kind, key and
    /// display name.
    pub path: Vec<Step>,
    pub status: Status,
    /// The status before this change; `None` for the first evaluation.
    pub previous: Option<Status>,
    /// Why, worst first (the health engine's reasons, unchanged).
    pub reasons: Vec<Reason>,
    /// Record counts of the latest run, where the entity has them (assets).
    pub counts: Option<Counts>,
    /// When the entity entered `status`.
    pub since: SystemTime,
    /// The health event's sequence number (links the alert to history).
    pub seq: i64,
    /// `alerts.link_base` joined with the entity's page, when configured.
    pub link: Option<String>,
    /// Stable per entity across messages (PagerDuty's `dedup_key`): a
    /// trigger and its resolve share it.
    pub dedup_key: String,
    /// Entities whose own alerts were folded into this one because this
    /// entity is their failing upstream (dependency suppression).
    pub also_affected: Vec<Step>,
    /// Inherited down the entity's path (see `alerts::routes`); absent in
    /// messages kept from before owners existed.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// One step of an entity's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `tenant`, `flow`, `system`, `check` or `asset`.
    pub kind: &'static str,
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub expected: Option<i64>,
    pub received: Option<i64>,
    pub missing: Option<i64>,
    pub errored: Option<i64>,
}

/// A [`Step`] as stored: its kind owned, read back as the `&'static str`
/// every entity kind is.
#[derive(Deserialize)]
struct StoredStep {
    kind: String,
    key: String,
    name: String,
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredStep::deserialize(d)?;
        let kind = ["tenant", "flow", "system", "check", "asset"]
            .into_iter()
            .find(|k| *k == stored.kind)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("unknown entity kind {:?}", stored.kind))
            })?;
        Ok(Step {
            kind,
            key: stored.key,
            name: stored.name,
        })
    }
}

/// What a receiver's answer (or the lack of one) means for the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Taken (2xx, Slack's `ok`, PagerDuty's 202, SMTP 250).
    Delivered,
    /// Try again later; `after` is the receiver's `Retry-After` when it gave
    /// one (429, 503), else the retry schedule decides.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The same message will never be taken (400 invalid payload): give up on
    /// this message, keep the channel.
    Reject { reason: String },
    /// The destination is gone (410, Slack's `channel_is_archived`): disable
    /// the channel and say so.
    Disable { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(tenant: Option<&str>, check: &str) -> Alert {
        let mut alert = Message::test("t", AlertState::Firing, SystemTime::UNIX_EPOCH)
            .alerts
            .remove(0);
        alert.entity = EntityRef::Check(check.into());
        alert.path = tenant
            .map(|t| Step {
                kind: "tenant",
                key: t.into(),
                name: t.into(),
            })
            .into_iter()
            .collect();
        alert
    }

    /// Who may read a delivery follows from its message: one tenant for all
    /// its alerts, or none.
    #[test]
    fn a_message_has_a_tenant_only_when_all_its_alerts_share_one() {
        let mut m = Message::test("hook", AlertState::Firing, SystemTime::UNIX_EPOCH);
        assert_eq!(m.tenant().as_deref(), Some(TEST_TENANT));
        m.alerts = vec![about(Some("acme"), "a"), about(Some("acme"), "b")];
        assert_eq!(m.tenant().as_deref(), Some("acme"));
        assert_eq!(m.entity_keys(), ["check:a", "check:b"]);
        m.alerts.push(about(Some("globex"), "g"));
        assert_eq!(m.tenant(), None);
        m.alerts = vec![about(None, "a")];
        assert_eq!(m.tenant(), None);
    }
}

//! What operators do to alert delivery through the service: retry a
//! delivery, enable a channel a receiver disabled, test a channel. Each is
//! recorded in the audit log as done by the token that asked.
//!
//! It owns these acts, not delivery itself: the dispatcher
//! (`alerts::dispatcher`) still sends every stored message, and a test goes
//! through its [`probe`](crate::alerts::dispatcher::probe), never the
//! outbox. It must not answer in GraphQL terms (the API translates).

use std::time::Duration;

use super::{Service, ServiceError, lock};
use crate::alerts::dispatcher::{self, Answer, Probe};
use crate::alerts::message::{AlertState, Message};
use crate::config::ChannelKind;
use crate::plugin::Redactor;
use crate::store::{AuditEntry, StoreError, to_ms};

/// The most of a receiver's body a test reports.
const EXCERPT: usize = 512;

/// What a test of a channel found, secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTest {
    pub probe: Probe,
    /// Each answer's body (or connection error) as text: at most
    /// [`EXCERPT`] bytes, the channel's secrets masked.
    pub excerpts: Vec<String>,
}

/// What [`Service::retry_delivery`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retried {
    /// Nothing: no such delivery, or it was delivered.
    No,
    /// Due now: the dispatcher, woken, sends it.
    Due,
    /// Due, but its channel is disabled (a receiver said its destination
    /// is gone): it waits until an operator enables the channel or its
    /// definition changes.
    Held { channel: String },
}

fn store_failed(err: StoreError) -> ServiceError {
    ServiceError::Store(err.to_string())
}

impl Service {
    fn audit_entry(&self, actor: &str, action: &str, target: String, detail: String) -> AuditEntry {
        AuditEntry {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            detail,
        }
    }

    /// Makes the delivery whose message has `id` due now, under the same id
    /// (not one already delivered); the dispatcher sends it on its next
    /// pass, woken for it, unless its channel is disabled (then it waits,
    /// and the answer says so).
    pub async fn retry_delivery(&self, id: &str, actor: &str) -> Result<Retried, ServiceError> {
        let audit = self.audit_entry(
            actor,
            "retry_delivery",
            format!("delivery:{id}"),
            "{}".into(),
        );
        let channel = self
            .store
            .alert_retry(id, to_ms(self.clock.now()), &audit)
            .await
            .map_err(store_failed)?;
        let Some(channel) = channel else {
            return Ok(Retried::No);
        };
        if lock(&self.disabled_channels).contains_key(&channel) {
            return Ok(Retried::Held { channel });
        }
        self.nudge_alerts();
        Ok(Retried::Due)
    }

    /// Enables the channel `name` a receiver disabled; its pending messages
    /// go out on the dispatcher's next pass, woken for it. `Ok(false)`: it was not
    /// disabled (nothing recorded).
    pub async fn enable_alert_channel(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<bool, ServiceError> {
        let audit = self.audit_entry(
            actor,
            "enable_alert_channel",
            format!("channel:{name}"),
            "{}".into(),
        );
        let stored = self
            .store
            .alert_enable_channel(name)
            .await
            .map_err(store_failed)?;
        let known = lock(&self.disabled_channels).remove(name).is_some();
        if known || stored {
            self.store.audit(&audit).await.map_err(store_failed)?;
            self.nudge_alerts();
        }
        Ok(known || stored)
    }

    /// Sends a test message through the channel `name` as the dispatcher
    /// would (signed, rendered, the same client settings) and reports what
    /// the receiver answered; nothing is stored but the audit entry, and
    /// the channel's state is untouched. PagerDuty gets a `trigger` and
    /// then its `resolve`, so no incident stays open. `Ok(None)`: no such
    /// channel.
    pub async fn test_alert_channel(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<Option<ChannelTest>, ServiceError> {
        let config = self.loaded().config.clone();
        let Some(channel) = config.alerts.channel(name) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let mut messages = vec![Message::test(name, AlertState::Firing, now)];
        if matches!(channel.kind, ChannelKind::PagerDuty { .. }) {
            messages.push(Message::test(name, AlertState::Resolved, now));
        }
        let timeout: Duration = config.alerts.delivery.timeout;
        let probe = dispatcher::probe(channel, timeout, &messages, now).await;
        let redactor = Redactor::new(&dispatcher::secrets_of(channel));
        let excerpts: Vec<String> = probe
            .answers
            .iter()
            .map(|answer| {
                let text = match answer {
                    Answer::Http { body, .. } => {
                        String::from_utf8_lossy(&body[..body.len().min(EXCERPT)]).into_owned()
                    }
                    Answer::None(error) => error.clone(),
                };
                redactor.redact(&text).into_owned()
            })
            .collect();
        let statuses: Vec<Option<u16>> = (probe.answers.iter())
            .map(|a| match a {
                Answer::Http { status, .. } => Some(*status),
                Answer::None(_) => None,
            })
            .collect();
        let detail = serde_json::json!({
            "delivered": probe.outcome == crate::alerts::message::Outcome::Delivered,
            "statuses": statuses,
            "latency_ms": probe.latency.as_millis() as u64,
        });
        let audit = self.audit_entry(
            actor,
            "test_alert_channel",
            format!("channel:{name}"),
            detail.to_string(),
        );
        self.store.audit(&audit).await.map_err(store_failed)?;
        Ok(Some(ChannelTest { probe, excerpts }))
    }
}

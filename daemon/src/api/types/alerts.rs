//! Alert channels as clients see them: what `alertChannels` lists. Never a
//! secret nor a URL's path or query (a Slack URL is itself the secret): an
//! operator or admin sees the host a channel talks to, a viewer not even that.

use super::*;
use crate::alerts::pagerduty;
use crate::config::{AlertChannel, ChannelKind, Role};

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

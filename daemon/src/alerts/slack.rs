//! The Slack channel: a [`Message`] rendered as an incoming-webhook post
//! (`text` fallback plus Block Kit `blocks`), and Slack's answer classified
//! into an [`Outcome`].
//!
//! The seam with the dispatcher: [`request`] gives the HTTP request to send
//! (URL, headers, body), the dispatcher sends it with its shared client
//! (timeouts, no redirects, its SSRF guard) and hands the answer to
//! [`classify`]. This module does no I/O and must not decide when or
//! whether to send; the webhook URL is a secret (its path is the token), so
//! neither it nor the request may be logged.
//!
//! Names and reasons come from plugins and config: every piece of them is
//! cleaned ([`wording::clean`]) and escaped ([`escape`]) so an attacker's
//! asset name such as `<!channel>` shows as text instead of notifying a
//! channel, and every `mrkdwn` text is `verbatim`, so Slack does not turn a
//! bare URL or `#channel` in a name into a link. What Slack checks (at most
//! 50 blocks, section text at most 3,000 characters, header at most 150) is
//! met by construction, whatever the group's size: past
//! [`MAX_ALERT_SECTIONS`] alerts the rest are listed in one "and N more"
//! section.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Value, json};

use super::message::{Alert, AlertState, Message, Outcome};
use super::{retry_after, wording};
use crate::health::Status;

/// Slack's limit on the blocks of one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on a section's (and a context element's) text.
pub const MAX_SECTION_TEXT: usize = 3_000;
/// Slack's limit on a header block's text.
pub const MAX_HEADER_TEXT: usize = 150;
/// Slack's limit on a button's URL.
pub const MAX_BUTTON_URL: usize = 3_000;
/// Alerts shown in a section of their own; the rest of a group is listed by
/// name in one section. Ten keep a storm's message readable on a phone,
/// well inside [`MAX_BLOCKS`] (header + 10 + "more" + context = 13).
pub const MAX_ALERT_SECTIONS: usize = 10;
/// Reasons shown per alert, worst first.
pub const MAX_REASONS: usize = 5;
/// "Also affected" entities named per alert.
const MAX_ALSO_AFFECTED: usize = 10;
/// One name (a path step, an also-affected entity), escaped, at most.
const MAX_NAME: usize = 150;
/// One reason, escaped, at most.
const MAX_REASON: usize = 300;
/// The `text` fallback (notifications, clients without blocks).
const MAX_FALLBACK: usize = 3_000;

/// A Slack channel's settings, as the config resolved them.
#[derive(Clone)]
pub struct SlackSettings {
    webhook_url: Uri,
}

/// Why a Slack channel's settings are refused. Never shows the URL: its
/// path is the webhook's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("webhook_url is not a URL")]
    NotAUrl,
    #[error("webhook_url must be an http:// or https:// URL with a host")]
    NotHttp,
}

impl SlackSettings {
    /// `webhook_url` is the incoming webhook's URL,
    /// `https://hooks.slack.com/services/T…/B…/…`.
    pub fn new(webhook_url: &str) -> Result<Self, SettingsError> {
        let uri: Uri = webhook_url.parse().map_err(|_| SettingsError::NotAUrl)?;
        let http = matches!(uri.scheme_str(), Some("http" | "https"));
        if !http || uri.host().is_none_or(str::is_empty) {
            return Err(SettingsError::NotHttp);
        }
        Ok(Self { webhook_url: uri })
    }
}

impl fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackSettings")
            .field(
                "webhook_url",
                &format_args!(
                    "{}://{}/<redacted>",
                    self.webhook_url.scheme_str().unwrap_or("?"),
                    self.webhook_url.host().unwrap_or("?")
                ),
            )
            .finish()
    }
}

/// The POST that delivers `message` to the channel.
pub fn request(settings: &SlackSettings, message: &Message) -> http::Request<Vec<u8>> {
    let mut request = http::Request::new(body(message).to_string().into_bytes());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = settings.webhook_url.clone();
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    request
}

/// What Slack's answer means. Slack answers a short code in a plain-text
/// body (`ok`, `invalid_payload`, `channel_is_archived`, ...).
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Outcome {
    let code = wording::clean(&String::from_utf8_lossy(body))
        .trim()
        .to_owned();
    let code = wording::truncate(&code, 200).into_owned();
    let said = |what: &str| format!("Slack answered {} {code:?}: {what}", status.as_u16());
    match (status.as_u16(), code.as_str()) {
        (200..=299, _) => Outcome::Delivered,
        (429, _) => Outcome::Retry {
            after: retry_after::from_headers(headers, now),
            reason: said("rate limited (about one message a second per channel)"),
        },
        (410, _) => Outcome::Disable {
            reason: said("the channel is archived; unarchive it or give the channel a new webhook"),
        },
        (404, "channel_not_found") => Outcome::Disable {
            reason: said("the webhook's channel was deleted; create a webhook for another channel"),
        },
        (404, _) => Outcome::Disable {
            reason: said(
                "the webhook was revoked or its app removed; create a new incoming webhook",
            ),
        },
        (403, "action_prohibited") => Outcome::Disable {
            reason: said("an admin restricted posting to this channel"),
        },
        (403, _) => Outcome::Disable {
            reason: said("Slack refuses this webhook (token or workspace disabled)"),
        },
        (408, _) | (500..=599, _) => Outcome::Retry {
            after: retry_after::from_headers(headers, now),
            reason: said("Slack failed to take the message"),
        },
        (300..=399, _) => Outcome::Reject {
            reason: said("a redirect, not followed: is webhook_url a Slack incoming webhook?"),
        },
        _ => Outcome::Reject {
            reason: said("the message was refused and will not be sent again"),
        },
    }
}

/// `text` with Slack's three control characters written as entities, so it
/// shows as written and never becomes a mention (`<!channel>`, `<@U…>`) or
/// a link (`<https://…|…>`).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Untrusted `text` cleaned, escaped and cut to at most `max` bytes, never
/// inside an entity.
fn safe(text: &str, max: usize) -> String {
    let clean = wording::clean(text);
    let escaped = escape(&clean);
    if escaped.len() <= max {
        return escaped.into_owned();
    }
    let room = max.saturating_sub(wording::ELLIPSIS.len_utf8());
    let mut out = String::with_capacity(max);
    for c in clean.chars() {
        let piece = escape(c.encode_utf8(&mut [0; 4])).into_owned();
        if out.len() + piece.len() > room {
            break;
        }
        out.push_str(&piece);
    }
    out.push(wording::ELLIPSIS);
    out
}

/// The webhook's JSON body.
pub fn body(message: &Message) -> Value {
    json!({
        "text": fallback(message),
        "blocks": blocks(message),
        // Slack must not fetch pages that names or reasons point at.
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

fn emoji(state: AlertState, status: Status) -> &'static str {
    match (state, status) {
        (AlertState::Resolved, _) | (_, Status::Healthy) => ":large_green_circle:",
        (_, Status::Warning) => ":large_yellow_circle:",
        (_, Status::Unknown) => ":white_circle:",
        (_, Status::Unhealthy) => ":red_circle:",
    }
}

/// The notification text: the headline and the first alert's top reasons.
fn fallback(message: &Message) -> String {
    let mut lines = Vec::new();
    let worst = message.alerts.first();
    let status = worst.map_or(Status::Unknown, |a| a.status);
    lines.push(format!(
        "{} {}",
        emoji(message.state, status),
        safe(&wording::headline(message), MAX_FALLBACK / 2)
    ));
    for reason in worst.iter().flat_map(|a| a.reasons.iter().take(3)) {
        lines.push(format!("• {}", safe(&wording::reason(reason), MAX_REASON)));
    }
    fit(lines, MAX_FALLBACK)
}

fn blocks(message: &Message) -> Vec<Value> {
    let status = message.alerts.first().map_or(Status::Unknown, |a| a.status);
    let n = message.alerts.len();
    // Only our own words in the header: plain text is not escaped by Slack's
    // rules, so untrusted names stay in the (escaped) mrkdwn sections.
    let header = format!(
        "{} {} · {} · {n} {}",
        emoji(message.state, status),
        wording::state(message.state),
        status.as_str(),
        if n == 1 { "entity" } else { "entities" }
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": header, "emoji": true },
    })];
    for alert in message.alerts.iter().take(MAX_ALERT_SECTIONS) {
        blocks.push(alert_section(message.state, alert));
    }
    if n > MAX_ALERT_SECTIONS || message.truncated > 0 {
        blocks.push(mrkdwn_section(more(
            message.state,
            message.alerts.get(MAX_ALERT_SECTIONS..).unwrap_or_default(),
            message.truncated,
        )));
    }
    let at: DateTime<Utc> = message.at.into();
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn(fit(
            vec![format!(
                "Tributary · route {} · group {} · {}",
                safe(&message.route, MAX_NAME),
                safe(&message.group_key, MAX_NAME * 2),
                at.format("%Y-%m-%d %H:%M:%S UTC")
            )],
            MAX_SECTION_TEXT,
        ))],
    }));
    blocks
}

fn mrkdwn(text: String) -> Value {
    json!({ "type": "mrkdwn", "text": text, "verbatim": true })
}

fn mrkdwn_section(text: String) -> Value {
    json!({ "type": "section", "text": mrkdwn(text) })
}

/// One alert: status, path, reasons, counts, since, also affected, and a
/// button to its page.
fn alert_section(state: AlertState, alert: &Alert) -> Value {
    let path: Vec<String> = alert
        .path
        .iter()
        .map(|s| safe(&wording::name(s), MAX_NAME))
        .collect();
    let since: DateTime<Utc> = alert.since.into();
    let mut lines = vec![
        format!(
            "{} *{}* since {}",
            emoji(state, alert.status),
            wording::status_change(alert),
            since.format("%Y-%m-%d %H:%M UTC")
        ),
        path.join(" › "),
    ];
    for reason in alert.reasons.iter().take(MAX_REASONS) {
        lines.push(format!("• {}", safe(&wording::reason(reason), MAX_REASON)));
    }
    if alert.reasons.len() > MAX_REASONS {
        lines.push(format!(
            "• _and {} more_",
            alert.reasons.len() - MAX_REASONS
        ));
    }
    if let Some(counts) = alert.counts.as_ref().and_then(wording::counts) {
        lines.push(format!("Counts: {counts}"));
    }
    if let Some(owner) = &alert.owner {
        lines.push(format!("Owner: {}", safe(owner, MAX_NAME)));
    }
    if !alert.also_affected.is_empty() {
        let mut names: Vec<String> = alert
            .also_affected
            .iter()
            .take(MAX_ALSO_AFFECTED)
            .map(|s| safe(&wording::name(s), MAX_NAME))
            .collect();
        if alert.also_affected.len() > MAX_ALSO_AFFECTED {
            names.push(format!(
                "and {} more",
                alert.also_affected.len() - MAX_ALSO_AFFECTED
            ));
        }
        lines.push(format!("_Also affected:_ {}", names.join(", ")));
    }
    let mut section = mrkdwn_section(fit(lines, MAX_SECTION_TEXT));
    if let Some(url) = alert
        .link
        .as_deref()
        .and_then(wording::web_link)
        .filter(|url| url.len() <= MAX_BUTTON_URL)
    {
        section["accessory"] = json!({
            "type": "button",
            "text": { "type": "plain_text", "text": "Open" },
            "url": url,
        });
    }
    section
}

/// The alerts past [`MAX_ALERT_SECTIONS`], by name, as many as fit, and
/// the count of those the message did not list (`truncated`).
fn more(state: AlertState, rest: &[Alert], truncated: usize) -> String {
    let mut text = format!("*and {} more:*", rest.len() + truncated);
    let mut listed = 0;
    for alert in rest {
        let item = format!(
            " {} {} ({}),",
            emoji(state, alert.status),
            safe(&wording::entity_name(alert), MAX_NAME),
            alert.status.as_str()
        );
        // Room for the closing "… and N not listed".
        if text.len() + item.len() + 40 > MAX_SECTION_TEXT {
            break;
        }
        text.push_str(&item);
        listed += 1;
    }
    if text.ends_with(',') {
        text.pop();
    }
    if listed < rest.len() + truncated {
        text.push_str(&format!(
            " … and {} not listed",
            rest.len() + truncated - listed
        ));
    }
    text
}

/// `lines` joined, as many as fit in `max` bytes; the first line always
/// (each line is already bounded well under any `max` used here).
fn fit(lines: Vec<String>, max: usize) -> String {
    let mut out = String::new();
    for line in lines {
        let sep = usize::from(!out.is_empty());
        if !out.is_empty() && out.len() + sep + line.len() > max.saturating_sub(4) {
            out.push_str("\n…");
            break;
        }
        if sep == 1 {
            out.push('\n');
        }
        out.push_str(&line);
    }
    wording::truncate(&out, max).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unescape(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    fn outcome(status: u16, body: &str) -> Outcome {
        let status = StatusCode::from_u16(status).unwrap();
        classify(
            status,
            &HeaderMap::new(),
            body.as_bytes(),
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn each_answer_slack_documents_has_its_outcome() {
        assert_eq!(outcome(200, "ok"), Outcome::Delivered);
        assert!(matches!(
            outcome(429, "rate_limited"),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            outcome(500, "rollup_error"),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            outcome(400, "invalid_payload"),
            Outcome::Reject { .. }
        ));
        for (status, code, says) in [
            (410, "channel_is_archived", "archived"),
            (404, "channel_not_found", "deleted"),
            (404, "no_service", "revoked"),
            (403, "action_prohibited", "admin restricted"),
            (403, "invalid_token", "refuses"),
        ] {
            match outcome(status, code) {
                Outcome::Disable { reason } => {
                    assert!(reason.contains(code) && reason.contains(says), "{reason}");
                }
                other => panic!("{status} {code}: {other:?}"),
            }
        }
        assert!(matches!(outcome(301, ""), Outcome::Reject { .. }));
    }

    #[test]
    fn a_long_or_hostile_answer_is_cut_and_cleaned_in_the_reason() {
        let body = format!("bad\r\n{}", "x".repeat(10_000));
        let Outcome::Reject { reason } = outcome(400, &body) else {
            panic!()
        };
        assert!(reason.len() < 400 && !reason.contains('\n'), "{reason}");
    }

    #[test]
    fn settings_refuse_what_is_not_a_web_url_without_showing_it() {
        assert_eq!(
            SlackSettings::new("ftp://hooks.slack.com/services/SECRET").unwrap_err(),
            SettingsError::NotHttp
        );
        assert_eq!(
            SlackSettings::new("/services/x").unwrap_err(),
            SettingsError::NotHttp
        );
        assert_eq!(
            SlackSettings::new("http://a b").unwrap_err(),
            SettingsError::NotAUrl
        );
        let settings = SlackSettings::new("https://hooks.slack.com/services/T1/B1/SECRET").unwrap();
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("hooks.slack.com"),
            "{shown}"
        );
    }

    proptest! {
        #[test]
        fn escaped_text_has_no_markup_and_reads_back_as_written(text in any::<String>()) {
            let escaped = escape(&text);
            prop_assert!(!escaped.contains(['<', '>']));
            prop_assert_eq!(unescape(&escaped), text);
        }

        #[test]
        fn safe_text_fits_and_never_cuts_an_entity(text in any::<String>(), max in 4usize..200) {
            let out = safe(&text, max);
            prop_assert!(out.len() <= max, "{} > {max}", out.len());
            prop_assert!(!out.contains(['<', '>']));
            let body = out.trim_end_matches(wording::ELLIPSIS);
            // Every `&` starts a whole entity.
            for (i, _) in body.match_indices('&') {
                let rest = &body[i..];
                prop_assert!(
                    ["&amp;", "&lt;", "&gt;"].iter().any(|e| rest.starts_with(e)),
                    "{rest:?}"
                );
            }
        }
    }
}

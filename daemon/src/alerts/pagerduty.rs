//! The PagerDuty channel: a [`Message`] rendered as Events API v2 events,
//! one per alert (`trigger` while bad, `resolve` once recovered, sharing a
//! stable `dedup_key`), and PagerDuty's answer classified into an
//! [`Outcome`].
//!
//! The seam with the dispatcher: [`requests`] gives the HTTP requests to
//! send, in order; the dispatcher sends them with its shared client and
//! hands each answer to [`classify`], stopping at the first that is not
//! [`Outcome::Delivered`] and reporting that one for the message. Sending a
//! message again is safe: PagerDuty folds a repeated `trigger` into the open
//! alert with the same `dedup_key`, and a repeated `resolve` does nothing.
//! Each event counts against PagerDuty's 120 events a minute per routing
//! key, so a message costs `requests(..).len()` of that budget.
//!
//! The routing key is a secret (it lets anyone open incidents): it is in the
//! body, so neither the request nor the body may be logged. This module does
//! no I/O and must not decide when or whether to send.
//!
//! Severity from status: UNHEALTHY is `critical` (the data is known wrong,
//! missing or late: page someone); UNKNOWN is `error` (a check could not
//! tell, usually a failing connector: something is broken, but the data may
//! be fine); WARNING is `warning`; HEALTHY (an entity of a firing group that
//! already recovered) is resolved rather than triggered.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::message::{Alert, AlertState, Message, Outcome, Step};
use super::{retry_after, wording};
use crate::health::Status;

/// PagerDuty's Events API v2 endpoint (the EU service uses
/// `https://events.eu.pagerduty.com/v2/enqueue`).
pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// An integration (routing) key's length.
pub const ROUTING_KEY_LEN: usize = 32;
/// PagerDuty's limit on `dedup_key`.
pub const MAX_DEDUP_KEY: usize = 255;
/// PagerDuty's limit on `payload.summary`.
pub const MAX_SUMMARY: usize = 1_024;
/// PagerDuty's limit on one event's body.
pub const MAX_BODY: usize = 512 * 1024;
/// How long to wait after a 429: PagerDuty sends no `Retry-After`, and its
/// limit is per minute.
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(60);
/// What PagerDuty shows as the event's sender.
pub const CLIENT: &str = "Tributary";
/// Reasons and also-affected entities kept in `custom_details`, and the
/// bytes of each text there: bounds that keep the worst-case body far
/// under [`MAX_BODY`] (about 150 KB) whatever plugins report.
const MAX_DETAIL_REASONS: usize = 20;
const MAX_DETAIL_AFFECTED: usize = 50;
const MAX_DETAIL_TEXT: usize = 1_024;
/// `source`, `component`, `group` and `class`, at most.
const MAX_FIELD: usize = 255;

/// A PagerDuty channel's settings, as the config resolved them.
#[derive(Clone)]
pub struct PagerDutySettings {
    routing_key: String,
    url: Uri,
}

/// Why a PagerDuty channel's settings are refused. Never shows the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "routing_key must be the integration's 32-character key (letters and digits), got {0} characters"
    )]
    RoutingKey(usize),
    #[error("url must be an http:// or https:// URL with a host")]
    Url,
}

impl PagerDutySettings {
    /// `routing_key` is the Events API v2 integration key; `url` replaces
    /// [`EVENTS_URL`] (the EU service, a proxy, a test).
    pub fn new(routing_key: &str, url: Option<&str>) -> Result<Self, SettingsError> {
        let key_ok = routing_key.len() == ROUTING_KEY_LEN
            && routing_key.bytes().all(|b| b.is_ascii_alphanumeric());
        if !key_ok {
            return Err(SettingsError::RoutingKey(routing_key.chars().count()));
        }
        let url: Uri = url
            .unwrap_or(EVENTS_URL)
            .parse()
            .map_err(|_| SettingsError::Url)?;
        let http = matches!(url.scheme_str(), Some("http" | "https"));
        if !http || url.host().is_none_or(str::is_empty) {
            return Err(SettingsError::Url);
        }
        Ok(Self {
            routing_key: routing_key.to_owned(),
            url,
        })
    }
}

impl fmt::Debug for PagerDutySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagerDutySettings")
            .field("routing_key", &"<redacted>")
            .field("url", &self.url)
            .finish()
    }
}

/// The POSTs that deliver `message`: one event per alert, in the message's
/// order (worst first).
pub fn requests(settings: &PagerDutySettings, message: &Message) -> Vec<http::Request<Vec<u8>>> {
    events(settings, message)
        .into_iter()
        .map(|event| {
            let mut request = http::Request::new(event.to_string().into_bytes());
            *request.method_mut() = Method::POST;
            *request.uri_mut() = settings.url.clone();
            request.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            request
        })
        .collect()
}

/// The events of `message`, one per alert.
pub fn events(settings: &PagerDutySettings, message: &Message) -> Vec<Value> {
    message
        .alerts
        .iter()
        .map(|alert| {
            let resolved = message.state == AlertState::Resolved || alert.status == Status::Healthy;
            if resolved {
                json!({
                    "routing_key": settings.routing_key,
                    "dedup_key": dedup_key(alert),
                    "event_action": "resolve",
                })
            } else {
                trigger(settings, message, alert)
            }
        })
        .collect()
}

/// The alert's `dedup_key`, the same for its trigger and its resolve:
/// [`Alert::dedup_key`] itself when PagerDuty can take it (1 to 255
/// printable characters), else `tributary:sha256:` and its hash, which is
/// as stable.
pub fn dedup_key(alert: &Alert) -> Cow<'_, str> {
    let key = alert.dedup_key.as_str();
    let fits =
        !key.is_empty() && key.len() <= MAX_DEDUP_KEY && !key.chars().any(|c| c.is_control());
    if fits {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!(
            "tributary:sha256:{}",
            hex::encode(Sha256::digest(key.as_bytes()))
        ))
    }
}

/// PagerDuty's severity for a status (see the module doc for why).
pub fn severity(status: Status) -> &'static str {
    match status {
        Status::Unhealthy => "critical",
        Status::Unknown => "error",
        Status::Warning => "warning",
        Status::Healthy => "info",
    }
}

fn trigger(settings: &PagerDutySettings, message: &Message, alert: &Alert) -> Value {
    let summary = match alert.reasons.first() {
        Some(reason) => format!(
            "{}: {}: {}",
            alert.status.as_str(),
            wording::path(alert),
            wording::reason(reason)
        ),
        None => format!("{}: {}", alert.status.as_str(), wording::path(alert)),
    };
    let since: DateTime<Utc> = alert.since.into();
    let step_name = |kinds: &[&str]| {
        alert
            .path
            .iter()
            .rev()
            .find(|s| kinds.contains(&s.kind))
            .map(|s| field(&wording::name(s)))
    };
    let mut payload = Map::new();
    payload.insert(
        "summary".into(),
        wording::truncate(&summary, MAX_SUMMARY).into(),
    );
    // Where the problem is: the system holding the data, else the entity.
    let source = step_name(&["system"])
        .or_else(|| alert.path.last().map(|s| field(&wording::name(s))))
        .unwrap_or_else(|| CLIENT.to_owned());
    payload.insert("source".into(), source.into());
    payload.insert("severity".into(), severity(alert.status).into());
    payload.insert(
        "timestamp".into(),
        since.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
    );
    if let Some(component) = step_name(&["asset", "check"]) {
        payload.insert("component".into(), component.into());
    }
    if let Some(group) = step_name(&["flow"]) {
        payload.insert("group".into(), group.into());
    }
    if let Some(reason) = alert.reasons.first() {
        payload.insert("class".into(), reason.rule.as_str().into());
    }
    payload.insert("custom_details".into(), details(message, alert));
    let mut event = json!({
        "routing_key": settings.routing_key,
        "dedup_key": dedup_key(alert),
        "event_action": "trigger",
        "client": CLIENT,
        "payload": payload,
    });
    if let Some(link) = alert.link.as_deref().and_then(wording::web_link) {
        event["links"] = json!([{ "href": link, "text": "Open in Tributary" }]);
    }
    event
}

/// A short field, cleaned and cut.
fn field(text: &str) -> String {
    wording::truncate(&wording::clean(text), MAX_FIELD).into_owned()
}

fn detail(text: &str) -> String {
    wording::truncate(&wording::clean(text), MAX_DETAIL_TEXT).into_owned()
}

fn step(step: &Step) -> Value {
    json!({ "kind": step.kind, "key": detail(&step.key), "name": detail(&step.name) })
}

/// What PagerDuty shows under the alert's details: path, status, reasons,
/// counts, what else is affected, and where the message came from.
fn details(message: &Message, alert: &Alert) -> Value {
    let reasons: Vec<Value> = alert
        .reasons
        .iter()
        .take(MAX_DETAIL_REASONS)
        .map(|r| {
            json!({
                "rule": r.rule.as_str(),
                "status": r.status.as_str(),
                "message": detail(&wording::reason(r)),
            })
        })
        .collect();
    let affected: Vec<Value> = alert
        .also_affected
        .iter()
        .take(MAX_DETAIL_AFFECTED)
        .map(step)
        .collect();
    let counts = alert.counts.map(|c| {
        json!({
            "expected": c.expected,
            "received": c.received,
            "missing": c.missing,
            "errored": c.errored,
        })
    });
    json!({
        "path": detail(&wording::path(alert)),
        "entity": alert.path.iter().map(step).collect::<Vec<_>>(),
        "status": alert.status.as_str(),
        "previous": alert.previous.map(Status::as_str),
        "reasons": reasons,
        "reasons_total": alert.reasons.len(),
        "counts": counts,
        "also_affected": affected,
        "also_affected_total": alert.also_affected.len(),
        "health_event_seq": alert.seq,
        "route": detail(&message.route),
        "group": detail(&message.group_key),
        "message_id": detail(&message.id),
    })
}

/// What PagerDuty's answer means: 202 taken; 400 never (the event is
/// invalid); 429 later, a minute unless told; 5xx later.
pub fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Outcome {
    let said = |what: &str| {
        format!(
            "PagerDuty answered {}: {what}{}",
            status.as_u16(),
            errors(body)
        )
    };
    match status.as_u16() {
        200..=299 => Outcome::Delivered,
        429 => Outcome::Retry {
            after: Some(retry_after::from_headers(headers, now).unwrap_or(RATE_LIMIT_BACKOFF)),
            reason: said("rate limited (120 events a minute per routing key)"),
        },
        408 | 500..=599 => Outcome::Retry {
            after: retry_after::from_headers(headers, now),
            reason: said("PagerDuty failed to take the event"),
        },
        400 => Outcome::Reject {
            reason: said("the event is invalid and will not be sent again"),
        },
        _ => Outcome::Reject {
            reason: said("the event was refused and will not be sent again"),
        },
    }
}

/// `: <message>: <errors>` from PagerDuty's error body
/// (`{"status", "message", "errors": [...]}`), bounded; empty when the
/// body is not one.
fn errors(body: &[u8]) -> String {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(message) = answer.get("message").and_then(Value::as_str) {
        parts.push(message.to_owned());
    }
    if let Some(errors) = answer.get("errors").and_then(Value::as_array) {
        parts.extend(errors.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if parts.is_empty() {
        return String::new();
    }
    let text = format!(": {}", parts.join("; "));
    wording::truncate(&wording::clean(&text), 500).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, headers: HeaderMap, body: &str) -> Outcome {
        let status = StatusCode::from_u16(status).unwrap();
        classify(status, &headers, body.as_bytes(), SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn each_answer_pagerduty_documents_has_its_outcome() {
        assert_eq!(outcome(202, HeaderMap::new(), "{}"), Outcome::Delivered);
        let Outcome::Reject { reason } = outcome(
            400,
            HeaderMap::new(),
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing"]}"#,
        ) else {
            panic!()
        };
        assert_eq!(
            reason,
            "PagerDuty answered 400: the event is invalid and will not be sent again: \
             Event object is invalid; 'payload.summary' is missing"
        );
        assert!(matches!(
            outcome(429, HeaderMap::new(), ""),
            Outcome::Retry {
                after: Some(RATE_LIMIT_BACKOFF),
                ..
            }
        ));
        let mut told = HeaderMap::new();
        told.insert(http::header::RETRY_AFTER, "5".parse().unwrap());
        assert!(matches!(
            outcome(429, told, ""),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(5)
        ));
        assert!(matches!(
            outcome(503, HeaderMap::new(), ""),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            outcome(413, HeaderMap::new(), ""),
            Outcome::Reject { .. }
        ));
    }

    #[test]
    fn settings_want_a_32_character_key_and_never_show_it() {
        let key = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            PagerDutySettings::new(&key[..31], None).unwrap_err(),
            SettingsError::RoutingKey(31)
        );
        let with_space = format!("{} ", &key[..31]);
        assert!(PagerDutySettings::new(&with_space, None).is_err());
        assert_eq!(
            PagerDutySettings::new(key, Some("file:///etc/passwd")).unwrap_err(),
            SettingsError::Url
        );
        let settings = PagerDutySettings::new(key, None).unwrap();
        assert!(!format!("{settings:?}").contains(key));
    }

    #[test]
    fn severity_is_documented_per_status() {
        let all: Vec<&str> = Status::ALL.into_iter().map(severity).collect();
        assert_eq!(all, ["info", "warning", "error", "critical"]);
    }
}

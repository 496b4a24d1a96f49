//! Fake of PagerDuty's Events API v2 (`shared/reference/alerting.md` (e)):
//! `POST /v2/enqueue`, validated as PagerDuty validates an event, and the
//! alerts the events open and resolve.
//!
//! It refuses with `400 {"status":"invalid event","message":…,"errors":[…]}`
//! a body over 512 KB or not a JSON object, a `routing_key` that is not one
//! of its integrations' 32-character keys, an `event_action` other than
//! `trigger`, `acknowledge` or `resolve`, a `dedup_key` over 255 characters
//! (or missing on acknowledge and resolve), and a trigger whose `payload`
//! lacks `summary` (at most 1,024 characters), `source` or a `severity` of
//! `critical`, `error`, `warning` or `info`, or has a `timestamp` that is
//! not ISO 8601, or `links` without `href`. Past 120 events in a minute for
//! one routing key it answers `429` (with no `Retry-After`, as PagerDuty).
//! An event it takes gets `202 {"status":"success","dedup_key":…}`.
//!
//! Like PagerDuty, a trigger opens an alert for its `(routing_key,
//! dedup_key)` or, while one is open, is folded into it; a resolve closes
//! it; a trigger after a resolve opens a new one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::{Value, json};

pub const ENQUEUE_PATH: &str = "/v2/enqueue";
/// The integration key the fake knows unless told others.
pub const ROUTING_KEY: &str = "R0UT1NGKEYFAKE0000000000000000AB";
pub const MAX_BODY: usize = 512 * 1024;
pub const MAX_SUMMARY: usize = 1_024;
pub const MAX_DEDUP_KEY: usize = 255;
/// Events a routing key may send in [`RATE_WINDOW`].
pub const RATE_LIMIT: usize = 120;
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// An alert the events made, as PagerDuty would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub open: bool,
    /// Triggers folded into this alert (the first one included).
    pub triggers: usize,
    /// Alerts opened under this key so far (a trigger after a resolve
    /// opens a new one).
    pub opened: usize,
    pub summary: String,
    pub severity: String,
}

#[derive(Debug, Default)]
struct State {
    keys: Vec<String>,
    /// When each routing key's recent events came, oldest first.
    recent: BTreeMap<String, VecDeque<Instant>>,
    events: Vec<Value>,
    alerts: BTreeMap<String, Alert>,
    refused: Vec<Vec<String>>,
}

/// The fake; clones share its state.
#[derive(Clone)]
pub struct PagerDutyFake {
    state: Arc<Mutex<State>>,
}

impl Default for PagerDutyFake {
    fn default() -> Self {
        Self::new(&[ROUTING_KEY])
    }
}

impl PagerDutyFake {
    /// A fake with these integration keys.
    pub fn new(keys: &[&str]) -> Self {
        let state = State {
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            ..State::default()
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub async fn start(self) -> TestServer {
        TestServer::start(move |req| self.handle(req)).await
    }

    /// Every event taken, in order.
    pub fn events(&self) -> Vec<Value> {
        self.lock().events.clone()
    }

    /// The alert under `dedup_key` (for any routing key).
    pub fn alert(&self, dedup_key: &str) -> Option<Alert> {
        self.lock().alerts.get(dedup_key).cloned()
    }

    /// The errors of each refused event, in order.
    pub fn refused(&self) -> Vec<Vec<String>> {
        self.lock().refused.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("pagerduty fake lock")
    }

    pub fn handle(&self, req: &Recorded) -> Reply {
        if req.path != ENQUEUE_PATH {
            return Reply::status(404);
        }
        if req.method != "POST" {
            return Reply::status(405);
        }
        let mut state = self.lock();
        let event = match validate(&req.body, &state.keys) {
            Ok(event) => event,
            Err(errors) => {
                let reply = Reply::json(
                    400,
                    json!({
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": errors,
                    }),
                );
                state.refused.push(errors);
                return reply;
            }
        };
        let key = event["routing_key"].as_str().unwrap_or_default().to_owned();
        let now = Instant::now();
        let recent = state.recent.entry(key).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= RATE_LIMIT {
            return Reply::json(
                429,
                json!({
                    "status": "throttle event",
                    "message": "Requests for this service are arriving too quickly. Please retry later.",
                }),
            );
        }
        recent.push_back(now);
        let dedup_key = match event["dedup_key"].as_str() {
            Some(key) => key.to_owned(),
            None => format!("generated-{}", state.events.len()),
        };
        apply(&mut state.alerts, &dedup_key, &event);
        state.events.push(event);
        Reply::json(
            202,
            json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key }),
        )
    }
}

fn apply(alerts: &mut BTreeMap<String, Alert>, dedup_key: &str, event: &Value) {
    match event["event_action"].as_str() {
        Some("trigger") => {
            let summary = event["payload"]["summary"].as_str().unwrap_or_default();
            let severity = event["payload"]["severity"].as_str().unwrap_or_default();
            let alert = alerts.entry(dedup_key.to_owned()).or_insert(Alert {
                open: false,
                triggers: 0,
                opened: 0,
                summary: String::new(),
                severity: String::new(),
            });
            if !alert.open {
                alert.open = true;
                alert.opened += 1;
                alert.triggers = 0;
                alert.summary = summary.to_owned();
                alert.severity = severity.to_owned();
            }
            alert.triggers += 1;
        }
        Some("resolve") => {
            if let Some(alert) = alerts.get_mut(dedup_key) {
                alert.open = false;
            }
        }
        _ => {}
    }
}

/// The event, or every error PagerDuty would list for it, for an
/// integration with `keys`.
pub fn validate(body: &[u8], keys: &[String]) -> Result<Value, Vec<String>> {
    if body.len() > MAX_BODY {
        return Err(vec![format!(
            "Event object is too large: {} bytes, more than {MAX_BODY}",
            body.len()
        )]);
    }
    let event: Value =
        serde_json::from_slice(body).map_err(|e| vec![format!("Event object is not JSON: {e}")])?;
    if !event.is_object() {
        return Err(vec!["Event object is not a JSON object".into()]);
    }
    let mut errors = Vec::new();
    match event["routing_key"].as_str() {
        Some(key) if key.chars().count() == 32 && keys.iter().any(|k| k == key) => {}
        Some(key) if key.chars().count() == 32 => errors.push("Invalid routing key".into()),
        Some(_) => errors.push("'routing_key' must be 32 characters".into()),
        None => errors.push("'routing_key' is missing or not a string".into()),
    }
    let action = event["event_action"].as_str();
    if !matches!(action, Some("trigger" | "acknowledge" | "resolve")) {
        errors.push("'event_action' must be one of trigger, acknowledge, resolve".into());
    }
    match event.get("dedup_key") {
        None if matches!(action, Some("acknowledge" | "resolve")) => {
            errors.push("'dedup_key' is required to acknowledge or resolve".into());
        }
        None => {}
        Some(Value::String(key)) if key.chars().count() <= MAX_DEDUP_KEY => {}
        Some(Value::String(_)) => {
            errors.push(format!(
                "'dedup_key' is longer than {MAX_DEDUP_KEY} characters"
            ));
        }
        Some(_) => errors.push("'dedup_key' is not a string".into()),
    }
    if action == Some("trigger") {
        check_payload(&event["payload"], &mut errors);
        check_links(&event, &mut errors);
    }
    if errors.is_empty() {
        Ok(event)
    } else {
        Err(errors)
    }
}

fn check_payload(payload: &Value, errors: &mut Vec<String>) {
    if !payload.is_object() {
        errors.push("'payload' is required to trigger".into());
        return;
    }
    match payload["summary"].as_str() {
        Some(s) if !s.is_empty() && s.chars().count() <= MAX_SUMMARY => {}
        Some("") => errors.push("'payload.summary' is empty".into()),
        Some(_) => errors.push(format!(
            "'payload.summary' is longer than {MAX_SUMMARY} characters"
        )),
        None => errors.push("'payload.summary' is missing".into()),
    }
    if payload["source"].as_str().is_none_or(str::is_empty) {
        errors.push("'payload.source' is missing".into());
    }
    if !matches!(
        payload["severity"].as_str(),
        Some("critical" | "error" | "warning" | "info")
    ) {
        errors.push("'payload.severity' must be one of critical, error, warning, info".into());
    }
    if let Some(timestamp) = payload.get("timestamp") {
        let valid = timestamp
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
        if !valid {
            errors.push("'payload.timestamp' is not an ISO 8601 time".into());
        }
    }
    for field in ["component", "group", "class"] {
        if payload.get(field).is_some_and(|v| !v.is_string()) {
            errors.push(format!("'payload.{field}' is not a string"));
        }
    }
}

fn check_links(event: &Value, errors: &mut Vec<String>) {
    let Some(links) = event.get("links") else {
        return;
    };
    let valid = links.as_array().is_some_and(|links| {
        links
            .iter()
            .all(|link| link["href"].as_str().is_some_and(|h| !h.is_empty()))
    });
    if !valid {
        errors.push("'links' must be a list of objects with 'href'".into());
    }
}

//! What a plugin call gave, as JSON, and how it differs from what a test
//! expected.
//!
//! This is the one JSON form of the contract's results outside the plugin:
//! `tributary plugin call` prints it, `tributary plugin test` and
//! [`super::replay`] compare it with a fixture's `expect`. Times are RFC 3339
//! (UTC); absent options, empty lists and empty maps are left out, so an
//! expected file says only what the plugin reported. It must not run plugins
//! or read files: it only converts and compares.

use std::collections::BTreeMap;
use std::fmt::Write;

use plugin_host::{
    ActionOutcome, AssetDescriptor, AssetError, Capabilities, Descriptor, ErrorClass, Observation,
    Report, RunError, StatusLevel, Timestamp,
};
use serde_json::{Map, Value, json};

/// How many differences a diff lists before it says how many more there are.
const DIFF_LINES: usize = 40;

/// A time as RFC 3339 text in UTC, or its raw parts when chrono cannot
/// represent it (a plugin may send any `s64`).
pub fn timestamp(t: &Timestamp) -> Value {
    match chrono::DateTime::from_timestamp(t.seconds, t.nanos) {
        Some(at) => json!(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => json!({"seconds": t.seconds, "nanos": t.nanos}),
    }
}

pub fn error_class(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Config => "config",
        ErrorClass::Auth => "auth",
        ErrorClass::Transient => "transient",
        ErrorClass::System => "system",
    }
}

/// `{"error": {"class", "message"}}`: a failed call, whether the plugin
/// returned the error or the host stopped it.
pub fn error(e: &RunError) -> Value {
    let message = match e {
        // The plugin's own words, without the host's "config error:" prefix.
        RunError::Connector { message, .. } => message.clone(),
        other => other.to_string(),
    };
    json!({"error": {"class": error_class(e.class()), "message": message}})
}

pub fn descriptor(d: &Descriptor) -> Value {
    let schema: Value =
        serde_json::from_str(&d.config_schema).unwrap_or_else(|_| json!(d.config_schema));
    let mut capabilities = Vec::new();
    if d.capabilities.contains(Capabilities::RESYNC) {
        capabilities.push("resync");
    }
    if d.capabilities.contains(Capabilities::DELETE) {
        capabilities.push("delete");
    }
    let mut out = Map::new();
    out.insert("name".into(), json!(d.name));
    out.insert("version".into(), json!(d.version));
    out.insert("description".into(), json!(d.description));
    out.insert("config_schema".into(), schema);
    put_list(
        &mut out,
        "capabilities",
        capabilities.into_iter().map(Value::from),
    );
    put_list(
        &mut out,
        "suggested_hosts",
        d.suggested_hosts.iter().map(|h| json!(h)),
    );
    json!({"descriptor": out})
}

pub fn assets(assets: &[AssetDescriptor]) -> Value {
    let list: Vec<Value> = assets
        .iter()
        .map(|a| {
            let mut out = Map::new();
            out.insert("asset".into(), json!(a.asset));
            out.insert("kind".into(), json!(a.kind));
            put_opt(
                &mut out,
                "description",
                a.description.as_ref().map(|d| json!(d)),
            );
            Value::Object(out)
        })
        .collect();
    json!({"assets": list})
}

pub fn action(outcome: &ActionOutcome) -> Value {
    let mut out = Map::new();
    put_opt(&mut out, "affected", outcome.affected.map(Value::from));
    put_opt(
        &mut out,
        "message",
        outcome.message.as_ref().map(|m| json!(m)),
    );
    json!({"outcome": out})
}

/// `{"report": ..., "ids": {asset: [id, ...]}}`; `ids` only when some were
/// streamed.
pub fn collected(report: &Report, ids: &BTreeMap<String, Vec<String>>) -> Value {
    let observations: Vec<Value> = report.observations.iter().map(observation).collect();
    let mut out = Map::new();
    out.insert("report".into(), json!({"observations": observations}));
    if !ids.is_empty() {
        out.insert("ids".into(), json!(ids));
    }
    Value::Object(out)
}

fn observation(o: &Observation) -> Value {
    let mut counts = Map::new();
    put_opt(&mut counts, "expected", o.counts.expected.map(Value::from));
    put_opt(&mut counts, "received", o.counts.received.map(Value::from));
    put_opt(&mut counts, "errored", o.counts.errored.map(Value::from));
    put_map(
        &mut counts,
        "extras",
        o.counts
            .extras
            .iter()
            .map(|c| (c.name.clone(), json!(c.value))),
    );
    let mut out = Map::new();
    out.insert("asset".into(), json!(o.asset));
    out.insert("kind".into(), json!(o.kind));
    out.insert("counts".into(), Value::Object(counts));
    put_opt(&mut out, "freshness", o.freshness.as_ref().map(timestamp));
    put_opt(
        &mut out,
        "last_received",
        o.last_received.as_ref().map(|l| {
            let mut last = Map::new();
            last.insert("id".into(), json!(l.id));
            put_opt(&mut last, "at", l.at.as_ref().map(timestamp));
            Value::Object(last)
        }),
    );
    put_opt(
        &mut out,
        "native_status",
        o.native_status.as_ref().map(|n| {
            let level = match n.level {
                StatusLevel::Ok => "ok",
                StatusLevel::Warn => "warn",
                StatusLevel::Error => "error",
                StatusLevel::Unknown => "unknown",
            };
            let mut native = Map::new();
            native.insert("level".into(), json!(level));
            native.insert("label".into(), json!(n.label));
            put_opt(&mut native, "message", n.message.as_ref().map(|m| json!(m)));
            Value::Object(native)
        }),
    );
    put_list(&mut out, "errors", o.errors.iter().map(asset_error));
    put_map(
        &mut out,
        "error_totals",
        o.error_totals
            .iter()
            .map(|t| (t.kind.clone(), json!(t.count))),
    );
    put_map(
        &mut out,
        "metadata",
        o.metadata.iter().map(|m| (m.key.clone(), json!(m.value))),
    );
    Value::Object(out)
}

fn asset_error(e: &AssetError) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), json!(e.kind));
    out.insert("message".into(), json!(e.message));
    put_opt(
        &mut out,
        "document_id",
        e.document_id.as_ref().map(|d| json!(d)),
    );
    put_opt(&mut out, "log_link", e.log_link.as_ref().map(|l| json!(l)));
    put_opt(&mut out, "at", e.at.as_ref().map(timestamp));
    Value::Object(out)
}

fn put_opt(out: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        out.insert(key.into(), value);
    }
}

fn put_list(out: &mut Map<String, Value>, key: &str, items: impl Iterator<Item = Value>) {
    let items: Vec<Value> = items.collect();
    if !items.is_empty() {
        out.insert(key.into(), Value::Array(items));
    }
}

/// A map in the plugin's order; a key the plugin sent twice keeps its last
/// value, as the daemon's store does.
fn put_map(out: &mut Map<String, Value>, key: &str, items: impl Iterator<Item = (String, Value)>) {
    let map: Map<String, Value> = items.collect();
    if !map.is_empty() {
        out.insert(key.into(), Value::Object(map));
    }
}

/// Every place where `actual` differs from `expected`, one line each
/// (`/report/observations/0/counts/received: expected 97, got 98`), at most
/// [`DIFF_LINES`] of them; empty when they are equal.
pub fn diff(expected: &Value, actual: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    walk("", expected, actual, &mut lines);
    if lines.len() > DIFF_LINES {
        let more = lines.len() - DIFF_LINES;
        lines.truncate(DIFF_LINES);
        lines.push(format!("... and {more} more difference(s)"));
    }
    lines
}

fn walk(at: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let here = format!("{at}/{}", pointer_escape(key));
                match a.get(key) {
                    Some(av) => walk(&here, ev, av, out),
                    None => out.push(format!("{here}: expected {}, got nothing", short(ev))),
                }
            }
            for (key, av) in a.iter().filter(|(k, _)| !e.contains_key(*k)) {
                out.push(format!(
                    "{at}/{}: expected nothing, got {}",
                    pointer_escape(key),
                    short(av)
                ));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                walk(&format!("{at}/{i}"), ev, av, out);
            }
            for (i, ev) in e.iter().enumerate().skip(a.len()) {
                out.push(format!("{at}/{i}: expected {}, got nothing", short(ev)));
            }
            for (i, av) in a.iter().enumerate().skip(e.len()) {
                out.push(format!("{at}/{i}: expected nothing, got {}", short(av)));
            }
        }
        (e, a) if e == a => {}
        (e, a) => {
            let here = if at.is_empty() { "/" } else { at };
            out.push(format!("{here}: expected {}, got {}", short(e), short(a)));
        }
    }
}

/// A JSON pointer token (RFC 6901).
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A value for a diff line: compact JSON, cut at 200 characters, with
/// control characters escaped by JSON itself.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= 200 {
        return text;
    }
    let mut cut: String = text.chars().take(200).collect();
    let _ = write!(cut, "... ({} bytes)", text.len());
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_have_no_diff() {
        let v = json!({"report": {"observations": [{"asset": "a", "counts": {"received": 1}}]}});
        assert!(diff(&v, &v.clone()).is_empty());
    }

    #[test]
    fn a_diff_names_each_place_with_both_values() {
        let expected = json!({"report": {"observations": [{"asset": "a", "counts": {"received": 97}}]}, "ids": {"a": ["1"]}});
        let actual = json!({"report": {"observations": [{"asset": "a", "counts": {"received": 98, "errored": 2}}, {"asset": "b"}]}});
        assert_eq!(
            diff(&expected, &actual),
            // Keys in JSON order (sorted), expected ones first.
            vec![
                "/ids: expected {\"a\":[\"1\"]}, got nothing",
                "/report/observations/0/counts/received: expected 97, got 98",
                "/report/observations/0/counts/errored: expected nothing, got 2",
                "/report/observations/1: expected nothing, got {\"asset\":\"b\"}",
            ]
        );
    }

    #[test]
    fn keys_with_slashes_are_escaped_and_long_values_cut() {
        let long = "x".repeat(10_000);
        let lines = diff(&json!({"a/b~": 1}), &json!({"a/b~": long}));
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("/a~1b~0: expected 1, got \"xxx"),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with("(10002 bytes)"), "{}", lines[0]);
    }

    #[test]
    fn a_long_diff_says_how_many_more() {
        let e: Vec<u32> = (0..100).collect();
        let a: Vec<u32> = (1..101).collect();
        let lines = diff(&json!(e), &json!(a));
        assert_eq!(lines.len(), DIFF_LINES + 1);
        assert_eq!(lines[DIFF_LINES], "... and 60 more difference(s)");
    }

    #[test]
    fn times_are_rfc3339_and_out_of_range_ones_stay_raw() {
        let t = Timestamp {
            seconds: 1_763_632_800,
            nanos: 0,
        };
        assert_eq!(timestamp(&t), json!("2025-11-20T10:00:00Z"));
        let far = Timestamp {
            seconds: i64::MAX,
            nanos: 5,
        };
        assert_eq!(timestamp(&far), json!({"seconds": i64::MAX, "nanos": 5}));
    }
}

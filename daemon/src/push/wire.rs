//! The JSON a client pushes: the WIT `report` of the plugin contract in
//! snake_case (published as a JSON Schema by `tributary push-schema`), read
//! into the plugin's own [`Report`] so a pushed report and a plugin's take
//! the same path from here on.
//!
//! It owns reading and checking a body, and says what is wrong with every bad
//! field at once, each by its JSON pointer. It must not know HTTP, tokens or
//! the store.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::plugin::{
    AssetError, Counts, ErrorTotal, LastReceived, MetadataEntry, NamedCount, NativeStatus,
    Observation, Report, StatusLevel, Timestamp,
};

/// The JSON Schema of a pushed report.
pub const SCHEMA: &str = include_str!("report.schema.json");

/// How far ahead of the daemon's clock a pushed time may be (clock skew);
/// later is a mistake (a year 9999, milliseconds sent as seconds).
pub const MAX_AHEAD: Duration = Duration::from_secs(86_400);

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the push schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the push schema is a valid JSON Schema")
});

/// Most field errors listed in one answer.
const MAX_LISTED: usize = 100;

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// JSON pointer into the body (`""` for the whole body), or the query
    /// parameter (`?status`).
    pub pointer: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// A report as pushed, checked against the schema and the clock.
#[derive(Debug)]
pub struct Pushed {
    pub at: Option<SystemTime>,
    pub report: Report,
    /// Id sets it finishes: asset -> set name.
    pub ids: BTreeMap<String, String>,
}

/// Reads `body` as a report, with `now` the daemon's time; every bad field
/// is listed.
pub fn read_report(body: &[u8], now: SystemTime) -> Result<Pushed, Vec<FieldError>> {
    let value = read_json(body)?;
    let mut errors: Vec<FieldError> = VALIDATOR
        .iter_errors(&value)
        .take(MAX_LISTED)
        .map(|e| FieldError::new(e.instance_path().as_str(), cut(&e.to_string())))
        .collect();
    if !errors.is_empty() {
        errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        return Err(errors);
    }
    let wire: WireReport = serde_json::from_value(value)
        .map_err(|e| vec![FieldError::new("", format!("unreadable report: {e}"))])?;
    let mut times = Times { now, errors };
    let at = wire.at.and_then(|t| times.read(&t, "/at"));
    let observations: Vec<Observation> = wire
        .observations
        .into_iter()
        .enumerate()
        .map(|(i, o)| o.into_observation(&mut times, &format!("/observations/{i}")))
        .collect();
    for asset in wire.ids.keys() {
        if !wire_names(&observations, asset) {
            times.errors.push(FieldError::new(
                format!("/ids/{}", escape(asset)),
                format!("asset {asset:?} has ids but is not in this report's observations"),
            ));
        }
    }
    if !times.errors.is_empty() {
        return Err(times.errors);
    }
    Ok(Pushed {
        at,
        report: Report { observations },
        ids: wire.ids,
    })
}

fn wire_names(observations: &[Observation], asset: &str) -> bool {
    observations.iter().any(|o| o.asset == asset)
}

/// The body as JSON: UTF-8 and syntax errors say where.
pub fn read_json(body: &[u8]) -> Result<Value, Vec<FieldError>> {
    read_json_seed(body, std::marker::PhantomData::<Value>)
}

/// [`read_json`] building only what `seed` keeps of the body.
pub fn read_json_seed<'de, S>(body: &'de [u8], seed: S) -> Result<Value, Vec<FieldError>>
where
    S: serde::de::DeserializeSeed<'de, Value = Value>,
{
    if let Err(e) = std::str::from_utf8(body) {
        return Err(vec![FieldError::new(
            "",
            format!("the body is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )]);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    seed.deserialize(&mut de)
        .and_then(|value| de.end().map(|()| value))
        .map_err(|e| {
            vec![FieldError::new(
                "",
                format!(
                    "the body is not JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )]
        })
}

/// Times read so far, and what was wrong with them.
struct Times {
    now: SystemTime,
    errors: Vec<FieldError>,
}

impl Times {
    fn read(&mut self, t: &WireTime, pointer: &str) -> Option<SystemTime> {
        let at = match t {
            WireTime::Text(text) => parse_time(text, self.now),
            WireTime::Record { seconds, nanos } => not_ahead(
                UNIX_EPOCH
                    + Duration::from_secs(*seconds)
                    + Duration::from_nanos(u64::from(*nanos)),
                self.now,
            ),
        };
        at.map_err(|message| self.errors.push(FieldError::new(pointer, message)))
            .ok()
    }
}

/// An RFC 3339 time that a client may send, with `now` the daemon's time:
/// not before 1970, not more than [`MAX_AHEAD`] ahead.
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let dt = chrono::DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    let ms = u64::try_from(dt.timestamp_millis())
        .map_err(|_| format!("{text:?} is before 1970-01-01T00:00:00Z"))?;
    let nanos = dt.timestamp_subsec_nanos() % 1_000_000;
    not_ahead(
        UNIX_EPOCH + Duration::from_millis(ms) + Duration::from_nanos(u64::from(nanos)),
        now,
    )
}

fn not_ahead(at: SystemTime, now: SystemTime) -> Result<SystemTime, String> {
    if at > now + MAX_AHEAD {
        return Err(format!(
            "{} is more than a day ahead of the daemon's clock ({})",
            rfc3339(at),
            rfc3339(now)
        ));
    }
    Ok(at)
}

pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos(),
    }
}

/// A JSON pointer token: `~` and `/` escaped.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn cut(message: &str) -> String {
    const MAX: usize = 300;
    match message.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &message[..at]),
        None => message.to_owned(),
    }
}

#[derive(Deserialize)]
struct WireReport {
    #[serde(default)]
    at: Option<WireTime>,
    observations: Vec<WireObservation>,
    #[serde(default)]
    ids: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireTime {
    Text(String),
    Record {
        seconds: u64,
        #[serde(default)]
        nanos: u32,
    },
}

#[derive(Deserialize)]
struct WireObservation {
    asset: String,
    kind: String,
    counts: WireCounts,
    #[serde(default)]
    freshness: Option<WireTime>,
    #[serde(default)]
    last_received: Option<WireLastReceived>,
    #[serde(default)]
    native_status: Option<WireNative>,
    #[serde(default)]
    errors: Vec<WireError>,
    #[serde(default)]
    error_totals: Vec<WireTotal>,
    #[serde(default)]
    metadata: Vec<WireMetadata>,
}

#[derive(Deserialize)]
struct WireCounts {
    #[serde(default)]
    expected: Option<u64>,
    #[serde(default)]
    received: Option<u64>,
    #[serde(default)]
    errored: Option<u64>,
    #[serde(default)]
    extras: Vec<WireNamed>,
}

#[derive(Deserialize)]
struct WireNamed {
    name: String,
    value: u64,
}

#[derive(Deserialize)]
struct WireLastReceived {
    id: String,
    #[serde(default)]
    at: Option<WireTime>,
}

#[derive(Deserialize)]
struct WireNative {
    level: WireLevel,
    label: String,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WireLevel {
    Ok,
    Warn,
    Error,
    Unknown,
}

#[derive(Deserialize)]
struct WireError {
    kind: String,
    message: String,
    #[serde(default)]
    document_id: Option<String>,
    #[serde(default)]
    log_link: Option<String>,
    #[serde(default)]
    at: Option<WireTime>,
}

#[derive(Deserialize)]
struct WireTotal {
    kind: String,
    count: u64,
}

#[derive(Deserialize)]
struct WireMetadata {
    key: String,
    value: String,
}

impl WireObservation {
    fn into_observation(self, times: &mut Times, at: &str) -> Observation {
        let mut time = |t: Option<WireTime>, pointer: String| {
            t.and_then(|t| times.read(&t, &pointer)).map(timestamp)
        };
        let freshness = time(self.freshness, format!("{at}/freshness"));
        let last_received = self.last_received.map(|l| LastReceived {
            at: time(l.at, format!("{at}/last_received/at")),
            id: l.id,
        });
        let errors = self
            .errors
            .into_iter()
            .enumerate()
            .map(|(i, e)| AssetError {
                at: time(e.at, format!("{at}/errors/{i}/at")),
                kind: e.kind,
                message: e.message,
                document_id: e.document_id,
                log_link: e.log_link,
            })
            .collect();
        Observation {
            asset: self.asset,
            kind: self.kind,
            counts: Counts {
                expected: self.counts.expected,
                received: self.counts.received,
                errored: self.counts.errored,
                extras: (self.counts.extras.into_iter())
                    .map(|n| NamedCount {
                        name: n.name,
                        value: n.value,
                    })
                    .collect(),
            },
            freshness,
            last_received,
            native_status: self.native_status.map(|n| NativeStatus {
                level: level(n.level),
                label: n.label,
                message: n.message,
            }),
            errors,
            error_totals: (self.error_totals.into_iter())
                .map(|t| ErrorTotal {
                    kind: t.kind,
                    count: t.count,
                })
                .collect(),
            metadata: (self.metadata.into_iter())
                .map(|m| MetadataEntry {
                    key: m.key,
                    value: m.value,
                })
                .collect(),
        }
    }
}

fn level(l: WireLevel) -> StatusLevel {
    match l {
        WireLevel::Ok => StatusLevel::Ok,
        WireLevel::Warn => StatusLevel::Warn,
        WireLevel::Error => StatusLevel::Error,
        WireLevel::Unknown => StatusLevel::Unknown,
    }
}

/// The report a heartbeat stands for: one observation of `asset` whose
/// native status is the beat's (`ok` or `error`, with its message).
pub fn beat_report(asset: &str, ok: bool, message: Option<String>) -> Report {
    let mut observation = bare_observation(asset, "heartbeat");
    observation.native_status = Some(NativeStatus {
        level: if ok {
            StatusLevel::Ok
        } else {
            StatusLevel::Error
        },
        label: if ok { "ok" } else { "error" }.to_owned(),
        message,
    });
    Report {
        observations: vec![observation],
    }
}

/// An observation of `asset` that says nothing yet: reports the push API
/// makes for a client fill in what they know.
pub fn bare_observation(asset: &str, kind: &str) -> Observation {
    Observation {
        asset: asset.to_owned(),
        kind: kind.to_owned(),
        counts: Counts {
            expected: None,
            received: None,
            errored: None,
            extras: Vec::new(),
        },
        freshness: None,
        last_received: None,
        native_status: None,
        errors: Vec::new(),
        error_totals: Vec::new(),
        metadata: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_780_000_000)
    }

    #[test]
    fn every_bad_field_is_named_by_its_pointer() {
        let body = br#"{"observations":[{"asset":"a","kind":"t","counts":{"received":-1}},{"asset":"b","counts":{}}]}"#;
        let errors = read_report(body, now()).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(
            pointers.contains(&"/observations/0/counts/received"),
            "{errors:?}"
        );
        assert!(pointers.contains(&"/observations/1"), "{errors:?}");
    }

    #[test]
    fn times_before_1970_or_far_ahead_are_refused() {
        let body = br#"{"at":"9999-01-01T00:00:00Z","observations":[{"asset":"a","kind":"t","counts":{},"freshness":"1969-12-31T23:59:59Z"}]}"#;
        let errors = read_report(body, now()).unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/at", "/observations/0/freshness"]);
    }

    #[test]
    fn a_report_in_both_time_shapes_reads_into_the_plugin_report() {
        let body = br#"{"at":{"seconds":1780000000,"nanos":5},"observations":[{"asset":"a","kind":"t","counts":{"received":3,"extras":[{"name":"bytes","value":9}]},"freshness":"2026-05-28T20:26:40Z","native_status":{"level":"warn","label":"slow"}}],"ids":{"a":"s1"}}"#;
        let pushed = read_report(body, now()).unwrap();
        assert_eq!(pushed.at, Some(now() + Duration::from_nanos(5)));
        let o = &pushed.report.observations[0];
        assert_eq!(o.counts.received, Some(3));
        assert_eq!(o.counts.extras[0].value, 9);
        assert!(matches!(
            o.native_status.as_ref().map(|n| n.level),
            Some(StatusLevel::Warn)
        ));
        assert_eq!(pushed.ids["a"], "s1");
    }

    #[test]
    fn ids_for_an_asset_not_in_the_report_are_refused() {
        let body = br#"{"observations":[{"asset":"a","kind":"t","counts":{}}],"ids":{"b/c":"s1"}}"#;
        let errors = read_report(body, now()).unwrap_err();
        assert_eq!(errors[0].pointer, "/ids/b~1c");
    }
}

//! An OpenLineage RunEvent as Tributary reads it: the run, the job, the
//! datasets and the few facets that carry its signals (`outputStatistics`,
//! `dataQualityAssertions`, `errorMessage`, `nominalTime`). Every other
//! facet is skipped while the body is parsed ([`prune`]), so it is never
//! built, held or stored.
//!
//! It owns reading and checking a body, every bad field named by its JSON
//! pointer at once. It must not know HTTP, checks or the store.

use std::time::SystemTime;

use serde_json::Value;

use super::prune;
use crate::push::wire::{FieldError, parse_time, read_json_seed};

/// Longest namespace, name, run id, assertion or column taken, in bytes
/// (so a name of four-byte characters holds a quarter as many).
const MAX_NAME: usize = 1024;

/// The lifecycle step an event reports (`eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Running,
    Complete,
    Abort,
    Fail,
    /// Also an event without `eventType` (the spec makes it optional).
    Other,
}

impl EventType {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "START" => Self::Start,
            "RUNNING" => Self::Running,
            "COMPLETE" => Self::Complete,
            "ABORT" => Self::Abort,
            "FAIL" => Self::Fail,
            "OTHER" => Self::Other,
            _ => return None,
        })
    }

    /// As the spec spells it: the metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "START",
            Self::Running => "RUNNING",
            Self::Complete => "COMPLETE",
            Self::Abort => "ABORT",
            Self::Fail => "FAIL",
            Self::Other => "OTHER",
        }
    }

    /// Whether the run ended with it: a run has one terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Abort | Self::Fail)
    }
}

/// A job's or a dataset's identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Name {
    pub namespace: String,
    pub name: String,
}

/// One data quality assertion (`dataQualityAssertions.assertions[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub assertion: String,
    pub column: Option<String>,
    pub success: bool,
}

/// A dataset of an event, with what its facets say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub id: Name,
    /// `outputStatistics.rowCount`.
    pub row_count: Option<u64>,
    pub assertions: Vec<Assertion>,
}

/// The run's scheduled slot (`nominalTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nominal {
    pub start: SystemTime,
    pub end: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub event_type: EventType,
    pub event_time: SystemTime,
    pub run_id: String,
    pub job: Name,
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
    /// `errorMessage.message`.
    pub error: Option<String>,
    pub nominal: Option<Nominal>,
}

/// What a body holds.
#[derive(Debug)]
pub enum Read {
    Run(Box<RunEvent>),
    /// A DatasetEvent or JobEvent (static lineage, no run): nothing to judge.
    Static,
}

/// Reads `body`, with `now` the daemon's time; every bad field is listed.
pub fn read(body: &[u8], now: SystemTime) -> Result<Read, Vec<FieldError>> {
    let value = read_json_seed(body, &prune::EVENT)?;
    if !value.is_object() {
        return Err(vec![FieldError::new("", "an event is a JSON object")]);
    }
    if value.get("run").is_none()
        && value.get("eventType").is_none()
        && (value.get("dataset").is_some() || value.get("job").is_some())
    {
        return Ok(Read::Static);
    }
    let mut r = Reader {
        now,
        errors: Vec::new(),
    };
    let event_type = match value.get("eventType") {
        None | Some(Value::Null) => Some(EventType::Other),
        Some(v) => match v.as_str().and_then(EventType::parse) {
            Some(t) => Some(t),
            None => r.fail(
                "/eventType",
                format!("{v} is not one of START, RUNNING, COMPLETE, ABORT, FAIL, OTHER"),
            ),
        },
    };
    let event_time = r.time(&value, "/eventTime");
    let run_id = r.name(&value, "/run/runId");
    let job = r.id(&value, "/job");
    let inputs = r.datasets(&value, "/inputs", "inputFacets");
    let outputs = r.datasets(&value, "/outputs", "outputFacets");
    let error = value
        .pointer("/run/facets/errorMessage/message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let nominal = value
        .pointer("/run/facets/nominalTime")
        .filter(|v| !v.is_null())
        .and_then(|_| {
            let start = r.time(&value, "/run/facets/nominalTime/nominalStartTime")?;
            let end_at = "/run/facets/nominalTime/nominalEndTime";
            let end = match value.pointer(end_at) {
                None | Some(Value::Null) => None,
                Some(_) => Some(r.time(&value, end_at)?),
            };
            Some(Nominal { start, end })
        });
    if !r.errors.is_empty() {
        r.errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
        return Err(r.errors);
    }
    Ok(Read::Run(Box::new(RunEvent {
        event_type: event_type.expect("no errors"),
        event_time: event_time.expect("no errors"),
        run_id: run_id.expect("no errors"),
        job: job.expect("no errors"),
        inputs,
        outputs,
        error,
        nominal,
    })))
}

/// Reads fields, noting what is wrong with them.
struct Reader {
    now: SystemTime,
    errors: Vec<FieldError>,
}

impl Reader {
    fn fail<T>(&mut self, pointer: &str, message: impl Into<String>) -> Option<T> {
        self.errors.push(FieldError::new(pointer, message));
        None
    }

    /// A required non-empty string.
    fn name(&mut self, root: &Value, pointer: &str) -> Option<String> {
        match root.pointer(pointer) {
            None | Some(Value::Null) => self.fail(pointer, "is required"),
            Some(Value::String(s)) if s.is_empty() => self.fail(pointer, "must not be empty"),
            Some(Value::String(s)) if s.len() > MAX_NAME => {
                self.fail(pointer, format!("is longer than {MAX_NAME} bytes"))
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => self.fail(pointer, format!("must be a string, not {other}")),
        }
    }

    /// `{namespace, name}` at `pointer`.
    fn id(&mut self, root: &Value, pointer: &str) -> Option<Name> {
        if !root.pointer(pointer).is_some_and(Value::is_object) {
            return self.fail(pointer, "is required: an object with namespace and name");
        }
        let namespace = self.name(root, &format!("{pointer}/namespace"));
        let name = self.name(root, &format!("{pointer}/name"));
        Some(Name {
            namespace: namespace?,
            name: name?,
        })
    }

    fn time(&mut self, root: &Value, pointer: &str) -> Option<SystemTime> {
        match root.pointer(pointer) {
            None | Some(Value::Null) => self.fail(pointer, "is required"),
            Some(Value::String(text)) => match parse_time(text, self.now) {
                Ok(t) => Some(t),
                Err(e) => self.fail(pointer, e),
            },
            Some(other) => self.fail(
                pointer,
                format!("must be an ISO 8601 date-time string, not {other}"),
            ),
        }
    }

    /// The datasets at `pointer` (absent: none), reading `outputStatistics`
    /// and `dataQualityAssertions` from `own_facets` or the dataset's facets.
    fn datasets(&mut self, root: &Value, pointer: &str, own_facets: &str) -> Vec<Dataset> {
        let list = match root.pointer(pointer) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(list)) => list,
            Some(other) => {
                self.fail::<()>(pointer, format!("must be an array, not {other}"));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for i in 0..list.len() {
            let at = format!("{pointer}/{i}");
            let Some(id) = self.id(root, &at) else {
                continue;
            };
            let facet = |name: &str| {
                [own_facets, "facets"].into_iter().find_map(|f| {
                    let p = format!("{at}/{f}/{name}");
                    root.pointer(&p).filter(|v| !v.is_null()).map(|_| p)
                })
            };
            let row_count = facet("outputStatistics").and_then(|p| self.count(root, &p));
            let assertions = facet("dataQualityAssertions")
                .map(|p| self.assertions(root, &p))
                .unwrap_or_default();
            out.push(Dataset {
                id,
                row_count,
                assertions,
            });
        }
        out
    }

    fn count(&mut self, root: &Value, facet: &str) -> Option<u64> {
        let at = format!("{facet}/rowCount");
        match root.pointer(&at) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => self.fail(&at, format!("must be a whole number of rows, not {v}")),
            },
        }
    }

    fn assertions(&mut self, root: &Value, facet: &str) -> Vec<Assertion> {
        let at = format!("{facet}/assertions");
        let Some(list) = root.pointer(&at).and_then(Value::as_array) else {
            self.fail::<()>(&at, "must be an array of {assertion, success, column?}");
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in 0..list.len() {
            let a_at = format!("{at}/{i}");
            let assertion = self.name(root, &format!("{a_at}/assertion"));
            let success = match root.pointer(&format!("{a_at}/success")) {
                Some(Value::Bool(b)) => Some(*b),
                _ => self.fail(&format!("{a_at}/success"), "must be true or false"),
            };
            let column = match root.pointer(&format!("{a_at}/column")) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(c)) if c.len() > MAX_NAME => self.fail(
                    &format!("{a_at}/column"),
                    format!("is longer than {MAX_NAME} bytes"),
                ),
                Some(Value::String(c)) => Some(Some(c.clone())),
                Some(other) => self.fail(
                    &format!("{a_at}/column"),
                    format!("must be a string, not {other}"),
                ),
            };
            if let (Some(assertion), Some(success), Some(column)) = (assertion, success, column) {
                out.push(Assertion {
                    assertion,
                    column,
                    success,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_780_000_000)
    }

    fn run(body: &str) -> RunEvent {
        match read(body.as_bytes(), now()).unwrap() {
            Read::Run(e) => *e,
            Read::Static => panic!("a run event"),
        }
    }

    #[test]
    fn the_signals_are_read_and_unknown_facets_skipped() {
        let e = run(
            r#"{"eventType":"COMPLETE","eventTime":"2026-05-28T20:00:00.5+02:00","producer":"p",
            "run":{"runId":"r1","facets":{"nominalTime":{"nominalStartTime":"2026-05-28T18:00:00Z"},"spark_plan":{"huge":[1,2,3]}}},
            "job":{"namespace":"dbt","name":"shop.orders"},
            "inputs":[{"namespace":"duckdb","name":"raw.orders","inputFacets":{"dataQualityAssertions":{"assertions":[{"assertion":"not_null","column":"id","success":false}]}}}],
            "outputs":[{"namespace":"duckdb","name":"main.orders","outputFacets":{"outputStatistics":{"rowCount":42,"size":9}},"facets":{"schema":{}}}]}"#,
        );
        assert_eq!(e.event_type, EventType::Complete);
        assert_eq!(
            e.event_time,
            UNIX_EPOCH + Duration::from_millis(1_779_991_200_500)
        );
        assert_eq!(e.outputs[0].row_count, Some(42));
        assert_eq!(e.inputs[0].assertions[0].column.as_deref(), Some("id"));
        assert!(!e.inputs[0].assertions[0].success);
        assert!(e.nominal.is_some_and(|n| n.end.is_none()));
    }

    #[test]
    fn every_bad_field_is_named_by_its_pointer() {
        let errors = read(
            br#"{"eventType":"DONE","eventTime":"yesterday","run":{},"job":{"namespace":"n"},
                "outputs":[{"namespace":"d","name":"t","outputFacets":{"outputStatistics":{"rowCount":-1}}}]}"#,
            now(),
        )
        .unwrap_err();
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/eventTime",
                "/eventType",
                "/job/name",
                "/outputs/0/outputFacets/outputStatistics/rowCount",
                "/run/runId"
            ]
        );
    }

    #[test]
    fn static_lineage_events_are_told_apart() {
        assert!(matches!(
            read(
                br#"{"eventTime":"2026-05-28T20:00:00Z","dataset":{"namespace":"d","name":"t"}}"#,
                now()
            ),
            Ok(Read::Static)
        ));
    }
}

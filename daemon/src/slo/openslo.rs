//! SLOs as OpenSLO v1 documents: `tributary slo export` writes the
//! configured SLOs as `kind: SLO` YAML, `tributary slo import` reads such
//! documents back into `[[slos]]` TOML.
//!
//! The mapping: the indicator is an inline `thresholdMetric` whose
//! `metricSource.type` is `tributary` and whose `metricSource.spec` holds
//! the Tributary indicator with its fields and the scope globs; the slice is
//! the objective's `timeSliceWindow` (`timeSliceTarget` is 1: a slice is
//! good when the indicator held throughout it); the window is `timeWindow`
//! (rolling days or hours, or the calendar month `1M` in a time zone);
//! `spec.service` is the scope's most specific plain name (no glob), else
//! `tributary`, and is not read back. What OpenSLO has no field for rides in
//! `metadata.annotations` under [`PREFIX`].
//!
//! Import checks what it builds with the config's own validation, so a
//! document the config would refuse is refused at its OpenSLO field. It owns
//! this translation only: it must not read the store nor change the config
//! file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Budgeting, Counts, FreshnessGoal, Indicator, SliceLen, Slo, Window};
use crate::health::{Status, format_duration};

/// The annotation prefix of Tributary's own settings.
pub const PREFIX: &str = "tributary.dev/";

const API_VERSION: &str = "openslo/v1";
const SOURCE_TYPE: &str = "tributary";
/// The calendar window's start: any first of a month at midnight says "the
/// calendar month" (Tributary's months start at the first's midnight).
const MONTH_START: &str = "2020-01-01 00:00:00";
const INDICATORS: [&str; 4] = ["availability", "completeness", "freshness", "healthy"];
/// The keys `metricSource.spec` may hold: the config's own, in the order
/// `[[slos]]` entries are written.
const SOURCE_KEYS: [&str; 10] = [
    "tenant",
    "flow",
    "system",
    "check",
    "asset",
    "level",
    "indicator",
    "max_drop",
    "deadline",
    "max_age",
];
/// Annotation names (after [`PREFIX`]) and the config keys they give.
const ANNOTATIONS: [(&str, &str); 6] = [
    ("no-data", "no_data"),
    ("maintenance", "maintenance"),
    ("severity", "severity"),
    ("budget-alerts", "budget_alerts"),
    ("burn-alerts", "burn_alerts"),
    ("timezone", "timezone"),
];
/// The keys written after [`SOURCE_KEYS`], in the README's order.
const SETTING_KEYS: [&str; 10] = [
    "slice",
    "window",
    "timezone",
    "budgeting",
    "target",
    "no_data",
    "maintenance",
    "severity",
    "budget_alerts",
    "burn_alerts",
];

// ---------------------------------------------------------------- export

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: SloSpec,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SloSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    service: String,
    indicator: InlineSli,
    time_window: [TimeWindow; 1],
    budgeting_method: &'static str,
    objectives: [Objective; 1],
}

#[derive(Serialize)]
struct InlineSli {
    metadata: Metadata,
    spec: SliSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SliSpec {
    threshold_metric: MetricSourceHolder,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricSourceHolder {
    metric_source: MetricSource,
}

#[derive(Serialize)]
struct MetricSource {
    #[serde(rename = "type")]
    kind: &'static str,
    spec: SourceSpec,
}

/// The config's keys for the indicator and scope, as the config names them.
#[derive(Serialize)]
struct SourceSpec {
    indicator: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset: Option<String>,
    level: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_drop: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimeWindow {
    duration: String,
    is_rolling: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<CalendarSpec>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CalendarSpec {
    start_time: &'static str,
    time_zone: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Objective {
    target: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_slice_target: Option<u8>,
    time_slice_window: &'static str,
}

/// `slos` as OpenSLO v1 YAML, one `---`-separated document per SLO.
pub fn export(slos: &[Slo]) -> String {
    slos.iter()
        .map(|slo| {
            yaml_serde::to_string(&document(slo))
                .expect("plain strings, numbers and maps always serialise")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn document(slo: &Slo) -> Document {
    let zone = slo.calendar.zone;
    let mut annotations = BTreeMap::new();
    let mut note = |name: &str, value: String| {
        annotations.insert(format!("{PREFIX}{name}"), value);
    };
    note("no-data", counts(slo.counting.no_data).to_owned());
    note("maintenance", counts(slo.counting.excluded).to_owned());
    note(
        "severity",
        match slo.severity {
            Status::Unhealthy => "UNHEALTHY",
            _ => "WARNING",
        }
        .to_owned(),
    );
    let levels: Vec<String> = slo.budget_alerts.iter().map(|&l| percent(l)).collect();
    note("budget-alerts", levels.join(", "));
    note("burn-alerts", slo.burn_alerts.to_string());
    let time_window = match slo.window {
        Window::Rolling { slices } => {
            // Slices follow the zone's midnights and hours even when the
            // window rolls: OpenSLO says so only for calendar windows.
            if zone != chrono_tz::UTC {
                note("timezone", zone.name().to_owned());
            }
            let duration = match slo.calendar.slice {
                SliceLen::Hour if slices % 24 != 0 => format!("{slices}h"),
                SliceLen::Hour => format!("{}d", slices / 24),
                SliceLen::Day => format!("{slices}d"),
            };
            TimeWindow {
                duration,
                is_rolling: true,
                calendar: None,
            }
        }
        Window::CalendarMonth => TimeWindow {
            duration: "1M".to_owned(),
            is_rolling: false,
            calendar: Some(CalendarSpec {
                start_time: MONTH_START,
                time_zone: zone.name().to_owned(),
            }),
        },
    };
    let scope = &slo.scope;
    let (max_drop, deadline, max_age) = match slo.indicator {
        Indicator::Completeness { max_drop } => (Some(max_drop), None, None),
        Indicator::Freshness(FreshnessGoal::Deadline(t)) => {
            (None, Some(t.format("%H:%M").to_string()), None)
        }
        Indicator::Freshness(FreshnessGoal::MaxAge(age)) => {
            (None, None, Some(format_duration(age)))
        }
        _ => (None, None, None),
    };
    // The most specific level named without a glob is what the SLO is
    // about; a scope of globs only is about Tributary's view of everything.
    let service = [
        &scope.asset,
        &scope.check,
        &scope.system,
        &scope.flow,
        &scope.tenant,
    ]
    .into_iter()
    .flatten()
    .find(|glob| !glob.contains(['*', '?', '[']))
    .cloned()
    .unwrap_or_else(|| SOURCE_TYPE.to_owned());
    Document {
        api_version: API_VERSION,
        kind: "SLO",
        metadata: Metadata {
            name: slo.name.clone(),
            annotations,
        },
        spec: SloSpec {
            description: slo.description.clone(),
            service,
            indicator: InlineSli {
                metadata: Metadata {
                    name: slo.indicator.name().to_owned(),
                    annotations: BTreeMap::new(),
                },
                spec: SliSpec {
                    threshold_metric: MetricSourceHolder {
                        metric_source: MetricSource {
                            kind: SOURCE_TYPE,
                            spec: SourceSpec {
                                indicator: slo.indicator.name(),
                                tenant: scope.tenant.clone(),
                                flow: scope.flow.clone(),
                                system: scope.system.clone(),
                                check: scope.check.clone(),
                                asset: scope.asset.clone(),
                                level: slo.level.as_str(),
                                max_drop,
                                deadline,
                                max_age,
                            },
                        },
                    },
                },
            },
            time_window: [time_window],
            budgeting_method: match slo.counting.budgeting {
                Budgeting::Timeslices => "Timeslices",
                Budgeting::Occurrences => "Occurrences",
            },
            objectives: [Objective {
                target: slo.counting.target,
                time_slice_target: (slo.counting.budgeting == Budgeting::Timeslices).then_some(1),
                time_slice_window: match slo.calendar.slice {
                    SliceLen::Hour => "1h",
                    SliceLen::Day => "1d",
                },
            }],
        },
    }
}

/// `0.5` as `"50%"`, as people write levels, when the percent reads back
/// as the same ratio; else the ratio itself.
fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p / 100.0 == ratio {
        format!("{p}%")
    } else {
        ratio.to_string()
    }
}

fn counts(c: Counts) -> &'static str {
    match c {
        Counts::Good => "good",
        Counts::Bad => "bad",
        Counts::Excluded => "excluded",
    }
}

// ---------------------------------------------------------------- import

/// Where a mistake is: the file, the document in it (1-based, as `---`
/// separates them) and the field, dotted as OpenSLO documents name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub document: usize,
    pub path: String,
}

impl Location {
    fn at(&self, field: &str) -> Location {
        let path = match (self.path.is_empty(), field.starts_with('[')) {
            (true, _) | (_, true) => format!("{}{field}", self.path),
            (false, false) => format!("{}.{field}", self.path),
        };
        Location {
            path,
            ..self.clone()
        }
    }
}

/// One document that cannot become a `[[slos]]` entry, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ImportError {
    pub at: Location,
    pub message: String,
}

impl std::fmt::Display for Location {
    /// `slos.yaml: document 2, spec.objectives[0].target`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: document {}", self.file.display(), self.document)?;
        if !self.path.is_empty() {
            write!(f, ", {}", self.path)?;
        }
        Ok(())
    }
}

/// Every mistake in a batch, one a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ImportErrors(pub Vec<ImportError>);

/// What a batch gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// `[[slos]]` entries, one per SLO document, in the order read.
    pub toml: String,
    pub slos: usize,
    /// Documents of other kinds (Service, DataSource, AlertPolicy...), left
    /// out: `(file, document, kind)`.
    pub skipped: Vec<(PathBuf, usize, String)>,
}

/// Reads the OpenSLO documents of `files` (each a name and its text) into
/// `[[slos]]` TOML. All or nothing: with any mistake in the batch nothing is
/// given, and every mistake is named at its file, document and field.
/// `SLI` documents may be named by an SLO's `indicatorRef` from any file of
/// the batch.
pub fn import(files: &[(PathBuf, String)]) -> Result<Imported, ImportErrors> {
    let mut errors = Vec::new();
    let mut slos = Vec::new();
    let mut slis = HashMap::new();
    let mut skipped = Vec::new();
    for (file, text) in files {
        for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let at = Location {
                file: file.clone(),
                document: i + 1,
                path: String::new(),
            };
            // YAML first: past a syntax error the parser cannot go on.
            let yaml = match yaml_serde::Value::deserialize(doc) {
                Ok(yaml) => yaml,
                Err(e) => {
                    errors.push(ImportError {
                        at,
                        message: format!("not YAML: {e}"),
                    });
                    break;
                }
            };
            let value = match yaml_serde::from_value(yaml) {
                Ok(Value::Null) => continue,
                Ok(value) => value,
                Err(e) => {
                    errors.push(ImportError {
                        at,
                        message: format!("not a document OpenSLO can be: {e}"),
                    });
                    continue;
                }
            };
            match (
                value.get("apiVersion"),
                value.get("kind").and_then(Value::as_str),
            ) {
                (Some(v), _) if *v != API_VERSION => errors.push(ImportError {
                    at: at.at("apiVersion"),
                    message: format!("{v} is not {API_VERSION}: only OpenSLO v1 is read"),
                }),
                (None, _) => errors.push(ImportError {
                    at: at.at("apiVersion"),
                    message: format!(
                        "missing: an OpenSLO document says `apiVersion: {API_VERSION}`"
                    ),
                }),
                (_, Some("SLO")) => slos.push((at, value)),
                (_, Some("SLI")) => {
                    let name = value.pointer("/metadata/name").and_then(Value::as_str);
                    if let Some(name) = name {
                        slis.insert(name.to_owned(), (at, value));
                    } else {
                        errors.push(missing(&at.at("metadata.name"), "a string"));
                    }
                }
                (_, Some(kind)) => skipped.push((file.clone(), i + 1, kind.to_owned())),
                (_, None) => {
                    errors.push(missing(&at.at("kind"), "SLO, SLI or another OpenSLO kind"))
                }
            }
        }
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (at, doc) in &slos {
        let mut entry = Entry::new(at.clone());
        entry.read(doc, &slis);
        // Named here rather than by the config, whose message would give
        // the line of the TOML built.
        let first = entries
            .iter()
            .find(|e| e.name().is_some() && e.name() == entry.name());
        if let (Some(first), Some(name)) = (first, entry.name()) {
            let message = format!("duplicate SLO name {name:?} (first at {})", first.at);
            entry.fail(entry.origin("name"), message);
        }
        if entry.errors.is_empty() {
            entries.push(entry);
        } else {
            errors.append(&mut entry.errors);
        }
    }
    // The config's checks run on the documents read so far, so one pass
    // names every mistake of the batch.
    let toml = entries
        .iter()
        .map(Entry::toml)
        .collect::<Vec<_>>()
        .join("\n");
    if let Err(ImportErrors(mut more)) = check(&toml, &entries) {
        errors.append(&mut more);
    }
    if !errors.is_empty() {
        let order = |e: &ImportError| {
            let file = files.iter().position(|(f, _)| *f == e.at.file);
            (file, e.at.document)
        };
        errors.sort_by_key(order);
        return Err(ImportErrors(errors));
    }
    Ok(Imported {
        toml,
        slos: entries.len(),
        skipped,
    })
}

/// Runs the config's validation on the TOML built, and names each mistake
/// at the OpenSLO field it came from.
fn check(toml: &str, entries: &[Entry]) -> Result<(), ImportErrors> {
    let options = crate::config::Options {
        require_known_connectors: false,
        ..Default::default()
    };
    let (Some(first), Err(errors)) = (
        entries.first(),
        crate::config::parse_with(toml, Path::new("import"), &BTreeMap::new(), options),
    ) else {
        return Ok(());
    };
    let located = errors
        .shown
        .iter()
        .map(|e| {
            let mut parts = e.pointer.trim_start_matches('/').splitn(3, '/');
            let entry = match (parts.next(), parts.next()) {
                (Some("slos"), Some(i)) => i.parse::<usize>().ok().and_then(|i| entries.get(i)),
                _ => None,
            };
            let at = match (entry, parts.next()) {
                (Some(entry), Some(rest)) => {
                    let key = rest.split('/').next().unwrap_or(rest);
                    entry.origin(key)
                }
                (Some(entry), None) => entry.source.clone(),
                // Not about one SLO (it cannot happen with `[[slos]]` only):
                // the first document is as good a place as any.
                (None, _) => first.at.clone(),
            };
            ImportError {
                at,
                message: e.message.clone(),
            }
        })
        .collect();
    Err(ImportErrors(located))
}

fn missing(at: &Location, what: &str) -> ImportError {
    ImportError {
        at: at.clone(),
        message: format!("missing: give {what}"),
    }
}

/// One `[[slos]]` entry being built from one SLO document, each key with
/// the field it came from.
struct Entry {
    at: Location,
    /// Where the indicator and its scope are (`metricSource.spec`), for the
    /// config's mistakes about the SLO as a whole.
    source: Location,
    fields: Vec<(&'static str, toml::Value, Location)>,
    errors: Vec<ImportError>,
}

impl Entry {
    fn new(at: Location) -> Self {
        Entry {
            source: at.at("spec.indicator"),
            at,
            fields: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, at: Location, message: impl Into<String>) {
        self.errors.push(ImportError {
            at,
            message: message.into(),
        });
    }

    fn set(&mut self, key: &'static str, value: toml::Value, from: Location) {
        // A key given twice (a calendar's time zone and the annotation) must
        // agree.
        if let Some((_, old, was)) = self.fields.iter().find(|(k, _, _)| *k == key) {
            if *old != value {
                let message = format!("{value} contradicts {old} given at {}", was.path);
                self.fail(from, message);
            }
            return;
        }
        self.fields.push((key, value, from));
    }

    fn name(&self) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _, _)| *k == "name")
            .and_then(|(_, v, _)| v.as_str())
    }

    fn origin(&self, key: &str) -> Location {
        self.fields
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or_else(|| self.source.clone(), |(_, _, at)| at.clone())
    }

    /// A string at `field` of `value`, or a mistake.
    fn string<'v>(&mut self, value: &'v Value, field: &str, at: &Location) -> Option<&'v str> {
        match value.get(field) {
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.fail(at.at(field), format!("{other} is not a string"));
                None
            }
            None => {
                self.errors.push(missing(&at.at(field), "a string"));
                None
            }
        }
    }

    fn read(&mut self, doc: &Value, slis: &HashMap<String, (Location, Value)>) {
        let at = self.at.clone();
        if let Some(name) = self.string(
            doc.get("metadata").unwrap_or(&Value::Null),
            "name",
            &at.at("metadata"),
        ) {
            self.set("name", name.into(), at.at("metadata.name"));
        }
        let spec_at = at.at("spec");
        let Some(spec) = doc.get("spec").filter(|s| s.is_object()) else {
            self.errors
                .push(missing(&spec_at, "the SLO's spec (a map)"));
            return;
        };
        if let Some(description) = spec.get("description") {
            match description.as_str() {
                Some(d) => self.set("description", d.into(), spec_at.at("description")),
                None => self.fail(spec_at.at("description"), "is not a string"),
            }
        }
        self.indicator(spec, &spec_at, slis);
        self.budgeting(spec, &spec_at);
        self.objective(spec, &spec_at);
        self.window(spec, &spec_at);
        self.annotations(doc, &at);
    }

    fn indicator(
        &mut self,
        spec: &Value,
        at: &Location,
        slis: &HashMap<String, (Location, Value)>,
    ) {
        let (sli, sli_at) = match (spec.get("indicator"), spec.get("indicatorRef")) {
            (Some(_), Some(_)) => {
                self.fail(at.clone(), "give `indicator` or `indicatorRef`, not both");
                return;
            }
            (Some(sli), None) => (sli, at.at("indicator")),
            (None, Some(reference)) => {
                let found = reference.as_str().and_then(|name| slis.get(name));
                match found {
                    Some((sli_at, sli)) => (sli, sli_at.clone()),
                    None => {
                        let message = format!(
                            "{reference} names no SLI document in the files given: give the SLI's file too, or inline it as `indicator`"
                        );
                        self.fail(at.at("indicatorRef"), message);
                        return;
                    }
                }
            }
            (None, None) => {
                self.errors.push(missing(
                    at,
                    "`indicator` (a Tributary indicator inline) or `indicatorRef`",
                ));
                return;
            }
        };
        let metric_at = sli_at.at("spec");
        let metric = sli.get("spec").unwrap_or(&Value::Null);
        if metric.get("ratioMetric").is_some() {
            self.fail(
                metric_at.at("ratioMetric"),
                "a ratio metric counts good and total events from queries; Tributary judges its own indicators: write `thresholdMetric` with `metricSource.type: tributary`",
            );
            return;
        }
        let source_at = metric_at.at("thresholdMetric.metricSource");
        let Some(source) = metric.pointer("/thresholdMetric/metricSource") else {
            self.errors.push(missing(
                &source_at,
                "the indicator's `thresholdMetric.metricSource`",
            ));
            return;
        };
        match source.get("type").and_then(Value::as_str) {
            Some(t) if t.eq_ignore_ascii_case(SOURCE_TYPE) => {}
            Some(t) => {
                let message = format!(
                    "metric source type {t:?} is not Tributary's: Tributary cannot query {t}, it judges only its own indicators ({}) from the runs it stores; write `type: tributary`",
                    INDICATORS.join(", ")
                );
                self.fail(source_at.at("type"), message);
                return;
            }
            None => {
                self.errors.push(missing(
                    &source_at.at("type"),
                    "`tributary` (a metricSourceRef to a DataSource is not followed)",
                ));
                return;
            }
        }
        let spec_at = source_at.at("spec");
        self.source = spec_at.clone();
        let Some(fields) = source.get("spec").and_then(Value::as_object) else {
            self.errors.push(missing(
                &spec_at,
                "a map with the indicator and the scope globs",
            ));
            return;
        };
        match fields.get("indicator").and_then(Value::as_str) {
            Some(name) if INDICATORS.contains(&name) => {}
            Some(name) => {
                let message = format!(
                    "{name:?} is not a Tributary indicator: use one of {}",
                    INDICATORS.join(", ")
                );
                self.fail(spec_at.at("indicator"), message);
            }
            None => self.errors.push(missing(
                &spec_at.at("indicator"),
                &format!("one of {}", INDICATORS.join(", ")),
            )),
        }
        for (key, value) in fields {
            let field_at = spec_at.at(key);
            let Some(key) = SOURCE_KEYS.into_iter().find(|k| k == key) else {
                let message = format!(
                    "unknown field: the metric source's spec takes {}",
                    SOURCE_KEYS.join(", ")
                );
                self.fail(field_at, message);
                continue;
            };
            match scalar(value) {
                Some(value) => self.set(key, value, field_at),
                None => self.fail(field_at, format!("{value} is not a string or a number")),
            }
        }
    }

    fn budgeting(&mut self, spec: &Value, at: &Location) {
        let at = at.at("budgetingMethod");
        let method = match spec.get("budgetingMethod") {
            None => {
                self.errors.push(missing(&at, "Timeslices or Occurrences"));
                return;
            }
            Some(m) => m.as_str().unwrap_or_default(),
        };
        let budgeting = match method {
            "Timeslices" => "timeslices",
            "Occurrences" => "occurrences",
            "RatioTimeslices" => {
                self.fail(
                    at,
                    "RatioTimeslices averages each slice's ratio of good events, but a Tributary slice is good or bad as a whole: use Timeslices (good slices / counted slices) or Occurrences (good runs / runs)",
                );
                return;
            }
            other => {
                self.fail(
                    at,
                    format!("{other:?} is not a budgeting method: use Timeslices or Occurrences"),
                );
                return;
            }
        };
        self.set("budgeting", budgeting.into(), at);
    }

    fn objective(&mut self, spec: &Value, at: &Location) {
        let at = at.at("objectives");
        let objective = match spec
            .get("objectives")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            Some([one]) => one,
            Some([]) | None => {
                self.errors
                    .push(missing(&at, "one objective (a list of one)"));
                return;
            }
            Some(_) => {
                self.fail(
                    at,
                    "one objective only: a Tributary SLO has one target (write one SLO per target)",
                );
                return;
            }
        };
        let at = at.at("[0]");
        for (field, why) in [
            (
                "op",
                "Tributary indicators are good or bad per slice, with no value to compare",
            ),
            (
                "value",
                "Tributary indicators are good or bad per slice, with no value to compare",
            ),
            (
                "indicator",
                "composite SLOs are not read: write one SLO per indicator",
            ),
            (
                "indicatorRef",
                "composite SLOs are not read: write one SLO per indicator",
            ),
        ] {
            if objective.get(field).is_some() {
                self.fail(at.at(field), format!("not taken: {why}"));
            }
        }
        match (objective.get("target"), objective.get("targetPercent")) {
            (Some(_), Some(_)) => {
                self.fail(at.clone(), "give `target` or `targetPercent`, not both")
            }
            (Some(t), None) => match t.as_f64() {
                Some(_) => self.set("target", scalar(t).expect("a number"), at.at("target")),
                None => self.fail(at.at("target"), format!("{t} is not a number")),
            },
            (None, Some(p)) => match p.as_f64() {
                Some(p) => self.set("target", format!("{p}%").into(), at.at("targetPercent")),
                None => self.fail(at.at("targetPercent"), format!("{p} is not a number")),
            },
            (None, None) => self.errors.push(missing(
                &at.at("target"),
                "`target` (0.95) or `targetPercent` (95)",
            )),
        }
        if let Some(t) = objective.get("timeSliceTarget")
            && t.as_f64() != Some(1.0)
        {
            self.fail(
                at.at("timeSliceTarget"),
                format!("{t} is not taken: a Tributary slice is good when its indicator held throughout it, which is timeSliceTarget 1"),
            );
        }
        if let Some(w) = objective.get("timeSliceWindow") {
            let slice = w
                .as_str()
                .and_then(shorthand)
                .and_then(|(n, unit)| match (n, unit) {
                    (1, 'h') | (60, 'm') => Some("1h"),
                    (1, 'd') | (24, 'h') | (1440, 'm') => Some("1d"),
                    _ => None,
                });
            match slice {
                Some(slice) => self.set("slice", slice.into(), at.at("timeSliceWindow")),
                None => self.fail(
                    at.at("timeSliceWindow"),
                    format!("{w} is not a Tributary slice: use 1h or 1d"),
                ),
            }
        }
    }

    fn window(&mut self, spec: &Value, at: &Location) {
        let at = at.at("timeWindow");
        let window = match spec.get("timeWindow") {
            // The config's default window.
            None => return,
            Some(w) => match w.as_array().map(Vec::as_slice) {
                Some([one]) => one,
                _ => {
                    self.fail(at, "a list of exactly one time window");
                    return;
                }
            },
        };
        let at = at.at("[0]");
        let calendar = window.get("calendar");
        let rolling = match window.get("isRolling") {
            None => calendar.is_none(),
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.fail(at.at("isRolling"), format!("{other} is not true or false"));
                return;
            }
        };
        let Some(duration) = self.string(window, "duration", &at) else {
            return;
        };
        let parsed = shorthand(duration);
        let duration_at = at.at("duration");
        if rolling {
            if calendar.is_some() {
                self.fail(
                    at.at("calendar"),
                    "a rolling window has no calendar: remove it, or say `isRolling: false`",
                );
            }
            let length = match parsed {
                Some((n, 'h')) => Some(format!("{n}h")),
                Some((n, 'd')) => Some(format!("{n}d")),
                Some((n, 'w')) => n.checked_mul(7).map(|d| format!("{d}d")),
                _ => None,
            };
            match length {
                Some(length) => self.set("window", length.into(), duration_at),
                None => self.fail(
                    duration_at,
                    format!("{duration:?} is not a rolling window Tributary keeps: give hours, days or weeks (\"20d\", \"48h\", \"4w\"); for the calendar month say `duration: 1M` with a calendar"),
                ),
            }
            return;
        }
        if parsed != Some((1, 'M')) {
            self.fail(
                duration_at.clone(),
                format!("{duration:?}: Tributary's calendar window is the month, `1M`"),
            );
        }
        self.set("window", "month".into(), duration_at);
        let calendar_at = at.at("calendar");
        let Some(calendar) = calendar else {
            self.errors.push(missing(
                &calendar_at,
                "the calendar's startTime and timeZone",
            ));
            return;
        };
        if let Some(start) = self.string(calendar, "startTime", &calendar_at) {
            let first = chrono::NaiveDateTime::parse_from_str(start.trim(), "%Y-%m-%d %H:%M:%S")
                .ok()
                .filter(|t| {
                    use chrono::{Datelike, Timelike};
                    t.day() == 1 && t.num_seconds_from_midnight() == 0
                });
            if first.is_none() {
                self.fail(
                    calendar_at.at("startTime"),
                    format!("{start:?}: Tributary's months start at midnight on the first; write e.g. \"{MONTH_START}\""),
                );
            }
        }
        if let Some(zone) = self.string(calendar, "timeZone", &calendar_at) {
            self.set("timezone", zone.into(), calendar_at.at("timeZone"));
        }
    }

    fn annotations(&mut self, doc: &Value, at: &Location) {
        let at = at.at("metadata.annotations");
        let Some(annotations) = doc.pointer("/metadata/annotations") else {
            return;
        };
        let Some(annotations) = annotations.as_object() else {
            self.fail(at, "is not a map of strings");
            return;
        };
        for (name, value) in annotations {
            let Some(short) = name.strip_prefix(PREFIX) else {
                continue;
            };
            let field_at = at.at(&format!("[{name:?}]"));
            let Some(&(_, key)) = ANNOTATIONS.iter().find(|(n, _)| *n == short) else {
                let known: Vec<String> = ANNOTATIONS
                    .iter()
                    .map(|(n, _)| format!("{PREFIX}{n}"))
                    .collect();
                self.fail(
                    field_at,
                    format!("unknown Tributary annotation: use {}", known.join(", ")),
                );
                continue;
            };
            let Some(text) = value.as_str() else {
                self.fail(
                    field_at,
                    format!("{value} is not a string (OpenSLO annotations are strings)"),
                );
                continue;
            };
            let value = match key {
                "budget_alerts" => toml::Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|level| !level.is_empty())
                        .map(|level| match level.parse::<f64>() {
                            Ok(ratio) => toml::Value::Float(ratio),
                            Err(_) => level.into(),
                        })
                        .collect(),
                ),
                "burn_alerts" => match text.trim() {
                    "true" => true.into(),
                    "false" => false.into(),
                    other => {
                        self.fail(field_at, format!("{other:?} is not \"true\" or \"false\""));
                        continue;
                    }
                },
                _ => text.into(),
            };
            self.set(key, value, field_at);
        }
    }

    /// The `[[slos]]` entry.
    fn toml(&self) -> String {
        let mut text = String::from("[[slos]]\n");
        let keys = ["name", "description"]
            .into_iter()
            .chain(SOURCE_KEYS)
            .chain(SETTING_KEYS);
        for key in keys {
            if let Some((_, value, _)) = self.fields.iter().find(|(k, _, _)| *k == key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text
    }
}

/// A YAML scalar as a TOML value.
fn scalar(value: &Value) -> Option<toml::Value> {
    match value {
        Value::String(s) => Some(s.as_str().into()),
        Value::Bool(b) => Some((*b).into()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(i.into()),
            None => n.as_f64().map(Into::into),
        },
        _ => None,
    }
}

/// An OpenSLO duration shorthand (`20d`, `1M`): the number and the unit.
fn shorthand(text: &str) -> Option<(u64, char)> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number = text[..text.len() - unit.len_utf8()].parse().ok()?;
    ["m", "h", "d", "w", "M", "Q", "Y"]
        .contains(&unit.to_string().as_str())
        .then_some((number, unit))
}

#[cfg(test)]
mod tests;

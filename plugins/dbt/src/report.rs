//! The connector's records turned into observations, the same way whichever
//! mode produced them (files, Admin API artifacts, Discovery API).
//!
//! How dbt's words map to the daemon's levels:
//!
//! | dbt status | level | notes |
//! | --- | --- | --- |
//! | `success`, `pass`, `no-op` | ok | |
//! | `warn` | warn | |
//! | `error`, `fail`, `runtime error`, `partial success` | error | |
//! | `skipped` | warn | not built or tested this time, so no evidence of health (the daemon ignores a native `unknown`); the message names the upstream failures that caused it |
//! | anything else | unknown | the label keeps dbt's word |
//!
//! Counts are dbt's own: a test's `failures` is its `errored` count, with
//! one [`AssetError`] when it failed or warned. Nothing else records an
//! error, since the daemon counts an observation's errors as errored
//! records when it has no count: a failed model is one failed node, not
//! one errored row. Its message is in the native status.
//!
//! A source whose freshness is configured in the manifest but has no row in
//! sources.json is an error: dbt ≥ 1.8 drops the rows of sources whose
//! freshness query failed from that file, so a missing row is a failure we
//! cannot see, never a pass.

use std::collections::{BTreeMap, BTreeSet};

use plugin_sdk::{AssetError, NativeStatus, Observation, StatusLevel, Timestamp};

use crate::artifacts::{Criteria, Manifest, NodeInfo, NodeResult, RunResults, SourceFreshness};

/// Where a report came from in dbt Cloud, so its observations link there.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub job_id: Option<u64>,
    pub run_id: Option<u64>,
    pub href: Option<String>,
}

/// Freshness results, or why there are none.
pub enum FreshnessResults<'a> {
    /// The results of one `dbt source freshness` (or the Discovery API's).
    Present {
        results: &'a [SourceFreshness],
        /// Names the results in messages: `sources.json (invocation …)`.
        described_as: String,
    },
    /// No freshness ran or none could be read; says why.
    Absent(String),
}

/// Everything one report speaks of.
pub struct Inputs<'a> {
    pub nodes: &'a [NodeResult],
    pub freshness: FreshnessResults<'a>,
    pub manifest: Option<&'a Manifest>,
    pub origin: Option<&'a Origin>,
}

/// A dbt status as the daemon's level. A skip is `warn`, not `unknown`: the
/// daemon's native-status rule ignores `unknown`, so a skipped node would
/// read HEALTHY although this invocation did not build or test it.
pub fn level(status: &str) -> StatusLevel {
    match status {
        "success" | "pass" | "no-op" => StatusLevel::Ok,
        "warn" | "skipped" => StatusLevel::Warn,
        "error" | "fail" | "runtime error" | "partial success" => StatusLevel::Error,
        _ => StatusLevel::Unknown,
    }
}

fn native(status: &str, message: Option<String>) -> NativeStatus {
    let native = NativeStatus::new(level(status), status);
    match message {
        Some(m) if !m.is_empty() => native.message(m),
        _ => native,
    }
}

/// The resource type dbt encodes as the first part of every unique id.
fn kind_of(unique_id: &str) -> &str {
    unique_id.split('.').next().unwrap_or(unique_id)
}

/// The observations of every node result and every source.
pub fn observations(inputs: &Inputs<'_>) -> Vec<Observation> {
    let statuses: BTreeMap<&str, &str> = inputs
        .nodes
        .iter()
        .map(|n| (n.unique_id.as_str(), n.status.as_str()))
        .collect();
    let mut out = Vec::new();
    let mut sources_done = BTreeSet::new();
    let freshness: BTreeMap<&str, &SourceFreshness> = match &inputs.freshness {
        FreshnessResults::Present { results, .. } => {
            results.iter().map(|r| (r.unique_id.as_str(), r)).collect()
        }
        FreshnessResults::Absent(_) => BTreeMap::new(),
    };
    for node in inputs.nodes {
        // A freshness row says more of a source than a run result does.
        if freshness.contains_key(node.unique_id.as_str()) {
            continue;
        }
        let info = inputs.manifest.and_then(|m| m.nodes.get(&node.unique_id));
        if info.is_some_and(|i| i.resource_type == "source") || kind_of(&node.unique_id) == "source"
        {
            sources_done.insert(node.unique_id.as_str());
        }
        out.push(node_observation(node, info, &statuses, inputs));
    }
    for result in freshness.values() {
        let info = inputs.manifest.and_then(|m| m.nodes.get(&result.unique_id));
        out.push(freshness_observation(result, info, inputs));
        sources_done.insert(result.unique_id.as_str());
    }
    if let Some(manifest) = inputs.manifest {
        for (id, info) in &manifest.nodes {
            if info.resource_type == "source" && !sources_done.contains(id.as_str()) {
                out.push(unchecked_source(id, info, inputs));
            }
        }
    }
    out.sort_by(|a, b| a.asset.cmp(&b.asset));
    out
}

fn node_observation(
    node: &NodeResult,
    info: Option<&NodeInfo>,
    statuses: &BTreeMap<&str, &str>,
    inputs: &Inputs<'_>,
) -> Observation {
    let kind = info
        .map(|i| i.resource_type.clone())
        .or_else(|| node.kind.clone())
        .unwrap_or_else(|| kind_of(&node.unique_id).to_owned());
    let mut obs = Observation::new(&node.unique_id, &kind).freshness(node.updated_at);
    let mut message = node.message.clone();
    if node.status == "skipped" {
        let causes = inputs
            .manifest
            .map(|m| skip_causes(&node.unique_id, m, statuses))
            .unwrap_or_default();
        if causes.is_empty() {
            message = Some(
                "skipped, but no failed upstream node is in these results to say why".to_owned(),
            );
        } else {
            let list: Vec<String> = causes
                .iter()
                .map(|id| format!("{id} ({})", statuses.get(id.as_str()).unwrap_or(&"?")))
                .collect();
            message = Some(format!(
                "skipped because upstream {} failed",
                list.join(", ")
            ));
            obs.set_metadata("skipped_because", causes.join(", "));
        }
    }
    obs = obs.native_status(native(&node.status, message.clone()));

    if let Some(rows) = node.rows_affected {
        obs = obs.extra("rows_affected", rows);
    }
    if let Some((successful, failed)) = node.batches {
        obs = obs
            .extra("successful_batches", successful)
            .extra("failed_batches", failed);
    }
    // Only a test's failing rows are a count dbt gives. A model, seed or
    // snapshot that errored (or a test that could not run) says so in its
    // native status alone: an error recorded on it would make the daemon
    // count one errored record that dbt never reported.
    if let Some(failures) = node.failures {
        obs = obs.errored(failures);
        let error_kind = match node.status.as_str() {
            "fail" => Some("test_failure"),
            "warn" if failures > 0 => Some("test_warning"),
            _ => None,
        };
        if let Some(error_kind) = error_kind {
            let text = message.unwrap_or_else(|| format!("dbt reports {}", node.status));
            obs.record_error(asset_error(
                error_kind,
                text,
                node.finished_at,
                inputs.origin,
            ));
        }
    }

    let relation = info
        .and_then(|i| i.relation.clone())
        .or(node.relation.clone());
    let materialized = info
        .and_then(|i| i.materialized.clone())
        .or(node.materialized.clone());
    let mut metadata: Vec<(&str, Option<String>)> = vec![
        ("relation", relation),
        ("materialized", materialized),
        (
            "execution_time_s",
            node.execution_time.map(|t| t.to_string()),
        ),
        ("thread_id", node.thread_id.clone()),
    ];
    if let Some(info) = info {
        metadata.push(("attached_node", info.attached_node.clone()));
        metadata.push(("severity", info.severity.clone()));
        metadata.push(("test", info.test_name.clone()));
    }
    for (key, value) in metadata {
        if let Some(value) = value {
            obs.set_metadata(key, value);
        }
    }
    add_common(&mut obs, &node.extra_metadata, info, inputs);
    obs
}

/// The nearest upstream nodes whose failure made `id` skip: failed parents,
/// failed tests of parents, and the causes of parents that did not run.
/// A parent missing from the results passes its causes on like a skipped
/// one: an ephemeral model is compiled into its children and never runs
/// (nor does a node the invocation did not select), so the failure that
/// stopped its children lies further up.
fn skip_causes(id: &str, manifest: &Manifest, statuses: &BTreeMap<&str, &str>) -> Vec<String> {
    let failed = |id: &str| {
        statuses
            .get(id)
            .is_some_and(|s| level(s) == StatusLevel::Error)
    };
    let mut causes = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut queue = vec![id.to_owned()];
    while let Some(current) = queue.pop() {
        let Some(info) = manifest.nodes.get(&current) else {
            continue;
        };
        for parent in &info.parents {
            if !seen.insert(parent.clone()) {
                continue;
            }
            if failed(parent) {
                causes.insert(parent.clone());
                continue;
            }
            if matches!(statuses.get(parent.as_str()), None | Some(&"skipped")) {
                queue.push(parent.clone());
            }
            // A parent that ran (or a source) still stops its children
            // when one of its tests failed.
            for child in manifest.children.get(parent).into_iter().flatten() {
                let is_test = manifest
                    .nodes
                    .get(child)
                    .is_some_and(|c| c.resource_type == "test");
                if is_test && child != id && failed(child) {
                    causes.insert(child.clone());
                }
            }
        }
    }
    causes.into_iter().collect()
}

fn freshness_observation(
    result: &SourceFreshness,
    info: Option<&NodeInfo>,
    inputs: &Inputs<'_>,
) -> Observation {
    // A runtime error row has no criteria: the manifest still knows them.
    let criteria = result
        .criteria
        .as_ref()
        .or(info.and_then(|i| i.freshness.as_ref()));
    let message = match (&result.error, result.status.as_str()) {
        (Some(error), _) => Some(error.clone()),
        (None, "runtime error") => Some("the freshness query failed".to_owned()),
        (None, _) => freshness_says(result, criteria),
    };
    let mut obs = Observation::new(&result.unique_id, "source")
        .freshness(result.max_loaded_at)
        .native_status(native(&result.status, message));
    if let Some(age) = result.age_s {
        obs.set_metadata("max_loaded_at_time_ago_in_s", age);
    }
    if let Some(at) = result.snapshotted_at {
        obs.set_metadata("snapshotted_at", at);
    }
    add_criteria(&mut obs, criteria);
    add_common(&mut obs, &result.extra_metadata, info, inputs);
    obs
}

/// A source with no freshness result: a failure when its freshness is
/// configured and a freshness run happened, else unchecked.
fn unchecked_source(id: &str, info: &NodeInfo, inputs: &Inputs<'_>) -> Observation {
    let mut obs = Observation::new(id, "source");
    let criteria = info.freshness.as_ref().filter(|c| c.configured());
    match (&inputs.freshness, criteria) {
        (_, None) => obs.set_metadata("freshness", "not configured"),
        (FreshnessResults::Present { described_as, .. }, Some(_)) => {
            let text = format!(
                "freshness is configured but {described_as} has no result for this source: \
                 dbt >= 1.8 leaves out sources whose freshness query failed (runtime error), \
                 so treat it as failed (or the source was not selected)"
            );
            obs = obs.native_status(NativeStatus::error("no result").message(text));
        }
        (FreshnessResults::Absent(why), Some(_)) => {
            obs = obs.native_status(
                NativeStatus::unknown("not checked")
                    .message(format!("freshness is configured but {why}")),
            );
        }
    }
    add_criteria(&mut obs, criteria);
    add_common(&mut obs, &[], Some(info), inputs);
    obs
}

/// dbt's verdict in words, `loaded 3h 20m 9s ago; dbt's warn_after is 1
/// hour, error_after 6 hours`: the age is dbt's (the warehouse clock's, as
/// of `snapshotted_at`), so a reason shows what dbt compared, not what the
/// daemon's clock makes of `max_loaded_at`.
fn freshness_says(result: &SourceFreshness, criteria: Option<&Criteria>) -> Option<String> {
    let age = result.age_s.or_else(|| {
        let (loaded, snapshot) = (result.max_loaded_at?, result.snapshotted_at?);
        let seconds = snapshot.seconds - loaded.seconds;
        Some(seconds as f64 + (f64::from(snapshot.nanos) - f64::from(loaded.nanos)) / 1e9)
    })?;
    let mut text = format!("loaded {} ago", age_words(age));
    let thresholds: Vec<String> = criteria
        .into_iter()
        .flat_map(|c| {
            [
                ("warn_after", c.warn_after()),
                ("error_after", c.error_after()),
            ]
        })
        .filter_map(|(name, t)| Some((name, t?)))
        .enumerate()
        .map(|(i, (name, t))| match i {
            0 => format!("dbt's {name} is {}", t.words()),
            _ => format!("{name} {}", t.words()),
        })
        .collect();
    if !thresholds.is_empty() {
        text.push_str("; ");
        text.push_str(&thresholds.join(", "));
    }
    Some(text)
}

/// Seconds, rounded, as `1d 7h 9s` (zero units left out, as the daemon's
/// reasons write durations), or `0s`.
fn age_words(seconds: f64) -> String {
    // Saturates: dbt dates an empty table's load to year 1.
    let secs = seconds.round().max(0.0) as u64;
    if secs == 0 {
        return "0s".to_owned();
    }
    [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, unit)| format!("{n}{unit}"))
    .collect::<Vec<_>>()
    .join(" ")
}

fn add_criteria(obs: &mut Observation, criteria: Option<&Criteria>) {
    let Some(criteria) = criteria else { return };
    if let Some(t) = criteria.warn_after() {
        obs.set_metadata("warn_after", t);
    }
    if let Some(t) = criteria.error_after() {
        obs.set_metadata("error_after", t);
    }
    if let Some(filter) = &criteria.filter {
        obs.set_metadata("filter", filter);
    }
}

/// Metadata every observation carries: where the node lives, the manifest's
/// details, the invocation and the dbt Cloud run.
fn add_common(
    obs: &mut Observation,
    own: &[(String, String)],
    info: Option<&NodeInfo>,
    inputs: &Inputs<'_>,
) {
    if let Some(info) = info {
        if obs.kind == "source"
            && let Some(location) = &info.relation
        {
            obs.set_metadata("location", location);
        }
        for (key, value) in &info.details {
            obs.set_metadata(key.clone(), value);
        }
    }
    for (key, value) in own {
        obs.set_metadata(key.clone(), value);
    }
    if let Some(origin) = inputs.origin {
        if let Some(job) = origin.job_id {
            obs.set_metadata("dbt_cloud_job_id", job);
        }
        if let Some(run) = origin.run_id {
            obs.set_metadata("dbt_cloud_run_id", run);
        }
    }
}

/// An error on an asset, linked to the dbt Cloud run when there is one.
fn asset_error(
    kind: &str,
    message: String,
    at: Option<Timestamp>,
    origin: Option<&Origin>,
) -> AssetError {
    let error = AssetError::new(kind, message).at(at);
    match origin.and_then(|o| o.href.clone()) {
        Some(href) => error.log_link(href),
        None => error,
    }
}

// ---------------------------------------------------------------------------
// Summaries

/// The run-results statuses counted on a summary, in dbt's console order.
const RUN_STATUSES: [&str; 7] = [
    "success", "pass", "warn", "error", "fail", "skipped", "no-op",
];

/// How many nodes of `run` ended in each status, as extras (`no-op` as
/// `no_op`), every standard status present even at zero, plus `total`.
pub fn run_counts(run: &RunResults) -> Vec<(String, u64)> {
    counts(&RUN_STATUSES, run.nodes.iter().map(|n| n.status.as_str()))
}

const FRESHNESS_STATUSES: [&str; 5] = ["pass", "warn", "error", "runtime error", "no result"];

/// Freshness results by status (`runtime error` as `runtime_error`), plus
/// `no_result` for configured sources that have none, and `total`.
pub fn freshness_counts(observations: &[Observation]) -> Vec<(String, u64)> {
    let labels = observations
        .iter()
        .filter(|o| o.kind == "source")
        .filter_map(|o| {
            o.native_status
                .as_ref()
                .map(|n| n.label.as_str())
                .filter(|l| *l != "not checked")
        });
    counts(&FRESHNESS_STATUSES, labels)
}

fn counts<'a>(standard: &[&str], statuses: impl Iterator<Item = &'a str>) -> Vec<(String, u64)> {
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for status in statuses {
        *by_status.entry(status.to_owned()).or_default() += 1;
        total += 1;
    }
    let mut out: Vec<(String, u64)> = standard
        .iter()
        .map(|s| (s.to_string(), by_status.remove(*s).unwrap_or(0)))
        .collect();
    out.extend(by_status);
    for (name, _) in &mut out {
        *name = name.replace([' ', '-'], "_");
    }
    out.push(("total".to_owned(), total));
    out
}

/// The worst level among `statuses` as a native status, with `message`.
pub fn overall(statuses: impl Iterator<Item = StatusLevel>, message: String) -> NativeStatus {
    let worst = statuses.fold(StatusLevel::Ok, |worst, level| match (worst, level) {
        (StatusLevel::Error, _) | (_, StatusLevel::Error) => StatusLevel::Error,
        (StatusLevel::Warn, _) | (_, StatusLevel::Warn) => StatusLevel::Warn,
        _ => StatusLevel::Ok,
    });
    let label = match worst {
        StatusLevel::Error => "error",
        StatusLevel::Warn => "warn",
        _ => "success",
    };
    NativeStatus::new(worst, label).message(message)
}

/// dbt's own summary line: `PASS=24 WARN=0 ERROR=3 SKIP=8 NO-OP=0 TOTAL=35`
/// (success and pass count as PASS, error and fail as ERROR).
pub fn console_line(run: &RunResults) -> String {
    let count = |names: &[&str]| {
        run.nodes
            .iter()
            .filter(|n| names.contains(&n.status.as_str()))
            .count()
    };
    format!(
        "PASS={} WARN={} ERROR={} SKIP={} NO-OP={} TOTAL={}",
        count(&["success", "pass"]),
        count(&["warn"]),
        count(&["error", "fail", "partial success"]),
        count(&["skipped"]),
        count(&["no-op"]),
        run.nodes.len()
    )
}

/// The summary observation of one run_results.json.
pub fn run_summary(asset: &str, run: &RunResults, origin: Option<&Origin>) -> Observation {
    let mut obs = Observation::new(asset, "invocation")
        .freshness(run.invocation.generated_at)
        .native_status(overall(
            run.nodes.iter().map(|n| level(&n.status)),
            console_line(run),
        ));
    for (name, count) in run_counts(run) {
        obs = obs.extra(name, count);
    }
    add_invocation(&mut obs, &run.invocation, origin);
    obs
}

/// The summary observation of one freshness run, over the source
/// observations already built.
pub fn freshness_summary(
    asset: &str,
    invocation: &crate::artifacts::Invocation,
    sources: &[Observation],
    origin: Option<&Origin>,
) -> Observation {
    let counts = freshness_counts(sources);
    let message = counts
        .iter()
        .map(|(name, n)| format!("{}={n}", name.to_uppercase()))
        .collect::<Vec<_>>()
        .join(" ");
    let levels = sources
        .iter()
        .filter(|o| o.kind == "source")
        .filter_map(|o| o.native_status.as_ref().map(|n| n.level));
    let mut obs = Observation::new(asset, "invocation")
        .freshness(invocation.generated_at)
        .native_status(overall(levels, message));
    for (name, count) in counts {
        obs = obs.extra(name, count);
    }
    add_invocation(&mut obs, invocation, origin);
    obs
}

fn add_invocation(
    obs: &mut Observation,
    invocation: &crate::artifacts::Invocation,
    origin: Option<&Origin>,
) {
    if let Some(id) = &invocation.invocation_id {
        obs.set_metadata("invocation_id", id);
    }
    if let Some(v) = &invocation.dbt_version {
        obs.set_metadata("dbt_version", v);
    }
    obs.set_metadata("schema_version", format!("v{}", invocation.schema_major));
    if let Some(elapsed) = invocation.elapsed_time {
        obs.set_metadata("elapsed_time_s", elapsed);
    }
    if let Some(origin) = origin {
        if let Some(run) = origin.run_id {
            obs.set_metadata("dbt_cloud_run_id", run);
        }
        if let Some(href) = &origin.href {
            obs.set_metadata("href", href);
        }
    }
}

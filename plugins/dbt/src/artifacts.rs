//! dbt's JSON artifacts (`run_results.json`, `sources.json`, `manifest.json`)
//! read into the connector's own records, whatever mode fetched them.
//!
//! Every artifact names its JSON Schema in `metadata.dbt_schema_version`
//! (`https://schemas.getdbt.com/dbt/run-results/v6.json`). We dispatch on it,
//! never on `dbt_version`: run-results v4 to v6 and sources v3 are the shapes
//! this module knows; a newer major may rename or retype fields, so it is
//! refused with a message naming the file and version instead of being read
//! half right. Manifests change with every minor dbt release while the few
//! fields we read stay put, so any manifest version that parses is accepted
//! (v11 and v12 are the ones tested).
//!
//! Only the fields used are declared (serde skips the rest without keeping
//! them), and files are parsed from a reader: a 100 MB manifest never sits
//! in the plugin's memory as text.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use plugin_sdk::chrono::{DateTime, NaiveDateTime};
use plugin_sdk::{AssetDescriptor, ConnectorError, Timestamp, log};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer};
use serde_json::Value;

/// Which artifact a file must be, and which of its schema versions we read.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The artifact's name in its schema URL (`run-results`).
    pub schema_name: &'static str,
    /// Majors read; `None` accepts any that parses.
    pub versions: Option<(u32, u32)>,
}

pub const RUN_RESULTS: Kind = Kind {
    schema_name: "run-results",
    versions: Some((4, 6)),
};
pub const SOURCES: Kind = Kind {
    schema_name: "sources",
    versions: Some((3, 3)),
};
/// The manifest versions the tests read (dbt 1.7, and 1.8 to 1.11).
const TESTED_MANIFESTS: [u32; 2] = [11, 12];

pub const MANIFEST: Kind = Kind {
    schema_name: "manifest",
    versions: None,
};

/// Opens an artifact's bytes again: parsing a failed file a second time
/// is how its error message learns the schema version and the bad field.
pub type Opener<'a> = dyn Fn() -> Result<Box<dyn Read + 'a>, ConnectorError> + 'a;

/// The `metadata` block every artifact starts with.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    pub dbt_schema_version: Option<String>,
    pub dbt_version: Option<String>,
    #[serde(default, deserialize_with = "time")]
    pub generated_at: Option<Timestamp>,
    pub invocation_id: Option<String>,
}

/// A schema URL split into artifact name and major version.
struct SchemaVersion<'a> {
    name: &'a str,
    major: u32,
}

fn schema_version(url: &str) -> Option<SchemaVersion<'_>> {
    let mut parts = url.trim_end_matches(".json").rsplit('/');
    let major = parts.next()?.strip_prefix('v')?.parse().ok()?;
    let name = parts.next()?;
    Some(SchemaVersion { name, major })
}

/// Refuses an artifact of the wrong kind (a `config` mistake: the file names
/// are swapped) or of a schema version we cannot read (`system`: the dbt that
/// wrote it is newer or older than this connector).
fn check_version(file: &str, kind: Kind, meta: &Metadata) -> Result<u32, ConnectorError> {
    let dbt = meta
        .dbt_version
        .as_deref()
        .map(|v| format!(", written by dbt {v}"))
        .unwrap_or_default();
    let Some(url) = meta.dbt_schema_version.as_deref() else {
        return Err(ConnectorError::system(format_args!(
            "{file} has no metadata.dbt_schema_version{dbt}: it is not a dbt artifact this connector can read"
        )));
    };
    let Some(version) = schema_version(url) else {
        return Err(ConnectorError::system(format_args!(
            "{file} has the unrecognised schema version {url:?}{dbt}"
        )));
    };
    if version.name != kind.schema_name {
        return Err(ConnectorError::config(format_args!(
            "{file} is a {} artifact ({url}), not {}: check the file names in the check's config",
            version.name, kind.schema_name
        )));
    }
    if let Some((lo, hi)) = kind.versions
        && !(lo..=hi).contains(&version.major)
    {
        let range = if lo == hi {
            format!("v{lo}")
        } else {
            format!("v{lo} to v{hi}")
        };
        return Err(ConnectorError::system(format_args!(
            "{file} has schema version v{} ({url}){dbt}; this connector reads {} {range} only, \
             so it refuses to guess at the file's meaning",
            version.major, kind.schema_name
        )));
    }
    Ok(version.major)
}

/// Reads artifact `file` (a name for messages) as `T`, checking its kind and
/// schema version. A body that is not what the schema promises is a `system`
/// error naming the file and the offending field.
pub fn load<T: DeserializeOwned + HasMetadata>(
    file: &str,
    kind: Kind,
    open: &Opener<'_>,
) -> Result<(T, u32), ConnectorError> {
    match serde_json::from_reader::<_, T>(std::io::BufReader::new(open()?)) {
        Ok(artifact) => {
            let major = check_version(file, kind, artifact.metadata())?;
            Ok((artifact, major))
        }
        Err(first) => {
            // A version we do not read explains a failure best.
            #[derive(Deserialize)]
            struct Header {
                metadata: Metadata,
            }
            if let Ok(header) =
                serde_json::from_reader::<_, Header>(std::io::BufReader::new(open()?))
            {
                check_version(file, kind, &header.metadata)?;
            }
            let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(open()?));
            let (path, reason) = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(err) => (err.path().to_string(), err.into_inner()),
                Ok(_) => (String::new(), first),
            };
            let at = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!(" at \"{path}\"")
            };
            Err(ConnectorError::system(format_args!(
                "{file} is not a readable dbt {} artifact{at}: {reason}",
                kind.schema_name
            )))
        }
    }
}

/// Artifacts expose their `metadata` so [`load`] can check the version.
pub trait HasMetadata {
    fn metadata(&self) -> &Metadata;
}

// ---------------------------------------------------------------------------
// run_results.json

/// `run_results.json`, schema v4 (dbt 1.0-1.6), v5 (1.7-1.8), v6 (1.9+).
/// Fields added by later versions are optional here, so one shape reads all.
#[derive(Debug, Deserialize)]
pub struct RunResultsFile {
    metadata: Metadata,
    results: Vec<RunResultRow>,
    elapsed_time: Option<f64>,
}

impl HasMetadata for RunResultsFile {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

#[derive(Debug, Deserialize)]
struct RunResultRow {
    unique_id: String,
    status: String,
    #[serde(default)]
    timing: Vec<TimingRow>,
    thread_id: Option<String>,
    execution_time: Option<f64>,
    adapter_response: Option<AdapterResponse>,
    message: Option<String>,
    failures: Option<u64>,
    /// v5+.
    relation_name: Option<String>,
    /// v6+, microbatch models only.
    batch_results: Option<BatchResults>,
}

#[derive(Debug, Deserialize)]
struct TimingRow {
    name: String,
    #[serde(default, deserialize_with = "time")]
    completed_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
struct AdapterResponse {
    /// Adapters disagree on its type (and some write -1 for "unknown").
    rows_affected: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BatchResults {
    #[serde(default)]
    successful: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    failed: Vec<serde::de::IgnoredAny>,
}

/// One dbt invocation whose results we report.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub schema_major: u32,
    pub dbt_version: Option<String>,
    pub invocation_id: Option<String>,
    pub generated_at: Option<Timestamp>,
    pub elapsed_time: Option<f64>,
}

impl Invocation {
    fn new(meta: Metadata, schema_major: u32, elapsed_time: Option<f64>) -> Self {
        Invocation {
            schema_major,
            dbt_version: meta.dbt_version,
            invocation_id: meta.invocation_id,
            generated_at: meta.generated_at,
            elapsed_time,
        }
    }
}

/// What one node's latest attempt did, from run_results.json or the
/// Discovery API.
#[derive(Debug, Clone, Default)]
pub struct NodeResult {
    pub unique_id: String,
    /// dbt's own word: `success`, `error`, `skipped`, `pass`, `fail`, `warn`,
    /// `no-op`, `partial success`...
    pub status: String,
    pub message: Option<String>,
    /// When this attempt ended.
    pub finished_at: Option<Timestamp>,
    /// When the node's data (or, for a test, its verdict) was last brought
    /// up to date; `None` when this attempt did not do it.
    pub updated_at: Option<Timestamp>,
    pub execution_time: Option<f64>,
    pub thread_id: Option<String>,
    pub rows_affected: Option<u64>,
    /// Tests: the number of failing rows.
    pub failures: Option<u64>,
    /// Microbatch models: (successful, failed) batches.
    pub batches: Option<(u64, u64)>,
    /// What the results say of the node itself, when no manifest does.
    pub kind: Option<String>,
    pub relation: Option<String>,
    pub materialized: Option<String>,
    /// Source-specific facts (Discovery run ids...), shown as metadata.
    pub extra_metadata: Vec<(String, String)>,
}

/// Statuses whose attempt finished and left the node's data (or verdict)
/// current.
fn completed(status: &str) -> bool {
    matches!(status, "success" | "pass" | "warn" | "fail")
}

pub struct RunResults {
    pub invocation: Invocation,
    pub nodes: Vec<NodeResult>,
}

impl RunResults {
    pub fn load(file: &str, open: &Opener<'_>) -> Result<Self, ConnectorError> {
        let (raw, major) = load::<RunResultsFile>(file, RUN_RESULTS, open)?;
        let generated_at = raw.metadata.generated_at;
        let invocation_id = raw.metadata.invocation_id.clone();
        let nodes = raw
            .results
            .into_iter()
            .map(|row| {
                let execute = row.timing.iter().find(|t| t.name == "execute");
                let finished_at = execute.and_then(|t| t.completed_at).or(generated_at);
                let rows_affected = row
                    .adapter_response
                    .and_then(|a| a.rows_affected)
                    .and_then(|v| v.as_u64());
                NodeResult {
                    updated_at: completed(&row.status).then_some(finished_at).flatten(),
                    finished_at,
                    unique_id: row.unique_id,
                    status: row.status,
                    message: row.message,
                    execution_time: row.execution_time,
                    thread_id: row.thread_id,
                    rows_affected,
                    failures: row.failures,
                    batches: row
                        .batch_results
                        .map(|b| (b.successful.len() as u64, b.failed.len() as u64)),
                    relation: row.relation_name,
                    extra_metadata: invocation_id
                        .iter()
                        .map(|id| ("invocation_id".to_owned(), id.clone()))
                        .collect(),
                    ..NodeResult::default()
                }
            })
            .collect();
        Ok(RunResults {
            invocation: Invocation::new(raw.metadata, major, raw.elapsed_time),
            nodes,
        })
    }
}

// ---------------------------------------------------------------------------
// sources.json

/// `sources.json`, schema v3 (dbt 1.0 onwards).
#[derive(Debug, Deserialize)]
pub struct SourcesFile {
    metadata: Metadata,
    results: Vec<SourceRow>,
    elapsed_time: Option<f64>,
}

impl HasMetadata for SourcesFile {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

/// Either a `SourceFreshnessOutput` (the query ran) or a
/// `SourceFreshnessRuntimeError` (only `unique_id`, `error`, `status`).
#[derive(Debug, Deserialize)]
struct SourceRow {
    unique_id: String,
    status: String,
    #[serde(default, deserialize_with = "time")]
    max_loaded_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "time")]
    snapshotted_at: Option<Timestamp>,
    max_loaded_at_time_ago_in_s: Option<f64>,
    criteria: Option<Criteria>,
    /// A string, an int or null in the schema.
    error: Option<Value>,
}

/// A freshness threshold as dbt writes it: `{count, period}`, either of
/// which may be null (then it is not set).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Threshold {
    pub count: Option<i64>,
    pub period: Option<String>,
}

impl Threshold {
    /// Set only when both parts are (dbt's rule).
    fn set(t: Option<Threshold>) -> Option<Threshold> {
        t.filter(|t| t.count.is_some() && t.period.is_some())
    }
}

impl Threshold {
    /// `1 hour`, `6 hours`: the threshold as a sentence says it.
    pub fn words(&self) -> String {
        let count = self.count.unwrap_or_default();
        let period = self.period.as_deref().unwrap_or_default();
        let plural = if count == 1 { "" } else { "s" };
        format!("{count} {period}{plural}")
    }
}

/// `1 hour`, `6 hour`: dbt's `count` and `period` as they are (the metadata
/// form).
impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.count.unwrap_or_default();
        let period = self.period.as_deref().unwrap_or_default();
        write!(f, "{count} {period}")
    }
}

/// `warn_after`, `error_after` and `filter`, from sources.json's `criteria`
/// or the manifest's `freshness`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Criteria {
    warn_after: Option<Threshold>,
    error_after: Option<Threshold>,
    pub filter: Option<String>,
}

impl Criteria {
    pub fn new(warn_after: Option<Threshold>, error_after: Option<Threshold>) -> Self {
        Criteria {
            warn_after,
            error_after,
            filter: None,
        }
    }

    pub fn warn_after(&self) -> Option<Threshold> {
        Threshold::set(self.warn_after.clone())
    }

    pub fn error_after(&self) -> Option<Threshold> {
        Threshold::set(self.error_after.clone())
    }

    /// dbt checks a source only when a threshold is set.
    pub fn configured(&self) -> bool {
        self.warn_after().is_some() || self.error_after().is_some()
    }
}

/// One source's freshness result, from sources.json or the Discovery API.
#[derive(Debug, Clone, Default)]
pub struct SourceFreshness {
    pub unique_id: String,
    /// `pass`, `warn`, `error` or `runtime error`.
    pub status: String,
    pub max_loaded_at: Option<Timestamp>,
    pub snapshotted_at: Option<Timestamp>,
    pub age_s: Option<f64>,
    pub criteria: Option<Criteria>,
    /// The runtime error's text.
    pub error: Option<String>,
    pub extra_metadata: Vec<(String, String)>,
}

pub struct Sources {
    pub invocation: Invocation,
    pub results: Vec<SourceFreshness>,
}

impl Sources {
    pub fn load(file: &str, open: &Opener<'_>) -> Result<Self, ConnectorError> {
        let (raw, major) = load::<SourcesFile>(file, SOURCES, open)?;
        let invocation_id = raw.metadata.invocation_id.clone();
        let results = raw
            .results
            .into_iter()
            .map(|row| SourceFreshness {
                unique_id: row.unique_id,
                status: row.status,
                max_loaded_at: row.max_loaded_at,
                snapshotted_at: row.snapshotted_at,
                age_s: row.max_loaded_at_time_ago_in_s,
                criteria: row.criteria,
                error: row.error.and_then(|e| match e {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => Some(other.to_string()),
                }),
                extra_metadata: invocation_id
                    .iter()
                    .map(|id| ("invocation_id".to_owned(), id.clone()))
                    .collect(),
            })
            .collect();
        Ok(Sources {
            invocation: Invocation::new(raw.metadata, major, raw.elapsed_time),
            results,
        })
    }
}

// ---------------------------------------------------------------------------
// manifest.json

/// `manifest.json`: what each node is, where it lives, what it depends on,
/// and which sources have freshness configured.
#[derive(Debug, Deserialize)]
pub struct ManifestFile {
    metadata: Metadata,
    #[serde(default)]
    nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    exposures: BTreeMap<String, RawExposure>,
    parent_map: Option<BTreeMap<String, Vec<String>>>,
}

impl HasMetadata for ManifestFile {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

#[derive(Debug, Default, Deserialize)]
struct DependsOn {
    #[serde(default)]
    nodes: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawNode {
    resource_type: String,
    relation_name: Option<String>,
    #[serde(default)]
    config: RawNodeConfig,
    #[serde(default)]
    depends_on: DependsOn,
    attached_node: Option<String>,
    test_metadata: Option<TestMetadata>,
}

#[derive(Debug, Default, Deserialize)]
struct RawNodeConfig {
    materialized: Option<String>,
    severity: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TestMetadata {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawSource {
    database: Option<String>,
    schema: Option<String>,
    identifier: Option<String>,
    loader: Option<String>,
    loaded_at_field: Option<String>,
    /// dbt 1.10+: SQL giving `max_loaded_at`, instead of a field.
    loaded_at_query: Option<String>,
    freshness: Option<Criteria>,
    config: Option<RawSourceConfig>,
    #[serde(default)]
    meta: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct RawSourceConfig {
    /// Absent before dbt 1.9; `null` when a table opts out.
    #[serde(default, deserialize_with = "present")]
    freshness: Option<Option<Criteria>>,
    loaded_at_field: Option<String>,
    loaded_at_query: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawExposure {
    #[serde(default)]
    depends_on: DependsOn,
    #[serde(rename = "type")]
    exposure_type: Option<String>,
    url: Option<String>,
}

/// What the manifest says of one node, source or exposure.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub resource_type: String,
    /// `"DB"."SCHEMA"."TABLE"` for nodes; `database.schema.identifier` for
    /// sources.
    pub relation: Option<String>,
    pub materialized: Option<String>,
    pub parents: Vec<String>,
    /// Tests.
    pub attached_node: Option<String>,
    pub severity: Option<String>,
    pub test_name: Option<String>,
    /// Sources: the thresholds dbt checks them against.
    pub freshness: Option<Criteria>,
    /// Shown with the asset: loader, loaded_at_field, meta, exposure url...
    pub details: Vec<(String, String)>,
}

pub struct Manifest {
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Child ids by parent id.
    pub children: BTreeMap<String, Vec<String>>,
}

/// The resource types that become assets (not analyses, macros, operations).
const ASSET_KINDS: [&str; 7] = [
    "model",
    "seed",
    "snapshot",
    "test",
    "unit_test",
    "source",
    "exposure",
];

impl Manifest {
    /// Every model, seed, snapshot, test, source and exposure, described by
    /// its relation.
    pub fn descriptors(&self) -> Vec<AssetDescriptor> {
        self.nodes
            .iter()
            .filter(|(_, info)| ASSET_KINDS.contains(&info.resource_type.as_str()))
            .map(|(id, info)| {
                let asset = AssetDescriptor::new(id, &info.resource_type);
                match &info.relation {
                    Some(relation) => asset.description(relation),
                    None => asset,
                }
            })
            .collect()
    }

    pub fn load(file: &str, open: &Opener<'_>) -> Result<Self, ConnectorError> {
        let (raw, major) = load::<ManifestFile>(file, MANIFEST, open)?;
        let parent_map = raw.parent_map.unwrap_or_default();
        let mut nodes = BTreeMap::new();
        let parents_of = |id: &str, depends_on: DependsOn| {
            parent_map.get(id).cloned().unwrap_or(depends_on.nodes)
        };
        for (id, node) in raw.nodes {
            let parents = parents_of(&id, node.depends_on);
            nodes.insert(
                id,
                NodeInfo {
                    resource_type: node.resource_type,
                    relation: node.relation_name,
                    materialized: node.config.materialized,
                    parents,
                    attached_node: node.attached_node,
                    severity: node.config.severity,
                    test_name: node.test_metadata.and_then(|t| t.name),
                    ..NodeInfo::default()
                },
            );
        }
        for (id, source) in raw.sources {
            let (config_freshness, config_loaded_at, config_query) = match source.config {
                Some(c) => (c.freshness, c.loaded_at_field, c.loaded_at_query),
                None => (None, None, None),
            };
            // dbt ≥ 1.9 keeps freshness in `config`, which wins; older
            // manifests only have the top-level property.
            let freshness = match config_freshness {
                Some(from_config) => from_config,
                None => source.freshness,
            };
            let mut details = Vec::new();
            let location: Vec<&str> = [&source.database, &source.schema, &source.identifier]
                .into_iter()
                .filter_map(|p| p.as_deref())
                .collect();
            // What dbt's freshness query reads (dbt refuses both at once);
            // as with freshness, the config value wins.
            if let Some(field) = config_loaded_at.or(source.loaded_at_field) {
                details.push(("loaded_at_field".to_owned(), field));
            }
            if let Some(query) = config_query.or(source.loaded_at_query) {
                details.push(("loaded_at_query".to_owned(), query));
            }
            if let Some(loader) = source.loader.filter(|l| !l.is_empty()) {
                details.push(("loader".to_owned(), loader));
            }
            for (key, value) in source.meta {
                let text = match value {
                    Value::String(s) => s,
                    Value::Null => continue,
                    other => other.to_string(),
                };
                details.push((format!("meta.{key}"), text));
            }
            nodes.insert(
                id,
                NodeInfo {
                    resource_type: "source".to_owned(),
                    relation: (!location.is_empty()).then(|| location.join(".")),
                    freshness,
                    details,
                    ..NodeInfo::default()
                },
            );
        }
        for (id, exposure) in raw.exposures {
            let parents = parents_of(&id, exposure.depends_on);
            let details = [
                ("exposure_type", exposure.exposure_type),
                ("url", exposure.url),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect();
            nodes.insert(
                id,
                NodeInfo {
                    resource_type: "exposure".to_owned(),
                    parents,
                    details,
                    ..NodeInfo::default()
                },
            );
        }
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, node) in &nodes {
            for parent in &node.parents {
                children.entry(parent.clone()).or_default().push(id.clone());
            }
        }
        if !TESTED_MANIFESTS.contains(&major) {
            log::warn(
                "reading a manifest schema version this connector was not tested with",
                &[("file", &file), ("version", &major)],
            );
        }
        Ok(Manifest { nodes, children })
    }
}

// ---------------------------------------------------------------------------
// Field helpers

/// A dbt timestamp: RFC 3339 (`…Z`, `…+00:00`, with `T` or a space), or a
/// naive date-time, which dbt means as UTC. Null or absent is `None`.
pub fn time<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Timestamp>, D::Error> {
    let Some(text) = Option::<String>::deserialize(de)? else {
        return Ok(None);
    };
    parse_time(&text)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format_args!("invalid timestamp {text:?}")))
}

pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.into());
    }
    // dbt Cloud's Admin API: `2026-11-21 21:42:36.841804+00:00`.
    if let Ok(at) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(at.into());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc().into())
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

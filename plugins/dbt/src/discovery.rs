//! dbt Cloud mode through the Discovery API (GraphQL): the applied state of
//! one environment, i.e. what its latest runs left behind.
//!
//! `POST <metadata_url>` with `Authorization: Bearer <token>` and
//! `{"query", "operationName", "variables": {environmentId, first, after}}`;
//! two queries, each paged with `first`/`after` until `pageInfo.hasNextPage`
//! is false:
//!
//! - `TributarySources`: `environment(id) { applied { sources { … freshness {
//!   freshnessChecked freshnessStatus maxLoadedAt maxLoadedAtTimeAgoInS
//!   snapshottedAt criteria {…} } } } }`;
//! - `TributaryModels`: `… models { … executionInfo { lastRunStatus
//!   lastRunError … executeCompletedAt executionTime } }`.
//!
//! In `executionInfo` the `lastRun*` fields describe the last attempt,
//! whatever its outcome, while `execute*` describe the last *successful*
//! build: so a model's freshness is `executeCompletedAt` and its verdict is
//! `lastRunStatus`. The answers become the same records as artifacts (with a
//! manifest built from what the API says of each node), so a source whose
//! freshness is checked but has no status fails exactly as in Core mode.

use std::collections::BTreeMap;
use std::time::Duration;

use plugin_sdk::prelude::*;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::artifacts::{
    self, Criteria, Manifest, NodeInfo, NodeResult, SourceFreshness, Threshold,
};
use crate::report::{self, FreshnessResults, Inputs};

pub struct Settings {
    pub token: String,
    pub environment_id: u64,
    pub metadata_url: String,
    pub page_size: u32,
    pub timeout: Duration,
}

const SOURCES_QUERY: &str =
    "query TributarySources($environmentId: BigInt!, $first: Int!, $after: String) {
  environment(id: $environmentId) {
    applied {
      sources(first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { node {
          uniqueId sourceName name identifier database schema loader
          freshness {
            freshnessChecked freshnessStatus maxLoadedAt maxLoadedAtTimeAgoInS snapshottedAt
            freshnessJobDefinitionId freshnessRunId freshnessRunGeneratedAt
            criteria { warnAfter { count period } errorAfter { count period } }
          }
        } }
      }
    }
  }
}";

const MODELS_QUERY: &str =
    "query TributaryModels($environmentId: BigInt!, $first: Int!, $after: String) {
  environment(id: $environmentId) {
    applied {
      models(first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        edges { node {
          uniqueId name database schema alias materializedType
          executionInfo {
            lastRunId lastRunStatus lastRunError lastRunGeneratedAt lastJobDefinitionId
            lastSuccessRunId lastSuccessJobDefinitionId
            executeStartedAt executeCompletedAt executionTime runGeneratedAt runElapsedTime
          }
        } }
      }
    }
  }
}";

#[derive(Debug, Deserialize)]
struct GqlResponse<T> {
    data: Option<GqlData<T>>,
    #[serde(default)]
    errors: Vec<GqlError>,
}

#[derive(Debug, Deserialize)]
struct GqlError {
    message: String,
}

#[derive(Debug, Deserialize)]
struct GqlData<T> {
    environment: Option<Environment<T>>,
}

#[derive(Debug, Deserialize)]
struct Environment<T> {
    /// `sources` or `models`, whichever the query asked.
    applied: BTreeMap<String, Connection<T>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection<T> {
    page_info: PageInfo,
    edges: Vec<Edge<T>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Edge<T> {
    node: T,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceNode {
    unique_id: String,
    identifier: Option<String>,
    database: Option<String>,
    schema: Option<String>,
    loader: Option<String>,
    freshness: Option<Freshness>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Freshness {
    freshness_checked: Option<bool>,
    freshness_status: Option<String>,
    #[serde(default, deserialize_with = "artifacts::time")]
    max_loaded_at: Option<Timestamp>,
    max_loaded_at_time_ago_in_s: Option<f64>,
    #[serde(default, deserialize_with = "artifacts::time")]
    snapshotted_at: Option<Timestamp>,
    freshness_job_definition_id: Option<Value>,
    freshness_run_id: Option<Value>,
    criteria: Option<GqlCriteria>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GqlCriteria {
    warn_after: Option<Threshold>,
    error_after: Option<Threshold>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelNode {
    unique_id: String,
    database: Option<String>,
    schema: Option<String>,
    alias: Option<String>,
    materialized_type: Option<String>,
    execution_info: Option<ExecutionInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionInfo {
    last_run_id: Option<Value>,
    last_run_status: Option<String>,
    last_run_error: Option<String>,
    #[serde(default, deserialize_with = "artifacts::time")]
    last_run_generated_at: Option<Timestamp>,
    last_job_definition_id: Option<Value>,
    last_success_run_id: Option<Value>,
    #[serde(default, deserialize_with = "artifacts::time")]
    execute_completed_at: Option<Timestamp>,
    execution_time: Option<f64>,
}

/// GraphQL ids are `BigInt`s, which servers write as numbers or strings.
fn id_text(value: Option<Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn relation(parts: [&Option<String>; 3]) -> Option<String> {
    let parts: Vec<&str> = parts.into_iter().filter_map(|p| p.as_deref()).collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

fn client(s: &Settings) -> Client {
    Client::new().bearer_auth(&s.token).timeout(s.timeout)
}

/// Every node of `field` (`sources` or `models`), page after page.
async fn fetch_all<T: DeserializeOwned>(
    client: &Client,
    s: &Settings,
    operation: &str,
    query: &str,
    field: &str,
    first: u32,
    all_pages: bool,
) -> Result<Vec<T>, ConnectorError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = json!({
            "query": query,
            "operationName": operation,
            "variables": { "environmentId": s.environment_id, "first": first, "after": after },
        });
        let context = || format!("Discovery API {operation}");
        let answer: GqlResponse<T> = client
            .post(&s.metadata_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.context(context()))?
            .json()?;
        // A partial answer (data beside errors) may have nulls where the
        // failed fields were: refuse it rather than read it as empty.
        let environment = answer.data.and_then(|d| d.environment);
        let Some(mut environment) = environment.filter(|_| answer.errors.is_empty()) else {
            return Err(graphql_error(s, operation, &answer.errors));
        };
        let connection = environment.applied.remove(field).ok_or_else(|| {
            ConnectorError::system(format_args!(
                "Discovery API {operation}: the answer has no applied.{field}"
            ))
        })?;
        out.extend(connection.edges.into_iter().map(|e| e.node));
        if !all_pages || !connection.page_info.has_next_page {
            return Ok(out);
        }
        match connection.page_info.end_cursor {
            Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
            other => {
                return Err(ConnectorError::system(format_args!(
                    "Discovery API {operation}: hasNextPage is true but the endCursor {other:?} \
                     does not move on"
                )));
            }
        }
    }
}

/// Why an answer is unusable: GraphQL reports a refused token, an unknown
/// environment or a failed field as `errors` beside `data`.
fn graphql_error(s: &Settings, operation: &str, errors: &[GqlError]) -> ConnectorError {
    let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
    let text = messages.join("; ");
    let lower = text.to_lowercase();
    if lower.contains("unauthorized")
        || lower.contains("not authorized")
        || lower.contains("permission")
    {
        ConnectorError::auth(format_args!("Discovery API {operation}: {text}"))
    } else if errors.is_empty() || lower.contains("not found") || lower.contains("does not exist") {
        ConnectorError::config(format_args!(
            "Discovery API {operation}: environment {} not found at {} (or the token cannot see it){}",
            s.environment_id,
            s.metadata_url,
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        ))
    } else {
        ConnectorError::system(format_args!("Discovery API {operation}: {text}"))
    }
}

/// The applied state as the records artifacts give: node results, freshness
/// results, and a manifest of what the API says of each node.
struct AppliedState {
    nodes: Vec<NodeResult>,
    freshness: Vec<SourceFreshness>,
    manifest: Manifest,
}

async fn applied_state(s: &Settings) -> Result<AppliedState, ConnectorError> {
    let client = client(s);
    let sources: Vec<SourceNode> = fetch_all(
        &client,
        s,
        "TributarySources",
        SOURCES_QUERY,
        "sources",
        s.page_size,
        true,
    )
    .await?;
    let models: Vec<ModelNode> = fetch_all(
        &client,
        s,
        "TributaryModels",
        MODELS_QUERY,
        "models",
        s.page_size,
        true,
    )
    .await?;

    let mut manifest = Manifest {
        nodes: BTreeMap::new(),
        children: BTreeMap::new(),
    };
    let mut freshness = Vec::new();
    for source in sources {
        let location = relation([&source.database, &source.schema, &source.identifier]);
        let f = source.freshness;
        // Thresholds count only for a source the API says it checks.
        let criteria = f
            .as_ref()
            .filter(|f| f.freshness_checked != Some(false))
            .and_then(|f| f.criteria.as_ref())
            .map(|c| Criteria::new(c.warn_after.clone(), c.error_after.clone()));
        let mut details = Vec::new();
        if let Some(loader) = source.loader.filter(|l| !l.is_empty()) {
            details.push(("loader".to_owned(), loader));
        }
        manifest.nodes.insert(
            source.unique_id.clone(),
            NodeInfo {
                resource_type: "source".to_owned(),
                relation: location,
                freshness: criteria.clone(),
                details,
                ..NodeInfo::default()
            },
        );
        let Some(f) = f else { continue };
        if let Some(status) = f.freshness_status {
            let extra_metadata = [
                ("freshness_run_id", id_text(f.freshness_run_id)),
                ("freshness_job_id", id_text(f.freshness_job_definition_id)),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect();
            freshness.push(SourceFreshness {
                unique_id: source.unique_id,
                status: status.to_lowercase(),
                max_loaded_at: f.max_loaded_at,
                snapshotted_at: f.snapshotted_at,
                age_s: f.max_loaded_at_time_ago_in_s,
                criteria,
                error: None,
                extra_metadata,
            });
        }
    }

    let nodes = models
        .into_iter()
        .map(|model| {
            let relation = relation([&model.database, &model.schema, &model.alias]);
            let info = model.execution_info;
            let status = info
                .as_ref()
                .and_then(|i| i.last_run_status.as_ref())
                .map_or_else(|| "never run".to_owned(), |s| s.to_lowercase());
            let Some(info) = info else {
                return NodeResult {
                    unique_id: model.unique_id,
                    status,
                    kind: Some("model".to_owned()),
                    relation,
                    materialized: model.materialized_type,
                    ..NodeResult::default()
                };
            };
            let extra_metadata = [
                ("last_run_id", id_text(info.last_run_id)),
                ("last_job_id", id_text(info.last_job_definition_id)),
                ("last_success_run_id", id_text(info.last_success_run_id)),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect();
            NodeResult {
                unique_id: model.unique_id,
                status,
                message: info.last_run_error,
                finished_at: info.last_run_generated_at,
                updated_at: info.execute_completed_at,
                execution_time: info.execution_time,
                kind: Some("model".to_owned()),
                relation,
                materialized: model.materialized_type,
                extra_metadata,
                ..NodeResult::default()
            }
        })
        .collect();
    Ok(AppliedState {
        nodes,
        freshness,
        manifest,
    })
}

pub async fn collect(s: &Settings) -> Result<Vec<Observation>, ConnectorError> {
    let state = applied_state(s).await?;
    Ok(report::observations(&Inputs {
        nodes: &state.nodes,
        freshness: FreshnessResults::Present {
            results: &state.freshness,
            described_as: format!("the applied state of environment {}", s.environment_id),
        },
        manifest: Some(&state.manifest),
        origin: None,
    }))
}

/// One small query: the token works and the environment exists.
pub async fn test(s: &Settings) -> Result<(), ConnectorError> {
    fetch_all::<SourceNode>(
        &client(s),
        s,
        "TributarySources",
        SOURCES_QUERY,
        "sources",
        1,
        false,
    )
    .await
    .map(|_| ())
}

pub async fn discover(s: &Settings) -> Result<Vec<AssetDescriptor>, ConnectorError> {
    let state = applied_state(s).await?;
    let mut assets = state.manifest.descriptors();
    assets.extend(state.nodes.iter().map(|n| {
        let asset = AssetDescriptor::new(&n.unique_id, "model");
        match &n.relation {
            Some(r) => asset.description(r),
            None => asset,
        }
    }));
    assets.sort_by(|a, b| a.asset.cmp(&b.asset));
    Ok(assets)
}

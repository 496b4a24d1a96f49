//! dbt Cloud mode through the Administrative API v2: the newest finished run
//! of each configured job, and that run's artifacts read exactly as Core
//! mode reads files.
//!
//! Requests (all with `Authorization: Token <token>`, `Accept:
//! application/json`; every answer is the envelope `{status, data, extra}`):
//!
//! | request | why |
//! | --- | --- |
//! | `GET /api/v2/accounts/{a}/runs/?job_definition_id={j}&order_by=-id&limit=5&offset=N` | the job's runs, newest first; further pages only while every run seen is still queued or running (at most 100 runs) |
//! | `GET /api/v2/accounts/{a}/runs/{id}/artifacts/run_results.json` | the run's node results (404: the run wrote none) |
//! | `GET …/artifacts/manifest.json` | unless `fetch_manifest = false` |
//! | `GET …/artifacts/sources.json` | only when the run has `has_sources_generated` |
//! | `GET /api/v2/accounts/{a}/jobs/{j}/` | `test_connection`: the job exists and the token may read it |
//!
//! Run status codes: 1 queued, 2 starting, 3 running (in progress), 10
//! success, 20 error, 30 cancelled (finished). A job whose newest run is in
//! progress reports its last finished run, with metadata naming the run in
//! progress.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use plugin_sdk::log;
use plugin_sdk::prelude::*;
use serde::Deserialize;

use crate::artifacts::{self, Manifest, RunResults, Sources};
use crate::files::describe;
use crate::report::{self, FreshnessResults, Inputs, Origin};

/// Runs asked per page: the newest finished run is nearly always among the
/// first few.
const RUNS_PAGE: u64 = 5;
/// How far back to look for a finished run before giving up.
const MAX_RUNS_SCANNED: u64 = 100;
/// A large project's manifest runs to tens of MB; the check's memory and
/// `http_response` limits still apply.
const MAX_ARTIFACT_BYTES: usize = 64 << 20;

pub struct Settings {
    pub token: String,
    pub account_id: u64,
    pub job_ids: Vec<u64>,
    pub base_url: String,
    pub fetch_manifest: bool,
    pub timeout: Duration,
}

/// `{status, data, extra}`: every Admin API answer.
#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: T,
    extra: Option<Extra>,
}

#[derive(Debug, Deserialize)]
struct Extra {
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    total_count: u64,
}

/// The RunResponse fields we use.
#[derive(Debug, Clone, Deserialize)]
struct Run {
    id: u64,
    status: i64,
    job_definition_id: Option<u64>,
    status_humanized: Option<String>,
    status_message: Option<String>,
    #[serde(default, deserialize_with = "artifacts::time")]
    created_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "artifacts::time")]
    started_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "artifacts::time")]
    finished_at: Option<Timestamp>,
    href: Option<String>,
    dbt_version: Option<String>,
    git_sha: Option<String>,
    has_sources_generated: Option<bool>,
}

impl Run {
    fn in_progress(&self) -> bool {
        matches!(self.status, 1..=3)
    }

    fn finished(&self) -> bool {
        matches!(self.status, 10 | 20 | 30)
    }

    /// `Success`, `Error`... as dbt Cloud words it.
    fn status_word(&self) -> String {
        self.status_humanized.clone().unwrap_or_else(|| {
            match self.status {
                1 => "Queued",
                2 => "Starting",
                3 => "Running",
                10 => "Success",
                20 => "Error",
                30 => "Cancelled",
                _ => "Unknown",
            }
            .to_owned()
        })
    }
}

/// What a job's newest runs say.
struct Latest {
    finished: Option<Run>,
    /// The newest run still queued, starting or running.
    in_progress: Option<Run>,
    scanned: u64,
}

fn client(s: &Settings) -> Client {
    Client::new()
        .base_url(&s.base_url)
        .header("authorization", format!("Token {}", s.token))
        .timeout(s.timeout)
        .max_response_bytes(MAX_ARTIFACT_BYTES)
}

/// A 404 from the Admin API: the account, or the job in it.
fn not_found(s: &Settings, job: Option<u64>) -> ConnectorError {
    let what = match job {
        Some(job) => format!("job {job} not found in dbt Cloud account {}", s.account_id),
        None => format!("dbt Cloud account {} not found", s.account_id),
    };
    ConnectorError::config(format_args!(
        "{what} at {} (or the token cannot see it)",
        s.base_url
    ))
}

async fn latest_runs(client: &Client, s: &Settings, job: u64) -> Result<Latest, ConnectorError> {
    let mut latest = Latest {
        finished: None,
        in_progress: None,
        scanned: 0,
    };
    loop {
        let response = client
            .get(format!("/api/v2/accounts/{}/runs/", s.account_id))
            .query("job_definition_id", job)
            .query("order_by", "-id")
            .query("limit", RUNS_PAGE)
            .query("offset", latest.scanned)
            .send_any_status()
            .await
            .map_err(|e| e.context(format_args!("listing the runs of job {job}")))?;
        if response.status() == 404 {
            return Err(not_found(s, None));
        }
        let page: Envelope<Vec<Run>> = response
            .error_for_status()
            .map_err(|e| e.context(format_args!("listing the runs of job {job}")))?
            .json()?;
        let count = page.data.len() as u64;
        for run in page.data {
            if run.job_definition_id.is_some_and(|j| j != job) {
                return Err(ConnectorError::system(format_args!(
                    "the Admin API answered run {} of job {} when asked for the runs of job {job}",
                    run.id,
                    run.job_definition_id.unwrap_or_default()
                )));
            }
            if run.finished() {
                latest.finished = Some(run);
                latest.scanned += 1;
                return Ok(latest);
            }
            if run.in_progress() && latest.in_progress.is_none() {
                latest.in_progress = Some(run);
            } else if !run.in_progress() {
                log::warn(
                    "skipping a run with an unknown status code",
                    &[("run_id", &run.id), ("status", &run.status)],
                );
            }
            latest.scanned += 1;
        }
        let total = page
            .extra
            .and_then(|e| e.pagination)
            .map_or(latest.scanned, |p| p.total_count);
        if count == 0 || latest.scanned >= total || latest.scanned >= MAX_RUNS_SCANNED {
            return Ok(latest);
        }
    }
}

/// One artifact of a run; `None` when the run has none by that name.
async fn artifact(
    client: &Client,
    s: &Settings,
    run: u64,
    name: &str,
) -> Result<Option<Vec<u8>>, ConnectorError> {
    let context = || format!("fetching {name} of run {run}");
    let response = client
        .get(format!(
            "/api/v2/accounts/{}/runs/{run}/artifacts/{name}",
            s.account_id
        ))
        .send_any_status()
        .await
        .map_err(|e| e.context(context()))?;
    if response.status() == 404 {
        return Ok(None);
    }
    Ok(Some(
        response
            .error_for_status()
            .map_err(|e| e.context(context()))?
            .into_bytes(),
    ))
}

/// Parses `bytes` with `load`, the parser Core mode uses on files.
fn parse<T>(
    bytes: &[u8],
    load: impl Fn(&str, &artifacts::Opener<'_>) -> Result<T, ConnectorError>,
    label: &str,
) -> Result<T, ConnectorError> {
    load(label, &|| Ok(Box::new(bytes) as Box<dyn Read + '_>))
}

/// A job's observations: the job itself, then every node of its newest
/// finished run, each with the run's finish time (to keep the newest when
/// two jobs report one node).
async fn job_observations(
    client: &Client,
    s: &Settings,
    job: u64,
) -> Result<Vec<(Option<Timestamp>, Observation)>, ConnectorError> {
    let latest = latest_runs(client, s, job).await?;
    let mut job_obs = Observation::new(format!("job.{job}"), "job");
    if let Some(run) = &latest.in_progress {
        job_obs.set_metadata("in_progress_run_id", run.id);
        job_obs.set_metadata("in_progress_status", run.status_word());
        if let Some(since) = run.started_at.or(run.created_at) {
            job_obs.set_metadata("in_progress_since", since);
        }
    }
    let Some(run) = latest.finished else {
        let message = format!(
            "none of the job's {} newest runs has finished",
            latest.scanned
        );
        job_obs = job_obs.native_status(NativeStatus::unknown("no finished run").message(message));
        return Ok(vec![(None, job_obs)]);
    };
    let origin = Origin {
        job_id: Some(job),
        run_id: Some(run.id),
        href: run.href.clone(),
    };
    let word = run.status_word();
    let native = match run.status {
        10 => NativeStatus::ok(word),
        20 => NativeStatus::error(word),
        _ => NativeStatus::warn(word),
    };
    job_obs = job_obs.native_status(match run.status_message.clone() {
        Some(m) if !m.is_empty() => native.message(m),
        _ => native,
    });
    if run.status == 10 {
        job_obs = job_obs.freshness(run.finished_at);
    }
    job_obs.set_metadata("run_id", run.id);
    for (key, value) in [
        ("finished_at", run.finished_at.map(|t| t.to_string())),
        ("href", run.href.clone()),
        ("dbt_version", run.dbt_version.clone()),
        ("git_sha", run.git_sha.clone()),
    ] {
        if let Some(value) = value {
            job_obs.set_metadata(key, value);
        }
    }

    let label = |name: &str| format!("{name} of run {}", run.id);
    let Some(bytes) = artifact(client, s, run.id, "run_results.json").await? else {
        job_obs.set_metadata("run_results", "the run saved no run_results.json");
        return Ok(vec![(run.finished_at, job_obs)]);
    };
    let run_results = parse(&bytes, RunResults::load, &label("run_results.json"))?;
    drop(bytes);
    let manifest = match s.fetch_manifest {
        true => match artifact(client, s, run.id, "manifest.json").await? {
            Some(bytes) => Some(parse(&bytes, Manifest::load, &label("manifest.json"))?),
            None => None,
        },
        false => None,
    };
    let sources = match run.has_sources_generated {
        Some(true) => match artifact(client, s, run.id, "sources.json").await? {
            Some(bytes) => Some(parse(&bytes, Sources::load, &label("sources.json"))?),
            None => None,
        },
        _ => None,
    };
    let freshness = match &sources {
        Some(src) => FreshnessResults::Present {
            results: &src.results,
            // Worded as in Core mode: the run is in the metadata.
            described_as: describe("sources.json", src.invocation.invocation_id.as_deref()),
        },
        None if run.has_sources_generated == Some(true) => {
            FreshnessResults::Absent(format!("run {} saved no sources.json", run.id))
        }
        None => FreshnessResults::Absent(format!(
            "run {} of job {job} did not check source freshness (enable it on the job)",
            run.id
        )),
    };
    let nodes = report::observations(&Inputs {
        nodes: &run_results.nodes,
        freshness,
        manifest: manifest.as_ref(),
        origin: Some(&origin),
    });
    for (name, count) in report::run_counts(&run_results) {
        job_obs = job_obs.extra(name, count);
    }
    if sources.is_some() {
        for (name, count) in report::freshness_counts(&nodes) {
            job_obs = job_obs.extra(format!("freshness_{name}"), count);
        }
    }
    job_obs.set_metadata("summary", report::console_line(&run_results));
    if let Some(id) = &run_results.invocation.invocation_id {
        job_obs.set_metadata("invocation_id", id);
    }
    let mut out = vec![(run.finished_at, job_obs)];
    out.extend(nodes.into_iter().map(|o| (run.finished_at, o)));
    Ok(out)
}

pub async fn collect(s: &Settings) -> Result<Vec<Observation>, ConnectorError> {
    let client = client(s);
    // One node built by two jobs: the newer run speaks for it.
    let mut by_asset: BTreeMap<String, (Option<Timestamp>, Observation)> = BTreeMap::new();
    for &job in &s.job_ids {
        for (at, obs) in job_observations(&client, s, job).await? {
            let newer = by_asset.get(&obs.asset).is_none_or(|(seen, _)| at >= *seen);
            if newer {
                by_asset.insert(obs.asset.clone(), (at, obs));
            }
        }
    }
    Ok(by_asset.into_values().map(|(_, obs)| obs).collect())
}

/// Every configured job exists and the token may read it.
pub async fn test(s: &Settings) -> Result<(), ConnectorError> {
    let client = client(s);
    for &job in &s.job_ids {
        let response = client
            .get(format!("/api/v2/accounts/{}/jobs/{job}/", s.account_id))
            .send_any_status()
            .await?;
        if response.status() == 404 {
            return Err(not_found(s, Some(job)));
        }
        response.error_for_status()?;
    }
    Ok(())
}

/// The jobs, and the nodes of each job's newest finished run.
pub async fn discover(s: &Settings) -> Result<Vec<AssetDescriptor>, ConnectorError> {
    let client = client(s);
    let mut assets = BTreeMap::new();
    for &job in &s.job_ids {
        let asset = format!("job.{job}");
        assets.insert(asset.clone(), AssetDescriptor::new(asset, "job"));
        let Some(run) = latest_runs(&client, s, job).await?.finished else {
            continue;
        };
        let label = format!("manifest.json of run {}", run.id);
        if let Some(bytes) = artifact(&client, s, run.id, "manifest.json").await? {
            let manifest = parse(&bytes, Manifest::load, &label)?;
            for asset in manifest.descriptors() {
                assets.insert(asset.asset.clone(), asset);
            }
        }
    }
    Ok(assets.into_values().collect())
}

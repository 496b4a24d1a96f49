//! The OpenLineage receiver: `POST /api/v1/lineage`, the path and the 201
//! of Marquez, so a producer pointed at Tributary with
//! `OPENLINEAGE_URL=http://host:port` (dbt-ol, Airflow, Spark, the Python
//! client) needs nothing else but its token (`api_key`, sent as `Bearer`).
//!
//! A check with `connector = "openlineage"` maps jobs to itself by globs on
//! `<job namespace>/<job name>`; the token names the check. An event of a
//! job that no check maps is answered 200 and ignored (producers send every
//! job of an invocation, wrappers included; refusing them would only fill
//! the producer's log); a job another check maps is refused 403, like
//! another check's token on the push API. Events are merged per run
//! ([`merge`]) within the check's byte budgets (`max_run_held`: 413
//! `run_too_large`; `max_held` or `server.openlineage_max_held`: 503
//! `openlineage_full` with `Retry-After`); the run's terminal event becomes
//! a report ([`report`]) handed to the push API's [`submit`](super::submit),
//! whose idempotency (the run id derived from the `runId`) stores each run
//! once. Lineage edges (each input -> each output) are recorded from every
//! event let in (none from a refused one).
//!
//! It owns reading events and mapping them to checks; admission, body
//! limits, gzip and refusals are the push API's. It must not judge health
//! or write the store but through the service.

mod event;
mod merge;
mod prune;
mod report;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Api, Feed, PushApi, Refusal, admit, answer, body, json_media, submit, token_of, wire};
use crate::config::Config;
use crate::store::{DatasetName, LineageEdge};
use event::{Read, RunEvent};
pub use merge::OpenRuns;
use merge::{Budget, Expired, Refused};

/// Most lineage edges (inputs x outputs) taken from one event: a body of a
/// few MB naming thousands of inputs and outputs would otherwise make
/// millions of them, held while they are written.
const MAX_EDGES: usize = 10_000;

/// When a producer refused for a full budget may try again: runs end or
/// expire in their own time, and the clients' retries (five, by default)
/// should span a few of them.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

/// What became of an event that was let in.
enum Outcome {
    Accepted(Response),
    Ignored(String),
}

pub(super) async fn post_event(State(api): State<Api>, headers: HeaderMap, body: Body) -> Response {
    let mut event_type = None;
    let result = receive(&api, &headers, body, &mut event_type).await;
    let metrics = api.service.metrics();
    let result = result.map(|outcome| match outcome {
        Outcome::Accepted(response) => {
            if let Some(t) = event_type {
                metrics.openlineage_event(t, "accepted");
            }
            response
        }
        Outcome::Ignored(why) => {
            if let Some(t) = event_type {
                metrics.openlineage_event(t, "ignored");
            }
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({"accepted": false, "ignored": why})),
            )
                .into_response()
        }
    });
    answer(&api, "openlineage", None, result)
}

async fn receive(
    api: &PushApi,
    headers: &HeaderMap,
    body: Body,
    event_type: &mut Option<&'static str>,
) -> Result<Outcome, Refusal> {
    let token = token_of(headers, &[]);
    let admitted = admit(api, None, token, Feed::OpenLineage, |_| Ok(()))?;
    json_media(headers, &[])?;
    let push = admitted.push();
    let jobs = push.openlineage.as_ref().expect("an openlineage check");
    let body = body::read(body, headers, push.max_body_bytes).await?;
    let now = api.clock.now();
    let event = match event::read(&body, now).map_err(super::Refusal::Invalid)? {
        Read::Static => {
            return Ok(Outcome::Ignored(
                "only run events are read (a DatasetEvent or JobEvent has no run to judge)"
                    .to_owned(),
            ));
        }
        Read::Run(event) => event,
    };
    *event_type = Some(event.event_type.as_str());
    let job = format!("{}/{}", event.job.namespace, event.job.name);
    if !jobs.maps(&event.job.namespace, &event.job.name) {
        return match mapped_by(&api.service.loaded().config, &event) {
            Some(other) => Err(Refusal::Forbidden {
                code: "wrong_check",
                message: format!(
                    "job {job:?} feeds check {other:?}; send its events with that check's token"
                ),
            }),
            None => Ok(Outcome::Ignored(format!(
                "job {job:?} matches no job of check {:?} (openlineage.jobs); nothing was stored",
                admitted.check().id
            ))),
        };
    }
    let run_id = super::keyed_run_id(
        &admitted.check().id,
        &format!("openlineage:{}", event.run_id),
    );
    let check = &admitted.check().id;
    let budget = Budget {
        run: jobs.max_run_held,
        check: jobs.max_held,
        total: admitted.config.server.openlineage_max_held,
        idle: jobs.run_idle,
    };
    let instant = tokio::time::Instant::now();
    if !event.event_type.is_terminal() {
        let (expired, held) = api.open_runs.note(check, &run_id, &event, budget, instant);
        account(api, expired);
        held.map_err(|refused| match refused {
            Refused::Run { .. } => Refusal::RunTooLarge(refused.to_string()),
            Refused::Check { .. } | Refused::Total { .. } => Refusal::Full {
                message: refused.to_string(),
                retry_after: FULL_RETRY_AFTER,
            },
        })?;
        record_lineage(api, check, &event, now).await;
        return Ok(Outcome::Accepted(
            (
                StatusCode::CREATED,
                axum::Json(serde_json::json!({"accepted": true, "run": run_id, "ended": false})),
            )
                .into_response(),
        ));
    }
    record_lineage(api, check, &event, now).await;
    let (expired, state) = api.open_runs.end(&run_id, &event, instant);
    account(api, expired);
    let pushed = wire::Pushed {
        // Judged as of its arrival, not its eventTime: the many jobs feeding
        // one check end in any order, and a run that ended a moment before
        // another job's stored run must still count (its datasets' freshness
        // is its eventTime).
        at: None,
        report: report::report(&state, &event),
        ids: BTreeMap::new(),
    };
    let mut response = submit(api, &admitted, run_id, true, now, pushed).await?;
    *response.status_mut() = StatusCode::CREATED;
    Ok(Outcome::Accepted(response))
}

/// Records the event's lineage edges; a failure is only logged (the job's
/// next run names them again).
async fn record_lineage(api: &PushApi, check: &str, event: &RunEvent, now: SystemTime) {
    let count = event.inputs.len().saturating_mul(event.outputs.len());
    if count > MAX_EDGES {
        tracing::warn!(check = %check, inputs = event.inputs.len(), outputs = event.outputs.len(), "an OpenLineage event names more lineage edges than are taken from one event ({MAX_EDGES}); none of them are recorded, its run is judged as usual");
        return;
    }
    let edges = edges(check, event);
    if let Err(e) = api.service.record_lineage(&edges, now).await {
        tracing::warn!(error = %e, check = %check, "lineage edges not recorded; the job's next run names them again");
    }
}

/// Tells what unfinished runs hold now, and which expired.
fn account(api: &PushApi, expired: Expired) {
    let metrics = api.service.metrics();
    for (check, (runs, bytes)) in &expired.by_check {
        tracing::info!(check = %check, runs, bytes, "unfinished OpenLineage runs expired, not heard of for the check's run_idle; nothing stored is lost, their terminal events stand alone");
        metrics.openlineage_runs_expired(*runs);
    }
    let held = api.open_runs.held();
    metrics.openlineage_held(held.runs, held.bytes);
}

/// The OpenLineage check that maps the event's job, if any.
fn mapped_by<'c>(config: &'c Config, event: &RunEvent) -> Option<&'c str> {
    config
        .checks
        .iter()
        .find(|c| {
            c.push
                .as_deref()
                .and_then(|p| p.openlineage.as_ref())
                .is_some_and(|j| j.maps(&event.job.namespace, &event.job.name))
        })
        .map(|c| c.id.as_str())
}

/// Each input of the event to each of its outputs.
fn edges(check: &str, event: &RunEvent) -> Vec<LineageEdge> {
    let name = |n: &event::Name| DatasetName {
        namespace: n.namespace.clone(),
        name: n.name.clone(),
    };
    let mut edges = Vec::new();
    for input in &event.inputs {
        for output in &event.outputs {
            edges.push(LineageEdge {
                check_id: check.to_owned(),
                job: name(&event.job),
                upstream: name(&input.id),
                downstream: name(&output.id),
            });
        }
    }
    edges
}

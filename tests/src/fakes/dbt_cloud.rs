//! Fake of dbt Cloud: the Administrative API v2 (under `/api/v2/…`) and the
//! Discovery API (`POST /graphql`) on one port, following
//! `shared/reference/dbt.md` and `specs/dbt-cloud-admin-api-v2.yaml`.
//!
//! One account ([`ACCOUNT_ID`]) with one job ([`JOB_ID`]) in one
//! environment ([`ENVIRONMENT_ID`]). The job's runs are served newest first
//! with offset/limit pages and `extra.pagination`; a finished run's artifacts
//! are the real dbt 1.11 artifacts of `tests/fixtures/dbt/shop/`, with every
//! timestamp moved so the run finished [`RECENT`] (or, when stale,
//! [`STALE`]) before the [`FakeClock`]: dbt's own ages and statuses stay as
//! dbt wrote them, while freshness is real relative to the clock. The
//! Discovery API answers the connector's two queries (it reads the operation,
//! the variables and the environment asked for, not general GraphQL) from
//! the same artifacts.
//!
//! What each [`Scenario`] does:
//!
//! | scenario | Admin API | Discovery API |
//! | --- | --- | --- |
//! | healthy | newest finished run succeeded (status 10), run1-green artifacts | applied state of that run |
//! | stale | the same, finished [`STALE`] ago | the same, as old |
//! | failing | newest finished run errored (status 20), run2-failures artifacts | lastRunStatus error, last success from the run before |
//! | slow | healthy, every answer delayed ([`DbtCloudFake::slow_delay`]) | same |
//! | unauthorized | 401 `Invalid token.` envelope | 401 GraphQL error |
//! | rate-limited | 429 envelope, `Retry-After: 30` | 429 GraphQL error, `Retry-After: 30` |
//! | malformed | 200, `data` of the wrong type; artifacts cut short | 200, `edges` not a list |
//!
//! Like the real service it refuses a missing or wrong `Authorization`
//! (`Token <t>` or `Bearer <t>`) with 401, an unknown account, run, job or
//! artifact with 404, a `limit` over 100 or a bad `order_by` with 400, any
//! method but GET on the Admin API with 405, and on the Discovery API
//! anything but a JSON POST.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::{Value, json};

use super::{FakeClock, Scenario, ScenarioSwitch};

pub const ACCOUNT_ID: u64 = 43_786;
pub const PROJECT_ID: u64 = 5_190;
pub const ENVIRONMENT_ID: u64 = 218;
pub const JOB_ID: u64 = 302;
/// The id of the job's newest finished run; runs in progress come after it.
pub const LATEST_RUN_ID: u64 = 9_000_100;
/// The token the fake accepts unless [`DbtCloudFake::token`] says otherwise.
pub const TOKEN: &str = "dbtc_fake-service-token";
/// How long before the clock the newest run finished, when not stale.
pub const RECENT: Duration = Duration::from_secs(5 * 60);
/// How long before the clock the newest run finished, when stale.
pub const STALE: Duration = Duration::from_secs(3 * 24 * 3_600);
/// Between two finished runs of the job.
pub const RUN_INTERVAL: Duration = Duration::from_secs(3_600);
/// `Retry-After` of the rate-limited scenario, in seconds.
pub const RETRY_AFTER_S: u64 = 30;
/// The Discovery API's largest `first`.
pub const MAX_FIRST: u64 = 500;
const MAX_LIMIT: u64 = 100;

/// One saved dbt build (plus freshness) of the shop project.
struct Fixture {
    run_results: &'static str,
    sources: &'static str,
    manifest: &'static str,
    parsed: OnceLock<Parsed>,
}

/// What the Discovery answers are made of.
struct Parsed {
    run_results: Value,
    sources: Value,
    manifest: Value,
    /// When the last artifact was written: the run's end.
    finished: DateTime<Utc>,
}

macro_rules! fixture {
    ($dir:literal) => {
        Fixture {
            run_results: include_str!(concat!(
                "../../fixtures/dbt/shop/",
                $dir,
                "/run_results.json"
            )),
            sources: include_str!(concat!("../../fixtures/dbt/shop/", $dir, "/sources.json")),
            manifest: include_str!(concat!("../../fixtures/dbt/shop/", $dir, "/manifest.json")),
            parsed: OnceLock::new(),
        }
    };
}

static GREEN: Fixture = fixture!("run1-green");
static FAILURES: Fixture = fixture!("run2-failures");

impl Fixture {
    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| {
            let parse = |text: &str| serde_json::from_str::<Value>(text).expect("fixture JSON");
            let sources = parse(self.sources);
            let finished = sources["metadata"]["generated_at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .expect("sources.json has generated_at")
                .with_timezone(&Utc);
            Parsed {
                run_results: parse(self.run_results),
                sources,
                manifest: parse(self.manifest),
                finished,
            }
        })
    }

    fn text(&self, artifact: &str) -> Option<&'static str> {
        match artifact {
            "run_results.json" => Some(self.run_results),
            "sources.json" => Some(self.sources),
            "manifest.json" => Some(self.manifest),
            _ => None,
        }
    }
}

/// One run of the job as the fake tells it.
struct Run {
    id: u64,
    status: u8,
    /// Finished runs: when, and the artifacts they left.
    finished: Option<(DateTime<Utc>, &'static Fixture)>,
    created: DateTime<Utc>,
}

#[derive(Clone)]
pub struct DbtCloudFake {
    clock: FakeClock,
    scenario: ScenarioSwitch,
    token: String,
    in_progress: usize,
    older_runs: usize,
    freshness: bool,
    slow_delay: Duration,
}

impl DbtCloudFake {
    pub fn new(clock: FakeClock, scenario: ScenarioSwitch) -> Self {
        Self {
            clock,
            scenario,
            token: TOKEN.to_owned(),
            in_progress: 0,
            older_runs: 3,
            freshness: true,
            slow_delay: Duration::from_secs(5),
        }
    }

    /// Accept this token instead of [`TOKEN`].
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// `n` newer runs of the job are queued or running (newest queued, the
    /// oldest of them running).
    pub fn runs_in_progress(mut self, n: usize) -> Self {
        self.in_progress = n;
        self
    }

    /// The job does not run `dbt source freshness`: its runs have no
    /// sources.json.
    pub fn without_freshness(mut self) -> Self {
        self.freshness = false;
        self
    }

    /// How long the slow scenario waits before each answer.
    pub fn slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    pub async fn start(self) -> TestServer {
        TestServer::start(move |r| self.handle(r)).await
    }

    /// When the newest finished run ended.
    pub fn latest_finished_at(&self) -> DateTime<Utc> {
        let lag = match self.scenario.get() {
            Scenario::Stale => STALE,
            _ => RECENT,
        };
        self.clock.now() - TimeDelta::from_std(lag).expect("a small duration")
    }

    /// How far the newest run's artifact timestamps are moved from the
    /// fixture's: a test adds it to the fixture's times to know the fake's.
    pub fn artifact_shift(&self) -> TimeDelta {
        self.latest_finished_at() - self.latest_fixture().parsed().finished
    }

    fn latest_fixture(&self) -> &'static Fixture {
        match self.scenario.get() {
            Scenario::Failing => &FAILURES,
            _ => &GREEN,
        }
    }

    /// The job's runs, newest first.
    fn runs(&self) -> Vec<Run> {
        let latest = self.latest_finished_at();
        let interval = TimeDelta::from_std(RUN_INTERVAL).expect("a small duration");
        let mut runs = Vec::new();
        for i in (1..=self.in_progress).rev() {
            let newest = i == self.in_progress && self.in_progress > 1;
            runs.push(Run {
                id: LATEST_RUN_ID + i as u64,
                status: if newest { 1 } else { 3 },
                finished: None,
                created: self.clock.now() - TimeDelta::seconds(60 - i as i64),
            });
        }
        let failing = self.scenario.get() == Scenario::Failing;
        for i in 0..=self.older_runs {
            let finished = latest - interval * i as i32;
            let (status, fixture) = match (i, failing) {
                (0, true) => (20, &FAILURES),
                _ => (10, &GREEN),
            };
            runs.push(Run {
                id: LATEST_RUN_ID - i as u64,
                status,
                finished: Some((finished, fixture)),
                created: finished - TimeDelta::seconds(90),
            });
        }
        runs
    }

    /// Answers one request, following dbt Cloud's wire format.
    pub fn handle(&self, req: &Recorded) -> Reply {
        let graphql = req.path.trim_end_matches('/') == "/graphql";
        let scenario = self.scenario.get();
        let reply = match scenario {
            Scenario::Unauthorized => unauthorized(graphql),
            Scenario::RateLimited => rate_limited(graphql),
            _ if !self.authorized(req) => unauthorized(graphql),
            _ if graphql => self.discovery(req, scenario),
            _ => self.admin(req, scenario),
        };
        if scenario == Scenario::Slow {
            reply.delay(self.slow_delay)
        } else {
            reply
        }
    }

    fn authorized(&self, req: &Recorded) -> bool {
        let Some(value) = req.header("authorization") else {
            return false;
        };
        ["Token ", "Bearer "]
            .iter()
            .any(|prefix| value.strip_prefix(prefix) == Some(self.token.as_str()))
    }

    // -----------------------------------------------------------------
    // Administrative API v2

    fn admin(&self, req: &Recorded, scenario: Scenario) -> Reply {
        let Some(rest) = req.path.strip_prefix("/api/v2/accounts/") else {
            return envelope_error(404, "The requested resource was not found.");
        };
        let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
        if parts.first().and_then(|a| a.parse::<u64>().ok()) != Some(ACCOUNT_ID) {
            return envelope_error(404, "The requested resource was not found.");
        }
        if req.method != "GET" {
            return envelope_error(405, &format!("Method \"{}\" not allowed.", req.method));
        }
        let id = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
        let reply = match (parts.get(1).copied(), parts.len()) {
            (Some("runs"), 2) => self.list_runs(req),
            (Some("runs"), 3) => self.run_detail(id(2)),
            (Some("runs"), 4) if parts[3] == "artifacts" => self.list_artifacts(id(2)),
            (Some("runs"), n) if n > 4 && parts[3] == "artifacts" => {
                self.artifact(id(2), &parts[4..].join("/"), scenario)
            }
            (Some("jobs"), 3) if id(2) == Some(JOB_ID) => {
                Reply::json(200, success(self.job_json()))
            }
            (Some("jobs"), n) if n > 4 && id(2) == Some(JOB_ID) && parts[3] == "artifacts" => {
                let latest = self.runs().into_iter().find(|r| r.finished.is_some());
                self.artifact(latest.map(|r| r.id), &parts[4..].join("/"), scenario)
            }
            _ => envelope_error(404, "The requested resource was not found."),
        };
        if scenario == Scenario::Malformed && reply.status == 200 && !parts.contains(&"artifacts") {
            // The envelope, but `data` is not what the endpoint promises.
            return Reply::json(
                200,
                json!({"status": status_ok(), "data": "unexpected", "extra": {"pagination": "?"}}),
            );
        }
        reply
    }

    fn list_runs(&self, req: &Recorded) -> Reply {
        let int = |name: &str| -> Result<Option<u64>, Reply> {
            match req.query_param(name) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                    envelope_error(400, &format!("{name}: A valid integer is required."))
                }),
            }
        };
        let (job, limit, offset) = match (int("job_definition_id"), int("limit"), int("offset")) {
            (Ok(j), Ok(l), Ok(o)) => (j, l.unwrap_or(MAX_LIMIT), o.unwrap_or(0)),
            (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            return envelope_error(400, &format!("limit must be between 1 and {MAX_LIMIT}"));
        }
        let order_by = req.query_param("order_by").unwrap_or("id");
        let mut runs: Vec<Run> = self
            .runs()
            .into_iter()
            .filter(|_| job.is_none_or(|j| j == JOB_ID))
            .collect();
        match order_by.trim_start_matches('-') {
            "id" | "created_at" => runs.sort_by_key(|r| r.id),
            "finished_at" => runs.sort_by_key(|r| r.finished.map(|(at, _)| at)),
            _ => {
                return envelope_error(
                    400,
                    &format!("order_by: {order_by:?} is not one of id, created_at, finished_at"),
                );
            }
        }
        if order_by.starts_with('-') {
            runs.reverse();
        }
        let total = runs.len();
        let page: Vec<Value> = runs
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|r| self.run_json(r))
            .collect();
        let mut filters = json!({ "account_id": ACCOUNT_ID, "limit": limit, "offset": offset });
        if let Some(job) = job {
            filters["job_definition_id"] = json!(job);
        }
        Reply::json(
            200,
            json!({
                "status": status_ok(),
                "data": page,
                "extra": {
                    "filters": filters,
                    "order_by": order_by,
                    "pagination": { "count": page.len(), "total_count": total }
                }
            }),
        )
    }

    fn find_run(&self, id: Option<u64>) -> Option<Run> {
        self.runs().into_iter().find(|r| Some(r.id) == id)
    }

    fn run_detail(&self, id: Option<u64>) -> Reply {
        match self.find_run(id) {
            Some(run) => Reply::json(200, success(self.run_json(&run))),
            None => envelope_error(404, "The requested resource was not found."),
        }
    }

    fn list_artifacts(&self, id: Option<u64>) -> Reply {
        match self.find_run(id) {
            Some(run) if run.finished.is_some() => {
                let mut names = vec!["manifest.json", "run_results.json"];
                if self.freshness {
                    names.push("sources.json");
                }
                Reply::json(200, json!({ "status": status_ok(), "data": names }))
            }
            Some(_) => Reply::json(200, json!({ "status": status_ok(), "data": [] })),
            None => envelope_error(404, "The requested resource was not found."),
        }
    }

    fn artifact(&self, id: Option<u64>, name: &str, scenario: Scenario) -> Reply {
        let Some(Run {
            finished: Some((at, fixture)),
            ..
        }) = self.find_run(id)
        else {
            return envelope_error(404, "The requested resource was not found.");
        };
        let text = match fixture.text(name) {
            Some(_) if name == "sources.json" && !self.freshness => None,
            other => other,
        };
        let Some(text) = text else {
            return envelope_error(404, &format!("No artifact named {name} for this run."));
        };
        let body = shift_timestamps(text, at - fixture.parsed().finished);
        let body = if scenario == Scenario::Malformed {
            body[..body.len() / 2].to_owned()
        } else {
            body
        };
        Reply::status(200)
            .header("content-type", "application/json")
            .body(body)
    }

    fn href(run: u64) -> String {
        format!("https://cloud.getdbt.com/deploy/{ACCOUNT_ID}/projects/{PROJECT_ID}/runs/{run}/")
    }

    fn job_json(&self) -> Value {
        json!({
            "id": JOB_ID, "account_id": ACCOUNT_ID, "project_id": PROJECT_ID,
            "environment_id": ENVIRONMENT_ID, "name": "Production build", "state": 1,
            "job_type": "scheduled", "dbt_version": null,
            "execute_steps": ["dbt build"],
            "generate_docs": false, "run_generate_sources": self.freshness,
            "triggers": { "github_webhook": false, "schedule": true },
            "settings": { "threads": 4, "target_name": "prod" },
            "schedule": { "cron": "0 * * * *" },
        })
    }

    fn run_json(&self, run: &Run) -> Value {
        let (status_humanized, in_progress) = match run.status {
            1 => ("Queued", true),
            2 => ("Starting", true),
            3 => ("Running", true),
            10 => ("Success", false),
            20 => ("Error", false),
            _ => ("Cancelled", false),
        };
        let finished_at = run.finished.map(|(at, _)| at);
        let started = finished_at
            .map(|f| f - TimeDelta::seconds(45))
            .or((run.status == 3).then_some(run.created + TimeDelta::seconds(10)));
        let status_message = (run.status == 20).then_some(
            "Runtime Error in model fct_orders (models/marts/fct_orders.sql): Binder Error: \
             Referenced column \"amount_usd\" not found in FROM clause!",
        );
        let ids = json!({
            "id": run.id, "trigger_id": run.id + 100_000, "account_id": ACCOUNT_ID,
            "environment_id": ENVIRONMENT_ID, "project_id": PROJECT_ID,
            "job_definition_id": JOB_ID, "job_id": JOB_ID,
            "status": run.status, "status_humanized": status_humanized,
            "status_message": status_message,
            "dbt_version": "1.11.16", "git_branch": "main",
            "git_sha": "4f0e7c1d9b2a8e6f3c5d7a9b1e2f4a6c8d0e2f4a",
            "owner_thread_id": null, "executed_by_thread_id": "dbt-run-9x7k2-worker",
            "deferring_run_id": null,
            "artifacts_saved": finished_at.is_some(),
            "artifact_s3_path": format!("prod/runs/{}/artifacts/target", run.id),
            "has_docs_generated": false,
            "has_sources_generated": finished_at.is_some() && self.freshness,
            "notifications_sent": finished_at.is_some(), "blocked_by": [],
        });
        // Two literals: one is too deep for `json!`.
        let times = json!({
            "created_at": cloud_time(run.created),
            "updated_at": cloud_time(finished_at.unwrap_or(run.created)),
            "dequeued_at": started.map(cloud_time),
            "started_at": started.map(cloud_time),
            "finished_at": finished_at.map(cloud_time),
            "last_checked_at": finished_at.map(cloud_time),
            "last_heartbeat_at": finished_at.or(started).map(cloud_time),
            "should_start_at": null,
            "trigger": { "cause": "Triggered by schedule", "job_definition_id": JOB_ID },
            "job": null, "environment": null, "run_steps": [],
            "in_progress": in_progress, "is_complete": !in_progress,
            "is_success": run.status == 10, "is_error": run.status == 20,
            "is_cancelled": run.status == 30, "is_running": run.status == 3,
            "duration": "00:01:30", "queued_duration": "00:00:45", "run_duration": "00:00:45",
            "href": Self::href(run.id),
        });
        let mut run_json = ids;
        if let (Some(map), Value::Object(more)) = (run_json.as_object_mut(), times) {
            map.extend(more);
        }
        run_json
    }

    // -----------------------------------------------------------------
    // Discovery API

    fn discovery(&self, req: &Recorded, scenario: Scenario) -> Reply {
        if req.method != "POST" {
            return Reply::json(405, gql_error("GraphQL queries must be POSTed"));
        }
        let json_body = req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"));
        let Some(body) = req.json().filter(|_| json_body) else {
            return Reply::json(400, gql_error("POST body must be JSON with a `query`"));
        };
        let query = body["query"].as_str().unwrap_or_default();
        let operation = body["operationName"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| operation_name(query));
        let declared = operation
            .as_deref()
            .is_some_and(|op| query.contains(&format!("query {op}")));
        let field = match operation.as_deref() {
            Some("TributarySources") if declared => "sources",
            Some("TributaryModels") if declared => "models",
            _ => {
                return Reply::json(
                    400,
                    gql_error(&format!("Unknown operation {operation:?} for this fake")),
                );
            }
        };
        let selection = format!("{field}(first: $first, after: $after)");
        if !query.contains("environment(id: $environmentId)")
            || !query.contains("applied")
            || !query.contains(&selection)
        {
            return Reply::json(
                400,
                gql_error(&format!(
                    "{operation:?} must select environment(id: $environmentId) {{ applied {{ {selection} }} }}"
                )),
            );
        }
        let vars = &body["variables"];
        let environment = match &vars["environmentId"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let Some(first) = vars["first"].as_u64() else {
            return Reply::json(
                200,
                gql_error("Variable \"$first\" of required type \"Int!\" was not provided."),
            );
        };
        if first > MAX_FIRST {
            return Reply::json(
                200,
                gql_error(&format!("first must be at most {MAX_FIRST}")),
            );
        }
        if environment != Some(ENVIRONMENT_ID) {
            return Reply::json(
                200,
                json!({
                    "data": { "environment": null },
                    "errors": [{ "message": format!("Environment {} not found", vars["environmentId"]),
                                 "path": ["environment"] }]
                }),
            );
        }
        let start = match vars["after"].as_str().map(decode_cursor) {
            None => 0,
            Some(Some(n)) => n + 1,
            Some(None) => return Reply::json(200, gql_error("Invalid cursor")),
        };
        if scenario == Scenario::Malformed {
            return Reply::json(
                200,
                json!({ "data": { "environment": { "applied": { field: { "edges": "none" } } } } }),
            );
        }
        let nodes = if field == "sources" {
            self.applied_sources()
        } else {
            self.applied_models()
        };
        let end = (start + first as usize).min(nodes.len());
        let edges: Vec<Value> = nodes
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, node)| json!({ "cursor": encode_cursor(start + i), "node": node }))
            .collect();
        let page_info = json!({
            "hasNextPage": end < nodes.len(),
            "hasPreviousPage": start > 0,
            "startCursor": (end > start).then(|| encode_cursor(start)),
            "endCursor": (end > start).then(|| encode_cursor(end - 1)),
        });
        Reply::json(
            200,
            json!({ "data": { "environment": { "applied": {
                field: { "totalCount": nodes.len(), "pageInfo": page_info, "edges": edges }
            } } } }),
        )
    }

    /// The newest finished run, and the run before it.
    fn latest_two(&self) -> (Run, Run) {
        let mut finished = self.runs().into_iter().filter(|r| r.finished.is_some());
        let latest = finished.next().expect("a finished run");
        let previous = finished.next().expect("an older run");
        (latest, previous)
    }

    fn applied_sources(&self) -> Vec<Value> {
        let (run, _) = self.latest_two();
        let (at, fixture) = run.finished.expect("finished");
        let parsed = fixture.parsed();
        let shift = at - parsed.finished;
        let results: BTreeMap<&str, &Value> = parsed.sources["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|_| self.freshness)
            .filter_map(|r| Some((r["unique_id"].as_str()?, r)))
            .collect();
        let generated = shifted(&parsed.sources["metadata"]["generated_at"], shift);
        let sources = parsed.manifest["sources"].as_object().expect("sources");
        sources
            .iter()
            .map(|(id, source)| {
                let criteria = &source["freshness"];
                let threshold = |t: &Value| json!({ "count": t["count"], "period": t["period"] });
                let checked = criteria["warn_after"]["count"].is_number()
                    || criteria["error_after"]["count"].is_number();
                let result = results.get(id.as_str());
                let field = |name: &str| result.map_or(Value::Null, |r| r[name].clone());
                json!({
                    "uniqueId": id,
                    "sourceName": source["source_name"],
                    "name": source["name"],
                    "identifier": source["identifier"],
                    "database": source["database"],
                    "schema": source["schema"],
                    "loader": source["loader"],
                    "freshness": {
                        "freshnessChecked": checked,
                        "freshnessStatus": field("status"),
                        "maxLoadedAt": shifted(&field("max_loaded_at"), shift),
                        "maxLoadedAtTimeAgoInS": field("max_loaded_at_time_ago_in_s"),
                        "snapshottedAt": shifted(&field("snapshotted_at"), shift),
                        "freshnessJobDefinitionId": result.map(|_| JOB_ID),
                        "freshnessRunId": result.map(|_| run.id),
                        "freshnessRunGeneratedAt": result.map(|_| generated.clone()),
                        "criteria": {
                            "warnAfter": threshold(&criteria["warn_after"]),
                            "errorAfter": threshold(&criteria["error_after"]),
                        },
                    },
                })
            })
            .collect()
    }

    fn applied_models(&self) -> Vec<Value> {
        let (run, previous) = self.latest_two();
        let results_of = |run: &Run| {
            let (at, fixture) = run.finished.expect("finished");
            let parsed = fixture.parsed();
            let rows: BTreeMap<String, Value> = parsed.run_results["results"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| Some((r["unique_id"].as_str()?.to_owned(), r.clone())))
                .collect();
            (rows, at - parsed.finished, parsed)
        };
        let (latest_rows, shift, parsed) = results_of(&run);
        let (previous_rows, previous_shift, _) = results_of(&previous);
        let nodes = parsed.manifest["nodes"].as_object().expect("nodes");
        nodes
            .iter()
            .filter(|(_, n)| n["resource_type"] == "model")
            .map(|(id, node)| {
                let last = &latest_rows[id];
                // The last success is this run's, or the previous run's.
                let (success, success_shift, success_run) = if last["status"] == "success" {
                    (last, shift, run.id)
                } else {
                    (&previous_rows[id], previous_shift, previous.id)
                };
                let execute = success["timing"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["name"] == "execute"))
                    .cloned()
                    .unwrap_or(Value::Null);
                let error = (last["status"] == "error").then(|| last["message"].clone());
                json!({
                    "uniqueId": id,
                    "name": node["name"],
                    "database": node["database"],
                    "schema": node["schema"],
                    "alias": node["alias"],
                    "materializedType": node["config"]["materialized"],
                    "executionInfo": {
                        "lastRunId": run.id,
                        "lastRunStatus": last["status"],
                        "lastRunError": error,
                        "lastRunGeneratedAt": shifted(&parsed.run_results["metadata"]["generated_at"], shift),
                        "lastJobDefinitionId": JOB_ID,
                        "lastSuccessRunId": success_run,
                        "lastSuccessJobDefinitionId": JOB_ID,
                        "executeStartedAt": shifted(&execute["started_at"], success_shift),
                        "executeCompletedAt": shifted(&execute["completed_at"], success_shift),
                        "executionTime": success["execution_time"],
                        "runGeneratedAt": shifted(&parsed.run_results["metadata"]["generated_at"], success_shift),
                        "runElapsedTime": parsed.run_results["elapsed_time"],
                    },
                })
            })
            .collect()
    }
}

fn status_ok() -> Value {
    json!({ "code": 200, "is_success": true, "user_message": "Success!", "developer_message": "" })
}

fn success(data: Value) -> Value {
    json!({ "status": status_ok(), "data": data })
}

/// The Admin API's error envelope.
fn envelope_error(code: u16, message: &str) -> Reply {
    Reply::json(
        code,
        json!({
            "status": { "code": code, "is_success": false, "user_message": message,
                        "developer_message": "" },
            "data": null
        }),
    )
}

fn gql_error(message: &str) -> Value {
    json!({ "data": null, "errors": [{ "message": message }] })
}

fn unauthorized(graphql: bool) -> Reply {
    if graphql {
        return Reply::json(
            401,
            gql_error("Unauthorized: invalid or missing service token"),
        );
    }
    // What dbt Cloud answers a bad token, byte for byte.
    Reply::json(
        401,
        json!({
            "status": { "code": 401, "is_success": false, "user_message": "Invalid token.",
                        "developer_message": null },
            "data": null
        }),
    )
}

fn rate_limited(graphql: bool) -> Reply {
    let reply = if graphql {
        Reply::json(429, gql_error("Too many requests: rate limit exceeded"))
    } else {
        envelope_error(
            429,
            "Request was throttled. Expected available in 30 seconds.",
        )
    };
    reply.header("retry-after", &RETRY_AFTER_S.to_string())
}

/// `query Name(...)` -> `Name`.
fn operation_name(query: &str) -> Option<String> {
    let rest = query.trim_start().strip_prefix("query")?.trim_start();
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Relay's opaque cursors, as graphql-relay writes them.
fn encode_cursor(index: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("arrayconnection:{index}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("arrayconnection:")?
        .parse()
        .ok()
}

/// dbt Cloud writes run times as `2026-11-21 21:42:36.841804+00:00`.
fn cloud_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// A JSON timestamp value moved by `by`, keeping its text form; anything
/// else as it is.
fn shifted(value: &Value, by: TimeDelta) -> Value {
    match value.as_str().and_then(|s| shift_one(s, by)) {
        Some(s) => Value::String(s),
        None => value.clone(),
    }
}

/// Moves every RFC 3339 timestamp string in a JSON document by `by`.
fn shift_timestamps(text: &str, by: TimeDelta) -> String {
    fn walk(value: &mut Value, by: TimeDelta) {
        match value {
            Value::String(s) => {
                if let Some(moved) = shift_one(s, by) {
                    *s = moved;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, by)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, by)),
            _ => {}
        }
    }
    let mut doc: Value = serde_json::from_str(text).expect("fixture JSON");
    walk(&mut doc, by);
    doc.to_string()
}

/// `2026-11-21T21:42:32.683419Z` or `…+00:00` moved by `by`, written with the
/// same fraction digits and zone suffix.
fn shift_one(text: &str, by: TimeDelta) -> Option<String> {
    if text.len() < 20 || text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    let at = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc) + by;
    let suffix = if text.ends_with('Z') { "Z" } else { "+00:00" };
    let body = &text[19..text.len() - suffix.len()];
    let digits = body.strip_prefix('.').map_or(0, str::len);
    let fraction = match digits {
        0 => String::new(),
        n => {
            let nanos = format!("{:09}", at.timestamp_subsec_nanos());
            format!(".{}", &nanos[..n.min(9)])
        }
    };
    Some(format!(
        "{}{fraction}{suffix}",
        at.format("%Y-%m-%dT%H:%M:%S")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_their_form_when_moved() {
        let by = TimeDelta::seconds(3_600) + TimeDelta::microseconds(1);
        assert_eq!(
            shift_one("2026-11-21T21:42:32.683419Z", by).as_deref(),
            Some("2026-11-21T22:42:32.683420Z")
        );
        assert_eq!(
            shift_one("2026-11-21T21:22:26.133892+00:00", by).as_deref(),
            Some("2026-11-21T22:22:26.133893+00:00")
        );
        assert_eq!(shift_one("not a time at all, really", by), None);
        assert_eq!(shift_one("2026-11-21", by), None);
    }

    fn request(method: &str, path: &str, query: Option<&str>, auth: Option<&str>) -> Recorded {
        let mut headers = BTreeMap::new();
        if let Some(auth) = auth {
            headers.insert("authorization".to_owned(), auth.to_owned());
        }
        Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.map(str::to_owned),
            headers,
            body: Vec::new(),
        }
    }

    fn fake() -> DbtCloudFake {
        DbtCloudFake::new(
            FakeClock::fixed_unix(1_795_400_000),
            ScenarioSwitch::default(),
        )
        .runs_in_progress(2)
    }

    fn body(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    const RUNS: &str = "/api/v2/accounts/43786/runs/";

    #[test]
    fn the_admin_api_checks_the_token_and_its_parameters() {
        let fake = fake();
        let token = format!("Token {TOKEN}");
        let bearer = format!("Bearer {TOKEN}");
        for auth in [None, Some(TOKEN), Some("Token wrong")] {
            let reply = fake.handle(&request("GET", RUNS, None, auth));
            assert_eq!(reply.status, 401, "{auth:?}");
            assert_eq!(body(&reply)["status"]["user_message"], "Invalid token.");
        }
        assert_eq!(
            fake.handle(&request("GET", RUNS, None, Some(&bearer)))
                .status,
            200
        );
        for (query, status) in [
            ("limit=101", 400),
            ("limit=0", 400),
            ("order_by=status", 400),
            ("job_definition_id=abc", 400),
            ("limit=100", 200),
        ] {
            let reply = fake.handle(&request("GET", RUNS, Some(query), Some(&token)));
            assert_eq!(reply.status, status, "{query}");
        }
        let other_account = request("GET", "/api/v2/accounts/1/runs/", None, Some(&token));
        assert_eq!(fake.handle(&other_account).status, 404);
        let post = request("POST", RUNS, None, Some(&token));
        assert_eq!(fake.handle(&post).status, 405);
    }

    #[test]
    fn runs_page_newest_first_with_pagination_totals() {
        let fake = fake();
        let token = format!("Token {TOKEN}");
        let query = format!("job_definition_id={JOB_ID}&order_by=-id&limit=2&offset=1");
        let page = body(&fake.handle(&request("GET", RUNS, Some(&query), Some(&token))));
        let ids: Vec<u64> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [LATEST_RUN_ID + 1, LATEST_RUN_ID]);
        assert_eq!(page["data"][0]["status"], 3);
        assert_eq!(page["data"][1]["status"], 10);
        assert_eq!(
            page["extra"]["pagination"],
            json!({"count": 2, "total_count": 6})
        );
        let other_job = body(&fake.handle(&request(
            "GET",
            RUNS,
            Some("job_definition_id=1"),
            Some(&token),
        )));
        assert_eq!(other_job["data"], json!([]));
        // Runs in progress have no artifacts yet.
        let path = format!("{RUNS}{}/artifacts/run_results.json", LATEST_RUN_ID + 1);
        assert_eq!(
            fake.handle(&request("GET", &path, None, Some(&token)))
                .status,
            404
        );
    }

    #[test]
    fn the_discovery_api_wants_a_json_post_for_its_environment() {
        let fake = fake();
        let bearer = format!("Bearer {TOKEN}");
        let mut get = request("GET", "/graphql", None, Some(&bearer));
        assert_eq!(fake.handle(&get).status, 405);
        get.method = "POST".to_owned();
        assert_eq!(fake.handle(&get).status, 400, "no JSON body");
        let mut post = get;
        post.headers
            .insert("content-type".to_owned(), "application/json".to_owned());
        let query = "query TributarySources($environmentId: BigInt!, $first: Int!, $after: String) \
                     { environment(id: $environmentId) { applied { sources(first: $first, after: $after) \
                     { edges { node { uniqueId } } } } } }";
        let ask = |post: &mut Recorded, environment: u64, first: u64| {
            post.body = json!({"query": query, "operationName": "TributarySources",
                               "variables": {"environmentId": environment, "first": first}})
            .to_string()
            .into_bytes();
            body(&fake.handle(post))
        };
        let answer = ask(&mut post, ENVIRONMENT_ID, 3);
        let sources = &answer["data"]["environment"]["applied"]["sources"];
        assert_eq!(sources["edges"].as_array().unwrap().len(), 3);
        assert_eq!(sources["pageInfo"]["hasNextPage"], true);
        let answer = ask(&mut post, 1, 3);
        assert_eq!(answer["data"]["environment"], Value::Null);
        assert_eq!(answer["errors"][0]["message"], "Environment 1 not found");
        let answer = ask(&mut post, ENVIRONMENT_ID, 501);
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("at most 500")
        );
        post.headers.remove("authorization");
        assert_eq!(fake.handle(&post).status, 401);
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(41)), Some(41));
        assert_eq!(decode_cursor("garbage"), None);
    }
}

//! The generic `http` connector, run through the real host by the SDK's
//! harness against the fake document service (`tributary_tests::fakes::service`):
//! each extraction kind, each pagination style, each condition kind, each
//! auth kind, templating, the optional actions and all seven scenarios.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use plugin_sdk::harness::{Harness, Recorded, TestServer};
use serde_json::{Value, json};
use tributary::plugin::{
    AssetError, Capabilities, DeleteScope, ErrorClass, NativeStatus, Observation, RunError,
    StatusLevel, Timestamp,
};
use tributary_tests::fakes::service::{Credentials, FAILING_ERRORS, STALE_AGE, ServiceFake};
use tributary_tests::fakes::{FakeClock, Scenario, ScenarioSwitch};
use tributary_tests::plugin;

/// 2026-11-20T10:00:00Z, the host's and the fake's clock.
const NOW: i64 = 1_795_168_800;

struct Setup {
    fake: ServiceFake,
    switch: ScenarioSwitch,
    server: TestServer,
    harness: Harness,
}

impl Setup {
    fn url(&self) -> String {
        self.server.url()
    }

    fn creds(&self) -> Credentials {
        self.fake.credentials().clone()
    }

    fn bearer(&self) -> Value {
        json!({"type": "bearer", "token": self.creds().token})
    }

    async fn collect(&self, cfg: Value) -> Result<Observation, RunError> {
        let run = self.harness.collect(cfg).await?;
        assert_eq!(run.report.observations.len(), 1, "{:?}", run.report);
        Ok(run.report.observations.into_iter().next().unwrap())
    }

    async fn collect_ids(&self, cfg: Value) -> (Observation, Vec<String>) {
        let mut run = self.harness.collect(cfg).await.unwrap();
        let ids = run.ids.remove("document-ids").unwrap_or_default();
        assert!(
            run.ids.is_empty(),
            "ids of other assets: {:?}",
            run.ids.keys()
        );
        (run.report.observations.remove(0), ids)
    }
}

async fn setup_with(scenario: Scenario, fake: impl FnOnce(ServiceFake) -> ServiceFake) -> Setup {
    let switch = ScenarioSwitch::new(scenario);
    let fake = fake(ServiceFake::new(FakeClock::fixed_unix(NOW), switch.clone()));
    let server = fake.clone().start().await;
    let creds = fake.credentials().clone();
    let harness = Harness::builder(plugin("http"))
        .now_unix(NOW as u64)
        .allow_host(&server.url())
        .secret(creds.token)
        .secret(creds.password)
        .secret(creds.api_key)
        .tenant("acme")
        .build()
        .await
        .expect("the http plugin loads");
    Setup {
        fake,
        switch,
        server,
        harness,
    }
}

async fn setup(scenario: Scenario) -> Setup {
    setup_with(scenario, |f| f).await
}

fn at(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// The full watch of a tenant's documents: stats and errors, every field.
fn documents_asset() -> Value {
    json!({
        "name": "documents",
        "kind": "documents",
        "requests": [
            {"name": "stats", "url": "/api/v1/tenants/{tenant}/stats"},
            {"name": "errors", "url": "/api/v1/tenants/{tenant}/errors"}
        ],
        "counts": {
            "expected": {"pointer": "/expected"},
            "received": {"pointer": "/received"},
            "errored": {"jmespath": "inError"},
            "extras": {
                "error_types": {"jmespath": "length(keys(errorsByType))"},
                "invalid": {"request": "errors", "jmespath": "errors[?errorType=='InvalidData'] | length(@)"}
            }
        },
        "freshness": {"pointer": "/updatedAt"},
        "last_received": {
            "id": {"pointer": "/lastReceived/documentId"},
            "at": {"pointer": "/lastReceived/receivedAt", "format": "unix_seconds"}
        },
        "errors": {
            "items": {"request": "errors", "pointer": "/errors"},
            "kind": {"pointer": "/errorType"},
            "message": {"jmespath": "message"},
            "document_id": {"pointer": "/documentId"},
            "log_link": {"pointer": "/logLink", "optional": true},
            "at": {"pointer": "/timestamp", "format": "unix_millis"}
        },
        "error_totals": {
            "items": {"request": "errors", "pointer": "/aggregates"},
            "kind": {"pointer": "/errorType"},
            "count": {"pointer": "/count"}
        },
        "metadata": {"service_status": {"pointer": "/status"}},
        "conditions": [
            {"pointer": "/status", "op": "==", "value": "ok"},
            {"jmespath": "inError", "op": "<", "value": 10, "level": "warn"}
        ]
    })
}

fn config(s: &Setup, assets: Value) -> Value {
    json!({
        "base_url": s.url(),
        "auth": s.bearer(),
        "timeout": "2s",
        "assets": assets
    })
}

fn totals(o: &Observation) -> Vec<(String, u64)> {
    o.error_totals
        .iter()
        .map(|t| (t.kind.clone(), t.count))
        .collect()
}

fn metadata(o: &Observation) -> Vec<(String, String)> {
    o.metadata
        .iter()
        .map(|m| (m.key.clone(), m.value.clone()))
        .collect()
}

fn extras(o: &Observation) -> Vec<(String, u64)> {
    o.counts
        .extras
        .iter()
        .map(|e| (e.name.clone(), e.value))
        .collect()
}

fn status(level: StatusLevel, label: &str, message: &str) -> Option<NativeStatus> {
    Some(NativeStatus {
        level,
        label: label.into(),
        message: Some(message.into()),
    })
}

fn paths(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| match &r.query {
            Some(q) => format!("{} {}?{q}", r.method, r.path),
            None => format!("{} {}", r.method, r.path),
        })
        .collect()
}

fn err_of(
    result: Result<impl std::fmt::Debug, RunError>,
) -> (ErrorClass, String, Option<Duration>) {
    match result.unwrap_err() {
        RunError::Connector {
            class,
            message,
            retry_after,
        } => (class, message, retry_after),
        other => panic!("not a connector error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_both_actions_and_flags_every_secret() {
    let s = setup(Scenario::Healthy).await;
    let d = s.harness.plugin().descriptor();
    assert_eq!(d.name, "http");
    assert!(
        d.capabilities
            .contains(Capabilities::RESYNC | Capabilities::DELETE)
    );
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let auth = schema["properties"]["auth"]["allOf"].as_array().unwrap();
    let secrets: Vec<(&str, &str)> = auth
        .iter()
        .map(|branch| &branch["then"])
        .flat_map(|variant| {
            let kind = variant["properties"]["type"]["const"].as_str().unwrap();
            variant["properties"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, p)| p["x-secret"] == true)
                .map(move |(name, _)| (kind, name.as_str()))
        })
        .collect();
    assert_eq!(
        secrets,
        vec![
            ("bearer", "token"),
            ("basic", "password"),
            ("header", "value")
        ]
    );
}

/// A daemon config with one http check whose plugin config is `check_config`
/// (TOML), validated with the plugin's own schema as the daemon does.
fn validate_with_schema(s: &Setup, check_config: &str) -> Result<(), Vec<(String, String)>> {
    let text = format!(
        r#"
plugins_dir = "plugins"
data_dir = "data"

[[tenants]]
id = "acme"
name = "Acme"

[[systems]]
id = "docs"
name = "Document service"
kind = "service"

[[checks]]
id = "acme-docs"
system = "docs"
connector = "http"
schedule = {{ every = "5m" }}
timeout = "30s"
grants = {{ allowed_hosts = ["https://docs.example.com"] }}

{check_config}
"#
    );
    let schema: Value =
        serde_json::from_str(&s.harness.plugin().descriptor().config_schema).unwrap();
    let schemas = BTreeMap::from([("http".to_owned(), schema)]);
    match tributary::config::parse(&text, Path::new("test.toml"), &schemas) {
        Ok(_) => Ok(()),
        Err(errors) => Err(errors
            .shown
            .into_iter()
            .map(|e| (e.pointer, e.message))
            .collect()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_accepts_the_documented_example_and_points_at_mistakes() {
    let s = setup(Scenario::Healthy).await;
    let section =
        std::fs::read_to_string(tributary_tests::repo_root().join("docs/connectors/http.md"))
            .expect("the http connector has its reference in docs/connectors/http.md");
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the reference has a TOML example");
    // The reference's block is a whole `[[checks]]`: keep its config part.
    let config_part = &example[example
        .find("[checks.config]")
        .expect("a [checks.config] table")..];
    validate_with_schema(&s, config_part).unwrap_or_else(|e| panic!("{e:#?}"));

    let errors = validate_with_schema(
        &s,
        r#"
[checks.config]
base_url = "docs.example.com"
timeout = "10 seconds"
auth = { type = "bearer" }

[[checks.config.assets]]
name = "documents"
requests = [{ url = "/stats", method = "FETCH", status = { "40x" = "ok" } }]
counts = { received = { pointr = "/received" }, expected = { pointer = "/a", jmespath = "a" } }
freshness = { pointer = "/updatedAt", format = "iso" }
conditions = [{ pointer = "/inError", op = "<", value = "ten" }]

[checks.config.assets.ids]
request = { url = "/ids", name = "ids" }
items = { pointer = "/ids", request = "stats" }
pagination = { type = "cursor" }
"#,
    )
    .unwrap_err();
    let pointers: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    let c = "/checks/0/config";
    for expected in [
        format!("{c}/base_url"),
        format!("{c}/timeout"),
        format!("{c}/auth"),
        format!("{c}/assets/0/requests/0/method"),
        format!("{c}/assets/0/requests/0/status"),
        format!("{c}/assets/0/counts/received/pointr"),
        format!("{c}/assets/0/counts/expected"),
        format!("{c}/assets/0/freshness/format"),
        format!("{c}/assets/0/conditions/0/value"),
        format!("{c}/assets/0/ids/request/name"),
        format!("{c}/assets/0/ids/items/request"),
        format!("{c}/assets/0/ids/pagination"),
    ] {
        assert!(
            pointers.iter().any(|p| *p == expected),
            "no error at {expected}: {errors:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_reads_every_field_by_pointer_and_jmespath() {
    let s = setup(Scenario::Healthy).await;
    let o = s
        .collect(config(&s, json!([documents_asset()])))
        .await
        .unwrap();
    assert_eq!(
        (o.asset.as_str(), o.kind.as_str()),
        ("documents", "documents")
    );
    assert_eq!(o.counts.expected, Some(250));
    assert_eq!(o.counts.received, Some(245));
    assert_eq!(o.counts.errored, Some(3));
    assert_eq!(
        extras(&o),
        vec![("error_types".into(), 3), ("invalid".into(), 1)]
    );
    assert_eq!(o.freshness, Some(at(NOW - 120)));
    let last = o.last_received.as_ref().unwrap();
    assert_eq!(
        (last.id.as_str(), last.at),
        ("doc-00245", Some(at(NOW - 120)))
    );

    let error = |kind: &str, message: &str, doc: &str, link: bool, minutes: i64| AssetError {
        kind: kind.into(),
        message: message.into(),
        document_id: Some(doc.into()),
        log_link: link.then(|| format!("https://logs.example.com/documents/{doc}")),
        at: Some(at(NOW - minutes * 60)),
    };
    assert_eq!(
        o.errors,
        vec![
            error(
                "InvalidData",
                "field 'title' is missing",
                "doc-00001",
                true,
                10
            ),
            error(
                "NetworkError",
                "upstream connection reset",
                "doc-00002",
                false,
                11
            ),
            error("MissingData", "attachment not found", "doc-00003", true, 12),
        ]
    );
    assert_eq!(
        totals(&o),
        vec![
            ("InvalidData".into(), 1),
            ("NetworkError".into(), 1),
            ("MissingData".into(), 1)
        ]
    );
    assert_eq!(
        metadata(&o),
        vec![
            ("service_status".into(), "ok".into()),
            ("tenant".into(), "acme".into())
        ]
    );
    assert_eq!(
        o.native_status,
        status(StatusLevel::Ok, "ok", "all 2 conditions passed")
    );

    // One request per configured request, with the token, nothing else.
    let requests = s.server.requests();
    assert_eq!(
        paths(&requests),
        vec![
            "GET /api/v1/tenants/acme/stats",
            "GET /api/v1/tenants/acme/errors"
        ]
    );
    let bearer = format!("Bearer {}", s.creds().token);
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(&bearer))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_totals_read_an_object_of_kind_to_count_and_one_asset_may_stand_alone() {
    let s = setup(Scenario::Healthy).await;
    // `assets` as a single table rather than a list.
    let cfg = config(
        &s,
        json!({
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats"}],
            "error_totals": {"items": {"pointer": "/errorsByType"}}
        }),
    );
    let o = s.collect(cfg).await.unwrap();
    assert_eq!(o.kind, "endpoint");
    assert_eq!(
        totals(&o),
        vec![
            ("InvalidData".into(), 1),
            ("MissingData".into(), 1),
            ("NetworkError".into(), 1)
        ]
    );
    assert!(o.errors.is_empty());
    assert_eq!(o.native_status, None, "no conditions, no verdict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_value_is_a_system_error_naming_asset_field_and_expression() {
    let s = setup(Scenario::Healthy).await;
    let cfg = config(
        &s,
        json!([{
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats"}],
            "counts": {"received": {"pointer": "/documents/received"}}
        }]),
    );
    let (class, message, _) = err_of(s.collect(cfg).await);
    assert_eq!(class, ErrorClass::System);
    assert_eq!(
        message,
        format!(
            "asset \"documents\": counts.received: pointer /documents/received found nothing in the answer to GET {}/api/v1/tenants/acme/stats (mark the field `optional = true` if it may be absent)",
            s.url()
        )
    );

    // Optional: absent, and the run goes on.
    let cfg = config(
        &s,
        json!([{
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats"}],
            "counts": {
                "received": {"pointer": "/received"},
                "expected": {"jmespath": "documents.expected", "optional": true}
            }
        }]),
    );
    let o = s.collect(cfg).await.unwrap();
    assert_eq!((o.counts.expected, o.counts.received), (None, Some(245)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_expression_or_template_is_a_config_error_before_any_request() {
    let s = setup(Scenario::Healthy).await;
    for (asset, wanted) in [
        (
            json!({"name": "d", "requests": [{"url": "/x"}], "counts": {"errored": {"jmespath": "errors[?"}}}),
            "assets[0].counts.errored.jmespath: \"errors[?\" does not compile",
        ),
        (
            json!({"name": "d", "requests": [{"url": "/api/v1/tenants/{tennant}/stats"}]}),
            "assets[0].requests[0].url: unknown variable {tennant}; known: {tenant}, {asset}, {ids}, {scope}",
        ),
        (
            json!({"name": "d", "requests": [{"url": "/x"}], "freshness": {"pointer": "/t", "request": "other"}}),
            "assets[0].freshness.request: asset \"d\" has no request named \"other\"",
        ),
        (
            json!({"name": "d", "requests": [{"url": "/x"}], "counts": {"received": {"pointer": "received"}}}),
            "assets[0].counts.received.pointer: \"received\" is not a JSON Pointer",
        ),
        (
            json!({"name": "d", "requests": [{"url": "/x"}], "counts": {"received": {"pointr": "/received"}}}),
            "invalid config at \"assets[0].counts.received.pointr\": unknown field `pointr`",
        ),
        (
            json!({"name": "d", "requests": [{"url": "/x", "status": {"404": "maybe"}}]}),
            "invalid config at \"assets[0].requests[0].status.404\": unknown variant `maybe`",
        ),
    ] {
        let (class, message, _) = err_of(s.collect(config(&s, json!([asset]))).await);
        assert_eq!(class, ErrorClass::Config, "{message}");
        assert!(message.contains(wanted), "{message}");
    }
    assert!(s.server.requests().is_empty());
}

/// An asset that only lists ids, with `ids` as its `ids` table.
fn ids_asset(ids: Value) -> Value {
    json!([{"name": "document-ids", "kind": "documents", "ids": ids}])
}

fn expected_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("doc-{i:05}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_by_cursor_stream_every_page_and_stop_on_a_null_cursor() {
    let s = setup(Scenario::Healthy).await;
    let cfg = config(
        &s,
        ids_asset(json!({
            "request": {"url": "/api/v1/tenants/{tenant}/documents", "query": {"limit": 100}},
            "items": {"pointer": "/documents"},
            "id": {"pointer": "/documentId"},
            "pagination": {"type": "cursor", "param": "cursor", "next": {"pointer": "/nextCursor"}}
        })),
    );
    let (o, ids) = s.collect_ids(cfg).await;
    assert_eq!(ids, expected_ids(245));
    assert_eq!(o.counts.received, Some(245), "received is the ids streamed");
    assert_eq!(
        paths(&s.server.requests()),
        vec![
            "GET /api/v1/tenants/acme/documents?limit=100",
            "GET /api/v1/tenants/acme/documents?limit=100&cursor=after%3Adoc-00100",
            "GET /api/v1/tenants/acme/documents?limit=100&cursor=after%3Adoc-00200",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_by_page_number_stop_on_total_pages_has_more_or_an_empty_page() {
    let s = setup(Scenario::Healthy).await;
    let request =
        json!({"url": "/api/v1/tenants/{tenant}/document-ids", "query": {"per_page": 100}});
    for (pagination, pages) in [
        (
            json!({"type": "page", "total_pages": {"pointer": "/totalPages"}}),
            3,
        ),
        (
            json!({"type": "page", "has_more": {"jmespath": "hasMore"}}),
            3,
        ),
        (json!({"type": "page"}), 4),
    ] {
        s.server.take_requests();
        let cfg = config(
            &s,
            ids_asset(
                json!({"request": request, "items": {"pointer": "/ids"}, "pagination": pagination}),
            ),
        );
        let (_, ids) = s.collect_ids(cfg).await;
        assert_eq!(ids, expected_ids(245), "{pagination}");
        let wanted: Vec<String> = (1..=pages)
            .map(|p| format!("GET /api/v1/tenants/acme/document-ids?per_page=100&page={p}"))
            .collect();
        assert_eq!(paths(&s.server.requests()), wanted, "{pagination}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_by_offset_stop_on_a_short_page_or_the_total() {
    let s = setup(Scenario::Healthy).await;
    // 245 ids by 49: five full pages. Without a total, a sixth (empty,
    // short) page says it is over; with one, five requests do.
    for (total, pages) in [(None, 6), (Some(json!({"pointer": "/total"})), 5)] {
        s.server.take_requests();
        let mut pagination = json!({"type": "offset", "limit": 49});
        if let Some(total) = &total {
            pagination["total"] = total.clone();
        }
        let cfg = config(
            &s,
            ids_asset(json!({
                "request": {"url": "/api/v1/tenants/{tenant}/document-ids"},
                "items": {"pointer": "/ids"},
                "pagination": pagination
            })),
        );
        let (_, ids) = s.collect_ids(cfg).await;
        assert_eq!(ids, expected_ids(245));
        let wanted: Vec<String> = (0..pages)
            .map(|p| {
                format!(
                    "GET /api/v1/tenants/acme/document-ids?offset={}&limit=49",
                    p * 49
                )
            })
            .collect();
        assert_eq!(paths(&s.server.requests()), wanted, "total {total:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_on_pages_stops_a_run_with_a_clear_error() {
    let s = setup(Scenario::Healthy).await;
    let cfg = config(
        &s,
        ids_asset(json!({
            "request": {"url": "/api/v1/tenants/{tenant}/documents", "query": {"limit": 100}},
            "items": {"pointer": "/documents"},
            "id": {"pointer": "/documentId"},
            "pagination": {"type": "cursor", "next": {"pointer": "/nextCursor"}},
            "max_pages": 2
        })),
    );
    let (class, message, _) = err_of(s.harness.collect(cfg).await);
    assert_eq!(class, ErrorClass::Config);
    assert!(
        message.starts_with(
            "asset \"document-ids\": ids: more pages after 2 (ids.max_pages); raise assets[0].ids.max_pages"
        ),
        "{message}"
    );
    assert_eq!(s.server.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_conditions_compare_numbers_lists_existence_and_jmespath_truth() {
    let s = setup(Scenario::Healthy).await;
    let cfg = config(
        &s,
        json!([{
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats"}],
            "conditions": [
                {"pointer": "/status", "op": "in", "value": ["ok", "idle"]},
                {"pointer": "/expected", "op": ">=", "value": 250},
                {"pointer": "/lastReceived", "op": "exists"},
                {"pointer": "/inError", "op": "!=", "value": 0},
                {"jmespath": "received == expected", "level": "warn"},
                {"jmespath": "length(keys(errorsByType))", "op": "<=", "value": 1, "level": "warn", "label": "at most one kind of error"}
            ]
        }]),
    );
    let o = s.collect(cfg).await.unwrap();
    assert_eq!(
        o.native_status,
        status(
            StatusLevel::Warn,
            "received == expected",
            "saw false; also failed (warn): at most one kind of error (saw 3)"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_condition_turns_a_status_the_request_accepts_into_a_native_error() {
    let s = setup(Scenario::Healthy).await;
    let cfg = json!({
        "base_url": s.url(),
        "auth": s.bearer(),
        "tenant": "initech",
        "assets": {
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats", "status": {"4xx": "ok"}}],
            "conditions": [{"status": [200, 204]}]
        }
    });
    let o = s.collect(cfg).await.unwrap();
    assert_eq!(
        o.native_status,
        status(StatusLevel::Error, "status in [200, 204]", "saw status 404")
    );
    assert_eq!(
        paths(&s.server.requests()),
        vec!["GET /api/v1/tenants/initech/stats"],
        "the configured tenant wins over the run's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_read_as_no_data_reports_zero_and_skips_body_conditions() {
    let s = setup(Scenario::Healthy).await;
    let mut asset = documents_asset();
    for request in asset["requests"].as_array_mut().unwrap() {
        request["status"] = json!({"404": "no_data"});
    }
    let cfg =
        json!({"base_url": s.url(), "auth": s.bearer(), "tenant": "initech", "assets": [asset]});
    let o = s.collect(cfg).await.unwrap();
    assert_eq!(
        (o.counts.expected, o.counts.received, o.counts.errored),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(
        extras(&o),
        vec![("error_types".into(), 0), ("invalid".into(), 0)]
    );
    assert_eq!((o.freshness, o.last_received.clone()), (None, None));
    assert!(o.errors.is_empty() && o.error_totals.is_empty());
    assert_eq!(metadata(&o), vec![("tenant".into(), "initech".into())]);
    assert_eq!(
        o.native_status,
        status(
            StatusLevel::Ok,
            "ok",
            "0 passed, 2 skipped: the answer had no data"
        )
    );

    // Without the rule, a 404 is a config error (the SDK's classification).
    let cfg = json!({"base_url": s.url(), "auth": s.bearer(), "tenant": "initech", "assets": [documents_asset()]});
    let (class, message, _) = err_of(s.collect(cfg).await);
    assert_eq!(class, ErrorClass::Config);
    assert!(
        message.starts_with(&format!(
            "asset \"documents\": GET {}/api/v1/tenants/initech/stats: HTTP 404 Not Found",
            s.url()
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_table_can_classify_a_status_itself() {
    let s = setup(Scenario::Healthy).await;
    let cfg = json!({
        "base_url": s.url(), "auth": s.bearer(), "tenant": "initech",
        "assets": [{"name": "documents", "requests": [{"url": "/api/v1/tenants/{tenant}/stats", "status": {"404": "transient"}}]}]
    });
    let (class, message, _) = err_of(s.collect(cfg).await);
    assert_eq!(class, ErrorClass::Transient);
    assert_eq!(
        message,
        format!(
            "asset \"documents\": GET {}/api/v1/tenants/initech/stats: HTTP 404, an error by assets[0].requests[0].status",
            s.url()
        )
    );
}

fn stats_only(s: &Setup, auth: Value) -> Value {
    json!({
        "base_url": s.url(),
        "auth": auth,
        "assets": [{
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats"}],
            "counts": {"received": {"pointer": "/received"}}
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_auth_kind_sends_its_header_and_a_refused_one_is_an_auth_error() {
    let s = setup(Scenario::Healthy).await;
    let c = s.creds();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.user, c.password))
    );
    for (auth, header, value) in [
        (s.bearer(), "authorization", format!("Bearer {}", c.token)),
        (
            json!({"type": "basic", "user": c.user, "password": c.password}),
            "authorization",
            basic,
        ),
        (
            json!({"type": "header", "name": "X-Api-Key", "value": c.api_key}),
            "x-api-key",
            c.api_key.clone(),
        ),
    ] {
        s.server.take_requests();
        let o = s.collect(stats_only(&s, auth.clone())).await.unwrap();
        assert_eq!(o.counts.received, Some(245), "{auth}");
        let requests = s.server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].header(header), Some(value.as_str()), "{auth}");
        if header != "authorization" {
            assert_eq!(requests[0].header("authorization"), None);
        }
    }
    for auth in [
        json!({"type": "bearer", "token": "wrong"}),
        json!({"type": "basic", "user": c.user, "password": "wrong"}),
        json!({"type": "header", "name": "X-Api-Key", "value": "wrong"}),
    ] {
        let (class, message, _) = err_of(s.collect(stats_only(&s, auth)).await);
        assert_eq!(class, ErrorClass::Auth, "{message}");
        assert!(message.contains("HTTP 401"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_encode_the_tenant_and_variables_in_urls_query_and_headers() {
    let s = setup(Scenario::Healthy).await;
    let cfg = json!({
        "base_url": s.url(),
        "auth": s.bearer(),
        "tenant": "umbrella corp/eu",
        "variables": {"version": "v1", "source": "tributary check"},
        "headers": {"X-Source": "{source}"},
        "assets": [{
            "name": "documents",
            "requests": [{
                "url": "/api/{version}/tenants/{tenant}/stats",
                "query": {"asset": "{asset}", "by": "{source}"},
                "headers": {"X-Tenant": "{tenant}"}
            }],
            "counts": {"received": {"pointer": "/received"}}
        }]
    });
    let o = s.collect(cfg).await.unwrap();
    assert_eq!(o.counts.received, Some(7));
    let requests = s.server.requests();
    assert_eq!(
        paths(&requests),
        vec!["GET /api/v1/tenants/umbrella%20corp%2Feu/stats?asset=documents&by=tributary%20check"]
    );
    assert_eq!(requests[0].header("x-source"), Some("tributary check"));
    assert_eq!(requests[0].header("x-tenant"), Some("umbrella corp/eu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_stale_and_failing_read_as_the_service_says() {
    let s = setup(Scenario::Healthy).await;
    let cfg = config(&s, json!([documents_asset()]));

    s.switch.set(Scenario::Stale);
    let o = s.collect(cfg.clone()).await.unwrap();
    let old = NOW - STALE_AGE.as_secs() as i64;
    assert_eq!(o.freshness, Some(at(old)));
    assert_eq!(o.last_received.as_ref().unwrap().at, Some(at(old)));
    assert_eq!(o.native_status.as_ref().unwrap().level, StatusLevel::Ok);

    s.switch.set(Scenario::Failing);
    let o = s.collect(cfg.clone()).await.unwrap();
    let failing = FAILING_ERRORS as u64;
    assert_eq!(o.counts.errored, Some(failing));
    assert_eq!(
        o.native_status,
        status(
            StatusLevel::Error,
            "/status == \"ok\"",
            &format!("saw \"degraded\"; also failed (warn): inError < 10 (saw {failing})")
        )
    );
    // A bounded sample; the service's aggregates carry the totals.
    assert_eq!(o.errors.len(), 100);
    assert_eq!(
        totals(&o),
        vec![
            ("InvalidData".into(), failing / 3),
            ("NetworkError".into(), failing / 3),
            ("MissingData".into(), failing / 3)
        ]
    );
    assert_eq!(
        metadata(&o)[0],
        ("service_status".into(), "degraded".into())
    );

    // Without `error_totals`, the totals count every error, sampled or not.
    let mut asset = documents_asset();
    asset.as_object_mut().unwrap().remove("error_totals");
    let o = s.collect(config(&s, json!([asset]))).await.unwrap();
    assert_eq!(o.errors.len(), 100);
    assert_eq!(totals(&o).iter().map(|t| t.1).sum::<u64>(), failing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_unauthorized_and_rate_limited_fail_the_run_with_their_class() {
    let s = setup_with(Scenario::Slow, |f| f.slow_delay(Duration::from_secs(3))).await;
    let mut cfg = config(&s, json!([documents_asset()]));
    cfg["timeout"] = json!("500ms");
    let (class, message, _) = err_of(s.collect(cfg.clone()).await);
    assert_eq!(class, ErrorClass::Transient);
    assert!(message.contains("timed out"), "{message}");

    s.switch.set(Scenario::Unauthorized);
    let (class, message, _) = err_of(s.collect(cfg.clone()).await);
    assert_eq!(class, ErrorClass::Auth);
    assert!(
        message.starts_with(&format!(
            "asset \"documents\": GET {}/api/v1/tenants/acme/stats: HTTP 401 Unauthorized",
            s.url()
        )),
        "{message}"
    );

    s.switch.set(Scenario::RateLimited);
    let (class, message, retry_after) = err_of(s.collect(cfg).await);
    assert_eq!(class, ErrorClass::Transient);
    assert!(message.contains("HTTP 429"), "{message}");
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_system_errors_naming_what_was_seen() {
    let s = setup(Scenario::Malformed).await;
    let (class, message, _) = err_of(s.collect(config(&s, json!([documents_asset()]))).await);
    assert_eq!(class, ErrorClass::System);
    assert_eq!(
        message,
        format!(
            "asset \"documents\": counts.expected: pointer /expected gave \"250\" (text) in the answer to GET {}/api/v1/tenants/acme/stats, not a non-negative integer",
            s.url()
        )
    );

    let cfg = config(
        &s,
        json!([{
            "name": "documents",
            "requests": [{"url": "/api/v1/tenants/{tenant}/stats"}],
            "freshness": {"pointer": "/updatedAt"}
        }]),
    );
    let (_, message, _) = err_of(s.collect(cfg).await);
    assert!(
        message.starts_with(&format!(
            "asset \"documents\": freshness: pointer /updatedAt gave {} (a number) in the answer to GET",
            NOW - 120
        )),
        "{message}"
    );
    assert!(
        message.ends_with("set `format = \"unix_seconds\"` or \"unix_millis\" for numbers)"),
        "{message}"
    );

    let cfg = config(
        &s,
        ids_asset(json!({
            "request": {"url": "/api/v1/tenants/{tenant}/documents"},
            "items": {"pointer": "/documents"},
            "pagination": {"type": "cursor", "next": {"pointer": "/nextCursor"}}
        })),
    );
    let (class, message, _) = err_of(s.harness.collect(cfg).await);
    assert_eq!(class, ErrorClass::System);
    assert!(
        message.starts_with(
            "asset \"document-ids\": ids.items: pointer /documents gave \"doc-00001,doc-00002,"
        ),
        "{message}"
    );
    assert!(message.ends_with(", not a list"), "{message}");
}

fn with_actions(s: &Setup, tenant: Option<&str>, resync: Value, delete: Value) -> Value {
    let mut cfg = stats_only(s, s.bearer());
    if let Some(tenant) = tenant {
        cfg["tenant"] = json!(tenant);
    }
    cfg["resync"] = resync;
    cfg["delete"] = delete;
    cfg
}

fn resync_action() -> Value {
    json!({
        "request": {"method": "POST", "url": "/api/v1/tenants/{tenant}/resync", "body": {"documentIds": "{ids}", "reason": "asked by {asset}"}},
        "affected": {"pointer": "/accepted"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_sends_the_ids_in_the_body_and_reads_what_was_accepted() {
    let s = setup(Scenario::Healthy).await;
    let cfg = with_actions(&s, Some("acme"), resync_action(), Value::Null);
    let ids: Vec<String> = ["doc-00001", "doc-00002", "doc-99999"]
        .map(String::from)
        .to_vec();
    let outcome = s
        .harness
        .resync(cfg.clone(), "documents", &ids)
        .await
        .unwrap();
    assert_eq!(outcome.affected, Some(2));
    assert_eq!(
        outcome.message.as_deref(),
        Some(format!("POST {}/api/v1/tenants/acme/resync answered 202", s.url()).as_str())
    );
    let posted = s.server.take_requests();
    assert_eq!(paths(&posted), vec!["POST /api/v1/tenants/acme/resync"]);
    assert_eq!(posted[0].header("content-type"), Some("application/json"));
    assert_eq!(
        posted[0].json().unwrap(),
        json!({"documentIds": ids, "reason": "asked by documents"})
    );

    // No ids: everything.
    let outcome = s.harness.resync(cfg, "documents", &[]).await.unwrap();
    assert_eq!(outcome.affected, Some(245));
    assert_eq!(
        s.server.take_requests()[0].json().unwrap()["documentIds"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_refuse_what_the_config_cannot_do_without_sending_anything() {
    let s = setup(Scenario::Healthy).await;
    let ids = vec!["doc-00001".to_owned()];
    let delete_tenant =
        json!({"request": {"method": "DELETE", "url": "/api/v1/tenants/{tenant}/documents"}});
    let resync_all = json!({"request": {"method": "POST", "url": "/api/v1/tenants/{tenant}/resync", "body": {"documentIds": []}}});
    let cases: Vec<(Result<_, RunError>, &str)> = vec![
        (
            s.harness
                .resync(stats_only(&s, s.bearer()), "documents", &ids)
                .await,
            "this check's config has no `resync` request",
        ),
        (
            s.harness
                .resync(
                    with_actions(&s, Some("acme"), resync_all, Value::Null),
                    "documents",
                    &ids,
                )
                .await,
            "resync.request does not send {ids}",
        ),
        (
            s.harness
                .delete(
                    with_actions(&s, Some("acme"), Value::Null, delete_tenant.clone()),
                    "documents",
                    &DeleteScope::Ids(ids.clone()),
                )
                .await,
            "delete.request does not send {ids}",
        ),
        (
            s.harness
                .delete(
                    with_actions(&s, None, Value::Null, delete_tenant.clone()),
                    "documents",
                    &DeleteScope::Asset,
                )
                .await,
            "delete.request.url: {tenant} is used but no tenant is known",
        ),
        (
            s.harness
                .resync(
                    with_actions(&s, Some("acme"), resync_action(), Value::Null),
                    "orders",
                    &ids,
                )
                .await,
            "unknown asset \"orders\"; this check has documents",
        ),
    ];
    for (result, wanted) in cases {
        let (class, message, _) = err_of(result);
        assert_eq!(class, ErrorClass::Config, "{message}");
        assert!(message.contains(wanted), "{message}");
    }
    assert!(s.server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_a_tenant_or_only_the_given_ids() {
    let s = setup(Scenario::Healthy).await;
    let delete_tenant = json!({
        "request": {"method": "DELETE", "url": "/api/v1/tenants/{tenant}/documents", "headers": {"X-Scope": "{scope}"}},
        "affected": {"pointer": "/deleted"}
    });
    let cfg = with_actions(&s, None, Value::Null, delete_tenant);
    let outcome = s
        .harness
        .delete(cfg, "documents", &DeleteScope::Tenant("globex".into()))
        .await
        .unwrap();
    assert_eq!(outcome.affected, Some(40));
    let sent = s.server.take_requests();
    assert_eq!(
        paths(&sent),
        vec!["DELETE /api/v1/tenants/globex/documents"]
    );
    assert_eq!(sent[0].header("x-scope"), Some("tenant"));
    assert!(s.fake.document_ids("globex").is_empty());

    let delete_ids = json!({
        "request": {"method": "POST", "url": "/api/v1/tenants/{tenant}/documents/delete", "body": {"documentIds": "{ids}"}},
        "affected": {"pointer": "/deleted"}
    });
    let cfg = with_actions(&s, Some("acme"), Value::Null, delete_ids);
    let ids = vec!["doc-00001".to_owned(), "doc-00245".to_owned()];
    let outcome = s
        .harness
        .delete(cfg, "documents", &DeleteScope::Ids(ids.clone()))
        .await
        .unwrap();
    assert_eq!(outcome.affected, Some(2));
    let sent = s.server.take_requests();
    assert_eq!(
        paths(&sent),
        vec!["POST /api/v1/tenants/acme/documents/delete"]
    );
    assert_eq!(sent[0].json().unwrap(), json!({"documentIds": ids}));
    let left = s.fake.document_ids("acme");
    assert_eq!((left.len(), left[0].as_str()), (243, "doc-00002"));

    // The next run sees it.
    let o = s.collect(stats_only(&s, s.bearer())).await.unwrap();
    assert_eq!(o.counts.received, Some(243));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_judges_the_health_request_or_the_first_request() {
    let s = setup(Scenario::Healthy).await;
    let mut cfg = config(&s, json!([documents_asset()]));
    cfg["health"] = json!({
        "request": {"url": "/api/v1/health"},
        "conditions": [{"pointer": "/status", "op": "==", "value": "ok"}]
    });
    s.harness.test_connection(cfg.clone()).await.unwrap();
    assert_eq!(paths(&s.server.take_requests()), vec!["GET /api/v1/health"]);

    s.switch.set(Scenario::Failing);
    let (class, message, _) = err_of(s.harness.test_connection(cfg.clone()).await);
    assert_eq!(class, ErrorClass::System);
    assert_eq!(
        message,
        format!(
            "GET {}/api/v1/health: condition /status == \"ok\" failed: saw \"degraded\"",
            s.url()
        )
    );

    s.switch.set(Scenario::Unauthorized);
    let (class, _, _) = err_of(s.harness.test_connection(cfg).await);
    assert_eq!(class, ErrorClass::Auth);
    s.server.take_requests();

    // Without `health`: the first asset's first request, and its conditions.
    s.switch.set(Scenario::Failing);
    let mut cfg = config(&s, json!([documents_asset()]));
    let (class, message, _) = err_of(s.harness.test_connection(cfg.clone()).await);
    assert_eq!(class, ErrorClass::Config, "no run tenant here");
    assert!(
        message.contains("{tenant} is used but no tenant is known"),
        "{message}"
    );
    cfg["tenant"] = json!("acme");
    let (class, message, _) = err_of(s.harness.test_connection(cfg.clone()).await);
    assert_eq!(class, ErrorClass::System);
    assert!(
        message.contains("condition /status == \"ok\" failed"),
        "{message}"
    );
    assert_eq!(
        paths(&s.server.take_requests()),
        vec!["GET /api/v1/tenants/acme/stats"]
    );
    s.switch.set(Scenario::Healthy);
    s.harness.test_connection(cfg).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_the_configured_assets_without_a_request() {
    let s = setup(Scenario::Healthy).await;
    let mut assets = vec![documents_asset()];
    assets.extend(
        ids_asset(json!({"request": {"url": "/api/v1/tenants/{tenant}/document-ids"}, "items": {"pointer": "/ids"}}))
            .as_array()
            .unwrap()
            .clone(),
    );
    let found = s
        .harness
        .discover(config(&s, Value::from(assets)))
        .await
        .unwrap();
    let found: Vec<(&str, &str, Option<&str>)> = found
        .iter()
        .map(|a| (a.asset.as_str(), a.kind.as_str(), a.description.as_deref()))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "documents",
                "documents",
                Some("GET /api/v1/tenants/{tenant}/stats")
            ),
            (
                "document-ids",
                "documents",
                Some("GET /api/v1/tenants/{tenant}/document-ids")
            ),
        ]
    );
    assert!(s.server.requests().is_empty());
}

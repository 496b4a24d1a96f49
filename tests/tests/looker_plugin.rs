//! The looker connector, run through the real host by the SDK's harness
//! against the fake of Looker API 4.0 (`tributary_tests::fakes::looker`).
//! Every test asserts what the plugin reported and what it asked.

use std::sync::Arc;
use std::time::Duration;

use plugin_sdk::harness::{Collected, Harness, Recorded, Reply, TestServer};
use serde_json::{Value, json};
use tributary::plugin::{ErrorClass, Observation, StatusLevel, Timestamp};
use tributary_tests::fakes::looker::{CLIENT_ID, CLIENT_SECRET, LookerFake, RETRY_AFTER_SECS};
use tributary_tests::fakes::{FakeClock, Scenario, ScenarioSwitch};
use tributary_tests::observed::connector_error;
use tributary_tests::plugin;

/// 2026-11-20T10:00:00Z, for the harness and the fake alike.
const NOW: i64 = 1_795_168_800;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// What the plugin asks of a dashboard or a look.
const CONTENT_FIELDS: &str = "title,updated_at,last_accessed_at,view_count,deleted,deleted_at";

fn fake(scenario: Scenario) -> LookerFake {
    LookerFake::new(FakeClock::fixed_unix(NOW), ScenarioSwitch::new(scenario))
}

async fn harness(server: &TestServer) -> Harness {
    Harness::builder(plugin("looker"))
        .now_unix(NOW as u64)
        .allow_host(&server.url())
        .secret(CLIENT_ID)
        .secret(CLIENT_SECRET)
        .build()
        .await
        .expect("the looker plugin loads")
}

async fn setup(fake: LookerFake) -> (TestServer, Harness) {
    let server = fake.start().await;
    let harness = harness(&server).await;
    (server, harness)
}

/// Two datagroups by name (three assets: `daily_refresh` is in two models),
/// four dashboards (one deleted, one unknown), one look.
fn config(server: &TestServer) -> Value {
    json!({
        "base_url": server.url(),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "datagroups": ["thelook::orders_datagroup", "daily_refresh"],
        "dashboards": ["1", "2", "3", "404"],
        "looks": ["7"]
    })
}

fn at(unix: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: unix,
        nanos: 0,
    })
}

fn observation<'a>(run: &'a Collected, asset: &str) -> &'a Observation {
    run.report
        .observations
        .iter()
        .find(|o| o.asset == asset)
        .unwrap_or_else(|| panic!("no observation of {asset}"))
}

fn assets(run: &Collected) -> Vec<&str> {
    run.report
        .observations
        .iter()
        .map(|o| o.asset.as_str())
        .collect()
}

fn metadata(o: &Observation) -> Vec<(&str, &str)> {
    o.metadata
        .iter()
        .map(|m| (m.key.as_str(), m.value.as_str()))
        .collect()
}

fn extras(o: &Observation) -> Vec<(&str, u64)> {
    o.counts
        .extras
        .iter()
        .map(|e| (e.name.as_str(), e.value))
        .collect()
}

fn native(o: &Observation) -> Option<(StatusLevel, &str, Option<&str>)> {
    o.native_status
        .as_ref()
        .map(|s| (s.level, s.label.as_str(), s.message.as_deref()))
}

/// `(kind, message, log link)` of each sampled error.
fn errors(o: &Observation) -> Vec<(&str, &str, Option<&str>)> {
    o.errors
        .iter()
        .map(|e| (e.kind.as_str(), e.message.as_str(), e.log_link.as_deref()))
        .collect()
}

fn decode(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Each request as `METHOD /path?decoded=query`.
fn calls(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let query = r
                .query
                .as_deref()
                .map(|q| {
                    let pairs: Vec<String> =
                        decode(q).iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("?{}", pairs.join("&"))
                })
                .unwrap_or_default();
            format!("{} {}{query}", r.method, r.path)
        })
        .collect()
}

/// The token each request carried (`-` for none).
fn tokens(requests: &[Recorded]) -> Vec<&str> {
    requests
        .iter()
        .map(|r| r.header("authorization").unwrap_or("-"))
        .collect()
}

/// The calls of a run of [`config`], between its login and its logout.
fn healthy_calls() -> Vec<String> {
    [
        "GET /api/4.0/datagroups".to_string(),
        format!("GET /api/4.0/dashboards/1?fields={CONTENT_FIELDS}"),
        format!("GET /api/4.0/dashboards/2?fields={CONTENT_FIELDS}"),
        format!("GET /api/4.0/dashboards/3?fields={CONTENT_FIELDS}"),
        format!("GET /api/4.0/dashboards/404?fields={CONTENT_FIELDS}"),
        format!("GET /api/4.0/looks/7?fields={CONTENT_FIELDS}"),
        "GET /api/4.0/content_validation".to_string(),
    ]
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_itself_with_secret_credentials_and_looker_hosts() {
    let (_server, harness) = setup(fake(Scenario::Healthy)).await;
    let d = harness.plugin().descriptor();
    assert_eq!(d.name, "looker");
    assert_eq!(
        d.suggested_hosts,
        ["https://*.cloud.looker.com", "https://*.looker.com"]
    );
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        json!(["base_url", "client_id", "client_secret"])
    );
    assert_eq!(schema["properties"]["client_id"]["x-secret"], true);
    assert_eq!(schema["properties"]["client_secret"]["x-secret"], true);
    assert_eq!(schema["properties"]["content_validation"]["default"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_instance_reports_datagroups_content_and_validation_in_one_login() {
    let (server, harness) = setup(fake(Scenario::Healthy)).await;
    let run = harness.collect(config(&server)).await.unwrap();
    let url = server.url();

    assert_eq!(
        assets(&run),
        [
            "datagroup:thelook::orders_datagroup",
            "datagroup:thelook::daily_refresh",
            "datagroup:marketing::daily_refresh",
            "dashboard:1",
            "dashboard:2",
            "dashboard:3",
            "dashboard:404",
            "look:7",
            "content_validation",
        ]
    );

    let orders = observation(&run, "datagroup:thelook::orders_datagroup");
    assert_eq!(orders.kind, "datagroup");
    assert_eq!(orders.freshness, at(NOW - 15 * 60));
    assert_eq!(
        metadata(orders),
        [
            ("trigger_check_at", "2026-11-20T09:58:00Z"),
            ("stale_before", "2026-11-20T09:45:00Z"),
            ("trigger_value", "2026-11-20 09:45:00"),
        ]
    );
    assert_eq!(native(orders), Some((StatusLevel::Ok, "trigger ok", None)));
    assert!(orders.errors.is_empty() && orders.error_totals.is_empty());
    let marketing = observation(&run, "datagroup:marketing::daily_refresh");
    assert_eq!(marketing.freshness, at(NOW - 7 * HOUR));
    assert_eq!(metadata(marketing)[2], ("trigger_value", "2026-11-20"));

    let sales = observation(&run, "dashboard:1");
    assert_eq!(sales.kind, "dashboard");
    assert_eq!(sales.freshness, at(NOW - DAY));
    assert_eq!(
        metadata(sales),
        [
            ("deleted", "false"),
            ("title", "Sales Overview"),
            ("last_accessed_at", "2026-11-20T09:50:00Z"),
            ("view_count", "1523"),
        ]
    );
    assert_eq!(sales.counts.errored, Some(0));
    assert_eq!(native(sales), Some((StatusLevel::Ok, "valid", None)));
    assert!(sales.errors.is_empty());

    let deleted = observation(&run, "dashboard:3");
    let gone =
        "dashboard 3 \"Old Funnel\" was deleted at 2026-11-13T10:00:00Z (it is in the trash)";
    assert_eq!(
        native(deleted),
        Some((StatusLevel::Error, "deleted", Some(gone)))
    );
    assert_eq!(
        errors(deleted),
        [(
            "deleted",
            gone,
            Some(format!("{url}/dashboards/3").as_str())
        )]
    );
    assert_eq!(deleted.errors[0].at, at(NOW - 7 * DAY));
    assert_eq!(
        deleted.counts.errored, None,
        "deleted content is not validated"
    );
    assert!(metadata(deleted).contains(&("deleted", "true")));

    let missing = observation(&run, "dashboard:404");
    let not_found = "dashboard 404: Looker answered HTTP 404: Not found \
         (see https://cloud.google.com/looker/docs/r/err/4.0/404/get/dashboards/:dashboard_id); \
         it was deleted for good, or the API user may not see it";
    assert_eq!(
        native(missing),
        Some((StatusLevel::Error, "not found", Some(not_found)))
    );
    assert_eq!(errors(missing), [("not_found", not_found, None)]);
    assert_eq!(missing.freshness, None);
    assert!(missing.metadata.is_empty());

    let look = observation(&run, "look:7");
    assert_eq!(look.kind, "look");
    assert_eq!(look.freshness, at(NOW - DAY));
    assert!(metadata(look).contains(&("title", "Weekly Orders")));
    assert!(metadata(look).contains(&("view_count", "240")));
    assert_eq!(native(look), Some((StatusLevel::Ok, "valid", None)));

    let validation = observation(&run, "content_validation");
    assert_eq!(validation.kind, "content_validation");
    assert_eq!(validation.counts.errored, Some(0));
    assert_eq!(
        extras(validation),
        [
            ("looks_validated", 2),
            ("dashboard_elements_validated", 8),
            ("dashboard_filters_validated", 4),
            ("scheduled_plans_validated", 1),
            ("alerts_validated", 0),
            ("explores_validated", 3),
        ]
    );
    assert_eq!(metadata(validation), [("computation_time_s", "2.5")]);
    assert!(validation.errors.is_empty() && validation.native_status.is_none());

    // One login for every call, the form body, the token header, a logout.
    let requests = server.requests();
    let mut expected = vec!["POST /api/4.0/login".to_string()];
    expected.extend(healthy_calls());
    expected.push("DELETE /api/4.0/logout".into());
    assert_eq!(calls(&requests), expected);
    let login = &requests[0];
    assert_eq!(
        login.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        decode(&String::from_utf8_lossy(&login.body)),
        [
            ("client_id".to_string(), CLIENT_ID.to_string()),
            ("client_secret".to_string(), CLIENT_SECRET.to_string()),
        ]
    );
    assert_eq!(login.header("authorization"), None);
    assert!(
        tokens(&requests[1..])
            .iter()
            .all(|t| *t == "token fake-looker-token-1"),
        "{:?}",
        tokens(&requests)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_datagroup_when_none_are_listed_and_none_when_the_list_is_empty() {
    let (server, harness) = setup(fake(Scenario::Healthy)).await;
    let cfg = |datagroups: Option<Value>| {
        let mut cfg = json!({
            "base_url": server.url(), "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "content_validation": false
        });
        if let Some(datagroups) = datagroups {
            cfg["datagroups"] = datagroups;
        }
        cfg
    };

    let run = harness.collect(cfg(None)).await.unwrap();
    assert_eq!(
        assets(&run),
        [
            "datagroup:thelook::orders_datagroup",
            "datagroup:thelook::daily_refresh",
            "datagroup:marketing::daily_refresh",
            "datagroup:thelook::weekly_cache",
        ]
    );
    // Only a max_cache_age: never triggered nor checked, its 0 is no time.
    let weekly = observation(&run, "datagroup:thelook::weekly_cache");
    assert_eq!(weekly.freshness, None);
    assert_eq!(weekly.native_status, None);
    assert!(weekly.metadata.is_empty(), "{:?}", weekly.metadata);

    server.take_requests();
    let mut content_only = cfg(Some(json!([])));
    content_only["looks"] = json!(["8"]);
    let run = harness.collect(content_only).await.unwrap();
    assert_eq!(assets(&run), ["look:8"]);
    assert_eq!(
        calls(&server.take_requests()),
        [
            "POST /api/4.0/login".to_string(),
            format!("GET /api/4.0/looks/8?fields={CONTENT_FIELDS}"),
            "DELETE /api/4.0/logout".into(),
        ]
    );

    let run = harness
        .collect(cfg(Some(json!(["thelook::nope", "daily_refresh"]))))
        .await
        .unwrap();
    assert_eq!(
        assets(&run),
        [
            "datagroup:thelook::nope",
            "datagroup:thelook::daily_refresh",
            "datagroup:marketing::daily_refresh",
        ]
    );
    let nope = observation(&run, "datagroup:thelook::nope");
    let message =
        "Looker has no datagroup \"thelook::nope\" (or the API user cannot see its model)";
    assert_eq!(
        native(nope),
        Some((StatusLevel::Error, "not found", Some(message)))
    );
    assert_eq!(errors(nope), [("not_found", message, None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_instance_reports_old_triggers_and_old_edits() {
    let (server, harness) = setup(fake(Scenario::Stale)).await;
    let run = harness.collect(config(&server)).await.unwrap();
    let freshness: Vec<(&str, Option<Timestamp>)> = run
        .report
        .observations
        .iter()
        .map(|o| (o.asset.as_str(), o.freshness))
        .collect();
    assert_eq!(
        freshness,
        [
            ("datagroup:thelook::orders_datagroup", at(NOW - 3 * DAY)),
            ("datagroup:thelook::daily_refresh", at(NOW - 4 * DAY)),
            (
                "datagroup:marketing::daily_refresh",
                at(NOW - 4 * DAY - HOUR)
            ),
            ("dashboard:1", at(NOW - 120 * DAY)),
            ("dashboard:2", at(NOW - 120 * DAY)),
            ("dashboard:3", at(NOW - 120 * DAY)),
            ("dashboard:404", None),
            ("look:7", at(NOW - 120 * DAY)),
            ("content_validation", None),
        ]
    );
    // The triggers are still checked: the data just has not changed.
    let orders = observation(&run, "datagroup:thelook::orders_datagroup");
    assert_eq!(native(orders), Some((StatusLevel::Ok, "trigger ok", None)));
    assert!(
        metadata(observation(&run, "dashboard:1"))
            .contains(&("last_accessed_at", "2026-10-06T10:00:00Z"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_reports_trigger_errors_and_content_errors_where_they_belong() {
    let (server, harness) = setup(fake(Scenario::Failing)).await;
    let web = "https://looker.example.com";
    let mut cfg = config(&server);
    cfg["web_url"] = json!(format!("{web}/"));
    cfg["dashboards"] = json!(["1", "2"]);
    let run = harness.collect(cfg).await.unwrap();

    let orders = observation(&run, "datagroup:thelook::orders_datagroup");
    let trigger = "Error running trigger query: SQL compilation error: Object 'ANALYTICS.PUBLIC.ORDERS' does not exist or not authorized.";
    assert_eq!(
        native(orders),
        Some((StatusLevel::Error, "trigger error", Some(trigger)))
    );
    assert_eq!(errors(orders), [("trigger_error", trigger, None)]);
    assert_eq!(orders.errors[0].at, at(NOW - 120));
    assert_eq!(orders.freshness, at(NOW - 2 * DAY));
    let daily = observation(&run, "datagroup:thelook::daily_refresh");
    assert_eq!(native(daily), Some((StatusLevel::Ok, "trigger ok", None)));

    let dashboard = format!("{web}/dashboards/1");
    let sales = observation(&run, "dashboard:1");
    assert_eq!(sales.counts.errored, Some(2));
    assert_eq!(
        errors(sales),
        [
            (
                "content_validation",
                "tile \"Revenue by Week\": Unknown explore \"order_items\" (model thelook, explore order_items)",
                Some(dashboard.as_str())
            ),
            (
                "content_validation",
                "filter \"Region\": Unknown field \"users.region\" (model thelook, explore orders, field users.region)",
                Some(dashboard.as_str())
            ),
        ]
    );
    assert_eq!(
        native(sales),
        Some((
            StatusLevel::Error,
            "content errors",
            Some("2 content validation error(s)")
        ))
    );
    assert_eq!(sales.error_totals.len(), 1);
    assert_eq!(
        (
            sales.error_totals[0].kind.as_str(),
            sales.error_totals[0].count
        ),
        ("content_validation", 2)
    );

    let kpis = observation(&run, "dashboard:2");
    assert_eq!(kpis.counts.errored, Some(0));
    assert_eq!(native(kpis), Some((StatusLevel::Ok, "valid", None)));

    let look = observation(&run, "look:7");
    assert_eq!(look.counts.errored, Some(1));
    let looks_link = format!("{web}/looks/7");
    assert_eq!(
        errors(look),
        [(
            "content_validation",
            "Unknown field \"orders.total_revenue\" (model thelook, explore orders, field orders.total_revenue)",
            Some(looks_link.as_str())
        )]
    );

    // Dashboard 9 is not watched: its error goes to the instance's asset,
    // which counts every piece of content with errors.
    let validation = observation(&run, "content_validation");
    assert_eq!(validation.counts.errored, Some(4));
    let funnel = format!("{web}/dashboards/9");
    assert_eq!(
        errors(validation),
        [(
            "content_validation",
            "dashboard 9 \"Marketing Funnel\": Unknown model \"marketing_v1\" (model marketing_v1)",
            Some(funnel.as_str())
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_renewed_once_and_the_refused_call_retried() {
    // The first token serves five calls, then Looker refuses it.
    let (server, harness) = setup(fake(Scenario::Healthy).revoke_tokens_after(5)).await;
    let run = harness.collect(config(&server)).await.unwrap();
    assert_eq!(run.report.observations.len(), 9);
    assert_eq!(
        native(observation(&run, "look:7")),
        Some((StatusLevel::Ok, "valid", None))
    );

    let requests = server.requests();
    let look = format!("GET /api/4.0/looks/7?fields={CONTENT_FIELDS}");
    let mut expected = vec!["POST /api/4.0/login".to_string()];
    expected.extend(healthy_calls()[..5].iter().cloned());
    expected.extend([look.clone(), "POST /api/4.0/login".into(), look]);
    expected.extend([
        "GET /api/4.0/content_validation".to_string(),
        "DELETE /api/4.0/logout".into(),
    ]);
    assert_eq!(calls(&requests), expected);
    let first = "token fake-looker-token-1";
    let second = "token fake-looker-token-2";
    assert_eq!(
        tokens(&requests),
        [
            "-", first, first, first, first, first, first, "-", second, second, second
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_again_after_a_fresh_login_fails_as_auth() {
    let (server, harness) = setup(fake(Scenario::Healthy).revoke_tokens_after(0)).await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Auth, "{err}");
    assert_eq!(
        message,
        format!(
            "GET {}/api/4.0/datagroups: Looker refused a fresh access token too \
             (HTTP 401: Requires authentication. (see https://cloud.google.com/looker/docs/r/err/4.0/401/get/datagroups)); \
             the API user may have been disabled or its API key revoked",
            server.url()
        )
    );
    assert_eq!(
        calls(&server.requests()),
        [
            "POST /api/4.0/login",
            "GET /api/4.0/datagroups",
            "POST /api/4.0/login",
            "GET /api/4.0/datagroups",
            "DELETE /api/4.0/logout",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_about_to_expire_by_the_run_clock_is_renewed_before_the_next_call() {
    // 45 s is less than the minute of margin the plugin keeps.
    let fake = fake(Scenario::Healthy).token_lifetime(Duration::from_secs(45));
    let (server, harness) = setup(fake).await;
    let mut cfg = config(&server);
    cfg["datagroups"] = json!(["thelook::orders_datagroup"]);
    cfg["dashboards"] = json!(["1"]);
    cfg["looks"] = json!([]);
    cfg["content_validation"] = json!(false);
    let run = harness.collect(cfg).await.unwrap();
    assert_eq!(
        assets(&run),
        ["datagroup:thelook::orders_datagroup", "dashboard:1"]
    );

    let requests = server.requests();
    assert_eq!(
        calls(&requests),
        [
            "POST /api/4.0/login".to_string(),
            "GET /api/4.0/datagroups".into(),
            "POST /api/4.0/login".into(),
            format!("GET /api/4.0/dashboards/1?fields={CONTENT_FIELDS}"),
            "DELETE /api/4.0/logout".into(),
        ]
    );
    assert_eq!(
        tokens(&requests),
        [
            "-",
            "token fake-looker-token-1",
            "-",
            "token fake-looker-token-2",
            "token fake-looker-token-2"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_is_an_auth_error_that_keeps_the_secret_out() {
    let (server, harness) = setup(fake(Scenario::Unauthorized)).await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Auth, "{err}");
    assert_eq!(
        message,
        format!(
            "POST {}/api/4.0/login: Looker refused the API key (HTTP 404: Not found \
             (see https://cloud.google.com/looker/docs/r/err/4.0/404/post/login)); check client_id and client_secret \
             (Admin > Users > Edit API keys) and that base_url is the instance's API address",
            server.url()
        )
    );
    assert_eq!(calls(&server.take_requests()), ["POST /api/4.0/login"]);

    let err = harness.test_connection(config(&server)).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");

    // A wrong secret against a healthy instance: refused the same way.
    let (server, harness) = setup(fake(Scenario::Healthy)).await;
    let mut cfg = config(&server);
    cfg["client_secret"] = json!("not-the-secret");
    let err = harness.collect(cfg).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
    assert_eq!(calls(&server.requests()), ["POST /api/4.0/login"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiting_is_transient_with_looker_retry_after() {
    let (server, harness) = setup(fake(Scenario::RateLimited)).await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, retry_after) = connector_error(&err);
    assert_eq!(class, ErrorClass::Transient, "{err}");
    assert_eq!(retry_after, Some(Duration::from_secs(RETRY_AFTER_SECS)));
    assert_eq!(
        message,
        format!(
            "POST {}/api/4.0/login: HTTP 429: Too Many Requests \
             (see https://cloud.google.com/looker/docs/r/err/4.0/429/post/login)",
            server.url()
        )
    );
    // The daemon retries the run; the plugin does not hammer.
    assert_eq!(calls(&server.requests()), ["POST /api/4.0/login"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_instance_times_out_as_transient() {
    let fake = fake(Scenario::Slow).slow_delay(Duration::from_secs(3));
    let (server, harness) = setup(fake).await;
    let mut cfg = config(&server);
    cfg["timeout_secs"] = json!(1);
    let started = std::time::Instant::now();
    let err = harness.collect(cfg).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Transient, "{err}");
    assert!(
        message.starts_with(&format!("POST {}/api/4.0/login: timed out", server.url())),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the plugin's timeout cut it short"
    );
    assert_eq!(calls(&server.requests()), ["POST /api/4.0/login"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_is_a_system_error_naming_the_call() {
    let (server, harness) = setup(fake(Scenario::Malformed)).await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::System, "{err}");
    assert!(
        message.starts_with(&format!(
            "GET {}/api/4.0/datagroups: unexpected response body",
            server.url()
        )),
        "{message}"
    );
    // It still logs out of the session it opened.
    assert_eq!(
        calls(&server.requests()),
        [
            "POST /api/4.0/login",
            "GET /api/4.0/datagroups",
            "DELETE /api/4.0/logout"
        ]
    );
}

/// The fake, but `path` answers `reply`.
async fn answering(path: &'static str, reply: Reply) -> (TestServer, Harness) {
    let fake = Arc::new(fake(Scenario::Healthy));
    let server = TestServer::start(move |req| {
        if req.path == path {
            reply.clone()
        } else {
            fake.handle(req)
        }
    })
    .await;
    let harness = harness(&server).await;
    (server, harness)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looker_error_bodies_explain_server_errors_missing_permissions_and_bad_requests() {
    let docs = "https://cloud.google.com/looker/docs/r/err/4.0";
    let (server, harness) = answering(
        "/api/4.0/datagroups",
        Reply::json(
            503,
            json!({"message": "Looker is starting up", "documentation_url": format!("{docs}/503")}),
        )
        .header("retry-after", "7"),
    )
    .await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, retry_after) = connector_error(&err);
    assert_eq!(class, ErrorClass::Transient, "{err}");
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    assert_eq!(
        message,
        format!(
            "GET {}/api/4.0/datagroups: HTTP 503: Looker is starting up (see {docs}/503)",
            server.url()
        )
    );

    // Looker hides what a user may not see behind 404.
    let (server, harness) = answering(
        "/api/4.0/datagroups",
        Reply::json(
            404,
            json!({"message": "Not found", "documentation_url": format!("{docs}/404/get/datagroups")}),
        ),
    )
    .await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Auth, "{err}");
    assert_eq!(
        message,
        format!(
            "GET {}/api/4.0/datagroups: HTTP 404: Not found (see {docs}/404/get/datagroups); \
             the API user needs the see_datagroups permission",
            server.url()
        )
    );

    let (server, harness) = answering(
        "/api/4.0/content_validation",
        Reply::json(
            422,
            json!({
                "message": "Validation Failed",
                "errors": [{"field": "space_ids", "code": "invalid", "message": "is not a folder", "documentation_url": null}],
                "documentation_url": format!("{docs}/422")
            }),
        ),
    )
    .await;
    let err = harness.collect(config(&server)).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Config, "{err}");
    assert_eq!(
        message,
        format!(
            "GET {}/api/4.0/content_validation: HTTP 422: Validation Failed; space_ids: is not a folder (see {docs}/422)",
            server.url()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_content_validation_content_has_no_verdict_and_the_validator_is_not_called() {
    let (server, harness) = setup(fake(Scenario::Failing)).await;
    let mut cfg = config(&server);
    cfg["content_validation"] = json!(false);
    let run = harness.collect(cfg).await.unwrap();
    assert!(!assets(&run).contains(&"content_validation"));
    let sales = observation(&run, "dashboard:1");
    assert_eq!(sales.counts.errored, None);
    assert_eq!(sales.native_status, None);
    assert!(sales.errors.is_empty());
    assert!(
        !calls(&server.requests())
            .iter()
            .any(|c| c.contains("content_validation"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_connection_logs_in_asks_who_it_is_and_logs_out() {
    let (server, harness) = setup(fake(Scenario::Healthy)).await;
    let mut cfg = config(&server);
    // A pasted API URL works too.
    cfg["base_url"] = json!(format!("{}/api/4.0/", server.url()));
    harness.test_connection(cfg).await.unwrap();
    let requests = server.requests();
    assert_eq!(
        calls(&requests),
        [
            "POST /api/4.0/login",
            "GET /api/4.0/user?fields=id,display_name",
            "DELETE /api/4.0/logout"
        ]
    );
    assert_eq!(
        requests[1].header("authorization"),
        Some("token fake-looker-token-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_datagroups_and_pages_through_dashboards_and_looks() {
    // 3 live dashboards of the fake (one more is deleted) and 600 more.
    let (server, harness) = setup(fake(Scenario::Healthy).extra_dashboards(600)).await;
    let assets = harness.discover(config(&server)).await.unwrap();
    assert_eq!(assets.len(), 4 + 603 + 2 + 1);
    let described: Vec<(&str, &str, Option<&str>)> = assets
        .iter()
        .map(|a| (a.asset.as_str(), a.kind.as_str(), a.description.as_deref()))
        .collect();
    assert_eq!(
        described[..5],
        [
            (
                "datagroup:thelook::orders_datagroup",
                "datagroup",
                Some("Datagroup orders_datagroup of model thelook")
            ),
            (
                "datagroup:thelook::daily_refresh",
                "datagroup",
                Some("Datagroup daily_refresh of model thelook")
            ),
            (
                "datagroup:marketing::daily_refresh",
                "datagroup",
                Some("Datagroup daily_refresh of model marketing")
            ),
            (
                "datagroup:thelook::weekly_cache",
                "datagroup",
                Some("Datagroup weekly_cache of model thelook")
            ),
            ("dashboard:1", "dashboard", Some("Sales Overview")),
        ]
    );
    assert!(
        !described.iter().any(|(asset, ..)| *asset == "dashboard:3"),
        "deleted"
    );
    assert_eq!(
        described[606],
        ("dashboard:1599", "dashboard", Some("Generated 599"))
    );
    assert_eq!(
        described[607..],
        [
            ("look:7", "look", Some("Weekly Orders")),
            ("look:8", "look", Some("Returns by Region")),
            (
                "content_validation",
                "content_validation",
                Some("Looker's content validator: errors of content not watched")
            ),
        ]
    );

    let search = "fields=id,title&deleted=false&sorts=id&limit=500";
    assert_eq!(
        calls(&server.requests()),
        [
            "POST /api/4.0/login".to_string(),
            "GET /api/4.0/datagroups".into(),
            format!("GET /api/4.0/dashboards/search?{search}&offset=0"),
            format!("GET /api/4.0/dashboards/search?{search}&offset=500"),
            format!("GET /api/4.0/looks/search?{search}&offset=0"),
            "DELETE /api/4.0/logout".into(),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelled_config_field_is_a_config_error_naming_it() {
    let (server, harness) = setup(fake(Scenario::Healthy)).await;
    let mut cfg = config(&server);
    cfg["dashbords"] = json!(["1"]);
    let err = harness.collect(cfg).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("dashbords"), "{err}");
    assert!(server.requests().is_empty());
}

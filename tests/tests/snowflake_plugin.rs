//! The snowflake connector, run through the real host against the fake SQL
//! API v2 (`tributary_tests::fakes::snowflake`): what it reports, and what it
//! sent to get there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use plugin_sdk::harness::{Harness, Recorded, Reply, TestServer};
use serde_json::{Value, json};
use tributary::plugin::{ErrorClass, Limits, Observation, StatusLevel, Timestamp};
use tributary_tests::fakes::snowflake::{
    FakeSetup, Fault, SnowflakeFake, Submission, TEST_PRIVATE_KEY,
};
use tributary_tests::fakes::{FakeClock, Scenario, ScenarioSwitch};
use tributary_tests::observed::{connector_error, extra, metadata};
use tributary_tests::plugin;

/// 2026-11-20T10:00:00Z: the host's clock and the fake's.
const NOW: i64 = 1_795_168_800;
/// What `openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64`
/// prints for the test-only public key.
const FINGERPRINT: &str = "SHA256:L+i8YcrHiG0G6801AYa+xANhSApIQ1S3RHsvNzp4uLc=";
const OTHER_KEY: &str = include_str!("../fixtures/snowflake/test_only_other_rsa_key.p8");
const PKCS1_KEY: &str = include_str!("../fixtures/snowflake/test_only_pkcs1_rsa_key.pem");

struct Env {
    fake: SnowflakeFake,
    server: TestServer,
    harness: Harness,
    scenario: ScenarioSwitch,
}

async fn env_with(setup: FakeSetup, scenario: Scenario, limits: Limits) -> Env {
    let scenario = ScenarioSwitch::new(scenario);
    let fake = SnowflakeFake::new(FakeClock::fixed_unix(NOW), scenario.clone(), setup);
    let server = fake.clone().start().await;
    let harness = Harness::builder(plugin("snowflake"))
        .now_unix(NOW as u64)
        .allow_host(&server.url())
        .secret(TEST_PRIVATE_KEY)
        .limits(limits)
        .build()
        .await
        .expect("the snowflake plugin loads");
    Env {
        fake,
        server,
        harness,
        scenario,
    }
}

async fn env(scenario: Scenario) -> Env {
    env_with(FakeSetup::example(), scenario, Limits::default()).await
}

fn key_pair() -> Value {
    json!({"type": "key_pair", "user": "tributary", "private_key": TEST_PRIVATE_KEY})
}

/// Both databases of the example catalogue, with `auth`.
fn config(env: &Env, auth: Value) -> Value {
    config_for(&env.server, auth)
}

/// [`config`] for the fake served by `server`.
fn config_for(server: &TestServer, auth: Value) -> Value {
    json!({
        "account": "myorg-myaccount",
        "base_url": server.url(),
        "auth": auth,
        "warehouse": "MONITOR_WH",
        "role": "MONITOR_ROLE",
        "query_tag": "tributary-test",
        "databases": [
            {"name": "ANALYTICS", "schemas": ["PUBLIC", "STAGING"]},
            {"name": "RAW", "schemas": ["LANDING"]}
        ]
    })
}

fn with_assets(mut config: Value, assets: Value) -> Value {
    config["assets"] = assets;
    config
}

fn at(seconds: i64, nanos: u32) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos })
}

fn by_asset(observations: &[Observation]) -> BTreeMap<&str, &Observation> {
    observations.iter().map(|o| (o.asset.as_str(), o)).collect()
}

fn listings(submissions: &[Submission]) -> Vec<&Submission> {
    submissions
        .iter()
        .filter(|s| s.statement.contains("INFORMATION_SCHEMA.TABLES"))
        .collect()
}

fn statement_gets(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/api/v2/statements/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_itself_with_secret_credentials_and_the_snowflake_host() {
    let env = env(Scenario::Healthy).await;
    let d = env.harness.plugin().descriptor();
    assert_eq!(d.name, "snowflake");
    assert_eq!(d.suggested_hosts, ["https://*.snowflakecomputing.com"]);
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    let auth = schema["properties"]["auth"]["oneOf"].as_array().unwrap();
    assert_eq!(auth[0]["properties"]["private_key"]["x-secret"], true);
    assert_eq!(auth[1]["properties"]["token"]["x-secret"], true);
    assert_eq!(auth[2]["properties"]["token"]["x-secret"], true);
    assert_eq!(schema["required"], json!(["account", "auth", "databases"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_reports_every_table_from_one_information_schema_query_per_database() {
    let env = env(Scenario::Healthy).await;
    let run = env.harness.collect(config(&env, key_pair())).await.unwrap();

    let keys: Vec<(&str, &str)> = run
        .report
        .observations
        .iter()
        .map(|o| (o.asset.as_str(), o.kind.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("ANALYTICS.PUBLIC.CUSTOMERS", "table"),
            ("ANALYTICS.PUBLIC.ORDERS", "table"),
            ("ANALYTICS.PUBLIC.ORDERS_V", "view"),
            ("ANALYTICS.STAGING.EVENTS", "table"),
            ("RAW.LANDING.AUDIT_LOG", "table"),
            ("RAW.LANDING.HUGE", "table"),
            ("RAW.LANDING.ORDERS_LANDING", "table"),
        ]
    );
    let obs = by_asset(&run.report.observations);
    let orders = obs["ANALYTICS.PUBLIC.ORDERS"];
    assert_eq!(orders.counts.received, Some(2_500));
    assert_eq!(orders.counts.expected, None);
    assert_eq!(extra(orders, "bytes"), Some(1_048_576));
    assert_eq!(orders.freshness, at(NOW - 5 * 60, 0));
    assert_eq!(metadata(orders, "table_type"), Some("BASE TABLE"));
    assert_eq!(metadata(orders, "owner"), Some("LOADER"));
    assert_eq!(metadata(orders, "is_transient"), Some("NO"));
    assert_eq!(
        metadata(orders, "last_altered"),
        Some("2026-11-20T09:55:00Z")
    );
    assert_eq!(metadata(orders, "created"), Some("2026-08-22T10:00:00Z"));
    assert!(orders.errors.is_empty() && orders.native_status.is_none());
    // Beyond 2^53: read digit by digit, never through a float.
    let events = obs["ANALYTICS.STAGING.EVENTS"];
    assert_eq!(events.counts.received, Some(9_007_199_254_740_993));
    assert_eq!(extra(events, "bytes"), Some(123_456_789_012));
    assert_eq!(metadata(events, "is_transient"), Some("YES"));
    // A view: no rows, no bytes, no freshness; its LAST_ALTERED stays metadata.
    let view = obs["ANALYTICS.PUBLIC.ORDERS_V"];
    assert_eq!(
        (view.counts.received, extra(view, "bytes"), view.freshness),
        (None, None, None)
    );
    assert_eq!(metadata(view, "table_type"), Some("VIEW"));
    assert_eq!(metadata(view, "last_altered"), Some("2026-11-17T10:00:00Z"));
    assert!(run.ids.is_empty());

    // Exactly one statement per database, schemas bound, never spliced.
    let submissions = env.fake.submissions();
    assert_eq!(submissions.len(), 2, "{submissions:?}");
    assert_eq!(listings(&submissions).len(), 2);
    let (analytics, raw) = (&submissions[0], &submissions[1]);
    assert_eq!(
        analytics.statement,
        "SELECT TABLE_CATALOG, TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_OWNER, IS_TRANSIENT, \
         CLUSTERING_KEY, ROW_COUNT, BYTES, CREATED, LAST_ALTERED FROM \"ANALYTICS\".INFORMATION_SCHEMA.TABLES \
         WHERE TABLE_SCHEMA IN (?, ?) ORDER BY TABLE_SCHEMA, TABLE_NAME"
    );
    assert_eq!(analytics.bindings, ["PUBLIC", "STAGING"]);
    assert_eq!(
        analytics.body["bindings"],
        json!({"1": {"type": "TEXT", "value": "PUBLIC"}, "2": {"type": "TEXT", "value": "STAGING"}})
    );
    assert!(
        raw.statement
            .contains("FROM \"RAW\".INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA IN (?) ")
    );
    assert_eq!(raw.bindings, ["LANDING"]);
    for s in &submissions {
        assert_eq!(s.body["database"], s.statement.split('"').nth(1).unwrap());
        assert_eq!(s.body["warehouse"], "MONITOR_WH");
        assert_eq!(s.body["role"], "MONITOR_ROLE");
        assert_eq!(s.body["timeout"], 60);
        assert_eq!(
            s.body["parameters"],
            json!({"timezone": "UTC", "query_tag": "tributary-test", "multi_statement_count": 1})
        );
        assert!(!s.retry);
    }
    let ids: Vec<&str> = submissions
        .iter()
        .map(|s| s.request_id.as_deref().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "a fresh requestId per statement");

    // The headers Snowflake requires, on every request.
    let requests = env.server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/api/v2/statements")
        );
        assert!(r.header("authorization").unwrap().starts_with("Bearer ey"));
        assert_eq!(
            r.header("x-snowflake-authorization-token-type"),
            Some("KEYPAIR_JWT")
        );
        assert_eq!(r.header("user-agent"), Some("tributary-snowflake/0.1.0"));
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwt_carries_the_claims_snowflake_documents() {
    let env = env(Scenario::Healthy).await;
    env.harness.collect(config(&env, key_pair())).await.unwrap();
    let request = &env.server.requests()[0];
    let token = request
        .header("authorization")
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    assert_eq!(env.fake.verify_jwt(token), Ok(()));
    let part = |i: usize| -> Value {
        let segment = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    };
    assert_eq!(part(0), json!({"alg": "RS256", "typ": "JWT"}));
    assert_eq!(env.fake.fingerprint(), FINGERPRINT);
    assert_eq!(
        part(1),
        json!({
            "iss": format!("MYORG-MYACCOUNT.TRIBUTARY.{FINGERPRINT}"),
            "sub": "MYORG-MYACCOUNT.TRIBUTARY",
            "iat": NOW,
            "exp": NOW + 59 * 60,
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_locator_loses_its_region_in_the_jwt() {
    let setup = FakeSetup {
        account: "XY12345".into(),
        ..FakeSetup::example()
    };
    let env = env_with(setup, Scenario::Healthy, Limits::default()).await;
    let mut cfg = config(&env, key_pair());
    cfg["account"] = json!("xy12345.us-east-2.aws");
    env.harness.test_connection(cfg).await.unwrap();
    let submissions = env.fake.submissions();
    assert_eq!(submissions.len(), 1);
    assert_eq!(submissions[0].statement, "SELECT CURRENT_VERSION()");
    assert_eq!(submissions[0].body["warehouse"], "MONITOR_WH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_and_programmatic_access_tokens_are_sent_with_their_token_type() {
    let env = env(Scenario::Healthy).await;
    env.harness
        .test_connection(config(
            &env,
            json!({"type": "oauth", "token": "test-oauth-token"}),
        ))
        .await
        .unwrap();
    env.harness
        .test_connection(config(
            &env,
            json!({"type": "programmatic_access_token", "token": "test-pat"}),
        ))
        .await
        .unwrap();
    let requests = env.server.requests();
    let sent: Vec<(Option<&str>, Option<&str>)> = requests
        .iter()
        .map(|r| {
            (
                r.header("authorization"),
                r.header("x-snowflake-authorization-token-type"),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (Some("Bearer test-oauth-token"), Some("OAUTH")),
            (Some("Bearer test-pat"), Some("PROGRAMMATIC_ACCESS_TOKEN")),
        ]
    );

    let err = env
        .harness
        .test_connection(config(&env, json!({"type": "oauth", "token": "nope"})))
        .await
        .unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Auth, "{err}");
    assert!(message.contains("390303"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_from_another_key_or_an_expired_one_is_refused_as_auth() {
    let env = env(Scenario::Healthy).await;
    let other = json!({"type": "key_pair", "user": "TRIBUTARY", "private_key": OTHER_KEY});
    let err = env.harness.collect(config(&env, other)).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Auth, "{err}");
    assert!(message.contains("390144"), "{message}");
    assert_eq!(env.server.requests().len(), 1, "a 401 is not retried");

    // Claims for another user or account do not match the key's owner.
    for (account, user) in [
        ("myorg-myaccount", "SOMEONE"),
        ("otherorg-acct", "TRIBUTARY"),
    ] {
        let mut cfg = config(&env, key_pair());
        cfg["account"] = json!(account);
        cfg["auth"]["user"] = json!(user);
        let err = env.harness.collect(cfg).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Auth, "{err}");
        let requests = env.server.requests();
        let token = &requests.last().unwrap().header("authorization").unwrap()[7..];
        assert!(
            env.fake
                .verify_jwt(token)
                .unwrap_err()
                .starts_with("sub is")
        );
    }

    // The plugin signs with the host's clock, two hours behind the fake's.
    let late = SnowflakeFake::new(
        FakeClock::fixed_unix(NOW + 7_200),
        ScenarioSwitch::default(),
        FakeSetup::example(),
    );
    let late_server = late.clone().start().await;
    let harness = Harness::builder(plugin("snowflake"))
        .now_unix(NOW as u64)
        .allow_host(&late_server.url())
        .build()
        .await
        .unwrap();
    let mut cfg = config(&env, key_pair());
    cfg["base_url"] = json!(late_server.url());
    let err = harness.collect(cfg).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    let token = late_server.requests()[0].header("authorization").unwrap()[7..].to_string();
    assert!(late.verify_jwt(&token).unwrap_err().contains("expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_pkcs8_is_a_config_error_before_any_request() {
    let env = env(Scenario::Healthy).await;
    for (key, says) in [
        (PKCS1_KEY, "PKCS#1"),
        (
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----",
            "PKCS#8",
        ),
    ] {
        let auth = json!({"type": "key_pair", "user": "TRIBUTARY", "private_key": key});
        let err = env.harness.collect(config(&env, auth)).await.unwrap_err();
        let (class, message, _) = connector_error(&err);
        assert_eq!(class, ErrorClass::Config, "{err}");
        assert!(message.contains(says), "{message}");
    }
    assert!(env.server.requests().is_empty());

    // As an environment variable often holds it: `\n` escapes, one line.
    let escaped = TEST_PRIVATE_KEY.trim().replace('\n', "\\n");
    let auth = json!({"type": "key_pair", "user": "TRIBUTARY", "private_key": escaped});
    env.harness
        .test_connection(config(&env, auth))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_patterns_are_bound_and_a_database_name_is_quoted() {
    let env = env(Scenario::Healthy).await;
    let mut cfg = config(&env, key_pair());
    cfg["databases"] = json!([
        {"name": "ANALYTICS", "schemas": ["PUBLIC", "STAGING"], "tables": ["ORD%", "EVENT_"]}
    ]);
    let run = env.harness.collect(cfg.clone()).await.unwrap();
    let keys: Vec<&str> = run
        .report
        .observations
        .iter()
        .map(|o| o.asset.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "ANALYTICS.PUBLIC.ORDERS",
            "ANALYTICS.PUBLIC.ORDERS_V",
            "ANALYTICS.STAGING.EVENTS"
        ]
    );
    let submissions = env.fake.submissions();
    assert_eq!(submissions.len(), 1);
    assert!(
        submissions[0]
            .statement
            .contains("WHERE TABLE_SCHEMA IN (?, ?) AND (TABLE_NAME LIKE ? OR TABLE_NAME LIKE ?)")
    );
    assert_eq!(
        submissions[0].bindings,
        ["PUBLIC", "STAGING", "ORD%", "EVENT_"]
    );

    // A name with a quote stays one identifier; Snowflake says it is unknown.
    cfg["databases"] = json!([{"name": "X\" OR 1=1 --", "schemas": ["PUBLIC"]}]);
    let err = env.harness.collect(cfg).await.unwrap_err();
    let submissions = env.fake.submissions();
    assert!(
        submissions[1]
            .statement
            .contains("FROM \"X\"\" OR 1=1 --\".INFORMATION_SCHEMA.TABLES")
    );
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Config, "{err}");
    let handle = submissions[1].handle.as_deref().unwrap();
    assert!(
        message.contains("Database 'X\" OR 1=1 --' does not exist or not authorized.")
            && message.contains("code 002003")
            && message.contains("SQLSTATE 02000")
            && message.contains(handle),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_queries_give_expected_count_freshness_and_ids_streamed_across_partitions() {
    let env = env(Scenario::Healthy).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({"ANALYTICS.PUBLIC.ORDERS": {
            "expected_count_sql": "SELECT COUNT(*) FROM RAW.LANDING.ORDERS_LANDING",
            "freshness_column": "UPDATED_AT",
            "ids_sql": "SELECT ID FROM ORDERS"
        }}),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let obs = by_asset(&run.report.observations);
    let orders = obs["ANALYTICS.PUBLIC.ORDERS"];
    assert_eq!(orders.counts.expected, Some(2_512));
    assert_eq!(orders.counts.received, Some(2_500));
    // 7 min 0.876543211 s ago, to the nanosecond.
    assert_eq!(orders.freshness, at(NOW - 421, 123_456_789));
    assert_eq!(
        metadata(orders, "freshness_source"),
        Some("MAX(UPDATED_AT)")
    );
    assert_eq!(
        metadata(orders, "last_altered"),
        Some("2026-11-20T09:55:00Z")
    );
    assert_eq!(extra(orders, "ids"), Some(2_500));
    let expected_ids: Vec<String> = (1..=2_500).map(|i| i.to_string()).collect();
    assert_eq!(run.ids["ANALYTICS.PUBLIC.ORDERS"], expected_ids);
    assert_eq!(run.ids.len(), 1);

    let submissions = env.fake.submissions();
    let statements: Vec<&str> = submissions.iter().map(|s| s.statement.as_str()).collect();
    assert_eq!(statements.len(), 5);
    assert_eq!(
        &statements[2..],
        [
            "SELECT COUNT(*) FROM RAW.LANDING.ORDERS_LANDING",
            "SELECT MAX(\"UPDATED_AT\") FROM \"ANALYTICS\".\"PUBLIC\".\"ORDERS\"",
            "SELECT ID FROM ORDERS",
        ]
    );
    for s in &submissions[2..] {
        assert_eq!(
            (&s.body["database"], &s.body["schema"]),
            (&json!("ANALYTICS"), &json!("PUBLIC"))
        );
    }
    // 2,500 ids in partitions of 1,000: partitions 1 and 2 fetched, gzip accepted.
    let ids_handle = submissions[4].handle.clone().unwrap();
    let requests = env.server.requests();
    let gets = statement_gets(&requests);
    let fetched: Vec<(&str, Option<&str>, Option<&str>)> = gets
        .iter()
        .map(|r| {
            (
                r.path.as_str(),
                r.query_param("partition"),
                r.header("accept-encoding"),
            )
        })
        .collect();
    let path = format!("/api/v2/statements/{ids_handle}");
    assert_eq!(
        fetched,
        [
            (path.as_str(), Some("1"), Some("gzip")),
            (path.as_str(), Some("2"), Some("gzip")),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_timestamp_encoding_is_read_to_the_nanosecond() {
    let env = env(Scenario::Healthy).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({
            "ANALYTICS.PUBLIC.CUSTOMERS": {"freshness_column": "LOADED_AT"},
            "ANALYTICS.STAGING.EVENTS": {"freshness_column": "EVENT_TS"},
            "RAW.LANDING.ORDERS_LANDING": {"freshness_column": "LOAD_DATE"}
        }),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let obs = by_asset(&run.report.observations);
    // timestamp_ntz, "seconds.nanos" written as UTC.
    assert_eq!(
        obs["ANALYTICS.PUBLIC.CUSTOMERS"].freshness,
        at(NOW - 45 * 60, 0)
    );
    // timestamp_tz, "seconds.nanos 960" (UTC-8): the epoch part is UTC.
    assert_eq!(
        obs["ANALYTICS.STAGING.EVENTS"].freshness,
        at(NOW - 91, 500_000_000)
    );
    // date, days since 1970-01-01: midnight UTC.
    assert_eq!(
        obs["RAW.LANDING.ORDERS_LANDING"].freshness,
        at(NOW - NOW % 86_400, 0)
    );
    let submitted: Vec<String> = env
        .fake
        .submissions()
        .iter()
        .map(|s| s.statement.clone())
        .collect();
    assert!(submitted.contains(
        &"SELECT MAX(\"EVENT_TS\") FROM \"ANALYTICS\".\"STAGING\".\"EVENTS\"".to_string()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_202_is_polled_at_the_status_url_the_server_gave() {
    let setup = FakeSetup {
        slow_polls: 2,
        ..FakeSetup::example()
    };
    let env = env_with(setup, Scenario::Healthy, Limits::default()).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({"RAW.LANDING.AUDIT_LOG": {"expected_count_sql": "SELECT COUNT(*) FROM AUDIT_LOG"}}),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let obs = by_asset(&run.report.observations);
    assert_eq!(obs["RAW.LANDING.AUDIT_LOG"].counts.expected, Some(77));

    let submissions = env.fake.submissions();
    let count = &submissions[2];
    let handle = count.handle.as_deref().unwrap();
    let request_id = count.request_id.as_deref().unwrap();
    let requests = env.server.requests();
    let polls: Vec<(&str, Option<&str>)> = statement_gets(&requests)
        .iter()
        .map(|r| (r.path.as_str(), r.query.as_deref()))
        .collect();
    let path = format!("/api/v2/statements/{handle}");
    let query = format!("requestId={request_id}");
    // Two 202s, then the result: three polls, each on the URL the 202 gave.
    assert_eq!(polls, vec![(path.as_str(), Some(query.as_str())); 3]);
    assert!(env.fake.cancelled().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_scenario_finishes_when_the_deadline_allows() {
    let setup = FakeSetup {
        slow_polls: 1,
        slow_poll_delay: Duration::from_millis(100),
        ..FakeSetup::example()
    };
    let env = env_with(setup, Scenario::Slow, Limits::default()).await;
    let run = env.harness.collect(config(&env, key_pair())).await.unwrap();
    assert_eq!(run.report.observations.len(), 7);
    let requests = env.server.requests();
    assert_eq!(
        statement_gets(&requests).len(),
        4,
        "two polls per statement"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_scenario_gives_up_at_the_deadline_and_cancels_the_statement() {
    let setup = FakeSetup {
        slow_polls: 100,
        slow_poll_delay: Duration::from_millis(800),
        ..FakeSetup::example()
    };
    let limits = Limits {
        deadline: Duration::from_secs(6),
        ..Limits::default()
    };
    let env = env_with(setup, Scenario::Slow, limits).await;
    let err = env
        .harness
        .collect(config(&env, key_pair()))
        .await
        .unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Transient, "{err}");
    let submissions = env.fake.submissions();
    assert_eq!(submissions.len(), 1);
    let handle = submissions[0].handle.clone().unwrap();
    assert!(message.contains(&handle), "{message}");
    assert_eq!(env.fake.cancelled(), std::slice::from_ref(&handle));
    let cancel = env
        .server
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/cancel"))
        .unwrap();
    assert_eq!(cancel.method, "POST");
    assert_eq!(cancel.path, format!("/api/v2/statements/{handle}/cancel"));
    assert!(
        message.contains("cancelled it, and Snowflake confirmed the cancel"),
        "{message}"
    );
}

/// A statement whose polls hang until the run's work time is up, in a
/// 10 s run, with the cancel answered after `cancel_delay`: the run's error.
async fn hanging_statement_cancelled(cancel_delay: Duration) -> String {
    let setup = FakeSetup {
        slow_polls: 100,
        // Longer than the run: each poll hangs until its timeout.
        slow_poll_delay: Duration::from_secs(30),
        cancel_delay,
        ..FakeSetup::example()
    };
    let limits = Limits {
        deadline: Duration::from_secs(10),
        ..Limits::default()
    };
    let env = env_with(setup, Scenario::Slow, limits).await;
    let err = env
        .harness
        .collect(config(&env, key_pair()))
        .await
        .unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Transient, "{err}");
    let message = message.to_owned();
    let handle = env.fake.submissions()[0].handle.clone().unwrap();
    assert!(message.contains(&handle), "{message}");
    assert_eq!(env.fake.cancelled(), std::slice::from_ref(&handle));
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_at_the_deadline_has_time_of_its_own() {
    // A poll used all the work time; a second-long cancel still fits (it
    // had what was left of the run, 100 ms, before).
    let message = hanging_statement_cancelled(Duration::from_secs(1)).await;
    assert!(
        message.contains("cancelled it, and Snowflake confirmed the cancel"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_that_gets_no_answer_is_not_called_a_cancel() {
    let message = hanging_statement_cancelled(Duration::from_secs(20)).await;
    assert!(
        message.contains("asked Snowflake to cancel it but got no answer"),
        "{message}"
    );
    assert!(
        message.contains("it may run on until its statement timeout (60 s)"),
        "{message}"
    );
    assert!(!message.contains("cancelled it"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_status_url_on_another_origin_is_polled_on_the_checks_own() {
    // Another loopback server, granted too: the plugin must still not send
    // the check's token there because the SQL API named it.
    let elsewhere = TestServer::start(|_| Reply::json(404, json!({"message": "elsewhere"}))).await;
    let setup = FakeSetup {
        slow_polls: 2,
        status_url_origin: Some(elsewhere.url()),
        ..FakeSetup::example()
    };
    let scenario = ScenarioSwitch::new(Scenario::Healthy);
    let fake = SnowflakeFake::new(FakeClock::fixed_unix(NOW), scenario, setup);
    let server = fake.clone().start().await;
    let harness = Harness::builder(plugin("snowflake"))
        .now_unix(NOW as u64)
        .allow_host(&server.url())
        .allow_host(&elsewhere.url())
        .secret(TEST_PRIVATE_KEY)
        .build()
        .await
        .unwrap();
    let mut cfg = config_for(&server, key_pair());
    cfg["assets"] =
        json!({"RAW.LANDING.AUDIT_LOG": {"expected_count_sql": "SELECT COUNT(*) FROM AUDIT_LOG"}});
    let run = harness.collect(cfg).await.unwrap();
    let obs = by_asset(&run.report.observations);
    assert_eq!(obs["RAW.LANDING.AUDIT_LOG"].counts.expected, Some(77));

    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
    let count = &fake.submissions()[2];
    let handle = count.handle.as_deref().unwrap();
    let request_id = count.request_id.as_deref().unwrap();
    let requests = server.requests();
    let polls: Vec<(&str, Option<&str>)> = statement_gets(&requests)
        .iter()
        .map(|r| (r.path.as_str(), r.query.as_deref()))
        .collect();
    let path = format!("/api/v2/statements/{handle}");
    let query = format!("requestId={request_id}");
    // The path and query the server gave, on the configured origin.
    assert_eq!(polls, vec![(path.as_str(), Some(query.as_str())); 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_its_timeout_is_an_error_on_its_table_only() {
    let env = env(Scenario::Healthy).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({"RAW.LANDING.HUGE": {"expected_count_sql": "SELECT COUNT(*) FROM HUGE"}}),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let obs = by_asset(&run.report.observations);
    let huge = obs["RAW.LANDING.HUGE"];
    assert_eq!(huge.counts.expected, None);
    assert_eq!(huge.counts.received, Some(1_000_000_000));
    let handle = env.fake.submissions()[2].handle.clone().unwrap();
    assert_eq!(huge.errors.len(), 1);
    assert_eq!(huge.errors[0].kind, "query");
    assert_eq!(
        huge.errors[0].message,
        format!(
            "expected_count_sql: ran past statement_timeout_secs and was cancelled: \
             Statement reached its statement or warehouse timeout of 60 second(s) and was canceled. \
             (code 000630, SQLSTATE 57014, statement handle {handle})"
        )
    );
    let status = huge.native_status.as_ref().unwrap();
    assert_eq!(
        (status.level, status.label.as_str()),
        (StatusLevel::Error, "query failed")
    );
    assert!(obs["RAW.LANDING.AUDIT_LOG"].errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failing_scenario_reports_the_vanished_table_with_snowflakes_error() {
    let env = env(Scenario::Failing).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({"ANALYTICS.PUBLIC.ORDERS": {"freshness_column": "UPDATED_AT"}}),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let keys: Vec<&str> = run
        .report
        .observations
        .iter()
        .map(|o| o.asset.as_str())
        .collect();
    assert_eq!(keys.len(), 7);
    assert_eq!(
        keys.last(),
        Some(&"ANALYTICS.PUBLIC.ORDERS"),
        "not listed, reported last"
    );
    let orders = by_asset(&run.report.observations)["ANALYTICS.PUBLIC.ORDERS"];
    assert_eq!((orders.counts.received, orders.freshness), (None, None));
    let handle = env.fake.submissions()[2].handle.clone().unwrap();
    let errors: Vec<(&str, &str)> = orders
        .errors
        .iter()
        .map(|e| (e.kind.as_str(), e.message.as_str()))
        .collect();
    let vanished = format!(
        "freshness_column: SQL compilation error:\nObject 'ANALYTICS.PUBLIC.ORDERS' does not exist or not authorized. \
         (code 002003, SQLSTATE 02000, statement handle {handle})"
    );
    assert_eq!(
        errors,
        [
            (
                "missing",
                "not in ANALYTICS.INFORMATION_SCHEMA.TABLES: dropped, renamed, or not visible to the role"
            ),
            ("query", vanished.as_str()),
        ]
    );
    let status = orders.native_status.as_ref().unwrap();
    assert_eq!(
        (status.level, status.label.as_str()),
        (StatusLevel::Error, "missing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compilation_error_in_a_configured_query_is_that_tables_error() {
    let env = env(Scenario::Healthy).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({"ANALYTICS.PUBLIC.CUSTOMERS": {"expected_count_sql": "SELEC COUNT(*) FROM CUSTOMERS"}}),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let customers = by_asset(&run.report.observations)["ANALYTICS.PUBLIC.CUSTOMERS"];
    assert_eq!(customers.counts.received, Some(48_210));
    assert_eq!(customers.errors.len(), 1);
    let message = &customers.errors[0].message;
    assert!(
        message.starts_with("expected_count_sql: SQL compilation error:\nsyntax error line 1 at position 0 unexpected 'SELEC'.")
            && message.contains("code 001003, SQLSTATE 42000"),
        "{message}"
    );
    assert_eq!(
        customers.native_status.as_ref().unwrap().level,
        StatusLevel::Error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_answered_5xx_is_resubmitted_with_the_same_request_id_and_retry() {
    let env = env(Scenario::Healthy).await;
    env.fake.inject([Fault::ServerError(503)]);
    let run = env.harness.collect(config(&env, key_pair())).await.unwrap();
    assert_eq!(run.report.observations.len(), 7);
    let submissions = env.fake.submissions();
    assert_eq!(submissions.len(), 3);
    let (first, again) = (&submissions[0], &submissions[1]);
    assert_eq!(first.request_id, again.request_id);
    assert_eq!((first.retry, again.retry), (false, true));
    // Snowflake answered the resubmit from the statement it already ran.
    assert_eq!(first.handle, again.handle);
    let requests = env.server.requests();
    assert_eq!(
        requests[1].query.as_deref(),
        Some(
            format!(
                "requestId={}&retry=true",
                first.request_id.as_deref().unwrap()
            )
            .as_str()
        )
    );
    assert_eq!(requests[1].body, requests[0].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_for_retry_after_and_the_rate_limited_scenario_gives_up_at_once() {
    let env = env(Scenario::Healthy).await;
    env.fake.inject([Fault::RateLimited(1)]);
    let started = Instant::now();
    env.harness.collect(config(&env, key_pair())).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let submissions = env.fake.submissions();
    assert_eq!(submissions.len(), 3);
    assert_eq!(submissions[0].request_id, submissions[1].request_id);
    assert!(submissions[1].retry);

    // Retry-After: 30 does not fit in the run: transient, with the wait.
    env.scenario.set(Scenario::RateLimited);
    let before = env.server.requests().len();
    let err = env
        .harness
        .collect(config(&env, key_pair()))
        .await
        .unwrap_err();
    let (class, message, retry_after) = connector_error(&err);
    assert_eq!(class, ErrorClass::Transient, "{err}");
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    assert!(message.contains("429"), "{message}");
    assert_eq!(env.server.requests().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unauthorized_scenario_is_an_auth_error() {
    let env = env(Scenario::Unauthorized).await;
    let err = env
        .harness
        .collect(config(&env, key_pair()))
        .await
        .unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Auth, "{err}");
    assert!(message.contains("JWT token is invalid."), "{message}");
    assert_eq!(env.server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_malformed_scenario_is_a_system_error_naming_the_statement() {
    let env = env(Scenario::Malformed).await;
    let err = env
        .harness
        .collect(config(&env, key_pair()))
        .await
        .unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::System, "{err}");
    let handle = env.fake.submissions()[0].handle.clone().unwrap();
    assert!(
        message.contains(&format!(
            "the result set of statement {handle} is malformed: row 0 of partition 0 has 10 cells, rowType has 11 columns"
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stale_scenario_reports_old_freshness() {
    let env = env(Scenario::Stale).await;
    let cfg = with_assets(
        config(&env, key_pair()),
        json!({"ANALYTICS.PUBLIC.CUSTOMERS": {"freshness_column": "LOADED_AT"}}),
    );
    let run = env.harness.collect(cfg).await.unwrap();
    let obs = by_asset(&run.report.observations);
    let three_days = 3 * 86_400;
    assert_eq!(
        obs["ANALYTICS.PUBLIC.ORDERS"].freshness,
        at(NOW - three_days - 300, 0)
    );
    assert_eq!(
        obs["ANALYTICS.PUBLIC.CUSTOMERS"].freshness,
        at(NOW - three_days - 45 * 60, 0)
    );
    assert_eq!(obs["ANALYTICS.PUBLIC.ORDERS"].counts.received, Some(2_500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_tables_and_views_and_test_connection_asks_the_version() {
    let env = env(Scenario::Healthy).await;
    let mut cfg = config(&env, key_pair());
    cfg["databases"] = json!([{"name": "ANALYTICS", "schemas": ["PUBLIC"]}]);
    let assets = env.harness.discover(cfg.clone()).await.unwrap();
    let found: Vec<(&str, &str, Option<&str>)> = assets
        .iter()
        .map(|a| (a.asset.as_str(), a.kind.as_str(), a.description.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "ANALYTICS.PUBLIC.CUSTOMERS",
                "table",
                Some("BASE TABLE, 48210 rows")
            ),
            (
                "ANALYTICS.PUBLIC.ORDERS",
                "table",
                Some("BASE TABLE, 2500 rows")
            ),
            ("ANALYTICS.PUBLIC.ORDERS_V", "view", Some("VIEW")),
        ]
    );
    env.harness.test_connection(cfg).await.unwrap();
    let statements: Vec<String> = env
        .fake
        .submissions()
        .iter()
        .map(|s| s.statement.clone())
        .collect();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[1], "SELECT CURRENT_VERSION()");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_warehouse_and_a_bad_config_are_config_errors() {
    let env = env(Scenario::Healthy).await;
    let mut cfg = config(&env, key_pair());
    cfg["warehouse"] = json!("NO_SUCH_WH");
    let err = env.harness.test_connection(cfg).await.unwrap_err();
    let (class, message, _) = connector_error(&err);
    assert_eq!(class, ErrorClass::Config, "{err}");
    assert!(message.contains("code 000606, SQLSTATE 57P03"), "{message}");

    let before = env.server.requests().len();
    let cases = [
        (
            with_assets(config(&env, key_pair()), json!({"SALES.PUBLIC.X": {}})),
            "database \"SALES\" with schema \"PUBLIC\" is not in `databases`",
        ),
        (
            with_assets(config(&env, key_pair()), json!({"ORDERS": {}})),
            "must be DATABASE.SCHEMA.TABLE",
        ),
        (
            {
                let mut cfg = config(&env, key_pair());
                cfg["warehous"] = json!("MONITOR_WH");
                cfg
            },
            "warehous",
        ),
        (
            {
                let mut cfg = config(&env, key_pair());
                cfg["databases"] = json!([{"name": "ANALYTICS", "schemas": []}]);
                cfg
            },
            "must list at least one schema",
        ),
    ];
    for (cfg, says) in cases {
        let err = env.harness.collect(cfg).await.unwrap_err();
        let (class, message, _) = connector_error(&err);
        assert_eq!(class, ErrorClass::Config, "{err}");
        assert!(message.contains(says), "{message} should say {says}");
    }
    assert_eq!(env.server.requests().len(), before);
}

/// The fake refuses what Snowflake refuses, whoever sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_checks_headers_and_bodies() {
    let fake = SnowflakeFake::new(
        FakeClock::fixed_unix(NOW),
        ScenarioSwitch::default(),
        FakeSetup::example(),
    );
    let request = |headers: &[(&str, &str)], body: &str| Recorded {
        method: "POST".into(),
        path: "/api/v2/statements".into(),
        query: None,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    };
    let good = [
        ("authorization", "Bearer test-oauth-token"),
        ("x-snowflake-authorization-token-type", "OAUTH"),
        ("user-agent", "test/1.0"),
        ("content-type", "application/json"),
    ];
    let ok = fake.handle(&request(&good, r#"{"statement": "SELECT 1"}"#));
    assert_eq!(ok.status, 200);
    let body: Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(body["data"], json!([["1"]]));
    assert_eq!(body["resultSetMetaData"]["rowType"][0]["type"], "fixed");

    let status = |headers: &[(&str, &str)], body: &str| fake.handle(&request(headers, body)).status;
    assert_eq!(
        status(&good[..3], r#"{"statement": "SELECT 1"}"#),
        200,
        "Content-Type may be absent"
    );
    assert_eq!(
        status(&[good[0], good[1], good[3]], "{}"),
        400,
        "User-Agent is required"
    );
    let text = [good[0], good[1], good[2], ("content-type", "text/plain")];
    assert_eq!(status(&text, r#"{"statement": "SELECT 1"}"#), 415);
    assert_eq!(status(&good, "not json"), 400);
    assert_eq!(status(&good[1..], r#"{"statement": "SELECT 1"}"#), 401);
    // Without the token-type header the token is taken for OAuth: a JWT fails.
    let jwt = [("authorization", "Bearer a.b.c"), good[2], good[3]];
    assert_eq!(status(&jwt, r#"{"statement": "SELECT 1"}"#), 401);
    let unknown = fake.handle(&request(
        &good,
        r#"{"statement": "SELECT NOPE FROM \"A\".\"B\".\"C\""}"#,
    ));
    assert_eq!(unknown.status, 422);
    let body: Value = serde_json::from_slice(&unknown.body).unwrap();
    assert_eq!(
        (body["code"].as_str(), body["sqlState"].as_str()),
        (Some("002003"), Some("02000"))
    );
    assert!(body["statementHandle"].is_string());
}

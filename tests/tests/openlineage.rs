//! The OpenLineage receiver end to end: the real `tributary serve` binary on
//! 127.0.0.1, events sent by the real openlineage-python client (configured
//! from its environment, as the README tells users) and real `dbt-ol` events
//! replayed from `tests/fixtures/openlineage/`, what the daemon made of them
//! read back from its SQLite file, its GraphQL API and `/metrics`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tributary::health::{EntityRef, Status};
use tributary::store::Store;
use tributary_tests::kit::{free_port, hex_sha256, serve_ready, served_config_text, stored_runs};

/// The token of `dbt-shop` (jobs `shop/*`), of `airflow` (jobs
/// `airflow/*`), and of the native push check `uploads`.
const DBT_TOKEN: &str = "trol_dbt-shop-token";
const AIRFLOW_TOKEN: &str = "trol_airflow-token";
const PUSH_TOKEN: &str = "trp_uploads-token";
/// Of `globex-bi`, a check of tenant globex whose job reads acme's data.
const GLOBEX_TOKEN: &str = "trol_globex-token";
const CHECK: &str = "dbt-shop";

fn asset(name: &str) -> EntityRef {
    EntityRef::Asset {
        check: CHECK.into(),
        asset: name.into(),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    tributary_tests::repo_root()
        .join("tests/fixtures/openlineage")
        .join(name)
}

/// A `tributary serve` with two OpenLineage checks and a push check.
struct Served {
    child: std::process::Child,
    base: String,
    db_url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut text = served_config_text(dir.path(), port, "");
        text.push_str(&format!(
            r#"
[[checks]]
id = "{CHECK}"
system = "warehouse"
connector = "openlineage"

[checks.openlineage]
jobs = ["shop/*"]

[[checks.openlineage.tokens]]
name = "dbt-ol"
sha256 = "{dbt}"

[[checks]]
id = "airflow"
system = "ingest"
connector = "openlineage"

[checks.openlineage]
jobs = ["airflow/*"]
rate = 1

[[checks.openlineage.tokens]]
name = "airflow"
sha256 = "{airflow}"

[[systems]]
id = "globex-bi"
name = "Globex BI"
kind = "service"

[[systems]]
id = "globex-dash"
name = "Globex dashboards"
kind = "service"

[[flows]]
id = "globex-reports"
tenant = "globex"
name = "Globex reports"
upstream = "globex-bi"
downstream = ["globex-dash"]

[[checks]]
id = "globex-bi"
system = "globex-bi"
connector = "openlineage"

[checks.openlineage]
jobs = ["bi/*"]

[[checks.openlineage.tokens]]
name = "globex"
sha256 = "{globex}"

[[checks]]
id = "uploads"
system = "ingest"
connector = "push"

[[checks.push.tokens]]
name = "app"
sha256 = "{push}"
"#,
            dbt = hex_sha256(DBT_TOKEN),
            airflow = hex_sha256(AIRFLOW_TOKEN),
            push = hex_sha256(PUSH_TOKEN),
            globex = hex_sha256(GLOBEX_TOKEN),
        ));
        let file = dir.path().join("tributary.toml");
        std::fs::write(&file, text).unwrap();
        let base = format!("http://127.0.0.1:{port}");
        Served {
            child: serve_ready(&file, &base).await,
            base,
            db_url: format!("sqlite://{}", dir.path().join("tributary.db").display()),
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `steps` with the openlineage-python client, configured by
    /// `env` only; one answer a step ("ok", or the status and body).
    fn python(&self, env: &[(&str, &str)], steps: &Value) -> Vec<String> {
        let script = tributary_tests::repo_root().join("tests/py/openlineage_send.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .env_remove("OPENLINEAGE_CONFIG")
            .env("OPENLINEAGE_URL", &self.base)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("python3 with openlineage-python");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(steps.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// POSTs `body` to the lineage endpoint as a producer would.
    async fn post(&self, token: Option<&str>, body: Vec<u8>, gzipped: bool) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/api/v1/lineage"))
            .header("content-type", "application/json")
            .body(body);
        if gzipped {
            request = request.header("content-encoding", "gzip");
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        // A body refused by its declared length may meet a reset while it is
        // still being sent (HTTP/1.1 allows the server to close): status 0.
        let r = match request.send().await {
            Ok(r) => r,
            Err(e) => return (0, Value::String(e.to_string())),
        };
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn store(&self) -> Store {
        Store::open(&self.db_url).await.unwrap()
    }

    async fn status(&self, entity: &EntityRef) -> Option<(Status, Vec<String>)> {
        let store = self.store().await;
        let health = store.health(entity).await.unwrap();
        store.close().await;
        health.map(|h| {
            let reasons = h.state.reasons.iter().map(|r| r.message.clone()).collect();
            (h.state.status, reasons)
        })
    }

    async fn runs(&self, check: &str) -> usize {
        stored_runs(&self.db_url, check).await
    }

    async fn graphql(&self, token: &str, query: &str) -> Value {
        let r = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
        body["data"].clone()
    }

    async fn metric(&self, series: &str) -> f64 {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        let text = r.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes)).to_rfc3339()
}

/// The asset's `metadata` as a map, and its lineage, through GraphQL.
async fn asset_view(d: &Served, name: &str) -> Value {
    asset_view_as(d, "viewer-token", name).await
}

/// [`asset_view`] as the API token `token` sees it.
async fn asset_view_as(d: &Served, token: &str, name: &str) -> Value {
    let query = format!(
        r#"{{ check(key: "{CHECK}") {{ assets(first: 100) {{ nodes {{ key counts {{ received }} freshness {{ updatedAt }}
            metadata {{ key value }}
            lineage {{ upstream {{ namespace name asset {{ key }} }} downstream {{ namespace name asset {{ key check {{ key }} }} }} }} }} }} }} }}"#
    );
    let data = d.graphql(token, &query).await;
    data["check"]["assets"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no asset {name}: {data}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_s_events_are_merged_per_run_and_judged() {
    let d = Served::start().await;
    let orders_run = "01930000-0000-7000-8000-000000000001";
    let customers_run = "01930000-0000-7000-8000-000000000002";
    let tests_run = "01930000-0000-7000-8000-000000000003";
    let complete_at = ago(3);
    let orders = |t: &str, rows: Option<u64>, at: &str| {
        json!({"type": t, "run": orders_run, "job": ["shop", "orders"], "time": at,
               "inputs": [["duckdb", "raw.orders"]], "outputs": [["duckdb", "shop.orders", rows]]})
    };
    let steps = json!([
        // Out of order and repeated: RUNNING, COMPLETE, then a late START,
        // the COMPLETE again and another RUNNING.
        orders("RUNNING", Some(5), &ago(5)),
        orders("COMPLETE", Some(42), &complete_at),
        orders("START", None, &ago(6)),
        orders("COMPLETE", Some(42), &complete_at),
        orders("RUNNING", Some(7), &ago(4)),
        // nominalTime on START only; FAIL with errorMessage.
        {"type": "START", "run": customers_run, "job": ["shop", "customers"], "time": ago(2),
         "nominal": "2026-01-01T03:00:00Z",
         "inputs": [["duckdb", "shop.orders"]], "outputs": [["duckdb", "shop.customers", null]]},
        {"type": "FAIL", "run": customers_run, "job": ["shop", "customers"], "time": ago(1),
         "error": "Binder Error: column email not found",
         "inputs": [["duckdb", "shop.orders"]], "outputs": [["duckdb", "shop.customers", null]]},
        // Data quality assertions, as dbt-ol sends tests: on the input.
        {"type": "COMPLETE", "run": tests_run, "job": ["shop", "orders.test"], "time": ago(1),
         "inputs": [["duckdb", "shop.orders"]],
         "assertions": [["duckdb", "shop.orders", "not_null", "id", true],
                        ["duckdb", "shop.orders", "unique", "id", false]]},
        // A job no check maps: answered, ignored.
        {"type": "COMPLETE", "run": "01930000-0000-7000-8000-000000000009",
         "job": ["elsewhere", "nightly"], "time": ago(1), "outputs": [["pg", "x", 1]]},
        // A job another check maps: this token may not feed it.
        {"type": "COMPLETE", "run": "01930000-0000-7000-8000-00000000000a",
         "job": ["airflow", "dag.task"], "time": ago(1), "outputs": [["pg", "y", 1]]},
    ]);
    let answers = d.python(&[("OPENLINEAGE_API_KEY", DBT_TOKEN)], &steps);
    assert_eq!(answers.len(), 10, "{answers:?}");
    assert!(answers[..9].iter().all(|a| a == "ok"), "{answers:?}");
    assert!(
        answers[9].starts_with("403") && answers[9].contains("wrong_check"),
        "{answers:?}"
    );

    // One run per ended run: the duplicate COMPLETE and the events after it
    // stored nothing more.
    assert_eq!(d.runs(CHECK).await, 3);
    let (status, _) = d.status(&asset("shop.orders")).await.unwrap();
    assert_eq!(status, Status::Healthy);
    let orders = asset_view(&d, "shop.orders").await;
    assert_eq!(
        orders["counts"]["received"], 42,
        "COMPLETE's rowCount: {orders}"
    );
    let fresh =
        chrono::DateTime::parse_from_rfc3339(orders["freshness"]["updatedAt"].as_str().unwrap())
            .unwrap();
    let sent = chrono::DateTime::parse_from_rfc3339(&complete_at).unwrap();
    assert!(
        (fresh - sent).num_milliseconds().abs() < 1000,
        "freshness is COMPLETE's eventTime: {orders}"
    );
    assert_eq!(
        orders["lineage"]["upstream"],
        json!([{"namespace": "duckdb", "name": "raw.orders", "asset": null}])
    );
    assert_eq!(orders["lineage"]["downstream"][0]["name"], "shop.customers");
    assert_eq!(
        orders["lineage"]["downstream"][0]["asset"]["key"],
        "shop.customers"
    );
    assert_eq!(
        orders["lineage"]["downstream"][0]["asset"]["check"]["key"],
        CHECK
    );

    // A job of tenant globex reads shop.orders: globex's edge is seen by a
    // token of every tenant, not by acme's.
    let globex = json!([{"type": "COMPLETE", "run": "01930000-0000-7000-8000-000000000005",
        "job": ["bi", "revenue"], "time": ago(1),
        "inputs": [["duckdb", "shop.orders"]], "outputs": [["duckdb", "bi.revenue", 1]]}]);
    assert_eq!(
        d.python(&[("OPENLINEAGE_API_KEY", GLOBEX_TOKEN)], &globex),
        ["ok"]
    );
    let downstream = |v: &Value| -> Vec<String> {
        v["lineage"]["downstream"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = asset_view(&d, "shop.orders").await;
    assert_eq!(downstream(&all), ["bi.revenue", "shop.customers"]);
    let acme = asset_view_as(&d, "acme-admin-token", "shop.orders").await;
    assert_eq!(downstream(&acme), ["shop.customers"]);

    let (status, reasons) = d.status(&asset("shop.customers")).await.unwrap();
    assert_eq!(status, Status::Unhealthy);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Binder Error: column email not found")),
        "{reasons:?}"
    );
    let customers = asset_view(&d, "shop.customers").await;
    assert!(
        customers["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["key"] == "openlineage.nominal_start_time"
                && m["value"] == "2026-01-01T03:00:00.000Z"),
        "nominalTime from START kept with FAIL: {customers}"
    );

    assert_eq!(
        d.status(&asset("shop.orders:not_null(id)"))
            .await
            .unwrap()
            .0,
        Status::Healthy
    );
    let (status, reasons) = d.status(&asset("shop.orders:unique(id)")).await.unwrap();
    assert_eq!(status, Status::Unhealthy, "{reasons:?}");
    assert!(
        d.status(&asset("x")).await.is_none(),
        "the unmapped job stored nothing"
    );
    assert_eq!(d.runs("airflow").await, 0);

    // gzip, as the client sends it with compression: gzip.
    let gz = json!([{"type": "COMPLETE", "run": "01930000-0000-7000-8000-000000000004",
        "job": ["shop", "payments"], "time": ago(0), "outputs": [["duckdb", "shop.payments", 3]]}]);
    let env = [
        ("OPENLINEAGE_URL", ""),
        ("OPENLINEAGE__TRANSPORT__TYPE", "http"),
        ("OPENLINEAGE__TRANSPORT__URL", d.base.as_str()),
        ("OPENLINEAGE__TRANSPORT__AUTH__TYPE", "api_key"),
        ("OPENLINEAGE__TRANSPORT__AUTH__API_KEY", DBT_TOKEN),
        ("OPENLINEAGE__TRANSPORT__COMPRESSION", "gzip"),
    ];
    assert_eq!(d.python(&env, &gz), ["ok"]);
    assert_eq!(
        d.status(&asset("shop.payments")).await.unwrap().0,
        Status::Healthy
    );

    assert_eq!(
        d.metric(
            "tributary_openlineage_events_total{event_type=\"COMPLETE\",outcome=\"accepted\"}"
        )
        .await,
        5.0,
        "orders twice (the repeat answered, not stored), tests, globex's, the gzipped one"
    );
    assert_eq!(
        d.metric("tributary_openlineage_events_total{event_type=\"RUNNING\",outcome=\"accepted\"}")
            .await,
        2.0
    );
    assert_eq!(
        d.metric("tributary_openlineage_events_total{event_type=\"COMPLETE\",outcome=\"ignored\"}")
            .await,
        1.0
    );
    assert_eq!(
        d.metric("tributary_push_refused_total{reason=\"wrong_check\"}")
            .await,
        1.0
    );
}

/// Real `dbt-ol build` events (see tests/fixtures/openlineage/dbt-shop/README.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_dbt_ol_events_give_models_tests_and_lineage() {
    let d = Served::start().await;
    let replay =
        |file: &str| std::fs::read_to_string(fixture(&format!("dbt-shop/{file}"))).unwrap();
    for line in replay("run1-green.ndjson").lines() {
        let (status, body) = d
            .post(Some(DBT_TOKEN), line.as_bytes().to_vec(), false)
            .await;
        assert_eq!(status, 201, "{body}");
    }
    for key in [
        "shop.marts.fct_orders",
        "shop.marts.dim_customers",
        "shop.staging.stg_orders",
    ] {
        assert_eq!(
            d.status(&asset(key)).await.unwrap().0,
            Status::Healthy,
            "{key}"
        );
    }
    assert_eq!(
        d.status(&asset("shop.marts.dim_customers:not_null(email)"))
            .await
            .unwrap()
            .0,
        Status::Healthy
    );
    let fct = asset_view(&d, "shop.marts.fct_orders").await;
    let upstream: Vec<(&str, &str)> = fct["lineage"]["upstream"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["asset"]["key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        upstream,
        [
            ("shop.staging.stg_orders", "shop.staging.stg_orders"),
            ("shop.staging.stg_payments", "shop.staging.stg_payments")
        ]
    );
    assert_eq!(
        fct["lineage"]["downstream"][0]["name"],
        "shop.marts.rpt_daily_revenue"
    );

    // The failing build: fct_orders' FAIL has no outputs; its START named them.
    for line in replay("run2-failures.ndjson").lines() {
        let (status, body) = d
            .post(Some(DBT_TOKEN), line.as_bytes().to_vec(), false)
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, reasons) = d.status(&asset("shop.marts.fct_orders")).await.unwrap();
    assert_eq!(status, Status::Unhealthy, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("FAIL")), "{reasons:?}");
    assert_eq!(
        d.status(&asset("shop.marts.dim_customers:not_null(email)"))
            .await
            .unwrap()
            .0,
        Status::Unhealthy
    );
    assert_eq!(
        d.status(&asset("dbt-run-shop")).await.unwrap().0,
        Status::Unhealthy,
        "the wrapper job's FAIL"
    );
    assert_eq!(
        d.status(&asset("shop.staging.stg_orders")).await.unwrap().0,
        Status::Healthy
    );

    // Replaying a run again stores nothing more.
    let runs = d.runs(CHECK).await;
    let line = replay("run2-failures.ndjson")
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let (status, body) = d.post(Some(DBT_TOKEN), line.into_bytes(), false).await;
    assert_eq!((status, &body["duplicate"]), (201, &json!(true)), "{body}");
    assert_eq!(d.runs(CHECK).await, runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_with_the_push_api_s_answers_and_nothing_stored() {
    let d = Served::start().await;
    let good = json!({"eventType": "COMPLETE", "eventTime": ago(1), "producer": "t",
        "run": {"runId": "01930000-0000-7000-8000-0000000000ff"},
        "job": {"namespace": "shop", "name": "orders"},
        "outputs": [{"namespace": "duckdb", "name": "shop.orders"}]});
    let body = |v: &Value| v.to_string().into_bytes();

    let (status, answer) = d.post(None, body(&good), false).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = d.post(Some("not-a-token"), body(&good), false).await;
    assert_eq!(status, 401);
    let (status, answer) = d.post(Some(PUSH_TOKEN), body(&good), false).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("wrong_check")),
        "{answer}"
    );

    // And the other way: an OpenLineage check takes no native push.
    for path in [
        format!("/push/v1/checks/{CHECK}/reports"),
        format!("/push/v1/beat/{DBT_TOKEN}"),
    ] {
        let r = d
            .http
            .post(d.url(&path))
            .bearer_auth(DBT_TOKEN)
            .json(&json!({"observations": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }

    let (status, answer) = d
        .post(Some(DBT_TOKEN), b"{\"eventType\": ".to_vec(), false)
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["fields"][0]["pointer"], "", "{answer}");
    let mut bad = good.clone();
    bad["eventTime"] = json!("9999-01-01T00:00:00Z");
    bad["run"] = json!({});
    bad["outputs"][0]["outputFacets"] = json!({"outputStatistics": {"rowCount": -3}});
    let (status, answer) = d.post(Some(DBT_TOKEN), body(&bad), false).await;
    assert_eq!(status, 400, "{answer}");
    let pointers: Vec<&str> = answer["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        [
            "/eventTime",
            "/outputs/0/outputFacets/outputStatistics/rowCount",
            "/run/runId"
        ]
    );

    // 5 MiB: a body over it, and a gzip bomb that inflates past it.
    let mut huge = good.clone();
    huge["run"]["facets"] = json!({"spark_logicalPlan": {"plan": "x".repeat(5 << 20)}});
    let (status, answer) = d.post(Some(DBT_TOKEN), body(&huge), false).await;
    assert!(
        status == 0 || (status, answer["error"]["code"].as_str()) == (413, Some("too_large")),
        "{status} {answer}"
    );
    let (status, answer) = d.post(Some(DBT_TOKEN), gzip(&body(&huge)), true).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("too_large")),
        "{answer}"
    );
    // Just under it, gzipped: read, and the big unknown facet dropped.
    let mut big = good.clone();
    big["run"]["facets"] = json!({"spark_logicalPlan": {"plan": "x".repeat(4 << 20)}});
    let (status, answer) = d.post(Some(DBT_TOKEN), gzip(&body(&big)), true).await;
    assert_eq!(status, 201, "{answer}");

    let r = d
        .http
        .post(d.url("/api/v1/lineage"))
        .bearer_auth(DBT_TOKEN)
        .header("content-type", "application/xml")
        .body("<event/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // The airflow check's rate is 1 a second.
    let mut airflow = good.clone();
    airflow["job"] = json!({"namespace": "airflow", "name": "dag.task"});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(d.post(Some(AIRFLOW_TOKEN), body(&airflow), false).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    assert_eq!(
        d.runs(CHECK).await,
        1,
        "only the good event under the limit was stored"
    );
    let store = d.store().await;
    let rows = store
        .latest_observations(&[CHECK.to_owned()])
        .await
        .unwrap();
    store.close().await;
    assert!(
        rows.iter().all(|o| o
            .observation
            .metadata
            .iter()
            .all(|(k, _)| k.starts_with("openlineage."))),
        "no unknown facet is stored: {rows:?}"
    );
    assert!(
        d.metric("tributary_push_refused_total{reason=\"invalid\"}")
            .await
            >= 2.0
    );
    assert!(
        d.metric("tributary_push_refused_total{reason=\"too_large\"}")
            .await
            >= 2.0
    );
}

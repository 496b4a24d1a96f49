//! Push checks end to end: the real `tributary serve` binary, real HTTP on
//! 127.0.0.1, reports, id batches and heartbeats as clients send them, and
//! what the daemon made of them read back from its SQLite file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use plugin_sdk::harness::TestServer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary::health::{EntityRef, Status};
use tributary::store::{Period, Store, Trigger};
use tributary_tests::kit::{
    Fake, config_text, daemon_binary, doc_ids, document_service, eventually,
};

/// The push token of `app-uploads`, and of `other-app` (another check).
const APP_TOKEN: &str = "trp_app-uploads-token";
const OTHER_TOKEN: &str = "trp_other-app-token";
const ORIGIN: &str = "https://app.example.com";
const CHECK: &str = "app-uploads";

fn sha(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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

/// A report of `documents`: `received` of `expected`, with a native status.
fn report(expected: u64, received: u64, level: &str) -> Value {
    json!({
        "observations": [{
            "asset": "documents",
            "kind": "upload",
            "counts": {"expected": expected, "received": received, "errored": 0},
            "native_status": {"level": level, "label": level},
        }]
    })
}

/// A `tributary serve` process on a loopback port with push check
/// `app-uploads` (on system `ingest`, the upstream of flow `docs`) and
/// `other-app`; `push` is added to `app-uploads`' `[checks.push]`.
struct Served {
    child: Option<std::process::Child>,
    base: String,
    file: PathBuf,
    db_url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Served {
    /// With the example plugin's `warehouse-docs` check on `warehouse`,
    /// whose service holds `warehouse` ids, when given.
    async fn start(push: &str, warehouse: Option<&TestServer>) -> Served {
        let warehouse_url = warehouse.map(TestServer::url);
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let checks: Vec<(&str, &str, &str, &str)> = match &warehouse_url {
            Some(url) => vec![(
                "warehouse-docs",
                "warehouse",
                url,
                r#"completeness = { warn = "1", error = "5%" }"#,
            )],
            None => Vec::new(),
        };
        let mut text = config_text(dir.path(), &checks).replace(
            "[storage]",
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]"),
        );
        text.push_str(&format!(
            r#"
[[checks]]
id = "{CHECK}"
system = "ingest"
connector = "push"

[checks.push]
allowed_origins = ["{ORIGIN}"]
{push}

[[checks.push.tokens]]
name = "upload page"
sha256 = "{app}"

[[checks]]
id = "other-app"
system = "ingest"
connector = "push"

[[checks.push.tokens]]
name = "other"
sha256 = "{other}"
"#,
            app = sha(APP_TOKEN),
            other = sha(OTHER_TOKEN),
        ));
        let file = dir.path().join("tributary.toml");
        std::fs::write(&file, text).unwrap();
        let db_url = format!("sqlite://{}", dir.path().join("tributary.db").display());
        let mut served = Served {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            file,
            db_url,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        served.spawn().await;
        served
    }

    async fn spawn(&mut self) {
        let child = std::process::Command::new(daemon_binary())
            .args(["serve", "--config"])
            .arg(&self.file)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = self.http.clone();
        let url = format!("{}/readyz", self.base);
        eventually("the daemon to be ready", || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let r = http.get(&url).send().await.ok()?;
                (r.status() == 200).then_some(())
            }
        })
        .await;
    }

    /// SIGTERM, and waits for the daemon to stop as it does.
    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap();
            assert!(sent.success());
            assert!(child.wait().unwrap().success(), "a clean stop");
        }
    }

    /// SIGKILL: nothing gets to finish.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    async fn store(&self) -> Store {
        Store::open(&self.db_url).await.unwrap()
    }

    async fn status(&self, entity: &EntityRef) -> Option<Status> {
        let store = self.store().await;
        let health = store.health(entity).await.unwrap();
        store.close().await;
        health.map(|h| h.state.status)
    }

    async fn wait_status(&self, entity: &EntityRef, want: Status) -> Vec<String> {
        eventually(&format!("{entity:?} to be {want:?}"), || async {
            let store = self.store().await;
            let health = store.health(entity).await.unwrap();
            store.close().await;
            let health = health.filter(|h| h.state.status == want)?;
            Some(
                health
                    .state
                    .reasons
                    .iter()
                    .map(|r| r.message.clone())
                    .collect(),
            )
        })
        .await
    }

    async fn runs(&self, check: &str) -> Vec<tributary::store::RunRow> {
        let store = self.store().await;
        let runs = store.runs(check, None, 1000).await.unwrap();
        store.close().await;
        runs
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs `body` as JSON to `app-uploads`' reports with `token`.
    async fn report(&self, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(&format!("/push/v1/checks/{CHECK}/reports")))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// The answer to a GraphQL `query` as the viewer, which must be a 200.
    async fn graphql(&self, query: &str) -> Value {
        let r = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth("viewer-token")
            .json(&json!({ "query": query }))
            .send()
            .await
            .unwrap();
        let (status, body) = answer(r).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A heartbeat GET with `token` and `query` (`?status=...`); its status.
    async fn beat(&self, token: &str, query: &str) -> u16 {
        let url = self.url(&format!("/push/v1/beat/{token}{query}"));
        answer(self.http.get(url).send().await.unwrap()).await.0
    }

    async fn metrics(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_report_becomes_health_events_and_history_like_a_plugin_run() {
    let d = Served::start("", None).await;
    let (status, body) = d.report(APP_TOKEN, &report(10, 10, "ok")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["duplicate"], false);
    assert_eq!(d.status(&asset("documents")).await, Some(Status::Healthy));
    assert_eq!(
        d.status(&EntityRef::Flow("docs".into())).await,
        Some(Status::Healthy),
        "the push check's system is the flow's upstream: it rolls up"
    );

    // The vendor's verdict, as a plugin's native status would.
    let (status, _) = d.report(APP_TOKEN, &report(10, 7, "error")).await;
    assert_eq!(status, 202);
    // 202 means stored: no waiting needed.
    assert_eq!(d.status(&asset("documents")).await, Some(Status::Unhealthy));
    let runs = d.runs(CHECK).await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r.trigger == Trigger::Push && r.succeeded())
    );

    let store = d.store().await;
    let events = store.events_after(0, 1000).await.unwrap();
    let of_asset: Vec<(Option<Status>, Status)> = events
        .iter()
        .filter(|e| e.entity == asset("documents"))
        .map(|e| (e.from, e.to))
        .collect();
    assert_eq!(
        of_asset,
        [
            (None, Status::Healthy),
            (Some(Status::Healthy), Status::Unhealthy)
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| e.entity == EntityRef::Tenant("acme".into()) && e.to == Status::Unhealthy),
        "the tenant follows"
    );
    let far = SystemTime::UNIX_EPOCH;
    let day = |store: Store| async move {
        let r = store
            .rollups(
                &asset("documents"),
                Period::Day,
                far,
                SystemTime::now() + Duration::from_secs(86_400),
            )
            .await
            .unwrap();
        store.close().await;
        r
    };
    let before = day(store).await;
    assert_eq!(before.iter().map(|r| r.evaluations).sum::<u64>(), 2);

    // A report older than the latest: history, not health.
    let mut late = report(10, 10, "ok");
    let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    late["at"] = json!(hour_ago.to_rfc3339());
    let (status, body) = d.report(APP_TOKEN, &late).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(d.runs(CHECK).await.len(), 3, "the late report is stored");
    assert_eq!(
        d.status(&asset("documents")).await,
        Some(Status::Unhealthy),
        "an older report does not overrule the latest"
    );
    let after = day(d.store().await).await;
    assert_eq!(
        after.iter().map(|r| r.evaluations).sum::<u64>(),
        3,
        "it counts in the history buckets"
    );
    let store = d.store().await;
    assert_eq!(
        store.events_after(0, 1000).await.unwrap().len(),
        events.len(),
        "and changes no health"
    );
    store.close().await;

    let metrics = d.metrics().await;
    assert_eq!(
        metric(&metrics, "tributary_push_accepted_total{kind=\"report\"}"),
        3.0,
        "{metrics}"
    );

    // The API shows who reported and when.
    let query = r#"{ check(key: "app-uploads") { connector schedule push { tokens { name lastUsedAt } lastReportAt deadline expectEvery } } }"#;
    let body = d.graphql(query).await;
    let push = &body["data"]["check"]["push"];
    assert_eq!(body["data"]["check"]["connector"], "push");
    assert_eq!(body["data"]["check"]["schedule"], "push");
    assert_eq!(push["tokens"][0]["name"], "upload page");
    assert!(push["tokens"][0]["lastUsedAt"].is_string(), "{body}");
    assert!(push["lastReportAt"].is_string(), "{body}");
    assert!(
        push["deadline"].is_null(),
        "no heartbeat configured: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_pushed_in_batches_are_reconciled_only_once_a_report_finishes_the_set() {
    let lost = ["doc-007", "doc-042", "doc-099"];
    let kept: Vec<String> = doc_ids(100)
        .into_iter()
        .filter(|i| !lost.contains(&i.as_str()))
        .collect();
    let warehouse = document_service(Arc::new(Mutex::new(Fake {
        ids: kept,
        ..Fake::default()
    })))
    .await;
    let d = Served::start("", Some(&warehouse)).await;
    let wh = EntityRef::Asset {
        check: "warehouse-docs".into(),
        asset: "documents".into(),
    };
    eventually("the warehouse's first run", || async {
        (!d.runs("warehouse-docs").await.is_empty()).then_some(())
    })
    .await;

    let ids = doc_ids(100);
    let batch = |set: &str| {
        d.http
            .post(d.url(&format!(
                "/push/v1/checks/{CHECK}/assets/documents/ids?set={set}"
            )))
            .bearer_auth(APP_TOKEN)
    };
    // Three batches: NDJSON, a JSON array, gzipped NDJSON.
    let ndjson = |ids: &[String]| {
        ids.iter()
            .map(|i| format!("{}\n", json!(i)))
            .collect::<String>()
    };
    let r = batch("s1")
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&ids[..40]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await.0, 202);
    let r = batch("s1").json(&ids[40..70]).send().await.unwrap();
    let (status, body) = answer(r).await;
    assert_eq!((status, body["total"].clone()), (202, json!(70)));
    let r = batch("s1")
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip(ndjson(&ids[70..]).as_bytes()))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!((status, body["total"].clone()), (202, json!(100)), "{body}");

    let store = d.store().await;
    assert!(
        store
            .reconciliation("docs", "warehouse", "documents")
            .await
            .unwrap()
            .is_none(),
        "an unfinished set is never reconciled"
    );
    store.close().await;

    let mut finish = report(100, 100, "ok");
    finish["ids"] = json!({"documents": "s1"});
    let (status, body) = d.report(APP_TOKEN, &finish).await;
    assert_eq!(status, 202, "{body}");
    let store = d.store().await;
    let rec = store
        .reconciliation("docs", "warehouse", "documents")
        .await
        .unwrap()
        .expect("the finished set is reconciled against the warehouse's ids");
    assert_eq!((rec.expected, rec.received, rec.missing), (100, 97, 3));
    let missing = store
        .missing_ids("docs", "warehouse", "documents", None, 10)
        .await
        .unwrap();
    assert_eq!(missing, lost);
    store.close().await;
    // The warehouse is judged again with the reconciled counts: 3% missing.
    d.wait_status(&wh, Status::Warning).await;

    // A finished set is gone: naming it again is refused.
    let (status, body) = d.report(APP_TOKEN, &finish).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["fields"][0]["pointer"], "/ids/documents");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_push_check_turns_unknown_then_unhealthy_and_a_report_recovers_it_also_across_a_restart()
 {
    let mut d = Served::start("expect_every = \"2s\"\ngrace = \"1s\"", None).await;
    let documents = asset("documents");
    // Before the report is sent: the daemon times it on arrival, later.
    let silent_since = Instant::now();
    let (status, _) = d.report(APP_TOKEN, &report(5, 5, "ok")).await;
    assert_eq!(status, 202);
    assert_eq!(d.status(&documents).await, Some(Status::Healthy));

    let reasons = d.wait_status(&documents, Status::Unknown).await;
    assert!(
        silent_since.elapsed() > Duration::from_secs(3),
        "not before every + grace"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("no report for") && r.contains("expected every 2s")),
        "{reasons:?}"
    );
    let reasons = d.wait_status(&documents, Status::Unhealthy).await;
    assert!(
        silent_since.elapsed() > Duration::from_secs(5),
        "a second report missed"
    );
    assert!(
        reasons.iter().any(|r| r.contains("expected every 2s")),
        "{reasons:?}"
    );

    // A one-line heartbeat from cron recovers it (the beat's own asset too).
    assert_eq!(
        d.beat(APP_TOKEN, "?status=ok&msg=nightly%20export").await,
        202
    );
    assert_eq!(d.status(&asset("heartbeat")).await, Some(Status::Healthy));
    let (status, _) = d.report(APP_TOKEN, &report(5, 5, "ok")).await;
    assert_eq!(status, 202);
    assert_eq!(d.status(&documents).await, Some(Status::Healthy));

    // Down for longer than the deadline: judged at start, with no report.
    d.kill();
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_secs(6) {
        // The deadline passes while nothing runs: there is nothing to poll.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        d.status(&documents).await,
        Some(Status::Healthy),
        "nobody judged it while down"
    );
    d.spawn().await;
    let reasons = d.wait_status(&documents, Status::Unhealthy).await;
    assert!(
        reasons.iter().any(|r| r.contains("no report for")),
        "{reasons:?}"
    );
    let (status, _) = d.report(APP_TOKEN, &report(5, 5, "ok")).await;
    assert_eq!(status, 202);
    assert_eq!(d.status(&documents).await, Some(Status::Healthy));

    // A beat saying error is the vendor's verdict: UNHEALTHY with its message.
    let r = d
        .http
        .post(d.url(&format!(
            "/push/v1/beat/{APP_TOKEN}?status=error&msg=disk%20full"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await.0, 202);
    let reasons = d.wait_status(&asset("heartbeat"), Status::Unhealthy).await;
    assert!(
        reasons.iter().any(|r| r.contains("disk full")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asset_with_its_own_deadline_goes_unknown_then_unhealthy_while_the_others_stay() {
    let d = Served::start(
        "assets = [\"documents\", \"heartbeat\"]\n\n[checks.push.deadlines.heartbeat]\nexpect_every = \"2s\"\ngrace = \"1s\"\n",
        None,
    )
    .await;
    let beat = asset("heartbeat");
    let documents = asset("documents");
    let silent_since = Instant::now();
    assert_eq!(d.beat(APP_TOKEN, "").await, 202);
    let (status, _) = d.report(APP_TOKEN, &report(5, 5, "ok")).await;
    assert_eq!(status, 202);

    // The API shows the asset's own deadline, from its own last report.
    let query = r#"{ check(key: "app-uploads") { push { deadline assetDeadlines { asset expectEvery grace lastReportAt deadline } } } }"#;
    let body = d.graphql(query).await;
    let push = &body["data"]["check"]["push"];
    assert!(
        push["deadline"].is_null(),
        "no check-wide heartbeat: {body}"
    );
    let own = &push["assetDeadlines"][0];
    assert_eq!(
        (&own["asset"], &own["expectEvery"], &own["grace"]),
        (&json!("heartbeat"), &json!("2s"), &json!("1s")),
        "{body}"
    );
    let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        at(&own["deadline"]) - at(&own["lastReportAt"]),
        chrono::Duration::seconds(3),
        "{body}"
    );

    let reasons = d.wait_status(&beat, Status::Unknown).await;
    assert!(
        silent_since.elapsed() > Duration::from_secs(3),
        "not before every + grace"
    );
    assert!(
        reasons.iter().any(|r| r.contains("expected every 2s")),
        "{reasons:?}"
    );
    d.wait_status(&beat, Status::Unhealthy).await;
    assert_eq!(
        d.status(&documents).await,
        Some(Status::Healthy),
        "documents has no deadline: silence says nothing of it"
    );
    assert_eq!(
        d.status(&EntityRef::Check(CHECK.into())).await,
        Some(Status::Unhealthy),
        "the check is as bad as its worst asset"
    );

    assert_eq!(d.beat(APP_TOKEN, "").await, 202);
    assert_eq!(d.status(&beat).await, Some(Status::Healthy));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_last_use_is_kept_across_a_restart() {
    let mut d = Served::start("", None).await;
    async fn last_used(d: &Served) -> Value {
        let query = r#"{ check(key: "app-uploads") { push { tokens { name lastUsedAt } } } }"#;
        d.graphql(query).await["data"]["check"]["push"]["tokens"][0]["lastUsedAt"].clone()
    }
    assert_eq!(last_used(&d).await, Value::Null, "never used");
    let (status, _) = d.report(APP_TOKEN, &report(1, 1, "ok")).await;
    assert_eq!(status, 202);
    let used = last_used(&d).await;
    assert!(used.is_string(), "{used}");

    d.terminate();
    d.spawn().await;
    assert_eq!(last_used(&d).await, used, "as it was before the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_idempotency_key_is_stored_once_also_after_a_restart() {
    let mut d = Served::start("", None).await;
    let send = |d: &Served, key: &str| {
        d.http
            .post(d.url(&format!("/push/v1/checks/{CHECK}/reports")))
            .bearer_auth(APP_TOKEN)
            .header("idempotency-key", key)
            .json(&report(3, 3, "ok"))
            .send()
    };
    let (status, first) = answer(send(&d, "upload-41").await.unwrap()).await;
    assert_eq!((status, first["duplicate"].clone()), (202, json!(false)));
    let (status, again) = answer(send(&d, "upload-41").await.unwrap()).await;
    assert_eq!((status, again["duplicate"].clone()), (202, json!(true)));
    assert_eq!(again["run"], first["run"]);
    assert_eq!(d.runs(CHECK).await.len(), 1);

    d.kill();
    d.spawn().await;
    let (status, after) = answer(send(&d, "upload-41").await.unwrap()).await;
    assert_eq!((status, after["duplicate"].clone()), (202, json!(true)));
    assert_eq!(d.runs(CHECK).await.len(), 1, "never counted twice");
    let (status, other) = answer(send(&d, "upload-42").await.unwrap()).await;
    assert_eq!((status, other["duplicate"].clone()), (202, json!(false)));
    assert_eq!(d.runs(CHECK).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_rate_is_answered_429_with_retry_after() {
    let d = Served::start("rate = 2", None).await;
    let mut refused = None;
    for _ in 0..10 {
        let r = d
            .http
            .post(d.url(&format!("/push/v1/checks/{CHECK}/reports")))
            .bearer_auth(APP_TOKEN)
            .json(&report(1, 1, "ok"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            refused = Some((retry, answer(r).await.1));
            break;
        }
    }
    let (retry, body) = refused.expect("a token sending 10 at once at 2/s is refused");
    assert!(retry >= 1, "{retry}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        d.runs(CHECK).await.len() <= 2,
        "refused requests store nothing"
    );
    // Another token has its own bucket.
    assert_eq!(d.beat(OTHER_TOKEN, "").await, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_an_allowed_origin_reports_with_a_send_beacon_style_request() {
    let d = Served::start("", None).await;
    let reports = d.url(&format!("/push/v1/checks/{CHECK}/reports"));
    let preflight = d
        .http
        .request(reqwest::Method::OPTIONS, &reports)
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("idempotency-key")
    );
    let stranger = d
        .http
        .request(reqwest::Method::OPTIONS, &reports)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    assert!(
        stranger
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // What navigator.sendBeacon(url, string) sends: text/plain, no headers
    // of its own, so the token rides in the query.
    let beacon = d
        .http
        .post(format!("{reports}?token={APP_TOKEN}"))
        .header("origin", ORIGIN)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(report(2, 2, "ok").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(beacon.status(), 202);
    assert_eq!(beacon.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(d.status(&asset("documents")).await, Some(Status::Healthy));
}

/// One malformed push: what it sends and what it must be answered.
struct Bad {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A pointer the answer must name, when the request is invalid.
    pointer: Option<&'static str>,
}

fn bad_report(name: &'static str, body: Value, pointer: &'static str) -> Bad {
    Bad {
        name,
        method: reqwest::Method::POST,
        path: format!("/push/v1/checks/{CHECK}/reports"),
        headers: vec![
            ("authorization", format!("Bearer {APP_TOKEN}")),
            ("content-type", "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
        status: 400,
        code: "invalid",
        pointer: Some(pointer),
    }
}

/// `report(1, 1, "ok")` with its observation changed by `edit`.
fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut r = report(1, 1, "ok");
    edit(&mut r["observations"][0]);
    r
}

fn corpus() -> Vec<Bad> {
    let ok = report(1, 1, "ok").to_string().into_bytes();
    let reports = format!("/push/v1/checks/{CHECK}/reports");
    let ids = format!("/push/v1/checks/{CHECK}/assets/documents/ids?set=s");
    let with =
        |name, headers: Vec<(&'static str, String)>, body: Vec<u8>, status, code, pointer| Bad {
            name,
            method: reqwest::Method::POST,
            path: reports.clone(),
            headers,
            body,
            status,
            code,
            pointer,
        };
    let auth = || ("authorization", format!("Bearer {APP_TOKEN}"));
    let json_type = || ("content-type", "application/json".to_owned());
    let ndjson_type = || ("content-type", "application/x-ndjson".to_owned());
    vec![
        with(
            "not JSON",
            vec![auth(), json_type()],
            b"{observations: [".to_vec(),
            400,
            "invalid",
            Some(""),
        ),
        with(
            "invalid UTF-8",
            vec![auth(), json_type()],
            b"{\"observations\": [\"\xff\xfe\"]}".to_vec(),
            400,
            "invalid",
            Some(""),
        ),
        with(
            "empty body",
            vec![auth(), json_type()],
            Vec::new(),
            400,
            "invalid",
            Some(""),
        ),
        bad_report("an array, not a report", json!([1, 2]), ""),
        bad_report("missing observations", json!({}), ""),
        bad_report(
            "observations not a list",
            json!({"observations": {"a": 1}}),
            "/observations",
        ),
        bad_report(
            "observation without asset",
            edited(|o| {
                o.as_object_mut().unwrap().remove("asset");
            }),
            "/observations/0",
        ),
        bad_report(
            "observation without kind",
            edited(|o| {
                o.as_object_mut().unwrap().remove("kind");
            }),
            "/observations/0",
        ),
        bad_report(
            "observation without counts",
            edited(|o| {
                o.as_object_mut().unwrap().remove("counts");
            }),
            "/observations/0",
        ),
        bad_report(
            "asset a number",
            edited(|o| o["asset"] = json!(7)),
            "/observations/0/asset",
        ),
        bad_report(
            "count a string",
            edited(|o| o["counts"]["received"] = json!("12")),
            "/observations/0/counts/received",
        ),
        bad_report(
            "negative count",
            edited(|o| o["counts"]["received"] = json!(-1)),
            "/observations/0/counts/received",
        ),
        bad_report(
            "count past 2^63",
            edited(|o| o["counts"]["expected"] = json!(10_000_000_000_000_000_000u64)),
            "/observations/0/counts/expected",
        ),
        bad_report(
            "fractional count",
            edited(|o| o["counts"]["errored"] = json!(1.5)),
            "/observations/0/counts/errored",
        ),
        bad_report(
            "freshness in year 9999",
            edited(|o| o["freshness"] = json!("9999-06-01T00:00:00Z")),
            "/observations/0/freshness",
        ),
        bad_report(
            "freshness before 1970",
            edited(|o| o["freshness"] = json!("1969-07-20T20:17:00Z")),
            "/observations/0/freshness",
        ),
        bad_report(
            "freshness not a time",
            edited(|o| o["freshness"] = json!("yesterday")),
            "/observations/0/freshness",
        ),
        bad_report(
            "report time in year 9999",
            {
                let mut r = report(1, 1, "ok");
                r["at"] = json!({"seconds": 253_370_764_800u64});
                r
            },
            "/at",
        ),
        bad_report(
            "unknown native level",
            edited(|o| o["native_status"]["level"] = json!("great")),
            "/observations/0/native_status",
        ),
        bad_report(
            "unknown field",
            edited(|o| o["colour"] = json!("red")),
            "/observations/0",
        ),
        bad_report(
            "asset named twice",
            {
                let mut r = report(1, 1, "ok");
                let o = r["observations"][0].clone();
                r["observations"].as_array_mut().unwrap().push(o);
                r
            },
            "/observations/1/asset",
        ),
        bad_report(
            "asset key over 1024",
            edited(|o| o["asset"] = json!("d".repeat(2000))),
            "/observations/0/asset",
        ),
        bad_report(
            "asset not the check's",
            edited(|o| o["asset"] = json!("payroll")),
            "/observations/0/asset",
        ),
        bad_report(
            "ids for an asset not in the report",
            {
                let mut r = report(1, 1, "ok");
                r["ids"] = json!({"heartbeat": "s"});
                r
            },
            "/ids/heartbeat",
        ),
        bad_report(
            "ids naming a set never sent",
            {
                let mut r = report(1, 1, "ok");
                r["ids"] = json!({"documents": "never"});
                r
            },
            "/ids/documents",
        ),
        bad_report(
            "error total negative",
            edited(|o| o["error_totals"] = json!([{"kind": "parse", "count": -3}])),
            "/observations/0/error_totals/0/count",
        ),
        bad_report(
            "error without message",
            edited(|o| o["errors"] = json!([{"kind": "parse"}])),
            "/observations/0/errors/0",
        ),
        with(
            "100 MB body",
            vec![auth(), json_type()],
            vec![b' '; 100 << 20],
            413,
            "too_large",
            None,
        ),
        with(
            "gzip bomb",
            vec![auth(), json_type(), ("content-encoding", "gzip".into())],
            gzip(&vec![b' '; 64 << 20]),
            413,
            "too_large",
            None,
        ),
        with(
            "gzip that is not",
            vec![auth(), json_type(), ("content-encoding", "gzip".into())],
            ok.clone(),
            400,
            "invalid",
            Some(""),
        ),
        with(
            "brotli",
            vec![auth(), json_type(), ("content-encoding", "br".into())],
            ok.clone(),
            415,
            "unsupported_media_type",
            None,
        ),
        with(
            "XML",
            vec![auth(), ("content-type", "application/xml".into())],
            b"<report/>".to_vec(),
            415,
            "unsupported_media_type",
            None,
        ),
        with(
            "no token",
            vec![json_type()],
            ok.clone(),
            401,
            "unauthenticated",
            None,
        ),
        with(
            "unknown token",
            vec![("authorization", "Bearer trp_guess".into()), json_type()],
            ok.clone(),
            401,
            "unauthenticated",
            None,
        ),
        with(
            "another check's token",
            vec![
                ("authorization", format!("Bearer {OTHER_TOKEN}")),
                json_type(),
            ],
            ok.clone(),
            403,
            "wrong_check",
            None,
        ),
        with(
            "a page of another origin",
            vec![
                auth(),
                json_type(),
                ("origin", "https://evil.example".into()),
            ],
            ok.clone(),
            403,
            "origin_not_allowed",
            None,
        ),
        with(
            "Idempotency-Key too long",
            vec![auth(), json_type(), ("idempotency-key", "k".repeat(300))],
            ok.clone(),
            400,
            "invalid",
            Some("Idempotency-Key"),
        ),
        Bad {
            name: "unknown check",
            path: "/push/v1/checks/nope/reports".into(),
            ..with(
                "",
                vec![auth(), json_type()],
                ok.clone(),
                404,
                "unknown_check",
                None,
            )
        },
        Bad {
            name: "beat with an unknown status",
            method: reqwest::Method::GET,
            path: format!("/push/v1/beat/{APP_TOKEN}?status=maybe"),
            ..with("", vec![], Vec::new(), 400, "invalid", Some("?status"))
        },
        Bad {
            name: "beat with an unknown token",
            method: reqwest::Method::GET,
            path: "/push/v1/beat/trp_guess".into(),
            ..with("", vec![], Vec::new(), 401, "unauthenticated", None)
        },
        Bad {
            name: "ids without a set",
            path: format!("/push/v1/checks/{CHECK}/assets/documents/ids"),
            ..with(
                "",
                vec![auth(), json_type()],
                b"[\"a\"]".to_vec(),
                400,
                "invalid",
                Some("?set"),
            )
        },
        Bad {
            name: "ids of an asset not the check's",
            path: format!("/push/v1/checks/{CHECK}/assets/payroll/ids?set=s"),
            ..with(
                "",
                vec![auth(), json_type()],
                b"[\"a\"]".to_vec(),
                400,
                "invalid",
                Some("{asset}"),
            )
        },
        Bad {
            name: "an id that is a number",
            path: ids.clone(),
            ..with(
                "",
                vec![auth(), json_type()],
                b"[\"a\", 2]".to_vec(),
                400,
                "invalid",
                Some("/1"),
            )
        },
        Bad {
            name: "an NDJSON line that is not a string",
            path: ids.clone(),
            ..with(
                "",
                vec![auth(), ndjson_type()],
                b"\"a\"\n{\"id\": 1}\n".to_vec(),
                400,
                "invalid",
                Some("line 2"),
            )
        },
        Bad {
            name: "an empty id",
            path: ids.clone(),
            ..with(
                "",
                vec![auth(), json_type()],
                b"[\"\"]".to_vec(),
                400,
                "invalid",
                Some("/0"),
            )
        },
        Bad {
            name: "ids with another check's token",
            path: ids.clone(),
            ..with(
                "",
                vec![
                    ("authorization", format!("Bearer {OTHER_TOKEN}")),
                    json_type(),
                ],
                b"[\"a\"]".to_vec(),
                403,
                "wrong_check",
                None,
            )
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pushes_are_refused_with_their_reason_store_nothing_and_leave_the_daemon_working()
{
    let warehouse = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    })))
    .await;
    let mut d = Served::start(
        "rate = 10000\nassets = [\"documents\", \"heartbeat\"]",
        Some(&warehouse),
    )
    .await;
    let corpus = corpus();
    assert!(corpus.len() >= 30);
    let mut wrong = Vec::new();
    for bad in &corpus {
        let mut request = d.http.request(bad.method.clone(), d.url(&bad.path));
        for (name, value) in &bad.headers {
            request = request.header(*name, value);
        }
        let r = request.body(bad.body.clone()).send().await;
        let (status, body) = match r {
            Ok(r) => answer(r).await,
            // Also the 100 MB body: the daemon reads on past its answer
            // (bounded), so the client sees its 413, not a reset.
            Err(e) => {
                wrong.push(format!("{}: no answer ({e})", bad.name));
                continue;
            }
        };
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let pointers: Vec<&str> = body["error"]["fields"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["pointer"].as_str()).collect())
            .unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        if status != bad.status
            || code != bad.code
            || message.is_empty()
            || bad.pointer.is_some_and(|p| !pointers.contains(&p))
        {
            wrong.push(format!(
                "{}: wanted {} {} {:?}, got {status} {body}",
                bad.name, bad.status, bad.code, bad.pointer
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(d.alive(), "the daemon survived the corpus");
    assert!(
        d.runs(CHECK).await.is_empty(),
        "nothing stored from a refused request"
    );
    assert!(d.runs("other-app").await.is_empty());
    let store = d.store().await;
    assert!(store.health(&asset("documents")).await.unwrap().is_none());
    store.close().await;
    let metrics = d.metrics().await;
    let refused: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("tributary_push_refused_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(refused as usize, corpus.len(), "{metrics}");

    // Unaffected: a good push is stored, and the plugin check runs.
    let (status, body) = d.report(APP_TOKEN, &report(1, 1, "ok")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(d.status(&asset("documents")).await, Some(Status::Healthy));
    let runs = d.runs("warehouse-docs").await;
    assert!(runs.first().is_some_and(|r| r.succeeded()), "{runs:?}");
}

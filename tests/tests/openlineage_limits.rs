//! What OpenLineage producers can make the daemon hold, end to end through
//! `tributary serve` on 127.0.0.1: the unfinished runs' byte budgets per
//! run, per check and in all, the answers past them, the isolation of
//! checks, the expiry of abandoned runs, and the daemon's resident memory
//! under a flood (read from `/proc/PID/status`).

use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use tributary::health::EntityRef;
use tributary::store::Store;
use tributary_tests::kit::{
    daemon_binary, eventually, free_port, hex_sha256, served_config_text, stored_runs,
};

/// A check whose producer floods it: 4 MiB for its runs, no rate limit
/// to speak of.
const FLOOD: &str = "trol_flood-token";
/// A check whose producer behaves, beside it.
const STEADY: &str = "trol_steady-token";
/// A check whose runs may hold 64 KiB each.
const GROW: &str = "trol_grow-token";
/// A check whose runs expire after a second unheard of.
const IDLE: &str = "trol_idle-token";

const FLOOD_HELD: u64 = 4 << 20;

struct Served {
    child: Child,
    base: String,
    db_url: String,
    log: std::path::PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn check(id: &str, token: &str, extra: &str) -> String {
    format!(
        r#"
[[checks]]
id = "{id}"
system = "warehouse"
connector = "openlineage"

[checks.openlineage]
jobs = ["{id}/*"]
{extra}

[[checks.openlineage.tokens]]
name = "producer"
sha256 = "{sha}"
"#,
        sha = hex_sha256(token)
    )
}

impl Served {
    async fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut text = served_config_text(dir.path(), port, "openlineage_max_held = \"16MiB\"");
        text.push_str(&check(
            "flood",
            FLOOD,
            &format!("max_held = {FLOOD_HELD}\nrate = 100000"),
        ));
        text.push_str(&check("steady", STEADY, ""));
        text.push_str(&check(
            "grow",
            GROW,
            "max_run_held = \"64KiB\"\nmax_held = \"256KiB\"",
        ));
        text.push_str(&check(
            "idle",
            IDLE,
            "max_held = \"64KiB\"\nrun_idle = \"1s\"\nrate = 100000",
        ));
        let file = dir.path().join("tributary.toml");
        std::fs::write(&file, text).unwrap();
        let log = dir.path().join("daemon.log");
        let child = Command::new(daemon_binary())
            .args(["serve", "--config"])
            .arg(&file)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the daemon");
        let d = Served {
            child,
            base: format!("http://127.0.0.1:{port}"),
            db_url: format!("sqlite://{}", dir.path().join("tributary.db").display()),
            log,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        eventually("the daemon to be ready", || async {
            let r = d.http.get(format!("{}/readyz", d.base)).send().await;
            r.is_ok_and(|r| r.status() == 200).then_some(())
        })
        .await;
        d
    }

    /// POSTs `event`: the status, `Retry-After` and the JSON answer.
    async fn post(&self, token: &str, event: &Value) -> (u16, Option<String>, Value) {
        self.post_raw(token, event.to_string().into_bytes()).await
    }

    async fn post_raw(&self, token: &str, body: Vec<u8>) -> (u16, Option<String>, Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/lineage", self.base))
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = (r.headers().get("retry-after")).map(|v| v.to_str().unwrap().to_owned());
        (status, retry, r.json().await.unwrap())
    }

    async fn metric(&self, series: &str) -> f64 {
        let r = (self.http.get(format!("{}/metrics", self.base)))
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    /// The daemon's resident memory, in bytes: now (`VmRSS`) or at its
    /// peak (`VmHWM`).
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .expect("the field in /proc/PID/status");
        kib * 1024
    }

    async fn store(&self) -> Store {
        Store::open(&self.db_url).await.unwrap()
    }

    async fn runs(&self, check: &str) -> usize {
        stored_runs(&self.db_url, check).await
    }

    async fn has_asset(&self, check: &str, asset: &str) -> bool {
        let store = self.store().await;
        let entity = EntityRef::Asset {
            check: check.into(),
            asset: asset.into(),
        };
        let health = store.health(&entity).await.unwrap();
        store.close().await;
        health.is_some()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A run event of job `<check>/job` naming `outputs` (each with
/// `rowCount` 1).
fn event(t: &str, check: &str, run: &str, outputs: &[String]) -> Value {
    let outputs: Vec<Value> = outputs
        .iter()
        .map(|name| {
            json!({"namespace": "duckdb", "name": name,
                   "outputFacets": {"outputStatistics": {"rowCount": 1}}})
        })
        .collect();
    json!({
        "eventType": t,
        "eventTime": chrono::Utc::now().to_rfc3339(),
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run},
        "job": {"namespace": check, "name": "job"},
        "inputs": [],
        "outputs": outputs,
    })
}

/// `n` dataset names of `len` bytes, distinct by `tag`.
fn names(tag: &str, n: usize, len: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let head = format!("{tag}.{i}.");
            format!("{head}{}", "x".repeat(len.saturating_sub(head.len())))
        })
        .collect()
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_big_runs_is_refused_at_its_check_s_budget_and_others_keep_working() {
    let d = Served::start().await;
    // Warm up the paths a flood takes, so what grows is what is held.
    let warm = event("START", "flood", "warm", &names("warm", 10, 100));
    assert_eq!(d.post(FLOOD, &warm).await.0, 201);
    let before = d.memory("VmRSS");

    // 800 runs, each START naming 200 datasets of 250-byte names (bodies
    // of 66 KB): 40 MB of names alone, ten times the check's budget.
    let (runs, datasets, len) = (800, 200, 250);
    let mut accepted = 0;
    let mut refused = 0;
    for i in 0..runs {
        let run = format!("flood-{i}");
        let e = event("START", "flood", &run, &names(&run, datasets, len));
        let (status, retry, answer) = d.post(FLOOD, &e).await;
        match status {
            201 => accepted += 1,
            503 => {
                assert_eq!(code(&answer), "openlineage_full", "{answer}");
                let message = answer["error"]["message"].as_str().unwrap();
                assert!(message.contains("max_held"), "{message}");
                assert_eq!(
                    retry.as_deref(),
                    Some("5"),
                    "a producer is told when to retry"
                );
                refused += 1;
            }
            other => panic!("{other}: {answer}"),
        }
    }
    let attempted = (runs * datasets * len) as u64;
    assert!(accepted >= 5, "the budget holds some runs: {accepted}");
    assert!(refused >= 600, "the rest are refused: {refused}");
    let held = d.metric("tributary_openlineage_held_bytes").await as u64;
    assert!(
        (FLOOD_HELD / 2..=FLOOD_HELD).contains(&held),
        "held {held} bytes, budget {FLOOD_HELD}"
    );
    // The names of the accepted runs are charged in full (at least).
    assert!(held >= (accepted * datasets * len) as u64, "{held}");
    let grown = d.memory("VmRSS").saturating_sub(before);
    eprintln!(
        "RSS grew {} KiB for {held} bytes held; {attempted} bytes of names were sent",
        grown / 1024
    );
    assert!(
        grown < 8 * FLOOD_HELD,
        "the daemon grew {grown} bytes under a flood of {attempted} bytes of names, budget {FLOOD_HELD}"
    );

    // Another check's producer is not affected: its run is held, ended and
    // stored.
    let outputs = ["steady.orders".to_owned()];
    for t in ["START", "RUNNING", "COMPLETE"] {
        let (status, _, answer) = d.post(STEADY, &event(t, "steady", "s1", &outputs)).await;
        assert_eq!(status, 201, "{t}: {answer}");
    }
    assert_eq!(d.runs("steady").await, 1);
    assert!(d.has_asset("steady", "steady.orders").await);

    // The flood's own runs still end: a COMPLETE frees its run's budget,
    // and the next START is let in.
    let (status, _, answer) = d
        .post(FLOOD, &event("COMPLETE", "flood", "flood-0", &[]))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(d.runs("flood").await, 1);
    assert!(d.has_asset("flood", &names("flood-0", 1, len)[0]).await);
    let e = event("START", "flood", "after", &names("after", 10, 100));
    assert_eq!(d.post(FLOOD, &e).await.0, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_growing_past_its_budget_is_refused_and_its_complete_stores_what_was_held() {
    let d = Served::start().await;
    let run = "g1";
    let start = event("START", "grow", run, &["grow.base".to_owned()]);
    assert_eq!(d.post(GROW, &start).await.0, 201);
    // RUNNING events each add 20 datasets of 200-byte names (~8 KiB held)
    // until the run's 64 KiB are spent.
    let mut batches = Vec::new();
    let refusal = loop {
        let batch = names(&format!("grow.b{}", batches.len()), 20, 200);
        let (status, _, answer) = d.post(GROW, &event("RUNNING", "grow", run, &batch)).await;
        match status {
            201 => batches.push(batch),
            413 => break (batch, answer),
            other => panic!("{other}: {answer}"),
        }
        assert!(batches.len() < 100, "no bound on a run");
    };
    let (refused_batch, answer) = refusal;
    assert_eq!(code(&answer), "run_too_large", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_run_held"), "{message}");
    assert!(batches.len() >= 3, "{} batches held", batches.len());
    // Resending an accepted batch adds nothing, so it is let in.
    let again = event("RUNNING", "grow", run, &batches[0]);
    assert_eq!(d.post(GROW, &again).await.0, 201);
    // Another run of the check has its own budget.
    let other = event("START", "grow", "g2", &names("grow.other", 20, 200));
    assert_eq!(d.post(GROW, &other).await.0, 201);

    // The COMPLETE stores the run as accepted: every held dataset, none of
    // the refused event's.
    let (status, _, answer) = d.post(GROW, &event("COMPLETE", "grow", run, &[])).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(d.runs("grow").await, 1);
    assert!(d.has_asset("grow", "grow.base").await);
    for batch in &batches {
        assert!(d.has_asset("grow", &batch[19]).await, "{}", batch[19]);
    }
    assert!(!d.has_asset("grow", &refused_batch[0]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_runs_expire_free_their_budget_and_lose_nothing_stored() {
    let d = Served::start().await;
    let stored = ["idle.stored".to_owned()];
    for t in ["START", "COMPLETE"] {
        assert_eq!(
            d.post(IDLE, &event(t, "idle", "kept", &stored)).await.0,
            201
        );
    }
    // STARTs that never end fill the check's 64 KiB.
    let mut abandoned = 0;
    loop {
        let run = format!("abandoned-{abandoned}");
        let e = event("START", "idle", &run, &names(&run, 40, 300));
        let (status, _, answer) = d.post(IDLE, &e).await;
        if status == 503 {
            assert_eq!(code(&answer), "openlineage_full", "{answer}");
            break;
        }
        assert_eq!(status, 201, "{answer}");
        abandoned += 1;
        assert!(abandoned < 100, "no bound on the check");
    }
    assert!(abandoned >= 2);
    // A second unheard of, they expire and a new run is let in.
    let fresh = event("START", "idle", "fresh", &names("fresh", 40, 300));
    eventually("the abandoned runs to expire", || async {
        (d.post(IDLE, &fresh).await.0 == 201).then_some(())
    })
    .await;
    // (The oldest expires first, abandoned-0 among them; a slow machine may
    // have let some expire while the others were still being sent.)
    let expired = d.metric("tributary_openlineage_runs_expired_total").await;
    assert!(expired >= 1.0, "{expired} expired");
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(
        log.contains("unfinished OpenLineage runs expired"),
        "the expiry is logged: {log}"
    );
    assert!(!log.contains(IDLE), "no token in the log");
    // What was stored stays; an expired run's COMPLETE stands alone.
    assert_eq!(d.runs("idle").await, 1);
    assert!(d.has_asset("idle", "idle.stored").await);
    let end = event("COMPLETE", "idle", "abandoned-0", &["idle.late".to_owned()]);
    assert_eq!(d.post(IDLE, &end).await.0, 201);
    assert_eq!(d.runs("idle").await, 2);
    assert!(d.has_asset("idle", "idle.late").await);
    assert!(!d.has_asset("idle", &names("abandoned-0", 1, 300)[0]).await);
}

/// The next attacks on what an event makes the daemon hold: each refused
/// with its located reason, and the daemon unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_wide_characters_and_long_columns_are_bounded() {
    let d = Served::start().await;
    // Nested 10,000 deep: in a facet that is not read, skipped without
    // building anything (the event is let in); in a field that is read,
    // refused by the parser's depth limit before anything is built of it.
    let deep = |run_id: &str, facet: &str| {
        format!(
            r#"{{"eventType":"START","eventTime":"{}","run":{{"runId":{run_id},"facets":{{"x":{facet}}}}},"job":{{"namespace":"steady","name":"job"}}}}"#,
            chrono::Utc::now().to_rfc3339(),
        )
    };
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (status, _, answer) = d
        .post_raw(STEADY, deep("\"deep\"", &nested).into_bytes())
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, _, answer) = d.post_raw(STEADY, deep(&nested, "1").into_bytes()).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion"),
        "{answer}"
    );
    let (status, _, _) = d
        .post_raw(
            STEADY,
            deep("\"deep\"", "1").replace("START", "ABORT").into_bytes(),
        )
        .await;
    assert_eq!(status, 201);
    // Names are bounded in bytes, not characters: 300 four-byte characters
    // are over the 1,024 bytes a name may have.
    let wide = "𝔘".repeat(300);
    let (status, _, answer) = d
        .post(STEADY, &event("START", "steady", "wide", &[wide]))
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["pointer"], "/outputs/0/name");
    // So is an assertion's column.
    let mut e = event("START", "steady", "column", &["steady.t".to_owned()]);
    e["outputs"][0]["outputFacets"]["dataQualityAssertions"] = json!({"assertions": [
        {"assertion": "not_null", "column": "c".repeat(5000), "success": true}]});
    let (status, _, answer) = d.post(STEADY, &e).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["fields"][0]["pointer"],
        "/outputs/0/outputFacets/dataQualityAssertions/assertions/0/column"
    );
    // Unknown facets take no budget: a run with a 1 MB facet it does not
    // read holds only its names.
    let mut e = event("START", "steady", "plan", &["steady.t".to_owned()]);
    e["run"]["facets"] = json!({"spark_logicalPlan": {"plan": "p".repeat(1 << 20)}});
    assert_eq!(d.post(STEADY, &e).await.0, 201);
    let held = d.metric("tributary_openlineage_held_bytes").await;
    assert!(held < 4096.0, "{held} bytes held for one small run");
    // 101 inputs and 100 outputs would make 10,100 lineage edges: over the
    // 10,000 taken from one event, none are recorded, and the event is
    // still let in (its run is judged as usual).
    let mut e = event(
        "START",
        "steady",
        "wide-lineage",
        &names("steady.out", 100, 20),
    );
    e["inputs"] = json!(
        names("raw.in", 101, 20)
            .iter()
            .map(|n| json!({"namespace": "duckdb", "name": n}))
            .collect::<Vec<_>>()
    );
    assert_eq!(d.post(STEADY, &e).await.0, 201);
    let store = d.store().await;
    let up = store
        .lineage_upstream("steady", &names("steady.out", 1, 20)[0])
        .await
        .unwrap();
    store.close().await;
    assert!(up.is_empty(), "{} edges recorded", up.len());
    // Facets the report does not read are skipped while the body is
    // parsed, never built: a 4 MB plan of 500,000 small objects (hundreds
    // of MB as a JSON tree) leaves the daemon's peak memory where it was.
    let peak = d.memory("VmHWM");
    let mut e = event("RUNNING", "steady", "plan", &[]);
    e["run"]["facets"] = json!({"spark_logicalPlan": {"plan": "PLAN"}});
    let plan = format!("[{}{{}}]", r#"{"a":1},"#.repeat(500_000));
    let body = e.to_string().replace(r#""PLAN""#, &plan);
    for _ in 0..3 {
        let (status, _, answer) = d.post_raw(STEADY, body.clone().into_bytes()).await;
        assert_eq!(status, 201, "{answer}");
    }
    let grown = d.memory("VmHWM").saturating_sub(peak);
    eprintln!(
        "peak RSS grew {} KiB reading three events of {} bytes",
        grown / 1024,
        body.len()
    );
    assert!(grown < 64 << 20, "peak RSS grew {grown} bytes");
    // The daemon still answers.
    let ok = event("COMPLETE", "steady", "plan", &[]);
    assert_eq!(d.post(STEADY, &ok).await.0, 201);
    assert!(d.has_asset("steady", "steady.t").await);
}

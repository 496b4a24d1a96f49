//! The write path end to end, as an attacker would try it: the real probe
//! plugin returns crafted reports (duplicates, NUL, huge numbers and keys,
//! times out of range) and echoes credentials a real HTTP service on
//! 127.0.0.1 sent back; the daemon stores on a SQLite file or a Postgres
//! schema. Every good run must be stored, no secret may be found anywhere
//! (logs, tables, API answers, /metrics), and nothing may panic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Once};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use plugin_sdk::harness::{Recorded, Reply, TestServer};
use proptest::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary::clock::SystemClock;
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::health::EntityRef;
use tributary::plugin::{HostConfig, PluginHost};
use tributary::service::{Runs, Service};
use tributary::store::Store;
use tributary::store::testing::PgScratch;
use tributary_tests::gql::Client;
use tributary_tests::kit::Daemon;
use tributary_tests::logs::Captured;
use tributary_tests::plugin;

const ADMIN: &str = "write-path-admin";

static LOGS: LazyLock<Captured> = LazyLock::new(Captured::default);

/// Installs the capturing subscriber once: TRACE for everything but the
/// compiler's own chatter.
fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "trace,cranelift_codegen=off,cranelift_frontend=off,regalloc2=off,\
             wasmtime_cranelift=off,wasmtime_environ=off",
        );
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(LOGS.clone())
            .with_ansi(false)
            .init();
    });
}

fn logs() -> String {
    LOGS.text()
}

/// A config with tenant `acme`, flow `f` from `up` to `down`, an admin token
/// and `checks` (TOML of `[[checks]]` tables, probe checks on `up`).
fn config_text(dir: &Path, checks: &str) -> String {
    let hash: String = Sha256::digest(ADMIN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        r#"
plugins_dir = "{plugins}"
data_dir = "{data}"

[[api.tokens]]
name = "admin"
sha256 = "{hash}"
role = "admin"

[storage]
url = "sqlite://{db}"

[[tenants]]
id = "acme"
name = "Acme"

[[systems]]
id = "up"
name = "Up"
kind = "service"

[[systems]]
id = "down"
name = "Down"
kind = "service"

[[flows]]
id = "f"
tenant = "acme"
name = "F"
upstream = "up"
downstream = ["down"]

{checks}
"#,
        plugins = plugin("probe").parent().unwrap().display(),
        data = dir.join("data").display(),
        db = dir.join("tributary.db").display(),
    )
}

/// A probe check on `up`, its `config` an inline TOML table.
fn check(id: &str, config: &str, grants: &str) -> String {
    format!(
        "[[checks]]\nid = \"{id}\"\nsystem = \"up\"\nconnector = \"probe\"\n\
         schedule = {{ every = \"1h\" }}\ntimeout = \"10s\"\ngrants = {{ {grants} }}\n\
         config = {config}\n\n"
    )
}

/// Starts the daemon core on `text` with the store at `url` (the config's
/// own SQLite file when `None`); runs happen only when asked.
async fn start(dir: tempfile::TempDir, text: &str, url: Option<&str>) -> Daemon {
    capture_logs();
    let clock: tributary::clock::SharedClock = Arc::new(SystemClock);
    let mut host_config = HostConfig::new(dir.path().join("cache"));
    host_config.clock = clock.clone();
    let host = PluginHost::new(host_config).unwrap();
    let probe = host.load(plugin("probe")).await.unwrap();
    let schemas = BTreeMap::from([(
        "probe".to_owned(),
        serde_json::from_str(&probe.descriptor().config_schema).unwrap(),
    )]);
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, text).unwrap();
    let config =
        parse_with(text, &file, &schemas, Options::default()).unwrap_or_else(|e| panic!("{e}"));
    let url = url.map_or_else(|| config.storage.url.clone(), str::to_owned);
    let store = Store::open(&url).await.unwrap();
    let bus = EventBus::default();
    let service = Service::start(
        config,
        vec![probe],
        store.clone(),
        bus.clone(),
        clock.clone(),
        Runs::OnDemand,
    )
    .await
    .unwrap();
    Daemon {
        service: Arc::new(service),
        store,
        bus,
        clock,
        host,
        config_file: file,
        dir,
    }
}

/// Runs every check in `checks` at once, `rounds` times, and waits until
/// each has that many runs stored.
async fn run_all(d: &Daemon, checks: &[&str], rounds: usize) {
    for _ in 0..rounds {
        let runs = checks.iter().map(|c| d.service.run_once(c));
        for result in futures_util::future::join_all(runs).await {
            result.unwrap();
        }
    }
    for check in checks {
        d.wait_runs(check, rounds).await;
    }
}

/// A crafted report for the probe's `report` mode, written where the check
/// reads it.
fn write_report(dir: &Path, name: &str, report: &Value) -> String {
    std::fs::write(dir.join(name), report.to_string()).unwrap();
    format!("/data/{name}")
}

fn report_check(id: &str, reports: &Path, report: &Value) -> String {
    let file = write_report(reports, &format!("{id}.json"), report);
    check(
        id,
        &format!("{{ mode = \"report\", report_file = \"{file}\" }}"),
        &format!("read_dir = \"{}\"", reports.display()),
    )
}

/// Makes the database refuse any observation of the asset `poison`: a
/// fault no normalisation can foresee, which only the writer's split of a
/// refused batch can confine to its run.
async fn poison(store: &Store, url: &str) {
    use sqlx::{Connection, Executor};
    match store.backend() {
        tributary::store::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            conn.execute(
                "CREATE TRIGGER poison BEFORE INSERT ON observations WHEN NEW.asset = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned asset'); END",
            )
            .await
            .unwrap();
        }
        tributary::store::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            conn.execute(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 IF NEW.asset = 'poison' THEN RAISE EXCEPTION 'poisoned asset'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER poison BEFORE INSERT ON observations \
                 FOR EACH ROW EXECUTE FUNCTION poison()",
            )
            .await
            .unwrap();
        }
    }
}

const ROUNDS: usize = 3;

/// Good checks beside hostile ones, all run at once, several times: every
/// good run is stored; each hostile run is stored as failed with its reason,
/// or normalised and stored.
async fn hostile_beside_good(url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let obs = |asset: &str| json!({"asset": asset, "received": 1});
    let mut checks = check("good-ok", "{ mode = \"ok\" }", "");
    checks += &report_check(
        "good-report",
        &reports,
        &json!({"observations": [obs("orders"), obs("customers")]}),
    );
    checks += &report_check(
        "duplicate",
        &reports,
        &json!({"observations": [obs("x"), obs("y"), obs("x")]}),
    );
    checks += &report_check(
        "long-key",
        &reports,
        &json!({"observations": [obs(&"k".repeat(1 << 20))]}),
    );
    let nul = "a\u{0}b";
    checks += &report_check(
        "nul",
        &reports,
        &json!({"observations": [{
            "asset": nul, "kind": nul, "received": 1,
            "native": {"level": "warn", "label": nul, "message": nul},
            "errors": [{"kind": nul, "message": nul, "document_id": nul, "log_link": nul}],
            "totals": [[nul, 1]], "metadata": [[nul, nul]], "extras": [[nul, 1]],
            "last_received": {"id": nul}
        }]}),
    );
    checks += &report_check(
        "huge",
        &reports,
        &json!({"observations": [{
            "asset": "huge",
            "expected": u64::MAX, "received": u64::MAX,
            "freshness": [i64::MIN, u32::MAX],
            "last_received": {"id": "z", "at": [i64::MAX, u32::MAX]},
            "errors": [{"kind": "k", "message": "m", "at": [i64::MAX, 0]}],
            "totals": [["a", u64::MAX], ["b", u64::MAX], ["a", u64::MAX]],
            "metadata": (0..5000).map(|i| json!([format!("k{i}"), "v"])).collect::<Vec<_>>()
        }, {
            "asset": "future", "received": 1, "freshness": [253_402_300_800i64 * 10, 0]
        }]}),
    );
    checks += &report_check(
        "poisoned",
        &reports,
        &json!({"observations": [obs("fine"), obs("poison")]}),
    );
    let text = config_text(dir.path(), &checks);
    let d = start(dir, &text, url).await;
    let store_url = url.map_or_else(
        || d.service.loaded().config.storage.url.clone(),
        str::to_owned,
    );
    poison(&d.store, &store_url).await;

    let all = [
        "good-ok",
        "good-report",
        "duplicate",
        "long-key",
        "nul",
        "huge",
        "poisoned",
    ];
    run_all(&d, &all, ROUNDS).await;

    for good in ["good-ok", "good-report", "nul", "huge"] {
        let runs = d.store.runs(good, None, 100).await.unwrap();
        assert_eq!(runs.len(), ROUNDS, "{good}");
        for run in &runs {
            assert!(run.succeeded(), "{good}: {:?}", run.failure);
        }
    }
    let failed = |check: &'static str, says: &'static str| {
        let store = d.store.clone();
        async move {
            let runs = store.runs(check, None, 100).await.unwrap();
            assert_eq!(runs.len(), ROUNDS, "{check}");
            for run in runs {
                let message = run.failure.expect("failed").message;
                assert!(message.contains(says), "{check}: {message}");
                assert!(message.len() < 1000, "{check}: the reason is short");
            }
        }
    };
    failed(
        "duplicate",
        "the report names asset \"x\" twice (observations 0 and 2)",
    )
    .await;
    failed(
        "long-key",
        "the asset key is 1048576 bytes, over the limit of 1024",
    )
    .await;
    failed("poisoned", "the database refused this run's data").await;
    assert!(
        d.store
            .asset_observations("poisoned", "fine", 1)
            .await
            .unwrap()
            .is_empty(),
        "a refused run keeps nothing"
    );

    let nul_row = d
        .store
        .asset_observations("nul", "a\u{FFFD}b", 1)
        .await
        .unwrap()
        .pop()
        .expect("the NUL asset is stored under its normalised key")
        .observation;
    assert_eq!(nul_row.native.unwrap().label, "a\u{FFFD}b");
    assert_eq!(
        nul_row.metadata,
        [("a\u{FFFD}b".to_owned(), "a\u{FFFD}b".to_owned())]
    );

    let huge = d
        .store
        .asset_observations("huge", "huge", 1)
        .await
        .unwrap()
        .pop()
        .unwrap()
        .observation;
    assert_eq!(huge.expected, Some(i64::MAX as u64));
    assert_eq!(
        huge.errored,
        Some(i64::MAX as u64),
        "totals summed, saturated"
    );
    assert_eq!(huge.freshness, Some(std::time::UNIX_EPOCH));
    assert_eq!(huge.metadata.len(), 256, "metadata capped");

    // The API serves all of it; reading an asset whose times were out of
    // range does not panic a worker.
    let api = Client::new(d.serve_api().await);
    for check in ["huge", "nul", "poisoned"] {
        let answer = api
            .query(
                Some(ADMIN),
                "query($k: String!) { check(key: $k) { health { status reasons { message } }
                   runs(first: 5) { nodes { outcome errorMessage startedAt } }
                   assets(first: 10) { nodes { key observedAt
                     freshness { updatedAt ageSeconds } counts { expected received errored missing }
                     lastReceived { id at } health { status reasons { message } }
                     errors(first: 5) { nodes { kind message at observedAt } } } } } }",
                json!({"k": check}),
            )
            .await;
        let data = answer.data();
        assert!(!data["check"].is_null(), "{check}: {data}");
    }
    d.service.stop(std::time::Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_reports_fail_only_their_own_runs_on_sqlite() {
    hostile_beside_good(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_reports_fail_only_their_own_runs_on_postgres() {
    let scratch = PgScratch::new("write_path")
        .await
        .expect("Postgres on 127.0.0.1:5432 (see README: Tests)");
    hostile_beside_good(Some(&scratch.url)).await;
    scratch.drop_schema().await.unwrap();
}

/// A 50 MB error message with a newline and a terminal escape in it is
/// stored once, bounded, and carried by health reasons and the log as a
/// short line with its control characters escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_message_is_stored_once_bounded_and_escaped_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let part = "boom\n2026-01-01T00:00:00Z  INFO forged: \u{1b}[31mred ";
    let repeat = (50 << 20) / part.len();
    let checks = check(
        "loud",
        &format!(
            "{{ mode = \"fail\", class = \"auth\", message = {}, repeat = {repeat} }}",
            serde_json::to_string(part).unwrap()
        ),
        "",
    )
    .replace(
        "timeout = \"10s\"",
        "timeout = \"10s\"\nlimits = { memory = \"512MiB\" }",
    );
    let text = config_text(dir.path(), &checks);
    let d = start(dir, &text, None).await;
    run_all(&d, &["loud"], 1).await;

    let run = d.store.runs("loud", None, 1).await.unwrap().pop().unwrap();
    let message = run.failure.unwrap().message;
    assert!(message.starts_with("boom\n"), "stored as said");
    assert!(
        message.len() <= 64 * 1024,
        "stored bounded: {} bytes",
        message.len()
    );
    let mut reasons = Vec::new();
    for entity in [
        EntityRef::Check("loud".into()),
        EntityRef::System("up".into()),
        EntityRef::Flow("f".into()),
        EntityRef::Tenant("acme".into()),
    ] {
        let health = d.store.health(&entity).await.unwrap().unwrap();
        reasons.extend(health.state.reasons.into_iter().map(|r| r.message));
    }
    assert!(!reasons.is_empty());
    for reason in &reasons {
        assert!(reason.len() < 600, "a reason of {} bytes", reason.len());
        assert!(reason.contains("boom\\n2026"), "escaped: {reason}");
        assert!(!reason.contains(['\n', '\u{1b}']), "{reason}");
    }
    d.service.stop(std::time::Duration::from_secs(5)).await;
    let logs = logs();
    let line = logs
        .lines()
        .find(|l| l.contains("run failed") && l.contains("check=loud"))
        .expect("the failure is logged");
    assert!(line.len() < 1000, "a log line of {} bytes", line.len());
    assert!(!line.contains('\u{1b}'));
    assert!(
        !logs
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00Z  INFO forged")),
        "no forged log line"
    );
}

/// Every form in which a secret could come back from a service.
fn forms(secret: &str, user: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap();
    let url: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![
        secret.to_owned(),
        json[1..json.len() - 1].to_owned(),
        url.clone(),
        url.replace('+', "%20"),
        STANDARD.encode(secret),
        STANDARD.encode(format!("{user}:{secret}")),
    ]
}

/// A service that echoes the credentials it was sent: in a 401 body on
/// `/deny`, in a 200 body on `/echo`, in every form a careless API would.
async fn echo_service() -> TestServer {
    TestServer::start(|req: &Recorded| {
        let auth = req.header("authorization").unwrap_or("").to_owned();
        let credential = match auth.split_once(' ') {
            Some(("Bearer", token)) => token.to_owned(),
            Some(("Basic", encoded)) => {
                String::from_utf8_lossy(&STANDARD.decode(encoded).unwrap_or_default()).into_owned()
            }
            _ => String::new(),
        };
        let url: String = form_urlencoded::byte_serialize(credential.as_bytes()).collect();
        let body = json!({
            "error": format!("bad credentials {credential}"),
            "authorization": auth,
            "credential": credential,
            "url": format!("https://example.invalid/?c={url}"),
            "base64": STANDARD.encode(&credential),
        });
        let status = if req.path == "/deny" { 401 } else { 200 };
        Reply::json(status, body)
    })
    .await
}

/// Everything in every table of the SQLite file, as text.
async fn dump(url: &str) -> String {
    use sqlx::{Column, Connection, Row, ValueRef};
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut out = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for row in rows {
            for (i, column) in row.columns().iter().enumerate() {
                let raw = row.try_get_raw(i).unwrap();
                if raw.is_null() {
                    continue;
                }
                let text = row
                    .try_get::<String, _>(i)
                    .or_else(|_| {
                        row.try_get::<Vec<u8>, _>(i)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                    })
                    .or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string()))
                    .unwrap_or_default();
                out.push_str(&format!("{table}.{}={text}\n", column.name()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_echoed_by_a_service_are_found_nowhere() {
    // Visible ASCII (it goes in a header), with what URL and JSON encoders
    // escape.
    let token = "tok-Zq8#x/y+\"secret\\1";
    let password = "p@ss w0rd/ü:42";
    let tenant = "tenant-secret-7741";
    let wrong = "not-a-token-6655";
    // SAFETY: set before the daemon starts, read only by it.
    unsafe {
        std::env::set_var("WRITE_PATH_TOKEN", token);
        std::env::set_var("WRITE_PATH_TENANT", tenant);
        std::env::set_var("WRITE_PATH_WRONG", wrong);
    }
    let service = echo_service().await;
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let grant = format!("allowed_hosts = [\"{}\"]", service.url());
    let url = service.url();
    let pw = password_file.display();
    let mut checks = String::new();
    for (id, path, auth) in [
        (
            "bearer-401",
            "deny",
            "token = { env = \"WRITE_PATH_TOKEN\" }".to_owned(),
        ),
        (
            "bearer-200",
            "echo",
            "token = { env = \"WRITE_PATH_TOKEN\" }".to_owned(),
        ),
        (
            "basic-401",
            "deny",
            format!("user = \"svc\", password = {{ file = \"{pw}\" }}"),
        ),
        (
            "basic-200",
            "echo",
            format!("user = \"svc\", password = {{ file = \"{pw}\" }}"),
        ),
    ] {
        checks += &check(
            id,
            &format!(
                "{{ mode = \"http\", url = \"{url}/{path}\", echo = true, \
                 tenant = {{ env = \"WRITE_PATH_TENANT\" }}, {auth} }}"
            ),
            &grant,
        );
    }
    checks += &check(
        "bad-pattern",
        &format!(
            "{{ mode = \"http\", url = \"{url}/echo\", token = {{ env = \"WRITE_PATH_WRONG\" }} }}"
        ),
        &grant,
    );
    let text = config_text(dir.path(), &checks);
    let d = start(dir, &text, None).await;
    let all = [
        "bearer-401",
        "bearer-200",
        "basic-401",
        "basic-200",
        "bad-pattern",
    ];
    run_all(&d, &all, 1).await;

    // The runs did what the test means: the service saw the secrets and
    // echoed them; the failures say why without them.
    assert!(
        service
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {token}"))),
        "the service was sent the token"
    );
    for (check, says) in [
        ("bearer-401", "HTTP 401"),
        ("basic-401", "HTTP 401"),
        ("bad-pattern", "does not match the pattern \"^tok-\""),
    ] {
        let run = d.store.runs(check, None, 1).await.unwrap().pop().unwrap();
        let message = run.failure.expect("failed").message;
        assert!(message.contains(says), "{check}: {message}");
        assert!(
            message.contains("[REDACTED]") || check == "bad-pattern",
            "{check}: {message}"
        );
    }
    let wrong_run = d
        .store
        .runs("bad-pattern", None, 1)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(
        wrong_run
            .failure
            .unwrap()
            .message
            .contains("the secret from environment variable WRITE_PATH_WRONG")
    );
    for check in ["bearer-200", "basic-200"] {
        let run = d.store.runs(check, None, 1).await.unwrap().pop().unwrap();
        assert!(run.succeeded(), "{check}: {:?}", run.failure);
    }

    // Every place a secret could end up.
    let api = Client::new(d.serve_api().await);
    let mut answers = String::new();
    for check in all {
        let answer = api
            .query(
                Some(ADMIN),
                "query($k: String!) { check(key: $k) { health { reasons { message } }
                   runs(first: 5) { nodes { errorMessage } }
                   assets(first: 10) { nodes { key health { reasons { message } }
                     errors(first: 5) { nodes { message documentId logLink } } } } } }",
                json!({"k": check}),
            )
            .await;
        answers.push_str(&answer.text);
    }
    for query in [
        "{ tenant(key: \"acme\") { health { reasons { message } }
             flows(first: 5) { nodes { health { reasons { message } }
               upstream { health { reasons { message } } } } } } }",
        "{ healthEvents(first: 100) { nodes { entityKey reasons { message } } } }",
    ] {
        answers.push_str(&api.query(Some(ADMIN), query, json!({})).await.text);
    }
    answers.push_str(&api.get("/metrics").await.text);
    assert!(
        answers.contains("[REDACTED]"),
        "the echoes reached the API, masked"
    );
    // The tenant given as a secret named the asset: masked there too.
    assert!(
        d.store
            .health(&EntityRef::Asset {
                check: "bearer-200".into(),
                asset: "probe/[REDACTED]".into()
            })
            .await
            .unwrap()
            .is_some()
    );
    let db = dump(&d.service.loaded().config.storage.url).await;
    assert!(db.contains("[REDACTED]"), "the echoes were stored, masked");
    d.service.stop(std::time::Duration::from_secs(5)).await;
    let logs = logs();
    assert!(logs.contains("run failed"), "the failures were logged");

    for (secret, user) in [(token, ""), (password, "svc"), (tenant, ""), (wrong, "")] {
        for form in forms(secret, user) {
            for (place, text) in [
                ("the API", &answers),
                ("the database", &db),
                ("the logs", &logs),
            ] {
                if let Some(at) = text.find(&form) {
                    let start = at.saturating_sub(200);
                    panic!(
                        "{form:?} (a form of a secret) found in {place}: ...{}...",
                        text.get(start..(at + form.len() + 100).min(text.len()))
                            .unwrap_or(&form)
                    );
                }
            }
        }
    }
}

/// A random crafted report: values a hostile plugin would try first.
fn hostile_report() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        Just(String::new()),
        Just("\u{0}".to_owned()),
        Just("x".repeat(5000)),
        Just("\u{1b}[31m\nforged".to_owned()),
        "[a-c]{1,3}",
        ".{0,8}",
    ];
    let stamp = prop_oneof![
        Just(json!(null)),
        (any::<i64>(), any::<u32>()).prop_map(|(s, n)| json!([s, n])),
        Just(json!([i64::MIN, 0])),
        Just(json!([i64::MAX, u32::MAX])),
        (0i64..4_000_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| json!([s, n])),
    ];
    let count = prop_oneof![
        Just(json!(null)),
        any::<u64>().prop_map(|n| json!(n)),
        Just(json!(u64::MAX)),
        (0u64..1000).prop_map(|n| json!(n)),
    ];
    let observation = (
        text.clone(),
        (count.clone(), count.clone(), count.clone()),
        stamp.clone(),
        (text.clone(), stamp.clone()),
        proptest::collection::vec((text.clone(), any::<u64>()), 0..3),
        proptest::option::of((text.clone(), text.clone())),
        proptest::collection::vec((text.clone(), text.clone(), stamp), 0..3),
    )
        .prop_map(
            |(asset, (expected, received, errored), freshness, (id, at), totals, native, errors)| {
                json!({
                    "asset": asset, "expected": expected, "received": received,
                    "errored": errored, "freshness": freshness,
                    "last_received": {"id": id, "at": at},
                    "totals": totals,
                    "native": native.map(|(label, message)| json!({"level": "error", "label": label, "message": message})),
                    "errors": errors.into_iter().map(|(kind, message, at)| json!({"kind": kind, "message": message, "at": at})).collect::<Vec<_>>(),
                    "metadata": [["k", "v"]]
                })
            },
        );
    proptest::collection::vec(observation, 0..5).prop_map(|o| json!({"observations": o}))
}

/// Random reports through the whole path: the plugin, normalisation, the
/// writer, the health engine and the API. Each run is stored (succeeded or
/// failed with a reason), the API answers every question about it, and the
/// daemon keeps going.
#[test]
fn random_reports_never_panic_the_writer_health_or_api() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    // Every rule on, so the health engine's arithmetic meets the numbers.
    let checks = check(
        "fuzz",
        "{ mode = \"report\", report_file = \"/data/fuzz.json\" }",
        &format!("read_dir = \"{}\"", reports.display()),
    ) + "[checks.rules]\n\
         freshness = { warn_after = \"1h\", error_after = \"2h\" }\n\
         completeness = { warn = \"1\", error = \"5%\" }\n\
         errors = { warn = \"1\", error = \"10%\" }\n\
         volume = { window = 3, drop_percent = 50, spike_percent = 50, min_history = 1 }\n";
    let text = config_text(dir.path(), &checks);
    let (d, api) = rt.block_on(async {
        let d = start(dir, &text, None).await;
        let api = Client::new(d.serve_api().await);
        (d, api)
    });
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 40,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&hostile_report(), |report| {
            std::fs::write(reports.join("fuzz.json"), report.to_string()).unwrap();
            let runs = runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            rt.block_on(async {
                d.service.run_once("fuzz").await.unwrap();
                d.wait_runs("fuzz", runs).await;
                let run = d.store.runs("fuzz", None, 1).await.unwrap().pop().unwrap();
                if let Some(f) = &run.failure {
                    assert!(!f.message.is_empty());
                }
                let answer = api
                    .query(
                        Some(ADMIN),
                        "{ check(key: \"fuzz\") { health { status reasons { message } } lastSuccess
                           runs(first: 1) { nodes { outcome errorMessage startedAt finishedAt durationMs assets } }
                           assets(first: 20) { nodes { key kind observedAt
                             freshness { updatedAt ageSeconds } counts { expected received errored missing }
                             lastReceived { id at } health { status since reasons { message } }
                             errors(first: 5) { nodes { kind message at observedAt } }
                             history(days: 2) { status } } }
                           history(days: 2) { status } }
                           healthEvents(first: 100) { nodes { entityKey reasons { message } at } } }",
                        json!({}),
                    )
                    .await;
                assert_eq!(answer.status, 200, "{}", answer.text);
                answer.data();
            });
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        // Still running after all that.
        let before = d.runs_of("fuzz").await;
        std::fs::write(reports.join("fuzz.json"), r#"{"observations": []}"#).unwrap();
        d.service.run_once("fuzz").await.unwrap();
        d.wait_runs("fuzz", before + 1).await;
        d.service.stop(std::time::Duration::from_secs(5)).await;
    });
}

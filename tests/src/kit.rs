//! A daemon for end-to-end tests: the real example plugin in the real host,
//! a fake of the document service it watches on 127.0.0.1, a SQLite file in a
//! temporary folder, and the GraphQL API on a loopback port.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::json;
use sha2::{Digest, Sha256};
use tributary::clock::SharedClock;
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::health::{EntityHealth, EntityRef, Status};
use tributary::plugin::{HostConfig, PluginHost};
use tributary::scheduler::RunNow;
use tributary::service::Service;
use tributary::store::{HealthEvent, Store};

use crate::plugin;

/// API tokens every test config holds: `(token, name, role, tenant)`.
pub const TOKENS: [(&str, &str, &str, Option<&str>); 5] = [
    ("admin-token", "admin", "admin", None),
    ("operator-token", "operator", "operator", None),
    ("viewer-token", "viewer", "viewer", None),
    ("acme-admin-token", "acme-admin", "admin", Some("acme")),
    (
        "globex-viewer-token",
        "globex-viewer",
        "viewer",
        Some("globex"),
    ),
];

/// The `[[api.tokens]]` of [`TOKENS`], hashed; tenant `globex` comes with it
/// (a tenant without flows until a test adds some).
fn api_tokens() -> String {
    let mut out = String::from("[[tenants]]\nid = \"globex\"\nname = \"Globex\"\n\n");
    for (token, name, role, tenant) in TOKENS {
        let hash = hex_sha256(token);
        out.push_str(&format!(
            "[[api.tokens]]\nname = \"{name}\"\nsha256 = \"{hash}\"\nrole = \"{role}\"\n"
        ));
        if let Some(t) = tenant {
            out.push_str(&format!("tenant = \"{t}\"\n"));
        }
        out.push('\n');
    }
    out
}

/// The SHA-256 of `text` in lowercase hex, as configs list tokens.
pub fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub const TOKEN: &str = "daemon-test-token";

/// What the fake document service answers; tests change it as they go.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    pub ids: Vec<String>,
    /// `Some(status)`: every request fails with it.
    pub fail_with: Option<u16>,
    /// Document errors the stats report: `{kind, message, document_id, log_url}`.
    pub errors: Vec<serde_json::Value>,
}

pub fn doc_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("doc-{i:03}")).collect()
}

pub async fn document_service(fake: Arc<Mutex<Fake>>) -> TestServer {
    TestServer::start(move |req: &Recorded| {
        let fake = fake.lock().unwrap().clone();
        if let Some(status) = fake.fail_with {
            return Reply::json(status, json!({"error": "service unavailable"}));
        }
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Reply::json(401, json!({"error": "unauthorized"}));
        }
        match req.path.as_str() {
            "/v1/tenants/acme/stats" => Reply::json(
                200,
                json!({
                    "documents": {"expected": null, "received": fake.ids.len(), "failed": fake.errors.len()},
                    "last_received": null,
                    "updated_at": "2026-11-20T10:00:00Z",
                    "errors": fake.errors
                }),
            ),
            "/v1/tenants/acme/documents/ids" => {
                let start: usize = req.query_param("cursor").map_or(0, |c| c.parse().unwrap());
                let limit: usize = req.query_param("limit").unwrap().parse().unwrap();
                let end = (start + limit).min(fake.ids.len());
                let next = (end < fake.ids.len()).then(|| end.to_string());
                Reply::json(
                    200,
                    json!({"ids": fake.ids[start..end], "next_cursor": next}),
                )
            }
            "/v1/tenants/acme/documents/resync" if req.method == "POST" => {
                let n = req.json().and_then(|b| b["ids"].as_array().map(Vec::len));
                Reply::json(202, json!({"accepted": n.unwrap_or(0)}))
            }
            _ => Reply::status(404),
        }
    })
    .await
}

/// A config with tenant `acme`, flow `docs` from system `ingest` to
/// `warehouse`, and one example check per `(id, system, service url, rules)`.
pub fn config_text(dir: &Path, checks: &[(&str, &str, &str, &str)]) -> String {
    let token_file = dir.join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut text = format!(
        r#"
plugins_dir = "{plugins}"
data_dir = "{data}"

{tokens}

[storage]
url = "sqlite://{db}"

[[tenants]]
id = "acme"
name = "Acme"

[[systems]]
id = "ingest"
name = "Ingest"
kind = "service"

[[systems]]
id = "warehouse"
name = "Warehouse"
kind = "service"

[[flows]]
id = "docs"
tenant = "acme"
name = "Acme documents"
upstream = "ingest"
downstream = ["warehouse"]
"#,
        plugins = plugin("example").parent().unwrap().display(),
        data = dir.join("data").display(),
        db = dir.join("tributary.db").display(),
        tokens = api_tokens(),
    );
    for (id, system, url, rules) in checks {
        text.push_str(&format!(
            r#"
[[checks]]
id = "{id}"
system = "{system}"
connector = "example"
schedule = {{ every = "1h" }}
timeout = "10s"
grants = {{ allowed_hosts = ["{url}"] }}
config = {{ base_url = "{url}", tenant = "acme", token = {{ file = "{token}" }}, collect_ids = true }}

[checks.rules]
{rules}
"#,
            token = token_file.display(),
        ));
    }
    text
}

/// [`config_text`] without checks for a daemon served on `port` of
/// 127.0.0.1, with more `[server]` settings (`server`, TOML lines).
pub fn served_config_text(dir: &Path, port: u16, server: &str) -> String {
    config_text(dir, &[]).replace(
        "[storage]",
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{server}\n\n[storage]"),
    )
}

pub struct Daemon {
    pub service: Arc<Service>,
    pub store: Store,
    pub bus: EventBus,
    pub clock: SharedClock,
    pub host: PluginHost,
    pub config_file: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Starts the daemon core in this process on `text` (a config from
/// [`config_text`] written for `dir`).
pub async fn start(
    dir: tempfile::TempDir,
    text: &str,
    clock: SharedClock,
    bus: EventBus,
) -> Daemon {
    let mut host_config = HostConfig::new(dir.path().join("cache"));
    host_config.clock = clock.clone();
    let host = PluginHost::new(host_config).unwrap();
    let example = host.load(plugin("example")).await.unwrap();
    let schemas = [(
        "example".to_owned(),
        serde_json::from_str(&example.descriptor().config_schema).unwrap(),
    )]
    .into();
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, text).unwrap();
    let config = parse_with(text, &file, &schemas, Options::default()).expect("valid config");
    let store = Store::open(&config.storage.url).await.unwrap();
    let service = Service::start(
        config,
        vec![example],
        store.clone(),
        bus.clone(),
        clock.clone(),
        tributary::service::Runs::Scheduled,
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

/// Polls `probe` until it gives `Some`, failing after 30 s with `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Daemon {
    pub async fn runs_of(&self, check: &str) -> usize {
        self.store.runs(check, None, 1000).await.unwrap().len()
    }

    pub async fn wait_runs(&self, check: &str, n: usize) {
        eventually(&format!("{n} runs of {check}"), || async {
            (self.runs_of(check).await >= n).then_some(())
        })
        .await;
    }

    /// Waits until `n` subscriptions are open in the daemon: a subscription
    /// without `afterSeq` starts live from when the daemon takes it, so a
    /// test changes health only once it is taken.
    pub async fn wait_subscriptions(&self, n: usize) {
        eventually(&format!("{n} open subscriptions"), || async {
            let text = self.service.metrics_text();
            let open = text
                .lines()
                .find_map(|l| l.strip_prefix("tributary_subscriptions_open "))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            (open >= n as f64).then_some(())
        })
        .await;
    }

    /// Asks for a run now (waiting while the previous one is still being
    /// wrapped up) and waits until it is stored.
    pub async fn run_now(&self, check: &str) {
        let before = self.runs_of(check).await;
        eventually(&format!("a run of {check} queued"), || async {
            (self.service.run_now(check).unwrap() == RunNow::Queued).then_some(())
        })
        .await;
        self.wait_runs(check, before + 1).await;
    }

    /// The stored health of `entity`, which must have one.
    pub async fn health(&self, entity: &EntityRef) -> EntityHealth {
        self.store.health(entity).await.unwrap().unwrap()
    }

    pub async fn status(&self, entity: &EntityRef) -> Status {
        self.health(entity).await.state.status
    }

    pub async fn events_of(&self, entity: &EntityRef) -> Vec<HealthEvent> {
        let all = self.store.events_after(0, 10_000).await.unwrap();
        all.into_iter().filter(|e| &e.entity == entity).collect()
    }
}

/// A port on 127.0.0.1 that is free now, for a daemon's `[server] listen`.
/// How many runs of `check` the database at `db_url` holds: read beside a
/// served daemon.
pub async fn stored_runs(db_url: &str, check: &str) -> usize {
    let store = Store::open(db_url).await.unwrap();
    let runs = store.runs(check, None, 1000).await.unwrap();
    store.close().await;
    runs.len()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A daemon process, killed (SIGKILL) and reaped when dropped: a test that
/// fails half-way leaves no daemon behind holding its port.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tributary serve --config file` in a process of its own, quiet (warnings
/// only, to nowhere): for tests and benches that watch it from outside.
pub fn serve_quietly(file: &Path) -> std::process::Child {
    std::process::Command::new(daemon_binary())
        .args(["serve", "--config"])
        .arg(file)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon")
}

/// Starts `tributary serve --config <file>` (its output dropped) and returns
/// once `base` answers `/readyz` with 200.
pub async fn serve_ready(file: &Path, base: &str) -> std::process::Child {
    let child = serve_quietly(file);
    let client = crate::gql::Client::new(base);
    eventually("the daemon to be ready", || {
        let client = client.clone();
        async move {
            let answer = client.send("GET", "/readyz", None, Vec::new()).await;
            (answer.status == 200).then_some(())
        }
    })
    .await;
    child
}

/// The `tributary` binary `cargo test --workspace` built next to this test.
pub fn daemon_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let bin = deps
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(format!("tributary{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not built: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

impl Daemon {
    /// Serves this daemon's GraphQL API, status pages and web UI on a
    /// loopback port, as `serve` does; returns its base URL
    /// (`http://127.0.0.1:PORT`).
    pub async fn serve_api(&self) -> String {
        let reloader = Arc::new(tributary::reload::Reloader::new(
            self.host.clone(),
            self.config_file.clone(),
            self.clock.clone(),
        ));
        let state = Arc::new(tributary::api::State::new(
            self.service.clone(),
            self.store.clone(),
            self.bus.clone(),
            reloader,
            self.clock.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = self.service.loaded().config.api.limits;
        let router = tributary::api::router(state.clone(), limits)
            .merge(tributary::statuspage::router(state.clone(), limits))
            .merge(tributary::web::router(tributary::api::InProcess::new(
                state, limits,
            )));
        tokio::spawn(tributary::api::serve(
            listener,
            router,
            std::future::pending(),
        ));
        format!("http://{addr}")
    }
}

/// The time an RFC 3339 text names.
pub fn at(rfc3339: &str) -> std::time::SystemTime {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("an RFC 3339 time")
        .into()
}

/// A daemon on a manual clock with one check, `ingest-docs` (its `rules`),
/// on a fake document service answering `fake` (which the test may change),
/// after its first run was judged, with its API, status pages and web UI
/// served at `base`.
pub struct ClockedCheck {
    pub d: Daemon,
    pub base: String,
    pub clock: Arc<tributary::clock::ManualClock>,
    pub fake: Arc<Mutex<Fake>>,
    _service: TestServer,
}

impl ClockedCheck {
    /// Starts it with the clock at `at`; `edit` changes the config text.
    pub async fn start(
        at: std::time::SystemTime,
        fake: Fake,
        rules: &str,
        edit: impl FnOnce(String) -> String,
    ) -> ClockedCheck {
        let fake = Arc::new(Mutex::new(fake));
        let service = document_service(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let text = config_text(
            dir.path(),
            &[("ingest-docs", "ingest", &service.url(), rules)],
        );
        let clock = Arc::new(tributary::clock::ManualClock::at_unix(0));
        clock.set(at);
        let d = start(dir, &edit(text), clock.clone(), EventBus::default()).await;
        d.wait_runs("ingest-docs", 1).await;
        let base = d.serve_api().await;
        ClockedCheck {
            d,
            base,
            clock,
            fake,
            _service: service,
        }
    }
}

/// A config of tenant `acme` with `flows` flows of `systems` systems each
/// (`s{flow}-{n}`, the first upstream), every system watched by one example
/// check (`c{flow}-{n}`, hourly, without ids) against the service at `url`.
pub fn fleet_text(dir: &Path, flows: usize, systems: usize, url: &str) -> String {
    let mut text = config_text(dir, &[]);
    let token = dir.join("token");
    for f in 0..flows {
        for n in 0..systems {
            text.push_str(&format!(
                "[[systems]]\nid = \"s{f}-{n}\"\nname = \"System {f}.{n}\"\nkind = \"service\"\n\n\
                 [[checks]]\nid = \"c{f}-{n}\"\nsystem = \"s{f}-{n}\"\nconnector = \"example\"\n\
                 schedule = {{ every = \"1h\" }}\ngrants = {{ allowed_hosts = [\"{url}\"] }}\n\
                 config = {{ base_url = \"{url}\", tenant = \"acme\", token = {{ file = \"{}\" }} }}\n\n",
                token.display()
            ));
        }
        let downstream: Vec<String> = (1..systems).map(|n| format!("\"s{f}-{n}\"")).collect();
        text.push_str(&format!(
            "[[flows]]\nid = \"f{f}\"\ntenant = \"acme\"\nname = \"Flow {f}\"\n\
             upstream = \"s{f}-0\"\ndownstream = [{}]\n\n",
            downstream.join(", ")
        ));
    }
    text
}

impl Daemon {
    /// Waits until `n` runs (of any checks) are stored.
    pub async fn wait_total_runs(&self, n: u64) {
        eventually(&format!("{n} runs stored"), || async {
            (self.store.run_count().await.unwrap() >= n).then_some(())
        })
        .await;
    }
}

/// [`start`] with the system clock and a default bus: a daemon that runs in
/// real time.
pub async fn start_live(dir: tempfile::TempDir, text: &str) -> Daemon {
    start(
        dir,
        text,
        Arc::new(tributary::clock::SystemClock),
        EventBus::default(),
    )
    .await
}

/// A daemon without checks whose `[api]` table holds `api` (its keys, then
/// any sub-tables such as `[api.cors]`), with its API served; and the API's
/// base URL.
pub async fn api_daemon(api: &str) -> (Daemon, String) {
    let dir = tempfile::tempdir().unwrap();
    let text =
        config_text(dir.path(), &[]).replace("[storage]", &format!("[api]\n{api}\n\n[storage]"));
    let d = start_live(dir, &text).await;
    let base = d.serve_api().await;
    (d, base)
}

/// Flow `docs` (tenant acme; tenant globex has nothing) from `ingest` (100
/// ids) to `warehouse`, whose fake answers as the test says, with the API
/// served: what the API's end-to-end tests stand on.
pub struct ApiFlow {
    pub d: Daemon,
    /// The API's base URL, for raw WebSocket clients.
    pub base: String,
    pub api: crate::gql::Client,
    pub warehouse: Arc<Mutex<Fake>>,
    /// The ingest and warehouse services, in that order.
    pub services: [TestServer; 2],
}

impl ApiFlow {
    /// Starts it with `settings` (TOML tables such as `[api.websocket]`)
    /// added to the config; the warehouse has run once more after the first
    /// runs, so whichever ran first, it has met the upstream ids.
    pub async fn start(warehouse: Fake, settings: &str) -> ApiFlow {
        let upstream = Arc::new(Mutex::new(Fake {
            ids: doc_ids(100),
            ..Fake::default()
        }));
        let warehouse = Arc::new(Mutex::new(warehouse));
        let (d, services) = flow_daemon_with(upstream, warehouse.clone(), settings).await;
        d.run_now("warehouse-docs").await;
        let base = d.serve_api().await;
        ApiFlow {
            api: crate::gql::Client::new(base.clone()),
            d,
            base,
            warehouse,
            services,
        }
    }

    /// [`ApiFlow::start`] with a warehouse that has every id (HEALTHY).
    pub async fn with_every_id(settings: &str) -> ApiFlow {
        let warehouse = Fake {
            ids: doc_ids(100),
            ..Fake::default()
        };
        ApiFlow::start(warehouse, settings).await
    }

    /// Makes the warehouse lose 20 ids (UNHEALTHY) or have them all
    /// (HEALTHY) and runs it: its asset changes health.
    pub async fn flip(&self, lose: bool) {
        self.warehouse.lock().unwrap().ids = if lose { doc_ids(80) } else { doc_ids(100) };
        self.d.run_now("warehouse-docs").await;
    }
}

/// The warehouse's asset in [`ApiFlow`].
pub fn warehouse_asset() -> EntityRef {
    EntityRef::Asset {
        check: "warehouse-docs".into(),
        asset: "documents".into(),
    }
}

/// A daemon watching flow `docs`: check `ingest-docs` on a service answering
/// as `upstream` says, check `warehouse-docs` (completeness warn 1, error 5%)
/// on one answering as `downstream` says; after both first runs are stored.
pub async fn flow_daemon(
    upstream: Arc<Mutex<Fake>>,
    downstream: Arc<Mutex<Fake>>,
) -> (Daemon, [TestServer; 2]) {
    flow_daemon_with(upstream, downstream, "").await
}

/// The config of [`flow_daemon`]: checks `ingest-docs` on `up` and
/// `warehouse-docs` (completeness rule) on `down`, with `settings` (TOML
/// tables such as `[server]`) added.
pub fn flow_config(dir: &Path, up: &TestServer, down: &TestServer, settings: &str) -> String {
    config_text(
        dir,
        &[
            ("ingest-docs", "ingest", &up.url(), ""),
            (
                "warehouse-docs",
                "warehouse",
                &down.url(),
                r#"completeness = { warn = "1", error = "5%" }"#,
            ),
        ],
    )
    .replace("[storage]", &format!("{settings}\n\n[storage]"))
}

/// [`flow_daemon`] with `settings` (TOML tables such as `[api.websocket]`)
/// added to its config.
pub async fn flow_daemon_with(
    upstream: Arc<Mutex<Fake>>,
    downstream: Arc<Mutex<Fake>>,
    settings: &str,
) -> (Daemon, [TestServer; 2]) {
    let up = document_service(upstream).await;
    let down = document_service(downstream).await;
    let dir = tempfile::tempdir().unwrap();
    let text = flow_config(dir.path(), &up, &down, settings);
    let d = start_live(dir, &text).await;
    d.wait_runs("ingest-docs", 1).await;
    d.wait_runs("warehouse-docs", 1).await;
    (d, [up, down])
}

/// An `[alerts]` section: webhook channel `hook` to `url` (its
/// `/hooks/tributary`) signed with `secret` (as the config writes a secret:
/// `{ env = "ALERT_SECRET" }`, `{ file = "..." }`), quick delivery, and
/// route `route` sending the changes of `entities` (a kind) to it; `extra`
/// adds route settings.
pub fn webhook_alerts(url: &str, secret: &str, route: &str, entities: &str, extra: &str) -> String {
    format!(
        r#"
[alerts]
link_base = "https://tributary.example.com"

[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{url}/hooks/tributary"
secret = {secret}

[alerts.delivery]
poll_interval = "50ms"
retry_schedule = ["200ms"]
timeout = "2s"

[[alerts.routes]]
name = "{route}"
entities = ["{entities}"]
channels = ["hook"]
{extra}
"#
    )
}

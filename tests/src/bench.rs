//! What the bench binaries share: whether `cargo bench` asked for figures,
//! their settings from the environment, and one measurement on each backend.
//!
//! It only sets benches up; what each measures and prints stays in its file.

use std::future::Future;
use std::str::FromStr;

use tributary::store::testing::PgScratch;

/// `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and
/// only checks that a bench builds and starts, so it must not measure.
pub fn asked() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs `bench` on a multi-threaded runtime when `cargo bench` asked for
/// figures ([`asked`]); does nothing otherwise.
pub fn run(bench: impl Future<Output = ()>) {
    if !asked() {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench);
}

/// The API bench's set: tenant acme with `flows` flows of `systems` systems,
/// each watched by an example check against one fake document service (10
/// ids), with the config's text first passed through `edit`; once every
/// check has run. The service lives as long as the daemon needs it.
pub async fn fleet(
    flows: usize,
    systems: usize,
    edit: impl FnOnce(String) -> String,
) -> (crate::kit::Daemon, plugin_sdk::harness::TestServer) {
    use crate::kit::{Fake, doc_ids, document_service, fleet_text, start_live};
    let fake = std::sync::Arc::new(std::sync::Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    }));
    let service = document_service(fake).await;
    let dir = tempfile::tempdir().unwrap();
    let text = edit(fleet_text(dir.path(), flows, systems, &service.url()));
    let d = start_live(dir, &text).await;
    d.wait_total_runs((flows * systems) as u64).await;
    (d, service)
}

/// The setting `name` from the environment, or `default` when it is unset or
/// does not parse.
pub fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `measure(backend, url)` on a fresh SQLite file, then on a fresh
/// Postgres schema named `schema`, dropped afterwards; when Postgres is not
/// there, says so and goes on.
pub async fn on_both_backends<F, Fut>(schema: &str, mut measure: F)
where
    F: FnMut(&'static str, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    measure("sqlite", sqlite).await;
    match PgScratch::new(schema).await {
        Ok(pg) => {
            measure("postgres", pg.url.clone()).await;
            pg.drop_schema().await.unwrap();
        }
        Err(err) => println!("postgres  skipped: {err}"),
    }
}

/// A memory figure (`VmRSS`, `VmHWM`...) of `process` (`"self"` or a pid)
/// from `/proc/<process>/status`, in MiB; NaN when it cannot be read.
pub fn status_mib(process: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The SLOs of the benches: three hourly ones over 20 days covering every
/// check's assets, so each run of a [`runs_config`] check adds to three
/// slices.
pub const SLOS: [&str; 3] = ["availability", "completeness", "healthy"];

/// The start of every bench daemon's config: its data folder, its database
/// and the tenant `bench` the benches' entities belong to.
pub fn config_head(db_url: &str, data: &str) -> String {
    format!(
        r#"
data_dir = "{data}"
[storage]
url = "{db_url}"
[[tenants]]
id = "bench"
name = "Bench"
"#
    )
}

/// The config of the daemon benches: tenant `bench` with 100 systems and
/// 50 flows over them, `checks` probe checks `c0`.. run every second (each
/// reports the asset `probe`), and with `slos` the three [`SLOS`].
pub fn runs_config(db_url: &str, data: &str, checks: u64, slos: bool) -> String {
    let mut text = config_head(db_url, data);
    let systems = 100;
    for s in 0..systems {
        text.push_str(&format!(
            "[[systems]]\nid = \"s{s}\"\nname = \"System {s}\"\nkind = \"service\"\n"
        ));
    }
    for f in 0..systems / 2 {
        text.push_str(&format!(
            "[[flows]]\nid = \"f{f}\"\ntenant = \"bench\"\nname = \"Flow {f}\"\nupstream = \"s{}\"\ndownstream = [\"s{}\"]\n",
            2 * f,
            2 * f + 1
        ));
    }
    for c in 0..checks {
        text.push_str(&format!(
            "[[checks]]\nid = \"c{c}\"\nsystem = \"s{}\"\nconnector = \"probe\"\nschedule = {{ every = \"1s\" }}\nconfig = {{ mode = \"ok\" }}\n",
            c % systems
        ));
    }
    if slos {
        for name in SLOS {
            text.push_str(&format!(
                "[[slos]]\nname = \"{name}\"\ncheck = \"*\"\nasset = \"*\"\nindicator = \"{name}\"\n\
                 slice = \"1h\"\nwindow = \"20d\"\ntarget = 0.99\n"
            ));
        }
    }
    text
}

/// A daemon core on `text` (a [`runs_config`] written in `dir`) with the
/// probe plugin, running checks as `runs` says; with the time its config
/// took to parse.
pub async fn probe_daemon(
    dir: tempfile::TempDir,
    text: &str,
    clock: tributary::clock::SharedClock,
    runs: tributary::service::Runs,
) -> (crate::kit::Daemon, std::time::Duration) {
    use tributary::plugin::{HostConfig, PluginHost};

    let mut host_config = HostConfig::new(dir.path().join("cache"));
    host_config.clock = clock.clone();
    let host = PluginHost::new(host_config).unwrap();
    let probe = host.load(crate::plugin("probe")).await.unwrap();
    let schemas = [(
        "probe".to_owned(),
        serde_json::from_str(&probe.descriptor().config_schema).unwrap(),
    )]
    .into();
    let config_file = dir.path().join("bench.toml");
    std::fs::write(&config_file, text).unwrap();
    let parsed = std::time::Instant::now();
    let config = tributary::config::parse_with(
        text,
        &config_file,
        &schemas,
        tributary::config::Options::default(),
    )
    .expect("valid bench config");
    let parse_time = parsed.elapsed();
    let store = tributary::store::Store::open(&config.storage.url)
        .await
        .unwrap();
    let bus = tributary::events::EventBus::default();
    let service = tributary::service::Service::start(
        config,
        vec![probe],
        store.clone(),
        bus.clone(),
        clock.clone(),
        runs,
    )
    .await
    .unwrap();
    let daemon = crate::kit::Daemon {
        service: std::sync::Arc::new(service),
        store,
        bus,
        clock,
        host,
        config_file,
        dir,
    };
    (daemon, parse_time)
}

/// The API benches' set: [`crate::kit::fleet_text`] of `flows` flows of
/// `systems` systems (one example check each) against a fake document
/// service of 10 ids, the text passed through `edit`, started live; returns
/// once every check ran once (and says how long that took), with the fake
/// (to make outages) and its server (dropping it stops the service).
pub async fn fleet_daemon(
    flows: usize,
    systems: usize,
    edit: impl FnOnce(String) -> String,
) -> (
    crate::kit::Daemon,
    std::sync::Arc<std::sync::Mutex<crate::kit::Fake>>,
    plugin_sdk::harness::TestServer,
) {
    use crate::kit::{Fake, doc_ids, document_service, fleet_text, start_live};

    let fake = std::sync::Arc::new(std::sync::Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    }));
    let service = document_service(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = edit(fleet_text(dir.path(), flows, systems, &service.url()));
    let d = start_live(dir, &text).await;
    let started = std::time::Instant::now();
    d.wait_total_runs((flows * systems) as u64).await;
    println!(
        "{} checks ran once in {:.1} s",
        flows * systems,
        started.elapsed().as_secs_f64()
    );
    (d, fake, service)
}

/// First contentful paint in Chromium (tests/js/fcp.mjs) of `loads` loads
/// of `url`, each in a fresh browser context, with `cookie` (`name=value`)
/// set when given: the milliseconds of each, in load order.
pub async fn first_contentful_paints(url: &str, loads: usize, cookie: Option<&str>) -> Vec<f64> {
    let loads = loads.to_string();
    let mut args = vec![url, loads.as_str()];
    args.extend(cookie);
    let mut script = crate::node::Script::start("fcp.mjs", &args);
    let seen = script
        .until("fcp", std::time::Duration::from_secs(600))
        .await;
    seen["times"]
        .as_array()
        .expect("fcp.mjs reports the times")
        .iter()
        .map(|t| {
            t.as_f64()
                .expect("Chromium reports a first contentful paint")
        })
        .collect()
}

/// The `p` quantile (0 to 1) of `sorted` (ascending), nearest rank: what
/// every bench reports as p50 / p99.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

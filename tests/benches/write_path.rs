//! Storing one big report: N observations from the `probe` plugin's
//! `big-report` mode, through normalisation, the writer (health book,
//! roll-up, rollups) and the store, on SQLite and on Postgres. Linear time is
//! the goal: 10x the assets should cost about 10x the time.
//!
//! `cargo bench -p tributary-tests --bench write_path` prints the figures.
//! `TRIBUTARY_BENCH_ASSETS` (default `10000,30000,100000`) sets the sizes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::clock::{SharedClock, SystemClock};
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::plugin::{HostConfig, PluginHost};
use tributary::service::{Runs, Service};
use tributary::store::Store;
use tributary_tests::bench;
use tributary_tests::plugin;

fn config_text(db_url: &str, data: &str, assets: u64) -> String {
    let head = bench::config_head(db_url, data);
    format!(
        r#"
{head}[[systems]]
id = "up"
name = "Up"
kind = "service"
[[systems]]
id = "down"
name = "Down"
kind = "service"
[[flows]]
id = "f"
tenant = "bench"
name = "F"
upstream = "up"
downstream = ["down"]
[[checks]]
id = "big"
system = "up"
connector = "probe"
schedule = {{ every = "1h" }}
timeout = "120s"
limits = {{ report = "1GiB", memory = "1GiB" }}
config = {{ mode = "big-report", count = {assets}, pad_bytes = 8 }}
"#
    )
}

/// Two runs of an `assets`-asset report: the first creates every asset's
/// health, the second updates it. Prints the time in the plugin (and
/// normalisation) and the time to commit, per run.
async fn measure(label: &str, db_url: &str, assets: u64) {
    let dir = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let mut host_config = HostConfig::new(dir.path().join("cache"));
    host_config.clock = clock.clone();
    let host = PluginHost::new(host_config).unwrap();
    let probe = host.load(plugin("probe")).await.unwrap();
    let schemas = [(
        "probe".to_owned(),
        serde_json::from_str(&probe.descriptor().config_schema).unwrap(),
    )]
    .into();
    let text = config_text(
        db_url,
        &dir.path().join("data").display().to_string(),
        assets,
    );
    let config = parse_with(
        &text,
        &dir.path().join("bench.toml"),
        &schemas,
        Options::default(),
    )
    .expect("valid bench config");
    let store = Store::open(db_url).await.unwrap();
    let service = Service::start(
        config,
        vec![probe],
        store.clone(),
        EventBus::default(),
        clock,
        Runs::OnDemand,
    )
    .await
    .unwrap();
    for round in 1..=2 {
        let t0 = Instant::now();
        service.run_once("big").await.unwrap();
        let collected = t0.elapsed();
        let deadline = Instant::now() + Duration::from_secs(600);
        while store.runs("big", None, 10).await.unwrap().len() < round {
            assert!(Instant::now() < deadline, "the run was not stored in 600 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stored = t0.elapsed() - collected;
        let run = store.runs("big", None, 1).await.unwrap().pop().unwrap();
        assert!(run.succeeded(), "{:?}", run.failure);
        println!(
            "{label:<9} assets {assets:>7}  run {round} ({})  plugin + normalise {:>7.2} s  write (health, rollups, store) {:>7.2} s  = {:>6.1} µs/asset",
            if round == 1 { "new assets" } else { "updates" },
            collected.as_secs_f64(),
            stored.as_secs_f64(),
            stored.as_secs_f64() * 1e6 / assets as f64,
        );
    }
    service.stop(Duration::from_secs(30)).await;
}

fn main() {
    if !bench::asked() {
        return;
    }
    let sizes: Vec<u64> = std::env::var("TRIBUTARY_BENCH_ASSETS")
        .unwrap_or_else(|_| "10000,30000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for &assets in &sizes {
            bench::on_both_backends("bench_write", |backend, url| async move {
                measure(backend, &url, assets).await
            })
            .await;
        }
    });
}

//! Sustained check runs per second through the whole daemon core: scheduler,
//! plugin host (the `probe` plugin's trivial `ok` mode), writer, health book
//! and store, on SQLite and on Postgres; and the memory of a daemon with
//! 10,000 checks configured.
//!
//! `cargo bench -p tributary-tests --bench daemon_runs` prints the figures.
//! `TRIBUTARY_BENCH_CHECKS` (default 10000) and `TRIBUTARY_BENCH_SECS`
//! (default 10) change the load and the measured window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::clock::{SharedClock, SystemClock};
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::plugin::{HostConfig, PluginHost};
use tributary::service::Service;
use tributary::store::Store;
use tributary_tests::bench;
use tributary_tests::plugin;

fn config_text(db_url: &str, data: &str, checks: u64) -> String {
    let mut text = format!(
        r#"
data_dir = "{data}"
[storage]
url = "{db_url}"
[[tenants]]
id = "bench"
name = "Bench"
"#
    );
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
    text
}

async fn measure(label: &str, db_url: &str, checks: u64, window: Duration) {
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
        checks,
    );
    let parsed = Instant::now();
    let config = parse_with(
        &text,
        &dir.path().join("bench.toml"),
        &schemas,
        Options::default(),
    )
    .expect("valid bench config");
    let parse_time = parsed.elapsed();
    let store = Store::open(db_url).await.unwrap();
    let service = Service::start(
        config,
        vec![probe],
        store.clone(),
        EventBus::default(),
        clock,
        tributary::service::Runs::Scheduled,
    )
    .await
    .unwrap();
    // Warm up: the first wave of 10,000 runs at once is not steady state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c0 = store.run_count().await.unwrap();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let c1 = store.run_count().await.unwrap();
    let elapsed = t0.elapsed().as_secs_f64();
    let (rss, hwm) = (
        bench::status_mib("self", "VmRSS"),
        bench::status_mib("self", "VmHWM"),
    );
    let stats = service.stats();
    service.stop(Duration::from_secs(10)).await;
    println!(
        "{label:<9} checks {checks:>6}  runs/s {:>8.0}  (demand {checks}/s)  queued at end {:>6}  RSS {rss:>6.1} MiB  peak RSS {hwm:>6.1} MiB  config parse {:.2} s",
        (c1 - c0) as f64 / elapsed,
        stats.queued,
        parse_time.as_secs_f64(),
    );
}

fn main() {
    if !bench::asked() {
        return;
    }
    let checks = bench::env_or("TRIBUTARY_BENCH_CHECKS", 10_000u64);
    let window = Duration::from_secs(bench::env_or("TRIBUTARY_BENCH_SECS", 10u64));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        bench::on_both_backends("bench_runs", |backend, url| async move {
            measure(backend, &url, checks, window).await
        })
        .await;
    });
}

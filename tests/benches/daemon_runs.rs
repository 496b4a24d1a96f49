//! Sustained check runs per second through the whole daemon core: scheduler,
//! plugin host (the `probe` plugin's trivial `ok` mode), writer, health book
//! and store, on SQLite and on Postgres; and the memory of a daemon with
//! 10,000 checks configured. Each backend is measured twice: without SLOs,
//! then with three hourly SLOs covering every check's asset
//! ([`bench::runs_config`]), whose slice updates ride in each run's
//! transaction: the difference is their per-run cost.
//!
//! `cargo bench -p tributary-tests --bench daemon_runs` prints the figures.
//! `TRIBUTARY_BENCH_CHECKS` (default 10000) and `TRIBUTARY_BENCH_SECS`
//! (default 10) change the load and the measured window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::clock::{SharedClock, SystemClock};
use tributary::service::Runs;
use tributary_tests::bench;

async fn measure(label: &str, db_url: &str, checks: u64, slos: bool, window: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let text = bench::runs_config(
        db_url,
        &dir.path().join("data").display().to_string(),
        checks,
        slos,
    );
    let clock: SharedClock = Arc::new(SystemClock);
    let (d, parse_time) = bench::probe_daemon(dir, &text, clock, Runs::Scheduled).await;
    let (store, service) = (d.store.clone(), d.service.clone());
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
        "{label:<9} {:<7} checks {checks:>6}  runs/s {:>8.0}  (demand {checks}/s)  queued at end {:>6}  RSS {rss:>6.1} MiB  peak RSS {hwm:>6.1} MiB  config parse {:.2} s",
        if slos { "3 SLOs" } else { "no SLOs" },
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
        // Each variant on a fresh database, so neither inherits the
        // other's rows.
        for (schema, slos) in [("bench_runs", false), ("bench_runs_slo", true)] {
            bench::on_both_backends(schema, |backend, url| async move {
                measure(backend, &url, checks, slos, window).await
            })
            .await;
        }
    });
}

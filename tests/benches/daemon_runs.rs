//! Sustained check runs per second through the whole daemon core: scheduler,
//! plugin host (the `probe` plugin's trivial `ok` mode), writer, health book
//! and store, on SQLite and on Postgres; and the memory of a daemon with
//! 10,000 checks configured. Each backend is measured without SLOs and with
//! three hourly SLOs covering every check's asset ([`bench::runs_config`]),
//! whose slice updates ride in each run's transaction: the difference is
//! their per-run cost.
//!
//! Besides runs/s it prints the daemon process's CPU time per run (user +
//! system, from `/proc/self/stat`): what a run costs rather than how fast
//! a shared machine lets it go, so a loaded machine spoils it far less. On
//! SQLite that is all of a run's work (the database runs in the process);
//! on Postgres the server's share is not in it.
//!
//! `cargo bench -p tributary-tests --bench daemon_runs` prints the figures.
//! `TRIBUTARY_BENCH_CHECKS` (default 10000) and `TRIBUTARY_BENCH_SECS`
//! (default 10) change the load and the measured window;
//! `TRIBUTARY_BENCH_ROUNDS` (default 1) repeats the pair (without SLOs, then
//! with them, each on a fresh database) that many times, interleaved, and
//! then prints the medians of each.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary::clock::{SharedClock, SystemClock};
use tributary::service::Runs;
use tributary_tests::bench;

/// What one measurement gave: runs/s and CPU milliseconds per run.
type Figures = (f64, f64);

/// Every measurement, by backend and whether SLOs were on.
type Measured = Arc<Mutex<BTreeMap<(&'static str, bool), Vec<Figures>>>>;

/// This process's CPU time so far (user + system), in seconds: fields 14
/// and 15 of `/proc/self/stat`, in clock ticks (USER_HZ, 100 a second on
/// Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

async fn measure(label: &str, db_url: &str, checks: u64, slos: bool, window: Duration) -> Figures {
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
    let (c0, cpu0) = (store.run_count().await.unwrap(), cpu_seconds());
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let (c1, cpu1) = (store.run_count().await.unwrap(), cpu_seconds());
    let elapsed = t0.elapsed().as_secs_f64();
    let (rss, hwm) = (
        bench::status_mib("self", "VmRSS"),
        bench::status_mib("self", "VmHWM"),
    );
    let stats = service.stats();
    service.stop(Duration::from_secs(10)).await;
    let runs = (c1 - c0) as f64;
    let figures = (runs / elapsed, (cpu1 - cpu0) * 1000.0 / runs);
    println!(
        "{label:<9} {:<7} checks {checks:>6}  runs/s {:>8.0}  CPU {:>6.3} ms/run  (demand {checks}/s)  queued at end {:>6}  RSS {rss:>6.1} MiB  peak RSS {hwm:>6.1} MiB  config parse {:.2} s",
        if slos { "3 SLOs" } else { "no SLOs" },
        figures.0,
        figures.1,
        stats.queued,
        parse_time.as_secs_f64(),
    );
    figures
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if !bench::asked() {
        return;
    }
    let checks = bench::env_or("TRIBUTARY_BENCH_CHECKS", 10_000u64);
    let window = Duration::from_secs(bench::env_or("TRIBUTARY_BENCH_SECS", 10u64));
    let rounds = bench::env_or("TRIBUTARY_BENCH_ROUNDS", 1usize).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let all: Measured = Arc::default();
    runtime.block_on(async {
        for _ in 0..rounds {
            // Each variant on a fresh database, so neither inherits the
            // other's rows; without and with SLOs one after the other, so
            // a change of the machine's load falls on both.
            for (schema, slos) in [("bench_runs", false), ("bench_runs_slo", true)] {
                let all = all.clone();
                bench::on_both_backends(schema, move |backend, url| {
                    let all = all.clone();
                    async move {
                        let figures = measure(backend, &url, checks, slos, window).await;
                        all.lock()
                            .unwrap()
                            .entry((backend, slos))
                            .or_default()
                            .push(figures);
                    }
                })
                .await;
            }
        }
    });
    if rounds > 1 {
        let all = all.lock().unwrap();
        for ((backend, slos), figures) in all.iter() {
            println!(
                "median of {rounds}: {backend:<9} {:<7} runs/s {:>8.0}  CPU {:>6.3} ms/run",
                if *slos { "3 SLOs" } else { "no SLOs" },
                median(figures.iter().map(|f| f.0).collect()),
                median(figures.iter().map(|f| f.1).collect()),
            );
        }
    }
}

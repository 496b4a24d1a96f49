//! The resume storm timed: 2,000 subscriptions resuming `healthChanged(afterSeq:
//! 0)` at once over 3,000 stored events while twelve checks run every second
//! (see `tributary_tests::storm`), on SQLite and on Postgres. Prints the time
//! until every subscription has the backlog, the subscriptions that failed,
//! and how long runs waited to be stored meanwhile (from the end of the run
//! to its commit, as the bus reports it).
//!
//! `cargo bench -p tributary-tests --bench resume_storm --profile dev`
//! (`TRIBUTARY_BENCH_SUBSCRIBERS`, `TRIBUTARY_BENCH_EVENTS` change the sizes;
//! subscriptions not served within `TRIBUTARY_BENCH_DEADLINE` seconds, 180 by
//! default, count as failed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tributary::events::Received;
use tributary_tests::storm::{Marks, Storm, Want, subscriber};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn measure(postgres: bool, subscribers: usize, events: usize) {
    let label = if postgres { "postgres" } else { "sqlite" };
    let s = Storm::start(postgres, events).await;
    s.d.wait_total_runs(24).await;
    let stored = s.stored().await;

    // How long each run stored during the storm waited after it ended.
    let stop = Arc::new(AtomicBool::new(false));
    let waits = {
        let (mut runs, stop) = (s.d.bus.runs(), stop.clone());
        tokio::spawn(async move {
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), runs.recv()).await;
                if let Ok(Received::Message(run)) = next {
                    let ended = run.started_at + run.duration;
                    waits.push(SystemTime::now().duration_since(ended).unwrap_or_default());
                }
            }
            waits
        })
    };

    let started = Instant::now();
    let caught = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..subscribers)
        .map(|i| {
            let want = Want::nth(i);
            let backlog = (stored.iter().rev())
                .find(|e| want.sees(e))
                .map_or(0, |e| e.seq);
            // Done once it has the backlog.
            let marks = watch::Sender::new(Marks {
                backlog,
                live: Some(backlog),
            });
            tokio::spawn(subscriber(
                s.base.clone(),
                want,
                started,
                marks.subscribe(),
                caught.clone(),
            ))
        })
        .collect();
    let mut failed = Vec::new();
    let mut slowest = Duration::ZERO;
    let deadline = started + Duration::from_secs(setting("TRIBUTARY_BENCH_DEADLINE", 180) as u64);
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, task).await {
            Ok(Ok(Ok(served))) => slowest = slowest.max(served.caught_up),
            Ok(Ok(Err(e))) => failed.push(e),
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(_) => failed.push("not served before the deadline".into()),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut waits = waits.await.unwrap();
    waits.sort();
    println!(
        "{label}: {subscribers} subscriptions x {events} events: {} served in {:.1} s, \
         {} failed{}",
        subscribers - failed.len(),
        slowest.as_secs_f64(),
        failed.len(),
        failed
            .first()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
    println!(
        "{label}: run write latency during the storm: {} runs, p50 {:.3} s, p99 {:.3} s, max {:.3} s; \
         writes held at the end: {}",
        waits.len(),
        quantile(&waits, 0.5).as_secs_f64(),
        quantile(&waits, 0.99).as_secs_f64(),
        waits.last().copied().unwrap_or_default().as_secs_f64(),
        s.d.service.held_writes(),
    );
    s.stop().await;
}

fn main() {
    let subscribers = setting("TRIBUTARY_BENCH_SUBSCRIBERS", 2_000);
    let events = setting("TRIBUTARY_BENCH_EVENTS", 3_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        measure(false, subscribers, events).await;
        measure(true, subscribers, events).await;
    });
}

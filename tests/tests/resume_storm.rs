//! Thousands of subscriptions resuming from `afterSeq: 0` at once (every
//! client reconnecting after a restart) while twelve checks run every
//! second: each subscription gets exactly the stored events its token and
//! filter give, in order, then a live one, with no error; the writer is never held
//! behind the readers and every run is stored. On SQLite and on Postgres.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tributary_tests::kit::eventually;
use tributary_tests::storm::{Marks, Storm, Want, subscriber};

const SUBSCRIBERS: usize = 2_000;
const EVENTS: usize = 3_000;
/// How long the storm may take before the test gives up on it.
const DEADLINE: Duration = Duration::from_secs(240);

/// A metric's value summed over its labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One storm at a time: two at once would share the two cores and the
/// process's file descriptors.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn storm(postgres: bool) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let s = Storm::start(postgres, EVENTS).await;
    // Two rounds of the twelve checks: their first judgements are stored.
    s.d.wait_total_runs(24).await;
    let stored = s.stored().await;
    assert!(stored.len() >= EVENTS);
    let wants: Vec<Want> = (0..SUBSCRIBERS).map(Want::nth).collect();
    let marks: HashMap<Want, watch::Sender<Marks>> = (wants.iter())
        .map(|w| {
            let backlog = (stored.iter().rev()).find(|e| w.sees(e));
            let marks = Marks {
                backlog: backlog.map_or(0, |e| e.seq),
                live: None,
            };
            (w.clone(), watch::Sender::new(marks))
        })
        .collect();

    // Readiness and held writes, watched for the whole storm.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, base, service) = (stop.clone(), s.base.clone(), s.d.service.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if service.held_writes() > 0 {
                    held.push(format!("{} runs held", service.held_writes()));
                }
                if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
                    let body = r.text().await.unwrap_or_default();
                    if body.contains("held") {
                        held.push(body);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            held
        })
    };
    let runs_before = s.d.store.run_count().await.unwrap();

    let started = Instant::now();
    let caught = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (wants.iter())
        .map(|w| {
            let served = subscriber(
                s.base.clone(),
                w.clone(),
                started,
                marks[w].subscribe(),
                caught.clone(),
            );
            tokio::spawn(served)
        })
        .collect();
    let deadline = started + DEADLINE;
    while caught.load(Ordering::Relaxed) < SUBSCRIBERS {
        let finished = tasks.iter().filter(|t| t.is_finished()).count();
        assert!(
            finished <= caught.load(Ordering::Relaxed) && Instant::now() < deadline,
            "{} of {SUBSCRIBERS} subscriptions caught up, {finished} ended",
            caught.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every subscriber has the backlog: now a live change in each tenant.
    let before = s.stored().await.last().map_or(0, |e| e.seq);
    s.break_services();
    let live = eventually("a live event for every subscriber", || async {
        let fresh = s.d.store.events_after(before, 10_000).await.unwrap();
        (marks.keys())
            .map(|w| Some((w, fresh.iter().find(|e| w.sees(e))?.seq)))
            .collect::<Option<Vec<_>>>()
    })
    .await;
    for (want, seq) in live {
        marks[want].send_modify(|m| m.live = Some(seq));
    }
    let mut served = Vec::new();
    for task in tasks {
        let left = deadline.saturating_duration_since(Instant::now());
        let got = tokio::time::timeout(left, task)
            .await
            .expect("every subscription served before the deadline")
            .unwrap();
        served.push(got.unwrap_or_else(|e| panic!("a subscription failed: {e}")));
    }
    stop.store(true, Ordering::Relaxed);
    let held = watcher.await.unwrap();
    assert!(held.is_empty(), "writes were held: {held:?}");

    // Exactly the events each token may see, in order, from the first.
    let stored = s.stored().await;
    for got in &served {
        let last = *got.seqs.last().unwrap();
        let expected: Vec<i64> = (stored.iter())
            .filter(|e| e.seq <= last && got.want.sees(e))
            .map(|e| e.seq)
            .collect();
        assert_eq!(got.seqs, expected, "what {:?} got", got.want);
    }
    let slowest = served.iter().map(|s| s.caught_up).max().unwrap();
    eprintln!("{SUBSCRIBERS} subscriptions caught up within {slowest:?}");

    // Runs went on being written, and every run is stored.
    assert!(s.d.store.run_count().await.unwrap() > runs_before);
    eventually("every run stored", || async {
        let text = s.d.service.metrics_text();
        let ran = metric(&text, "tributary_runs_total");
        let stored = s.d.store.run_count().await.unwrap() as f64;
        (ran == stored).then_some(())
    })
    .await;
    let text = s.d.service.metrics_text();
    assert_eq!(metric(&text, "tributary_store_write_errors_total"), 0.0);
    assert_eq!(metric(&text, "tributary_runs_dropped_total"), 0.0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_resuming_subscriptions_are_served_without_holding_writes_on_sqlite() {
    storm(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_resuming_subscriptions_are_served_without_holding_writes_on_postgres() {
    storm(true).await;
}

//! Alert delivery through the daemon's dispatcher, on SQLite and Postgres: a
//! health change committed -> the signed webhook received on loopback
//! (`group_wait = 0`), and a burst of 10,000 changes -> every message
//! delivered (grouped by check: 1,000 checks of 10 assets = 1,000 messages),
//! with the dispatcher's throughput and the process's RSS growth.
//!
//! The changes are committed straight to the store (as the writer does, the
//! outbox rows in the same transaction), so the figures are the alert
//! pipeline's alone, not the plugins'.
//!
//! `cargo bench -p tributary-tests --bench alerts --profile dev` prints them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tributary::clock::{SharedClock, SystemClock};
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::health::{Change, EntityRef, Status};
use tributary::service::Service;
use tributary::store::{NewEvent, Store, WriteBatch};
use tributary_tests::bench;
use tributary_tests::fakes::webhook::{SECRET, WebhookFake};

const LATENCY_SAMPLES: usize = 100;
const BURST_CHECKS: usize = 1_000;
const ASSETS_PER_CHECK: usize = 10;

fn change(entity: EntityRef) -> NewEvent {
    NewEvent {
        entity,
        change: Change {
            from: Some(Status::Healthy),
            to: Status::Unhealthy,
            reasons: vec![],
            muted: false,
            maintenance: None,
            suppressed_by: None,
        },
        run_id: None,
        at: SystemTime::now(),
    }
}

async fn wait_taken(hook: &WebhookFake, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while hook.taken().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages",
            hook.taken().len()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(label: &str, db_url: &str) {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let text = format!(
        r#"
data_dir = "{data}"
[storage]
url = "{db_url}"
[[tenants]]
id = "bench"
name = "Bench"
[alerts]
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{url}/hook"
secret = {{ file = "{secret}" }}
[alerts.delivery]
poll_interval = "10ms"
[[alerts.routes]]
name = "all"
channels = ["hook"]
group_by = ["check"]
group_wait = "0s"
group_interval = "0s"
"#,
        data = dir.path().join("data").display(),
        url = receiver.url(),
        secret = secret.display(),
    );
    let config = parse_with(
        &text,
        &dir.path().join("bench.toml"),
        &Default::default(),
        Options::default(),
    )
    .expect("valid bench config");
    let store = Store::open(db_url).await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let service = Service::start(
        config,
        Vec::<tributary::plugin::Plugin>::new(),
        store.clone(),
        EventBus::default(),
        clock,
        tributary::service::Runs::Scheduled,
    )
    .await
    .unwrap();

    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let batch = WriteBatch {
            events: vec![change(EntityRef::Check(format!("latency{i}")))],
            ..WriteBatch::default()
        };
        store.write(&batch).await.unwrap();
        let committed = Instant::now();
        wait_taken(&hook, i + 1).await;
        latencies.push(committed.elapsed());
    }
    latencies.sort();

    let rss_before = bench::status_mib("self", "VmRSS");
    let started = Instant::now();
    for chunk in 0..BURST_CHECKS / 100 {
        let events = (chunk * 100..(chunk + 1) * 100)
            .flat_map(|c| {
                (0..ASSETS_PER_CHECK).map(move |a| {
                    change(EntityRef::Asset {
                        check: format!("burst{c}"),
                        asset: format!("asset{a}"),
                    })
                })
            })
            .collect();
        let batch = WriteBatch {
            events,
            ..WriteBatch::default()
        };
        store.write(&batch).await.unwrap();
    }
    wait_taken(&hook, LATENCY_SAMPLES + BURST_CHECKS).await;
    let burst = started.elapsed().as_secs_f64();
    let rss_after = bench::status_mib("self", "VmRSS");
    let listed: usize = hook.taken()[LATENCY_SAMPLES..]
        .iter()
        .map(|t| t.entities().len())
        .sum();
    service.stop(Duration::from_secs(5)).await;
    println!(
        "{label:<9} commit -> received p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms | burst {} changes -> {} messages ({listed} entities listed) in {burst:.2} s = {:.0} deliveries/s, {:.0} changes/s  RSS {rss_before:.1} -> {rss_after:.1} MiB",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        BURST_CHECKS * ASSETS_PER_CHECK,
        BURST_CHECKS,
        BURST_CHECKS as f64 / burst,
        (BURST_CHECKS * ASSETS_PER_CHECK) as f64 / burst,
    );
}

fn main() {
    if !bench::asked() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        bench::on_both_backends("bench_alerts", |backend, url| async move {
            measure(backend, &url).await
        })
        .await;
    });
}

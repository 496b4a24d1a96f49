//! Alert delivery through the daemon's dispatcher, on SQLite and Postgres: a
//! health change committed -> the signed webhook received on loopback
//! (`group_wait = 0`), and a burst of 10,000 changes -> every message
//! delivered (grouped by check: 1,000 checks of 10 assets = 1,000 messages),
//! with the dispatcher's throughput and the process's RSS growth.
//!
//! The changes are committed straight to the store (as the writer does, the
//! outbox rows in the same transaction) and published on the bus (as the
//! writer does after its commit: what wakes the dispatcher), so the figures
//! are the alert pipeline's alone, not the plugins'.
//!
//! Then the daemon's own memory: the same burst delivered by `tributary
//! serve` in a process of its own (the changes committed by the bench into
//! its database, found by its safety poll), its RSS read from /proc.
//!
//! `cargo build -p tributary && cargo bench -p tributary-tests --bench alerts
//! --profile dev` prints them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tributary::clock::{SharedClock, SystemClock};
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::health::{Change, EntityRef, Status};
use tributary::service::Service;
use tributary::store::{NewEvent, Store, WriteBatch};
use tributary_tests::bench::{self, percentile};
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
    while hook.taken_count() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages",
            hook.taken_count()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The bench's config: one webhook channel `hook` to `url`, one route
/// grouping by check, sending at once; `extra` appended.
fn bench_config(dir: &std::path::Path, db_url: &str, url: &str, extra: &str) -> String {
    let secret = dir.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let data = dir.join("data");
    let head = bench::config_head(db_url, &data.display().to_string());
    format!(
        r#"
plugins_dir = "{plugins}"
{head}[alerts]
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{url}/hook"
secret = {{ file = "{secret}" }}
[[alerts.routes]]
name = "all"
channels = ["hook"]
group_by = ["check"]
group_wait = "0s"
group_interval = "0s"
{extra}
"#,
        plugins = plugins.display(),
        secret = secret.display(),
    )
}

/// The burst: `BURST_CHECKS` checks named `{prefix}{n}` of
/// `ASSETS_PER_CHECK` assets each go UNHEALTHY, committed 100 checks per
/// transaction; the events written.
async fn burst(store: &Store, prefix: &str) -> Vec<tributary::store::HealthEvent> {
    let mut written = Vec::new();
    for chunk in 0..BURST_CHECKS / 100 {
        let events = (chunk * 100..(chunk + 1) * 100)
            .flat_map(|c| {
                (0..ASSETS_PER_CHECK).map(move |a| {
                    change(EntityRef::Asset {
                        check: format!("{prefix}{c}"),
                        asset: format!("asset{a}"),
                    })
                })
            })
            .collect();
        let batch = WriteBatch {
            events,
            ..WriteBatch::default()
        };
        written.extend(store.write(&batch).await.unwrap());
    }
    written
}

async fn measure(label: &str, db_url: &str) {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = bench_config(dir.path(), db_url, &receiver.url(), "");
    let config = parse_with(
        &text,
        &dir.path().join("bench.toml"),
        &Default::default(),
        Options::default(),
    )
    .expect("valid bench config");
    let store = Store::open(db_url).await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let bus = EventBus::default();
    let service = Service::start(
        config,
        Vec::<tributary::plugin::Plugin>::new(),
        store.clone(),
        bus.clone(),
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
        let written = store.write(&batch).await.unwrap();
        let committed = Instant::now();
        for event in written {
            bus.publish_health(event);
        }
        wait_taken(&hook, i + 1).await;
        latencies.push(committed.elapsed());
    }
    latencies.sort();

    // Committed first, then published at once: the dispatcher's own time
    // from the wake-up, apart from the writes'.
    let started = Instant::now();
    let written = burst(&store, "burst").await;
    let committing = started.elapsed().as_secs_f64();
    let woken = Instant::now();
    for event in written {
        bus.publish_health(event);
    }
    wait_taken(&hook, LATENCY_SAMPLES + BURST_CHECKS).await;
    let dispatching = woken.elapsed().as_secs_f64();
    let listed: usize = hook.taken()[LATENCY_SAMPLES..]
        .iter()
        .map(|t| t.entities().len())
        .sum();
    service.stop(Duration::from_secs(5)).await;
    println!(
        "{label:<9} commit -> received p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms | burst {} changes committed in {committing:.2} s, then -> {} messages ({listed} entities listed) in {dispatching:.2} s = {:.0} deliveries/s",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        BURST_CHECKS * ASSETS_PER_CHECK,
        BURST_CHECKS,
        BURST_CHECKS as f64 / dispatching,
    );
    daemon_memory(label, db_url).await;
}

/// The burst delivered by `tributary serve` in its own process on the same
/// database (new checks, so new groups): the daemon's RSS before and after,
/// and its peak.
async fn daemon_memory(label: &str, db_url: &str) {
    // Stopping the service closed the store it was given.
    let store = Store::open(db_url).await.unwrap();
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = tributary_tests::kit::free_port();
    // Written by another process: found by the safety poll, made short.
    let extra = format!(
        "[alerts.delivery]\npoll_interval = \"50ms\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let file = dir.path().join("tributary.toml");
    std::fs::write(
        &file,
        bench_config(dir.path(), db_url, &receiver.url(), &extra),
    )
    .unwrap();
    let mut child = tributary_tests::kit::serve_quietly(&file);
    let pid = child.id().to_string();
    let ready = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .is_err()
    {
        assert!(Instant::now() < ready, "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = bench::status_mib(&pid, "VmRSS");
    let started = Instant::now();
    burst(&store, "rss").await;
    wait_taken(&hook, BURST_CHECKS).await;
    let took = started.elapsed().as_secs_f64();
    let after = bench::status_mib(&pid, "VmRSS");
    let peak = bench::status_mib(&pid, "VmHWM");
    child.kill().unwrap();
    child.wait().unwrap();
    store.close().await;
    println!(
        "{label:<9} tributary serve: burst -> {BURST_CHECKS} messages in {took:.2} s ({:.0} deliveries/s); daemon RSS {before:.1} -> {after:.1} MiB (+{:.1}), peak {peak:.1} MiB",
        BURST_CHECKS as f64 / took,
        after - before,
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

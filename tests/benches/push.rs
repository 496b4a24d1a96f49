//! Native push reports over HTTP/1.1 keep-alive: N concurrent clients (one
//! push token and one asset each) post reports as fast as they are answered,
//! through the push API, the writer (health, roll-up, rollups, events) and
//! the store, on SQLite and on Postgres. Each 202 means the report is stored.
//! Prints accepted reports per second and latency percentiles.
//!
//! `cargo bench -p tributary-tests --bench push` prints the figures.
//! `TRIBUTARY_BENCH_CLIENTS` (default 50) and `TRIBUTARY_BENCH_SECONDS`
//! (default 10) set the load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tributary::clock::{SharedClock, SystemClock};
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::push::PushApi;
use tributary::service::{Runs, Service};
use tributary::store::Store;
use tributary_tests::bench;

fn token(i: usize) -> String {
    format!("trp_bench-client-{i}")
}

fn config_text(db_url: &str, data: &str, clients: usize) -> String {
    let mut text = format!(
        r#"
data_dir = "{data}"
[storage]
url = "{db_url}"
[[tenants]]
id = "bench"
name = "Bench"
[[systems]]
id = "app"
name = "App"
kind = "service"
[[systems]]
id = "down"
name = "Down"
kind = "service"
[[flows]]
id = "f"
tenant = "bench"
name = "F"
upstream = "app"
downstream = ["down"]
[[checks]]
id = "app"
system = "app"
connector = "push"
[checks.push]
rate = 1000000
"#
    );
    for i in 0..clients {
        let hash: String = Sha256::digest(token(i).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!(
            "[[checks.push.tokens]]\nname = \"client {i}\"\nsha256 = \"{hash}\"\n"
        ));
    }
    text
}

async fn measure(label: &str, db_url: &str, clients: usize, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let text = config_text(
        db_url,
        &dir.path().join("data").display().to_string(),
        clients,
    );
    let config = parse_with(
        &text,
        &dir.path().join("bench.toml"),
        &Default::default(),
        Options::default(),
    )
    .expect("valid bench config");
    let store = Store::open(db_url).await.unwrap();
    let service = Arc::new(
        Service::start(
            config,
            Vec::<tributary::plugin::Plugin>::new(),
            store.clone(),
            EventBus::default(),
            clock.clone(),
            Runs::Scheduled,
        )
        .await
        .unwrap(),
    );
    let router = tributary::push::router(Arc::new(PushApi::new(
        service.clone(),
        store.clone(),
        clock,
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tributary::api::serve(listener, router, async {
        let _ = stop_rx.await;
    }));

    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let url = format!("{base}/push/v1/checks/app/reports");
            tokio::spawn(async move {
                // One connection per client, kept alive.
                let http = reqwest::Client::builder()
                    .http1_only()
                    .pool_max_idle_per_host(1)
                    .build()
                    .unwrap();
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < until {
                    n += 1;
                    let body = format!(
                        r#"{{"observations":[{{"asset":"asset-{i}","kind":"upload","counts":{{"expected":{n},"received":{n}}}}}]}}"#
                    );
                    let t0 = Instant::now();
                    let r = http
                        .post(&url)
                        .bearer_auth(token(i))
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let _ = r.bytes().await;
                    assert_eq!(status, 202, "a report was refused");
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let took = started.elapsed();
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "{label:<9} clients {clients:>3}  {:>7.0} reports/s  ({} in {:.1} s)  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        all.len() as f64 / took.as_secs_f64(),
        all.len(),
        took.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        all.last().unwrap().as_secs_f64() * 1e3,
    );
    let stored = store.run_count().await.unwrap();
    assert_eq!(stored as usize, all.len(), "every 202 is a stored run");
    let _ = stop_tx.send(());
    let _ = server.await;
    service.stop(Duration::from_secs(30)).await;
}

fn main() {
    if !bench::asked() {
        return;
    }
    let clients = bench::env_or("TRIBUTARY_BENCH_CLIENTS", 50usize);
    let seconds = bench::env_or("TRIBUTARY_BENCH_SECONDS", 10u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench::on_both_backends(
        "bench_push",
        |backend, url| async move { measure(backend, &url, clients, seconds).await },
    ));
}

//! The push API under load, on SQLite and on Postgres, through the push API,
//! the writer (health, roll-up, rollups, events, reconciliation) and the
//! store; each 202 means what was pushed is stored.
//!
//! 1. Reports: N concurrent clients (one push token and one asset each)
//!    post reports over HTTP/1.1 keep-alive as fast as they are answered.
//!    Prints accepted reports per second and latency percentiles.
//! 2. Ids: a million ids pushed in 1,000-id NDJSON batches to the flow's
//!    upstream check and finished by a report, then the same less 1% to the
//!    downstream check, whose report is reconciled against the upstream's
//!    million. Prints the time of each, end to end.
//!
//! `cargo bench -p tributary-tests --bench push` prints the figures.
//! `TRIBUTARY_BENCH_CLIENTS` (default 50) and `TRIBUTARY_BENCH_SECONDS`
//! (default 10) set the reports' load, `TRIBUTARY_BENCH_IDS` (default
//! 1,000,000; 0 skips it) the ids'.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::clock::{SharedClock, SystemClock};
use tributary::config::{Options, parse_with};
use tributary::events::EventBus;
use tributary::push::PushApi;
use tributary::service::{Runs, Service};
use tributary::store::Store;
use tributary_tests::bench;
use tributary_tests::kit::hex_sha256;

fn token(i: usize) -> String {
    format!("trp_bench-client-{i}")
}

/// The downstream check's token (ids).
const DOWN_TOKEN: &str = "trp_bench-down";

fn config_text(db_url: &str, data: &str, clients: usize) -> String {
    let head = bench::config_head(db_url, data);
    let mut text = format!(
        r#"
{head}[[systems]]
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
id = "down"
system = "down"
connector = "push"
[checks.push]
rate = 1000000
tokens = [{{ name = "down", sha256 = "{down}" }}]
[[checks]]
id = "app"
system = "app"
connector = "push"
[checks.push]
rate = 1000000
"#,
        down = hex_sha256(DOWN_TOKEN)
    );
    for i in 0..clients {
        text.push_str(&format!(
            "[[checks.push.tokens]]\nname = \"client {i}\"\nsha256 = \"{}\"\n",
            hex_sha256(&token(i))
        ));
    }
    text
}

/// The daemon's service, push API and store, serving on loopback.
struct Daemon {
    base: String,
    service: Arc<Service>,
    store: Store,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(db_url: &str, clients: usize) -> Daemon {
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
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tributary::api::serve(listener, router, async {
            let _ = stop_rx.await;
        }));
        Daemon {
            base,
            service,
            store,
            stop,
            server,
            _dir: dir,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.service.stop(Duration::from_secs(30)).await;
    }
}

/// One kept-alive connection per client.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

async fn measure(label: &str, db_url: &str, clients: usize, seconds: u64) {
    let d = Daemon::start(db_url, clients).await;
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let url = format!("{}/push/v1/checks/app/reports", d.base);
            tokio::spawn(async move {
                let http = client();
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
    let stored = d.store.run_count().await.unwrap();
    assert_eq!(stored as usize, all.len(), "every 202 is a stored run");
    d.stop().await;
}

/// Ids pushed by each of this many connections at once, batches taken in turn.
const ID_STREAMS: usize = 4;
const ID_BATCH: usize = 1_000;

/// Pushes ids `0..count` less every `skip`-th (none when 0) to `check`'s
/// asset `docs` in NDJSON batches, then the report that finishes the set;
/// returns how long until that report's 202 (the set stored and
/// reconciled).
async fn push_ids(d: &Daemon, check: &str, token: &str, count: usize, skip: usize) -> Duration {
    let started = Instant::now();
    let batches = count.div_ceil(ID_BATCH);
    let streams: Vec<_> = (0..ID_STREAMS)
        .map(|stream| {
            let url = format!("{}/push/v1/checks/{check}/assets/docs/ids?set=all", d.base);
            let token = token.to_owned();
            tokio::spawn(async move {
                let http = client();
                for b in (stream..batches).step_by(ID_STREAMS) {
                    let mut body = String::with_capacity(ID_BATCH * 12);
                    for n in b * ID_BATCH..((b + 1) * ID_BATCH).min(count) {
                        if skip == 0 || n % skip != 0 {
                            body.push_str(&format!("\"id-{n:07}\"\n"));
                        }
                    }
                    let r = http
                        .post(&url)
                        .bearer_auth(&token)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    assert_eq!(status, 202, "a batch was refused: {text}");
                }
            })
        })
        .collect();
    for s in streams {
        s.await.unwrap();
    }
    let sent = count - if skip == 0 { 0 } else { count.div_ceil(skip) };
    let report = serde_json::json!({
        "observations": [{"asset": "docs", "kind": "documents", "counts": {"received": sent}}],
        "ids": {"docs": "all"},
    });
    let r = client()
        .post(format!("{}/push/v1/checks/{check}/reports", d.base))
        .bearer_auth(token)
        .json(&report)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, 202, "the report was refused: {text}");
    started.elapsed()
}

async fn measure_ids(label: &str, db_url: &str, count: usize) {
    let d = Daemon::start(db_url, 1).await;
    let upstream = push_ids(&d, "app", &token(0), count, 0).await;
    let downstream = push_ids(&d, "down", DOWN_TOKEN, count, 100).await;
    let rec = d
        .store
        .reconciliation("f", "down", "docs")
        .await
        .unwrap()
        .expect("the downstream set is reconciled");
    assert_eq!(rec.missing as usize, count.div_ceil(100), "{rec:?}");
    println!(
        "{label:<9} {count} ids in {ID_BATCH}-id NDJSON batches ({ID_STREAMS} connections): upstream {:.2} s, downstream reconciled against it {:.2} s ({} missing)",
        upstream.as_secs_f64(),
        downstream.as_secs_f64(),
        rec.missing,
    );
    d.stop().await;
}

fn main() {
    if !bench::asked() {
        return;
    }
    let clients = bench::env_or("TRIBUTARY_BENCH_CLIENTS", 50usize);
    let seconds = bench::env_or("TRIBUTARY_BENCH_SECONDS", 10u64);
    let ids = bench::env_or("TRIBUTARY_BENCH_IDS", 1_000_000usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(bench::on_both_backends(
        "bench_push",
        |backend, url| async move {
            if seconds > 0 {
                measure(backend, &url, clients, seconds).await;
            }
            if ids > 0 {
                measure_ids(backend, &url, ids).await;
            }
        },
    ));
}

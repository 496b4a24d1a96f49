//! The GraphQL API under load, over real HTTP and WebSocket on loopback:
//!
//! 1. two dashboard queries on one tenant with 100 flows × 10 systems, every
//!    system watched by a check with one asset: the overview (each flow's and
//!    each system's health) and the full page (also every check and asset with
//!    counts, freshness and history, and each flow's 90-day bars, 1.3 MB).
//!    For each, the time to build its answer from the store (one client,
//!    every query a new text), and latency p50 / p99 from 100 concurrent
//!    clients polling it;
//! 2. a health change caused by a real plugin run delivered to 1,000
//!    WebSocket subscribers: time from the bus publishing it to each client
//!    reading it, p50 / p99.
//!
//! `cargo bench -p tributary-tests --bench api` prints the figures.
//! `TRIBUTARY_BENCH_CLIENTS` (100), `TRIBUTARY_BENCH_QUERIES` (50 per
//! client), `TRIBUTARY_BENCH_SUBSCRIBERS` (1000) and `TRIBUTARY_BENCH_ROUNDS`
//! (5) change the load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tributary::events::Received;
use tributary::health::EntityRef;
use tributary_tests::bench::{self, fleet_daemon, percentile};
use tributary_tests::gql::{Client, DASHBOARD, Protocol, Subscription};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap()),
    );
}

fn main() {
    bench::run(bench());
}

async fn bench() {
    let clients = env_or("TRIBUTARY_BENCH_CLIENTS", 100);
    let queries = env_or("TRIBUTARY_BENCH_QUERIES", 50);
    let subscribers = env_or("TRIBUTARY_BENCH_SUBSCRIBERS", 1000);
    let rounds = env_or("TRIBUTARY_BENCH_ROUNDS", 5);
    let (flows, systems) = (100, 10);

    let (d, fake, _service) = fleet_daemon(flows, systems, |text| text).await;
    let api = Client::new(d.serve_api().await);

    // 1. The dashboard queries: the overview (flows with the health of each
    // system) and the whole page (with every asset and 90-day bars).
    for (name, query) in [("overview", OVERVIEW), ("full page", DASHBOARD)] {
        dashboard(&api, name, query, clients, queries).await;
    }

    // 2. One health change to many subscribers.
    let asset = EntityRef::Asset {
        check: "c0-0".into(),
        asset: "documents".into(),
    };
    let id = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(tributary::store::entity_key(&asset))
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut subs = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        subs.push(
            Subscription::start(
                api.base(),
                Protocol::TransportWs,
                Some("viewer-token"),
                "subscription($f: HealthEventFilter) { healthChanged(filter: $f) { seq to } }",
                json!({"f": {"entity": id}}),
            )
            .await
            .expect("subscribed"),
        );
    }
    for mut sub in subs {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(_)) = sub.next(Duration::from_secs(120)).await {
                let _ = tx.send(Instant::now());
            }
        });
    }
    println!("{subscribers} WebSocket subscribers open");
    let mut delivery = Vec::new();
    for round in 0..rounds {
        let mut bus = d.bus.health_events();
        // Fail (auth) then recover: the asset changes health each round.
        fake.lock().unwrap().fail_with = (round % 2 == 0).then_some(401);
        d.run_now("c0-0").await;
        let published = loop {
            match bus.recv().await {
                Received::Message(e) if e.entity == asset => break Instant::now(),
                Received::Closed => panic!("bus closed"),
                _ => continue,
            }
        };
        for _ in 0..subscribers {
            let got = tokio::time::timeout(Duration::from_secs(60), rx.recv())
                .await
                .expect("every subscriber hears the change")
                .unwrap();
            delivery.push(got.saturating_duration_since(published));
        }
    }
    report(
        &format!("health change to {subscribers} subscribers"),
        delivery,
    );
    d.service.stop(Duration::from_secs(5)).await;
}

/// A status page's first screen: every flow of the tenant with its health and
/// the health of each of its systems.
const OVERVIEW: &str = r#"
query Overview($search: String) {
  tenants(search: $search, first: 1) { nodes {
    name health { status }
    flows(first: 100) { nodes {
      id name health { status since reasons { message } }
      upstream { name health { status } }
      downstream { name health { status } }
    } }
  } }
}"#;

/// Times `query` built from the store (one client, every text new), then
/// from `clients` clients polling it `queries` times each.
async fn dashboard(api: &Client, name: &str, query: &str, clients: usize, queries: usize) {
    let vars = json!({"search": "acme"});
    let (_, size) = api
        .query_size(Some("viewer-token"), query, vars.clone())
        .await;
    println!("{name}: {} KiB per answer", size / 1024);
    let mut cold = Vec::new();
    for i in 0..10 {
        let q = format!("{query}\n# cold {i}");
        let t = Instant::now();
        let (status, _) = api.query_size(Some("viewer-token"), &q, vars.clone()).await;
        cold.push(t.elapsed());
        assert_eq!(status, 200);
    }
    report(&format!("{name} built (1 client, no reuse)"), cold);

    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (api, latencies, query, vars) = (
            api.clone(),
            latencies.clone(),
            query.to_owned(),
            vars.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Steady state: the first build is the figure above.
            api.query_size(Some("viewer-token"), &query, vars.clone())
                .await;
            for _ in 0..queries {
                let t = Instant::now();
                let (status, _) = api
                    .query_size(Some("viewer-token"), &query, vars.clone())
                    .await;
                let took = t.elapsed();
                assert_eq!(status, 200);
                latencies.lock().unwrap().push(took);
            }
        }));
    }
    let wall = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let wall = wall.elapsed();
    let samples = std::mem::take(&mut *latencies.lock().unwrap());
    println!(
        "{name}: {} queries from {clients} clients in {:.1} s ({:.0}/s)",
        samples.len(),
        wall.as_secs_f64(),
        samples.len() as f64 / wall.as_secs_f64()
    );
    report(&format!("{name} latency, {clients} clients"), samples);
}

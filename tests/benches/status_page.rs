//! The public status page on the 1,000-check set of the API bench (tenant
//! `acme` made public: 100 flows × 10 systems, each system watched by one
//! check), served over real HTTP on loopback without a token:
//!
//! 1. its size, plain and gzipped (what a browser gets);
//! 2. server time of the first request (a render), and of each request
//!    after the answer kept for 5 s expired (one client, spaced out: served
//!    the kept answer while the next renders in the background), p50 / p99;
//! 3. latency from 100 concurrent clients polling it (kept answers, with a
//!    render whenever one expires), p50 / p99;
//! 4. first contentful paint in Debian's Chromium (tests/js/fcp.mjs),
//!    fresh browser context per load, p50 / p99.
//!
//! `cargo bench -p tributary-tests --bench status_page` prints the figures.
//! `TRIBUTARY_BENCH_CLIENTS` (100), `TRIBUTARY_BENCH_QUERIES` (50 per
//! client), `TRIBUTARY_BENCH_COLD` (10 renders) and `TRIBUTARY_BENCH_LOADS`
//! (20 browser loads) change the load.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary_tests::bench::{env_or, first_contentful_paints, fleet_daemon, percentile, run};

fn report(what: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{what}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        ms.len(),
        percentile(&ms, 0.50),
        percentile(&ms, 0.99),
        ms.last().unwrap(),
    );
}

fn main() {
    run(bench());
}

/// The body bytes of `url` as sent with `Accept-Encoding: encoding`.
async fn size(http: &reqwest::Client, url: &str, encoding: &str) -> usize {
    let answer = http
        .get(url)
        .header("accept-encoding", encoding)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap().len()
}

async fn bench() {
    let clients: usize = env_or("TRIBUTARY_BENCH_CLIENTS", 100);
    let queries: usize = env_or("TRIBUTARY_BENCH_QUERIES", 50);
    let cold: usize = env_or("TRIBUTARY_BENCH_COLD", 10);
    let loads: usize = env_or("TRIBUTARY_BENCH_LOADS", 20);
    let (flows, systems) = (100, 10);

    let (d, _fake, _service) = fleet_daemon(flows, systems, |text| {
        let public = text.replace(
            "[[tenants]]\nid = \"acme\"\nname = \"Acme\"\n",
            "[[tenants]]\nid = \"acme\"\nname = \"Acme\"\npublic = true\n",
        );
        assert_ne!(public, text, "tenant acme is made public");
        public
    })
    .await;
    let base = d.serve_api().await;
    let url = format!("{base}/status/acme");
    let http = reqwest::Client::new();

    // 1. The first request renders (the only one a visitor waits for);
    // the size.
    let t = Instant::now();
    size(&http, &url, "gzip").await;
    println!(
        "first request (renders): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    for encoding in ["identity", "gzip"] {
        println!(
            "page {encoding}: {:.1} KiB",
            size(&http, &url, encoding).await as f64 / 1024.0
        );
    }

    // 2. Each request after the kept answer expired: served that answer
    // while its successor renders in the background.
    let mut expired = Vec::new();
    for _ in 0..cold {
        tokio::time::sleep(Duration::from_millis(5100)).await;
        let t = Instant::now();
        size(&http, &url, "gzip").await;
        expired.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report(
        "1 client, answer expired (kept one served, render in background)",
        expired,
    );

    // 3. Many clients polling.
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, latencies) = (http.clone(), url.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..queries {
                let t = Instant::now();
                size(&http, &url, "gzip").await;
                latencies
                    .lock()
                    .unwrap()
                    .push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let served = std::mem::take(&mut *latencies.lock().unwrap());
    println!(
        "{} pages in {:.1} s: {:.0} pages/s",
        served.len(),
        started.elapsed().as_secs_f64(),
        served.len() as f64 / started.elapsed().as_secs_f64()
    );
    report(&format!("served ({clients} clients polling)"), served);

    // 4. First contentful paint in Chromium.
    let times = first_contentful_paints(&format!("{base}/status/acme"), loads, None).await;
    report("first contentful paint (Chromium, loopback)", times);
    d.service.stop(Duration::from_secs(5)).await;
}

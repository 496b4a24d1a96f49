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
//!    fresh browser context per load, p50 / p99;
//! 5. the page's latency for one client polling it every 10 ms while eight
//!    others ask for made-up asset badges (each a 404, kept), p50 / p99 /
//!    max: the flood must not make the page wait for renders.
//!
//! `cargo bench -p tributary-tests --bench status_page` prints the figures.
//! `TRIBUTARY_BENCH_CLIENTS` (100), `TRIBUTARY_BENCH_QUERIES` (50 per
//! client), `TRIBUTARY_BENCH_COLD` (10 renders), `TRIBUTARY_BENCH_LOADS`
//! (20 browser loads) and `TRIBUTARY_BENCH_FLOOD` (20,000 made-up badges)
//! change the load.

use std::sync::atomic::{AtomicBool, Ordering};
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
    let flood: usize = env_or("TRIBUTARY_BENCH_FLOOD", 20_000);
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

    // 5. A flood of made-up badge names while one client polls the page.
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (http, url, done) = (http.clone(), url.clone(), done.clone());
        tokio::spawn(async move {
            let mut polled = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                size(&http, &url, "gzip").await;
                polled.push(t.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            polled
        })
    };
    let started = Instant::now();
    let flooders: Vec<_> = (0..8)
        .map(|task| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                for i in (task..flood).step_by(8) {
                    let badge = format!("{base}/badge/asset:c0-0:made-up-{i}/health.svg");
                    let answer = http.get(&badge).send().await.unwrap();
                    assert_eq!(answer.status(), 404, "{badge}");
                }
            })
        })
        .collect();
    for flooder in flooders {
        flooder.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    println!(
        "{flood} made-up badges in {seconds:.1} s: {:.0}/s",
        flood as f64 / seconds
    );
    report(
        "page, 1 client polling during the flood",
        poller.await.unwrap(),
    );
    d.service.stop(Duration::from_secs(5)).await;
}

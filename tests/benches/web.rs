//! The web UI's tenant page on the API bench's 1,000-check set (tenant acme,
//! 100 flows × 10 systems, each system watched by one check with one asset,
//! every check run once, then one of them every second, as on a live daemon):
//! the time to answer `GET /tenants/acme` signed in (one browser, one request
//! after another, on loopback, so it is the server's time plus a loopback
//! round trip), back to back and paced, p50 / p99, and the size of the page
//! as sent compressed (gzip and br, as browsers ask) and uncompressed. The
//! first request is timed apart: it builds the API's answer, which the next
//! ones share (the API's answer cache, rebuilt behind them as runs and
//! events outdate it).
//!
//! Last, the first contentful paint of the page in Debian's Chromium
//! (tests/js/fcp.mjs), signed in by the same session cookie, each load in a
//! fresh browser context.
//!
//! `cargo bench -p tributary-tests --bench web` prints the figures;
//! `TRIBUTARY_BENCH_REQUESTS` (1,000) and `TRIBUTARY_BENCH_LOADS` (20) change
//! the counts.

use std::time::{Duration, Instant};

use tributary_tests::bench::{env_or, first_contentful_paints, fleet, percentile, run};

fn main() {
    run(bench());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench() {
    let requests: usize = env_or("TRIBUTARY_BENCH_REQUESTS", 1000);
    let (flows, systems) = (100, 10);
    // One check runs every second, so runs and health events keep being
    // published as on a live daemon (each outdates the kept answers).
    let (d, _service) = fleet(flows, systems, |text| {
        text.replacen("every = \"1h\"", "every = \"1s\"", 1)
    })
    .await;

    // The daemon's routes as `serve` mounts them: the API and the UI.
    let base = d.serve_api().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = http
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=viewer-token")
        .send()
        .await
        .unwrap();
    let cookie = signed.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = |encoding: &'static str| {
        let (http, cookie, url) = (http.clone(), cookie.clone(), format!("{base}/tenants/acme"));
        async move {
            // reqwest is built without decompression: the body is what
            // went over the wire.
            let response = http
                .get(url)
                .header("cookie", cookie)
                .header("accept-encoding", encoding)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap().len()
        }
    };
    // The first request builds the API's answer (nothing kept yet); the
    // next ones reuse it while nothing changes, rebuilding it in the
    // background at most once a second.
    let first = Instant::now();
    page("gzip").await;
    println!(
        "tenant page, first request (answer built): {:.1} ms",
        first.elapsed().as_secs_f64() * 1000.0
    );
    for encoding in ["identity", "gzip", "br"] {
        println!(
            "tenant page ({flows} flows, {} checks): {encoding} {:.1} KB",
            flows * systems,
            page(encoding).await as f64 / 1024.0
        );
    }
    // Back to back, then one every 10 ms: the paced ones span a run of the
    // one-second check every hundred requests.
    for (what, pause) in [
        ("back to back", Duration::ZERO),
        ("one every 10 ms", Duration::from_millis(10)),
    ] {
        let published = d.bus.published();
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            page("gzip").await;
            times.push(started.elapsed());
            tokio::time::sleep(pause).await;
        }
        times.sort();
        println!(
            "tenant page, one browser, {requests} requests {what} ({} runs and events published meanwhile): \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            d.bus.published() - published,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(percentile(&times, 1.0))
        );
    }

    let loads: usize = env_or("TRIBUTARY_BENCH_LOADS", 20);
    let mut paints =
        first_contentful_paints(&format!("{base}/tenants/acme"), loads, Some(&cookie)).await;
    paints.sort_by(f64::total_cmp);
    println!(
        "tenant page, first contentful paint (Chromium, loopback), {loads} loads: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&paints, 0.5),
        percentile(&paints, 0.99),
        percentile(&paints, 1.0)
    );
    d.service.stop(Duration::from_secs(5)).await;
}

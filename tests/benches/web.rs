//! The web UI's tenant page on the API bench's 1,000-check set (tenant acme,
//! 100 flows × 10 systems, each system watched by one check with one asset,
//! every check run once): the time to answer `GET /tenants/acme` signed in
//! (one browser, one request after another, on loopback, so it is the
//! server's time plus a loopback round trip), p50 / p99, and the size of the
//! page as sent compressed (gzip and br, as browsers ask) and uncompressed.
//! The first request is timed apart: it builds the API's answer, which the
//! next ones share (the API's answer cache) while nothing changes.
//!
//! `cargo bench -p tributary-tests --bench web` prints the figures;
//! `TRIBUTARY_BENCH_REQUESTS` (200) changes the count.

use std::time::{Duration, Instant};

use tributary_tests::bench::{env_or, fleet, run};

fn main() {
    run(bench());
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn bench() {
    let requests: usize = env_or("TRIBUTARY_BENCH_REQUESTS", 200);
    let (flows, systems) = (100, 10);
    let (d, _service) = fleet(flows, systems, |text| text).await;

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
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        page("gzip").await;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "tenant page, one browser, {requests} requests: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0)
    );
    d.service.stop(Duration::from_secs(5)).await;
}

//! Faults the daemon must survive, each as an operator would meet it.
//!
//! The database going away: the daemon runs on Postgres through a TCP proxy
//! (`tributary_tests::proxy`) that the test cuts for 30 s, so the server
//! disappears for this daemon only and the other tests sharing the local
//! Postgres go on. (SIGKILL mid-write, a corrupt plugin file and an invalid
//! config on disk are shown in `daemon.rs` and `api.rs`.)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tributary::store::Store;
use tributary::store::testing::PgScratch;
use tributary_tests::gql::Client;
use tributary_tests::kit::{Fake, doc_ids, document_service, eventually, fleet_text, start_live};
use tributary_tests::proxy::Proxy;

/// How long the database stays away.
const OUTAGE: Duration = Duration::from_secs(30);

/// The value of `series` in a `/metrics` text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// The sum of every series whose name and labels start with `prefix`.
fn sum(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `host:port` of a `postgres://user@host:port/db?...` URL.
fn authority(url: &str) -> &str {
    let rest = &url[url
        .find('@')
        .map_or(url.find("://").unwrap() + 3, |at| at + 1)..];
    &rest[..rest.find('/').unwrap_or(rest.len())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_for_30_s_loses_no_run_and_the_api_says_unavailable_meanwhile() {
    let scratch = PgScratch::new("outage").await.unwrap();
    let server = authority(&scratch.url).to_owned();
    let target: SocketAddr = tokio::net::lookup_host(&server)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    let url = scratch.url.replace(&server, &proxy.addr().to_string());

    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    // Ten checks every second: load enough to fill a buffer quickly.
    let text =
        fleet_text(dir.path(), 2, 5, &service.url()).replace(r#"every = "1h""#, r#"every = "1s""#);
    let sqlite_line = text
        .lines()
        .find(|l| l.starts_with("url = \"sqlite://"))
        .unwrap()
        .to_owned();
    let text = text.replace(&sqlite_line, &format!("url = \"{url}\""));
    let d = start_live(dir, &text).await;
    d.wait_total_runs(20).await;
    let api = Client::new(d.serve_api().await);

    proxy.cut();
    let back_at = tokio::time::Instant::now() + OUTAGE;
    // Runs go on and wait in the buffer.
    eventually("runs to be held while the database is away", || async {
        let m = d.service.metrics_text();
        (metric(&m, "tributary_write_buffer_runs") >= 30.0).then_some(())
    })
    .await;
    // The API says so, rather than hanging or answering stale data as fresh.
    let answer = api
        .query(
            Some("viewer-token"),
            r#"query($n: Int) { check(key: "c0-0") { runs(first: $n) { nodes { outcome } } } }"#,
            json!({"n": 7}),
        )
        .await;
    assert_eq!(
        answer.body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{}",
        answer.text
    );
    assert_eq!(api.get("/readyz").await.status, 503);
    // The outage lasts its full length, whatever the test did meanwhile.
    tokio::time::sleep_until(back_at).await;
    let held = metric(&d.service.metrics_text(), "tributary_write_buffer_runs");
    assert!(held >= 30.0, "{held} runs held after {OUTAGE:?}");
    proxy.restore();

    eventually("the held runs to be written", || async {
        let m = d.service.metrics_text();
        (metric(&m, "tributary_write_buffer_runs") == 0.0).then_some(())
    })
    .await;
    eventually("the API to answer again", || async {
        (api.get("/readyz").await.status == 200).then_some(())
    })
    .await;
    d.service.stop(Duration::from_secs(10)).await;

    // Nothing lost: every run the daemon finished is stored, and so is every
    // health change it published, in sequence order. (A Postgres sequence
    // may skip the numbers of a transaction the cut aborted: order is the
    // promise, not contiguity.)
    let metrics = d.service.metrics_text();
    assert_eq!(metric(&metrics, "tributary_runs_dropped_total"), 0.0);
    let store = Store::open(&scratch.url).await.unwrap();
    let stored = store.run_count().await.unwrap();
    // Every run the runner finished, whatever its outcome.
    assert_eq!(
        stored as f64,
        sum(&metrics, "tributary_runs_total{"),
        "{metrics}"
    );
    let events = store.events_after(0, 100_000).await.unwrap();
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        events.len() as f64,
        sum(&metrics, "tributary_health_events_total{"),
        "{metrics}"
    );
    store.close().await;
    scratch.drop_schema().await.unwrap();
}

//! How soon the `tributary` binary is ready again after a SIGKILL in the middle
//! of writing: the time from spawning it to `/readyz` answering 200, on a
//! SQLite file that a daemon with 40 checks a second was committing to.
//!
//! `cargo build --release -p tributary && cargo bench -p tributary-tests --bench restart`
//! prints the figures. `TRIBUTARY_BENCH_RESTARTS` (default 10) sets how many
//! kills and restarts are timed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary::store::Store;
use tributary_tests::gql::Client;
use tributary_tests::kit::{Fake, config_text, doc_ids, document_service};

async fn runs(db_url: &str) -> u64 {
    match Store::open(db_url).await {
        Ok(store) => {
            let n = store.run_count().await.unwrap_or(0);
            store.close().await;
            n
        }
        Err(_) => 0,
    }
}

async fn wait_runs(db_url: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while runs(db_url).await < at_least {
        assert!(Instant::now() < deadline, "the daemon stopped writing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let restarts: usize = std::env::var("TRIBUTARY_BENCH_RESTARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(50),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = tributary_tests::kit::free_port();
    let url = service.url();
    let ids: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let checks: Vec<(&str, &str, &str, &str)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let system = if i % 2 == 0 { "ingest" } else { "warehouse" };
            (id.as_str(), system, url.as_str(), "")
        })
        .collect();
    let text = config_text(dir.path(), &checks)
        .replace(r#"every = "1h""#, r#"every = "1s""#)
        .replace(
            "[storage]",
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]"),
        );
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, text).unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("tributary.db").display());
    let api = Client::new(format!("http://127.0.0.1:{port}"));

    let mut child = tributary_tests::kit::serve_quietly(&file);
    wait_runs(&db_url, 200).await;
    let mut ready = Vec::new();
    for _ in 0..restarts {
        child.kill().unwrap(); // SIGKILL while runs commit every few ms
        child.wait().unwrap();
        let before = runs(&db_url).await;
        let started = Instant::now();
        child = tributary_tests::kit::serve_quietly(&file);
        loop {
            if api.get("/readyz").await.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not ready in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        ready.push(started.elapsed());
        wait_runs(&db_url, before + 80).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    ready.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let size = std::fs::metadata(dir.path().join("tributary.db")).map_or(0, |m| m.len());
    println!(
        "restart after SIGKILL, {restarts} times, 40 checks/s, {} runs in a {:.1} MB SQLite file:",
        runs(&db_url).await,
        size as f64 / 1e6
    );
    println!(
        "  spawn to /readyz 200: median {:.0} ms, max {:.0} ms",
        ms(ready[ready.len() / 2]),
        ms(*ready.last().unwrap())
    );
}

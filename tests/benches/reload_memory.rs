//! What refused reloads of a big broken config cost the `tributary` binary:
//! its resident memory before, after each of five refused reloads of a 5 MB
//! file of 48,000 broken checks and after a good one, and how long each
//! reload and `tributary validate` of that file take.
//!
//! `cargo build --release -p tributary && cargo bench -p tributary-tests --bench reload_memory`
//! prints the figures. `TRIBUTARY_BENCH_BAD_CHECKS` (default 48000) sets how
//! many broken checks the file holds.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_tests::bench;
use tributary_tests::gql::Client;
use tributary_tests::kit::{Fake, config_text, daemon_binary, doc_ids, document_service};

/// `n` broken checks of about 100 bytes each: an unknown system, a bad
/// timeout, an interval of 0 and a config missing its required fields.
fn broken_checks(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[checks]]\nid=\"b{i}\"\nsystem=\"x{i}\"\nconnector=\"example\"\ntimeout=\"z\"\nschedule={{every=\"0s\"}}\n"
            )
        })
        .collect()
}

async fn reloads(api: &Client) -> (i64, i64) {
    let a = api
        .query(
            Some("admin-token"),
            "{ daemon { config { reloadsSucceeded reloadsFailed } } }",
            json!({}),
        )
        .await;
    let c = &a.body["data"]["daemon"]["config"];
    (
        c["reloadsSucceeded"].as_i64().unwrap_or(-1),
        c["reloadsFailed"].as_i64().unwrap_or(-1),
    )
}

fn hup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Sends SIGHUP and waits until the reload counted in `done` moves on.
async fn reload(api: &Client, pid: u32, want: (i64, i64)) -> Duration {
    let started = Instant::now();
    hup(pid);
    while reloads(api).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no reload within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Resident memory once it has stopped moving (the daemon settles after a
/// reload), in MiB.
async fn settled_rss(pid: u32) -> f64 {
    let mut last = bench::status_mib(&pid.to_string(), "VmRSS");
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = bench::status_mib(&pid.to_string(), "VmRSS");
        if (now - last).abs() < 1.0 {
            return now;
        }
        last = now;
    }
}

#[tokio::main]
async fn main() {
    let bad: usize = std::env::var("TRIBUTARY_BENCH_BAD_CHECKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48_000);
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = tributary_tests::kit::free_port();
    // A plugin folder of its own, holding the one plugin the config uses.
    let example = tributary_tests::plugin("example");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(&example, plugins.join("example.wasm")).unwrap();
    let good = config_text(dir.path(), &[("ingest-docs", "ingest", &service.url(), "")])
        .replace(
            &format!("plugins_dir = \"{}\"", example.parent().unwrap().display()),
            &format!("plugins_dir = \"{}\"", plugins.display()),
        )
        .replace(
            "[storage]",
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]"),
        );
    let broken = format!("{good}\n{}", broken_checks(bad));
    let file = dir.path().join("tributary.toml");
    let broken_file = dir.path().join("broken").join("tributary.toml");
    std::fs::create_dir(broken_file.parent().unwrap()).unwrap();
    std::fs::write(&broken_file, &broken).unwrap();
    std::fs::write(&file, &good).unwrap();
    println!(
        "broken file: {:.1} MB, {bad} broken checks",
        broken.len() as f64 / 1e6
    );

    let validate = |file: &Path| {
        let started = Instant::now();
        let out = Command::new(daemon_binary())
            .arg("validate")
            .arg(file)
            .output()
            .unwrap();
        (started.elapsed(), out)
    };
    let skip_validate = std::env::var_os("TRIBUTARY_BENCH_SKIP_VALIDATE").is_some();
    let (took, out) = if skip_validate {
        (Duration::ZERO, Command::new("true").output().unwrap())
    } else {
        validate(&broken_file)
    };
    println!(
        "tributary validate: {:.2} s, {} lines printed, {}",
        took.as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).lines().count(),
        String::from_utf8_lossy(&out.stderr).trim()
    );

    let mut child = tributary_tests::kit::serve_quietly(&file);
    let pid = child.id();
    let api = Client::new(format!("http://127.0.0.1:{port}"));
    while api.get("/readyz").await.status != 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = settled_rss(pid).await;
    println!("RSS after start: {before:.0} MiB");
    std::fs::write(&file, &broken).unwrap();
    // The watcher reloads the saved file: that is refused reload 1.
    let started = Instant::now();
    while reloads(&api).await != (0, 1) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "refused reload 1 (file watcher): {:.2} s, RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        settled_rss(pid).await
    );
    for n in 2..=5 {
        let took = reload(&api, pid, (0, n)).await;
        println!(
            "refused reload {n} (SIGHUP): {:.2} s, RSS {:.0} MiB",
            took.as_secs_f64(),
            settled_rss(pid).await
        );
    }
    let after = settled_rss(pid).await;
    let error = api
        .query(
            Some("admin-token"),
            "{ daemon { config { lastReloadError } } }",
            json!({}),
        )
        .await;
    let error = error.body["data"]["daemon"]["config"]["lastReloadError"]
        .as_str()
        .unwrap_or_default()
        .len();
    println!(
        "after 5 refused reloads: RSS {after:.0} MiB ({:+.1} % of {before:.0} MiB); lastReloadError {error} bytes",
        (after / before - 1.0) * 100.0
    );
    std::fs::write(&file, &good).unwrap();
    let started = Instant::now();
    while reloads(&api).await != (1, 5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "good reload: {:.2} s, RSS {:.0} MiB",
        started.elapsed().as_secs_f64(),
        settled_rss(pid).await
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

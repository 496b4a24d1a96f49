//! `tributary run CHECK --config FILE` as a developer uses it: one run of a
//! real plugin against a fake service, its report and the health it gives,
//! nothing stored unless `--store`, and the exit code says whether it ran.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tributary_tests::kit::{Fake, config_text, daemon_binary, doc_ids, document_service};

fn run(file: &std::path::Path, args: &[&str]) -> Output {
    Command::new(daemon_binary())
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(file)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of the "health it gives" part of the text output.
fn health_lines(stdout: &str) -> impl Iterator<Item = &str> {
    stdout
        .lines()
        .skip_while(|l| *l != "health it gives:")
        .skip(1)
}

async fn stored_runs(db: &std::path::Path) -> u64 {
    let store = tributary::store::Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let n = store.run_count().await.unwrap();
    store.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_prints_its_report_and_health_and_stores_only_when_asked() {
    let fake = Arc::new(Mutex::new(Fake {
        ids: doc_ids(40),
        errors: vec![
            json!({"kind": "parse", "message": "bad date", "document_id": "doc-007",
                            "log_url": "https://logs.example/7"}),
        ],
        ..Fake::default()
    }));
    let service = document_service(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = "errors = { warn = \"0\", error = \"10\" }";
    let file = dir.path().join("tributary.toml");
    std::fs::write(
        &file,
        config_text(
            dir.path(),
            &[("ingest-docs", "ingest", &service.url(), rules)],
        ),
    )
    .unwrap();
    let db = dir.path().join("tributary.db");

    let out = run(&file, &["ingest-docs"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("check ingest-docs (example 0.1.0)"),
        "{stdout}"
    );
    assert!(stdout.contains(": succeeded in"), "{stdout}");
    assert!(stdout.contains("  documents [documents]"), "{stdout}");
    assert!(stdout.contains("received 40  errored 1"), "{stdout}");
    assert!(
        stdout.contains("parse doc-007: bad date https://logs.example/7"),
        "{stdout}"
    );
    // One parse error is more than the warn threshold: the asset and everything
    // above it would turn WARNING.
    for entity in [
        "asset documents of check ingest-docs",
        "check ingest-docs",
        "system ingest",
        "flow docs",
        "tenant acme",
    ] {
        let line = health_lines(&stdout)
            .find(|l| l.trim_start().starts_with(entity))
            .unwrap_or_else(|| panic!("no {entity} in\n{stdout}"));
        assert!(line.ends_with("WARNING"), "{line}");
    }
    assert!(stdout.contains("nothing was stored"), "{stdout}");
    assert!(
        !stdout.contains(tributary_tests::kit::TOKEN),
        "the token stays secret"
    );
    assert!(
        !db.exists(),
        "a dry run leaves the configured database alone"
    );

    let out = run(&file, &["ingest-docs", "--json", "--store"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["run"]["succeeded"], true);
    let o = &report["observations"][0];
    assert_eq!(
        (o["asset"].as_str(), o["received"].as_u64()),
        (Some("documents"), Some(40))
    );
    assert_eq!(o["error_totals"], json!({"parse": 1}));
    assert_eq!(o["errors"][0]["document_id"], "doc-007");
    let statuses: Vec<(&str, &str)> = report["health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["entity"].as_str().unwrap(), h["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("asset:ingest-docs:documents", "WARNING"),
            ("check:ingest-docs", "WARNING"),
            ("system:ingest", "WARNING"),
            ("flow:docs", "WARNING"),
            ("tenant:acme", "WARNING"),
        ]
    );
    assert_eq!(stored_runs(&db).await, 1, "--store keeps the run");

    // A run the service refuses: printed as failed, and the exit code says so.
    fake.lock().unwrap().fail_with = Some(401);
    let out = run(&file, &["ingest-docs"]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("FAILED (auth)"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("check ingest-docs") && l.ends_with("UNKNOWN")),
        "{stdout}"
    );
    assert_eq!(stored_runs(&db).await, 1, "the dry run stored nothing");

    let out = run(&file, &["no-such-check"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no check \"no-such-check\"")
            && text(&out.stderr).contains("ingest-docs"),
        "{}",
        text(&out.stderr)
    );
}

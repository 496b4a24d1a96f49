//! The sandbox suite: what the host does to a plugin that misbehaves, the
//! same for every language. Each language has a hostile plugin
//! (`plugins/testing/hostile` in Rust, `plugins-python/hostile`,
//! `plugin-tests/js/hostile`) that does what its check's `mode` says:
//!
//! | mode | does |
//! | --- | --- |
//! | `ok` | reports one asset, `hostile`, with `received` 1 |
//! | `raise` | raises (panics, throws) `hostile raised on purpose`, from every export |
//! | `loop` | spins forever |
//! | `alloc` | allocates without end |
//! | `http` | GETs `url` (a JSON array) and reports its length as `received` |
//! | `report` | reports `count` assets named by `length`-byte strings |
//!
//! Every attack must fail its own run with the same reason whatever the
//! language, and the same loaded plugin must then serve a good run. A test
//! file runs the suite for one component with [`hostile_suite!`]; tests only
//! one language has (Python's config parsing, a JS `throw undefined`) stay
//! in that language's file.

use std::path::Path;
use std::time::Duration;

use plugin_sdk::harness::plugin::{
    DeleteScope, DenyReason, ErrorClass, Limits, RunError, Violation,
};
use plugin_sdk::harness::{Harness, Reply, TestServer};
use serde_json::{Value, json};

/// One `#[tokio::test]` per attack, each running `$component` (an expression
/// giving the path of a hostile component, see the module docs).
#[macro_export]
macro_rules! hostile_suite {
    ($component:expr) => {
        $crate::hostile_suite!(@tests $component; raising_is_a_system_error_in_every_export, an_endless_loop_is_stopped_at_the_deadline, allocating_without_end_hits_the_memory_limit, a_host_that_is_not_granted_is_never_contacted, a_huge_report_fails_its_run);
    };
    (@tests $component:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::hostile::$name(&$component).await;
            }
        )*
    };
}

/// What every hostile plugin raises.
const RAISED: &str = "hostile raised on purpose";

async fn hostile(component: &Path, limits: Limits, grant: Option<&str>) -> Harness {
    let mut builder = Harness::builder(component.to_path_buf()).limits(limits);
    if let Some(grant) = grant {
        builder = builder.allow_host(grant);
    }
    builder.build().await.expect("the hostile plugin loads")
}

/// The failure was the run's only: the same plugin serves a good run.
async fn assert_still_runs(harness: &Harness) {
    let run = harness
        .collect(json!({"mode": "ok"}))
        .await
        .expect("a good run after a failed one");
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

fn assert_raised(export: &str, result: Result<(), RunError>) {
    let err = result.expect_err(export);
    assert_eq!(err.class(), ErrorClass::System, "{export}: {err}");
    assert!(err.to_string().contains(RAISED), "{export}: {err}");
}

pub async fn raising_is_a_system_error_in_every_export(component: &Path) {
    let h = hostile(component, Limits::default(), None).await;
    let raise = || json!({"mode": "raise"});
    assert_raised("collect", h.collect(raise()).await.map(drop));
    assert_raised("test-connection", h.test_connection(raise()).await);
    assert_raised("discover", h.discover(raise()).await.map(drop));
    let ids = ["doc-1".to_owned()];
    assert_raised("resync", h.resync(raise(), "hostile", &ids).await.map(drop));
    let scope = DeleteScope::Asset;
    assert_raised(
        "delete",
        h.delete(raise(), "hostile", &scope).await.map(drop),
    );
    assert_still_runs(&h).await;
}

pub async fn an_endless_loop_is_stopped_at_the_deadline(component: &Path) {
    let deadline = Duration::from_secs(2);
    let limits = Limits {
        deadline,
        ..Limits::default()
    };
    let h = hostile(component, limits, None).await;
    let err = h.collect(json!({"mode": "loop"})).await.unwrap_err();
    assert!(
        matches!(err, RunError::Timeout(d) if d == deadline),
        "{err}"
    );
    assert!(err.to_string().contains("deadline of 2s"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert_still_runs(&h).await;
}

pub async fn allocating_without_end_hits_the_memory_limit(component: &Path) {
    let h = hostile(component, Limits::default(), None).await;
    let err = h.collect(json!({"mode": "alloc"})).await.unwrap_err();
    match &err {
        RunError::Sandbox(Violation::Memory { limit, requested }) => {
            assert_eq!(*limit, Limits::default().memory_bytes);
            assert!(*requested > *limit, "{err}");
        }
        other => panic!("expected the memory limit, got {other}"),
    }
    assert!(err.to_string().contains("memory limit of"), "{err}");
    assert!(err.to_string().contains("raise limits.memory"), "{err}");
    assert_still_runs(&h).await;
}

pub async fn a_host_that_is_not_granted_is_never_contacted(component: &Path) {
    let server = TestServer::start(|_| Reply::json(200, json!([1, 2, 3]))).await;
    let cfg = json!({"mode": "http", "url": format!("{}/data", server.url())});
    let h = hostile(
        component,
        Limits::default(),
        Some("https://api.example.com"),
    )
    .await;
    let err = h.collect(cfg.clone()).await.unwrap_err();
    match &err {
        RunError::Sandbox(Violation::HostDenied { reason, .. }) => {
            assert_eq!(*reason, DenyReason::NotGranted, "{err}");
        }
        other => panic!("expected a denied host, got {other}"),
    }
    let hint = format!("add \"{}\" to its allowed_hosts", server.url());
    assert!(err.to_string().contains(&hint), "{err}");
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(server.requests().is_empty(), "the server was contacted");
    assert_still_runs(&h).await;

    // The same request with the grant goes through.
    let h = hostile(component, Limits::default(), Some(&server.url())).await;
    let run = h.collect(cfg).await.expect("a granted request");
    assert_eq!(run.report.observations[0].counts.received, Some(3));
    assert_eq!(server.requests().len(), 1);
}

pub async fn a_huge_report_fails_its_run(component: &Path) {
    let limit = 1 << 20;
    let limits = Limits {
        report_bytes: limit,
        ..Limits::default()
    };
    let h = hostile(component, limits, None).await;
    let cfg: Value = json!({"mode": "report", "count": 64, "length": 32 << 10});
    let err = h.collect(cfg).await.unwrap_err();
    match &err {
        RunError::ReportTooLarge { size, limit: l } => {
            assert_eq!(*l, limit);
            assert!(*size > 64 * (32 << 10), "{err}");
        }
        other => panic!("expected the report limit, got {other}"),
    }
    assert!(err.to_string().contains("raise limits.report"), "{err}");
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert_still_runs(&h).await;
}

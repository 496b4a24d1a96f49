//! The sandbox holds for Python plugins as for Rust ones: an exception, a
//! runaway loop or allocation, and a call to a host the check does not grant
//! each fail their own run with a clear reason (`plugins-python/hostile/`).

use std::time::Duration;

use plugin_sdk::harness::plugin::{DenyReason, ErrorClass, Limits, RunError, Violation};
use plugin_sdk::harness::{Harness, Reply, TestServer};
use serde_json::json;

async fn hostile(limits: Limits, allow: Option<&str>) -> Harness {
    let mut builder =
        Harness::builder(plugin_tests::python_plugin("plugins-python/hostile")).limits(limits);
    if let Some(grant) = allow {
        builder = builder.allow_host(grant);
    }
    builder.build().await.expect("the hostile plugin loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uncaught_exception_is_a_system_error_naming_it_not_a_trap() {
    let h = hostile(Limits::default(), None).await;
    for (mode, needle) in [
        ("raise", "ValueError: hostile raised on purpose"),
        ("recurse", "RecursionError"),
    ] {
        let err = h.collect(json!({"mode": mode})).await.unwrap_err();
        assert!(
            matches!(
                &err,
                RunError::Connector {
                    class: ErrorClass::System,
                    ..
                }
            ),
            "{mode}: {err}"
        );
        assert!(err.to_string().contains(needle), "{mode}: {err}");
    }
    // The same instance pool still serves a good run.
    let run = h.collect(json!({"mode": "ok"})).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_a_config_error_naming_the_field() {
    let h = hostile(Limits::default(), None).await;
    let err = h
        .collect(json!({"mode": "ok", "bytes": "many"}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(
        err.to_string()
            .contains("`bytes` must be an integer, got a string"),
        "{err}"
    );
    let err = h.collect(json!({"mdoe": "ok"})).await.unwrap_err();
    assert!(err.to_string().contains("unknown field `mdoe`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let limits = Limits {
        deadline: Duration::from_secs(1),
        ..Limits::default()
    };
    let h = hostile(limits, None).await;
    let err = h.collect(json!({"mode": "loop"})).await.unwrap_err();
    assert!(
        matches!(err, RunError::Timeout(d) if d == Duration::from_secs(1)),
        "{err}"
    );
    assert!(err.to_string().contains("deadline of 1s"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    let run = h.collect(json!({"mode": "ok"})).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_without_end_hits_the_memory_limit() {
    let h = hostile(Limits::default(), None).await;
    let err = h.collect(json!({"mode": "alloc"})).await.unwrap_err();
    match &err {
        RunError::Sandbox(Violation::Memory { limit, requested }) => {
            assert_eq!(*limit, Limits::default().memory_bytes);
            assert!(*requested > *limit);
        }
        other => panic!("expected a memory limit error, got {other}"),
    }
    assert!(err.to_string().contains("memory limit of"), "{err}");
    let run = h.collect(json!({"mode": "ok"})).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_granted_is_never_contacted() {
    let server = TestServer::start(|_| Reply::json(200, json!([1, 2, 3]))).await;
    let cfg = json!({"mode": "http", "url": format!("{}/data", server.url())});
    let h = hostile(Limits::default(), Some("https://api.example.com")).await;
    let err = h.collect(cfg.clone()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            RunError::Sandbox(Violation::HostDenied {
                reason: DenyReason::NotGranted,
                ..
            })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("add \"{}\" to its allowed_hosts", server.url())),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(server.requests().is_empty(), "the server was contacted");

    // The same request with the grant goes through.
    let h = hostile(Limits::default(), Some(&server.url())).await;
    let run = h.collect(cfg).await.expect("granted request");
    assert_eq!(run.report.observations[0].counts.received, Some(3));
    assert_eq!(server.requests().len(), 1);
}

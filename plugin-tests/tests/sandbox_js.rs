//! A hostile JavaScript plugin (`plugin-tests/js/hostile/`) cannot take the
//! host down: a throw, an endless loop, endless allocation and a request to a
//! host its check does not grant each fail their own run with a clear reason,
//! and the same plugin then runs normally.

use std::time::Duration;

use plugin_sdk::harness::plugin::{DenyReason, ErrorClass, Limits, RunError, Violation};
use plugin_sdk::harness::{Harness, Reply, TestServer};
use plugin_tests::js_plugin;
use serde_json::json;

async fn hostile() -> Harness {
    Harness::builder(js_plugin("plugin-tests/js/hostile/plugin.js"))
        .limits(Limits {
            deadline: Duration::from_secs(5),
            ..Limits::default()
        })
        .build()
        .await
        .expect("the hostile plugin loads")
}

/// The plugin still works after a failed run: the failure was the run's only.
async fn assert_still_runs(harness: &Harness) {
    let run = harness.collect(json!({"mode": "ok"})).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throw_of_anything_is_a_system_error_not_a_trap() {
    let harness = hostile().await;
    let err = harness.collect(json!({"mode": "throw"})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert!(err.to_string().contains("threw undefined"), "{err}");
    assert_still_runs(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let harness = hostile().await;
    let err = harness.collect(json!({"mode": "loop"})).await.unwrap_err();
    assert!(matches!(err, RunError::Timeout(_)), "{err}");
    assert_still_runs(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_without_end_fails_the_run() {
    let harness = hostile().await;
    let err = harness.collect(json!({"mode": "alloc"})).await.unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::Memory { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("raise limits.memory"), "{err}");
    assert_still_runs(&harness).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_granted_is_never_contacted() {
    let server = TestServer::start(|_| Reply::json(200, json!({}))).await;
    let harness = hostile().await;
    let err = harness
        .collect(json!({"mode": "fetch", "url": format!("{}/secret", server.url())}))
        .await
        .unwrap_err();
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
    assert!(server.requests().is_empty());
    assert_still_runs(&harness).await;
}

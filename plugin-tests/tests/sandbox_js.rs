//! The sandbox suite (`plugin_tests::hostile`) with the JavaScript hostile
//! plugin (`plugin-tests/js/hostile/`), what only JavaScript can do (throw a
//! value that is not an Error, return what the contract cannot carry), and
//! the JavaScript SDK's own work seen in the real host: its HTTP client
//! classifies failures like the Rust SDK's (`plugin-sdk/src/http.rs`) and its
//! id stream meets the host's id limit.

use std::time::Duration;

use plugin_sdk::harness::plugin::{ErrorClass, Limits, RunError, Violation};
use plugin_sdk::harness::{Harness, Reply, TestServer};
use plugin_tests::js_plugin;
use serde_json::json;

const HOSTILE: &str = "plugin-tests/js/hostile/plugin.js";

plugin_tests::hostile_suite!(js_plugin(HOSTILE));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throw_of_anything_or_a_result_of_the_wrong_type_is_a_system_error_not_a_trap() {
    let harness = Harness::builder(js_plugin(HOSTILE))
        .build()
        .await
        .expect("the hostile plugin loads");
    let err = harness.collect(json!({"mode": "throw"})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert!(err.to_string().contains("threw undefined"), "{err}");

    let err = harness
        .collect(json!({"mode": "return"}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert!(
        err.to_string()
            .contains("`collect` returned number, expected report(...)"),
        "{err}"
    );
    let err = harness
        .discover(json!({"mode": "return"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("`discover` returned number"),
        "{err}"
    );
    let err = harness
        .resync(json!({"mode": "return"}), "hostile", &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("`resync` returned number"),
        "{err}"
    );

    let run = harness.collect(json!({"mode": "ok"})).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_failures_are_classified_like_the_rust_sdk() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/ok" => Reply::json(200, json!({"n": 5})),
        "/busy" => Reply::json(429, json!({})).header("retry-after", "7"),
        "/down" => Reply::status(503),
        "/forbidden" => Reply::status(403),
        "/bad" => Reply::status(400),
        "/text" => Reply::status(200).body("not json"),
        "/slow" => Reply::json(200, json!({"n": 1})).delay(Duration::from_secs(30)),
        _ => Reply::status(404),
    })
    .await;
    let harness = Harness::builder(js_plugin(HOSTILE))
        .allow_host(&server.url())
        .build()
        .await
        .expect("the hostile plugin loads");
    let get = |path: &str, timeout_ms: u64| {
        harness.collect(json!({
            "mode": "client",
            "url": format!("{}{path}", server.url()),
            "timeout_ms": timeout_ms,
        }))
    };

    let run = get("/ok", 10_000).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(5));

    match get("/busy", 10_000).await.unwrap_err() {
        RunError::Connector {
            class: ErrorClass::Transient,
            retry_after,
            message,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(7)), "{message}");
            assert!(message.contains("429"), "{message}");
        }
        other => panic!("expected a transient error, got {other}"),
    }
    let cases = [
        ("/down", ErrorClass::Transient, "503"),
        ("/forbidden", ErrorClass::Auth, "403"),
        ("/bad", ErrorClass::Config, "400"),
        ("/missing", ErrorClass::Config, "404"),
        ("/text", ErrorClass::System, "not JSON"),
    ];
    for (path, class, says) in cases {
        let err = get(path, 10_000).await.unwrap_err();
        assert_eq!(err.class(), class, "{path}: {err}");
        assert!(err.to_string().contains(says), "{path}: {err}");
    }

    let err = get("/slow", 500).await.unwrap_err();
    assert!(
        matches!(
            &err,
            RunError::Connector {
                class: ErrorClass::Transient,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("timed out after 500 ms"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_stream_in_batches_and_the_id_limit_fails_the_run_clearly() {
    let harness = Harness::builder(js_plugin(HOSTILE))
        .limits(Limits {
            ids: 250,
            ..Limits::default()
        })
        .build()
        .await
        .expect("the hostile plugin loads");
    let run = harness
        .collect(json!({"mode": "ids", "count": 250}))
        .await
        .unwrap();
    let expected: Vec<String> = (0..250).map(|i| format!("id-{i}")).collect();
    assert_eq!(run.ids["hostile"], expected);
    assert_eq!(run.report.observations[0].counts.received, Some(250));

    let err = harness
        .collect(json!({"mode": "ids", "count": 1_000}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::Ids { limit: 250 })),
        "{err}"
    );
}

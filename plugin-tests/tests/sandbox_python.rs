//! The sandbox suite (`plugin_tests::hostile`) with the Python hostile
//! plugin (`plugins-python/hostile/`), and what only the Python SDK does:
//! parse the config into a dataclass, answer `describe` from the build, and
//! turn a `SystemExit` or a result of the wrong type into a `system` error.

use plugin_sdk::harness::Harness;
use plugin_sdk::harness::plugin::{ErrorClass, RunError};
use plugin_tests::python_plugin;
use serde_json::json;

const HOSTILE: &str = "plugins-python/hostile";

plugin_tests::hostile_suite!(python_plugin(HOSTILE));

async fn hostile() -> Harness {
    Harness::builder(python_plugin(HOSTILE))
        .build()
        .await
        .expect("the hostile plugin loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_a_config_error_naming_the_field() {
    let h = hostile().await;
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

/// Its `describe` raises whenever it runs after the build: the daemon gets
/// the answer the SDK took at build time, and no trap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_answers_from_the_build_even_when_it_would_raise_now() {
    let h = hostile().await;
    let d = h.plugin().descriptor();
    assert_eq!(d.name, "hostile-python");
    assert_eq!(d.version, "0.1.0");
    // Asked again, on a fresh instance, it answers the same.
    let again = h.plugin().describe().await.expect("describe answers");
    assert_eq!(&again, d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_exit_recursion_and_a_wrong_result_are_system_errors_not_traps() {
    let h = hostile().await;
    for (mode, needle) in [
        ("exit", "SystemExit: 3"),
        ("recurse", "RecursionError"),
        ("none", "collect returned NoneType, expected tributary.report(...)"),
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
    let run = h.collect(json!({"mode": "ok"})).await.unwrap();
    assert_eq!(run.report.observations[0].counts.received, Some(1));
}

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
        (
            "none",
            "collect returned NoneType, expected tributary.report(...)",
        ),
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

/// `describe` has no error in the contract: the SDK calls it at build time,
/// so an exception there fails the build, naming it.
#[test]
fn a_describe_that_raises_fails_the_build_naming_the_exception() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let app = std::env::temp_dir().join(format!("bad-describe-{}", std::process::id()));
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("app.py"),
        "import tributary as t\n\n\
         class Bad(t.Connector):\n    def describe(self):\n        raise KeyError('name')\n\n\
         Plugin = t.export(Bad)\n",
    )
    .unwrap();
    let output = std::process::Command::new(root.join("plugin-sdk-python/build.sh"))
        .arg(&app)
        .arg("-o")
        .arg(app.join("bad.wasm"))
        .output()
        .expect("run plugin-sdk-python/build.sh");
    let printed = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    let built = app.join("bad.wasm").exists();
    std::fs::remove_dir_all(&app).ok();
    assert!(!output.status.success() && !built, "it built:\n{printed}");
    assert!(
        printed.contains(
            "Bad.describe() raised KeyError: 'name'. It runs once, when the component is built"
        ),
        "{printed}"
    );
}

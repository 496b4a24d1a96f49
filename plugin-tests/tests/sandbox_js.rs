//! The sandbox suite (`plugin_tests::hostile`) with the JavaScript hostile
//! plugin (`plugin-tests/js/hostile/`), and what only JavaScript can do:
//! throw a value that is not an Error, return what the contract cannot carry.

use plugin_sdk::harness::Harness;
use plugin_sdk::harness::plugin::ErrorClass;
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

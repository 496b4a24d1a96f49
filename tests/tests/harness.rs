//! The SDK's test harness gives a plugin the time the test chose, through both
//! the run context and the WASI wall clock.

use plugin_sdk::harness::Harness;
use serde_json::json;
use tributary_tests::plugin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_sees_the_fixed_clock() {
    // 2026-11-20T10:00:00Z
    let harness = Harness::builder(plugin("probe"))
        .now_unix(1_795_168_800)
        .build()
        .await
        .unwrap();
    let run = harness.collect(json!({"mode": "clock"})).await.unwrap();
    let meta: std::collections::BTreeMap<_, _> = run.report.observations[0]
        .metadata
        .iter()
        .map(|m| (m.key.as_str(), m.value.as_str()))
        .collect();
    assert_eq!(meta["context_now"], "2026-11-20T10:00:00Z");
    assert_eq!(meta["wall_clock"], "2026-11-20T10:00:00Z");
}

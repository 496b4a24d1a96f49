//! No N+1: the SQL statements a dashboard query costs do not grow with the
//! number of flows and systems (counted by `tributary_tests::statements`).
//! Its own test binary: the counter is process-wide.

use std::sync::Arc;
use std::sync::Mutex;

use serde_json::json;
use tributary_tests::gql::{Client, DASHBOARD};
use tributary_tests::kit::{Fake, doc_ids, document_service, fleet_text, start_live};
use tributary_tests::statements;

/// The statements one dashboard query costs with `flows` × `systems`.
async fn dashboard_statements(flows: usize, systems: usize) -> usize {
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = fleet_text(dir.path(), flows, systems, &service.url());
    let d = start_live(dir, &text).await;
    d.wait_total_runs((flows * systems) as u64).await;
    let api = Client::new(d.serve_api().await);
    // Once to warm up (first connections), then counted.
    let warm = api
        .query(Some("viewer-token"), DASHBOARD, json!({"search": "acme"}))
        .await;
    let flows_seen = warm.data()["tenants"]["edges"][0]["node"]["flows"]["nodes"]
        .as_array()
        .unwrap()
        .len();
    // Config_text's own flow `docs` comes first.
    assert_eq!(flows_seen, flows + 1);
    // The count is process-wide, so the daemon's own background work (the
    // writer's sweeps, the alert dispatcher's safety poll) can land inside one
    // measurement; it only ever adds, so the query's cost is the least of
    // a few. Each text differs, so no answer kept from another is reused.
    let mut used = usize::MAX;
    for attempt in 0..5 {
        let measured = format!("{DASHBOARD}\n# measured {attempt}");
        let before = statements::issued();
        let a = api
            .query(Some("viewer-token"), &measured, json!({"search": "acme"}))
            .await;
        used = used.min(statements::issued() - before);
        let asset = &a.data()["tenants"]["edges"][0]["node"]["flows"]["nodes"][1]["downstream"][0]
            ["checks"][0]["assets"]["nodes"][0];
        assert_eq!(asset["counts"]["received"], 10, "the query read real data");
    }
    d.service.stop(std::time::Duration::from_secs(5)).await;
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_query_costs_the_same_statements_for_2_flows_as_for_12() {
    statements::count();

    let small = dashboard_statements(2, 2).await;
    let large = dashboard_statements(12, 4).await;
    assert!(small > 0, "statements are counted");
    assert_eq!(small, large, "statements grow with flows and systems");
    // Health, latest observations and history: one batch per level of the
    // query that asks, not one per entity.
    assert!(small <= 12, "{small} statements");
}

//! No N+1: the SQL statements a dashboard query costs do not grow with the
//! number of flows and systems. Statements are counted as sqlx reports them
//! (one `sqlx::query` event each), so nothing in the daemon is instrumented
//! for the test. Its own test binary: the counter is process-wide.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};
use tributary_tests::gql::{Client, DASHBOARD};
use tributary_tests::kit::{Fake, doc_ids, document_service, fleet_text, start_live};

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

struct CountStatements;

impl<S: tracing::Subscriber> Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

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
    // alert dispatcher's polls, the writer's sweeps) can land inside one
    // measurement; it only ever adds, so the query's cost is the least of
    // a few. Each text differs, so no answer kept from another is reused.
    let mut used = usize::MAX;
    for attempt in 0..5 {
        let measured = format!("{DASHBOARD}\n# measured {attempt}");
        let before = STATEMENTS.load(Ordering::SeqCst);
        let a = api
            .query(Some("viewer-token"), &measured, json!({"search": "acme"}))
            .await;
        used = used.min(STATEMENTS.load(Ordering::SeqCst) - before);
        let asset = &a.data()["tenants"]["edges"][0]["node"]["flows"]["nodes"][1]["downstream"][0]
            ["checks"][0]["assets"]["nodes"][0];
        assert_eq!(asset["counts"]["received"], 10, "the query read real data");
    }
    d.service.stop(std::time::Duration::from_secs(5)).await;
    used
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_query_costs_the_same_statements_for_2_flows_as_for_12() {
    let subscriber = Registry::default().with(
        CountStatements.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("sqlx::query", tracing::Level::TRACE),
        ),
    );
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let small = dashboard_statements(2, 2).await;
    let large = dashboard_statements(12, 4).await;
    assert!(small > 0, "statements are counted");
    assert_eq!(small, large, "statements grow with flows and systems");
    // Health, latest observations and history: one batch per level of the
    // query that asks, not one per entity.
    assert!(small <= 12, "{small} statements");
}

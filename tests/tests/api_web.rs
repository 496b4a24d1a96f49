//! The API as a browser app meets it, over real HTTP on loopback: answers a
//! client can read as GraphQL (codes on every refusal), times that read the
//! same live and stored, counts scoped to the token's tenant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tributary_tests::gql::{Client, Protocol, Subscription};
use tributary_tests::kit::{Daemon, Fake, doc_ids, flow_daemon};

use plugin_sdk::harness::TestServer;

const WAIT: Duration = Duration::from_secs(30);

/// The flow of `kit::flow_daemon` (tenant acme; tenant globex has nothing)
/// with its API served; the warehouse's ids can be changed.
struct World {
    d: Daemon,
    api: Client,
    warehouse: Arc<Mutex<Fake>>,
    _services: [TestServer; 2],
}

async fn world() -> World {
    let fake = |n| {
        Arc::new(Mutex::new(Fake {
            ids: doc_ids(n),
            ..Fake::default()
        }))
    };
    let warehouse = fake(100);
    let (d, services) = flow_daemon(fake(100), warehouse.clone()).await;
    let api = Client::new(d.serve_api().await);
    World {
        d,
        api,
        warehouse,
        _services: services,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_a_graphql_error_with_a_code() {
    let w = world().await;
    // The default limit is 256 KiB.
    let big = format!("{{ lastEventSeq }} #{}", "x".repeat(300 * 1024));
    let a = w.api.query(Some("viewer-token"), &big, json!({})).await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(a.codes(), ["BAD_USER_INPUT"], "{}", a.text);
    let message = a.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("limit of 262144 bytes"), "{message}");
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_health_event_carries_the_same_time_as_its_stored_copy() {
    let w = world().await;
    let mut sub = Subscription::start(
        w.api.base(),
        Protocol::TransportWs,
        Some("viewer-token"),
        "subscription { healthChanged { seq at } }",
        json!({}),
    )
    .await
    .unwrap();
    w.warehouse.lock().unwrap().ids = doc_ids(80);
    w.d.run_now("warehouse-docs").await;
    let live = sub.next(WAIT).await.expect("a live event").unwrap();
    let live = &live["healthChanged"];
    let stored = w
        .api
        .query(
            Some("viewer-token"),
            "{ healthEvents(first: 100) { nodes { seq at } } }",
            json!({}),
        )
        .await;
    let stored = stored.data()["healthEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == live["seq"])
        .cloned()
        .expect("the live event is stored");
    assert_eq!(live["at"], stored["at"]);
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_scoped_token_counts_only_its_tenant_in_daemon() {
    let w = world().await;
    let counts = |token: &'static str| {
        let api = w.api.clone();
        async move {
            let a = api
                .query(
                    Some(token),
                    "{ daemon { config { tenants flows checks } } }",
                    json!({}),
                )
                .await;
            a.data()["daemon"]["config"].clone()
        }
    };
    assert_eq!(
        counts("viewer-token").await,
        json!({"tenants": 2, "flows": 1, "checks": 2})
    );
    assert_eq!(
        counts("globex-viewer-token").await,
        json!({"tenants": 1, "flows": 0, "checks": 0})
    );
    w.d.service.stop(Duration::from_secs(5)).await;
}

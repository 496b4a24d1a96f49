//! The GraphQL API end to end over real HTTP and WebSocket on loopback: a
//! daemon running the real example plugin against a fake document service,
//! the API served as `tributary serve` serves it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tributary::health::EntityRef;
use tributary_tests::gql::{Client, DASHBOARD, Protocol, Refused, Subscription};
use tributary_tests::kit::{
    ApiFlow, Fake, config_text, daemon_binary, doc_ids, document_service, eventually,
    warehouse_asset,
};
use tributary_tests::plugin;

const WAIT: Duration = Duration::from_secs(30);

/// Flow `docs` (tenant acme) from `ingest` to `warehouse`, each watched by an
/// example check; the warehouse lacks 3 of the 100 ids and reports two
/// document errors.
type World = ApiFlow;

const LOST: [&str; 3] = ["doc-007", "doc-042", "doc-099"];

fn kept() -> Vec<String> {
    doc_ids(100)
        .into_iter()
        .filter(|i| !LOST.contains(&i.as_str()))
        .collect()
}

async fn world() -> World {
    let warehouse = Fake {
        ids: kept(),
        errors: vec![
            json!({"kind": "parse", "message": "bad header", "document_id": "doc-001",
                   "log_url": "https://logs.example/1"}),
            json!({"kind": "schema", "message": "missing title", "document_id": "doc-002"}),
        ],
        ..Fake::default()
    };
    ApiFlow::start(warehouse, "").await
}

fn id_of(entity: &EntityRef) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tributary::store::entity_key(entity))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_query_shows_counts_health_reasons_and_history() {
    let w = world().await;
    let a = w
        .api
        .query(Some("viewer-token"), DASHBOARD, json!({"search": "ACM"}))
        .await;
    let data = a.data();
    let tenants = data["tenants"]["edges"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "search ACM finds only acme: {data}");
    let acme = &tenants[0]["node"];
    assert_eq!(acme["key"], "acme");
    assert_eq!(acme["health"]["status"], "WARNING");
    let flow = &acme["flows"]["nodes"][0];
    assert_eq!(flow["key"], "docs");
    assert_eq!(flow["health"]["status"], "WARNING");
    // A roll-up's reason names the child it comes from.
    assert_eq!(flow["health"]["reasons"][0]["rule"], "COMPLETENESS");
    assert!(flow["health"]["reasons"][0]["childId"].is_string());
    assert_eq!(flow["upstream"]["key"], "ingest");
    assert_eq!(flow["upstream"]["health"]["status"], "HEALTHY");
    let check = &flow["downstream"][0]["checks"][0];
    assert_eq!(check["key"], "warehouse-docs");
    assert_eq!(check["schedule"], "every 1h");
    assert!(check["lastSuccess"].is_string());
    let asset = &check["assets"]["nodes"][0];
    assert_eq!(asset["key"], "documents");
    assert_eq!(
        asset["counts"],
        json!({"expected": 100, "received": 97, "missing": 3, "errored": 2})
    );
    assert_eq!(asset["freshness"]["updatedAt"], "2026-11-20T10:00:00+00:00");
    assert!(asset["freshness"]["ageSeconds"].as_f64().unwrap() > 0.0);
    assert_eq!(asset["health"]["status"], "WARNING");
    assert_eq!(asset["health"]["reasons"][0]["rule"], "COMPLETENESS");
    let days = asset["history"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert!(days[..2].iter().all(|d| d["status"].is_null()));
    assert_eq!(days[2]["status"], "WARNING", "today's bucket: {}", days[2]);
    assert!(days[2]["runs"].as_i64().unwrap() >= 2);
    assert_eq!(flow["history"].as_array().unwrap().len(), 90);

    // Another search finds nothing; an out-of-range page is refused.
    let none = w
        .api
        .query(
            Some("viewer-token"),
            DASHBOARD,
            json!({"search": "initech"}),
        )
        .await;
    assert_eq!(none.data()["tenants"]["edges"], json!([]));
    let big = w
        .api
        .query(
            Some("viewer-token"),
            "{ tenants(first: 101) { nodes { key } } }",
            json!({}),
        )
        .await;
    assert_eq!(big.codes(), ["BAD_USER_INPUT"]);

    // The same query again after a run changed the asset: the answer follows
    // (a kept answer is dropped once the run is published).
    w.warehouse.lock().unwrap().ids = doc_ids(80);
    w.d.run_now("warehouse-docs").await;
    eventually("the dashboard to show the new run", || async {
        let a = w
            .api
            .query(Some("viewer-token"), DASHBOARD, json!({"search": "ACM"}))
            .await;
        let asset = &a.data()["tenants"]["edges"][0]["node"]["flows"]["nodes"][0]["downstream"][0]
            ["checks"][0]["assets"]["nodes"][0];
        (asset["health"]["status"] == "UNHEALTHY" && asset["counts"]["missing"] == 20).then_some(())
    })
    .await;
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_ids_errors_runs_and_events_page_and_filter() {
    let w = world().await;
    let asset = id_of(&warehouse_asset());
    let q = r#"query($id: ID!, $after: String, $kind: String) { node(id: $id) { ... on Asset {
        missingIds(first: 2, after: $after) { edges { cursor node } pageInfo { hasNextPage } }
        errors(filter: {kind: $kind}) { nodes { kind message documentId logLink runId } }
        check { runs(first: 1) { edges { cursor node { outcome durationMs trigger errorClass } }
                                 pageInfo { hasNextPage } } }
    } } }"#;
    let page1 = w
        .api
        .query(
            Some("viewer-token"),
            q,
            json!({"id": asset, "kind": "parse"}),
        )
        .await;
    let node = &page1.data()["node"];
    let ids = &node["missingIds"];
    assert_eq!(ids["edges"][0]["node"], "doc-007");
    assert_eq!(ids["edges"][1]["node"], "doc-042");
    assert_eq!(ids["pageInfo"]["hasNextPage"], true);
    let errors = node["errors"]["nodes"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e["kind"] == "parse"));
    assert_eq!(errors[0]["documentId"], "doc-001");
    assert_eq!(errors[0]["logLink"], "https://logs.example/1");
    let runs = &node["check"]["runs"];
    assert_eq!(runs["edges"][0]["node"]["outcome"], "SUCCEEDED");
    assert_eq!(runs["edges"][0]["node"]["trigger"], "MANUAL");
    assert!(runs["edges"][0]["node"]["durationMs"].as_f64().unwrap() > 0.0);
    assert_eq!(runs["pageInfo"]["hasNextPage"], true);

    let after = ids["edges"][1]["cursor"].as_str().unwrap();
    let page2 = w
        .api
        .query(
            Some("viewer-token"),
            q,
            json!({"id": asset, "after": after}),
        )
        .await;
    let ids = &page2.data()["node"]["missingIds"];
    assert_eq!(ids["edges"].as_array().unwrap().len(), 1);
    assert_eq!(ids["edges"][0]["node"], "doc-099");
    assert_eq!(ids["pageInfo"]["hasNextPage"], false);
    let by_doc = w
        .api
        .query(
            Some("viewer-token"),
            r#"query($id: ID!) { node(id: $id) { ... on Asset {
                errors(filter: {documentId: "doc-002"}) { nodes { kind documentId } } } } }"#,
            json!({"id": asset}),
        )
        .await;
    let errors = by_doc.data()["node"]["errors"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e["kind"] == "schema" && e["documentId"] == "doc-002")
    );

    // Events: everything, then only WARNING or worse of the flow, paged.
    let events = |filter: Value, after: Option<String>| {
        let api = w.api.clone();
        async move {
            api.query(
                Some("viewer-token"),
                r#"query($f: HealthEventFilter, $after: String) {
                    healthEvents(filter: $f, first: 2, after: $after) {
                        edges { cursor node { seq entityKind entityKey from to } }
                        pageInfo { hasNextPage } } }"#,
                json!({"f": filter, "after": after}),
            )
            .await
            .data()["healthEvents"]
                .clone()
        }
    };
    let flow = id_of(&EntityRef::Flow("docs".into()));
    let first = events(json!({"flow": flow, "minStatus": "WARNING"}), None).await;
    let edges = first["edges"].as_array().unwrap();
    assert!(!edges.is_empty());
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["to"] == "WARNING" && e["node"]["entityKind"] != "TENANT")
    );
    let all = events(json!({}), None).await;
    assert_eq!(all["edges"].as_array().unwrap().len(), 2);
    assert_eq!(all["pageInfo"]["hasNextPage"], true);
    let cursor = all["edges"][1]["cursor"].as_str().unwrap().to_owned();
    let next = events(json!({}), Some(cursor)).await;
    let s1 = all["edges"][1]["node"]["seq"].as_i64().unwrap();
    let s2 = next["edges"][0]["node"]["seq"].as_i64().unwrap();
    assert_eq!(s2, s1 + 1, "paged by sequence without a gap");
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_tenant_scope_are_enforced_everywhere() {
    let w = world().await;
    let flow = id_of(&EntityRef::Flow("docs".into()));
    let check = id_of(&EntityRef::Check("warehouse-docs".into()));

    let anon = w
        .api
        .query(None, "{ tenants { nodes { key } } }", json!({}))
        .await;
    assert_eq!(anon.codes(), ["UNAUTHENTICATED"]);
    let wrong = w
        .api
        .query(Some("guessed"), "{ tenants { nodes { key } } }", json!({}))
        .await;
    assert_eq!(
        (wrong.status, wrong.codes()),
        (401, vec!["UNAUTHENTICATED".to_owned()])
    );

    let run =
        r#"mutation($id: ID!) { runCheck(input: {checkId: $id}) { queued userErrors { code } } }"#;
    let viewer_run = w
        .api
        .query(Some("viewer-token"), run, json!({"id": check}))
        .await;
    assert_eq!(viewer_run.codes(), ["FORBIDDEN"]);
    let delete =
        r#"mutation($id: ID!) { deleteData(input: {assetId: $id}) { userErrors { code } } }"#;
    let asset = id_of(&warehouse_asset());
    let operator_delete = w
        .api
        .query(Some("operator-token"), delete, json!({"id": asset}))
        .await;
    assert_eq!(operator_delete.codes(), ["FORBIDDEN"]);
    let operator_reload = w
        .api
        .query(
            Some("operator-token"),
            "mutation { reloadConfig { added } }",
            json!({}),
        )
        .await;
    assert_eq!(operator_reload.codes(), ["FORBIDDEN"]);

    // A token of tenant globex sees nothing of acme: lists, node ids, events.
    let globex = Some("globex-viewer-token");
    let tenants = w
        .api
        .query(globex, "{ tenants { nodes { key } } }", json!({}))
        .await;
    assert_eq!(
        tenants.data()["tenants"]["nodes"],
        json!([{"key": "globex"}])
    );
    let node = w
        .api
        .query(
            globex,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({"id": flow}),
        )
        .await;
    assert_eq!(node.data()["node"], Value::Null);
    let by_key = w
        .api
        .query(
            globex,
            r#"{ check(key: "warehouse-docs") { key } tenant(key: "acme") { key } }"#,
            json!({}),
        )
        .await;
    assert_eq!(by_key.data(), &json!({"check": null, "tenant": null}));
    let events = w
        .api
        .query(
            globex,
            "{ healthEvents(first: 100) { nodes { seq } } }",
            json!({}),
        )
        .await;
    assert_eq!(events.data()["healthEvents"]["nodes"], json!([]));
    let filtered = w
        .api
        .query(
            globex,
            "query($f: ID) { healthEvents(filter: {flow: $f}) { nodes { seq } } }",
            json!({"f": flow}),
        )
        .await;
    assert_eq!(filtered.codes(), ["NOT_FOUND"]);
    // ...nor can it subscribe to acme's flow.
    let sub = Subscription::start(
        w.api.base(),
        Protocol::TransportWs,
        globex.map(|s| s as &str),
        "subscription($f: ID) { healthChanged(filter: {flow: $f}) { seq } }",
        json!({"f": flow}),
    )
    .await;
    let mut sub = sub.unwrap_or_else(|e| panic!("refused: {e:?}"));
    let first = sub.next(WAIT).await.expect("an answer");
    assert_eq!(first.unwrap_err()[0]["extensions"]["code"], "NOT_FOUND");

    // A tenant-scoped admin acts on its own tenant only.
    let acme_admin = Some("acme-admin-token");
    let mine = w.api.query(acme_admin, run, json!({"id": check})).await;
    assert!(
        mine.data()["runCheck"]["userErrors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["code"] != "NOT_FOUND")
    );
    let theirs = w.api.query(globex, run, json!({"id": check})).await;
    assert_eq!(theirs.codes(), ["FORBIDDEN"]);
    let audit = w
        .api
        .query(acme_admin, "{ auditLog { action } }", json!({}))
        .await;
    assert_eq!(audit.codes(), ["FORBIDDEN"]);

    // A WebSocket without a valid token is refused at connection_init.
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        let refused = Subscription::start(
            w.api.base(),
            protocol,
            Some("guessed"),
            "subscription { healthChanged { seq } }",
            json!({}),
        )
        .await;
        assert!(
            matches!(refused, Err(Refused::Closed(_)) | Err(Refused::Errors(_))),
            "{protocol:?} accepted a bad token"
        );
    }
    w.d.service.stop(Duration::from_secs(5)).await;
}

/// The latest audit entries as `(actor, action, target)`.
async fn audit(api: &Client) -> Vec<(String, String, String)> {
    let a = api
        .query(
            Some("admin-token"),
            "{ auditLog(last: 100) { actor action target detail } }",
            json!({}),
        )
        .await;
    a.data()["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutation_acts_and_is_audited_with_its_actor() {
    let w = world().await;
    let check = id_of(&EntityRef::Check("warehouse-docs".into()));
    let asset = id_of(&warehouse_asset());

    // Run now: queued, and the run is stored and pushed to runCompleted.
    let mut runs = Subscription::start(
        w.api.base(),
        Protocol::LegacyWs,
        Some("viewer-token"),
        "subscription($c: ID) { runCompleted(checkId: $c) { checkKey outcome trigger: connector } }",
        json!({"c": check}),
    )
    .await
    .unwrap();
    w.d.wait_subscriptions(1).await;
    let before = w.d.runs_of("warehouse-docs").await;
    let run = w
        .api
        .query(
            Some("operator-token"),
            r#"mutation($id: ID!) { runCheck(input: {checkId: $id}) { queued check { key } userErrors { code } } }"#,
            json!({"id": check}),
        )
        .await;
    assert_eq!(run.data()["runCheck"]["queued"], true, "{}", run.body);
    let pushed = runs.next(WAIT).await.expect("runCompleted").unwrap();
    assert_eq!(pushed["runCompleted"]["checkKey"], "warehouse-docs");
    assert_eq!(pushed["runCompleted"]["outcome"], "SUCCEEDED");
    w.d.wait_runs("warehouse-docs", before + 1).await;

    // Resync: the connector posts the ids to the service.
    let resync = w
        .api
        .query(
            Some("operator-token"),
            r#"mutation($id: ID!) { resync(input: {assetId: $id, ids: ["doc-007", "doc-042"]}) {
                affected message userErrors { field code message } } }"#,
            json!({"id": asset}),
        )
        .await;
    assert_eq!(resync.data()["resync"]["affected"], 2, "{}", resync.body);
    let posted: Vec<Value> = w.services[1]
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/documents/resync"))
        .filter_map(|r| r.json())
        .collect();
    assert_eq!(posted, [json!({"ids": ["doc-007", "doc-042"]})]);

    // Mute and unmute.
    let until = chrono::Utc::now() + chrono::Duration::hours(2);
    let mute = w
        .api
        .query(
            Some("operator-token"),
            r#"mutation($id: ID!, $until: DateTime!) { mute(input: {entityId: $id, until: $until, reason: "migration"}) {
                muted userErrors { code } } }"#,
            json!({"id": asset, "until": until.to_rfc3339()}),
        )
        .await;
    assert_eq!(mute.data()["mute"]["muted"], true, "{}", mute.body);
    let shown = w
        .api
        .query(
            Some("viewer-token"),
            "query($id: ID!) { node(id: $id) { ... on Asset { health { mute { reason } } } } }",
            json!({"id": asset}),
        )
        .await;
    assert_eq!(
        shown.data()["node"]["health"]["mute"]["reason"],
        "migration"
    );
    let past = w
        .api
        .query(
            Some("operator-token"),
            r#"mutation($id: ID!) { mute(input: {entityId: $id, until: "2020-01-01T00:00:00Z", reason: "x"}) {
                userErrors { field code } } }"#,
            json!({"id": asset}),
        )
        .await;
    assert_eq!(
        past.data()["mute"]["userErrors"],
        json!([{"field": ["input", "until"], "code": "INVALID"}])
    );
    let unmute = w
        .api
        .query(
            Some("operator-token"),
            "mutation($id: ID!) { unmute(input: {entityId: $id}) { muted userErrors { code } } }",
            json!({"id": asset}),
        )
        .await;
    assert_eq!(
        unmute.data()["unmute"],
        json!({"muted": false, "userErrors": []})
    );

    // Delete data: in the source is refused (the example connector has no
    // delete) and nothing goes; then the stored data of the asset goes.
    let delete = |in_source: bool| {
        let api = w.api.clone();
        let asset = asset.clone();
        async move {
            api.query(
                Some("admin-token"),
                r#"mutation($id: ID!, $src: Boolean!) { deleteData(input: {assetId: $id, inSource: $src}) {
                    deleted { observations errors missingIds idSets } userErrors { field code } } }"#,
                json!({"id": asset, "src": in_source}),
            )
            .await
        }
    };
    let refused = delete(true).await;
    assert_eq!(
        refused.data()["deleteData"]["userErrors"],
        json!([{"field": ["input", "inSource"], "code": "UNSUPPORTED"}])
    );
    let deleted = delete(false).await;
    let counts = &deleted.data()["deleteData"]["deleted"];
    assert!(counts["observations"].as_i64().unwrap() >= 2, "{counts}");
    assert!(counts["errors"].as_i64().unwrap() >= 2, "{counts}");
    assert_eq!(counts["missingIds"], 3);
    assert_eq!(counts["idSets"], 1);
    let gone = w
        .api
        .query(
            Some("viewer-token"),
            "query($id: ID!) { node(id: $id) { ... on Asset { counts { received } missingIds { nodes } errors { nodes { kind } } } } }",
            json!({"id": asset}),
        )
        .await;
    assert_eq!(
        gone.data()["node"],
        json!({"counts": null, "missingIds": {"nodes": []}, "errors": {"nodes": []}})
    );

    // Reload: an added check is picked up; an invalid file is refused and the
    // running config stays.
    let mut text = std::fs::read_to_string(&w.d.config_file).unwrap();
    let added = text.replace("id = \"warehouse-docs\"", "id = \"warehouse-docs-2\"");
    let section = &added[added.find("[[checks]]\nid = \"warehouse-docs-2\"").unwrap()..];
    text.push_str(section);
    std::fs::write(&w.d.config_file, &text).unwrap();
    let reload = w
        .api
        .query(
            Some("admin-token"),
            "mutation { reloadConfig { added removed changed userErrors { message } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        reload.data()["reloadConfig"],
        json!({"added": ["warehouse-docs-2"], "removed": [], "changed": [], "userErrors": []})
    );
    w.d.wait_runs("warehouse-docs-2", 1).await;
    std::fs::write(&w.d.config_file, text.replace("[storage]", "[storage\n")).unwrap();
    let bad = w
        .api
        .query(
            Some("admin-token"),
            "mutation { reloadConfig { added userErrors { code message } } }",
            json!({}),
        )
        .await;
    let errors = &bad.data()["reloadConfig"]["userErrors"];
    assert_eq!(errors[0]["code"], "INVALID");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("tributary.toml"),
        "{errors}"
    );
    let status = w
        .api
        .query(
            Some("viewer-token"),
            "{ daemon { config { checks lastReloadError reloadsFailed } } }",
            json!({}),
        )
        .await;
    let config = &status.data()["daemon"]["config"];
    assert_eq!(
        config["checks"], 3,
        "the reloaded config with three checks keeps running"
    );
    assert_eq!(config["reloadsFailed"], 1);
    assert!(config["lastReloadError"].is_string());

    let log = audit(&w.api).await;
    let has = |actor: &str, action: &str, target: &str| {
        log.iter()
            .any(|(a, b, c)| a == actor && b == action && c == target)
    };
    assert!(
        has("operator", "run_now", "check:warehouse-docs"),
        "{log:?}"
    );
    assert!(
        has("operator", "resync", "asset:warehouse-docs:documents"),
        "{log:?}"
    );
    assert!(
        has("operator", "mute", "asset:warehouse-docs:documents"),
        "{log:?}"
    );
    assert!(
        has("operator", "unmute", "asset:warehouse-docs:documents"),
        "{log:?}"
    );
    assert!(
        has("admin", "delete_data", "asset:warehouse-docs:documents"),
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|(_, b, _)| b == "reload_config").count(),
        2,
        "{log:?}"
    );
    w.d.service.stop(Duration::from_secs(5)).await;
}

const HEALTH_SUB: &str = r#"subscription($f: HealthEventFilter, $after: Long) {
    healthChanged(filter: $f, afterSeq: $after) { seq entityKind entityKey from to } }"#;

async fn last_seq(w: &World) -> i64 {
    w.api
        .query(Some("viewer-token"), "{ lastEventSeq }", json!({}))
        .await
        .data()["lastEventSeq"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_the_health_change_a_plugin_run_causes() {
    let w = world().await;
    let asset = id_of(&warehouse_asset());
    let mut subs = Vec::new();
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        subs.push(
            Subscription::start(
                w.api.base(),
                protocol,
                Some("acme-admin-token"),
                HEALTH_SUB,
                json!({"f": {"entity": asset, "minStatus": "UNHEALTHY"}}),
            )
            .await
            .unwrap(),
        );
    }
    w.d.wait_subscriptions(2).await;
    // A run of the downstream plugin now finds 20 of 100 ids missing.
    w.flip(true).await;
    for sub in &mut subs {
        let event = sub.next(WAIT).await.expect("a health change").unwrap();
        let e = &event["healthChanged"];
        assert_eq!(
            (
                e["entityKind"].as_str(),
                e["entityKey"].as_str(),
                e["from"].as_str(),
                e["to"].as_str()
            ),
            (
                Some("ASSET"),
                Some("documents"),
                Some("WARNING"),
                Some("UNHEALTHY")
            )
        );
    }
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_subscription_receives_exactly_the_events_it_missed_then_live_ones() {
    let w = world().await;
    let seen = last_seq(&w).await;
    // Events happen while the client is away.
    w.flip(true).await;
    w.flip(false).await;
    let missed = last_seq(&w).await;
    assert!(missed > seen);
    let mut sub = Subscription::start(
        w.api.base(),
        Protocol::TransportWs,
        Some("viewer-token"),
        HEALTH_SUB,
        json!({"after": seen}),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    for _ in seen..missed {
        let e = sub.next(WAIT).await.expect("a replayed event").unwrap();
        got.push(e["healthChanged"]["seq"].as_i64().unwrap());
    }
    assert_eq!(
        got,
        ((seen + 1)..=missed).collect::<Vec<_>>(),
        "replayed in order, no gap"
    );
    // Then live: the next change, and no duplicate of the replayed ones.
    w.flip(true).await;
    let next = sub.next(WAIT).await.expect("a live event").unwrap();
    assert_eq!(next["healthChanged"]["seq"].as_i64().unwrap(), missed + 1);
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_graphql_graphiql_health_and_metrics_endpoints_with_limits() {
    let up = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = config_text(dir.path(), &[("ingest-docs", "ingest", &up.url(), "")]).replace(
        "[storage]",
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[api.limits]\nmax_depth = 6\nmax_body = \"2KiB\"\n\n[storage]"),
    );
    // A plugin folder of its own: the test breaks the plugin in it.
    let example = plugin("example");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(&example, plugins.join("example.wasm")).unwrap();
    let shared = format!("plugins_dir = \"{}\"", example.parent().unwrap().display());
    assert!(text.contains(&shared));
    let text = text.replace(&shared, &format!("plugins_dir = \"{}\"", plugins.display()));
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, text).unwrap();
    let mut child = std::process::Command::new(daemon_binary())
        .args(["serve", "--config"])
        .arg(&file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let api = Client::new(format!("http://127.0.0.1:{port}"));
    eventually("the daemon to be ready", || async {
        (api.get("/readyz").await.status == 200).then_some(())
    })
    .await;
    assert_eq!(api.get("/healthz").await.status, 200);
    // GraphiQL goes to browsers (api_web.rs); a client without a query is told.
    let no_query = api.get("/graphql").await;
    assert_eq!(no_query.status, 400);
    assert_eq!(no_query.codes(), ["BAD_USER_INPUT"]);
    let daemon = api
        .query(Some("viewer-token"), "{ daemon { version store config { checks } } connectors { name contractVersion capabilities } }", json!({}))
        .await;
    assert_eq!(daemon.data()["daemon"]["store"], "SQLITE");
    assert_eq!(daemon.data()["connectors"][0]["name"], "example");
    assert_eq!(
        daemon.data()["connectors"][0]["capabilities"],
        json!(["RESYNC"])
    );

    let deep = "{ tenants { nodes { flows { nodes { downstream { checks { assets { nodes { health { reasons { message } } } } } } } } } } }";
    let too_deep = api.query(Some("viewer-token"), deep, json!({})).await;
    assert!(
        too_deep.text.contains("nested too deep") || too_deep.text.contains("depth"),
        "{}",
        too_deep.text
    );
    let huge = api
        .query(
            Some("viewer-token"),
            &format!("{{ tenants {{ nodes {{ key }} }} }} #{}", "x".repeat(4096)),
            json!({}),
        )
        .await;
    assert_eq!(huge.status, 413);
    // The token itself never comes back, nor does the service's secret.
    let all = api.query(Some("viewer-token"), DASHBOARD, json!({})).await;
    assert!(!all.text.contains("viewer-token") && !all.text.contains(tributary_tests::kit::TOKEN));

    // SIGHUP reloads the file: a second check appears.
    let text = std::fs::read_to_string(&file).unwrap();
    let section = &text[text.find("[[checks]]").unwrap()..];
    let second = section.replace("id = \"ingest-docs\"", "id = \"ingest-docs-2\"");
    std::fs::write(&file, format!("{text}\n{second}")).unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually("SIGHUP to reload the config", || async {
        let a = api
            .query(
                Some("viewer-token"),
                "{ daemon { config { checks } } }",
                json!({}),
            )
            .await;
        (a.body["data"]["daemon"]["config"]["checks"] == 2).then_some(())
    })
    .await;

    // Saving the file is enough: the daemon watches its folder.
    let text = std::fs::read_to_string(&file).unwrap();
    let third = second.replace("id = \"ingest-docs-2\"", "id = \"ingest-docs-3\"");
    std::fs::write(&file, format!("{text}\n{third}")).unwrap();
    let checks = |n: i64| {
        let api = api.clone();
        async move {
            let a = api
                .query(
                    Some("viewer-token"),
                    "{ daemon { config { checks lastReloadError } } }",
                    json!({}),
                )
                .await;
            let config = a.body["data"]["daemon"]["config"].clone();
            (config["checks"] == n).then_some(config)
        }
    };
    eventually("the saved file to be reloaded", || checks(3)).await;
    // A broken file is refused; the running config stays and says why.
    std::fs::write(&file, "[storage\n").unwrap();
    let config = eventually("the broken file to be refused", || async {
        checks(3).await.filter(|c| c["lastReloadError"].is_string())
    })
    .await;
    assert!(
        config["lastReloadError"]
            .as_str()
            .unwrap()
            .contains("tributary.toml"),
        "{config}"
    );

    // A plugin replaced by a broken file: refused, the loaded version keeps
    // running checks.
    std::fs::write(&file, format!("{text}\n{third}")).unwrap();
    eventually("the mended file to be reloaded", || async {
        checks(3).await.filter(|c| c["lastReloadError"].is_null())
    })
    .await;
    std::fs::write(plugins.join("example.wasm"), b"not a component").unwrap();
    let config = eventually("the broken plugin to be refused", || async {
        checks(3).await.filter(|c| c["lastReloadError"].is_string())
    })
    .await;
    let why = config["lastReloadError"].as_str().unwrap();
    assert!(
        why.contains("example.wasm") && why.contains("not a valid WebAssembly component"),
        "{why}"
    );
    let runs = |api: Client| async move {
        let a = api
            .query(
                Some("viewer-token"),
                r#"{ check(key: "ingest-docs") { runs(first: 100) { nodes { outcome } } } }"#,
                json!({}),
            )
            .await;
        a.body["data"]["check"]["runs"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let before = runs(api.clone()).await.len();
    let run = api
        .query(
            Some("admin-token"),
            "mutation($id: ID!) { runCheck(input: {checkId: $id}) { queued } }",
            json!({"id": id_of(&EntityRef::Check("ingest-docs".into()))}),
        )
        .await;
    assert_eq!(run.data()["runCheck"]["queued"], true);
    let after = eventually("a run with the loaded plugin", || async {
        let now = runs(api.clone()).await;
        (now.len() > before).then_some(now)
    })
    .await;
    assert_eq!(after[0]["outcome"], "SUCCEEDED");

    // Prometheus sees the runs, the reloads (the last one refused), the checks.
    let metrics = api.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let value = |series: &str| -> f64 {
        metrics
            .text
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{}", metrics.text))
            .parse()
            .unwrap()
    };
    assert!(value(r#"tributary_runs_total{connector="example",outcome="success"}"#) >= 2.0);
    assert!(value(r#"tributary_run_duration_seconds_count{connector="example"}"#) >= 2.0);
    assert!(value(r#"tributary_config_reloads_total{outcome="applied"}"#) >= 3.0);
    assert!(value(r#"tributary_config_reloads_total{outcome="refused"}"#) >= 2.0);
    assert_eq!(value("tributary_config_last_reload_successful"), 0.0);
    assert_eq!(value("tributary_checks"), 3.0);
    let judged: f64 = ["HEALTHY", "WARNING", "UNKNOWN", "UNHEALTHY"]
        .iter()
        .map(|h| value(&format!(r#"tributary_checks_by_health{{health="{h}"}}"#)))
        .sum();
    assert!((1.0..=3.0).contains(&judged), "{judged} checks judged");
    assert!(value("tributary_store_write_seconds_count") >= 1.0);
    assert_eq!(value("tributary_store_write_errors_total"), 0.0);
    assert!(!metrics.text.contains(tributary_tests::kit::TOKEN));

    // Stopping closes an open WebSocket with 1001 (going away), so its
    // client knows to reconnect, rather than dropping it.
    let mut ws = websocket(port).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let close = loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a close frame within 10 s of SIGTERM");
        match frame {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("the connection ended without a close frame: {other:?}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 1001, "{close:?}");
    stop_child(&mut child);
}

/// A graphql-transport-ws connection to the API on `port`, acknowledged.
async fn websocket(
    port: u16,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("ws://127.0.0.1:{port}/graphql");
    let mut request = url.into_client_request().unwrap();
    (request.headers_mut()).insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": "Bearer viewer-token"}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    match ws.next().await {
        Some(Ok(Message::Text(t))) => assert!(t.contains("connection_ack"), "{t}"),
        other => panic!("no connection_ack: {other:?}"),
    }
    ws
}

fn stop_child(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

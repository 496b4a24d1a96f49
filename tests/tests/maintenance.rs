//! Maintenance windows and dependency suppression end to end: the real
//! example plugin against fake document services on loopback, the GraphQL
//! API served as `tributary serve` serves it. Flow `docs` (tenant acme) runs
//! from `ingest` to `warehouse`; the warehouse's asset goes UNHEALTHY when it
//! lacks 20 of the upstream's 100 ids.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, Timelike, Utc};
use serde_json::{Value, json};
use tributary::health::{EntityRef, Status};
use tributary::store::HealthEvent;
use tributary_tests::gql::{Answer, Client};
use tributary_tests::kit::{
    ApiFlow, Daemon, Fake, doc_ids, eventually, flow_daemon, start_live, warehouse_asset,
};

const GRACE: Duration = Duration::from_secs(5);

const CREATE: &str = "mutation($input: CreateMaintenanceWindowInput!) {
    createMaintenanceWindow(input: $input) {
        window { name active tenant system endsAt source }
        userErrors { field code message }
    } }";

const END: &str = "mutation($name: String!) {
    endMaintenanceWindow(input: { name: $name }) {
        window { name active }
        userErrors { field code message }
    } }";

const WINDOWS: &str = "query($active: Boolean) { maintenanceWindows(active: $active) {
    name source active reason tenant system cron duration timezone startsAt endsAt } }";

const HEALTH: &str = "query($id: ID!) { node(id: $id) { ... on Asset {
    health { status suppressedBy maintenance { name } } } } }";

fn id_of(entity: &EntityRef) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tributary::store::entity_key(entity))
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339()
}

fn warehouse_entities() -> [EntityRef; 3] {
    [
        warehouse_asset(),
        EntityRef::Check("warehouse-docs".into()),
        EntityRef::System("warehouse".into()),
    ]
}

/// A daemon's announcements of a status it already had: what a window or
/// an upstream held back.
fn again(events: &[HealthEvent]) -> Vec<&HealthEvent> {
    events.iter().filter(|e| e.from == Some(e.to)).collect()
}

/// Waits until each of `entities` has been announced again after event
/// `after`, and checks that it was once, and the flow not at all.
async fn wait_announced(d: &Daemon, after: i64, entities: &[EntityRef]) {
    for entity in entities {
        let events = eventually(&format!("{entity} announced again"), || async {
            let events: Vec<HealthEvent> = d
                .events_of(entity)
                .await
                .into_iter()
                .filter(|e| e.seq > after)
                .collect();
            (!again(&events).is_empty()).then_some(events)
        })
        .await;
        let again = again(&events);
        assert_eq!(again.len(), 1, "{entity}: {events:?}");
        let e = again[0];
        assert_eq!(e.to, Status::Unhealthy, "{entity}");
        assert_eq!(e.maintenance, None, "{entity}");
        assert_eq!(e.suppressed_by, None, "{entity}");
        assert!(!e.reasons.is_empty(), "{entity} keeps its reasons");
    }
    let flow = d.events_of(&EntityRef::Flow("docs".into())).await;
    assert!(again(&flow).is_empty(), "the flow was never held back");
}

async fn last_seq(d: &Daemon) -> i64 {
    d.store.last_event_seq().await.unwrap()
}

/// The window the latest event of the warehouse's asset was in.
async fn asset_window(d: &Daemon) -> Option<String> {
    latest(d, &warehouse_asset()).await.maintenance
}

/// The latest event of `entity`.
async fn latest(d: &Daemon, entity: &EntityRef) -> HealthEvent {
    d.events_of(entity).await.pop().unwrap()
}

fn user_errors(a: &Answer, field: &str) -> Value {
    a.data()[field]["userErrors"].clone()
}

async fn end_window(api: &Client, token: &str, name: &str) -> Answer {
    api.query(Some(token), END, json!({ "name": name })).await
}

async fn create(api: &Client, token: &str, input: Value) -> Answer {
    api.query(Some(token), CREATE, json!({ "input": input }))
        .await
}

async fn healthy_flow() -> ApiFlow {
    ApiFlow::with_every_id("").await
}

/// Asserts that the API lists an event of the warehouse's asset whose
/// `field` is `value`.
async fn assert_asset_event(api: &Client, field: &str, value: Value) {
    let query = format!("{{ healthEvents(first: 100) {{ nodes {{ entityKey {field} }} }} }}");
    let events = api.query(Some("viewer-token"), &query, json!({})).await;
    let nodes = &events.data()["healthEvents"]["nodes"];
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["entityKey"] == "documents" && n[field] == value),
        "no event of the asset with {field} {value}: {nodes}"
    );
}

/// The healthy flow, a window `name` on `scope` made through the API for
/// the next `secs` seconds, then the warehouse's asset UNHEALTHY in it.
async fn bad_in_a_window(name: &str, scope: Value, secs: u64) -> (ApiFlow, SystemTime) {
    let w = healthy_flow().await;
    let end = SystemTime::now() + Duration::from_secs(secs);
    let made = create(
        &w.api,
        "operator-token",
        json!({"name": name, "scope": scope, "end": rfc3339(end), "reason": "upgrade"}),
    )
    .await;
    let window = &made.data()["createMaintenanceWindow"]["window"];
    assert_eq!(window["active"], true, "{made:?}");
    assert_eq!(window["source"], "API");
    w.flip(true).await;
    (w, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_in_a_window_are_marked_and_a_still_bad_asset_is_announced_once_when_it_ends() {
    let (w, end) = bad_in_a_window("wh-upgrade", json!({"system": "ware*"}), 10).await;
    for entity in warehouse_entities() {
        let e = latest(&w.d, &entity).await;
        assert_eq!(e.to, Status::Unhealthy, "{entity}");
        assert_eq!(e.maintenance.as_deref(), Some("wh-upgrade"), "{entity}");
    }
    // The flow holds ingest too: its change is not held back.
    let flow = latest(&w.d, &EntityRef::Flow("docs".into())).await;
    assert_eq!(flow.maintenance, None);
    // The event and the entity's health say so on the API.
    assert_asset_event(&w.api, "maintenance", json!("wh-upgrade")).await;
    let asset = json!({"id": id_of(&warehouse_asset())});
    let health = w
        .api
        .query(Some("viewer-token"), HEALTH, asset.clone())
        .await;
    assert_eq!(
        health.data()["node"]["health"]["maintenance"]["name"],
        "wh-upgrade"
    );

    // The window's end passes: the asset, still bad, is announced once.
    let before = last_seq(&w.d).await;
    wait_announced(&w.d, before, &warehouse_entities()).await;
    let health = w.api.query(Some("viewer-token"), HEALTH, asset).await;
    assert_eq!(health.data()["node"]["health"]["maintenance"], Value::Null);
    assert!(SystemTime::now() >= end);
    w.d.service.stop(GRACE).await;
}

/// Stops `d`; its folder and config to start again on.
async fn stopped(d: Daemon) -> (tempfile::TempDir, String) {
    d.service.stop(GRACE).await;
    let text = std::fs::read_to_string(&d.config_file).unwrap();
    let Daemon { dir, .. } = d;
    (dir, text)
}

/// A daemon on the folder, config and database of one [`stopped`]; its API
/// served.
async fn started((dir, text): (tempfile::TempDir, String)) -> (Daemon, Client) {
    let d = start_live(dir, &text).await;
    let api = Client::new(d.serve_api().await);
    (d, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_made_through_the_api_are_audited_kept_to_a_tenant_and_survive_a_restart() {
    let w = healthy_flow().await;
    let end = rfc3339(SystemTime::now() + Duration::from_secs(3_600));
    let scope = json!({"system": "warehouse"});
    let input = |name: &str, scope: &Value| json!({"name": name, "scope": scope, "end": end, "reason": "reindex"});

    let viewer = create(&w.api, "viewer-token", input("v", &scope)).await;
    assert_eq!(viewer.codes(), ["FORBIDDEN"]);
    let elsewhere = create(
        &w.api,
        "acme-admin-token",
        input("g", &json!({"tenant": "globex"})),
    )
    .await;
    let errors = user_errors(&elsewhere, "createMaintenanceWindow");
    assert_eq!(errors[0]["code"], "INVALID", "{errors}");
    assert_eq!(errors[0]["field"], json!(["input", "scope"]));
    let acme = create(&w.api, "acme-admin-token", input("acme-wh", &scope)).await;
    assert_eq!(
        acme.data()["createMaintenanceWindow"]["window"]["tenant"],
        "acme",
        "a tenant token's window is of its tenant"
    );
    let ops = create(&w.api, "operator-token", input("ops-wh", &scope)).await;
    assert_eq!(user_errors(&ops, "createMaintenanceWindow"), json!([]));
    let twice = create(&w.api, "operator-token", input("ops-wh", &scope)).await;
    assert_eq!(
        user_errors(&twice, "createMaintenanceWindow")[0]["code"],
        "INVALID"
    );
    // acme's token neither sees nor ends a window of no tenant.
    let acme = window_names(&w.api, "acme-admin-token", None).await;
    assert_eq!(acme, ["acme-wh"]);
    let ended = end_window(&w.api, "acme-admin-token", "ops-wh").await;
    assert_eq!(
        user_errors(&ended, "endMaintenanceWindow")[0]["code"],
        "NOT_FOUND"
    );
    let globex = window_names(&w.api, "globex-viewer-token", None).await;
    assert!(globex.is_empty(), "{globex:?}");

    w.flip(true).await;
    assert_eq!(asset_window(&w.d).await.as_deref(), Some("acme-wh"));

    let (d, api) = started(stopped(w.d).await).await;
    let listed = api
        .query(Some("admin-token"), WINDOWS, json!({"active": true}))
        .await;
    let listed = listed.data()["maintenanceWindows"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|w| w["source"] == "API"));
    let health = api
        .query(
            Some("viewer-token"),
            HEALTH,
            json!({"id": id_of(&warehouse_asset())}),
        )
        .await;
    assert_eq!(
        health.data()["node"]["health"]["maintenance"]["name"],
        "acme-wh"
    );

    // Ending one while the other still covers the asset announces nothing.
    let before = last_seq(&d).await;
    let ended = end_window(&api, "acme-admin-token", "acme-wh").await;
    assert_eq!(
        ended.data()["endMaintenanceWindow"]["window"]["active"],
        false
    );
    let ended = end_window(&api, "operator-token", "ops-wh").await;
    assert_eq!(user_errors(&ended, "endMaintenanceWindow"), json!([]));
    wait_announced(&d, before, &warehouse_entities()).await;
    let again = end_window(&api, "operator-token", "ops-wh").await;
    assert_eq!(
        user_errors(&again, "endMaintenanceWindow")[0]["code"],
        "INVALID"
    );

    let audit = api
        .query(
            Some("admin-token"),
            "{ auditLog(last: 100) { actor action target } }",
            json!({}),
        )
        .await;
    let entries: Vec<(String, String, String)> = audit.data()["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"].as_str().unwrap().contains("maintenance"))
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (s("actor"), s("action"), s("target"))
        })
        .collect();
    let entry = |actor: &str, action: &str, name: &str| {
        (
            actor.to_owned(),
            action.to_owned(),
            format!("maintenance:{name}"),
        )
    };
    assert_eq!(
        entries,
        [
            entry("operator", "end_maintenance_window", "ops-wh"),
            entry("acme-admin", "end_maintenance_window", "acme-wh"),
            entry("operator", "create_maintenance_window", "ops-wh"),
            entry("acme-admin", "create_maintenance_window", "acme-wh"),
        ]
    );
    d.service.stop(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_that_ended_while_the_daemon_was_down_is_announced_at_start() {
    let (w, end) = bad_in_a_window("short", json!({"check": "warehouse-*"}), 8).await;
    assert_eq!(asset_window(&w.d).await.as_deref(), Some("short"));
    // A window on a check covers the check and its assets, not the system.
    let system = latest(&w.d, &EntityRef::System("warehouse".into())).await;
    assert_eq!(system.maintenance, None);
    let before = last_seq(&w.d).await;
    let down = stopped(w.d).await;
    eventually("the window's end", || async {
        (SystemTime::now() > end).then_some(())
    })
    .await;
    let (d, _api) = started(down).await;
    let held = [warehouse_asset(), EntityRef::Check("warehouse-docs".into())];
    wait_announced(&d, before, &held).await;
    d.service.stop(GRACE).await;
}

/// `[[maintenance]]` windows recurring daily in Asia/Kolkata (UTC+5:30, no
/// daylight saving): one from the current hour there for 2 h (in force),
/// one twelve hours later (not).
fn kolkata_windows() -> String {
    let kolkata = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    let hour = Utc::now().with_timezone(&kolkata).hour();
    format!(
        r#"
[[maintenance]]
name = "kolkata-now"
reason = "nightly load"
cron = "0 {hour} * * *"
duration = "2h"
timezone = "Asia/Kolkata"
tenant = "acme"
system = "warehouse"

[[maintenance]]
name = "kolkata-later"
reason = "backups"
cron = "0 {later} * * *"
duration = "1h"
timezone = "Asia/Kolkata"
system = "warehouse"
"#,
        later = (hour + 12) % 24,
    )
}

/// The names of the windows `token` sees (in force or not, or all).
async fn window_names(api: &Client, token: &str, active: Option<bool>) -> Vec<String> {
    let a = api
        .query(Some(token), WINDOWS, json!({"active": active}))
        .await;
    a.data()["maintenanceWindows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_windows_follow_their_time_zone_and_a_bad_reload_keeps_them() {
    let good = kolkata_windows();
    let w = ApiFlow::with_every_id(&good).await;
    assert_eq!(
        window_names(&w.api, "admin-token", Some(true)).await,
        ["kolkata-now"]
    );
    assert_eq!(
        window_names(&w.api, "admin-token", Some(false)).await,
        ["kolkata-later"]
    );
    let all = w.api.query(Some("admin-token"), WINDOWS, json!({})).await;
    let now = &all.data()["maintenanceWindows"][0];
    assert_eq!(now["source"], "CONFIG");
    assert_eq!(now["timezone"], "Asia/Kolkata");
    assert_eq!(now["duration"], "2h");

    w.flip(true).await;
    assert_eq!(asset_window(&w.d).await.as_deref(), Some("kolkata-now"));

    // A window with an unknown time zone: refused with its place, the
    // running windows kept.
    let text = std::fs::read_to_string(&w.d.config_file).unwrap();
    // The second window's zone (the first names a tenant after its zone).
    let bad = text.replace(
        "timezone = \"Asia/Kolkata\"\nsystem",
        "timezone = \"Mars/Olympus_Mons\"\nsystem",
    );
    assert_ne!(bad, text);
    std::fs::write(&w.d.config_file, &bad).unwrap();
    let reload = "mutation { reloadConfig { userErrors { code message } } }";
    let refused = w.api.query(Some("admin-token"), reload, json!({})).await;
    let message = refused.data()["reloadConfig"]["userErrors"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("/maintenance/1/timezone") && message.contains("Mars/Olympus_Mons"),
        "{message}"
    );
    assert!(message.contains("tributary.toml:"), "located: {message}");
    assert_eq!(
        window_names(&w.api, "admin-token", Some(true)).await,
        ["kolkata-now"]
    );

    // The window removed by a good reload: the asset, still bad, is
    // announced at once.
    let before = last_seq(&w.d).await;
    std::fs::write(&w.d.config_file, text.replace(&good, "")).unwrap();
    let reloaded = w.api.query(Some("admin-token"), reload, json!({})).await;
    assert_eq!(reloaded.data()["reloadConfig"]["userErrors"], json!([]));
    assert_eq!(
        window_names(&w.api, "admin-token", Some(true)).await,
        Vec::<String>::new()
    );
    wait_announced(&w.d, before, &warehouse_entities()).await;
    w.d.service.stop(GRACE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upstream_suppresses_its_downstream_until_it_recovers() {
    let upstream = Arc::new(Mutex::new(Fake {
        ids: doc_ids(100),
        ..Fake::default()
    }));
    let warehouse = Arc::new(Mutex::new(Fake {
        ids: doc_ids(100),
        ..Fake::default()
    }));
    let (d, _services) = flow_daemon(upstream.clone(), warehouse.clone()).await;
    d.run_now("warehouse-docs").await;
    let api = Client::new(d.serve_api().await);
    let set_warehouse = |n: usize| warehouse.lock().unwrap().ids = doc_ids(n);
    let asset = warehouse_asset();
    let ingest = EntityRef::System("ingest".into());

    // Upstream fine: the downstream's trouble is its own.
    set_warehouse(80);
    d.run_now("warehouse-docs").await;
    let own = latest(&d, &asset).await;
    assert_eq!(own.to, Status::Unhealthy);
    assert_eq!(own.suppressed_by, None);
    set_warehouse(100);
    d.run_now("warehouse-docs").await;
    assert_eq!(d.status(&asset).await, Status::Healthy);

    // Upstream down, then the downstream misses records: folded under it.
    upstream.lock().unwrap().fail_with = Some(401);
    d.run_now("ingest-docs").await;
    assert_eq!(d.status(&ingest).await, Status::Unknown);
    set_warehouse(80);
    d.run_now("warehouse-docs").await;
    for entity in warehouse_entities() {
        let e = latest(&d, &entity).await;
        assert_eq!(e.to, Status::Unhealthy, "{entity}");
        assert_eq!(e.suppressed_by.as_ref(), Some(&ingest), "{entity}");
    }
    let health = api
        .query(Some("viewer-token"), HEALTH, json!({"id": id_of(&asset)}))
        .await;
    assert_eq!(
        health.data()["node"]["health"]["suppressedBy"],
        json!(id_of(&ingest))
    );
    assert_asset_event(&api, "suppressedBy", json!(id_of(&ingest))).await;

    // The upstream recovers; the downstream, still bad, is announced once.
    let before = last_seq(&d).await;
    upstream.lock().unwrap().fail_with = None;
    d.run_now("ingest-docs").await;
    wait_announced(&d, before, &warehouse_entities()).await;
    let health = api
        .query(Some("viewer-token"), HEALTH, json!({"id": id_of(&asset)}))
        .await;
    assert_eq!(health.data()["node"]["health"]["suppressedBy"], Value::Null);

    // A resolution under a failing upstream is never suppressed.
    upstream.lock().unwrap().fail_with = Some(401);
    d.run_now("ingest-docs").await;
    set_warehouse(100);
    d.run_now("warehouse-docs").await;
    let resolved = latest(&d, &asset).await;
    assert_eq!(resolved.to, Status::Healthy);
    assert_eq!(resolved.suppressed_by, None);
    d.service.stop(GRACE).await;
}

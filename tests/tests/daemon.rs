//! The daemon core end to end: real example plugins in the real host, a fake
//! of the document service they watch on 127.0.0.1, the scheduler, the writer,
//! the health engine and a SQLite file; and the `tributary` binary killed with
//! SIGKILL while it writes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use plugin_sdk::harness::TestServer;
use tributary::clock::ManualClock;
use tributary::config::{Options, parse_with};
use tributary::events::{EventBus, Received};
use tributary::health::{EntityRef, RuleKind, Status};
use tributary::plugin::{HostConfig, PluginHost};
use tributary::store::{HealthEvent, Store};
use tributary_tests::kit::{
    Daemon, Fake, KillOnDrop, config_text, doc_ids, document_service, eventually, free_port,
    serve_quietly, start, start_live,
};
use tributary_tests::plugin;

/// 2026-11-20T10:00:00Z, when the fake's documents were last updated.
const UPDATED_AT: u64 = 1_795_168_800;
const ASSET: &str = "documents";

fn asset(check: &str) -> EntityRef {
    EntityRef::Asset {
        check: check.into(),
        asset: ASSET.into(),
    }
}

fn transitions(events: &[HealthEvent]) -> Vec<(Option<Status>, Status)> {
    events.iter().map(|e| (e.from, e.to)).collect()
}

/// [`flow_daemon`](tributary_tests::kit::flow_daemon) with a downstream
/// service holding `downstream_ids`.
async fn flow_daemon(
    upstream: Arc<Mutex<Fake>>,
    downstream_ids: Vec<String>,
) -> (Daemon, [TestServer; 2]) {
    let downstream = Arc::new(Mutex::new(Fake {
        ids: downstream_ids,
        ..Fake::default()
    }));
    tributary_tests::kit::flow_daemon(upstream, downstream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_missing_3_of_100_ids_reports_those_ids_and_turns_warning() {
    let all = doc_ids(100);
    let lost = ["doc-007", "doc-042", "doc-099"];
    let kept: Vec<String> = all
        .iter()
        .filter(|i| !lost.contains(&i.as_str()))
        .cloned()
        .collect();
    let upstream = Arc::new(Mutex::new(Fake {
        ids: all,
        ..Fake::default()
    }));
    let (d, _services) = flow_daemon(upstream, kept).await;
    // Whichever ran first, this run of the downstream check meets the upstream ids.
    d.run_now("warehouse-docs").await;

    let missing = d
        .store
        .missing_ids("docs", "warehouse", ASSET, None, 100)
        .await
        .unwrap();
    assert_eq!(missing, lost);
    let counts = d
        .store
        .reconciliation("docs", "warehouse", ASSET)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (counts.expected, counts.received, counts.missing),
        (100, 97, 3)
    );

    let latest = &d.store.runs("warehouse-docs", None, 1).await.unwrap()[0];
    let obs = d.store.observations(&latest.id).await.unwrap();
    let o = &obs[0].observation;
    assert_eq!(
        (o.expected, o.received, o.missing),
        (Some(100), Some(97), Some(3))
    );

    let health = d.health(&asset("warehouse-docs")).await;
    assert_eq!(health.state.status, Status::Warning);
    assert_eq!(health.state.reasons[0].rule, RuleKind::Completeness);
    assert_eq!(
        d.status(&EntityRef::Flow("docs".into())).await,
        Status::Warning
    );
    assert_eq!(
        d.status(&EntityRef::Tenant("acme".into())).await,
        Status::Warning
    );
    assert_eq!(d.status(&asset("ingest-docs")).await, Status::Healthy);
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_crossing_warn_then_error_emits_exactly_two_events() {
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(10),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        dir.path(),
        &[(
            "ingest-docs",
            "ingest",
            &service.url(),
            r#"freshness = { warn_after = "1h", error_after = "2h" }"#,
        )],
    );
    let clock = Arc::new(ManualClock::at_unix(UPDATED_AT));
    let bus = EventBus::default();
    let mut live = bus.health_events();
    let d = start(dir, &text, clock.clone(), bus).await;
    d.wait_runs("ingest-docs", 1).await;
    // Every 30 minutes for three hours: 1h exactly is not yet late (strictly
    // greater, as dbt compares), 1h30 is; 2h is not yet an error, 2h30 is.
    for _ in 0..6 {
        clock.advance(Duration::from_secs(30 * 60));
        d.run_now("ingest-docs").await;
    }
    let events = d.events_of(&asset("ingest-docs")).await;
    assert_eq!(
        transitions(&events),
        [
            (None, Status::Healthy),
            (Some(Status::Healthy), Status::Warning),
            (Some(Status::Warning), Status::Unhealthy)
        ]
    );
    let at = |e: &HealthEvent| e.at.duration_since(UNIX_EPOCH).unwrap().as_secs() - UPDATED_AT;
    assert_eq!(at(&events[1]) / 60, 90, "warned at 1h30");
    assert_eq!(at(&events[2]) / 60, 150, "error at 2h30");
    assert!(
        events[2].reasons[0]
            .message
            .contains("more than error_after 2h")
    );

    // The bus carried the same events, in sequence order.
    let mut seen = vec![];
    while seen.len() < 3 {
        match live.recv().await {
            Received::Message(e) if e.entity == asset("ingest-docs") => seen.push(e.seq),
            Received::Message(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, events.iter().map(|e| e.seq).collect::<Vec<_>>());
    d.service.stop(Duration::from_secs(5)).await;
}

/// A daemon with one check, `ingest-docs`, on a fake service the test can
/// break, after its first run was judged.
async fn one_healthy_check() -> (Daemon, Arc<Mutex<Fake>>, TestServer) {
    let fake = Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    }));
    let service = document_service(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), &[("ingest-docs", "ingest", &service.url(), "")]);
    let d = start_live(dir, &text).await;
    d.wait_runs("ingest-docs", 1).await;
    eventually("the asset judged", || async {
        d.store.health(&asset("ingest-docs")).await.unwrap()
    })
    .await;
    (d, fake, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_fails_three_times_makes_the_asset_unknown_never_healthy() {
    let (d, fake, _service) = one_healthy_check().await;
    assert_eq!(d.status(&asset("ingest-docs")).await, Status::Healthy);

    fake.lock().unwrap().fail_with = Some(503);
    d.run_now("ingest-docs").await;
    // 503 is transient: the scheduler retries twice (1 s, then 2 s later).
    d.wait_runs("ingest-docs", 4).await;
    let runs = d.store.runs("ingest-docs", None, 10).await.unwrap();
    let failed: Vec<(u32, &str)> = runs[..3]
        .iter()
        .rev()
        .map(|r| (r.attempt, r.failure.as_ref().unwrap().class.as_str()))
        .collect();
    assert_eq!(
        failed,
        [(1, "transient"), (2, "transient"), (3, "transient")]
    );

    let health = d.health(&asset("ingest-docs")).await;
    assert_eq!(health.state.status, Status::Unknown);
    assert_eq!(health.state.reasons[0].rule, RuleKind::RunFailed);
    assert!(
        health.state.reasons[0].message.contains("503"),
        "{:?}",
        health.state.reasons
    );
    assert_eq!(
        transitions(&d.events_of(&asset("ingest-docs")).await),
        [
            (None, Status::Healthy),
            (Some(Status::Healthy), Status::Unknown)
        ],
        "one change, after the last attempt; never back to HEALTHY"
    );
    assert_eq!(
        d.status(&EntityRef::Tenant("acme".into())).await,
        Status::Unknown
    );
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_writing_loses_nothing_committed_and_the_database_stays_consistent() {
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(50),
        ..Fake::default()
    })))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let checks: Vec<(String, &str)> = (0..40)
        .map(|i| {
            (
                format!("c{i}"),
                if i % 2 == 0 { "ingest" } else { "warehouse" },
            )
        })
        .collect();
    let url = service.url();
    let check_refs: Vec<(&str, &str, &str, &str)> = checks
        .iter()
        .map(|(id, system)| (id.as_str(), *system, url.as_str(), ""))
        .collect();
    let mut text =
        config_text(dir.path(), &check_refs).replace(r#"every = "1h""#, r#"every = "1s""#);
    // Not the default 8080, which anything else on the machine may hold.
    text.push_str(&format!(
        "\n[server]\nlisten = \"127.0.0.1:{}\"\n",
        free_port()
    ));
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, text).unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("tributary.db").display());

    let spawn = || KillOnDrop(serve_quietly(&file));
    let mut child = spawn();
    let mut committed = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while committed < 150 {
        assert!(
            Instant::now() < deadline,
            "the daemon wrote only {committed} runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Ok(store) = Store::open(&db_url).await {
            committed = store.run_count().await.unwrap_or(0);
            store.close().await;
        }
    }
    child.0.kill().unwrap(); // SIGKILL, mid-stream: runs are committing every few ms
    child.0.wait().unwrap();

    let store = Store::open(&db_url).await.unwrap();
    let after_kill = store.run_count().await.unwrap();
    assert!(
        after_kill >= committed,
        "{after_kill} runs after the kill, {committed} seen before"
    );
    assert_consistent(&store).await;
    store.close().await;

    // A restart picks up where it stopped and goes on writing.
    let child = spawn();
    let store = Store::open(&db_url).await.unwrap();
    eventually("runs after the restart", || async {
        (store.run_count().await.unwrap() > after_kill + 40).then_some(())
    })
    .await;
    drop(child);
    assert_consistent(&store).await;
}

/// Every run is whole (a successful one has its observation, nothing refers
/// to a run that is not there), the events' sequence has no gap, and SQLite
/// finds the file sound.
async fn assert_consistent(store: &Store) {
    let checks: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let mut total = 0;
    for check in &checks {
        for run in store.runs(check, None, 100_000).await.unwrap() {
            let obs = store.observations(&run.id).await.unwrap();
            assert_eq!(
                obs.len(),
                usize::from(run.succeeded()),
                "run {} of {check} is not whole",
                run.id
            );
            total += 1;
        }
    }
    assert_eq!(total, store.run_count().await.unwrap());
    let events = store.events_after(0, 1_000_000).await.unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "event sequence numbers have no gap");
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    // Health was written with the runs that caused it.
    for check in &checks {
        if store
            .runs(check, None, 1)
            .await
            .unwrap()
            .first()
            .is_some_and(|r| r.succeeded())
        {
            assert!(
                store.health(&asset(check)).await.unwrap().is_some(),
                "{check}"
            );
        }
    }
}

/// Every connector of the repository, loaded in the real host, by name.
async fn connector_schemas(
    host: &PluginHost,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let mut schemas = std::collections::BTreeMap::new();
    for name in ["example", "snowflake", "dbt", "looker", "http"] {
        let loaded = host.load(plugin(name)).await.unwrap();
        let schema = serde_json::from_str(&loaded.descriptor().config_schema).unwrap();
        schemas.insert(name.to_owned(), schema);
    }
    schemas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_and_example_configs_are_valid_with_the_real_connectors() {
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(HostConfig::new(dir.path().join("cache"))).unwrap();
    let schemas = connector_schemas(&host).await;
    for (name, checks) in [("demo.toml", 10), ("example.toml", 5)] {
        let file = tributary_tests::repo_root().join("config").join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        let config = parse_with(&text, &file, &schemas, Options::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.checks.len(), checks, "{name}");
        let mut connectors: Vec<&str> =
            config.checks.iter().map(|c| c.connector.as_str()).collect();
        connectors.sort();
        connectors.dedup();
        assert!(connectors.len() >= 4, "{name} uses {connectors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_ids_arriving_after_the_downstream_ran_update_its_health_at_once() {
    let all = doc_ids(100);
    let kept: Vec<String> = all[..90].to_vec();
    let upstream = Arc::new(Mutex::new(Fake {
        ids: all,
        fail_with: Some(401),
        ..Fake::default()
    }));
    let (d, _services) = flow_daemon(upstream.clone(), kept).await;
    // No upstream ids yet: the warehouse's own counts say nothing is missing.
    eventually("the warehouse asset judged", || async {
        d.store.health(&asset("warehouse-docs")).await.unwrap()
    })
    .await;
    assert_eq!(d.status(&asset("warehouse-docs")).await, Status::Healthy);

    upstream.lock().unwrap().fail_with = None;
    d.run_now("ingest-docs").await;
    eventually("the warehouse asset re-judged", || async {
        (d.status(&asset("warehouse-docs")).await == Status::Unhealthy).then_some(())
    })
    .await;
    assert_eq!(
        d.runs_of("warehouse-docs").await,
        1,
        "without a run of its own"
    );
    let health = d.health(&asset("warehouse-docs")).await;
    assert_eq!(health.state.reasons[0].rule, RuleKind::Completeness);
    assert!(
        health.state.reasons[0].message.contains("10"),
        "{:?}",
        health.state.reasons
    );
    assert_eq!(
        d.store
            .missing_ids("docs", "warehouse", ASSET, None, 100)
            .await
            .unwrap()
            .len(),
        10
    );
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_asset_still_changes_health_but_its_events_are_marked_and_audited() {
    let (d, fake, _service) = one_healthy_check().await;
    let until = std::time::SystemTime::now() + Duration::from_secs(3_600);
    let mute = tributary::health::Mute {
        until,
        reason: "ingest maintenance".into(),
    };
    let muted = d
        .service
        .mute(asset("ingest-docs"), Some(mute.clone()), "ops@example.com")
        .await
        .unwrap();
    assert!(muted);
    let stored = d.health(&asset("ingest-docs")).await;
    assert_eq!(stored.state.muted, Some(mute));

    fake.lock().unwrap().fail_with = Some(400); // a system error: not retried
    d.run_now("ingest-docs").await;
    let events = eventually("the muted change", || async {
        let events = d.events_of(&asset("ingest-docs")).await;
        (events.len() == 2).then_some(events)
    })
    .await;
    assert_eq!(events[1].to, Status::Unknown, "health is still computed");
    assert!(events[1].muted, "the event is marked muted");
    assert!(!events[0].muted);

    assert!(
        d.service
            .mute(asset("ingest-docs"), None, "ops@example.com")
            .await
            .unwrap()
    );
    assert!(
        !d.service
            .mute(asset("no-such-check"), None, "ops@example.com")
            .await
            .unwrap(),
        "nothing to mute"
    );
    let log = d.store.audit_log(10).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("unmute", "ops@example.com", "asset:ingest-docs:documents"),
            ("mute", "ops@example.com", "asset:ingest-docs:documents")
        ]
    );
    assert!(log[1].detail.contains("ingest maintenance"));
    d.service.stop(Duration::from_secs(5)).await;
}

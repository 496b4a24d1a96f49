//! One suite, both backends: every test runs on a SQLite file and on a schema
//! of its own in the local Postgres.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::testing::PgScratch;
use super::*;
use crate::config::Retention;
use crate::health::{
    Change, EntityHealth, EntityRef, FailureClass, HealthState, Reason, RuleKind, Status,
};

const T0: u64 = 1_780_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 + secs)
}

/// Runs `test` against a fresh SQLite file and a fresh Postgres schema.
async fn on_both<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let sqlite = Store::open(&url).await.expect("open sqlite");
    assert_eq!(sqlite.backend(), Backend::Sqlite);
    test(sqlite.clone()).await;
    sqlite.close().await;

    let scratch = PgScratch::new("store_test")
        .await
        .expect("Postgres on 127.0.0.1:5432 (see README: Tests)");
    let pg = scratch.store().await.expect("open postgres");
    assert_eq!(pg.backend(), Backend::Postgres);
    test(pg.clone()).await;
    pg.close().await;
    scratch.drop_schema().await.unwrap();
}

#[tokio::test]
async fn maintenance_windows_are_kept_and_ending_one_moves_its_end() {
    on_both(|store| async move {
        let row = WindowRow {
            name: "reindex".into(),
            reason: "warehouse reindex".into(),
            scope: crate::health::Scope {
                tenant: Some("acme".into()),
                system: Some("ware*".into()),
                ..Default::default()
            },
            start: at(10),
            end: at(3_600),
            created_by: "operator".into(),
            created_at: at(5),
        };
        let write = |row: WindowRow| WriteBatch {
            windows: vec![row],
            ..WriteBatch::default()
        };
        store.write(&write(row.clone())).await.unwrap();
        assert_eq!(
            store.maintenance_windows().await.unwrap(),
            std::slice::from_ref(&row)
        );
        let ended = WindowRow {
            end: at(60),
            ..row.clone()
        };
        store.write(&write(ended.clone())).await.unwrap();
        assert_eq!(store.maintenance_windows().await.unwrap(), [ended]);
    })
    .await;
}

#[tokio::test]
async fn lineage_edges_are_kept_once_and_read_both_ways() {
    on_both(|store| async move {
        let name = |n: &str| DatasetName {
            namespace: "duckdb".into(),
            name: n.into(),
        };
        let edge = |check: &str, up: &str, down: &str| LineageEdge {
            check_id: check.into(),
            job: name("job"),
            upstream: name(up),
            downstream: name(down),
        };
        let edges = [
            edge("dbt", "raw.orders", "stg.orders"),
            edge("dbt", "raw.payments", "stg.orders"),
            edge("bi", "stg.orders", "rpt.revenue"),
        ];
        store.record_lineage(&edges, at(1)).await.unwrap();
        // Seen again: no second row.
        store.record_lineage(&edges[..1], at(2)).await.unwrap();
        let upstream = store.lineage_upstream("dbt", "stg.orders").await.unwrap();
        let names: Vec<&str> = upstream.iter().map(|n| n.dataset.name.as_str()).collect();
        assert_eq!(names, ["raw.orders", "raw.payments"]);
        assert!(
            store
                .lineage_upstream("bi", "stg.orders")
                .await
                .unwrap()
                .is_empty()
        );
        let downstream = store.lineage_downstream("stg.orders").await.unwrap();
        assert_eq!(
            downstream,
            [Neighbour {
                dataset: name("rpt.revenue"),
                check_id: "bi".into()
            }]
        );
    })
    .await;
}

fn run(id: &str, check: &str, start: u64, failure: Option<&str>) -> RunRow {
    RunRow {
        id: id.into(),
        check_id: check.into(),
        connector: "example".into(),
        plugin_version: "1.2.0".into(),
        trigger: Trigger::Schedule,
        attempt: 1,
        started_at: at(start),
        finished_at: at(start) + Duration::from_millis(250),
        failure: failure.map(|m| RunFailure {
            class: FailureClass::Transient,
            message: m.into(),
        }),
        assets: 1,
    }
}

fn observation(asset: &str, received: u64, errors: &[(&str, Option<&str>)]) -> ObservationRow {
    ObservationRow {
        asset: asset.into(),
        kind: "table".into(),
        expected: Some(100),
        received: Some(received),
        errored: Some(errors.len() as u64),
        missing: None,
        freshness: Some(at(0)),
        last_received_id: Some("doc-99".into()),
        last_received_at: Some(at(1)),
        native: Some(NativeRow {
            level: "warn".into(),
            label: "warn".into(),
            message: Some("2 rows failed".into()),
        }),
        extras: vec![("bytes".into(), 4096)],
        error_totals: vec![("parse".into(), errors.len() as u64)],
        metadata: vec![("owner".into(), "data-eng".into())],
        errors: errors
            .iter()
            .map(|(kind, doc)| ErrorRow {
                kind: (*kind).into(),
                message: format!("{kind} failed"),
                document_id: doc.map(Into::into),
                log_link: Some("https://logs.example/1".into()),
                at: Some(at(2)),
            })
            .collect(),
    }
}

fn write_of(run: RunRow, observations: Vec<ObservationRow>) -> RunWrite {
    RunWrite {
        run,
        observations,
        id_sets: vec![],
        reconciliations: vec![],
    }
}

fn event(entity: EntityRef, from: Option<Status>, to: Status, secs: u64) -> NewEvent {
    NewEvent {
        entity,
        change: Change {
            from,
            to,
            reasons: vec![Reason::new(RuleKind::Freshness, to, "late")],
            muted: false,
            maintenance: None,
            suppressed_by: None,
        },
        run_id: Some("r1".into()),
        at: at(secs),
    }
}

#[tokio::test]
async fn push_tokens_last_use_is_kept_and_never_moves_back() {
    on_both(|store| async move {
        let at = |ms: i64| from_ms(1_780_000_000_000 + ms);
        assert!(store.push_tokens_used().await.unwrap().is_empty());
        let used = [("a".to_owned(), at(2_000)), ("b".to_owned(), at(1_000))];
        store.note_push_tokens_used(&used).await.unwrap();
        // An older use of `a` (a late write) keeps the newer; `b` moves on.
        let later = [("a".to_owned(), at(1_500)), ("b".to_owned(), at(3_000))];
        store.note_push_tokens_used(&later).await.unwrap();
        let mut kept = store.push_tokens_used().await.unwrap();
        kept.sort();
        assert_eq!(
            kept,
            [("a".to_owned(), at(2_000)), ("b".to_owned(), at(3_000))]
        );
    })
    .await;
}

#[tokio::test]
async fn a_run_and_everything_it_produced_reads_back() {
    on_both(|store| async move {
        let asset = EntityRef::Asset {
            check: "c1".into(),
            asset: "ORDERS".into(),
        };
        let state = HealthState {
            status: Status::Warning,
            since: at(5),
            reasons: vec![Reason::new(RuleKind::Freshness, Status::Warning, "late")],
            recent: vec![Status::Warning],
            muted: None,
            maintenance: None,
            suppressed_by: None,
        };
        let batch = WriteBatch {
            runs: vec![write_of(
                run("r1", "c1", 0, None),
                vec![observation("ORDERS", 97, &[("parse", Some("doc-7"))])],
            )],
            health: vec![(
                asset.clone(),
                EntityHealth {
                    state: state.clone(),
                    history: vec![97, 95],
                    daily: vec![],
                    last_success: None,
                    assets: Default::default(),
                },
            )],
            events: vec![event(asset.clone(), None, Status::Warning, 5)],
            rollups: vec![],
            audit: vec![AuditEntry {
                at: at(5),
                actor: "writer-test".into(),
                action: "mute".into(),
                target: "check:c1".into(),
                detail: "{}".into(),
            }],
            windows: vec![],
            slices: vec![],
            slo_members: vec![],
        };
        let events = store.write(&batch).await.unwrap();
        assert_eq!(events.len(), 1);
        assert!(events[0].seq > 0);

        let runs = store.runs("c1", None, 10).await.unwrap();
        assert_eq!(runs, vec![run("r1", "c1", 0, None)]);
        assert_eq!(runs[0].duration(), Duration::from_millis(250));

        let obs = store.observations("r1").await.unwrap();
        assert_eq!(obs.len(), 1);
        let mut expected = observation("ORDERS", 97, &[]);
        expected.errored = Some(1);
        expected.error_totals = vec![("parse".into(), 1)];
        assert_eq!(obs[0].observation, expected);
        assert_eq!(obs[0].observed_at, at(0) + Duration::from_millis(250));

        let errors = store
            .errors("c1", "ORDERS", None, None, None, 10)
            .await
            .unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].error.document_id.as_deref(), Some("doc-7"));
        assert_eq!(errors[0].error.at, Some(at(2)));

        let health = store.health(&asset).await.unwrap().unwrap();
        assert_eq!(health.state, state);
        assert_eq!(health.history, vec![97, 95]);
        assert_eq!(store.all_health().await.unwrap().len(), 1);

        let stored = store.events_after(0, 10).await.unwrap();
        assert_eq!(stored, events);
        assert_eq!(store.audit_log(10).await.unwrap()[0].actor, "writer-test");
    })
    .await;
}

#[tokio::test]
async fn event_sequence_numbers_grow_across_batches_and_page_in_order() {
    on_both(|store| async move {
        let mut seen = vec![];
        for i in 0..5u64 {
            let batch = WriteBatch {
                events: vec![
                    event(EntityRef::Check(format!("c{i}")), None, Status::Healthy, i),
                    event(
                        EntityRef::System("s".into()),
                        Some(Status::Healthy),
                        Status::Unhealthy,
                        i,
                    ),
                ],
                ..WriteBatch::default()
            };
            seen.extend(
                store
                    .write(&batch)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.seq),
            );
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(store.last_event_seq().await.unwrap(), *seen.last().unwrap());
        let first = store.events_after(0, 4).await.unwrap();
        let rest = store.events_after(first[3].seq, 100).await.unwrap();
        let paged: Vec<i64> = first.iter().chain(&rest).map(|e| e.seq).collect();
        assert_eq!(paged, seen);
        assert_eq!((rest[0].from, rest[1].from), (None, Some(Status::Healthy)));
    })
    .await;
}

#[tokio::test]
async fn a_failed_batch_writes_nothing() {
    on_both(|store| async move {
        store
            .write(&WriteBatch {
                runs: vec![write_of(run("r1", "c1", 0, None), vec![])],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        // r2 is new but r1 repeats: the whole batch must fail and leave no r2.
        let batch = WriteBatch {
            runs: vec![
                write_of(
                    run("r2", "c1", 10, None),
                    vec![observation("A", 1, &[("x", None)])],
                ),
                write_of(run("r1", "c1", 20, None), vec![]),
            ],
            events: vec![event(
                EntityRef::Check("c1".into()),
                None,
                Status::Healthy,
                9,
            )],
            ..WriteBatch::default()
        };
        assert!(store.write(&batch).await.is_err());
        assert_eq!(store.run_count().await.unwrap(), 1);
        assert!(store.observations("r2").await.unwrap().is_empty());
        assert!(store.events_after(0, 10).await.unwrap().is_empty());
        assert!(
            store
                .errors("c1", "A", None, None, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn missing_ids_page_in_order_and_a_new_reconciliation_replaces_them() {
    on_both(|store| async move {
        let ids: Vec<String> = (0..1_203).map(|i| format!("doc-{i:05}")).collect();
        let rec = |run_id: &str, missing: Vec<String>| ReconciliationRow {
            flow_id: "f".into(),
            system_id: "down".into(),
            asset: "docs".into(),
            run_id: run_id.into(),
            computed_at: at(if run_id == "r1" { 1 } else { 2 }),
            expected: 5_000,
            received: 5_000 - missing.len() as u64,
            missing_ids: missing,
        };
        let mut w = write_of(run("r1", "c1", 0, None), vec![]);
        w.reconciliations.push(rec("r1", ids.clone()));
        w.id_sets.push(IdSetRow {
            system_id: "down".into(),
            asset: "docs".into(),
            check_id: "c1".into(),
            run_id: "r1".into(),
            observed_at: at(1),
            count: 3,
            encoded: vec![0, 1, 2, 255],
        });
        store
            .write(&WriteBatch {
                runs: vec![w],
                ..WriteBatch::default()
            })
            .await
            .unwrap();

        let mut paged = vec![];
        let mut after: Option<String> = None;
        loop {
            let page = store
                .missing_ids("f", "down", "docs", after.as_deref(), 100)
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            paged.extend(page);
        }
        assert_eq!(paged, ids);
        let counts = store
            .reconciliation("f", "down", "docs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((counts.expected, counts.missing), (5_000, 1_203));
        let set = store.id_set("down", "docs").await.unwrap().unwrap();
        assert_eq!((set.count, set.encoded), (3, vec![0, 1, 2, 255]));

        let mut w = write_of(run("r2", "c1", 60, None), vec![]);
        w.reconciliations
            .push(rec("r2", vec!["doc-00007".into(), "doc-00009".into()]));
        store
            .write(&WriteBatch {
                runs: vec![w],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let now = store
            .missing_ids("f", "down", "docs", None, 100)
            .await
            .unwrap();
        assert_eq!(now, ["doc-00007", "doc-00009"]);
        let counts = store
            .reconciliation("f", "down", "docs")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((counts.run_id.as_str(), counts.missing), ("r2", 2));
    })
    .await;
}

#[tokio::test]
async fn errors_filter_by_kind_and_document_newest_first() {
    on_both(|store| async move {
        let obs = observation(
            "A",
            10,
            &[
                ("parse", Some("d1")),
                ("timeout", Some("d2")),
                ("parse", Some("d3")),
                ("parse", Some("d1")),
            ],
        );
        store
            .write(&WriteBatch {
                runs: vec![write_of(run("r1", "c1", 0, None), vec![obs])],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let docs = |errors: Vec<StoredError>| -> Vec<String> {
            errors
                .into_iter()
                .map(|e| e.error.document_id.unwrap())
                .collect()
        };
        let all = store.errors("c1", "A", None, None, None, 10).await.unwrap();
        assert_eq!(docs(all.clone()), ["d1", "d3", "d2", "d1"]);
        let parse = store
            .errors("c1", "A", Some("parse"), None, None, 10)
            .await
            .unwrap();
        assert_eq!(docs(parse), ["d1", "d3", "d1"]);
        let d1 = store
            .errors("c1", "A", None, Some("d1"), None, 10)
            .await
            .unwrap();
        assert_eq!(d1.len(), 2);
        let page2 = store
            .errors("c1", "A", None, None, Some(all[1].id), 10)
            .await
            .unwrap();
        assert_eq!(docs(page2), ["d2", "d1"]);
    })
    .await;
}

#[tokio::test]
async fn rollups_keep_the_worst_status_counts_and_lag_of_each_bucket() {
    on_both(|store| async move {
        let system = EntityRef::System("s".into());
        let delta = |status: Status, secs: u64, lag: Option<u64>, received: Option<u64>| Rollup {
            entity: system.clone(),
            period: Period::Day,
            bucket_start: Period::Day.bucket_start(at(secs)),
            worst: status,
            evaluations: 1,
            healthy: u64::from(status == Status::Healthy),
            runs: 1,
            failed_runs: u64::from(status == Status::Unknown),
            expected: None,
            received,
            errored: None,
            missing: None,
            max_lag: lag.map(Duration::from_secs),
        };
        // Two batches in the same day, one the next day.
        store
            .write(&WriteBatch {
                rollups: vec![
                    delta(Status::Healthy, 0, Some(60), Some(10)),
                    delta(Status::Unhealthy, 10, Some(600), Some(12)),
                ],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        store
            .write(&WriteBatch {
                rollups: vec![
                    delta(Status::Healthy, 20, None, None),
                    delta(Status::Healthy, 86_400 + 20, Some(5), Some(20)),
                ],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let days = store
            .rollups(
                &system,
                Period::Day,
                at(0) - Duration::from_secs(86_400),
                at(3 * 86_400),
            )
            .await
            .unwrap();
        assert_eq!(days.len(), 2);
        let d0 = &days[0];
        assert_eq!(d0.worst, Status::Unhealthy);
        assert_eq!((d0.evaluations, d0.healthy, d0.runs), (3, 2, 3));
        assert_eq!(d0.received, Some(12), "the latest count of the bucket");
        assert_eq!(d0.max_lag, Some(Duration::from_secs(600)));
        assert!((d0.uptime_percent() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(days[1].worst, Status::Healthy);
        assert_eq!(days[1].received, Some(20));
    })
    .await;
}

#[tokio::test]
async fn retention_prunes_old_runs_with_their_rows_and_old_rollups() {
    on_both(|store| async move {
        let old = write_of(
            run("old", "c1", 0, Some("boom")),
            vec![observation("A", 1, &[("x", None)])],
        );
        let new = write_of(
            run("new", "c1", 40 * 86_400, None),
            vec![observation("A", 2, &[("y", None)])],
        );
        let rollup = |secs: u64| Rollup {
            entity: EntityRef::Tenant("t".into()),
            period: Period::Day,
            bucket_start: Period::Day.bucket_start(at(secs)),
            worst: Status::Healthy,
            evaluations: 1,
            healthy: 1,
            runs: 1,
            failed_runs: 0,
            expected: None,
            received: None,
            errored: None,
            missing: None,
            max_lag: None,
        };
        store
            .write(&WriteBatch {
                runs: vec![old, new],
                rollups: vec![rollup(0), rollup(500 * 86_400)],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let pruned = store
            .prune(Retention::default(), at(500 * 86_400 + 1))
            .await
            .unwrap();
        assert_eq!(pruned.runs, 2, "both are older than 30 days at day 500");
        assert_eq!(pruned.rollups, 1);

        store
            .write(&WriteBatch {
                runs: vec![
                    write_of(
                        run("a", "c2", 0, None),
                        vec![observation("B", 1, &[("x", None)])],
                    ),
                    write_of(
                        run("b", "c2", 40 * 86_400, None),
                        vec![observation("B", 2, &[])],
                    ),
                ],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let pruned = store
            .prune(Retention::default(), at(45 * 86_400))
            .await
            .unwrap();
        assert_eq!(pruned.runs, 1);
        let left: Vec<String> = store
            .runs("c2", None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(left, ["b"]);
        assert!(store.observations("a").await.unwrap().is_empty());
        assert!(
            store
                .errors("c2", "B", None, None, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn the_audit_log_keeps_who_did_what() {
    on_both(|store| async move {
        for action in ["run_now", "mute"] {
            store
                .audit(&AuditEntry {
                    at: at(1),
                    actor: "ops-token".into(),
                    action: action.into(),
                    target: "check:c1".into(),
                    detail: "{}".into(),
                })
                .await
                .unwrap();
        }
        let log = store.audit_log(10).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["mute", "run_now"]);
        assert_eq!(log[0].actor, "ops-token");
    })
    .await;
}

#[tokio::test]
async fn batched_reads_return_each_key_once_and_the_latest_observation() {
    on_both(|store| async move {
        // c1 observes `orders` twice (the later wins) and `users` once; c2 once.
        let mut writes = vec![
            write_of(
                run("r1", "c1", 0, None),
                vec![observation("orders", 10, &[])],
            ),
            write_of(
                run("r2", "c1", 60, None),
                vec![observation("orders", 20, &[]), observation("users", 5, &[])],
            ),
            write_of(
                run("r3", "c2", 30, None),
                vec![observation("orders", 7, &[])],
            ),
        ];
        for w in &mut writes {
            for o in &mut w.observations {
                o.freshness = Some(w.run.started_at);
            }
        }
        let healthy = |secs| EntityHealth {
            state: HealthState {
                status: Status::Healthy,
                since: at(secs),
                reasons: vec![],
                recent: vec![Status::Healthy],
                muted: None,
                maintenance: None,
                suppressed_by: None,
            },
            history: vec![],
            daily: vec![],
            last_success: None,
            assets: Default::default(),
        };
        store
            .write(&WriteBatch {
                runs: writes,
                health: vec![
                    (EntityRef::Check("c1".into()), healthy(1)),
                    (EntityRef::Flow("f".into()), healthy(2)),
                ],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let keys: Vec<String> = ["check:c1", "flow:f", "check:unknown"]
            .map(String::from)
            .to_vec();
        let mut health = store.health_of(&keys).await.unwrap();
        health.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            health
                .iter()
                .map(|(k, h)| (k.as_str(), h.state.since))
                .collect::<Vec<_>>(),
            [("check:c1", at(1)), ("flow:f", at(2))]
        );
        assert!(store.health_of(&[]).await.unwrap().is_empty());

        let latest = store
            .latest_observations(&["c1".into(), "c2".into()])
            .await
            .unwrap();
        let seen: Vec<(&str, &str, Option<u64>)> = latest
            .iter()
            .map(|o| {
                (
                    o.check_id.as_str(),
                    o.observation.asset.as_str(),
                    o.observation.received,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("c1", "orders", Some(20)),
                ("c1", "users", Some(5)),
                ("c2", "orders", Some(7))
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_an_asset_or_a_tenant_removes_only_its_data_and_is_audited() {
    on_both(|store| async move {
        let rec = |flow: &str, system: &str, asset: &str, run_id: &str| ReconciliationRow {
            flow_id: flow.into(),
            system_id: system.into(),
            asset: asset.into(),
            run_id: run_id.into(),
            computed_at: at(1),
            expected: 3,
            received: 1,
            missing_ids: vec!["a".into(), "b".into()],
        };
        let set = |system: &str, asset: &str, check: &str, run_id: &str| IdSetRow {
            system_id: system.into(),
            asset: asset.into(),
            check_id: check.into(),
            run_id: run_id.into(),
            observed_at: at(1),
            count: 1,
            encoded: vec![1],
        };
        let mut w1 = write_of(
            run("r1", "c1", 0, None),
            vec![
                observation("orders", 1, &[("bad", Some("d1"))]),
                observation("users", 1, &[("bad", None)]),
            ],
        );
        w1.reconciliations.push(rec("f1", "s1", "orders", "r1"));
        w1.reconciliations.push(rec("f1", "s1", "users", "r1"));
        w1.id_sets.push(set("s1", "orders", "c1", "r1"));
        w1.id_sets.push(set("s1", "users", "c1", "r1"));
        let mut w2 = write_of(
            run("r2", "c2", 0, None),
            vec![observation("orders", 1, &[])],
        );
        w2.reconciliations.push(rec("f2", "s2", "orders", "r2"));
        w2.id_sets.push(set("s2", "orders", "c2", "r2"));
        store
            .write(&WriteBatch {
                runs: vec![w1, w2],
                ..WriteBatch::default()
            })
            .await
            .unwrap();
        let audit = |target: &str| AuditEntry {
            at: at(2),
            actor: "admin".into(),
            action: "delete_data".into(),
            target: target.into(),
            detail: "{}".into(),
        };

        let one_asset = DataScope {
            checks: vec!["c1".into()],
            systems: vec!["s1".into()],
            flows: vec!["f1".into()],
            asset: Some("orders".into()),
        };
        let deleted = store
            .delete_data(&one_asset, &audit("asset:c1:orders"))
            .await
            .unwrap();
        assert_eq!(
            deleted,
            Deleted {
                observations: 1,
                errors: 1,
                id_sets: 1,
                reconciliations: 1,
                missing_ids: 2,
            }
        );
        assert!(store.id_set("s1", "orders").await.unwrap().is_none());
        assert!(store.id_set("s1", "users").await.unwrap().is_some());
        assert_eq!(
            store
                .missing_ids("f1", "s1", "users", None, 10)
                .await
                .unwrap()
                .len(),
            2
        );

        let tenant = DataScope {
            checks: vec!["c1".into()],
            systems: vec!["s1".into()],
            flows: vec!["f1".into()],
            asset: None,
        };
        let deleted = store
            .delete_data(&tenant, &audit("tenant:t1"))
            .await
            .unwrap();
        assert_eq!((deleted.observations, deleted.id_sets), (1, 1));
        assert!(
            store
                .latest_observations(&["c1".into()])
                .await
                .unwrap()
                .is_empty()
        );
        // The other tenant's data and every run stay.
        assert_eq!(
            store
                .latest_observations(&["c2".into()])
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.id_set("s2", "orders").await.unwrap().is_some());
        assert_eq!(store.run_count().await.unwrap(), 2);
        let log = store.audit_log(10).await.unwrap();
        assert_eq!(log[0].target, "tenant:t1");
        assert_eq!(log[1].target, "asset:c1:orders");
    })
    .await;
}

#[tokio::test]
async fn reopening_a_sqlite_file_keeps_its_data_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("nested/dir/t.db").display());
    let store = Store::open(&url).await.unwrap();
    store
        .write(&WriteBatch {
            runs: vec![write_of(run("r1", "c1", 0, None), vec![])],
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    store.close().await;
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.run_count().await.unwrap(), 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&again.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn urls_that_cannot_persist_are_refused() {
    for url in ["sqlite::memory:", "sqlite:", "mysql://x", "file.db"] {
        assert!(normalise_url(url).is_err(), "{url}");
    }
    assert_eq!(
        normalise_url("postgres://u@h/db").unwrap().0,
        Backend::Postgres
    );
}

/// Every event waits in the alert outbox, written with it; the dispatcher's
/// rows keep a group's messages in order and count attempts.
#[tokio::test]
async fn events_fill_the_alert_outbox_and_deliveries_go_in_group_order() {
    on_both(|store| async move {
        let batch = WriteBatch {
            events: vec![
                event(EntityRef::Check("c1".into()), None, Status::Unhealthy, 1),
                event(EntityRef::Check("c2".into()), None, Status::Warning, 1),
            ],
            ..WriteBatch::default()
        };
        let written: Vec<i64> = store
            .write(&batch)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(store.alert_outbox_seqs(10).await.unwrap(), written);

        let group = |state: Option<&str>| AlertGroupRow {
            route: "r".into(),
            group_key: "tenant=acme".into(),
            state: state.map(str::to_owned),
            flush_at: Some(5),
        };
        let delivery = |id: &str, at: i64| NewDelivery {
            id: id.into(),
            channel: "hook".into(),
            route: "r".into(),
            group_key: "tenant=acme".into(),
            message: "{}".into(),
            created_at: at,
            entities: vec!["check:c1".into()],
            tenant: Some("acme".into()),
        };
        store
            .alert_commit(
                &[group(Some("{}"))],
                &[delivery("m1", 1), delivery("m2", 2)],
                &written,
            )
            .await
            .unwrap();
        assert!(store.alert_outbox_seqs(10).await.unwrap().is_empty());
        let key = ("r".to_owned(), "tenant=acme".to_owned());
        let stored = store
            .alert_groups(std::slice::from_ref(&key))
            .await
            .unwrap();
        assert_eq!(stored.get(&key).map(String::as_str), Some("{}"));
        assert_eq!(store.alert_due_groups(4, 10).await.unwrap().len(), 0);
        assert_eq!(store.alert_due_groups(5, 10).await.unwrap().len(), 1);

        // m2 waits for m1, even when m1 is put off.
        let due = store
            .alert_due_deliveries(10, 10, &NotNow::default())
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["m1"]
        );
        // m1 in flight: neither it nor m2 behind it is due, nor anything of
        // a channel left out; and none counts for the next due time.
        let in_flight = NotNow {
            channels: Vec::new(),
            ns: vec![due[0].n],
        };
        assert!(
            store
                .alert_due_deliveries(10, 10, &in_flight)
                .await
                .unwrap()
                .is_empty()
        );
        let next = store.alert_next_due(&in_flight).await.unwrap();
        assert!(next.deliveries.is_empty(), "{next:?}");
        let busy = NotNow {
            channels: vec!["other".into(), "hook".into()],
            ns: vec![due[0].n, -1],
        };
        assert!(
            store
                .alert_due_deliveries(10, 10, &busy)
                .await
                .unwrap()
                .is_empty()
        );
        let retry = DeliveryUpdate::Retry {
            next_at: 100,
            error: "503".into(),
        };
        store
            .alert_attempted(&[(due[0].n, retry)], 10)
            .await
            .unwrap();
        assert!(
            store
                .alert_due_deliveries(50, 10, &NotNow::default())
                .await
                .unwrap()
                .is_empty()
        );
        // What wakes the dispatcher next: the group at 5, m1's retry at 100
        // (m2, behind it, does not count).
        let next = store.alert_next_due(&NotNow::default()).await.unwrap();
        assert_eq!(next.flush_at, Some(5));
        assert_eq!(next.deliveries, [("hook".to_owned(), 100)].into());
        let due = store
            .alert_due_deliveries(100, 10, &NotNow::default())
            .await
            .unwrap();
        assert_eq!((due[0].id.as_str(), due[0].attempts), ("m1", 1));
        store
            .alert_attempted(&[(due[0].n, DeliveryUpdate::Delivered)], 100)
            .await
            .unwrap();
        let due = store
            .alert_due_deliveries(100, 10, &NotNow::default())
            .await
            .unwrap();
        assert_eq!(due[0].id, "m2");
        let backlog = store.alert_backlog().await.unwrap();
        assert_eq!(
            (backlog.pending, backlog.oldest, backlog.outbox),
            (1, Some(2), 0)
        );

        // Retention takes the delivered message, never the pending one.
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400 * 86_400);
        store.prune(Retention::default(), far).await.unwrap();
        let due = store
            .alert_due_deliveries(100, 10, &NotNow::default())
            .await
            .unwrap();
        assert_eq!(due[0].id, "m2");
        assert_eq!(store.alert_backlog().await.unwrap().pending, 1);
        // m1 is gone: its id can be stored again.
        store
            .alert_commit(&[], &[delivery("m1", 3)], &[])
            .await
            .expect("the delivered m1 was pruned");

        store.alert_commit(&[group(None)], &[], &[]).await.unwrap();
        let stored = store
            .alert_groups(std::slice::from_ref(&key))
            .await
            .unwrap();
        assert!(stored.is_empty());
    })
    .await;
}

/// The API's reads of deliveries: filters by channel, status, entity and
/// tenant, newest first, paged by `n`; a retry makes a given-up delivery
/// due again under its id; a channel's disabling is kept until enabled.
#[tokio::test]
async fn deliveries_filter_page_retry_and_channels_stay_disabled() {
    on_both(|store| async move {
        let delivery =
            |id: &str, channel: &str, entities: &[&str], tenant: Option<&str>| NewDelivery {
                id: id.into(),
                channel: channel.into(),
                route: "r".into(),
                group_key: id.into(),
                message: "{}".into(),
                created_at: 1,
                entities: entities.iter().map(|e| (*e).to_owned()).collect(),
                tenant: tenant.map(str::to_owned),
            };
        let made = [
            delivery("m1", "hook", &["check:a"], Some("acme")),
            delivery("m2", "chat", &["check:a", "check:b"], Some("acme")),
            delivery("m3", "hook", &["check:g"], Some("globex")),
            delivery("m4", "hook", &["check:a", "check:g"], None),
        ];
        store.alert_commit(&[], &made, &[]).await.unwrap();
        let ids = |filter: DeliveryFilter| {
            let store = store.clone();
            async move {
                (store
                    .alert_deliveries(&filter, 10)
                    .await
                    .unwrap()
                    .into_iter())
                .map(|d| d.id)
                .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            ids(DeliveryFilter::default()).await,
            ["m4", "m3", "m2", "m1"]
        );
        let hook = DeliveryFilter {
            channel: Some("hook".into()),
            ..DeliveryFilter::default()
        };
        assert_eq!(ids(hook.clone()).await, ["m4", "m3", "m1"]);
        let of_a = DeliveryFilter {
            entity: Some("check:a".into()),
            ..hook.clone()
        };
        assert_eq!(ids(of_a.clone()).await, ["m4", "m1"]);
        let acme = DeliveryFilter {
            tenant: Some("acme".into()),
            ..DeliveryFilter::default()
        };
        assert_eq!(ids(acme).await, ["m2", "m1"]);
        let page = store
            .alert_deliveries(&DeliveryFilter::default(), 2)
            .await
            .unwrap();
        let after = DeliveryFilter {
            before: Some(page[1].n),
            ..DeliveryFilter::default()
        };
        assert_eq!(ids(after).await, ["m2", "m1"]);

        let m1 = store.alert_delivery("m1").await.unwrap().unwrap();
        let given_up = DeliveryUpdate::Failed {
            status: DeliveryStatus::GaveUp,
            error: "given up".into(),
        };
        store.alert_attempted(&[(m1.n, given_up)], 5).await.unwrap();
        let gave_up = DeliveryFilter {
            status: Some(DeliveryStatus::GaveUp),
            ..DeliveryFilter::default()
        };
        assert_eq!(ids(gave_up.clone()).await, ["m1"]);
        let audit = AuditEntry {
            at: SystemTime::UNIX_EPOCH,
            actor: "operator".into(),
            action: "retry_delivery".into(),
            target: "delivery:m1".into(),
            detail: "{}".into(),
        };
        let retried = store.alert_retry("m1", 9, &audit).await.unwrap();
        assert_eq!(retried.as_deref(), Some("hook"), "its channel");
        assert!(ids(gave_up).await.is_empty());
        let due = store
            .alert_due_deliveries(9, 10, &NotNow::default())
            .await
            .unwrap();
        assert!(due.iter().any(|d| d.id == "m1"), "due again under its id");
        store
            .alert_attempted(&[(m1.n, DeliveryUpdate::Delivered)], 12)
            .await
            .unwrap();
        let m1 = store.alert_delivery("m1").await.unwrap().unwrap();
        assert_eq!(
            (m1.status, m1.delivered_at, m1.attempts),
            (DeliveryStatus::Delivered, Some(12), 2)
        );
        assert!(
            store.alert_retry("m1", 13, &audit).await.unwrap().is_none(),
            "delivered stays"
        );
        assert!(
            store
                .alert_retry("nothing", 13, &audit)
                .await
                .unwrap()
                .is_none()
        );

        let row = DisabledChannelRow {
            channel: "hook".into(),
            fingerprint: "f1".into(),
            reason: "410".into(),
        };
        store.alert_disable_channel(&row, 1).await.unwrap();
        store.alert_disable_channel(&row, 2).await.unwrap();
        assert_eq!(store.alert_disabled_channels().await.unwrap(), [row]);
        assert!(store.alert_enable_channel("hook").await.unwrap());
        assert!(!store.alert_enable_channel("hook").await.unwrap());
        assert!(store.alert_disabled_channels().await.unwrap().is_empty());
    })
    .await;
}

/// Slice events add up across writes and within one: a bad event makes the
/// slice bad for good, the first reason stays, an excluded mark sticks.
#[tokio::test]
async fn slo_slices_accumulate_their_events() {
    use super::SliceDelta;
    use crate::slo::SliceState;
    on_both(|store| async move {
        let asset = EntityRef::Asset {
            check: "c1".into(),
            asset: "ORDERS".into(),
        };
        let delta =
            |start: i64, good: u64, total: u64, excluded: bool, reason: Option<&str>| SliceDelta {
                slo: "rows".into(),
                entity: asset.clone(),
                start,
                good,
                total,
                excluded,
                reason: reason.map(str::to_owned),
            };
        let write = |slices: Vec<SliceDelta>| WriteBatch {
            slices,
            ..WriteBatch::default()
        };
        // One write: two events of slice 0 (merged), one of slice 1.
        store
            .write(&write(vec![
                delta(0, 1, 1, false, None),
                delta(0, 0, 1, false, Some("drop")),
                delta(3_600_000, 1, 1, false, None),
            ]))
            .await
            .unwrap();
        // Later writes: slice 0 good again (stays bad, keeps its reason),
        // slice 1 under maintenance.
        store
            .write(&write(vec![
                delta(0, 1, 1, false, None),
                delta(3_600_000, 1, 1, true, Some("maintenance window w")),
                delta(7_200_000, 1, 1, false, None),
            ]))
            .await
            .unwrap();
        let all = store.slo_slices("rows", None, 0, 7_200_000).await.unwrap();
        let got: Vec<_> = all
            .iter()
            .map(|s| {
                (
                    s.slice.start,
                    s.slice.state,
                    s.slice.good,
                    s.slice.total,
                    s.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, SliceState::Bad, 2, 3, Some("drop")),
                (
                    3_600_000,
                    SliceState::Excluded,
                    2,
                    2,
                    Some("maintenance window w")
                ),
            ]
        );
        let one = store
            .slo_slices("rows", Some(&asset), 7_200_000, 7_200_001)
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert!(
            store
                .slo_slices("other", None, 0, i64::MAX)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.prune_slices(3_600_000).await.unwrap(), 1);
        assert_eq!(
            store
                .slo_slices("rows", None, 0, i64::MAX)
                .await
                .unwrap()
                .len(),
            2
        );
    })
    .await;
}

/// The sums `slo_totals` keeps equal the sums of the stored slices of the
/// span asked, through every way the span and the slices move: the first
/// read, a late write inside the span, a write in progress past it, the
/// window moving on, retention, another calendar, a longer window.
#[tokio::test]
async fn slo_totals_follow_the_slices_of_the_span() {
    use super::SliceDelta;
    use crate::slo::Totals;
    use std::collections::BTreeMap;
    const H: i64 = 3_600_000;
    on_both(|store| async move {
        let entity = |n: u32| EntityRef::Asset {
            check: format!("c{n}"),
            asset: "A".into(),
        };
        let delta = |n: u32, hour: i64, good: u64, total: u64, excluded: bool| SliceDelta {
            slo: "s".into(),
            entity: entity(n),
            start: hour * H,
            good,
            total,
            excluded,
            reason: None,
        };
        let write = |slices: Vec<SliceDelta>| WriteBatch {
            slices,
            ..WriteBatch::default()
        };
        // What the sums must be: from the slices themselves.
        let expected = |store: Store, since: i64, until: i64| async move {
            let mut by: BTreeMap<String, Totals> = BTreeMap::new();
            for s in store.slo_slices("s", None, since, until).await.unwrap() {
                by.entry(entity_key(&s.entity)).or_default().add(&s.slice);
            }
            by
        };
        let got = |store: Store, calendar: &'static str, since: i64, until: i64| async move {
            let mut got = BTreeMap::new();
            let rank = crate::slo::Ranking {
                counting: crate::slo::Counting {
                    target: 0.9,
                    budgeting: crate::slo::Budgeting::Timeslices,
                    no_data: crate::slo::Counts::Bad,
                    excluded: crate::slo::Counts::Excluded,
                },
                judged: 10,
                slices: 10,
            };
            store
                .slo_ranked("s", calendar, (since, until), &rank, |e, t| {
                    got.insert(entity_key(&e), t);
                    true
                })
                .await
                .unwrap();
            got
        };
        let slices: Vec<SliceDelta> = (0..3)
            .flat_map(|n| {
                (0..10).map(move |h| delta(n, h, u64::from((h + i64::from(n)) % 3 != 0), 1, h == 4))
            })
            .collect();
        store.write(&write(slices)).await.unwrap();
        let check = |since: i64, until: i64, calendar: &'static str| {
            let store = store.clone();
            async move {
                let want = expected(store.clone(), since * H, until * H).await;
                assert_eq!(
                    got(store, calendar, since * H, until * H).await,
                    want,
                    "[{since}, {until})"
                );
            }
        };
        check(2, 8, "hour").await;
        // Late: hour 3 turns bad, hour 5 gets excluded; a new entity's
        // slice in the span; an event in progress (hour 9) and one past it.
        store
            .write(&write(vec![
                delta(0, 3, 0, 2, false),
                delta(1, 5, 1, 1, true),
                delta(7, 6, 2, 3, false),
                delta(2, 9, 1, 1, false),
                delta(2, 12, 0, 1, false),
            ]))
            .await
            .unwrap();
        check(2, 8, "hour").await;
        // The window moves on by two hours, then retention deletes hours
        // before 5 (the span loses hours 4), then past the span entirely.
        check(4, 10, "hour").await;
        store.prune_slices(5 * H).await.unwrap();
        check(5, 10, "hour").await;
        // Another calendar, a longer window, a clock gone back: summed again.
        check(5, 10, "day").await;
        check(3, 13, "day").await;
        check(3, 11, "day").await;
        store.prune_slices(12 * H).await.unwrap();
        check(12, 13, "day").await;
    })
    .await;
}

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::*;
use crate::health::RuleKind;

const MIN: u64 = 60;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000 + secs)
}

fn rules(value: serde_json::Value) -> Rules {
    serde_json::from_value(value).unwrap()
}

/// Tenant `acme`, flow `orders` from system `ingest` to `warehouse`; check
/// `ingest-api` on `ingest`, checks `wh-a` and `wh-b` on `warehouse`.
fn book(check_rules: Rules) -> Book {
    let check = |id: &str, system: &str| CheckPlace {
        id: id.into(),
        system: system.into(),
        rules: check_rules.clone(),
        expect: Expect::Runs(Duration::from_secs(5 * MIN)),
    };
    let topology = Topology::new(
        ["acme".to_owned()],
        vec![
            check("ingest-api", "ingest"),
            check("wh-a", "warehouse"),
            check("wh-b", "warehouse"),
        ],
        vec![FlowPlace {
            id: "orders".into(),
            tenant: "acme".into(),
            systems: vec!["ingest".into(), "warehouse".into()],
        }],
    );
    Book::new(topology, [], at(0))
}

fn facts(received: u64) -> AssetFacts {
    AssetFacts {
        expected: Some(100),
        received: Some(received),
        ..AssetFacts::default()
    }
}

fn asset(check: &str, asset: &str) -> EntityRef {
    EntityRef::Asset {
        check: check.into(),
        asset: asset.into(),
    }
}

fn status(book: &Book, entity: &EntityRef) -> Status {
    book.get(entity).unwrap().state.status
}

#[test]
fn a_first_run_gives_every_entity_on_its_path_a_health_and_an_event() {
    let mut book = book(Rules::default());
    let out = book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(1));
    let changed: Vec<String> = out.changes.iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(
        changed,
        [
            "asset ORDERS of check wh-a",
            "check wh-a",
            "system warehouse",
            "flow orders",
            "tenant acme"
        ]
    );
    assert!(out.changes.iter().all(|(_, c)| c.to == Status::Healthy));
    assert_eq!(out.updates.len(), 5);
    assert_eq!(out.samples.len(), 5);
}

#[test]
fn a_plugin_that_fails_three_times_leaves_its_asset_unknown_never_healthy() {
    let mut book = book(Rules::default());
    book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(0));
    let mut events = vec![];
    for i in 1..=3 {
        let out = book.record_failure(
            "wh-a",
            FailureClass::Transient,
            "503 from warehouse",
            at(i * MIN),
        );
        events.extend(out.changes);
        assert_eq!(status(&book, &asset("wh-a", "ORDERS")), Status::Unknown);
    }
    // One change per entity, on the first failure; none after.
    assert_eq!(events.len(), 5);
    let flow = book.get(&EntityRef::Flow("orders".into())).unwrap();
    assert_eq!(flow.state.status, Status::Unknown);
    let reason = &flow.state.reasons[0];
    assert_eq!(reason.rule, RuleKind::RunFailed);
    assert_eq!(reason.child, Some(EntityRef::System("warehouse".into())));
    assert!(
        reason.message.contains("503 from warehouse"),
        "{}",
        reason.message
    );
}

#[test]
fn a_check_that_failed_before_naming_any_asset_is_unknown_itself() {
    let mut book = book(Rules::default());
    let out = book.record_failure("ingest-api", FailureClass::Auth, "401 bad token", at(0));
    assert_eq!(
        status(&book, &EntityRef::Check("ingest-api".into())),
        Status::Unknown
    );
    let check = book.get(&EntityRef::Check("ingest-api".into())).unwrap();
    assert!(check.state.reasons[0].message.contains("401 bad token"));
    assert_eq!(out.changes.len(), 4, "check, system, flow, tenant");
}

#[test]
fn the_worst_child_wins_and_a_recovery_rolls_back_up() {
    let mut book = book(rules(
        json!({ "completeness": { "warn": "1", "error": "5%" } }),
    ));
    book.record_success("wh-a", vec![("A".into(), facts(100))], at(0));
    book.record_success("wh-b", vec![("B".into(), facts(100))], at(0));
    let out = book.record_success("wh-b", vec![("B".into(), facts(90))], at(MIN));
    let system = EntityRef::System("warehouse".into());
    assert_eq!(status(&book, &system), Status::Unhealthy);
    let reason = &book.get(&system).unwrap().state.reasons[0];
    assert_eq!(reason.child, Some(EntityRef::Check("wh-b".into())));
    assert_eq!(reason.rule, RuleKind::Completeness);
    assert_eq!(out.changes.len(), 5);

    // wh-a's healthy runs do not touch the parents' health.
    let out = book.record_success("wh-a", vec![("A".into(), facts(100))], at(2 * MIN));
    assert!(out.changes.is_empty());
    let updated: Vec<String> = out.updates.iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(
        updated,
        ["asset A of check wh-a", "check wh-a"],
        "the asset's history and the check's last success; no parent"
    );

    let out = book.record_success("wh-b", vec![("B".into(), facts(100))], at(3 * MIN));
    assert_eq!(
        status(&book, &EntityRef::Tenant("acme".into())),
        Status::Healthy
    );
    assert!(out.changes.iter().all(|(_, c)| c.to == Status::Healthy));
}

#[test]
fn volume_rules_compare_against_the_received_counts_of_earlier_runs() {
    let mut book = book(rules(json!({
        "volume": { "window": 3, "drop_percent": 50.0 }
    })));
    for (i, n) in [1_000, 1_100, 900].into_iter().enumerate() {
        book.record_success("wh-a", vec![("A".into(), facts(n))], at(i as u64 * MIN));
        assert_eq!(status(&book, &asset("wh-a", "A")), Status::Healthy);
    }
    book.record_success("wh-a", vec![("A".into(), facts(100))], at(4 * MIN));
    let a = book.get(&asset("wh-a", "A")).unwrap();
    assert_eq!(a.state.status, Status::Warning);
    assert_eq!(a.state.reasons[0].rule, RuleKind::Volume);
    assert_eq!(a.history[..4], [100, 900, 1_100, 1_000]);
}

#[test]
fn a_check_without_a_success_for_two_intervals_goes_stale_once() {
    let mut book = book(Rules::default());
    book.record_success("wh-a", vec![("A".into(), facts(100))], at(0));
    assert!(
        book.sweep_stale(at(10 * MIN)).changes.is_empty(),
        "exactly two intervals is not stale"
    );
    let out = book.sweep_stale(at(10 * MIN + 1));
    let a = book.get(&asset("wh-a", "A")).unwrap();
    assert_eq!(a.state.status, Status::Unknown);
    assert_eq!(a.state.reasons[0].rule, RuleKind::Stale);
    assert!(out.changes.iter().any(|(e, _)| *e == asset("wh-a", "A")));
    // ingest-api and wh-b never succeeded: stale too, counted from the start.
    assert_eq!(
        status(&book, &EntityRef::Check("ingest-api".into())),
        Status::Unknown
    );
    let again = book.sweep_stale(at(11 * MIN));
    assert!(again.changes.is_empty());
}

#[test]
fn stored_health_is_picked_up_where_it_left_off() {
    let mut first = book(Rules::default());
    let out = first.record_success("wh-a", vec![("A".into(), facts(100))], at(0));
    let topology = first.topology().clone();
    let mut second = Book::new(topology, out.updates, at(1));
    let again = second.record_success("wh-a", vec![("A".into(), facts(100))], at(MIN));
    assert!(
        again.changes.is_empty(),
        "nothing changed, so no event after a restart"
    );
    assert!(second.knows_asset("wh-a", "A"));
    assert!(!second.knows_asset("wh-a", "B"));
}

#[test]
fn volume_per_day_compares_against_each_earlier_days_latest_count() {
    let mut book = book(rules(json!({
        "volume": { "window": 2, "per": "days", "drop_percent": 50.0 }
    })));
    const DAY: u64 = 86_400;
    // Day 0: many runs, the day's last count is 1,000; day 1: 900.
    for (secs, n) in [(0, 10), (600, 1_000), (DAY, 5), (DAY + 600, 900)] {
        book.record_success("wh-a", vec![("A".into(), facts(n))], at(secs));
        assert_eq!(
            status(&book, &asset("wh-a", "A")),
            Status::Healthy,
            "warming up at {secs}"
        );
    }
    // Day 2: the mean of the last two days is 950; 400 is a drop of 57.9%.
    book.record_success("wh-a", vec![("A".into(), facts(400))], at(2 * DAY));
    let a = book.get(&asset("wh-a", "A")).unwrap();
    assert_eq!(a.state.status, Status::Warning);
    assert!(
        a.state.reasons[0].message.contains("57.9%"),
        "{}",
        a.state.reasons[0].message
    );
    // Per run, the same history would be healthy (the 5 and 10 pull the mean down).
    assert_eq!(a.history[..3], [400, 900, 5]);
}

// ---- Marks: maintenance windows and dependency suppression ----

fn strict() -> Rules {
    rules(json!({ "completeness": { "warn": "1", "error": "5%" } }))
}

fn system(id: &str) -> EntityRef {
    EntityRef::System(id.into())
}

/// The changes of `out` as `(entity, from, to, maintenance, suppressed_by)`.
type Marked = (
    String,
    Option<Status>,
    Status,
    Option<String>,
    Option<String>,
);

fn marks(out: &Outcome) -> Vec<Marked> {
    out.changes
        .iter()
        .map(|(e, c)| {
            (
                e.to_string(),
                c.from,
                c.to,
                c.maintenance.clone(),
                c.suppressed_by.as_ref().map(ToString::to_string),
            )
        })
        .collect()
}

/// The book after every entity has been judged HEALTHY once and `ingest`
/// has then failed (UNKNOWN).
fn upstream_down() -> Book {
    let mut book = book(strict());
    book.record_success("ingest-api", vec![("ORDERS".into(), facts(100))], at(0));
    book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(0));
    book.record_failure("ingest-api", FailureClass::Auth, "401", at(MIN));
    assert_eq!(status(&book, &system("ingest")), Status::Unknown);
    book
}

#[test]
fn a_downstream_going_bad_for_missing_records_under_a_failing_upstream_is_suppressed() {
    let mut book = upstream_down();
    let out = book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    let by = Some("system ingest".to_owned());
    let bad = Some(Status::Healthy);
    assert_eq!(
        marks(&out),
        [
            (
                "asset ORDERS of check wh-a".into(),
                bad,
                Status::Unhealthy,
                None,
                by.clone()
            ),
            (
                "check wh-a".into(),
                bad,
                Status::Unhealthy,
                None,
                by.clone()
            ),
            (
                "system warehouse".into(),
                bad,
                Status::Unhealthy,
                None,
                by.clone()
            ),
            // The flow and tenant hold the upstream too: they alert as usual.
            (
                "flow orders".into(),
                Some(Status::Unknown),
                Status::Unhealthy,
                None,
                None
            ),
            (
                "tenant acme".into(),
                Some(Status::Unknown),
                Status::Unhealthy,
                None,
                None
            ),
        ]
    );
    // The mark is kept with the state, and written with it.
    let warehouse = book.get(&system("warehouse")).unwrap();
    assert_eq!(warehouse.state.suppressed_by, Some(system("ingest")));
    let written = out.updates.iter().find(|(e, _)| *e == system("warehouse"));
    assert_eq!(
        written.unwrap().1.state.suppressed_by,
        Some(system("ingest"))
    );
}

#[test]
fn when_the_upstream_recovers_each_still_bad_downstream_is_announced_once() {
    let mut book = upstream_down();
    book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    let out = book.record_success(
        "ingest-api",
        vec![("ORDERS".into(), facts(100))],
        at(3 * MIN),
    );
    let again: Vec<_> = marks(&out)
        .into_iter()
        .filter(|(_, from, to, _, _)| *from == Some(*to))
        .collect();
    let bad = Some(Status::Unhealthy);
    let mut expected: Vec<Marked> = [
        "asset ORDERS of check wh-a",
        "check wh-a",
        "system warehouse",
    ]
    .map(|e| (e.to_owned(), bad, Status::Unhealthy, None, None))
    .to_vec();
    expected.sort();
    let mut again = again;
    again.sort();
    assert_eq!(again, expected);
    assert_eq!(
        book.get(&system("warehouse")).unwrap().state.suppressed_by,
        None
    );
    // Nothing is held back any more: nothing more to say.
    assert!(book.release_marks(at(4 * MIN)).changes.is_empty());
}

#[test]
fn resolutions_and_a_downstream_s_own_failures_are_never_suppressed() {
    let mut book = upstream_down();
    book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    let out = book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(3 * MIN));
    assert!(!out.changes.is_empty());
    assert!(
        out.changes.iter().all(|(_, c)| c.suppressed_by.is_none()),
        "{:?}",
        marks(&out)
    );
    // A failed run is the downstream's own trouble.
    let out = book.record_failure("wh-a", FailureClass::Auth, "401", at(4 * MIN));
    assert!(!out.changes.is_empty());
    assert!(out.changes.iter().all(|(_, c)| c.suppressed_by.is_none()));
    // The upstream recovering announces nothing for them.
    let out = book.record_success(
        "ingest-api",
        vec![("ORDERS".into(), facts(100))],
        at(5 * MIN),
    );
    assert!(out.changes.iter().all(|(_, c)| c.from != Some(c.to)));
}

#[test]
fn with_a_healthy_upstream_nothing_is_suppressed() {
    let mut book = book(strict());
    book.record_success("ingest-api", vec![("ORDERS".into(), facts(100))], at(0));
    let out = book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(MIN));
    assert!(marks(&out).iter().all(|m| m.3.is_none() && m.4.is_none()));
}

#[test]
fn flows_in_a_cycle_mark_the_first_failing_upstream_and_stop() {
    // a -> b and b -> a, each with a check: the walk up ends where it closes.
    let check = |id: &str, system: &str| CheckPlace {
        id: id.into(),
        system: system.into(),
        rules: strict(),
        expect: Expect::Runs(Duration::from_secs(5 * MIN)),
    };
    let flow = |id: &str, up: &str, down: &str| FlowPlace {
        id: id.into(),
        tenant: "acme".into(),
        systems: vec![up.into(), down.into()],
    };
    let topology = Topology::new(
        ["acme".to_owned()],
        vec![check("ca", "a"), check("cb", "b")],
        vec![flow("ab", "a", "b"), flow("ba", "b", "a")],
    );
    let mut book = Book::new(topology, [], at(0));
    book.record_success("ca", vec![("X".into(), facts(100))], at(0));
    book.record_success("cb", vec![("X".into(), facts(100))], at(0));
    let out = book.record_success("ca", vec![("X".into(), facts(80))], at(MIN));
    assert!(out.changes.iter().all(|(_, c)| c.suppressed_by.is_none()));
    let out = book.record_success("cb", vec![("X".into(), facts(80))], at(2 * MIN));
    let b = out.changes.iter().find(|(e, _)| *e == system("b")).unwrap();
    assert_eq!(b.1.suppressed_by, Some(system("a")));
    // a changes again (to WARNING) while b fails: b is its failing upstream,
    // and b's own mark (a) closes the cycle: the walk stops at b.
    let out = book.record_success("ca", vec![("X".into(), facts(97))], at(3 * MIN));
    let a = out.changes.iter().find(|(e, _)| *e == system("a")).unwrap();
    assert_eq!(a.1.to, Status::Warning);
    assert_eq!(a.1.suppressed_by, Some(system("b")));
}

fn window(name: &str, system: &str, from: u64, to: u64) -> Window {
    Window {
        name: name.into(),
        reason: "upgrade".into(),
        scope: crate::health::Scope {
            system: Some(system.into()),
            ..Default::default()
        },
        when: crate::health::When::Once {
            start: at(from),
            end: at(to),
        },
    }
}

#[test]
fn changes_in_a_window_are_marked_and_a_still_bad_entity_is_announced_once_after_it() {
    let mut book = book(strict());
    book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(0));
    book.set_windows(vec![window("wh-upgrade", "ware*", MIN, 10 * MIN)]);
    let out = book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    let name = Some("wh-upgrade".to_owned());
    let in_window: Vec<_> = marks(&out).into_iter().map(|m| (m.0, m.3)).collect();
    assert_eq!(
        in_window,
        [
            ("asset ORDERS of check wh-a".to_owned(), name.clone()),
            ("check wh-a".to_owned(), name.clone()),
            ("system warehouse".to_owned(), name.clone()),
            ("flow orders".to_owned(), None),
            ("tenant acme".to_owned(), None),
        ]
    );
    // Still in force: nothing to announce.
    assert!(book.release_marks(at(9 * MIN)).changes.is_empty());
    let out = book.release_marks(at(10 * MIN));
    let mut announced = marks(&out);
    announced.sort();
    let bad = Some(Status::Unhealthy);
    assert_eq!(
        announced,
        [
            (
                "asset ORDERS of check wh-a".to_owned(),
                bad,
                Status::Unhealthy,
                None,
                None
            ),
            ("check wh-a".to_owned(), bad, Status::Unhealthy, None, None),
            (
                "system warehouse".to_owned(),
                bad,
                Status::Unhealthy,
                None,
                None
            ),
        ]
    );
    assert!(book.release_marks(at(11 * MIN)).changes.is_empty());
}

#[test]
fn an_entity_healthy_again_when_its_window_ends_is_not_announced() {
    let mut book = book(strict());
    book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(0));
    book.set_windows(vec![window("wh-upgrade", "warehouse", MIN, 10 * MIN)]);
    book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(3 * MIN));
    let out = book.release_marks(at(10 * MIN));
    assert!(out.changes.is_empty());
    // The marks are cleared (and written).
    assert!(!out.updates.is_empty());
    assert_eq!(
        book.get(&system("warehouse")).unwrap().state.maintenance,
        None
    );
}

#[test]
fn a_window_removed_lets_go_at_once_and_one_that_follows_on_holds() {
    let mut book = book(strict());
    book.record_success("wh-a", vec![("ORDERS".into(), facts(100))], at(0));
    book.set_windows(vec![window("first", "warehouse", MIN, 10 * MIN)]);
    book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    // The next window starts as the first ends: still held, under its name.
    book.set_windows(vec![
        window("first", "warehouse", MIN, 10 * MIN),
        window("second", "warehouse", 10 * MIN, 20 * MIN),
    ]);
    assert!(book.release_marks(at(10 * MIN)).changes.is_empty());
    let asset = asset("wh-a", "ORDERS");
    assert_eq!(
        book.get(&asset).unwrap().state.maintenance.as_deref(),
        Some("second")
    );
    // Removed (a reload): announced now.
    book.set_windows(Vec::new());
    assert_eq!(book.release_marks(at(11 * MIN)).changes.len(), 3);
}

#[test]
fn an_upstream_taken_out_of_its_flows_by_a_reload_lets_go_of_its_downstreams() {
    let mut book = upstream_down();
    book.record_success("wh-a", vec![("ORDERS".into(), facts(80))], at(2 * MIN));
    // The flow is gone; ingest is still UNKNOWN but upstream of nothing.
    let topology = Topology::new(
        ["acme".to_owned()],
        vec![CheckPlace {
            id: "wh-a".into(),
            system: "warehouse".into(),
            rules: strict(),
            expect: Expect::Runs(Duration::from_secs(5 * MIN)),
        }],
        vec![],
    );
    book.set_topology(topology, at(3 * MIN));
    let out = book.release_marks(at(3 * MIN));
    let again: Vec<_> = out.changes.iter().map(|(e, _)| e.to_string()).collect();
    assert_eq!(
        again,
        [
            "asset ORDERS of check wh-a",
            "check wh-a",
            "system warehouse"
        ]
    );
}

/// A push check `app` on `ingest` (flow `orders`) with assets `uploads` and
/// `export`; only `export` has a heartbeat, its own: every 10 s, 5 s grace.
fn push_book(now: SystemTime) -> Book {
    let deadlines = Deadlines {
        check: Some(Heartbeat {
            every: Duration::from_secs(60 * MIN),
            grace: Duration::ZERO,
        }),
        assets: [(
            "export".to_owned(),
            Heartbeat {
                every: Duration::from_secs(10),
                grace: Duration::from_secs(5),
            },
        )]
        .into(),
    };
    let topology = Topology::new(
        ["acme".to_owned()],
        vec![CheckPlace {
            id: "app".into(),
            system: "ingest".into(),
            rules: Rules::default(),
            expect: Expect::Reports(deadlines),
        }],
        vec![FlowPlace {
            id: "orders".into(),
            tenant: "acme".into(),
            systems: vec!["ingest".into(), "warehouse".into()],
        }],
    );
    Book::new(topology, [], now)
}

#[test]
fn an_asset_past_its_own_deadline_goes_unknown_then_unhealthy_alone_and_recovers() {
    let mut book = push_book(at(0));
    let both = || {
        vec![
            ("uploads".into(), facts(100)),
            ("export".into(), facts(100)),
        ]
    };
    book.record_success("app", both(), at(0));
    let export = asset("app", "export");
    let uploads = asset("app", "uploads");
    assert_eq!(
        book.next_deadline(at(0)),
        Some(at(15) + Duration::from_millis(1)),
        "the asset's deadline comes before the check's hour"
    );
    assert!(book.sweep_stale(at(15)).changes.is_empty(), "on time");

    let out = book.sweep_stale(at(16));
    assert_eq!(status(&book, &export), Status::Unknown);
    assert_eq!(
        book.get(&export).unwrap().state.reasons[0].message,
        "no report for 16s, expected every 10s"
    );
    assert_eq!(status(&book, &uploads), Status::Healthy, "not its deadline");
    assert_eq!(
        status(&book, &EntityRef::Check("app".into())),
        Status::Unknown
    );
    assert!(
        out.changes
            .iter()
            .any(|(e, c)| *e == export && c.to == Status::Unknown)
    );

    // Two missed past the grace (failure threshold 1): UNHEALTHY.
    book.sweep_stale(at(26));
    assert_eq!(status(&book, &export), Status::Unhealthy);

    // A report of the other asset only does not reset it...
    book.record_success("app", vec![("uploads".into(), facts(100))], at(27));
    assert_eq!(status(&book, &export), Status::Unhealthy);
    // ...its own does.
    book.record_success("app", vec![("export".into(), facts(100))], at(28));
    assert_eq!(status(&book, &export), Status::Healthy);
    assert_eq!(
        status(&book, &EntityRef::Check("app".into())),
        Status::Healthy
    );
}

#[test]
fn an_asset_deadline_that_passed_while_the_daemon_was_down_is_judged_at_start() {
    let mut before = push_book(at(0));
    before.record_success("app", vec![("export".into(), facts(100))], at(0));
    let stored: Vec<_> = before.entities.clone().into_iter().collect();
    // Back 40 s later: the export asset missed three beats meanwhile.
    let mut after = push_book(at(40));
    after.entities = stored.into_iter().collect();
    after.sweep_stale(at(40));
    assert_eq!(status(&after, &asset("app", "export")), Status::Unhealthy);
    assert_eq!(
        after.get(&asset("app", "export")).unwrap().state.reasons[0].message,
        "no report for 40s, expected every 10s"
    );
}

#[test]
fn an_asset_with_a_deadline_never_reported_becomes_unknown_in_time() {
    let mut book = push_book(at(0));
    book.record_success("app", vec![("uploads".into(), facts(100))], at(0));
    book.sweep_stale(at(16));
    assert_eq!(status(&book, &asset("app", "export")), Status::Unknown);
    assert!(book.knows_asset("app", "export"));
    assert_eq!(
        book.get(&asset("app", "export")).unwrap().state.reasons[0].message,
        "no report yet, expected every 10s"
    );
}

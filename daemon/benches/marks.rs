//! What maintenance windows and dependency suppression add to judging health:
//! one check of 10,000 assets on a downstream system whose upstream has
//! failed, every asset going UNHEALTHY in one run (10,000 changes to mark,
//! each suppressed and in a recurring window in force), then the upstream
//! recovering and the window removed (10,000 entities announced again).
//! Measured on the pure health book, as the writer calls it.
//!
//! ```sh
//! cargo bench -p tributary --bench marks
//! ```

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tributary::health::{
    AssetFacts, Book, CheckPlace, EntityRef, Expect, FailureClass, FlowPlace, Recurring, Rules,
    Scope, Topology, When, Window, parse_zone,
};

const ASSETS: usize = 10_000;
const ROUNDS: usize = 5;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_000_000 + secs)
}

fn book() -> Book {
    let rules: Rules =
        serde_json::from_value(serde_json::json!({ "completeness": { "error": "5%" } })).unwrap();
    let place = |id: &str, system: &str| CheckPlace {
        id: id.into(),
        system: system.into(),
        rules: rules.clone(),
        expect: Expect::Runs(Duration::from_secs(300)),
    };
    let topology = Topology::new(
        ["acme".to_owned()],
        vec![place("up", "ingest"), place("down", "warehouse")],
        vec![FlowPlace {
            id: "docs".into(),
            tenant: "acme".into(),
            systems: vec!["ingest".into(), "warehouse".into()],
        }],
    );
    Book::new(topology, [], at(0))
}

fn window() -> Window {
    Window {
        name: "nightly".into(),
        reason: "bench".into(),
        scope: Scope {
            system: Some("ware*".into()),
            ..Scope::default()
        },
        when: When::Recurring(Box::new(Recurring {
            expr: "* * * * *".into(),
            cron: croner::Cron::from_str("* * * * *").unwrap(),
            zone: parse_zone("Europe/Berlin").unwrap(),
            duration: Duration::from_secs(3_600),
        })),
    }
}

fn assets(received: u64) -> Vec<(String, AssetFacts)> {
    (0..ASSETS)
        .map(|i| {
            let facts = AssetFacts {
                expected: Some(100),
                received: Some(received),
                ..AssetFacts::default()
            };
            (format!("asset-{i:05}"), facts)
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (mut plain, mut marked, mut released) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for with_marks in [false, true] {
            let mut book = book();
            book.record_success("up", vec![("a".into(), AssetFacts::default())], at(0));
            book.record_success("down", assets(100), at(0));
            if with_marks {
                book.set_windows(vec![window()]);
                book.record_failure("up", FailureClass::Auth, "401", at(60));
            }
            let bad = assets(80);
            let started = Instant::now();
            let out = book.record_success("down", bad, at(120));
            let took = started.elapsed();
            assert!(out.changes.len() >= ASSETS);
            if !with_marks {
                plain.push(took);
                continue;
            }
            let assets = out
                .changes
                .iter()
                .filter(|(e, _)| matches!(e, EntityRef::Asset { .. }));
            assert!(assets.clone().count() == ASSETS);
            assert!(
                assets
                    .into_iter()
                    .all(|(_, c)| { c.maintenance.is_some() && c.suppressed_by.is_some() })
            );
            marked.push(took);
            book.set_windows(Vec::new());
            book.record_success("up", vec![("a".into(), AssetFacts::default())], at(180));
            let started = Instant::now();
            let out = book.release_marks(at(240));
            released.push(started.elapsed());
            assert_eq!(out.changes.len(), 0, "announced by the recovery already");
        }
    }
    println!("{ASSETS} assets going UNHEALTHY in one run, median of {ROUNDS}:");
    println!("  no windows, upstream fine     {:?}", median(plain));
    println!("  in a window, upstream failing {:?}", median(marked));
    println!(
        "  releasing marks with nothing held (a timer tick) {:?}",
        median(released)
    );
}

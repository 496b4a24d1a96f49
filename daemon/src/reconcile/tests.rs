//! The module's behaviour as a user of Tributary would describe it.

use std::collections::BTreeSet;

use super::*;
use crate::plugin::IdSink;

/// splitmix64: a tiny deterministic generator, so random tests repeat.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn set<S: AsRef<str>>(ids: impl IntoIterator<Item = S>) -> IdSet {
    let mut builder = IdSetBuilder::new();
    builder.extend(ids).expect("within limits");
    builder.finish()
}

fn doc_ids(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("doc-{i:010}")).collect()
}

#[test]
fn downstream_missing_three_of_a_hundred() {
    let upstream = doc_ids(0..100);
    let gone = ["doc-0000000071", "doc-0000000007", "doc-0000000042"];
    let downstream = upstream.iter().filter(|id| !gone.contains(&id.as_str()));

    let diff = difference(&set(&upstream), &set(downstream));

    assert_eq!(diff.expected, 100);
    assert_eq!(diff.received, 97);
    assert_eq!(
        diff.missing,
        ["doc-0000000007", "doc-0000000042", "doc-0000000071"]
    );
}

#[test]
fn duplicates_across_and_within_batches_count_once() {
    let mut builder = IdSetBuilder::new();
    builder.extend(["a", "b", "a"]).expect("within limits");
    builder.extend(["b", "c", "a"]).expect("within limits");
    let upstream = builder.finish();
    assert_eq!(upstream.len(), 3);

    let diff = difference(&upstream, &set(["c", "c"]));
    assert_eq!((diff.expected, diff.received), (3, 1));
    assert_eq!(diff.missing, ["a", "b"]);
}

#[test]
fn downstream_extras_are_neither_missing_nor_received() {
    let diff = difference(&set(["a", "b"]), &set(["b", "x", "y", "z"]));
    assert_eq!((diff.expected, diff.received), (2, 1));
    assert_eq!(diff.missing, ["a"]);
}

#[test]
fn empty_sets() {
    let empty = IdSet::default();
    let some = set(["a", "b"]);
    assert!(empty.is_empty());
    assert!(set(Vec::<String>::new()).is_empty());

    let nothing_expected = difference(&empty, &some);
    assert_eq!(
        nothing_expected,
        Difference {
            expected: 0,
            received: 0,
            missing: vec![]
        }
    );

    let nothing_arrived = difference(&some, &empty);
    assert_eq!((nothing_arrived.expected, nothing_arrived.received), (2, 0));
    assert_eq!(nothing_arrived.missing, ["a", "b"]);
}

#[test]
fn non_ascii_and_empty_ids_are_ids_like_any_other() {
    let upstream = set(["", "日本語", "Zoë", "naïve", "🦀"]);
    assert_eq!(upstream.len(), 5);
    assert!(upstream.contains(""));
    assert!(upstream.contains("Zoë"));
    assert!(!upstream.contains("Zoe"));

    let diff = difference(&upstream, &set(["naïve", "🦀"]));
    assert_eq!(diff.missing, ["", "Zoë", "日本語"]);
    assert_eq!(diff.received, 2);

    let decoded = IdSet::decode(&upstream.encode()).expect("round trip");
    assert_eq!(decoded, upstream);
}

#[test]
fn encode_decode_round_trip() {
    // The last is past the size at which a set is split into partitions.
    for ids in [
        doc_ids(0..0),
        doc_ids(0..1),
        doc_ids(0..5_000),
        doc_ids(0..70_000),
    ] {
        let original = set(&ids);
        let encoded = original.encode();
        assert_eq!(encoded.len(), original.encoded_len());
        let decoded = IdSet::decode(&encoded).expect("round trip");
        assert_eq!(decoded, original);
        assert!(decoded.iter().eq(original.iter()));
        assert!(ids.iter().all(|id| decoded.contains(id)));
    }
}

#[test]
fn iteration_yields_each_id_once() {
    let ids = doc_ids(0..1_000);
    let s = set(ids.iter().chain(&ids));
    assert_eq!(s.iter().count(), 1_000);
    let seen: BTreeSet<&str> = s.iter().collect();
    assert!(seen.iter().copied().eq(ids.iter().map(String::as_str)));
}

/// Random ids (some shared, some duplicated, varied lengths and alphabets)
/// against `BTreeSet` difference, the obviously right answer. The last round
/// is large enough for the sets to be split into partitions.
#[test]
fn matches_naive_btreeset_difference_on_random_ids() {
    let mut state = 42u64;
    for round in 0..21 {
        let (up_count, down_count, distinct) = match round {
            20 => (80_000, 80_000, 150_000),
            _ => (2_000 + round * 100, 2_500, 3_000),
        };
        let mut random_id = || {
            let r = splitmix64(&mut state);
            // Few distinct values on purpose, so the sides overlap and repeat.
            let n = r % distinct;
            match r >> 62 {
                0 => format!("doc-{n:010}"),
                1 => format!("ü{n}"),
                2 => n.to_string(),
                _ => "x".repeat((n % 40) as usize),
            }
        };
        let upstream: Vec<String> = (0..up_count).map(|_| random_id()).collect();
        let downstream: Vec<String> = (0..down_count).map(|_| random_id()).collect();

        let naive_up: BTreeSet<&String> = upstream.iter().collect();
        let naive_down: BTreeSet<&String> = downstream.iter().collect();
        let naive_missing: Vec<String> = naive_up
            .difference(&naive_down)
            .map(|id| (*id).clone())
            .collect();

        let (up, down) = (set(&upstream), set(&downstream));
        let diff = difference(&up, &down);
        assert_eq!(diff.missing, naive_missing, "round {round}");
        assert_eq!(diff.expected, naive_up.len() as u64);
        assert_eq!(
            diff.received,
            naive_up.intersection(&naive_down).count() as u64
        );

        let mut streamed = 0u64;
        let counts = for_each_missing(&up, &down, |id| {
            assert!(!naive_down.contains(&id.to_owned()));
            streamed += 1;
        });
        assert_eq!(streamed, naive_missing.len() as u64);
        assert_eq!(
            (counts.expected, counts.received),
            (diff.expected, diff.received)
        );
        assert_eq!(IdSet::decode(&up.encode()).as_ref(), Ok(&up));
    }
}

#[test]
fn builder_limits_refuse_past_the_cap() {
    let mut by_count = IdSetBuilder::with_limits(Limits {
        max_ids: 2,
        ..Limits::default()
    });
    assert_eq!(
        by_count.extend(["a", "b", "c"]),
        Err(LimitError::TooManyIds { limit: 2 })
    );

    let mut by_bytes = IdSetBuilder::with_limits(Limits {
        max_ids: usize::MAX,
        max_bytes: 5,
    });
    by_bytes.push("abc").expect("3 of 5 bytes");
    by_bytes.push("de").expect("5 of 5 bytes");
    assert_eq!(
        by_bytes.push("f"),
        Err(LimitError::TooManyBytes { limit: 5 })
    );
    assert_eq!(by_bytes.finish().len(), 2);
}

#[test]
fn collector_builds_one_set_per_asset() {
    let collector = IdCollector::new();
    collector
        .accept("orders", vec!["o-1".into(), "o-2".into()])
        .expect("accepted");
    collector
        .accept("customers", vec!["c-1".into()])
        .expect("accepted");
    collector
        .accept("orders", vec!["o-2".into(), "o-3".into()])
        .expect("accepted");

    let sets = collector.take();
    assert_eq!(sets.keys().collect::<Vec<_>>(), ["customers", "orders"]);
    assert_eq!(sets["orders"].len(), 3);
    assert_eq!(sets["customers"].len(), 1);
    assert!(
        collector.take().is_empty(),
        "take leaves the collector empty"
    );
}

#[test]
fn collector_drops_an_asset_that_goes_over_its_limit() {
    let collector = IdCollector::with_limits(Limits {
        max_ids: 2,
        ..Limits::default()
    });
    collector
        .accept("small", vec!["s".into()])
        .expect("accepted");
    let error = collector
        .accept("big", vec!["1".into(), "2".into(), "3".into()])
        .expect_err("over the limit");
    assert!(
        error.contains("big") && error.contains("more than 2 ids"),
        "{error}"
    );
    assert!(
        collector.accept("big", vec![]).is_err(),
        "later batches are refused too"
    );

    let sets = collector.take();
    assert_eq!(sets.keys().collect::<Vec<_>>(), ["small"]);
}

use proptest::prelude::*;

use super::*;
use crate::plugin::{
    AssetError, Counts, ErrorTotal, LastReceived, MetadataEntry, NamedCount, NativeStatus,
};

fn obs(asset: &str) -> Observation {
    Observation {
        asset: asset.into(),
        kind: "table".into(),
        counts: Counts {
            expected: None,
            received: Some(1),
            errored: None,
            extras: Vec::new(),
        },
        freshness: None,
        last_received: None,
        native_status: None,
        errors: Vec::new(),
        error_totals: Vec::new(),
        metadata: Vec::new(),
    }
}

fn report(observations: Vec<Observation>) -> Report {
    Report { observations }
}

fn none() -> Redactor {
    Redactor::default()
}

#[test]
fn an_asset_named_twice_refuses_the_report_and_says_where() {
    let err = normalise(report(vec![obs("a"), obs("b"), obs("a")]), &none()).unwrap_err();
    assert_eq!(
        err,
        ReportError::DuplicateAsset {
            asset: "a".into(),
            first: 0,
            second: 2
        }
    );
    assert!(
        err.to_string()
            .contains("names asset \"a\" twice (observations 0 and 2)")
    );
}

#[test]
fn a_megabyte_asset_key_is_refused_not_cut() {
    let key = "k".repeat(1 << 20);
    let err = normalise(report(vec![obs(&key)]), &none()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("1048576 bytes, over the limit of 1024"),
        "{text}"
    );
    assert!(text.len() < 300, "the error does not repeat the key");
}

#[test]
fn nul_bytes_are_replaced_everywhere() {
    let mut o = obs("a\0b");
    o.kind = "t\0".into();
    o.native_status = Some(NativeStatus {
        level: StatusLevel::Warn,
        label: "w\0arn".into(),
        message: Some("\0".into()),
    });
    o.metadata.push(MetadataEntry {
        key: "k\0".into(),
        value: "v\0".into(),
    });
    o.errors.push(AssetError {
        kind: "\0".into(),
        message: "m\0".into(),
        document_id: Some("d\0".into()),
        log_link: Some("l\0".into()),
        at: None,
    });
    o.last_received = Some(LastReceived {
        id: "i\0".into(),
        at: None,
    });
    let n = normalise(report(vec![o]), &none()).unwrap();
    let row = &n.observations[0];
    let text = format!("{row:?}");
    assert!(!text.contains("\\0"), "{text}");
    assert_eq!(row.asset, "a\u{FFFD}b");
    assert_eq!(n.changes.nul_bytes, 11);
}

#[test]
fn strings_are_cut_at_their_cap_on_a_char_boundary() {
    let mut o = obs("a");
    o.errors.push(AssetError {
        kind: "parse".into(),
        message: "é".repeat(10_000),
        document_id: None,
        log_link: None,
        at: None,
    });
    let n = normalise(report(vec![o]), &none()).unwrap();
    let message = &n.observations[0].errors[0].message;
    assert!(message.len() <= Caps::MESSAGE, "{}", message.len());
    assert!(message.ends_with('…'));
    assert_eq!(n.changes.strings_cut, 1);
}

#[test]
fn a_million_metadata_entries_keep_the_first_256() {
    let mut o = obs("a");
    o.metadata = (0..1_000_000)
        .map(|i| MetadataEntry {
            key: format!("k{i}"),
            value: "v".into(),
        })
        .collect();
    let n = normalise(report(vec![o]), &none()).unwrap();
    assert_eq!(n.observations[0].metadata.len(), Caps::METADATA);
    assert_eq!(n.changes.entries_dropped, 1_000_000 - Caps::METADATA as u64);
}

#[test]
fn repeated_keys_merge_by_the_documented_rule() {
    let mut o = obs("a");
    o.metadata = vec![
        MetadataEntry {
            key: "k".into(),
            value: "first".into(),
        },
        MetadataEntry {
            key: "other".into(),
            value: "x".into(),
        },
        MetadataEntry {
            key: "k".into(),
            value: "last".into(),
        },
    ];
    o.counts.extras = vec![
        NamedCount {
            name: "bytes".into(),
            value: 1,
        },
        NamedCount {
            name: "bytes".into(),
            value: 2,
        },
    ];
    o.error_totals = vec![
        ErrorTotal {
            kind: "parse".into(),
            count: u64::MAX,
        },
        ErrorTotal {
            kind: "parse".into(),
            count: u64::MAX,
        },
        ErrorTotal {
            kind: "io".into(),
            count: u64::MAX,
        },
    ];
    let n = normalise(report(vec![o]), &none()).unwrap();
    let row = &n.observations[0];
    assert_eq!(
        row.metadata,
        [("k".into(), "last".into()), ("other".into(), "x".into())]
    );
    assert_eq!(row.extras, [("bytes".into(), 2)]);
    let max = i64::MAX as u64;
    assert_eq!(
        row.error_totals,
        [("parse".into(), max), ("io".into(), max)]
    );
    assert_eq!(
        row.errored,
        Some(max),
        "the sum saturates instead of overflowing"
    );
}

#[test]
fn counts_above_bigint_are_clamped() {
    let mut o = obs("a");
    o.counts.expected = Some(u64::MAX);
    o.counts.received = Some(i64::MAX as u64 + 1);
    o.counts.errored = Some(5);
    let n = normalise(report(vec![o]), &none()).unwrap();
    let row = &n.observations[0];
    assert_eq!(row.expected, Some(i64::MAX as u64));
    assert_eq!(row.received, Some(i64::MAX as u64));
    assert_eq!(row.errored, Some(5));
    assert_eq!(n.changes.counts_clamped, 2);
}

#[test]
fn times_are_clamped_to_1970_through_9999() {
    let t = |seconds, nanos| Timestamp { seconds, nanos };
    let latest = UNIX_EPOCH + MAX_TIME;
    assert_eq!(clamp_time(&t(i64::MIN, 0)), (UNIX_EPOCH, true));
    assert_eq!(clamp_time(&t(-1, 5)), (UNIX_EPOCH, true));
    assert_eq!(clamp_time(&t(i64::MAX, u32::MAX)), (latest, true));
    assert_eq!(clamp_time(&t(253_402_300_799, 999_999_999)), (latest, true));
    assert_eq!(
        clamp_time(&t(10, u32::MAX)),
        (UNIX_EPOCH + Duration::new(10, 999_999_999), true)
    );
    assert_eq!(
        clamp_time(&t(1_780_000_000, 5)),
        (UNIX_EPOCH + Duration::new(1_780_000_000, 5), false)
    );
}

#[test]
fn secrets_are_masked_in_every_string_of_a_report() {
    let secret = "tok-3f9a8b7c";
    let redactor = Redactor::new(&[secret.to_owned()]);
    let mut o = obs(&format!("tenant/{secret}"));
    o.metadata.push(MetadataEntry {
        key: secret.into(),
        value: format!("Bearer {secret}"),
    });
    o.native_status = Some(NativeStatus {
        level: StatusLevel::Error,
        label: secret.into(),
        message: Some(format!("denied {secret}")),
    });
    o.errors.push(AssetError {
        kind: secret.into(),
        message: format!("{{\"token\":\"{secret}\"}}"),
        document_id: Some(secret.into()),
        log_link: Some(format!("https://x/?t={secret}")),
        at: None,
    });
    o.last_received = Some(LastReceived {
        id: secret.into(),
        at: None,
    });
    let n = normalise(report(vec![o]), &redactor).unwrap();
    let text = format!("{:?}", n.observations);
    assert!(!text.contains(secret), "{text}");
    assert_eq!(n.observations[0].asset, "tenant/[REDACTED]");
}

#[test]
fn stored_messages_are_bounded_and_briefs_escape_control_characters() {
    let huge = "x".repeat(50 << 20);
    let stored = stored_message(&huge, &none());
    assert!(stored.len() <= MAX_STORED_MESSAGE);
    assert_eq!(brief(&stored).chars().count(), MAX_BRIEF + 1);
    assert_eq!(
        brief("401\n2026-01-01 INFO forged\u{1b}[31m"),
        "401\\n2026-01-01 INFO forged\\u{1b}[31m"
    );
    assert_eq!(stored_message("a\0b", &none()), "a\u{FFFD}b");
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (any::<i64>(), any::<u32>()).prop_map(|(seconds, nanos)| Timestamp { seconds, nanos })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        Just("\0".to_owned()),
        Just("k".repeat(2000)),
        "[a\\x00\\x1b\\n]{0,5}",
    ]
}

fn observation() -> impl Strategy<Value = Observation> {
    (
        text(),
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
        ),
        proptest::option::of(timestamp()),
        proptest::collection::vec((text(), any::<u64>()), 0..4),
        proptest::collection::vec((text(), text()), 0..4),
        proptest::option::of((text(), proptest::option::of(timestamp()))),
    )
        .prop_map(
            |(asset, (expected, received, errored), freshness, totals, metadata, last)| {
                let mut o = obs(&asset);
                o.counts = Counts {
                    expected,
                    received,
                    errored,
                    extras: Vec::new(),
                };
                o.freshness = freshness;
                o.error_totals = totals
                    .into_iter()
                    .map(|(kind, count)| ErrorTotal { kind, count })
                    .collect();
                o.metadata = metadata
                    .into_iter()
                    .map(|(key, value)| MetadataEntry { key, value })
                    .collect();
                o.last_received = last.map(|(id, at)| LastReceived { id, at });
                o
            },
        )
}

proptest! {
    /// Whatever a plugin returns, normalisation either refuses it with a
    /// reason or gives rows the database takes: no NUL, counts within
    /// BIGINT, times within 1970..9999, asset keys unique and bounded.
    #[test]
    fn any_report_normalises_into_storable_rows_or_a_reason(
        observations in proptest::collection::vec(observation(), 0..6)
    ) {
        match normalise(report(observations), &none()) {
            Err(err) => prop_assert!(!err.to_string().is_empty()),
            Ok(n) => {
                let mut seen = std::collections::HashSet::new();
                let latest = UNIX_EPOCH + MAX_TIME;
                for row in &n.observations {
                    prop_assert!(seen.insert(row.asset.clone()));
                    prop_assert!(row.asset.len() <= MAX_ASSET_KEY);
                    let strings = std::iter::once(&row.asset)
                        .chain(row.error_totals.iter().map(|(k, _)| k))
                        .chain(row.metadata.iter().flat_map(|(k, v)| [k, v]))
                        .chain(row.last_received_id.iter());
                    for s in strings {
                        prop_assert!(!s.contains('\0'), "{:?}", s);
                    }
                    for n in [row.expected, row.received, row.errored].into_iter().flatten() {
                        prop_assert!(n <= i64::MAX as u64);
                    }
                    for t in [row.freshness, row.last_received_at].into_iter().flatten() {
                        prop_assert!(t >= UNIX_EPOCH && t <= latest);
                    }
                    let f = facts(row);
                    prop_assert_eq!(f.received, row.received);
                }
            }
        }
    }
}

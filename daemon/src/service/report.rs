//! From what a plugin reported to what the store keeps and the health engine
//! judges.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::health::{AssetFacts, FailureClass, NativeLevel};
use crate::plugin::{ErrorClass, Observation, StatusLevel, Timestamp};
use crate::store::{ErrorRow, NativeRow, ObservationRow};

/// A plugin timestamp as a time; one before 1970 is clamped to 1970.
pub fn time(t: &Timestamp) -> SystemTime {
    if t.seconds < 0 {
        return UNIX_EPOCH;
    }
    UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos.min(999_999_999))
}

pub fn failure_class(class: ErrorClass) -> FailureClass {
    match class {
        ErrorClass::Config => FailureClass::Config,
        ErrorClass::Auth => FailureClass::Auth,
        ErrorClass::Transient => FailureClass::Transient,
        ErrorClass::System => FailureClass::System,
    }
}

fn level_name(level: StatusLevel) -> &'static str {
    match level {
        StatusLevel::Ok => "ok",
        StatusLevel::Warn => "warn",
        StatusLevel::Error => "error",
        StatusLevel::Unknown => "unknown",
    }
}

/// The stored form of one observation. A report that gives error totals but no
/// errored count is taken to have errored the sum of its totals.
pub fn observation_row(obs: &Observation) -> ObservationRow {
    let totals_sum = (!obs.error_totals.is_empty())
        .then(|| obs.error_totals.iter().map(|t| t.count).sum::<u64>());
    ObservationRow {
        asset: obs.asset.clone(),
        kind: obs.kind.clone(),
        expected: obs.counts.expected,
        received: obs.counts.received,
        errored: obs.counts.errored.or(totals_sum),
        missing: None,
        freshness: obs.freshness.as_ref().map(time),
        last_received_id: obs.last_received.as_ref().map(|l| l.id.clone()),
        last_received_at: obs
            .last_received
            .as_ref()
            .and_then(|l| l.at.as_ref().map(time)),
        native: obs.native_status.as_ref().map(|n| NativeRow {
            level: level_name(n.level).to_owned(),
            label: n.label.clone(),
            message: n.message.clone(),
        }),
        extras: obs
            .counts
            .extras
            .iter()
            .map(|c| (c.name.clone(), c.value))
            .collect(),
        error_totals: obs
            .error_totals
            .iter()
            .map(|t| (t.kind.clone(), t.count))
            .collect(),
        metadata: obs
            .metadata
            .iter()
            .map(|m| (m.key.clone(), m.value.clone()))
            .collect(),
        errors: obs
            .errors
            .iter()
            .map(|e| ErrorRow {
                kind: e.kind.clone(),
                message: e.message.clone(),
                document_id: e.document_id.clone(),
                log_link: e.log_link.clone(),
                at: e.at.as_ref().map(time),
            })
            .collect(),
    }
}

/// The level a stored observation's native status names (`ok`, `warn`...).
fn native_level_named(name: &str) -> Option<NativeLevel> {
    Some(match name {
        "ok" => NativeLevel::Ok,
        "warn" => NativeLevel::Warn,
        "error" => NativeLevel::Error,
        "unknown" => NativeLevel::Unknown,
        _ => return None,
    })
}

/// What the health engine judges of a stored observation (its history is
/// filled in by the book).
/// The most of a vendor's message a reason carries.
const NATIVE_SAYS_MAX: usize = 160;

/// `label: message`, the message cut at [`NATIVE_SAYS_MAX`] characters.
fn native_says(n: &crate::store::NativeRow) -> String {
    match n
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        None => n.label.clone(),
        Some(m) if m.chars().count() > NATIVE_SAYS_MAX => {
            let cut: String = m.chars().take(NATIVE_SAYS_MAX).collect();
            format!("{}: {cut}…", n.label)
        }
        Some(m) => format!("{}: {m}", n.label),
    }
}

pub fn facts(row: &ObservationRow) -> AssetFacts {
    AssetFacts {
        expected: row.expected,
        received: row.received,
        errored: row.errored,
        freshness: row.freshness,
        native: row
            .native
            .as_ref()
            .and_then(|n| native_level_named(&n.level)),
        native_says: row.native.as_ref().map(native_says),
        history: Vec::new(),
        daily: Vec::new(),
    }
}

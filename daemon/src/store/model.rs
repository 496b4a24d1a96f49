//! The rows the store writes and reads, as plain values.
//!
//! Times are `SystemTime` here and Unix milliseconds in the database, so both
//! backends store them alike and compare them as integers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::health::{Change, EntityHealth, EntityRef, FailureClass, Status};

/// The latest time the store keeps, in Unix milliseconds:
/// 9999-12-31T23:59:59.999Z. Every time read or written is clamped to
/// [1970, this], so converting one for display (chrono) cannot fail.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Unix milliseconds of `t`, clamped to [0, [`MAX_TIME_MS`]].
pub fn to_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
        .min(MAX_TIME_MS)
}

/// The time `ms` Unix milliseconds name, clamped to [1970, [`MAX_TIME_MS`]].
pub fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.clamp(0, MAX_TIME_MS) as u64)
}

/// A count as the database stores it: SQL has no unsigned 64-bit integer, and
/// no real count comes near `i64::MAX`, so larger values are clamped.
pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The key an entity is stored under: `tenant:acme`, `asset:orders-sf:ORDERS`.
/// Config ids never contain `:`, so the first two parts are unambiguous and an
/// asset key may contain anything.
pub fn entity_key(entity: &EntityRef) -> String {
    match entity {
        EntityRef::Tenant(id) => format!("tenant:{id}"),
        EntityRef::Flow(id) => format!("flow:{id}"),
        EntityRef::System(id) => format!("system:{id}"),
        EntityRef::Check(id) => format!("check:{id}"),
        EntityRef::Asset { check, asset } => format!("asset:{check}:{asset}"),
    }
}

/// The entity a stored key names, or `None` for a key this version never writes.
pub fn parse_entity_key(key: &str) -> Option<EntityRef> {
    let (kind, rest) = key.split_once(':')?;
    Some(match kind {
        "tenant" => EntityRef::Tenant(rest.to_owned()),
        "flow" => EntityRef::Flow(rest.to_owned()),
        "system" => EntityRef::System(rest.to_owned()),
        "check" => EntityRef::Check(rest.to_owned()),
        "asset" => {
            let (check, asset) = rest.split_once(':')?;
            EntityRef::Asset {
                check: check.to_owned(),
                asset: asset.to_owned(),
            }
        }
        _ => return None,
    })
}

/// A status as an integer that orders by severity, for `worst` in rollups.
pub(crate) fn status_rank(status: Status) -> i64 {
    match status {
        Status::Healthy => 0,
        Status::Warning => 1,
        Status::Unknown => 2,
        Status::Unhealthy => 3,
    }
}

pub(crate) fn status_from_rank(rank: i64) -> Status {
    match rank {
        0 => Status::Healthy,
        1 => Status::Warning,
        2 => Status::Unknown,
        _ => Status::Unhealthy,
    }
}

pub(crate) fn parse_status(text: &str) -> Option<Status> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    Manual,
    Retry,
    /// A report pushed over HTTP (a push check).
    Push,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retry => "retry",
            Trigger::Push => "push",
        }
    }

    fn parse(text: &str) -> Trigger {
        match text {
            "manual" => Trigger::Manual,
            "retry" => Trigger::Retry,
            "push" => Trigger::Push,
            _ => Trigger::Schedule,
        }
    }
}

/// Why a run failed, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailure {
    pub class: FailureClass,
    pub message: String,
}

/// One run of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub check_id: String,
    pub connector: String,
    pub plugin_version: String,
    pub trigger: Trigger,
    pub attempt: u32,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
    /// `None` when the run succeeded.
    pub failure: Option<RunFailure>,
    /// How many assets the report spoke of.
    pub assets: u32,
}

impl RunRow {
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }

    pub fn duration(&self) -> Duration {
        self.finished_at
            .duration_since(self.started_at)
            .unwrap_or_default()
    }

    pub(crate) fn outcome(&self) -> &'static str {
        if self.succeeded() {
            "succeeded"
        } else {
            "failed"
        }
    }

    pub(crate) fn from_columns(c: RunColumns) -> RunRow {
        let failure = (c.outcome != "succeeded").then(|| RunFailure {
            class: c
                .error_class
                .as_deref()
                .and_then(FailureClass::parse)
                .unwrap_or(FailureClass::System),
            message: c.error_message.unwrap_or_default(),
        });
        RunRow {
            id: c.id,
            check_id: c.check_id,
            connector: c.connector,
            plugin_version: c.plugin_version,
            trigger: Trigger::parse(&c.trigger_kind),
            attempt: u32::try_from(c.attempt).unwrap_or(0),
            started_at: from_ms(c.started_at),
            finished_at: from_ms(c.finished_at),
            failure,
            assets: u32::try_from(c.assets).unwrap_or(0),
        }
    }
}

/// The columns of `runs`, as read.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RunColumns {
    pub id: String,
    pub check_id: String,
    pub connector: String,
    pub plugin_version: String,
    pub trigger_kind: String,
    pub attempt: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub outcome: String,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub assets: i64,
}

/// The vendor's own verdict on an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeRow {
    /// `ok`, `warn`, `error` or `unknown`.
    pub level: String,
    pub label: String,
    pub message: Option<String>,
}

/// One error a run saw on an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRow {
    pub kind: String,
    pub message: String,
    pub document_id: Option<String>,
    pub log_link: Option<String>,
    pub at: Option<SystemTime>,
}

/// What one run said of one asset.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservationRow {
    pub asset: String,
    pub kind: String,
    pub expected: Option<u64>,
    pub received: Option<u64>,
    pub errored: Option<u64>,
    /// From id reconciliation, when the asset is downstream in a flow.
    pub missing: Option<u64>,
    pub freshness: Option<SystemTime>,
    pub last_received_id: Option<String>,
    pub last_received_at: Option<SystemTime>,
    pub native: Option<NativeRow>,
    pub extras: Vec<(String, u64)>,
    pub error_totals: Vec<(String, u64)>,
    pub metadata: Vec<(String, String)>,
    /// The sample of errors the plugin reported.
    pub errors: Vec<ErrorRow>,
}

/// A stored observation with the run it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObservation {
    pub run_id: String,
    pub check_id: String,
    pub observed_at: SystemTime,
    /// `errors` is empty: errors are paged on their own.
    pub observation: ObservationRow,
}

/// A stored error with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredError {
    pub id: i64,
    pub run_id: String,
    pub check_id: String,
    pub asset: String,
    pub observed_at: SystemTime,
    pub error: ErrorRow,
}

/// The latest id set of an asset in a system, in [`crate::reconcile`]'s
/// encoded form.
#[derive(Debug, Clone, PartialEq)]
pub struct IdSetRow {
    pub system_id: String,
    pub asset: String,
    pub check_id: String,
    pub run_id: String,
    pub observed_at: SystemTime,
    pub count: u64,
    pub encoded: Vec<u8>,
}

/// The difference between a flow's upstream ids and one downstream system's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconciliationRow {
    pub flow_id: String,
    /// The downstream system.
    pub system_id: String,
    pub asset: String,
    /// The run that caused it (upstream or downstream).
    pub run_id: String,
    pub computed_at: SystemTime,
    pub expected: u64,
    pub received: u64,
    /// Every missing id, sorted; they replace the previous ones.
    pub missing_ids: Vec<String>,
}

/// Counts of a stored reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationCounts {
    pub run_id: String,
    pub computed_at: SystemTime,
    pub expected: u64,
    pub received: u64,
    pub missing: u64,
}

/// A run and everything it produced: written together or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct RunWrite {
    pub run: RunRow,
    pub observations: Vec<ObservationRow>,
    pub id_sets: Vec<IdSetRow>,
    pub reconciliations: Vec<ReconciliationRow>,
}

/// A health event to write; the store assigns its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub entity: EntityRef,
    pub change: Change,
    pub run_id: Option<String>,
    pub at: SystemTime,
}

/// A written health event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// Monotonic: one writer commits events in sequence order, so a reader that
    /// has seen `seq` has seen every smaller one.
    pub seq: i64,
    pub entity: EntityRef,
    pub from: Option<Status>,
    pub to: Status,
    pub reasons: Vec<crate::health::Reason>,
    pub muted: bool,
    /// The maintenance window the entity was in: no alert for this event.
    pub maintenance: Option<String>,
    /// The upstream whose failure explains this event: alerted as part of it.
    pub suppressed_by: Option<EntityRef>,
    pub run_id: Option<String>,
    pub at: SystemTime,
}

/// The length of a rollup bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    Hour,
    Day,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    pub fn millis(self) -> i64 {
        match self {
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
        }
    }

    /// The start of the bucket `t` falls in (UTC).
    pub fn bucket_start(self, t: SystemTime) -> SystemTime {
        from_ms(self.bucket(t))
    }

    /// [`bucket_start`](Self::bucket_start) in Unix milliseconds.
    pub fn bucket(self, t: SystemTime) -> i64 {
        let ms = to_ms(t);
        ms - ms.rem_euclid(self.millis())
    }
}

/// An entity's rollup bucket: what the store keeps and hands back, and, for
/// one evaluation, what it adds (buckets of the same entity, period and start
/// merge, so a batch writes each once).
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    pub entity: EntityRef,
    pub period: Period,
    /// Start of the bucket (UTC hour or day).
    pub bucket_start: SystemTime,
    pub worst: Status,
    pub evaluations: u64,
    pub healthy: u64,
    pub runs: u64,
    pub failed_runs: u64,
    /// The latest counts seen in the bucket.
    pub expected: Option<u64>,
    pub received: Option<u64>,
    pub errored: Option<u64>,
    pub missing: Option<u64>,
    /// The largest freshness lag seen in the bucket.
    pub max_lag: Option<Duration>,
}

impl Rollup {
    /// Folds a later rollup of the same bucket into this one.
    pub fn merge(&mut self, later: &Rollup) {
        self.worst = self.worst.max(later.worst);
        self.evaluations += later.evaluations;
        self.healthy += later.healthy;
        self.runs += later.runs;
        self.failed_runs += later.failed_runs;
        self.expected = later.expected.or(self.expected);
        self.received = later.received.or(self.received);
        self.errored = later.errored.or(self.errored);
        self.missing = later.missing.or(self.missing);
        self.max_lag = self.max_lag.max(later.max_lag);
    }

    /// Share of evaluations in the bucket that were HEALTHY, in percent.
    pub fn uptime_percent(&self) -> f64 {
        if self.evaluations == 0 {
            return 100.0;
        }
        self.healthy as f64 * 100.0 / self.evaluations as f64
    }
}

/// Everything one transaction writes: complete runs, the health they caused,
/// their events and rollups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    pub runs: Vec<RunWrite>,
    pub health: Vec<(EntityRef, EntityHealth)>,
    pub events: Vec<NewEvent>,
    pub rollups: Vec<Rollup>,
    /// Actions to record with the writes they caused.
    pub audit: Vec<AuditEntry>,
    /// Maintenance windows made or ended through the API (by name: an
    /// existing one takes the new end).
    pub windows: Vec<WindowRow>,
    /// What the runs add to SLO slices.
    pub slices: Vec<super::SliceDelta>,
    /// (SLO, entity) the SLO covers that the writer saw for the first time
    /// (a new asset): listed from now on, even before any slice.
    pub slo_members: Vec<(std::sync::Arc<str>, EntityRef)>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
            && self.health.is_empty()
            && self.events.is_empty()
            && self.rollups.is_empty()
            && self.audit.is_empty()
            && self.windows.is_empty()
            && self.slices.is_empty()
            && self.slo_members.is_empty()
    }
}

/// A one-off maintenance window made through the API.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub name: String,
    pub reason: String,
    pub scope: crate::health::Scope,
    pub start: SystemTime,
    pub end: SystemTime,
    /// The token's name.
    pub created_by: String,
    pub created_at: SystemTime,
}

/// One entry of the audit log: who did what to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: SystemTime,
    /// The token's name, `cli`, `config-reload`...
    pub actor: String,
    /// `run_now`, `resync`, `delete_data`, `mute`...
    pub action: String,
    /// The entity or check acted on.
    pub target: String,
    /// JSON with the action's arguments (never secrets).
    pub detail: String,
}

/// How much [`super::Store::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub rollups: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_keys_round_trip_even_with_colons_in_asset_keys() {
        for e in [
            EntityRef::Tenant("acme".into()),
            EntityRef::Flow("orders".into()),
            EntityRef::System("sf".into()),
            EntityRef::Check("sf-tables".into()),
            EntityRef::Asset {
                check: "sf-tables".into(),
                asset: "db:schema:ORDERS".into(),
            },
        ] {
            assert_eq!(parse_entity_key(&entity_key(&e)), Some(e));
        }
        assert_eq!(parse_entity_key("widget:x"), None);
    }

    #[test]
    fn buckets_start_on_utc_hour_and_day_boundaries() {
        let t = from_ms(86_400_000 * 3 + 3_600_000 * 5 + 1234);
        assert_eq!(Period::Day.bucket(t), 86_400_000 * 3);
        assert_eq!(Period::Hour.bucket(t), 86_400_000 * 3 + 3_600_000 * 5);
    }
}

/// What [`Store::delete_data`](super::Store::delete_data) removes: the data
/// of these checks, systems and flows, of one asset or of all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataScope {
    pub checks: Vec<String>,
    pub systems: Vec<String>,
    pub flows: Vec<String>,
    pub asset: Option<String>,
}

/// Rows removed by a deletion, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub observations: u64,
    pub errors: u64,
    pub id_sets: u64,
    pub reconciliations: u64,
    pub missing_ids: u64,
}

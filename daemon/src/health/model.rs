//! The words of health: statuses, the rule that gave one, reasons and the entities
//! they are about.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The health of an entity. The variant order is the order of severity, so `Ord`
/// compares severity: `Healthy < Warning < Unknown < Unhealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Healthy,
    Warning,
    Unknown,
    Unhealthy,
}

impl Status {
    /// Every status, least severe first.
    pub const ALL: [Status; 4] = [
        Status::Healthy,
        Status::Warning,
        Status::Unknown,
        Status::Unhealthy,
    ];

    /// The most severe of `statuses`, or `None` when there are none.
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Option<Status> {
        statuses.into_iter().max()
    }

    /// The name used in messages, config and the API: `HEALTHY`, `WARNING`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "HEALTHY",
            Status::Warning => "WARNING",
            Status::Unknown => "UNKNOWN",
            Status::Unhealthy => "UNHEALTHY",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What produced a [`Reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Freshness,
    Completeness,
    Errors,
    Volume,
    NativeStatus,
    /// The run itself failed, so nothing is known of the asset.
    RunFailed,
    /// No successful run within two intervals.
    Stale,
    /// An entity with nothing beneath it yet.
    NoData,
    /// A summary line of a roll-up ("and 12 more children not HEALTHY").
    RollUp,
    /// An SLO's error budget is spent, has crossed one of its alert
    /// levels, or burns fast (issue 16): given by the writer from the
    /// SLO's figures, not by a run.
    Slo,
}

impl RuleKind {
    /// The rule's name as written in config: `freshness`, `native_status`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Freshness => "freshness",
            RuleKind::Completeness => "completeness",
            RuleKind::Errors => "errors",
            RuleKind::Volume => "volume",
            RuleKind::NativeStatus => "native_status",
            RuleKind::RunFailed => "run_failed",
            RuleKind::Stale => "stale",
            RuleKind::NoData => "no_data",
            RuleKind::RollUp => "roll_up",
            RuleKind::Slo => "slo",
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entity that has health.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityRef {
    Tenant(String),
    Flow(String),
    System(String),
    Check(String),
    Asset { check: String, asset: String },
}

impl EntityRef {
    /// What kind of entity it is: `tenant`, `flow`, `system`, `check` or `asset`.
    pub fn kind(&self) -> &'static str {
        match self {
            EntityRef::Tenant(_) => "tenant",
            EntityRef::Flow(_) => "flow",
            EntityRef::System(_) => "system",
            EntityRef::Check(_) => "check",
            EntityRef::Asset { .. } => "asset",
        }
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityRef::Tenant(id) => write!(f, "tenant {id}"),
            EntityRef::Flow(id) => write!(f, "flow {id}"),
            EntityRef::System(id) => write!(f, "system {id}"),
            EntityRef::Check(id) => write!(f, "check {id}"),
            EntityRef::Asset { check, asset } => write!(f, "asset {asset} of check {check}"),
        }
    }
}

/// Why an entity has the status it has: one per rule that is not satisfied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: RuleKind,
    pub status: Status,
    /// Human readable, e.g. `freshness: last update 3h 2m ago, more than error_after 2h`.
    pub message: String,
    /// For a roll-up: the child this reason comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<EntityRef>,
}

impl Reason {
    /// A reason about the entity itself (no child).
    pub fn new(rule: RuleKind, status: Status, message: impl Into<String>) -> Self {
        Self {
            rule,
            status,
            message: message.into(),
            child: None,
        }
    }
}

/// Sorts reasons worst first, keeping the given order among equals.
pub(crate) fn sort_worst_first(reasons: &mut [Reason]) {
    reasons.sort_by_key(|r| std::cmp::Reverse(r.status));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_order_is_healthy_warning_unknown_unhealthy() {
        assert!(Status::Healthy < Status::Warning);
        assert!(Status::Warning < Status::Unknown);
        assert!(Status::Unknown < Status::Unhealthy);
        assert_eq!(
            Status::worst([Status::Warning, Status::Unhealthy, Status::Unknown]),
            Some(Status::Unhealthy)
        );
        assert_eq!(Status::worst([]), None);
    }

    #[test]
    fn status_serialises_upper_snake() {
        assert_eq!(
            serde_json::to_string(&Status::Unhealthy).unwrap(),
            "\"UNHEALTHY\""
        );
        let s: Status = serde_json::from_str("\"WARNING\"").unwrap();
        assert_eq!(s, Status::Warning);
        assert!(serde_json::from_str::<Status>("\"warning\"").is_err());
    }
}

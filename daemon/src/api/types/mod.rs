//! The GraphQL object types: config entities with their health, counts,
//! history and stored runs, errors and ids. Each reads through the request's
//! loaders or the store, and only what the request's view may see.
//!
//! Here: the scalars and enums they share. [`entities`]: tenant, flow, system,
//! check, asset, error, run. [`health`]: health and daily history of any of
//! them. [`events`]: health events and their filter. [`paging`]: connections.
//! [`status`]: connectors, the daemon, `node(id:)`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputValueError, InputValueResult, Interface, Object, Scalar,
    ScalarType, SimpleObject, Value,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::error::{Code, error, store_error};
use super::ids::{self, Target};
use super::loaders::{HistoryKey, Loaders, day_range};
use super::view::View;
use super::{State, state, view};
use crate::config::{Check, Flow, Schedule, System, Tenant};
use crate::health::{EntityHealth, EntityRef, Reason, Status};
use crate::store::{
    HealthEvent, Period, RunRow, StoredError, StoredObservation, entity_key, from_ms, to_ms,
};

pub type Result<T> = async_graphql::Result<T>;

/// Default and largest page of a connection.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
/// Days of history when a query does not say.
const DEFAULT_DAYS: u32 = 90;
/// The longest history one query may ask for.
const MAX_DAYS: u32 = 400;

/// A 64-bit integer (counts, sequence numbers): GraphQL's `Int` is 32-bit.
/// Serialised as a JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Long(pub i64);

#[Scalar(name = "Long")]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(Long)
                .ok_or_else(|| InputValueError::custom("not a 64-bit integer")),
            Value::String(s) => s
                .parse()
                .map(Long)
                .map_err(|_| InputValueError::custom("not a 64-bit integer")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A count as a `Long`; no real count nears `i64::MAX`, so larger values clamp.
pub fn long(n: u64) -> Long {
    Long(i64::try_from(n).unwrap_or(i64::MAX))
}

/// `t` as GraphQL's `DateTime`, at the store's precision: whole
/// milliseconds from 1970 to 9999. A live event then reads the same as the
/// stored copy of it, and no time can make chrono panic.
pub fn time(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(from_ms(to_ms(t)))
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::health::Status")]
pub enum HealthStatus {
    Healthy,
    Warning,
    Unknown,
    Unhealthy,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::health::RuleKind")]
pub enum HealthRule {
    Freshness,
    Completeness,
    Errors,
    Volume,
    NativeStatus,
    RunFailed,
    Stale,
    NoData,
    RollUp,
    Slo,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::health::FailureClass")]
pub enum ErrorClass {
    /// The check's config or secrets are wrong; retrying will not help.
    Config,
    /// The monitored system refused the credentials.
    Auth,
    /// A failure that may pass (timeouts, 5xx, rate limits).
    Transient,
    /// The plugin broke its sandbox or contract.
    System,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::store::Trigger")]
pub enum RunTrigger {
    Schedule,
    Manual,
    Retry,
    /// A report pushed to a push check.
    Push,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Tenant,
    Flow,
    System,
    Check,
    Asset,
}

impl From<&EntityRef> for EntityKind {
    fn from(e: &EntityRef) -> Self {
        match e {
            EntityRef::Tenant(_) => EntityKind::Tenant,
            EntityRef::Flow(_) => EntityKind::Flow,
            EntityRef::System(_) => EntityKind::System,
            EntityRef::Check(_) => EntityKind::Check,
            EntityRef::Asset { .. } => EntityKind::Asset,
        }
    }
}

mod alerts;
mod entities;
mod events;
mod health;
mod lineage;
mod maintenance;
mod paging;
mod slos;
mod status;

pub use alerts::*;
pub use entities::*;
pub use events::*;
pub use health::*;
pub use lineage::*;
pub use maintenance::*;
pub use paging::*;
pub use slos::*;
pub use status::*;

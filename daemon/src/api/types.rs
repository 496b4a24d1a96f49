//! The GraphQL object types: config entities with their health, counts,
//! history and stored runs, errors and ids. Each reads through the request's
//! loaders or the store, and only what the request's view may see.

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

fn long(n: u64) -> Long {
    Long(i64::try_from(n).unwrap_or(i64::MAX))
}

pub fn time(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
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

/// Anything with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Tenant(TenantNode),
    Flow(FlowNode),
    System(SystemNode),
    Check(CheckNode),
    Asset(AssetNode),
    Run(RunNode),
}

// ---------------------------------------------------------------- paging

/// The page size `first` asks for: 1 to 100, 20 when absent.
pub fn page_size(first: Option<i32>) -> Result<usize> {
    match first {
        None => Ok(DEFAULT_PAGE),
        Some(n) if n >= 1 && n as usize <= MAX_PAGE => Ok(n as usize),
        Some(n) => Err(error(
            Code::BadUserInput,
            format!("first must be between 1 and {MAX_PAGE}, not {n}"),
        )),
    }
}

pub fn cursor(raw: &str) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// The raw text of a cursor this API issued with `prefix`.
pub fn uncursor(after: Option<&str>, prefix: &str) -> Result<Option<String>> {
    let Some(after) = after else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(prefix).map(str::to_owned))
        .map(Some)
        .ok_or_else(|| error(Code::BadUserInput, format!("invalid cursor {after:?}")))
}

/// One page of an in-memory list, by position.
pub fn offset_page<T: async_graphql::OutputType>(
    items: Vec<T>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, T>> {
    let size = page_size(first)?;
    let start = match uncursor(after.as_deref(), "o:")? {
        Some(n) => {
            n.parse::<usize>()
                .map_err(|_| error(Code::BadUserInput, "invalid cursor"))?
                + 1
        }
        None => 0,
    };
    let total = items.len();
    let mut conn = Connection::new(start > 0, start + size < total);
    conn.edges.extend(
        items
            .into_iter()
            .enumerate()
            .skip(start)
            .take(size)
            .map(|(i, item)| Edge::new(cursor(&format!("o:{i}")), item)),
    );
    Ok(conn)
}

/// A page read with one row more than asked, to know whether another follows.
fn keyed_page<T: async_graphql::OutputType, R>(
    mut rows: Vec<R>,
    size: usize,
    has_previous: bool,
    key: impl Fn(&R) -> String,
    node: impl Fn(R) -> T,
) -> Connection<String, T> {
    let more = rows.len() > size;
    rows.truncate(size);
    let mut conn = Connection::new(has_previous, more);
    conn.edges.extend(rows.into_iter().map(|r| {
        let c = cursor(&key(&r));
        Edge::new(c, node(r))
    }));
    conn
}

// ------------------------------------------------------------ shared parts

/// Health as clients see it.
pub struct HealthInfo {
    pub health: Arc<EntityHealth>,
    pub now: SystemTime,
}

#[Object(name = "Health")]
impl HealthInfo {
    async fn status(&self) -> HealthStatus {
        self.health.state.status.into()
    }

    /// When the current status began.
    async fn since(&self) -> DateTime<Utc> {
        time(self.health.state.since)
    }

    /// Why the status is not HEALTHY: one reason per unmet rule (for a
    /// roll-up, per unhealthy child).
    async fn reasons(&self) -> Vec<ReasonInfo> {
        self.health
            .state
            .reasons
            .iter()
            .cloned()
            .map(ReasonInfo)
            .collect()
    }

    /// Set while a mute is in force.
    async fn mute(&self) -> Option<MuteInfo> {
        let m = self.health.state.muted.as_ref()?;
        (self.now < m.until).then(|| MuteInfo {
            until: time(m.until),
            reason: m.reason.clone(),
        })
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Mute")]
pub struct MuteInfo {
    pub until: DateTime<Utc>,
    pub reason: String,
}

pub struct ReasonInfo(pub Reason);

#[Object(name = "Reason")]
impl ReasonInfo {
    async fn rule(&self) -> HealthRule {
        self.0.rule.into()
    }
    async fn status(&self) -> HealthStatus {
        self.0.status.into()
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// For a roll-up: the child the reason comes from.
    async fn child_id(&self) -> Option<ID> {
        self.0.child.as_ref().map(ids::entity_id)
    }
}

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

async fn health_of(ctx: &Context<'_>, entity: &EntityRef) -> Result<Option<HealthInfo>> {
    let health = loaders(ctx)
        .health
        .load_one(entity_key(entity))
        .await
        .map_err(|e| store_error(&e))?;
    Ok(health.map(|health| HealthInfo {
        health,
        now: state(ctx).clock.now(),
    }))
}

/// One day of an entity's history: enough for a bar of a 90-day chart.
#[derive(SimpleObject)]
pub struct HistoryBucket {
    /// Midnight UTC at the start of the day.
    pub day: DateTime<Utc>,
    /// The worst status of the day; null when nothing was evaluated.
    pub status: Option<HealthStatus>,
    /// Share of evaluations that were HEALTHY, 0 to 100; null without any.
    pub uptime_percent: Option<f64>,
    pub runs: Long,
    pub failed_runs: Long,
    /// The day's latest counts (assets; summed for roll-ups).
    pub expected: Option<Long>,
    pub received: Option<Long>,
    pub errored: Option<Long>,
    pub missing: Option<Long>,
    /// The largest freshness lag seen that day, in seconds.
    pub max_freshness_lag_seconds: Option<f64>,
}

async fn history_of(
    ctx: &Context<'_>,
    entity: &EntityRef,
    days: Option<i32>,
) -> Result<Vec<HistoryBucket>> {
    let days = match days {
        None => DEFAULT_DAYS,
        Some(d) if d >= 1 && d as u32 <= MAX_DAYS => d as u32,
        Some(d) => {
            return Err(error(
                Code::BadUserInput,
                format!("days must be between 1 and {MAX_DAYS}, not {d}"),
            ));
        }
    };
    let (from, to) = day_range(state(ctx).clock.now(), days);
    let rows = loaders(ctx)
        .history
        .load_one(HistoryKey {
            entity: entity.clone(),
            from_ms: from,
            to_ms: to,
        })
        .await
        .map_err(|e| store_error(&e))?
        .unwrap_or_default();
    let by_day: HashMap<i64, _> = rows.iter().map(|r| (to_ms(r.bucket_start), r)).collect();
    let day = Period::Day.millis();
    Ok((0..days)
        .map(|i| {
            let start = from + i64::from(i) * day;
            match by_day.get(&start) {
                Some(r) => HistoryBucket {
                    day: time(from_ms_time(start)),
                    status: (r.evaluations > 0).then(|| r.worst.into()),
                    uptime_percent: (r.evaluations > 0).then(|| r.uptime_percent()),
                    runs: long(r.runs),
                    failed_runs: long(r.failed_runs),
                    expected: r.expected.map(long),
                    received: r.received.map(long),
                    errored: r.errored.map(long),
                    missing: r.missing.map(long),
                    max_freshness_lag_seconds: r.max_lag.map(|d| d.as_secs_f64()),
                },
                None => HistoryBucket {
                    day: time(from_ms_time(start)),
                    status: None,
                    uptime_percent: None,
                    runs: Long(0),
                    failed_runs: Long(0),
                    expected: None,
                    received: None,
                    errored: None,
                    missing: None,
                    max_freshness_lag_seconds: None,
                },
            }
        })
        .collect())
}

fn from_ms_time(ms: i64) -> SystemTime {
    from_ms(ms)
}

// ------------------------------------------------------------------ tenant

pub struct TenantNode(pub Tenant);

impl TenantNode {
    fn entity(&self) -> EntityRef {
        EntityRef::Tenant(self.0.id.clone())
    }
}

#[Object(name = "Tenant")]
impl TenantNode {
    async fn id(&self) -> ID {
        ids::entity_id(&self.entity())
    }
    /// The id in the config file.
    async fn key(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn health(&self, ctx: &Context<'_>) -> Result<Option<HealthInfo>> {
        health_of(ctx, &self.entity()).await
    }
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn flows(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, FlowNode>> {
        let view = view(ctx)?;
        let flows: Vec<FlowNode> = view
            .index
            .flows_of(&self.0.id)
            .cloned()
            .map(FlowNode)
            .collect();
        let page = offset_page(flows, first, after)?;
        let ahead = ctx.look_ahead();
        let asks = |f: &str| {
            ahead.field("nodes").field(f).exists()
                || ahead.field("edges").field("node").field(f).exists()
        };
        if asks("health") || asks("upstream") || asks("downstream") {
            let flows: Vec<&Flow> = page.edges.iter().map(|e| &e.node.0).collect();
            let assets = ["upstream", "downstream"].iter().any(|side| {
                let checks = |f: async_graphql::Lookahead<'_>| {
                    f.field(side).field("checks").field("assets").exists()
                };
                checks(ahead.field("nodes")) || checks(ahead.field("edges").field("node"))
            });
            prime(ctx, view, &flows, assets).await?;
        }
        Ok(page)
    }
    /// Daily buckets, oldest first, ending today (UTC); 90 days unless asked.
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

/// Reads, in one statement, the health of `flows`, their systems and the
/// checks on those; with `assets`, in two more, the health of the checks'
/// assets and the checks' latest observations. So
/// the fields below a flow list find them cached: a status page then costs
/// the same statements for 2 flows or 100, and no resolver waits on a
/// batching timer.
async fn prime(ctx: &Context<'_>, view: &View, flows: &[&Flow], assets: bool) -> Result<()> {
    let index = &view.index;
    let mut keys = Vec::new();
    let mut checks = Vec::new();
    for flow in flows {
        keys.push(entity_key(&EntityRef::Flow(flow.id.clone())));
        for system in std::iter::once(&flow.upstream).chain(&flow.downstream) {
            keys.push(entity_key(&EntityRef::System(system.clone())));
            for check in index.checks_of(system) {
                keys.push(entity_key(&EntityRef::Check(check.id.clone())));
                checks.push(check.id.clone());
            }
        }
    }
    let loaders = loaders(ctx);
    let health = loaders
        .health
        .load_many(keys)
        .await
        .map_err(|e| store_error(&e))?;
    if !assets {
        return Ok(());
    }
    let assets: Vec<String> = checks
        .iter()
        .filter_map(|c| {
            health
                .get(&entity_key(&EntityRef::Check(c.clone())))
                .map(|h| (c, h))
        })
        .flat_map(|(c, h)| {
            h.assets.iter().map(move |a| {
                entity_key(&EntityRef::Asset {
                    check: c.clone(),
                    asset: a.clone(),
                })
            })
        })
        .collect();
    loaders
        .health
        .load_many(assets)
        .await
        .map_err(|e| store_error(&e))?;
    loaders
        .observations
        .load_many(checks)
        .await
        .map_err(|e| store_error(&e))?;
    Ok(())
}

// -------------------------------------------------------------------- flow

pub struct FlowNode(pub Flow);

impl FlowNode {
    fn entity(&self) -> EntityRef {
        EntityRef::Flow(self.0.id.clone())
    }
}

#[derive(SimpleObject)]
pub struct FlowLinks {
    pub runbook: Option<String>,
    pub diagram: Option<String>,
    pub contact: Option<String>,
}

fn system_node(view: &View, id: &str) -> Result<SystemNode> {
    view.index
        .system(id)
        .cloned()
        .map(SystemNode)
        .ok_or_else(|| error(Code::Internal, format!("system {id:?} is not configured")))
}

#[Object(name = "Flow")]
impl FlowNode {
    async fn id(&self) -> ID {
        ids::entity_id(&self.entity())
    }
    async fn key(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn tenant(&self, ctx: &Context<'_>) -> Result<TenantNode> {
        let view = view(ctx)?;
        view.index
            .tenant(&self.0.tenant)
            .cloned()
            .map(TenantNode)
            .ok_or_else(|| error(Code::Internal, "the flow's tenant is not configured"))
    }
    /// Where the data comes from.
    async fn upstream(&self, ctx: &Context<'_>) -> Result<SystemNode> {
        system_node(view(ctx)?, &self.0.upstream)
    }
    /// Where it should arrive, in config order.
    async fn downstream(&self, ctx: &Context<'_>) -> Result<Vec<SystemNode>> {
        let view = view(ctx)?;
        self.0
            .downstream
            .iter()
            .map(|id| system_node(view, id))
            .collect()
    }
    async fn links(&self) -> FlowLinks {
        FlowLinks {
            runbook: self.0.links.runbook.clone(),
            diagram: self.0.links.diagram.clone(),
            contact: self.0.links.contact.clone(),
        }
    }
    async fn health(&self, ctx: &Context<'_>) -> Result<Option<HealthInfo>> {
        health_of(ctx, &self.entity()).await
    }
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

// ------------------------------------------------------------------ system

pub struct SystemNode(pub System);

impl SystemNode {
    fn entity(&self) -> EntityRef {
        EntityRef::System(self.0.id.clone())
    }
}

#[Object(name = "System")]
impl SystemNode {
    async fn id(&self) -> ID {
        ids::entity_id(&self.entity())
    }
    async fn key(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What it is, e.g. `snowflake`, `looker`, `service`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn health(&self, ctx: &Context<'_>) -> Result<Option<HealthInfo>> {
        health_of(ctx, &self.entity()).await
    }
    /// The checks that watch this system.
    async fn checks(&self, ctx: &Context<'_>) -> Result<Vec<CheckNode>> {
        Ok(view(ctx)?
            .index
            .checks_of(&self.0.id)
            .map(CheckNode::new)
            .collect())
    }
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

// ------------------------------------------------------------------- check

/// Boxed: a check's config is much larger than the other nodes.
pub struct CheckNode(pub Box<Check>);

impl CheckNode {
    pub fn new(check: &Check) -> Self {
        CheckNode(Box::new(check.clone()))
    }

    fn entity(&self) -> EntityRef {
        EntityRef::Check(self.0.id.clone())
    }
}

#[Object(name = "Check")]
impl CheckNode {
    async fn id(&self) -> ID {
        ids::entity_id(&self.entity())
    }
    async fn key(&self) -> &str {
        &self.0.id
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    /// The plugin it runs.
    async fn connector(&self) -> &str {
        &self.0.connector
    }
    /// `every 15m` or the cron expression.
    async fn schedule(&self) -> String {
        match &self.0.schedule {
            Schedule::Every(d) => format!("every {}", humanize(*d)),
            Schedule::Cron(c) => format!("cron {}", c.expr),
        }
    }
    async fn system(&self, ctx: &Context<'_>) -> Result<SystemNode> {
        system_node(view(ctx)?, &self.0.system)
    }
    async fn health(&self, ctx: &Context<'_>) -> Result<Option<HealthInfo>> {
        health_of(ctx, &self.entity()).await
    }
    /// The end of the latest successful run.
    async fn last_success(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(check_health(ctx, &self.0.id)
            .await?
            .and_then(|h| h.last_success)
            .map(time))
    }
    /// The assets its runs have reported, by key.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn assets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AssetNode>> {
        let assets = check_health(ctx, &self.0.id)
            .await?
            .map(|h| h.assets.iter().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|asset| AssetNode {
                check: self.0.id.clone(),
                system: self.0.system.clone(),
                asset,
            })
            .collect();
        offset_page(assets, first, after)
    }
    /// Runs, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn runs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, RunNode>> {
        let size = page_size(first)?;
        let before = uncursor(after.as_deref(), "r:")?
            .map(|c| c.parse::<i64>().map(from_ms))
            .transpose()
            .map_err(|_| error(Code::BadUserInput, "invalid cursor"))?;
        let rows = state(ctx)
            .store
            .runs(&self.0.id, before, size as u32 + 1)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(keyed_page(
            rows,
            size,
            before.is_some(),
            |r| format!("r:{}", to_ms(r.started_at)),
            RunNode,
        ))
    }
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

async fn check_health(ctx: &Context<'_>, check: &str) -> Result<Option<Arc<EntityHealth>>> {
    loaders(ctx)
        .health
        .load_one(entity_key(&EntityRef::Check(check.to_owned())))
        .await
        .map_err(|e| store_error(&e))
}

// ------------------------------------------------------------------- asset

pub struct AssetNode {
    pub check: String,
    /// The system its check watches.
    pub system: String,
    pub asset: String,
}

impl AssetNode {
    fn entity(&self) -> EntityRef {
        EntityRef::Asset {
            check: self.check.clone(),
            asset: self.asset.clone(),
        }
    }

    async fn latest(&self, ctx: &Context<'_>) -> Result<Option<Arc<StoredObservation>>> {
        let all = loaders(ctx)
            .observations
            .load_one(self.check.clone())
            .await
            .map_err(|e| store_error(&e))?;
        Ok(all.and_then(|v| {
            v.iter()
                .find(|o| o.observation.asset == self.asset)
                .cloned()
        }))
    }
}

/// The counts of the latest observation. `missing` is what reconciliation of
/// ids found (or expected minus received when no ids are compared).
#[derive(SimpleObject)]
pub struct Counts {
    pub expected: Option<Long>,
    pub received: Option<Long>,
    pub missing: Option<Long>,
    pub errored: Option<Long>,
}

#[derive(SimpleObject)]
pub struct Freshness {
    /// When the data was last updated, as the source says.
    pub updated_at: DateTime<Utc>,
    /// Seconds from then to now.
    pub age_seconds: f64,
}

#[derive(SimpleObject)]
pub struct LastReceived {
    pub id: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(async_graphql::InputObject, Default)]
pub struct ErrorFilter {
    pub kind: Option<String>,
    pub document_id: Option<String>,
}

#[Object(name = "Asset")]
impl AssetNode {
    async fn id(&self) -> ID {
        ids::entity_id(&self.entity())
    }
    /// The asset's key as its connector reports it (a table, a model...).
    async fn key(&self) -> &str {
        &self.asset
    }
    async fn check(&self, ctx: &Context<'_>) -> Result<CheckNode> {
        view(ctx)?
            .index
            .check(&self.check)
            .map(CheckNode::new)
            .ok_or_else(|| error(Code::NotFound, "the check is no longer configured"))
    }
    /// What kind of thing it is (`table`, `model`, `documents`...).
    async fn kind(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.latest(ctx).await?.map(|o| o.observation.kind.clone()))
    }
    /// When the latest observation was made.
    async fn observed_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.latest(ctx).await?.map(|o| time(o.observed_at)))
    }
    async fn counts(&self, ctx: &Context<'_>) -> Result<Option<Counts>> {
        Ok(self.latest(ctx).await?.map(|o| {
            let o = &o.observation;
            let missing = o
                .missing
                .or_else(|| o.expected.zip(o.received).map(|(e, r)| e.saturating_sub(r)));
            Counts {
                expected: o.expected.map(long),
                received: o.received.map(long),
                missing: missing.map(long),
                errored: o.errored.map(long),
            }
        }))
    }
    async fn freshness(&self, ctx: &Context<'_>) -> Result<Option<Freshness>> {
        let now = state(ctx).clock.now();
        Ok(self
            .latest(ctx)
            .await?
            .and_then(|o| o.observation.freshness)
            .map(|t| Freshness {
                updated_at: time(t),
                age_seconds: now
                    .duration_since(t)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            }))
    }
    async fn last_received(&self, ctx: &Context<'_>) -> Result<Option<LastReceived>> {
        Ok(self.latest(ctx).await?.and_then(|o| {
            let o = &o.observation;
            (o.last_received_id.is_some() || o.last_received_at.is_some()).then(|| LastReceived {
                id: o.last_received_id.clone(),
                at: o.last_received_at.map(time),
            })
        }))
    }
    async fn health(&self, ctx: &Context<'_>) -> Result<Option<HealthInfo>> {
        health_of(ctx, &self.entity()).await
    }
    /// Errors the connector reported, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn errors(
        &self,
        ctx: &Context<'_>,
        filter: Option<ErrorFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AssetError>> {
        let size = page_size(first)?;
        let filter = filter.unwrap_or_default();
        let before = uncursor(after.as_deref(), "e:")?
            .map(|c| c.parse::<i64>())
            .transpose()
            .map_err(|_| error(Code::BadUserInput, "invalid cursor"))?;
        let rows = state(ctx)
            .store
            .errors(
                &self.check,
                &self.asset,
                filter.kind.as_deref(),
                filter.document_id.as_deref(),
                before,
                size as u32 + 1,
            )
            .await
            .map_err(|e| store_error(&e))?;
        Ok(keyed_page(
            rows,
            size,
            before.is_some(),
            |e| format!("e:{}", e.id),
            AssetError,
        ))
    }
    /// Ids the upstream system has and this one lacks, in id order. `flow`
    /// picks the flow when the system is downstream in several.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn missing_ids(
        &self,
        ctx: &Context<'_>,
        flow: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, String>> {
        let view = view(ctx)?;
        let size = page_size(first)?;
        let system = &self.system;
        let flow_id = match flow {
            Some(id) => match ids::decode(&id) {
                Some(Target::Entity(EntityRef::Flow(f)))
                    if view.sees(&EntityRef::Flow(f.clone())) =>
                {
                    f
                }
                _ => return Err(error(Code::NotFound, format!("no flow {}", id.as_str()))),
            },
            None => match view
                .index
                .flows_with(system)
                .find(|f| f.downstream.iter().any(|d| d == system))
            {
                Some(f) => f.id.clone(),
                None => return Ok(Connection::new(false, false)),
            },
        };
        let after_id = uncursor(after.as_deref(), "m:")?;
        let rows = state(ctx)
            .store
            .missing_ids(
                &flow_id,
                system,
                &self.asset,
                after_id.as_deref(),
                size as u32 + 1,
            )
            .await
            .map_err(|e| store_error(&e))?;
        Ok(keyed_page(
            rows,
            size,
            after_id.is_some(),
            |id| format!("m:{id}"),
            |id| id,
        ))
    }
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

/// One error a connector reported about an asset.
pub struct AssetError(pub StoredError);

#[Object]
impl AssetError {
    /// E.g. `parse`, `schema`, `rejected`: the connector's own words.
    async fn kind(&self) -> &str {
        &self.0.error.kind
    }
    async fn message(&self) -> &str {
        &self.0.error.message
    }
    async fn document_id(&self) -> Option<&str> {
        self.0.error.document_id.as_deref()
    }
    async fn log_link(&self) -> Option<&str> {
        self.0.error.log_link.as_deref()
    }
    /// When it happened, if the source says.
    async fn at(&self) -> Option<DateTime<Utc>> {
        self.0.error.at.map(time)
    }
    /// When the run that reported it observed it.
    async fn observed_at(&self) -> DateTime<Utc> {
        time(self.0.observed_at)
    }
    async fn run_id(&self) -> ID {
        ids::encode(&Target::Run(self.0.run_id.clone()))
    }
}

// --------------------------------------------------------------------- run

pub struct RunNode(pub RunRow);

#[Object(name = "Run")]
impl RunNode {
    async fn id(&self) -> ID {
        ids::encode(&Target::Run(self.0.id.clone()))
    }
    async fn check(&self, ctx: &Context<'_>) -> Result<Option<CheckNode>> {
        Ok(view(ctx)?.index.check(&self.0.check_id).map(CheckNode::new))
    }
    async fn connector(&self) -> &str {
        &self.0.connector
    }
    async fn plugin_version(&self) -> &str {
        &self.0.plugin_version
    }
    async fn trigger(&self) -> RunTrigger {
        self.0.trigger.into()
    }
    /// 1 for the first attempt, 2 for its first retry...
    async fn attempt(&self) -> i32 {
        i32::try_from(self.0.attempt).unwrap_or(i32::MAX)
    }
    async fn started_at(&self) -> DateTime<Utc> {
        time(self.0.started_at)
    }
    async fn finished_at(&self) -> DateTime<Utc> {
        time(self.0.finished_at)
    }
    async fn duration_ms(&self) -> f64 {
        self.0.duration().as_secs_f64() * 1000.0
    }
    async fn outcome(&self) -> RunOutcome {
        if self.0.succeeded() {
            RunOutcome::Succeeded
        } else {
            RunOutcome::Failed
        }
    }
    async fn error_class(&self) -> Option<ErrorClass> {
        self.0.failure.as_ref().map(|f| f.class.into())
    }
    async fn error_message(&self) -> Option<&str> {
        self.0.failure.as_ref().map(|f| f.message.as_str())
    }
    /// How many assets the run reported.
    async fn assets(&self) -> i32 {
        i32::try_from(self.0.assets).unwrap_or(i32::MAX)
    }
}

// ------------------------------------------------------------ health event

/// A change of an entity's health.
pub struct HealthEventNode(pub HealthEvent);

#[Object(name = "HealthEvent")]
impl HealthEventNode {
    /// Increases by one per event, daemon-wide: resume a subscription after it.
    async fn seq(&self) -> Long {
        Long(self.0.seq)
    }
    async fn entity_id(&self) -> ID {
        ids::entity_id(&self.0.entity)
    }
    async fn entity_kind(&self) -> EntityKind {
        (&self.0.entity).into()
    }
    /// The config id of the entity (for an asset, its key).
    async fn entity_key(&self) -> &str {
        match &self.0.entity {
            EntityRef::Tenant(id)
            | EntityRef::Flow(id)
            | EntityRef::System(id)
            | EntityRef::Check(id) => id,
            EntityRef::Asset { asset, .. } => asset,
        }
    }
    /// Null for an entity's first evaluation.
    async fn from(&self) -> Option<HealthStatus> {
        self.0.from.map(Into::into)
    }
    async fn to(&self) -> HealthStatus {
        self.0.to.into()
    }
    async fn reasons(&self) -> Vec<ReasonInfo> {
        self.0.reasons.iter().cloned().map(ReasonInfo).collect()
    }
    /// The entity was muted: record it, hold the alert.
    async fn muted(&self) -> bool {
        self.0.muted
    }
    /// The run that caused it, if one did.
    async fn run_id(&self) -> Option<ID> {
        self.0
            .run_id
            .as_ref()
            .map(|r| ids::encode(&Target::Run(r.clone())))
    }
    async fn at(&self) -> DateTime<Utc> {
        time(self.0.at)
    }
}

/// Which health events to return or push.
#[derive(async_graphql::InputObject, Default, Clone)]
pub struct HealthEventFilter {
    /// Events of this tenant and everything in its flows.
    pub tenant: Option<ID>,
    /// Events of this flow, its systems, their checks and assets.
    pub flow: Option<ID>,
    /// Events of this one entity.
    pub entity: Option<ID>,
    /// Only changes to this status or worse.
    pub min_status: Option<HealthStatus>,
}

/// A [`HealthEventFilter`] checked against the view: the ids decoded, each
/// visible to the principal.
#[derive(Clone)]
pub struct EventFilter {
    tenant: Option<String>,
    flow: Option<Flow>,
    entity: Option<EntityRef>,
    min_status: Option<Status>,
}

impl EventFilter {
    pub fn new(view: &View, filter: Option<HealthEventFilter>) -> Result<Self> {
        let filter = filter.unwrap_or_default();
        let entity = |id: &ID, kind: &str| -> Result<EntityRef> {
            match ids::decode(id) {
                Some(Target::Entity(e)) if view.sees(&e) => Ok(e),
                _ => Err(error(Code::NotFound, format!("no {kind} {}", id.as_str()))),
            }
        };
        let tenant = match &filter.tenant {
            Some(id) => match entity(id, "tenant")? {
                EntityRef::Tenant(t) => Some(t),
                _ => return Err(error(Code::BadUserInput, "tenant: not a tenant id")),
            },
            None => None,
        };
        let flow = match &filter.flow {
            Some(id) => match entity(id, "flow")? {
                EntityRef::Flow(f) => view.index.flow(&f).cloned(),
                _ => return Err(error(Code::BadUserInput, "flow: not a flow id")),
            },
            None => None,
        };
        let entity = filter
            .entity
            .as_ref()
            .map(|id| entity(id, "entity"))
            .transpose()?;
        Ok(EventFilter {
            tenant,
            flow,
            entity,
            min_status: filter.min_status.map(Into::into),
        })
    }

    /// Whether `event` passes the filter and the view's tenant scope.
    pub fn matches(&self, view: &View, event: &HealthEvent) -> bool {
        let e = &event.entity;
        view.sees(e)
            && self.min_status.is_none_or(|m| event.to >= m)
            && self.entity.as_ref().is_none_or(|x| x == e)
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| view.index.within(e, Some(t)))
            && self.flow.as_ref().is_none_or(|f| view.index.in_flow(e, f))
    }
}

/// Events after `after`, oldest first, that pass `filter`: at most `limit`,
/// reading the store in pages. Also says the last sequence number examined,
/// so a caller can go on from there.
pub async fn events_after(
    state: &State,
    view: &View,
    filter: &EventFilter,
    mut after: i64,
    limit: usize,
) -> Result<(Vec<HealthEvent>, i64)> {
    const READ: u32 = 500;
    let mut out = Vec::new();
    loop {
        let page = state
            .store
            .events_after(after, READ)
            .await
            .map_err(|e| store_error(&e))?;
        let full = page.len() == READ as usize;
        for event in page {
            after = event.seq;
            if filter.matches(view, &event) {
                out.push(event);
                if out.len() == limit {
                    return Ok((out, after));
                }
            }
        }
        if !full {
            return Ok((out, after));
        }
    }
}

// --------------------------------------------------------------- connector

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    Resync,
    Delete,
}

/// A loaded plugin.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Connector {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The `tributary:connector` contract version it was built against.
    pub contract_version: String,
    pub capabilities: Vec<Capability>,
    pub suggested_hosts: Vec<String>,
    #[graphql(skip)]
    pub schema: String,
}

#[ComplexObject]
impl Connector {
    /// JSON Schema of its config (secret fields carry `x-secret: true`).
    async fn config_schema(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::from_str(&self.schema).unwrap_or(serde_json::Value::Null))
    }
}

impl From<&crate::plugin::Plugin> for Connector {
    fn from(p: &crate::plugin::Plugin) -> Self {
        use crate::plugin::Capabilities;
        let d = p.descriptor();
        Connector {
            name: d.name.clone(),
            version: d.version.clone(),
            description: d.description.clone(),
            contract_version: p.contract_version().to_string(),
            capabilities: [
                (Capabilities::RESYNC, Capability::Resync),
                (Capabilities::DELETE, Capability::Delete),
            ]
            .into_iter()
            .filter(|(flag, _)| d.capabilities.contains(*flag))
            .map(|(_, c)| c)
            .collect(),
            suggested_hosts: d.suggested_hosts.clone(),
            schema: d.config_schema.clone(),
        }
    }
}

// ------------------------------------------------------------------ daemon

#[derive(SimpleObject)]
pub struct ConfigStatus {
    /// The config file in force.
    pub file: String,
    pub loaded_at: DateTime<Utc>,
    pub last_reload_attempt_at: Option<DateTime<Utc>>,
    /// Why the latest reload was refused; null once one succeeds.
    pub last_reload_error: Option<String>,
    pub reloads_succeeded: Long,
    pub reloads_failed: Long,
    pub tenants: i32,
    pub flows: i32,
    pub checks: i32,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum StoreBackend {
    Sqlite,
    Postgres,
}

#[derive(SimpleObject)]
pub struct Daemon {
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub store: StoreBackend,
    pub config: ConfigStatus,
    /// Checks running now.
    pub running_checks: i32,
}

/// The node `id` names, if the view may see it.
pub async fn node(ctx: &Context<'_>, id: &ID) -> Result<Option<Node>> {
    let view = view(ctx)?;
    let Some(target) = ids::decode(id) else {
        return Ok(None);
    };
    let index = &view.index;
    Ok(match target {
        Target::Entity(e) if !view.sees(&e) => None,
        Target::Entity(EntityRef::Tenant(t)) => {
            index.tenant(&t).cloned().map(|t| TenantNode(t).into())
        }
        Target::Entity(EntityRef::Flow(f)) => index.flow(&f).cloned().map(|f| FlowNode(f).into()),
        Target::Entity(EntityRef::System(s)) => {
            index.system(&s).cloned().map(|s| SystemNode(s).into())
        }
        Target::Entity(EntityRef::Check(c)) => index.check(&c).map(|c| CheckNode::new(c).into()),
        Target::Entity(EntityRef::Asset { check, asset }) => {
            index.check(&check).cloned().map(|c| {
                AssetNode {
                    check: c.id,
                    system: c.system,
                    asset,
                }
                .into()
            })
        }
        Target::Run(id) => {
            let run = state(ctx)
                .store
                .run(&id)
                .await
                .map_err(|e| store_error(&e))?;
            run.filter(|r| view.sees(&EntityRef::Check(r.check_id.clone())))
                .map(|r| RunNode(r).into())
        }
    })
}

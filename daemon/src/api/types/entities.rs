//! The config's entities as GraphQL objects (tenant, flow, system, check,
//! asset) and what hangs off them (errors, runs), within the request's view.

use super::*;

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
    /// SLOs stated for this entity, then those of the entities under it
    /// that an SLO covers or has slices of (worst first); `slo` picks one
    /// by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn slos(
        &self,
        ctx: &Context<'_>,
        slo: Option<String>,
        first: Option<i32>,
    ) -> Result<Vec<SloStatusNode>> {
        slos_of(ctx, &self.entity(), slo.as_deref(), first).await
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
    #[graphql(complexity = "history_cost(days, child_complexity)")]
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
pub(super) async fn prime(
    ctx: &Context<'_>,
    view: &View,
    flows: &[&Flow],
    assets: bool,
) -> Result<()> {
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

pub(super) fn system_node(view: &View, id: &str) -> Result<SystemNode> {
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
    /// SLOs stated for this entity, then those of the entities under it
    /// that an SLO covers or has slices of (worst first); `slo` picks one
    /// by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn slos(
        &self,
        ctx: &Context<'_>,
        slo: Option<String>,
        first: Option<i32>,
    ) -> Result<Vec<SloStatusNode>> {
        slos_of(ctx, &self.entity(), slo.as_deref(), first).await
    }
    #[graphql(complexity = "history_cost(days, child_complexity)")]
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

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
    /// SLOs stated for this entity, then those of the entities under it
    /// that an SLO covers or has slices of (worst first); `slo` picks one
    /// by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn slos(
        &self,
        ctx: &Context<'_>,
        slo: Option<String>,
        first: Option<i32>,
    ) -> Result<Vec<SloStatusNode>> {
        slos_of(ctx, &self.entity(), slo.as_deref(), first).await
    }
    /// The checks that watch this system.
    async fn checks(&self, ctx: &Context<'_>) -> Result<Vec<CheckNode>> {
        Ok(view(ctx)?
            .index
            .checks_of(&self.0.id)
            .map(CheckNode::new)
            .collect())
    }
    #[graphql(complexity = "history_cost(days, child_complexity)")]
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

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
    /// `every 15m`, the cron expression, or `push` for a check that is
    /// reported to instead of run.
    async fn schedule(&self) -> String {
        if self.0.push.is_some() {
            return "push".to_owned();
        }
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
    /// SLOs stated for this entity, then those of the entities under it
    /// that an SLO covers or has slices of (worst first); `slo` picks one
    /// by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn slos(
        &self,
        ctx: &Context<'_>,
        slo: Option<String>,
        first: Option<i32>,
    ) -> Result<Vec<SloStatusNode>> {
        slos_of(ctx, &self.entity(), slo.as_deref(), first).await
    }
    /// For a push check (`connector = "push"`): its tokens, last report and
    /// heartbeat deadline.
    async fn push(&self) -> Option<PushInfo> {
        self.0.push.as_ref().map(|_| PushInfo {
            check: self.0.clone(),
        })
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
    #[graphql(complexity = "history_cost(days, child_complexity)")]
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
}

/// What a push check accepts and when it last heard.
pub struct PushInfo {
    check: Box<Check>,
}

impl PushInfo {
    fn push(&self) -> &crate::config::PushCheck {
        self.check.push.as_deref().expect("a push check")
    }
}

#[Object]
impl PushInfo {
    /// Its push tokens: who reports, and when each was last used (kept
    /// across restarts; to the millisecond).
    async fn tokens(&self, ctx: &Context<'_>) -> Vec<PushToken> {
        let service = &state(ctx).service;
        (self.push().tokens.iter())
            .map(|t| PushToken {
                name: t.name.clone(),
                last_used_at: service.push_token_used(&t.sha256).map(time),
            })
            .collect()
    }
    /// `expect_every`, e.g. `5m`, when it has a heartbeat.
    async fn expect_every(&self) -> Option<String> {
        self.push().expect.map(|h| humanize(h.every))
    }
    async fn grace(&self) -> Option<String> {
        self.push().expect.map(|h| humanize(h.grace))
    }
    /// When its latest report was true.
    async fn last_report_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(check_health(ctx, &self.check.id)
            .await?
            .and_then(|h| h.last_success)
            .map(time))
    }
    /// When silence turns its assets UNKNOWN: the latest report plus
    /// `expect_every` and `grace` (none before the first report or without
    /// a heartbeat).
    async fn deadline(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        let Some(h) = self.push().expect else {
            return Ok(None);
        };
        Ok(check_health(ctx, &self.check.id)
            .await?
            .and_then(|e| e.last_success)
            .map(|at| time(at + h.every + h.grace)))
    }
    /// Its assets with a heartbeat of their own, which answer to it instead
    /// of the check's.
    async fn asset_deadlines(&self, ctx: &Context<'_>) -> Result<Vec<AssetDeadline>> {
        let keys: Vec<String> = (self.push().deadlines.keys())
            .map(|asset| {
                entity_key(&EntityRef::Asset {
                    check: self.check.id.clone(),
                    asset: asset.clone(),
                })
            })
            .collect();
        let health = loaders(ctx)
            .health
            .load_many(keys.clone())
            .await
            .map_err(|e| store_error(&e))?;
        Ok((self.push().deadlines.iter().zip(&keys))
            .map(|((asset, h), key)| {
                let last = health.get(key).and_then(|e| e.last_success);
                AssetDeadline {
                    asset: asset.clone(),
                    expect_every: humanize(h.every),
                    grace: humanize(h.grace),
                    last_report_at: last.map(time),
                    deadline: last.map(|at| time(at + h.every + h.grace)),
                }
            })
            .collect())
    }
}

/// An asset of a push check with a heartbeat of its own
/// (`[checks.push.deadlines.ASSET]`).
#[derive(SimpleObject)]
pub struct AssetDeadline {
    pub asset: String,
    /// e.g. `10m`.
    pub expect_every: String,
    pub grace: String,
    /// When the latest report of this asset was true.
    pub last_report_at: Option<DateTime<Utc>>,
    /// When silence turns it UNKNOWN: its latest report plus `expectEvery`
    /// and `grace` (none before its first report).
    pub deadline: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct PushToken {
    pub name: String,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub(super) fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

pub(super) async fn check_health(
    ctx: &Context<'_>,
    check: &str,
) -> Result<Option<Arc<EntityHealth>>> {
    loaders(ctx)
        .health
        .load_one(entity_key(&EntityRef::Check(check.to_owned())))
        .await
        .map_err(|e| store_error(&e))
}

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
    /// The asset's freshness rule (overrides applied): WARNING when older
    /// than this many seconds; null without one.
    pub warn_after_seconds: Option<f64>,
    /// UNHEALTHY when older than this many seconds; null without one.
    pub error_after_seconds: Option<f64>,
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
        let rule = (view(ctx)?.index.check(&self.check))
            .and_then(|c| c.rules.for_asset(&self.asset).freshness);
        let seconds = |d: Option<crate::health::HumanDuration>| d.map(|d| d.0.as_secs_f64());
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
                warn_after_seconds: seconds(rule.as_ref().and_then(|r| r.warn_after)),
                error_after_seconds: seconds(rule.as_ref().and_then(|r| r.error_after)),
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
    /// SLOs stated for this asset; `slo` picks one by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn slos(
        &self,
        ctx: &Context<'_>,
        slo: Option<String>,
        first: Option<i32>,
    ) -> Result<Vec<SloStatusNode>> {
        slos_of(ctx, &self.entity(), slo.as_deref(), first).await
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
    #[graphql(complexity = "history_cost(days, child_complexity)")]
    async fn history(&self, ctx: &Context<'_>, days: Option<i32>) -> Result<Vec<HistoryBucket>> {
        history_of(ctx, &self.entity(), days).await
    }
    /// The key-value pairs the latest observation carried (for an
    /// OpenLineage asset: its job, run id and `nominalTime`).
    async fn metadata(&self, ctx: &Context<'_>) -> Result<Vec<MetadataEntry>> {
        Ok(self
            .latest(ctx)
            .await?
            .map(|o| {
                (o.observation.metadata.iter())
                    .map(|(key, value)| MetadataEntry {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
    /// The datasets OpenLineage events say it is made from and feeds; empty
    /// for an asset no OpenLineage job wrote.
    async fn lineage(&self, ctx: &Context<'_>) -> Result<Lineage> {
        lineage_of(ctx, self).await
    }
}

/// One key-value pair an observation carried.
#[derive(SimpleObject)]
pub struct MetadataEntry {
    pub key: String,
    pub value: String,
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

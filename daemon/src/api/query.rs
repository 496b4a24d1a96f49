//! The query root: entry points into tenants, nodes by id, health events,
//! connectors, maintenance windows, alert channels and deliveries, the
//! daemon's own status and the audit log.

use std::collections::BTreeSet;

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::error::{Code, error, store_error};
use super::ids::{self, Target};
use super::types::{
    AlertChannelNode, AlertDeliveryNode, AlertDeliveryStatus, CheckNode, ConfigStatus, Connector,
    Daemon, EventFilter, HealthEventFilter, HealthEventNode, Long, Node, Result, SloStatusNode,
    StoreBackend, TenantNode, WindowNode, alert_channel, alert_delivery, keyed_page, node,
    offset_page, page_size, slo_statuses, time, uncursor, window_node,
};
use super::{state, view};
use crate::config::Role;
use crate::health::{EntityRef, glob_match};
use crate::store::{Backend, DeliveryFilter, entity_key};

pub struct QueryRoot;

/// One entry of the audit log.
#[derive(SimpleObject)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// The token name that did it.
    pub actor: String,
    /// `run_now`, `resync`, `delete_data`, `mute`, `unmute`, `reload_config`,
    /// `create_maintenance_window`, `end_maintenance_window`, `retry_delivery`,
    /// `test_alert_channel`, `enable_alert_channel`.
    pub action: String,
    /// What it was done to (an entity key such as `check:orders`).
    pub target: String,
    /// The mutation's arguments and outcome, as JSON text.
    pub detail: String,
}

#[Object]
impl QueryRoot {
    /// Any tenant, flow, system, check, asset or run by its global id; null
    /// when it does not exist or is outside the token's tenant.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        node(ctx, &id).await
    }

    /// Tenants in config order; `search` matches name or key, any case.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn tenants(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, TenantNode>> {
        let view = view(ctx)?;
        let needle = search.map(|s| s.to_lowercase());
        let tenants = view
            .index
            .config()
            .tenants
            .iter()
            .filter(|t| view.sees(&EntityRef::Tenant(t.id.clone())))
            .filter(|t| {
                needle.as_deref().is_none_or(|n| {
                    t.name.to_lowercase().contains(n) || t.id.to_lowercase().contains(n)
                })
            })
            .cloned()
            .map(TenantNode)
            .collect();
        offset_page(tenants, first, after)
    }

    /// A tenant by its config key.
    async fn tenant(&self, ctx: &Context<'_>, key: String) -> Result<Option<TenantNode>> {
        let view = view(ctx)?;
        Ok(view
            .sees(&EntityRef::Tenant(key.clone()))
            .then(|| view.index.tenant(&key).cloned().map(TenantNode))
            .flatten())
    }

    /// SLO figures of every entity an SLO covers, slices or not, and of any
    /// other with slices in its SLO's window (of the SLO named `slo`, of
    /// entities of `tenant`, when given), the least budget left first: the
    /// `worst` first (default 20, at most 1000).
    #[graphql(complexity = "worst.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn slos(
        &self,
        ctx: &Context<'_>,
        tenant: Option<String>,
        slo: Option<String>,
        worst: Option<i32>,
    ) -> Result<Vec<SloStatusNode>> {
        slo_statuses(ctx, slo.as_deref(), worst, |view, e| {
            tenant
                .as_deref()
                .is_none_or(|t| view.index.within(e, Some(t)))
        })
        .await
    }

    /// A check by its config key.
    async fn check(&self, ctx: &Context<'_>, key: String) -> Result<Option<CheckNode>> {
        let view = view(ctx)?;
        Ok(view
            .sees(&EntityRef::Check(key.clone()))
            .then(|| view.index.check(&key).map(CheckNode::new))
            .flatten())
    }

    /// Health changes in sequence order, after the cursor (or from the first).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn health_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<HealthEventFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, HealthEventNode>> {
        let view = view(ctx)?;
        let size = page_size(first)?;
        let filter = EventFilter::new(view, filter)?;
        let after = uncursor(after.as_deref(), "s:")?
            .map(|s| s.parse::<i64>())
            .transpose()
            .map_err(|_| error(Code::BadUserInput, "invalid cursor"))?;
        let read = (state(ctx).replay)
            .events(view, &filter, after.unwrap_or(0), size + 1)
            .await?;
        let mut events = read.events;
        let more = events.len() > size;
        events.truncate(size);
        let mut conn = Connection::new(after.is_some(), more);
        conn.edges.extend(events.into_iter().map(|e| {
            async_graphql::connection::Edge::new(super::event_cursor(e.seq), HealthEventNode(e))
        }));
        Ok(conn)
    }

    /// The highest health event sequence number so far: subscribe with it as
    /// `afterSeq` to get everything after this moment.
    async fn last_event_seq(&self, ctx: &Context<'_>) -> Result<Long> {
        view(ctx)?;
        Ok(Long(
            state(ctx)
                .store
                .last_event_seq()
                .await
                .map_err(|e| store_error(&e))?,
        ))
    }

    /// The connector plugins loaded.
    async fn connectors(&self, ctx: &Context<'_>) -> Result<Vec<Connector>> {
        let view = view(ctx)?;
        let mut out: Vec<Connector> = view.index.loaded.plugins.values().map(Into::into).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The daemon itself: version, config status, last reload error, plugin
    /// files that failed to load. A tenant-scoped token sees its own part:
    /// counts and running checks of its tenant, the failed plugins its checks
    /// name, and no reload error (a refused file's errors name any tenant's
    /// checks and places).
    async fn daemon(&self, ctx: &Context<'_>) -> Result<Daemon> {
        let view = view(ctx)?;
        let state = state(ctx);
        let reload = state.reloader.status();
        let config = view.index.config();
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        let scoped = view.tenant_scope().is_some();
        let seen = |e: EntityRef| view.sees(&e);
        // A check removed by a reload may still be running: the whole
        // daemon's count includes it, a tenant's cannot place it.
        let running = (state.service.running_checks().iter())
            .filter(|c| !scoped || seen(EntityRef::Check(c.to_string())))
            .count();
        let connectors: BTreeSet<&str> = (config.checks.iter())
            .filter(|c| seen(EntityRef::Check(c.id.clone())))
            .map(|c| c.connector.as_str())
            .collect();
        // A plugin that failed before saying its name is known by its file's.
        let concerns = |f: &&crate::plugin::FailedPlugin| {
            let name = f.name.as_deref();
            let name = name.or_else(|| f.file.file_stem().and_then(|s| s.to_str()));
            !scoped || name.is_some_and(|n| connectors.contains(n))
        };
        Ok(Daemon {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: time(state.started_at),
            store: match state.store.backend() {
                Backend::Sqlite => StoreBackend::Sqlite,
                Backend::Postgres => StoreBackend::Postgres,
            },
            config: ConfigStatus {
                file: reload.file.display().to_string(),
                loaded_at: time(reload.loaded_at),
                last_reload_attempt_at: reload.attempted_at.map(time),
                last_reload_error: reload.last_error.filter(|_| !scoped),
                reloads_succeeded: Long(reload.succeeded as i64),
                reloads_failed: Long(reload.failed as i64),
                tenants: count(
                    (config.tenants.iter())
                        .filter(|t| seen(EntityRef::Tenant(t.id.clone())))
                        .count(),
                ),
                flows: count(
                    (config.flows.iter())
                        .filter(|f| seen(EntityRef::Flow(f.id.clone())))
                        .count(),
                ),
                checks: count(
                    (config.checks.iter())
                        .filter(|c| seen(EntityRef::Check(c.id.clone())))
                        .count(),
                ),
            },
            running_checks: count(running),
            failed_plugins: (view.index.loaded.failed.iter())
                .filter(concerns)
                .map(Into::into)
                .collect(),
        })
    }

    /// Maintenance windows, the config's first; `active` keeps those in
    /// force now (true) or not (false). A token with a tenant scope sees the
    /// windows whose tenant glob matches its tenant.
    async fn maintenance_windows(
        &self,
        ctx: &Context<'_>,
        active: Option<bool>,
    ) -> Result<Vec<WindowNode>> {
        let view = view(ctx)?;
        let state = state(ctx);
        let now = state.clock.now();
        Ok(state
            .service
            .maintenance_windows()
            .into_iter()
            .filter(|w| match view.tenant_scope() {
                None => true,
                Some(t) => w.scope.tenant.as_deref().is_some_and(|g| glob_match(g, t)),
            })
            .filter(|w| active.is_none_or(|a| w.active_at(now) == a))
            .map(|w| window_node(state, w))
            .collect())
    }

    /// The alert channels in config order, each enabled or not and why. A
    /// token with a tenant scope sees none: a channel carries every tenant's
    /// alerts its routes send, and where they go is not one tenant's to know.
    async fn alert_channels(&self, ctx: &Context<'_>) -> Result<Vec<AlertChannelNode>> {
        let view = view(ctx)?;
        if view.tenant_scope().is_some() {
            return Ok(Vec::new());
        }
        let service = &state(ctx).service;
        Ok((view.index.config().alerts.channels.iter())
            .map(|c| alert_channel(view, c, service.channel_disabled(&c.name)))
            .collect())
    }

    /// Alert deliveries, newest first: one per message and channel, with
    /// where it stands. Filters: the channel's name, the status, and an
    /// entity the message is about (its global id). A token with a tenant
    /// scope sees the deliveries whose entities are all of its tenant, and
    /// none that spans tenants.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn alert_deliveries(
        &self,
        ctx: &Context<'_>,
        channel: Option<String>,
        status: Option<AlertDeliveryStatus>,
        entity: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, AlertDeliveryNode>> {
        let view = view(ctx)?;
        let size = page_size(first)?;
        let before = uncursor(after.as_deref(), "d:")?
            .map(|s| s.parse::<i64>())
            .transpose()
            .map_err(|_| error(Code::BadUserInput, "invalid cursor"))?;
        let entity = match entity.map(|id| ids::decode(&id)) {
            None => None,
            Some(Some(Target::Entity(e))) if view.sees(&e) => Some(entity_key(&e)),
            // An entity this token cannot see has no deliveries it may see.
            Some(_) => return Ok(Connection::new(before.is_some(), false)),
        };
        let mut filter = DeliveryFilter {
            channel,
            status: status.map(Into::into),
            entity,
            tenant: view.tenant_scope().map(str::to_owned),
            before,
        };
        // Rows the view may not see are left out after the read: read on
        // until the page (and one more, to know one follows) is full.
        let limit = i64::try_from(size + 1).unwrap_or(i64::MAX);
        let mut nodes: Vec<(i64, AlertDeliveryNode)> = Vec::new();
        loop {
            let rows = (state(ctx).store)
                .alert_deliveries(&filter, limit)
                .await
                .map_err(|e| store_error(&e))?;
            let last = (rows.len() as i64) < limit;
            for row in rows {
                filter.before = Some(row.n);
                let n = row.n;
                nodes.extend(alert_delivery(view, row).map(|node| (n, node)));
                if nodes.len() > size {
                    break;
                }
            }
            if last || nodes.len() > size {
                break;
            }
        }
        Ok(keyed_page(
            nodes,
            size,
            before.is_some(),
            |(n, _)| format!("d:{n}"),
            |(_, node)| node,
        ))
    }

    /// The latest audit entries, newest first (admin only).
    async fn audit_log(&self, ctx: &Context<'_>, last: Option<i32>) -> Result<Vec<AuditRecord>> {
        let view = view(ctx)?;
        view.require(Role::Admin)?;
        if view.tenant_scope().is_some() {
            return Err(error(
                Code::Forbidden,
                "the audit log spans tenants: it needs a token without a tenant scope",
            ));
        }
        let n = page_size(last)?;
        let rows = state(ctx)
            .store
            .audit_log(n as u32)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(rows
            .into_iter()
            .map(|a| AuditRecord {
                at: time(a.at),
                actor: a.actor,
                action: a.action,
                target: a.target,
                detail: a.detail,
            })
            .collect())
    }
}

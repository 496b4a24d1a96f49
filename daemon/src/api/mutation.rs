//! The mutation root: run now, re-sync, delete data, mute and unmute, make
//! and end maintenance windows, reload config, retry an alert delivery,
//! test and enable an alert channel. Each checks the role and tenant scope, acts through the service or
//! the store, and leaves an audit entry naming the token that did it.
//! Mistakes a user can fix come back as `userErrors` with field and code;
//! failures of the daemon itself as GraphQL errors.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::error::{Code, error, store_error};
use super::ids::{self, Target};
use super::types::{
    AlertChannelNode, AlertChannelTest, AlertDeliveryNode, CheckNode, Long, Result, WindowNode,
    alert_channel, alert_delivery, channel_test, long, window_node,
};
use super::view::View;
use super::{State, state, view};
use crate::config::Role;
use crate::health::{EntityRef, Mute, Scope};
use crate::plugin::DeleteScope;
use crate::reload::ReloadError;
use crate::scheduler::{RunNow, SchedulerError};
use crate::service::{Action, ActionError, Retried, WindowError};
use crate::store::{AuditEntry, DataScope, WindowRow, entity_key};

/// Largest number of ids one resync may name.
const MAX_RESYNC_IDS: usize = 10_000;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UserErrorCode {
    /// The id names nothing this token can see.
    NotFound,
    /// The value is not acceptable (see the message).
    Invalid,
    /// The connector does not implement the action.
    Unsupported,
    /// The check is running already; the run asked for was not queued.
    AlreadyRunning,
    /// The plugin or the monitored system refused or failed.
    ActionFailed,
}

/// A mistake in the input, with the path of the input field it concerns.
#[derive(SimpleObject, Clone)]
pub struct UserError {
    pub field: Vec<String>,
    pub code: UserErrorCode,
    pub message: String,
}

fn user_error(field: &str, code: UserErrorCode, message: impl Into<String>) -> UserError {
    UserError {
        field: vec!["input".to_owned(), field.to_owned()],
        code,
        message: message.into(),
    }
}

/// The entity `id` names, if visible; otherwise a NOT_FOUND user error on
/// `field`.
fn entity(view: &View, id: &ID, field: &str) -> std::result::Result<EntityRef, UserError> {
    match ids::decode(id) {
        Some(Target::Entity(e)) if view.sees(&e) => Ok(e),
        _ => Err(user_error(
            field,
            UserErrorCode::NotFound,
            format!("no entity with id {}", id.as_str()),
        )),
    }
}

async fn audit(
    ctx: &Context<'_>,
    view: &View,
    action: &str,
    target: String,
    detail: serde_json::Value,
) -> Result<()> {
    let state = state(ctx);
    state
        .store
        .audit(&entry(state, view, action, target, detail))
        .await
        .map_err(|e| store_error(&e))?;
    // After the change and its record are stored, so no answer kept in
    // between can look current.
    state.cache.mutated();
    Ok(())
}

fn entry(
    state: &State,
    view: &View,
    action: &str,
    target: String,
    detail: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        at: state.clock.now(),
        actor: view.principal.name.clone(),
        action: action.to_owned(),
        target,
        detail: detail.to_string(),
    }
}

#[derive(InputObject)]
pub struct RunCheckInput {
    pub check_id: ID,
}

#[derive(SimpleObject)]
pub struct RunCheckPayload {
    pub check: Option<CheckNode>,
    /// A run was queued; it is stored when it finishes (see `runCompleted`).
    pub queued: bool,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct ResyncInput {
    pub asset_id: ID,
    /// The records to send again; all of the asset when absent or empty.
    pub ids: Option<Vec<String>>,
}

#[derive(SimpleObject, Default)]
pub struct ActionPayload {
    /// What the connector reports it affected.
    pub affected: Option<Long>,
    pub message: Option<String>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct DeleteDataInput {
    /// Delete everything stored for this tenant's flows...
    pub tenant_id: Option<ID>,
    /// ...or for this one asset. Exactly one of the two.
    pub asset_id: Option<ID>,
    /// Also call the connector's `delete` action on the monitored system.
    #[graphql(default = false)]
    pub in_source: bool,
}

#[derive(SimpleObject, Default)]
pub struct DeletedCounts {
    pub observations: Long,
    pub errors: Long,
    pub id_sets: Long,
    pub reconciliations: Long,
    pub missing_ids: Long,
}

#[derive(SimpleObject, Default)]
pub struct DeleteDataPayload {
    pub deleted: Option<DeletedCounts>,
    /// What the connectors' `delete` actions report they affected.
    pub source_affected: Option<Long>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct MuteInput {
    pub entity_id: ID,
    pub until: DateTime<Utc>,
    pub reason: String,
}

#[derive(InputObject)]
pub struct UnmuteInput {
    pub entity_id: ID,
}

#[derive(SimpleObject, Default)]
pub struct MutePayload {
    pub entity_id: Option<ID>,
    pub muted: bool,
    pub user_errors: Vec<UserError>,
}

/// Which entities a window covers: globs (`*` any run, `?` one character)
/// on each level; it covers the entities at and below the deepest level
/// named.
#[derive(InputObject, Default)]
pub struct MaintenanceScopeInput {
    pub tenant: Option<String>,
    pub flow: Option<String>,
    pub system: Option<String>,
    pub check: Option<String>,
    pub asset: Option<String>,
}

#[derive(InputObject)]
pub struct CreateMaintenanceWindowInput {
    /// Unique among all windows; one is made up when absent.
    pub name: Option<String>,
    pub scope: MaintenanceScopeInput,
    /// Now when absent.
    pub start: Option<DateTime<Utc>>,
    pub end: DateTime<Utc>,
    pub reason: String,
}

#[derive(InputObject)]
pub struct EndMaintenanceWindowInput {
    pub name: String,
}

#[derive(SimpleObject, Default)]
pub struct MaintenanceWindowPayload {
    pub window: Option<WindowNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct ReloadConfigPayload {
    /// Check keys added, removed and changed by the reload.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct RetryDeliveryInput {
    /// The delivery's id (its message id).
    pub id: ID,
}

#[derive(SimpleObject, Default)]
pub struct RetryDeliveryPayload {
    /// The delivery, now pending and due.
    pub delivery: Option<AlertDeliveryNode>,
    /// Set when the delivery cannot go out yet: its channel is disabled (a
    /// receiver said its destination is gone) and the delivery waits until
    /// `enableAlertChannel` or a change of the channel's definition.
    pub warning: Option<String>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct AlertChannelInput {
    /// The channel's name in `[[alerts.channels]]`.
    pub name: String,
}

#[derive(SimpleObject, Default)]
pub struct TestAlertChannelPayload {
    pub test: Option<AlertChannelTest>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject, Default)]
pub struct EnableAlertChannelPayload {
    pub channel: Option<AlertChannelNode>,
    pub user_errors: Vec<UserError>,
}

/// Channels carry every tenant's alerts their routes send: acting on one is
/// not a tenant's to do.
fn channel_scope(view: &View) -> Result<()> {
    if view.tenant_scope().is_some() {
        return Err(error(
            Code::Forbidden,
            "alert channels span tenants: this needs a token without a tenant scope",
        ));
    }
    Ok(())
}

/// The delivery with message `id`, if `view` may see it.
async fn visible_delivery(
    state: &State,
    view: &View,
    id: &str,
) -> Result<Option<AlertDeliveryNode>> {
    let record = (state.store.alert_delivery(id).await).map_err(|e| store_error(&e))?;
    Ok(record.and_then(|r| alert_delivery(view, r)))
}

fn no_channel(name: &str) -> UserError {
    user_error(
        "name",
        UserErrorCode::NotFound,
        format!("no alert channel {name:?} is configured"),
    )
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Runs a check now, outside its schedule (operator).
    async fn run_check(&self, ctx: &Context<'_>, input: RunCheckInput) -> Result<RunCheckPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        let check = match entity(view, &input.check_id, "checkId") {
            Ok(EntityRef::Check(c)) => c,
            Ok(_) => {
                let e = user_error("checkId", UserErrorCode::Invalid, "not a check id");
                return Ok(not_queued(None, e));
            }
            Err(e) => return Ok(not_queued(None, e)),
        };
        let node = view.index.check(&check).map(CheckNode::new);
        match state(ctx).service.run_now(&check) {
            Ok(RunNow::Queued) => {
                audit(
                    ctx,
                    view,
                    "run_now",
                    entity_key(&EntityRef::Check(check)),
                    json!({}),
                )
                .await?;
                Ok(RunCheckPayload {
                    check: node,
                    queued: true,
                    user_errors: Vec::new(),
                })
            }
            Ok(RunNow::AlreadyRunning) => Ok(not_queued(
                node,
                user_error(
                    "checkId",
                    UserErrorCode::AlreadyRunning,
                    "the check is running now; ask again when it finishes",
                ),
            )),
            Err(SchedulerError::UnknownCheck(_)) => Ok(not_queued(
                node,
                user_error(
                    "checkId",
                    UserErrorCode::NotFound,
                    "the check is not scheduled (was the config just reloaded?)",
                ),
            )),
            Err(SchedulerError::ShuttingDown) => {
                Err(error(Code::Unavailable, "the daemon is shutting down"))
            }
        }
    }

    /// Asks the monitored system, through the connector's `resync` action, to
    /// send an asset's records again (operator).
    async fn resync(&self, ctx: &Context<'_>, input: ResyncInput) -> Result<ActionPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        let (check, asset) = match entity(view, &input.asset_id, "assetId") {
            Ok(EntityRef::Asset { check, asset }) => (check, asset),
            Ok(_) => {
                return Ok(failed(user_error(
                    "assetId",
                    UserErrorCode::Invalid,
                    "not an asset id",
                )));
            }
            Err(e) => return Ok(failed(e)),
        };
        let ids = input.ids.unwrap_or_default();
        if ids.len() > MAX_RESYNC_IDS {
            return Ok(failed(user_error(
                "ids",
                UserErrorCode::Invalid,
                format!("at most {MAX_RESYNC_IDS} ids per resync, not {}", ids.len()),
            )));
        }
        let target = entity_key(&EntityRef::Asset {
            check: check.clone(),
            asset: asset.clone(),
        });
        let action = Action::Resync {
            asset,
            ids: ids.clone(),
        };
        let outcome = state(ctx).service.act(&check, action).await;
        let payload = action_payload(outcome, "assetId");
        let detail = json!({
            "ids": ids.len(),
            "affected": payload.affected.map(|l| l.0),
            "error": payload.user_errors.first().map(|e| e.message.clone()),
        });
        audit(ctx, view, "resync", target, detail).await?;
        Ok(payload)
    }

    /// Deletes what Tributary stored for a tenant or an asset (observations,
    /// errors, id sets, reconciliations, missing ids) and, with `inSource`,
    /// asks the connectors to delete it in the monitored systems (admin).
    async fn delete_data(
        &self,
        ctx: &Context<'_>,
        input: DeleteDataInput,
    ) -> Result<DeleteDataPayload> {
        let view = view(ctx)?;
        view.require(Role::Admin)?;
        let refuse = |e: UserError| DeleteDataPayload {
            user_errors: vec![e],
            ..Default::default()
        };
        let (target, scope, actions) = match (&input.tenant_id, &input.asset_id) {
            (Some(id), None) => match entity(view, id, "tenantId") {
                Ok(EntityRef::Tenant(t)) => tenant_scope(view, &t),
                Ok(_) => {
                    return Ok(refuse(user_error(
                        "tenantId",
                        UserErrorCode::Invalid,
                        "not a tenant id",
                    )));
                }
                Err(e) => return Ok(refuse(e)),
            },
            (None, Some(id)) => match entity(view, id, "assetId") {
                Ok(EntityRef::Asset { check, asset }) => asset_scope(view, &check, &asset),
                Ok(_) => {
                    return Ok(refuse(user_error(
                        "assetId",
                        UserErrorCode::Invalid,
                        "not an asset id",
                    )));
                }
                Err(e) => return Ok(refuse(e)),
            },
            _ => {
                return Ok(refuse(user_error(
                    "tenantId",
                    UserErrorCode::Invalid,
                    "give exactly one of tenantId and assetId",
                )));
            }
        };
        let state = state(ctx);
        let mut source_affected = None;
        if input.in_source {
            // Every connector involved must support delete before anything goes.
            let loaded = &view.index.loaded;
            for (check, _, _) in &actions {
                let connector = view.index.check(check).map(|c| c.connector.as_str());
                let supported = connector
                    .and_then(|c| loaded.plugins.get(c))
                    .is_some_and(|p| {
                        p.descriptor()
                            .capabilities
                            .contains(crate::plugin::Capabilities::DELETE)
                    });
                if !supported {
                    return Ok(refuse(user_error(
                        "inSource",
                        UserErrorCode::Unsupported,
                        format!(
                            "connector {} of check {check} does not implement delete; nothing was deleted",
                            connector.unwrap_or("?")
                        ),
                    )));
                }
            }
            let mut affected = 0u64;
            for (check, asset, scope) in actions {
                let assets = match asset {
                    Some(a) => vec![a],
                    None => state
                        .store
                        .health(&EntityRef::Check(check.clone()))
                        .await
                        .map_err(|e| store_error(&e))?
                        .map(|h| h.assets.into_iter().collect())
                        .unwrap_or_default(),
                };
                for asset in assets {
                    let action = Action::Delete {
                        asset,
                        scope: scope.clone(),
                    };
                    let e = match state.service.act(&check, action).await {
                        Ok(outcome) => {
                            affected += outcome.affected.unwrap_or(0);
                            continue;
                        }
                        Err(e) => e,
                    };
                    let detail = json!({"in_source": true, "error": e.to_string()});
                    audit(ctx, view, "delete_data", target.clone(), detail).await?;
                    return Ok(refuse(user_error(
                        "inSource",
                        UserErrorCode::ActionFailed,
                        format!("check {check}: {e}; stored data was kept"),
                    )));
                }
            }
            source_affected = Some(long(affected));
        }
        let detail = json!({
            "in_source": input.in_source,
            "source_affected": source_affected.map(|l| l.0),
        });
        let deleted = state
            .store
            .delete_data(&scope, &entry(state, view, "delete_data", target, detail))
            .await
            .map_err(|e| store_error(&e))?;
        state.cache.mutated();
        Ok(DeleteDataPayload {
            deleted: Some(DeletedCounts {
                observations: long(deleted.observations),
                errors: long(deleted.errors),
                id_sets: long(deleted.id_sets),
                reconciliations: long(deleted.reconciliations),
                missing_ids: long(deleted.missing_ids),
            }),
            source_affected,
            user_errors: Vec::new(),
        })
    }

    /// Mutes an entity until a time: health is still computed and events
    /// still written, marked muted, so alerts can hold (operator).
    async fn mute(&self, ctx: &Context<'_>, input: MuteInput) -> Result<MutePayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        let now = state(ctx).clock.now();
        let until: std::time::SystemTime = input.until.into();
        if until <= now {
            return Ok(mute_refused(user_error(
                "until",
                UserErrorCode::Invalid,
                "until must be in the future",
            )));
        }
        if input.reason.trim().is_empty() {
            return Ok(mute_refused(user_error(
                "reason",
                UserErrorCode::Invalid,
                "say why it is muted",
            )));
        }
        let mute = Mute {
            until,
            reason: input.reason,
        };
        set_mute(ctx, view, &input.entity_id, Some(mute)).await
    }

    /// Lifts a mute (operator).
    async fn unmute(&self, ctx: &Context<'_>, input: UnmuteInput) -> Result<MutePayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        set_mute(ctx, view, &input.entity_id, None).await
    }

    /// Makes a one-off maintenance window (operator): while it covers an
    /// entity, the entity's health events are recorded marked with the
    /// window's name and send no alert; an entity still not HEALTHY when it
    /// ends is announced once. A token with a tenant scope makes windows of
    /// its tenant only.
    async fn create_maintenance_window(
        &self,
        ctx: &Context<'_>,
        input: CreateMaintenanceWindowInput,
    ) -> Result<MaintenanceWindowPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        let state = state(ctx);
        let now = state.clock.now();
        let start = input.start.map_or(now, Into::into);
        let end: std::time::SystemTime = input.end.into();
        let refuse = |field: &str, message: String| {
            Ok(window_refused(user_error(
                field,
                UserErrorCode::Invalid,
                message,
            )))
        };
        if end <= start.max(now) {
            return refuse(
                "end",
                "end must be after the start and in the future".into(),
            );
        }
        if input.reason.trim().is_empty() {
            return refuse("reason", "say why there is maintenance".into());
        }
        let name = match input.name {
            Some(n) if n.trim().is_empty() => {
                return refuse("name", "name may not be empty".into());
            }
            Some(n) => n,
            None => format!("maintenance-{}", crate::store::to_ms(now)),
        };
        let s = input.scope;
        let mut scope = Scope {
            tenant: s.tenant,
            flow: s.flow,
            system: s.system,
            check: s.check,
            asset: s.asset,
        };
        if let Some(own) = view.tenant_scope() {
            match scope.tenant.as_deref() {
                None => scope.tenant = Some(own.to_owned()),
                Some(t) if t == own => {}
                Some(_) => {
                    return refuse(
                        "scope",
                        format!("this token may make windows of tenant {own:?} only"),
                    );
                }
            }
        }
        if scope == Scope::default() {
            return refuse(
                "scope",
                "name at least one of tenant, flow, system, check or asset (\"*\" is all)".into(),
            );
        }
        let row = WindowRow {
            name,
            reason: input.reason,
            scope,
            start,
            end,
            created_by: view.principal.name.clone(),
            created_at: now,
        };
        let made = state
            .service
            .create_window(row.clone(), &view.principal.name)
            .await;
        state.cache.mutated();
        window_answer(state, made.map(|()| row))
    }

    /// Ends a window made through the API now (operator); entities it held
    /// back that are still not HEALTHY are announced.
    async fn end_maintenance_window(
        &self,
        ctx: &Context<'_>,
        input: EndMaintenanceWindowInput,
    ) -> Result<MaintenanceWindowPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        let state = state(ctx);
        if let Some(own) = view.tenant_scope() {
            let visible = state
                .service
                .maintenance_windows()
                .iter()
                .any(|w| w.name == input.name && w.scope.tenant.as_deref() == Some(own));
            if !visible {
                let e = WindowError::NotFound(input.name);
                return Ok(window_refused(user_error(
                    "name",
                    UserErrorCode::NotFound,
                    e.to_string(),
                )));
            }
        }
        let ended = state
            .service
            .end_window(&input.name, &view.principal.name)
            .await;
        state.cache.mutated();
        window_answer(state, ended)
    }

    /// Makes an alert delivery that is pending, refused or given up due now
    /// under the same id (operator): the dispatcher, woken, sends it at
    /// once. A token with a tenant scope retries its tenant's deliveries.
    /// One more attempt: past the give-up age, a failure gives it up again.
    /// If its channel is disabled (a receiver answered 410), it waits, and
    /// `warning` says so and how to enable the channel.
    async fn retry_delivery(
        &self,
        ctx: &Context<'_>,
        input: RetryDeliveryInput,
    ) -> Result<RetryDeliveryPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        let state = state(ctx);
        let refuse = |code, message: String| {
            Ok(RetryDeliveryPayload {
                user_errors: vec![user_error("id", code, message)],
                ..RetryDeliveryPayload::default()
            })
        };
        let id = input.id.as_str();
        let Some(found) = visible_delivery(state, view, id).await? else {
            return refuse(UserErrorCode::NotFound, format!("no delivery with id {id}"));
        };
        if found.status == super::types::AlertDeliveryStatus::Delivered {
            return refuse(UserErrorCode::Invalid, "it was delivered already".into());
        }
        let retried = state
            .service
            .retry_delivery(id, &view.principal.name)
            .await
            .map_err(|e| error(Code::Unavailable, e.to_string()))?;
        state.cache.mutated();
        let warning = match retried {
            Retried::No => {
                return refuse(UserErrorCode::Invalid, "it was delivered already".into());
            }
            Retried::Due => None,
            Retried::Held { channel } => Some(format!(
                "channel {channel:?} is disabled (a receiver said its destination is gone): \
                 the delivery waits until enableAlertChannel(input: {{name: {channel:?}}}) \
                 or a change of the channel's definition"
            )),
        };
        Ok(RetryDeliveryPayload {
            delivery: visible_delivery(state, view, id).await?,
            warning,
            user_errors: Vec::new(),
        })
    }

    /// Sends a test message through an alert channel and reports what the
    /// receiver answered (operator): status, the first bytes of the body,
    /// latency, or the connection error. Nothing is stored but the audit
    /// entry; the channel's state (rate, disabled) is untouched. PagerDuty
    /// gets a trigger, then its resolve.
    async fn test_alert_channel(
        &self,
        ctx: &Context<'_>,
        input: AlertChannelInput,
    ) -> Result<TestAlertChannelPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        channel_scope(view)?;
        let tested = state(ctx)
            .service
            .test_alert_channel(&input.name, &view.principal.name)
            .await
            .map_err(|e| error(Code::Unavailable, e.to_string()))?;
        // Its audit entry is new: no kept answer of the audit log is current.
        state(ctx).cache.mutated();
        Ok(match tested {
            Some(test) => TestAlertChannelPayload {
                test: Some(channel_test(test)),
                user_errors: Vec::new(),
            },
            None => TestAlertChannelPayload {
                test: None,
                user_errors: vec![no_channel(&input.name)],
            },
        })
    }

    /// Enables an alert channel a receiver disabled (operator); its pending
    /// messages go out at once (the dispatcher is woken). (Changing the
    /// channel's definition and reloading does the same.)
    async fn enable_alert_channel(
        &self,
        ctx: &Context<'_>,
        input: AlertChannelInput,
    ) -> Result<EnableAlertChannelPayload> {
        let view = view(ctx)?;
        view.require(Role::Operator)?;
        channel_scope(view)?;
        let state = state(ctx);
        let config = view.index.config();
        let Some(channel) = config.alerts.channel(&input.name) else {
            return Ok(EnableAlertChannelPayload {
                channel: None,
                user_errors: vec![no_channel(&input.name)],
            });
        };
        let enabled = state
            .service
            .enable_alert_channel(&input.name, &view.principal.name)
            .await
            .map_err(|e| error(Code::Unavailable, e.to_string()))?;
        state.cache.mutated();
        let mut user_errors = Vec::new();
        if !enabled {
            let e = user_error(
                "name",
                UserErrorCode::Invalid,
                "the channel is not disabled",
            );
            user_errors.push(e);
        }
        let disabled = state.service.channel_disabled(&input.name);
        Ok(EnableAlertChannelPayload {
            channel: Some(alert_channel(view, channel, disabled)),
            user_errors,
        })
    }

    /// Reads the config file again and swaps it in if it is valid; otherwise
    /// the running config stays and the errors come back (admin).
    async fn reload_config(&self, ctx: &Context<'_>) -> Result<ReloadConfigPayload> {
        let view = view(ctx)?;
        view.require(Role::Admin)?;
        if view.tenant_scope().is_some() {
            return Err(error(
                Code::Forbidden,
                "the config spans tenants: reloading it needs a token without a tenant scope",
            ));
        }
        let state = state(ctx);
        let result = state.reloader.reload(&state.service).await;
        let (payload, detail) = match result {
            Ok(s) => {
                let detail = json!({"added": s.added, "removed": s.removed, "changed": s.changed});
                (
                    ReloadConfigPayload {
                        added: s.added,
                        removed: s.removed,
                        changed: s.changed,
                        user_errors: Vec::new(),
                    },
                    detail,
                )
            }
            Err(ReloadError::Service(_)) => {
                return Err(error(Code::Unavailable, "the daemon is shutting down"));
            }
            Err(e) => {
                let message = e.to_string();
                (
                    ReloadConfigPayload {
                        user_errors: vec![UserError {
                            field: vec!["config".to_owned()],
                            code: UserErrorCode::Invalid,
                            message: message.clone(),
                        }],
                        ..Default::default()
                    },
                    json!({"error": message}),
                )
            }
        };
        let file = state.reloader.status().file.display().to_string();
        audit(ctx, view, "reload_config", format!("config:{file}"), detail).await?;
        Ok(payload)
    }
}

fn not_queued(check: Option<CheckNode>, e: UserError) -> RunCheckPayload {
    RunCheckPayload {
        check,
        queued: false,
        user_errors: vec![e],
    }
}

fn failed(e: UserError) -> ActionPayload {
    ActionPayload {
        user_errors: vec![e],
        ..Default::default()
    }
}

fn window_refused(e: UserError) -> MaintenanceWindowPayload {
    MaintenanceWindowPayload {
        window: None,
        user_errors: vec![e],
    }
}

/// The payload of a made or ended window: the window, a user error, or (the
/// daemon stopping, the database failing) a GraphQL error.
fn window_answer(
    state: &State,
    result: std::result::Result<WindowRow, WindowError>,
) -> Result<MaintenanceWindowPayload> {
    let (code, e) = match result {
        Ok(row) => {
            let window = crate::health::Window {
                name: row.name,
                reason: row.reason,
                scope: row.scope,
                when: crate::health::When::Once {
                    start: row.start,
                    end: row.end,
                },
            };
            return Ok(MaintenanceWindowPayload {
                window: Some(window_node(state, window)),
                user_errors: Vec::new(),
            });
        }
        Err(e @ (WindowError::NotFound(_) | WindowError::FromConfig(_))) => {
            (UserErrorCode::NotFound, e)
        }
        Err(e @ (WindowError::NameTaken(_) | WindowError::Over(_))) => (UserErrorCode::Invalid, e),
        Err(e) => return Err(error(Code::Unavailable, e.to_string())),
    };
    Ok(window_refused(user_error("name", code, e.to_string())))
}

fn mute_refused(e: UserError) -> MutePayload {
    MutePayload {
        user_errors: vec![e],
        ..Default::default()
    }
}

fn action_payload(
    outcome: std::result::Result<crate::plugin::ActionOutcome, ActionError>,
    field: &str,
) -> ActionPayload {
    match outcome {
        Ok(o) => ActionPayload {
            affected: o.affected.map(long),
            message: o.message,
            user_errors: Vec::new(),
        },
        Err(e) => {
            let code = match e {
                ActionError::Unsupported { .. } => UserErrorCode::Unsupported,
                ActionError::UnknownCheck(_) => UserErrorCode::NotFound,
                ActionError::Failed(_) => UserErrorCode::ActionFailed,
            };
            failed(user_error(field, code, e.to_string()))
        }
    }
}

async fn set_mute(
    ctx: &Context<'_>,
    view: &View,
    id: &ID,
    mute: Option<Mute>,
) -> Result<MutePayload> {
    let entity = match entity(view, id, "entityId") {
        Ok(e) => e,
        Err(e) => return Ok(mute_refused(e)),
    };
    let muting = mute.is_some();
    let done = state(ctx)
        .service
        .mute(entity.clone(), mute, &view.principal.name)
        .await
        .map_err(|e| error(Code::Unavailable, e.to_string()))?;
    state(ctx).cache.mutated();
    if !done {
        return Ok(mute_refused(user_error(
            "entityId",
            UserErrorCode::Invalid,
            "the entity has no health yet; mute it once it has been evaluated",
        )));
    }
    Ok(MutePayload {
        entity_id: Some(ids::entity_id(&entity)),
        muted: muting,
        user_errors: Vec::new(),
    })
}

/// Plugin delete actions of one check: on one asset, or (`None`) on every
/// asset its runs have reported.
type SourceDelete = (String, Option<String>, DeleteScope);

/// What a tenant's data is: its flows, their systems, the checks on those,
/// and per check and known asset the plugin delete of the tenant's part.
fn tenant_scope(view: &View, tenant: &str) -> (String, DataScope, Vec<SourceDelete>) {
    let index = &view.index;
    let mut scope = DataScope::default();
    for flow in index.flows_of(tenant) {
        scope.flows.push(flow.id.clone());
        for s in std::iter::once(&flow.upstream).chain(&flow.downstream) {
            if !scope.systems.contains(s) {
                scope.systems.push(s.clone());
            }
        }
    }
    for s in &scope.systems {
        scope
            .checks
            .extend(index.checks_of(s).map(|c| c.id.clone()));
    }
    let actions = scope
        .checks
        .iter()
        .map(|c| (c.clone(), None, DeleteScope::Tenant(tenant.to_owned())))
        .collect();
    (
        entity_key(&EntityRef::Tenant(tenant.to_owned())),
        scope,
        actions,
    )
}

fn asset_scope(view: &View, check: &str, asset: &str) -> (String, DataScope, Vec<SourceDelete>) {
    let index = &view.index;
    let system = index
        .check(check)
        .map(|c| c.system.clone())
        .unwrap_or_default();
    let scope = DataScope {
        checks: vec![check.to_owned()],
        flows: index.flows_with(&system).map(|f| f.id.clone()).collect(),
        systems: vec![system],
        asset: Some(asset.to_owned()),
    };
    let target = entity_key(&EntityRef::Asset {
        check: check.to_owned(),
        asset: asset.to_owned(),
    });
    (
        target,
        scope,
        vec![(check.to_owned(), Some(asset.to_owned()), DeleteScope::Asset)],
    )
}

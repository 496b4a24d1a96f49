//! The daemon's own objects: loaded connectors, plugin files that failed,
//! its status, and `node(id:)`.

use super::*;

/// What one `configSchema` counts in the complexity limit: a connector's
/// schema is hundreds of bytes to kilobytes of JSON (the example's 680), where
/// a plain field is tens of bytes.
const CONFIG_SCHEMA_COST: usize = 500;

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
    /// The SHA-256 (lowercase hex) of the `.wasm` file it was loaded from:
    /// what a check's `plugin_sha256` pins.
    pub sha256: String,
    /// The file it was loaded from.
    pub file: String,
    #[graphql(skip)]
    pub schema: String,
}

#[ComplexObject]
impl Connector {
    /// JSON Schema of its config (secret fields carry `x-secret: true`).
    // Kilobytes of JSON: counted as CONFIG_SCHEMA_COST fields.
    #[graphql(complexity = "CONFIG_SCHEMA_COST")]
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
            sha256: p.sha256().to_owned(),
            file: p.path().display().to_string(),
            schema: d.config_schema.clone(),
        }
    }
}

/// A plugin file that did not load. Checks naming its connector stay
/// configured; their runs fail with this reason.
#[derive(SimpleObject)]
pub struct FailedPlugin {
    pub file: String,
    /// The name it gave itself, when it got as far as saying it.
    pub name: Option<String>,
    pub error: String,
}

impl From<&crate::plugin::FailedPlugin> for FailedPlugin {
    fn from(f: &crate::plugin::FailedPlugin) -> Self {
        FailedPlugin {
            file: f.file.display().to_string(),
            name: f.name.clone(),
            error: f.error.clone(),
        }
    }
}

#[derive(SimpleObject)]
pub struct ConfigStatus {
    /// The config file in force.
    pub file: String,
    pub loaded_at: DateTime<Utc>,
    pub last_reload_attempt_at: Option<DateTime<Utc>>,
    /// Why the latest reload was refused; null once one succeeds, and for a
    /// tenant-scoped token (the errors name any tenant's checks).
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
    /// Checks running now (a tenant-scoped token's: its tenant's).
    pub running_checks: i32,
    /// Plugin files in the plugin folder that did not load (the config in
    /// force was loaded with these missing); for a tenant-scoped token, those
    /// its checks name as their connector.
    pub failed_plugins: Vec<FailedPlugin>,
}

/// The node of `entity`, if it exists and the view may see it.
pub fn entity_node(view: &View, entity: &EntityRef) -> Option<Node> {
    if !view.sees(entity) {
        return None;
    }
    let index = &view.index;
    match entity.clone() {
        EntityRef::Tenant(t) => index.tenant(&t).cloned().map(|t| TenantNode(t).into()),
        EntityRef::Flow(f) => index.flow(&f).cloned().map(|f| FlowNode(f).into()),
        EntityRef::System(s) => index.system(&s).cloned().map(|s| SystemNode(s).into()),
        EntityRef::Check(c) => index.check(&c).map(|c| CheckNode::new(c).into()),
        EntityRef::Asset { check, asset } => index.check(&check).cloned().map(|c| {
            AssetNode {
                check: c.id,
                system: c.system,
                asset,
            }
            .into()
        }),
    }
}

/// The node `id` names, if the view may see it.
pub async fn node(ctx: &Context<'_>, id: &ID) -> Result<Option<Node>> {
    let view = view(ctx)?;
    let Some(target) = ids::decode(id) else {
        return Ok(None);
    };
    Ok(match target {
        Target::Entity(e) => entity_node(view, &e),
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

//! Health events: the object and the filter (checked against the view);
//! reading them from the store is [`super::super::replay`]'s.

use super::*;

/// A change of an entity's health.
pub struct HealthEventNode(pub Arc<HealthEvent>);

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
    /// The maintenance window the entity was in: the change is recorded, no
    /// alert is sent for it.
    async fn maintenance(&self) -> Option<&str> {
        self.0.maintenance.as_deref()
    }
    /// The failing upstream system whose alert covers this change ("also
    /// affected"); null when this entity alerts on its own.
    async fn suppressed_by(&self) -> Option<ID> {
        self.0.suppressed_by.as_ref().map(ids::entity_id)
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

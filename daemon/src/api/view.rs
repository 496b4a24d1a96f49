//! Who is asking and what they may see: bearer tokens to principals, and the
//! config in force indexed so a resolver finds a flow's systems or a system's
//! checks without scanning.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::error::{Code, error};
use crate::config::{ApiToken, Check, Config, Flow, Role, System, Tenant};
use crate::health::EntityRef;
use crate::service::Loaded;

/// The holder of a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name: the actor in the audit log.
    pub name: String,
    pub role: Role,
    /// Sees only this tenant when set.
    pub tenant: Option<String>,
}

/// The principal `token` (the bearer value) stands for, if the config lists
/// its hash.
pub fn authenticate(tokens: &[ApiToken], token: &str) -> Option<Principal> {
    by_hash(tokens, &hash(token))
}

/// The SHA-256 of `token` in lowercase hex, as the config lists tokens.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// The principal of the token whose hash is `sha256`, if the config lists it.
pub fn by_hash(tokens: &[ApiToken], sha256: &str) -> Option<Principal> {
    tokens
        .iter()
        .find(|t| t.sha256 == sha256)
        .map(|t| Principal {
            name: t.name.clone(),
            role: t.role,
            tenant: t.tenant.clone(),
        })
}

/// The token in an `Authorization: Bearer ...` value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The config in force, with lookups by id and who belongs to whom.
pub struct Index {
    pub loaded: Arc<Loaded>,
    tenants: HashMap<String, usize>,
    flows: HashMap<String, usize>,
    systems: HashMap<String, usize>,
    checks: HashMap<String, usize>,
    flows_of_tenant: HashMap<String, Vec<usize>>,
    checks_of_system: HashMap<String, Vec<usize>>,
    tenants_of_system: HashMap<String, BTreeSet<String>>,
}

fn positions<T>(items: &[T], id: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| (id(t).to_owned(), i))
        .collect()
}

impl Index {
    pub fn new(loaded: Arc<Loaded>) -> Self {
        let c = &loaded.config;
        let mut flows_of_tenant: HashMap<String, Vec<usize>> = HashMap::new();
        let mut tenants_of_system: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (i, f) in c.flows.iter().enumerate() {
            flows_of_tenant.entry(f.tenant.clone()).or_default().push(i);
            for s in std::iter::once(&f.upstream).chain(&f.downstream) {
                tenants_of_system
                    .entry(s.clone())
                    .or_default()
                    .insert(f.tenant.clone());
            }
        }
        let mut checks_of_system: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, ch) in c.checks.iter().enumerate() {
            checks_of_system
                .entry(ch.system.clone())
                .or_default()
                .push(i);
        }
        Index {
            tenants: positions(&c.tenants, |t| &t.id),
            flows: positions(&c.flows, |f| &f.id),
            systems: positions(&c.systems, |s| &s.id),
            checks: positions(&c.checks, |ch| &ch.id),
            flows_of_tenant,
            checks_of_system,
            tenants_of_system,
            loaded,
        }
    }

    pub fn config(&self) -> &Config {
        &self.loaded.config
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.get(id).map(|&i| &self.config().tenants[i])
    }

    pub fn flow(&self, id: &str) -> Option<&Flow> {
        self.flows.get(id).map(|&i| &self.config().flows[i])
    }

    pub fn system(&self, id: &str) -> Option<&System> {
        self.systems.get(id).map(|&i| &self.config().systems[i])
    }

    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.get(id).map(|&i| &self.config().checks[i])
    }

    pub fn flows_of(&self, tenant: &str) -> impl Iterator<Item = &Flow> {
        self.flows_of_tenant
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|&i| &self.config().flows[i])
    }

    pub fn checks_of(&self, system: &str) -> impl Iterator<Item = &Check> {
        self.checks_of_system
            .get(system)
            .into_iter()
            .flatten()
            .map(|&i| &self.config().checks[i])
    }

    /// The flows a system takes part in, in config order.
    pub fn flows_with(&self, system: &str) -> impl Iterator<Item = &Flow> {
        self.config()
            .flows
            .iter()
            .filter(move |f| f.upstream == system || f.downstream.iter().any(|d| d == system))
    }

    /// Whether `entity` exists in the config and belongs to `tenant` (for a
    /// system: takes part in one of its flows; for a check or asset: watches
    /// such a system). With no tenant, whether it exists.
    pub fn within(&self, entity: &EntityRef, tenant: Option<&str>) -> bool {
        let system_in = |system: &str| match tenant {
            None => self.systems.contains_key(system),
            Some(t) => self
                .tenants_of_system
                .get(system)
                .is_some_and(|ts| ts.contains(t)),
        };
        match entity {
            EntityRef::Tenant(id) => {
                self.tenants.contains_key(id) && tenant.is_none_or(|t| t == id)
            }
            EntityRef::Flow(id) => self
                .flow(id)
                .is_some_and(|f| tenant.is_none_or(|t| t == f.tenant)),
            EntityRef::System(id) => system_in(id),
            EntityRef::Check(id) | EntityRef::Asset { check: id, .. } => {
                self.check(id).is_some_and(|c| system_in(&c.system))
            }
        }
    }

    /// Whether `entity` is part of `flow`: the flow itself, its systems, their
    /// checks and assets.
    pub fn in_flow(&self, entity: &EntityRef, flow: &Flow) -> bool {
        let has = |s: &str| flow.upstream == s || flow.downstream.iter().any(|d| d == s);
        match entity {
            EntityRef::Tenant(_) => false,
            EntityRef::Flow(id) => *id == flow.id,
            EntityRef::System(id) => has(id),
            EntityRef::Check(id) | EntityRef::Asset { check: id, .. } => {
                self.check(id).is_some_and(|c| has(&c.system))
            }
        }
    }
}

/// One request's (or one subscription's) principal and the config snapshot
/// it is answered from.
#[derive(Clone)]
pub struct View {
    pub principal: Principal,
    pub index: Arc<Index>,
}

impl View {
    /// Refuses unless the principal's role is at least `role`.
    pub fn require(&self, role: Role) -> async_graphql::Result<()> {
        if self.principal.role >= role {
            Ok(())
        } else {
            Err(error(
                Code::Forbidden,
                format!(
                    "token {:?} has role {}; this needs {}",
                    self.principal.name,
                    self.principal.role.as_str(),
                    role.as_str()
                ),
            ))
        }
    }

    pub fn tenant_scope(&self) -> Option<&str> {
        self.principal.tenant.as_deref()
    }

    /// Whether the principal may see `entity` (it exists and is in scope).
    pub fn sees(&self, entity: &EntityRef) -> bool {
        self.index.within(entity, self.tenant_scope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_by_hash_and_bearer_is_parsed() {
        let tokens = vec![ApiToken {
            name: "ci".into(),
            sha256: hex::encode(Sha256::digest(b"s3cret")),
            role: Role::Operator,
            tenant: Some("acme".into()),
        }];
        let p = authenticate(&tokens, bearer("Bearer s3cret").unwrap()).unwrap();
        assert_eq!(p.name, "ci");
        assert_eq!(p.role, Role::Operator);
        assert_eq!(authenticate(&tokens, "other"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("bearer  x "), Some("x"));
    }
}

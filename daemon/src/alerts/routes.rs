//! Which routes an entity's change matches, where the entity sits
//! (tenant > flow > system > check > asset) for each of them, and which
//! group of the route it joins.
//!
//! An entity can sit in several places: a system (with its checks and
//! assets) may be in flows of two tenants. A route whose `tenant` has no
//! glob character is scoped to that tenant: it only sees the entity through
//! that tenant's flows, so neither its match nor its message ever shows
//! another tenant's flow or name. This module reads the config only; it must
//! not decide when anything is sent (grouping's) nor send it.

use std::collections::HashMap;

use super::message::Step;
use crate::config::{AlertRoute, Config};
use crate::health::{EntityRef, glob_match};

/// Where an entity sits, through one flow (or none: a system no flow
/// names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub tenant: Option<String>,
    pub flow: Option<String>,
    pub system: Option<String>,
    pub check: Option<String>,
    pub asset: Option<String>,
    /// From the tenant down to the entity.
    pub path: Vec<Step>,
}

impl Place {
    fn level(&self, level: &str) -> Option<&str> {
        match level {
            "tenant" => self.tenant.as_deref(),
            "flow" => self.flow.as_deref(),
            "system" => self.system.as_deref(),
            "check" => self.check.as_deref(),
            "asset" => self.asset.as_deref(),
            _ => None,
        }
    }
}

/// The config's entities indexed for placing changes.
#[derive(Debug, Default)]
pub struct Places {
    names: HashMap<(&'static str, String), String>,
    check_system: HashMap<String, String>,
    /// Per system, the (tenant, flow) pairs whose flows name it.
    system_flows: HashMap<String, Vec<(String, String)>>,
    flow_tenant: HashMap<String, String>,
}

impl Places {
    pub fn new(config: &Config) -> Self {
        let mut places = Places::default();
        for t in &config.tenants {
            places
                .names
                .insert(("tenant", t.id.clone()), t.name.clone());
        }
        for s in &config.systems {
            places
                .names
                .insert(("system", s.id.clone()), s.name.clone());
        }
        for f in &config.flows {
            places.names.insert(("flow", f.id.clone()), f.name.clone());
            places.flow_tenant.insert(f.id.clone(), f.tenant.clone());
            for system in std::iter::once(&f.upstream).chain(&f.downstream) {
                places
                    .system_flows
                    .entry(system.clone())
                    .or_default()
                    .push((f.tenant.clone(), f.id.clone()));
            }
        }
        for c in &config.checks {
            if let Some(name) = &c.name {
                places.names.insert(("check", c.id.clone()), name.clone());
            }
            places.check_system.insert(c.id.clone(), c.system.clone());
        }
        places
    }

    fn step(&self, kind: &'static str, key: &str) -> Step {
        Step {
            kind,
            key: key.to_owned(),
            name: self
                .names
                .get(&(kind, key.to_owned()))
                .cloned()
                .unwrap_or_else(|| key.to_owned()),
        }
    }

    /// Every place of `entity`, one per flow it is in.
    pub fn of(&self, entity: &EntityRef) -> Vec<Place> {
        let (system, check, asset) = match entity {
            EntityRef::Tenant(t) => {
                return vec![Place {
                    tenant: Some(t.clone()),
                    flow: None,
                    system: None,
                    check: None,
                    asset: None,
                    path: vec![self.step("tenant", t)],
                }];
            }
            EntityRef::Flow(f) => {
                let tenant = self.flow_tenant.get(f).cloned();
                let mut path: Vec<Step> = tenant.iter().map(|t| self.step("tenant", t)).collect();
                path.push(self.step("flow", f));
                return vec![Place {
                    tenant,
                    flow: Some(f.clone()),
                    system: None,
                    check: None,
                    asset: None,
                    path,
                }];
            }
            EntityRef::System(s) => (Some(s.clone()), None, None),
            EntityRef::Check(c) => (self.check_system.get(c).cloned(), Some(c.clone()), None),
            EntityRef::Asset { check, asset } => (
                self.check_system.get(check).cloned(),
                Some(check.clone()),
                Some(asset.clone()),
            ),
        };
        let tail = |path: &mut Vec<Step>| {
            if let Some(s) = &system {
                path.push(self.step("system", s));
            }
            if let Some(c) = &check {
                path.push(self.step("check", c));
            }
            if let Some(a) = &asset {
                path.push(Step {
                    kind: "asset",
                    key: a.clone(),
                    name: a.clone(),
                });
            }
        };
        let flows = system
            .as_ref()
            .and_then(|s| self.system_flows.get(s))
            .filter(|f| !f.is_empty());
        let Some(flows) = flows else {
            let mut path = Vec::new();
            tail(&mut path);
            return vec![Place {
                tenant: None,
                flow: None,
                system,
                check,
                asset,
                path,
            }];
        };
        flows
            .iter()
            .map(|(tenant, flow)| {
                let mut path = vec![self.step("tenant", tenant), self.step("flow", flow)];
                tail(&mut path);
                Place {
                    tenant: Some(tenant.clone()),
                    flow: Some(flow.clone()),
                    system: system.clone(),
                    check: check.clone(),
                    asset: asset.clone(),
                    path,
                }
            })
            .collect()
    }
}

/// The first of `places` `route` matches, if any.
pub fn matching<'p>(
    route: &AlertRoute,
    entity: &EntityRef,
    places: &'p [Place],
) -> Option<&'p Place> {
    if !route.entities.is_empty() && !route.entities.iter().any(|k| k == entity.kind()) {
        return None;
    }
    places.iter().find(|place| {
        [
            ("tenant", &route.tenant),
            ("flow", &route.flow),
            ("system", &route.system),
            ("check", &route.check),
            ("asset", &route.asset),
        ]
        .into_iter()
        .all(|(level, glob)| match glob {
            None => true,
            // A level the entity does not have never matches a set glob:
            // `check = "orders*"` is about checks and their assets only.
            Some(glob) => place.level(level).is_some_and(|v| glob_match(glob, v)),
        })
    })
}

/// The group `place` joins on `route`: `tenant=acme,check=orders`.
pub fn group_key(route: &AlertRoute, place: &Place) -> String {
    route
        .group_by
        .iter()
        .map(|level| format!("{level}={}", place.level(level).unwrap_or("")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(tenant: Option<&str>) -> AlertRoute {
        AlertRoute {
            name: "r".into(),
            tenant: tenant.map(str::to_owned),
            flow: None,
            system: None,
            check: None,
            asset: None,
            entities: vec![],
            min_status: crate::health::Status::Warning,
            channels: vec!["c".into()],
            send_resolved: true,
            repeat_every: None,
            group_by: vec!["tenant".into(), "check".into()],
            group_wait: std::time::Duration::ZERO,
            group_interval: std::time::Duration::ZERO,
        }
    }

    fn places() -> Places {
        let mut p = Places::default();
        p.check_system.insert("c1".into(), "wh".into());
        p.system_flows.insert(
            "wh".into(),
            vec![("acme".into(), "f1".into()), ("globex".into(), "f2".into())],
        );
        p.flow_tenant.insert("f1".into(), "acme".into());
        p.flow_tenant.insert("f2".into(), "globex".into());
        p
    }

    #[test]
    fn a_tenant_scoped_route_sees_a_shared_entity_only_through_its_tenant() {
        let p = places();
        let asset = EntityRef::Asset {
            check: "c1".into(),
            asset: "orders".into(),
        };
        let all = p.of(&asset);
        assert_eq!(all.len(), 2);
        let r = route(Some("globex"));
        let place = matching(&r, &asset, &all).unwrap();
        assert_eq!(place.flow.as_deref(), Some("f2"));
        assert!(place.path.iter().all(|s| s.key != "acme" && s.key != "f1"));
        assert_eq!(group_key(&r, place), "tenant=globex,check=c1");
        assert!(matching(&route(Some("initech")), &asset, &all).is_none());
        let flow = EntityRef::Flow("f1".into());
        assert!(matching(&r, &flow, &p.of(&flow)).is_none());
    }

    #[test]
    fn a_set_glob_needs_the_level() {
        let p = places();
        let mut r = route(None);
        r.check = Some("c*".into());
        let flow = EntityRef::Flow("f1".into());
        assert!(matching(&r, &flow, &p.of(&flow)).is_none());
        let check = EntityRef::Check("c1".into());
        assert!(matching(&r, &check, &p.of(&check)).is_some());
    }
}

//! Which routes an entity's change matches, where the entity sits
//! (tenant > flow > system > check > asset) for each of them, and which
//! group of the route it joins.
//!
//! An entity can sit in several places: a system (with its checks and
//! assets) may be in flows of two tenants. A route whose `tenant` has no
//! glob character is scoped to that tenant: it only sees the entity through
//! that tenant's flows, so neither its match nor its message ever shows
//! another tenant's flow or name. An entity's `owner` and `labels` are
//! inherited down the path of the place (tenant > flow > system > check >
//! asset, the nearer winning per label key), so a system shared by two
//! tenants' flows can carry each tenant's team through each place. This
//! module reads the config only; it must
//! not decide when anything is sent (grouping's) nor send it.

use std::collections::{BTreeMap, HashMap};

use super::message::Step;
use crate::config::{AlertRoute, Config};
use crate::health::{EntityRef, glob_match};

/// Where an entity sits, through one flow (or none: a system no flow
/// names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub tenant: Option<String>,
    pub flow: Option<String>,
    pub system: Option<String>,
    pub check: Option<String>,
    pub asset: Option<String>,
    /// From the tenant down to the entity.
    pub path: Vec<Step>,
    /// Inherited along `path`: the nearest entity's that sets one.
    pub owner: Option<String>,
    /// Inherited along `path`, per key.
    pub labels: BTreeMap<String, String>,
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
    /// The owner and labels each entity sets itself, by (kind, id).
    ownership: HashMap<(&'static str, String), Ownership>,
}

/// What one config entity says about who owns it.
#[derive(Debug, Default)]
struct Ownership {
    owner: Option<String>,
    labels: BTreeMap<String, String>,
}

impl Ownership {
    fn of(owner: &Option<String>, labels: &BTreeMap<String, String>) -> Self {
        Ownership {
            owner: owner.clone(),
            labels: labels.clone(),
        }
    }
}

impl Places {
    pub fn new(config: &Config) -> Self {
        let mut places = Places::default();
        for t in &config.tenants {
            places
                .names
                .insert(("tenant", t.id.clone()), t.name.clone());
            places
                .ownership
                .insert(("tenant", t.id.clone()), Ownership::of(&t.owner, &t.labels));
        }
        for s in &config.systems {
            places
                .names
                .insert(("system", s.id.clone()), s.name.clone());
            places
                .ownership
                .insert(("system", s.id.clone()), Ownership::of(&s.owner, &s.labels));
        }
        for f in &config.flows {
            places.names.insert(("flow", f.id.clone()), f.name.clone());
            places.flow_tenant.insert(f.id.clone(), f.tenant.clone());
            places
                .ownership
                .insert(("flow", f.id.clone()), Ownership::of(&f.owner, &f.labels));
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
            places
                .ownership
                .insert(("check", c.id.clone()), Ownership::of(&c.owner, &c.labels));
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

    /// Every place of `entity`, one per flow it is in, with the owner and
    /// labels inherited along each place's path.
    pub fn of(&self, entity: &EntityRef) -> Vec<Place> {
        let mut places = self.paths(entity);
        for place in &mut places {
            for step in &place.path {
                if let Some(own) = self.ownership.get(&(step.kind, step.key.clone())) {
                    if own.owner.is_some() {
                        place.owner.clone_from(&own.owner);
                    }
                    place.labels.extend(own.labels.clone());
                }
            }
        }
        places
    }

    fn paths(&self, entity: &EntityRef) -> Vec<Place> {
        let (system, check, asset) = match entity {
            EntityRef::Tenant(t) => {
                return vec![Place {
                    tenant: Some(t.clone()),
                    flow: None,
                    system: None,
                    check: None,
                    asset: None,
                    path: vec![self.step("tenant", t)],
                    ..Place::default()
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
                    ..Place::default()
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
                ..Place::default()
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
                    ..Place::default()
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
        }) && route
            .owner
            .as_ref()
            .is_none_or(|glob| place.owner.as_ref().is_some_and(|o| glob_match(glob, o)))
            && route
                .labels
                .iter()
                .all(|(key, glob)| place.labels.get(key).is_some_and(|v| glob_match(glob, v)))
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
            owner: None,
            labels: BTreeMap::new(),
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

    fn owned(owner: Option<&str>, labels: &[(&str, &str)]) -> Ownership {
        Ownership {
            owner: owner.map(str::to_owned),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn owner_and_labels_are_inherited_along_each_place_and_matched() {
        let mut p = places();
        let own = |p: &mut Places, kind, key: &str, o| {
            p.ownership.insert((kind, key.to_owned()), o);
        };
        own(
            &mut p,
            "tenant",
            "acme",
            owned(Some("acme-data"), &[("team", "data-eng"), ("tier", "1")]),
        );
        own(
            &mut p,
            "tenant",
            "globex",
            owned(Some("globex-ops"), &[("team", "ops")]),
        );
        own(&mut p, "check", "c1", owned(None, &[("tier", "2")]));
        let asset = EntityRef::Asset {
            check: "c1".into(),
            asset: "orders".into(),
        };
        let all = p.of(&asset);
        let acme = all
            .iter()
            .find(|pl| pl.tenant.as_deref() == Some("acme"))
            .unwrap();
        assert_eq!(acme.owner.as_deref(), Some("acme-data"));
        assert_eq!(acme.labels["team"], "data-eng");
        assert_eq!(
            acme.labels["tier"], "2",
            "the check is nearer than the tenant"
        );
        let globex = all
            .iter()
            .find(|pl| pl.tenant.as_deref() == Some("globex"))
            .unwrap();
        assert_eq!(globex.owner.as_deref(), Some("globex-ops"));

        let mut r = route(None);
        r.labels.insert("team".into(), "data-*".into());
        assert_eq!(
            matching(&r, &asset, &all).unwrap().flow.as_deref(),
            Some("f1")
        );
        r.labels.insert("tier".into(), "1".into());
        assert!(
            matching(&r, &asset, &all).is_none(),
            "every label must match"
        );

        let mut r = route(None);
        r.owner = Some("globex-*".into());
        assert_eq!(
            matching(&r, &asset, &all).unwrap().flow.as_deref(),
            Some("f2")
        );
        r.owner = Some("initech*".into());
        assert!(matching(&r, &asset, &all).is_none());
        let unowned = EntityRef::System("elsewhere".into());
        r.owner = Some("*".into());
        assert!(
            matching(&r, &unowned, &p.of(&unowned)).is_none(),
            "no owner never matches a set owner glob"
        );
    }
}

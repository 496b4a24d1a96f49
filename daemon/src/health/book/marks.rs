//! Why a change announces nothing of its own, and announcing it once that no
//! longer holds.
//!
//! Each change a step of the book produces is marked:
//! - `maintenance`: a maintenance window in force covers the entity;
//! - `suppressed_by`: the change is to a bad status caused by missing records
//!   or freshness, on a downstream system of a flow (or a check or asset of
//!   one) whose upstream system is UNHEALTHY or UNKNOWN; the mark names the
//!   root of the failure, followed up the flows (a cycle stops the walk).
//!
//! The entity's state keeps the marks of its latest change. When a mark no
//! longer holds (the window is over, ended early or removed; the upstream
//! recovered) and nothing else holds the entity back, an entity still not
//! HEALTHY gets one event `from == Some(s)`, `to == s` with its current
//! reasons: the announcement it could not make before. This is pure like the
//! rest of the book: callers hand in `now`.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use super::{Book, EntityHealth, Step, Topology};
use crate::health::maintenance::{Place, Window};
use crate::health::model::{EntityRef, RuleKind, Status};
use crate::health::state::Change;

/// The windows of the daemon with the topology they are matched against:
/// what the book marks changes with, and what the API shows entities in.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub windows: Vec<Window>,
    pub topology: Topology,
}

impl Coverage {
    /// The first window in force at `now` that covers `entity`.
    pub fn window_of(&self, entity: &EntityRef, now: SystemTime) -> Option<&Window> {
        covering(&in_force(&self.windows, now), &self.topology, entity)
    }
}

/// The windows in force at `now`: found once per step, as a recurring
/// window's schedule takes a search to answer.
fn in_force(windows: &[Window], now: SystemTime) -> Vec<&Window> {
    windows.iter().filter(|w| w.active_at(now)).collect()
}

/// The first of `active` that covers `entity`.
fn covering<'w>(
    active: &[&'w Window],
    topology: &Topology,
    entity: &EntityRef,
) -> Option<&'w Window> {
    if active.is_empty() {
        return None;
    }
    let places = topology.places(entity);
    active
        .iter()
        .find(|w| w.scope.covers(entity, &places))
        .copied()
}

/// A status an upstream can be in for its downstreams' alerts to fold
/// under it.
fn failing(status: Status) -> bool {
    matches!(status, Status::Unhealthy | Status::Unknown)
}

/// Whether `change` is to a bad status whose reasons at that status are all
/// missing records (completeness) or freshness: what a failing upstream
/// explains. Any other rule at that status (errors, a failed run) is the
/// downstream's own.
fn explained_by_upstream(change: &Change) -> bool {
    if change.to == Status::Healthy {
        return false;
    }
    let mut at_worst = change
        .reasons
        .iter()
        .filter(|r| r.status == change.to && r.rule != RuleKind::RollUp)
        .peekable();
    at_worst.peek().is_some()
        && at_worst.all(|r| matches!(r.rule, RuleKind::Completeness | RuleKind::Freshness))
}

impl Topology {
    /// Every place of `entity`: one per flow its system is in (one with no
    /// tenant or flow when it is in none).
    pub fn places<'a>(&'a self, entity: &'a EntityRef) -> Vec<Place<'a>> {
        let (system, check, asset) = match entity {
            EntityRef::Tenant(t) => {
                let t = self.tenant_flows.get_key_value(t).map(|(k, _)| k.as_str());
                return vec![[t, None, None, None, None]];
            }
            EntityRef::Flow(f) => {
                return match self.flows.get(f) {
                    Some(f) => vec![[
                        Some(f.tenant.as_str()),
                        Some(f.id.as_str()),
                        None,
                        None,
                        None,
                    ]],
                    None => Vec::new(),
                };
            }
            EntityRef::System(s) => (s.as_str(), None, None),
            EntityRef::Check(c) => match self.checks.get(c) {
                Some(p) => (p.system.as_str(), Some(p.id.as_str()), None),
                None => return Vec::new(),
            },
            EntityRef::Asset { check, asset } => match self.checks.get(check) {
                Some(p) => (p.system.as_str(), Some(p.id.as_str()), Some(asset.as_str())),
                None => return Vec::new(),
            },
        };
        let flows: Vec<_> = self
            .system_flows
            .get(system)
            .into_iter()
            .flatten()
            .filter_map(|f| self.flows.get(f))
            .collect();
        if flows.is_empty() {
            return vec![[None, None, Some(system), check, asset]];
        }
        flows
            .into_iter()
            .map(|f| {
                [
                    Some(f.tenant.as_str()),
                    Some(f.id.as_str()),
                    Some(system),
                    check,
                    asset,
                ]
            })
            .collect()
    }

    /// The system an entity belongs to (none for flows and tenants).
    fn system_of<'a>(&'a self, entity: &'a EntityRef) -> Option<&'a str> {
        match entity {
            EntityRef::System(s) => Some(s),
            EntityRef::Check(c) | EntityRef::Asset { check: c, .. } => {
                self.checks.get(c).map(|p| p.system.as_str())
            }
            EntityRef::Tenant(_) | EntityRef::Flow(_) => None,
        }
    }

    /// The upstream systems of the flows `system` is downstream in, sorted.
    fn upstreams_of(&self, system: &str) -> Vec<&str> {
        let mut ups: Vec<&str> = self
            .system_flows
            .get(system)
            .into_iter()
            .flatten()
            .filter_map(|f| self.flows.get(f))
            .filter_map(|f| match f.systems.split_first() {
                Some((up, _)) if up != system => Some(up.as_str()),
                _ => None,
            })
            .collect();
        ups.sort_unstable();
        ups.dedup();
        ups
    }
}

impl Book {
    /// Swaps in the maintenance windows (config and API); the marks they
    /// leave are looked at again by [`Book::release_marks`].
    pub fn set_windows(&mut self, windows: Vec<Window>) {
        self.windows = windows;
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// What the API needs to say which window an entity is in.
    pub fn coverage(&self) -> Coverage {
        Coverage {
            windows: self.windows.clone(),
            topology: self.topology.clone(),
        }
    }

    /// The failing upstream system that explains a bad change of `entity`:
    /// the first failing upstream of its system's flows, followed up through
    /// upstreams that are themselves folded under a failing one (the root
    /// cause). A cycle of flows ends the walk where it closes.
    fn suppressor(&self, entity: &EntityRef) -> Option<EntityRef> {
        let system = self.topology.system_of(entity)?;
        let is_failing = |s: &str| {
            self.entities
                .get(&EntityRef::System(s.to_owned()))
                .is_some_and(|h| failing(h.state.status))
        };
        let mut root = self
            .topology
            .upstreams_of(system)
            .into_iter()
            .find(|up| is_failing(up))?
            .to_owned();
        let mut seen = HashSet::from([system.to_owned(), root.clone()]);
        loop {
            let above = self
                .entities
                .get(&EntityRef::System(root.clone()))
                .and_then(|h| match &h.state.suppressed_by {
                    Some(EntityRef::System(up)) if is_failing(up) => Some(up.clone()),
                    _ => None,
                });
            match above {
                Some(up) if seen.insert(up.clone()) => root = up,
                _ => return Some(EntityRef::System(root)),
            }
        }
    }

    /// Marks the changes of `step` (maintenance, suppression), keeps the
    /// marks on the entities' states, and when an upstream recovered in it,
    /// announces what it held back. The step's outcome.
    pub(super) fn finish(&mut self, mut step: Step, now: SystemTime) -> super::Outcome {
        let mut recovered = false;
        let mut marked = Vec::with_capacity(step.changes.len());
        let active = in_force(&self.windows, now);
        for (entity, change) in &mut step.changes {
            change.maintenance = covering(&active, &self.topology, entity).map(|w| w.name.clone());
            change.suppressed_by = if explained_by_upstream(change) {
                self.suppressor(entity)
            } else {
                None
            };
            recovered |= matches!(entity, EntityRef::System(_))
                && change.from.is_some_and(failing)
                && !failing(change.to);
            if let Some(health) = self.entities.get_mut(entity) {
                health.state.maintenance = change.maintenance.clone();
                health.state.suppressed_by = change.suppressed_by.clone();
                marked.push(entity.clone());
            }
        }
        self.refresh_updates(&mut step, &marked);
        if recovered {
            self.release_marks_into(&mut step, now);
        }
        step.finish()
    }

    /// Replaces the states in `step.updates` of `entities` with what the book
    /// holds now (their marks were set after the update was recorded).
    fn refresh_updates(&self, step: &mut Step, entities: &[EntityRef]) {
        if entities.is_empty() {
            return;
        }
        let at: HashMap<&EntityRef, usize> = step
            .updates
            .iter()
            .enumerate()
            .map(|(i, (e, _))| (e, i))
            .collect();
        let mut fresh = Vec::new();
        for entity in entities {
            if let (Some(&i), Some(now)) = (at.get(entity), self.entities.get(entity)) {
                fresh.push((i, now.clone()));
            }
        }
        for (i, health) in fresh {
            step.updates[i].1 = health;
        }
    }

    /// Looks at every entity's marks at `now` (a window ended, was ended
    /// early or removed; an upstream recovered or left the config) and
    /// announces the entities nothing holds back any more.
    pub fn release_marks(&mut self, now: SystemTime) -> super::Outcome {
        let mut step = Step::default();
        self.release_marks_into(&mut step, now);
        step.finish()
    }

    fn release_marks_into(&mut self, step: &mut Step, now: SystemTime) {
        let mut marked: Vec<EntityRef> = self
            .entities
            .iter()
            .filter(|(_, h)| h.state.maintenance.is_some() || h.state.suppressed_by.is_some())
            .map(|(e, _)| e.clone())
            .collect();
        // Assets first, as a roll-up orders its events.
        marked.sort_unstable_by(|a, b| b.cmp(a));
        let active = in_force(&self.windows, now);
        for entity in marked {
            let window = covering(&active, &self.topology, &entity).map(|w| w.name.clone());
            let health = &self.entities[&entity];
            let state = &health.state;
            // An upstream a reload took out of every flow holds nothing.
            let upstream = state.suppressed_by.clone().filter(|up| {
                let in_a_flow = self.topology.system_of(up).is_some_and(|s| {
                    self.topology
                        .system_flows
                        .get(s)
                        .is_some_and(|f| !f.is_empty())
                });
                in_a_flow
                    && self
                        .entities
                        .get(up)
                        .is_some_and(|h| failing(h.state.status))
            });
            let held = window.is_some() || upstream.is_some();
            if state.maintenance == window && state.suppressed_by == upstream {
                continue;
            }
            let mut next: EntityHealth = health.clone();
            if !held && state.status != Status::Healthy {
                step.changes
                    .push((entity.clone(), announcement(state, now)));
            }
            // What still holds the entity back stays marked: a window that
            // follows on, or an upstream still failing (it is announced when
            // the last of them lets go).
            next.state.maintenance = window;
            next.state.suppressed_by = upstream;
            step.updates.push((entity.clone(), next.clone()));
            self.entities.insert(entity, next);
        }
    }
}

/// The event that announces an entity again at its status: from it to the
/// same, with its reasons now.
pub(super) fn announcement(state: &crate::health::state::HealthState, now: SystemTime) -> Change {
    Change {
        from: Some(state.status),
        to: state.status,
        reasons: state.reasons.clone(),
        muted: state.is_muted(now),
        maintenance: None,
        suppressed_by: None,
    }
}

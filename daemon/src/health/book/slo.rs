//! SLO reasons (issue 16): what an SLO's figures say of an entity (its
//! budget spent, an alert level crossed, a fast burn) given to the book as
//! input, like a run's facts, and folded into every evaluation of the
//! entity until they are taken back. They then roll up, mark and raise
//! health events like any other reason.
//!
//! The book only keeps and applies them: which hold is the writer's to say,
//! from figures it reads; nothing here reads or computes figures.

use std::time::SystemTime;

use super::{Book, Evaluation, Step, Thresholds};
use crate::health::model::{EntityRef, Reason, RuleKind, Status, sort_worst_first};

/// Whether `r` is an SLO reason about the entity itself (not a child's).
fn own_slo(r: &Reason) -> bool {
    r.rule == RuleKind::Slo && r.child.is_none()
}

impl Book {
    /// `evaluation` of `entity` with the entity's SLO reasons added: its
    /// status is at least theirs.
    pub(super) fn with_slo(&self, entity: &EntityRef, mut evaluation: Evaluation) -> Evaluation {
        let Some(slo) = self.slo.get(entity) else {
            return evaluation;
        };
        evaluation.reasons.retain(|r| !own_slo(r));
        evaluation.reasons.extend(slo.iter().cloned());
        sort_worst_first(&mut evaluation.reasons);
        evaluation.status = evaluation
            .status
            .max(Status::worst(slo.iter().map(|r| r.status)).unwrap_or(Status::Healthy));
        evaluation
    }

    /// The entities whose stored state shows SLO reasons of their own: at
    /// start, those the writer must look at even if no SLO covers them
    /// any more.
    pub fn with_slo_reasons(&self) -> Vec<EntityRef> {
        self.entities
            .iter()
            .filter(|(_, h)| h.state.reasons.iter().any(own_slo))
            .map(|(e, _)| e.clone())
            .collect()
    }

    /// Sets the SLO reasons of `entity` (none to take them back) and, when
    /// that changes what its state shows, judges it again at once (no
    /// hysteresis: the figures moved already) and rolls up. An entity with
    /// no health yet takes them at its first evaluation.
    ///
    /// `further`: an SLO's budget went a stage further (a lower
    /// `budget_alerts` level, or spent). When that leaves the entity's
    /// status as it was (WARNING already), the entity is announced again
    /// (an event from its status to the same one, with the new reasons),
    /// so that alert routes tell each stage, as they tell a change.
    pub fn set_slo_reasons(
        &mut self,
        entity: &EntityRef,
        reasons: Vec<Reason>,
        further: bool,
        now: SystemTime,
    ) -> super::Outcome {
        if reasons.is_empty() {
            self.slo.remove(entity);
        } else {
            self.slo.insert(entity.clone(), reasons.clone());
        }
        let Some(prev) = self.entities.get(entity) else {
            return super::Outcome::default();
        };
        let shown: Vec<&Reason> = prev.state.reasons.iter().filter(|r| own_slo(r)).collect();
        if shown.len() == reasons.len() && shown.iter().zip(&reasons).all(|(a, b)| *a == b) {
            // After a restart the stored state shows them already.
            return super::Outcome::default();
        }
        // What the entity's own evaluation said, without the SLO's part.
        let rest: Vec<Reason> = prev
            .state
            .reasons
            .iter()
            .filter(|r| !own_slo(r))
            .cloned()
            .collect();
        let base = Evaluation {
            status: Status::worst(rest.iter().map(|r| r.status)).unwrap_or(Status::Healthy),
            reasons: rest,
        };
        let mut step = Step::default();
        match entity {
            EntityRef::Asset { check, .. } => {
                let Some(place) = self.topology.checks.get(check).cloned() else {
                    return super::Outcome::default();
                };
                let at_once = Thresholds {
                    failure: 1,
                    success: 1,
                };
                self.evaluate_into(&mut step, entity.clone(), base, at_once, now, |_| {});
                self.roll_up_from_check(&mut step, &place, |_| {}, None, now);
            }
            EntityRef::Check(check) => {
                let Some(place) = self.topology.checks.get(check).cloned() else {
                    return super::Outcome::default();
                };
                // A check that knows no assets was judged directly.
                let direct = prev
                    .assets
                    .is_empty()
                    .then(|| (base, Thresholds::default()));
                self.roll_up_from_check(&mut step, &place, |_| {}, direct, now);
            }
            EntityRef::System(system) => self.roll_up_system(&mut step, system, true, now),
            EntityRef::Flow(flow) => self.roll_up_flow(&mut step, flow, true, now),
            EntityRef::Tenant(tenant) => self.roll_up_tenant(&mut step, tenant, true, now),
        }
        if further && !step.changes.iter().any(|(e, _)| e == entity) {
            self.announce_again(&mut step, entity, now);
        }
        self.finish(step, now)
    }

    /// Adds an event from `entity`'s status to the same one with its
    /// reasons now, unless it is HEALTHY.
    fn announce_again(&self, step: &mut Step, entity: &EntityRef, now: SystemTime) {
        let Some(health) = self.entities.get(entity) else {
            return;
        };
        let state = &health.state;
        if state.status == Status::Healthy {
            return;
        }
        step.changes
            .push((entity.clone(), super::marks::announcement(state, now)));
    }
}

//! The book of current health: every entity's state, kept in memory by the one
//! writer, advanced by each run and rolled up asset -> check -> system -> flow
//! -> tenant.
//!
//! Pure like the rest of the module: the caller hands in what a run said and
//! the time, and gets back the states to store, the changes worth an event and
//! a sample per entity touched (for rollups), all of which it writes in the
//! run's transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::evaluate::{
    AssetFacts, Evaluation, FailureClass, Heartbeat, RunOutcome, evaluate_asset, overdue, stale,
};
use super::maintenance::Window;
use super::model::{EntityRef, Reason, Status};
use super::rollup::roll_up;
use super::rules::{Rules, Thresholds};
use super::state::{Change, HealthState, apply};

mod marks;
mod slo;
pub use marks::Coverage;

/// Received counts kept per asset for volume rules when no rule asks for more.
const MIN_HISTORY: usize = 10;

/// What is kept of an entity between evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityHealth {
    pub state: HealthState,
    /// For assets: received counts of the latest successful runs, newest first
    /// (what volume rules compare against).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<u64>,
    /// For assets: the latest received count of each recent day (UTC), as
    /// `(day number since 1970, count)`, newest first (volume rules per day).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub daily: Vec<(i64, u64)>,
    /// For checks: the end of the latest successful run (what staleness is
    /// measured from). For assets of push checks: the latest report that
    /// spoke of them (what their own heartbeat is measured from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<SystemTime>,
    /// For checks: the assets its runs have spoken of.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub assets: BTreeSet<String>,
}

/// Where a check sits and how it is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckPlace {
    pub id: String,
    pub system: String,
    pub rules: Rules,
    /// When the check is expected to say something, so when its silence is
    /// judged.
    pub expect: Expect,
}

/// When a check is expected to succeed or report.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// It runs on a schedule: the time between runs (for a cron schedule, a
    /// typical gap); a check with no success for two of them is stale.
    Runs(Duration),
    /// It is reported to (push): judged by its heartbeats, when it has
    /// them, and never stale otherwise.
    Reports(Deadlines),
}

/// The heartbeats of a push check: its own, which every asset without one
/// of its own answers to, and those of single assets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deadlines {
    pub check: Option<Heartbeat>,
    pub assets: BTreeMap<String, Heartbeat>,
}

/// A flow: its tenant and its systems (upstream first).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowPlace {
    pub id: String,
    pub tenant: String,
    pub systems: Vec<String>,
}

/// Who rolls up into whom.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    /// Shared, so a step takes a check's place without copying its rules.
    checks: HashMap<String, Arc<CheckPlace>>,
    system_checks: HashMap<String, Vec<String>>,
    system_flows: HashMap<String, Vec<String>>,
    flows: HashMap<String, FlowPlace>,
    tenant_flows: HashMap<String, Vec<String>>,
}

impl Topology {
    pub fn new(
        tenants: impl IntoIterator<Item = String>,
        checks: Vec<CheckPlace>,
        flows: Vec<FlowPlace>,
    ) -> Self {
        let mut t = Topology::default();
        for tenant in tenants {
            t.tenant_flows.entry(tenant).or_default();
        }
        for c in checks {
            t.system_checks
                .entry(c.system.clone())
                .or_default()
                .push(c.id.clone());
            t.checks.insert(c.id.clone(), Arc::new(c));
        }
        for f in flows {
            for s in &f.systems {
                let of_system = t.system_flows.entry(s.clone()).or_default();
                if !of_system.contains(&f.id) {
                    of_system.push(f.id.clone());
                }
            }
            t.tenant_flows
                .entry(f.tenant.clone())
                .or_default()
                .push(f.id.clone());
            t.flows.insert(f.id.clone(), f);
        }
        t
    }

    /// Where `id` sits and how it is judged.
    pub fn check(&self, id: &str) -> Option<&CheckPlace> {
        self.checks.get(id).map(|c| &**c)
    }

    /// The checks watching `system`.
    pub fn checks_of_system(&self, system: &str) -> impl Iterator<Item = &str> {
        self.system_checks
            .get(system)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// What one step of the book produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Entities whose kept health changed in any way: write them.
    pub updates: Vec<(EntityRef, EntityHealth)>,
    /// Entities whose effective status changed: one health event each, in
    /// roll-up order (assets first, tenants last).
    pub changes: Vec<(EntityRef, Change)>,
    /// Every entity the step evaluated, with its status after it (rollups).
    pub samples: Vec<(EntityRef, Status)>,
}

impl Outcome {
    /// Appends `later`, a step taken after this one.
    fn extend(&mut self, later: Outcome) {
        self.updates.extend(later.updates);
        self.changes.extend(later.changes);
        self.samples.extend(later.samples);
    }
}

/// Every entity's health; owned by the daemon's one writer.
#[derive(Debug, Default)]
pub struct Book {
    topology: Topology,
    entities: HashMap<EntityRef, EntityHealth>,
    /// When the book started watching each check: staleness of a check that
    /// never succeeded counts from here.
    watching_since: HashMap<String, SystemTime>,
    /// The maintenance windows changes are marked with.
    windows: Vec<Window>,
    /// The SLO reasons of each entity, added to each of its evaluations
    /// (see [`Book::set_slo_reasons`]).
    slo: HashMap<EntityRef, Vec<Reason>>,
}

impl Book {
    /// A book over `topology`, starting from the stored health.
    pub fn new(
        topology: Topology,
        stored: impl IntoIterator<Item = (EntityRef, EntityHealth)>,
        now: SystemTime,
    ) -> Self {
        let mut book = Book {
            topology: Topology::default(),
            entities: stored.into_iter().collect(),
            watching_since: HashMap::new(),
            windows: Vec::new(),
            slo: HashMap::new(),
        };
        book.set_topology(topology, now);
        book
    }

    /// Swaps in a new topology (config reload); entities keep their health.
    pub fn set_topology(&mut self, topology: Topology, now: SystemTime) {
        self.watching_since
            .retain(|check, _| topology.checks.contains_key(check));
        for id in topology.checks.keys() {
            self.watching_since.entry(id.clone()).or_insert(now);
        }
        self.topology = topology;
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn get(&self, entity: &EntityRef) -> Option<&EntityHealth> {
        self.entities.get(entity)
    }

    /// How many configured checks are at each status (checks never judged
    /// are not counted).
    pub fn checks_by_status(&self) -> Vec<(Status, usize)> {
        let mut counts = [0; Status::ALL.len()];
        for id in self.topology.checks.keys() {
            if let Some(health) = self.entities.get(&EntityRef::Check(id.clone())) {
                counts[health.state.status as usize] += 1;
            }
        }
        Status::ALL.into_iter().zip(counts).collect()
    }

    /// Whether a run of `check` has spoken of `asset`.
    pub fn knows_asset(&self, check: &str, asset: &str) -> bool {
        self.entities
            .get(&EntityRef::Check(check.to_owned()))
            .is_some_and(|e| e.assets.contains(asset))
    }

    /// A run of `check` succeeded at `now` and said `assets`. Each asset's
    /// `history` is filled in from the book.
    ///
    /// The check's entry (and its set of known assets) is updated in place:
    /// a check reported to one asset at a time (push) must not copy the
    /// names of all its assets on every report.
    pub fn record_success(
        &mut self,
        check: &str,
        assets: Vec<(String, AssetFacts)>,
        now: SystemTime,
    ) -> Outcome {
        let Some(place) = self.topology.checks.get(check).cloned() else {
            return Outcome::default();
        };
        let mut step = Step::default();
        let mut said = Vec::with_capacity(assets.len());
        for (asset, mut facts) in assets {
            let rules = place.rules.for_asset(&asset);
            let entity = EntityRef::Asset {
                check: check.to_owned(),
                asset: asset.clone(),
            };
            let prev = self.entities.get(&entity);
            let mut history = prev.map(|p| p.history.clone()).unwrap_or_default();
            let mut daily = prev.map(|p| p.daily.clone()).unwrap_or_default();
            let today = day_of(now);
            facts.history = history.clone();
            facts.daily = earlier_days(&daily, today);
            let received = facts.received;
            let evaluation = evaluate_asset(&rules, &RunOutcome::Succeeded(facts), now);
            if let Some(received) = received {
                let keep = rules
                    .volume
                    .as_ref()
                    .map_or(0, |v| v.window as usize)
                    .max(MIN_HISTORY);
                history.insert(0, received);
                history.truncate(keep);
                match daily.first_mut() {
                    Some((day, n)) if *day == today => *n = received,
                    _ => daily.insert(0, (today, received)),
                }
                // Today plus `keep` earlier days.
                daily.truncate(keep + 1);
            }
            let reported = matches!(place.expect, Expect::Reports(_)).then_some(now);
            self.evaluate_into(&mut step, entity, evaluation, rules.thresholds, now, |e| {
                e.history = history;
                e.daily = daily;
                e.last_success = reported.or(e.last_success);
            });
            said.push(asset);
        }
        self.roll_up_from_check(
            &mut step,
            &place,
            |entry| {
                entry.last_success = Some(now);
                entry.assets.extend(said);
            },
            None,
            now,
        );
        self.finish(step, now)
    }

    /// Whether `at` is before the latest success of `check`: a report that
    /// old cannot overrule current health.
    pub fn is_older_than_latest(&self, check: &str, at: SystemTime) -> bool {
        self.entities
            .get(&EntityRef::Check(check.to_owned()))
            .and_then(|e| e.last_success)
            .is_some_and(|latest| at < latest)
    }

    /// What each of `assets` would be judged at `now` by its rules alone
    /// (no hysteresis, no history), for the rollups of a late report; the
    /// book does not change.
    pub fn judge_only(
        &self,
        check: &str,
        assets: Vec<(String, AssetFacts)>,
        now: SystemTime,
    ) -> Vec<(EntityRef, Status)> {
        let Some(place) = self.topology.checks.get(check) else {
            return Vec::new();
        };
        assets
            .into_iter()
            .map(|(asset, facts)| {
                let rules = place.rules.for_asset(&asset);
                let status = evaluate_asset(&rules, &RunOutcome::Succeeded(facts), now).status;
                let entity = EntityRef::Asset {
                    check: check.to_owned(),
                    asset,
                };
                (entity, status)
            })
            .collect()
    }

    /// Mutes `entity` until `mute.until` (or lifts its mute with `None`):
    /// health is still computed and changes still emitted, marked muted.
    /// Returns the state to store, or `None` for an entity with no health yet.
    pub fn set_mute(
        &mut self,
        entity: &EntityRef,
        mute: Option<super::state::Mute>,
    ) -> Option<(EntityRef, EntityHealth)> {
        let entry = self.entities.get_mut(entity)?;
        entry.state.muted = mute;
        Some((entity.clone(), entry.clone()))
    }

    /// Judges again an asset of `check` whose counts changed without a run of
    /// its own (its flow's upstream ids arrived after it ran): `facts` are its
    /// latest observation with the reconciled counts. History and last success
    /// stay as they are; the roll-up follows as after a run.
    pub fn re_evaluate(
        &mut self,
        check: &str,
        asset: &str,
        mut facts: AssetFacts,
        now: SystemTime,
    ) -> Outcome {
        let Some(place) = self.topology.checks.get(check).cloned() else {
            return Outcome::default();
        };
        let entity = EntityRef::Asset {
            check: check.to_owned(),
            asset: asset.to_owned(),
        };
        let Some(prev) = self.entities.get(&entity) else {
            return Outcome::default();
        };
        // The history already holds this observation's count first.
        facts.history = prev.history.iter().skip(1).copied().collect();
        let today = day_of(now);
        facts.daily = earlier_days(&prev.daily, today);
        let rules = place.rules.for_asset(asset);
        let evaluation = evaluate_asset(&rules, &RunOutcome::Succeeded(facts), now);
        let mut step = Step::default();
        self.evaluate_into(&mut step, entity, evaluation, rules.thresholds, now, |_| {});
        self.roll_up_from_check(&mut step, &place, |_| {}, None, now);
        self.finish(step, now)
    }

    /// A run of `check` failed at `now`: every asset it knows is UNKNOWN (or the
    /// check itself, when no run has named an asset yet).
    pub fn record_failure(
        &mut self,
        check: &str,
        class: FailureClass,
        message: &str,
        now: SystemTime,
    ) -> Outcome {
        let failed = RunOutcome::Failed {
            class,
            message: message.to_owned(),
        };
        self.judge_all_assets(check, now, false, |rules| {
            evaluate_asset(rules, &failed, now)
        })
    }

    /// Marks UNKNOWN every check with no successful run within two intervals
    /// (counting from when the book started watching a check that never
    /// succeeded), and judges every push check and asset past its heartbeat
    /// deadline ([`overdue`]). Checks already judged and unchanged give
    /// nothing to write.
    pub fn sweep_stale(&mut self, now: SystemTime) -> Outcome {
        let mut out = Outcome::default();
        // With whether the verdict takes effect at once: a heartbeat's
        // follows from the time alone and counts missed reports against the
        // failure threshold itself.
        let mut stale_checks: Vec<(String, bool, Evaluation)> = Vec::new();
        let mut overdue_assets: Vec<(String, String, Evaluation)> = Vec::new();
        for place in self.topology.checks.values() {
            let last = self.last_success(&EntityRef::Check(place.id.clone()));
            let evaluation = match (&place.expect, last) {
                (Expect::Reports(deadlines), _) => {
                    let Some(&since) = self.watching_since.get(&place.id) else {
                        continue;
                    };
                    let failure = place.rules.thresholds().failure;
                    for (asset, heartbeat) in &deadlines.assets {
                        let entity = EntityRef::Asset {
                            check: place.id.clone(),
                            asset: asset.clone(),
                        };
                        let last = self.last_success(&entity);
                        if let Some(e) = overdue(last, since, *heartbeat, failure, now) {
                            overdue_assets.push((place.id.clone(), asset.clone(), e));
                        }
                    }
                    if let Some(heartbeat) = deadlines.check
                        && let Some(e) = overdue(last, since, heartbeat, failure, now)
                    {
                        stale_checks.push((place.id.clone(), true, e));
                    }
                    continue;
                }
                (Expect::Runs(interval), Some(at)) => stale(Some(at), *interval, now),
                (Expect::Runs(interval), None) => {
                    // Never succeeded: stale once two intervals have
                    // passed since the book started watching it.
                    let Some(&since) = self.watching_since.get(&place.id) else {
                        continue;
                    };
                    stale(Some(since), *interval, now).and_then(|_| stale(None, *interval, now))
                }
            };
            if let Some(evaluation) = evaluation {
                stale_checks.push((place.id.clone(), false, evaluation));
            }
        }
        for (check, at_once, evaluation) in stale_checks {
            let step = self.judge_all_assets(&check, now, at_once, |_| evaluation.clone());
            out.extend(step);
        }
        for (check, asset, evaluation) in overdue_assets {
            out.extend(self.judge_overdue_asset(&check, asset, evaluation, now));
        }
        out
    }

    fn last_success(&self, entity: &EntityRef) -> Option<SystemTime> {
        self.entities.get(entity).and_then(|e| e.last_success)
    }

    /// One asset of `check` is past its own heartbeat deadline: judged at
    /// once (the evaluation counts the missed reports), then rolled up. An
    /// asset never reported yet becomes one of the check's assets here.
    fn judge_overdue_asset(
        &mut self,
        check: &str,
        asset: String,
        evaluation: Evaluation,
        now: SystemTime,
    ) -> Outcome {
        let Some(place) = self.topology.checks.get(check).cloned() else {
            return Outcome::default();
        };
        let mut step = Step::default();
        let thresholds = Thresholds {
            failure: 1,
            ..place.rules.for_asset(&asset).thresholds
        };
        let entity = EntityRef::Asset {
            check: check.to_owned(),
            asset: asset.clone(),
        };
        self.evaluate_into(&mut step, entity, evaluation, thresholds, now, |_| {});
        self.roll_up_from_check(
            &mut step,
            &place,
            |entry| {
                entry.assets.insert(asset);
            },
            None,
            now,
        );
        self.finish(step, now)
    }

    /// The next time a push check's or asset's heartbeat verdict changes (it
    /// becomes UNKNOWN, then UNHEALTHY), after `now`: when the writer sweeps
    /// next.
    pub fn next_deadline(&self, now: SystemTime) -> Option<SystemTime> {
        self.topology
            .checks
            .values()
            .flat_map(|place| {
                let Expect::Reports(deadlines) = &place.expect else {
                    return Vec::new();
                };
                let Some(&since) = self.watching_since.get(&place.id) else {
                    return Vec::new();
                };
                let failure = place.rules.thresholds().failure.max(1);
                let check = EntityRef::Check(place.id.clone());
                let asset = |a: &String| EntityRef::Asset {
                    check: place.id.clone(),
                    asset: a.clone(),
                };
                (deadlines.check.map(|h| (check, h)).into_iter())
                    .chain(deadlines.assets.iter().map(|(a, h)| (asset(a), *h)))
                    .filter_map(|(entity, heartbeat)| {
                        let last = self.last_success(&entity).unwrap_or(since);
                        let unknown = last + heartbeat.every + heartbeat.grace;
                        let unhealthy = last + heartbeat.grace + heartbeat.every * (failure + 1);
                        // Just past each edge: the verdicts hold strictly after it.
                        [unknown, unhealthy]
                            .into_iter()
                            .map(|t| t + Duration::from_millis(1))
                            .find(|t| *t > now)
                    })
                    .collect()
            })
            .min()
    }

    /// Applies `judge`'s evaluation to every known asset of `check`, or to the
    /// check itself when it knows none, then rolls up.
    fn judge_all_assets(
        &mut self,
        check: &str,
        now: SystemTime,
        at_once: bool,
        judge: impl Fn(&super::rules::AssetRules) -> Evaluation,
    ) -> Outcome {
        let Some(place) = self.topology.checks.get(check).cloned() else {
            return Outcome::default();
        };
        let mut step = Step::default();
        let thresholds = |t: super::rules::Thresholds| match at_once {
            true => super::rules::Thresholds { failure: 1, ..t },
            false => t,
        };
        let check_ref = EntityRef::Check(check.to_owned());
        let known: Vec<String> = self
            .entities
            .get(&check_ref)
            .map(|e| e.assets.iter().cloned().collect())
            .unwrap_or_default();
        if known.is_empty() {
            let evaluation = judge(&place.rules.for_asset(""));
            self.roll_up_from_check(
                &mut step,
                &place,
                |_| {},
                Some((evaluation, thresholds(place.rules.thresholds()))),
                now,
            );
            return self.finish(step, now);
        }
        // A heartbeat verdict (the one judged at once) leaves the assets
        // with a heartbeat of their own to theirs.
        let own = match &place.expect {
            Expect::Reports(deadlines) if at_once => Some(&deadlines.assets),
            _ => None,
        };
        for asset in known
            .iter()
            .filter(|a| !own.is_some_and(|o| o.contains_key(*a)))
        {
            let rules = place.rules.for_asset(asset);
            let entity = EntityRef::Asset {
                check: check.to_owned(),
                asset: asset.clone(),
            };
            self.evaluate_into(
                &mut step,
                entity,
                judge(&rules),
                thresholds(rules.thresholds),
                now,
                |_| {},
            );
        }
        self.roll_up_from_check(&mut step, &place, |_| {}, None, now);
        self.finish(step, now)
    }

    /// Folds `evaluation` into `entity`, records what changed in `step`.
    fn evaluate_into(
        &mut self,
        step: &mut Step,
        entity: EntityRef,
        evaluation: Evaluation,
        thresholds: Thresholds,
        now: SystemTime,
        also: impl FnOnce(&mut EntityHealth),
    ) {
        let evaluation = self.with_slo(&entity, evaluation);
        let prev = self.entities.get(&entity);
        let (state, change) = apply(prev.map(|p| &p.state), &evaluation, thresholds, now);
        let mut next = prev.cloned().unwrap_or_else(|| placeholder(now));
        next.state = state;
        also(&mut next);
        step.record(&entity, change, next.state.status);
        if prev != Some(&next) {
            step.updates.push((entity.clone(), next.clone()));
        }
        self.entities.insert(entity, next);
    }

    /// Updates the check's bookkeeping with `keep` (assets, last success),
    /// re-evaluates the check (from its assets, or from `direct` when it has
    /// none), then each parent whose children changed.
    fn roll_up_from_check(
        &mut self,
        step: &mut Step,
        place: &CheckPlace,
        keep: impl FnOnce(&mut EntityHealth),
        direct: Option<(Evaluation, Thresholds)>,
        now: SystemTime,
    ) {
        let check_ref = EntityRef::Check(place.id.clone());
        // Taken out and put back, never copied: it may name many assets.
        let before = self.entities.remove(&check_ref);
        let existed = before.is_some();
        let mut entry = before.unwrap_or_else(|| placeholder(now));
        let (assets, last_success, state) =
            (entry.assets.len(), entry.last_success, entry.state.clone());
        keep(&mut entry);
        let (evaluation, thresholds) = direct.unwrap_or_else(|| {
            let children: Vec<_> = entry
                .assets
                .iter()
                .filter_map(|a| {
                    let child = EntityRef::Asset {
                        check: place.id.clone(),
                        asset: a.clone(),
                    };
                    let h = self.entities.get(&child)?;
                    Some((child, h.state.status, h.state.reasons.clone()))
                })
                .collect();
            let (status, reasons) = roll_up(&children);
            (Evaluation { status, reasons }, Thresholds::default())
        });
        let evaluation = self.with_slo(&check_ref, evaluation);
        // A check never evaluated before takes its first evaluation at once.
        let prev_state = existed.then_some(&entry.state);
        let (next, change) = apply(prev_state, &evaluation, thresholds, now);
        entry.state = next;
        let check_changed = change.is_some();
        step.record(&check_ref, change, entry.state.status);
        // `keep` only adds assets, so their number tells whether it did.
        if !existed
            || entry.assets.len() != assets
            || entry.last_success != last_success
            || entry.state != state
        {
            step.updates.push((check_ref.clone(), entry.clone()));
        }
        self.entities.insert(check_ref, entry);

        self.roll_up_system(step, &place.system, check_changed, now);
    }

    /// Rolls `system` up from its checks (when `changed`: a child's status
    /// changed, or something of its own did), then its flows and tenants.
    /// Parents are recomputed when a child's status changed or they are new.
    fn roll_up_system(&mut self, step: &mut Step, system: &str, changed: bool, now: SystemTime) {
        let system_ref = EntityRef::System(system.to_owned());
        let system_changed = self.roll_up_parent(step, &system_ref, changed, now, |t| {
            t.system_checks
                .get(system)
                .into_iter()
                .flatten()
                .map(|c| EntityRef::Check(c.clone()))
                .collect()
        });
        let flows: Vec<String> = self
            .topology
            .system_flows
            .get(system)
            .cloned()
            .unwrap_or_default();
        for flow in flows {
            self.roll_up_flow(step, &flow, system_changed, now);
        }
    }

    /// Rolls `flow` up from its systems (when `changed`), then its tenant.
    fn roll_up_flow(&mut self, step: &mut Step, flow: &str, changed: bool, now: SystemTime) {
        let flow_ref = EntityRef::Flow(flow.to_owned());
        let flow_changed = self.roll_up_parent(step, &flow_ref, changed, now, |t| {
            t.flows
                .get(flow)
                .into_iter()
                .flat_map(|f| f.systems.iter().map(|s| EntityRef::System(s.clone())))
                .collect()
        });
        if let Some(tenant) = self.topology.flows.get(flow).map(|f| f.tenant.clone()) {
            self.roll_up_tenant(step, &tenant, flow_changed, now);
        }
    }

    /// Rolls `tenant` up from its flows (when `changed`).
    fn roll_up_tenant(&mut self, step: &mut Step, tenant: &str, changed: bool, now: SystemTime) {
        self.roll_up_parent(
            step,
            &EntityRef::Tenant(tenant.to_owned()),
            changed,
            now,
            |t| {
                t.tenant_flows
                    .get(tenant)
                    .into_iter()
                    .flatten()
                    .map(|f| EntityRef::Flow(f.clone()))
                    .collect()
            },
        );
    }

    /// Re-evaluates `parent` from its children when `child_changed` or it has
    /// no health yet; returns whether its status changed. Either way it is
    /// sampled, so rollups count every run that touched it.
    fn roll_up_parent(
        &mut self,
        step: &mut Step,
        parent: &EntityRef,
        child_changed: bool,
        now: SystemTime,
        children: impl FnOnce(&Topology) -> Vec<EntityRef>,
    ) -> bool {
        let prev = self.entities.get(parent);
        if !child_changed && let Some(prev) = prev {
            step.samples.push((parent.clone(), prev.state.status));
            return false;
        }
        let kids: Vec<_> = children(&self.topology)
            .into_iter()
            .filter_map(|c| {
                let h = self.entities.get(&c)?;
                Some((c, h.state.status, h.state.reasons.clone()))
            })
            .collect();
        let (status, reasons) = roll_up(&kids);
        let evaluation = self.with_slo(parent, Evaluation { status, reasons });
        let (state, change) = apply(
            prev.map(|p| &p.state),
            &evaluation,
            Thresholds::default(),
            now,
        );
        let mut next = prev.cloned().unwrap_or_else(|| placeholder(now));
        next.state = state;
        let changed = change.is_some();
        step.record(parent, change, next.state.status);
        if prev != Some(&next) {
            step.updates.push((parent.clone(), next.clone()));
        }
        self.entities.insert(parent.clone(), next);
        changed
    }
}

/// The counts of the days before `today`, newest first: what a per-day
/// volume rule compares today's count with.
fn earlier_days(daily: &[(i64, u64)], today: i64) -> Vec<u64> {
    daily
        .iter()
        .filter(|(day, _)| *day < today)
        .map(|(_, n)| *n)
        .collect()
}

/// Days since 1970 (UTC) of `t`.
fn day_of(t: SystemTime) -> i64 {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs / 86_400) as i64
}

/// An entity seen for the first time; [`apply`] replaces its state.
fn placeholder(now: SystemTime) -> EntityHealth {
    EntityHealth {
        state: HealthState {
            status: Status::Unknown,
            since: now,
            reasons: Vec::<Reason>::new(),
            recent: Vec::new(),
            muted: None,
            maintenance: None,
            suppressed_by: None,
        },
        history: Vec::new(),
        daily: Vec::new(),
        last_success: None,
        assets: BTreeSet::new(),
    }
}

#[derive(Default)]
struct Step {
    updates: Vec<(EntityRef, EntityHealth)>,
    changes: Vec<(EntityRef, Change)>,
    samples: Vec<(EntityRef, Status)>,
}

impl Step {
    fn record(&mut self, entity: &EntityRef, change: Option<Change>, status: Status) {
        if let Some(change) = change {
            self.changes.push((entity.clone(), change));
        }
        self.samples.push((entity.clone(), status));
    }

    fn finish(self) -> Outcome {
        Outcome {
            updates: self.updates,
            changes: self.changes,
            samples: self.samples,
        }
    }
}

#[cfg(test)]
mod tests;

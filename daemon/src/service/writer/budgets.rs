//! What SLO figures do to health and to `/metrics` (issue 16): the writer
//! takes each SLO's figures when they can have changed, turns them into
//! health reasons for the book ([`crate::health::RuleKind::Slo`]) and sets
//! the SLO series of the metrics. Alerts need nothing of their own: a
//! reason that changes an entity's status raises a health event, which the
//! alert routes match, group, dedupe and deliver like any other.
//!
//! Figures only count judged slices (those before the slice in progress),
//! so they change at a slice boundary, when a late report adds to a past
//! slice, or with the config. Each SLO is read once per slice boundary for
//! all its entities, from the sums the store keeps of their windows and of
//! their last days ([`Store::slo_window_ranked`], a row per entity rather
//! than its hundreds of slices); a write to a past slice marks its (SLO,
//! entity) to be read again alone, from its slices. Nothing is computed per scrape or per
//! run. At start every SLO is read before the first run is judged, so a
//! restart neither loses a reason nor announces it again.
//!
//! It owns only this: the conditions ([`alert`]) and the bookkeeping of
//! what was read when. It reads slices through the store and figures
//! through [`crate::slo::figures`]; it must not write (the writer does).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::health::{EntityRef, Reason, RuleKind, Status};
use crate::slo::calendar::HOUR_MS;
use crate::slo::figures::figures;
use crate::slo::{Exhaustion, Figures, Lookback, SliceLen, Slo};
use crate::store::{SliceDelta, Store, StoreError, entity_key};

/// The multiwindow burn conditions of the SRE workbook, for hour slices:
/// (what it asks for, share of the budget, long lookback, short lookback).
/// The workbook's short windows (5 and 30 minutes, 6 hours) are 1/12 of the
/// long one; one hour slice is the shortest Tributary sees, so it stands in
/// for the first two.
const BURNS: [(&str, f64, Lookback, Lookback); 3] = [
    ("page", 0.02, Lookback::H1, Lookback::H1),
    ("page", 0.05, Lookback::H6, Lookback::H1),
    ("ticket", 0.10, Lookback::D3, Lookback::H6),
];

/// What the writer last read of the SLOs' figures.
#[derive(Default)]
pub(super) struct Budgets {
    /// By SLO: the slice in progress when its figures were last read (the
    /// judged part of the window ended there).
    read_at: HashMap<Arc<str>, i64>,
    /// (SLO, entity) whose judged slices changed since.
    dirty: HashSet<(Arc<str>, EntityRef)>,
    /// By SLO: the entities it gave figures (series) for.
    series: HashMap<Arc<str>, HashSet<EntityRef>>,
    /// By entity: the alert each SLO gives it.
    reasons: HashMap<EntityRef, BTreeMap<Arc<str>, Alert>>,
    /// Entities whose stored state shows SLO reasons no read has looked at
    /// yet (at start): taken back unless a read gives them again.
    unseen: HashSet<EntityRef>,
    /// Entities that showed SLO reasons at start, until the first read of
    /// every SLO: how far their budgets had gone is not known, so a stage
    /// found then is not announced as a new one (a restart announces
    /// nothing again).
    quiet: HashSet<EntityRef>,
}

/// How far an SLO's budget has gone for an entity, the worst last: each
/// further stage is told to the alert routes, even when the entity's
/// status does not change (a 25% level reached while the 50% one already
/// made it WARNING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    /// A multiwindow burn condition holds.
    Burning,
    /// At or under the `budget_alerts` level of this index (highest
    /// first, so a larger index is a lower level).
    Under(usize),
    Spent,
}

/// What one SLO's figures say of one entity: a stage and its reason.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Alert {
    pub(super) stage: Stage,
    pub(super) reason: Reason,
}

/// An entity whose SLO reasons changed: all of them now, and whether an
/// SLO's budget went a stage further (to be announced even at the same
/// status).
#[derive(Debug)]
pub(super) struct Changed {
    pub(super) entity: EntityRef,
    pub(super) reasons: Vec<Reason>,
    pub(super) further: bool,
}

impl Budgets {
    /// Starts from the entities whose stored state shows SLO reasons.
    pub(super) fn new(shown: Vec<EntityRef>) -> Self {
        let shown: HashSet<EntityRef> = shown.into_iter().collect();
        Budgets {
            unseen: shown.clone(),
            quiet: shown,
            ..Budgets::default()
        }
    }

    /// A reloaded config: every SLO is read again (a changed definition
    /// keeps its name).
    pub(super) fn reconfigure(&mut self) {
        self.read_at.clear();
        self.dirty.clear();
    }

    /// Notes slices a commit wrote: those before the slice in progress at
    /// the last read change figures already read.
    pub(super) fn written<'a>(&mut self, deltas: impl Iterator<Item = &'a SliceDelta>) {
        for d in deltas {
            if self.read_at.get(&d.slo).is_some_and(|&at| d.start < at) {
                self.dirty.insert((d.slo.clone(), d.entity.clone()));
            }
        }
    }

    /// Reads the figures that can have changed at `now` (ms), sets their
    /// series in `metrics`, and returns the entities whose reasons changed.
    pub(super) async fn refresh(
        &mut self,
        slos: &[Slo],
        store: &Store,
        metrics: &crate::metrics::Metrics,
        now: i64,
    ) -> Result<Vec<Changed>, StoreError> {
        let mut touched: HashMap<EntityRef, bool> = std::mem::take(&mut self.unseen)
            .into_iter()
            .map(|e| (e, false))
            .collect();
        // SLOs removed by a reload: their series and reasons go.
        let gone: Vec<Arc<str>> = self
            .series
            .keys()
            .filter(|n| !slos.iter().any(|s| *s.name == ***n))
            .cloned()
            .collect();
        for name in gone {
            for entity in self.series.remove(&name).unwrap_or_default() {
                metrics.slo_figures(&name, 0.0, &entity, None);
                self.set(&name, &entity, None, &mut touched);
            }
            self.read_at.remove(&name);
        }
        for slo in slos {
            let name: Arc<str> = Arc::from(slo.name.as_str());
            let span = slo.calendar.window(slo.window, now);
            let stale = self.read_at.get(&name) != Some(&span.elapsed_end);
            // Each entity's figures, none for one without slices left.
            let read: Vec<(EntityRef, Option<Figures>)> = if stale {
                // Every entity: from the sums of its window and of its last
                // days, not its slices (14.4M rows at 10,000 assets with
                // three hourly SLOs).
                let mut all = Vec::new();
                // Covered entities without a slice in the window are
                // listed, but give no figures here: nothing was judged of
                // them to make a health reason or a series of.
                store
                    .slo_window_ranked(slo, now, |entity, totals| {
                        if totals.slices.iter().sum::<u64>() > 0 {
                            all.push((entity, totals));
                        }
                        true
                    })
                    .await?;
                let entities: Vec<EntityRef> = all.iter().map(|(e, _)| e.clone()).collect();
                let recent = store.slo_lookback_sums(slo, now, &entities).await?;
                all.into_iter()
                    .map(|(entity, totals)| {
                        let lookbacks = recent
                            .get(&entity_key(&entity))
                            .copied()
                            .unwrap_or_default();
                        (
                            entity,
                            Some(slo.figures_from_sums(now, &totals, &lookbacks)),
                        )
                    })
                    .collect()
            } else {
                let dirty: Vec<EntityRef> = self
                    .dirty
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, e)| e.clone())
                    .collect();
                let mut read = Vec::with_capacity(dirty.len());
                for entity in dirty {
                    let stored = store
                        .slo_slices(&slo.name, Some(&entity), span.start, span.elapsed_end)
                        .await?;
                    let slices: Vec<_> = stored.iter().map(|s| s.slice).collect();
                    let f = (!slices.is_empty())
                        .then(|| figures(&slo.counting, &slo.calendar, slo.window, now, &slices));
                    read.push((entity, f));
                }
                read
            };
            let before = self.series.remove(&name).unwrap_or_default();
            let mut after: HashSet<EntityRef> = if stale {
                HashSet::new()
            } else {
                before.clone()
            };
            for (entity, f) in read {
                after.remove(&entity);
                let Some(f) = f else {
                    metrics.slo_figures(&name, 0.0, &entity, None);
                    self.set(&name, &entity, None, &mut touched);
                    continue;
                };
                metrics.slo_figures(&name, slo.counting.target, &entity, Some(&f));
                let window_hours = (span.end - span.start) as f64 / HOUR_MS as f64;
                self.set(&name, &entity, alert(slo, &f, window_hours), &mut touched);
                after.insert(entity);
            }
            if stale {
                for entity in before.difference(&after) {
                    metrics.slo_figures(&name, 0.0, entity, None);
                    self.set(&name, entity, None, &mut touched);
                }
            }
            self.dirty.retain(|(n, _)| *n != name);
            self.read_at.insert(name.clone(), span.elapsed_end);
            self.series.insert(name, after);
        }
        self.quiet.clear();
        Ok(touched
            .into_iter()
            .map(|(entity, further)| {
                let reasons = self
                    .reasons
                    .get(&entity)
                    .map(|by_slo| by_slo.values().map(|a| a.reason.clone()).collect())
                    .unwrap_or_default();
                Changed {
                    entity,
                    reasons,
                    further,
                }
            })
            .collect())
    }

    /// Sets the alert SLO `name` gives `entity` (none to take it back),
    /// noting it in `touched` when it changes, as further when its stage
    /// is worse than before.
    fn set(
        &mut self,
        name: &Arc<str>,
        entity: &EntityRef,
        alert: Option<Alert>,
        touched: &mut HashMap<EntityRef, bool>,
    ) {
        let by_slo = self.reasons.entry(entity.clone()).or_default();
        let before = by_slo.get(name);
        let changed = before != alert.as_ref();
        let further = alert.as_ref().map(|a| a.stage) > before.map(|a| a.stage)
            && !self.quiet.contains(entity);
        match alert {
            Some(alert) => {
                by_slo.insert(name.clone(), alert);
            }
            None => {
                by_slo.remove(name);
            }
        }
        if by_slo.is_empty() {
            self.reasons.remove(entity);
        }
        if changed {
            *touched.entry(entity.clone()).or_default() |= further;
        }
    }
}

/// `ratio` as a percentage with at most two decimals: `95%`, `99.9%`.
fn percent(ratio: f64) -> String {
    let text = format!("{:.2}", ratio * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The alert (stage and health reason) `slo`'s figures `f` give an
/// entity, if any, its window `window_hours` long:
/// - the budget spent: at the SLO's severity;
/// - otherwise the lowest `budget_alerts` level the remaining budget is at
///   or under: WARNING;
/// - otherwise, for hour slices with `burn_alerts`, the first multiwindow
///   burn condition that holds: WARNING. Its factor is the workbook's
///   budget share rescaled to the window (`share x window hours / long
///   lookback hours`: 2% in 1h of a 30-day window is 14.4x, of a 20-day
///   one 9.6x); a condition whose factor exceeds the highest burn possible,
///   `1 / (1 - target)`, can never hold and is skipped.
pub(super) fn alert(slo: &Slo, f: &Figures, window_hours: f64) -> Option<Alert> {
    let name = &slo.name;
    let window = slo.window_text();
    let target = percent(slo.counting.target);
    let attainment = f.attainment.map_or_else(|| "no data".to_owned(), percent);
    if f.exhaustion == Exhaustion::Spent {
        return Some(Alert {
            stage: Stage::Spent,
            reason: Reason::new(
                RuleKind::Slo,
                slo.severity,
                format!("slo {name}: budget spent, {attainment} < {target} over {window}"),
            ),
        });
    }
    // Levels are highest first: the last one reached is the lowest.
    if let Some(left) = f.budget_remaining_ratio
        && let Some(i) = slo.budget_alerts.iter().rposition(|l| left <= *l)
    {
        return Some(Alert {
            stage: Stage::Under(i),
            reason: Reason::new(
                RuleKind::Slo,
                Status::Warning,
                format!(
                    "slo {name}: {} of budget left, at or under {} ({attainment} for {target} over {window})",
                    percent(left),
                    percent(slo.budget_alerts[i])
                ),
            ),
        });
    }
    if !(slo.burn_alerts && slo.calendar.slice == SliceLen::Hour) {
        return None;
    }
    let max_burn = 1.0 / (1.0 - slo.counting.target);
    let burn = |l: Lookback| f.burn_rates.iter().find(|(k, _)| *k == l).map(|(_, r)| *r);
    BURNS
        .iter()
        .filter_map(|&(what, share, long, short)| {
            let factor = share * window_hours / long.hours() as f64;
            if factor > max_burn {
                return None;
            }
            let (l, s) = (burn(long)?, burn(short)?);
            (l >= factor && s >= factor).then(|| {
                let over = if long == short {
                    format!("{l:.1}x over {}", long.as_str())
                } else {
                    format!(
                        "{l:.1}x over {} and {s:.1}x over {}",
                        long.as_str(),
                        short.as_str()
                    )
                };
                Alert {
                    stage: Stage::Burning,
                    reason: Reason::new(
                        RuleKind::Slo,
                        Status::Warning,
                        format!(
                            "slo {name}: burning {over}, at least {factor:.1}x ({what}: {} of the {window} budget in {})",
                            percent(share),
                            long.as_str()
                        ),
                    ),
                }
            })
        })
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The reasons [`alert`] gives (none or one).
    fn reasons(slo: &Slo, f: &Figures, window_hours: f64) -> Vec<Reason> {
        alert(slo, f, window_hours)
            .map(|a| a.reason)
            .into_iter()
            .collect()
    }

    /// An SLO on hour slices with burn alerts, at `target`.
    fn hourly(target: f64) -> Slo {
        let text = format!(
            "[[slos]]\nname = \"fast\"\nasset = \"*\"\nindicator = \"availability\"\n\
             slice = \"1h\"\nwindow = \"30d\"\ntarget = {target}\nburn_alerts = true\n"
        );
        let config: Config =
            crate::config::parse(&text, std::path::Path::new("t.toml"), &Default::default())
                .unwrap();
        config.slos[0].clone()
    }

    fn burning(rates: &[(Lookback, f64)]) -> Figures {
        Figures {
            slices: [700, 20, 0, 0],
            attainment: Some(0.97),
            budget_total: 36.0,
            budget_spent: 3.6,
            budget_remaining: 32.4,
            budget_remaining_ratio: Some(0.9),
            burn_rates: rates.to_vec(),
            exhaustion: Exhaustion::Never,
        }
    }

    /// Over 30 days (720 hours) the workbook's own factors come back:
    /// 2% in 1h is 14.4x, 5% in 6h 6x, 10% in 3d 1x.
    #[test]
    fn burn_factors_are_the_budget_share_rescaled_to_the_window() {
        let slo = hourly(0.95);
        let r = reasons(
            &slo,
            &burning(&[(Lookback::H1, 15.0), (Lookback::H6, 7.0)]),
            720.0,
        );
        assert_eq!(r.len(), 1);
        assert!(r[0].message.contains("at least 14.4x (page: 2%"), "{r:?}");
        let r = reasons(
            &slo,
            &burning(&[(Lookback::H1, 7.0), (Lookback::H6, 7.0)]),
            720.0,
        );
        assert!(r[0].message.contains("at least 6.0x (page: 5%"), "{r:?}");
        let r = reasons(
            &slo,
            &burning(&[(Lookback::H6, 1.5), (Lookback::D3, 1.0)]),
            720.0,
        );
        assert!(r[0].message.contains("at least 1.0x (ticket: 10%"), "{r:?}");
        let r = reasons(
            &slo,
            &burning(&[(Lookback::H1, 5.0), (Lookback::H6, 0.5)]),
            720.0,
        );
        assert!(r.is_empty(), "{r:?}");
    }

    /// At 90% the highest burn possible is 10x: the 14.4x page can never
    /// hold and is skipped, the 6x one still fires.
    #[test]
    fn a_condition_above_the_highest_possible_burn_is_skipped() {
        let slo = hourly(0.9);
        let r = reasons(
            &slo,
            &burning(&[(Lookback::H1, 10.0), (Lookback::H6, 10.0)]),
            720.0,
        );
        assert_eq!(r.len(), 1);
        assert!(
            r[0].message.contains("(page: 5% of the 30d budget in 6h)"),
            "{r:?}"
        );
    }

    /// Each lower level reached is a further stage, and a spent budget the
    /// furthest: the writer announces each (issue 16 item 4).
    #[test]
    fn each_lower_level_and_a_spent_budget_are_further_stages() {
        let mut slo = hourly(0.95);
        slo.budget_alerts = vec![0.75, 0.25];
        let at = |left: f64, exhaustion| {
            let mut f = burning(&[]);
            f.budget_remaining_ratio = Some(left);
            f.exhaustion = exhaustion;
            alert(&slo, &f, 720.0).map(|a| a.stage)
        };
        assert_eq!(at(0.9, Exhaustion::Never), None);
        assert_eq!(at(0.75, Exhaustion::Never), Some(Stage::Under(0)));
        assert_eq!(at(0.5, Exhaustion::Never), Some(Stage::Under(0)));
        assert_eq!(at(0.2, Exhaustion::Never), Some(Stage::Under(1)));
        assert_eq!(at(-0.1, Exhaustion::Spent), Some(Stage::Spent));
        assert!(Stage::Burning < Stage::Under(0));
        assert!(Stage::Under(0) < Stage::Under(1));
        assert!(Stage::Under(1) < Stage::Spent);
    }

    #[test]
    fn percentages_keep_up_to_two_decimals() {
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(0.999), "99.9%");
        assert_eq!(percent(6.0 / 7.0), "85.71%");
        assert_eq!(percent(-0.5), "-50%");
    }
}

//! SLO figures on read (issue 16): the stored slices of a window, one query
//! per SLO whatever the number of entities, turned into
//! [`crate::slo::Figures`] at the clock's now.
//!
//! It reads and computes only: slices are judged and written by the writer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Service, lock};
use crate::health::{EntityRef, Topology};
use crate::slo::calendar::WindowSpan;
use crate::slo::figures::{budget_remaining_ratio, figures};
use crate::slo::{Figures, Level, SliceState, Slo, Totals};
use crate::store::{StoreError, StoredSlice, entity_key, to_ms};

/// Most slices `slices(from, to)` gives at once.
pub const MAX_SLICES: usize = 1000;

/// One SLO's figures for one entity.
#[derive(Debug, Clone)]
pub struct SloStatus {
    pub slo: Arc<Slo>,
    pub entity: EntityRef,
    pub figures: Figures,
    /// Where the window lay when the figures were taken.
    pub window: WindowSpan,
}

/// One slice to draw: judged, or without data.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceView {
    pub start: i64,
    pub end: i64,
    pub state: SliceState,
    pub good: u64,
    pub total: u64,
    pub reason: Option<String>,
}

impl Service {
    /// The configured SLOs, shared.
    fn slos(&self) -> Vec<Arc<Slo>> {
        self.loaded()
            .config
            .slos
            .iter()
            .cloned()
            .map(Arc::new)
            .collect()
    }

    /// The configured SLO named `name`.
    pub fn slo(&self, name: &str) -> Option<Arc<Slo>> {
        self.slos().into_iter().find(|s| s.name == name)
    }

    /// Whether `slo` is stated for `entity`: at its level, inside its scope.
    pub fn slo_covers(&self, slo: &Slo, entity: &EntityRef) -> bool {
        let topology: Arc<Topology> = lock(&self.topology).clone();
        Level::of(entity) == slo.level && slo.scope.covers(entity, &topology.places(entity))
    }

    /// The figures of each SLO (of the one named `only`, when given) stated
    /// for `entity`, with or without slices.
    pub async fn slos_of(
        &self,
        entity: &EntityRef,
        only: Option<&str>,
    ) -> Result<Vec<SloStatus>, StoreError> {
        let now = to_ms(self.clock.now());
        let mut out = Vec::new();
        for slo in self.slos() {
            if only.is_some_and(|n| n != slo.name) || !self.slo_covers(&slo, entity) {
                continue;
            }
            let window = slo.calendar.window(slo.window, now);
            let stored = self
                .store
                .slo_slices(&slo.name, Some(entity), window.start, window.elapsed_end)
                .await?;
            let slices: Vec<_> = stored.into_iter().map(|s| s.slice).collect();
            out.push(status(&slo, entity.clone(), window, now, &slices));
        }
        Ok(out)
    }

    /// The figures of every entity with slices in its window, for each SLO
    /// (the one named `only`, when given): one read per SLO.
    pub async fn slo_statuses(&self, only: Option<&str>) -> Result<Vec<SloStatus>, StoreError> {
        let now = to_ms(self.clock.now());
        let mut out = Vec::new();
        for slo in self.slos() {
            if only.is_some_and(|n| n != slo.name) {
                continue;
            }
            let window = slo.calendar.window(slo.window, now);
            let stored = self
                .store
                .slo_slices(&slo.name, None, window.start, window.elapsed_end)
                .await?;
            let mut by_entity: BTreeMap<String, (EntityRef, Vec<_>)> = BTreeMap::new();
            for s in stored {
                by_entity
                    .entry(entity_key(&s.entity))
                    .or_insert_with(|| (s.entity.clone(), Vec::new()))
                    .1
                    .push(s.slice);
            }
            out.extend(
                by_entity
                    .into_values()
                    .map(|(entity, slices)| status(&slo, entity, window, now, &slices)),
            );
        }
        Ok(out)
    }

    /// The `n` statuses with the least budget left among the entities that
    /// `keep` keeps of those each SLO (the one named `only`, when given)
    /// covers or has slices of in its window, worst first as
    /// [`slo_statuses`] would rank them (budget left, a budget of 0 last,
    /// then SLO name, then entity), with the same figures: a covered
    /// entity without a slice has every judged slice as no data.
    ///
    /// The database hands each SLO's entities over worst first from the
    /// rank keys it keeps with their sums
    /// ([`crate::store::Store::slo_ranked`]), which give the budget left
    /// exactly, until `n` are kept; the
    /// kept ones' burn rates and exhaustion come from the sums of their
    /// last days' slices, one query per SLO for all of them
    /// ([`figures_from_sums`]). Nothing reads a whole window's slices.
    ///
    /// [`slo_statuses`]: Service::slo_statuses
    pub async fn slo_worst(
        &self,
        only: Option<&str>,
        n: usize,
        keep: impl Fn(&EntityRef) -> bool,
    ) -> Result<Vec<SloStatus>, StoreError> {
        let now = to_ms(self.clock.now());
        let mut ranked: Vec<(f64, Arc<Slo>, String, EntityRef, Totals)> = Vec::new();
        for slo in self.slos() {
            if only.is_some_and(|name| name != slo.name) {
                continue;
            }
            let mut kept = 0;
            let mut last: Option<(f64, String)> = None;
            self.store
                .slo_window_ranked(&slo, now, |entity, totals| {
                    let left = budget_remaining_ratio(
                        &slo.counting,
                        &slo.calendar,
                        slo.window,
                        now,
                        &totals,
                    )
                    .unwrap_or(f64::INFINITY);
                    let key = entity_key(&entity);
                    debug_assert!(
                        last.as_ref().is_none_or(|(l, k)| l
                            .total_cmp(&left)
                            .then_with(|| k.cmp(&key))
                            .is_le()),
                        "the database ranked {key} at {left} after {last:?}"
                    );
                    last = Some((left, key.clone()));
                    if keep(&entity) {
                        ranked.push((left, slo.clone(), key, entity, totals));
                        kept += 1;
                    }
                    kept < n
                })
                .await?;
        }
        ranked.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then_with(|| a.1.name.cmp(&b.1.name))
                .then_with(|| a.2.cmp(&b.2))
        });
        ranked.truncate(n);
        // The last days' sums of the listed entities, one query per SLO.
        let mut recent: HashMap<String, HashMap<String, [Totals; 4]>> = HashMap::new();
        for slo in self.slos() {
            let listed: Vec<EntityRef> = ranked
                .iter()
                .filter(|r| r.1.name == slo.name)
                .map(|r| r.3.clone())
                .collect();
            if !listed.is_empty() {
                let sums = self.store.slo_lookback_sums(&slo, now, &listed).await?;
                recent.insert(slo.name.clone(), sums);
            }
        }
        Ok(ranked
            .into_iter()
            .map(|(_, slo, key, entity, totals)| {
                let lookbacks = recent
                    .get(&slo.name)
                    .and_then(|sums| sums.get(&key))
                    .copied()
                    .unwrap_or_default();
                let figures = slo.figures_from_sums(now, &totals, &lookbacks);
                SloStatus {
                    window: slo.calendar.window(slo.window, now),
                    slo,
                    entity,
                    figures,
                }
            })
            .collect())
    }

    /// The judged slices of `slo` for `entity` that start in `[from, to)`
    /// (at most [`MAX_SLICES`], the earliest), those without a row as no
    /// data. The slice in progress is not judged yet.
    pub async fn slo_slices(
        &self,
        slo: &Slo,
        entity: &EntityRef,
        from: i64,
        to: i64,
    ) -> Result<Vec<SliceView>, StoreError> {
        let cal = slo.calendar;
        let to = to.min(cal.slice_start(to_ms(self.clock.now())));
        let starts: Vec<i64> = cal.starts(from, to).take(MAX_SLICES).collect();
        let (Some(&first), Some(&last)) = (starts.first(), starts.last()) else {
            return Ok(Vec::new());
        };
        let stored: BTreeMap<i64, StoredSlice> = self
            .store
            .slo_slices(&slo.name, Some(entity), first, last + 1)
            .await?
            .into_iter()
            .map(|s| (s.slice.start, s))
            .collect();
        Ok(starts
            .into_iter()
            .map(|start| {
                let end = cal.next(start);
                match stored.get(&start) {
                    Some(s) => SliceView {
                        start,
                        end,
                        state: s.slice.state,
                        good: s.slice.good,
                        total: s.slice.total,
                        reason: s.reason.clone(),
                    },
                    None => SliceView {
                        start,
                        end,
                        state: SliceState::NoData,
                        good: 0,
                        total: 0,
                        reason: None,
                    },
                }
            })
            .collect())
    }
}

fn status(
    slo: &Arc<Slo>,
    entity: EntityRef,
    window: WindowSpan,
    now: i64,
    slices: &[crate::slo::Slice],
) -> SloStatus {
    SloStatus {
        slo: slo.clone(),
        entity,
        figures: figures(&slo.counting, &slo.calendar, slo.window, now, slices),
        window,
    }
}

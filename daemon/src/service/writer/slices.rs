//! Judging SLO slices as the writer writes (issue 16): each evaluation a
//! write carries (a run's, a sweep's, a late report's) becomes events of the
//! slices it falls in, for each SLO whose scope covers the entity, added to
//! the write's part so the slices move in the run's transaction.
//!
//! An event falls in the slice that holds the time it was judged at (a run's
//! start, a pushed report's `at`): a late report or a backfilled run adds to
//! a past slice. What makes an event good is each indicator's
//! ([`crate::slo::Indicator`]); a slice is bad once any of its events is, and
//! excluded once a maintenance window covering the entity overlaps it or the
//! entity is muted at an event in it.
//!
//! It owns only this judging and which entities each SLO covers: it must
//! not write (the store does) nor change health (the book does). Which SLOs
//! cover an entity is found once per entity and kept until the config or
//! topology changes; the lists show every covered entity, so the store is
//! told the whole coverage after each start and reload, and each entity
//! first seen since (a new asset) with the write that brings it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::health::{
    AssetFacts, Book, EntityRef, RuleKind, RunOutcome, Status, evaluate_asset, format_duration,
};
use crate::slo::{FreshnessGoal, Indicator, Level, Slo};
use crate::store::{ObservationRow, RunRow, SliceDelta, to_ms};

/// The SLOs of the config in force and which of them cover which entity.
#[derive(Default)]
pub(super) struct Slicer {
    slos: Vec<(Arc<str>, Slo)>,
    /// Indices into `slos`, by entity, found on first sight.
    covering: HashMap<EntityRef, Arc<[usize]>>,
    /// Whether the store has not been told the whole coverage of this
    /// config yet ([`Slicer::coverage`]).
    unsynced: bool,
}

/// One evaluation written: what the slicer judges from.
pub(super) struct Judged<'a> {
    pub samples: &'a [(EntityRef, Status)],
    /// The run judged, if the evaluation is a run's.
    pub run: Option<&'a RunRow>,
    pub observations: &'a [ObservationRow],
    /// Whether the book's count history already holds this run's counts
    /// (so the previous count is the second one).
    pub counted: bool,
    pub now: SystemTime,
}

impl Slicer {
    pub(super) fn new(config: &Config) -> Self {
        Slicer {
            slos: config
                .slos
                .iter()
                .map(|s| (Arc::from(s.name.as_str()), s.clone()))
                .collect(),
            covering: HashMap::new(),
            unsynced: true,
        }
    }

    /// Whether the store still has to be told the whole coverage.
    pub(super) fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// The store holds the whole coverage: entities found from now on are
    /// new ones, told with their write.
    pub(super) fn synced(&mut self) {
        self.unsynced = false;
    }

    /// A write was lost (refused, or dropped from a full buffer): the new
    /// entities it told the store of may be missing there, so the whole
    /// coverage is told again.
    pub(super) fn resync(&mut self) {
        self.unsynced = true;
    }

    /// Every entity each SLO covers (by SLO name, in config order, those
    /// covering none included): the config's tenants, flows, systems and
    /// checks, and the assets of each check that its runs spoke of or that
    /// a push check declares (`push.assets`), even never reported.
    pub(super) fn coverage(
        &mut self,
        config: &Config,
        book: &Book,
    ) -> Vec<(Arc<str>, Vec<EntityRef>)> {
        let mut entities: Vec<EntityRef> = config
            .tenants
            .iter()
            .map(|t| EntityRef::Tenant(t.id.clone()))
            .chain(config.flows.iter().map(|f| EntityRef::Flow(f.id.clone())))
            .chain(
                config
                    .systems
                    .iter()
                    .map(|s| EntityRef::System(s.id.clone())),
            )
            .collect();
        for check in &config.checks {
            entities.push(EntityRef::Check(check.id.clone()));
            let spoken = book
                .get(&EntityRef::Check(check.id.clone()))
                .map(|h| h.assets.iter())
                .into_iter()
                .flatten();
            let declared = check.push.iter().flat_map(|p| p.assets.iter());
            let assets: std::collections::BTreeSet<&String> = spoken.chain(declared).collect();
            entities.extend(assets.into_iter().map(|asset| EntityRef::Asset {
                check: check.id.clone(),
                asset: asset.clone(),
            }));
        }
        let mut by_slo: Vec<Vec<EntityRef>> = vec![Vec::new(); self.slos.len()];
        for entity in entities {
            for &i in self.covering(book, &entity).0.iter() {
                by_slo[i].push(entity.clone());
            }
        }
        self.slos
            .iter()
            .map(|(name, _)| name.clone())
            .zip(by_slo)
            .collect()
    }

    /// The SLOs covering `entity`, found once; and whether they were found
    /// just now.
    fn covering(&mut self, book: &Book, entity: &EntityRef) -> (Arc<[usize]>, bool) {
        if let Some(found) = self.covering.get(entity) {
            return (found.clone(), false);
        }
        let places = book.topology().places(entity);
        let found: Arc<[usize]> = self
            .slos
            .iter()
            .enumerate()
            .filter(|(_, (_, slo))| {
                Level::of(entity) == slo.level && slo.scope.covers(entity, &places)
            })
            .map(|(i, _)| i)
            .collect();
        self.covering.insert(entity.clone(), found.clone());
        (found, true)
    }

    /// Adds the slice events of `judged` to `out`, and to `members` the
    /// SLOs covering an entity seen for the first time since the store was
    /// told the whole coverage.
    pub(super) fn judge(
        &mut self,
        book: &Book,
        judged: &Judged<'_>,
        out: &mut Vec<SliceDelta>,
        members: &mut Vec<(Arc<str>, EntityRef)>,
    ) {
        if self.slos.is_empty() {
            return;
        }
        let now = to_ms(judged.now);
        for (entity, status) in judged.samples {
            let (covering, new) = self.covering(book, entity);
            if new {
                members.extend(
                    covering
                        .iter()
                        .map(|&i| (self.slos[i].0.clone(), entity.clone())),
                );
            }
            for &i in covering.iter() {
                let (name, slo) = &self.slos[i];
                let events = events(slo, book, entity, *status, judged, now);
                if events.is_empty() {
                    continue;
                }
                let start = slo.calendar.slice_start(now);
                let excluded = excluded(slo, book, entity, judged.now, start);
                let mut delta = SliceDelta {
                    slo: name.clone(),
                    entity: entity.clone(),
                    start,
                    good: 0,
                    total: 0,
                    excluded: excluded.is_some(),
                    reason: excluded,
                };
                for event in events {
                    delta.total += 1;
                    match event {
                        Ok(()) => delta.good += 1,
                        Err(reason) => {
                            if delta.reason.is_none() {
                                delta.reason = Some(reason);
                            }
                        }
                    }
                }
                out.push(delta);
            }
        }
    }
}

/// Each event `entity`'s evaluation gives `slo`: good, or bad with why.
fn events(
    slo: &Slo,
    book: &Book,
    entity: &EntityRef,
    status: Status,
    judged: &Judged<'_>,
    now: i64,
) -> Vec<Result<(), String>> {
    match slo.indicator {
        // An SLO's own reasons are left out: a spent budget must not keep
        // spending itself.
        Indicator::Healthy => vec![if status == Status::Healthy || only_slo(book, entity) {
            Ok(())
        } else {
            let why = book
                .get(entity)
                .and_then(|h| h.state.reasons.first())
                .map_or_else(String::new, |r| format!(": {}", r.message));
            Err(format!("{}{why}", status.as_str()))
        }],
        Indicator::Availability => match judged.run {
            None => Vec::new(),
            Some(run) => vec![match &run.failure {
                None => Ok(()),
                Some(f) => Err(format!(
                    "run failed: {}",
                    crate::service::report::brief(&f.message)
                )),
            }],
        },
        // Judged on assets only (the config allows no other level): the
        // asset's own observation.
        Indicator::Completeness { .. } | Indicator::Freshness(_) => match (entity, judged.run) {
            (EntityRef::Asset { asset, .. }, Some(_)) => judged
                .observations
                .iter()
                .filter(|o| o.asset == *asset)
                .filter_map(|o| observation_event(slo, book, judged, o, now))
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// What one observation says of a completeness or freshness slice; `None`
/// when it says nothing (no count, no freshness, a deadline not passed).
fn observation_event(
    slo: &Slo,
    book: &Book,
    judged: &Judged<'_>,
    o: &ObservationRow,
    now: i64,
) -> Option<Result<(), String>> {
    let check = &judged.run?.check_id;
    match slo.indicator {
        Indicator::Completeness { max_drop } => {
            let received = o.received?;
            let asset = EntityRef::Asset {
                check: check.clone(),
                asset: o.asset.clone(),
            };
            let history = book.get(&asset).map(|h| h.history.as_slice());
            let previous = history.and_then(|h| h.get(usize::from(judged.counted)));
            Some(match previous {
                Some(&prev) if (received as f64) < (1.0 - max_drop) * prev as f64 => Err(format!(
                    "count {received} dropped {:.1}% from {prev} (max {}%)",
                    (prev - received) as f64 * 100.0 / prev as f64,
                    max_drop * 100.0
                )),
                _ => Ok(()),
            })
        }
        Indicator::Freshness(FreshnessGoal::Deadline(time)) => {
            let refreshed = to_ms(o.freshness?);
            let start = slo.calendar.slice_start(now);
            let deadline = slo.calendar.time_of_day(start, time);
            let hhmm = |t: i64| local_hhmm(slo, t);
            if refreshed >= start {
                Some(if refreshed <= deadline {
                    Ok(())
                } else {
                    Err(format!(
                        "refreshed at {}, deadline {}",
                        hhmm(refreshed),
                        time.format("%H:%M")
                    ))
                })
            } else {
                (now > deadline).then(|| {
                    Err(format!(
                        "no refresh landed by the deadline {}",
                        time.format("%H:%M")
                    ))
                })
            }
        }
        Indicator::Freshness(FreshnessGoal::MaxAge(max)) => {
            let age = Duration::from_millis(u64::try_from(now - to_ms(o.freshness?)).unwrap_or(0));
            Some(if age <= max {
                Ok(())
            } else {
                Err(format!(
                    "data {} old, max {}",
                    format_duration(Duration::from_secs(age.as_secs())),
                    format_duration(max)
                ))
            })
        }
        Indicator::Freshness(FreshnessGoal::Rule) => {
            let rules = book.topology().check(check)?.rules.for_asset(&o.asset);
            rules.freshness.as_ref()?;
            let facts = AssetFacts {
                freshness: Some(o.freshness?),
                ..AssetFacts::default()
            };
            let evaluation = evaluate_asset(&rules, &RunOutcome::Succeeded(facts), judged.now);
            Some(
                match evaluation
                    .reasons
                    .into_iter()
                    .find(|r| r.rule == RuleKind::Freshness)
                {
                    Some(r) => Err(format!("{}: {}", r.status.as_str(), r.message)),
                    None => Ok(()),
                },
            )
        }
        Indicator::Availability | Indicator::Healthy => None,
    }
}

/// Whether every reason `entity` is not HEALTHY for is an SLO's (its own
/// or a child's).
fn only_slo(book: &Book, entity: &EntityRef) -> bool {
    book.get(entity).is_some_and(|h| {
        let mut bad = h
            .state
            .reasons
            .iter()
            .filter(|r| r.status != Status::Healthy)
            .peekable();
        bad.peek().is_some() && bad.all(|r| r.rule == RuleKind::Slo)
    })
}

/// Why the slice of `slo` starting at `start` is excluded for `entity`, if
/// it is: a maintenance window covering the entity overlaps it, or the
/// entity is muted now.
fn excluded(
    slo: &Slo,
    book: &Book,
    entity: &EntityRef,
    now: SystemTime,
    start: i64,
) -> Option<String> {
    if let Some(mute) = book
        .get(entity)
        .and_then(|h| h.state.muted.as_ref())
        .filter(|m| now < m.until)
    {
        return Some(format!("muted: {}", mute.reason));
    }
    let windows = book.windows();
    if windows.is_empty() {
        return None;
    }
    let at = |ms: i64| UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let (from, to) = (at(start), at(slo.calendar.next(start)));
    let mut places = None;
    windows
        .iter()
        .filter(|w| w.overlaps(from, to))
        .find(|w| {
            let places = places.get_or_insert_with(|| book.topology().places(entity));
            w.scope.covers(entity, places)
        })
        .map(|w| format!("maintenance window {}", w.name))
}

/// `t` as `HH:MM` in the SLO's time zone.
fn local_hhmm(slo: &Slo, t: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .unwrap_or_default()
        .with_timezone(&slo.calendar.zone)
        .format("%H:%M")
        .to_string()
}

//! SLOs as GraphQL objects (issue 16): an SLO's figures for one entity
//! (`SloStatus`), its slices for drawing, and which statuses a tenant,
//! flow, system, check or asset lists. The service computes the figures;
//! this only picks what the view may see and translates.

use super::*;
use crate::service::{SliceView, SloStatus};
use crate::slo::{Exhaustion, Indicator, SliceLen};

/// Most statuses one `slos` list gives.
const MAX_STATUSES: usize = 1000;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SloIndicator {
    Availability,
    Completeness,
    Freshness,
    Healthy,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::slo::Budgeting")]
pub enum SloBudgeting {
    /// Each slice is one unit, good or bad.
    Timeslices,
    /// Each event (a run, an observation, an evaluation) is one unit.
    Occurrences,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::slo::SliceState")]
pub enum SloSliceState {
    Good,
    Bad,
    /// Nothing was observed in it.
    NoData,
    /// A maintenance window or a mute covered the entity in it.
    Excluded,
}

/// The burn rate over one lookback: the error ratio over it divided by
/// `1 - target` (1 spends the budget exactly over the window).
#[derive(SimpleObject)]
pub struct BurnRate {
    /// `1h`, `6h`, `1d` or `3d`.
    pub lookback: String,
    pub rate: f64,
}

/// One slice of an SLO for one entity.
#[derive(SimpleObject)]
pub struct SloSlice {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub state: SloSliceState,
    /// Good and all events in the slice.
    pub good: Long,
    pub total: Long,
    /// Why it is bad or excluded (the first such event's reason).
    pub reason: Option<String>,
}

/// An SLO's figures for one entity, over its window at the time asked.
pub struct SloStatusNode(pub SloStatus);

fn ms_time(ms: i64) -> DateTime<Utc> {
    time(from_ms(ms))
}

fn slice_text(len: SliceLen) -> &'static str {
    match len {
        SliceLen::Hour => "1h",
        SliceLen::Day => "1d",
    }
}

fn count_of(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[Object(name = "SloStatus")]
impl SloStatusNode {
    /// The SLO's name in the config.
    async fn name(&self) -> &str {
        &self.0.slo.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.slo.description.as_deref()
    }
    async fn indicator(&self) -> SloIndicator {
        match self.0.slo.indicator {
            Indicator::Availability => SloIndicator::Availability,
            Indicator::Completeness { .. } => SloIndicator::Completeness,
            Indicator::Freshness(_) => SloIndicator::Freshness,
            Indicator::Healthy => SloIndicator::Healthy,
        }
    }
    /// The share of units that must be good, between 0 and 1.
    async fn target(&self) -> f64 {
        self.0.slo.counting.target
    }
    /// `20d`, `480h`... for a rolling window; `1M` for the calendar month.
    async fn window(&self) -> String {
        self.0.slo.window_text()
    }
    /// The IANA time zone slices and calendar months follow.
    async fn time_zone(&self) -> &str {
        self.0.slo.calendar.zone.name()
    }
    /// `1h` or `1d`.
    async fn slice(&self) -> &str {
        slice_text(self.0.slo.calendar.slice)
    }
    async fn budgeting(&self) -> SloBudgeting {
        self.0.slo.counting.budgeting.into()
    }
    /// The first slice of the window.
    async fn window_start(&self) -> DateTime<Utc> {
        ms_time(self.0.window.start)
    }
    /// The end of the window: now's slice start for a rolling one (the
    /// slice in progress does not count yet), the month's end for a
    /// calendar one.
    async fn window_end(&self) -> DateTime<Utc> {
        ms_time(self.0.window.end)
    }
    /// The entity the figures are of.
    async fn entity(&self, ctx: &Context<'_>) -> Result<Option<Node>> {
        Ok(entity_node(view(ctx)?, &self.0.entity))
    }
    /// Good units over counted units; null before anything counted.
    async fn attainment(&self) -> Option<f64> {
        self.0.figures.attainment
    }
    /// The error budget in units (slices or events).
    async fn budget_total(&self) -> f64 {
        self.0.figures.budget_total
    }
    async fn budget_spent(&self) -> f64 {
        self.0.figures.budget_spent
    }
    /// Negative once overspent.
    async fn budget_remaining(&self) -> f64 {
        self.0.figures.budget_remaining
    }
    /// Remaining over total (1 = untouched, 0 = spent, negative =
    /// overspent); null while the budget is 0.
    async fn budget_remaining_ratio(&self) -> Option<f64> {
        self.0.figures.budget_remaining_ratio
    }
    /// Over 1h, 6h, 1d and 3d, those the slice allows and that saw a unit.
    async fn burn_rates(&self) -> Vec<BurnRate> {
        self.0
            .figures
            .burn_rates
            .iter()
            .map(|(l, rate)| BurnRate {
                lookback: l.as_str().to_owned(),
                rate: *rate,
            })
            .collect()
    }
    /// When the budget runs out at the current burn (over 1d for hourly
    /// slices, 3d for daily ones); null when spent already or never.
    async fn exhausts_at(&self) -> Option<DateTime<Utc>> {
        match self.0.figures.exhaustion {
            Exhaustion::At(t) => Some(ms_time(t)),
            Exhaustion::Spent | Exhaustion::Never => None,
        }
    }
    /// Whether the budget is spent.
    async fn exhausted(&self) -> bool {
        self.0.figures.exhaustion == Exhaustion::Spent
    }
    /// Slices judged so far in the window, by state (before the no-data
    /// and exclusion policies).
    async fn good_slices(&self) -> i32 {
        count_of(self.0.figures.slices[0])
    }
    async fn bad_slices(&self) -> i32 {
        count_of(self.0.figures.slices[1])
    }
    async fn no_data_slices(&self) -> i32 {
        count_of(self.0.figures.slices[2])
    }
    async fn excluded_slices(&self) -> i32 {
        count_of(self.0.figures.slices[3])
    }
    /// The judged slices starting in `[from, to)` (default: the window so
    /// far), earliest first, at most 1000; those without data included.
    #[graphql(complexity = "20 * child_complexity")]
    async fn slices(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<SloSlice>> {
        let from = from.map_or(self.0.window.start, |t| t.timestamp_millis());
        let to = to.map_or(self.0.window.elapsed_end, |t| t.timestamp_millis());
        if to < from {
            return Err(error(Code::BadUserInput, "to is before from"));
        }
        let slices = state(ctx)
            .service
            .slo_slices(&self.0.slo, &self.0.entity, from, to)
            .await
            .map_err(|e| store_error(&e))?;
        Ok(slices.into_iter().map(slo_slice).collect())
    }
}

fn slo_slice(s: SliceView) -> SloSlice {
    SloSlice {
        start: ms_time(s.start),
        end: ms_time(s.end),
        state: s.state.into(),
        good: long(s.good),
        total: long(s.total),
        reason: s.reason,
    }
}

/// How many statuses a list asks for: `n` between 1 and [`MAX_STATUSES`].
fn how_many(n: Option<i32>) -> Result<usize> {
    match n {
        None => Ok(DEFAULT_PAGE),
        Some(n) if n >= 1 && n as usize <= MAX_STATUSES => Ok(n as usize),
        Some(n) => Err(error(
            Code::BadUserInput,
            format!("must be between 1 and {MAX_STATUSES}, not {n}"),
        )),
    }
}

/// The statuses of every entity the view sees that an SLO covers or has
/// slices of in its window, of the SLO named `slo` (all when `None`), kept
/// by `keep`, worst first, at most `worst`.
pub async fn slo_statuses(
    ctx: &Context<'_>,
    slo: Option<&str>,
    worst: Option<i32>,
    keep: impl Fn(&View, &EntityRef) -> bool,
) -> Result<Vec<SloStatusNode>> {
    let n = how_many(worst)?;
    let view = view(ctx)?;
    let worst = state(ctx)
        .service
        .slo_worst(slo, n, |e| view.sees(e) && keep(view, e))
        .await
        .map_err(|e| store_error(&e))?;
    Ok(worst.into_iter().map(SloStatusNode).collect())
}

/// What `slos` on `entity` lists: the SLOs stated for the entity itself,
/// then (worst first) those of the entities under it as the root lists
/// them; `first` of them at most.
pub(super) async fn slos_of(
    ctx: &Context<'_>,
    entity: &EntityRef,
    slo: Option<&str>,
    first: Option<i32>,
) -> Result<Vec<SloStatusNode>> {
    let n = how_many(first)?;
    let service = &state(ctx).service;
    let mut own = service
        .slos_of(entity, slo)
        .await
        .map_err(|e| store_error(&e))?;
    if !matches!(entity, EntityRef::Asset { .. }) {
        let below = slo_statuses(ctx, slo, Some(MAX_STATUSES as i32), |view, e| {
            e != entity && under(view, entity, e)
        })
        .await?;
        own.extend(below.into_iter().map(|s| s.0));
    }
    own.truncate(n);
    Ok(own.into_iter().map(SloStatusNode).collect())
}

/// Whether `e` is below `parent` (a tenant's flows, systems, checks and
/// assets; a flow's systems...; a system's checks and assets; a check's
/// assets).
fn under(view: &View, parent: &EntityRef, e: &EntityRef) -> bool {
    let index = &view.index;
    match parent {
        EntityRef::Tenant(t) => index.within(e, Some(t)),
        EntityRef::Flow(f) => index.flow(f).is_some_and(|f| index.in_flow(e, f)),
        EntityRef::System(s) => match e {
            EntityRef::Check(c) | EntityRef::Asset { check: c, .. } => {
                index.check(c).is_some_and(|c| c.system == *s)
            }
            _ => false,
        },
        EntityRef::Check(c) => matches!(e, EntityRef::Asset { check, .. } if check == c),
        EntityRef::Asset { .. } => false,
    }
}

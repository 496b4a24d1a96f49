//! What an SLO states, as the config gives it: the entities it covers, the
//! indicator judged on each of their slices, and how the slices count
//! against a target over a window.
//!
//! It owns the definition only: it must not judge slices (the store's
//! writer does, from what a run brings) nor read anything.

use std::time::Duration;

use chrono::NaiveTime;

use super::calendar::{Calendar, SliceLen, Window};
use super::figures::Counting;
use crate::health::{EntityRef, Scope, Status};

/// One `[[slos]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Unique among SLOs; lowercase letters, digits and `-`, as metrics
    /// labels and health reasons show it.
    pub name: String,
    pub description: Option<String>,
    /// The entities it is stated for: each entity at `level` whose place
    /// the globs match has its own slices and figures.
    pub scope: Scope,
    pub level: Level,
    pub indicator: Indicator,
    /// Slice length and the time zone slices and calendar months follow.
    pub calendar: Calendar,
    pub window: Window,
    /// Target, budgeting, and what no-data and excluded slices count as.
    pub counting: Counting,
    /// The status an entity's health takes while its budget is spent
    /// (`WARNING` or `UNHEALTHY`).
    pub severity: Status,
    /// Remaining-budget ratios (between 0 and 1, highest first) whose
    /// crossing downward raises a health event the alert routes see.
    pub budget_alerts: Vec<f64>,
    /// Multiwindow burn-rate events, for hourly slices only.
    pub burn_alerts: bool,
}

impl Slo {
    /// Its figures at `now` (ms) from sums of an entity's stored slices:
    /// see [`super::figures::figures_from_sums`].
    pub fn figures_from_sums(
        &self,
        now: i64,
        totals: &super::Totals,
        lookbacks: &[super::Totals; 4],
    ) -> super::Figures {
        super::figures::figures_from_sums(
            &self.counting,
            &self.calendar,
            self.window,
            now,
            totals,
            lookbacks,
        )
    }

    /// `20d`, `480h`... for a rolling window; `1M` for the calendar month.
    pub fn window_text(&self) -> String {
        match (self.window, self.calendar.slice) {
            (Window::Rolling { slices }, SliceLen::Day) => format!("{slices}d"),
            (Window::Rolling { slices }, SliceLen::Hour) if slices % 24 == 0 => {
                format!("{}d", slices / 24)
            }
            (Window::Rolling { slices }, SliceLen::Hour) => format!("{slices}h"),
            (Window::CalendarMonth, _) => "1M".to_owned(),
        }
    }
}

/// The level of the entities an SLO is stated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Tenant,
    Flow,
    System,
    Check,
    Asset,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Tenant,
        Level::Flow,
        Level::System,
        Level::Check,
        Level::Asset,
    ];

    /// The level `entity` sits at.
    pub fn of(entity: &EntityRef) -> Level {
        match entity {
            EntityRef::Tenant(_) => Level::Tenant,
            EntityRef::Flow(_) => Level::Flow,
            EntityRef::System(_) => Level::System,
            EntityRef::Check(_) => Level::Check,
            EntityRef::Asset { .. } => Level::Asset,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Tenant => "tenant",
            Level::Flow => "flow",
            Level::System => "system",
            Level::Check => "check",
            Level::Asset => "asset",
        }
    }
}

/// What makes a slice good.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Indicator {
    /// Every run in the slice observed the asset (it is there and
    /// readable); a slice with a run that failed is bad, one without a run
    /// has no data. Under occurrences each run is one event. A transient
    /// failure that is retried counts once its retries end, as health does.
    Availability,
    /// The asset's received count did not drop more than `max_drop` (a
    /// ratio, 0.05 for 5%) from the previous observation's (for a late
    /// report, the latest count known when it arrives); each observation
    /// with a count is one event, the first one good.
    Completeness { max_drop: f64 },
    /// The asset's data was fresh enough.
    Freshness(FreshnessGoal),
    /// The entity was HEALTHY: bad if it was anything else at any
    /// evaluation in the slice (a run's, a staleness sweep's, a roll-up's).
    Healthy,
}

impl Indicator {
    /// The name the config and OpenSLO use.
    pub fn name(&self) -> &'static str {
        match self {
            Indicator::Availability => "availability",
            Indicator::Completeness { .. } => "completeness",
            Indicator::Freshness(_) => "freshness",
            Indicator::Healthy => "healthy",
        }
    }
}

/// When a freshness slice is good.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FreshnessGoal {
    /// The day's refresh landed by this time of day, in the SLO's time zone
    /// (day slices only): an observation seeing data refreshed that day by
    /// the deadline is good, refreshed later bad; one after the deadline
    /// still seeing an earlier day's data is bad ("no refresh landed"), one
    /// before it says nothing yet.
    Deadline(NaiveTime),
    /// Every observation in the slice saw the data at most this old.
    MaxAge(Duration),
    /// The asset's own freshness rule held at every observation in the
    /// slice.
    Rule,
}

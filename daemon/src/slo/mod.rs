//! Service level objectives (issue 16): an SLO states that an indicator
//! held on a share of the slices of a window ("freshness of ANALYTICS.* met
//! on 95% of days over 20 days"); its figures say how much of its error
//! budget is left and how fast it burns.
//!
//! This module owns what an SLO states ([`objective`], read from
//! `[[slos]]`), the time arithmetic ([`calendar`]) and the figures
//! ([`figures`]) in OpenSLO's vocabulary, and the translation to and from
//! OpenSLO v1 documents ([`openslo`]). It must not read the store nor
//! judge health: slices arrive judged, and what an exhausted budget does to
//! an entity's health is the health engine's to say.

pub mod calendar;
pub mod figures;
pub mod objective;
pub mod openslo;

pub use calendar::{Calendar, SliceLen, Window};
pub use figures::{
    Budgeting, Counting, Counts, Exhaustion, Figures, Lookback, NO_BUDGET, Ranking, Slice,
    SliceState, Totals,
};
pub use objective::{FreshnessGoal, Indicator, Level, Slo};

/// The earliest start of any of `slos`' windows at `now` (ms): slices
/// before it are outside every window, and retention deletes them. `None`
/// without SLOs (their slices wait for a reload that brings them back).
pub fn keep_slices_from(slos: &[Slo], now: i64) -> Option<i64> {
    slos.iter()
        .map(|s| s.calendar.window(s.window, now).start)
        .min()
}

/// `text` (RFC 3339) in milliseconds since the epoch, for the tests.
#[cfg(test)]
fn at(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

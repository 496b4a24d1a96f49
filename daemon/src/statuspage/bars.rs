//! The 90 daily bars of one entity (flow, system, check or asset), as the
//! public status page and the signed-in pages draw them, from the GraphQL
//! API's `history(days:)` buckets.
//!
//! It owns how a day looks and reads: coloured by the day's worst status
//! (grey without data, blue when a maintenance window covered the entity),
//! drawn at a height that also says the status (a healthy day full, worse
//! days lower), so status is never told by colour alone; each run of alike
//! days carries its dates, status and uptime as text for screen readers and
//! as a tooltip. It must not fetch anything: callers query the API with
//! [`FIELDS`] and hand the buckets in.
//!
//! Alike consecutive days (same look, same uptime as printed) are drawn as
//! one element whose background repeats a bar per day: 90 bars of a quiet
//! entity cost one element, which keeps a page of a thousand entities small.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use crate::health::Status;

/// The fields of a `HistoryBucket` the bars need, for a query's selection:
/// `history(days: 90) { ...  }`.
pub const FIELDS: &str = "day status uptimePercent maintenance";

/// One day of history, as `history(days:)` answers it with [`FIELDS`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Day {
    pub day: DateTime<Utc>,
    /// The worst status of the day; `None` when nothing was evaluated.
    pub status: Option<Status>,
    pub uptime_percent: Option<f64>,
    /// The maintenance window that covered the entity that day.
    pub maintenance: Option<String>,
}

/// How a day is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    NoData,
    Maintenance,
    Status(Status),
}

impl Look {
    fn of(day: &Day) -> Look {
        match (&day.maintenance, day.status) {
            (Some(_), _) => Look::Maintenance,
            (None, Some(s)) => Look::Status(s),
            (None, None) => Look::NoData,
        }
    }

    /// The CSS class that colours the bar and sets its height.
    fn class(self) -> &'static str {
        match self {
            Look::NoData => "bar bar-none",
            Look::Maintenance => "bar bar-maintenance",
            Look::Status(s) => match s {
                Status::Healthy => "bar bar-healthy",
                Status::Warning => "bar bar-warning",
                Status::Unknown => "bar bar-unknown",
                Status::Unhealthy => "bar bar-unhealthy",
            },
        }
    }
}

/// A status in words, as the page shows it next to its icon.
pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Healthy => "Healthy",
        Status::Warning => "Warning",
        Status::Unknown => "Unknown",
        Status::Unhealthy => "Unhealthy",
    }
}

/// A percentage with at most two decimals, trailing zeros trimmed
/// (`99.5%`, `100%`), as bars and badges print uptime. A share short of
/// 100% is never printed as `100%` (one failed evaluation among 20,000 is
/// `99.99%`), so an uptime never reads perfect next to a failure.
pub fn percent(p: f64) -> String {
    let p = p.clamp(0.0, 100.0);
    let text = match format!("{p:.2}") {
        rounded if rounded == "100.00" && p < 100.0 => "99.99".to_owned(),
        rounded => rounded,
    };
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// The uptime over `days`: the mean of the days' uptime, over the days with
/// data; `None` when none has any.
pub fn uptime(days: &[Day]) -> Option<f64> {
    let known: Vec<f64> = days.iter().filter_map(|d| d.uptime_percent).collect();
    mean(&known)
}

/// The mean of `uptimes` (each a day's), `None` for none.
pub fn mean(uptimes: &[f64]) -> Option<f64> {
    (!uptimes.is_empty()).then(|| uptimes.iter().sum::<f64>() / uptimes.len() as f64)
}

/// What a day says in words: status (or maintenance, or no data) and
/// uptime.
fn words(day: &Day) -> String {
    let status = match day.status {
        Some(s) => status_word(s).to_lowercase(),
        None => "no data".to_owned(),
    };
    match (&day.maintenance, day.uptime_percent) {
        (Some(_), Some(u)) => format!("maintenance, worst {status}, {} up", percent(u)),
        (Some(_), None) => format!("maintenance, {status}"),
        (None, Some(u)) => format!("{status}, {} up", percent(u)),
        (None, None) => status,
    }
}

fn date(day: &DateTime<Utc>) -> String {
    day.format("%-d %b %Y").to_string()
}

/// Consecutive days that read the same.
struct Run<'a> {
    first: &'a Day,
    last: &'a Day,
    days: usize,
    look: Look,
    words: String,
}

impl Run<'_> {
    fn when(&self) -> String {
        if self.days == 1 {
            date(&self.first.day)
        } else {
            format!("{} to {}", date(&self.first.day), date(&self.last.day))
        }
    }
}

fn runs(days: &[Day]) -> Vec<Run<'_>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    for day in days {
        let (look, words) = (Look::of(day), words(day));
        match runs.last_mut() {
            Some(run) if run.look == look && run.words == words => {
                run.last = day;
                run.days += 1;
            }
            _ => runs.push(Run {
                first: day,
                last: day,
                days: 1,
                look,
                words,
            }),
        }
    }
    runs
}

/// The bars of `days` (oldest first) for the entity named `label`, with
/// the uptime over them underneath.
pub fn bars(label: &str, days: &[Day]) -> Markup {
    let uptime = uptime(days);
    html! {
        div.bars {
            ol.bars-days aria-label={ (label) ": the last " (days.len()) " days, oldest first" } {
                @for run in runs(days) {
                    @let text = format!("{}: {}", run.when(), run.words);
                    li class=(run.look.class()) style={ "--n:" (run.days) } title=(text) {
                        span.vh { (text) }
                    }
                }
            }
            p.bars-uptime {
                @match uptime {
                    Some(u) => { (percent(u)) " uptime over " (days.len()) " days" },
                    None => { "No data in " (days.len()) " days" },
                }
            }
        }
    }
}

/// The styles of [`bars`] and of the legend: one bar per day drawn by a
/// repeating background, heights by status. Pages include it once.
pub const CSS: &str = "\
.bars-days{display:flex;align-items:flex-end;gap:0;height:2rem;margin:.25rem 0;padding:0;list-style:none}\
.bar{flex:var(--n) 1 0;height:100%;--c:#2e7d32;background:repeating-linear-gradient(to right,var(--c) 0 calc(100% / var(--n) - 1px),transparent calc(100% / var(--n) - 1px) calc(100% / var(--n)))}\
.bar-healthy{--c:#2e7d32}.bar-warning{--c:#b26a00;height:70%}\
.bar-unknown{--c:#546e7a;height:45%}.bar-unhealthy{--c:#c62828;height:40%}\
.bar-maintenance{--c:#1565c0}.bar-none{--c:#bdbdbd;height:20%}\
.bars-uptime{margin:0;font-size:.875rem}\
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";

/// A key to the bars' colours and heights, in words.
pub fn legend() -> Markup {
    let items = [
        (Look::Status(Status::Healthy), "healthy"),
        (Look::Status(Status::Warning), "warning"),
        (Look::Status(Status::Unknown), "unknown"),
        (Look::Status(Status::Unhealthy), "unhealthy"),
        (Look::Maintenance, "maintenance"),
        (Look::NoData, "no data"),
    ];
    html! {
        ul.legend aria-label="Key to the daily bars" {
            @for (look, word) in items {
                li { span class=(look.class()) style="--n:1" aria-hidden="true" {} " " (word) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32, status: Option<Status>, uptime: Option<f64>, maintenance: bool) -> Day {
        Day {
            day: format!("2026-11-{d:02}T00:00:00Z").parse().unwrap(),
            status,
            uptime_percent: uptime,
            maintenance: maintenance.then(|| "nightly".to_owned()),
        }
    }

    #[test]
    fn alike_days_are_one_run_and_each_run_says_its_dates_status_and_uptime() {
        let days = [
            day(1, None, None, false),
            day(2, None, None, false),
            day(3, Some(Status::Healthy), Some(100.0), false),
            day(4, Some(Status::Healthy), Some(100.0), false),
            day(5, Some(Status::Unhealthy), Some(62.5), false),
            day(6, Some(Status::Warning), Some(99.0), true),
        ];
        let html = bars("Docs <flow>", &days).into_string();
        assert!(
            html.contains("Docs &lt;flow&gt;: the last 6 days"),
            "{html}"
        );
        assert!(html.contains("1 Nov 2026 to 2 Nov 2026: no data"), "{html}");
        assert!(
            html.contains("3 Nov 2026 to 4 Nov 2026: healthy, 100% up"),
            "{html}"
        );
        assert!(html.contains("5 Nov 2026: unhealthy, 62.5% up"), "{html}");
        assert!(
            html.contains("6 Nov 2026: maintenance, worst warning, 99% up"),
            "{html}"
        );
        assert_eq!(html.matches("<li ").count(), 4, "{html}");
        assert!(html.contains("bar bar-maintenance"), "{html}");
        // (100 + 100 + 62.5 + 99) / 4
        assert!(html.contains("90.38% uptime over 6 days"), "{html}");
    }

    #[test]
    fn days_without_any_data_say_so() {
        let days = [day(1, None, None, false)];
        let html = bars("x", &days).into_string();
        assert!(html.contains("No data in 1 days"), "{html}");
    }

    #[test]
    fn percentages_keep_two_decimals_at_most() {
        assert_eq!(percent(100.0), "100%");
        assert_eq!(percent(99.5), "99.5%");
        assert_eq!(percent(99.999), "99.99%");
        assert_eq!(percent(99.994), "99.99%");
        assert_eq!(percent(12.345_6), "12.35%");
        assert_eq!(percent(0.0), "0%");
    }
}

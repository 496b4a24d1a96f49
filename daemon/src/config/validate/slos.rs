//! The `[[slos]]` section: each SLO's scope, indicator, slices, window and
//! counting, every mistake named at its field. The JSON Schema has already
//! checked types and names; this checks meaning (a target strictly between
//! 0 and 1, a window that is whole slices, an indicator's fields fitting
//! it and its level).

use chrono::NaiveTime;

use super::*;
use crate::slo::{
    Budgeting, Calendar, Counting, Counts, FreshnessGoal, Indicator, Level, SliceLen, Slo,
    Window as SloWindow,
};

/// The longest window: slices are kept for the longest configured, so this
/// bounds what each covered entity stores (8,784 rows at hourly slices).
const MAX_WINDOW_DAYS: u64 = 366;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

pub(super) fn slos(cx: &mut Cx<'_>, json: &Value) -> Option<Vec<Slo>> {
    unique_keys(cx, json, "slos", "name", "SLO");
    let mut slos = Vec::new();
    let mut ok = true;
    for (i, s) in elements(json, "/slos") {
        match slo(cx, s, &format!("/slos/{i}")) {
            Some(s) => slos.push(s),
            None => ok = false,
        }
    }
    ok.then_some(slos)
}

fn slo(cx: &mut Cx<'_>, s: &Value, at: &str) -> Option<Slo> {
    let mut ok = true;
    let scope = scope(s);
    if scope == Scope::default() {
        cx.error(
            at,
            "name at least one of tenant, flow, system, check or asset (globs; \"*\" is all)",
        );
        ok = false;
    }
    let level = match str_at(s, "level") {
        None => Level::Asset,
        Some(text) => Level::ALL.into_iter().find(|l| l.as_str() == text)?,
    };
    let indicator = indicator(cx, s, at, level);
    let slice = match str_at(s, "slice").unwrap_or("1d") {
        "1h" => SliceLen::Hour,
        "1d" => SliceLen::Day,
        _ => return None,
    };
    if let Some(Indicator::Freshness(FreshnessGoal::Deadline(_))) = indicator
        && slice != SliceLen::Day
    {
        cx.error_once(
            &format!("{at}/deadline"),
            "a deadline is a time of day: it needs `slice = \"1d\"` (use `max_age` with hour slices)",
        );
        ok = false;
    }
    let zone = match s.get("timezone") {
        None => Some(chrono_tz::UTC),
        Some(z) => {
            let zone = z.as_str().and_then(parse_zone);
            if zone.is_none() {
                cx.error_once(
                    &format!("{at}/timezone"),
                    format!("unknown time zone {z}: write an IANA name such as \"Europe/Berlin\" or \"UTC\""),
                );
            }
            zone
        }
    };
    let window = window(cx, s.get("window"), &format!("{at}/window"), slice);
    let target = ratio(cx, s.get("target"), &format!("{at}/target"));
    if target.is_some_and(|t| t <= 0.0 || t >= 1.0) {
        cx.error_once(
            &format!("{at}/target"),
            "a target must be above 0 and below 1 (0.95 or \"95%\"): at 1 there is no error budget",
        );
        ok = false;
    }
    let counts = |key: &str, default: Counts| match str_at(s, key) {
        None => Some(default),
        Some("good") => Some(Counts::Good),
        Some("bad") => Some(Counts::Bad),
        Some("excluded") => Some(Counts::Excluded),
        Some(_) => None,
    };
    let budgeting = match str_at(s, "budgeting").unwrap_or("timeslices") {
        "timeslices" => Budgeting::Timeslices,
        "occurrences" => Budgeting::Occurrences,
        _ => return None,
    };
    let severity = match str_at(s, "severity").unwrap_or("WARNING") {
        "WARNING" => Status::Warning,
        "UNHEALTHY" => Status::Unhealthy,
        _ => return None,
    };
    let budget_alerts = budget_alerts(cx, s, at);
    let burn_alerts = match s.get("burn_alerts").and_then(Value::as_bool) {
        Some(true) if slice == SliceLen::Day => {
            cx.error_once(
                &format!("{at}/burn_alerts"),
                "burn-rate alerts need hour slices: a day-sliced budget is a handful of slices, watch it with `budget_alerts`",
            );
            ok = false;
            false
        }
        Some(on) => on,
        None => slice == SliceLen::Hour,
    };
    let counting = Counting {
        target: target?,
        budgeting,
        no_data: counts("no_data", Counts::Bad)?,
        excluded: counts("maintenance", Counts::Excluded)?,
    };
    ok.then_some(())?;
    Some(Slo {
        name: str_at(s, "name")?.to_owned(),
        description: str_at(s, "description").map(str::to_owned),
        scope,
        level,
        indicator: indicator?,
        calendar: Calendar::new(slice, zone?),
        window: window?,
        counting,
        severity,
        budget_alerts: budget_alerts?,
        burn_alerts,
    })
}

fn indicator(cx: &mut Cx<'_>, s: &Value, at: &str, level: Level) -> Option<Indicator> {
    let name = str_at(s, "indicator")?;
    let stray = |cx: &mut Cx<'_>, key: &str| {
        let present = s.get(key).is_some();
        if present {
            cx.error_once(
                &format!("{at}/{key}"),
                format!("`{key}` does not apply to the {name} indicator"),
            );
        }
        present
    };
    let mut ok = true;
    if name != "completeness" {
        ok &= !stray(cx, "max_drop");
    }
    if name != "freshness" {
        ok &= !stray(cx, "deadline");
        ok &= !stray(cx, "max_age");
    }
    if name != "healthy" && level != Level::Asset {
        cx.error_once(
            &format!("{at}/level"),
            format!("the {name} indicator is judged on assets; only `healthy` takes another level"),
        );
        ok = false;
    }
    let indicator = match name {
        "availability" => Indicator::Availability,
        "healthy" => Indicator::Healthy,
        "completeness" => {
            let max_drop = match s.get("max_drop") {
                None => 0.05,
                Some(v) => {
                    let p = format!("{at}/max_drop");
                    let drop = ratio(cx, Some(v), &p)?;
                    if drop >= 1.0 {
                        cx.error_once(&p, "a drop of 100% or more allows anything: give less than 1 (0.05 or \"5%\")");
                        return None;
                    }
                    drop
                }
            };
            Indicator::Completeness { max_drop }
        }
        "freshness" => match (s.get("deadline"), s.get("max_age")) {
            (Some(_), Some(_)) => {
                cx.error(at, "give `deadline` or `max_age`, not both (neither uses the asset's freshness rule)");
                return None;
            }
            (Some(deadline), None) => {
                let p = format!("{at}/deadline");
                let text = deadline.as_str()?;
                match NaiveTime::parse_from_str(text.trim(), "%H:%M") {
                    Ok(t) => Indicator::Freshness(FreshnessGoal::Deadline(t)),
                    Err(_) => {
                        cx.error_once(
                            &p,
                            format!("{text:?} is not a time of day: write HH:MM, e.g. \"06:00\""),
                        );
                        return None;
                    }
                }
            }
            (None, Some(age)) => {
                let p = format!("{at}/max_age");
                let age = cx.duration(age, &p)?;
                if age.is_zero() {
                    cx.error_once(&p, "must be more than zero");
                    return None;
                }
                Indicator::Freshness(FreshnessGoal::MaxAge(age))
            }
            (None, None) => Indicator::Freshness(FreshnessGoal::Rule),
        },
        _ => return None,
    };
    ok.then_some(indicator)
}

/// `"20d"`, `"48h"` (whole slices, at most [`MAX_WINDOW_DAYS`]) or `"month"`.
fn window(cx: &mut Cx<'_>, value: Option<&Value>, at: &str, slice: SliceLen) -> Option<SloWindow> {
    let Some(value) = value else {
        return Some(SloWindow::Rolling {
            slices: 28 * slices_per_day(slice),
        });
    };
    let text = value.as_str()?;
    if text.trim() == "month" {
        return Some(SloWindow::CalendarMonth);
    }
    let length = match parse_duration(text) {
        Ok(d) => d,
        Err(e) => {
            cx.error_once(
                at,
                format!("{e}; or write \"month\" for the calendar month"),
            );
            return None;
        }
    };
    let (unit, name) = match slice {
        SliceLen::Hour => (HOUR, "an hour"),
        SliceLen::Day => (DAY, "a day"),
    };
    if length.is_zero() || length.as_secs() % unit.as_secs() != 0 {
        cx.error_once(
            at,
            format!("a window is whole slices: {text:?} is not a positive multiple of {name}"),
        );
        return None;
    }
    if length > DAY * MAX_WINDOW_DAYS as u32 {
        cx.error_once(at, format!("a window is at most {MAX_WINDOW_DAYS}d"));
        return None;
    }
    let slices = u32::try_from(length.as_secs() / unit.as_secs()).ok()?;
    Some(SloWindow::Rolling { slices })
}

fn slices_per_day(slice: SliceLen) -> u32 {
    match slice {
        SliceLen::Hour => 24,
        SliceLen::Day => 1,
    }
}

/// Remaining-budget levels, highest first, each between 0 and 1.
fn budget_alerts(cx: &mut Cx<'_>, s: &Value, at: &str) -> Option<Vec<f64>> {
    let Some(list) = s.get("budget_alerts") else {
        return Some(vec![0.5, 0.0]);
    };
    let mut levels = Vec::new();
    let mut ok = true;
    for (j, v) in list.as_array()?.iter().enumerate() {
        let p = format!("{at}/budget_alerts/{j}");
        match ratio(cx, Some(v), &p) {
            Some(level) if level <= 1.0 => levels.push(level),
            Some(_) => {
                cx.error_once(&p, "a budget level is between 0% and 100%");
                ok = false;
            }
            None => ok = false,
        }
    }
    levels.sort_by(|a, b| b.total_cmp(a));
    levels.dedup();
    ok.then_some(levels)
}

/// A ratio as a number (`0.95`) or a percent (`"95%"`).
fn ratio(cx: &mut Cx<'_>, value: Option<&Value>, at: &str) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64().filter(|r| r.is_finite() && *r >= 0.0),
        Value::String(text) => {
            let number = text.trim().strip_suffix('%').map(str::trim);
            match number.and_then(|n| n.parse::<f64>().ok()) {
                Some(percent) if percent.is_finite() && percent >= 0.0 => Some(percent / 100.0),
                _ => {
                    cx.error_once(
                        at,
                        format!("{text:?} is not a ratio: write 0.95 or \"95%\""),
                    );
                    None
                }
            }
        }
        _ => None,
    }
}

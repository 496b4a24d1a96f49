//! Maintenance windows: when one is in force and which entities it covers.
//!
//! It owns a window's schedule (one-off `start`..`end`, or recurring: a cron
//! pattern in an IANA time zone plus a duration) and its scope (globs on
//! tenant, flow, system, check and asset). It must not read the clock, the
//! config file or the store: the config and the API build [`Window`]s, the
//! book asks them about `now`.
//!
//! A scope covers the entities at and below its most specific level: a window
//! on `system = "warehouse"` covers that system, its checks and their assets,
//! not the flows and tenants it rolls up into (they also hold systems that
//! are not in maintenance, and their alerts must still go out).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::model::EntityRef;
use super::parse::glob_match;

/// A named span of time during which changes of the entities in its scope
/// are recorded but announce nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Unique among the daemon's windows; health events name it.
    pub name: String,
    pub reason: String,
    pub scope: Scope,
    pub when: When,
}

/// Which entities a window covers: each glob given must match the entity's
/// place (tenant > flow > system > check > asset) wherever it sits (a system
/// shared by two tenants' flows is covered by a window of one tenant only
/// when it names both); levels not given match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub tenant: Option<String>,
    pub flow: Option<String>,
    pub system: Option<String>,
    pub check: Option<String>,
    pub asset: Option<String>,
}

/// When a window is in force.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// From `start` (inclusive) to `end` (exclusive).
    Once { start: SystemTime, end: SystemTime },
    /// From each occurrence of `cron` in `zone` for `duration`.
    Recurring(Box<Recurring>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recurring {
    /// The pattern as written.
    pub expr: String,
    pub cron: croner::Cron,
    pub zone: Tz,
    pub duration: Duration,
}

/// One entity's place: tenant, flow, system, check, asset, from the top, as
/// far down as the entity goes (a system in no flow has neither tenant nor
/// flow).
pub type Place<'a> = [Option<&'a str>; 5];

impl Scope {
    /// The deepest level named (0 = tenant .. 4 = asset), `None` when none is.
    fn depth(&self) -> Option<usize> {
        self.levels().iter().rposition(Option::is_some)
    }

    fn levels(&self) -> [Option<&str>; 5] {
        [
            self.tenant.as_deref(),
            self.flow.as_deref(),
            self.system.as_deref(),
            self.check.as_deref(),
            self.asset.as_deref(),
        ]
    }

    /// Whether the scope covers `entity`, found at each of `places`.
    pub fn covers<'a>(&self, entity: &EntityRef, places: &[Place<'a>]) -> bool {
        let level = level_of(entity);
        if places.is_empty() || self.depth().is_some_and(|d| d > level) {
            return false;
        }
        let globs = self.levels();
        places.iter().all(|place| {
            globs.iter().zip(place).all(|(glob, value)| match glob {
                None => true,
                Some(glob) => value.is_some_and(|v| glob_match(glob, v)),
            })
        })
    }
}

/// How deep an entity sits: 0 for a tenant .. 4 for an asset.
fn level_of(entity: &EntityRef) -> usize {
    match entity {
        EntityRef::Tenant(_) => 0,
        EntityRef::Flow(_) => 1,
        EntityRef::System(_) => 2,
        EntityRef::Check(_) => 3,
        EntityRef::Asset { .. } => 4,
    }
}

impl Window {
    /// Whether the window is in force at `now`.
    pub fn active_at(&self, now: SystemTime) -> bool {
        self.current_span(now).is_some()
    }

    /// The span in force at `now`: `(start, end)`.
    pub fn current_span(&self, now: SystemTime) -> Option<(SystemTime, SystemTime)> {
        match &self.when {
            When::Once { start, end } => (*start <= now && now < *end).then_some((*start, *end)),
            When::Recurring(r) => {
                let at = DateTime::<Utc>::from(now).with_timezone(&r.zone);
                // The latest start at or before now: a later one would have
                // the later end, so it alone decides.
                let start: SystemTime = r.cron.find_previous_occurrence(&at, true).ok()?.into();
                let end = start + r.duration;
                (now < end).then_some((start, end))
            }
        }
    }

    /// The next time after `now` at which the window starts or ends (when to
    /// look again), `None` when it never changes again.
    pub fn next_boundary(&self, now: SystemTime) -> Option<SystemTime> {
        match &self.when {
            When::Once { start, end } => [*start, *end].into_iter().find(|t| *t > now),
            When::Recurring(r) => {
                let at = DateTime::<Utc>::from(now).with_timezone(&r.zone);
                let next_start: Option<SystemTime> =
                    r.cron.find_next_occurrence(&at, false).ok().map(Into::into);
                let end = self.current_span(now).map(|(_, end)| end);
                [next_start, end].into_iter().flatten().min()
            }
        }
    }

    /// Whether the window is in force at any time in `[from, to)` (an SLO
    /// slice it touches is excluded).
    pub fn overlaps(&self, from: SystemTime, to: SystemTime) -> bool {
        if self.active_at(from) {
            return true;
        }
        match &self.when {
            When::Once { start, end } => *start < to && from < *end,
            When::Recurring(r) => {
                let at = DateTime::<Utc>::from(from).with_timezone(&r.zone);
                r.cron
                    .find_next_occurrence(&at, false)
                    .is_ok_and(|next| SystemTime::from(next) < to)
            }
        }
    }

    /// Whether the window has nothing more to do after `now` (a one-off
    /// whose end has passed).
    pub fn is_over(&self, now: SystemTime) -> bool {
        matches!(self.when, When::Once { end, .. } if end <= now)
    }
}

/// Parses an IANA time zone name (`Europe/Berlin`).
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn utc(s: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    fn recurring(expr: &str, zone: &str, minutes: u64) -> Window {
        Window {
            name: "w".into(),
            reason: "r".into(),
            scope: Scope::default(),
            when: When::Recurring(Box::new(Recurring {
                expr: expr.into(),
                cron: croner::Cron::from_str(expr).unwrap(),
                zone: parse_zone(zone).unwrap(),
                duration: Duration::from_secs(minutes * 60),
            })),
        }
    }

    #[test]
    fn a_one_off_window_is_in_force_from_start_to_end() {
        let w = Window {
            when: When::Once {
                start: utc("2026-01-01T10:00:00Z"),
                end: utc("2026-01-01T11:00:00Z"),
            },
            ..recurring("0 0 * * *", "UTC", 1)
        };
        assert!(!w.active_at(utc("2026-01-01T09:59:59Z")));
        assert!(w.active_at(utc("2026-01-01T10:00:00Z")));
        assert!(w.active_at(utc("2026-01-01T10:59:59Z")));
        assert!(!w.active_at(utc("2026-01-01T11:00:00Z")));
        assert_eq!(
            w.next_boundary(utc("2026-01-01T09:00:00Z")),
            Some(utc("2026-01-01T10:00:00Z"))
        );
        assert_eq!(
            w.next_boundary(utc("2026-01-01T10:30:00Z")),
            Some(utc("2026-01-01T11:00:00Z"))
        );
        assert_eq!(w.next_boundary(utc("2026-01-01T11:00:00Z")), None);
        assert!(w.is_over(utc("2026-01-01T11:00:00Z")));
    }

    /// 09:00 in New York is 14:00 UTC in winter (EST) and 13:00 UTC once
    /// daylight saving starts (2026-03-08): the window follows the wall clock.
    #[test]
    fn a_recurring_window_follows_its_time_zone_across_a_dst_change() {
        let w = recurring("0 9 * * *", "America/New_York", 60);
        // Before the change: 14:00..15:00 UTC.
        assert!(!w.active_at(utc("2026-03-06T13:30:00Z")));
        assert!(w.active_at(utc("2026-03-06T14:30:00Z")));
        assert!(!w.active_at(utc("2026-03-06T15:00:00Z")));
        // After it: 13:00..14:00 UTC.
        assert!(w.active_at(utc("2026-03-09T13:30:00Z")));
        assert!(!w.active_at(utc("2026-03-09T14:30:00Z")));
        assert_eq!(
            w.current_span(utc("2026-03-09T13:30:00Z")),
            Some((utc("2026-03-09T13:00:00Z"), utc("2026-03-09T14:00:00Z")))
        );
        // The night of the change: the next start is 13:00 UTC, not 14:00.
        assert_eq!(
            w.next_boundary(utc("2026-03-08T02:00:00Z")),
            Some(utc("2026-03-08T13:00:00Z"))
        );
        assert_eq!(
            w.next_boundary(utc("2026-03-08T13:10:00Z")),
            Some(utc("2026-03-08T14:00:00Z"))
        );
    }

    #[test]
    fn a_recurring_window_spans_midnight_in_its_zone() {
        // Saturdays 23:00 Berlin (CET = UTC+1) for three hours.
        let w = recurring("0 23 * * 6", "Europe/Berlin", 180);
        assert!(w.active_at(utc("2026-01-03T22:00:00Z")));
        assert!(w.active_at(utc("2026-01-04T00:59:00Z")));
        assert!(!w.active_at(utc("2026-01-04T01:00:00Z")));
        assert!(!w.active_at(utc("2026-01-03T21:59:00Z")));
        assert!(!w.is_over(utc("2030-01-01T00:00:00Z")));
    }

    #[test]
    fn a_scope_covers_its_level_and_below_only() {
        let scope = Scope {
            system: Some("ware*".into()),
            ..Scope::default()
        };
        let system: Place = [Some("acme"), Some("orders"), Some("warehouse"), None, None];
        let check: Place = [
            Some("acme"),
            Some("orders"),
            Some("warehouse"),
            Some("rows"),
            None,
        ];
        let other: Place = [Some("acme"), Some("orders"), Some("crm"), None, None];
        assert!(scope.covers(&EntityRef::System("warehouse".into()), &[system]));
        assert!(scope.covers(&EntityRef::Check("rows".into()), &[check]));
        assert!(!scope.covers(&EntityRef::System("crm".into()), &[other]));
        let flow: Place = [Some("acme"), Some("orders"), None, None, None];
        assert!(!scope.covers(&EntityRef::Flow("orders".into()), &[flow]));
        // A tenant glob needs the entity to sit in a flow of that tenant.
        let tenant = Scope {
            tenant: Some("acme".into()),
            ..Scope::default()
        };
        assert!(tenant.covers(&EntityRef::Flow("orders".into()), &[flow]));
        let loose: Place = [None, None, Some("warehouse"), None, None];
        assert!(!tenant.covers(&EntityRef::System("warehouse".into()), &[loose]));
        // A system shared with another tenant's flow is not acme's alone.
        let globex: Place = [Some("globex"), Some("bills"), Some("warehouse"), None, None];
        let shared = EntityRef::System("warehouse".into());
        assert!(!tenant.covers(&shared, &[system, globex]));
        assert!(scope.covers(&shared, &[system, globex]));
    }

    #[test]
    fn a_window_overlaps_a_span_it_touches_at_any_time() {
        let w = Window {
            when: When::Once {
                start: utc("2026-01-01T10:00:00Z"),
                end: utc("2026-01-01T11:00:00Z"),
            },
            ..recurring("0 0 * * *", "UTC", 1)
        };
        let day = |d: &str, e: &str| w.overlaps(utc(d), utc(e));
        assert!(day("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"));
        assert!(day("2026-01-01T10:59:00Z", "2026-01-01T12:00:00Z"));
        assert!(!day("2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"));
        assert!(!day("2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z"));
        // 01:00-02:30 each night in Berlin (00:00-01:30 UTC in winter).
        let nightly = recurring("0 1 * * *", "Europe/Berlin", 90);
        let span = |d: &str, e: &str| nightly.overlaps(utc(d), utc(e));
        assert!(span("2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"));
        assert!(span("2026-01-01T23:00:00Z", "2026-01-02T00:30:00Z"));
        assert!(!span("2026-01-01T02:00:00Z", "2026-01-01T23:00:00Z"));
    }
}

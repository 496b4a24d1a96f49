//! Time arithmetic, free of state: slots, cron occurrences, jitter.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, SubsecRound, Utc};
use rand::Rng;
use tokio::time::Instant;

use crate::config::{Jitter, Schedule};

/// Where a slot sits on its schedule, before jitter. Interval slots live on the
/// monotonic clock, so they never drift; cron slots are wall-clock occurrences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum SlotAt {
    Interval(Instant),
    Cron(DateTime<Utc>),
}

/// A slot and the moment its run comes due (the slot plus jitter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Planned {
    pub at: SlotAt,
    pub fire: Instant,
}

/// The first occurrence of `cron` strictly after `after` (UTC), or `None` when
/// there is none (a pattern bound to past years) or croner gives up searching.
pub fn next_cron_occurrence(cron: &croner::Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // croner counts whole seconds: search after the second `after` falls in,
    // which is also strictly after `after` itself.
    cron.find_next_occurrence(&after.trunc_subsecs(0), false)
        .ok()
}

/// The first slot of a newly scheduled job: an interval job's is now, a cron
/// job's is its next occurrence.
pub(super) fn first_slot(
    schedule: &Schedule,
    jitter: Jitter,
    now: Instant,
    wall: SystemTime,
) -> Option<Planned> {
    match schedule {
        Schedule::Every(every) => {
            let every = interval(*every);
            Some(Planned {
                at: SlotAt::Interval(now),
                fire: later(now, draw(jitter_bound(jitter, every))),
            })
        }
        Schedule::Cron(c) => {
            let occurrence = next_cron_occurrence(&c.cron, utc(wall))?;
            Some(cron_slot(&c.cron, jitter, occurrence, now, wall))
        }
    }
}

/// The slot after `prev`, which has just come due at `now` (`wall`).
///
/// Normally the next one on the schedule; when that is already past (the
/// process was suspended, the wall clock jumped), the first one at or after now,
/// so missed slots are skipped rather than run in a burst.
pub(super) fn next_slot(
    schedule: &Schedule,
    jitter: Jitter,
    prev: SlotAt,
    now: Instant,
    wall: SystemTime,
) -> Option<Planned> {
    match (schedule, prev) {
        (Schedule::Every(every), SlotAt::Interval(prev)) => {
            let every = interval(*every);
            let mut at = later(prev, every);
            if at < now {
                let behind = (now - at).as_nanos().div_ceil(every.as_nanos());
                let skips = u32::try_from(behind).unwrap_or(u32::MAX);
                at = later(at, every.saturating_mul(skips));
            }
            Some(Planned {
                at: SlotAt::Interval(at),
                fire: later(at, draw(jitter_bound(jitter, every))),
            })
        }
        (Schedule::Cron(c), SlotAt::Cron(prev)) => {
            let mut occurrence = next_cron_occurrence(&c.cron, prev)?;
            let wall_now = utc(wall);
            if occurrence < wall_now {
                let just_before = wall_now - chrono::Duration::nanoseconds(1);
                occurrence = next_cron_occurrence(&c.cron, just_before)?;
            }
            Some(cron_slot(&c.cron, jitter, occurrence, now, wall))
        }
        // The kind of schedule changed; replace() reschedules such jobs with
        // first_slot, so this is only a safe answer, not a path taken.
        _ => first_slot(schedule, jitter, now, wall),
    }
}

/// Plans a cron occurrence on the monotonic clock. Jitter is a fraction of the
/// gap to the following occurrence.
fn cron_slot(
    cron: &croner::Cron,
    jitter: Jitter,
    occurrence: DateTime<Utc>,
    now: Instant,
    wall: SystemTime,
) -> Planned {
    let wait = (occurrence - utc(wall)).to_std().unwrap_or_default();
    let gap = next_cron_occurrence(cron, occurrence)
        .and_then(|next| (next - occurrence).to_std().ok())
        .unwrap_or_default();
    let at = later(now, wait);
    Planned {
        at: SlotAt::Cron(occurrence),
        fire: later(at, draw(jitter_bound(jitter, gap))),
    }
}

/// The most a start may be delayed, for a schedule whose slots are `period`
/// apart. Never more than the period: a longer delay would only push the run
/// past its next slot, which then is skipped.
pub(super) fn jitter_bound(jitter: Jitter, period: Duration) -> Duration {
    match jitter {
        Jitter::None => Duration::ZERO,
        // `f > 0.0` also rules out NaN, on which mul_f64 would panic.
        Jitter::Fraction(f) if f > 0.0 => period.mul_f64(f.min(1.0)),
        Jitter::Fraction(_) => Duration::ZERO,
        Jitter::Fixed(d) => d.min(period),
    }
}

/// A uniform random delay in `0..=bound`.
pub(super) fn draw(bound: Duration) -> Duration {
    let max = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..=max))
}

/// `t + d`, at most a century ahead: "never" in practice, and unlike
/// `Duration::MAX` it cannot overflow an `Instant`.
pub(super) fn later(t: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    t + d.min(CENTURY)
}

/// The interval, at least a millisecond: the config requires a second, and a
/// zero interval would spin.
fn interval(every: Duration) -> Duration {
    every.max(Duration::from_millis(1))
}

fn utc(wall: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(wall)
}

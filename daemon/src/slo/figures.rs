//! An SLO's figures, exactly, from its judged slices: attainment, the error
//! budget (total, spent, remaining), burn rates over fixed lookbacks, and
//! when the budget runs out at the current burn.
//!
//! The vocabulary is OpenSLO's: with **timeslices** budgeting a slice is one
//! unit (good or bad) and the budget is `(1 - target)` of the window's
//! slices; with **occurrences** each judged event (a run, an observation or
//! an evaluation, by indicator) is one unit and the budget is
//! `(1 - target)` of the events so far. Burn rate is the
//! error ratio over a lookback divided by `(1 - target)`: at 1 the budget
//! lasts exactly the window (the SRE workbook's definition).
//!
//! It owns only the arithmetic: it must not read the store nor judge a
//! slice (slices arrive judged).

use super::calendar::{Calendar, HOUR_MS, SliceLen, Window};

/// What one slice was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceState {
    Good,
    Bad,
    /// Nothing was observed in it.
    NoData,
    /// A maintenance window or a mute covered it.
    Excluded,
}

/// What a slice with no data, or an excluded one, counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counts {
    Good,
    Bad,
    /// Left out: neither good nor bad, and not part of the budget.
    Excluded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budgeting {
    Timeslices,
    Occurrences,
}

/// A slice as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub start: i64,
    pub state: SliceState,
    /// Good and total events in it (occurrences budgeting).
    pub good: u64,
    pub total: u64,
}

/// How an SLO counts, the parts of it the figures need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counting {
    /// Between 0 and 1, exclusive.
    pub target: f64,
    pub budgeting: Budgeting,
    pub no_data: Counts,
    pub excluded: Counts,
}

/// The lookbacks burn rates are given over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lookback {
    H1,
    H6,
    D1,
    D3,
}

impl Lookback {
    pub const ALL: [Lookback; 4] = [Lookback::H1, Lookback::H6, Lookback::D1, Lookback::D3];

    /// `1h`, `6h`, `1d` or `3d`, as metrics labels and messages show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookback::H1 => "1h",
            Lookback::H6 => "6h",
            Lookback::D1 => "1d",
            Lookback::D3 => "3d",
        }
    }

    pub fn hours(self) -> i64 {
        match self {
            Lookback::H1 => 1,
            Lookback::H6 => 6,
            Lookback::D1 => 24,
            Lookback::D3 => 72,
        }
    }

    /// Whether a burn rate over it means something for `slice`: a lookback
    /// shorter than a slice would see a part of one.
    pub fn fits(self, slice: SliceLen) -> bool {
        match slice {
            SliceLen::Hour => true,
            SliceLen::Day => self.hours() >= 24,
        }
    }

    /// The lookback whose burn is "the current burn": a day of hour
    /// slices, three of day slices (one day slice is all or nothing).
    pub fn current(slice: SliceLen) -> Lookback {
        match slice {
            SliceLen::Hour => Lookback::D1,
            SliceLen::Day => Lookback::D3,
        }
    }
}

/// When the budget runs out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exhaustion {
    /// Already spent.
    Spent,
    /// Not at the current burn (nothing bad lately).
    Never,
    /// At this time (ms), if the burn goes on as over the current lookback.
    At(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Slices judged so far in the window, raw (before the no-data and
    /// exclusion rules): good, bad, no data, excluded.
    pub slices: [u64; 4],
    /// Good units over counted units; `None` before anything counted.
    pub attainment: Option<f64>,
    /// The budget in units (slices or events).
    pub budget_total: f64,
    pub budget_spent: f64,
    /// Negative once overspent.
    pub budget_remaining: f64,
    /// `budget_remaining / budget_total`; `None` while the budget is 0
    /// (no events yet under occurrences, or every slice excluded).
    pub budget_remaining_ratio: Option<f64>,
    /// Over each lookback that fits the slice and saw a counted unit.
    pub burn_rates: Vec<(Lookback, f64)>,
    pub exhaustion: Exhaustion,
}

/// Good and bad units in one slice under `counting`.
fn units(counting: &Counting, slice: &Slice) -> (f64, f64) {
    let verdict = match slice.state {
        SliceState::Good => Counts::Good,
        SliceState::Bad => Counts::Bad,
        SliceState::NoData => counting.no_data,
        SliceState::Excluded => counting.excluded,
    };
    match (counting.budgeting, verdict) {
        (_, Counts::Excluded) => (0.0, 0.0),
        (Budgeting::Timeslices, Counts::Good) => (1.0, 0.0),
        (Budgeting::Timeslices, Counts::Bad) => (0.0, 1.0),
        (Budgeting::Occurrences, _) => {
            let good = slice.good.min(slice.total) as f64;
            (good, slice.total as f64 - good)
        }
    }
}

/// The figures of an SLO counted by `counting` over `window` at `now`, from
/// the stored `slices` (any order; those outside the judged part of the
/// window are ignored, a judged slice with no row has no data).
pub fn figures(
    counting: &Counting,
    calendar: &Calendar,
    window: Window,
    now: i64,
    stored: &[Slice],
) -> Figures {
    let span = calendar.window(window, now);
    let by_start: std::collections::HashMap<i64, &Slice> =
        stored.iter().map(|s| (s.start, s)).collect();
    let judged: Vec<Slice> = calendar
        .starts(span.start, span.elapsed_end)
        .map(|start| {
            by_start.get(&start).map_or(
                Slice {
                    start,
                    state: SliceState::NoData,
                    good: 0,
                    total: 0,
                },
                |s| **s,
            )
        })
        .collect();

    let mut raw = [0u64; 4];
    let (mut good, mut bad, mut excluded) = (0.0, 0.0, 0u64);
    for s in &judged {
        let i = match s.state {
            SliceState::Good => 0,
            SliceState::Bad => 1,
            SliceState::NoData => 2,
            SliceState::Excluded => 3,
        };
        raw[i] += 1;
        let (g, b) = units(counting, s);
        good += g;
        bad += b;
        let left_out = match s.state {
            SliceState::NoData => counting.no_data == Counts::Excluded,
            SliceState::Excluded => counting.excluded == Counts::Excluded,
            _ => false,
        };
        excluded += u64::from(left_out);
    }
    let allowed = 1.0 - counting.target;
    let budget_total = budget_total(
        counting,
        calendar.count(span.start, span.end),
        excluded,
        good + bad,
    );
    let budget_remaining = budget_total - bad;
    let burn = |lookback: Lookback| {
        let from = span.elapsed_end - lookback.hours() * HOUR_MS;
        let (g, b) = judged
            .iter()
            .filter(|s| s.start >= from)
            .map(|s| units(counting, s))
            .fold((0.0, 0.0), |(g, b), (g1, b1)| (g + g1, b + b1));
        (g + b > 0.0).then(|| b / (g + b) / allowed)
    };
    let burn_rates = Lookback::ALL
        .into_iter()
        .filter(|l| l.fits(calendar.slice))
        .filter_map(|l| burn(l).map(|rate| (l, rate)))
        .collect();
    let current = Lookback::current(calendar.slice);
    let exhaustion = if bad > 0.0 && budget_remaining <= 0.0 {
        Exhaustion::Spent
    } else {
        match loss_per_hour(counting, &judged, span.elapsed_end, current) {
            Some(per_hour) if per_hour > 0.0 => {
                let hours = budget_remaining / per_hour;
                Exhaustion::At(span.elapsed_end + (hours * HOUR_MS as f64) as i64)
            }
            _ => Exhaustion::Never,
        }
    };
    Figures::of(raw, good, bad, budget_total, burn_rates, exhaustion)
}

impl Figures {
    /// The figures of `good` and `bad` units against `budget_total`, with
    /// the slices by state (good, bad, no data, excluded).
    fn of(
        slices: [u64; 4],
        good: f64,
        bad: f64,
        budget_total: f64,
        burn_rates: Vec<(Lookback, f64)>,
        exhaustion: Exhaustion,
    ) -> Figures {
        let budget_remaining = budget_total - bad;
        Figures {
            slices,
            attainment: (good + bad > 0.0).then(|| good / (good + bad)),
            budget_total,
            budget_spent: bad,
            budget_remaining,
            budget_remaining_ratio: (budget_total > 0.0).then(|| budget_remaining / budget_total),
            burn_rates,
            exhaustion,
        }
    }
}

/// The sums of an SLO's stored slices of one entity over the judged part of
/// its window, by stored state (good, bad, excluded): enough to rank every
/// entity by budget left ([`budget_remaining_ratio`]) without reading each
/// slice, which a window of 480 hourly slices makes costly at 10,000
/// entities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Stored slices.
    pub slices: [u64; 3],
    /// Good events in them (a slice's at most its total).
    pub good: [u64; 3],
    pub total: [u64; 3],
}

impl Totals {
    /// Adds one stored slice (a slice with no data is never stored).
    pub fn add(&mut self, slice: &Slice) {
        let i = match slice.state {
            SliceState::Good => 0,
            SliceState::Bad => 1,
            SliceState::Excluded => 2,
            SliceState::NoData => return,
        };
        self.slices[i] += 1;
        self.good[i] += slice.good.min(slice.total);
        self.total[i] += slice.total;
    }
}

/// Good and bad units of stored slices summed in `totals` and of
/// `no_data` judged slices without a row, under `counting`, and how many
/// slices are left out of the budget: what [`figures`] adds up slice by
/// slice. Units are whole numbers, so the sums are the same in any order.
fn units_of(counting: &Counting, totals: &Totals, no_data: u64) -> (u64, u64, u64) {
    let [_, _, stored_excluded] = totals.slices;
    let mut left_out = 0;
    for (n, verdict) in [
        (no_data, counting.no_data),
        (stored_excluded, counting.excluded),
    ] {
        if verdict == Counts::Excluded {
            left_out += n;
        }
    }
    match counting.budgeting {
        Budgeting::Timeslices => {
            let [mut good, mut bad, _] = totals.slices;
            for (n, verdict) in [
                (no_data, counting.no_data),
                (stored_excluded, counting.excluded),
            ] {
                match verdict {
                    Counts::Good => good += n,
                    Counts::Bad => bad += n,
                    Counts::Excluded => {}
                }
            }
            (good, bad, left_out)
        }
        Budgeting::Occurrences => {
            // Slices with no data hold no events; excluded ones count
            // theirs unless excluded slices are left out.
            let states = if counting.excluded == Counts::Excluded {
                2
            } else {
                3
            };
            let good: u64 = totals.good[..states].iter().sum();
            let total: u64 = totals.total[..states].iter().sum();
            (good, total - good, left_out)
        }
    }
}

/// The budget total and the bad units of `totals`, the sums of the stored
/// slices in the judged part of a window of `slices` slices of which
/// `judged` are judged, as [`figures`] counts them; with the good units and
/// the slices without data.
fn budget_of(
    counting: &Counting,
    judged: u64,
    slices: u64,
    totals: &Totals,
) -> (f64, f64, f64, u64) {
    let no_data = judged.saturating_sub(totals.slices.iter().sum());
    let (good, bad, left_out) = units_of(counting, totals, no_data);
    let (good, bad) = (good as f64, bad as f64);
    let budget_total = budget_total(counting, slices, left_out, good + bad);
    (budget_total, good, bad, no_data)
}

/// The error budget in units: for timeslices, `1 - target` of the whole
/// window's `slices` (a calendar month's future ones included) less the
/// `left_out` ones; for occurrences, of the `counted` events.
fn budget_total(counting: &Counting, slices: u64, left_out: u64, counted: f64) -> f64 {
    let allowed = 1.0 - counting.target;
    match counting.budgeting {
        Budgeting::Timeslices => allowed * slices.saturating_sub(left_out) as f64,
        Budgeting::Occurrences => allowed * counted,
    }
}

/// The `budget_remaining_ratio` that [`figures`] gives, to the bit, from the
/// totals of the stored slices in the judged part of the window: units are
/// whole numbers, so their sums are exact in any order.
pub fn budget_remaining_ratio(
    counting: &Counting,
    calendar: &Calendar,
    window: Window,
    now: i64,
    totals: &Totals,
) -> Option<f64> {
    Ranking::at(counting, calendar, window, now).ratio(totals)
}

/// The rank key of an entity whose budget is 0 (nothing to rank it by): it
/// comes after every remaining ratio, which is at most 1 (nothing spent).
pub const NO_BUDGET: f64 = 2.0;

/// What the remaining ratio of an SLO's entities depends on besides their
/// sums, at one position of the window: how it counts, how many slices are
/// judged and how many the window has. The same for every entity of the
/// SLO, so the lists rank on a key kept per entity ([`Ranking::key`]) rather
/// than compute each one's ratio on every read.
///
/// For a rolling window both counts are the window's length whatever the
/// time, and occurrences use neither: the key then changes only with the
/// entity's sums. Only a calendar month under timeslices counts one more
/// judged slice as each passes, so its keys are taken again at each slice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranking {
    pub counting: Counting,
    /// Slices judged so far in the window.
    pub judged: u64,
    /// All the window's slices (a calendar month's future ones included).
    pub slices: u64,
}

impl Ranking {
    /// The ranking of an SLO counted by `counting` over `window` at `now`.
    pub fn at(counting: &Counting, calendar: &Calendar, window: Window, now: i64) -> Ranking {
        let span = calendar.window(window, now);
        Ranking {
            counting: *counting,
            judged: calendar.count(span.start, span.elapsed_end),
            slices: calendar.count(span.start, span.end),
        }
    }

    /// The remaining ratio of an entity with the sums `totals`, as
    /// [`figures`] gives it; `None` while its budget is 0.
    pub fn ratio(&self, totals: &Totals) -> Option<f64> {
        let (budget_total, _, bad, _) = budget_of(&self.counting, self.judged, self.slices, totals);
        (budget_total > 0.0).then(|| (budget_total - bad) / budget_total)
    }

    /// What the lists sort on, least budget left first: the remaining
    /// ratio, or [`NO_BUDGET`] after all of them. The store keeps it per
    /// entity and computes it with the same operations (see
    /// `store::slo`).
    pub fn key(&self, totals: &Totals) -> f64 {
        self.ratio(totals).unwrap_or(NO_BUDGET)
    }
}

/// The first judged slice `lookback` sees in `span` (its end when none):
/// burn rates over it count the slices from there to the span's end.
pub fn lookback_start(
    calendar: &Calendar,
    span: &super::calendar::WindowSpan,
    lookback: Lookback,
) -> i64 {
    let from = (span.elapsed_end - lookback.hours() * HOUR_MS).max(span.start);
    calendar
        .starts(from, span.elapsed_end)
        .find(|&s| s >= from)
        .unwrap_or(span.elapsed_end)
}

/// The figures [`figures`] gives, to the bit, from sums of the stored
/// slices instead of the slices: `totals` over the judged part of the
/// window, `lookbacks[i]` over the part [`Lookback::ALL`]`[i]` sees (from
/// its [`lookback_start`]; those that do not fit the slice are not read).
/// A list of many entities reads one row of sums each rather than each
/// one's hundreds of slices.
pub fn figures_from_sums(
    counting: &Counting,
    calendar: &Calendar,
    window: Window,
    now: i64,
    totals: &Totals,
    lookbacks: &[Totals; 4],
) -> Figures {
    let span = calendar.window(window, now);
    let rank = Ranking::at(counting, calendar, window, now);
    let (budget_total, good, bad, no_data) = budget_of(counting, rank.judged, rank.slices, totals);
    let allowed = 1.0 - counting.target;
    let budget_remaining = budget_total - bad;
    // Each lookback's good and bad units, and the first slice it sees.
    let seen = |lookback: Lookback| {
        let i = Lookback::ALL
            .iter()
            .position(|l| *l == lookback)
            .expect("every lookback is in ALL");
        let first = lookback_start(calendar, &span, lookback);
        let t = &lookbacks[i];
        let no_data = calendar
            .count(first, span.elapsed_end)
            .saturating_sub(t.slices.iter().sum());
        let (g, b, _) = units_of(counting, t, no_data);
        (g as f64, b as f64, first)
    };
    let burn_rates = Lookback::ALL
        .into_iter()
        .filter(|l| l.fits(calendar.slice))
        .filter_map(|l| {
            let (g, b, _) = seen(l);
            (g + b > 0.0).then(|| (l, b / (g + b) / allowed))
        })
        .collect();
    let exhaustion = if bad > 0.0 && budget_remaining <= 0.0 {
        Exhaustion::Spent
    } else {
        let (_, lost, first) = seen(Lookback::current(calendar.slice));
        let hours = (span.elapsed_end - first) as f64 / HOUR_MS as f64;
        match (hours > 0.0).then(|| lost / hours) {
            Some(per_hour) if per_hour > 0.0 => {
                let hours = budget_remaining / per_hour;
                Exhaustion::At(span.elapsed_end + (hours * HOUR_MS as f64) as i64)
            }
            _ => Exhaustion::Never,
        }
    };
    let [stored_good, stored_bad, stored_excluded] = totals.slices;
    Figures::of(
        [stored_good, stored_bad, no_data, stored_excluded],
        good,
        bad,
        budget_total,
        burn_rates,
        exhaustion,
    )
}

/// Budget units lost per hour over the current lookback: bad units seen in
/// it, spread over its hours. Slices leaving a rolling window give budget
/// back; that is not foreseen here, so the time is the earliest it can be.
fn loss_per_hour(
    counting: &Counting,
    judged: &[Slice],
    elapsed_end: i64,
    lookback: Lookback,
) -> Option<f64> {
    let from = elapsed_end - lookback.hours() * HOUR_MS;
    let bad: f64 = judged
        .iter()
        .filter(|s| s.start >= from)
        .map(|s| units(counting, s).1)
        .sum();
    let first = judged.iter().find(|s| s.start >= from)?.start;
    let hours = (elapsed_end - first) as f64 / HOUR_MS as f64;
    (hours > 0.0).then(|| bad / hours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::at;

    fn slice(start: i64, state: SliceState) -> Slice {
        Slice {
            start,
            state,
            good: 0,
            total: 0,
        }
    }

    fn counting(target: f64, no_data: Counts) -> Counting {
        Counting {
            target,
            budgeting: Budgeting::Timeslices,
            no_data,
            excluded: Counts::Excluded,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn burn(f: &Figures, l: Lookback) -> Option<f64> {
        f.burn_rates.iter().find(|(k, _)| *k == l).map(|(_, r)| *r)
    }

    /// The seed's freshness SLO: 95% of 20 days. Days 1-20 of April; the
    /// 5th and the 19th bad, the 12th with no data (counted bad here), the
    /// rest good.
    #[test]
    fn twenty_daily_slices_at_95_percent_spend_one_slice_of_budget() {
        let cal = Calendar::new(SliceLen::Day, chrono_tz::UTC);
        let now = at("2026-04-21T06:00:00Z");
        let day = |d: u32| at(&format!("2026-04-{d:02}T00:00:00Z"));
        let stored: Vec<Slice> = (1..=20)
            .filter(|d| *d != 12)
            .map(|d| {
                let state = if d == 5 || d == 19 {
                    SliceState::Bad
                } else {
                    SliceState::Good
                };
                slice(day(d), state)
            })
            // Before the window and in progress: not counted.
            .chain([
                slice(day(1) - 86_400_000, SliceState::Bad),
                slice(day(21), SliceState::Bad),
            ])
            .collect();
        let f = figures(
            &counting(0.95, Counts::Bad),
            &cal,
            Window::Rolling { slices: 20 },
            now,
            &stored,
        );
        assert_eq!(f.slices, [17, 2, 1, 0]);
        // 17 good of 20 counted.
        assert!(close(f.attainment.unwrap(), 0.85));
        // The budget is 5% of 20 slices: one. Three are bad.
        assert!(close(f.budget_total, 1.0));
        assert!(close(f.budget_spent, 3.0));
        assert!(close(f.budget_remaining, -2.0));
        assert!(close(f.budget_remaining_ratio.unwrap(), -2.0));
        assert_eq!(f.exhaustion, Exhaustion::Spent);
        // Day slices give no 1h or 6h burn. Over the last day (the 20th,
        // good): 0; over the last three (18-20, the 19th bad): 1/3 / 0.05.
        assert_eq!(burn(&f, Lookback::H1), None);
        assert_eq!(burn(&f, Lookback::H6), None);
        assert!(close(burn(&f, Lookback::D1).unwrap(), 0.0));
        assert!(close(burn(&f, Lookback::D3).unwrap(), (1.0 / 3.0) / 0.05));
    }

    /// 480 hourly slices at 99%, 10 in maintenance (left out), three bad
    /// hours in the last day, the last of them the latest hour.
    #[test]
    fn hourly_slices_give_every_burn_rate_and_the_time_the_budget_runs_out() {
        let cal = Calendar::new(SliceLen::Hour, chrono_tz::UTC);
        let now = at("2026-05-20T12:30:00Z");
        let end = at("2026-05-20T12:00:00Z");
        let hour = |back: i64| end - back * HOUR_MS;
        let stored: Vec<Slice> = (1..=480)
            .map(|back| {
                let state = match back {
                    1 | 10 | 20 => SliceState::Bad,
                    200..=209 => SliceState::Excluded,
                    _ => SliceState::Good,
                };
                slice(hour(back), state)
            })
            .collect();
        let f = figures(
            &counting(0.99, Counts::Bad),
            &cal,
            Window::Rolling { slices: 480 },
            now,
            &stored,
        );
        assert_eq!(f.slices, [467, 3, 0, 10]);
        assert!(close(f.attainment.unwrap(), 467.0 / 470.0));
        // 1% of the 470 slices not left out.
        assert!(close(f.budget_total, 4.7));
        assert!(close(f.budget_remaining, 1.7));
        assert!(close(f.budget_remaining_ratio.unwrap(), 1.7 / 4.7));
        assert!(close(burn(&f, Lookback::H1).unwrap(), 1.0 / 0.01));
        assert!(close(burn(&f, Lookback::H6).unwrap(), (1.0 / 6.0) / 0.01));
        assert!(close(burn(&f, Lookback::D1).unwrap(), (3.0 / 24.0) / 0.01));
        assert!(close(burn(&f, Lookback::D3).unwrap(), (3.0 / 72.0) / 0.01));
        // Three bad hours a day: 1.7 slices last 1.7 / (3/24) = 13.6 hours.
        let expected = end + (13.6 * HOUR_MS as f64) as i64;
        match f.exhaustion {
            Exhaustion::At(t) => assert!((t - expected).abs() < 1_000, "{t} vs {expected}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn occurrences_count_events_and_their_budget_grows_with_them() {
        let cal = Calendar::new(SliceLen::Day, chrono_tz::UTC);
        let now = at("2026-06-04T01:00:00Z");
        let day = |d: u32| at(&format!("2026-06-{d:02}T00:00:00Z"));
        let events = |d, good, total| Slice {
            start: day(d),
            state: if good == total {
                SliceState::Good
            } else {
                SliceState::Bad
            },
            good,
            total,
        };
        let c = Counting {
            target: 0.9,
            budgeting: Budgeting::Occurrences,
            no_data: Counts::Bad,
            excluded: Counts::Excluded,
        };
        // Day 3 has no row: no data, and no events to count either way.
        let f = figures(
            &c,
            &cal,
            Window::Rolling { slices: 3 },
            now,
            &[events(1, 10, 10), events(2, 9, 10)],
        );
        assert_eq!(f.slices, [1, 1, 1, 0]);
        assert!(close(f.attainment.unwrap(), 19.0 / 20.0));
        assert!(close(f.budget_total, 2.0));
        assert!(close(f.budget_remaining_ratio.unwrap(), 0.5));
        assert!(close(burn(&f, Lookback::D3).unwrap(), (1.0 / 20.0) / 0.1));
        // The last day had no events: its burn is not known.
        assert_eq!(burn(&f, Lookback::D1), None);
    }

    /// November 2026 in Berlin, on the 11th: ten days judged, 30 in the
    /// budget, two with no data left out.
    #[test]
    fn a_calendar_month_budgets_its_whole_month() {
        let cal = Calendar::new(SliceLen::Day, chrono_tz::Europe::Berlin);
        let now = at("2026-11-11T10:00:00+01:00");
        let day = |d: u32| at(&format!("2026-11-{d:02}T00:00:00+01:00"));
        let stored: Vec<Slice> = (1..=10)
            .filter(|d| *d != 3 && *d != 4)
            .map(|d| {
                slice(
                    day(d),
                    if d == 7 {
                        SliceState::Bad
                    } else {
                        SliceState::Good
                    },
                )
            })
            .collect();
        let f = figures(
            &counting(0.9, Counts::Excluded),
            &cal,
            Window::CalendarMonth,
            now,
            &stored,
        );
        assert_eq!(f.slices, [7, 1, 2, 0]);
        assert!(close(f.attainment.unwrap(), 7.0 / 8.0));
        assert!(close(f.budget_total, 0.1 * 28.0));
        assert!(close(f.budget_remaining, 2.8 - 1.0));
        assert_eq!(f.exhaustion, Exhaustion::Never);
    }

    #[test]
    fn nothing_judged_yet_gives_no_attainment_and_a_whole_budget() {
        let cal = Calendar::new(SliceLen::Day, chrono_tz::UTC);
        let now = at("2026-11-01T10:00:00Z");
        let f = figures(
            &counting(0.95, Counts::Excluded),
            &cal,
            Window::CalendarMonth,
            now,
            &[],
        );
        assert_eq!(f.attainment, None);
        assert!(close(f.budget_total, 0.05 * 30.0));
        assert!(close(f.budget_remaining_ratio.unwrap(), 1.0));
        assert!(f.burn_rates.is_empty());
        assert_eq!(f.exhaustion, Exhaustion::Never);
    }

    /// Any counting: a target, either budgeting, any policies.
    fn any_counting() -> impl proptest::strategy::Strategy<Value = Counting> {
        use proptest::strategy::Strategy;
        let counts = |v: u8| [Counts::Good, Counts::Bad, Counts::Excluded][usize::from(v)];
        (0.5f64..0.999, 0u8..2, 0u8..3, 0u8..3).prop_map(move |(target, b, no_data, excluded)| {
            Counting {
                target,
                budgeting: [Budgeting::Timeslices, Budgeting::Occurrences][usize::from(b)],
                no_data: counts(no_data),
                excluded: counts(excluded),
            }
        })
    }

    proptest::proptest! {
        /// The lists sort on the key the store keeps per entity, then on the
        /// entity: that is the order of the remaining ratio (a budget of 0
        /// last, ties by entity) that they sorted on before the key, for any
        /// sums, policy, window and time. The key is the ratio to the bit,
        /// and for a rolling window or occurrences it is the same at any
        /// later time (it changes only with the sums).
        #[test]
        fn the_rank_key_orders_as_the_remaining_ratio(
            sums in proptest::collection::vec(
                (proptest::array::uniform3(0u64..12), proptest::array::uniform3(0u64..8), proptest::array::uniform3(0u64..8)),
                1..40,
            ),
            c in any_counting(),
            day in proptest::bool::ANY,
            month in proptest::bool::ANY,
            now_ms in 0i64..(40 * 86_400_000),
            later_ms in 0i64..(40 * 86_400_000),
        ) {
            let slice = if day { SliceLen::Day } else { SliceLen::Hour };
            let cal = Calendar::new(slice, chrono_tz::Europe::Berlin);
            let window = if month { Window::CalendarMonth } else { Window::Rolling { slices: 10 } };
            let now = at("2026-03-01T00:00:00Z") + now_ms;
            let totals: Vec<Totals> = sums
                .into_iter()
                .map(|(slices, extra, bad)| {
                    // Each slice's good events at most its total.
                    let total = std::array::from_fn(|i| slices[i] + extra[i] + bad[i]);
                    let good = std::array::from_fn(|i| slices[i] + extra[i]);
                    Totals { slices, good, total }
                })
                .collect();
            let rank = Ranking::at(&c, &cal, window, now);
            // Before: the ratio, a budget of 0 last, then the entity.
            let mut before: Vec<usize> = (0..totals.len()).collect();
            before.sort_by(|&a, &b| {
                let left = |i: usize| {
                    budget_remaining_ratio(&c, &cal, window, now, &totals[i]).unwrap_or(f64::INFINITY)
                };
                left(a).total_cmp(&left(b)).then(a.cmp(&b))
            });
            let mut keyed: Vec<usize> = (0..totals.len()).collect();
            keyed.sort_by(|&a, &b| rank.key(&totals[a]).total_cmp(&rank.key(&totals[b])).then(a.cmp(&b)));
            proptest::prop_assert_eq!(&before, &keyed);
            let later = Ranking::at(&c, &cal, window, now + later_ms);
            for t in &totals {
                let ratio = budget_remaining_ratio(&c, &cal, window, now, t);
                proptest::prop_assert!(ratio.is_none_or(|r| r <= 1.0));
                proptest::prop_assert_eq!(rank.key(t).to_bits(), ratio.unwrap_or(NO_BUDGET).to_bits());
                if !month || c.budgeting == Budgeting::Occurrences {
                    proptest::prop_assert_eq!(later.key(t).to_bits(), rank.key(t).to_bits());
                }
            }
        }

        /// Every figure from sums (the window's and each lookback's) is the
        /// figure from the slices, to the bit, and so is the remaining ratio
        /// the lists rank on: hour and day slices, a
        /// zone with daylight saving and one half an hour off, rolling
        /// windows and calendar months, any policy.
        #[test]
        fn figures_from_sums_are_the_figures_from_slices(
            slices in proptest::collection::vec((0usize..40, 0u8..3, 0u64..5, 0u64..5), 0..120),
            c in any_counting(),
            day in proptest::bool::ANY,
            berlin in proptest::bool::ANY,
            month in proptest::bool::ANY,
            now_ms in 0i64..(40 * 86_400_000),
        ) {
            let zone = if berlin { chrono_tz::Europe::Berlin } else { chrono_tz::Asia::Kolkata };
            let slice = if day { SliceLen::Day } else { SliceLen::Hour };
            let cal = Calendar::new(slice, zone);
            // Around March's change to summer time in Berlin.
            let now = at("2026-03-01T00:00:00Z") + now_ms;
            let window = if month {
                Window::CalendarMonth
            } else if day {
                Window::Rolling { slices: 20 }
            } else {
                Window::Rolling { slices: 30 }
            };
            let span = cal.window(window, now);
            // The last slices before the end of the window, the one in
            // progress and one after it; each at most once.
            let candidates: Vec<i64> = {
                let mut back: Vec<i64> = std::iter::successors(Some(cal.next(cal.next(span.elapsed_end))), |&s| {
                    Some(cal.slice_start(s - 1))
                })
                .take(40)
                .collect();
                back.reverse();
                back
            };
            let mut stored: std::collections::BTreeMap<i64, Slice> = Default::default();
            for (i, state, good, total) in slices {
                let start = candidates[i];
                let state = [SliceState::Good, SliceState::Bad, SliceState::Excluded][usize::from(state)];
                stored.insert(start, Slice { start, state, good, total });
            }
            let stored: Vec<Slice> = stored.into_values().collect();
            let sum_from = |from: i64| {
                let mut t = Totals::default();
                for s in stored.iter().filter(|s| s.start >= from && s.start < span.elapsed_end) {
                    t.add(s);
                }
                t
            };
            let totals = sum_from(span.start);
            let lookbacks = Lookback::ALL.map(|l| sum_from(lookback_start(&cal, &span, l)));
            let exact = figures(&c, &cal, window, now, &stored);
            let fast = figures_from_sums(&c, &cal, window, now, &totals, &lookbacks);
            proptest::prop_assert_eq!(format!("{exact:?}"), format!("{fast:?}"));
            // The ratio the lists rank on, from the window's sums alone.
            let ratio = budget_remaining_ratio(&c, &cal, window, now, &totals);
            proptest::prop_assert_eq!(
                exact.budget_remaining_ratio.map(f64::to_bits),
                ratio.map(f64::to_bits)
            );
        }
    }
}

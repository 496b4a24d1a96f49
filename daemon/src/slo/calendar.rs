//! Where an SLO's slices and its window fall in time: hour slices follow
//! the clock hours of the SLO's time zone, day slices its midnights (23 or
//! 25 hours long across a daylight-saving change), a rolling window is the
//! last N whole slices and a calendar window the month that holds now.
//!
//! Times are milliseconds since the epoch, as the store keeps them. It owns
//! only this arithmetic: it must not read slices, judge them or count them.

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

pub const HOUR_MS: i64 = 3_600_000;

/// How long one slice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SliceLen {
    Hour,
    Day,
}

/// The time an SLO's figures are taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last `slices` whole slices before the one in progress (`20d` of
    /// day slices is 20, of hour slices 480).
    Rolling { slices: u32 },
    /// The calendar month that holds now, in the SLO's time zone; its
    /// budget is the whole month's, spent as its slices pass.
    CalendarMonth,
}

/// Where one window lies at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpan {
    /// The first slice's start.
    pub start: i64,
    /// The end of the slices judged so far: the start of the slice in
    /// progress (its state is not final, so it does not count yet).
    pub elapsed_end: i64,
    /// The end of the window: `elapsed_end` for a rolling one, the end of
    /// the month for a calendar one.
    pub end: i64,
}

/// Slices of one length in one time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    pub slice: SliceLen,
    pub zone: Tz,
}

impl Calendar {
    pub fn new(slice: SliceLen, zone: Tz) -> Self {
        Calendar { slice, zone }
    }

    /// The start of the slice that holds `t`.
    pub fn slice_start(&self, t: i64) -> i64 {
        match self.slice {
            SliceLen::Hour => {
                // The zone's clock hours: UTC hours in most zones, half past
                // in those half an hour off.
                let offset = i64::from(self.offset_s(t)) * 1000;
                t - (t + offset).rem_euclid(HOUR_MS)
            }
            SliceLen::Day => self.midnight(self.date(t)),
        }
    }

    /// The start of the slice after the one starting at `start`.
    pub fn next(&self, start: i64) -> i64 {
        match self.slice {
            SliceLen::Hour => self.slice_start(start + HOUR_MS),
            SliceLen::Day => self.midnight(self.date(start) + Days::new(1)),
        }
    }

    /// The starts of the slices that begin in `[from, to)`, from the slice
    /// holding `from`.
    pub fn starts(&self, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
        std::iter::successors(Some(self.slice_start(from)), move |&s| Some(self.next(s)))
            .take_while(move |&s| s < to)
    }

    /// Where `window` lies at `now`.
    pub fn window(&self, window: Window, now: i64) -> WindowSpan {
        let elapsed_end = self.slice_start(now);
        match window {
            Window::Rolling { slices } => {
                let start = match self.slice {
                    SliceLen::Hour => elapsed_end - i64::from(slices) * HOUR_MS,
                    SliceLen::Day => {
                        self.midnight(self.date(elapsed_end) - Days::new(u64::from(slices)))
                    }
                };
                WindowSpan {
                    start,
                    elapsed_end,
                    end: elapsed_end,
                }
            }
            Window::CalendarMonth => {
                let today = self.date(now);
                let first = today.with_day(1).expect("every month has a first day");
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .expect("within chrono's range");
                WindowSpan {
                    start: self.midnight(first),
                    elapsed_end,
                    end: self.midnight(next),
                }
            }
        }
    }

    /// How many slices `[from, to)` holds.
    pub fn count(&self, from: i64, to: i64) -> u64 {
        match self.slice {
            // Every clock hour is an hour long, whatever the offset does.
            SliceLen::Hour => u64::try_from((to - from).max(0) / HOUR_MS).unwrap_or(0),
            SliceLen::Day => self.starts(from, to).count() as u64,
        }
    }

    /// `time` on the local day that holds `t` (a time a daylight-saving
    /// change skips is taken an hour later).
    pub fn time_of_day(&self, t: i64, time: chrono::NaiveTime) -> i64 {
        let local = self.date(t).and_time(time);
        match self.zone.from_local_datetime(&local) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at.timestamp_millis(),
            LocalResult::None => self
                .zone
                .from_local_datetime(&(local + chrono::TimeDelta::hours(1)))
                .earliest()
                .map_or(t, |at| at.timestamp_millis()),
        }
    }

    fn utc(t: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(t).unwrap_or_default()
    }

    fn offset_s(&self, t: i64) -> i32 {
        self.zone
            .offset_from_utc_datetime(&Self::utc(t).naive_utc())
            .fix()
            .local_minus_utc()
    }

    fn date(&self, t: i64) -> NaiveDate {
        Self::utc(t).with_timezone(&self.zone).date_naive()
    }

    /// The first instant of `date` in the zone: midnight, or the first
    /// local time after it where a daylight-saving change skips midnight.
    fn midnight(&self, date: NaiveDate) -> i64 {
        (0..24)
            .find_map(
                |h| match self.zone.from_local_datetime(&date.and_hms_opt(h, 0, 0)?) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        Some(t.timestamp_millis())
                    }
                    LocalResult::None => None,
                },
            )
            .expect("a day has a first hour")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::at;

    fn berlin(slice: SliceLen) -> Calendar {
        Calendar::new(slice, chrono_tz::Europe::Berlin)
    }

    #[test]
    fn hour_slices_follow_the_zones_clock_hours() {
        let utc = Calendar::new(SliceLen::Hour, chrono_tz::UTC);
        assert_eq!(
            utc.slice_start(at("2026-03-01T10:59:59Z")),
            at("2026-03-01T10:00:00Z")
        );
        // India is 5:30 ahead: its hours start at half past in UTC.
        let india = Calendar::new(SliceLen::Hour, chrono_tz::Asia::Kolkata);
        assert_eq!(
            india.slice_start(at("2026-03-01T10:10:00Z")),
            at("2026-03-01T09:30:00Z")
        );
        assert_eq!(
            india.next(at("2026-03-01T09:30:00Z")),
            at("2026-03-01T10:30:00Z")
        );
    }

    #[test]
    fn day_slices_start_at_local_midnight_and_stretch_across_a_dst_change() {
        let days = berlin(SliceLen::Day);
        // 00:30 in Berlin in winter is 23:30 UTC the day before.
        assert_eq!(
            days.slice_start(at("2026-01-15T23:30:00Z")),
            at("2026-01-15T23:00:00Z")
        );
        // 29 March 2026 loses an hour in Berlin: that day is 23 hours long.
        let start = at("2026-03-28T23:00:00Z");
        assert_eq!(days.next(start) - start, 23 * HOUR_MS);
        // 25 October 2026 gains one: 25 hours.
        let start = at("2026-10-24T22:00:00Z");
        assert_eq!(days.next(start) - start, 25 * HOUR_MS);
    }

    #[test]
    fn a_midnight_a_dst_change_skips_starts_the_day_at_the_first_hour_after() {
        // Santiago springs forward at midnight: 6 September 2026 begins at 01:00.
        let days = Calendar::new(SliceLen::Day, chrono_tz::America::Santiago);
        let start = days.slice_start(at("2026-09-06T12:00:00Z"));
        assert_eq!(start, at("2026-09-06T01:00:00-03:00"));
    }

    #[test]
    fn a_rolling_window_is_the_last_whole_slices_before_the_one_in_progress() {
        let days = berlin(SliceLen::Day);
        let now = at("2026-04-21T08:00:00Z");
        let w = days.window(Window::Rolling { slices: 20 }, now);
        assert_eq!(w.elapsed_end, at("2026-04-21T00:00:00+02:00"));
        assert_eq!(w.end, w.elapsed_end);
        // Twenty Berlin days back, across the March change to summer time.
        assert_eq!(w.start, at("2026-04-01T00:00:00+02:00"));
        assert_eq!(days.count(w.start, w.end), 20);

        let hours = berlin(SliceLen::Hour);
        let w = hours.window(Window::Rolling { slices: 480 }, now);
        assert_eq!(w.end - w.start, 480 * HOUR_MS);
        assert_eq!(hours.count(w.start, w.end), 480);
    }

    #[test]
    fn a_calendar_month_in_a_zone_counts_its_local_days_and_hours() {
        let now = at("2026-10-31T23:30:00Z"); // already 1 November in Berlin
        let days = berlin(SliceLen::Day);
        let w = days.window(Window::CalendarMonth, now);
        assert_eq!(w.start, at("2026-11-01T00:00:00+01:00"));
        assert_eq!(w.end, at("2026-12-01T00:00:00+01:00"));
        assert_eq!(days.count(w.start, w.end), 30);
        assert_eq!(days.count(w.start, w.elapsed_end), 0);

        // October 2026 in Berlin has 31 days and, with the hour gained on
        // the 25th, 745 hours.
        let now = at("2026-10-31T12:00:00Z");
        let w = days.window(Window::CalendarMonth, now);
        assert_eq!(days.count(w.start, w.end), 31);
        assert_eq!(days.count(w.start, w.elapsed_end), 30);
        let hours = berlin(SliceLen::Hour);
        let w = hours.window(Window::CalendarMonth, now);
        assert_eq!(hours.count(w.start, w.end), 745);
    }
}

//! Most tests run on paused Tokio time: the runtime jumps straight to the next
//! timer whenever every task waits, so timings are exact and nothing sleeps for
//! luck. Waits for a condition carry a deadline.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until};

use super::state::State;
use super::timing::{SlotAt, draw, first_slot, jitter_bound, next_slot};
use super::*;
use crate::clock::{Clock, SystemClock};
use crate::config::CronSchedule;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The connector of a test check: the part of its id before `/`, else the id.
fn connector_of(check: &str) -> &str {
    check
        .split_once('/')
        .map_or(check, |(connector, _)| connector)
}

fn every(id: &str, interval: Duration) -> Job {
    Job {
        id: id.to_owned(),
        connector: connector_of(id).to_owned(),
        schedule: Schedule::Every(interval),
        jitter: Jitter::None,
        deadline: None,
    }
}

fn cron_schedule(expr: &str) -> Schedule {
    Schedule::Cron(Box::new(CronSchedule {
        expr: expr.to_owned(),
        cron: croner::Cron::from_str(expr).expect("valid cron"),
    }))
}

fn cron(id: &str, expr: &str) -> Job {
    Job {
        schedule: cron_schedule(expr),
        ..every(id, secs(1))
    }
}

/// A job that only runs on demand within a test: yearly, and the tests' wall
/// clock is mid-year.
fn on_demand(id: &str) -> Job {
    cron(id, "0 0 1 1 *")
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid time")
        .with_timezone(&Utc)
}

/// Wall time that moves with Tokio's (paused) clock, from a fixed start.
struct PausedWall {
    wall0: SystemTime,
    t0: Instant,
}

impl PausedWall {
    fn at(text: &str) -> Arc<Self> {
        Arc::new(Self {
            wall0: utc(text).into(),
            t0: Instant::now(),
        })
    }
}

impl Clock for PausedWall {
    fn now(&self) -> SystemTime {
        self.wall0 + (Instant::now() - self.t0)
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Verdict(Verdict),
    Panic,
}

/// What one attempt of a check does: wait this long, then end so.
#[derive(Debug, Clone, Copy)]
struct Step {
    takes: Duration,
    outcome: Outcome,
}

fn done(takes: Duration) -> Step {
    Step {
        takes,
        outcome: Outcome::Verdict(Verdict::Done),
    }
}

fn transient(takes: Duration, retry_after: Option<Duration>) -> Step {
    Step {
        takes,
        outcome: Outcome::Verdict(Verdict::Transient { retry_after }),
    }
}

#[derive(Debug, Clone)]
struct Record {
    check: String,
    attempt: u32,
    trigger: Trigger,
    /// Since the recorder was made.
    start: Duration,
    end: Option<Duration>,
    cancelled: bool,
}

#[derive(Default)]
struct Book {
    runs: Vec<Record>,
    per_check: HashMap<String, usize>,
    per_connector: HashMap<String, usize>,
    total: usize,
    max_per_check: usize,
    max_per_connector: HashMap<String, usize>,
    max_total: usize,
}

impl Book {
    fn of(&self, check: &str) -> Vec<&Record> {
        self.runs.iter().filter(|r| r.check == check).collect()
    }

    fn starts(&self, check: &str) -> Vec<Duration> {
        self.of(check).iter().map(|r| r.start).collect()
    }

    fn attempts(&self, check: &str) -> Vec<(u32, Trigger, Duration)> {
        self.of(check)
            .iter()
            .map(|r| (r.attempt, r.trigger, r.start))
            .collect()
    }

    fn ended(&self) -> usize {
        self.runs.iter().filter(|r| r.end.is_some()).count()
    }
}

/// An executor that records every attempt and the concurrency it saw, and
/// behaves as scripted per check (then as `default`).
struct Recorder {
    t0: Instant,
    default: Step,
    scripts: Mutex<HashMap<String, VecDeque<Step>>>,
    book: Mutex<Book>,
    changed: Notify,
}

impl Recorder {
    fn new(default: Step) -> Arc<Self> {
        Arc::new(Self {
            t0: Instant::now(),
            default,
            scripts: Mutex::default(),
            book: Mutex::default(),
            changed: Notify::new(),
        })
    }

    fn script(self: Arc<Self>, check: &str, steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
        self.scripts
            .lock()
            .unwrap()
            .insert(check.to_owned(), steps.into_iter().collect());
        self
    }

    /// The book, even after a failed assertion poisoned it (so that attempts
    /// dropped while the test unwinds do not panic again).
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn since_t0(&self) -> Duration {
        Instant::now() - self.t0
    }

    /// Waits until `cond` holds of the book; fails after a day of (usually
    /// paused) time.
    async fn until(&self, what: &str, cond: impl Fn(&Book) -> bool) {
        let wait = async {
            loop {
                let mut notified = pin!(self.changed.notified());
                notified.as_mut().enable();
                if cond(&self.book()) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(secs(86_400), wait)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }
}

/// Marks an attempt ended (or cancelled, if dropped before it finished).
struct Leave<'a> {
    recorder: &'a Recorder,
    index: usize,
    finished: bool,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let end = self.recorder.since_t0();
        let mut book = self.recorder.book();
        let record = &mut book.runs[self.index];
        record.end = Some(end);
        record.cancelled = !self.finished;
        let check = record.check.clone();
        *book.per_check.get_mut(&check).unwrap() -= 1;
        *book.per_connector.get_mut(connector_of(&check)).unwrap() -= 1;
        book.total -= 1;
        drop(book);
        self.recorder.changed.notify_waiters();
    }
}

#[async_trait::async_trait]
impl Executor for Recorder {
    async fn execute(&self, check: &str, attempt: u32, trigger: Trigger) -> Verdict {
        let step = self
            .scripts
            .lock()
            .unwrap()
            .get_mut(check)
            .and_then(VecDeque::pop_front)
            .unwrap_or(self.default);
        let index = {
            let mut book = self.book();
            book.runs.push(Record {
                check: check.to_owned(),
                attempt,
                trigger,
                start: self.since_t0(),
                end: None,
                cancelled: false,
            });
            let n = book.per_check.entry(check.to_owned()).or_default();
            *n += 1;
            let n = *n;
            book.max_per_check = book.max_per_check.max(n);
            let connector = connector_of(check).to_owned();
            let c = book.per_connector.entry(connector.clone()).or_default();
            *c += 1;
            let c = *c;
            let max = book.max_per_connector.entry(connector).or_default();
            *max = (*max).max(c);
            book.total += 1;
            book.max_total = book.max_total.max(book.total);
            book.runs.len() - 1
        };
        self.changed.notify_waiters();
        let mut leave = Leave {
            recorder: self,
            index,
            finished: false,
        };
        sleep(step.takes).await;
        leave.finished = true;
        match step.outcome {
            Outcome::Verdict(verdict) => verdict,
            Outcome::Panic => panic!("scripted panic in {check}"),
        }
    }
}

fn caps(global: u32) -> Caps {
    Caps {
        global,
        per_connector: BTreeMap::new(),
    }
}

fn start(jobs: Vec<Job>, caps: Caps, recorder: &Arc<Recorder>) -> Scheduler {
    start_with(jobs, caps, RetryPolicy::default(), recorder)
}

fn start_with(
    jobs: Vec<Job>,
    caps: Caps,
    retry: RetryPolicy,
    recorder: &Arc<Recorder>,
) -> Scheduler {
    Scheduler::start(
        jobs,
        caps,
        retry,
        recorder.clone(),
        PausedWall::at("2024-06-01T12:00:00Z"),
    )
}

// ---- timing ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn interval_runs_at_once_then_every_interval_without_drift() {
    // 3.7 s runs: were the interval counted from a run's end, starts would drift.
    let rec = Recorder::new(done(ms(3_700)));
    let _s = start(vec![every("a", secs(10))], caps(4), &rec);
    sleep(ms(35_500)).await;
    assert_eq!(
        rec.book().starts("a"),
        [secs(0), secs(10), secs(20), secs(30)]
    );
    assert!(
        rec.book()
            .runs
            .iter()
            .all(|r| r.trigger == Trigger::Schedule)
    );
}

#[tokio::test(start_paused = true)]
async fn an_overrun_skips_the_slots_it_covers() {
    // 0 s: a 25 s run covers the 10 s and 20 s slots; the next is 30 s.
    let rec = Recorder::new(done(secs(1))).script("a", [done(secs(25))]);
    let _s = start(vec![every("a", secs(10))], caps(4), &rec);
    sleep(ms(45_500)).await;
    assert_eq!(rec.book().starts("a"), [secs(0), secs(30), secs(40)]);
    assert_eq!(rec.book().max_per_check, 1);
}

#[tokio::test(start_paused = true)]
async fn cron_jobs_run_at_each_occurrence() {
    let rec = Recorder::new(done(secs(1)));
    let _s = Scheduler::start(
        vec![
            cron("fives", "*/5 * * * * *"),
            cron("minutely", "* * * * *"),
        ],
        caps(4),
        RetryPolicy::default(),
        rec.clone(),
        PausedWall::at("2024-06-01T12:00:01Z"),
    );
    sleep(secs(125)).await;
    let fives = rec.book().starts("fives");
    assert_eq!(fives[..3], [secs(4), secs(9), secs(14)]);
    assert_eq!(fives.len(), 25, "one run per occurrence: {fives:?}");
    assert_eq!(rec.book().starts("minutely"), [secs(59), secs(119)]);
}

#[test]
fn next_cron_occurrence_is_strictly_after_and_utc() {
    let quarter = croner::Cron::from_str("*/15 * * * *").unwrap();
    let next = |c: &croner::Cron, t: &str| next_cron_occurrence(c, utc(t)).unwrap();
    assert_eq!(
        next(&quarter, "2024-01-01T10:07:30Z"),
        utc("2024-01-01T10:15:00Z")
    );
    assert_eq!(
        next(&quarter, "2024-01-01T10:15:00Z"),
        utc("2024-01-01T10:30:00Z")
    );
    assert_eq!(
        next(&quarter, "2024-01-01T10:14:59.999Z"),
        utc("2024-01-01T10:15:00Z")
    );
    assert_eq!(
        next(&quarter, "2024-12-31T23:50:00Z"),
        utc("2025-01-01T00:00:00Z")
    );
    // Six fields: seconds first.
    let half_past = croner::Cron::from_str("30 * * * * *").unwrap();
    assert_eq!(
        next(&half_past, "2024-01-01T10:00:30.500Z"),
        utc("2024-01-01T10:01:30Z")
    );
    // Offsets are read as UTC.
    let nine = croner::Cron::from_str("0 9 * * *").unwrap();
    let paris = chrono::FixedOffset::east_opt(3600).unwrap();
    let after = paris
        .with_ymd_and_hms(2024, 3, 1, 9, 30, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        next_cron_occurrence(&nine, after),
        Some(utc("2024-03-01T09:00:00Z"))
    );
    let leap = croner::Cron::from_str("0 0 29 2 *").unwrap();
    assert_eq!(
        next(&leap, "2024-03-01T00:00:00Z"),
        utc("2028-02-29T00:00:00Z")
    );
}

#[tokio::test(start_paused = true)]
async fn slots_after_a_gap_skip_what_was_missed() {
    let now = Instant::now();
    // Interval: the slot after 0 s, seen at 35 s, is 40 s (not 10, 20, 30 in a burst).
    let every10 = Schedule::Every(secs(10));
    let next = next_slot(
        &every10,
        Jitter::None,
        SlotAt::Interval(now),
        now + secs(35),
        SystemTime::now(),
    );
    assert_eq!(next.map(|p| p.fire), Some(now + secs(40)));
    // Cron: the occurrence after 11:00, seen at 13:20, is 14:00.
    let hourly = cron_schedule("0 * * * *");
    let wall: SystemTime = utc("2024-01-01T13:20:00Z").into();
    let next = next_slot(
        &hourly,
        Jitter::None,
        SlotAt::Cron(utc("2024-01-01T11:00:00Z")),
        now,
        wall,
    )
    .unwrap();
    assert_eq!(next.at, SlotAt::Cron(utc("2024-01-01T14:00:00Z")));
    assert_eq!(next.fire, now + secs(40 * 60));
    // Normally, simply the next occurrence.
    let wall: SystemTime = utc("2024-01-01T11:00:00.200Z").into();
    let next = next_slot(
        &hourly,
        Jitter::None,
        SlotAt::Cron(utc("2024-01-01T11:00:00Z")),
        now,
        wall,
    )
    .unwrap();
    assert_eq!(next.at, SlotAt::Cron(utc("2024-01-01T12:00:00Z")));
}

#[test]
fn jitter_bounds() {
    assert_eq!(jitter_bound(Jitter::None, secs(10)), Duration::ZERO);
    assert_eq!(jitter_bound(Jitter::Fraction(0.1), secs(10)), secs(1));
    assert_eq!(jitter_bound(Jitter::Fraction(2.0), secs(10)), secs(10));
    assert_eq!(
        jitter_bound(Jitter::Fraction(f64::NAN), secs(10)),
        Duration::ZERO
    );
    assert_eq!(jitter_bound(Jitter::Fixed(secs(3)), secs(10)), secs(3));
    assert_eq!(jitter_bound(Jitter::Fixed(secs(30)), secs(10)), secs(10));
    assert_eq!(draw(Duration::ZERO), Duration::ZERO);
    let draws: Vec<Duration> = (0..1_000).map(|_| draw(secs(1))).collect();
    assert!(draws.iter().all(|d| *d <= secs(1)));
    let mut distinct = draws.clone();
    distinct.sort();
    distinct.dedup();
    assert!(
        distinct.len() > 900,
        "uniform over nanoseconds: {}",
        distinct.len()
    );
}

#[tokio::test(start_paused = true)]
async fn cron_jitter_is_a_fraction_of_the_gap_to_the_next_occurrence() {
    let now = Instant::now();
    let hourly = cron_schedule("0 * * * *");
    let wall: SystemTime = utc("2024-01-01T10:59:30Z").into();
    let plain = first_slot(&hourly, Jitter::None, now, wall).unwrap();
    assert_eq!(plain.fire, now + secs(30));
    for _ in 0..200 {
        let jittered = first_slot(&hourly, Jitter::Fraction(0.5), now, wall).unwrap();
        assert!(jittered.fire >= now + secs(30) && jittered.fire <= now + secs(30 + 1_800));
    }
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_starts_within_bounds() {
    let rec = Recorder::new(done(ms(100)));
    let jobs = (0..50)
        .map(|i| Job {
            jitter: Jitter::Fixed(secs(2)),
            ..every(&format!("x/{i}"), secs(10))
        })
        .collect();
    let _s = start(jobs, caps(100), &rec);
    sleep(secs(13)).await;
    let book = rec.book();
    let mut firsts = Vec::new();
    for i in 0..50 {
        let starts = book.starts(&format!("x/{i}"));
        assert_eq!(starts.len(), 2, "{starts:?}");
        assert!(starts[0] <= secs(2), "{starts:?}");
        assert!(starts[1] >= secs(10) && starts[1] <= secs(12), "{starts:?}");
        firsts.push(starts[0]);
    }
    firsts.sort();
    firsts.dedup();
    assert!(firsts.len() > 10, "starts are spread: {firsts:?}");
}

// ---- one at a time, caps ----------------------------------------------------

#[tokio::test(start_paused = true)]
async fn never_two_runs_of_one_check_at_once() {
    // Runs longer and shorter than the interval, transient failures with
    // retries, and run-now requests now and then (each replaces a pending retry,
    // so not too often).
    let pattern = [
        done(secs(7)),
        transient(secs(1), None),
        done(ms(500)),
        transient(secs(4), Some(secs(2))),
        done(secs(11)),
    ];
    let mut rec = Recorder::new(done(secs(2)));
    let ids: Vec<String> = (0..6).map(|i| format!("c/{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let steps = pattern.iter().cycle().skip(i).take(200).copied();
        rec = rec.script(id, steps);
    }
    let jobs = ids.iter().map(|id| every(id, secs(3))).collect();
    let s = start(jobs, caps(4), &rec);
    for tick in 0..120 {
        sleep(secs(1)).await;
        for (i, id) in ids.iter().enumerate() {
            if (tick + i) % 7 == 0 {
                s.run_now(id).unwrap();
            }
        }
    }
    let book = rec.book();
    assert_eq!(book.max_per_check, 1);
    assert!(book.max_total <= 4);
    assert!(book.runs.len() > 60, "{} runs", book.runs.len());
    assert!(book.runs.iter().any(|r| r.trigger == Trigger::Retry));
    assert!(book.runs.iter().any(|r| r.trigger == Trigger::Manual));
}

#[tokio::test(start_paused = true)]
async fn the_global_cap_bounds_attempts_in_flight() {
    let rec = Recorder::new(done(secs(10)));
    let jobs = (0..40)
        .map(|i| every(&format!("x/{i}"), secs(3_600)))
        .collect();
    let _s = start(jobs, caps(4), &rec);
    rec.until("all 40 to end", |b| b.ended() == 40).await;
    let book = rec.book();
    assert_eq!(book.max_total, 4);
    let mut starts: Vec<Duration> = book.runs.iter().map(|r| r.start).collect();
    starts.sort();
    let waves: Vec<Duration> = (0..10).flat_map(|w| [secs(10 * w); 4]).collect();
    assert_eq!(starts, waves);
}

#[tokio::test(start_paused = true)]
async fn a_per_connector_cap_holds_while_others_use_the_rest() {
    let rec = Recorder::new(done(secs(10)));
    let jobs = (0..10)
        .flat_map(|i| {
            [
                every(&format!("a/{i}"), secs(3_600)),
                every(&format!("b/{i}"), secs(3_600)),
            ]
        })
        .collect();
    let caps = Caps {
        global: 5,
        per_connector: BTreeMap::from([("a".to_owned(), 2)]),
    };
    let _s = start(jobs, caps, &rec);
    rec.until("all 20 to end", |b| b.ended() == 20).await;
    let book = rec.book();
    assert_eq!(book.max_per_connector["a"], 2);
    assert_eq!(book.max_total, 5);
    assert!(book.max_per_connector["b"] >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_hold_on_a_multi_threaded_runtime() {
    let rec = Recorder::new(done(ms(20)));
    let jobs = (0..30)
        .map(|i| every(&format!("x/{i}"), secs(3_600)))
        .collect();
    let s = Scheduler::start(
        jobs,
        caps(3),
        RetryPolicy::default(),
        rec.clone(),
        Arc::new(SystemClock),
    );
    rec.until("all 30 to end", |b| b.ended() == 30).await;
    assert_eq!(rec.book().max_total, 3);
    let report = s.shutdown(secs(1)).await;
    assert_eq!((report.cancelled, report.not_started), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn waiting_runs_start_in_due_order() {
    let rec = Recorder::new(done(secs(10)));
    let jobs = vec![
        every("hog", secs(3_600)),
        on_demand("a"),
        on_demand("b"),
        on_demand("c"),
    ];
    let s = start(jobs, caps(1), &rec);
    for id in ["c", "a", "b"] {
        sleep(secs(1)).await;
        assert_eq!(s.run_now(id), Ok(RunNow::Queued));
    }
    assert_eq!(
        s.stats(),
        Stats {
            running: 1,
            queued: 3,
            jobs: 4
        }
    );
    rec.until("all four to end", |b| b.ended() == 4).await;
    let book = rec.book();
    let order: Vec<(&str, Duration)> = book
        .runs
        .iter()
        .map(|r| (r.check.as_str(), r.start))
        .collect();
    assert_eq!(
        order,
        [
            ("hog", secs(0)),
            ("c", secs(10)),
            ("a", secs(20)),
            ("b", secs(30))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn raising_the_caps_starts_waiting_runs() {
    let rec = Recorder::new(done(secs(10)));
    let jobs = (0..3)
        .map(|i| every(&format!("x/{i}"), secs(3_600)))
        .collect();
    let s = start(jobs, caps(1), &rec);
    rec.until("one to start", |b| b.runs.len() == 1).await;
    assert_eq!(
        s.stats(),
        Stats {
            running: 1,
            queued: 2,
            jobs: 3
        }
    );
    s.set_caps(caps(3));
    rec.until("all to start", |b| b.runs.len() == 3).await;
    assert_eq!(rec.since_t0(), Duration::ZERO);
    assert_eq!(
        s.stats(),
        Stats {
            running: 3,
            queued: 0,
            jobs: 3
        }
    );
}

// ---- retries ---------------------------------------------------------------

#[test]
fn backoff_doubles_up_to_the_cap_and_honours_a_longer_hint() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.delay(1, None), secs(1));
    assert_eq!(policy.delay(2, None), secs(2));
    assert_eq!(policy.delay(3, None), secs(4));
    assert_eq!(policy.delay(7, None), secs(60));
    assert_eq!(policy.delay(u32::MAX, None), secs(60));
    assert_eq!(policy.delay(1, Some(secs(90))), secs(90));
    assert_eq!(policy.delay(3, Some(ms(500))), secs(4));
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_backoff() {
    use Trigger::{Retry, Schedule};
    let rec = Recorder::new(transient(Duration::ZERO, None)).script(
        "heals",
        [
            transient(ms(500), None),
            transient(ms(500), None),
            done(ms(500)),
        ],
    );
    let jobs = vec![every("heals", secs(3_600)), every("broken", secs(3_600))];
    let _s = start(jobs, caps(4), &rec);
    sleep(secs(60)).await;
    let book = rec.book();
    // Ends at 0.5 s, retried 1 s later; ends at 2 s, retried 2 s later.
    assert_eq!(
        book.attempts("heals"),
        [
            (1, Schedule, secs(0)),
            (2, Retry, ms(1_500)),
            (3, Retry, secs(4))
        ]
    );
    // Three attempts, then it waits for its next slot.
    assert_eq!(
        book.attempts("broken"),
        [
            (1, Schedule, secs(0)),
            (2, Retry, secs(1)),
            (3, Retry, secs(3))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped() {
    let rec = Recorder::new(transient(Duration::ZERO, None));
    let retry = RetryPolicy {
        max_attempts: 5,
        base: secs(1),
        max: secs(3),
    };
    let _s = start_with(vec![every("a", secs(3_600))], caps(4), retry, &rec);
    sleep(secs(60)).await;
    assert_eq!(
        rec.book().starts("a"),
        [secs(0), secs(1), secs(3), secs(6), secs(9)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_longer_retry_after_hint_wins() {
    let rec = Recorder::new(done(Duration::ZERO))
        .script("slow-down", [transient(Duration::ZERO, Some(secs(10)))])
        .script("soon", [transient(Duration::ZERO, Some(ms(100)))]);
    let jobs = vec![every("slow-down", secs(3_600)), every("soon", secs(3_600))];
    let _s = start(jobs, caps(4), &rec);
    sleep(secs(60)).await;
    assert_eq!(rec.book().starts("slow-down"), [secs(0), secs(10)]);
    assert_eq!(rec.book().starts("soon"), [secs(0), secs(1)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_never_reaches_into_the_next_scheduled_run() {
    let rec = Recorder::new(done(Duration::ZERO))
        .script("a", [transient(Duration::ZERO, Some(secs(20)))]);
    let _s = start(vec![every("a", secs(10))], caps(4), &rec);
    sleep(secs(25)).await;
    let book = rec.book();
    assert_eq!(
        book.attempts("a"),
        [
            (1, Trigger::Schedule, secs(0)),
            (1, Trigger::Schedule, secs(10)),
            (1, Trigger::Schedule, secs(20))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn other_failures_are_not_retried() {
    // `Done` covers config, auth and system errors: retrying would not help.
    let rec = Recorder::new(done(secs(1)));
    let _s = start(vec![every("a", secs(3_600))], caps(4), &rec);
    sleep(secs(600)).await;
    assert_eq!(rec.book().attempts("a"), [(1, Trigger::Schedule, secs(0))]);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_attempt_returns_its_permit_and_is_not_retried() {
    let rec = Recorder::new(done(secs(1))).script(
        "a",
        [Step {
            takes: secs(1),
            outcome: Outcome::Panic,
        }],
    );
    let s = start(vec![every("a", secs(10)), on_demand("b")], caps(1), &rec);
    sleep(secs(2)).await;
    assert_eq!(s.stats().running, 0);
    assert_eq!(s.run_now("b"), Ok(RunNow::Queued));
    sleep(secs(13)).await;
    let book = rec.book();
    assert_eq!(
        book.starts("b"),
        [secs(2)],
        "the permit came back under a cap of 1"
    );
    assert_eq!(
        book.attempts("a"),
        [
            (1, Trigger::Schedule, secs(0)),
            (1, Trigger::Schedule, secs(10))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_wedged_attempt_is_dropped_at_its_deadline() {
    let rec = Recorder::new(done(secs(1))).script("a", [done(secs(1_000))]);
    let job = Job {
        deadline: Some(secs(5)),
        ..every("a", secs(60))
    };
    let s = start(vec![job], caps(4), &rec);
    sleep(secs(30)).await;
    {
        let book = rec.book();
        let wedged = book.of("a")[0];
        assert!(wedged.cancelled);
        assert_eq!(wedged.end, Some(secs(5)));
        assert_eq!(book.runs.len(), 1, "not retried");
    }
    assert_eq!(s.stats().running, 0);
    sleep(secs(31)).await;
    assert_eq!(rec.book().starts("a"), [secs(0), secs(60)]);
}

// ---- run now, reload -------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn run_now_queues_a_run_or_says_why_not() {
    let rec = Recorder::new(done(secs(10)));
    let s = start(
        vec![every("busy", secs(3_600)), on_demand("idle")],
        caps(2),
        &rec,
    );
    rec.until("busy to start", |b| b.runs.len() == 1).await;
    assert_eq!(s.run_now("busy"), Ok(RunNow::AlreadyRunning));
    assert_eq!(
        s.run_now("nope"),
        Err(SchedulerError::UnknownCheck("nope".into()))
    );
    assert_eq!(s.run_now("idle"), Ok(RunNow::Queued));
    rec.until("idle to start", |b| b.runs.len() == 2).await;
    assert_eq!(rec.book().attempts("idle"), [(1, Trigger::Manual, secs(0))]);
    assert_eq!(s.run_now("idle"), Ok(RunNow::AlreadyRunning));
    sleep(secs(30)).await;
    assert_eq!(
        rec.book().runs.len(),
        2,
        "no run was added by the refused requests"
    );
}

#[tokio::test(start_paused = true)]
async fn run_now_adds_no_duplicate_to_a_waiting_run() {
    let rec = Recorder::new(done(secs(10)));
    let s = start(
        vec![every("hog", secs(3_600)), on_demand("a")],
        caps(1),
        &rec,
    );
    rec.until("hog to start", |b| b.runs.len() == 1).await;
    assert_eq!(s.run_now("a"), Ok(RunNow::Queued));
    assert_eq!(s.run_now("a"), Ok(RunNow::Queued));
    assert_eq!(
        s.stats(),
        Stats {
            running: 1,
            queued: 1,
            jobs: 2
        }
    );
    sleep(secs(60)).await;
    assert_eq!(rec.book().starts("a"), [secs(10)]);
}

#[tokio::test(start_paused = true)]
async fn run_now_replaces_a_pending_retry() {
    let rec = Recorder::new(done(Duration::ZERO))
        .script("a", [transient(Duration::ZERO, Some(secs(30)))]);
    let s = start(vec![every("a", secs(3_600))], caps(4), &rec);
    sleep(secs(5)).await;
    assert_eq!(s.run_now("a"), Ok(RunNow::Queued));
    sleep(secs(60)).await;
    assert_eq!(
        rec.book().attempts("a"),
        [
            (1, Trigger::Schedule, secs(0)),
            (1, Trigger::Manual, secs(5))
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn replace_jobs_keeps_unchanged_timing_and_stops_removed_jobs() {
    let rec = Recorder::new(done(secs(1))).script("c", [done(secs(8))]);
    let t0 = Instant::now();
    let s = start(
        vec![
            every("a", secs(10)),
            every("b", secs(10)),
            every("c", secs(10)),
        ],
        caps(8),
        &rec,
    );
    sleep(secs(5)).await;
    s.replace_jobs(vec![
        every("a", secs(10)),
        every("b", secs(7)),
        every("d", secs(10)),
    ]);
    assert_eq!(s.stats().jobs, 3);
    assert_eq!(
        s.run_now("c"),
        Err(SchedulerError::UnknownCheck("c".into()))
    );
    sleep_until(t0 + ms(24_500)).await;
    let book = rec.book();
    assert_eq!(
        book.starts("a"),
        [secs(0), secs(10), secs(20)],
        "unchanged: timing kept"
    );
    assert_eq!(
        book.starts("b"),
        [secs(0), secs(5), secs(12), secs(19)],
        "changed: rescheduled"
    );
    assert_eq!(book.starts("d"), [secs(5), secs(15)], "added");
    let c = book.of("c");
    assert_eq!(c.len(), 1, "removed: no further run");
    assert_eq!(
        (c[0].end, c[0].cancelled),
        (Some(secs(8)), false),
        "its run in flight finished"
    );
}

#[tokio::test(start_paused = true)]
async fn a_check_removed_and_added_back_while_running_never_overlaps() {
    let rec = Recorder::new(done(secs(8)));
    let s = start(vec![every("c", secs(10))], caps(4), &rec);
    sleep(secs(2)).await;
    s.replace_jobs(Vec::new());
    assert_eq!(
        s.stats(),
        Stats {
            running: 1,
            queued: 0,
            jobs: 0
        }
    );
    sleep(secs(2)).await;
    s.replace_jobs(vec![every("c", secs(10))]);
    assert_eq!(s.run_now("c"), Ok(RunNow::AlreadyRunning));
    sleep(secs(19)).await;
    let book = rec.book();
    // Its new first slot (4 s) came while the old run was in flight.
    assert_eq!(book.starts("c"), [secs(0), secs(14)]);
    assert_eq!(book.max_per_check, 1);
}

// ---- shutdown --------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn shutdown_lets_fast_runs_finish_and_cancels_slow_ones_at_the_deadline() {
    let rec = Recorder::new(done(secs(2))).script("slow", [done(secs(100))]);
    let t0 = Instant::now();
    let s = start(
        vec![every("fast", secs(5)), every("slow", secs(5))],
        caps(4),
        &rec,
    );
    sleep(secs(1)).await;
    let stopping = tokio::spawn(s.clone().shutdown(secs(10)));
    // Once shutdown has begun, no work is taken.
    while s.run_now("fast") != Err(SchedulerError::ShuttingDown) {
        tokio::task::yield_now().await;
    }
    let report = stopping.await.unwrap();
    assert_eq!(
        report,
        ShutdownReport {
            finished: 1,
            cancelled: 1,
            not_started: 0
        }
    );
    assert_eq!(
        Instant::now() - t0,
        secs(11),
        "returned at the grace deadline"
    );
    let book = rec.book();
    let (fast, slow) = (book.of("fast")[0], book.of("slow")[0]);
    assert_eq!((fast.end, fast.cancelled), (Some(secs(2)), false));
    assert_eq!((slow.end, slow.cancelled), (Some(secs(11)), true));
    assert_eq!(
        book.runs.len(),
        2,
        "no run started after shutdown began (slots at 5 s, 10 s)"
    );
    assert_eq!(s.stats().running, 0);
    s.replace_jobs(vec![every("new", secs(1))]);
    assert_eq!(s.stats().jobs, 2, "a reload after shutdown is ignored");
}

#[tokio::test(start_paused = true)]
async fn shutdown_returns_when_the_last_run_ends_and_drops_waiting_runs() {
    let rec = Recorder::new(done(secs(3)));
    let t0 = Instant::now();
    let jobs = vec![
        every("a", secs(60)),
        every("b", secs(60)),
        every("c", secs(60)),
    ];
    let s = start(jobs, caps(1), &rec);
    sleep(secs(1)).await;
    let report = s.clone().shutdown(secs(60)).await;
    assert_eq!(
        report,
        ShutdownReport {
            finished: 1,
            cancelled: 0,
            not_started: 2
        }
    );
    assert_eq!(Instant::now() - t0, secs(3));
    assert_eq!(rec.book().runs.len(), 1);
    // A second call shares the first one's outcome.
    assert_eq!(s.shutdown(secs(1)).await, report);
}

// ---- scale -----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ten_thousand_jobs_are_cheap() {
    // Per job: one entry (bounded here), its id and connector, one heap timer.
    assert!(
        State::entry_size() <= 256,
        "entry is {} bytes",
        State::entry_size()
    );
    let rec = Recorder::new(done(ms(50)));
    let jobs: Vec<Job> = (0..10_000)
        .map(|i| Job {
            jitter: Jitter::Fraction(1.0),
            ..every(&format!("x/{i}"), secs(60))
        })
        .collect();
    let s = start(jobs, caps(16), &rec);
    assert_eq!(s.stats().jobs, 10_000);
    sleep(secs(61)).await;
    let book = rec.book();
    let mut ran: Vec<&str> = book.runs.iter().map(|r| r.check.as_str()).collect();
    ran.sort_unstable();
    ran.dedup();
    assert_eq!(ran.len(), 10_000, "every job ran within its first interval");
    assert_eq!(book.max_per_check, 1);
    assert!(book.max_total <= 16);
}

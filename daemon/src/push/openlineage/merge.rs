//! Merging a run's events, whatever their order and repetition: what START,
//! RUNNING and OTHER events said of a run is held until its terminal event
//! (COMPLETE, FAIL or ABORT) arrives, which is then stored with all of it.
//! Producers spread a run's facts over its events (Airflow sends
//! `nominalTime` with START; Spark sends many partial events), and some send
//! COMPLETE first: what arrives after the terminal event is answered but
//! changes nothing, since the run is stored once under an id derived from
//! its `runId` (see the push API's idempotency).
//!
//! What is held is bounded in bytes, not only in runs, because a producer
//! decides how much a run holds: every held byte (names, assertions, the
//! run's own bookkeeping) is charged to its run, its check and the daemon's
//! total, each with its [`Budget`]. An event that would take its run over
//! the run's budget, or its check's runs over the check's, is refused whole
//! ([`Refused`]) and the held state stays as it was; the budgets of checks
//! are reserved shares of the total (the config makes them add up to at most
//! it), so a producer that fills its check's budget fails alone. A run not
//! heard of for its check's idle time expires: it was never stored, so
//! nothing stored is lost, and its terminal event, if it comes, stands for
//! it with what it carries itself, as after a restart.
//!
//! Not moka: its weigher bounds a cache by evicting entries to make room,
//! and evicting here would let one producer's runs push out another's (the
//! opposite of the isolation wanted) and lose what a run's START said
//! without telling the producer; refusing needs an exact, synchronous
//! admission decision per check, which a few counters under one lock give.
//!
//! It owns the in-memory state of unfinished runs and its accounting; it
//! must not know HTTP, the config or the store. Held state is lost on a
//! restart.

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::event::{Assertion, Dataset, Name, Nominal, RunEvent};

/// An assertion's identity within its dataset: its name and column.
pub type AssertionKey = (String, Option<String>);

/// What a dataset's facets said so far: its row count and each
/// assertion's latest outcome.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Facts {
    pub row_count: Option<u64>,
    pub assertions: BTreeMap<AssertionKey, bool>,
}

/// What the events of one run said so far: only what the report is made
/// of (every other facet was skipped when the event was read).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunState {
    pub inputs: BTreeMap<Name, Facts>,
    pub outputs: BTreeMap<Name, Facts>,
    pub nominal: Option<Nominal>,
}

impl RunState {
    /// Adds what `event` says; a later event's value of a facet wins.
    pub fn absorb(&mut self, event: &RunEvent) {
        merge(&mut self.inputs, &event.inputs);
        merge(&mut self.outputs, &event.outputs);
        if event.nominal.is_some() {
            self.nominal = event.nominal;
        }
    }

    /// Bytes that absorbing `event` adds, on the high side: a dataset or an
    /// assertion sent twice in one event is charged twice.
    fn growth(&self, event: &RunEvent) -> u64 {
        side_growth(&self.inputs, &event.inputs) + side_growth(&self.outputs, &event.outputs)
    }
}

fn merge(into: &mut BTreeMap<Name, Facts>, datasets: &[Dataset]) {
    for d in datasets {
        let held = into.entry(d.id.clone()).or_default();
        if d.row_count.is_some() {
            held.row_count = d.row_count;
        }
        for a in &d.assertions {
            held.assertions
                .insert((a.assertion.clone(), a.column.clone()), a.success);
        }
    }
}

/// What one allocation costs beyond its bytes: the allocator's header and
/// rounding.
const ALLOCATION: u64 = 16;

fn string_bytes(s: &str) -> u64 {
    s.len() as u64 + ALLOCATION
}

/// A B-tree map entry of `K` to `V`: the key and value, twice, since a
/// node may be only half full.
fn entry_bytes<K, V>() -> u64 {
    2 * (size_of::<K>() + size_of::<V>()) as u64
}

fn assertion_bytes(a: &Assertion) -> u64 {
    entry_bytes::<AssertionKey, bool>()
        + string_bytes(&a.assertion)
        + a.column.as_deref().map_or(0, string_bytes)
}

fn dataset_bytes(d: &Dataset) -> u64 {
    entry_bytes::<Name, Facts>()
        + string_bytes(&d.id.namespace)
        + string_bytes(&d.id.name)
        + d.assertions.iter().map(assertion_bytes).sum::<u64>()
}

fn side_growth(held: &BTreeMap<Name, Facts>, datasets: &[Dataset]) -> u64 {
    datasets
        .iter()
        .map(|d| match held.get(&d.id) {
            None => dataset_bytes(d),
            Some(facts) => d
                .assertions
                .iter()
                .filter(|a| {
                    // Replacing an assertion of the same key costs nothing.
                    !facts
                        .assertions
                        .contains_key(&(a.assertion.clone(), a.column.clone()))
                })
                .map(assertion_bytes)
                .sum(),
        })
        .sum()
}

/// How much unfinished runs may hold, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes one run may hold.
    pub run: u64,
    /// Bytes all unfinished runs of the check may hold.
    pub check: u64,
    /// Bytes all unfinished runs of every check may hold.
    pub total: u64,
    /// A run not heard of for this long expires.
    pub idle: Duration,
}

/// Why an event was not held; nothing of it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error(
        "this event would make its run hold {would} bytes, over the check's max_run_held of {limit} (what the run held before is kept, and its terminal event still stores it)"
    )]
    Run { would: u64, limit: u64 },
    #[error(
        "the check's unfinished runs hold {held} bytes and this event needs {needs} more, over the check's max_held of {limit}; retry once some of its runs end (a run not heard of for {idle_s}s expires)"
    )]
    Check {
        held: u64,
        needs: u64,
        limit: u64,
        idle_s: u64,
    },
    #[error(
        "all OpenLineage checks' unfinished runs hold {held} bytes and this event needs {needs} more, over server.openlineage_max_held of {limit}; retry once some runs end"
    )]
    Total { held: u64, needs: u64, limit: u64 },
}

/// Runs that expired in one sweep.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expired {
    /// By check: how many runs and the bytes they held.
    pub by_check: BTreeMap<String, (u64, u64)>,
}

/// What is held now, in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub runs: u64,
    pub bytes: u64,
}

/// One unfinished run.
struct Open {
    check: String,
    state: RunState,
    /// Charged to it, its own bookkeeping included.
    bytes: u64,
    /// Its place in [`Runs::by_expiry`].
    expires: (Instant, u64),
}

/// A run's own bookkeeping: its id (in both maps), its check's id, its
/// entries.
fn run_bytes(run: &str, check: &str) -> u64 {
    2 * string_bytes(run)
        + string_bytes(check)
        + 2 * (size_of::<String>() + size_of::<Open>()) as u64
        + entry_bytes::<(Instant, u64), String>()
}

#[derive(Default)]
struct Runs {
    open: HashMap<String, Open>,
    /// Runs by when they expire (the sequence number breaks ties).
    by_expiry: BTreeMap<(Instant, u64), String>,
    by_check: HashMap<String, u64>,
    total: u64,
    sequence: u64,
}

impl Runs {
    fn release(&mut self, run: &str) -> Option<Open> {
        let open = self.open.remove(run)?;
        self.by_expiry.remove(&open.expires);
        self.total -= open.bytes;
        if let Some(held) = self.by_check.get_mut(&open.check) {
            *held -= open.bytes;
            if *held == 0 {
                self.by_check.remove(&open.check);
            }
        }
        Some(open)
    }

    fn sweep(&mut self, now: Instant) -> Expired {
        let mut expired = Expired::default();
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let run = entry.remove();
            if let Some(open) = self.release(&run) {
                tracing::debug!(check = %open.check, run = %run, bytes = open.bytes, "an unfinished OpenLineage run expired unheard of");
                let (runs, bytes) = expired.by_check.entry(open.check).or_default();
                *runs += 1;
                *bytes += open.bytes;
            }
        }
        expired
    }
}

/// Runs heard of and not ended, by their stored run id.
#[derive(Default)]
pub struct OpenRuns {
    runs: Mutex<Runs>,
}

impl OpenRuns {
    fn lock(&self) -> std::sync::MutexGuard<'_, Runs> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds what the non-terminal `event` of `run` (of `check`) says,
    /// within `budget`, at `now`; first lets go of runs that expired.
    pub fn note(
        &self,
        check: &str,
        run: &str,
        event: &RunEvent,
        budget: Budget,
        now: Instant,
    ) -> (Expired, Result<(), Refused>) {
        let mut runs = self.lock();
        let expired = runs.sweep(now);
        let (run_held, needs) = match runs.open.get(run) {
            Some(open) => (open.bytes, open.state.growth(event)),
            None => (0, run_bytes(run, check) + RunState::default().growth(event)),
        };
        let check_held = runs.by_check.get(check).copied().unwrap_or(0);
        // An event that adds nothing (a repeat, a RUNNING heartbeat) is let
        // in however full things are, even over budgets a reload lowered.
        let refused = if needs == 0 {
            None
        } else if run_held + needs > budget.run {
            Some(Refused::Run {
                would: run_held + needs,
                limit: budget.run,
            })
        } else if check_held + needs > budget.check {
            Some(Refused::Check {
                held: check_held,
                needs,
                limit: budget.check,
                idle_s: budget.idle.as_secs(),
            })
        } else if runs.total + needs > budget.total {
            Some(Refused::Total {
                held: runs.total,
                needs,
                limit: budget.total,
            })
        } else {
            None
        };
        if let Some(refused) = refused {
            return (expired, Err(refused));
        }
        runs.sequence += 1;
        let expires = (now + budget.idle, runs.sequence);
        let runs = &mut *runs;
        let open = runs.open.entry(run.to_owned()).or_insert_with(|| Open {
            check: check.to_owned(),
            state: RunState::default(),
            bytes: 0,
            expires,
        });
        open.state.absorb(event);
        open.bytes += needs;
        // A run keeps the check it was first charged to: a reload that
        // moves its job elsewhere does not move its bytes.
        let charged_to = open.check.clone();
        runs.by_expiry.remove(&open.expires);
        open.expires = expires;
        runs.by_expiry.insert(expires, run.to_owned());
        *runs.by_check.entry(charged_to).or_default() += needs;
        runs.total += needs;
        (expired, Ok(()))
    }

    /// The whole run as its terminal `event` ends it, letting go of what was
    /// held (and of runs that expired by `now`).
    pub fn end(&self, run: &str, event: &RunEvent, now: Instant) -> (Expired, RunState) {
        let mut runs = self.lock();
        let expired = runs.sweep(now);
        let held = runs.release(run);
        drop(runs);
        let mut state = held.map(|o| o.state).unwrap_or_default();
        state.absorb(event);
        (expired, state)
    }

    /// What is held now.
    pub fn held(&self) -> Held {
        let runs = self.lock();
        Held {
            runs: runs.open.len() as u64,
            bytes: runs.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::super::event::EventType;
    use super::*;

    fn dataset(name: &str, rows: Option<u64>, success: Option<bool>) -> Dataset {
        Dataset {
            id: Name {
                namespace: "d".into(),
                name: name.into(),
            },
            row_count: rows,
            assertions: success
                .map(|success| Assertion {
                    assertion: "not_null".into(),
                    column: Some("id".into()),
                    success,
                })
                .into_iter()
                .collect(),
        }
    }

    fn event(t: EventType, outputs: Vec<Dataset>) -> RunEvent {
        RunEvent {
            event_type: t,
            event_time: UNIX_EPOCH + Duration::from_secs(1_780_000_000),
            run_id: "r".into(),
            job: Name {
                namespace: "j".into(),
                name: "j".into(),
            },
            inputs: Vec::new(),
            outputs,
            error: None,
            nominal: (t == EventType::Start).then_some(Nominal {
                start: SystemTime::UNIX_EPOCH,
                end: None,
            }),
        }
    }

    fn simple(t: EventType, rows: Option<u64>, success: Option<bool>) -> RunEvent {
        event(t, vec![dataset("t", rows, success)])
    }

    const ROOMY: Budget = Budget {
        run: 1 << 20,
        check: 1 << 20,
        total: 1 << 20,
        idle: Duration::from_secs(60),
    };

    #[test]
    fn a_run_is_the_sum_of_its_events_with_later_facets_winning() {
        let open = OpenRuns::default();
        let now = Instant::now();
        for e in [
            simple(EventType::Start, None, Some(false)),
            simple(EventType::Running, Some(3), Some(true)),
            simple(EventType::Running, Some(3), Some(true)),
        ] {
            open.note("c", "r", &e, ROOMY, now).1.unwrap();
        }
        let (_, state) = open.end("r", &simple(EventType::Complete, None, None), now);
        let out = state.outputs.values().next().unwrap();
        assert_eq!(out.row_count, Some(3));
        assert_eq!(out.assertions.len(), 1);
        assert!(out.assertions.values().all(|s| *s));
        assert!(state.nominal.is_some());
        // Nothing is held once the run ended.
        assert_eq!(open.held(), Held { runs: 0, bytes: 0 });
        let (_, again) = open.end("r", &simple(EventType::Complete, None, None), now);
        assert!(again.nominal.is_none());
    }

    #[test]
    fn every_held_byte_is_charged_and_repeats_cost_nothing() {
        let open = OpenRuns::default();
        let now = Instant::now();
        let long = "x".repeat(1000);
        let e = event(
            EventType::Running,
            vec![dataset(&long, Some(1), Some(true))],
        );
        open.note("c", "r", &e, ROOMY, now).1.unwrap();
        let once = open.held().bytes;
        // The name is charged in full, with the bookkeeping around it.
        assert!(once > 1000 + run_bytes("r", "c"), "{once}");
        open.note("c", "r", &e, ROOMY, now).1.unwrap();
        assert_eq!(open.held().bytes, once, "a repeated event adds nothing");
        let other = event(EventType::Running, vec![dataset("y", None, None)]);
        open.note("c", "r", &other, ROOMY, now).1.unwrap();
        assert!(open.held().bytes > once);
    }

    #[test]
    fn an_event_over_a_budget_is_refused_whole_and_the_rest_kept() {
        let open = OpenRuns::default();
        let now = Instant::now();
        let budget = Budget {
            run: 4096,
            check: 8192,
            total: 1 << 20,
            ..ROOMY
        };
        let big = |name: &str| event(EventType::Running, vec![dataset(name, None, None)]);
        let a = "a".repeat(1500);
        open.note("c", "r1", &big(&a), budget, now).1.unwrap();
        let held = open.held();
        let b = "b".repeat(3000);
        assert!(matches!(
            open.note("c", "r1", &big(&b), budget, now).1,
            Err(Refused::Run { limit: 4096, .. })
        ));
        assert_eq!(open.held(), held, "nothing of a refused event is held");
        // Other runs of the check fill its budget, then are refused.
        open.note("c", "r2", &big(&a), budget, now).1.unwrap();
        open.note("c", "r3", &big(&a), budget, now).1.unwrap();
        assert!(matches!(
            open.note("c", "r4", &big(&a), budget, now).1,
            Err(Refused::Check { limit: 8192, .. })
        ));
        // A held run's event that adds nothing is still let in.
        open.note("c", "r2", &big(&a), budget, now).1.unwrap();
        // Another check has its own budget.
        open.note("other", "r5", &big(&a), budget, now).1.unwrap();
        // The total bounds them all.
        let tight = Budget {
            total: open.held().bytes + 10,
            ..budget
        };
        assert!(matches!(
            open.note("third", "r6", &big(&a), tight, now).1,
            Err(Refused::Total { .. })
        ));
        // r1 ends with what it held.
        let (_, state) = open.end("r1", &event(EventType::Complete, Vec::new()), now);
        assert_eq!(state.outputs.keys().next().unwrap().name, a);
    }

    #[test]
    fn idle_runs_expire_and_free_their_budget() {
        let open = OpenRuns::default();
        let start = Instant::now();
        let budget = Budget {
            idle: Duration::from_secs(10),
            ..ROOMY
        };
        let e = simple(EventType::Start, None, None);
        open.note("c", "old", &e, budget, start).1.unwrap();
        open.note("c", "kept", &e, budget, start).1.unwrap();
        // Heard of again: its idle time starts over.
        let later = start + Duration::from_secs(6);
        open.note("c", "kept", &e, budget, later).1.unwrap();
        let (expired, _) = open.note("c", "new", &e, budget, start + Duration::from_secs(11));
        let (runs, bytes) = expired.by_check["c"];
        assert_eq!(runs, 1);
        assert!(bytes > 0);
        assert_eq!(open.held().runs, 2);
        // The expired run's terminal event stands alone.
        let (_, state) = open.end("old", &simple(EventType::Complete, None, None), later);
        assert!(state.nominal.is_none());
    }
}

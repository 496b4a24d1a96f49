//! Merging a run's events, whatever their order and repetition: what START,
//! RUNNING and OTHER events said of a run is held until its terminal event
//! (COMPLETE, FAIL or ABORT) arrives, which is then stored with all of it.
//! Producers spread a run's facts over its events (Airflow sends
//! `nominalTime` with START; Spark sends many partial events), and some send
//! COMPLETE first: what arrives after the terminal event is answered but
//! changes nothing, since the run is stored once under an id derived from
//! its `runId` (see the push API's idempotency).
//!
//! It owns the in-memory state of unfinished runs, bounded; it must not know
//! HTTP or the store. Held state is lost on a restart: a terminal event then
//! stands for its run with what it carries itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tokio::time::Instant;

use super::event::{Dataset, Name, Nominal, RunEvent};

/// Unfinished runs held at most; past it the least recently heard of goes.
const MAX_OPEN: usize = 10_000;

/// What the events of one run said so far.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunState {
    pub inputs: BTreeMap<Name, Dataset>,
    pub outputs: BTreeMap<Name, Dataset>,
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
}

fn merge(into: &mut BTreeMap<Name, Dataset>, datasets: &[Dataset]) {
    for d in datasets {
        let held = into.entry(d.id.clone()).or_insert_with(|| Dataset {
            id: d.id.clone(),
            row_count: None,
            assertions: Vec::new(),
        });
        if d.row_count.is_some() {
            held.row_count = d.row_count;
        }
        for a in &d.assertions {
            held.assertions
                .retain(|h| (&h.assertion, &h.column) != (&a.assertion, &a.column));
            held.assertions.push(a.clone());
        }
    }
}

/// Runs heard of and not ended, by their stored run id.
#[derive(Default)]
pub struct OpenRuns {
    runs: Mutex<HashMap<String, (RunState, Instant)>>,
}

impl OpenRuns {
    /// Holds what the non-terminal `event` of `run` says.
    pub fn note(&self, run: &str, event: &RunEvent) {
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if runs.len() >= MAX_OPEN && !runs.contains_key(run) {
            let oldest = runs
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                runs.remove(&oldest);
            }
        }
        let (state, at) = runs
            .entry(run.to_owned())
            .or_insert_with(|| (RunState::default(), Instant::now()));
        state.absorb(event);
        *at = Instant::now();
    }

    /// The whole run as its terminal `event` ends it, letting go of what was
    /// held.
    pub fn end(&self, run: &str, event: &RunEvent) -> RunState {
        let held = self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(run);
        let mut state = held.map(|(s, _)| s).unwrap_or_default();
        state.absorb(event);
        state
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::super::event::{Assertion, EventType};
    use super::*;

    fn event(t: EventType, rows: Option<u64>, success: Option<bool>) -> RunEvent {
        let at = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        RunEvent {
            event_type: t,
            event_time: at,
            run_id: "r".into(),
            job: Name {
                namespace: "j".into(),
                name: "j".into(),
            },
            inputs: Vec::new(),
            outputs: vec![Dataset {
                id: Name {
                    namespace: "d".into(),
                    name: "t".into(),
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
            }],
            error: None,
            nominal: (t == EventType::Start).then_some(Nominal {
                start: SystemTime::UNIX_EPOCH,
                end: None,
            }),
        }
    }

    #[test]
    fn a_run_is_the_sum_of_its_events_with_later_facets_winning() {
        let open = OpenRuns::default();
        open.note("r", &event(EventType::Start, None, Some(false)));
        open.note("r", &event(EventType::Running, Some(3), Some(true)));
        open.note("r", &event(EventType::Running, Some(3), Some(true)));
        let state = open.end("r", &event(EventType::Complete, None, None));
        let out = &state.outputs.values().next().unwrap();
        assert_eq!(out.row_count, Some(3));
        assert_eq!(out.assertions.len(), 1);
        assert!(out.assertions[0].success);
        assert!(state.nominal.is_some());
        // Nothing is held once the run ended.
        let again = open.end("r", &event(EventType::Complete, None, None));
        assert!(again.nominal.is_none());
    }
}

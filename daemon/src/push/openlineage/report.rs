//! What an ended OpenLineage run says in the plugin contract's words: the
//! [`Report`] a connector would have made of it, so it takes the same path.
//!
//! - each output dataset is an asset named by the dataset's `name`
//!   (`db.schema.table`; its namespace goes to metadata): COMPLETE gives its
//!   freshness (`eventTime`) and `outputStatistics.rowCount` as received;
//!   FAIL and ABORT give a native error with the `errorMessage` facet;
//! - each data quality assertion is an asset of its own,
//!   `<dataset>:<assertion>` or `<dataset>:<assertion>(<column>)`, native ok
//!   or error, so a test never hides its dataset's freshness or count;
//! - a failed run with no dataset at all is told on an asset named by its
//!   job, so the failure is not lost;
//! - `nominalTime`, the job and the run id are kept as metadata.
//!
//! It must not know HTTP, the config or the store.

use std::collections::BTreeMap;

use super::event::{EventType, Name, RunEvent};
use super::merge::{Facts, RunState};
use crate::plugin::{
    AssetError, MetadataEntry, NativeStatus, Observation, Report, StatusLevel, Timestamp,
};
use crate::push::wire::{bare_observation, rfc3339, timestamp};

/// The report of a run that `end` (its terminal event) ended, with what
/// its earlier events said in `state`.
pub fn report(state: &RunState, end: &RunEvent) -> Report {
    let at = timestamp(end.event_time);
    let mut common = vec![
        meta(
            "openlineage.job",
            format!("{}/{}", end.job.namespace, end.job.name),
        ),
        meta("openlineage.run_id", end.run_id.clone()),
        meta("openlineage.event_type", end.event_type.as_str()),
    ];
    if let Some(n) = state.nominal {
        common.push(meta("openlineage.nominal_start_time", rfc3339(n.start)));
        if let Some(e) = n.end {
            common.push(meta("openlineage.nominal_end_time", rfc3339(e)));
        }
    }
    let failure = (end.event_type != EventType::Complete).then(|| {
        let message = end.error.clone().unwrap_or_else(|| {
            format!(
                "the run of job {}/{} ended with {}",
                end.job.namespace,
                end.job.name,
                end.event_type.as_str()
            )
        });
        let kind = if end.event_type == EventType::Abort {
            "run_aborted"
        } else {
            "run_failed"
        };
        (kind, message)
    });
    let mut assets: BTreeMap<String, Observation> = BTreeMap::new();
    // Two datasets of one name in different namespaces: the first speaks.
    let add = |assets: &mut BTreeMap<String, Observation>, o: Observation| {
        assets.entry(o.asset.clone()).or_insert(o);
    };
    for (id, facts) in &state.outputs {
        let mut o = observation(&id.name, "dataset", &common, id);
        match &failure {
            None => {
                o.freshness = Some(at);
                o.counts.received = facts.row_count;
                o.native_status = Some(native(StatusLevel::Ok, "COMPLETE", None));
            }
            Some((kind, message)) => {
                o.native_status = Some(native(
                    StatusLevel::Error,
                    end.event_type.as_str(),
                    Some(message.clone()),
                ));
                o.errors.push(error(kind, message.clone(), at));
            }
        }
        add(&mut assets, o);
    }
    for (id, facts) in state.inputs.iter().chain(&state.outputs) {
        for o in assertions(id, facts, &common, at) {
            add(&mut assets, o);
        }
    }
    if assets.is_empty()
        && let Some((kind, message)) = failure
    {
        let mut o = observation(&end.job.name, "job", &common, &end.job);
        o.native_status = Some(native(
            StatusLevel::Error,
            end.event_type.as_str(),
            Some(message.clone()),
        ));
        o.errors.push(error(kind, message, at));
        add(&mut assets, o);
    }
    Report {
        observations: assets.into_values().collect(),
    }
}

fn assertions(
    id: &Name,
    facts: &Facts,
    common: &[MetadataEntry],
    at: Timestamp,
) -> Vec<Observation> {
    facts
        .assertions
        .iter()
        .map(|((assertion, column), success)| {
            let asset = match column {
                Some(c) => format!("{}:{assertion}({c})", id.name),
                None => format!("{}:{assertion}", id.name),
            };
            let mut o = observation(&asset, "assertion", common, id);
            o.metadata
                .push(meta("openlineage.dataset", id.name.clone()));
            if *success {
                o.native_status = Some(native(StatusLevel::Ok, "passed", None));
            } else {
                let on = column
                    .as_ref()
                    .map(|c| format!(" on column {c}"))
                    .unwrap_or_default();
                let message = format!("assertion {assertion}{on} of {} failed", id.name);
                o.native_status = Some(native(StatusLevel::Error, "failed", Some(message.clone())));
                o.errors.push(error("assertion_failed", message, at));
            }
            o
        })
        .collect()
}

fn observation(asset: &str, kind: &str, common: &[MetadataEntry], of: &Name) -> Observation {
    let mut o = bare_observation(asset, kind);
    o.metadata = common.to_vec();
    o.metadata
        .push(meta("openlineage.namespace", of.namespace.clone()));
    o
}

fn native(level: StatusLevel, label: &str, message: Option<String>) -> NativeStatus {
    NativeStatus {
        level,
        label: label.to_owned(),
        message,
    }
}

fn error(kind: &str, message: String, at: Timestamp) -> AssetError {
    AssetError {
        kind: kind.to_owned(),
        message,
        document_id: None,
        log_link: None,
        at: Some(at),
    }
}

fn meta(key: &str, value: impl Into<String>) -> MetadataEntry {
    MetadataEntry {
        key: key.to_owned(),
        value: value.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::super::event::{Assertion, Dataset, Nominal};
    use super::*;

    fn name(n: &str) -> Name {
        Name {
            namespace: "duckdb".into(),
            name: n.into(),
        }
    }

    fn end(t: EventType, outputs: Vec<Dataset>) -> RunEvent {
        RunEvent {
            event_type: t,
            event_time: UNIX_EPOCH + Duration::from_secs(1_780_000_000),
            run_id: "r1".into(),
            job: name("shop.fct_orders"),
            inputs: Vec::new(),
            outputs,
            error: Some("Binder Error: column x".into()),
            nominal: None,
        }
    }

    fn state(e: &RunEvent) -> RunState {
        let mut s = RunState {
            nominal: Some(Nominal {
                start: UNIX_EPOCH,
                end: None,
            }),
            ..RunState::default()
        };
        s.absorb(e);
        s
    }

    #[test]
    fn complete_gives_freshness_rows_and_assertions_their_own_assets() {
        let e = end(
            EventType::Complete,
            vec![Dataset {
                id: name("main.orders"),
                row_count: Some(7),
                assertions: vec![Assertion {
                    assertion: "not_null".into(),
                    column: Some("id".into()),
                    success: false,
                }],
            }],
        );
        let r = report(&state(&e), &e);
        let keys: Vec<&str> = r.observations.iter().map(|o| o.asset.as_str()).collect();
        assert_eq!(keys, ["main.orders", "main.orders:not_null(id)"]);
        let orders = &r.observations[0];
        assert_eq!(orders.counts.received, Some(7));
        assert_eq!(
            orders.freshness.as_ref().map(|t| t.seconds),
            Some(1_780_000_000)
        );
        assert!(
            orders
                .metadata
                .iter()
                .any(|m| m.key == "openlineage.nominal_start_time")
        );
        let test = &r.observations[1];
        assert!(matches!(
            test.native_status.as_ref().map(|n| n.level),
            Some(StatusLevel::Error)
        ));
        assert_eq!(test.errors[0].kind, "assertion_failed");
    }

    #[test]
    fn a_failed_run_is_a_native_error_on_its_outputs_or_its_job() {
        let e = end(
            EventType::Fail,
            vec![Dataset {
                id: name("main.orders"),
                row_count: Some(7),
                assertions: Vec::new(),
            }],
        );
        let r = report(&state(&e), &e);
        let o = &r.observations[0];
        assert!(o.freshness.is_none() && o.counts.received.is_none());
        assert_eq!(
            o.native_status.as_ref().and_then(|n| n.message.as_deref()),
            Some("Binder Error: column x")
        );
        let bare = end(EventType::Abort, Vec::new());
        let r = report(&state(&bare), &bare);
        assert_eq!(r.observations[0].asset, "shop.fct_orders");
        assert_eq!(r.observations[0].errors[0].kind, "run_aborted");
    }
}

//! Hysteresis and mute: from a stream of evaluations to an entity's effective
//! health, and the changes worth an event.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::evaluate::Evaluation;
use super::model::{EntityRef, Reason, Status};
use super::rules::Thresholds;

/// A mute: health is still computed and changes still emitted, marked muted,
/// while `now < until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mute {
    pub until: SystemTime,
    pub reason: String,
}

/// An entity's current health, as the store keeps it between evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthState {
    /// The effective status, after hysteresis.
    pub status: Status,
    /// When the effective status began.
    pub since: SystemTime,
    /// The reasons of the latest evaluation that agreed with `status`.
    pub reasons: Vec<Reason>,
    /// The statuses of the latest evaluations, newest first; only as many as the
    /// larger threshold needs.
    pub recent: Vec<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<Mute>,
    /// The maintenance window the entity's latest change fell in, not
    /// announced since: when the window is over and the entity is still not
    /// HEALTHY, it is announced once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<String>,
    /// The failing upstream system the latest change was folded under, not
    /// announced since: when that upstream recovers and the entity is still
    /// not HEALTHY, it is announced once on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<EntityRef>,
}

impl HealthState {
    /// A status the latest evaluations lean towards but have not yet reached the
    /// threshold for, and how many consecutive evaluations lean that way.
    pub fn pending(&self) -> Option<(Status, u32)> {
        let newest = *self.recent.first()?;
        if newest == self.status {
            return None;
        }
        let worse = newest > self.status;
        let run = self
            .recent
            .iter()
            .copied()
            .take_while(|s| (*s > self.status) == worse && *s != self.status);
        let (mut toward, mut count) = (newest, 0u32);
        for s in run {
            toward = if worse { toward.min(s) } else { toward.max(s) };
            count += 1;
        }
        Some((toward, count))
    }

    /// Whether a mute is in force at `now`.
    pub fn is_muted(&self, now: SystemTime) -> bool {
        self.muted.as_ref().is_some_and(|m| now < m.until)
    }
}

/// A change of an entity's effective health: what a health event records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `None` for an entity's first evaluation.
    pub from: Option<Status>,
    pub to: Status,
    pub reasons: Vec<Reason>,
    /// The entity was muted when it changed: record the event, hold alerts.
    pub muted: bool,
    /// The maintenance window (its name) the entity was in when it changed:
    /// the event is recorded, no alert is sent for it.
    #[serde(default)]
    pub maintenance: Option<String>,
    /// The failing upstream system that explains this change: its alert lists
    /// this entity as also affected instead of this entity alerting alone.
    #[serde(default)]
    pub suppressed_by: Option<EntityRef>,
}

/// Folds one evaluation into an entity's state at `now`.
///
/// A new entity takes the evaluation's status at once. Otherwise the entity
/// moves to a worse status S after `thresholds.failure` consecutive evaluations
/// at least as bad as S (the worst such S), and to a better status S after
/// `thresholds.success` consecutive evaluations at least as good as S (the best
/// such S). A [`Change`] is returned only when the effective status changes. An
/// expired mute is cleared.
pub fn apply(
    state: Option<&HealthState>,
    evaluation: &Evaluation,
    thresholds: Thresholds,
    now: SystemTime,
) -> (HealthState, Option<Change>) {
    let failure = thresholds.failure.max(1) as usize;
    let success = thresholds.success.max(1) as usize;
    let keep = failure.max(success);
    let seen = evaluation.status;

    let Some(prev) = state else {
        let state = HealthState {
            status: seen,
            since: now,
            reasons: evaluation.reasons.clone(),
            recent: vec![seen],
            muted: None,
            maintenance: None,
            suppressed_by: None,
        };
        let change = Change {
            from: None,
            to: seen,
            reasons: evaluation.reasons.clone(),
            muted: false,
            maintenance: None,
            suppressed_by: None,
        };
        return (state, Some(change));
    };

    let mut recent = Vec::with_capacity(keep);
    recent.push(seen);
    recent.extend(prev.recent.iter().copied().take(keep - 1));
    let muted = prev.muted.clone().filter(|m| now < m.until);
    let current = prev.status;

    let next = if seen > current && recent.len() >= failure {
        recent[..failure]
            .iter()
            .copied()
            .min()
            .filter(|s| *s > current)
    } else if seen < current && recent.len() >= success {
        recent[..success]
            .iter()
            .copied()
            .max()
            .filter(|s| *s < current)
    } else {
        None
    };

    match next {
        Some(to) => {
            let change = Change {
                from: Some(current),
                to,
                reasons: evaluation.reasons.clone(),
                muted: muted.is_some(),
                maintenance: None,
                suppressed_by: None,
            };
            let state = HealthState {
                status: to,
                since: now,
                reasons: evaluation.reasons.clone(),
                recent,
                muted,
                // The book marks a change afterwards (maintenance, suppression).
                maintenance: prev.maintenance.clone(),
                suppressed_by: prev.suppressed_by.clone(),
            };
            (state, Some(change))
        }
        None => {
            let reasons = if seen == current {
                evaluation.reasons.clone()
            } else {
                prev.reasons.clone()
            };
            let state = HealthState {
                status: current,
                since: prev.since,
                reasons,
                recent,
                muted,
                maintenance: prev.maintenance.clone(),
                suppressed_by: prev.suppressed_by.clone(),
            };
            (state, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::evaluate::{AssetFacts, FailureClass, RunOutcome, evaluate};
    use crate::health::model::RuleKind;
    use crate::health::rules::Rules;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    const MIN: u64 = 60;
    const H: u64 = 3_600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn eval(status: Status) -> Evaluation {
        let reasons = if status == Status::Healthy {
            vec![]
        } else {
            vec![Reason::new(
                RuleKind::Freshness,
                status,
                format!("made {status}"),
            )]
        };
        Evaluation { status, reasons }
    }

    /// Feeds `statuses` one a minute after an initial `start` and returns the
    /// effective status after each and the changes.
    fn run(
        start: Status,
        statuses: &[Status],
        thresholds: Thresholds,
    ) -> (Vec<Status>, Vec<Change>) {
        let (mut state, _) = apply(None, &eval(start), thresholds, at(0));
        let (mut effective, mut changes) = (vec![], vec![]);
        for (i, s) in statuses.iter().enumerate() {
            let (next, change) = apply(
                Some(&state),
                &eval(*s),
                thresholds,
                at((i as u64 + 1) * MIN),
            );
            state = next;
            effective.push(state.status);
            changes.extend(change);
        }
        (effective, changes)
    }

    fn th(failure: u32, success: u32) -> Thresholds {
        Thresholds { failure, success }
    }

    use Status::{Healthy as H_, Unhealthy as U, Unknown as X, Warning as W};

    #[test]
    fn the_first_evaluation_sets_the_status_at_once() {
        let (state, change) = apply(None, &eval(U), th(3, 3), at(5));
        assert_eq!(state.status, U);
        assert_eq!(state.since, at(5));
        let change = change.unwrap();
        assert_eq!((change.from, change.to, change.muted), (None, U, false));
    }

    #[test]
    fn freshness_crossing_warn_then_error_gives_exactly_two_changes() {
        let rules: Rules = serde_json::from_value(json!({
            "freshness": { "warn_after": "1h", "error_after": "2h" }
        }))
        .unwrap();
        let outcome = RunOutcome::Succeeded(AssetFacts {
            freshness: Some(at(0)),
            ..AssetFacts::default()
        });
        let t = rules.for_asset("orders").thresholds;
        let (mut state, first) =
            apply(None, &evaluate(&rules, "orders", &outcome, at(0)), t, at(0));
        assert_eq!(first.unwrap().to, H_);
        let mut changes = vec![];
        // Every ten minutes for four hours, including exactly 1h and exactly 2h.
        for now in (10 * MIN..=4 * H).step_by(10 * MIN as usize) {
            let evaluation = evaluate(&rules, "orders", &outcome, at(now));
            let (next, change) = apply(Some(&state), &evaluation, t, at(now));
            state = next;
            changes.extend(change.map(|c| (now, c)));
        }
        let summary: Vec<_> = changes
            .iter()
            .map(|(now, c)| (*now, c.from, c.to))
            .collect();
        assert_eq!(
            summary,
            [(H + 10 * MIN, Some(H_), W), (2 * H + 10 * MIN, Some(W), U)]
        );
        assert_eq!(
            changes[1].1.reasons[0].message,
            "freshness: last update 2h 10m ago, more than error_after 2h"
        );
        assert_eq!(state.since, at(2 * H + 10 * MIN));
        assert_eq!(
            state.reasons[0].message, "freshness: last update 4h ago, more than error_after 2h",
            "reasons stay current while the status holds"
        );
    }

    #[test]
    fn a_plugin_that_keeps_failing_is_unknown_never_healthy() {
        let rules = Rules::default();
        let failed = RunOutcome::Failed {
            class: FailureClass::Transient,
            message: "connection refused".into(),
        };
        let mut state: Option<HealthState> = None;
        for i in 0..3 {
            let e = evaluate(&rules, "a", &failed, at(i * MIN));
            assert_eq!(e.status, X);
            let (next, _) = apply(state.as_ref(), &e, rules.thresholds(), at(i * MIN));
            assert_eq!(next.status, X, "after failure {}", i + 1);
            state = Some(next);
        }
        assert!(
            state.unwrap().reasons[0]
                .message
                .contains("connection refused")
        );
    }

    #[test]
    fn with_failure_threshold_3_the_third_failure_changes_the_status() {
        let (effective, changes) = run(H_, &[X, X, X], th(3, 1));
        assert_eq!(effective, [H_, H_, X]);
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].from, changes[0].to), (Some(H_), X));
    }

    #[test]
    fn a_good_evaluation_breaks_a_bad_streak() {
        let (effective, changes) = run(H_, &[U, U, H_, U, U], th(3, 1));
        assert_eq!(effective, [H_; 5]);
        assert!(changes.is_empty());
    }

    #[test]
    fn worsening_goes_to_the_worst_status_the_whole_streak_reaches() {
        let (effective, _) = run(H_, &[W, U, U, U], th(3, 1));
        assert_eq!(effective, [H_, H_, W, U]);
    }

    #[test]
    fn with_success_threshold_2_one_good_run_is_not_enough() {
        let (effective, changes) = run(U, &[H_, H_], th(1, 2));
        assert_eq!(effective, [U, H_]);
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].from, changes[0].to), (Some(U), H_));
        assert!(changes[0].reasons.is_empty());
    }

    #[test]
    fn recovery_goes_only_as_far_as_the_whole_streak_allows() {
        let (effective, _) = run(U, &[W, H_, H_], th(1, 2));
        assert_eq!(effective, [U, W, H_]);
    }

    #[test]
    fn held_status_keeps_its_reasons_and_reports_what_is_pending() {
        let (s0, _) = apply(None, &eval(H_), th(3, 1), at(0));
        let (s1, c1) = apply(Some(&s0), &eval(U), th(3, 1), at(60));
        assert!(c1.is_none());
        assert_eq!(s1.status, H_);
        assert!(s1.reasons.is_empty());
        assert_eq!(s1.pending(), Some((U, 1)));
        let (s2, _) = apply(Some(&s1), &eval(W), th(3, 1), at(120));
        assert_eq!(s2.pending(), Some((W, 2)));
        let (s3, _) = apply(Some(&s2), &eval(H_), th(3, 1), at(180));
        assert_eq!(s3.pending(), None);
    }

    #[test]
    fn muted_changes_are_still_emitted_but_marked_until_the_mute_ends() {
        let t = th(1, 1);
        let (mut s, _) = apply(None, &eval(H_), t, at(0));
        s.muted = Some(Mute {
            until: at(H),
            reason: "snowflake maintenance".into(),
        });
        let (s, change) = apply(Some(&s), &eval(U), t, at(10 * MIN));
        let change = change.unwrap();
        assert_eq!((change.to, change.muted), (U, true));
        assert!(s.is_muted(at(10 * MIN)));
        let (s, change) = apply(Some(&s), &eval(H_), t, at(H));
        assert_eq!(
            change.map(|c| (c.to, c.muted)),
            Some((H_, false)),
            "the mute ends at `until`"
        );
        assert_eq!(s.muted, None, "an expired mute is cleared");
    }

    #[test]
    fn state_round_trips_through_json() {
        let (s, _) = apply(None, &eval(W), th(2, 2), at(42));
        let text = serde_json::to_string(&s).unwrap();
        let back: HealthState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}

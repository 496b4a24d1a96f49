//! Evaluating one asset's rules against what a run said of it.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::model::{Reason, RuleKind, Status, sort_worst_first};
use super::parse::{Threshold, format_duration, percent};
use super::rules::{AssetRules, Rules, VolumeWindow};

/// What the system itself says of an asset (dbt pass/warn/error, Looker trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NativeLevel {
    Ok,
    Warn,
    Error,
    Unknown,
}

/// What a successful run said of one asset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssetFacts {
    pub expected: Option<u64>,
    pub received: Option<u64>,
    pub errored: Option<u64>,
    /// When the asset's data was last loaded or updated.
    pub freshness: Option<SystemTime>,
    pub native: Option<NativeLevel>,
    /// The vendor's own words for its verdict (`fail: Got 1 result`), shown
    /// in the reason so an operator need not open the run to see why.
    pub native_says: Option<String>,
    /// Received counts of the previous completed runs, newest first.
    pub history: Vec<u64>,
    /// The latest received count of each previous day (UTC) with a run,
    /// newest first, today excluded.
    pub daily: Vec<u64>,
}

/// How a run failed, as the plugin contract classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    Config,
    Auth,
    Transient,
    System,
}

impl FailureClass {
    /// The class [`as_str`](Self::as_str) names.
    pub fn parse(name: &str) -> Option<FailureClass> {
        Some(match name {
            "config" => FailureClass::Config,
            "auth" => FailureClass::Auth,
            "transient" => FailureClass::Transient,
            "system" => FailureClass::System,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Config => "config",
            FailureClass::Auth => "auth",
            FailureClass::Transient => "transient",
            FailureClass::System => "system",
        }
    }
}

/// How a run ended, for one asset.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Succeeded(AssetFacts),
    Failed {
        class: FailureClass,
        message: String,
    },
}

/// The health one evaluation gives, before hysteresis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub status: Status,
    /// Worst first; empty when HEALTHY.
    pub reasons: Vec<Reason>,
}

impl Evaluation {
    /// HEALTHY with no reasons, or the worst of `reasons`.
    pub fn from_reasons(mut reasons: Vec<Reason>) -> Self {
        sort_worst_first(&mut reasons);
        let status = Status::worst(reasons.iter().map(|r| r.status)).unwrap_or(Status::Healthy);
        Self { status, reasons }
    }

    /// Both evaluations' reasons together, e.g. a run's and [`stale`]'s.
    pub fn combine(self, other: Evaluation) -> Self {
        let mut reasons = self.reasons;
        reasons.extend(other.reasons);
        Self::from_reasons(reasons)
    }
}

/// Evaluates the rules that hold for `asset_key` against a run's outcome at
/// `now`. The status is the worst of the rules that apply; a successful run with
/// no rule breached is HEALTHY; a failed run is UNKNOWN, never HEALTHY.
pub fn evaluate(
    rules: &Rules,
    asset_key: &str,
    outcome: &RunOutcome,
    now: SystemTime,
) -> Evaluation {
    evaluate_asset(&rules.for_asset(asset_key), outcome, now)
}

/// [`evaluate`] with the asset's rules already resolved.
pub fn evaluate_asset(rules: &AssetRules, outcome: &RunOutcome, now: SystemTime) -> Evaluation {
    let facts = match outcome {
        RunOutcome::Failed { class, message } => {
            return Evaluation::from_reasons(vec![Reason::new(
                RuleKind::RunFailed,
                Status::Unknown,
                format!("run failed ({}): {message}", class.as_str()),
            )]);
        }
        RunOutcome::Succeeded(facts) => facts,
    };
    let reasons = [
        freshness(rules, facts, now),
        completeness(rules, facts),
        errors(rules, facts),
        volume(rules, facts),
        native(rules, facts),
    ]
    .into_iter()
    .flatten()
    .collect();
    Evaluation::from_reasons(reasons)
}

/// UNKNOWN when no run succeeded within two intervals before `now` (strictly
/// more than two intervals ago), or never; `None` while the check is current.
pub fn stale(
    last_success: Option<SystemTime>,
    interval: Duration,
    now: SystemTime,
) -> Option<Evaluation> {
    let limit = interval.saturating_mul(2);
    let message = match last_success {
        None => "stale: no successful run yet".to_owned(),
        Some(at) => {
            let age = now.duration_since(at).unwrap_or_default();
            if age <= limit {
                return None;
            }
            format!(
                "stale: last successful run {} ago, more than two intervals ({})",
                format_duration(age),
                format_duration(limit)
            )
        }
    };
    Some(Evaluation::from_reasons(vec![Reason::new(
        RuleKind::Stale,
        Status::Unknown,
        message,
    )]))
}

/// A dead man's switch: a report is expected every `every`, and allowed
/// `grace` late (push checks' `expect_every` and `grace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub every: Duration,
    pub grace: Duration,
}

/// Judges the silence of a check expected to report on `heartbeat`, whose
/// latest report was at `last` (or, never reported, since it is watched):
/// `None` within `every + grace`; then UNKNOWN; UNHEALTHY once more than
/// `failure_threshold` reports are missing. The verdict follows from the
/// time alone, so a deadline that passed while the daemon was down is judged
/// the same at start.
pub fn overdue(
    last: Option<SystemTime>,
    since: SystemTime,
    heartbeat: Heartbeat,
    failure_threshold: u32,
    now: SystemTime,
) -> Option<Evaluation> {
    let from = last.unwrap_or(since);
    let age = now.duration_since(from).unwrap_or_default();
    if age <= heartbeat.every + heartbeat.grace {
        return None;
    }
    let every = heartbeat.every.max(Duration::from_millis(1));
    let missed = (age - heartbeat.grace).as_millis() / every.as_millis();
    let status = if missed > u128::from(failure_threshold.max(1)) {
        Status::Unhealthy
    } else {
        Status::Unknown
    };
    let expected = format!("expected every {}", format_duration(heartbeat.every));
    let message = match last {
        Some(_) => format!("no report for {}, {expected}", format_duration(age)),
        None => format!("no report yet, {expected}"),
    };
    Some(Evaluation::from_reasons(vec![Reason::new(
        RuleKind::Stale,
        status,
        message,
    )]))
}

fn freshness(rules: &AssetRules, facts: &AssetFacts, now: SystemTime) -> Option<Reason> {
    let rule = rules.freshness.as_ref()?;
    let updated = facts.freshness?;
    // A last update in the future (clock skew) counts as fresh.
    let age = now.duration_since(updated).unwrap_or_default();
    let (status, name, limit) = [
        (Status::Unhealthy, "error_after", rule.error_after),
        (Status::Warning, "warn_after", rule.warn_after),
    ]
    .into_iter()
    .find_map(|(s, n, l)| l.filter(|l| age > l.0).map(|l| (s, n, l)))?;
    Some(Reason::new(
        RuleKind::Freshness,
        status,
        format!(
            "freshness: last update {} ago, more than {name} {limit}",
            format_duration(age)
        ),
    ))
}

fn breach(
    warn: Option<Threshold>,
    error: Option<Threshold>,
    count: u64,
    whole: u64,
) -> Option<(Status, &'static str, Threshold)> {
    [
        (Status::Unhealthy, "error", error),
        (Status::Warning, "warn", warn),
    ]
    .into_iter()
    .find_map(|(s, n, t)| t.filter(|t| t.exceeded_by(count, whole)).map(|t| (s, n, t)))
}

fn completeness(rules: &AssetRules, facts: &AssetFacts) -> Option<Reason> {
    let rule = rules.completeness.as_ref()?;
    let (expected, received) = (facts.expected?, facts.received?);
    let missing = expected.saturating_sub(received);
    let (status, name, limit) = breach(rule.warn, rule.error, missing, expected)?;
    Some(Reason::new(
        RuleKind::Completeness,
        status,
        format!(
            "completeness: {missing} of {expected} expected missing ({:.1}%), more than {name} {limit}",
            percent(missing, expected)
        ),
    ))
}

fn errors(rules: &AssetRules, facts: &AssetFacts) -> Option<Reason> {
    let rule = rules.errors.as_ref()?;
    let errored = facts.errored?;
    let attempted = facts.received.unwrap_or(0).saturating_add(errored);
    let (status, name, limit) = breach(rule.warn, rule.error, errored, attempted)?;
    Some(Reason::new(
        RuleKind::Errors,
        status,
        format!(
            "errors: {errored} errored of {attempted} ({:.1}%), more than {name} {limit}",
            percent(errored, attempted)
        ),
    ))
}

fn volume(rules: &AssetRules, facts: &AssetFacts) -> Option<Reason> {
    let rule = rules.volume.as_ref()?;
    let received = facts.received?;
    let series = match rule.per {
        VolumeWindow::Runs => &facts.history,
        VolumeWindow::Days => &facts.daily,
    };
    let window = (rule.window.max(1) as usize).min(series.len());
    if window < rule.min_history() {
        return None;
    }
    let points = &series[..window];
    let mean = points.iter().map(|&n| n as f64).sum::<f64>() / window as f64;
    let now = received as f64;
    let (change, word, warn, error) = if now < mean {
        (
            (mean - now) * 100.0 / mean,
            "drop",
            rule.drop_percent,
            rule.error_drop_percent,
        )
    } else if now > mean {
        // From a mean of 0 any volume is an unbounded spike.
        let change = if mean == 0.0 {
            f64::INFINITY
        } else {
            (now - mean) * 100.0 / mean
        };
        (
            change,
            "spike",
            rule.spike_percent,
            rule.error_spike_percent,
        )
    } else {
        return None;
    };
    let (status, name, limit) = [
        (Status::Unhealthy, "error_", error),
        (Status::Warning, "", warn),
    ]
    .into_iter()
    .find_map(|(s, n, l)| l.filter(|l| change > *l).map(|l| (s, n, l)))?;
    let change_text = if change.is_finite() {
        format!("{change:.1}%")
    } else {
        "from nothing".to_owned()
    };
    Some(Reason::new(
        RuleKind::Volume,
        status,
        format!(
            "volume: received {received}, a {word} of {change_text} against the mean {mean:.1} \
             of the last {window} runs, more than {name}{word}_percent {limit}"
        ),
    ))
}

fn native(rules: &AssetRules, facts: &AssetFacts) -> Option<Reason> {
    let rule = &rules.native_status;
    if !rule.enabled {
        return None;
    }
    let (status, level) = match facts.native? {
        NativeLevel::Error => (rule.error, "error"),
        NativeLevel::Warn => (rule.warn, "warn"),
        NativeLevel::Ok | NativeLevel::Unknown => return None,
    };
    (status != Status::Healthy).then(|| {
        let says = facts
            .native_says
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        Reason::new(
            RuleKind::NativeStatus,
            status,
            format!("native_status: the system reports {level}{says}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    const H: u64 = 3_600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn rules(v: serde_json::Value) -> Rules {
        serde_json::from_value(v).unwrap()
    }

    fn ok(facts: AssetFacts) -> RunOutcome {
        RunOutcome::Succeeded(facts)
    }

    fn counts(expected: u64, received: u64) -> AssetFacts {
        AssetFacts {
            expected: Some(expected),
            received: Some(received),
            ..AssetFacts::default()
        }
    }

    #[test]
    fn freshness_is_breached_only_when_strictly_older() {
        let r = rules(json!({ "freshness": { "warn_after": "1h", "error_after": "2h" } }));
        let facts = AssetFacts {
            freshness: Some(at(0)),
            ..AssetFacts::default()
        };
        let eval = |now| evaluate(&r, "t", &ok(facts.clone()), at(now));
        assert_eq!(
            eval(H).status,
            Status::Healthy,
            "exactly warn_after is fine"
        );
        assert_eq!(eval(H + 1).status, Status::Warning);
        assert_eq!(
            eval(2 * H).status,
            Status::Warning,
            "exactly error_after is still only a warning"
        );
        let e = eval(3 * H + 120);
        assert_eq!(e.status, Status::Unhealthy);
        assert_eq!(e.reasons.len(), 1, "one reason per rule: {:?}", e.reasons);
        assert_eq!(
            e.reasons[0].message,
            "freshness: last update 3h 2m ago, more than error_after 2h"
        );
        assert_eq!(e.reasons[0].rule, RuleKind::Freshness);
    }

    #[test]
    fn freshness_without_a_timestamp_or_in_the_future_is_not_a_breach() {
        let r = rules(json!({ "freshness": { "warn_after": "1h" } }));
        assert_eq!(
            evaluate(&r, "t", &ok(AssetFacts::default()), at(10 * H)).status,
            Status::Healthy
        );
        let future = AssetFacts {
            freshness: Some(at(20 * H)),
            ..AssetFacts::default()
        };
        assert_eq!(
            evaluate(&r, "t", &ok(future), at(10 * H)).status,
            Status::Healthy
        );
    }

    #[test]
    fn completeness_by_percent_says_how_many_are_missing() {
        let r = rules(json!({ "completeness": { "warn": "2%", "error": "10%" } }));
        let e = evaluate(&r, "t", &ok(counts(100, 97)), at(0));
        assert_eq!(e.status, Status::Warning);
        assert_eq!(
            e.reasons[0].message,
            "completeness: 3 of 100 expected missing (3.0%), more than warn 2%"
        );
        assert_eq!(
            evaluate(&r, "t", &ok(counts(100, 98)).clone(), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &ok(counts(100, 89)), at(0)).status,
            Status::Unhealthy
        );
    }

    #[test]
    fn completeness_by_count() {
        let r = rules(json!({ "completeness": { "warn": 0, "error": 5 } }));
        assert_eq!(
            evaluate(&r, "t", &ok(counts(1_000, 1_000)), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &ok(counts(1_000, 999)), at(0)).status,
            Status::Warning
        );
        assert_eq!(
            evaluate(&r, "t", &ok(counts(1_000, 995)), at(0)).status,
            Status::Warning
        );
        let e = evaluate(&r, "t", &ok(counts(1_000, 994)), at(0));
        assert_eq!(e.status, Status::Unhealthy);
        assert!(
            e.reasons[0]
                .message
                .contains("6 of 1000 expected missing (0.6%), more than error 5")
        );
        // More received than expected is nothing missing; unknown expected does not apply.
        assert_eq!(
            evaluate(&r, "t", &ok(counts(10, 12)), at(0)).status,
            Status::Healthy
        );
        let unknown = AssetFacts {
            received: Some(1),
            ..AssetFacts::default()
        };
        assert_eq!(
            evaluate(&r, "t", &ok(unknown), at(0)).status,
            Status::Healthy
        );
    }

    #[test]
    fn errors_by_count_and_rate() {
        let r = rules(json!({ "errors": { "warn": 0, "error": "5%" } }));
        let facts = |received, errored| AssetFacts {
            received: Some(received),
            errored: Some(errored),
            ..AssetFacts::default()
        };
        assert_eq!(
            evaluate(&r, "t", &ok(facts(100, 0)), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &ok(facts(99, 1)), at(0)).status,
            Status::Warning
        );
        let e = evaluate(&r, "t", &ok(facts(90, 10)), at(0));
        assert_eq!(e.status, Status::Unhealthy);
        assert_eq!(
            e.reasons[0].message,
            "errors: 10 errored of 100 (10.0%), more than error 5%"
        );
    }

    fn with_history(received: u64, history: &[u64]) -> RunOutcome {
        ok(AssetFacts {
            received: Some(received),
            history: history.to_vec(),
            ..AssetFacts::default()
        })
    }

    #[test]
    fn volume_drop_against_the_trailing_mean() {
        let r = rules(json!({ "volume": {
            "window": 3, "drop_percent": 30, "error_drop_percent": 60, "spike_percent": 100
        } }));
        // Mean of the last 3 runs is 100; the 4th (1000) is outside the window.
        let history = [100, 90, 110, 1_000];
        assert_eq!(
            evaluate(&r, "t", &with_history(75, &history), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &with_history(70, &history), at(0)).status,
            Status::Healthy,
            "exactly 30% is fine"
        );
        let e = evaluate(&r, "t", &with_history(50, &history), at(0));
        assert_eq!(e.status, Status::Warning);
        assert_eq!(
            e.reasons[0].message,
            "volume: received 50, a drop of 50.0% against the mean 100.0 of the last 3 runs, more than drop_percent 30"
        );
        assert_eq!(
            evaluate(&r, "t", &with_history(30, &history), at(0)).status,
            Status::Unhealthy
        );
        let e = evaluate(&r, "t", &with_history(250, &history), at(0));
        assert_eq!(e.status, Status::Warning);
        assert!(
            e.reasons[0].message.contains("spike of 150.0%"),
            "{}",
            e.reasons[0].message
        );
        assert_eq!(
            evaluate(&r, "t", &with_history(5, &[0, 0, 0]), at(0)).status,
            Status::Warning
        );
    }

    #[test]
    fn volume_waits_for_min_history() {
        let r = rules(json!({ "volume": { "window": 5, "min_history": 2, "drop_percent": 10 } }));
        assert_eq!(
            evaluate(&r, "t", &with_history(0, &[100]), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &with_history(0, &[100, 100]), at(0)).status,
            Status::Warning
        );
        // Without min_history the whole window is needed.
        let r = rules(json!({ "volume": { "window": 3, "drop_percent": 10 } }));
        assert_eq!(
            evaluate(&r, "t", &with_history(0, &[100, 100]), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &with_history(0, &[100, 100, 100]), at(0)).status,
            Status::Warning
        );
    }

    #[test]
    fn native_status_error_and_warn_map_to_health() {
        let native = |level| {
            ok(AssetFacts {
                native: Some(level),
                ..AssetFacts::default()
            })
        };
        let r = Rules::default();
        let e = evaluate(&r, "t", &native(NativeLevel::Error), at(0));
        assert_eq!(e.status, Status::Unhealthy);
        assert_eq!(
            e.reasons[0].message,
            "native_status: the system reports error"
        );
        let says = ok(AssetFacts {
            native: Some(NativeLevel::Error),
            native_says: Some("fail: Got 1 result, configured to fail if != 0".into()),
            ..AssetFacts::default()
        });
        assert_eq!(
            evaluate(&r, "t", &says, at(0)).reasons[0].message,
            "native_status: the system reports error (fail: Got 1 result, configured to fail if != 0)"
        );
        assert_eq!(
            evaluate(&r, "t", &native(NativeLevel::Warn), at(0)).status,
            Status::Warning
        );
        assert_eq!(
            evaluate(&r, "t", &native(NativeLevel::Ok), at(0)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "t", &native(NativeLevel::Unknown), at(0)).status,
            Status::Healthy
        );
        let off = rules(json!({ "native_status": { "enabled": false } }));
        assert_eq!(
            evaluate(&off, "t", &native(NativeLevel::Error), at(0)).status,
            Status::Healthy
        );
        let mild = rules(json!({ "native_status": { "warn": "HEALTHY" } }));
        let e = evaluate(&mild, "t", &native(NativeLevel::Warn), at(0));
        assert_eq!(
            e,
            Evaluation {
                status: Status::Healthy,
                reasons: vec![]
            }
        );
    }

    #[test]
    fn a_failed_run_is_unknown_and_says_why() {
        let r = rules(json!({ "freshness": { "warn_after": "1h" } }));
        let failed = RunOutcome::Failed {
            class: FailureClass::Auth,
            message: "401 from snowflake".into(),
        };
        let e = evaluate(&r, "t", &failed, at(0));
        assert_eq!(e.status, Status::Unknown);
        assert_eq!(e.reasons[0].rule, RuleKind::RunFailed);
        assert_eq!(
            e.reasons[0].message,
            "run failed (auth): 401 from snowflake"
        );
    }

    #[test]
    fn the_worst_rule_wins_and_reasons_come_worst_first() {
        let r = rules(json!({
            "freshness": { "warn_after": "1h" },
            "completeness": { "error": 0 }
        }));
        let facts = AssetFacts {
            freshness: Some(at(0)),
            ..counts(10, 9)
        };
        let e = evaluate(&r, "t", &ok(facts), at(2 * H));
        assert_eq!(e.status, Status::Unhealthy);
        let rules: Vec<_> = e.reasons.iter().map(|r| r.rule).collect();
        assert_eq!(rules, [RuleKind::Completeness, RuleKind::Freshness]);
    }

    #[test]
    fn an_override_by_glob_beats_the_check_rules() {
        let r = rules(json!({
            "freshness": { "warn_after": "1h" },
            "overrides": [ { "assets": "archive.*", "rules": { "freshness": { "warn_after": "7d" } } } ]
        }));
        let facts = ok(AssetFacts {
            freshness: Some(at(0)),
            ..AssetFacts::default()
        });
        assert_eq!(
            evaluate(&r, "archive.orders", &facts, at(2 * H)).status,
            Status::Healthy
        );
        assert_eq!(
            evaluate(&r, "raw.orders", &facts, at(2 * H)).status,
            Status::Warning
        );
    }

    #[test]
    fn stale_after_two_intervals_without_success() {
        let hour = Duration::from_secs(H);
        assert_eq!(
            stale(Some(at(0)), hour, at(2 * H)),
            None,
            "exactly two intervals is not stale"
        );
        let e = stale(Some(at(0)), hour, at(2 * H + 60)).unwrap();
        assert_eq!(e.status, Status::Unknown);
        assert_eq!(
            e.reasons[0].message,
            "stale: last successful run 2h 1m ago, more than two intervals (2h)"
        );
        assert_eq!(stale(None, hour, at(0)).unwrap().status, Status::Unknown);
        // Combined with a healthy evaluation, the stale one wins.
        let healthy = Evaluation::from_reasons(vec![]);
        assert_eq!(healthy.combine(e).status, Status::Unknown);
    }

    #[test]
    fn a_missed_heartbeat_is_unknown_then_unhealthy_past_the_failure_threshold() {
        let beat = Heartbeat {
            every: Duration::from_secs(300),
            grace: Duration::from_secs(60),
        };
        let last = Some(at(0));
        assert_eq!(
            overdue(last, at(0), beat, 1, at(360)),
            None,
            "every + grace is on time"
        );
        let e = overdue(last, at(0), beat, 1, at(420)).unwrap();
        assert_eq!(e.status, Status::Unknown);
        assert_eq!(e.reasons[0].message, "no report for 7m, expected every 5m");
        assert_eq!(
            overdue(last, at(0), beat, 1, at(661)).unwrap().status,
            Status::Unhealthy,
            "two missed with a failure threshold of 1"
        );
        assert_eq!(
            overdue(last, at(0), beat, 3, at(661)).unwrap().status,
            Status::Unknown,
            "a threshold of 3 waits for a fourth miss"
        );
        assert_eq!(
            overdue(last, at(0), beat, 3, at(1261)).unwrap().status,
            Status::Unhealthy
        );
        let never = overdue(None, at(0), beat, 1, at(400)).unwrap();
        assert_eq!(never.reasons[0].message, "no report yet, expected every 5m");
    }
}

//! Gatus-style conditions on an answer's status and body, turned into the
//! asset's native status: every condition that fails says what it expected
//! (its label) and what it saw, so a health reason explains itself.

use plugin_sdk::NativeStatus;
use serde_json::Value;

use crate::Answer;
use crate::config::{Condition, Level, Op};
use crate::extract::{Expr, truthy};
use plugin_sdk::ConnectorError;

/// What one condition made of its answer.
enum Outcome {
    Passed,
    /// The answer had no data (`no_data` status): nothing to judge.
    Skipped,
    Failed(String),
}

impl Condition {
    /// The label shown when the condition fails: the condition as written,
    /// e.g. `/status == "ok"` or `status in [200, 204]`.
    pub fn label(&self, expr: Option<&Expr>) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        if let Some(statuses) = &self.status {
            return match statuses.as_slice() {
                [one] => format!("status == {one}"),
                many => format!(
                    "status in [{}]",
                    many.iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
        }
        let text = expr.map(Expr::text).unwrap_or_default();
        match (self.op.unwrap_or(Op::Truthy), &self.value) {
            (Op::Truthy, _) => text.to_owned(),
            (Op::Exists, _) => format!("{text} exists"),
            (op, Some(value)) => format!("{text} {} {value}", op.symbol()),
            (op, None) => format!("{text} {}", op.symbol()),
        }
    }

    fn judge(&self, expr: Option<&Expr>, answer: &Answer) -> Outcome {
        if let Some(statuses) = &self.status {
            return if statuses.contains(&answer.status) {
                Outcome::Passed
            } else {
                Outcome::Failed(format!("saw status {}", answer.status))
            };
        }
        let (Some(expr), Some(body)) = (expr, &answer.body) else {
            return Outcome::Skipped;
        };
        let seen = match expr.eval(body) {
            Err(reason) => return Outcome::Failed(format!("could not evaluate: {reason}")),
            Ok(None) => return Outcome::Failed("found nothing".into()),
            Ok(Some(seen)) => seen,
        };
        let op = self.op.unwrap_or(Op::Truthy);
        let passed = match (op, &self.value) {
            (Op::Truthy, _) => truthy(&seen),
            (Op::Exists, _) => true,
            (Op::Eq, Some(value)) => same(&seen, value),
            (Op::Ne, Some(value)) => !same(&seen, value),
            (Op::In, Some(Value::Array(values))) => values.iter().any(|v| same(&seen, v)),
            (Op::Lt | Op::Le | Op::Gt | Op::Ge, Some(value)) => {
                match (seen.as_f64(), value.as_f64()) {
                    (Some(a), Some(b)) => match op {
                        Op::Lt => a < b,
                        Op::Le => a <= b,
                        Op::Gt => a > b,
                        _ => a >= b,
                    },
                    _ => return Outcome::Failed(format!("saw {seen}, not a number")),
                }
            }
            // Ruled out by validation.
            _ => false,
        };
        if passed {
            Outcome::Passed
        } else {
            Outcome::Failed(format!("saw {seen}"))
        }
    }
}

/// Equal as JSON, numbers by value (`5` equals `5.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

/// The verdict of `conditions` on the answers; `answer` picks the answer a
/// condition's `request` refers to. `None` without conditions.
pub fn verdict<'a>(
    conditions: &[&Condition],
    answer: impl Fn(&Condition) -> Result<&'a Answer, ConnectorError>,
) -> Result<Option<NativeStatus>, ConnectorError> {
    if conditions.is_empty() {
        return Ok(None);
    }
    let mut failures: Vec<(Level, String, String)> = Vec::new();
    let mut passed = 0;
    let mut skipped = 0;
    for condition in conditions {
        let expr = if condition.status.is_none() {
            Some(Expr::compile(
                condition.pointer.as_deref(),
                condition.jmespath.as_deref(),
                "condition",
            )?)
        } else {
            None
        };
        match condition.judge(expr.as_ref(), answer(condition)?) {
            Outcome::Passed => passed += 1,
            Outcome::Skipped => skipped += 1,
            Outcome::Failed(seen) => {
                failures.push((condition.level, condition.label(expr.as_ref()), seen))
            }
        }
    }
    let Some(worst) = failures
        .iter()
        .map(|f| f.0)
        .max_by_key(|l| *l == Level::Error)
    else {
        let message = if skipped == 0 {
            format!("all {passed} conditions passed")
        } else {
            format!("{passed} passed, {skipped} skipped: the answer had no data")
        };
        return Ok(Some(NativeStatus::ok("ok").message(message)));
    };
    let first = failures
        .iter()
        .position(|f| f.0 == worst)
        .unwrap_or_default();
    let (_, label, seen) = failures.remove(first);
    let mut message = seen;
    for (level, label, seen) in &failures {
        let level = match level {
            Level::Warn => "warn",
            Level::Error => "error",
        };
        message.push_str(&format!("; also failed ({level}): {label} ({seen})"));
    }
    Ok(Some(
        match worst {
            Level::Warn => NativeStatus::warn(label),
            Level::Error => NativeStatus::error(label),
        }
        .message(message),
    ))
}

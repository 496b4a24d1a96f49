//! Roll-up: an entity's health is the worst of its children's (asset -> system
//! -> flow -> tenant), with reasons that say which child and which rule.

use super::model::{EntityRef, Reason, RuleKind, Status, sort_worst_first};

/// At most this many children are named in a roll-up's reasons; the rest are
/// counted in one summary reason.
pub const MAX_CHILD_REASONS: usize = 20;

/// The health of a parent from its children's `(entity, status, reasons)`.
///
/// The worst child wins (UNHEALTHY > UNKNOWN > WARNING > HEALTHY). Every child
/// that is not HEALTHY gives one reason, worst first: its status, its entity as
/// `child`, and the rule and message of its own top reason. With no children
/// the parent is UNKNOWN, "no data yet".
pub fn roll_up(children: &[(EntityRef, Status, Vec<Reason>)]) -> (Status, Vec<Reason>) {
    let Some(status) = Status::worst(children.iter().map(|(_, s, _)| *s)) else {
        return (
            Status::Unknown,
            vec![Reason::new(
                RuleKind::NoData,
                Status::Unknown,
                "no data yet",
            )],
        );
    };
    let mut reasons: Vec<Reason> = children
        .iter()
        .filter(|(_, s, _)| *s != Status::Healthy)
        .map(|(child, s, child_reasons)| {
            // The child's top reason: its worst, first among equals.
            let top = child_reasons.iter().rev().max_by_key(|r| r.status);
            let (rule, message) = match top {
                Some(r) => (r.rule, format!("{child}: {}", r.message)),
                None => (RuleKind::RollUp, format!("{child} is {s}")),
            };
            Reason {
                rule,
                status: *s,
                message,
                child: Some(child.clone()),
            }
        })
        .collect();
    sort_worst_first(&mut reasons);
    if reasons.len() > MAX_CHILD_REASONS {
        let more = reasons.split_off(MAX_CHILD_REASONS);
        let status = more[0].status;
        reasons.push(Reason::new(
            RuleKind::RollUp,
            status,
            format!("and {} more children not HEALTHY", more.len()),
        ));
    }
    (status, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(name: &str) -> EntityRef {
        EntityRef::Asset {
            check: "snowflake".into(),
            asset: name.into(),
        }
    }

    fn reason(rule: RuleKind, status: Status, message: &str) -> Reason {
        Reason::new(rule, status, message)
    }

    #[test]
    fn the_worst_child_wins_and_reasons_name_child_and_rule() {
        let children = vec![
            (asset("orders"), Status::Healthy, vec![]),
            (
                asset("customers"),
                Status::Warning,
                vec![reason(
                    RuleKind::Freshness,
                    Status::Warning,
                    "freshness: stale-ish",
                )],
            ),
            (
                asset("payments"),
                Status::Unhealthy,
                vec![
                    reason(RuleKind::Freshness, Status::Warning, "freshness: late"),
                    reason(
                        RuleKind::Completeness,
                        Status::Unhealthy,
                        "completeness: 3 missing",
                    ),
                ],
            ),
            (
                asset("refunds"),
                Status::Unknown,
                vec![reason(
                    RuleKind::RunFailed,
                    Status::Unknown,
                    "run failed (auth): 401",
                )],
            ),
        ];
        let (status, reasons) = roll_up(&children);
        assert_eq!(status, Status::Unhealthy);
        let summary: Vec<_> = reasons
            .iter()
            .map(|r| (r.status, r.rule, r.child.clone().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                (Status::Unhealthy, RuleKind::Completeness, asset("payments")),
                (Status::Unknown, RuleKind::RunFailed, asset("refunds")),
                (Status::Warning, RuleKind::Freshness, asset("customers")),
            ]
        );
        assert_eq!(
            reasons[0].message,
            "asset payments of check snowflake: completeness: 3 missing"
        );
    }

    #[test]
    fn unknown_is_worse_than_warning() {
        let (status, _) = roll_up(&[
            (EntityRef::Flow("a".into()), Status::Warning, vec![]),
            (EntityRef::Flow("b".into()), Status::Unknown, vec![]),
        ]);
        assert_eq!(status, Status::Unknown);
    }

    #[test]
    fn all_healthy_is_healthy_with_no_reasons() {
        let (status, reasons) =
            roll_up(&[(EntityRef::System("looker".into()), Status::Healthy, vec![])]);
        assert_eq!(status, Status::Healthy);
        assert!(reasons.is_empty());
    }

    #[test]
    fn no_children_is_unknown_no_data_yet() {
        let (status, reasons) = roll_up(&[]);
        assert_eq!(status, Status::Unknown);
        assert_eq!(reasons[0].message, "no data yet");
        assert_eq!(reasons[0].rule, RuleKind::NoData);
    }

    #[test]
    fn roll_ups_nest_and_keep_the_rule() {
        let system = EntityRef::System("warehouse".into());
        let (s, r) = roll_up(&[(
            asset("orders"),
            Status::Unhealthy,
            vec![reason(
                RuleKind::Freshness,
                Status::Unhealthy,
                "freshness: 3h old",
            )],
        )]);
        let (flow_status, flow_reasons) = roll_up(&[(system.clone(), s, r)]);
        assert_eq!(flow_status, Status::Unhealthy);
        assert_eq!(flow_reasons[0].rule, RuleKind::Freshness);
        assert_eq!(flow_reasons[0].child, Some(system));
        assert_eq!(
            flow_reasons[0].message,
            "system warehouse: asset orders of check snowflake: freshness: 3h old"
        );
    }

    #[test]
    fn many_bad_children_are_summarised() {
        let children: Vec<_> = (0..25)
            .map(|i| (asset(&format!("t{i}")), Status::Warning, vec![]))
            .collect();
        let (_, reasons) = roll_up(&children);
        assert_eq!(reasons.len(), MAX_CHILD_REASONS + 1);
        assert_eq!(
            reasons.last().unwrap().message,
            "and 5 more children not HEALTHY"
        );
        assert_eq!(reasons[0].message, "asset t0 of check snowflake is WARNING");
    }
}

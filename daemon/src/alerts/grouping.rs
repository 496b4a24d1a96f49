//! Alertmanager's grouping, kept as data so it survives restarts: which
//! entities of a route's group are firing, what the last message said about
//! each, and when the next message is due (`group_wait` after a new group's
//! first change, `group_interval` after the last message, `repeat_every`
//! while it still fires).
//!
//! Also what a health event means for alerts at all ([`disposition`]): a
//! maintenance window or a mute keeps it quiet, a failing upstream folds it
//! into the upstream's alert; a resolution always counts.
//!
//! Pure: the dispatcher loads and stores groups and sends what [`Group::flush`]
//! gives; this module must not do I/O nor route.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::message::{Alert, AlertState, Step};
use super::routes::Place;
use crate::config::AlertRoute;
use crate::health::{EntityRef, Reason, Status};
use crate::store::{HealthEvent, entity_key, from_ms, to_ms};

/// The most entities one message lists, worst first; the rest are counted
/// (`truncated`, "and N more"). However many entities a group holds (a
/// check with 10,000 assets failing together), a message stays a bounded
/// size for every channel, and a PagerDuty message at most this many
/// events.
pub const MAX_LISTED: usize = 100;

/// What an event means for alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// It counts: a new bad state, an escalation, a resolution.
    Notify,
    /// Bad during a maintenance window: no alert.
    Maintenance,
    /// Bad while muted: no alert.
    Muted,
    /// Bad because `upstream` is: listed under the upstream's alert.
    Suppressed(EntityRef),
}

impl Disposition {
    /// The metric label of a quiet disposition.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Disposition::Notify => None,
            Disposition::Maintenance => Some("maintenance"),
            Disposition::Muted => Some("muted"),
            Disposition::Suppressed(_) => Some("dependency"),
        }
    }
}

/// What `event` means on a route firing from `min`. Resolutions are never
/// kept quiet: a receiver told something is bad must hear it recovered.
pub fn disposition(event: &HealthEvent, min: Status) -> Disposition {
    if event.to < min {
        return Disposition::Notify;
    }
    if event.maintenance.is_some() {
        return Disposition::Maintenance;
    }
    if event.muted {
        return Disposition::Muted;
    }
    match &event.suppressed_by {
        Some(upstream) => Disposition::Suppressed(upstream.clone()),
        None => Disposition::Notify,
    }
}

/// One entity of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub entity: EntityRef,
    pub path: Vec<Step>,
    pub status: Status,
    pub previous: Option<Status>,
    /// What the last message said about it; `None`: not yet told.
    pub notified: Option<Status>,
    pub reasons: Vec<Reason>,
    /// When it entered `status` (ms).
    pub since: i64,
    pub seq: i64,
    pub also_affected: Vec<Step>,
    /// As the place it was last seen at says; absent in groups kept from
    /// before owners existed.
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A route's group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// By entity key.
    pub members: BTreeMap<String, Member>,
    /// When the last message was made (ms).
    pub last_sent: Option<i64>,
    /// When the first change not yet told happened (ms).
    pub first_pending: Option<i64>,
    /// Whether the last message said firing.
    pub firing: bool,
}

impl Group {
    /// Takes in a counted change of `event`'s entity, at `place`.
    pub fn apply(&mut self, route: &AlertRoute, event: &HealthEvent, place: &Place, now: i64) {
        let key = entity_key(&event.entity);
        let bad = event.to >= route.min_status;
        match self.members.get_mut(&key) {
            Some(member) => {
                member.previous = event.from;
                member.status = event.to;
                member.reasons = event.reasons.clone();
                member.since = to_ms(event.at);
                member.seq = event.seq;
                member.path.clone_from(&place.path);
                member.owner.clone_from(&place.owner);
                member.labels.clone_from(&place.labels);
                // A re-announcement (a window ended, an upstream recovered,
                // still bad): told again as new.
                if event.from == Some(event.to) && bad {
                    member.notified = None;
                }
                // Better but still bad: a later worsening tells again.
                if bad && member.notified.is_some_and(|n| n > event.to) {
                    member.notified = Some(event.to);
                }
                if !bad && (member.notified.is_none() || !route.send_resolved) {
                    self.members.remove(&key);
                }
            }
            None if bad => {
                self.members.insert(
                    key,
                    Member {
                        entity: event.entity.clone(),
                        path: place.path.clone(),
                        status: event.to,
                        previous: event.from,
                        notified: None,
                        reasons: event.reasons.clone(),
                        since: to_ms(event.at),
                        seq: event.seq,
                        also_affected: Vec::new(),
                        owner: place.owner.clone(),
                        labels: place.labels.clone(),
                    },
                );
            }
            None => {}
        }
        if self.pending(route) {
            self.first_pending.get_or_insert(now);
        } else {
            self.first_pending = None;
        }
    }

    /// Lists `step` under the alert of `upstream`, when it is a member.
    /// `false` when it is not: the caller counts the event as dropped.
    pub fn fold(&mut self, upstream: &EntityRef, step: Step) -> bool {
        let Some(member) = self.members.get_mut(&entity_key(upstream)) else {
            return false;
        };
        if !member.also_affected.iter().any(|s| s == &step) {
            member.also_affected.push(step);
        }
        true
    }

    /// Whether something changed that a message must tell.
    fn pending(&self, route: &AlertRoute) -> bool {
        self.members.values().any(|m| {
            if m.status >= route.min_status {
                m.notified.is_none_or(|n| m.status > n)
            } else {
                route.send_resolved && m.notified.is_some()
            }
        })
    }

    /// When the next message is due (ms), if one is.
    pub fn due(&self, route: &AlertRoute) -> Option<i64> {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if let Some(first) = self.first_pending {
            let wait = first.saturating_add(ms(route.group_wait));
            return Some(match self.last_sent {
                Some(last) if self.firing => {
                    wait.max(last.saturating_add(ms(route.group_interval)))
                }
                _ => wait,
            });
        }
        match (self.firing, self.last_sent, route.repeat_every) {
            (true, Some(last), Some(every)) => Some(last.saturating_add(ms(every))),
            _ => None,
        }
    }

    /// The message due now, if any, and the group updated as told. Its
    /// alerts are the firing members and, with `send_resolved`, those that
    /// recovered since the last message; worst first, at most
    /// [`MAX_LISTED`], with how many more there were.
    pub fn flush(
        &mut self,
        route: &AlertRoute,
        link_base: Option<&str>,
        now: i64,
    ) -> Option<(AlertState, Vec<Alert>, usize)> {
        let mut alerts: Vec<Alert> = self
            .members
            .values()
            .filter(|m| m.status >= route.min_status || route.send_resolved)
            .map(|m| Alert {
                entity: m.entity.clone(),
                path: m.path.clone(),
                status: m.status,
                previous: m.previous,
                reasons: m.reasons.clone(),
                counts: None,
                since: from_ms(m.since),
                seq: m.seq,
                link: link_base.map(|base| {
                    format!(
                        "{}/entities/{}",
                        base.trim_end_matches('/'),
                        percent_encoding::utf8_percent_encode(
                            &entity_key(&m.entity),
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    )
                }),
                dedup_key: format!("tributary:{}", entity_key(&m.entity)),
                also_affected: m.also_affected.clone(),
                owner: m.owner.clone(),
                labels: m.labels.clone(),
            })
            .collect();
        alerts.sort_by(|a, b| b.status.cmp(&a.status).then(a.seq.cmp(&b.seq)));
        let truncated = alerts.len().saturating_sub(MAX_LISTED);
        alerts.truncate(MAX_LISTED);
        let firing = self.members.values().any(|m| m.status >= route.min_status);
        // Told: remember what was said; recovered members leave.
        self.members.retain(|_, m| m.status >= route.min_status);
        for m in self.members.values_mut() {
            m.notified = Some(m.status);
        }
        let was_firing = self.firing;
        self.firing = firing;
        self.first_pending = None;
        if alerts.is_empty() || (!firing && !was_firing) {
            return None;
        }
        self.last_sent = Some(now);
        let state = if firing {
            AlertState::Firing
        } else {
            AlertState::Resolved
        };
        Some((state, alerts, truncated))
    }

    /// Whether the group holds nothing worth keeping.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && !self.firing
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn route() -> AlertRoute {
        AlertRoute {
            name: "r".into(),
            tenant: None,
            flow: None,
            system: None,
            check: None,
            asset: None,
            owner: None,
            labels: Default::default(),
            entities: vec![],
            min_status: Status::Warning,
            channels: vec!["c".into()],
            send_resolved: true,
            repeat_every: Some(Duration::from_secs(60)),
            group_by: vec![],
            group_wait: Duration::from_secs(1),
            group_interval: Duration::from_secs(10),
        }
    }

    fn event(asset: &str, from: Option<Status>, to: Status, seq: i64) -> HealthEvent {
        HealthEvent {
            seq,
            entity: EntityRef::Asset {
                check: "c".into(),
                asset: asset.into(),
            },
            from,
            to,
            reasons: vec![],
            muted: false,
            maintenance: None,
            suppressed_by: None,
            run_id: None,
            at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_burst_is_one_message_then_escalation_repeat_and_resolution() {
        let r = route();
        let mut g = Group::default();
        for i in 0..50 {
            let e = event(&format!("a{i}"), Some(Status::Healthy), Status::Warning, i);
            g.apply(&r, &e, &Place::default(), 1_000);
        }
        assert_eq!(g.due(&r), Some(2_000));
        let (state, alerts, _) = g.flush(&r, None, 2_000).unwrap();
        assert_eq!((state, alerts.len()), (AlertState::Firing, 50));
        // Nothing new: only the repeat is due.
        assert_eq!(g.due(&r), Some(62_000));
        // Escalation: due after group_interval.
        g.apply(
            &r,
            &event("a0", Some(Status::Warning), Status::Unhealthy, 60),
            &Place::default(),
            3_000,
        );
        assert_eq!(g.due(&r), Some(12_000));
        let (_, alerts, _) = g.flush(&r, None, 12_000).unwrap();
        assert_eq!(alerts[0].status, Status::Unhealthy);
        // All recover: one resolved message, then the group is empty.
        for i in 0..50 {
            let e = event(&format!("a{i}"), None, Status::Healthy, 100 + i);
            g.apply(&r, &e, &Place::default(), 20_000);
        }
        let (state, alerts, _) = g.flush(&r, None, 30_000).unwrap();
        assert_eq!((state, alerts.len()), (AlertState::Resolved, 50));
        assert!(g.is_empty());
        assert_eq!(g.due(&r), None);
    }

    #[test]
    fn a_group_of_10_000_lists_the_worst_100_and_counts_the_rest() {
        let r = route();
        let mut g = Group::default();
        for i in 0..10_000 {
            let to = if i % 1_000 == 7 {
                Status::Unhealthy
            } else {
                Status::Warning
            };
            let e = event(&format!("a{i}"), Some(Status::Healthy), to, i);
            g.apply(&r, &e, &Place::default(), 1_000);
        }
        let (_, alerts, truncated) = g.flush(&r, None, 2_000).unwrap();
        assert_eq!((alerts.len(), truncated), (MAX_LISTED, 10_000 - MAX_LISTED));
        let unhealthy = alerts.iter().take_while(|a| a.status == Status::Unhealthy);
        assert_eq!(unhealthy.count(), 10, "the worst first");
    }

    #[test]
    fn a_reannouncement_tells_again_and_a_de_escalation_does_not() {
        let r = route();
        let mut g = Group::default();
        g.apply(
            &r,
            &event("a", None, Status::Unhealthy, 1),
            &Place::default(),
            0,
        );
        g.flush(&r, None, 1_000).unwrap();
        g.apply(
            &r,
            &event("a", Some(Status::Unhealthy), Status::Warning, 2),
            &Place::default(),
            2_000,
        );
        assert_eq!(g.first_pending, None);
        g.apply(
            &r,
            &event("a", Some(Status::Warning), Status::Warning, 3),
            &Place::default(),
            3_000,
        );
        assert_eq!(g.first_pending, Some(3_000));
    }

    #[test]
    fn dispositions_keep_bad_states_quiet_never_resolutions() {
        let mut e = event("a", Some(Status::Healthy), Status::Unhealthy, 1);
        e.maintenance = Some("deploy".into());
        assert_eq!(disposition(&e, Status::Warning), Disposition::Maintenance);
        e.maintenance = None;
        e.muted = true;
        assert_eq!(disposition(&e, Status::Warning), Disposition::Muted);
        e.muted = false;
        let up = EntityRef::System("lake".into());
        e.suppressed_by = Some(up.clone());
        assert_eq!(
            disposition(&e, Status::Warning),
            Disposition::Suppressed(up.clone())
        );
        let mut resolved = event("a", Some(Status::Unhealthy), Status::Healthy, 2);
        resolved.suppressed_by = Some(up);
        resolved.maintenance = Some("deploy".into());
        assert_eq!(disposition(&resolved, Status::Warning), Disposition::Notify);
    }

    #[test]
    fn a_suppressed_change_is_listed_under_its_upstream() {
        let r = route();
        let mut g = Group::default();
        let mut up = event("up", None, Status::Unhealthy, 1);
        up.entity = EntityRef::System("lake".into());
        g.apply(&r, &up, &Place::default(), 0);
        let step = Step {
            kind: "system",
            key: "bi".into(),
            name: "BI".into(),
        };
        assert!(g.fold(&EntityRef::System("lake".into()), step.clone()));
        assert!(!g.fold(&EntityRef::System("other".into()), step.clone()));
        let (_, alerts, _) = g.flush(&r, None, 1_000).unwrap();
        assert_eq!(alerts[0].also_affected, vec![step]);
    }
}

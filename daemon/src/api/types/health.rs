//! What every entity shows: its health (status, since, reasons, mute) and its
//! daily history, read through the request's loaders.

use super::*;

/// Health as clients see it.
pub struct HealthInfo {
    pub entity: EntityRef,
    pub health: Arc<EntityHealth>,
    pub now: SystemTime,
}

#[Object(name = "Health")]
impl HealthInfo {
    async fn status(&self) -> HealthStatus {
        self.health.state.status.into()
    }

    /// When the current status began.
    async fn since(&self) -> DateTime<Utc> {
        time(self.health.state.since)
    }

    /// Why the status is not HEALTHY: one reason per unmet rule (for a
    /// roll-up, per unhealthy child).
    async fn reasons(&self) -> Vec<ReasonInfo> {
        self.health
            .state
            .reasons
            .iter()
            .cloned()
            .map(ReasonInfo)
            .collect()
    }

    /// Set while a mute is in force.
    async fn mute(&self) -> Option<MuteInfo> {
        let m = self.health.state.muted.as_ref()?;
        (self.now < m.until).then(|| MuteInfo {
            until: time(m.until),
            reason: m.reason.clone(),
        })
    }

    /// The maintenance window in force now that covers the entity: its
    /// changes are recorded and send no alert.
    async fn maintenance(&self, ctx: &Context<'_>) -> Option<WindowNode> {
        let state = state(ctx);
        let window = state.service.maintenance_of(&self.entity)?;
        Some(window_node(state, window))
    }

    /// The failing upstream system the entity's latest change was folded
    /// under ("also affected" in its alert); null once that upstream
    /// recovers or the entity alerts on its own.
    async fn suppressed_by(&self) -> Option<ID> {
        self.health.state.suppressed_by.as_ref().map(ids::entity_id)
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Mute")]
pub struct MuteInfo {
    pub until: DateTime<Utc>,
    pub reason: String,
}

pub struct ReasonInfo(pub Reason);

#[Object(name = "Reason")]
impl ReasonInfo {
    async fn rule(&self) -> HealthRule {
        self.0.rule.into()
    }
    async fn status(&self) -> HealthStatus {
        self.0.status.into()
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// For a roll-up: the child the reason comes from.
    async fn child_id(&self) -> Option<ID> {
        self.0.child.as_ref().map(ids::entity_id)
    }
}

pub(super) fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

pub(super) async fn health_of(ctx: &Context<'_>, entity: &EntityRef) -> Result<Option<HealthInfo>> {
    let health = loaders(ctx)
        .health
        .load_one(entity_key(entity))
        .await
        .map_err(|e| store_error(&e))?;
    Ok(health.map(|health| HealthInfo {
        entity: entity.clone(),
        health,
        now: state(ctx).clock.now(),
    }))
}

/// One day of an entity's history: enough for a bar of a 90-day chart.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct HistoryBucket {
    #[graphql(skip)]
    pub entity: EntityRef,
    /// Midnight UTC at the start of the day.
    pub day: DateTime<Utc>,
    /// The worst status of the day; null when nothing was evaluated.
    pub status: Option<HealthStatus>,
    /// Share of evaluations that were HEALTHY, 0 to 100; null without any.
    /// Today's counts the status the entity is in now as one more
    /// evaluation when it is not HEALTHY and worse than today's evaluations
    /// were (so is today's `status`): an outage in progress counts at once.
    pub uptime_percent: Option<f64>,
    pub runs: Long,
    pub failed_runs: Long,
    /// The day's latest counts (assets; summed for roll-ups).
    pub expected: Option<Long>,
    pub received: Option<Long>,
    pub errored: Option<Long>,
    pub missing: Option<Long>,
    /// The largest freshness lag seen that day, in seconds.
    pub max_freshness_lag_seconds: Option<f64>,
}

#[ComplexObject]
impl HistoryBucket {
    /// The name of a maintenance window that covered the entity during part
    /// of the day (among the windows the daemon knows: the config's and
    /// those made through the API, ended ones included); a status page draws
    /// such a day as maintenance.
    async fn maintenance(&self, ctx: &Context<'_>) -> Option<String> {
        let from = SystemTime::from(self.day);
        let to = from + std::time::Duration::from_millis(Period::Day.millis() as u64);
        state(ctx)
            .service
            .maintenance_during(&self.entity, from, to)
            .map(|w| w.name)
    }
}

/// What `history(days:)` counts in the complexity limit: its fields once per
/// day's bucket, as the answer holds them (out-of-range days are refused
/// when it runs).
pub(super) fn history_cost(days: Option<i32>, child_complexity: usize) -> usize {
    let days = days.map_or(DEFAULT_DAYS, |d| d.clamp(1, MAX_DAYS as i32) as u32);
    days as usize * child_complexity
}

/// Today's worst status and evaluations (all, and HEALTHY ones) with the
/// status the entity is in now: a status other than HEALTHY that today's
/// evaluations do not show yet (an SLO's verdict is no evaluation of a run;
/// a status held since before midnight has none today) counts as one more
/// evaluation of today. So today's bar and uptime never read better than
/// the status shown next to them, as on status pages where an outage in
/// progress counts against today at once.
fn with_status_now(
    worst: Option<Status>,
    evaluations: u64,
    healthy: u64,
    now: Option<Status>,
) -> (Option<Status>, u64, u64) {
    match now {
        Some(now) if now != Status::Healthy && worst.is_none_or(|w| now > w) => {
            (Some(now), evaluations + 1, healthy)
        }
        _ => (worst, evaluations, healthy),
    }
}

pub(super) async fn history_of(
    ctx: &Context<'_>,
    entity: &EntityRef,
    days: Option<i32>,
) -> Result<Vec<HistoryBucket>> {
    let days = match days {
        None => DEFAULT_DAYS,
        Some(d) if d >= 1 && d as u32 <= MAX_DAYS => d as u32,
        Some(d) => {
            return Err(error(
                Code::BadUserInput,
                format!("days must be between 1 and {MAX_DAYS}, not {d}"),
            ));
        }
    };
    let (from, to) = day_range(state(ctx).clock.now(), days);
    let rows = loaders(ctx)
        .history
        .load_one(HistoryKey {
            entity: entity.clone(),
            from_ms: from,
            to_ms: to,
        })
        .await
        .map_err(|e| store_error(&e))?
        .unwrap_or_default();
    let by_day: HashMap<i64, _> = rows.iter().map(|r| (to_ms(r.bucket_start), r)).collect();
    let day = Period::Day.millis();
    let today = to - day;
    let status_now = health_of(ctx, entity).await?.map(|h| h.health.state.status);
    Ok((0..days)
        .map(|i| {
            let start = from + i64::from(i) * day;
            let row = by_day.get(&start);
            let (worst, evaluations, healthy) = (
                row.filter(|r| r.evaluations > 0).map(|r| r.worst),
                row.map_or(0, |r| r.evaluations),
                row.map_or(0, |r| r.healthy),
            );
            let (worst, evaluations, healthy) = match start == today {
                true => with_status_now(worst, evaluations, healthy, status_now),
                false => (worst, evaluations, healthy),
            };
            let status = worst.map(Into::into);
            let uptime_percent =
                (evaluations > 0).then(|| healthy as f64 * 100.0 / evaluations as f64);
            match row {
                Some(r) => HistoryBucket {
                    entity: entity.clone(),
                    day: time(from_ms(start)),
                    status,
                    uptime_percent,
                    runs: long(r.runs),
                    failed_runs: long(r.failed_runs),
                    expected: r.expected.map(long),
                    received: r.received.map(long),
                    errored: r.errored.map(long),
                    missing: r.missing.map(long),
                    max_freshness_lag_seconds: r.max_lag.map(|d| d.as_secs_f64()),
                },
                None => HistoryBucket {
                    entity: entity.clone(),
                    day: time(from_ms(start)),
                    status,
                    uptime_percent,
                    runs: Long(0),
                    failed_runs: Long(0),
                    expected: None,
                    received: None,
                    errored: None,
                    missing: None,
                    max_freshness_lag_seconds: None,
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed status next to a day of healthy evaluations makes the day
    /// failed and short of 100%; a status the day shows already, or a
    /// healthy one, changes nothing.
    #[test]
    fn today_counts_a_worse_status_now_as_one_more_evaluation() {
        let (h, w, u, f) = (
            Status::Healthy,
            Status::Warning,
            Status::Unknown,
            Status::Unhealthy,
        );
        assert_eq!(with_status_now(Some(h), 3, 3, Some(f)), (Some(f), 4, 3));
        assert_eq!(with_status_now(Some(f), 3, 2, Some(w)), (Some(f), 3, 2));
        assert_eq!(with_status_now(None, 0, 0, Some(u)), (Some(u), 1, 0));
        assert_eq!(with_status_now(None, 0, 0, Some(h)), (None, 0, 0));
        assert_eq!(with_status_now(Some(h), 2, 2, None), (Some(h), 2, 2));
    }
}

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
    Ok((0..days)
        .map(|i| {
            let start = from + i64::from(i) * day;
            match by_day.get(&start) {
                Some(r) => HistoryBucket {
                    entity: entity.clone(),
                    day: time(from_ms(start)),
                    status: (r.evaluations > 0).then(|| r.worst.into()),
                    uptime_percent: (r.evaluations > 0).then(|| r.uptime_percent()),
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
                    status: None,
                    uptime_percent: None,
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

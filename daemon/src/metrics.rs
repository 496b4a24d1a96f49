//! Prometheus metrics, served in the OpenMetrics text format at `/metrics`.
//!
//! It owns the metric families (names, help, labels, buckets) and their
//! rendering. It records what other modules report and decides nothing: the
//! runner reports runs, the writer health, events and store writes, the reload
//! module its outcomes, the API its subscriptions. Figures cheaper to read than
//! to track (queue depths, runs in flight) are sampled when scraped.
//!
//! Labels never carry tenants, check configs or anything a check's config
//! holds: only connector names, outcomes and statuses, so the series count
//! stays bounded and nothing secret can leak into a scrape. The SLO series
//! are the one exception, by design (Sloth's names, so Grafana's SLO
//! dashboards work): they name the SLO and the entity (its id, as the API
//! shows it), one series set per entity with slices in the window; the
//! writer sets them when the figures change, so a scrape computes nothing.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use std::sync::atomic::AtomicU64;

use crate::health::{EntityRef, FailureClass, Status};
use crate::slo::{Figures, Lookback};

/// The media type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    connector: String,
    /// `success`, or the failure class.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    health: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    /// `asset`, `check`, `system`, `flow` or `tenant`.
    entity: &'static str,
    /// The status the entity moved to.
    health: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SloLabels {
    slo: String,
    /// `asset`, `check`, `system`, `flow` or `tenant`.
    entity_kind: &'static str,
    /// The entity's id; an asset's is `check:asset`.
    entity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BurnLabels {
    slo: String,
    entity_kind: &'static str,
    entity: String,
    /// `1h`, `6h`, `1d` or `3d`.
    lookback: &'static str,
}

type Ratio = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    /// The channel's name in `[[alerts.channels]]` (config, never a tenant's
    /// data).
    channel: String,
    /// `delivered`, `retry`, `rejected`, `gave_up`, `disabled`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    /// Why: a refused push's code (`invalid`, `rate_limited`...) or why a
    /// change sent no alert (`maintenance`, `muted`, `dependency`).
    reason: &'static str,
}

/// Figures read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Completed runs waiting for the writer.
    pub write_queue: usize,
    /// Attempts in flight.
    pub running: usize,
    /// Runs due but waiting for a concurrency permit.
    pub waiting: usize,
    /// Checks scheduled.
    pub checks: usize,
    /// Plugins loaded from the plugin folder, and files there that failed.
    pub plugins_loaded: usize,
    pub plugins_failed: usize,
}

/// Every metric the daemon exports. One per daemon, shared by `Arc`.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    run_duration: Family<ConnectorLabels, Histogram, fn() -> Histogram>,
    checks_by_health: Family<HealthLabels, Gauge>,
    health_events: Family<EventLabels, Counter>,
    subscriptions: Gauge,
    reloads: Family<OutcomeLabels, Counter>,
    last_reload_ok: Gauge,
    store_write: Histogram,
    store_write_errors: Counter,
    write_queue: Gauge,
    write_buffer: Gauge,
    runs_dropped: Counter,
    running: Gauge,
    waiting: Gauge,
    checks: Gauge,
    plugins_loaded: Gauge,
    plugins_failed: Gauge,
    persisted_queries: Family<OutcomeLabels, Counter>,
    persisted_query_bytes: Gauge,
    push_accepted: Family<KindLabels, Counter>,
    push_refused: Family<ReasonLabels, Counter>,
    openlineage_events: Family<LineageLabels, Counter>,
    openlineage_open_runs: Gauge,
    openlineage_held_bytes: Gauge,
    openlineage_runs_expired: Counter,
    alert_deliveries: Family<DeliveryLabels, Counter>,
    alerts_suppressed: Family<ReasonLabels, Counter>,
    alert_outbox: Gauge,
    alert_oldest_pending: Gauge,
    slo_objective: Family<SloLabels, Ratio>,
    slo_attainment: Family<SloLabels, Ratio>,
    slo_budget_remaining: Family<SloLabels, Ratio>,
    slo_burn_rate: Family<BurnLabels, Ratio>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LineageLabels {
    /// `START`, `RUNNING`, `COMPLETE`, `ABORT`, `FAIL` or `OTHER`.
    event_type: &'static str,
    /// `accepted` (merged into its run, or the run stored) or `ignored`
    /// (a job no check maps).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    /// `report`, `ids` or `beat`.
    kind: &'static str,
}

/// Run durations from 10 ms to about 10 minutes.
fn run_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tributary");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs",
            "Completed runs by connector and outcome (success or failure class)",
            runs.clone(),
        );
        let run_duration = Family::new_with_constructor(run_buckets as fn() -> Histogram);
        registry.register(
            "run_duration_seconds",
            "How long runs took, by connector",
            run_duration.clone(),
        );
        let checks_by_health = Family::<HealthLabels, Gauge>::default();
        registry.register(
            "checks_by_health",
            "Checks by their current health (checks never judged are not counted)",
            checks_by_health.clone(),
        );
        let health_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "health_events",
            "Health changes committed, by entity kind and the health moved to",
            health_events.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions_open",
            "GraphQL subscriptions open now",
            subscriptions.clone(),
        );
        let reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads by outcome (applied or refused)",
            reloads.clone(),
        );
        let last_reload_ok = Gauge::default();
        last_reload_ok.set(1);
        registry.register(
            "config_last_reload_successful",
            "1 when the latest reload was applied (or none was tried), 0 when it was refused",
            last_reload_ok.clone(),
        );
        let store_write = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "store_write_seconds",
            "Time to commit one batch of runs to the database",
            store_write.clone(),
        );
        let store_write_errors = Counter::default();
        registry.register(
            "store_write_errors",
            "Batches whose commit failed",
            store_write_errors.clone(),
        );
        let write_queue = Gauge::default();
        registry.register(
            "write_queue_depth",
            "Completed runs waiting for the writer",
            write_queue.clone(),
        );
        let write_buffer = Gauge::default();
        registry.register(
            "write_buffer_runs",
            "Runs whose write failed, held until the database answers again",
            write_buffer.clone(),
        );
        let runs_dropped = Counter::default();
        registry.register(
            "runs_dropped",
            "Runs never stored: the database stayed unavailable past the write buffer, or rejected them",
            runs_dropped.clone(),
        );
        let running = Gauge::default();
        registry.register("runs_in_flight", "Attempts running now", running.clone());
        let waiting = Gauge::default();
        registry.register(
            "runs_waiting",
            "Runs due but waiting for a concurrency permit",
            waiting.clone(),
        );
        let checks = Gauge::default();
        registry.register("checks", "Checks scheduled", checks.clone());
        let plugins_loaded = Gauge::default();
        registry.register(
            "plugins_loaded",
            "Plugins loaded from the plugin folder (the config in force uses these)",
            plugins_loaded.clone(),
        );
        let plugins_failed = Gauge::default();
        registry.register(
            "plugins_failed",
            "Plugin files that failed to load (the daemon's log and `daemon { failedPlugins }` say why)",
            plugins_failed.clone(),
        );
        let persisted_queries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "api_persisted_queries",
            "Requests naming a persisted query, by outcome (hit, miss, registered, refused, unsupported)",
            persisted_queries.clone(),
        );
        let persisted_query_bytes = Gauge::default();
        registry.register(
            "api_persisted_query_bytes",
            "Bytes of query text the persisted-query store holds (api.persisted_queries.max_bytes bounds it)",
            persisted_query_bytes.clone(),
        );
        let push_accepted = Family::<KindLabels, Counter>::default();
        registry.register(
            "push_accepted",
            "Pushes accepted (answered 202), by kind: report, ids or beat",
            push_accepted.clone(),
        );
        let push_refused = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "push_refused",
            "Pushes refused, by reason (the code of the answer's error)",
            push_refused.clone(),
        );
        let openlineage_events = Family::<LineageLabels, Counter>::default();
        registry.register(
            "openlineage_events",
            "OpenLineage run events read (POST /api/v1/lineage), by eventType and outcome (accepted, ignored); refusals are counted by push_refused",
            openlineage_events.clone(),
        );
        let openlineage_open_runs = Gauge::default();
        registry.register(
            "openlineage_open_runs",
            "Unfinished OpenLineage runs held in memory (heard of, terminal event not yet)",
            openlineage_open_runs.clone(),
        );
        let openlineage_held_bytes = Gauge::default();
        registry.register(
            "openlineage_held_bytes",
            "Bytes the unfinished OpenLineage runs hold (server.openlineage_max_held bounds it)",
            openlineage_held_bytes.clone(),
        );
        let openlineage_runs_expired = Counter::default();
        registry.register(
            "openlineage_runs_expired",
            "Unfinished OpenLineage runs let go of after their check's run_idle without an event",
            openlineage_runs_expired.clone(),
        );
        let alert_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "alert_deliveries",
            "Attempts to deliver alert messages, by channel and outcome (delivered, retry, rejected, gave_up, disabled)",
            alert_deliveries.clone(),
        );
        let alerts_suppressed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "alerts_suppressed",
            "Health changes that sent no alert of their own, by reason (maintenance, muted, dependency)",
            alerts_suppressed.clone(),
        );
        let alert_outbox = Gauge::default();
        registry.register(
            "alert_outbox_depth",
            "Alert work not done: events not yet routed plus messages not yet delivered",
            alert_outbox.clone(),
        );
        let alert_oldest_pending = Gauge::default();
        registry.register(
            "alert_oldest_pending_seconds",
            "Age of the oldest alert message not yet delivered (0 when none)",
            alert_oldest_pending.clone(),
        );
        let slo_objective = Family::<SloLabels, Ratio>::default();
        registry.register(
            "slo_objective_ratio",
            "The SLO's target: the share of slices (or events) that must be good",
            slo_objective.clone(),
        );
        let slo_attainment = Family::<SloLabels, Ratio>::default();
        registry.register(
            "slo_attainment_ratio",
            "Good units over counted units in the SLO's window so far",
            slo_attainment.clone(),
        );
        let slo_budget_remaining = Family::<SloLabels, Ratio>::default();
        registry.register(
            "slo_error_budget_remaining_ratio",
            "The share of the SLO's error budget left in its window (negative once overspent)",
            slo_budget_remaining.clone(),
        );
        let slo_burn_rate = Family::<BurnLabels, Ratio>::default();
        registry.register(
            "slo_burn_rate",
            "Error ratio over the lookback divided by the budget's (1 - target): at 1 the budget lasts the window",
            slo_burn_rate.clone(),
        );
        Self {
            registry,
            runs,
            run_duration,
            checks_by_health,
            health_events,
            subscriptions,
            reloads,
            last_reload_ok,
            store_write,
            store_write_errors,
            write_queue,
            write_buffer,
            runs_dropped,
            running,
            waiting,
            checks,
            plugins_loaded,
            plugins_failed,
            persisted_queries,
            push_accepted,
            push_refused,
            openlineage_events,
            openlineage_open_runs,
            openlineage_held_bytes,
            openlineage_runs_expired,
            persisted_query_bytes,
            alert_deliveries,
            alerts_suppressed,
            alert_outbox,
            alert_oldest_pending,
            slo_objective,
            slo_attainment,
            slo_budget_remaining,
            slo_burn_rate,
        }
    }

    /// Sets the series of SLO `slo` for `entity` to `figures` (at
    /// `target`), or removes them (`None`: no slices in the window any
    /// more, or the SLO is gone). A figure not known yet (no unit counted)
    /// has no series.
    pub fn slo_figures(
        &self,
        slo: &str,
        target: f64,
        entity: &EntityRef,
        figures: Option<&Figures>,
    ) {
        let key = crate::store::entity_key(entity);
        let labels = SloLabels {
            slo: slo.to_owned(),
            entity_kind: entity.kind(),
            entity: key
                .split_once(':')
                .map_or(key.as_str(), |(_, id)| id)
                .to_owned(),
        };
        let set = |family: &Family<SloLabels, Ratio>, value: Option<f64>| match value {
            Some(v) => {
                family.get_or_create(&labels).set(v);
            }
            None => {
                family.remove(&labels);
            }
        };
        set(&self.slo_objective, figures.map(|_| target));
        set(&self.slo_attainment, figures.and_then(|f| f.attainment));
        set(
            &self.slo_budget_remaining,
            figures.and_then(|f| f.budget_remaining_ratio),
        );
        for lookback in Lookback::ALL {
            let burn = BurnLabels {
                slo: labels.slo.clone(),
                entity_kind: labels.entity_kind,
                entity: labels.entity.clone(),
                lookback: lookback.as_str(),
            };
            match figures.and_then(|f| f.burn_rates.iter().find(|(l, _)| *l == lookback)) {
                Some((_, rate)) => {
                    self.slo_burn_rate.get_or_create(&burn).set(*rate);
                }
                None => {
                    self.slo_burn_rate.remove(&burn);
                }
            }
        }
    }

    /// A run of `connector` ended after `seconds`, failed with `failure` or not.
    pub fn run(&self, connector: &str, failure: Option<FailureClass>, seconds: f64) {
        let outcome = failure.map_or("success", FailureClass::as_str);
        self.runs
            .get_or_create(&RunLabels {
                connector: connector.to_owned(),
                outcome,
            })
            .inc();
        self.run_duration
            .get_or_create(&ConnectorLabels {
                connector: connector.to_owned(),
            })
            .observe(seconds);
    }

    /// How many checks are at each status now (a full count, not a delta).
    pub fn checks_by_health(&self, counts: &[(Status, usize)]) {
        for status in Status::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n);
            self.checks_by_health
                .get_or_create(&HealthLabels {
                    health: status.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A health change of an `entity` kind to `to` was committed.
    pub fn health_event(&self, entity: &'static str, to: Status) {
        self.health_events
            .get_or_create(&EventLabels {
                entity,
                health: to.as_str(),
            })
            .inc();
    }

    /// A subscription opened; it counts as open until the guard is dropped.
    pub fn subscription(&self) -> SubscriptionGuard {
        self.subscriptions.inc();
        SubscriptionGuard(self.subscriptions.clone())
    }

    /// A reload was applied (`true`) or refused.
    pub fn reload(&self, applied: bool) {
        let outcome = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&OutcomeLabels { outcome }).inc();
        self.last_reload_ok.set(i64::from(applied));
    }

    /// A request named a persisted query, with `outcome` (never its text).
    /// A push of `kind` (report, ids, beat) was accepted.
    pub fn push_accepted(&self, kind: &'static str) {
        self.push_accepted.get_or_create(&KindLabels { kind }).inc();
    }

    /// An OpenLineage event of `event_type` was read, with `outcome`.
    pub fn openlineage_event(&self, event_type: &'static str, outcome: &'static str) {
        self.openlineage_events
            .get_or_create(&LineageLabels {
                event_type,
                outcome,
            })
            .inc();
    }

    /// Unfinished OpenLineage runs: `runs` held now, holding `bytes`.
    pub fn openlineage_held(&self, runs: u64, bytes: u64) {
        self.openlineage_open_runs
            .set(i64::try_from(runs).unwrap_or(i64::MAX));
        self.openlineage_held_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// `runs` unfinished OpenLineage runs expired.
    pub fn openlineage_runs_expired(&self, runs: u64) {
        self.openlineage_runs_expired.inc_by(runs);
    }

    /// A push was refused for `reason`.
    pub fn push_refused(&self, reason: &'static str) {
        self.push_refused
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn persisted_query(&self, outcome: &'static str) {
        self.persisted_queries
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The persisted-query store holds `bytes` now.
    pub fn persisted_query_bytes(&self, bytes: u64) {
        self.persisted_query_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A batch commit took `seconds`, and failed or not.
    pub fn store_write(&self, seconds: f64, failed: bool) {
        self.store_write.observe(seconds);
        if failed {
            self.store_write_errors.inc();
        }
    }

    /// Runs held now because the database cannot take writes.
    pub fn write_buffer(&self, runs: usize) {
        self.write_buffer
            .set(i64::try_from(runs).unwrap_or(i64::MAX));
    }

    /// `runs` runs will never be stored.
    pub fn runs_dropped(&self, runs: usize) {
        self.runs_dropped.inc_by(runs as u64);
    }

    /// An attempt to deliver to `channel` ended with `outcome`.
    pub fn alert_delivery(&self, channel: &str, outcome: &'static str) {
        self.alert_deliveries
            .get_or_create(&DeliveryLabels {
                channel: channel.to_owned(),
                outcome,
            })
            .inc();
    }

    /// A health change sent no alert of its own, for `reason`.
    pub fn alert_suppressed(&self, reason: &'static str) {
        self.alerts_suppressed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// The alert work not done, and the age of the oldest message waiting.
    pub fn alert_backlog(&self, depth: i64, oldest_seconds: i64) {
        self.alert_outbox.set(depth);
        self.alert_oldest_pending.set(oldest_seconds);
    }

    /// The text a scrape gets, with `sample`'s figures as of now.
    pub fn render(&self, sample: Sample) -> String {
        let gauge = |g: &Gauge, n: usize| g.set(i64::try_from(n).unwrap_or(i64::MAX));
        gauge(&self.write_queue, sample.write_queue);
        gauge(&self.running, sample.running);
        gauge(&self.waiting, sample.waiting);
        gauge(&self.checks, sample.checks);
        gauge(&self.plugins_loaded, sample.plugins_loaded);
        gauge(&self.plugins_failed, sample.plugins_failed);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Keeps one subscription counted as open.
pub struct SubscriptionGuard(Gauge);

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series `name{labels}` in `text`.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn runs_are_counted_by_connector_and_outcome_with_their_duration() {
        let m = Metrics::new();
        m.run("dbt", None, 0.2);
        m.run("dbt", None, 0.3);
        m.run("dbt", Some(FailureClass::Auth), 1.0);
        let text = m.render(Sample::default());
        assert_eq!(
            value(
                &text,
                r#"tributary_runs_total{connector="dbt",outcome="success"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                r#"tributary_runs_total{connector="dbt",outcome="auth"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"tributary_run_duration_seconds_count{connector="dbt"}"#
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &text,
                r#"tributary_run_duration_seconds_sum{connector="dbt"}"#
            ),
            Some(1.5)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn checks_by_health_shows_every_status_and_replaces_the_last_count() {
        let m = Metrics::new();
        m.checks_by_health(&[(Status::Healthy, 3), (Status::Warning, 1)]);
        m.checks_by_health(&[(Status::Healthy, 2), (Status::Unhealthy, 2)]);
        let text = m.render(Sample::default());
        for (health, n) in [
            ("HEALTHY", 2.0),
            ("WARNING", 0.0),
            ("UNKNOWN", 0.0),
            ("UNHEALTHY", 2.0),
        ] {
            let series = format!(r#"tributary_checks_by_health{{health="{health}"}}"#);
            assert_eq!(value(&text, &series), Some(n), "{series} in\n{text}");
        }
    }

    #[test]
    fn subscriptions_count_while_their_guard_lives() {
        let m = Metrics::new();
        let a = m.subscription();
        let b = m.subscription();
        drop(a);
        let text = m.render(Sample::default());
        assert_eq!(value(&text, "tributary_subscriptions_open"), Some(1.0));
        drop(b);
        let text = m.render(Sample::default());
        assert_eq!(value(&text, "tributary_subscriptions_open"), Some(0.0));
    }

    #[test]
    fn reloads_store_writes_and_sampled_figures_are_rendered() {
        let m = Metrics::new();
        m.reload(true);
        m.reload(false);
        m.store_write(0.002, false);
        m.store_write(0.004, true);
        m.health_event("flow", Status::Warning);
        m.write_buffer(3);
        m.runs_dropped(2);
        let text = m.render(Sample {
            write_queue: 7,
            running: 2,
            waiting: 1,
            checks: 12,
            plugins_loaded: 4,
            plugins_failed: 2,
        });
        for (series, n) in [
            (r#"tributary_config_reloads_total{outcome="applied"}"#, 1.0),
            (r#"tributary_config_reloads_total{outcome="refused"}"#, 1.0),
            ("tributary_config_last_reload_successful", 0.0),
            ("tributary_store_write_seconds_count", 2.0),
            ("tributary_store_write_errors_total", 1.0),
            (
                r#"tributary_health_events_total{entity="flow",health="WARNING"}"#,
                1.0,
            ),
            ("tributary_write_queue_depth", 7.0),
            ("tributary_write_buffer_runs", 3.0),
            ("tributary_runs_dropped_total", 2.0),
            ("tributary_runs_in_flight", 2.0),
            ("tributary_runs_waiting", 1.0),
            ("tributary_checks", 12.0),
            ("tributary_plugins_loaded", 4.0),
            ("tributary_plugins_failed", 2.0),
        ] {
            assert_eq!(value(&text, series), Some(n), "{series} in\n{text}");
        }
    }
}

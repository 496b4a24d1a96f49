//! Writes: a batch of runs with their health in one transaction, the audit log
//! and retention.
//!
//! Rows of a kind go in multi-row statements of a few fixed sizes: a batch of
//! hundreds of runs costs tens of round trips, not thousands, and each backend
//! caches a handful of prepared statements per table.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::model::{
    AuditEntry, DataScope, Deleted, ErrorRow, HealthEvent, ObservationRow, Period, Pruned,
    ReconciliationRow, Rollup, RunRow, WindowRow, WriteBatch, count, entity_key, status_rank,
    to_ms,
};
use super::{Backend, Result, Store, StoreError};
use crate::config::Retention;
use crate::health::{EntityHealth, EntityRef};

/// Rows per statement, largest first: at most this many distinct statements
/// per table reach the statement cache.
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

pub(super) type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// Inserts `rows` with `head` (`INSERT INTO t (a, b) VALUES `) and `tail`
/// (e.g. an `ON CONFLICT` clause), `columns` values per row bound by `bind`.
/// Also any statement over a list of row values (`... IN (VALUES ` + `)`).
///
/// SQLite gets anonymous `?` placeholders: sqlx asks SQLite the name of every
/// parameter it binds, and SQLite finds a numbered one by walking the list of
/// names, which made binding a statement of thousands of `$N` quadratic (half
/// of all CPU time in the runs benchmark).
pub(super) async fn insert_many<'a, T>(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    head: &str,
    tail: &str,
    columns: usize,
    rows: &'a [T],
    bind: impl Fn(AnyQuery<'a>, &'a T) -> AnyQuery<'a>,
) -> Result<()> {
    let mut rest = rows;
    while !rest.is_empty() {
        let size = CHUNKS.into_iter().find(|&c| c <= rest.len()).unwrap_or(1);
        let (chunk, later) = rest.split_at(size);
        let mut sql = String::with_capacity(head.len() + tail.len() + size * columns * 5);
        sql.push_str(head);
        for row in 0..size {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            sql.push_str(&super::placeholders(backend, row * columns + 1, columns));
            sql.push(')');
        }
        sql.push_str(tail);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut **tx).await?;
        rest = later;
    }
    Ok(())
}

impl Store {
    /// Writes `batch` in one transaction: every run with its observations,
    /// errors, id sets and reconciliations, the health states and events they
    /// caused, and rollups. Returns the events with their sequence numbers.
    pub async fn write(&self, batch: &WriteBatch) -> Result<Vec<HealthEvent>> {
        self.write_parts(std::slice::from_ref(batch)).await
    }

    /// Writes `parts` in one transaction, as if they were one batch in that
    /// order. The writer keeps each run's writes as a part of its own, so a
    /// batch the database refuses can be split and retried run by run.
    pub async fn write_parts(&self, parts: &[WriteBatch]) -> Result<Vec<HealthEvent>> {
        let mut tx = self.write_pool().begin().await?;
        let run_writes = || parts.iter().flat_map(|b| b.runs.iter());
        let runs: Vec<&RunRow> = run_writes().map(|w| &w.run).collect();
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO runs (id, check_id, connector, plugin_version, trigger_kind, attempt, \
             started_at, finished_at, outcome, error_class, error_message, assets) VALUES ",
            "",
            12,
            &runs,
            |q, run| {
                q.bind(run.id.as_str())
                    .bind(run.check_id.as_str())
                    .bind(run.connector.as_str())
                    .bind(run.plugin_version.as_str())
                    .bind(run.trigger.as_str())
                    .bind(i64::from(run.attempt))
                    .bind(to_ms(run.started_at))
                    .bind(to_ms(run.finished_at))
                    .bind(run.outcome())
                    .bind(run.failure.as_ref().map(|f| f.class.as_str()))
                    .bind(run.failure.as_ref().map(|f| f.message.as_str()))
                    .bind(i64::from(run.assets))
            },
        )
        .await?;

        let observations: Vec<(&RunRow, &ObservationRow)> = run_writes()
            .flat_map(|w| w.observations.iter().map(move |o| (&w.run, o)))
            .collect();
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO observations (run_id, check_id, asset, kind, observed_at, expected, \
             received, errored, missing, freshness, last_received_id, last_received_at, \
             native_level, native_label, native_message, extras, error_totals, metadata) VALUES ",
            "",
            18,
            &observations,
            |q, (run, obs)| {
                q.bind(run.id.as_str())
                    .bind(run.check_id.as_str())
                    .bind(obs.asset.as_str())
                    .bind(obs.kind.as_str())
                    .bind(to_ms(run.finished_at))
                    .bind(obs.expected.map(count))
                    .bind(obs.received.map(count))
                    .bind(obs.errored.map(count))
                    .bind(obs.missing.map(count))
                    .bind(obs.freshness.map(to_ms))
                    .bind(obs.last_received_id.as_deref())
                    .bind(obs.last_received_at.map(to_ms))
                    .bind(obs.native.as_ref().map(|n| n.level.as_str()))
                    .bind(obs.native.as_ref().map(|n| n.label.as_str()))
                    .bind(obs.native.as_ref().and_then(|n| n.message.as_deref()))
                    .bind(pairs_json(&obs.extras))
                    .bind(pairs_json(&obs.error_totals))
                    .bind(pairs_json(&obs.metadata))
            },
        )
        .await?;

        let errors: Vec<(&RunRow, &str, &ErrorRow)> = observations
            .iter()
            .flat_map(|(run, obs)| {
                obs.errors
                    .iter()
                    .map(move |e| (*run, obs.asset.as_str(), e))
            })
            .collect();
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO asset_errors (run_id, check_id, asset, kind, message, document_id, \
             log_link, at, observed_at) VALUES ",
            "",
            9,
            &errors,
            |q, (run, asset, err)| {
                q.bind(run.id.as_str())
                    .bind(run.check_id.as_str())
                    .bind(*asset)
                    .bind(err.kind.as_str())
                    .bind(err.message.as_str())
                    .bind(err.document_id.as_deref())
                    .bind(err.log_link.as_deref())
                    .bind(err.at.map(to_ms))
                    .bind(to_ms(run.finished_at))
            },
        )
        .await?;

        for write in run_writes() {
            for set in &write.id_sets {
                sqlx::query(
                    "INSERT INTO id_sets (system_id, asset, check_id, run_id, observed_at, \
                     id_count, ids) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (system_id, asset) DO UPDATE SET check_id = excluded.check_id, \
                     run_id = excluded.run_id, observed_at = excluded.observed_at, \
                     id_count = excluded.id_count, ids = excluded.ids",
                )
                .bind(set.system_id.as_str())
                .bind(set.asset.as_str())
                .bind(set.check_id.as_str())
                .bind(set.run_id.as_str())
                .bind(to_ms(set.observed_at))
                .bind(count(set.count))
                .bind(set.encoded.as_slice())
                .execute(&mut *tx)
                .await?;
            }
            for rec in &write.reconciliations {
                write_reconciliation(&mut tx, self.backend, rec).await?;
            }
        }

        // The last state of each entity: one statement may not touch a row twice.
        let all_health = || parts.iter().flat_map(|b| b.health.iter());
        let mut latest: HashMap<&EntityRef, usize> = HashMap::new();
        for (i, (entity, _)) in all_health().enumerate() {
            latest.insert(entity, i);
        }
        let mut health: Vec<(&EntityRef, &EntityHealth, String)> = Vec::with_capacity(latest.len());
        for (i, (entity, stored)) in all_health().enumerate() {
            if latest.get(entity) == Some(&i) {
                let state = serde_json::to_string(stored)
                    .map_err(|e| StoreError::Corrupt(format!("health state: {e}")))?;
                health.push((entity, stored, state));
            }
        }
        let updated_at = to_ms(SystemTime::now());
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO health (entity, kind, status, since, updated_at, state) VALUES ",
            " ON CONFLICT (entity) DO UPDATE SET kind = excluded.kind, \
             status = excluded.status, since = excluded.since, \
             updated_at = excluded.updated_at, state = excluded.state",
            6,
            &health,
            |q, (entity, stored, state)| {
                q.bind(entity_key(entity))
                    .bind(entity.kind())
                    .bind(stored.state.status.as_str())
                    .bind(to_ms(stored.state.since))
                    .bind(updated_at)
                    .bind(state.as_str())
            },
        )
        .await?;

        // One at a time: each event's sequence number must follow the order
        // of the changes (assets before the parents they roll up into).
        let mut events = Vec::new();
        for event in parts.iter().flat_map(|b| b.events.iter()) {
            let reasons = serde_json::to_string(&event.change.reasons)
                .map_err(|e| StoreError::Corrupt(format!("reasons: {e}")))?;
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO health_events \
                 (entity, kind, from_status, to_status, reasons, muted, run_id, at, \
                 maintenance, suppressed_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
            )
            .bind(entity_key(&event.entity))
            .bind(event.entity.kind())
            .bind(event.change.from.map(|s| s.as_str()))
            .bind(event.change.to.as_str())
            .bind(reasons)
            .bind(i64::from(event.change.muted))
            .bind(event.run_id.as_deref())
            .bind(to_ms(event.at))
            .bind(event.change.maintenance.as_deref())
            .bind(event.change.suppressed_by.as_ref().map(entity_key))
            .fetch_one(&mut *tx)
            .await?;
            events.push(HealthEvent {
                seq,
                entity: event.entity.clone(),
                from: event.change.from,
                to: event.change.to,
                reasons: event.change.reasons.clone(),
                muted: event.change.muted,
                maintenance: event.change.maintenance.clone(),
                suppressed_by: event.change.suppressed_by.clone(),
                run_id: event.run_id.clone(),
                at: event.at,
            });
        }

        // The alert outbox: every event waits there for the dispatcher, in
        // this transaction, so none is committed without it (alerts::outbox).
        let outbox: Vec<(i64, i64)> = events.iter().map(|e| (e.seq, to_ms(e.at))).collect();
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO alert_outbox (event_seq, at) VALUES ",
            "",
            2,
            &outbox,
            |q, (seq, at)| q.bind(*seq).bind(*at),
        )
        .await?;

        let rollups = merge_rollups(parts.iter().flat_map(|b| b.rollups.iter()));
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO rollups (entity, period, bucket, worst, evaluations, healthy, runs, \
             failed_runs, expected, received, errored, missing, max_lag_ms) VALUES ",
            " ON CONFLICT (entity, period, bucket) DO UPDATE SET \
             worst = CASE WHEN excluded.worst > rollups.worst THEN excluded.worst ELSE rollups.worst END, \
             evaluations = rollups.evaluations + excluded.evaluations, \
             healthy = rollups.healthy + excluded.healthy, \
             runs = rollups.runs + excluded.runs, \
             failed_runs = rollups.failed_runs + excluded.failed_runs, \
             expected = COALESCE(excluded.expected, rollups.expected), \
             received = COALESCE(excluded.received, rollups.received), \
             errored = COALESCE(excluded.errored, rollups.errored), \
             missing = COALESCE(excluded.missing, rollups.missing), \
             max_lag_ms = CASE WHEN rollups.max_lag_ms IS NULL OR excluded.max_lag_ms > rollups.max_lag_ms \
             THEN excluded.max_lag_ms ELSE rollups.max_lag_ms END",
            13,
            &rollups,
            |q, d| {
                q.bind(entity_key(&d.entity))
                    .bind(d.period.as_str())
                    .bind(to_ms(d.bucket_start))
                    .bind(status_rank(d.worst))
                    .bind(count(d.evaluations))
                    .bind(count(d.healthy))
                    .bind(count(d.runs))
                    .bind(count(d.failed_runs))
                    .bind(d.expected.map(count))
                    .bind(d.received.map(count))
                    .bind(d.errored.map(count))
                    .bind(d.missing.map(count))
                    .bind(d.max_lag.map(|l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX)))
            },
        )
        .await?;
        for entry in parts.iter().flat_map(|b| b.audit.iter()) {
            insert_audit(&mut tx, entry).await?;
        }
        for window in parts.iter().flat_map(|b| b.windows.iter()) {
            upsert_window(&mut tx, window).await?;
        }
        super::slo::write_slices(
            &mut tx,
            self.backend,
            parts.iter().flat_map(|b| b.slices.iter()),
        )
        .await?;
        super::slo::write_members(
            &mut tx,
            self.backend,
            parts
                .iter()
                .flat_map(|b| b.slo_members.iter())
                .map(|(slo, entity)| (slo.as_ref(), entity_key(entity))),
        )
        .await?;
        tx.commit().await?;
        Ok(events)
    }

    /// Records an action in the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut tx = self.write_pool().begin().await?;
        insert_audit(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes what the daemon stored about `scope` (observations, errors, id
    /// sets, reconciliations and missing ids) and records `audit`, in one
    /// transaction. Runs, health and events stay: they say what happened.
    pub async fn delete_data(&self, scope: &DataScope, audit: &AuditEntry) -> Result<Deleted> {
        let mut tx = self.write_pool().begin().await?;
        let mut deleted = Deleted::default();
        let by_check = [
            ("observations", &mut deleted.observations),
            ("asset_errors", &mut deleted.errors),
        ];
        for (table, count) in by_check {
            *count = self
                .delete_in(
                    &mut tx,
                    table,
                    "check_id",
                    &scope.checks,
                    scope.asset.as_deref(),
                )
                .await?;
        }
        deleted.id_sets = self
            .delete_in(
                &mut tx,
                "id_sets",
                "system_id",
                &scope.systems,
                scope.asset.as_deref(),
            )
            .await?;
        deleted.reconciliations = self
            .delete_in(
                &mut tx,
                "reconciliations",
                "flow_id",
                &scope.flows,
                scope.asset.as_deref(),
            )
            .await?;
        deleted.missing_ids = self
            .delete_in(
                &mut tx,
                "missing_ids",
                "flow_id",
                &scope.flows,
                scope.asset.as_deref(),
            )
            .await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// `DELETE FROM table WHERE column IN (keys) [AND asset = ?]`; table and
    /// column are this module's own constants.
    async fn delete_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        table: &'static str,
        column: &'static str,
        keys: &[String],
        asset: Option<&str>,
    ) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut sql = format!(
            "DELETE FROM {table} WHERE {column} IN ({})",
            super::placeholders(self.backend, 1, keys.len())
        );
        if asset.is_some() {
            sql.push_str(&format!(
                " AND asset = {}",
                super::placeholders(self.backend, keys.len() + 1, 1)
            ));
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for key in keys {
            query = query.bind(key.as_str());
        }
        if let Some(asset) = asset {
            query = query.bind(asset);
        }
        Ok(query.execute(&mut **tx).await?.rows_affected())
    }

    /// Deletes raw runs (with their observations and errors, by cascade) older
    /// than `retention.raw`, and rollup buckets older than `retention.rollups`.
    /// Current health, events, id sets and missing ids are kept: they describe
    /// the present.
    pub async fn prune(&self, retention: Retention, now: SystemTime) -> Result<Pruned> {
        let raw_cutoff = to_ms(
            now.checked_sub(retention.raw)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let rollup_cutoff = to_ms(
            now.checked_sub(retention.rollups)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut tx = self.write_pool().begin().await?;
        // Reconciliation counts and errors are per run; delete them explicitly
        // so the cascade does not depend on foreign keys being enforced.
        sqlx::query(
            "DELETE FROM asset_errors WHERE run_id IN (SELECT id FROM runs WHERE finished_at < $1)",
        )
        .bind(raw_cutoff)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM observations WHERE run_id IN (SELECT id FROM runs WHERE finished_at < $1)",
        )
        .bind(raw_cutoff)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM reconciliations WHERE computed_at < $1")
            .bind(raw_cutoff)
            .execute(&mut *tx)
            .await?;
        let runs = sqlx::query("DELETE FROM runs WHERE finished_at < $1")
            .bind(raw_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let rollups = sqlx::query("DELETE FROM rollups WHERE bucket < $1")
            .bind(rollup_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Alert messages done with (delivered, refused, given up) go with the
        // raw data; pending ones stay whatever their age.
        sqlx::query("DELETE FROM alert_deliveries WHERE status <> 'pending' AND updated_at < $1")
            .bind(raw_cutoff)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM alert_delivery_entities WHERE delivery_n NOT IN \
             (SELECT n FROM alert_deliveries)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Pruned { runs, rollups })
    }
}

/// Pairs as a JSON object (`{"bytes": 10}`): what the API hands out.
fn pairs_json<V: serde::Serialize>(pairs: &[(String, V)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(super) async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    entry: &AuditEntry,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(to_ms(entry.at))
    .bind(entry.actor.as_str())
    .bind(entry.action.as_str())
    .bind(entry.target.as_str())
    .bind(entry.detail.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn upsert_window(tx: &mut Transaction<'static, Any>, w: &WindowRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO maintenance_windows (name, reason, tenant_glob, flow_glob, system_glob, \
         check_glob, asset_glob, starts_at, ends_at, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (name) DO UPDATE SET ends_at = excluded.ends_at",
    )
    .bind(w.name.as_str())
    .bind(w.reason.as_str())
    .bind(w.scope.tenant.as_deref())
    .bind(w.scope.flow.as_deref())
    .bind(w.scope.system.as_deref())
    .bind(w.scope.check.as_deref())
    .bind(w.scope.asset.as_deref())
    .bind(to_ms(w.start))
    .bind(to_ms(w.end))
    .bind(w.created_by.as_str())
    .bind(to_ms(w.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn write_reconciliation(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    rec: &ReconciliationRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO reconciliations (flow_id, system_id, asset, run_id, computed_at, expected, \
         received, missing) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(rec.flow_id.as_str())
    .bind(rec.system_id.as_str())
    .bind(rec.asset.as_str())
    .bind(rec.run_id.as_str())
    .bind(to_ms(rec.computed_at))
    .bind(count(rec.expected))
    .bind(count(rec.received))
    .bind(count(rec.missing_ids.len() as u64))
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM missing_ids WHERE flow_id = $1 AND system_id = $2 AND asset = $3")
        .bind(rec.flow_id.as_str())
        .bind(rec.system_id.as_str())
        .bind(rec.asset.as_str())
        .execute(&mut **tx)
        .await?;
    insert_many(
        tx,
        backend,
        "INSERT INTO missing_ids (flow_id, system_id, asset, id) VALUES ",
        "",
        4,
        &rec.missing_ids,
        |q, id| {
            q.bind(rec.flow_id.as_str())
                .bind(rec.system_id.as_str())
                .bind(rec.asset.as_str())
                .bind(id.as_str())
        },
    )
    .await
}

/// One row per bucket: a batch of many runs of one system writes its
/// system, flow and tenant buckets once.
fn merge_rollups<'a>(deltas: impl Iterator<Item = &'a Rollup>) -> Vec<Rollup> {
    let mut merged: BTreeMap<(String, Period, SystemTime), Rollup> = BTreeMap::new();
    for delta in deltas {
        let key = (entity_key(&delta.entity), delta.period, delta.bucket_start);
        match merged.get_mut(&key) {
            Some(existing) => existing.merge(delta),
            None => {
                merged.insert(key, delta.clone());
            }
        }
    }
    merged.into_values().collect()
}

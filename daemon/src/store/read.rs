//! Reads: what the daemon loads at start and what the API pages through.
//! Every list is newest first or in key order, with a bounded `limit`.

use std::time::{Duration, SystemTime};

use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{
    AuditEntry, ErrorRow, HealthEvent, IdSetRow, NativeRow, ObservationRow, Period,
    ReconciliationCounts, Rollup, RunColumns, RunRow, StoredError, StoredObservation, WindowRow,
    entity_key, from_ms, parse_entity_key, parse_status, status_from_rank, to_ms,
};
use super::{Result, Store, StoreError};
use crate::health::{EntityHealth, EntityRef};

fn unsigned(v: Option<i64>) -> Option<u64> {
    v.map(|n| n.max(0) as u64)
}

fn pairs<V: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<(String, V)>> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("observation pairs: {e}")))?;
    map.into_iter()
        .map(|(k, v)| {
            serde_json::from_value(v)
                .map(|v| (k, v))
                .map_err(|e| StoreError::Corrupt(format!("observation pairs: {e}")))
        })
        .collect()
}

const OBSERVATION_COLUMNS: &str = "run_id, check_id, asset, kind, observed_at, expected, \
    received, errored, missing, freshness, last_received_id, last_received_at, native_level, \
    native_label, native_message, extras, error_totals, metadata";

fn observation(row: &AnyRow) -> Result<StoredObservation> {
    let level: Option<String> = row.try_get("native_level")?;
    let native = match level {
        Some(level) => Some(NativeRow {
            level,
            label: row
                .try_get::<Option<String>, _>("native_label")?
                .unwrap_or_default(),
            message: row.try_get("native_message")?,
        }),
        None => None,
    };
    Ok(StoredObservation {
        run_id: row.try_get("run_id")?,
        check_id: row.try_get("check_id")?,
        observed_at: from_ms(row.try_get("observed_at")?),
        observation: ObservationRow {
            asset: row.try_get("asset")?,
            kind: row.try_get("kind")?,
            expected: unsigned(row.try_get("expected")?),
            received: unsigned(row.try_get("received")?),
            errored: unsigned(row.try_get("errored")?),
            missing: unsigned(row.try_get("missing")?),
            freshness: row.try_get::<Option<i64>, _>("freshness")?.map(from_ms),
            last_received_id: row.try_get("last_received_id")?,
            last_received_at: row
                .try_get::<Option<i64>, _>("last_received_at")?
                .map(from_ms),
            native,
            extras: pairs(row.try_get::<String, _>("extras")?.as_str())?,
            error_totals: pairs(row.try_get::<String, _>("error_totals")?.as_str())?,
            metadata: pairs(row.try_get::<String, _>("metadata")?.as_str())?,
            errors: Vec::new(),
        },
    })
}

impl Store {
    /// A check's runs, newest first, started before `before` (for paging).
    pub async fn runs(
        &self,
        check_id: &str,
        before: Option<SystemTime>,
        limit: u32,
    ) -> Result<Vec<RunRow>> {
        let rows: Vec<RunColumns> = sqlx::query_as(
            "SELECT * FROM runs WHERE check_id = $1 AND started_at < $2 \
             ORDER BY started_at DESC, id DESC LIMIT $3",
        )
        .bind(check_id)
        .bind(before.map(to_ms).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(RunRow::from_columns).collect())
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let row: Option<RunColumns> = sqlx::query_as("SELECT * FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(RunRow::from_columns))
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How many runs are stored (all checks).
    pub async fn run_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    /// What one run said of each asset, by asset key.
    pub async fn observations(&self, run_id: &str) -> Result<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observations WHERE run_id = $1 ORDER BY asset"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(observation).collect()
    }

    /// An asset's observations, newest first.
    pub async fn asset_observations(
        &self,
        check_id: &str,
        asset: &str,
        limit: u32,
    ) -> Result<Vec<StoredObservation>> {
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM observations WHERE check_id = $1 AND asset = $2 \
             ORDER BY observed_at DESC LIMIT $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(check_id)
            .bind(asset)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(observation).collect()
    }

    /// An asset's errors, newest first, optionally of one kind or document,
    /// with ids below `before_id` (for paging).
    pub async fn errors(
        &self,
        check_id: &str,
        asset: &str,
        kind: Option<&str>,
        document_id: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredError>> {
        let rows = sqlx::query(
            "SELECT id, run_id, check_id, asset, kind, message, document_id, log_link, at, \
             observed_at FROM asset_errors WHERE check_id = $1 AND asset = $2 \
             AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR document_id = $4) AND id < $5 \
             ORDER BY id DESC LIMIT $6",
        )
        .bind(check_id)
        .bind(asset)
        .bind(kind)
        .bind(document_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredError {
                    id: row.try_get("id")?,
                    run_id: row.try_get("run_id")?,
                    check_id: row.try_get("check_id")?,
                    asset: row.try_get("asset")?,
                    observed_at: from_ms(row.try_get("observed_at")?),
                    error: ErrorRow {
                        kind: row.try_get("kind")?,
                        message: row.try_get("message")?,
                        document_id: row.try_get("document_id")?,
                        log_link: row.try_get("log_link")?,
                        at: row.try_get::<Option<i64>, _>("at")?.map(from_ms),
                    },
                })
            })
            .collect()
    }

    /// The latest id set of `asset` in `system_id`.
    pub async fn id_set(&self, system_id: &str, asset: &str) -> Result<Option<IdSetRow>> {
        let row = sqlx::query(
            "SELECT system_id, asset, check_id, run_id, observed_at, id_count, ids FROM id_sets \
             WHERE system_id = $1 AND asset = $2",
        )
        .bind(system_id)
        .bind(asset)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(IdSetRow {
                system_id: row.try_get("system_id")?,
                asset: row.try_get("asset")?,
                check_id: row.try_get("check_id")?,
                run_id: row.try_get("run_id")?,
                observed_at: from_ms(row.try_get("observed_at")?),
                count: row.try_get::<i64, _>("id_count")?.max(0) as u64,
                encoded: row.try_get("ids")?,
            })
        })
        .transpose()
    }

    /// The ids `system_id` is missing of a flow's `asset`, in id order, after
    /// `after` (for paging).
    pub async fn missing_ids(
        &self,
        flow_id: &str,
        system_id: &str,
        asset: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM missing_ids WHERE flow_id = $1 AND system_id = $2 AND asset = $3 \
             AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5",
        )
        .bind(flow_id)
        .bind(system_id)
        .bind(asset)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The latest reconciliation of a flow's `asset` in `system_id`.
    pub async fn reconciliation(
        &self,
        flow_id: &str,
        system_id: &str,
        asset: &str,
    ) -> Result<Option<ReconciliationCounts>> {
        let row = sqlx::query(
            "SELECT run_id, computed_at, expected, received, missing FROM reconciliations \
             WHERE flow_id = $1 AND system_id = $2 AND asset = $3 \
             ORDER BY computed_at DESC LIMIT 1",
        )
        .bind(flow_id)
        .bind(system_id)
        .bind(asset)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(ReconciliationCounts {
                run_id: row.try_get("run_id")?,
                computed_at: from_ms(row.try_get("computed_at")?),
                expected: row.try_get::<i64, _>("expected")?.max(0) as u64,
                received: row.try_get::<i64, _>("received")?.max(0) as u64,
                missing: row.try_get::<i64, _>("missing")?.max(0) as u64,
            })
        })
        .transpose()
    }

    /// The current health of the entities stored under `keys` (see
    /// [`entity_key`]), in one statement: what the API's loaders batch into.
    pub async fn health_of(&self, keys: &[String]) -> Result<Vec<(String, EntityHealth)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT entity, state FROM health WHERE entity IN ({})",
            super::placeholders(self.backend, 1, keys.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for key in keys {
            query = query.bind(key.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok((row.try_get("entity")?, parse_health(row.try_get("state")?)?)))
            .collect()
    }

    /// The latest observation of every asset of each of `checks`, in one
    /// statement.
    pub async fn latest_observations(&self, checks: &[String]) -> Result<Vec<StoredObservation>> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let columns = OBSERVATION_COLUMNS
            .split(", ")
            .map(|c| format!("o.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns} FROM observations o JOIN (SELECT check_id, asset,              MAX(observed_at) AS latest FROM observations WHERE check_id IN ({})              GROUP BY check_id, asset) l ON o.check_id = l.check_id AND o.asset = l.asset              AND o.observed_at = l.latest ORDER BY o.check_id, o.asset",
            super::placeholders(self.backend, 1, checks.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for check in checks {
            query = query.bind(check.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut out: Vec<StoredObservation> = Vec::with_capacity(rows.len());
        for row in &rows {
            let o = observation(row)?;
            // Two runs observed at the same millisecond: keep one.
            let dup = out.last().is_some_and(|p| {
                p.check_id == o.check_id && p.observation.asset == o.observation.asset
            });
            if !dup {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// The current health of `entity`.
    pub async fn health(&self, entity: &EntityRef) -> Result<Option<EntityHealth>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM health WHERE entity = $1")
                .bind(entity_key(entity))
                .fetch_optional(&self.pool)
                .await?;
        state.map(|s| parse_health(&s)).transpose()
    }

    /// Every entity's current health: what the daemon loads at start.
    pub async fn all_health(&self) -> Result<Vec<(EntityRef, EntityHealth)>> {
        let rows = sqlx::query("SELECT entity, state FROM health")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("entity")?;
            // A key this version does not know was written by a newer one: skip it.
            if let Some(entity) = parse_entity_key(&key) {
                out.push((entity, parse_health(row.try_get("state")?)?));
            }
        }
        Ok(out)
    }

    /// Health events with a sequence number above `after`, oldest first.
    pub async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<HealthEvent>> {
        let rows = sqlx::query(
            "SELECT seq, entity, from_status, to_status, reasons, muted, run_id, at, \
             maintenance, suppressed_by FROM health_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("entity")?;
            let Some(entity) = parse_entity_key(&key) else {
                continue;
            };
            let status = |col: &str| -> Result<Option<crate::health::Status>> {
                let text: Option<String> = row.try_get(col)?;
                text.map(|t| {
                    parse_status(&t).ok_or_else(|| StoreError::Corrupt(format!("status {t:?}")))
                })
                .transpose()
            };
            let reasons: String = row.try_get("reasons")?;
            out.push(HealthEvent {
                seq: row.try_get("seq")?,
                entity,
                from: status("from_status")?,
                to: status("to_status")?
                    .ok_or_else(|| StoreError::Corrupt("event without status".into()))?,
                reasons: serde_json::from_str(&reasons)
                    .map_err(|e| StoreError::Corrupt(format!("event reasons: {e}")))?,
                muted: row.try_get::<i64, _>("muted")? != 0,
                maintenance: row.try_get("maintenance")?,
                suppressed_by: row
                    .try_get::<Option<String>, _>("suppressed_by")?
                    .as_deref()
                    .and_then(parse_entity_key),
                run_id: row.try_get("run_id")?,
                at: from_ms(row.try_get("at")?),
            });
        }
        Ok(out)
    }

    /// The highest event sequence number written, 0 when none.
    pub async fn last_event_seq(&self) -> Result<i64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM health_events")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq.unwrap_or(0))
    }

    /// An entity's rollup buckets of `period` that start in `[from, to)`, oldest first.
    pub async fn rollups(
        &self,
        entity: &EntityRef,
        period: Period,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<Rollup>> {
        self.rollups_of(std::slice::from_ref(entity), period, from, to)
            .await
    }

    /// [`Store::rollups`] of several entities in one statement, by entity then
    /// oldest first.
    pub async fn rollups_of(
        &self,
        entities: &[EntityRef],
        period: Period,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<Rollup>> {
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let n = entities.len();
        let sql = format!(
            "SELECT entity, bucket, worst, evaluations, healthy, runs, failed_runs, expected, \
             received, errored, missing, max_lag_ms FROM rollups \
             WHERE entity IN ({}) AND period = {} AND bucket >= {} AND bucket < {} \
             ORDER BY entity, bucket",
            super::placeholders(self.backend, 1, n),
            super::placeholders(self.backend, n + 1, 1),
            super::placeholders(self.backend, n + 2, 1),
            super::placeholders(self.backend, n + 3, 1),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entity in entities {
            query = query.bind(entity_key(entity));
        }
        let rows = query
            .bind(period.as_str())
            .bind(to_ms(from))
            .bind(to_ms(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .filter_map(|row| {
                let key: String = match row.try_get("entity") {
                    Ok(k) => k,
                    Err(e) => return Some(Err(e.into())),
                };
                let entity = parse_entity_key(&key)?;
                let n =
                    |col: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(col)?.max(0) as u64) };
                Some((|| {
                    Ok(Rollup {
                        entity,
                        period,
                        bucket_start: from_ms(row.try_get("bucket")?),
                        worst: status_from_rank(row.try_get("worst")?),
                        evaluations: n("evaluations")?,
                        healthy: n("healthy")?,
                        runs: n("runs")?,
                        failed_runs: n("failed_runs")?,
                        expected: unsigned(row.try_get("expected")?),
                        received: unsigned(row.try_get("received")?),
                        errored: unsigned(row.try_get("errored")?),
                        missing: unsigned(row.try_get("missing")?),
                        max_lag: unsigned(row.try_get("max_lag_ms")?).map(Duration::from_millis),
                    })
                })())
            })
            .collect()
    }

    /// SQLite's own check of the file (`ok` when sound); Postgres keeps its
    /// own invariants and always answers `ok`.
    pub async fn integrity_check(&self) -> Result<String> {
        match self.backend {
            super::Backend::Sqlite => Ok(sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&self.pool)
                .await?),
            super::Backend::Postgres => Ok("ok".to_owned()),
        }
    }

    /// Every maintenance window made through the API, by start.
    pub async fn maintenance_windows(&self) -> Result<Vec<WindowRow>> {
        let rows = sqlx::query(
            "SELECT name, reason, tenant_glob, flow_glob, system_glob, check_glob, asset_glob, \
             starts_at, ends_at, created_by, created_at FROM maintenance_windows \
             ORDER BY starts_at, name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WindowRow {
                    name: row.try_get("name")?,
                    reason: row.try_get("reason")?,
                    scope: crate::health::Scope {
                        tenant: row.try_get("tenant_glob")?,
                        flow: row.try_get("flow_glob")?,
                        system: row.try_get("system_glob")?,
                        check: row.try_get("check_glob")?,
                        asset: row.try_get("asset_glob")?,
                    },
                    start: from_ms(row.try_get("starts_at")?),
                    end: from_ms(row.try_get("ends_at")?),
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms(row.try_get("created_at")?),
                })
            })
            .collect()
    }

    /// The latest audit entries, newest first.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: from_ms(row.try_get("at")?),
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

fn parse_health(text: &str) -> Result<EntityHealth> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("health state: {e}")))
}

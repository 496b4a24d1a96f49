//! The alert tables (migrations 0003 and 0005): the outbox the event writes
//! fill (store/write.rs), the grouping state, the deliveries the dispatcher
//! keeps (with the entities each is about, for the API's filters) and the
//! channels a receiver disabled. Rows only: what a group or a message means
//! is `alerts`'s.

use sqlx::Row;

use super::dispatch::NotNow;
use super::write::{insert_audit, insert_many};
use super::{AuditEntry, Result, Store};

/// One group's stored state; `state: None` deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertGroupRow {
    pub route: String,
    pub group_key: String,
    pub state: Option<String>,
    /// When its next message is due (ms); `None`: nothing to send.
    pub flush_at: Option<i64>,
}

/// A message to a channel, as first stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    pub channel: String,
    pub route: String,
    pub group_key: String,
    /// The message, JSON.
    pub message: String,
    pub created_at: i64,
    /// The entity keys the message is about, for the API's filter.
    pub entities: Vec<String>,
    /// The one tenant all of them belong to; `None` when they span tenants.
    pub tenant: Option<String>,
}

/// Where a delivery stands. Stored as text (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not yet taken; tried at `next_at`.
    Pending,
    /// The receiver took it.
    Delivered,
    /// The receiver refused this message for good (e.g. 400).
    Rejected,
    /// Still not taken when the give-up age passed.
    GaveUp,
    /// Its channel was removed from the config.
    Dropped,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        Self::Pending,
        Self::Delivered,
        Self::Rejected,
        Self::GaveUp,
        Self::Dropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::GaveUp => "gave_up",
            Self::Dropped => "dropped",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A delivery as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub n: i64,
    pub id: String,
    pub channel: String,
    pub route: String,
    pub group_key: String,
    /// The message, JSON.
    pub message: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// When it is tried next (ms); meaningful while pending.
    pub next_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub tenant: Option<String>,
}

/// Which deliveries [`Store::alert_deliveries`] lists; `None`: any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub channel: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// An entity key the message is about.
    pub entity: Option<String>,
    /// Only messages all of whose entities are in this tenant.
    pub tenant: Option<String>,
    /// Only deliveries older than this one (`n`): the page after it.
    pub before: Option<i64>,
}

/// A channel a receiver disabled, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledChannelRow {
    pub channel: String,
    /// Of the definition it was disabled under (see `alerts::dispatcher`).
    pub fingerprint: String,
    pub reason: String,
}

const RECORD_COLUMNS: &str = "n, id, channel, route, group_key, message, status, attempts, \
     last_error, next_at, created_at, delivered_at, tenant";

fn record(row: &sqlx::any::AnyRow) -> Result<DeliveryRecord> {
    let status: String = row.try_get("status")?;
    Ok(DeliveryRecord {
        n: row.try_get("n")?,
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        route: row.try_get("route")?,
        group_key: row.try_get("group_key")?,
        message: row.try_get("message")?,
        // A status this version does not know reads as what it is closest
        // to: done, not delivered.
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Rejected),
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        next_at: row.try_get("next_at")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
        tenant: row.try_get("tenant")?,
    })
}

/// A pending delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub n: i64,
    pub id: String,
    pub channel: String,
    pub message: String,
    pub created_at: i64,
    pub attempts: i64,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryUpdate {
    Delivered,
    /// Still pending, tried again at `next_at` (ms).
    Retry {
        next_at: i64,
        error: String,
    },
    /// Done without delivery: rejected, given up or dropped.
    Failed {
        status: DeliveryStatus,
        error: String,
    },
}

/// The deliveries not yet done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlertBacklog {
    pub pending: i64,
    /// When the oldest was made (ms).
    pub oldest: Option<i64>,
    /// Events waiting in the outbox.
    pub outbox: i64,
}

impl Store {
    /// The sequence numbers of the oldest `limit` events in the outbox.
    pub async fn alert_outbox_seqs(&self, limit: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT event_seq FROM alert_outbox ORDER BY event_seq LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Groups whose next message is due at `now` (ms).
    pub async fn alert_due_groups(&self, now: i64, limit: i64) -> Result<Vec<AlertGroupRow>> {
        let rows = sqlx::query(
            "SELECT route, group_key, state, flush_at FROM alert_groups \
             WHERE flush_at IS NOT NULL AND flush_at <= $1 ORDER BY flush_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertGroupRow {
                    route: row.try_get("route")?,
                    group_key: row.try_get("group_key")?,
                    state: row.try_get("state")?,
                    flush_at: row.try_get("flush_at")?,
                })
            })
            .collect()
    }

    /// In one transaction: the groups' new states, the deliveries of the
    /// messages they send, and the outbox events they took in removed; many
    /// rows per statement.
    pub async fn alert_commit(
        &self,
        groups: &[AlertGroupRow],
        deliveries: &[NewDelivery],
        consumed: &[i64],
    ) -> Result<()> {
        let mut tx = self.write_pool().begin().await?;
        let (kept, gone): (Vec<_>, Vec<_>) = groups.iter().partition(|g| g.state.is_some());
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO alert_groups (route, group_key, state, flush_at) VALUES ",
            " ON CONFLICT (route, group_key) DO UPDATE \
             SET state = excluded.state, flush_at = excluded.flush_at",
            4,
            &kept,
            |q, group| {
                q.bind(group.route.as_str())
                    .bind(group.group_key.as_str())
                    .bind(group.state.as_deref())
                    .bind(group.flush_at)
            },
        )
        .await?;
        insert_many(
            &mut tx,
            self.backend,
            "DELETE FROM alert_groups WHERE (route, group_key) IN (VALUES ",
            ")",
            2,
            &gone,
            |q, group| q.bind(group.route.as_str()).bind(group.group_key.as_str()),
        )
        .await?;
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO alert_deliveries (id, channel, route, group_key, message, \
             created_at, attempts, next_at, status, updated_at, tenant) VALUES ",
            "",
            11,
            deliveries,
            |q, d| {
                q.bind(d.id.as_str())
                    .bind(d.channel.as_str())
                    .bind(d.route.as_str())
                    .bind(d.group_key.as_str())
                    .bind(d.message.as_str())
                    .bind(d.created_at)
                    .bind(0_i64)
                    .bind(d.created_at)
                    .bind("pending")
                    .bind(d.created_at)
                    .bind(d.tenant.as_deref())
            },
        )
        .await?;
        // The entities each message is about, for `alertDeliveries(entity:)`:
        // the deliveries' row numbers are the database's, so they are
        // joined by id.
        let entities: Vec<(&str, &str)> = (deliveries.iter())
            .flat_map(|d| d.entities.iter().map(|e| (d.id.as_str(), e.as_str())))
            .collect();
        insert_many(
            &mut tx,
            self.backend,
            "INSERT INTO alert_delivery_entities (delivery_n, entity) \
             SELECT d.n, v.column2 FROM (VALUES ",
            ") AS v JOIN alert_deliveries d ON d.id = v.column1 \
             WHERE true ON CONFLICT DO NOTHING",
            2,
            &entities,
            |q, (id, entity)| q.bind(*id).bind(*entity),
        )
        .await?;
        self.consume_outbox(&mut tx, consumed).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pending deliveries due at `now` (ms), oldest first, each the oldest
    /// pending one of its channel and group (a group's messages go in
    /// order), but for what `not_now` leaves out.
    pub async fn alert_due_deliveries(
        &self,
        now: i64,
        limit: i64,
        not_now: &NotNow,
    ) -> Result<Vec<DeliveryRow>> {
        let sql = format!(
            "SELECT n, id, channel, message, created_at, attempts FROM alert_deliveries d \
             WHERE status = 'pending' AND next_at <= $1{} AND NOT EXISTS ( \
               SELECT 1 FROM alert_deliveries e WHERE e.status = 'pending' \
               AND e.channel = d.channel AND e.route = d.route \
               AND e.group_key = d.group_key AND e.n < d.n) \
             ORDER BY n LIMIT $2",
            not_now.clause(3)
        );
        // Built from constants and numbered parameters.
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(limit);
        let rows = not_now.bind(query).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryRow {
                    n: row.try_get("n")?,
                    id: row.try_get("id")?,
                    channel: row.try_get("channel")?,
                    message: row.try_get("message")?,
                    created_at: row.try_get("created_at")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Records attempts at deliveries (by `n`), made at `now` (ms), in one
    /// transaction: the delivered ones (most, when all is well) in a few
    /// statements, the others one by one.
    pub async fn alert_attempted(&self, updates: &[(i64, DeliveryUpdate)], now: i64) -> Result<()> {
        let mut tx = self.write_pool().begin().await?;
        let delivered: Vec<i64> = (updates.iter())
            .filter(|(_, u)| *u == DeliveryUpdate::Delivered)
            .map(|(n, _)| *n)
            .collect();
        self.delivered_in(&mut tx, &delivered, now).await?;
        for (n, update) in updates {
            let (status, next_at, error) = match update {
                DeliveryUpdate::Delivered => continue,
                DeliveryUpdate::Retry { next_at, error } => {
                    (DeliveryStatus::Pending, Some(*next_at), Some(error))
                }
                DeliveryUpdate::Failed { status, error } => (*status, None, Some(error)),
            };
            sqlx::query(
                "UPDATE alert_deliveries SET attempts = attempts + 1, status = $1, \
                 next_at = COALESCE($2, next_at), last_error = COALESCE($3, last_error), \
                 updated_at = $4 WHERE n = $5",
            )
            .bind(status.as_str())
            .bind(next_at)
            .bind(error.map(String::as_str))
            .bind(now)
            .bind(*n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// What is left to deliver.
    pub async fn alert_backlog(&self) -> Result<AlertBacklog> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM alert_deliveries \
             WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        let outbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_outbox")
            .fetch_one(&self.pool)
            .await?;
        Ok(AlertBacklog {
            pending: row.try_get("pending")?,
            oldest: row.try_get("oldest")?,
            outbox,
        })
    }

    /// Deliveries matching `filter`, newest first, at most `limit`.
    pub async fn alert_deliveries(
        &self,
        filter: &DeliveryFilter,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>> {
        // Only the clauses asked for, numbered in order: an untyped NULL
        // parameter is refused by Postgres.
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |clause: &str, value: String| {
            binds.push(value);
            clauses.push(clause.replace('?', &format!("${}", binds.len())));
        };
        if let Some(channel) = &filter.channel {
            bind("channel = ?", channel.clone());
        }
        if let Some(status) = filter.status {
            bind("status = ?", status.as_str().to_owned());
        }
        if let Some(tenant) = &filter.tenant {
            bind("tenant = ?", tenant.clone());
        }
        if let Some(entity) = &filter.entity {
            bind(
                "n IN (SELECT delivery_n FROM alert_delivery_entities WHERE entity = ?)",
                entity.clone(),
            );
        }
        if let Some(before) = filter.before {
            clauses.push(format!("n < {before}"));
        }
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM alert_deliveries");
        if !clauses.is_empty() {
            sql = format!("{sql} WHERE {}", clauses.join(" AND "));
        }
        sql = format!("{sql} ORDER BY n DESC LIMIT {limit}");
        // Built from constants and integers; every text is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in &binds {
            query = query.bind(value.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    /// The delivery whose message has `id`.
    pub async fn alert_delivery(&self, id: &str) -> Result<Option<DeliveryRecord>> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM alert_deliveries WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Makes the delivery with message `id` pending and due at `now` (ms),
    /// same id, and records `audit`, in one transaction; its channel, or
    /// `None` when there is no such delivery (or it was delivered).
    pub async fn alert_retry(
        &self,
        id: &str,
        now: i64,
        audit: &AuditEntry,
    ) -> Result<Option<String>> {
        let mut tx = self.write_pool().begin().await?;
        let channel: Option<String> = sqlx::query_scalar(
            "UPDATE alert_deliveries SET status = 'pending', next_at = $1, updated_at = $1 \
             WHERE id = $2 AND status <> 'delivered' RETURNING channel",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if channel.is_some() {
            insert_audit(&mut tx, audit).await?;
            tx.commit().await?;
        }
        Ok(channel)
    }

    /// The channels a receiver disabled.
    pub async fn alert_disabled_channels(&self) -> Result<Vec<DisabledChannelRow>> {
        let rows = sqlx::query("SELECT channel, fingerprint, reason FROM alert_channels_disabled")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(DisabledChannelRow {
                    channel: row.try_get("channel")?,
                    fingerprint: row.try_get("fingerprint")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Keeps that a receiver disabled `row.channel`, at `at` (ms).
    pub async fn alert_disable_channel(&self, row: &DisabledChannelRow, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO alert_channels_disabled (channel, fingerprint, reason, at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (channel) DO UPDATE \
             SET fingerprint = excluded.fingerprint, reason = excluded.reason, at = excluded.at",
        )
        .bind(row.channel.as_str())
        .bind(row.fingerprint.as_str())
        .bind(row.reason.as_str())
        .bind(at)
        .execute(&self.write_pool())
        .await?;
        Ok(())
    }

    /// Forgets that `channel` was disabled; `false` when it was not.
    pub async fn alert_enable_channel(&self, channel: &str) -> Result<bool> {
        let removed = sqlx::query("DELETE FROM alert_channels_disabled WHERE channel = $1")
            .bind(channel)
            .execute(&self.write_pool())
            .await?
            .rows_affected();
        Ok(removed > 0)
    }
}

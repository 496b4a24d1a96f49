//! The alert tables (migration 0003): the outbox the event writes fill
//! (store/write.rs), the grouping state and the deliveries the dispatcher
//! keeps. Rows only: what a group or a message means is `alerts`'s.

use sqlx::Row;

use super::write::insert_many;
use super::{Result, Store};

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
    /// Done without delivery: `rejected` or `gave_up`.
    Failed {
        status: &'static str,
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
             created_at, attempts, next_at, status, updated_at) VALUES ",
            "",
            10,
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
            },
        )
        .await?;
        self.consume_outbox(&mut tx, consumed).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pending deliveries due at `now` (ms), oldest first, each the oldest
    /// pending one of its channel and group: a group's messages go in order.
    pub async fn alert_due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(
            "SELECT n, id, channel, message, created_at, attempts FROM alert_deliveries d \
             WHERE status = 'pending' AND next_at <= $1 AND NOT EXISTS ( \
               SELECT 1 FROM alert_deliveries e WHERE e.status = 'pending' \
               AND e.channel = d.channel AND e.route = d.route \
               AND e.group_key = d.group_key AND e.n < d.n) \
             ORDER BY n LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
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
                    ("pending", Some(*next_at), Some(error))
                }
                DeliveryUpdate::Failed { status, error } => (*status, None, Some(error)),
            };
            sqlx::query(
                "UPDATE alert_deliveries SET attempts = attempts + 1, status = $1, \
                 next_at = COALESCE($2, next_at), last_error = COALESCE($3, last_error), \
                 updated_at = $4 WHERE n = $5",
            )
            .bind(status)
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
}

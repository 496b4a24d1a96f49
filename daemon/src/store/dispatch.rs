//! The alert dispatcher's batched reads and writes on the alert tables
//! (migration 0003): many groups read in one statement, many deliveries
//! marked or put off in one, and when the dispatcher next has work. Rows
//! only, as in `store::alerts`: what a group or a message means is
//! `alerts`'s.
//!
//! They exist so that routing 2,000 events or recording 500 attempts costs
//! a few round trips, not one per row: the dispatcher's throughput is bound
//! by them.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::write::insert_many;
use super::{Backend, Result, Store, placeholders};

/// Rows per statement, largest first (as the writer's): a few distinct
/// statements reach the statement cache.
const CHUNKS: [usize; 4] = [256, 16, 4, 1];

/// When the dispatcher has work next, as the tables say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertDue {
    /// The earliest group message due (ms).
    pub flush_at: Option<i64>,
    /// Per channel, the earliest delivery due (ms) among those first in
    /// their group's line (a later one waits for its group's first anyway).
    pub deliveries: HashMap<String, i64>,
}

/// What the due queries leave out: the channels the dispatcher cannot send
/// on now (disabled, or with all the sends in flight they may have) and the
/// messages in flight (by `n`), which stay pending meanwhile. Both are
/// bounded by the dispatcher (its channels, its sends in flight).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotNow {
    pub channels: Vec<String>,
    pub ns: Vec<i64>,
}

impl NotNow {
    /// `AND channel NOT IN (..) AND n NOT IN (..)`, each only when there
    /// is something to leave out, its parameters numbered from `first`
    /// (`$n` on both backends, as the queries it goes into).
    pub(super) fn clause(&self, first: usize) -> String {
        let numbered = |from: usize, n: usize| {
            (from..from + n)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut clause = String::new();
        if !self.channels.is_empty() {
            let list = numbered(first, self.channels.len());
            clause.push_str(&format!(" AND channel NOT IN ({list})"));
        }
        if !self.ns.is_empty() {
            let list = numbered(first + self.channels.len(), self.ns.len());
            clause.push_str(&format!(" AND n NOT IN ({list})"));
        }
        clause
    }

    /// Binds the values [`clause`](Self::clause) numbered.
    pub(super) fn bind<'q>(
        &'q self,
        mut query: Query<'q, Any, AnyArguments>,
    ) -> Query<'q, Any, AnyArguments> {
        for channel in &self.channels {
            query = query.bind(channel.as_str());
        }
        for n in &self.ns {
            query = query.bind(*n);
        }
        query
    }
}

impl Store {
    /// The stored states of the groups `keys` (route, group key); those
    /// not stored are absent.
    pub async fn alert_groups(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), String>> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in chunks(keys) {
            let sql = format!(
                "SELECT route, group_key, state FROM alert_groups \
                 WHERE (route, group_key) IN (VALUES {})",
                rows_of(self.backend, chunk.len(), 2)
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (route, key) in chunk {
                query = query.bind(route.as_str()).bind(key.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                found.insert(
                    (row.try_get("route")?, row.try_get("group_key")?),
                    row.try_get("state")?,
                );
            }
        }
        Ok(found)
    }

    /// When the dispatcher next has work, but for what `not_now` leaves
    /// out: one statement.
    pub async fn alert_next_due(&self, not_now: &NotNow) -> Result<AlertDue> {
        let sql = format!(
            "SELECT NULL AS channel, MIN(flush_at) AS at FROM alert_groups \
             UNION ALL \
             SELECT channel, MIN(next_at) AS at FROM alert_deliveries d \
             WHERE status = 'pending'{} AND NOT EXISTS ( \
               SELECT 1 FROM alert_deliveries e WHERE e.status = 'pending' \
               AND e.channel = d.channel AND e.route = d.route \
               AND e.group_key = d.group_key AND e.n < d.n) \
             GROUP BY channel",
            not_now.clause(1)
        );
        // Built from constants and numbered parameters.
        let rows = not_now
            .bind(sqlx::query(AssertSqlSafe(sql)))
            .fetch_all(&self.pool)
            .await?;
        let mut due = AlertDue::default();
        for row in rows {
            let at: Option<i64> = row.try_get("at")?;
            match (row.try_get::<Option<String>, _>("channel")?, at) {
                (None, at) => due.flush_at = at,
                (Some(channel), Some(at)) => {
                    due.deliveries.insert(channel, at);
                }
                (Some(_), None) => {}
            }
        }
        Ok(due)
    }

    /// Marks deliveries `ns` delivered at `now` (ms), a few statements for
    /// any number.
    pub async fn alert_delivered(&self, ns: &[i64], now: i64) -> Result<()> {
        let mut tx = self.write_pool().begin().await?;
        self.delivered_in(&mut tx, ns, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delivered_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        ns: &[i64],
        now: i64,
    ) -> Result<()> {
        let set = format!(
            "UPDATE alert_deliveries SET attempts = attempts + 1, status = 'delivered', \
             delivered_at = {}, updated_at = {}",
            placeholders(self.backend, 1, 1),
            placeholders(self.backend, 2, 1)
        );
        self.update_each(tx, &set, &[now, now], ns).await
    }

    /// Puts off deliveries `ns` to `next_at` (ms) without counting an
    /// attempt: their channel is held (`Retry-After`) or rate limited.
    pub async fn alert_put_off(&self, ns: &[i64], next_at: i64) -> Result<()> {
        let mut tx = self.write_pool().begin().await?;
        let set = format!(
            "UPDATE alert_deliveries SET next_at = {}",
            placeholders(self.backend, 1, 1)
        );
        self.update_each(&mut tx, &set, &[next_at], ns).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs `set` (an `UPDATE ... SET` whose parameters, numbered from 1,
    /// are `values`) on the deliveries `ns`, many per statement: every
    /// value bound, none written into the text.
    async fn update_each(
        &self,
        tx: &mut Transaction<'static, Any>,
        set: &str,
        values: &[i64],
        ns: &[i64],
    ) -> Result<()> {
        for chunk in chunks(ns) {
            let list = placeholders(self.backend, values.len() + 1, chunk.len());
            let sql = format!("{set} WHERE n IN ({list})");
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for value in values {
                query = query.bind(*value);
            }
            for n in chunk {
                query = query.bind(*n);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Removes routed events from the outbox, many per statement.
    pub(super) async fn consume_outbox(
        &self,
        tx: &mut Transaction<'static, Any>,
        seqs: &[i64],
    ) -> Result<()> {
        insert_many(
            tx,
            self.backend,
            "DELETE FROM alert_outbox WHERE event_seq IN (VALUES ",
            ")",
            1,
            seqs,
            |q, seq| q.bind(*seq),
        )
        .await
    }
}

/// `rows` groups of `columns` placeholders: `(?, ?), (?, ?)`.
fn rows_of(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(backend, r * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `items` in chunks of the sizes in [`CHUNKS`].
fn chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = CHUNKS.into_iter().find(|&c| c <= items.len()).unwrap_or(1);
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

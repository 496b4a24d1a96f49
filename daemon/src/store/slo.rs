//! SLO slices (issue 16): what the writer judged of each (SLO, entity,
//! slice), added to in the run's transaction, read back per SLO for the
//! figures, deleted once older than the longest window; and, for the lists,
//! each (SLO, entity)'s sums over the window with its rank key and whether
//! the SLO covers it.
//!
//! It keeps counts and derives the state from them as they accumulate (a
//! slice with a bad event is bad, one marked excluded stays excluded); it
//! must not judge an event, compute figures nor decide which entities an
//! SLO covers (the writer and `slo` do). The rank key is the one
//! [`Ranking::key`] computes, with the same IEEE operations on the same whole
//! numbers, so that the database sorts as the figures would.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::model::{count, entity_key, parse_entity_key};
use super::write::insert_many;
use super::{Backend, Result, Store, StoreError, placeholders};
use crate::health::EntityRef;
use crate::slo::figures::lookback_start;
use crate::slo::{Budgeting, Counts, Lookback, NO_BUDGET, Ranking, Slice, SliceState, Slo, Totals};

/// What one or more events add to one slice.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceDelta {
    /// The SLO's name.
    pub slo: Arc<str>,
    pub entity: EntityRef,
    /// The slice's start, ms since 1970.
    pub start: i64,
    pub good: u64,
    pub total: u64,
    /// A maintenance window or a mute covered the entity in the slice.
    pub excluded: bool,
    /// Why an event was bad (or why the slice is excluded).
    pub reason: Option<String>,
}

impl SliceDelta {
    fn state(&self) -> &'static str {
        if self.excluded {
            "excluded"
        } else if self.good < self.total {
            "bad"
        } else {
            "good"
        }
    }

    /// Folds a later delta of the same slice into this one.
    fn merge(&mut self, later: &SliceDelta) {
        self.good += later.good;
        self.total += later.total;
        self.excluded |= later.excluded;
        if self.reason.is_none() {
            self.reason.clone_from(&later.reason);
        }
    }
}

/// A stored slice with the entity it is of and why it is bad.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSlice {
    pub entity: EntityRef,
    pub slice: Slice,
    pub reason: Option<String>,
}

/// Adds `deltas` to their slices, one statement row per slice.
pub(super) async fn write_slices<'a>(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    deltas: impl Iterator<Item = &'a SliceDelta>,
) -> Result<()> {
    let mut merged: BTreeMap<(Arc<str>, String, i64), SliceDelta> = BTreeMap::new();
    for d in deltas {
        let key = (d.slo.clone(), entity_key(&d.entity), d.start);
        match merged.get_mut(&key) {
            Some(existing) => existing.merge(d),
            None => {
                merged.insert(key, d.clone());
            }
        }
    }
    let rows: Vec<(String, SliceDelta)> = merged
        .into_iter()
        .map(|((_, entity, _), d)| (entity, d))
        .collect();
    insert_many(
        tx,
        backend,
        "INSERT INTO slo_slices (slo, entity, start, state, good, total, reason) VALUES ",
        " ON CONFLICT (slo, entity, start) DO UPDATE SET \
         good = slo_slices.good + excluded.good, \
         total = slo_slices.total + excluded.total, \
         state = CASE WHEN slo_slices.state = 'excluded' OR excluded.state = 'excluded' \
         THEN 'excluded' WHEN slo_slices.good + excluded.good < slo_slices.total + excluded.total \
         THEN 'bad' ELSE 'good' END, \
         reason = COALESCE(slo_slices.reason, excluded.reason)",
        7,
        &rows,
        |q, (entity, d)| {
            q.bind(d.slo.as_ref())
                .bind(entity.as_str())
                .bind(d.start)
                .bind(d.state())
                .bind(count(d.good))
                .bind(count(d.total))
                .bind(d.reason.as_deref())
        },
    )
    .await?;
    resum_touched(tx, backend, &rows).await
}

/// The `slo_totals` columns, in [`STATES`] order, each with what it sums.
const STATES: [&str; 3] = ["good", "bad", "excluded"];

/// `SUM(weight * ...)` (a BIGINT: Postgres sums BIGINTs as NUMERIC) of each `slo_totals` column over `slo_slices` rows
/// (named `{at}state`, `{at}good`...), in the order of [`totals_columns`].
fn sums(weight: &str, at: &str) -> Vec<String> {
    STATES
        .iter()
        .flat_map(|state| {
            let is = format!("CASE WHEN {at}state = '{state}' THEN");
            [
                format!("CAST(SUM({weight} * ({is} 1 ELSE 0 END)) AS BIGINT)"),
                format!(
                    "CAST(SUM({weight} * ({is} CASE WHEN {at}good < {at}total THEN {at}good \
                     ELSE {at}total END ELSE 0 END)) AS BIGINT)"
                ),
                format!("CAST(SUM({weight} * ({is} {at}total ELSE 0 END)) AS BIGINT)"),
            ]
        })
        .collect()
}

fn totals_columns() -> Vec<String> {
    STATES
        .iter()
        .flat_map(|state| ["slices", "good", "total"].map(|what| format!("{state}_{what}")))
        .collect()
}

/// After slices are written: the sums of each (SLO, entity) that got a
/// slice inside its SLO's summed span (late data) are taken again from its
/// slices, and its rank key with them; a slice in progress is past the span
/// and costs only the join.
async fn resum_touched(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    rows: &[(String, SliceDelta)],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // A read moving a span holds the spans until it commits: waiting for
    // it here makes this write see the span it left, even a first one (no
    // row to lock yet).
    lock_spans(tx, backend, "SHARE").await?;
    let columns = totals_columns();
    let summed: Vec<String> = sums("1", "s.")
        .iter()
        .zip(&columns)
        .map(|(sum, c)| format!("{sum} AS {c}"))
        .collect();
    let head = format!(
        "INSERT INTO slo_totals (slo, entity, {}, rank_key) SELECT x.slo, x.entity, {}, {} FROM \
         (SELECT s.slo AS slo, s.entity AS entity, {} FROM \
         (SELECT DISTINCT v.column1 AS slo, v.column2 AS entity, p.since, p.until FROM (VALUES ",
        columns.join(", "),
        prefixed("x.", &columns),
        rank_sql(&|c| format!("x.{c}"), "p."),
        summed.join(", "),
    );
    let tail = format!(
        ") AS v JOIN slo_spans p ON p.slo = v.column1 AND v.column3 >= p.since \
         AND v.column3 < p.until) AS d JOIN slo_slices s ON s.slo = d.slo AND s.entity = d.entity \
         AND s.start >= d.since AND s.start < d.until GROUP BY s.slo, s.entity) AS x \
         JOIN slo_spans p ON p.slo = x.slo WHERE true \
         ON CONFLICT (slo, entity) DO UPDATE SET {}, rank_key = excluded.rank_key",
        columns
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    insert_many(tx, backend, &head, &tail, 3, rows, |q, (entity, d)| {
        q.bind(d.slo.as_ref()).bind(entity.as_str()).bind(d.start)
    })
    .await
}

/// `columns` each with `prefix`, comma-separated.
fn prefixed(prefix: &str, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rank key ([`Ranking::key`]) of the `slo_totals` sums `col` names,
/// under the counting of the `slo_spans` row `{p}` names: the same
/// operations in the same order, on the same whole numbers (`allowed`, `1 -
/// target`, is the double Rust computed).
fn rank_sql(col: &dyn Fn(&str) -> String, p: &str) -> String {
    const REAL: &str = "DOUBLE PRECISION";
    let excluded = col("excluded_slices");
    let stored = format!(
        "({} + {} + {excluded})",
        col("good_slices"),
        col("bad_slices")
    );
    let no_data = format!("(CASE WHEN {p}judged > {stored} THEN {p}judged - {stored} ELSE 0 END)");
    let when = |policy: &str, verdict: &str, n: &str| {
        format!("(CASE WHEN {p}{policy} = '{verdict}' THEN {n} ELSE 0 END)")
    };
    // Timeslices: a slice is a unit.
    let slices_bad = format!(
        "({} + {} + {})",
        col("bad_slices"),
        when("no_data", "bad", &no_data),
        when("excluded", "bad", &excluded)
    );
    let left_out = format!(
        "({} + {})",
        when("no_data", "excluded", &no_data),
        when("excluded", "excluded", &excluded)
    );
    let counted =
        format!("(CASE WHEN {p}slices > {left_out} THEN {p}slices - {left_out} ELSE 0 END)");
    // Occurrences: an event is a unit; excluded slices' events count unless
    // excluded slices are left out.
    let events = |what: &str| {
        format!(
            "({} + {} + (CASE WHEN {p}excluded = 'excluded' THEN 0 ELSE {} END))",
            col(&format!("good_{what}")),
            col(&format!("bad_{what}")),
            col(&format!("excluded_{what}"))
        )
    };
    let (good, all) = (events("good"), events("total"));
    let events_bad = format!("({all} - {good})");
    let timeslices = format!("{p}budgeting = 'timeslices'");
    let total = format!(
        "(CASE WHEN {timeslices} THEN {p}allowed * CAST({counted} AS {REAL}) \
         ELSE {p}allowed * (CAST({good} AS {REAL}) + CAST({events_bad} AS {REAL})) END)"
    );
    let bad = format!("(CASE WHEN {timeslices} THEN {slices_bad} ELSE {events_bad} END)");
    format!(
        "(CASE WHEN {total} > 0 THEN ({total} - CAST({bad} AS {REAL})) / {total} \
         ELSE CAST({NO_BUDGET} AS {REAL}) END)"
    )
}

/// Sets the rank key of `slo`'s rows from their sums and the counting its
/// span holds: of those with stored slices in `[a, b)` or `[c, d)` when
/// `touched` gives them (a span move that did not change the counting),
/// else of all. A row the lists do not show (not covered, no stored slice)
/// gets none.
async fn rerank(
    tx: &mut Transaction<'static, Any>,
    slo: &str,
    touched: Option<[(i64, i64); 2]>,
) -> Result<()> {
    let col = |c: &str| format!("slo_totals.{c}");
    let listed = format!(
        "slo_totals.covered = 1 OR {} + {} + {} > 0",
        col("good_slices"),
        col("bad_slices"),
        col("excluded_slices")
    );
    let only = if touched.is_some() {
        " AND entity IN (SELECT entity FROM slo_slices WHERE slo = $1 \
         AND ((start >= $2 AND start < $3) OR (start >= $4 AND start < $5)))"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE slo_totals SET rank_key = (SELECT CASE WHEN {listed} THEN {} END \
         FROM slo_spans p WHERE p.slo = slo_totals.slo) WHERE slo = $1{only}",
        rank_sql(&col, "p.")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(slo);
    if let Some([(a, b), (c, d)]) = touched {
        query = query.bind(a).bind(b).bind(c).bind(d);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Marks each (SLO, entity) of `members` covered by its SLO, with zero
/// sums when it has no row yet, and its rank key from the SLO's span (none
/// before the SLO's first read, which ranks every row).
pub(super) async fn write_members(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    members: impl Iterator<Item = (&str, String)>,
) -> Result<()> {
    // One row each: an upsert may not touch a row twice.
    let rows: Vec<(&str, String)> = members
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    lock_spans(tx, backend, "SHARE").await?;
    let columns = totals_columns();
    let zero = |_: &str| "0".to_owned();
    let head = format!(
        "INSERT INTO slo_totals (slo, entity, {}, covered, rank_key) SELECT v.column1, v.column2, {}, 1, \
         CASE WHEN p.slo IS NOT NULL THEN {} END FROM (VALUES ",
        columns.join(", "),
        vec!["0"; columns.len()].join(", "),
        rank_sql(&zero, "p."),
    );
    let tail = ") AS v LEFT JOIN slo_spans p ON p.slo = v.column1 WHERE true \
         ON CONFLICT (slo, entity) DO UPDATE SET covered = 1, \
         rank_key = COALESCE(slo_totals.rank_key, excluded.rank_key)";
    insert_many(tx, backend, &head, tail, 2, &rows, |q, (slo, entity)| {
        q.bind(*slo).bind(entity.as_str())
    })
    .await
}

/// Moves the span summed for `slo` from `[since, until)` to
/// `[to_since, to_until)` (`to_since <= until`, neither end going back):
/// adds the slices that entered, takes off those that left.
async fn move_span(
    tx: &mut Transaction<'static, Any>,
    slo: &str,
    (since, until): (i64, i64),
    (to_since, to_until): (i64, i64),
) -> Result<()> {
    let columns = totals_columns();
    let sql = format!(
        "INSERT INTO slo_totals (slo, entity, {}) SELECT slo, entity, {} FROM slo_slices \
         WHERE slo = $1 AND ((start >= $2 AND start < $3) OR (start >= $4 AND start < $5)) \
         GROUP BY slo, entity \
         ON CONFLICT (slo, entity) DO UPDATE SET {}",
        columns.join(", "),
        sums("(CASE WHEN start >= $4 THEN 1 ELSE -1 END)", "").join(", "),
        columns
            .iter()
            .map(|c| format!("{c} = slo_totals.{c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    sqlx::query(AssertSqlSafe(sql))
        .bind(slo)
        .bind(since)
        .bind(to_since)
        .bind(until)
        .bind(to_until)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// The stored slices of `slo` starting in `[from, to)`: of `entity`
    /// alone, or of every entity (one query for all of them), in entity
    /// then time order.
    pub async fn slo_slices(
        &self,
        slo: &str,
        entity: Option<&EntityRef>,
        from: i64,
        to: i64,
    ) -> Result<Vec<StoredSlice>> {
        let rows = match entity {
            Some(e) => {
                sqlx::query(
                    "SELECT entity, start, state, good, total, reason FROM slo_slices \
                     WHERE slo = $1 AND entity = $2 AND start >= $3 AND start < $4 \
                     ORDER BY start",
                )
                .bind(slo)
                .bind(entity_key(e))
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT entity, start, state, good, total, reason FROM slo_slices \
                     WHERE slo = $1 AND start >= $2 AND start < $3 ORDER BY entity, start",
                )
                .bind(slo)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("entity")?;
            // A key this version never writes: skipped, as health does.
            let Some(entity) = parse_entity_key(&key) else {
                continue;
            };
            let state = match row.try_get::<String, _>("state")?.as_str() {
                "good" => SliceState::Good,
                "bad" => SliceState::Bad,
                "excluded" => SliceState::Excluded,
                other => {
                    return Err(StoreError::Corrupt(format!("slice state {other:?}")));
                }
            };
            let unsigned = |n: i64| u64::try_from(n).unwrap_or(0);
            out.push(StoredSlice {
                entity,
                slice: Slice {
                    start: row.try_get("start")?,
                    state,
                    good: unsigned(row.try_get("good")?),
                    total: unsigned(row.try_get("total")?),
                },
                reason: row.try_get("reason")?,
            });
        }
        Ok(out)
    }

    /// Deletes the slices that started before `before` (ms): older than
    /// the longest window configured. Returns how many went. The sums of a
    /// span that held some lose them in the same transaction.
    pub async fn prune_slices(&self, before: i64) -> Result<u64> {
        let mut tx = self.write_pool().begin().await?;
        lock_spans(&mut tx, self.backend, MOVING).await?;
        let spans = sqlx::query("SELECT slo, since, until FROM slo_spans WHERE since < $1")
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
        for row in spans {
            let (slo, since, until): (String, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if before <= until {
                move_span(&mut tx, &slo, (since, until), (before, until)).await?;
                sqlx::query("UPDATE slo_spans SET since = $2 WHERE slo = $1")
                    .bind(&slo)
                    .bind(before)
                    .execute(&mut *tx)
                    .await?;
                rerank(&mut tx, &slo, Some([(since, before), (until, until)])).await?;
            } else {
                forget_span(&mut tx, &slo).await?;
            }
        }
        let n = sqlx::query("DELETE FROM slo_slices WHERE start < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Makes the entities of `covered` those `slo` covers: each listed
    /// even without a slice (zero sums), the others no longer unless they
    /// have slices in the span. Writes only what changed.
    pub async fn set_slo_members(&self, slo: &str, covered: &[EntityRef]) -> Result<()> {
        let held: std::collections::HashSet<String> =
            sqlx::query("SELECT entity FROM slo_totals WHERE slo = $1 AND covered = 1")
                .bind(slo)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
        let wanted: std::collections::HashSet<String> = covered.iter().map(entity_key).collect();
        let added: Vec<&String> = wanted.difference(&held).collect();
        let gone: Vec<&String> = held.difference(&wanted).collect();
        if added.is_empty() && gone.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_pool().begin().await?;
        write_members(
            &mut tx,
            self.backend,
            added.iter().map(|e| (slo, (*e).clone())),
        )
        .await?;
        if !gone.is_empty() {
            lock_spans(&mut tx, self.backend, "SHARE").await?;
            let stored = "good_slices + bad_slices + excluded_slices";
            for chunk in gone.chunks(500) {
                let keys = placeholders(Backend::Postgres, 2, chunk.len());
                let sql = format!(
                    "UPDATE slo_totals SET covered = 0, \
                     rank_key = CASE WHEN {stored} > 0 THEN rank_key END \
                     WHERE slo = $1 AND entity IN ({keys})"
                );
                let mut query = sqlx::query(AssertSqlSafe(sql)).bind(slo);
                for key in chunk {
                    query = query.bind(key.as_str());
                }
                query.execute(&mut *tx).await?;
            }
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM slo_totals WHERE slo = $1 AND covered = 0 AND {stored} = 0"
            )))
            .bind(slo)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keeps `slo`'s sums (`slo_totals`) on the stored slices starting in
    /// `[since, until)` (slices of `calendar`, a text naming their length
    /// and zone) and their rank keys on `rank`: when either lies elsewhere
    /// it is moved there first, in a write transaction; a read in the same
    /// span (the same hour, for hour slices) writes nothing.
    async fn hold_span(
        &self,
        slo: &str,
        calendar: &str,
        (since, until): (i64, i64),
        rank: &Ranking,
    ) -> Result<()> {
        let wanted = Span {
            calendar: calendar.to_owned(),
            since,
            until,
            counting: SpanCounting::of(rank),
        };
        if read_span(&self.pool, slo).await?.as_ref() == Some(&wanted) {
            return Ok(());
        }
        let mut tx = self.write_pool().begin().await?;
        lock_spans(&mut tx, self.backend, MOVING).await?;
        let held = read_span(&mut *tx, slo).await?;
        let touched = match held {
            Some(held) if held == wanted => return Ok(()),
            // The counting changed alone (a reload): every key again.
            Some(held)
                if held.calendar == calendar && (held.since, held.until) == (since, until) =>
            {
                None
            }
            // Forward, overlapping: only the edges move, and only their
            // entities' keys unless the counting changed too (each slice
            // of a calendar month under timeslices).
            Some(held)
                if held.calendar == calendar
                    && held.since <= since
                    && held.until <= until
                    && since <= held.until =>
            {
                move_span(&mut tx, slo, (held.since, held.until), (since, until)).await?;
                (held.counting == wanted.counting)
                    .then_some([(held.since, since), (held.until, until)])
            }
            // Anything else (first read, another calendar, a longer
            // window, a clock gone back, a gap): summed again.
            _ => {
                forget_span(&mut tx, slo).await?;
                move_span(&mut tx, slo, (since, since), (since, until)).await?;
                None
            }
        };
        set_span(&mut tx, slo, &wanted).await?;
        rerank(&mut tx, slo, touched).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sums of the stored slices of `slo` in `[since, until)` (see
    /// [`Store::hold_span`]) of every entity the lists show (covered by the
    /// SLO, or with a stored slice), least budget left first as `rank`
    /// counts it ([`Ranking::key`]), ties by entity key: handed to `take`
    /// one by one until it returns `false`. They are read in that order
    /// from an index on the kept keys, a page at a time: nothing is
    /// computed nor sorted per entity on read.
    pub async fn slo_ranked(
        &self,
        slo: &str,
        calendar: &str,
        span: (i64, i64),
        rank: &Ranking,
        mut take: impl FnMut(EntityRef, Totals) -> bool,
    ) -> Result<()> {
        /// Rows of the first page; each next one is larger, up to the last.
        const PAGES: [usize; 4] = [128, 512, 2048, 8192];
        self.hold_span(slo, calendar, span, rank).await?;
        let columns = totals_columns();
        let entity = match self.backend {
            // Byte order, as Rust compares the keys (and as the index is).
            Backend::Postgres => "entity COLLATE \"C\"",
            Backend::Sqlite => "entity",
        };
        let mut after: Option<(f64, String)> = None;
        for page in PAGES.into_iter().chain(std::iter::repeat(PAGES[3])) {
            let from = if after.is_some() {
                format!(" AND (rank_key, {entity}) > ($2, $3)")
            } else {
                String::new()
            };
            let sql = format!(
                "SELECT entity, {}, rank_key FROM slo_totals WHERE slo = $1 \
                 AND rank_key IS NOT NULL{from} ORDER BY rank_key, {entity} LIMIT {page}",
                columns.join(", "),
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(slo);
            if let Some((key, entity)) = &after {
                query = query.bind(*key).bind(entity.as_str());
            }
            let rows = query.fetch_all(&self.pool).await?;
            for row in &rows {
                let key: String = row.try_get(0)?;
                let rank_key: f64 = row.try_get(1 + columns.len())?;
                let parsed = parse_entity_key(&key);
                after = Some((rank_key, key));
                let Some(entity) = parsed else {
                    continue;
                };
                let totals = totals_at(row, 1)?;
                debug_assert_eq!(
                    rank_key.to_bits(),
                    rank.key(&totals).to_bits(),
                    "the database's rank key of {entity:?} ({rank_key}) is not the figures' ({})",
                    rank.key(&totals)
                );
                if !take(entity, totals) {
                    return Ok(());
                }
            }
            if rows.len() < page {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The sums of `slo`'s stored slices in its window at `now` (ms) of
    /// every entity the lists show, least budget left first: see
    /// [`Store::slo_ranked`].
    pub async fn slo_window_ranked(
        &self,
        slo: &Slo,
        now: i64,
        take: impl FnMut(EntityRef, Totals) -> bool,
    ) -> Result<()> {
        let cal = &slo.calendar;
        let span = cal.window(slo.window, now);
        let rank = Ranking::at(&slo.counting, cal, slo.window, now);
        let calendar = format!("{:?} {}", cal.slice, cal.zone.name());
        self.slo_ranked(
            &slo.name,
            &calendar,
            (span.start, span.elapsed_end),
            &rank,
            take,
        )
        .await
    }

    /// The sums of `slo`'s stored slices over each burn-rate lookback
    /// ([`Lookback::ALL`], from [`lookback_start`]) at `now` (ms) of each
    /// of `entities` that has one, by entity key: a few queries whatever
    /// their number.
    pub async fn slo_lookback_sums(
        &self,
        slo: &Slo,
        now: i64,
        entities: &[EntityRef],
    ) -> Result<HashMap<String, [Totals; 4]>> {
        /// Entities one query names (well under any backend's limit of
        /// bound values).
        const CHUNK: usize = 500;
        let span = slo.calendar.window(slo.window, now);
        let from = Lookback::ALL.map(|l| lookback_start(&slo.calendar, &span, l));
        let mut out = HashMap::with_capacity(entities.len());
        for chunk in entities.chunks(CHUNK) {
            for (entity, sums) in self
                .slo_recent_sums(&slo.name, chunk, &from, span.elapsed_end)
                .await?
            {
                out.insert(entity_key(&entity), sums);
            }
        }
        Ok(out)
    }

    /// For each of `entities` with stored slices of `slo` in
    /// `[from[i], until)`, their sums, one [`Totals`] per start of `from`
    /// (the lookbacks of burn rates): one query for them all.
    async fn slo_recent_sums(
        &self,
        slo: &str,
        entities: &[EntityRef],
        from: &[i64; 4],
        until: i64,
    ) -> Result<Vec<(EntityRef, [Totals; 4])>> {
        let Some(&earliest) = from.iter().min() else {
            return Ok(Vec::new());
        };
        if entities.is_empty() {
            return Ok(Vec::new());
        }
        let sums_of = from
            .iter()
            .map(|f| sums(&format!("(CASE WHEN start >= {f} THEN 1 ELSE 0 END)"), "").join(", "))
            .collect::<Vec<_>>()
            .join(", ");
        let keys = placeholders(Backend::Postgres, 4, entities.len());
        let sql = format!(
            "SELECT entity, {sums_of} FROM slo_slices WHERE slo = $1 AND start >= $2 \
             AND start < $3 AND entity IN ({keys}) GROUP BY entity"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(slo)
            .bind(earliest)
            .bind(until);
        for e in entities {
            query = query.bind(entity_key(e));
        }
        let mut out = Vec::with_capacity(entities.len());
        for row in query.fetch_all(&self.pool).await? {
            let key: String = row.try_get(0)?;
            let Some(entity) = parse_entity_key(&key) else {
                continue;
            };
            let mut sums = [Totals::default(); 4];
            for (i, t) in sums.iter_mut().enumerate() {
                *t = totals_at(&row, 1 + 9 * i)?;
            }
            out.push((entity, sums));
        }
        Ok(out)
    }
}

/// The nine `slo_totals` columns of `row` from column `first` on, in
/// [`totals_columns`] order.
fn totals_at(row: &sqlx::any::AnyRow, first: usize) -> Result<Totals> {
    let mut t = Totals::default();
    for i in 0..3 {
        let n = |c: usize| -> Result<u64> {
            // A sum over no rows is NULL on some backends.
            let v: Option<i64> = row.try_get(first + 3 * i + c)?;
            Ok(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0))
        };
        t.slices[i] = n(0)?;
        t.good[i] = n(1)?;
        t.total[i] = n(2)?;
    }
    Ok(t)
}

/// Where an SLO's sums lie and what their rank keys were taken with: a
/// `slo_spans` row.
#[derive(Debug, PartialEq)]
struct Span {
    calendar: String,
    since: i64,
    until: i64,
    counting: SpanCounting,
}

/// A [`Ranking`] as `slo_spans` keeps it, for the database's rank keys.
#[derive(Debug, PartialEq)]
struct SpanCounting {
    judged: i64,
    slices: i64,
    /// `1 - target`, as Rust computes it.
    allowed: f64,
    budgeting: &'static str,
    no_data: &'static str,
    excluded: &'static str,
}

impl SpanCounting {
    fn of(rank: &Ranking) -> Self {
        let c = &rank.counting;
        let counts = |v: Counts| match v {
            Counts::Good => "good",
            Counts::Bad => "bad",
            Counts::Excluded => "excluded",
        };
        SpanCounting {
            judged: count(rank.judged),
            slices: count(rank.slices),
            allowed: 1.0 - c.target,
            budgeting: match c.budgeting {
                Budgeting::Timeslices => "timeslices",
                Budgeting::Occurrences => "occurrences",
            },
            no_data: counts(c.no_data),
            excluded: counts(c.excluded),
        }
    }
}

/// The span `slo_spans` holds for `slo`, if any.
async fn read_span<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    slo: &str,
) -> Result<Option<Span>> {
    let row = sqlx::query(
        "SELECT calendar, since, until, judged, slices, allowed, budgeting, no_data, excluded \
         FROM slo_spans WHERE slo = $1",
    )
    .bind(slo)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    // A text this version does not write: taken as another counting.
    let known = |text: String| -> &'static str {
        ["timeslices", "occurrences", "good", "bad", "excluded"]
            .into_iter()
            .find(|k| *k == text)
            .unwrap_or("")
    };
    Ok(Some(Span {
        calendar: row.try_get(0)?,
        since: row.try_get(1)?,
        until: row.try_get(2)?,
        counting: SpanCounting {
            judged: row.try_get(3)?,
            slices: row.try_get(4)?,
            allowed: row.try_get(5)?,
            budgeting: known(row.try_get(6)?),
            no_data: known(row.try_get(7)?),
            excluded: known(row.try_get(8)?),
        },
    }))
}

/// The lock a transaction moving spans takes: one at a time, and none
/// while a write sums against them.
const MOVING: &str = "SHARE ROW EXCLUSIVE";

/// On Postgres, locks `slo_spans` in `mode` until the transaction ends:
/// `SHARE` for a write that sums against the spans (writes go on together),
/// [`MOVING`] to move them. A table lock, not row locks, so that the first
/// span of an SLO (no row yet) is covered too. SQLite writes one at a time
/// already.
async fn lock_spans(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    mode: &str,
) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query(AssertSqlSafe(format!(
            "LOCK TABLE slo_spans IN {mode} MODE"
        )))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Records the span `slo`'s sums cover and the counting of its keys.
async fn set_span(tx: &mut Transaction<'static, Any>, slo: &str, span: &Span) -> Result<()> {
    let c = &span.counting;
    sqlx::query(
        "INSERT INTO slo_spans (slo, calendar, since, until, judged, slices, allowed, budgeting, \
         no_data, excluded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (slo) DO UPDATE SET calendar = excluded.calendar, since = excluded.since, \
         until = excluded.until, judged = excluded.judged, slices = excluded.slices, \
         allowed = excluded.allowed, budgeting = excluded.budgeting, \
         no_data = excluded.no_data, excluded = excluded.excluded",
    )
    .bind(slo)
    .bind(span.calendar.as_str())
    .bind(span.since)
    .bind(span.until)
    .bind(c.judged)
    .bind(c.slices)
    .bind(c.allowed)
    .bind(c.budgeting)
    .bind(c.no_data)
    .bind(c.excluded)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops `slo`'s sums and keys: the next read sums its span again. The
/// rows of covered entities stay, at zero.
async fn forget_span(tx: &mut Transaction<'static, Any>, slo: &str) -> Result<()> {
    let zero = totals_columns()
        .iter()
        .map(|c| format!("{c} = 0"))
        .collect::<Vec<_>>()
        .join(", ");
    for sql in [
        "DELETE FROM slo_totals WHERE slo = $1 AND covered = 0".to_owned(),
        format!("UPDATE slo_totals SET {zero}, rank_key = NULL WHERE slo = $1"),
        "DELETE FROM slo_spans WHERE slo = $1".to_owned(),
    ] {
        sqlx::query(AssertSqlSafe(sql))
            .bind(slo)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

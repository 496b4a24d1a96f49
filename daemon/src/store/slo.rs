//! SLO slices (issue 16): what the writer judged of each (SLO, entity,
//! slice), added to in the run's transaction, read back per SLO for the
//! figures, deleted once older than the longest window.
//!
//! It keeps counts and derives the state from them as they accumulate (a
//! slice with a bad event is bad, one marked excluded stays excluded); it
//! must not judge an event nor compute figures (the writer and `slo` do).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};

use super::model::{count, entity_key, parse_entity_key};
use super::write::insert_many;
use super::{Backend, Result, Store, StoreError, placeholders};
use crate::health::EntityRef;
use crate::slo::figures::lookback_start;
use crate::slo::{Budgeting, Counting, Counts, Lookback, Slice, SliceState, Slo, Totals};

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
fn sums(weight: &str, at: &str) -> String {
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
        .collect::<Vec<_>>()
        .join(", ")
}

fn totals_columns() -> Vec<String> {
    STATES
        .iter()
        .flat_map(|state| ["slices", "good", "total"].map(|what| format!("{state}_{what}")))
        .collect()
}

/// After slices are written: the sums of each (SLO, entity) that got a
/// slice inside its SLO's summed span (late data) are taken again from its
/// slices; a slice in progress is past the span and costs only the join.
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
    let head = format!(
        "INSERT INTO slo_totals (slo, entity, {}) SELECT s.slo, s.entity, {} FROM \
         (SELECT DISTINCT v.column1 AS slo, v.column2 AS entity, p.since, p.until FROM (VALUES ",
        columns.join(", "),
        sums("1", "s."),
    );
    let tail = format!(
        ") AS v JOIN slo_spans p ON p.slo = v.column1 AND v.column3 >= p.since \
         AND v.column3 < p.until) AS d JOIN slo_slices s ON s.slo = d.slo AND s.entity = d.entity \
         AND s.start >= d.since AND s.start < d.until WHERE true GROUP BY s.slo, s.entity \
         ON CONFLICT (slo, entity) DO UPDATE SET {}",
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
        sums("(CASE WHEN start >= $4 THEN 1 ELSE -1 END)", ""),
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
                set_span(&mut tx, &slo, None, before, until).await?;
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

    /// Keeps `slo`'s sums (`slo_totals`) on the stored slices starting in
    /// `[since, until)` (slices of `calendar`, a text naming their length
    /// and zone): when they lie elsewhere they are moved there first, in a
    /// write transaction; a read in the same span (the same hour, for hour
    /// slices) writes nothing.
    async fn hold_span(&self, slo: &str, calendar: &str, since: i64, until: i64) -> Result<()> {
        let held = sqlx::query("SELECT calendar, since, until FROM slo_spans WHERE slo = $1")
            .bind(slo)
            .fetch_optional(&self.pool)
            .await?;
        let current = |row: &sqlx::any::AnyRow| -> Result<bool> {
            Ok(row.try_get::<String, _>(0)? == calendar
                && row.try_get::<i64, _>(1)? == since
                && row.try_get::<i64, _>(2)? == until)
        };
        if held.as_ref().map(current).transpose()?.unwrap_or(false) {
            return Ok(());
        }
        let mut tx = self.write_pool().begin().await?;
        lock_spans(&mut tx, self.backend, MOVING).await?;
        let held = sqlx::query("SELECT calendar, since, until FROM slo_spans WHERE slo = $1")
            .bind(slo)
            .fetch_optional(&mut *tx)
            .await?;
        let from = match held {
            Some(row) if row.try_get::<String, _>(0)? == calendar => {
                Some((row.try_get::<i64, _>(1)?, row.try_get::<i64, _>(2)?))
            }
            _ => None,
        };
        match from {
            // Forward, overlapping: only the edges move.
            Some((s, u)) if s <= since && u <= until && since <= u => {
                move_span(&mut tx, slo, (s, u), (since, until)).await?;
            }
            // Anything else (first read, another calendar, a longer
            // window, a clock gone back, a gap): summed again.
            _ => {
                forget_span(&mut tx, slo).await?;
                move_span(&mut tx, slo, (since, since), (since, until)).await?;
            }
        }
        set_span(&mut tx, slo, Some(calendar), since, until).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The sums of the stored slices of `slo` in `[since, until)` (see
    /// [`Store::hold_span`]) of every entity with one, least budget left
    /// first as `rank` counts it, ties by entity key: handed to `take`
    /// one by one until it returns `false`. The database ranks (one row
    /// per entity, read no further than `take` wants).
    pub async fn slo_ranked(
        &self,
        slo: &str,
        calendar: &str,
        (since, until): (i64, i64),
        rank: &Ranking,
        mut take: impl FnMut(EntityRef, Totals) -> bool,
    ) -> Result<()> {
        self.hold_span(slo, calendar, since, until).await?;
        let columns = totals_columns();
        let order = match self.backend {
            // Byte order, as Rust compares the keys.
            Backend::Postgres => "entity COLLATE \"C\"",
            Backend::Sqlite => "entity",
        };
        let sql = format!(
            "SELECT entity, {} FROM (SELECT *, {} AS left_ratio FROM slo_totals WHERE slo = $1 \
             AND good_slices + bad_slices + excluded_slices > 0) AS t \
             ORDER BY left_ratio IS NULL, left_ratio, {order}",
            columns.join(", "),
            rank.sql(),
        );
        let mut rows = sqlx::query(AssertSqlSafe(sql))
            .bind(slo)
            .bind(1.0 - rank.counting.target)
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let key: String = row.try_get(0)?;
            let Some(entity) = parse_entity_key(&key) else {
                continue;
            };
            if !take(entity, totals_at(&row, 1)?) {
                break;
            }
        }
        Ok(())
    }

    /// The sums of `slo`'s stored slices in its window at `now` (ms) of
    /// every entity with one, least budget left first: see
    /// [`Store::slo_ranked`].
    pub async fn slo_window_ranked(
        &self,
        slo: &Slo,
        now: i64,
        take: impl FnMut(EntityRef, Totals) -> bool,
    ) -> Result<()> {
        let cal = &slo.calendar;
        let span = cal.window(slo.window, now);
        let rank = Ranking {
            counting: slo.counting,
            judged: cal.count(span.start, span.elapsed_end),
            slices: cal.count(span.start, span.end),
        };
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
            .map(|f| sums(&format!("(CASE WHEN start >= {f} THEN 1 ELSE 0 END)"), ""))
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

/// What ranks an SLO's entities by budget left in the database: the
/// constants [`crate::slo::figures::budget_remaining_ratio`] takes from the
/// SLO and the clock, so that the database computes the same ratio, to the
/// bit (the same IEEE operations on the same whole numbers).
#[derive(Debug, Clone, Copy)]
pub struct Ranking {
    pub counting: Counting,
    /// Slices judged so far in the window.
    pub judged: u64,
    /// All the window's slices (a calendar month's future ones included).
    pub slices: u64,
}

impl Ranking {
    /// The remaining ratio of a `slo_totals` row, NULL while its budget is
    /// 0; `$2` is `1 - target`, bound as a double.
    fn sql(&self) -> String {
        const REAL: &str = "DOUBLE PRECISION";
        let c = &self.counting;
        let stored = "(good_slices + bad_slices + excluded_slices)";
        let (judged, slices) = (self.judged, self.slices);
        let no_data =
            format!("(CASE WHEN {judged} > {stored} THEN {judged} - {stored} ELSE 0 END)");
        let when = |verdict: Counts, of: &str| {
            if c.no_data == verdict && c.excluded == verdict {
                format!(" + {no_data} + {of}")
            } else if c.no_data == verdict {
                format!(" + {no_data}")
            } else if c.excluded == verdict {
                format!(" + {of}")
            } else {
                String::new()
            }
        };
        let (total, bad) = match c.budgeting {
            Budgeting::Timeslices => {
                let bad = format!("(bad_slices{})", when(Counts::Bad, "excluded_slices"));
                let left_out = format!("(0{})", when(Counts::Excluded, "excluded_slices"));
                let counted = format!(
                    "(CASE WHEN {slices} > {left_out} THEN {slices} - {left_out} ELSE 0 END)"
                );
                (format!("($2 * CAST({counted} AS {REAL}))"), bad)
            }
            Budgeting::Occurrences => {
                let with_excluded = c.excluded != Counts::Excluded;
                let (good, all) = if with_excluded {
                    (
                        "(good_good + bad_good + excluded_good)",
                        "(good_total + bad_total + excluded_total)",
                    )
                } else {
                    ("(good_good + bad_good)", "(good_total + bad_total)")
                };
                let bad = format!("({all} - {good})");
                (
                    format!("($2 * (CAST({good} AS {REAL}) + CAST({bad} AS {REAL})))"),
                    bad,
                )
            }
        };
        format!("(CASE WHEN {total} > 0 THEN ({total} - CAST({bad} AS {REAL})) / {total} END)")
    }
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

/// Records the span `slo`'s sums cover (the calendar kept when `None`).
async fn set_span(
    tx: &mut Transaction<'static, Any>,
    slo: &str,
    calendar: Option<&str>,
    since: i64,
    until: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO slo_spans (slo, calendar, since, until) VALUES ($1, COALESCE($2, ''), $3, $4) \
         ON CONFLICT (slo) DO UPDATE SET calendar = COALESCE($2, slo_spans.calendar), \
         since = $3, until = $4",
    )
    .bind(slo)
    .bind(calendar)
    .bind(since)
    .bind(until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Drops `slo`'s sums: the next read sums its span again.
async fn forget_span(tx: &mut Transaction<'static, Any>, slo: &str) -> Result<()> {
    for sql in [
        "DELETE FROM slo_totals WHERE slo = $1",
        "DELETE FROM slo_spans WHERE slo = $1",
    ] {
        sqlx::query(sql).bind(slo).execute(&mut **tx).await?;
    }
    Ok(())
}

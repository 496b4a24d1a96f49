//! SLO slices (issue 16): what the writer judged of each (SLO, entity,
//! slice), added to in the run's transaction, read back per SLO for the
//! figures, deleted once older than the longest window.
//!
//! It keeps counts and derives the state from them as they accumulate (a
//! slice with a bad event is bad, one marked excluded stays excluded); it
//! must not judge an event nor compute figures (the writer and `slo` do).

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{Any, Row, Transaction};

use super::model::{count, entity_key, parse_entity_key};
use super::write::insert_many;
use super::{Backend, Result, Store, StoreError};
use crate::health::EntityRef;
use crate::slo::{Slice, SliceState};

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
    .await
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
    /// the longest window configured. Returns how many went.
    pub async fn prune_slices(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM slo_slices WHERE start < $1")
            .bind(before)
            .execute(&self.write_pool())
            .await?
            .rows_affected())
    }
}

//! Batched reads: every resolver asks a loader for one entity's health, one
//! check's latest observations or one entity's history, and the loader turns
//! all the asks of one step of a query into a single statement. A dashboard
//! query then costs the same few statements for 2 flows or 100.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::health::{EntityHealth, EntityRef};
use crate::store::{Period, Rollup, Store, StoreError, StoredObservation, from_ms, to_ms};

/// Large enough that one query's asks never split into several statements.
const MAX_BATCH: usize = 20_000;

/// Current health by entity key.
pub struct HealthLoader(pub Store);

impl Loader<String> for HealthLoader {
    type Value = Arc<EntityHealth>;
    type Error = Arc<StoreError>;

    async fn load(
        &self,
        keys: &[String],
    ) -> Result<HashMap<String, Arc<EntityHealth>>, Self::Error> {
        let rows = self.0.health_of(keys).await?;
        Ok(rows.into_iter().map(|(k, h)| (k, Arc::new(h))).collect())
    }
}

/// The latest observation of each asset, by check id.
pub struct ObservationLoader(pub Store);

impl Loader<String> for ObservationLoader {
    type Value = Arc<Vec<Arc<StoredObservation>>>;
    type Error = Arc<StoreError>;

    async fn load(&self, checks: &[String]) -> Result<HashMap<String, Self::Value>, Self::Error> {
        let mut out: HashMap<String, Vec<Arc<StoredObservation>>> = HashMap::new();
        for o in self.0.latest_observations(checks).await? {
            out.entry(o.check_id.clone()).or_default().push(Arc::new(o));
        }
        Ok(out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

/// Daily buckets of one entity over `[from, to)` (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryKey {
    pub entity: EntityRef,
    pub from_ms: i64,
    pub to_ms: i64,
}

pub struct HistoryLoader(pub Store);

impl Loader<HistoryKey> for HistoryLoader {
    type Value = Arc<Vec<Rollup>>;
    type Error = Arc<StoreError>;

    async fn load(
        &self,
        keys: &[HistoryKey],
    ) -> Result<HashMap<HistoryKey, Self::Value>, Self::Error> {
        // One statement per distinct range; a dashboard asks one range.
        let mut ranges: HashMap<(i64, i64), Vec<EntityRef>> = HashMap::new();
        for k in keys {
            ranges
                .entry((k.from_ms, k.to_ms))
                .or_default()
                .push(k.entity.clone());
        }
        let mut out: HashMap<HistoryKey, Vec<Rollup>> = HashMap::new();
        for ((from, to), entities) in ranges {
            let rows = self
                .0
                .rollups_of(&entities, Period::Day, from_ms(from), from_ms(to))
                .await?;
            for entity in entities {
                out.insert(
                    HistoryKey {
                        entity,
                        from_ms: from,
                        to_ms: to,
                    },
                    Vec::new(),
                );
            }
            for r in rows {
                let key = HistoryKey {
                    entity: r.entity.clone(),
                    from_ms: from,
                    to_ms: to,
                };
                out.entry(key).or_default().push(r);
            }
        }
        let out = out.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Ok(out)
    }
}

/// One request's loaders, caching what they read: a flow list primes them
/// (see `types::prime`) so deeper fields hit the cache. Made per request so
/// nothing is served stale across requests.
pub struct Loaders {
    pub health: DataLoader<HealthLoader, HashMapCache>,
    pub observations: DataLoader<ObservationLoader, HashMapCache>,
    pub history: DataLoader<HistoryLoader, HashMapCache>,
}

impl Loaders {
    pub fn new(store: &Store) -> Self {
        fn make<L: Send + Sync + 'static>(l: L) -> DataLoader<L, HashMapCache> {
            DataLoader::with_cache(l, tokio::spawn, HashMapCache::default())
                .max_batch_size(MAX_BATCH)
                .delay(Duration::from_micros(500))
        }
        Self {
            health: make(HealthLoader(store.clone())),
            observations: make(ObservationLoader(store.clone())),
            history: make(HistoryLoader(store.clone())),
        }
    }
}

/// The `days` whole UTC days ending with today's, as Unix ms `[from, to)`.
pub fn day_range(now: SystemTime, days: u32) -> (i64, i64) {
    let today = Period::Day.bucket_start(now);
    let to = to_ms(today) + Period::Day.millis();
    (to - i64::from(days) * Period::Day.millis(), to)
}

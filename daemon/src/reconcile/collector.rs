//! [`IdCollector`]: the [`IdSink`] the daemon hands a plugin run.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::set::{IdSet, IdSetBuilder, LimitError, Limits};
use crate::plugin::IdSink;

/// Builds one [`IdSet`] per asset from the batches a plugin streams.
///
/// An asset that goes over the [`Limits`] is dropped at once (freeing its
/// memory), every later batch for it is refused with the same error, and
/// [`take`](Self::take) leaves it out: a truncated set would report ids as
/// missing that are not, or hide ids that are.
#[derive(Debug, Default)]
pub struct IdCollector {
    limits: Limits,
    assets: Mutex<BTreeMap<String, Slot>>,
}

#[derive(Debug)]
enum Slot {
    Building(IdSetBuilder),
    OverLimit(LimitError),
}

impl IdCollector {
    /// A collector whose assets have only the representation's limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collector that caps each asset at `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            assets: Mutex::default(),
        }
    }

    /// Finishes and returns every asset's set received so far (except those
    /// over the limits), leaving the collector empty. Sorting happens here,
    /// outside the lock, so a plugin still streaming is not held up; it is
    /// CPU-bound, so async callers should call this on a blocking thread.
    pub fn take(&self) -> BTreeMap<String, IdSet> {
        let assets = std::mem::take(&mut *self.lock());
        assets
            .into_iter()
            .filter_map(|(asset, slot)| match slot {
                Slot::Building(builder) => Some((asset, builder.finish())),
                Slot::OverLimit(_) => None,
            })
            .collect()
    }

    /// Nothing here panics while holding the lock (a failed allocation aborts
    /// the process instead), so a poisoned lock cannot hide a half-updated
    /// builder: it is used as is, rather than failing every later batch.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        self.assets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl IdSink for IdCollector {
    fn accept(&self, asset: &str, ids: Vec<String>) -> Result<(), String> {
        let mut assets = self.lock();
        let slot = assets
            .entry(asset.to_owned())
            .or_insert_with(|| Slot::Building(IdSetBuilder::with_limits(self.limits)));
        let result = match slot {
            Slot::Building(builder) => builder.extend(&ids),
            Slot::OverLimit(error) => Err(*error),
        };
        result.map_err(|error| {
            *slot = Slot::OverLimit(error);
            format!("ids of asset {asset:?}: {error}")
        })
    }
}

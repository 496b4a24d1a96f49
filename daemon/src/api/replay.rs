//! Replays of stored health events: what resuming subscriptions, subscribers
//! that fell behind the bus, and the `healthEvents` query read.
//!
//! Many subscribers resuming at once (every client reconnecting after a
//! restart or a network cut) want the same stored events. Reading them once
//! per subscriber took every read connection for as long as such a storm
//! lasted, and queries timed out behind it. So events are read in pages of
//! [`PAGE`] sequence numbers into a cache bounded in bytes and shared:
//! concurrent readers of one page wait for one read, and at most [`READS`]
//! replay reads use the store at once (of its 8 read connections), leaving
//! the others to queries. Each reader filters the shared page with its own
//! [`EventFilter`] and view.
//!
//! A page is complete, and cached, once an event at or beyond its last
//! sequence number is stored: the single writer commits events in sequence
//! order, so nothing can join it later. The last page, still filling, is
//! never cached; a read of it is reused only while nothing has been published
//! since it began (a subscriber listens to the bus before it replays, so what
//! is committed after that read reaches it live).
//!
//! Subscribers replay in turns: at most [`TURNS`] at once, each taking at most
//! [`TURN_EVENTS`] events, or examining one page, per turn. A turn ends before
//! its events are sent, so a client that does not read holds no turn.
//!
//! It owns this cache and these limits. It must not write, and it decides
//! nothing about what a principal may see beyond applying the filter given.

use std::sync::{Arc, Mutex, PoisonError};

use moka::future::Cache;
use tokio::sync::Semaphore;

use super::error::store_error;
use super::types::{EventFilter, Result};
use super::view::View;
use crate::events::EventBus;
use crate::store::{HealthEvent, Store, StoreError};

/// Sequence numbers per page: page `k` holds `k * PAGE + 1 ..= (k + 1) * PAGE`.
const PAGE: i64 = 500;
/// Replay reads using the store at once.
const READS: usize = 2;
/// Subscribers replaying at once.
const TURNS: usize = 8;
/// Events one subscriber takes per turn.
const TURN_EVENTS: usize = 32;
/// What the cached pages may weigh, roughly, in bytes.
const CACHE_BYTES: u64 = 32 << 20;

/// The stored events of one page.
#[derive(Debug)]
struct Page {
    /// Oldest first.
    events: Vec<Arc<HealthEvent>>,
    /// The first sequence number stored after this page's. None is stored in
    /// between (numbers a rolled-back write used, or retention removed), so a
    /// reader goes on from there rather than reading empty pages.
    next: Option<i64>,
}

impl Page {
    /// Roughly what the page holds in memory, for the cache's bound.
    fn weight(&self) -> u32 {
        let bytes: usize = (self.events.iter())
            .map(|e| {
                let reasons: usize = e.reasons.iter().map(|r| 96 + r.message.len()).sum();
                std::mem::size_of::<HealthEvent>() + 64 + reasons
            })
            .sum();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// A page read that is not cached.
#[derive(Debug)]
enum Uncached {
    /// The last page, still filling: what it held when read, and how many
    /// messages the bus had published when the read began.
    Filling(Arc<Page>, u64),
    Failed(StoreError),
}

/// The last filling page read, while it is still current.
struct Filling {
    index: i64,
    published: u64,
    page: Arc<Page>,
}

/// Matching events read after a sequence number.
pub struct Read {
    /// Oldest first.
    pub events: Vec<Arc<HealthEvent>>,
    /// The last sequence number examined: go on after it.
    pub last: i64,
    /// Every stored event was examined: what comes next comes live.
    pub caught_up: bool,
}

/// The shared replay of stored events.
pub struct Replay {
    store: Store,
    bus: EventBus,
    pages: Cache<i64, Arc<Page>>,
    filling: Mutex<Option<Filling>>,
    reads: Semaphore,
    turns: Semaphore,
}

impl Replay {
    pub fn new(store: Store, bus: EventBus) -> Self {
        Replay {
            store,
            bus,
            pages: Cache::builder()
                .weigher(|_, page: &Arc<Page>| page.weight())
                .max_capacity(CACHE_BYTES)
                .build(),
            filling: Mutex::new(None),
            reads: Semaphore::new(READS),
            turns: Semaphore::new(TURNS),
        }
    }

    /// One subscriber's turn: the events after `after` that pass `filter`,
    /// at most [`TURN_EVENTS`] of them, waiting first for a turn.
    pub async fn turn(&self, view: &View, filter: &EventFilter, after: i64) -> Result<Read> {
        let _turn = self
            .turns
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.read(view, filter, after, TURN_EVENTS, PAGE as usize)
            .await
    }

    /// At most `limit` events after `after` that pass `filter`, reading on
    /// until that many are found or every stored event was examined.
    pub async fn events(
        &self,
        view: &View,
        filter: &EventFilter,
        after: i64,
        limit: usize,
    ) -> Result<Read> {
        self.read(view, filter, after, limit, usize::MAX).await
    }

    /// Up to `limit` matching events after `after`, stopping once `budget`
    /// events have been examined.
    async fn read(
        &self,
        view: &View,
        filter: &EventFilter,
        mut after: i64,
        limit: usize,
        budget: usize,
    ) -> Result<Read> {
        let mut events = Vec::new();
        let mut examined = 0;
        loop {
            let index = after.div_euclid(PAGE);
            let (page, complete) = self.page(index).await?;
            let unseen = page.events.partition_point(|e| e.seq <= after);
            for event in &page.events[unseen..] {
                after = event.seq;
                examined += 1;
                if filter.matches(view, event) {
                    events.push(event.clone());
                    if events.len() == limit {
                        return Ok(Read {
                            events,
                            last: after,
                            caught_up: false,
                        });
                    }
                }
            }
            if !complete {
                return Ok(Read {
                    events,
                    last: after,
                    caught_up: true,
                });
            }
            after = after.max((index + 1) * PAGE);
            if let Some(next) = page.next {
                after = after.max(next - 1);
            }
            if examined >= budget {
                return Ok(Read {
                    events,
                    last: after,
                    caught_up: false,
                });
            }
        }
    }

    /// Page `index`, and whether it is complete.
    async fn page(&self, index: i64) -> Result<(Arc<Page>, bool)> {
        if let Some(page) = self.pages.get(&index).await {
            return Ok((page, true));
        }
        if let Some(f) = &*self.filling.lock().unwrap_or_else(PoisonError::into_inner)
            && f.index == index
            && f.published == self.bus.published()
        {
            return Ok((f.page.clone(), false));
        }
        match self.pages.try_get_with(index, self.load(index)).await {
            Ok(page) => Ok((page, true)),
            Err(uncached) => match &*uncached {
                Uncached::Filling(page, published) => {
                    *self.filling.lock().unwrap_or_else(PoisonError::into_inner) = Some(Filling {
                        index,
                        published: *published,
                        page: page.clone(),
                    });
                    Ok((page.clone(), false))
                }
                Uncached::Failed(e) => Err(store_error(e)),
            },
        }
    }

    /// Reads page `index` from the store: cached when complete, handed back
    /// as [`Uncached::Filling`] (to every reader waiting for it) when not.
    async fn load(&self, index: i64) -> std::result::Result<Arc<Page>, Uncached> {
        let _read = self
            .reads
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let published = self.bus.published();
        let (start, end) = (index * PAGE, (index + 1) * PAGE);
        // One more than a page: the first event beyond it, when stored, says
        // the page is complete and where the next stored one is.
        let rows =
            (self.store.events_after(start, PAGE as u32 + 1).await).map_err(Uncached::Failed)?;
        let complete = rows.last().is_some_and(|e| e.seq >= end);
        let next = rows.iter().find(|e| e.seq > end).map(|e| e.seq);
        let events = (rows.into_iter())
            .filter(|e| e.seq <= end)
            .map(Arc::new)
            .collect();
        let page = Arc::new(Page { events, next });
        if complete {
            Ok(page)
        } else {
            Err(Uncached::Filling(page, published))
        }
    }
}

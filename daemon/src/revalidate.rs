//! Stale-while-revalidate: answers kept per key, each built once however
//! many ask for it at the same time, and, once aged, still served at once
//! while a single refresh builds its successor. The API's answers
//! ([`crate::api::cache`]) and the public pages ([`crate::statuspage`]) are
//! kept this way.
//!
//! It owns the slots and who builds, waits or is served what; it must not
//! decide when an answer is fresh, aged or expired, what counts as a
//! failure, nor how many answers are kept: each caller's policy does (a
//! [`Freshness`] judgement, a failure test and a `make_room` bound).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;
use tokio::time::Instant;

/// How a kept answer serves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// As it is; while it is still being built, the request waits for it.
    Fresh,
    /// At once, while one request's refresh builds its successor.
    Aged,
    /// Not at all: the request builds a new one (or waits for one).
    Expired,
}

/// One key's answer, built once by whichever request comes first; those
/// arriving meanwhile wait for it rather than build it again.
pub struct Slot<T, V> {
    /// What the answer was built at (a version), for the caller's judgement.
    pub tag: T,
    /// When it was built, or its build began while it runs.
    pub at: Instant,
    answer: OnceCell<V>,
    /// A refresh of this answer is running.
    refreshing: AtomicBool,
}

impl<T, V> Slot<T, V> {
    pub fn new(tag: T, at: Instant, answer: Option<V>) -> Arc<Self> {
        Arc::new(Slot {
            tag,
            at,
            answer: OnceCell::new_with(answer),
            refreshing: AtomicBool::new(false),
        })
    }

    /// The answer, once built.
    pub fn answer(&self) -> Option<&V> {
        self.answer.get()
    }

    /// This slot's answer: the one built, the one being built, or the one
    /// `build` makes.
    pub async fn join<F, Fut>(&self, build: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
        V: Clone,
    {
        self.answer.get_or_init(build).await.clone()
    }
}

/// What a request does.
pub enum Plan<T, V> {
    /// Wait for this slot's answer, or build it ([`Slot::join`]).
    Join(Arc<Slot<T, V>>),
    /// Answer with this kept one: another request refreshes it.
    Serve(V),
    /// Build the successor of this aged slot (whose answer comes second)
    /// and hand it to [`Slots::refreshed`]; the others are served the aged
    /// one meanwhile.
    Refresh(Arc<Slot<T, V>>, V),
}

type Map<K, T, V> = HashMap<K, Arc<Slot<T, V>>>;

/// The kept answers, by key.
pub struct Slots<K, T, V> {
    map: Mutex<Map<K, T, V>>,
}

impl<K, T, V> Default for Slots<K, T, V> {
    fn default() -> Self {
        Slots {
            map: Mutex::default(),
        }
    }
}

impl<K: Eq + Hash, T, V: Clone> Slots<K, T, V> {
    /// The map, also for the callers' bounds (and tests).
    pub fn lock(&self) -> MutexGuard<'_, Map<K, T, V>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a request for `key` does: `judge` says how the kept slot serves
    /// it; when there is none it can use, a new slot at `tag` takes its
    /// place, after `make_room` has bounded the map.
    pub fn plan<Q>(
        &self,
        key: &Q,
        tag: T,
        judge: impl FnOnce(&Slot<T, V>) -> Freshness,
        make_room: impl FnOnce(&mut Map<K, T, V>),
    ) -> Plan<T, V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.lock();
        if let Some(kept) = map.get(key) {
            match judge(kept) {
                Freshness::Fresh => return Plan::Join(kept.clone()),
                Freshness::Aged => {
                    return match kept.answer() {
                        Some(answer) if kept.refreshing.swap(true, Ordering::AcqRel) => {
                            Plan::Serve(answer.clone())
                        }
                        Some(answer) => Plan::Refresh(kept.clone(), answer.clone()),
                        None => Plan::Join(kept.clone()),
                    };
                }
                Freshness::Expired => {}
            }
        }
        make_room(&mut map);
        let slot = Slot::new(tag, Instant::now(), None);
        map.insert(key.to_owned(), slot.clone());
        Plan::Join(slot)
    }

    /// Puts `answer`, built at `tag` by the refresh of `old`, in `old`'s
    /// place, unless another slot has taken that place meanwhile (a request
    /// that could not wait). A failure does not replace a success: `old`
    /// stays, and the next request that finds it aged refreshes it again.
    pub fn refreshed(
        &self,
        key: K,
        old: &Arc<Slot<T, V>>,
        tag: T,
        answer: V,
        failed: impl Fn(&V) -> bool,
    ) {
        let mut map = self.lock();
        if failed(&answer) && old.answer().is_some_and(|kept| !failed(kept)) {
            old.refreshing.store(false, Ordering::Release);
            return;
        }
        if map.get(&key).is_some_and(|kept| Arc::ptr_eq(kept, old)) {
            map.insert(key, Slot::new(tag, Instant::now(), Some(answer)));
        }
    }
}

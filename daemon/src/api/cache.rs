//! Answers to read-only queries, kept while nothing they read can have
//! changed: dashboards poll the same query from many screens, and a status
//! page of 100 flows × 10 systems is a megabyte of JSON to build.
//!
//! An answer is reused only for the same token, query, operation and
//! variables, while no event or run has been published and no mutation made
//! since it was built, the config in force is the same, and for at most
//! [`MAX_AGE`] (fields that move with the clock, like a freshness age, are
//! that much behind, or [`MAX_STALE`] while a successor is being built).
//! Failures of the daemon itself are not reused: the requests that waited
//! for the build that failed get the failure, the next one builds again.
//! While one request builds an answer, the same requests wait for it
//! instead of building it again: a hundred screens refreshing at once cost one build.
//! An answer that has only aged (nothing changed) is still served while one
//! request builds its successor, so steady polling never stalls on a rebuild
//! (for the pages in-process, that one is served the aged answer too and a
//! task builds the successor: [`AnswerCache::get_or_build_behind`]).
//!
//! The cache is bounded in entries and in bytes ([`BUDGET`]): when a new
//! answer is to be built and the kept ones reach either bound, it starts
//! afresh. The answers kept are thus at most [`BUDGET`] bytes plus those being
//! built at that moment (each at most `api.limits.max_answer`). A weighted
//! cache (moka) does not fit: an answer's weight is known only once it is
//! built, after the slot that others wait on is in place.
//!
//! This module is the API's policy (versions, ages, bounds); who builds,
//! waits or is served an aged answer is [`crate::revalidate`]'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::revalidate::{Freshness, Plan, Slots};

/// How long an answer may be reused at most.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// How old an answer that has only aged may be and still be served while
/// its successor is built: an older one (nobody asked for a while, or its
/// rebuild hangs) is built again while the request waits, so no page shows
/// figures that moved with the clock (a freshness age) more than this far
/// behind.
pub const MAX_STALE: Duration = Duration::from_secs(10);
/// How many answers are kept; when full, the cache starts afresh.
const CAPACITY: usize = 256;
/// How many bytes of answers are kept; past it, the cache starts afresh.
pub const BUDGET: usize = 64 << 20;

/// What an answer depends on besides the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// [`EventBus::published`](crate::events::EventBus::published).
    pub published: u64,
    pub mutations: u64,
    /// The address of the config in force.
    pub config: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub token: String,
    pub query: String,
    pub operation: Option<String>,
    pub variables: String,
}

type Slot = crate::revalidate::Slot<Version, Option<Bytes>>;

#[derive(Default)]
pub struct AnswerCache {
    /// `None` answers are failures of the daemon: given to the requests
    /// that waited for that build, never kept for a later one.
    slots: Slots<Key, Version, Option<Bytes>>,
    mutations: AtomicU64,
}

impl AnswerCache {
    /// Marks every kept answer stale: a mutation may have changed anything.
    pub fn mutated(&self) {
        self.mutations.fetch_add(1, Ordering::AcqRel);
    }

    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::Acquire)
    }

    /// The answer to `key` at `version`: a kept one, the one another request
    /// is building, or the one `build` makes (kept when it is `Some`).
    pub async fn get_or_build<F, Fut>(&self, key: Key, version: Version, build: F) -> Option<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Option<Bytes>>,
    {
        match self.plan(&key, version, false) {
            Plan::Join(slot) => slot.join(build).await,
            Plan::Serve(body) => body,
            Plan::Refresh(old, _) => {
                let body = build().await;
                (self.slots).refreshed(key, &old, version, body.clone(), Option::is_none);
                body
            }
        }
    }

    /// As [`AnswerCache::get_or_build`], except that the request which finds
    /// an aged answer is served it too, and a task of its own builds the
    /// successor: no request waits for a rebuild of an answer that has only
    /// aged, nor of one that events or runs published since have outdated
    /// (up to [`MAX_STALE`] old; a mutation or another config still makes
    /// the request wait, so a person sees their own action's effect). Pages
    /// in-process use it ([`super::InProcess`]), whose answers feed rendered
    /// pages a person waits for: each page holds the event sequence its
    /// answer was read at, and its live stream replays every change after
    /// it, so a page served from an outdated answer catches up at once.
    pub async fn get_or_build_behind<F, Fut>(
        self: &Arc<Self>,
        key: Key,
        version: Version,
        build: F,
    ) -> Option<Bytes>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Option<Bytes>> + Send + 'static,
    {
        match self.plan(&key, version, true) {
            Plan::Join(slot) => slot.join(build).await,
            Plan::Serve(body) => body,
            Plan::Refresh(old, kept) => {
                let cache = self.clone();
                tokio::spawn(async move {
                    let body = build().await;
                    (cache.slots).refreshed(key, &old, version, body, Option::is_none);
                });
                kept
            }
        }
    }

    /// What a request for `key` at `version` does; `behind`: whether a kept
    /// answer that only published events outdate may be served while its
    /// successor is built.
    fn plan(&self, key: &Key, version: Version, behind: bool) -> Plan<Version, Option<Bytes>> {
        let judge = |kept: &Slot| {
            let same = kept.tag == version;
            let outdated_by_events = behind
                && kept.tag.mutations == version.mutations
                && kept.tag.config == version.config;
            let age = kept.at.elapsed();
            match kept.answer() {
                // A build that failed is not an answer: the next request
                // builds again (those that waited on it got the failure).
                Some(None) => Freshness::Expired,
                _ if same && age < MAX_AGE => Freshness::Fresh,
                _ if (same || outdated_by_events) && age < MAX_STALE => Freshness::Aged,
                _ => Freshness::Expired,
            }
        };
        self.slots.plan(key, version, judge, make_room)
    }
}

/// Bytes of the answers `slots` hold (those built).
fn held(slots: &HashMap<Key, Arc<Slot>>) -> usize {
    slots
        .values()
        .filter_map(|s| s.answer().and_then(Option::as_ref))
        .map(Bytes::len)
        .sum()
}

/// Starts afresh when `slots` are at either bound. Answers being built stay
/// with the requests waiting for them; only the map lets go of them.
fn make_room(slots: &mut HashMap<Key, Arc<Slot>>) {
    if slots.len() >= CAPACITY || held(slots) >= BUDGET {
        slots.clear();
    }
}

/// Whether `query` holds only query operations (no mutation or
/// subscription), so its answer may be kept.
pub fn read_only(query: &str) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(doc) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    match &doc.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Query,
        DocumentOperations::Multiple(ops) => {
            ops.values().all(|op| op.node.ty == OperationType::Query)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: &str) -> Key {
        Key {
            token: "t".into(),
            query: q.into(),
            operation: None,
            variables: "{}".into(),
        }
    }

    #[tokio::test]
    async fn an_answer_is_built_once_and_reused_only_at_the_same_version() {
        let cache = AnswerCache::default();
        let builds = AtomicU64::new(0);
        let build = |body: &'static [u8]| {
            builds.fetch_add(1, Ordering::SeqCst);
            async move { Some(Bytes::from_static(body)) }
        };
        let v = Version {
            published: 1,
            mutations: cache.mutations(),
            config: 7,
        };
        let a = cache.get_or_build(key("{ a }"), v, || build(b"1")).await;
        let again = cache.get_or_build(key("{ a }"), v, || build(b"2")).await;
        assert_eq!(
            (a, again),
            (
                Some(Bytes::from_static(b"1")),
                Some(Bytes::from_static(b"1"))
            )
        );
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        let other = cache.get_or_build(key("{ b }"), v, || build(b"3")).await;
        assert_eq!(other, Some(Bytes::from_static(b"3")));
        let later = Version { published: 2, ..v };
        let fresh = cache
            .get_or_build(key("{ a }"), later, || build(b"4"))
            .await;
        assert_eq!(fresh, Some(Bytes::from_static(b"4")));
        cache.mutated();
        let after = Version {
            mutations: cache.mutations(),
            ..later
        };
        let fresh = cache
            .get_or_build(key("{ a }"), after, || build(b"5"))
            .await;
        assert_eq!(fresh, Some(Bytes::from_static(b"5")));
    }

    /// The version most tests build at.
    const V: Version = Version {
        published: 0,
        mutations: 0,
        config: 1,
    };

    /// Puts `body` under `{ a }` at `version`, built `age` ago.
    fn put_aged(cache: &AnswerCache, version: Version, body: &Bytes, age: Duration) {
        put(cache, version, Some(body.clone()), age);
    }

    /// Puts a build that gave `answer` (`None`: it failed) under `{ a }` at
    /// `version`, `age` ago.
    fn put(cache: &AnswerCache, version: Version, answer: Option<Bytes>, age: Duration) {
        let at = tokio::time::Instant::now() - age;
        (cache.slots.lock()).insert(key("{ a }"), Slot::new(version, at, Some(answer)));
    }

    /// In-process pages: the request that finds an aged answer is served it
    /// too, a task builds the successor; one too stale is built again while
    /// the request waits.
    #[tokio::test]
    async fn behind_no_request_waits_for_an_aged_answer_s_rebuild() {
        let cache = Arc::new(AnswerCache::default());
        let v = V;
        let old = Bytes::from_static(b"old");
        put_aged(&cache, v, &old, MAX_AGE);
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let (built, done) = tokio::sync::oneshot::channel();
        let slow = move || async move {
            let _ = gate.await;
            let _ = built.send(());
            Some(Bytes::from_static(b"new"))
        };
        let first = cache.get_or_build_behind(key("{ a }"), v, slow).await;
        assert_eq!(first.as_ref(), Some(&old));
        let second = (cache
            .get_or_build_behind(key("{ a }"), v, || async { panic!("a second build") }))
        .await;
        assert_eq!(second.as_ref(), Some(&old));
        release.send(()).unwrap();
        // The task keeps the answer in the turn its build ends in (one
        // thread: this test runs again only after that turn).
        done.await.unwrap();
        let now = (cache
            .get_or_build_behind(key("{ a }"), v, || async { panic!("a third build") }))
        .await;
        assert_eq!(now, Some(Bytes::from_static(b"new")));

        put_aged(&cache, v, &old, MAX_STALE);
        let waited = (cache.get_or_build_behind(key("{ a }"), v, || async {
            Some(Bytes::from_static(b"fresh"))
        }))
        .await;
        assert_eq!(waited, Some(Bytes::from_static(b"fresh")));
    }

    /// In-process pages: an answer that events published since outdate is
    /// served while a task builds its successor; one a mutation or a reload
    /// outdates makes the request wait; the HTTP API never gets an outdated
    /// one.
    #[tokio::test]
    async fn behind_serves_an_answer_outdated_by_events_but_not_by_a_mutation() {
        let cache = Arc::new(AnswerCache::default());
        let v = Version {
            published: 3,
            mutations: 0,
            config: 1,
        };
        let old = Bytes::from_static(b"old");
        let new = || async { Some(Bytes::from_static(b"new")) };
        let events = Version { published: 4, ..v };
        put_aged(&cache, v, &old, Duration::ZERO);
        let api = cache.get_or_build(key("{ a }"), events, new).await;
        assert_eq!(api, Some(Bytes::from_static(b"new")), "the HTTP API");
        put_aged(&cache, v, &old, Duration::ZERO);
        let (built, done) = tokio::sync::oneshot::channel();
        let page = (cache.get_or_build_behind(key("{ a }"), events, move || async move {
            let _ = built.send(());
            Some(Bytes::from_static(b"new"))
        }))
        .await;
        assert_eq!(page.as_ref(), Some(&old), "a page, while events flow");
        // Kept in the turn the build ends in (one thread, as above).
        done.await.unwrap();
        let next = (cache
            .get_or_build_behind(key("{ a }"), events, || async { panic!("a second build") }))
        .await;
        assert_eq!(next, Some(Bytes::from_static(b"new")));
        for changed in [Version { mutations: 1, ..v }, Version { config: 2, ..v }] {
            put_aged(&cache, v, &old, Duration::ZERO);
            let waited = cache.get_or_build_behind(key("{ a }"), changed, new).await;
            assert_eq!(waited, Some(Bytes::from_static(b"new")), "{changed:?}");
        }
    }

    #[tokio::test]
    async fn an_aged_answer_is_served_while_one_request_rebuilds_it() {
        let cache = AnswerCache::default();
        let v = V;
        let old = Bytes::from_static(b"old");
        let first = cache
            .get_or_build(key("{ a }"), v, || async { Some(old.clone()) })
            .await;
        assert_eq!(first.as_ref(), Some(&old));
        put_aged(&cache, v, &old, MAX_AGE);
        let (release, gate) = tokio::sync::watch::channel(false);
        let cache = Arc::new(cache);
        let refresher = {
            let (cache, mut gate) = (cache.clone(), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_or_build(key("{ a }"), v, || async move {
                        let _ = gate.wait_for(|open| *open).await;
                        Some(Bytes::from_static(b"new"))
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        // While it rebuilds, others get the old answer at once.
        let served = cache
            .get_or_build(key("{ a }"), v, || async { panic!("a second build") })
            .await;
        assert_eq!(served, Some(old));
        release.send(true).unwrap();
        assert_eq!(refresher.await.unwrap(), Some(Bytes::from_static(b"new")));
        let now = cache
            .get_or_build(key("{ a }"), v, || async { panic!("a third build") })
            .await;
        assert_eq!(now, Some(Bytes::from_static(b"new")));
    }

    /// A failure of the daemon is given to the requests that waited for
    /// that build, and never to a later one: the next request builds again.
    #[tokio::test]
    async fn a_failed_build_is_not_reused() {
        let cache = Arc::new(AnswerCache::default());
        let v = V;
        let (release, gate) = tokio::sync::watch::channel(false);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (cache, mut gate) = (cache.clone(), gate.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_build(key("{ a }"), v, || async move {
                            let _ = gate.wait_for(|open| *open).await;
                            None
                        })
                        .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), None);
        }
        let next = cache
            .get_or_build(key("{ a }"), v, || async {
                Some(Bytes::from_static(b"ok"))
            })
            .await;
        assert_eq!(next, Some(Bytes::from_static(b"ok")));
        // So too for the pages in-process, and for an aged failure.
        put(&cache, v, None, MAX_AGE);
        let page = cache
            .get_or_build_behind(key("{ a }"), v, || async { Some(Bytes::from_static(b"p")) })
            .await;
        assert_eq!(page, Some(Bytes::from_static(b"p")));
    }

    #[tokio::test]
    async fn concurrent_requests_wait_for_one_build() {
        let cache = Arc::new(AnswerCache::default());
        let builds = Arc::new(AtomicU64::new(0));
        let v = V;
        let (release, gate) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (cache, builds, mut gate) = (cache.clone(), builds.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_build(key("{ a }"), v, || async move {
                        builds.fetch_add(1, Ordering::SeqCst);
                        let _ = gate.wait_for(|open| *open).await;
                        Some(Bytes::from_static(b"x"))
                    })
                    .await
            }));
        }
        tokio::task::yield_now().await;
        release.send(true).unwrap();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Some(Bytes::from_static(b"x")));
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    /// Eight distinct 20 MiB answers once held 160 MiB; now the cache lets go
    /// of the kept ones before it passes its budget by more than one answer.
    #[tokio::test]
    async fn kept_answers_stay_within_the_byte_budget() {
        let cache = AnswerCache::default();
        let v = V;
        let big = Bytes::from(vec![b'x'; 20 << 20]);
        for i in 0..8 {
            let answer = cache
                .get_or_build(key(&format!("{{ a{i} }}")), v, || async {
                    Some(big.clone())
                })
                .await;
            assert_eq!(answer.map(|b| b.len()), Some(big.len()));
            let held = held(&cache.slots.lock());
            assert!(
                held < BUDGET + big.len(),
                "{held} bytes kept after {} answers",
                i + 1
            );
        }
    }

    #[test]
    fn only_queries_are_read_only() {
        assert!(read_only("{ tenants { nodes { key } } }"));
        assert!(read_only("query A { a } query B { b }"));
        assert!(!read_only("mutation { reloadConfig { added } }"));
        assert!(!read_only("query A { a } mutation B { b }"));
        assert!(!read_only("subscription { healthChanged { seq } }"));
        assert!(!read_only("{ not valid"));
    }
}

//! Rendered public answers, kept a few seconds: the pages and badges are
//! served without a token to anyone, so a flood of requests must cost one
//! render per page and period, not one per request; and no visitor should
//! wait for a render that only refreshes an answer already kept.
//!
//! It owns the public answers' policy (their ages, what a failure is, their
//! bound) over the mechanism of [`crate::revalidate`]; it must not decide
//! what a page holds. An answer younger than [`TTL`] is served as it is.
//! Past [`TTL`] it is still served at once, and one render in the
//! background (one per key at a time) makes its successor, which replaces
//! it when done. Past [`MAX_STALE`] a request waits for a new render
//! instead: a render that keeps failing or hangs must not pin an old page
//! for ever. Only the first request of a key (and one after [`MAX_STALE`])
//! waits; requests arriving meanwhile wait for that one render instead of
//! starting their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::time::Instant;

use crate::rendered::Rendered;
use crate::revalidate::{Freshness, Plan, Slots};

/// How long a rendered answer is served before a request starts rendering
/// its successor; also the `max-age` browsers and proxies are told.
pub const TTL: Duration = Duration::from_secs(5);

/// How old a kept answer may get while its successor is rendered in the
/// background: past it, requests wait for a fresh render. A minute: a page
/// a minute old still says what a visitor needs, and a render of the
/// 1,000-check page takes seconds, not tens of them, unless something is
/// wrong (then the wait shows it).
pub const MAX_STALE: Duration = Duration::from_secs(60);

/// Kept answers of the pages at most: one per public tenant.
pub const PAGES: usize = 1024;

/// Kept answers of the badges at most: enough for every badge of a large
/// public tenant in both formats (a badge is a few hundred bytes).
pub const BADGES: usize = 8192;

type Slot = crate::revalidate::Slot<(), Arc<Rendered>>;
type Entries = HashMap<String, Arc<Slot>>;

/// Rendered answers, at most `capacity` of them. When full, a new key
/// first makes the answers past [`MAX_STALE`] go, then those that are not a
/// success (the 404s a flood of made-up badge names leaves), then the older
/// half: a flood of new keys never empties the cache of the answers
/// visitors keep asking for.
pub struct Cache {
    slots: Arc<Slots<String, (), Arc<Rendered>>>,
    capacity: usize,
}

/// A rendered answer that is not a success: kept like any other (a flood of
/// one bad URL costs one render per period), but never in place of a success.
fn failed(rendered: &Arc<Rendered>) -> bool {
    rendered.status != StatusCode::OK
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            slots: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// The answer kept under `key` (rendering its successor in the
    /// background when it is older than [`TTL`]), or, when there is none or
    /// it is older than [`MAX_STALE`], the one `render` makes (made once
    /// however many ask at the same time).
    pub async fn get_or_render<F, Fut>(&self, key: &str, render: F) -> Arc<Rendered>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Rendered> + Send + 'static,
    {
        let judge = |kept: &Slot| match kept.at.elapsed() {
            age if age < TTL => Freshness::Fresh,
            age if age < MAX_STALE => Freshness::Aged,
            _ => Freshness::Expired,
        };
        let capacity = self.capacity;
        let make_room = |entries: &mut Entries| make_room(entries, Instant::now(), capacity);
        match self.slots.plan(key, (), judge, make_room) {
            Plan::Serve(kept) => kept,
            Plan::Refresh(old, kept) => {
                let (slots, key) = (self.slots.clone(), key.to_owned());
                tokio::spawn(async move {
                    let rendered = Arc::new(render().await);
                    slots.refreshed(key, &old, (), rendered, failed);
                });
                kept
            }
            Plan::Join(slot) => slot.join(|| async { Arc::new(render().await) }).await,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

/// When `entries` hold `capacity`, lets go of the answers too old to
/// serve, then of those that are not a success, then of the older half,
/// until there is room. Renders in flight stay with the requests waiting
/// for them (only the map lets go of them) and count as successes: they
/// are what someone asked for just now.
fn make_room(entries: &mut Entries, now: Instant, capacity: usize) {
    if entries.len() < capacity {
        return;
    }
    entries.retain(|_, e| now.duration_since(e.at) < MAX_STALE);
    if entries.len() >= capacity {
        entries.retain(|_, e| e.answer().is_none_or(|r| !failed(r)));
    }
    if entries.len() >= capacity {
        let mut ats: Vec<Instant> = entries.values().map(|e| e.at).collect();
        let (_, median, _) = ats.select_nth_unstable(entries.len() / 2);
        let median = *median;
        entries.retain(|_, e| e.at > median);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn page(body: &'static str) -> Rendered {
        Rendered::new(StatusCode::OK, "text/plain", body)
    }

    /// A render that must not happen.
    async fn none() -> Rendered {
        panic!("a render that should not have run")
    }

    /// The body kept under `key`, asked until it is `want` (a background
    /// render installs it after its task runs): no sleeping, a bounded
    /// number of turns of the runtime.
    async fn settles_on(cache: &Cache, key: &str, want: &str) {
        for _ in 0..1000 {
            if cache.get_or_render(key, none).await.body == want {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{key} never became {want}");
    }

    #[tokio::test]
    async fn concurrent_asks_share_one_render_and_the_bound_holds() {
        let cache = Cache::new(64);
        let renders = Arc::new(AtomicUsize::new(0));
        let render = || {
            let renders = renders.clone();
            move || async move {
                renders.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                page("hi")
            }
        };
        let (a, b) = tokio::join!(
            cache.get_or_render("k", render()),
            cache.get_or_render("k", render())
        );
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        assert_eq!(a.etag, b.etag);
        for i in 0..3 * 64 {
            cache
                .get_or_render(&format!("x{i}"), || async { page("x") })
                .await;
        }
        assert!(cache.len() <= 64);
    }

    /// Made-up keys whose answers are 404s (a flood of badge names) go
    /// before the answers visitors ask for, which stay kept.
    #[tokio::test(start_paused = true)]
    async fn a_flood_of_not_found_answers_does_not_evict_the_pages() {
        let cache = Cache::new(64);
        for key in ["page", "badge"] {
            cache.get_or_render(key, || async { page("kept") }).await;
        }
        for i in 0..10 * 64 {
            tokio::time::advance(Duration::from_millis(1)).await;
            cache
                .get_or_render(&format!("made-up-{i}"), || async {
                    Rendered::new(StatusCode::NOT_FOUND, "text/plain", "")
                })
                .await;
            assert!(cache.len() <= 64);
        }
        for key in ["page", "badge"] {
            assert_eq!(cache.get_or_render(key, none).await.body, "kept");
        }
        // Successes past the bound: the older half goes, the newer stay.
        for i in 0..64 {
            tokio::time::advance(Duration::from_millis(1)).await;
            cache
                .get_or_render(&format!("real-{i}"), || async { page("real") })
                .await;
        }
        assert!(cache.len() <= 64);
        assert_eq!(cache.get_or_render("real-63", none).await.body, "real");
    }

    /// Past the TTL the kept answer goes out at once while one slow render
    /// makes its successor; nobody else renders meanwhile.
    #[tokio::test(start_paused = true)]
    async fn past_the_ttl_the_kept_answer_is_served_while_one_render_runs() {
        let cache = Cache::new(8);
        cache.get_or_render("k", || async { page("v1") }).await;
        tokio::time::advance(TTL + Duration::from_secs(1)).await;

        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let started = Arc::new(tokio::sync::Notify::new());
        let slow = {
            let started = started.clone();
            || async move {
                started.notify_one();
                let _ = gate.await;
                page("v2")
            }
        };
        // The request that starts the render does not wait for it.
        assert_eq!(cache.get_or_render("k", slow).await.body, "v1");
        started.notified().await;
        // Nor do the next ones, and they start no render of their own.
        for _ in 0..3 {
            assert_eq!(cache.get_or_render("k", none).await.body, "v1");
        }
        release.send(()).unwrap();
        settles_on(&cache, "k", "v2").await;
    }

    /// A failing refresh keeps the old success; the next request tries
    /// again.
    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_the_success_and_is_tried_again() {
        let cache = Cache::new(8);
        cache.get_or_render("k", || async { page("v1") }).await;
        tokio::time::advance(TTL).await;
        let (done, finished) = tokio::sync::oneshot::channel();
        let failing = || async move {
            let _ = done.send(());
            Rendered::new(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "later")
        };
        assert_eq!(cache.get_or_render("k", failing).await.body, "v1");
        // The task puts (or not) the answer in the same turn as the render
        // ends (one thread: the test runs again only after that turn).
        finished.await.unwrap();
        let again = cache.get_or_render("k", || async { page("v2") }).await;
        assert_eq!(again.body, "v1");
        settles_on(&cache, "k", "v2").await;
    }

    /// Past MAX_STALE a request waits for a fresh render, even while an
    /// earlier refresh hangs, and that refresh never replaces it.
    #[tokio::test(start_paused = true)]
    async fn too_old_an_answer_is_not_served_and_a_hung_refresh_does_not_pin_it() {
        let cache = Cache::new(8);
        cache.get_or_render("k", || async { page("v1") }).await;
        tokio::time::advance(TTL).await;
        let (release, gate) = tokio::sync::oneshot::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let (done, finished) = tokio::sync::oneshot::channel();
        let hung = || async move {
            let _ = started.send(());
            let _ = gate.await;
            let _ = done.send(());
            page("late")
        };
        assert_eq!(cache.get_or_render("k", hung).await.body, "v1");
        running.await.unwrap();
        tokio::time::advance(MAX_STALE).await;
        let fresh = cache.get_or_render("k", || async { page("v3") }).await;
        assert_eq!(fresh.body, "v3");
        release.send(()).unwrap();
        finished.await.unwrap();
        assert_eq!(cache.get_or_render("k", none).await.body, "v3");
    }
}

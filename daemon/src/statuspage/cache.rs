//! Rendered public answers, kept a few seconds: the pages and badges are
//! served without a token to anyone, so a flood of requests must cost one
//! render per page and period, not one per request.
//!
//! It owns the kept answers and their bound; it must not decide what a
//! page holds. Requests that arrive while an answer is being rendered wait
//! for that one render instead of starting their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// How long a rendered answer is served before it is rendered again; also
/// the `max-age` browsers and proxies are told.
pub const TTL: Duration = Duration::from_secs(5);

/// Kept answers at most: past it, expired ones go, and if that is not
/// enough, all of them (random badge names can make many keys).
const MAX_ENTRIES: usize = 1024;

/// One rendered answer, also gzipped once for every client that accepts it
/// (compressing per request would cost more than rendering, under a flood).
#[derive(Debug)]
pub struct Rendered {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
    /// A strong validator of `body`, quoted as the header carries it.
    pub etag: String,
    /// `body` gzipped, when it is worth it.
    pub gzip: Option<Bytes>,
}

/// Smaller bodies go as they are.
const GZIP_FROM: usize = 1024;

impl Rendered {
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let hash = Sha256::digest(&body);
        Rendered {
            status,
            content_type,
            etag: format!("\"{}\"", hex::encode(&hash[..12])),
            gzip: (body.len() >= GZIP_FROM).then(|| gzip(&body)),
            body,
        }
    }

    /// The body and ETag to send to a client whose `Accept-Encoding` is
    /// `accept`, and whether that body is gzipped.
    pub fn for_client(&self, accept: &str) -> (Bytes, String, bool) {
        let gzip_ok = accept.split(',').any(|e| {
            let mut parts = e.split(';');
            parts
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip"))
                && parts.all(|p| p.trim().replace(' ', "") != "q=0")
        });
        match &self.gzip {
            Some(gz) if gzip_ok => {
                let etag = format!("{}-gz\"", self.etag.trim_end_matches('"'));
                (gz.clone(), etag, true)
            }
            _ => (self.body.clone(), self.etag.clone(), false),
        }
    }
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("gzip into memory cannot fail")
}

type Slot = Arc<OnceCell<Arc<Rendered>>>;

#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<String, (Instant, Slot)>>,
}

impl Cache {
    /// The answer kept under `key` if it is younger than [`TTL`], else the
    /// one `render` makes (made once however many ask at the same time).
    pub async fn get_or_render<F, Fut>(&self, key: &str, render: F) -> Arc<Rendered>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Rendered>,
    {
        let slot = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match entries.get(key) {
                Some((at, slot)) if now.duration_since(*at) < TTL => slot.clone(),
                _ => {
                    if entries.len() >= MAX_ENTRIES {
                        entries.retain(|_, (at, _)| now.duration_since(*at) < TTL);
                        if entries.len() >= MAX_ENTRIES {
                            entries.clear();
                        }
                    }
                    let slot = Slot::default();
                    entries.insert(key.to_owned(), (now, slot.clone()));
                    slot
                }
            }
        };
        slot.get_or_init(|| async { Arc::new(render().await) })
            .await
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_asks_share_one_render_and_the_bound_holds() {
        let cache = Cache::default();
        let renders = AtomicUsize::new(0);
        let render = || async {
            renders.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Rendered::new(StatusCode::OK, "text/plain", "hi")
        };
        let (a, b) = tokio::join!(
            cache.get_or_render("k", render),
            cache.get_or_render("k", render)
        );
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        assert_eq!(a.etag, b.etag);
        for i in 0..3 * MAX_ENTRIES {
            cache
                .get_or_render(&format!("x{i}"), || async {
                    Rendered::new(StatusCode::OK, "text/plain", "x")
                })
                .await;
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }

    #[test]
    fn gzip_goes_to_clients_that_accept_it_with_its_own_etag() {
        let page = Rendered::new(StatusCode::OK, "text/html", "<p>x</p>".repeat(500));
        let (body, etag, gz) = page.for_client("br, gzip;q=0.8");
        assert!(gz && body.len() < 200 && etag.ends_with("-gz\""), "{etag}");
        let (body, etag, gz) = page.for_client("gzip;q=0, br");
        assert!(!gz && body.len() == 4000 && etag == page.etag);
        assert!(!page.for_client("").2);
        let small = Rendered::new(StatusCode::OK, "text/plain", "hi");
        assert!(!small.for_client("gzip").2);
    }
}

//! Sessions of the web UI: a random id in an HttpOnly, SameSite=Strict
//! cookie, mapped server-side to the SHA-256 of the token signed in with
//! (never the token itself, which goes nowhere after sign-in), with a
//! per-session CSRF token for forms. Sessions expire when idle and are
//! bounded in number; one whose token a config reload removed ends at its
//! next request (the caller checks, see [`super::signed`]).
//!
//! It owns cookies, session ids and the CSRF and Origin checks; it must not
//! decide what a principal may see or do (the API does).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// The cookie's name.
pub const COOKIE: &str = "tributary_session";

/// How long a session lives without a request.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);

/// How many sessions are kept at once; the least recently used go first.
const CAPACITY: u64 = 10_000;

/// One signed-in browser.
pub struct Session {
    /// What the config lists the token as: the API finds the principal by it.
    pub token_sha256: String,
    /// Sent back with every form; a POST without it is refused.
    pub csrf: String,
    /// A message for the next page (the outcome of an action).
    flash: Mutex<Option<String>>,
}

impl Session {
    /// Keeps `message` for the next page shown.
    pub fn flash(&self, message: String) {
        *self.flash.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
    }

    /// Whether a message waits for the next page.
    pub fn has_flash(&self) -> bool {
        self.flash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// The kept message, once.
    pub fn take_flash(&self) -> Option<String> {
        self.flash.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Whether `sent` is this session's CSRF token (compared in constant
    /// time, so its bytes cannot be guessed one by one).
    pub fn csrf_matches(&self, sent: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), sent.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The sessions of this daemon; lost on restart (everyone signs in again).
#[derive(Clone)]
pub struct Sessions {
    cache: moka::sync::Cache<String, Arc<Session>>,
    idle: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(IDLE, CAPACITY)
    }
}

/// 256 random bits, URL-safe.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Sessions {
    pub fn new(idle: Duration, capacity: u64) -> Self {
        Sessions {
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(idle)
                .build(),
            idle,
        }
    }

    /// A new session for the token hashing to `token_sha256`; its id.
    pub fn open(&self, token_sha256: String) -> String {
        let id = random_id();
        let session = Session {
            token_sha256,
            csrf: random_id(),
            flash: Mutex::new(None),
        };
        self.cache.insert(id.clone(), Arc::new(session));
        id
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.cache.get(id)
    }

    pub fn close(&self, id: &str) {
        self.cache.invalidate(id);
    }

    /// The `Set-Cookie` value that gives a browser session `id`: `Secure`
    /// when the request came over TLS (a proxy in front says so with
    /// `X-Forwarded-Proto: https`; the daemon itself speaks plain HTTP).
    pub fn cookie(&self, id: &str, headers: &HeaderMap) -> HeaderValue {
        let secure = if over_tls(headers) { "; Secure" } else { "" };
        let value = format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            self.idle.as_secs()
        );
        HeaderValue::from_str(&value).expect("ids are URL-safe base64")
    }

    /// The `Set-Cookie` value that makes a browser forget its session.
    pub fn forget(headers: &HeaderMap) -> HeaderValue {
        let secure = if over_tls(headers) { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
        ))
        .expect("a fixed value")
    }
}

fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// The session id the request's cookie carries, if any.
pub fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Whether a state-changing request may come from this page: a browser
/// says where the page was in `Origin` (or at least `Referer`), and it must
/// be this daemon (the `Host` it was asked by). A request with neither is
/// no browser's and goes on to the CSRF token check.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let from = |value: &str| {
        ["http://", "https://"].iter().any(|scheme| {
            value.strip_prefix(scheme).is_some_and(|rest| {
                rest == host || rest.strip_prefix(host).is_some_and(|p| p.starts_with('/'))
            })
        })
    };
    match (headers.get(header::ORIGIN), headers.get(header::REFERER)) {
        (Some(origin), _) => origin.to_str().is_ok_and(from),
        (None, Some(referer)) => referer.to_str().is_ok_and(from),
        (None, None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_read_among_others_and_ids_are_unguessable() {
        let h = headers(&[("cookie", "a=1; tributary_session=abc; b=2")]);
        assert_eq!(cookie_id(&h), Some("abc"));
        assert_eq!(
            cookie_id(&headers(&[("cookie", "tributary_sessionx=1")])),
            None
        );
        let s = Sessions::default();
        let (a, b) = (s.open("h".into()), s.open("h".into()));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(s.get(&a).unwrap().csrf, s.get(&b).unwrap().csrf);
    }

    #[test]
    fn origins_of_other_sites_are_refused() {
        let own = [("host", "127.0.0.1:8080")];
        assert!(same_origin(&headers(&[
            own[0],
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            own[0],
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            own[0],
            ("origin", "http://127.0.0.1:80800")
        ])));
        assert!(!same_origin(&headers(&[own[0], ("origin", "null")])));
        assert!(same_origin(&headers(&[
            own[0],
            ("referer", "http://127.0.0.1:8080/t/a")
        ])));
        assert!(!same_origin(&headers(&[
            own[0],
            ("referer", "http://127.0.0.1:8080.evil.example/")
        ])));
        assert!(same_origin(&headers(&own)));
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        let s = Sessions::default();
        let session = s.get(&s.open("h".into())).unwrap();
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&session.csrf[..10]));
    }

    /// An idle session is gone: the next request signs in again. (Looking
    /// with `get` would be a use and keep it alive, so the wait peeks.)
    #[test]
    fn an_idle_session_expires() {
        let s = Sessions::new(Duration::from_millis(50), 10);
        let id = s.open("h".into());
        assert!(s.get(&id).is_some());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.cache.contains_key(&id) {
            assert!(
                std::time::Instant::now() < deadline,
                "still there after 10s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(s.get(&id).is_none());
    }

    #[test]
    fn sessions_are_bounded_in_number() {
        let s = Sessions::new(IDLE, 10);
        for _ in 0..100 {
            s.open("h".into());
        }
        s.cache.run_pending_tasks();
        assert!(s.cache.entry_count() <= 10, "{}", s.cache.entry_count());
    }
}

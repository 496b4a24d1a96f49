//! Rendered signed-in pages, each kept next to the API answer it was
//! rendered from: while the API serves the same kept answer (nothing
//! changed, see [`crate::api::Answer`]), a request for the same page costs
//! no JSON parse, no render and no compression, and a browser that has the
//! page gets a 304.
//!
//! A page is kept per session and path with query, not per principal: its
//! forms carry the session's own CSRF token, so two browsers signed in
//! with one token get two pages (and nobody another principal's). A page
//! showing a one-time message (an action's outcome) is neither kept nor
//! served from what is kept. The pages kept are bounded in bytes
//! ([`BUDGET`], counting each page's answer as well, which it keeps alive)
//! and leave after [`IDLE`] unread.
//!
//! It owns the kept pages; it must not decide what a page shows (the pages
//! do) nor query anything but what they ask.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::gql::{self, Failure};
use super::{Shared, Signed};
use crate::api::Answer;
use crate::rendered::Rendered;

/// Bytes of pages (and the answers they were rendered from) kept at most.
pub const BUDGET: u64 = 64 << 20;
/// How long a page nobody asks for stays.
pub const IDLE: Duration = Duration::from_secs(600);

/// What browsers are told: keep the page for this user only, and ask
/// again each time (a 304 when it is the same).
const CACHE_CONTROL: &str = "private, no-cache";

/// A page and the API answer it was rendered from.
struct Kept {
    answer: Bytes,
    page: Rendered,
}

/// The kept pages, by session id and path with query.
pub struct Pages {
    cache: moka::sync::Cache<(String, String), Arc<Kept>>,
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new(BUDGET)
    }
}

impl Pages {
    pub fn new(budget: u64) -> Self {
        Pages {
            cache: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|(session, path): &(String, String), kept: &Arc<Kept>| {
                    let bytes = session.len() + path.len() + kept.answer.len() + kept.page.weight();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_idle(IDLE)
                .build(),
        }
    }
}

/// A request for a page: who asks (signed in, or sent to sign in first),
/// for which path, with which headers.
pub struct Asked {
    web: Shared,
    signed: Signed,
    uri: Uri,
    headers: HeaderMap,
}

impl FromRequestParts<Shared> for Asked {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Shared) -> Result<Self, Response> {
        let signed = Signed::from_request_parts(parts, web).await?;
        Ok(Asked {
            web: web.clone(),
            signed,
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        })
    }
}

impl Asked {
    /// The page: runs `query` with `variables` and hands its `data` to
    /// `render`, unless the page kept for this session and path was
    /// rendered from the very answer the API gives now.
    pub async fn page<R>(self, query: &str, variables: Value, render: R) -> Response
    where
        R: FnOnce(&Signed, &Value) -> Result<Html<String>, Failure>,
    {
        let Asked {
            web,
            signed,
            uri,
            headers,
        } = self;
        let answer = match gql::ask(&web, &signed, query, variables).await {
            Ok(answer) => answer,
            Err(failure) => return failure.into_response(),
        };
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let key = (signed.id.clone(), path.to_owned());
        // A one-time message is shown once: that page is not kept.
        let keep = !signed.session.has_flash();
        if keep && let Some(kept) = web.pages.cache.get(&key).filter(|k| answer.is(&k.answer)) {
            return kept.page.response(&headers, CACHE_CONTROL);
        }
        let kept_answer = match &answer {
            Answer::Kept(body) if keep => Some(body.clone()),
            _ => None,
        };
        let page = match gql::data(answer.into_json()).and_then(|data| render(&signed, &data)) {
            Ok(Html(html)) => Rendered::new(StatusCode::OK, "text/html; charset=utf-8", html),
            Err(failure) => return failure.into_response(),
        };
        let Some(answer) = kept_answer else {
            return page.response(&headers, CACHE_CONTROL);
        };
        let kept = Arc::new(Kept { answer, page });
        web.pages.cache.insert(key, kept.clone());
        kept.page.response(&headers, CACHE_CONTROL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages past the budget go: a thousand 100 KB pages do not stay.
    #[test]
    fn kept_pages_stay_within_their_budget() {
        let pages = Pages::new(1 << 20);
        for i in 0..1000 {
            let kept = Kept {
                answer: Bytes::from(vec![b'{'; 50_000]),
                page: Rendered::new(StatusCode::OK, "text/html", vec![b'x'; 50_000]),
            };
            pages
                .cache
                .insert(("s".into(), format!("/p{i}")), Arc::new(kept));
        }
        pages.cache.run_pending_tasks();
        assert!(
            pages.cache.weighted_size() <= 1 << 20,
            "{}",
            pages.cache.weighted_size()
        );
    }
}

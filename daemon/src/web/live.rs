//! `/ui/live`: the `healthChanged` subscription, run in-process for the
//! session, streamed to the page as server-sent events.
//!
//! Why not the API's own WebSocket from the page: the page would need a
//! token in JavaScript (the session's cookie is HttpOnly and the API takes
//! bearer tokens), or the API would have to accept cookies and then guard
//! every socket against cross-site use. An endpoint of the UI's own reads
//! the session cookie (SameSite=Strict, so no other site's page can open it
//! signed in), only reads, and with server-sent events the browser resumes
//! by itself: it reconnects and sends `Last-Event-ID`, which is the last
//! sequence it saw, and the subscription replays from there with no gap.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde_json::json;

use super::gql::Failure;
use super::{Shared, Signed};

const SUBSCRIPTION: &str = "subscription($after: Long) { \
    healthChanged(afterSeq: $after) { seq entityId entityKind entityKey to } }";

/// How often an open stream checks its session still stands.
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
pub struct After {
    after: Option<i64>,
}

pub async fn events(
    State(web): State<Shared>,
    signed: Signed,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Response {
    // A reconnecting browser's own resume point wins over the page's.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse::<i64>().ok())
        .or(q.after);
    let request = async_graphql::Request::new(SUBSCRIPTION).variables(
        async_graphql::Variables::from_json(json!({ "after": after })),
    );
    let Some(results) = web.api.subscribe(&signed.session.token_sha256, request) else {
        return Failure::SignedOut.into_response();
    };
    let feed = Feed {
        results,
        web,
        session: signed.id,
        sha256: signed.session.token_sha256.clone(),
        recheck: tokio::time::interval(RECHECK),
        ended: false,
    };
    let events = futures_util::stream::unfold(feed, Feed::next);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Feed {
    results: BoxStream<'static, async_graphql::Response>,
    web: Shared,
    session: String,
    sha256: String,
    recheck: tokio::time::Interval,
    ended: bool,
}

impl Feed {
    /// The next event: a health change, or the end of the session (then
    /// nothing more).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Feed)> {
        if self.ended {
            return None;
        }
        loop {
            tokio::select! {
                result = self.results.next() => {
                    let response = result?;
                    // An error (a resume point too old, the daemon
                    // stopping) ends the stream; the browser reconnects.
                    if !response.errors.is_empty() {
                        return None;
                    }
                    let data = response.data.into_json().ok()?;
                    let change = &data["healthChanged"];
                    let event = Event::default()
                        .event("health")
                        .id(change["seq"].to_string())
                        .data(
                            json!({
                                "entity": change["entityId"],
                                "kind": change["entityKind"],
                                "key": change["entityKey"],
                                "status": change["to"],
                            })
                            .to_string(),
                        );
                    return Some((Ok(event), self));
                }
                _ = self.recheck.tick() => {
                    let stands = self.web.sessions.get(&self.session).is_some()
                        && self.web.api.principal(&self.sha256).is_some();
                    if !stands {
                        self.ended = true;
                        return Some((Ok(Event::default().event("signed-out").data("")), self));
                    }
                }
            }
        }
    }
}

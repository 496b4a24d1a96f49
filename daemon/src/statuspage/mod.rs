//! Public status pages and badges, served without a token for tenants the
//! config marks `public = true`: `/status/{tenant}`,
//! `/badge/{entity}/health.svg|json` and
//! `/badge/{entity}/uptime/{1d|7d|30d|90d}.svg|json`; and the 90 daily
//! bars ([`bars`]) that the signed-in pages draw too.
//!
//! It owns what the public sees and what serving it costs. Every figure
//! comes from the GraphQL API run in-process as a viewer scoped to the one
//! public tenant ([`public`]), so a public answer never holds more than
//! that tenant's viewer token would see, and it holds less: names,
//! statuses, uptime and when health changed (`docs/status-pages.md` says
//! why). A tenant that is not public and one that does not exist get the
//! same 404, so the pages do not tell which tenants exist. Rendered answers
//! are kept a few seconds ([`cache`]), gzipped once: a flood costs one
//! render and one compression per page, and an expired answer is served
//! while its successor renders in the background.
//! It must not write anything, nor read the store or the config other than
//! through the API's state.

mod badge;
pub mod bars;
mod cache;
mod page;
mod public;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::State;
use crate::config::ApiLimits;
use crate::rendered::Rendered;
use cache::Cache;
use public::Public;

struct App {
    public: Public,
    /// The pages and the badges are kept apart, so that badges, whose
    /// names anyone can make up, never make room by evicting a page.
    pages: Cache,
    badges: Cache,
}

/// The routes of the public pages and badges, reading through `state`'s
/// API with its `limits`.
pub fn router(state: Arc<State>, limits: ApiLimits) -> Router {
    let schema = crate::api::schema(Some(state.clone()), limits);
    let app = Arc::new(App {
        public: Public::new(state, schema),
        pages: Cache::new(cache::PAGES),
        badges: Cache::new(cache::BADGES),
    });
    Router::new()
        .route("/status/{tenant}", get(status_page))
        .route("/badge/{entity}/{file}", get(health_badge))
        .route("/badge/{entity}/uptime/{file}", get(uptime_badge))
        .with_state(app)
}

/// `name` cut to `max` characters, with `…` when it was longer: where a
/// name shares a line with other words (badges, incidents).
fn cut(name: &str, max: usize) -> String {
    let mut short: String = name.chars().take(max).collect();
    if name.chars().nth(max).is_some() {
        short.push('…');
    }
    short
}

/// The answer to anything that is not public: the same for a tenant or
/// entity that is not public and for one that does not exist.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found: there is no public status page or badge here.\n",
    )
        .into_response()
}

fn unavailable(what: &str, error: &public::PublicError) -> Rendered {
    // The reason may name internals: it goes to the logs, not to the public.
    tracing::warn!(what, error = %error, "a public status answer could not be read");
    Rendered::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        "The status is unavailable right now; try again in a moment.\n",
    )
}

/// `rendered` as an answer: cacheable for [`cache::TTL`] with its ETag when
/// it is a success, 304 when the client has it already.
fn respond(headers: &HeaderMap, rendered: &Rendered) -> Response {
    if rendered.status == StatusCode::NOT_FOUND {
        return not_found();
    }
    let max_age = format!("public, max-age={}", cache::TTL.as_secs());
    rendered.response(headers, &max_age)
}

async fn status_page(
    AxumState(app): AxumState<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    if app.public.tenant(&tenant).is_none() {
        return not_found();
    }
    let key = format!("status/{tenant}");
    let from = app.clone();
    let rendered = app
        .pages
        .get_or_render(&key, move || async move {
            match page::render(&from.public, &tenant).await {
                Ok(html) => Rendered::new(StatusCode::OK, "text/html; charset=utf-8", html),
                Err(e) => unavailable("status page", &e),
            }
        })
        .await;
    respond(&headers, &rendered)
}

async fn health_badge(
    app: AxumState<Arc<App>>,
    Path((entity, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve_badge(app, &entity, None, &file, &headers).await
}

async fn uptime_badge(
    app: AxumState<Arc<App>>,
    Path((entity, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve_badge(app, &entity, Some("uptime"), &file, &headers).await
}

/// The badge `kind`/`file` of `entity` (an entity key: `flow:docs`,
/// `asset:warehouse-docs:ANALYTICS.ORDERS`, percent-encoded in the URL).
async fn serve_badge(
    AxumState(app): AxumState<Arc<App>>,
    entity: &str,
    kind: Option<&str>,
    file: &str,
    headers: &HeaderMap,
) -> Response {
    // The URL's shape is checked before the entity, so a bad one says the
    // same whatever the entity is.
    let (kind, format) = match badge::parse(kind, file) {
        Ok(badge) => badge,
        Err(message) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{message}\n"),
            )
                .into_response();
        }
    };
    let Some(entity) = crate::store::parse_entity_key(entity) else {
        return not_found();
    };
    let Some(tenant) = app.public.owner(&entity) else {
        return not_found();
    };
    let key = format!(
        "badge/{tenant}/{kind:?}/{format:?}/{}",
        crate::store::entity_key(&entity)
    );
    let from = app.clone();
    let rendered = app
        .badges
        .get_or_render(&key, move || async move {
            match badge::render(&from.public, &tenant, &entity, kind).await {
                Ok(Some(badge)) => {
                    let body = match format {
                        badge::Format::Svg => badge.svg(),
                        badge::Format::Shields => badge.shields(),
                    };
                    Rendered::new(StatusCode::OK, format.content_type(), body)
                }
                Ok(None) => Rendered::new(StatusCode::NOT_FOUND, "text/plain", ""),
                Err(e) => unavailable("badge", &e),
            }
        })
        .await;
    respond(headers, &rendered)
}

//! The signed-in web UI, served by `tributary serve` at `/` next to the API:
//! tenants, flows, systems, checks and assets as pages, the operator actions
//! as forms, health changes pushed live (see `docs/web-ui.md`).
//!
//! It owns the HTML, the session cookie and the translation of HTTP to
//! GraphQL. Every page's data comes from the API executed in-process
//! ([`InProcess`]) with the signed-in identity, and every action is one of
//! the API's mutations: it must not read the store, judge health or act on
//! the service itself, so roles, tenant scope and the audit log are exactly
//! the API's.

mod actions;
mod assets;
mod charts;
mod forms;
mod gql;
mod kept;
mod layout;
mod live;
mod pages;
mod session;
mod signin;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;

use crate::api::{InProcess, Principal};
use session::Sessions;

/// What the pages run on.
struct Web {
    api: InProcess,
    sessions: Sessions,
    pages: kept::Pages,
}

type Shared = Arc<Web>;

/// The UI's routes; `api` runs their queries and mutations.
pub fn router(api: InProcess) -> Router {
    let web = Arc::new(Web {
        api,
        sessions: Sessions::default(),
        pages: kept::Pages::default(),
    });
    Router::new()
        .route("/", get(pages::tenants::page))
        .route("/sign-in", get(signin::form).post(signin::sign_in))
        .route("/sign-out", post(signin::sign_out))
        .route("/tenants/{key}", get(pages::tenant::page))
        .route("/flows/{id}", get(pages::flow::page))
        .route("/systems/{id}", get(pages::system::page))
        .route("/checks/{key}", get(pages::check::page))
        .route("/assets/{id}", get(pages::asset::page))
        .route("/alerts", get(pages::alerts::page))
        .route("/audit", get(pages::audit::page))
        .route("/actions/{action}", post(actions::act))
        .route("/ui/live", get(live::events))
        .route("/ui/{file}", get(assets::file))
        .layer(CompressionLayer::new())
        .with_state(web)
}

/// A request of a signed-in browser: its session and who it is now.
pub(crate) struct Signed {
    id: String,
    session: Arc<session::Session>,
    principal: Principal,
}

impl FromRequestParts<Shared> for Signed {
    type Rejection = Response;

    /// Without a live session (none, expired, another daemon's, or its
    /// token removed by a reload) the browser is sent to sign in, and back
    /// here after.
    async fn from_request_parts(parts: &mut Parts, web: &Shared) -> Result<Self, Response> {
        let signed = session::cookie_id(&parts.headers).and_then(|id| {
            let session = web.sessions.get(id)?;
            match web.api.principal(&session.token_sha256) {
                Some(principal) => Some(Signed {
                    id: id.to_owned(),
                    session,
                    principal,
                }),
                None => {
                    web.sessions.close(id);
                    None
                }
            }
        });
        signed.ok_or_else(|| {
            let back = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let to = format!(
                "/sign-in?next={}",
                percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC)
            );
            let mut response = Redirect::to(&to).into_response();
            response.headers_mut().insert(
                axum::http::header::SET_COOKIE,
                Sessions::forget(&parts.headers),
            );
            response
        })
    }
}

//! The stylesheet and the script, embedded in the binary (no build step, no
//! CDN): plain CSS and a small hand-written script for the live updates.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Versioned URLs: a new release is a new URL, so they may be cached long.
pub const CSS_URL: &str = concat!("/ui/app.css?v=", env!("CARGO_PKG_VERSION"));
pub const JS_URL: &str = concat!("/ui/app.js?v=", env!("CARGO_PKG_VERSION"));

const CSS: &str = include_str!("assets/app.css");

/// The UI's stylesheet and the daily bars' (which the public pages share).
static STYLESHEET: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{CSS}\n{}", crate::statuspage::bars::CSS));
const JS: &str = include_str!("assets/app.js");

pub async fn file(Path(file): Path<String>) -> Response {
    let (kind, body) = match file.as_str() {
        "app.css" => ("text/css; charset=utf-8", STYLESHEET.as_str()),
        "app.js" => ("text/javascript; charset=utf-8", JS),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

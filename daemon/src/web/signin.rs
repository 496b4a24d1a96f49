//! Signing in with an API token and out again. The token is read once, from
//! the form, and turned into a session; it is never put in a cookie, a page
//! or a log.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::session::{self, Sessions};
use super::{Shared, Signed, layout};

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path of this site only (`/x`, never
/// `//host` or `https://...`), so the link cannot send anyone elsewhere.
pub(super) fn local(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

fn form_page(next: &str, error: Option<&str>) -> Html<String> {
    let body = html! {
        p { "Sign in with an API token (" code { "[[api.tokens]]" } " in the config; "
            code { "tributary token" } " makes one). What you see and may do is the token's role and tenant." }
        @if let Some(e) = error { p.flash role="alert" { (e) } }
        form method="post" action="/sign-in" {
            input type="hidden" name="next" value=(next);
            label for="token" { "API token" }
            input id="token" type="password" name="token" autocomplete="current-password" required autofocus;
            button.primary type="submit" { "Sign in" }
        }
    };
    Html(layout::bare_with("Sign in", body).into_string())
}

pub async fn form(Query(q): Query<Next>) -> Html<String> {
    form_page(local(q.next.as_deref()), None)
}

#[derive(Deserialize)]
pub struct Credentials {
    token: String,
    next: Option<String>,
}

/// The longest token read (`tributary token` makes 43 characters).
const MAX_TOKEN: usize = 512;

pub async fn sign_in(
    State(web): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let next = local(form.next.as_deref());
    // A sign-in from another site's page would sign the browser in as
    // someone else (login CSRF).
    if !session::same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            layout::bare("Forbidden", "This form must be sent from this site."),
        )
            .into_response();
    }
    let signed = (form.token.len() <= MAX_TOKEN)
        .then(|| web.api.sign_in(&form.token))
        .flatten();
    let Some((_, hash)) = signed else {
        let page = form_page(next, Some("That token is not known to this daemon."));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    // A new id at every sign-in: one planted before cannot be taken over.
    if let Some(old) = session::cookie_id(&headers) {
        web.sessions.close(old);
    }
    let id = web.sessions.open(hash);
    let mut response = Redirect::to(next).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, web.sessions.cookie(&id, &headers));
    response
}

#[derive(Deserialize)]
pub struct Csrf {
    csrf: String,
}

pub async fn sign_out(
    State(web): State<Shared>,
    signed: Signed,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    if !session::same_origin(&headers) || !signed.session.csrf_matches(&form.csrf) {
        return super::actions::refused();
    }
    web.sessions.close(&signed.id);
    let mut response = Redirect::to("/sign-in").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, Sessions::forget(&headers));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(super::local(Some("/tenants/acme")), "/tenants/acme");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "evil"] {
            assert_eq!(super::local(Some(bad)), "/", "{bad}");
        }
        assert_eq!(super::local(None), "/");
    }
}

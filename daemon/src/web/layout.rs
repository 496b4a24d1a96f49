//! The frame of every page (header, navigation, sign-out, the live region)
//! and the small pieces pages share: the status chip (icon and text, never
//! colour alone), times, durations and numbers as people read them.

use axum::response::Html;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::Signed;
use crate::config::Role;

/// The string at `v`, or "" (a missing optional field reads as nothing).
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// A count as people read it; "–" for none.
pub fn count(v: &Value) -> String {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 => format_int(n as i64),
        Some(n) => format!("{n:.1}"),
        None => "–".to_owned(),
    }
}

fn format_int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A duration in seconds, short: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// An RFC 3339 time of the API as a `<time>` in UTC, to the second.
pub fn time(v: &Value) -> Markup {
    match v
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => {
            let t = t.with_timezone(&Utc);
            html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
        }
        None => html! { "–" },
    }
}

/// The icon and word of a status (`None`: never evaluated).
fn status_parts(status: &str) -> (&'static str, &'static str) {
    match status {
        "HEALTHY" => ("✓", "Healthy"),
        "WARNING" => ("!", "Warning"),
        "UNHEALTHY" => ("✕", "Failed"),
        "UNKNOWN" => ("?", "Unknown"),
        _ => ("–", "No data"),
    }
}

/// A status as an icon and a word, coloured too; `entity` (a global id)
/// lets the live script update it in place when its health changes.
pub fn chip(entity: &Value, status: &str) -> Markup {
    let (icon, word) = status_parts(status);
    let status = if word == "No data" { "NONE" } else { status };
    html! {
        span.chip data-entity=[entity.as_str()] data-status=(status) {
            span.icon aria-hidden="true" { (icon) } " " span.word { (word) }
        }
    }
}

/// The chip of an entity's `health` field (null before its first
/// evaluation).
pub fn health_chip(entity: &Value, health: &Value) -> Markup {
    chip(entity, s(&health["status"]))
}

/// The reasons of a `health` field, as a list; nothing when healthy.
pub fn reasons(health: &Value) -> Markup {
    let reasons = health["reasons"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    html! {
        @if !reasons.is_empty() {
            ul.reasons {
                @for r in reasons {
                    li { (chip(&Value::Null, s(&r["status"]))) " " (s(&r["message"])) }
                }
            }
        }
        @if let Some(reason) = health["mute"]["reason"].as_str() {
            p.note { "Muted until " (time(&health["mute"]["until"])) ": " (reason) }
        }
        @if let Some(window) = health["maintenance"]["name"].as_str() {
            p.note { "In maintenance window " (window) }
        }
    }
}

/// What a page shows around its body.
pub struct Frame<'a> {
    pub title: &'a str,
    /// Links above the title, outermost first: `(text, href)`.
    pub trail: Vec<(String, String)>,
    /// The latest health event sequence when the data was read: the live
    /// feed resumes after it.
    pub seq: &'a Value,
}

pub fn is_operator(signed: &Signed) -> bool {
    signed.principal.role >= Role::Operator
}

pub fn is_admin(signed: &Signed) -> bool {
    signed.principal.role >= Role::Admin
}

/// The `<head>` of every page: the stylesheet, and the live script (which
/// does nothing on a page without a live region).
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Tributary" }
            link rel="stylesheet" href=(super::assets::CSS_URL);
            script src=(super::assets::JS_URL) defer {}
        }
    }
}

/// A full page for the signed-in principal.
pub fn page(signed: &Signed, frame: Frame<'_>, body: Markup) -> Html<String> {
    let flash = signed.session.take_flash();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(frame.title))
            body data-seq=(frame.seq) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Tributary" }
                    nav aria-label="Main" {
                        a href="/" { "Tenants" }
                        a href="/alerts" { "Alerts & maintenance" }
                        @if is_admin(signed) { a href="/audit" { "Audit log" } }
                    }
                    form.signout method="post" action="/sign-out" {
                        (csrf(signed))
                        span.who { (signed.principal.name) " (" (signed.principal.role.as_str()) ")" }
                        " "
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" tabindex="-1" {
                    @if !frame.trail.is_empty() {
                        nav.trail aria-label="Breadcrumb" {
                            @for (text, href) in &frame.trail {
                                a href=(href) { (text) } " › "
                            }
                        }
                    }
                    h1 { (frame.title) }
                    @if let Some(message) = flash {
                        p.flash role="status" { (message) }
                    }
                    (body)
                }
                p id="live" class="live" role="status" aria-live="polite" { "Live updates: connecting…" }
            }
        }
    };
    Html(markup.into_string())
}

/// A page without a session: sign-in and errors.
pub fn bare(title: &str, message: &str) -> Html<String> {
    Html(
        bare_with(
            title,
            html! { p { (message) } p { a href="/" { "Back to the tenants" } } },
        )
        .into_string(),
    )
}

pub fn bare_with(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/" { "Tributary" } }
                main id="main" { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.session.csrf); }
}

/// A table's empty state, or the table.
pub fn empty(what: &str) -> Markup {
    html! { p.empty { (PreEscaped("&mdash; ")) (what) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ages_read_well() {
        assert_eq!(count(&Value::from(1234567)), "1,234,567");
        assert_eq!(count(&Value::from(-1000)), "-1,000");
        assert_eq!(count(&Value::Null), "–");
        assert_eq!(age(42.0), "42s");
        assert_eq!(age(3725.0), "1h 2m");
        assert_eq!(age(90000.0), "1d 1h");
    }

    #[test]
    fn a_status_is_never_colour_alone() {
        let chip = chip(&Value::from("id1"), "UNHEALTHY").into_string();
        assert!(chip.contains("Failed") && chip.contains('✕'), "{chip}");
        assert!(chip.contains(r#"data-entity="id1""#), "{chip}");
        assert!(
            super::chip(&Value::Null, "")
                .into_string()
                .contains("No data")
        );
    }
}

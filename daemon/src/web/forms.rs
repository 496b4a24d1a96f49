//! The markup of the action forms, shown to operators and admins only (a
//! viewer never sees them; were one forged, the API would refuse it). Every
//! form carries the session's CSRF token and the page to come back to.

use maud::{Markup, html};
use serde_json::Value;

use super::Signed;
use super::layout::{csrf, is_admin, is_operator, s};

/// "Run now" for a check (`id`: its global id).
pub fn run_now(signed: &Signed, id: &Value, back: &str) -> Markup {
    html! {
        @if is_operator(signed) {
            form.inline method="post" action="/actions/run-now" {
                (csrf(signed))
                input type="hidden" name="check" value=(s(id));
                input type="hidden" name="back" value=(back);
                button.primary type="submit" { "Run now" }
            }
        }
    }
}

/// Mute (with a reason and an end) or unmute `id`, as its `health` says.
pub fn mute(signed: &Signed, id: &Value, health: &Value, what: &str, back: &str) -> Markup {
    let field = format!("mute-reason-{}", s(id));
    let length = format!("mute-for-{}", s(id));
    html! {
        @if is_operator(signed) {
            @if health["mute"].is_object() {
                form method="post" action="/actions/unmute" {
                    fieldset {
                        legend { "Unmute " (what) }
                        (csrf(signed))
                        input type="hidden" name="entity" value=(s(id));
                        input type="hidden" name="back" value=(back);
                        button type="submit" { "Unmute" }
                    }
                }
            } @else {
                form method="post" action="/actions/mute" {
                    fieldset {
                        legend { "Mute " (what) }
                        p.muted { "Health is still computed; alerts are held until the end." }
                        (csrf(signed))
                        input type="hidden" name="entity" value=(s(id));
                        input type="hidden" name="back" value=(back);
                        label for=(field) { "Reason" }
                        input id=(field) type="text" name="reason" required maxlength="500";
                        label for=(length) { "For" }
                        select id=(length) name="for" {
                            option value="1h" { "1 hour" }
                            option value="4h" { "4 hours" }
                            option value="1d" selected { "1 day" }
                            option value="7d" { "7 days" }
                        }
                        button type="submit" { "Mute" }
                    }
                }
            }
        }
    }
}

/// Re-sync an asset: all its records, or the ids typed.
pub fn resync(signed: &Signed, asset: &Value, back: &str) -> Markup {
    html! {
        @if is_operator(signed) {
            form method="post" action="/actions/resync" {
                fieldset {
                    legend { "Re-sync" }
                    p.warning { "⚠ The monitored system is asked to send these records again: "
                        "its load goes up, and receivers may see them twice." }
                    (csrf(signed))
                    input type="hidden" name="asset" value=(s(asset));
                    input type="hidden" name="back" value=(back);
                    label for="resync-ids" { "Document ids (one per line; empty: all records)" }
                    textarea id="resync-ids" name="ids" rows="3" {}
                    button type="submit" { "Re-sync" }
                }
            }
        }
    }
}

/// Delete the stored data of a tenant or an asset, once its key is typed.
pub fn delete(signed: &Signed, target: &Value, key: &str, what: &str, back: &str) -> Markup {
    html! {
        @if is_admin(signed) {
            form method="post" action="/actions/delete" {
                fieldset {
                    legend { "Delete " (what) "'s data" }
                    p.warning { "⚠ Deletes every stored observation, error, id set and missing id of "
                        (what) " " code { (key) } ". This cannot be undone." }
                    (csrf(signed))
                    input type="hidden" name="target" value=(s(target));
                    input type="hidden" name="back" value=(back);
                    label for="delete-confirm" { "Type " code { (key) } " to confirm" }
                    input id="delete-confirm" type="text" name="confirm" required autocomplete="off";
                    button.danger type="submit" { "Delete data" }
                }
            }
        }
    }
}

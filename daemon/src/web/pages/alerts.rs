//! `/alerts`: alert deliveries (newest first, where each stands) and the
//! maintenance windows, as the principal's scope shows them.

use axum::response::{Html, Response};
use maud::html;
use serde_json::{Value, json};

use super::items;
use crate::web::gql::Failure;
use crate::web::layout::{self, Frame, s, time};
use crate::web::{Signed, kept};

const QUERY: &str = "{ lastEventSeq \
    alertDeliveries(first: 50) { nodes { createdAt channel route status state summary attempts lastError deliveredAt } } \
    maintenanceWindows { name reason source active startsAt endsAt cron duration timezone tenant flow system check asset } }";

pub async fn page(asked: kept::Asked) -> Response {
    asked.page(QUERY, json!({}), render).await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value) -> Result<Html<String>, Failure> {
    let deliveries = items(&data["alertDeliveries"]);
    let windows = items(&data["maintenanceWindows"]);
    let body = html! {
        h2 { "Alert deliveries" }
        @if deliveries.is_empty() { (layout::empty("No alerts sent yet.")) } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways on a narrow screen)" { table {
                thead { tr { th scope="col" { "Made" } th scope="col" { "Message" } th scope="col" { "Channel" }
                    th scope="col" { "Status" } th.num scope="col" { "Attempts" } th scope="col" { "Last error" } } }
                tbody { @for d in deliveries { tr {
                    td { (time(&d["createdAt"])) }
                    td.wrap { (if s(&d["state"]) == "FIRING" { "🔔 " } else { "✓ " }) (s(&d["summary"])) }
                    td { (s(&d["channel"])) " " span.muted { "(" (s(&d["route"])) ")" } }
                    td { (s(&d["status"]).to_lowercase().replace('_', " ")) @if !d["deliveredAt"].is_null() { " " (time(&d["deliveredAt"])) } }
                    td.num { (layout::count(&d["attempts"])) }
                    td.wrap { (s(&d["lastError"])) }
                } } }
            } }
        }
        h2 { "Maintenance windows" }
        @if windows.is_empty() { (layout::empty("No maintenance windows.")) } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways on a narrow screen)" { table {
                thead { tr { th scope="col" { "Window" } th scope="col" { "In force" } th scope="col" { "When" }
                    th scope="col" { "Covers" } th scope="col" { "Reason" } } }
                tbody { @for w in windows { tr {
                    td { (s(&w["name"])) " " span.muted { "(" (s(&w["source"]).to_lowercase()) ")" } }
                    td { @if w["active"] == true { "● Now" } @else { "○ No" } }
                    td { (time(&w["startsAt"])) " – " (time(&w["endsAt"]))
                        @if let Some(cron) = w["cron"].as_str() { br; span.muted { "every " code { (cron) } " for " (s(&w["duration"])) " (" (s(&w["timezone"])) ")" } } }
                    td.wrap { @for level in ["tenant", "flow", "system", "check", "asset"] {
                        @if let Some(glob) = w[level].as_str() { (level) " " code { (glob) } " " }
                    } }
                    td.wrap { (s(&w["reason"])) }
                } } }
            } }
        }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: "Alerts and maintenance",
            trail: Vec::new(),
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

//! `/audit`: the latest entries of the audit log (admins; the API refuses
//! anyone else, and the page says so).

use axum::response::{Html, Response};
use maud::html;
use serde_json::{Value, json};

use super::items;
use crate::web::gql::Failure;
use crate::web::layout::{self, Frame, s, time};
use crate::web::{Signed, kept};

const QUERY: &str = "{ lastEventSeq auditLog(last: 100) { at actor action target detail } }";

pub async fn page(asked: kept::Asked) -> Response {
    asked.page(QUERY, json!({}), render).await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value) -> Result<Html<String>, Failure> {
    let records = items(&data["auditLog"]);
    let body = html! {
        @if records.is_empty() { (layout::empty("Nothing done yet.")) } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways on a narrow screen)" { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" }
                    th scope="col" { "Target" } th scope="col" { "Detail" } } }
                tbody { @for r in records { tr {
                    td { (time(&r["at"])) }
                    td { (s(&r["actor"])) }
                    td { code { (s(&r["action"])) } }
                    td.wrap { code { (s(&r["target"])) } }
                    td.wrap { (s(&r["detail"])) }
                } } }
            } }
        }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: "Audit log",
            trail: Vec::new(),
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

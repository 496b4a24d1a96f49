//! `/audit`: the latest entries of the audit log (admins; the API refuses
//! anyone else, and the page says so).

use axum::extract::State;
use axum::response::Html;
use maud::html;
use serde_json::json;

use super::items;
use crate::web::gql::{self, Failure};
use crate::web::layout::{self, Frame, s, time};
use crate::web::{Shared, Signed};

const QUERY: &str = "{ lastEventSeq auditLog(last: 100) { at actor action target detail } }";

pub async fn page(State(web): State<Shared>, signed: Signed) -> Result<Html<String>, Failure> {
    let data = gql::run(&web, &signed, QUERY, json!({})).await?;
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
        &signed,
        Frame {
            title: "Audit log",
            trail: Vec::new(),
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

//! `/systems/{id}`: a system's health and why, its 90 days, SLO figures,
//! and each check watching it with its assets and latest runs.

use axum::extract::Path;
use axum::response::{Html, Response};
use maud::html;
use serde_json::{Value, json};

use super::{
    ASSET_FIELDS, DAY_FIELDS, RUN_FIELDS, SLO_FIELDS, assets_table, history, href, items, name_of,
    runs_table, slos,
};
use crate::web::gql::{self, Failure};
use crate::web::layout::{self, Frame, health_chip, reasons, s, time};
use crate::web::{Signed, forms, kept};

fn query() -> String {
    format!(
        "query($id: ID!) {{ lastEventSeq node(id: $id) {{ ... on System {{ id key name kind description \
         health {{ status since reasons {{ status message }} mute {{ until reason }} maintenance {{ name }} }} \
         history(days: 90) {{ {DAY_FIELDS} }} {SLO_FIELDS} \
         checks {{ id key name connector schedule lastSuccess health {{ status }} \
         assets(first: 100) {{ nodes {{ {ASSET_FIELDS} }} }} runs(first: 5) {{ nodes {{ {RUN_FIELDS} }} }} }} }} }} }}"
    )
}

pub async fn page(asked: kept::Asked, Path(id): Path<String>) -> Response {
    asked.page(&query(), json!({ "id": id }), render).await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value) -> Result<Html<String>, Failure> {
    let sys = gql::node(data)?;
    let back = href("systems", &sys["id"]);
    let body = html! {
        p { (health_chip(&sys["id"], &sys["health"])) " " span.muted { (s(&sys["kind"])) } }
        @if let Some(d) = sys["description"].as_str() { p { (d) } }
        (reasons(&sys["health"]))
        div.bars-row { (history(s(&sys["name"]), &sys["history"])) }
        (slos(&sys["slos"]))
        @for c in items(&sys["checks"]) {
            section {
                h2 { "Check " a href=(href("checks", &c["key"])) { (name_of(c)) } " " (health_chip(&c["id"], &c["health"])) }
                p.muted { (s(&c["connector"])) ", " (s(&c["schedule"])) "; last success " (time(&c["lastSuccess"])) " " (forms::run_now(signed, &c["id"], &back)) }
                h3 { "Assets" }
                (assets_table(items(&c["assets"])))
                h3 { "Latest runs" }
                (runs_table(items(&c["runs"])))
            }
        }
        @if items(&sys["checks"]).is_empty() { (layout::empty("No check watches this system.")) }
        div.actions { (forms::mute(signed, &sys["id"], &sys["health"], "this system", &back)) }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: s(&sys["name"]),
            trail: vec![("Tenants".into(), "/".into())],
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

//! `/checks/{key}`: one check: its assets (counts, freshness, health and
//! why), runs (outcome, duration, error), 90 days, SLO figures, run now.

use axum::extract::{Path, Query};
use axum::response::{Html, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ASSET_FIELDS, DAY_FIELDS, RUN_FIELDS, SLO_FIELDS, assets_table, enc, history, href, items,
    name_of, runs_table, slos,
};
use crate::web::gql::{Failure, found};
use crate::web::layout::{Frame, health_chip, reasons, s, time};
use crate::web::{Signed, forms, kept};

fn query() -> String {
    format!(
        "query($key: String!, $after: String) {{ lastEventSeq check(key: $key) {{ id key name connector schedule lastSuccess \
         system {{ id name }} health {{ status since reasons {{ status message }} mute {{ until reason }} maintenance {{ name }} }} \
         history(days: 90) {{ {DAY_FIELDS} }} {SLO_FIELDS} assets(first: 100) {{ nodes {{ {ASSET_FIELDS} }} }} \
         runs(first: 20, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {RUN_FIELDS} }} }} }} }}"
    )
}

#[derive(Deserialize)]
pub struct Params {
    runs_after: Option<String>,
}

pub async fn page(
    asked: kept::Asked,
    Path(key): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    asked
        .page(
            &query(),
            json!({ "key": key, "after": p.runs_after }),
            render,
        )
        .await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value) -> Result<Html<String>, Failure> {
    let c = found(&data["check"])?;
    let back = href("checks", &c["key"]);
    let body = html! {
        p { (health_chip(&c["id"], &c["health"])) " " (forms::run_now(signed, &c["id"], &back)) }
        p.muted { "Connector " (s(&c["connector"])) ", " (s(&c["schedule"])) "; last success " (time(&c["lastSuccess"])) }
        (reasons(&c["health"]))
        div.bars-row { (history(name_of(c), &c["history"])) }
        (slos(&c["slos"]))
        h2 { "Assets" }
        (assets_table(items(&c["assets"])))
        h2 { "Runs" }
        (runs_table(items(&c["runs"])))
        @if c["runs"]["pageInfo"]["hasNextPage"] == true {
            nav.pager aria-label="Runs pages" {
                a href=(format!("{back}?runs_after={}", enc(s(&c["runs"]["pageInfo"]["endCursor"])))) { "Older runs →" }
            }
        }
        div.actions { (forms::mute(signed, &c["id"], &c["health"], "this check", &back)) }
    };
    Ok(crate::web::layout::page(
        signed,
        Frame {
            title: name_of(c),
            trail: vec![
                ("Tenants".into(), "/".into()),
                (
                    s(&c["system"]["name"]).to_owned(),
                    href("systems", &c["system"]["id"]),
                ),
            ],
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

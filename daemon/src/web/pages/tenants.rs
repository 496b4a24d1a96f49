//! `/`: the tenants the principal sees, with search; where a newcomer
//! lands after signing in.

use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::{enc, href, items};
use crate::web::gql::{self, Failure};
use crate::web::layout::{self, Frame, health_chip, s};
use crate::web::{Shared, Signed};

/// The longest search accepted: a tenant's name or key is shorter.
const MAX_SEARCH: usize = 200;

#[derive(Deserialize)]
pub struct Params {
    q: Option<String>,
    after: Option<String>,
}

const QUERY: &str = "query($q: String, $after: String) { lastEventSeq \
    tenants(search: $q, first: 50, after: $after) { pageInfo { hasNextPage endCursor } \
    nodes { id key name health { status } flows(first: 100) { nodes { id name health { status } } } } } }";

pub async fn page(
    State(web): State<Shared>,
    signed: Signed,
    Query(p): Query<Params>,
) -> Result<Html<String>, Failure> {
    let search = p.q.unwrap_or_default();
    if search.chars().count() > MAX_SEARCH {
        return Err(Failure::BadInput(format!(
            "search: at most {MAX_SEARCH} characters (a tenant's name or key), {} given",
            search.chars().count()
        )));
    }
    let q = (!search.trim().is_empty()).then_some(search.trim());
    let data = gql::run(&web, &signed, QUERY, json!({ "q": q, "after": p.after })).await?;
    let tenants = &data["tenants"];
    let body = html! {
        form.search role="search" method="get" action="/" {
            div {
                label for="q" { "Search tenants by name or key" }
                input id="q" type="search" name="q" value=(search) maxlength=(MAX_SEARCH);
            }
            button type="submit" { "Search" }
        }
        @if items(tenants).is_empty() {
            (layout::empty("No tenant matches."))
        } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways on a narrow screen)" {
                table {
                    thead { tr { th scope="col" { "Tenant" } th scope="col" { "Status" } th scope="col" { "Flows" } } }
                    tbody {
                        @for t in items(tenants) {
                            tr {
                                td.wrap { a href=(href("tenants", &t["key"])) { (s(&t["name"])) } " " span.muted { "(" (s(&t["key"])) ")" } }
                                td { (health_chip(&t["id"], &t["health"])) }
                                td {
                                    ul.systems {
                                        @for f in items(&t["flows"]) {
                                            li { a href=(href("flows", &f["id"])) { (s(&f["name"])) } (health_chip(&f["id"], &f["health"])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if tenants["pageInfo"]["hasNextPage"] == true {
            nav.pager aria-label="Pages" {
                a href=(format!("/?q={}&after={}", enc(&search), enc(s(&tenants["pageInfo"]["endCursor"])))) { "Next tenants →" }
            }
        }
    };
    Ok(layout::page(
        &signed,
        Frame {
            title: "Tenants",
            trail: Vec::new(),
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

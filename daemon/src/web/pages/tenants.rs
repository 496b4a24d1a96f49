//! `/`: the tenants the principal sees, with search; where a newcomer
//! lands after signing in.

use axum::extract::Query;
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{enc, href, items};
use crate::web::gql::Failure;
use crate::web::layout::{self, Frame, health_chip, s};
use crate::web::{Signed, kept};

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

pub async fn page(asked: kept::Asked, Query(p): Query<Params>) -> Response {
    let search = p.q.unwrap_or_default();
    if search.chars().count() > MAX_SEARCH {
        return Failure::BadInput(format!(
            "search: at most {MAX_SEARCH} characters (a tenant's name or key), {} given",
            search.chars().count()
        ))
        .into_response();
    }
    let q = (!search.trim().is_empty()).then_some(search.trim());
    asked
        .page(
            QUERY,
            json!({ "q": q, "after": p.after }),
            |signed, data| render(signed, data, &search),
        )
        .await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value, search: &str) -> Result<Html<String>, Failure> {
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
                a href=(format!("/?q={}&after={}", enc(search), enc(s(&tenants["pageInfo"]["endCursor"])))) { "Next tenants →" }
            }
        }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: "Tenants",
            trail: Vec::new(),
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

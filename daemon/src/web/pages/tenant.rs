//! `/tenants/{key}`: a tenant's flows as cards, each with its upstream and
//! every downstream system, their status, and the flow's 90 daily bars.

use axum::extract::Path;
use axum::response::{Html, Response};
use maud::html;
use serde_json::{Value, json};

use super::{DAY_FIELDS, history, href, items};
use crate::web::gql::{Failure, found};
use crate::web::layout::{self, Frame, health_chip, reasons, s};
use crate::web::{Signed, forms, kept};

fn query() -> String {
    format!(
        "query($key: String!) {{ lastEventSeq tenant(key: $key) {{ id key name \
         health {{ status reasons {{ status message }} mute {{ until reason }} maintenance {{ name }} }} \
         flows(first: 100) {{ nodes {{ id name description health {{ status }} history(days: 90) {{ {DAY_FIELDS} }} \
         upstream {{ id name health {{ status }} }} downstream {{ id name health {{ status }} }} }} }} }} }}"
    )
}

pub async fn page(asked: kept::Asked, Path(key): Path<String>) -> Response {
    asked.page(&query(), json!({ "key": key }), render).await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value) -> Result<Html<String>, Failure> {
    let t = found(&data["tenant"])?;
    let back = href("tenants", &t["key"]);
    let body = html! {
        p { (health_chip(&t["id"], &t["health"])) }
        (reasons(&t["health"]))
        h2 { "Flows" }
        @if items(&t["flows"]).is_empty() { (layout::empty("This tenant has no flows.")) }
        div.cards {
            @for f in items(&t["flows"]) {
                section.card data-card=(s(&f["id"])) data-status=(s(&f["health"]["status"])) {
                    header {
                        h3 { a href=(href("flows", &f["id"])) { (s(&f["name"])) } }
                        (health_chip(&f["id"], &f["health"]))
                    }
                    @if let Some(d) = f["description"].as_str() { p.muted { (d) } }
                    ul.systems {
                        li {
                            span { span.role { "Upstream " } a href=(href("systems", &f["upstream"]["id"])) { (s(&f["upstream"]["name"])) } }
                            (health_chip(&f["upstream"]["id"], &f["upstream"]["health"]))
                        }
                        @for d in items(&f["downstream"]) {
                            li {
                                span { span.role { "Downstream " } a href=(href("systems", &d["id"])) { (s(&d["name"])) } }
                                (health_chip(&d["id"], &d["health"]))
                            }
                        }
                    }
                    div.bars-row { (history(s(&f["name"]), &f["history"])) }
                }
            }
        }
        div.actions {
            (forms::mute(signed, &t["id"], &t["health"], "this tenant", &back))
            (forms::delete(signed, &t["id"], s(&t["key"]), "tenant", &back))
        }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: s(&t["name"]),
            trail: vec![("Tenants".into(), "/".into())],
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

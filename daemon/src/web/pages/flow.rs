//! `/flows/{id}`: a flow's links (runbook, diagram, contact), what its
//! upstream counted, and one card per downstream system with an expected /
//! received / missing / errored chart.

use axum::extract::Path;
use axum::response::{Html, Response};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{DAY_FIELDS, history, href, items};
use crate::web::charts;
use crate::web::gql::{self, Failure};
use crate::web::layout::{self, Frame, health_chip, reasons, s};
use crate::web::{Signed, forms, kept};

/// A system's fields: its checks' assets' counts are summed per system.
const SYSTEM: &str = "id key name kind health { status reasons { status message } } \
    checks { assets(first: 100) { nodes { counts { expected received missing errored } } } }";

fn query() -> String {
    format!(
        "query($id: ID!) {{ lastEventSeq node(id: $id) {{ ... on Flow {{ id key name description \
         tenant {{ key name }} links {{ runbook diagram contact }} \
         health {{ status reasons {{ status message }} mute {{ until reason }} maintenance {{ name }} }} history(days: 90) {{ {DAY_FIELDS} }} \
         upstream {{ {SYSTEM} }} downstream {{ {SYSTEM} }} }} }} }}"
    )
}

const COUNTS: [&str; 4] = ["expected", "received", "missing", "errored"];

/// A system's counts summed over its checks' assets, as `(name, value)`.
fn counts(system: &Value) -> Vec<(String, Option<f64>)> {
    let assets: Vec<&Value> = (system["checks"].as_array().into_iter().flatten())
        .flat_map(|c| items(&c["assets"]))
        .collect();
    COUNTS
        .iter()
        .map(|name| {
            let values: Vec<f64> = assets
                .iter()
                .filter_map(|a| a["counts"][name].as_f64())
                .collect();
            (
                name.to_string(),
                (!values.is_empty()).then(|| values.iter().sum()),
            )
        })
        .collect()
}

fn link(label: &str, value: &Value) -> Markup {
    html! {
        @if let Some(v) = value.as_str() {
            li {
                (label) ": "
                @if v.starts_with("https://") || v.starts_with("http://") { a href=(v) { (v) } } @else { (v) }
            }
        }
    }
}

pub async fn page(asked: kept::Asked, Path(id): Path<String>) -> Response {
    asked.page(&query(), json!({ "id": id }), render).await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(signed: &Signed, data: &Value) -> Result<Html<String>, Failure> {
    let f = gql::node(data)?;
    let back = href("flows", &f["id"]);
    let up = &f["upstream"];
    let body = html! {
        p { (health_chip(&f["id"], &f["health"])) }
        @if let Some(d) = f["description"].as_str() { p { (d) } }
        (reasons(&f["health"]))
        ul.links { (link("Runbook", &f["links"]["runbook"])) (link("Diagram", &f["links"]["diagram"])) (link("Contact", &f["links"]["contact"])) }
        div.bars-row { (history(s(&f["name"]), &f["history"])) }
        h2 { "Upstream" }
        section.card data-card=(s(&up["id"])) data-status=(s(&up["health"]["status"])) {
            header { h3 { a href=(href("systems", &up["id"])) { (s(&up["name"])) } } (health_chip(&up["id"], &up["health"])) }
            ul.figures { @for (name, value) in counts(up) { li { (name) " " b { (layout::count(&value.map_or(Value::Null, Value::from))) } } } }
        }
        h2 { "Downstream systems" }
        div.cards {
            @for d in items(&f["downstream"]) {
                section.card data-card=(s(&d["id"])) data-status=(s(&d["health"]["status"])) {
                    header { h3 { a href=(href("systems", &d["id"])) { (s(&d["name"])) } } (health_chip(&d["id"], &d["health"])) }
                    (reasons(&d["health"]))
                    (charts::hbars(&format!("{}: documents", s(&d["name"])), &counts(d)))
                }
            }
        }
        div.actions { (forms::mute(signed, &f["id"], &f["health"], "this flow", &back)) }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: s(&f["name"]),
            trail: vec![
                ("Tenants".into(), "/".into()),
                (
                    s(&f["tenant"]["name"]).to_owned(),
                    href("tenants", &f["tenant"]["key"]),
                ),
            ],
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

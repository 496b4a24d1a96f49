//! `/assets/{id}`: one asset: its counts, the kinds of its errors as a
//! chart, the error table (newest first, filtered by kind and document id,
//! paged, with log links), the ids it misses (paged), and its freshness lag
//! and volume over 30 days; re-sync and delete for those who may.

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DAY_FIELDS, enc, freshness, history, href, items};
use crate::web::charts;
use crate::web::gql::{self, Failure};
use crate::web::layout::{self, Frame, age, count, health_chip, reasons, s, time};
use crate::web::{Signed, forms, kept};

/// Errors per page, and how many of the newest the kinds chart counts.
const PAGE: usize = 25;
const SAMPLE: usize = 100;
/// The longest filter value accepted.
const MAX_FILTER: usize = 200;

fn query() -> String {
    format!(
        "query($id: ID!, $filter: ErrorFilter, $after: String, $missingAfter: String) {{ lastEventSeq \
         node(id: $id) {{ ... on Asset {{ id key kind observedAt \
         check {{ key name system {{ id name }} }} counts {{ expected received missing errored }} \
         freshness {{ updatedAt ageSeconds warnAfterSeconds errorAfterSeconds }} lastReceived {{ id at }} \
         health {{ status reasons {{ status message }} mute {{ until reason }} maintenance {{ name }} }} history(days: 90) {{ {DAY_FIELDS} }} \
         days: history(days: 30) {{ day received expected maxFreshnessLagSeconds }} \
         sample: errors(first: {SAMPLE}) {{ nodes {{ kind }} }} \
         errors(filter: $filter, first: {PAGE}, after: $after) {{ pageInfo {{ hasNextPage endCursor }} \
         nodes {{ kind message documentId logLink at observedAt }} }} \
         missingIds(first: 50, after: $missingAfter) {{ pageInfo {{ hasNextPage endCursor }} nodes }} }} }} }}"
    )
}

#[derive(Deserialize, Default)]
pub struct Params {
    kind: Option<String>,
    document: Option<String>,
    after: Option<String>,
    missing_after: Option<String>,
}

/// A filter value: trimmed, empty as none, refused when longer than any id.
fn filter_value(name: &str, value: Option<&str>) -> Result<Option<String>, Failure> {
    let v = value.map(str::trim).filter(|v| !v.is_empty());
    match v {
        Some(v) if v.chars().count() > MAX_FILTER => Err(Failure::BadInput(format!(
            "{name}: at most {MAX_FILTER} characters"
        ))),
        v => Ok(v.map(str::to_owned)),
    }
}

/// Error counts by kind among `sample`, most first.
fn kinds(sample: &[Value]) -> Vec<(String, Option<f64>)> {
    let mut by: BTreeMap<&str, f64> = BTreeMap::new();
    for e in sample {
        *by.entry(s(&e["kind"])).or_default() += 1.0;
    }
    let mut rows: Vec<(String, Option<f64>)> = by
        .into_iter()
        .map(|(k, n)| (k.to_owned(), Some(n)))
        .collect();
    rows.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
    rows
}

/// The day label and `field` of each of `days`.
fn series(days: &[Value], field: &str) -> Vec<(String, Option<f64>)> {
    days.iter()
        .map(|d| {
            (
                s(&d["day"]).get(5..10).unwrap_or_default().to_owned(),
                d[field].as_f64(),
            )
        })
        .collect()
}

pub async fn page(asked: kept::Asked, Path(id): Path<String>, Query(p): Query<Params>) -> Response {
    let filters = filter_value("kind", p.kind.as_deref())
        .and_then(|kind| Ok((kind, filter_value("document", p.document.as_deref())?)));
    let (kind, document) = match filters {
        Ok(filters) => filters,
        Err(failure) => return failure.into_response(),
    };
    let filter = json!({ "kind": kind, "documentId": document });
    let variables =
        json!({ "id": id, "filter": filter, "after": p.after, "missingAfter": p.missing_after });
    asked
        .page(&query(), variables, |signed, data| {
            render(signed, data, kind.as_deref(), document.as_deref())
        })
        .await
}

/// The page of `data` (its query's answer) for `signed`.
fn render(
    signed: &Signed,
    data: &Value,
    kind: Option<&str>,
    document: Option<&str>,
) -> Result<Html<String>, Failure> {
    let a = gql::node(data)?;
    let back = href("assets", &a["id"]);
    let filtered = format!(
        "{back}?kind={}&document={}",
        enc(kind.unwrap_or_default()),
        enc(document.unwrap_or_default())
    );
    let days = a["days"].as_array().map(Vec::as_slice).unwrap_or_default();
    let errors = &a["errors"];
    let missing = &a["missingIds"];
    let body = html! {
        p { (health_chip(&a["id"], &a["health"])) " " span.muted { (s(&a["kind"])) } }
        (reasons(&a["health"]))
        ul.figures {
            li { "Expected " b { (count(&a["counts"]["expected"])) } }
            li { "Received " b { (count(&a["counts"]["received"])) } }
            li { "Missing " b { (count(&a["counts"]["missing"])) } }
            li { "Errored " b { (count(&a["counts"]["errored"])) } }
            li { "Freshness " (freshness(&a["freshness"])) }
            li { "Observed " (time(&a["observedAt"])) }
            @if let Some(last) = a["lastReceived"]["id"].as_str() { li { "Last received " code { (last) } } }
        }
        div.bars-row { (history(s(&a["key"]), &a["history"])) }
        div.cards {
            section.card { (charts::hbars(&format!("Error kinds among the latest {SAMPLE} errors"), &kinds(items(&a["sample"])))) }
            section.card { (charts::line("Freshness lag, 30 days", &series(days, "maxFreshnessLagSeconds"), age)) }
            section.card { (charts::line("Volume received, 30 days", &series(days, "received"), |v| layout::count(&Value::from(v)))) }
        }
        h2 id="errors" { "Errors" }
        form.search method="get" action=(back) {
            div { label for="kind" { "Kind" } input id="kind" type="text" name="kind" value=[kind] maxlength=(MAX_FILTER); }
            div { label for="document" { "Document id" } input id="document" type="text" name="document" value=[document] maxlength=(MAX_FILTER); }
            button type="submit" { "Filter" }
        }
        @if items(errors).is_empty() { (layout::empty("No errors match.")) } @else {
            div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways on a narrow screen)" { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Document" } th scope="col" { "Message" } th scope="col" { "Log" } } }
                tbody { @for e in items(errors) { tr {
                    td { (time(if e["at"].is_null() { &e["observedAt"] } else { &e["at"] })) }
                    td { (s(&e["kind"])) }
                    td.wrap { @if let Some(d) = e["documentId"].as_str() { code { (d) } } }
                    td.wrap { (s(&e["message"])) }
                    td { @if let Some(l) = e["logLink"].as_str().filter(|l| l.starts_with("https://") || l.starts_with("http://")) {
                        a href=(l) rel="noopener noreferrer" { "log" span.skip { " for " (s(&e["documentId"])) } }
                    } }
                } } }
            } }
        }
        @if errors["pageInfo"]["hasNextPage"] == true {
            nav.pager aria-label="Error pages" {
                a href=(format!("{filtered}&after={}#errors", enc(s(&errors["pageInfo"]["endCursor"])))) { "Older errors →" }
            }
        }
        h2 id="missing" { "Missing ids" }
        @if items(missing).is_empty() { (layout::empty("None missing.")) } @else {
            ul.figures { @for id in items(missing) { li { code { (s(id)) } } } }
        }
        @if missing["pageInfo"]["hasNextPage"] == true {
            nav.pager aria-label="Missing id pages" {
                a href=(format!("{back}?missing_after={}#missing", enc(s(&missing["pageInfo"]["endCursor"])))) { "More missing ids →" }
            }
        }
        div.actions {
            (forms::resync(signed, &a["id"], &back))
            (forms::mute(signed, &a["id"], &a["health"], "this asset", &back))
            (forms::delete(signed, &a["id"], s(&a["key"]), "asset", &back))
        }
    };
    Ok(layout::page(
        signed,
        Frame {
            title: s(&a["key"]),
            trail: vec![
                ("Tenants".into(), "/".into()),
                (
                    s(&a["check"]["system"]["name"]).to_owned(),
                    href("systems", &a["check"]["system"]["id"]),
                ),
                (
                    s(&a["check"]["key"]).to_owned(),
                    href("checks", &a["check"]["key"]),
                ),
            ],
            seq: &data["lastEventSeq"],
        },
        body,
    ))
}

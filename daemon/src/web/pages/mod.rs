//! The pages, one file each, and the fragments several of them show
//! (assets, runs, SLO figures, 90 days of history). Each page builds one
//! GraphQL query from the request, runs it as the signed-in principal and
//! renders the answer; nothing else.

pub mod alerts;
pub mod asset;
pub mod audit;
pub mod check;
pub mod flow;
pub mod system;
pub mod tenant;
pub mod tenants;

use maud::{Markup, html};
use serde_json::Value;

use super::layout::{age, count, empty, health_chip, reasons, s, time};

/// The items of a connection or list field (none when absent).
pub fn items(v: &Value) -> &[Value] {
    let list = if v["nodes"].is_array() {
        &v["nodes"]
    } else {
        v
    };
    list.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A link to an entity's page.
pub fn href(kind: &str, id: &Value) -> String {
    format!("/{kind}/{}", enc(s(id)))
}

/// `text` for a URL's query string.
pub fn enc(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A check's name, or its key when it has none.
pub fn name_of(check: &Value) -> &str {
    check["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or(s(&check["key"]))
}

/// The fields of a day of history the bars read.
pub use crate::statuspage::bars::FIELDS as DAY_FIELDS;

/// The fields the assets table reads.
pub const ASSET_FIELDS: &str = "id key kind counts { expected received missing errored } \
    freshness { updatedAt ageSeconds warnAfterSeconds errorAfterSeconds } health { status reasons { status message } }";

/// The 90 daily bars of `label`'s `history` answer, with its uptime.
pub fn history(label: &str, buckets: &Value) -> Markup {
    let days: Vec<crate::statuspage::bars::Day> =
        serde_json::from_value(buckets.clone()).unwrap_or_default();
    crate::statuspage::bars::bars(label, &days)
}

/// A check's assets: counts, freshness age, health and why.
pub fn assets_table(assets: &[Value]) -> Markup {
    if assets.is_empty() {
        return empty("No assets reported yet.");
    }
    let rows = html! {
        @for a in assets {
            tr {
                td.wrap { a href=(href("assets", &a["id"])) { (s(&a["key"])) } }
                td { (health_chip(&a["id"], &a["health"])) }
                td.num { (count(&a["counts"]["expected"])) }
                td.num { (count(&a["counts"]["received"])) }
                td.num { (count(&a["counts"]["missing"])) }
                td.num { (count(&a["counts"]["errored"])) }
                td { (freshness(&a["freshness"])) }
                td.wrap { (reasons(&a["health"])) }
            }
        }
    };
    let columns = [
        ("Asset", false),
        ("Status", false),
        ("Expected", true),
        ("Received", true),
        ("Missing", true),
        ("Errored", true),
        ("Freshness", false),
        ("Why", false),
    ];
    table(&columns, rows)
}

/// An asset's freshness: its age, and the ages its rule warns and errs
/// past.
pub fn freshness(f: &Value) -> Markup {
    let limit = |name: &str, field: &str| f[field].as_f64().map(|s| format!("{name} > {}", age(s)));
    let limits: Vec<String> = [
        limit("warn", "warnAfterSeconds"),
        limit("error", "errorAfterSeconds"),
    ]
    .into_iter()
    .flatten()
    .collect();
    html! {
        @match f["ageSeconds"].as_f64() {
            Some(secs) => { (age(secs)) " old" },
            None => { "–" },
        }
        @if !limits.is_empty() { br; span.muted { "(" (limits.join(", ")) ")" } }
    }
}

/// The fields the runs table reads.
pub const RUN_FIELDS: &str = "startedAt durationMs outcome trigger errorClass errorMessage assets";

/// Runs, newest first: outcome, duration, error.
pub fn runs_table(runs: &[Value]) -> Markup {
    if runs.is_empty() {
        return empty("No runs yet.");
    }
    let rows = html! {
        @for r in runs {
            tr {
                td { (time(&r["startedAt"])) }
                td { @if s(&r["outcome"]) == "SUCCEEDED" { "✓ Succeeded" } @else { "✕ Failed" } }
                td.num { (format!("{:.0} ms", r["durationMs"].as_f64().unwrap_or_default())) }
                td { (s(&r["trigger"]).to_lowercase()) }
                td.num { (count(&r["assets"])) }
                td.wrap { @if let Some(class) = r["errorClass"].as_str() {
                    (class.to_lowercase()) ": " (s(&r["errorMessage"]))
                } }
            }
        }
    };
    let columns = [
        ("Started", false),
        ("Outcome", false),
        ("Duration", true),
        ("Trigger", false),
        ("Assets", true),
        ("Error", false),
    ];
    table(&columns, rows)
}

/// A table that scrolls sideways on a narrow screen (and takes keyboard
/// focus, so it can be scrolled without a mouse): `columns` are each a
/// title and whether it holds numbers (right-aligned).
pub fn table(columns: &[(&str, bool)], rows: Markup) -> Markup {
    html! {
        div.table-wrap tabindex="0" role="region" aria-label="Table (scrolls sideways on a narrow screen)" {
            table {
                thead { tr { @for (title, numeric) in columns {
                    th scope="col" class=[numeric.then_some("num")] { (title) }
                } } }
                tbody { (rows) }
            }
        }
    }
}

/// The fields the SLO figures read.
pub const SLO_FIELDS: &str = "slos(first: 10) { name description target window attainment \
    budgetRemaining budgetRemainingRatio exhausted burnRates { lookback rate } }";

/// SLO figures: attainment, budget left, burn rates as a chart.
pub fn slos(slos: &Value) -> Markup {
    let slos = items(slos);
    html! {
        @if !slos.is_empty() {
            h2 { "Service level objectives" }
            div.cards {
                @for slo in slos {
                    section.card {
                        h3 { (s(&slo["name"])) }
                        @if let Some(d) = slo["description"].as_str() { p.muted { (d) } }
                        ul.figures {
                            li { "Target " b { (percent(slo["target"].as_f64().map(|t| t * 100.0))) } " over " (s(&slo["window"])) }
                            li { "Attained " b { (percent(slo["attainment"].as_f64().map(|t| t * 100.0))) } }
                            li { "Budget left " b { (percent(slo["budgetRemainingRatio"].as_f64().map(|t| t * 100.0))) }
                                @if slo["exhausted"] == true { " (spent)" } }
                        }
                        @let rates: Vec<(String, Option<f64>)> = items(&slo["burnRates"]).iter()
                            .map(|b| (format!("burn {}", s(&b["lookback"])), b["rate"].as_f64())).collect();
                        @if !rates.is_empty() { (super::charts::hbars("Burn rate (1 = budget spent exactly over the window)", &rates)) }
                    }
                }
            }
        }
    }
}

/// A share in percent, as the bars print uptime; "–" for none.
pub fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), crate::statuspage::bars::percent)
}

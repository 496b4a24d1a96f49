//! The public status page of one tenant: a banner with its worst state now,
//! its flows and their systems with status, 90 daily bars and uptime, and
//! its recent incidents (changes of health of the tenant, its flows and
//! their systems), newest first.
//!
//! It owns the page's queries and markup. It shows names, statuses, uptime
//! and when health changed, and nothing else the API knows: no reasons,
//! error messages, counts, ids, links, check configs or asset names (see
//! `docs/status-pages.md`). It must not query as anything but the tenant's
//! public viewer ([`super::public`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::bars::{self, Day, bars, status_word};
use super::public::{Public, PublicError};
use crate::health::Status;

/// Flows asked for per query, and at most in all.
const FLOWS_PAGE: usize = 100;
const MAX_FLOWS: usize = 2000;
/// Incidents shown, and how far back (in daemon-wide health events) they
/// are looked for: a bounded read however long the daemon has run.
const INCIDENTS: usize = 20;
const INCIDENT_LOOKBACK: i64 = 5000;
const EVENTS_PAGE: usize = 100;
/// Characters of a name an incident shows (the card above has it whole).
const MAX_INCIDENT_NAME: usize = 120;

#[derive(Deserialize)]
struct Nodes<T> {
    nodes: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
struct Health {
    status: Status,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowsPage {
    nodes: Vec<Flow>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
struct Tenant {
    name: String,
    health: Option<Health>,
    flows: FlowsPage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    tenants: Nodes<Tenant>,
    last_event_seq: i64,
}

#[derive(Deserialize)]
struct Entity {
    key: String,
    name: String,
    health: Option<Health>,
    history: Vec<Day>,
}

#[derive(Deserialize)]
struct Flow {
    #[serde(flatten)]
    entity: Entity,
    upstream: Entity,
    downstream: Vec<Entity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Kind {
    Tenant,
    Flow,
    System,
    Check,
    Asset,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    entity_kind: Kind,
    entity_key: String,
    from: Option<Status>,
    to: Status,
    at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsPage {
    nodes: Vec<Event>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Events {
    health_events: EventsPage,
}

fn page_query() -> String {
    let entity = format!(
        "key name health {{ status }} history(days: 90) {{ {} }}",
        bars::FIELDS
    );
    format!(
        "query PublicStatus($first: Int!, $after: String) {{ lastEventSeq tenants(first: 1) {{ nodes {{ \
         name health {{ status }} flows(first: $first, after: $after) {{ \
         nodes {{ {entity} upstream {{ {entity} }} downstream {{ {entity} }} }} \
         pageInfo {{ hasNextPage endCursor }} }} }} }} }}"
    )
}

const EVENTS_QUERY: &str = "query PublicIncidents($tenant: ID!, $first: Int!, $after: String) { \
    healthEvents(filter: { tenant: $tenant }, first: $first, after: $after) { \
    nodes { entityKind entityKey from to at } pageInfo { hasNextPage endCursor } } }";

/// What the page shows, read from the API.
struct Page {
    name: String,
    status: Option<Status>,
    flows: Vec<Flow>,
    incidents: Vec<Incident>,
}

struct Incident {
    what: String,
    from: Option<Status>,
    to: Status,
    at: DateTime<Utc>,
}

async fn read(public: &Public, tenant: &str) -> Result<Page, PublicError> {
    let query = page_query();
    let mut flows = Vec::new();
    let mut after: Option<String> = None;
    let mut head = None;
    loop {
        let answer: Answer = public
            .query(
                tenant,
                &query,
                serde_json::json!({ "first": FLOWS_PAGE, "after": after }),
            )
            .await?;
        let Some(t) = answer.tenants.nodes.into_iter().next() else {
            return Err(PublicError::Api("the tenant is gone".to_owned()));
        };
        let more = t.flows.page_info.has_next_page;
        after = t.flows.page_info.end_cursor;
        flows.extend(t.flows.nodes);
        head.get_or_insert((t.name, t.health.map(|h| h.status), answer.last_event_seq));
        if !more || after.is_none() || flows.len() >= MAX_FLOWS {
            break;
        }
    }
    let (name, status, last_seq) = head.expect("one page was read");
    let incidents = incidents(public, tenant, &name, &flows, last_seq).await?;
    Ok(Page {
        name,
        status,
        flows,
        incidents,
    })
}

/// The latest [`INCIDENTS`] changes of the tenant, its flows and their
/// systems among the last [`INCIDENT_LOOKBACK`] health events, newest first.
async fn incidents(
    public: &Public,
    tenant: &str,
    tenant_name: &str,
    flows: &[Flow],
    last_seq: i64,
) -> Result<Vec<Incident>, PublicError> {
    let mut flow_names = HashMap::new();
    let mut system_names = HashMap::new();
    for flow in flows {
        flow_names.insert(flow.entity.key.as_str(), flow.entity.name.as_str());
        for s in std::iter::once(&flow.upstream).chain(&flow.downstream) {
            system_names.insert(s.key.as_str(), s.name.as_str());
        }
    }
    let tenant_id = crate::api::entity_id(&crate::health::EntityRef::Tenant(tenant.to_owned()));
    let mut after = Some(crate::api::event_cursor(
        (last_seq - INCIDENT_LOOKBACK).max(0),
    ));
    let mut found = Vec::new();
    loop {
        let page: Events = public
            .query(
                tenant,
                EVENTS_QUERY,
                serde_json::json!({ "tenant": tenant_id, "first": EVENTS_PAGE, "after": after }),
            )
            .await?;
        for e in page.health_events.nodes {
            // A first evaluation that found all well is no incident.
            if e.from.is_none() && e.to == Status::Healthy {
                continue;
            }
            let what = match e.entity_kind {
                Kind::Tenant => Some(tenant_name.to_owned()),
                Kind::Flow => flow_names
                    .get(e.entity_key.as_str())
                    .map(|n| format!("Flow {n}")),
                Kind::System => system_names
                    .get(e.entity_key.as_str())
                    .map(|n| n.to_string()),
                // Checks and assets are not shown on a public page.
                Kind::Check | Kind::Asset => None,
            };
            if let Some(what) = what {
                found.push(Incident {
                    what: super::cut(&what, MAX_INCIDENT_NAME),
                    from: e.from,
                    to: e.to,
                    at: e.at,
                });
                if found.len() > INCIDENTS {
                    found.remove(0);
                }
            }
        }
        let info = page.health_events.page_info;
        if !info.has_next_page || info.end_cursor.is_none() {
            break;
        }
        after = info.end_cursor;
    }
    found.reverse();
    Ok(found)
}

/// The page of public tenant `tenant`, or why it cannot be read.
pub async fn render(public: &Public, tenant: &str) -> Result<String, PublicError> {
    let page = read(public, tenant).await?;
    Ok(markup(&page, public.state.clock.now().into()).into_string())
}

/// A status with its icon, both in text: never colour alone.
fn chip(status: Option<Status>) -> Markup {
    let (icon, word, class) = match status {
        Some(Status::Healthy) => ("✓", status_word(Status::Healthy), "chip chip-healthy"),
        Some(Status::Warning) => ("!", status_word(Status::Warning), "chip chip-warning"),
        Some(Status::Unknown) => ("?", status_word(Status::Unknown), "chip chip-unknown"),
        Some(Status::Unhealthy) => ("✕", status_word(Status::Unhealthy), "chip chip-unhealthy"),
        None => ("–", "No data", "chip chip-none"),
    };
    html! { span class=(class) { span aria-hidden="true" { (icon) } " " (word) } }
}

fn banner(status: Option<Status>) -> Markup {
    let (word, text) = match status {
        Some(Status::Healthy) => ("HEALTHY", "All systems operational"),
        Some(Status::Warning) => ("WARNING", "Degraded: some systems have warnings"),
        Some(Status::Unknown) => ("UNKNOWN", "Degraded: some systems cannot be checked"),
        Some(Status::Unhealthy) => ("UNHEALTHY", "Outage: some systems are unhealthy"),
        None => ("NONE", "No data yet"),
    };
    html! {
        section.banner role="status" data-status=(word) data-testid="banner" {
            (chip(status)) " " strong { (text) }
        }
    }
}

/// A flow (`flow`: its heading one level above its systems') or a system.
fn entity_row(flow: bool, e: &Entity) -> Markup {
    html! {
        div.entity {
            div.entity-head {
                @if flow { h3.entity-name { (e.name) } } @else { h4.entity-name { (e.name) } }
                (chip(e.health.as_ref().map(|h| h.status)))
            }
            (bars(&e.name, &e.history))
        }
    }
}

fn time(at: &DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%-d %b %Y %H:%M UTC")) } }
}

const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fafafa}\
header,main,footer{max-width:60rem;margin:0 auto;padding:0 1rem}h1{font-size:1.5rem;margin:1rem 0}\
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}\
.banner{padding:1rem;border-radius:.5rem;border:2px solid #2e7d32;background:#e8f5e9;font-size:1.125rem}\
.banner[data-status=WARNING],.banner[data-status=UNKNOWN]{border-color:#b26a00;background:#fff8e1}\
.banner[data-status=UNHEALTHY]{border-color:#c62828;background:#ffebee}\
.banner[data-status=NONE]{border-color:#757575;background:#f5f5f5}\
.chip{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.875rem;font-weight:600;border:1px solid}\
.chip-healthy{color:#1b5e20;background:#e8f5e9}.chip-warning{color:#7a4a00;background:#fff8e1}\
.chip-unknown{color:#37474f;background:#eceff1}.chip-unhealthy{color:#b71c1c;background:#ffebee}\
.chip-none{color:#424242;background:#f5f5f5}\
.flow{background:#fff;border:1px solid #ddd;border-radius:.5rem;padding:.75rem 1rem;margin:.75rem 0}\
.entity-head{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between}\
.entity-name{margin:0;font-size:1rem;overflow-wrap:anywhere;display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:3;overflow:hidden}h3.entity-name{font-size:1.125rem}\
.systems{margin:.5rem 0 0;padding:0 0 0 1rem;border-left:3px solid #eee}\
.legend{display:flex;flex-wrap:wrap;gap:1rem;list-style:none;padding:0;font-size:.875rem}\
.legend li{display:flex;align-items:flex-end;gap:.25rem}.legend .bar{display:inline-block;width:.5rem;height:1rem}\
.legend .bar-warning{height:.7rem}.legend .bar-unknown{height:.45rem}.legend .bar-unhealthy{height:.4rem}.legend .bar-none{height:.2rem}\
.incidents{padding-left:1.25rem;overflow-wrap:anywhere}.skip{position:absolute;left:-100vw}.skip:focus{position:static;display:inline-block;margin-top:.5rem}\
a{color:#0d47a1}:focus-visible{outline:3px solid #0d47a1;outline-offset:2px}footer{color:#555;font-size:.875rem;padding-bottom:2rem}";

fn markup(page: &Page, now: DateTime<Utc>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.name) " status" }
                style { (PreEscaped(CSS)) (PreEscaped(bars::CSS)) }
            }
            body {
                header {
                    a.skip href="#incidents" { "Skip to recent incidents" }
                    h1 { (page.name) " status" }
                }
                main {
                    (banner(page.status))
                    section aria-labelledby="flows" {
                        h2 #flows { "Flows" }
                        (bars::legend())
                        @if page.flows.is_empty() {
                            p { "No flows." }
                        }
                        @for flow in &page.flows {
                            article.flow data-testid="flow" {
                                (entity_row(true, &flow.entity))
                                div.systems {
                                    (entity_row(false, &flow.upstream))
                                    @for s in &flow.downstream { (entity_row(false, s)) }
                                }
                            }
                        }
                    }
                    section aria-labelledby="incidents" {
                        h2 #incidents { "Recent incidents" }
                        @if page.incidents.is_empty() {
                            p { "No changes of health recently." }
                        } @else {
                            ol.incidents {
                                @for i in &page.incidents {
                                    li {
                                        (time(&i.at)) ": " strong { (i.what) } " "
                                        @match i.from {
                                            Some(from) => { "went from " (status_word(from).to_lowercase()) " to " }
                                            None => { "started " }
                                        }
                                        (status_word(i.to).to_lowercase())
                                    }
                                }
                            }
                        }
                    }
                }
                footer { p { "Updated " (time(&now)) ". Days are UTC." } }
            }
        }
    }
}

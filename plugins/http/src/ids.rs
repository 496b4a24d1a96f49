//! Every id of an asset, page by page, handed to the host as it arrives
//! (`IdStream`), so a million ids never sit in the report or in memory.
//!
//! Three ways to page, as services do:
//! - cursor: the answer holds the next cursor (`next`), sent back as the
//!   `param` query parameter; stops on a missing, empty or repeated cursor;
//! - page number: `param` counts up from `first`; stops on an empty page,
//!   on the last of `total_pages`, or when `has_more` is false;
//! - offset: `offset_param` moves by `limit` (`limit_param`); stops on a
//!   short page or once `total` ids were read.
//!
//! `max_pages` bounds a run: a service that never stops paging is a clear
//! error, not a run that spins to its deadline.

use plugin_sdk::ConnectorError;
use plugin_sdk::ids::IdStream;
use plugin_sdk::log;
use serde_json::Value;

use crate::config::{Asset, Field, Ids, Pagination};
use crate::extract::{Site, truthy};
use crate::template::Vars;
use crate::{Answer, Session};

/// Where the next page starts.
enum Position {
    First,
    Cursor(String),
    Page(u64),
    Offset(u64),
}

/// Reads a paging field (next cursor, totals, has-more) from a page and
/// turns it into what paging needs with `read`; nothing found is `None`
/// (these fields are absent on the last page of many services).
fn paging<T>(
    subject: &str,
    field: &Field,
    place: &str,
    answer: &Answer,
    body: &Value,
    read: impl FnOnce(&Site<'_>, &Value) -> Result<T, ConnectorError>,
) -> Result<Option<T>, ConnectorError> {
    let expr = field.expr(place)?;
    let within = answer.within();
    let site = Site {
        subject,
        place,
        expr: &expr,
        within: &within,
    };
    site.find(body, true)?.map(|v| read(&site, &v)).transpose()
}

/// Streams the asset's ids; returns how many the host accepted.
pub async fn stream(
    session: &Session<'_>,
    subject: &str,
    asset: &Asset,
    config: &Ids,
    vars: &Vars,
    asset_place: &str,
) -> Result<u64, ConnectorError> {
    let place = format!("{asset_place}.ids");
    let request_place = format!("{place}.request");
    let mut out = IdStream::new(&asset.name);
    let mut position = Position::First;
    let max_pages = config.max_pages();
    let mut pages = 0u32;
    loop {
        let extra: Vec<(&str, String)> = match (&config.pagination, &position) {
            (Some(Pagination::Cursor { param, .. }), Position::Cursor(c)) => {
                vec![(param.as_str(), c.clone())]
            }
            (Some(Pagination::Page { param, first, .. }), Position::First) => {
                vec![(param.as_str(), first.to_string())]
            }
            (Some(Pagination::Page { param, .. }), Position::Page(p)) => {
                vec![(param.as_str(), p.to_string())]
            }
            (
                Some(Pagination::Offset {
                    offset_param,
                    limit_param,
                    limit,
                    ..
                }),
                position,
            ) => {
                let offset = match position {
                    Position::Offset(o) => *o,
                    _ => 0,
                };
                vec![
                    (offset_param.as_str(), offset.to_string()),
                    (limit_param.as_str(), limit.to_string()),
                ]
            }
            _ => Vec::new(),
        };
        let answer = session
            .send(&config.request, vars, &request_place, &extra)
            .await
            .map_err(|e| e.context(format_args!("{subject}: ids")))?;
        pages += 1;
        let Some(body) = &answer.body else {
            break; // `no_data`: no ids at all.
        };

        let items_place = format!("{place}.items");
        let expr = config.items.expr(&items_place)?;
        let within = answer.within();
        let site = Site {
            subject,
            place: "ids.items",
            expr: &expr,
            within: &within,
        };
        let found = site.find(body, config.items.optional)?;
        let empty = Vec::new();
        let items = match &found {
            Some(v) => site.array(v)?,
            None => &empty,
        };
        let id_expr = match &config.id {
            Some(field) => Some((field, field.expr(&format!("{place}.id"))?)),
            None => None,
        };
        for (i, item) in items.iter().enumerate() {
            let id = match &id_expr {
                None => site.text(item)?,
                Some((field, expr)) => {
                    let within = format!("item {i} of ids.items in {within}");
                    let item_site = Site {
                        subject,
                        place: "ids.id",
                        expr,
                        within: &within,
                    };
                    match item_site.find(item, field.optional)? {
                        Some(v) => item_site.text(&v)?,
                        None => continue,
                    }
                }
            };
            out.push(id)?;
        }
        let count = items.len() as u64;

        let next = match (&config.pagination, position) {
            (None, _) => None,
            (Some(Pagination::Cursor { next, .. }), position) => {
                let at = format!("{place}.pagination.next");
                let sent = match position {
                    Position::Cursor(c) => Some(c),
                    _ => None,
                };
                match paging(subject, next, &at, &answer, body, |site, v| site.text(v))? {
                    None => None,
                    Some(cursor) => {
                        if cursor.is_empty() {
                            None
                        } else if sent.as_deref() == Some(cursor.as_str()) {
                            log::warn(
                                "the ids endpoint sent back the cursor it was given; stopping",
                                &[("asset", &asset.name), ("cursor", &cursor)],
                            );
                            None
                        } else {
                            Some(Position::Cursor(cursor))
                        }
                    }
                }
            }
            (
                Some(Pagination::Page {
                    first,
                    total_pages,
                    has_more,
                    ..
                }),
                position,
            ) => {
                let page = match position {
                    Position::Page(p) => p,
                    _ => *first,
                };
                let mut more = count > 0;
                if more && let Some(field) = total_pages {
                    let at = format!("{place}.pagination.total_pages");
                    if let Some(total) =
                        paging(subject, field, &at, &answer, body, |site, v| site.count(v))?
                    {
                        // Pages count from `first`: the last is first + total - 1.
                        more = page + 1 < first.saturating_add(total);
                    }
                }
                if more && let Some(field) = has_more {
                    let at = format!("{place}.pagination.has_more");
                    if let Some(has) =
                        paging(subject, field, &at, &answer, body, |_, v| Ok(truthy(v)))?
                    {
                        more = has;
                    }
                }
                more.then(|| Position::Page(page + 1))
            }
            (Some(Pagination::Offset { limit, total, .. }), position) => {
                let offset = match position {
                    Position::Offset(o) => o,
                    _ => 0,
                };
                let read = offset.saturating_add(count);
                let mut more = count >= *limit;
                if more && let Some(field) = total {
                    let at = format!("{place}.pagination.total");
                    if let Some(total) =
                        paging(subject, field, &at, &answer, body, |site, v| site.count(v))?
                    {
                        more = read < total;
                    }
                }
                more.then_some(Position::Offset(read))
            }
        };
        match next {
            None => break,
            Some(_) if pages >= max_pages => {
                return Err(ConnectorError::config(format_args!(
                    "{subject}: ids: more pages after {max_pages} (ids.max_pages); raise {place}.max_pages if the service really has more ids, or check the pagination settings"
                )));
            }
            Some(next) => position = next,
        }
    }
    out.finish()
}

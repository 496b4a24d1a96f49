//! One asset of one run: send its requests, read its fields out of the
//! answers, stream its ids and judge its conditions.

use plugin_sdk::prelude::*;
use plugin_sdk::{ErrorTotal, Timestamp};
use serde_json::Value;

use crate::config::{Asset, Field};
use crate::extract::Site;
use crate::template::Vars;
use crate::{Answer, Session, conditions, ids};

/// An asset's answers and what messages call it.
struct Reader<'a> {
    asset: &'a Asset,
    subject: String,
    answers: Vec<Answer>,
}

/// What a field read found.
enum Read {
    /// Its answer had no data (`no_data` status): counts are 0, the rest absent.
    NoData,
    Found(Option<Value>),
}

impl Reader<'_> {
    fn answer(&self, request: Option<&str>, place: &str) -> Result<&Answer, ConnectorError> {
        let index = self.asset.request_index(request, place)?;
        self.answers.get(index).ok_or_else(|| {
            ConnectorError::system(format_args!("{place}: request {index} has no answer"))
        })
    }

    /// Runs `then` on what `field` finds, with the [`Site`] for messages.
    fn read<T>(
        &self,
        field: &Field,
        place: &str,
        then: impl FnOnce(&Site<'_>, Read) -> Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        let answer = self.answer(field.request.as_deref(), place)?;
        let expr = field.expr(place)?;
        let within = answer.within();
        let site = Site {
            subject: &self.subject,
            place,
            expr: &expr,
            within: &within,
        };
        let read = match &answer.body {
            None => Read::NoData,
            Some(body) => Read::Found(site.find(body, field.optional)?),
        };
        then(&site, read)
    }

    fn count(&self, field: &Field, place: &str) -> Result<Option<u64>, ConnectorError> {
        self.read(field, place, |site, read| match read {
            Read::NoData => Ok(Some(0)),
            Read::Found(None) => Ok(None),
            Read::Found(Some(v)) => site.count(&v).map(Some),
        })
    }

    fn text(&self, field: &Field, place: &str) -> Result<Option<String>, ConnectorError> {
        self.read(field, place, |site, read| match read {
            Read::Found(Some(v)) => site.text(&v).map(Some),
            _ => Ok(None),
        })
    }

    fn time(&self, field: &Field, place: &str) -> Result<Option<Timestamp>, ConnectorError> {
        self.read(field, place, |site, read| match read {
            Read::Found(Some(v)) => site.time(&v, field.format).map(Some),
            _ => Ok(None),
        })
    }

    /// The list a field finds, with the answer it came from.
    fn items(&self, field: &Field, place: &str) -> Result<Option<(Value, String)>, ConnectorError> {
        self.read(field, place, |site, read| match read {
            Read::Found(Some(v)) => Ok(Some((v, site.within.to_owned()))),
            _ => Ok(None),
        })
    }
}

/// Reads one item of a list: fields relative to the item.
struct ItemReader<'a> {
    subject: &'a str,
    item: &'a Value,
    within: String,
}

impl ItemReader<'_> {
    fn with<T>(
        &self,
        field: &Field,
        place: &str,
        then: impl FnOnce(&Site<'_>, Option<Value>) -> Result<Option<T>, ConnectorError>,
    ) -> Result<Option<T>, ConnectorError> {
        let expr = field.expr(place)?;
        let site = Site {
            subject: self.subject,
            place,
            expr: &expr,
            within: &self.within,
        };
        let found = site.find(self.item, field.optional)?;
        then(&site, found)
    }

    fn text(&self, field: Option<&Field>, place: &str) -> Result<Option<String>, ConnectorError> {
        match field {
            None => Ok(None),
            Some(field) => self.with(field, place, |site, v| v.map(|v| site.text(&v)).transpose()),
        }
    }
}

pub async fn observe(
    session: &Session<'_>,
    asset: &Asset,
    index: usize,
    vars: &Vars,
) -> Result<Observation, ConnectorError> {
    let place = format!("assets[{index}]");
    let vars = vars.clone().with("asset", &asset.name);
    let subject = format!("asset {:?}", asset.name);
    let mut answers = Vec::with_capacity(asset.requests.len());
    for (i, request) in asset.requests.iter().enumerate() {
        let at = format!("{place}.requests[{i}]");
        let answer = session.send(request, &vars, &at, &[]).await;
        answers.push(answer.map_err(|e| e.context(&subject))?);
    }
    let reader = Reader {
        asset,
        subject,
        answers,
    };
    let mut obs = Observation::new(&asset.name, asset.kind());

    if let Some(counts) = &asset.counts {
        if let Some(f) = &counts.expected {
            obs.counts.expected = reader.count(f, "counts.expected")?;
        }
        if let Some(f) = &counts.received {
            obs.counts.received = reader.count(f, "counts.received")?;
        }
        if let Some(f) = &counts.errored {
            obs.counts.errored = reader.count(f, "counts.errored")?;
        }
        for (name, f) in &counts.extras {
            if let Some(value) = reader.count(f, &format!("counts.extras.{name}"))? {
                obs = obs.extra(name, value);
            }
        }
    }
    if let Some(f) = &asset.freshness {
        obs.freshness = reader.time(f, "freshness")?;
    }
    if let Some(last) = &asset.last_received
        && let Some(id) = reader.text(&last.id, "last_received.id")?
    {
        let at = match &last.at {
            Some(f) => reader.time(f, "last_received.at")?,
            None => None,
        };
        obs = obs.last_received(id, at);
    }
    if let Some(errors) = &asset.errors
        && let Some((items, within)) = reader.items(&errors.items, "errors.items")?
    {
        let expr = errors.items.expr("errors.items")?;
        let site = Site {
            subject: &reader.subject,
            place: "errors.items",
            expr: &expr,
            within: &within,
        };
        for (i, item) in site.array(&items)?.iter().enumerate() {
            let item = ItemReader {
                subject: &reader.subject,
                item,
                within: format!("item {i} of errors.items in {within}"),
            };
            let kind = item.text(Some(&errors.kind), "errors.kind")?;
            let message = item.text(Some(&errors.message), "errors.message")?;
            let mut error = AssetError::new(
                kind.unwrap_or_else(|| "error".into()),
                message.unwrap_or_default(),
            );
            error.document_id = item.text(errors.document_id.as_ref(), "errors.document_id")?;
            error.log_link = item.text(errors.log_link.as_ref(), "errors.log_link")?;
            if let Some(f) = &errors.at {
                error.at = item.with(f, "errors.at", |site, v| {
                    v.map(|v| site.time(&v, f.format)).transpose()
                })?;
            }
            obs.record_error(error);
        }
    }
    if let Some(totals) = &asset.error_totals
        && let Some((items, within)) = reader.items(&totals.items, "error_totals.items")?
    {
        // The service's own totals count errors the sample left out: they
        // replace the totals worked out from the sample.
        obs.error_totals = error_totals(&reader.subject, totals, &items, &within)?;
    }
    for (key, f) in &asset.metadata {
        if let Some(value) = reader.text(f, &format!("metadata.{key}"))? {
            obs.set_metadata(key, value);
        }
    }
    if let Ok(tenant) = vars.render("{tenant}", false, "tenant") {
        obs.set_metadata("tenant", tenant);
    }
    if let Some(config) = &asset.ids {
        let sent = ids::stream(session, &reader.subject, asset, config, &vars, &place).await?;
        if obs.counts.received.is_none() {
            obs.counts.received = Some(sent);
        }
    }
    let conditions: Vec<&crate::config::Condition> = asset.conditions.iter().collect();
    obs.native_status = conditions::verdict(&conditions, |c| {
        reader.answer(c.request.as_deref(), "conditions")
    })?;
    Ok(obs)
}

fn error_totals(
    subject: &str,
    totals: &crate::config::ErrorTotals,
    items: &Value,
    within: &str,
) -> Result<Vec<ErrorTotal>, ConnectorError> {
    let expr = totals.items.expr("error_totals.items")?;
    let site = Site {
        subject,
        place: "error_totals.items",
        expr: &expr,
        within,
    };
    let mut out: Vec<ErrorTotal> = Vec::new();
    let mut add = |kind: String, count: u64| match out.iter_mut().find(|t| t.kind == kind) {
        Some(total) => total.count = total.count.saturating_add(count),
        None => out.push(ErrorTotal { kind, count }),
    };
    match (items, &totals.kind, &totals.count) {
        (Value::Object(map), None, None) => {
            for (kind, count) in map {
                add(kind.clone(), site.count(count)?);
            }
        }
        (Value::Array(list), Some(kind), Some(count)) => {
            for (i, item) in list.iter().enumerate() {
                let item = ItemReader {
                    subject,
                    item,
                    within: format!("item {i} of error_totals.items in {within}"),
                };
                let kind = item.text(Some(kind), "error_totals.kind")?;
                let count = item.with(count, "error_totals.count", |site, v| {
                    v.map(|v| site.count(&v)).transpose()
                })?;
                if let (Some(kind), Some(count)) = (kind, count) {
                    add(kind, count);
                }
            }
        }
        (_, None, None) => {
            return Err(site.wrong(items, "an object of error kind to count"));
        }
        _ => return Err(site.wrong(items, "a list of totals")),
    }
    Ok(out)
}

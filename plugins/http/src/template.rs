//! `{name}` placeholders in URLs, query values, headers and bodies.
//!
//! `{{` and `}}` stand for literal braces; a `{` not followed by a name and
//! `}` is kept as it is, so JSON-looking text needs no escaping. In a URL the
//! value is percent-encoded (a tenant `acme corp` becomes `acme%20corp`);
//! query values are encoded by the HTTP client, headers and body strings
//! take the value as it is. `{ids}`, the records of a resync or delete, is a
//! list: it stands only for a whole string value of the body.

use std::collections::BTreeMap;

use plugin_sdk::ConnectorError;
use plugin_sdk::http::encode;
use serde_json::Value;

/// One piece of a template.
enum Piece<'t> {
    Text(&'t str),
    /// `{{` or `}}`.
    Brace(char),
    Name(&'t str),
}

fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let Some(at) = rest.find(['{', '}']) else {
            out.push(Piece::Text(rest));
            break;
        };
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        rest = &rest[at..];
        if rest.starts_with("{{") || rest.starts_with("}}") {
            out.push(Piece::Brace(if rest.starts_with('{') { '{' } else { '}' }));
            rest = &rest[2..];
            continue;
        }
        if rest.starts_with('{')
            && let Some(end) = rest.find('}')
            && is_name(&rest[1..end])
        {
            out.push(Piece::Name(&rest[1..end]));
            rest = &rest[end + 1..];
            continue;
        }
        out.push(Piece::Text(&rest[..1]));
        rest = &rest[1..];
    }
    out
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `template` uses `{name}`.
pub fn uses(template: &str, name: &str) -> bool {
    pieces(template)
        .iter()
        .any(|p| matches!(p, Piece::Name(n) if *n == name))
}

/// Whether any string of `body` uses `{name}`.
pub fn body_uses(body: &Value, name: &str) -> bool {
    match body {
        Value::String(s) => uses(s, name),
        Value::Array(items) => items.iter().any(|v| body_uses(v, name)),
        Value::Object(map) => map.values().any(|v| body_uses(v, name)),
        _ => false,
    }
}

/// Every name `template` uses must be `known`.
pub fn check(template: &str, place: &str, known: &[&str]) -> Result<(), ConnectorError> {
    for piece in pieces(template) {
        if let Piece::Name(name) = piece
            && !known.contains(&name)
        {
            return Err(ConnectorError::config(format_args!(
                "{place}: unknown variable {{{name}}}; known: {}",
                known
                    .iter()
                    .map(|k| format!("{{{k}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(())
}

/// [`check`] for every string of a body; `{ids}` only as a whole string.
pub fn check_body(body: &Value, place: &str, known: &[&str]) -> Result<(), ConnectorError> {
    match body {
        Value::String(s) if s == "{ids}" => Ok(()),
        Value::String(s) => {
            if uses(s, "ids") {
                return Err(ConnectorError::config(format_args!(
                    "{place}: {{ids}} is a list and must be a whole string value (\"{{ids}}\")"
                )));
            }
            check(s, place, known)
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_body(v, &format!("{place}[{i}]"), known)),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_body(v, &format!("{place}.{k}"), known)),
        _ => Ok(()),
    }
}

/// The values a call's templates see.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
    ids: Option<Vec<String>>,
}

impl Vars {
    /// The configured variables and the tenant, if one is known.
    pub fn new<'a>(
        variables: impl IntoIterator<Item = (&'a String, &'a crate::config::Scalar)>,
        tenant: Option<&str>,
    ) -> Self {
        let mut values: BTreeMap<String, String> = variables
            .into_iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        if let Some(tenant) = tenant {
            values.insert("tenant".into(), tenant.into());
        }
        Vars { values, ids: None }
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    pub fn with_ids(mut self, ids: Vec<String>) -> Self {
        self.ids = Some(ids);
        self
    }

    fn value(&self, name: &str, place: &str) -> Result<&str, ConnectorError> {
        self.values.get(name).map(String::as_str).ok_or_else(|| {
            let why = match name {
                "tenant" => {
                    "no tenant is known: set `tenant` in the config (test-connection, discover, resync and delete calls have no run tenant)"
                }
                "asset" => "this request belongs to no asset",
                "scope" => "only a delete request knows its scope",
                _ => "it has no value here",
            };
            ConnectorError::config(format_args!("{place}: {{{name}}} is used but {why}"))
        })
    }

    /// `template` with its placeholders replaced; percent-encoded when it
    /// is (part of) a URL.
    pub fn render(&self, template: &str, url: bool, place: &str) -> Result<String, ConnectorError> {
        let mut out = String::with_capacity(template.len());
        for piece in pieces(template) {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Brace(c) => out.push(c),
                Piece::Name("ids") => {
                    return Err(ConnectorError::config(format_args!(
                        "{place}: {{ids}} is a list and must be a whole string value of the body"
                    )));
                }
                Piece::Name(name) => {
                    let value = self.value(name, place)?;
                    if url {
                        out.push_str(&encode(value));
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        Ok(out)
    }

    /// `body` with every string rendered and `"{ids}"` replaced by the list.
    pub fn render_body(&self, body: &Value, place: &str) -> Result<Value, ConnectorError> {
        Ok(match body {
            Value::String(s) if s == "{ids}" => match &self.ids {
                Some(ids) => Value::from(ids.clone()),
                None => {
                    return Err(ConnectorError::config(format_args!(
                        "{place}: {{ids}} only has a value in resync and delete requests"
                    )));
                }
            },
            Value::String(s) => Value::String(self.render(s, false, place)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.render_body(v, &format!("{place}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_body(v, &format!("{place}.{k}"))?)))
                    .collect::<Result<_, ConnectorError>>()?,
            ),
            other => other.clone(),
        })
    }
}

//! The check's config, as serde reads it. The JSON Schema in `schema.rs`
//! describes the same shapes for the daemon (which validates before the
//! plugin runs and reports errors with JSON pointers); what a schema cannot
//! say (an expression that does not compile, a request name that does not
//! exist) is checked by [`Config::validate`] before any request is sent.

use std::collections::BTreeMap;
use std::time::Duration;

use plugin_sdk::ConnectorError;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::extract::Expr;
use crate::template;

/// How many pages of ids a run reads unless `ids.max_pages` says otherwise.
pub const DEFAULT_MAX_PAGES: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Relative request URLs resolve against it.
    #[serde(default)]
    pub base_url: Option<String>,
    /// `{tenant}`: wins over the run's tenant, since the watched service may
    /// know the tenant by another id than Tributary does.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub auth: Option<Auth>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(deserialize_with = "one_or_many")]
    pub assets: Vec<Asset>,
    #[serde(default)]
    pub resync: Option<Action>,
    #[serde(default)]
    pub delete: Option<Action>,
}

/// A string, number or boolean, used as text (query values, variables).
#[derive(Debug, Clone)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// `assets` as one table or a list of them. Delegating to the element's own
/// `Deserialize` (rather than an untagged enum) keeps serde's path to a bad
/// field, so the error still names `assets[1].counts.received`.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Asset>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<Asset>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an asset table or a list of asset tables")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Asset>, A::Error> {
            Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<Asset>, A::Error> {
            Asset::deserialize(de::value::MapAccessDeserializer::new(map)).map(|a| vec![a])
        }
    }
    deserializer.deserialize_any(OneOrMany)
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    Bearer { token: String },
    Basic { user: String, password: String },
    Header { name: String, value: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub request: Request,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_sdk(self) -> plugin_sdk::http::Method {
        use plugin_sdk::http::Method as M;
        match self {
            Method::Get => M::GET,
            Method::Post => M::POST,
            Method::Put => M::PUT,
            Method::Patch => M::PATCH,
            Method::Delete => M::DELETE,
        }
    }
}

/// What an answer's status means, when the default (2xx is success, the
/// rest classified as the SDK does) is not right for this service.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatusOutcome {
    /// Success: extract from the body.
    Ok,
    /// Success, but there is nothing to read (a tenant the service has no
    /// data for): counts are 0, other fields absent, body conditions skipped.
    NoData,
    Config,
    Auth,
    Transient,
    System,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// How fields and conditions refer to it; only in an asset's `requests`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "Request::default_method")]
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub query: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub timeout: Option<String>,
    /// Keyed by a status (`"404"`) or a class (`"4xx"`); the exact status wins.
    #[serde(default)]
    pub status: BTreeMap<String, StatusOutcome>,
}

impl Request {
    fn default_method() -> Method {
        Method::Get
    }

    /// What `status` means for this request: `None` for the default rule.
    pub fn outcome(&self, status: u16) -> Option<StatusOutcome> {
        let class = format!("{}xx", status / 100);
        self.status
            .get(&status.to_string())
            .or_else(|| self.status.get(&class))
            .copied()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub requests: Vec<Request>,
    #[serde(default)]
    pub counts: Option<Counts>,
    #[serde(default)]
    pub freshness: Option<Field>,
    #[serde(default)]
    pub last_received: Option<LastReceived>,
    #[serde(default)]
    pub errors: Option<Errors>,
    #[serde(default)]
    pub error_totals: Option<ErrorTotals>,
    #[serde(default)]
    pub metadata: BTreeMap<String, Field>,
    #[serde(default)]
    pub ids: Option<Ids>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl Asset {
    pub const DEFAULT_KIND: &'static str = "endpoint";

    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or(Self::DEFAULT_KIND)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    #[serde(default)]
    pub expected: Option<Field>,
    #[serde(default)]
    pub received: Option<Field>,
    #[serde(default)]
    pub errored: Option<Field>,
    #[serde(default)]
    pub extras: BTreeMap<String, Field>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastReceived {
    pub id: Field,
    #[serde(default)]
    pub at: Option<Field>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    pub items: Field,
    pub kind: Field,
    pub message: Field,
    #[serde(default)]
    pub document_id: Option<Field>,
    #[serde(default)]
    pub log_link: Option<Field>,
    #[serde(default)]
    pub at: Option<Field>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorTotals {
    pub items: Field,
    #[serde(default)]
    pub kind: Option<Field>,
    #[serde(default)]
    pub count: Option<Field>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    pub request: Request,
    pub items: Field,
    #[serde(default)]
    pub id: Option<Field>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    #[serde(default)]
    pub max_pages: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    Cursor {
        #[serde(default = "Pagination::cursor_param")]
        param: String,
        next: Field,
    },
    Page {
        #[serde(default = "Pagination::page_param")]
        param: String,
        #[serde(default = "Pagination::first_page")]
        first: u64,
        #[serde(default)]
        total_pages: Option<Field>,
        #[serde(default)]
        has_more: Option<Field>,
    },
    Offset {
        #[serde(default = "Pagination::offset_param")]
        offset_param: String,
        #[serde(default = "Pagination::limit_param")]
        limit_param: String,
        limit: u64,
        #[serde(default)]
        total: Option<Field>,
    },
}

impl Pagination {
    fn cursor_param() -> String {
        "cursor".into()
    }
    fn page_param() -> String {
        "page".into()
    }
    fn first_page() -> u64 {
        1
    }
    fn offset_param() -> String {
        "offset".into()
    }
    fn limit_param() -> String {
        "limit".into()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
}

/// Where a value is in a JSON answer: `{ pointer = "/a/b" }` or
/// `{ jmespath = "a.b" }`, from the asset's first request unless `request`
/// names another. Every field must find a non-null value unless `optional`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub jmespath: Option<String>,
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub format: Option<TimeFormat>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Warn,
    #[default]
    Error,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Op {
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "in")]
    In,
    #[serde(rename = "exists")]
    Exists,
    #[serde(rename = "truthy")]
    Truthy,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::Exists => "exists",
            Op::Truthy => "truthy",
        }
    }

    /// Whether the operator compares with a `value`.
    pub fn takes_value(self) -> bool {
        !matches!(self, Op::Exists | Op::Truthy)
    }
}

/// A Gatus-style condition: on the answer's status (`status = [200]`) or on
/// a value of its body (`pointer`/`jmespath`, `op`, `value`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub status: Option<Vec<u16>>,
    #[serde(default)]
    pub pointer: Option<String>,
    #[serde(default)]
    pub jmespath: Option<String>,
    #[serde(default)]
    pub op: Option<Op>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub level: Level,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub request: Request,
    #[serde(default)]
    pub affected: Option<Field>,
}

/// `"500ms"`, `"10s"`, `"2m"`.
pub fn parse_duration(text: &str, place: &str) -> Result<Duration, ConnectorError> {
    let bad = || {
        ConnectorError::config(format_args!(
            "{place}: {text:?} is not a duration such as \"500ms\", \"10s\" or \"2m\""
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(bad());
    }
    Ok(duration)
}

/// The names a template may use besides the configured variables.
pub const BUILT_IN_VARIABLES: [&str; 4] = ["tenant", "asset", "ids", "scope"];

impl Config {
    /// Everything the schema cannot check, before any request is sent: a
    /// config mistake must never surface halfway through a run.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let mut known: Vec<&str> = BUILT_IN_VARIABLES.to_vec();
        known.extend(self.variables.keys().map(String::as_str));
        let known = known.as_slice();
        if let Some(url) = &self.base_url {
            template::check(url, "base_url", known)?;
        }
        for name in self.variables.keys() {
            if BUILT_IN_VARIABLES.contains(&name.as_str()) {
                return Err(ConnectorError::config(format_args!(
                    "variables.{name}: {{{name}}} is built in and cannot be set here"
                )));
            }
        }
        if let Some(timeout) = &self.timeout {
            parse_duration(timeout, "timeout")?;
        }
        for (name, value) in &self.headers {
            template::check(value, &format!("headers.{name}"), known)?;
        }
        if self.assets.is_empty() {
            return Err(ConnectorError::config(
                "assets: configure at least one asset",
            ));
        }
        if let Some(health) = &self.health {
            health.request.validate("health.request", false, known)?;
            for (i, condition) in health.conditions.iter().enumerate() {
                let place = format!("health.conditions[{i}]");
                if condition.request.is_some() {
                    return Err(ConnectorError::config(format_args!(
                        "{place}.request: health conditions judge the health request; remove `request`"
                    )));
                }
                condition.validate(&place)?;
            }
        }
        for (i, asset) in self.assets.iter().enumerate() {
            if self.assets[..i].iter().any(|a| a.name == asset.name) {
                return Err(ConnectorError::config(format_args!(
                    "assets[{i}].name: asset {:?} is configured twice",
                    asset.name
                )));
            }
            asset.validate(&format!("assets[{i}]"), known)?;
        }
        for (action, name) in [(&self.resync, "resync"), (&self.delete, "delete")] {
            if let Some(action) = action {
                action
                    .request
                    .validate(&format!("{name}.request"), false, known)?;
                if let Some(field) = &action.affected {
                    field.validate(&format!("{name}.affected"), FieldUse::Plain)?;
                }
            }
        }
        Ok(())
    }

    pub fn asset(&self, name: &str) -> Result<&Asset, ConnectorError> {
        self.assets.iter().find(|a| a.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.assets.iter().map(|a| a.name.as_str()).collect();
            ConnectorError::config(format_args!(
                "unknown asset {name:?}; this check has {}",
                names.join(", ")
            ))
        })
    }
}

/// Where a field is used, which decides the keys it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldUse {
    /// Read from one answer, no `request`, no `format` (action outcomes, ids).
    Plain,
    /// Read from one of the asset's requests.
    Asset,
    /// A time read from one of the asset's requests.
    AssetTime,
    /// Read from each item of a list, relative to it.
    Item,
    /// A time read from each item.
    ItemTime,
}

impl Field {
    pub fn validate(&self, place: &str, usage: FieldUse) -> Result<(), ConnectorError> {
        Expr::compile(self.pointer.as_deref(), self.jmespath.as_deref(), place)?;
        let can_name_request = matches!(usage, FieldUse::Asset | FieldUse::AssetTime);
        if self.request.is_some() && !can_name_request {
            return Err(ConnectorError::config(format_args!(
                "{place}.request: this field is read from one answer only; remove `request`"
            )));
        }
        let is_time = matches!(usage, FieldUse::AssetTime | FieldUse::ItemTime);
        if self.format.is_some() && !is_time {
            return Err(ConnectorError::config(format_args!(
                "{place}.format: only times have a format; remove `format`"
            )));
        }
        Ok(())
    }

    /// The compiled expression; validated already, so an error here is one
    /// of ours, still reported as config.
    pub fn expr(&self, place: &str) -> Result<Expr, ConnectorError> {
        Expr::compile(self.pointer.as_deref(), self.jmespath.as_deref(), place)
    }
}

impl Request {
    pub fn validate(
        &self,
        place: &str,
        may_be_named: bool,
        known: &[&str],
    ) -> Result<(), ConnectorError> {
        if self.name.is_some() && !may_be_named {
            return Err(ConnectorError::config(format_args!(
                "{place}.name: only an asset's requests have names; remove `name`"
            )));
        }
        template::check(&self.url, &format!("{place}.url"), known)?;
        if template::uses(&self.url, "ids") {
            return Err(ConnectorError::config(format_args!(
                "{place}.url: {{ids}} is a list and only fits a whole string value of the body"
            )));
        }
        for (key, value) in &self.query {
            template::check(&value.0, &format!("{place}.query.{key}"), known)?;
        }
        for (key, value) in &self.headers {
            template::check(value, &format!("{place}.headers.{key}"), known)?;
        }
        if let Some(body) = &self.body {
            template::check_body(body, &format!("{place}.body"), known)?;
        }
        if let Some(timeout) = &self.timeout {
            parse_duration(timeout, &format!("{place}.timeout"))?;
        }
        for key in self.status.keys() {
            let valid = key.len() == 3
                && key.starts_with(['1', '2', '3', '4', '5'])
                && (key[1..].chars().all(|c| c.is_ascii_digit()) || &key[1..] == "xx");
            if !valid {
                return Err(ConnectorError::config(format_args!(
                    "{place}.status: {key:?} is neither a status such as \"404\" nor a class such as \"4xx\""
                )));
            }
        }
        Ok(())
    }
}

impl Condition {
    pub fn validate(&self, place: &str) -> Result<(), ConnectorError> {
        let on_body = self.pointer.is_some() || self.jmespath.is_some();
        match (&self.status, on_body) {
            (Some(_), true) => {
                return Err(ConnectorError::config(format_args!(
                    "{place}: a condition is on `status` or on the body (`pointer`/`jmespath`), not both"
                )));
            }
            (Some(statuses), false) => {
                if statuses.is_empty() {
                    return Err(ConnectorError::config(format_args!(
                        "{place}.status: list at least one status"
                    )));
                }
                if self.op.is_some() || self.value.is_some() {
                    return Err(ConnectorError::config(format_args!(
                        "{place}: a status condition takes no `op` or `value`"
                    )));
                }
                return Ok(());
            }
            (None, false) => {
                return Err(ConnectorError::config(format_args!(
                    "{place}: set `status`, `pointer` or `jmespath`"
                )));
            }
            (None, true) => {}
        }
        Expr::compile(self.pointer.as_deref(), self.jmespath.as_deref(), place)?;
        let op = self.op.unwrap_or(Op::Truthy);
        match (&self.value, op.takes_value()) {
            (None, true) => Err(ConnectorError::config(format_args!(
                "{place}: `op = \"{}\"` needs a `value`",
                op.symbol()
            ))),
            (Some(_), false) => Err(ConnectorError::config(format_args!(
                "{place}: `op = \"{}\"` takes no `value`",
                op.symbol()
            ))),
            (Some(value), true) => match op {
                Op::Lt | Op::Le | Op::Gt | Op::Ge if !value.is_number() => {
                    Err(ConnectorError::config(format_args!(
                        "{place}.value: `{}` compares numbers; {value} is not one",
                        op.symbol()
                    )))
                }
                Op::In if !value.is_array() => Err(ConnectorError::config(format_args!(
                    "{place}.value: `in` needs a list of values"
                ))),
                _ => Ok(()),
            },
            (None, false) => Ok(()),
        }
    }
}

impl Asset {
    fn validate(&self, place: &str, known: &[&str]) -> Result<(), ConnectorError> {
        if self.requests.is_empty() && self.ids.is_none() {
            return Err(ConnectorError::config(format_args!(
                "{place}: asset {:?} has neither `requests` nor `ids`",
                self.name
            )));
        }
        for (i, request) in self.requests.iter().enumerate() {
            let at = format!("{place}.requests[{i}]");
            request.validate(&at, true, known)?;
            if let Some(name) = &request.name
                && self.requests[..i]
                    .iter()
                    .any(|r| r.name.as_ref() == Some(name))
            {
                return Err(ConnectorError::config(format_args!(
                    "{at}.name: request {name:?} is named twice"
                )));
            }
        }
        let mut fields: Vec<(String, &Field, FieldUse)> = Vec::new();
        if let Some(counts) = &self.counts {
            for (name, field) in [
                ("expected", &counts.expected),
                ("received", &counts.received),
                ("errored", &counts.errored),
            ] {
                if let Some(field) = field {
                    fields.push((format!("counts.{name}"), field, FieldUse::Asset));
                }
            }
            for (name, field) in &counts.extras {
                fields.push((format!("counts.extras.{name}"), field, FieldUse::Asset));
            }
        }
        if let Some(field) = &self.freshness {
            fields.push(("freshness".into(), field, FieldUse::AssetTime));
        }
        if let Some(last) = &self.last_received {
            fields.push(("last_received.id".into(), &last.id, FieldUse::Asset));
            if let Some(at) = &last.at {
                fields.push(("last_received.at".into(), at, FieldUse::AssetTime));
            }
        }
        if let Some(errors) = &self.errors {
            fields.push(("errors.items".into(), &errors.items, FieldUse::Asset));
            fields.push(("errors.kind".into(), &errors.kind, FieldUse::Item));
            fields.push(("errors.message".into(), &errors.message, FieldUse::Item));
            for (name, field) in [
                ("document_id", &errors.document_id),
                ("log_link", &errors.log_link),
            ] {
                if let Some(field) = field {
                    fields.push((format!("errors.{name}"), field, FieldUse::Item));
                }
            }
            if let Some(at) = &errors.at {
                fields.push(("errors.at".into(), at, FieldUse::ItemTime));
            }
        }
        if let Some(totals) = &self.error_totals {
            fields.push(("error_totals.items".into(), &totals.items, FieldUse::Asset));
            for (name, field) in [("kind", &totals.kind), ("count", &totals.count)] {
                if let Some(field) = field {
                    fields.push((format!("error_totals.{name}"), field, FieldUse::Item));
                }
            }
            if totals.kind.is_some() != totals.count.is_some() {
                return Err(ConnectorError::config(format_args!(
                    "{place}.error_totals: set both `kind` and `count` (for a list of totals) or neither (for an object of kind to count)"
                )));
            }
        }
        for (key, field) in &self.metadata {
            fields.push((format!("metadata.{key}"), field, FieldUse::Asset));
        }
        for (name, field, usage) in fields {
            let at = format!("{place}.{name}");
            field.validate(&at, usage)?;
            if matches!(usage, FieldUse::Asset | FieldUse::AssetTime) {
                self.request_index(field.request.as_deref(), &at)?;
            }
        }
        if let Some(ids) = &self.ids {
            ids.validate(&format!("{place}.ids"), known)?;
        }
        for (i, condition) in self.conditions.iter().enumerate() {
            let at = format!("{place}.conditions[{i}]");
            condition.validate(&at)?;
            self.request_index(condition.request.as_deref(), &at)?;
        }
        Ok(())
    }

    /// The index of the request `name` refers to (the first when `None`).
    pub fn request_index(&self, name: Option<&str>, place: &str) -> Result<usize, ConnectorError> {
        match name {
            None if self.requests.is_empty() => Err(ConnectorError::config(format_args!(
                "{place}: asset {:?} has no `requests` to read from",
                self.name
            ))),
            None => Ok(0),
            Some(name) => self
                .requests
                .iter()
                .position(|r| r.name.as_deref() == Some(name))
                .ok_or_else(|| {
                    ConnectorError::config(format_args!(
                        "{place}.request: asset {:?} has no request named {name:?}",
                        self.name
                    ))
                }),
        }
    }
}

impl Ids {
    fn validate(&self, place: &str, known: &[&str]) -> Result<(), ConnectorError> {
        self.request
            .validate(&format!("{place}.request"), false, known)?;
        self.items
            .validate(&format!("{place}.items"), FieldUse::Plain)?;
        if let Some(id) = &self.id {
            id.validate(&format!("{place}.id"), FieldUse::Item)?;
        }
        if self.max_pages == Some(0) {
            return Err(ConnectorError::config(format_args!(
                "{place}.max_pages: must be at least 1"
            )));
        }
        let at = format!("{place}.pagination");
        match &self.pagination {
            None => Ok(()),
            Some(Pagination::Cursor { next, .. }) => {
                next.validate(&format!("{at}.next"), FieldUse::Plain)
            }
            Some(Pagination::Page {
                total_pages,
                has_more,
                ..
            }) => {
                for (name, field) in [("total_pages", total_pages), ("has_more", has_more)] {
                    if let Some(field) = field {
                        field.validate(&format!("{at}.{name}"), FieldUse::Plain)?;
                    }
                }
                Ok(())
            }
            Some(Pagination::Offset { limit, total, .. }) => {
                if *limit == 0 {
                    return Err(ConnectorError::config(format_args!(
                        "{at}.limit: must be at least 1"
                    )));
                }
                match total {
                    Some(field) => field.validate(&format!("{at}.total"), FieldUse::Plain),
                    None => Ok(()),
                }
            }
        }
    }

    pub fn max_pages(&self) -> u32 {
        self.max_pages.unwrap_or(DEFAULT_MAX_PAGES)
    }
}

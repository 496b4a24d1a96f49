//! # The http connector
//!
//! Watches any service that answers JSON over HTTP, so a team can watch its
//! own services without writing a plugin. The check's config says, per
//! asset, which requests to send and where in their answers the asset's
//! counts, freshness, last record, errors, metadata and ids are, by JSON
//! Pointer (`{ pointer = "/documents/received" }`) or JMESPath
//! (`{ jmespath = "errors[?kind=='parse'] | length(@)" }`). Gatus-style
//! conditions on an answer's status and body give the asset a native status
//! (ok, warn, error) that names the failed condition and what it saw.
//!
//! Data Flora's list of what a system should expose is the model: totals per
//! tenant, errors in aggregate and by document id, every document id of a
//! tenant (paged by cursor, page number or offset), and re-sync and delete
//! per tenant, which become the optional `resync` and `delete` actions when
//! the config gives their requests.
//!
//! Wire format: whatever the config describes. URLs, query values, headers
//! and bodies are templates over `{tenant}`, `{asset}` and the configured
//! `variables` (`template.rs`); auth is a bearer token, basic user and
//! password, or a named header, all secrets. An answer's status is success
//! when 2xx unless the request's `status` table says otherwise (`"404" =
//! "no_data"` reads a missing tenant as zero documents); every other status
//! is classified as the SDK does (401/403 auth, 408/429/5xx transient with
//! `Retry-After`, other 4xx config).
//!
//! Each run sends each configured request once per asset (plus one per page
//! of ids): the service sees what its owners wrote down, nothing more.

#![cfg(target_arch = "wasm32")]

mod conditions;
mod config;
mod extract;
mod ids;
mod observe;
mod template;

use plugin_sdk::http::Client;
use plugin_sdk::log;
use plugin_sdk::prelude::*;
use serde_json::Value;

use crate::config::{Action, Config, Request, StatusOutcome, parse_duration};
use crate::extract::Site;
use crate::template::Vars;

/// The JSON Schema (draft 2020-12) of [`Config`], which the daemon validates
/// a check against, reporting each error with its JSON pointer. It follows
/// the serde types key for key; where a key is allowed only in some places
/// (`request` on an asset's fields, `format` on times, `name` on an asset's
/// requests) it says so per place, and `Config::validate` refuses the same.
/// Kept as a file, not `json!`: it is long, and JSON is what it is.
const SCHEMA: &str = include_str!("schema.json");

/// One answer, read in full.
pub struct Answer {
    pub status: u16,
    /// `None` when the request's `status` table calls this status `no_data`.
    pub body: Option<Value>,
    /// `GET http://host/path` (no query: it may hold secrets), for messages.
    pub what: String,
}

impl Answer {
    /// `the answer to GET http://host/path`, for messages.
    pub fn within(&self) -> String {
        format!("the answer to {}", self.what)
    }
}

/// A check's config with its HTTP client: auth and timeout on every request.
pub struct Session<'c> {
    cfg: &'c Config,
    client: Client,
}

impl<'c> Session<'c> {
    /// Validates the config first, so that no call sends anything on a
    /// config that is wrong somewhere else.
    fn new(cfg: &'c Config) -> Result<Self, ConnectorError> {
        cfg.validate()?;
        let mut client = Client::new();
        if let Some(timeout) = &cfg.timeout {
            client = client.timeout(parse_duration(timeout, "timeout")?);
        }
        client = match &cfg.auth {
            None => client,
            Some(config::Auth::Bearer { token }) => client.bearer_auth(token),
            Some(config::Auth::Basic { user, password }) => client.basic_auth(user, password),
            Some(config::Auth::Header { name, value }) => client.header(name, value),
        };
        Ok(Session { cfg, client })
    }

    /// The variables every template of a call sees, with `tenant` when one
    /// is known (the config's wins over the run's).
    fn vars(&self, run_tenant: Option<&str>) -> Vars {
        Vars::new(
            &self.cfg.variables,
            self.cfg.tenant.as_deref().or(run_tenant),
        )
    }

    /// `url` resolved against `base_url`.
    fn absolute(&self, url: String, vars: &Vars) -> Result<String, ConnectorError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(url);
        }
        let Some(base) = &self.cfg.base_url else {
            return Err(ConnectorError::config(format_args!(
                "the URL {url:?} is relative but the config has no `base_url`"
            )));
        };
        let base = vars.render(base, true, "base_url")?;
        let base = base.trim_end_matches('/');
        Ok(if url.starts_with('/') {
            format!("{base}{url}")
        } else {
            format!("{base}/{url}")
        })
    }

    /// Send `request` (plus `extra` query parameters, for pagination) and
    /// read its answer, applying its `status` table. `place` is where the
    /// request is in the config, for messages.
    async fn send(
        &self,
        request: &Request,
        vars: &Vars,
        place: &str,
        extra: &[(&str, String)],
    ) -> Result<Answer, ConnectorError> {
        let url = vars.render(&request.url, true, &format!("{place}.url"))?;
        let url = self.absolute(url, vars)?;
        let what = format!(
            "{} {}",
            request.method.as_sdk(),
            url.split('?').next().unwrap_or_default()
        );
        let mut builder = self.client.request(request.method.as_sdk(), &url);
        for (name, value) in &self.cfg.headers {
            builder = builder.header(name, vars.render(value, false, &format!("headers.{name}"))?);
        }
        for (name, value) in &request.headers {
            let at = format!("{place}.headers.{name}");
            builder = builder.header(name, vars.render(value, false, &at)?);
        }
        for (key, value) in &request.query {
            let at = format!("{place}.query.{key}");
            builder = builder.query(key, vars.render(&value.0, false, &at)?);
        }
        for (key, value) in extra {
            builder = builder.query(*key, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(&vars.render_body(body, &format!("{place}.body"))?);
        }
        if let Some(timeout) = &request.timeout {
            builder = builder.timeout(parse_duration(timeout, &format!("{place}.timeout"))?);
        }
        let response = builder.send_any_status().await?;
        let status = response.status();
        let outcome = match request.outcome(status) {
            Some(outcome) => outcome,
            None if response.is_success() => StatusOutcome::Ok,
            None => {
                return Err(response.error_for_status().err().unwrap_or_else(|| {
                    ConnectorError::system(format_args!("{what}: HTTP {status}"))
                }));
            }
        };
        let class = match outcome {
            StatusOutcome::Ok => {
                let body = if response.bytes().iter().all(u8::is_ascii_whitespace) {
                    Value::Null
                } else {
                    response.json::<Value>()?
                };
                return Ok(Answer {
                    status,
                    body: Some(body),
                    what,
                });
            }
            StatusOutcome::NoData => {
                return Ok(Answer {
                    status,
                    body: None,
                    what,
                });
            }
            StatusOutcome::Config => ErrorClass::Config,
            StatusOutcome::Auth => ErrorClass::Auth,
            StatusOutcome::Transient => ErrorClass::Transient,
            StatusOutcome::System => ErrorClass::System,
        };
        Err(ConnectorError::new(
            class,
            format_args!("{what}: HTTP {status}, an error by {place}.status"),
        ))
    }

    /// Send a resync or delete request and say what the service answered.
    async fn act(
        &self,
        action: &Action,
        name: &str,
        vars: &Vars,
    ) -> Result<ActionOutcome, ConnectorError> {
        let answer = self
            .send(&action.request, vars, &format!("{name}.request"), &[])
            .await?;
        let mut outcome =
            ActionOutcome::new().message(format!("{} answered {}", answer.what, answer.status));
        if let (Some(field), Some(body)) = (&action.affected, &answer.body) {
            let place = format!("{name}.affected");
            let expr = field.expr(&place)?;
            let within = answer.within();
            let site = Site {
                subject: name,
                place: &place,
                expr: &expr,
                within: &within,
            };
            if let Some(value) = site.find(body, field.optional)? {
                outcome = outcome.affected(site.count(&value)?);
            }
        }
        Ok(outcome)
    }
}

/// The connector: all state lives in the config.
pub struct Http;

impl Connector for Http {
    type Config = Config;

    fn describe() -> Descriptor {
        let mut descriptor = Descriptor::new(
            "http",
            env!("CARGO_PKG_VERSION"),
            "Generic JSON-over-HTTP connector: counts, freshness, errors, ids and conditions read from any service's answers by JSON Pointer or JMESPath",
        )
        // `describe` sees no config: both actions are declared, and a check
        // whose config gives no `resync` or `delete` request refuses them
        // with a config error before sending anything.
        .capabilities(Capabilities::RESYNC | Capabilities::DELETE);
        descriptor.config_schema = SCHEMA.to_owned();
        descriptor
    }

    /// Sends the `health` request (or else the first asset's first request)
    /// and judges its conditions: a failed `error`-level condition fails
    /// the test, a `warn`-level one is logged.
    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        let session = Session::new(&cfg)?;
        let vars = session.vars(None);
        let (answer, verdict) = match &cfg.health {
            Some(health) => {
                let answer = session
                    .send(&health.request, &vars, "health.request", &[])
                    .await?;
                let all: Vec<&config::Condition> = health.conditions.iter().collect();
                let verdict = conditions::verdict(&all, |_| Ok(&answer))?;
                (answer.what, verdict)
            }
            None => {
                let asset = &cfg.assets[0];
                let vars = vars.with("asset", &asset.name);
                // Validation made sure an asset has requests or ids.
                let (request, place) = match (asset.requests.first(), &asset.ids) {
                    (Some(request), _) => (request, "assets[0].requests[0]"),
                    (None, Some(ids)) => (&ids.request, "assets[0].ids.request"),
                    (None, None) => {
                        return Err(ConnectorError::config(
                            "assets[0] has neither `requests` nor `ids`",
                        ));
                    }
                };
                let answer = session.send(request, &vars, place, &[]).await?;
                // Only the conditions on the first request can be judged.
                let first: Vec<&config::Condition> = if asset.requests.is_empty() {
                    Vec::new()
                } else {
                    asset
                        .conditions
                        .iter()
                        .filter(|c| asset.request_index(c.request.as_deref(), "").ok() == Some(0))
                        .collect()
                };
                let verdict = conditions::verdict(&first, |_| Ok(&answer))?;
                (answer.what, verdict)
            }
        };
        match verdict {
            Some(status) if status.level == StatusLevel::Error => {
                Err(ConnectorError::system(format_args!(
                    "{answer}: condition {} failed: {}",
                    status.label,
                    status.message.unwrap_or_default()
                )))
            }
            Some(status) if status.level == StatusLevel::Warn => {
                log::warn(
                    "a warn-level condition failed",
                    &[
                        ("condition", &status.label),
                        ("seen", &status.message.unwrap_or_default()),
                    ],
                );
                Ok(())
            }
            _ => {
                log::info("connection ok", &[("request", &answer)]);
                Ok(())
            }
        }
    }

    async fn discover(cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Session::new(&cfg)?;
        Ok(cfg
            .assets
            .iter()
            .map(|asset| {
                let description = asset.description.clone().unwrap_or_else(|| {
                    let request = asset
                        .requests
                        .first()
                        .or(asset.ids.as_ref().map(|ids| &ids.request));
                    match request {
                        Some(r) => format!("{} {}", r.method.as_sdk(), r.url),
                        None => String::new(),
                    }
                });
                AssetDescriptor::new(&asset.name, asset.kind()).description(description)
            })
            .collect())
    }

    async fn collect(cfg: Config, ctx: RunContext) -> Result<Report, ConnectorError> {
        let session = Session::new(&cfg)?;
        let vars = session.vars(ctx.tenant.as_deref());
        let mut report = Report::builder();
        for (i, asset) in cfg.assets.iter().enumerate() {
            report.push(observe::observe(&session, asset, i, &vars).await?);
        }
        log::info(
            "collected",
            &[("assets", &report.len()), ("attempt", &ctx.attempt)],
        );
        Ok(report.build())
    }

    /// Sends the `resync` request with `{ids}` the records to send again
    /// (an empty list: all of them).
    async fn resync(
        cfg: Config,
        asset: String,
        ids: Vec<String>,
    ) -> Result<ActionOutcome, ConnectorError> {
        let session = Session::new(&cfg)?;
        let action = cfg
            .resync
            .as_ref()
            .ok_or_else(|| ConnectorError::config("this check's config has no `resync` request"))?;
        let asset = cfg.asset(&asset)?;
        if !ids.is_empty() && !action_uses_ids(action) {
            return Err(ConnectorError::config(format_args!(
                "resync of {} record(s) asked, but resync.request does not send {{ids}}: it would resync everything",
                ids.len()
            )));
        }
        let vars = session.vars(None).with("asset", &asset.name).with_ids(ids);
        session.act(action, "resync", &vars).await
    }

    /// Sends the `delete` request. `{scope}` is `asset`, `tenant` or `ids`;
    /// a tenant scope sets `{tenant}` unless the config names the tenant;
    /// `{ids}` is the records of an ids scope and empty otherwise.
    async fn delete(
        cfg: Config,
        asset: String,
        scope: DeleteScope,
    ) -> Result<ActionOutcome, ConnectorError> {
        let session = Session::new(&cfg)?;
        let action = cfg
            .delete
            .as_ref()
            .ok_or_else(|| ConnectorError::config("this check's config has no `delete` request"))?;
        let asset = cfg.asset(&asset)?;
        let vars = match scope {
            DeleteScope::Asset => session.vars(None).with("scope", "asset").with_ids(vec![]),
            DeleteScope::Tenant(tenant) => session
                .vars(Some(&tenant))
                .with("scope", "tenant")
                .with_ids(vec![]),
            DeleteScope::Ids(ids) => {
                // Without `{ids}` the request would delete more than asked.
                if !action_uses_ids(action) {
                    return Err(ConnectorError::config(
                        "delete of some records asked, but delete.request does not send {ids}: it would delete more than these records",
                    ));
                }
                session.vars(None).with("scope", "ids").with_ids(ids)
            }
        };
        session
            .act(action, "delete", &vars.with("asset", &asset.name))
            .await
    }
}

fn action_uses_ids(action: &Action) -> bool {
    action
        .request
        .body
        .as_ref()
        .is_some_and(|b| template::body_uses(b, "ids"))
}

plugin_sdk::export_connector!(Http);

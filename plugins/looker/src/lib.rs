//! # The looker connector
//!
//! Watches a Looker instance through API 4.0, with the read-only calls a
//! monitoring user can make and the instance barely notices:
//!
//! | asset | kind | from | freshness | verdict |
//! | --- | --- | --- | --- | --- |
//! | `datagroup:<model>::<name>` | `datagroup` | `GET /api/4.0/datagroups` | `triggered_at` | `trigger_error` |
//! | `dashboard:<id>` | `dashboard` | `GET /api/4.0/dashboards/{id}?fields=...` | `updated_at` | deleted, missing, content errors |
//! | `look:<id>` | `look` | `GET /api/4.0/looks/{id}?fields=...` | `updated_at` | deleted, missing, content errors |
//! | `content_validation` | `content_validation` | `GET /api/4.0/content_validation` | — | errors of content not watched |
//!
//! The wire format (`looker-open-source/sdk-codegen`, `spec/Looker.4.0.oas.json`):
//! - `POST /api/4.0/login` with the form body `client_id=..&client_secret=..`
//!   answers `{access_token, token_type, expires_in}`; every other call
//!   sends `Authorization: token <access_token>`; `DELETE /api/4.0/logout`
//!   ends the session. Looker refuses an unknown key with 404. See
//!   [`session`] for the token's life.
//! - Failures carry `{message, documentation_url}`; any call may get 429.
//! - Datagroup times are Unix seconds; content times ISO 8601 text.
//! - `fields=a,b` trims an answer to the fields named; the `search`
//!   endpoints page with `limit` and `offset`.
//!
//! Content validation revalidates every look and dashboard, which takes
//! minutes on a big instance: it has its own timeout and can be turned off,
//! so a frequent check can watch datagroups while a slower one validates.

#![cfg(target_arch = "wasm32")]

mod content;
mod session;

use std::time::Duration;

use plugin_sdk::log;
use plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::content::{ContentKind, ContentValidation, Datagroup, VALIDATION_ASSET, Watched};
use crate::session::{Credentials, Session};

/// Rows per page when `discover` searches dashboards and looks.
const PAGE_SIZE: usize = 500;

/// Pages `discover` reads of one kind before it stops (100,000 items): a
/// server that ignored `offset` would otherwise page forever.
const MAX_PAGES: usize = 200;

/// The check's plugin config; agrees with the schema in `describe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The instance's API origin, e.g. `https://acme.cloud.looker.com` (or
    /// `https://looker.example.com:19999` when self-hosted).
    base_url: String,
    /// Where users open content, for the links in errors, when it is not
    /// `base_url` (self-hosted instances serve the API on another port).
    web_url: Option<String>,
    client_id: String,
    client_secret: String,
    /// `model::name` or `name` (in any model); absent for every datagroup,
    /// empty for none.
    datagroups: Option<Vec<String>>,
    #[serde(default)]
    dashboards: Vec<String>,
    #[serde(default)]
    looks: Vec<String>,
    #[serde(default = "default_true")]
    content_validation: bool,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_validation_timeout")]
    content_validation_timeout_secs: u64,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    30
}

fn default_validation_timeout() -> u64 {
    300
}

impl Config {
    /// `base_url` without a trailing `/` or `/api/4.0`, which users paste.
    fn api_origin(&self) -> &str {
        let url = self.base_url.trim_end_matches('/');
        url.strip_suffix("/api/4.0").unwrap_or(url)
    }

    fn web_origin(&self) -> &str {
        match &self.web_url {
            Some(url) => url.trim_end_matches('/'),
            None => self.api_origin(),
        }
    }

    fn session(&self) -> Session {
        Session::new(Credentials {
            base_url: self.api_origin(),
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        })
    }
}

/// `GET /user?fields=id,display_name`.
#[derive(Deserialize)]
struct User {
    id: Option<String>,
    display_name: Option<String>,
}

/// An entry of `GET /dashboards/search` or `/looks/search` with
/// `fields=id,title`.
#[derive(Deserialize)]
struct Listed {
    id: String,
    title: Option<String>,
}

pub struct Looker;

impl Looker {
    /// One run's observations, in a session the caller logs out of.
    async fn observe(cfg: &Config, session: &mut Session) -> Result<Report, ConnectorError> {
        let mut report = Report::builder();
        if cfg.datagroups.as_ref().is_none_or(|d| !d.is_empty()) {
            let all: Vec<Datagroup> = session
                .get_json("/datagroups", &[], None, "see_datagroups")
                .await?;
            report = report.observations(content::datagroups(&all, cfg.datagroups.as_deref()));
        }

        let web_url = cfg.web_origin();
        let mut watched = Vec::new();
        for (kind, ids) in [
            (ContentKind::Dashboard, &cfg.dashboards),
            (ContentKind::Look, &cfg.looks),
        ] {
            for id in ids {
                watched.push(Watched::fetch(session, kind, id, web_url).await?);
            }
        }

        if cfg.content_validation {
            let timeout = Duration::from_secs(cfg.content_validation_timeout_secs.max(1));
            let validation: ContentValidation = session
                .get_json("/content_validation", &[], Some(timeout), "develop")
                .await?;
            let summary = validation.attach(web_url, &mut watched);
            report = report
                .observations(watched.into_iter().map(|w| w.into_observation(true)))
                .observation(summary);
        } else {
            report = report.observations(watched.into_iter().map(|w| w.into_observation(false)));
        }
        Ok(report.build())
    }

    /// Every dashboard or look the API user sees, page by page.
    async fn search(
        session: &mut Session,
        kind: ContentKind,
    ) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        let path = format!("/{}/search", kind.collection());
        let limit = PAGE_SIZE.to_string();
        let mut assets = Vec::new();
        for page in 0..MAX_PAGES {
            let offset = (page * PAGE_SIZE).to_string();
            let listed: Vec<Listed> = session
                .get_json(
                    &path,
                    &[
                        ("fields", "id,title"),
                        ("deleted", "false"),
                        ("sorts", "id"),
                        ("limit", &limit),
                        ("offset", &offset),
                    ],
                    None,
                    kind.permission(),
                )
                .await?;
            let last = listed.len() < PAGE_SIZE;
            assets.extend(listed.into_iter().map(|item| {
                let descriptor = AssetDescriptor::new(kind.asset(&item.id), kind.name());
                match item.title {
                    Some(title) => descriptor.description(title),
                    None => descriptor,
                }
            }));
            if last {
                return Ok(assets);
            }
        }
        log::warn(
            "discover stopped paging",
            &[("kind", &kind.collection()), ("listed", &assets.len())],
        );
        Ok(assets)
    }
}

impl Connector for Looker {
    type Config = Config;

    fn describe() -> Descriptor {
        Descriptor::new(
            "looker",
            env!("CARGO_PKG_VERSION"),
            "Looker (API 4.0): datagroup triggers, dashboards and looks, content validation",
        )
        .config_schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "looker connector config",
            "type": "object",
            "additionalProperties": false,
            "required": ["base_url", "client_id", "client_secret"],
            "properties": {
                "base_url": {
                    "type": "string",
                    "pattern": "^https?://",
                    "description": "The instance's API address, e.g. https://acme.cloud.looker.com (self-hosted: https://looker.example.com:19999); grant it in allowed_hosts"
                },
                "web_url": {
                    "type": "string",
                    "pattern": "^https?://",
                    "description": "Where users open content, for links in errors; defaults to base_url"
                },
                "client_id": {
                    "type": "string",
                    "minLength": 1,
                    "x-secret": true,
                    "description": "Client ID of an API key of the monitoring user"
                },
                "client_secret": {
                    "type": "string",
                    "minLength": 1,
                    "x-secret": true,
                    "description": "Client secret of that API key"
                },
                "datagroups": {
                    "type": "array",
                    "uniqueItems": true,
                    "items": { "type": "string", "minLength": 1 },
                    "description": "Datagroups to watch, as model::name or name (in any model); absent: all; empty: none"
                },
                "dashboards": {
                    "type": "array",
                    "uniqueItems": true,
                    "items": { "type": "string", "minLength": 1 },
                    "default": [],
                    "description": "Ids of dashboards to watch (LookML dashboards as model::name)"
                },
                "looks": {
                    "type": "array",
                    "uniqueItems": true,
                    "items": { "type": "string", "minLength": 1 },
                    "default": [],
                    "description": "Ids of looks to watch"
                },
                "content_validation": {
                    "type": "boolean",
                    "default": true,
                    "description": "Run Looker's content validator (slow on big instances) and attach its errors"
                },
                "timeout_secs": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 30,
                    "description": "Timeout of each API call but content validation"
                },
                "content_validation_timeout_secs": {
                    "type": "integer",
                    "minimum": 1,
                    "default": 300,
                    "description": "Timeout of the content validation call; the check's timeout must be longer"
                }
            }
        }))
        .suggested_host("https://*.cloud.looker.com")
        .suggested_host("https://*.looker.com")
    }

    /// Logs in and asks who we are: proves the address, the key and that
    /// the user may call the API.
    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        let mut session = cfg.session();
        let path = "/user";
        let outcome = async {
            let response = session
                .get(path, &[("fields", "id,display_name")], None)
                .await?;
            session.parse::<User>(path, response)
        }
        .await;
        session.logout().await;
        let user = outcome?;
        log::info(
            "logged in to Looker",
            &[
                ("user_id", &user.id.unwrap_or_default()),
                ("user", &user.display_name.unwrap_or_default()),
            ],
        );
        Ok(())
    }

    /// Every datagroup, dashboard and look the API user sees, and the
    /// content validation asset.
    async fn discover(cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        let mut session = cfg.session();
        let outcome = async {
            let all: Vec<Datagroup> = session
                .get_json("/datagroups", &[], None, "see_datagroups")
                .await?;
            let mut assets: Vec<AssetDescriptor> = all
                .iter()
                .map(|d| {
                    AssetDescriptor::new(d.asset(), "datagroup").description(format!(
                        "Datagroup {} of model {}",
                        d.name(),
                        d.model()
                    ))
                })
                .collect();
            for kind in [ContentKind::Dashboard, ContentKind::Look] {
                assets.extend(Self::search(&mut session, kind).await?);
            }
            assets.push(
                AssetDescriptor::new(VALIDATION_ASSET, "content_validation")
                    .description("Looker's content validator: errors of content not watched"),
            );
            Ok(assets)
        }
        .await;
        session.logout().await;
        outcome
    }

    async fn collect(cfg: Config, _ctx: RunContext) -> Result<Report, ConnectorError> {
        let mut session = cfg.session();
        let outcome = Self::observe(&cfg, &mut session).await;
        session.logout().await;
        outcome
    }
}

plugin_sdk::export_connector!(Looker);

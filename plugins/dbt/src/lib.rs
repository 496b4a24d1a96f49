//! # The dbt connector
//!
//! Watches a dbt project: every model, seed, snapshot, test, exposure and
//! source is an asset (its key is dbt's `unique_id`, e.g.
//! `model.shop.fct_orders` or `source.shop.shop_raw.orders`), observed with
//! dbt's own verdict, when its data was last built or loaded, the test
//! failures and the source freshness dbt computed.
//!
//! Three ways to reach it, chosen by the config:
//!
//! - **dbt Core** (`mode = "core"`, the default): the artifacts dbt writes to
//!   `target/` (`run_results.json` schema v4-v6, `sources.json` v3,
//!   `manifest.json`), read from the directory the check grants read-only
//!   (`/data` inside the sandbox). See [`files`] and [`artifacts`].
//! - **dbt Cloud, Admin API v2** (`mode = "cloud"`, `api = "admin"`): for each
//!   configured job, its newest finished run (`GET
//!   /api/v2/accounts/{account}/runs/?job_definition_id=…&order_by=-id`,
//!   offset/limit pages) and that run's artifacts (`…/runs/{id}/artifacts/
//!   run_results.json`, `manifest.json`, and `sources.json` when the run
//!   checked freshness), reported exactly as in Core mode. `Authorization:
//!   Token <token>`. See [`admin`].
//! - **dbt Cloud, Discovery API** (`mode = "cloud"`, `api = "discovery"`): the
//!   applied state of one environment over GraphQL (`POST …/graphql`,
//!   `Authorization: Bearer <token>`): source freshness and model execution
//!   info, paged with `first`/`after`. See [`discovery`].
//!
//! All three produce the same records ([`artifacts::NodeResult`],
//! [`artifacts::SourceFreshness`]) and one module turns them into
//! observations ([`report`]), so a model reads the same whichever way it was
//! fetched. The watched system barely notices: Core mode reads three files,
//! Admin mode makes three or four requests per job, Discovery mode one
//! request per 500 sources or models.

#![cfg(target_arch = "wasm32")]

mod admin;
mod artifacts;
mod discovery;
mod files;
mod report;

use plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

/// The Admin API's US multi-tenant host; regional and single-tenant
/// accounts set `base_url`.
const DEFAULT_BASE_URL: &str = "https://cloud.getdbt.com";
/// The Discovery API of the US multi-tenant host.
const DEFAULT_METADATA_URL: &str = "https://metadata.cloud.getdbt.com/graphql";
/// The Discovery API's largest sensible page: small pages burn its quota
/// of about 500 requests a minute.
const MAX_PAGE_SIZE: u32 = 500;
const DEFAULT_TIMEOUT_S: u64 = 30;

/// The check's config, flat so a TOML table reads naturally; [`Config::plan`]
/// checks that the fields fit the chosen mode.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    mode: Mode,
    /// Core: file names relative to the granted directory.
    run_results: Option<String>,
    sources: Option<String>,
    manifest: Option<String>,
    /// Cloud: which API.
    api: Option<Api>,
    /// Cloud: a service account token or personal access token (secret).
    token: Option<String>,
    request_timeout_s: Option<u64>,
    /// Admin API.
    account_id: Option<u64>,
    job_ids: Option<Vec<u64>>,
    base_url: Option<String>,
    fetch_manifest: Option<bool>,
    /// Discovery API.
    environment_id: Option<u64>,
    metadata_url: Option<String>,
    page_size: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Core,
    Cloud,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Api {
    Admin,
    Discovery,
}

/// What a run does, with every default applied.
enum Plan {
    Core(files::Files),
    Admin(admin::Settings),
    Discovery(discovery::Settings),
}

impl Config {
    fn plan(self) -> Result<Plan, ConnectorError> {
        let setting = match (self.mode, self.api) {
            (Mode::Core, None) => "mode = \"core\"",
            (Mode::Core, Some(_)) => {
                return Err(ConnectorError::config(
                    "invalid config: `api` only applies to mode = \"cloud\"",
                ));
            }
            (Mode::Cloud, Some(Api::Admin)) => "mode = \"cloud\", api = \"admin\"",
            (Mode::Cloud, Some(Api::Discovery)) => "mode = \"cloud\", api = \"discovery\"",
            (Mode::Cloud, None) => {
                return Err(ConnectorError::config(
                    "invalid config: mode = \"cloud\" needs `api` = \"admin\" or \"discovery\"",
                ));
            }
        };
        let core = self.mode == Mode::Core;
        let admin = self.api == Some(Api::Admin);
        let discovery = self.api == Some(Api::Discovery);
        let fields: [(&str, bool, bool); 12] = [
            ("run_results", self.run_results.is_some(), core),
            ("sources", self.sources.is_some(), core),
            ("manifest", self.manifest.is_some(), core),
            ("token", self.token.is_some(), !core),
            ("request_timeout_s", self.request_timeout_s.is_some(), !core),
            ("account_id", self.account_id.is_some(), admin),
            ("job_ids", self.job_ids.is_some(), admin),
            ("base_url", self.base_url.is_some(), admin),
            ("fetch_manifest", self.fetch_manifest.is_some(), admin),
            ("environment_id", self.environment_id.is_some(), discovery),
            ("metadata_url", self.metadata_url.is_some(), discovery),
            ("page_size", self.page_size.is_some(), discovery),
        ];
        if let Some((name, ..)) = fields.iter().find(|(_, set, fits)| *set && !fits) {
            return Err(ConnectorError::config(format_args!(
                "invalid config: `{name}` does not apply to {setting}"
            )));
        }
        let required = |name: &str| {
            ConnectorError::config(format_args!("invalid config: {setting} needs `{name}`"))
        };
        let timeout = std::time::Duration::from_secs(
            self.request_timeout_s
                .unwrap_or(DEFAULT_TIMEOUT_S)
                .clamp(1, 600),
        );
        match (self.mode, self.api) {
            (Mode::Core, _) => Ok(Plan::Core(files::Files::new(
                self.run_results,
                self.sources,
                self.manifest,
            )?)),
            (_, Some(Api::Admin)) => {
                let job_ids = self.job_ids.ok_or_else(|| required("job_ids"))?;
                if job_ids.is_empty() {
                    return Err(ConnectorError::config(
                        "invalid config: `job_ids` lists no job",
                    ));
                }
                Ok(Plan::Admin(admin::Settings {
                    token: self.token.ok_or_else(|| required("token"))?,
                    account_id: self.account_id.ok_or_else(|| required("account_id"))?,
                    job_ids,
                    base_url: url_setting("base_url", self.base_url, DEFAULT_BASE_URL)?,
                    fetch_manifest: self.fetch_manifest.unwrap_or(true),
                    timeout,
                }))
            }
            (_, _) => {
                let page_size = self.page_size.unwrap_or(MAX_PAGE_SIZE);
                if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
                    return Err(ConnectorError::config(format_args!(
                        "invalid config: `page_size` must be between 1 and {MAX_PAGE_SIZE}, not {page_size}"
                    )));
                }
                Ok(Plan::Discovery(discovery::Settings {
                    token: self.token.ok_or_else(|| required("token"))?,
                    environment_id: self
                        .environment_id
                        .ok_or_else(|| required("environment_id"))?,
                    metadata_url: url_setting(
                        "metadata_url",
                        self.metadata_url,
                        DEFAULT_METADATA_URL,
                    )?,
                    page_size,
                    timeout,
                }))
            }
        }
    }
}

fn url_setting(name: &str, value: Option<String>, default: &str) -> Result<String, ConnectorError> {
    let url = value.unwrap_or_else(|| default.to_owned());
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConnectorError::config(format_args!(
            "invalid config: `{name}` must be an http(s) URL, not {url:?}"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The config's JSON Schema: the same rules as [`Config::plan`], so the
/// daemon refuses a bad config before any run.
fn schema() -> serde_json::Value {
    let core_only = ["run_results", "sources", "manifest"];
    let cloud_only = ["api", "token", "request_timeout_s"];
    let admin_only = ["account_id", "job_ids", "base_url", "fetch_manifest"];
    let discovery_only = ["environment_id", "metadata_url", "page_size"];
    let forbid = |names: &[&[&str]]| {
        let props: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .flat_map(|n| n.iter())
            .map(|n| (n.to_string(), json!(false)))
            .collect();
        json!({ "properties": props })
    };
    let file = |default: &str, what: &str| {
        json!({
            "type": "string", "minLength": 1, "default": default,
            "description": format!("{what}, relative to the directory the check grants (read_dir)")
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "dbt connector config",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "mode": {
                "enum": ["core", "cloud"], "default": "core",
                "description": "core: read dbt artifacts from the granted directory; cloud: ask dbt Cloud"
            },
            "run_results": file("run_results.json", "The run_results.json of the last dbt build/run/test"),
            "sources": file("sources.json", "The sources.json of the last `dbt source freshness` (optional file)"),
            "manifest": file("manifest.json", "The manifest.json written with run_results.json"),
            "api": {
                "enum": ["admin", "discovery"],
                "description": "admin: latest runs of jobs and their artifacts (Admin API v2); discovery: an environment's applied state (Discovery API)"
            },
            "token": {
                "type": "string", "minLength": 1, "x-secret": true,
                "description": "dbt Cloud service account token (Job Viewer or Metadata Only) or personal access token"
            },
            "request_timeout_s": {
                "type": "integer", "minimum": 1, "maximum": 600, "default": DEFAULT_TIMEOUT_S,
                "description": "Timeout of each request to dbt Cloud, in seconds"
            },
            "account_id": { "type": "integer", "minimum": 1, "description": "dbt Cloud account id" },
            "job_ids": {
                "type": "array", "minItems": 1, "uniqueItems": true,
                "items": { "type": "integer", "minimum": 1 },
                "description": "Jobs whose latest finished run to report"
            },
            "base_url": {
                "type": "string", "pattern": "^https?://", "default": DEFAULT_BASE_URL,
                "description": "Admin API host: https://cloud.getdbt.com, https://emea.dbt.com, https://au.dbt.com, https://<prefix>.us1.dbt.com or a single-tenant host"
            },
            "fetch_manifest": {
                "type": "boolean", "default": true,
                "description": "Also download each run's manifest.json: it names skip causes and finds sources whose freshness failed without a result"
            },
            "environment_id": { "type": "integer", "minimum": 1, "description": "dbt Cloud environment id (Discovery API)" },
            "metadata_url": {
                "type": "string", "pattern": "^https?://", "default": DEFAULT_METADATA_URL,
                "description": "Discovery API endpoint from the account settings, e.g. https://metadata.emea.dbt.com/graphql"
            },
            "page_size": {
                "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": MAX_PAGE_SIZE,
                "description": "Discovery API page size (`first`)"
            }
        },
        "allOf": [
            {
                "if": { "not": { "required": ["mode"], "properties": { "mode": { "const": "cloud" } } } },
                "then": forbid(&[&cloud_only, &admin_only, &discovery_only])
            },
            {
                "if": { "required": ["mode"], "properties": { "mode": { "const": "cloud" } } },
                "then": { "required": ["api", "token"], "allOf": [forbid(&[&core_only])] }
            },
            {
                "if": { "required": ["api"], "properties": { "api": { "const": "admin" } } },
                "then": { "required": ["account_id", "job_ids"], "allOf": [forbid(&[&discovery_only])] }
            },
            {
                "if": { "required": ["api"], "properties": { "api": { "const": "discovery" } } },
                "then": { "required": ["environment_id"], "allOf": [forbid(&[&admin_only])] }
            }
        ]
    })
}

pub struct Dbt;

impl Connector for Dbt {
    type Config = Config;

    fn describe() -> Descriptor {
        Descriptor::new(
            "dbt",
            env!("CARGO_PKG_VERSION"),
            "dbt: model, test, seed, snapshot and source results and freshness, from dbt Core \
             artifacts, the dbt Cloud Admin API or the Discovery API",
        )
        .config_schema(schema())
        .suggested_host(DEFAULT_BASE_URL)
        .suggested_host("https://metadata.cloud.getdbt.com")
        .suggested_host("https://*.dbt.com")
    }

    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        match cfg.plan()? {
            Plan::Core(files) => files.test(),
            Plan::Admin(settings) => admin::test(&settings).await,
            Plan::Discovery(settings) => discovery::test(&settings).await,
        }
    }

    async fn discover(cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        match cfg.plan()? {
            Plan::Core(files) => files.discover(),
            Plan::Admin(settings) => admin::discover(&settings).await,
            Plan::Discovery(settings) => discovery::discover(&settings).await,
        }
    }

    async fn collect(cfg: Config, _ctx: RunContext) -> Result<Report, ConnectorError> {
        let observations = match cfg.plan()? {
            Plan::Core(files) => files.collect()?,
            Plan::Admin(settings) => admin::collect(&settings).await?,
            Plan::Discovery(settings) => discovery::collect(&settings).await?,
        };
        Ok(Report::builder().observations(observations).build())
    }
}

plugin_sdk::export_connector!(Dbt);

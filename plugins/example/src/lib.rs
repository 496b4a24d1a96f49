//! # The example connector
//!
//! A complete, small Tributary connector, written to be read: the README's
//! "Write a plugin" section walks through it. Copy it to start your own.
//!
//! It watches a JSON HTTP service that reports, per tenant, how many
//! documents it expected, received and failed to process. One run (`collect`)
//! turns the service's statistics into one observation of the asset
//! `documents`; the daemon's health engine then judges completeness,
//! errors and freshness against the check's rules.
//!
//! The service's API (all requests carry `Authorization: Bearer <token>`):
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /v1/health` | `{"ok": true}` |
//! | `GET /v1/tenants/{tenant}/stats` | counts, last document, update time, recent errors |
//! | `GET /v1/tenants/{tenant}/documents/ids?cursor=C&limit=N` | `{"ids": [...], "next_cursor": "..." or null}` |
//! | `POST /v1/tenants/{tenant}/documents/resync` `{"ids": [...]}` | `202 {"accepted": N}` |
//!
//! A bad token gets `401` and an unknown tenant `404`.
//!
//! What the SDK does for us, and why this file stays short:
//! - parses the check's JSON config into [`Config`] and reports a bad field
//!   as a `config` error (the daemon shows it next to the check);
//! - runs our `async` methods on the component's single thread;
//! - classifies HTTP failures: `401` -> `auth`, `5xx`/`429`/timeouts ->
//!   `transient` (retried), other `4xx` -> `config`, a host the check does
//!   not grant -> `config`, an unreadable body -> `system`;
//! - streams document ids to the host in batches, outside the report.

// Plugins only exist as WebAssembly components. `plugins/.cargo/config.toml`
// selects wasm32-wasip2, but cargo reads that file only when run from inside
// `plugins/`; run from elsewhere (`--manifest-path plugins/Cargo.toml`), it
// builds for the host, where this crate compiles to nothing.
#![cfg(target_arch = "wasm32")]

// `prelude` brings the types every connector needs: `Connector`, `Report`,
// `Observation`, `ConnectorError`, `Timestamp`, the HTTP `Client`...
use plugin_sdk::http::encode;
use plugin_sdk::log;
use plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

/// The asset this connector reports on: a tenant's documents.
const ASSET: &str = "documents";

/// How many ids to ask for per page when `collect_ids` is on.
const ID_PAGE_SIZE: u32 = 1000;

/// The check's plugin config, as the daemon passes it (secrets resolved).
///
/// `deny_unknown_fields` turns a typo such as `colect_ids` into a clear
/// `config` error instead of a silently ignored field. The daemon also
/// validates the config against the JSON Schema returned by `describe`
/// before the plugin ever sees it; keep the two in agreement.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the service lives, e.g. `https://intake.example.com`. The check
    /// must grant this origin in its `allowed_hosts`.
    base_url: String,
    /// Whose documents to watch.
    tenant: String,
    /// The API token. Marked `"x-secret": true` in the schema, so the daemon
    /// redacts it; configure it as `{ env = "NAME" }` or `{ file = "path" }`.
    token: String,
    /// Also list every received document id, so the daemon can say which
    /// documents are missing. Costs one request per 1000 documents.
    #[serde(default)]
    collect_ids: bool,
}

// What the service answers. Only the fields we use are declared; serde
// ignores the rest, so the service can add fields without breaking us.

/// `GET /v1/tenants/{tenant}/stats`.
#[derive(Debug, Deserialize)]
struct Stats {
    documents: DocumentCounts,
    last_received: Option<LastDocument>,
    /// `Timestamp` deserializes RFC 3339 text (`2026-11-20T10:00:00Z`).
    updated_at: Option<Timestamp>,
    #[serde(default)]
    errors: Vec<DocumentError>,
}

#[derive(Debug, Deserialize)]
struct DocumentCounts {
    expected: Option<u64>,
    received: u64,
    #[serde(default)]
    failed: u64,
}

#[derive(Debug, Deserialize)]
struct LastDocument {
    id: String,
    at: Option<Timestamp>,
}

#[derive(Debug, Deserialize)]
struct DocumentError {
    kind: String,
    message: String,
    document_id: Option<String>,
    log_url: Option<String>,
    at: Option<Timestamp>,
}

/// `GET /v1/tenants/{tenant}/documents/ids`.
#[derive(Debug, Deserialize)]
struct IdPage {
    ids: Vec<String>,
    next_cursor: Option<String>,
}

/// `GET /v1/health`.
#[derive(Debug, Deserialize)]
struct Health {
    ok: bool,
}

/// `POST /v1/tenants/{tenant}/documents/resync`.
#[derive(Debug, Deserialize)]
struct ResyncAccepted {
    accepted: u64,
}

/// The connector itself: a unit struct; all state lives in the config.
pub struct Example;

impl Example {
    /// One HTTP client per call, with the service's base URL and our token
    /// on every request. Building it is cheap.
    fn client(cfg: &Config) -> Client {
        Client::new()
            .base_url(&cfg.base_url)
            .bearer_auth(&cfg.token)
            .timeout(std::time::Duration::from_secs(20))
    }

    /// The tenant's part of every URL, percent-encoded in case the tenant
    /// name holds a `/` or a space.
    fn tenant_path(cfg: &Config) -> String {
        format!("/v1/tenants/{}", encode(&cfg.tenant))
    }

    /// Page through the tenant's document ids and hand them to the host.
    /// Returns how many ids were sent.
    async fn stream_ids(client: &Client, cfg: &Config) -> Result<u64, ConnectorError> {
        // `IdStream` buffers ids and hands them to the host in batches of
        // 10,000, so millions of ids never sit in memory or in the report.
        let mut ids = IdStream::new(ASSET);
        let path = format!("{}/documents/ids", Self::tenant_path(cfg));
        let mut cursor: Option<String> = None;
        loop {
            let mut request = client.get(&path);
            if let Some(cursor) = &cursor {
                request = request.query("cursor", cursor);
            }
            let page: IdPage = request
                .query("limit", ID_PAGE_SIZE)
                .send()
                .await
                .map_err(|e| e.context("listing document ids"))?
                .json()?;
            ids.extend(page.ids)?;
            match page.next_cursor {
                // A service that hands back the cursor we sent would make
                // us loop until the deadline: fail clearly instead.
                Some(next) if cursor.as_deref() == Some(next.as_str()) => {
                    return Err(ConnectorError::system(format_args!(
                        "the ids endpoint returned the same cursor {next:?} twice"
                    )));
                }
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => break,
            }
        }
        // `finish` flushes the last batch and reports a failure (e.g. the
        // run's id limit) that `Drop` could not.
        ids.finish()
    }
}

impl Connector for Example {
    type Config = Config;

    /// Who we are and what config we take. The schema is what the daemon
    /// validates a check's config against (and what a UI would render).
    fn describe() -> Descriptor {
        Descriptor::new(
            "example",
            env!("CARGO_PKG_VERSION"),
            "Example connector: watches a tenant's document intake in a JSON HTTP service",
        )
        .config_schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "example connector config",
            "type": "object",
            "additionalProperties": false,
            "required": ["base_url", "tenant", "token"],
            "properties": {
                "base_url": {
                    "type": "string",
                    "pattern": "^https?://",
                    "description": "Base URL of the service, e.g. https://intake.example.com; grant it in allowed_hosts"
                },
                "tenant": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The tenant whose documents to watch"
                },
                "token": {
                    "type": "string",
                    "minLength": 1,
                    "x-secret": true,
                    "description": "API token, sent as a bearer token"
                },
                "collect_ids": {
                    "type": "boolean",
                    "default": false,
                    "description": "Also list received document ids (one request per 1000 documents)"
                }
            }
        }))
        // We implement `resync` below; say so, or the daemon never calls it.
        .capabilities(Capabilities::RESYNC)
        // No suggested hosts: the service's URL is whatever the check
        // configures in `base_url`.
    }

    /// The "check my credentials" button: the health endpoint needs a valid
    /// token, so a `200` proves both reachability and authentication.
    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        let health: Health = Self::client(&cfg).get("/v1/health").send().await?.json()?;
        if !health.ok {
            return Err(ConnectorError::transient(
                "the service reports it is not healthy",
            ));
        }
        Ok(())
    }

    /// What a check with this config can watch: always one asset.
    async fn discover(cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Ok(vec![AssetDescriptor::new(ASSET, "documents").description(
            format!("Documents received for tenant {}", cfg.tenant),
        )])
    }

    /// One run: read the tenant's statistics and report them.
    async fn collect(cfg: Config, ctx: RunContext) -> Result<Report, ConnectorError> {
        let client = Self::client(&cfg);

        // Send without the automatic status check, so a 404 can say which
        // tenant is unknown; every other status gets the SDK's rules.
        let response = client
            .get(format!("{}/stats", Self::tenant_path(&cfg)))
            .send_any_status()
            .await?;
        if response.status() == 404 {
            return Err(ConnectorError::config(format_args!(
                "tenant {:?} not found at {}",
                cfg.tenant, cfg.base_url
            )));
        }
        // `json` names the field when the body is not what we expect, as a
        // `system` error: the service answered something unusable.
        let stats: Stats = response.error_for_status()?.json()?;

        // The observation: counts, freshness, the last document, errors.
        let mut observation = Observation::new(ASSET, "documents")
            .received(stats.documents.received)
            .errored(stats.documents.failed)
            .freshness(stats.updated_at)
            .metadata("tenant", &cfg.tenant);
        if let Some(expected) = stats.documents.expected {
            observation = observation.expected(expected);
        }
        if let Some(last) = stats.last_received {
            observation = observation.last_received(last.id, last.at);
        }
        // The SDK keeps at most 100 errors as a sample but counts every one
        // in the totals by kind.
        observation = observation.errors(stats.errors.into_iter().map(|e| {
            let mut error = AssetError::new(e.kind, e.message).at(e.at);
            if let Some(id) = e.document_id {
                error = error.document_id(id);
            }
            if let Some(url) = e.log_url {
                error = error.log_link(url);
            }
            error
        }));

        if cfg.collect_ids {
            let sent = Self::stream_ids(&client, &cfg).await?;
            log::info(
                "streamed document ids",
                &[("tenant", &cfg.tenant), ("ids", &sent)],
            );
        }

        log::info(
            "collected document stats",
            &[
                ("tenant", &cfg.tenant),
                ("received", &stats.documents.received),
                ("failed", &stats.documents.failed),
                ("attempt", &ctx.attempt),
            ],
        );
        Ok(Report::builder().observation(observation).build())
    }

    /// Ask the service to send documents again. The daemon only calls this
    /// because `describe` declares `Capabilities::RESYNC`.
    async fn resync(
        cfg: Config,
        asset: String,
        ids: Vec<String>,
    ) -> Result<ActionOutcome, ConnectorError> {
        if asset != ASSET {
            return Err(ConnectorError::config(format_args!(
                "unknown asset {asset:?}: this connector only has {ASSET:?}"
            )));
        }
        // An empty list means "everything": the service reads it the same way.
        let accepted: ResyncAccepted = Self::client(&cfg)
            .post(format!("{}/documents/resync", Self::tenant_path(&cfg)))
            .json(&json!({ "ids": ids }))
            .send()
            .await?
            .json()?;
        Ok(ActionOutcome::new()
            .affected(accepted.accepted)
            .message(format!(
                "the service accepted {} document(s) for resync",
                accepted.accepted
            )))
    }
}

// Wire `Example` to the component's exports. Exactly once per plugin.
plugin_sdk::export_connector!(Example);

//! {{name}}: a Tributary connector, in Rust.
//!
//! It watches one JSON HTTP service: `GET /v1/stats` answers how many records
//! arrived, how many failed and when the data last changed, and `collect`
//! turns that into one observation of the asset `records`. Change it to talk
//! to your own system; `tributary plugin test` checks it against the
//! recorded exchanges in tests/.

use plugin_sdk::prelude::*;

const ASSET: &str = "records";

/// The check's config, secrets resolved; unknown fields are refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    base_url: String,
    token: String,
}

#[derive(serde::Deserialize)]
struct Stats {
    received: u64,
    #[serde(default)]
    failed: u64,
    updated_at: Option<Timestamp>,
}

struct Plugin;

fn client(cfg: &Config) -> Client {
    Client::new()
        .base_url(&cfg.base_url)
        .bearer_auth(&cfg.token)
}

impl Connector for Plugin {
    type Config = Config;

    fn describe() -> Descriptor {
        Descriptor::new("{{name}}", env!("CARGO_PKG_VERSION"), "Watches the records of one JSON HTTP service")
            .config_schema(serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "{{name}} connector config",
                "type": "object",
                "additionalProperties": false,
                "required": ["base_url", "token"],
                "properties": {
                    "base_url": {"type": "string", "pattern": "^https?://", "description": "Base URL of the service; grant it in allowed_hosts"},
                    "token": {"type": "string", "minLength": 1, "x-secret": true, "description": "API token, sent as a bearer token"}
                }
            }))
    }

    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        #[derive(serde::Deserialize)]
        struct Health {
            ok: bool,
        }
        let health: Health = client(&cfg).get("/v1/health").send().await?.json()?;
        if !health.ok {
            return Err(ConnectorError::transient(
                "the service reports it is not healthy",
            ));
        }
        Ok(())
    }

    async fn discover(_cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Ok(vec![
            AssetDescriptor::new(ASSET, "dataset").description("Records the service received"),
        ])
    }

    async fn collect(cfg: Config, _ctx: RunContext) -> Result<Report, ConnectorError> {
        let stats: Stats = client(&cfg).get("/v1/stats").send().await?.json()?;
        let observation = Observation::new(ASSET, "dataset")
            .received(stats.received)
            .errored(stats.failed)
            .freshness(stats.updated_at);
        Ok(Report::builder().observation(observation).build())
    }
}

plugin_sdk::export_connector!(Plugin);

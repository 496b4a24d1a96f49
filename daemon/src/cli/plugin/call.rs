//! `tributary plugin call FILE.wasm EXPORT --config c.json`: one export of a
//! component, run in the real plugin host with the grants and clock given on
//! the command line, printed as JSON in the form fixtures expect
//! (`plugin_sdk::harness::outcome`). No daemon config, no database.

use std::path::Path;

use anyhow::Context;
use plugin_sdk::harness::Harness;
use plugin_sdk::harness::replay::Call;

/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Calls `export` and prints its outcome; fails (after printing) when the
/// call failed, so scripts can tell.
pub async fn call(
    wasm: &Path,
    export: Call,
    config: Option<&Path>,
    allow_hosts: &[String],
    now: Option<std::time::SystemTime>,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let config = match config {
        Some(path) => read_config(path)?,
        None => serde_json::json!({}),
    };
    let mut builder = Harness::builder(wasm).cache_dir(cache_dir);
    if let Some(now) = now {
        builder = builder.now(now);
    }
    for host in allow_hosts {
        builder = builder.try_allow_host(host)?;
    }
    let harness = builder.build().await?;
    let result = harness.call_json(export, config).await;
    let failed = result.is_err();
    let printed = result.unwrap_or_else(|e| e);
    println!("{}", serde_json::to_string_pretty(&printed)?);
    anyhow::ensure!(!failed, "the call failed");
    Ok(())
}

fn read_config(path: &Path) -> anyhow::Result<serde_json::Value> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read the config {}", path.display()))?
        .len();
    anyhow::ensure!(
        size <= MAX_CONFIG_BYTES,
        "the config {} is {size} bytes, over the limit of {MAX_CONFIG_BYTES}",
        path.display()
    );
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("the config {} is not valid JSON", path.display()))
}

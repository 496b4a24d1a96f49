//! The command line: parses arguments, sets up logging and the runtime, and
//! calls into the library. No business logic lives here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::plugin::{HostConfig, Plugin, PluginHost};

#[derive(Debug, Parser)]
#[command(
    name = "tributary",
    version,
    about = "Watches data flowing between systems"
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TRIBUTARY_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: load the config and its plugins, schedule the checks,
    /// store results and keep health current until SIGINT or SIGTERM.
    Serve {
        /// The config file.
        #[arg(long, short, env = "TRIBUTARY_CONFIG")]
        config: PathBuf,
        /// How long runs in flight may take to finish at shutdown before they
        /// are cancelled.
        #[arg(long, default_value = "30s", value_parser = crate::health::parse_duration)]
        grace: std::time::Duration,
    },
    /// Check a config file: TOML, its JSON Schema, each check's plugin config
    /// against that plugin's schema, and meaning. Prints every error with its
    /// place; exits non-zero when there is any.
    Validate {
        file: PathBuf,
        /// Folder of the connector components whose config schemas to check
        /// against. Connectors missing from it are reported, unless
        /// `--allow-unknown-connectors`.
        #[arg(long, default_value = "target/plugins")]
        plugins: PathBuf,
        #[arg(long)]
        allow_unknown_connectors: bool,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
    /// Work with plugin files.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Load a component and print what it says of itself.
    Inspect {
        file: PathBuf,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config, grace } => serve(&config, grace).await,
            Command::Validate {
                file,
                plugins,
                allow_unknown_connectors,
                data_dir,
            } => validate(&file, &plugins, allow_unknown_connectors, &data_dir).await,
            Command::Plugin {
                command: PluginCommand::Inspect { file, data_dir },
            } => inspect(&file, &data_dir).await,
        }
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn host(data_dir: &Path) -> anyhow::Result<PluginHost> {
    PluginHost::new(HostConfig::new(data_dir.join("component-cache")))
}

/// Loads every `*.wasm` in `dir`; a broken plugin is reported and skipped.
pub async fn load_plugins(host: &PluginHost, dir: &Path) -> anyhow::Result<Vec<Plugin>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the plugin folder {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    let mut plugins = Vec::new();
    for file in files {
        match host.load(&file).await {
            Ok(plugin) => plugins.push(plugin),
            Err(err) => tracing::error!(error = %err, "plugin not loaded"),
        }
    }
    Ok(plugins)
}

async fn serve(file: &Path, grace: std::time::Duration) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    // The plugin folder and data folder come from the config itself: read
    // them without plugin schemas first, then validate fully with them.
    let draft = crate::config::parse_with(
        &text,
        file,
        &Default::default(),
        crate::config::Options {
            require_known_connectors: false,
        },
    )
    .map_err(|errors| anyhow::anyhow!("{errors}"))
    .with_context(|| format!("invalid config {}", file.display()))?;
    let host = host(&draft.data_dir)?;
    tracing::info!(allocation = ?host.allocation(), cache = %host.cache_dir().display(), "plugin host ready");
    let plugins = load_plugins(&host, &draft.plugins_dir).await?;
    let schemas = plugin_schemas(&plugins)?;
    let config = crate::config::parse_with(&text, file, &schemas, Default::default())
        .map_err(|errors| anyhow::anyhow!("{errors}"))
        .with_context(|| format!("invalid config {}", file.display()))?;
    tracing::info!(
        plugins = %plugins.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        "plugins loaded"
    );
    let store = crate::store::Store::open(&config.storage.url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redact_url(&config.storage.url)
            )
        })?;
    let clock: crate::clock::SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
    let service = crate::service::Service::start(
        config,
        plugins,
        store,
        crate::events::EventBus::default(),
        clock,
    )
    .await?;
    shutdown_signal().await;
    tracing::info!(grace = ?grace, "shutting down: finishing runs in flight");
    service.stop(grace).await;
    Ok(())
}

/// A database URL fit for a log line: the password, if any, masked.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Each plugin's config schema, by plugin name.
fn plugin_schemas(
    plugins: &[Plugin],
) -> anyhow::Result<std::collections::BTreeMap<String, serde_json::Value>> {
    let mut schemas = std::collections::BTreeMap::new();
    for plugin in plugins {
        let schema =
            serde_json::from_str(&plugin.descriptor().config_schema).with_context(|| {
                format!(
                    "plugin {} describes an invalid config schema",
                    plugin.name()
                )
            })?;
        schemas.insert(plugin.name().to_owned(), schema);
    }
    Ok(schemas)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn validate(
    file: &Path,
    plugins_dir: &Path,
    allow_unknown_connectors: bool,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let host = host(data_dir)?;
    let plugins = if plugins_dir.is_dir() {
        load_plugins(&host, plugins_dir).await?
    } else {
        tracing::warn!(folder = %plugins_dir.display(), "no plugin folder; plugin configs are not checked");
        Vec::new()
    };
    let schemas = plugin_schemas(&plugins)?;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    let options = crate::config::Options {
        require_known_connectors: !allow_unknown_connectors,
    };
    match crate::config::parse_with(&text, file, &schemas, options) {
        Ok(config) => {
            println!(
                "{}: valid ({} tenants, {} flows, {} checks)",
                file.display(),
                config.tenants.len(),
                config.flows.len(),
                config.checks.len()
            );
            Ok(())
        }
        Err(errors) => {
            println!("{errors}");
            anyhow::bail!("{} error(s) in {}", errors.0.len(), file.display())
        }
    }
}

async fn inspect(file: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let host = host(data_dir)?;
    let plugin = host.load(file).await?;
    let d = plugin.descriptor();
    let schema: serde_json::Value = serde_json::from_str(&d.config_schema)
        .unwrap_or(serde_json::Value::String(d.config_schema.clone()));
    let capabilities: Vec<&str> = [
        (crate::plugin::Capabilities::RESYNC, "resync"),
        (crate::plugin::Capabilities::DELETE, "delete"),
    ]
    .into_iter()
    .filter(|(flag, _)| d.capabilities.contains(*flag))
    .map(|(_, name)| name)
    .collect();
    let out = serde_json::json!({
        "name": d.name,
        "version": d.version,
        "description": d.description,
        "contract_version": plugin.contract_version().to_string(),
        "sha256": plugin.sha256(),
        "capabilities": capabilities,
        "suggested_hosts": d.suggested_hosts,
        "config_schema": schema,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

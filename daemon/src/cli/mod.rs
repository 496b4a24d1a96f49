//! The command line: parses arguments, sets up logging and the runtime, and
//! calls into the library. No business logic lives here.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use crate::plugin::{DEFAULT_MAX_CONNECTIONS, HostConfig, PluginHost};

mod plugin;
mod run;
mod slo;

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
        /// are cancelled, and writes the database has not taken yet may wait
        /// for it.
        #[arg(long, default_value = "30s", value_parser = crate::health::parse_duration)]
        grace: std::time::Duration,
    },
    /// Check a config file: TOML, its JSON Schema, each check's plugin config
    /// against that plugin's schema, and meaning. Prints every error with its
    /// place; exits non-zero when there is any.
    Validate {
        file: PathBuf,
        /// Folder of the connector components whose config schemas to check
        /// against; the file's own `plugins_dir` when not given. Connectors
        /// missing from it are reported, unless `--allow-unknown-connectors`.
        #[arg(long)]
        plugins: Option<PathBuf>,
        #[arg(long)]
        allow_unknown_connectors: bool,
        /// Where compiled plugins are cached; the file's own `data_dir` when
        /// not given.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the GraphQL schema (SDL) the API serves; `schema.graphql` at the
    /// repository root is this output.
    Schema,
    /// Print the JSON Schema of the config file.
    ConfigSchema,
    /// Print the JSON Schema of the webhook alert payload (what a
    /// `kind = "webhook"` channel POSTs).
    AlertSchema,
    /// Make a new API token: prints the token once (give it to its user) and
    /// the `[[api.tokens]]` entry to paste into the config, which holds only
    /// its SHA-256.
    Token {
        /// Who will use it; the audit log records it as the actor.
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Limit the token to one tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Make a new push token for a push check (`connector = "push"`):
    /// prints the token once and the `[[checks.push.tokens]]` entry to
    /// paste under the check, which holds only its SHA-256.
    PushToken {
        /// Who will report with it (a service, a page, a cron job).
        #[arg(long)]
        name: String,
    },
    /// Print the JSON Schema of a pushed report
    /// (`POST /push/v1/checks/{check}/reports`).
    PushSchema,
    /// Run one check once, in the foreground, and print its report and the
    /// health it gives: for trying a check before deploying it. Nothing is
    /// stored unless `--store`. Exits non-zero when the run fails.
    Run {
        /// The check's id.
        check: String,
        /// The config file that holds it.
        #[arg(long, short, env = "TRIBUTARY_CONFIG")]
        config: PathBuf,
        /// Write the run to the configured database and judge it against the
        /// history there (without it, a scratch database judges it as the
        /// check's first run).
        #[arg(long)]
        store: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Service level objectives as OpenSLO v1 documents.
    Slo {
        #[command(subcommand)]
        command: SloCommand,
    },
    /// Write, build, test and inspect plugins (any language).
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SloCommand {
    /// Print the config's `[[slos]]` as OpenSLO v1 `kind: SLO` YAML
    /// documents, what OpenSLO has no field for in `tributary.dev/`
    /// annotations.
    Export {
        /// The config file.
        #[arg(long, short, env = "TRIBUTARY_CONFIG")]
        config: PathBuf,
    },
    /// Read OpenSLO v1 SLO documents whose indicator is Tributary's
    /// (`metricSource.type: tributary`) and print them as `[[slos]]` TOML
    /// to paste into the config. Nothing is printed when any document
    /// cannot be read: each mistake is named at its file, document and
    /// field, and the exit code is non-zero.
    Import {
        /// YAML files, each of one or more `---`-separated documents.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The daemon and a foreground run tell what they do; the tools print
    // their answer, and only warnings and errors besides.
    let level = match cli.command {
        Command::Serve { .. } | Command::Run { .. } => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, level);
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
            } => {
                validate(
                    &file,
                    plugins.as_deref(),
                    allow_unknown_connectors,
                    data_dir.as_deref(),
                )
                .await
            }
            Command::Run {
                check,
                config,
                store,
                json,
            } => run::run(&config, &check, store, json).await,
            Command::Slo {
                command: SloCommand::Export { config },
            } => slo::export(&config),
            Command::Slo {
                command: SloCommand::Import { files },
            } => slo::import(&files),
            Command::Plugin { command } => plugin::run(command).await,
            Command::Schema => {
                print!("{}", crate::api::sdl());
                Ok(())
            }
            Command::ConfigSchema => {
                print!("{}", crate::config::SCHEMA);
                Ok(())
            }
            Command::AlertSchema => {
                print!("{}", crate::alerts::webhook::SCHEMA);
                Ok(())
            }
            Command::Token { name, role, tenant } => token(&name, &role, tenant.as_deref()),
            Command::PushToken { name } => {
                push_token(&name);
                Ok(())
            }
            Command::PushSchema => {
                print!("{}", crate::push::SCHEMA);
                Ok(())
            }
        }
    })
}

/// Logs to stderr at `level` unless `RUST_LOG` says otherwise.
fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn host(data_dir: &Path) -> anyhow::Result<PluginHost> {
    let mut config = HostConfig::new(data_dir.join("component-cache"));
    config.max_connections = connection_cap();
    PluginHost::new(config)
}

/// Plugins' outgoing connections may take a quarter of the open-file limit
/// (at most [`DEFAULT_MAX_CONNECTIONS`]): the rest stays for the API, the
/// database, plugin files and the daemon's own files.
fn connection_cap() -> usize {
    let soft = rlimit::Resource::NOFILE
        .get_soft()
        .unwrap_or(rlimit::INFINITY);
    usize::try_from(soft / 4)
        .unwrap_or(usize::MAX)
        .clamp(1, DEFAULT_MAX_CONNECTIONS)
}

/// Raises the soft open-file limit to the hard limit: the default soft limit
/// (often 1,024) is easily reached by the API's clients plus plugins' HTTP.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(rlimit::INFINITY) {
        Ok(limit) => tracing::info!(limit, "open-file limit raised to the hard limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-file limit"),
    }
}

fn read_config(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))
}

/// The plugin host for `file`'s data folder, and the config validated
/// against the plugins in its plugin folder (compiled now unless cached).
async fn load(file: &Path) -> anyhow::Result<(PluginHost, crate::reload::Prepared)> {
    // The data folder (component cache) comes from the config itself.
    let folders = crate::config::folders(&read_config(file)?, file)
        .map_err(|errors| anyhow::anyhow!("{errors}"))
        .with_context(|| format!("invalid config {}", file.display()))?;
    let host = host(&folders.data_dir)?;
    tracing::info!(allocation = ?host.allocation(), cache = %host.cache_dir().display(), "plugin host ready");
    let prepared = crate::reload::prepare(&host, file, &crate::reload::Broken::Skip)
        .await
        .with_context(|| format!("cannot start from {}", file.display()))?;
    Ok((host, prepared))
}

async fn serve(file: &Path, grace: std::time::Duration) -> anyhow::Result<()> {
    use std::sync::Arc;

    raise_fd_limit();

    let (host, crate::reload::Prepared { config, plugins }) = load(file).await?;
    tracing::info!(
        plugins = %plugins.loaded.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        failed = plugins.failed.len(),
        "plugins loaded"
    );
    if config.api.tokens.is_empty() {
        tracing::warn!("no [[api.tokens]] in the config: every API request will be refused");
    }
    let store = crate::store::Store::open(&config.storage.url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redact_url(&config.storage.url)
            )
        })?;
    let plugins_dir = config.plugins_dir.clone();
    let listen = config.server.listen;
    let limits = config.api.limits;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let clock: crate::clock::SharedClock = Arc::new(crate::clock::SystemClock);
    let bus = crate::events::EventBus::default();
    let service = Arc::new(
        crate::service::Service::start(
            config,
            plugins,
            store.clone(),
            bus.clone(),
            clock.clone(),
            crate::service::Runs::Scheduled,
        )
        .await?,
    );
    let reloader = Arc::new(crate::reload::Reloader::new(
        host,
        file.to_owned(),
        clock.clone(),
    ));
    #[cfg(unix)]
    let on_sighup = tokio::spawn(reload_on_sighup(reloader.clone(), service.clone()));
    // Dropped at the end of `serve`, which stops watching.
    let _watch = crate::reload::watch(reloader.clone(), service.clone(), &plugins_dir)
        .inspect_err(|e| {
            tracing::warn!(error = %e, "cannot watch for changes; reload with SIGHUP or reloadConfig")
        })
        .ok();
    let push = Arc::new(crate::push::PushApi::new(
        service.clone(),
        store.clone(),
        clock.clone(),
    ));
    let state = Arc::new(crate::api::State::new(
        service.clone(),
        store,
        bus,
        reloader,
        clock,
    ));
    let router = crate::api::router(state.clone(), limits)
        .merge(crate::push::router(push))
        .merge(crate::statuspage::router(state.clone(), limits))
        .merge(crate::web::router(crate::api::InProcess::new(
            state.clone(),
            limits,
        )));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::api::serve(listener, router, async {
        let _ = stop_rx.await;
    }));
    tracing::info!(%listen, "API on http://{listen}/graphql");
    shutdown_signal().await;
    tracing::info!(grace = ?grace, "shutting down: finishing runs in flight");
    state.close_websockets();
    let _ = stop_tx.send(());
    // Open WebSockets would hold a graceful shutdown forever: give requests
    // in flight a moment, then drop the connections.
    if tokio::time::timeout(std::time::Duration::from_secs(5), server)
        .await
        .is_err()
    {
        tracing::info!("closed the API connections still open");
    }
    #[cfg(unix)]
    on_sighup.abort();
    service.stop(grace).await;
    Ok(())
}

/// `kill -HUP` reloads the config file, as the `reloadConfig` mutation does;
/// the outcome is logged (and shown in the API's daemon status).
#[cfg(unix)]
async fn reload_on_sighup(
    reloader: std::sync::Arc<crate::reload::Reloader>,
    service: std::sync::Arc<crate::service::Service>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with the reloadConfig mutation");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the config");
        // The reloader logs the outcome and keeps it for the API.
        let _ = reloader.reload(&service).await;
    }
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
    plugins_dir: Option<&Path>,
    allow_unknown_connectors: bool,
    data_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let text = read_config(file)?;
    // Syntax errors are printed like any other, before plugins are compiled.
    let folders = match crate::config::folders(&text, file) {
        Ok(folders) => folders,
        Err(errors) => {
            println!("{errors}");
            anyhow::bail!("{} error(s) in {}", errors.len(), file.display())
        }
    };
    let host = host(data_dir.unwrap_or(&folders.data_dir))?;
    let plugins_dir = plugins_dir.unwrap_or(&folders.plugins_dir);
    let plugins = if plugins_dir.is_dir() {
        crate::plugin::load_folder(&host, plugins_dir)
            .await
            .with_context(|| format!("cannot read the plugin folder {}", plugins_dir.display()))?
    } else {
        tracing::warn!(folder = %plugins_dir.display(), "no plugin folder; plugin configs are not checked");
        crate::plugin::PluginSet::default()
    };
    let options = crate::config::Options {
        require_known_connectors: !allow_unknown_connectors,
        ..Default::default()
    };
    let connectors = crate::reload::connectors(&plugins);
    match crate::config::parse_against(&text, file, &connectors, options) {
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
            anyhow::bail!("{} error(s) in {}", errors.len(), file.display())
        }
    }
}

/// A new random token starting with `prefix`, and its SHA-256 (hex).
fn new_token(prefix: &str) -> (String, String) {
    use rand::RngCore;
    use sha2::Digest;

    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", hex::encode(bytes));
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    (token, hash)
}

fn push_token(name: &str) {
    let (token, hash) = new_token("trp_");
    println!("push token (shown once; give it to {name}):\n  {token}\n");
    println!("add under the push check in the config:\n");
    println!("[[checks.push.tokens]]\nname = {name:?}\nsha256 = \"{hash}\"");
}

fn token(name: &str, role: &str, tenant: Option<&str>) -> anyhow::Result<()> {
    if !["viewer", "operator", "admin"].contains(&role) {
        anyhow::bail!("unknown role {role:?}: use viewer, operator or admin");
    }
    let (token, hash) = new_token("trb_");
    println!("token (shown once; give it to {name}):\n  {token}\n");
    println!("add to the config:\n");
    println!("[[api.tokens]]\nname = {name:?}\nsha256 = \"{hash}\"\nrole = \"{role}\"");
    if let Some(tenant) = tenant {
        println!("tenant = {tenant:?}");
    }
    Ok(())
}

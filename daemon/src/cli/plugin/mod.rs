//! `tributary plugin ...`: the toolkit for plugin authors in any language.
//! `new` makes a project, `build` builds it, `test` replays recorded HTTP
//! exchanges against it, `call` runs one export, `inspect` says what a
//! component is. Each command is a module; this one parses arguments and
//! dispatches. Running plugins is the plugin host's (through
//! `plugin_sdk::harness`), never this module's.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use plugin_sdk::harness::replay::Call;

mod build;
mod call;
mod component;
mod scaffold;
mod test;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Make a plugin project that builds and passes its own tests at once:
    /// a small connector, its SDK, recorded fixtures, a README.
    New {
        /// The plugin's name: lowercase letters, digits and '-'.
        name: String,
        #[arg(long, value_enum)]
        lang: Lang,
        /// Where to make it (default: ./NAME); must not exist or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build the plugin project in the current folder (or --dir) into
    /// build/<folder>.wasm.
    Build {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run the built plugin against recorded HTTP exchanges (tests/*.json)
    /// and compare each outcome with the fixture's "expect".
    Test {
        /// Fixture files (default: every tests/*.json of the project).
        fixtures: Vec<PathBuf>,
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The component (default: the one in build/).
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Where compiled components are cached.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Call one export of a component and print its outcome as JSON.
    Call {
        file: PathBuf,
        #[arg(value_enum)]
        export: Export,
        /// The plugin config, a JSON file (secrets included).
        #[arg(long)]
        config: Option<PathBuf>,
        /// A host the plugin may reach: scheme://host[:port], `*.` wildcard.
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// The time the plugin sees (RFC 3339); the real time otherwise.
        #[arg(long, value_parser = parse_time)]
        now: Option<std::time::SystemTime>,
        /// Where compiled components are cached.
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Load a component and print what it says of itself and what made it.
    Inspect {
        file: PathBuf,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
    },
}

/// The languages `new` writes and `build` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// The exports `call` runs (the optional actions need arguments of their
/// own and are not offered).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Export {
    Describe,
    TestConnection,
    Discover,
    Collect,
}

impl From<Export> for Call {
    fn from(e: Export) -> Self {
        match e {
            Export::Describe => Call::Describe,
            Export::TestConnection => Call::TestConnection,
            Export::Discover => Call::Discover,
            Export::Collect => Call::Collect,
        }
    }
}

fn parse_time(text: &str) -> Result<std::time::SystemTime, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(std::time::SystemTime::from)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time (2026-11-20T10:00:00Z): {e}"))
}

fn cache_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(plugin_sdk::harness::default_cache_dir)
}

pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, lang, dir } => {
            let dir = scaffold::new(&name, lang, dir.as_deref())?;
            println!(
                "made {} ({lang:?} plugin {name}); next:\n  cd {}\n  tributary plugin build\n  tributary plugin test",
                dir.display(),
                dir.display()
            );
            Ok(())
        }
        PluginCommand::Build { dir } => {
            let started = std::time::Instant::now();
            let out = build::build(&dir)?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            println!(
                "built {} ({size} bytes) in {:.1} s",
                out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        PluginCommand::Test {
            fixtures,
            dir,
            wasm,
            cache_dir: cache,
        } => test::test(&dir, wasm, fixtures, &cache_dir(cache)).await,
        PluginCommand::Call {
            file,
            export,
            config,
            allow_hosts,
            now,
            cache_dir: cache,
        } => {
            call::call(
                &file,
                export.into(),
                config.as_deref(),
                &allow_hosts,
                now,
                &cache_dir(cache),
            )
            .await
        }
        PluginCommand::Inspect { file, data_dir } => inspect(&file, &data_dir).await,
    }
}

/// Loads the component as the daemon would and prints its descriptor, its
/// contract version, its hash and what made it.
async fn inspect(file: &Path, data_dir: &Path) -> anyhow::Result<()> {
    use anyhow::Context;

    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let facts = component::Facts::read(&bytes)
        .with_context(|| format!("{} is not WebAssembly", file.display()))?;
    let host = super::host(data_dir)?;
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
        "producers": facts.to_json(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

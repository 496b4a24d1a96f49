//! `tributary plugin ...`: the toolkit for plugin authors in any language.
//! `new` makes a project, `build` builds it, `test` replays recorded HTTP
//! exchanges against it, `call` runs one export, `inspect` says what a
//! component is. Each command is a module; this one parses arguments and
//! dispatches. Running plugins is the plugin host's (through
//! `plugin_sdk::harness`), never this module's.

use std::path::{Path, PathBuf};

use clap::{Subcommand, ValueEnum};
use plugin_sdk::harness::replay::{Action, Call, Scope};

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
        /// Write the plugin's outcome as the `expect` of each fixture it
        /// differs from (or that has none), keeping the rest of the file;
        /// review the change before you keep it.
        #[arg(long)]
        update: bool,
    },
    /// Call one export of a component and print its outcome as JSON.
    Call {
        file: PathBuf,
        #[arg(value_enum)]
        export: Export,
        /// The asset `resync` and `delete` act on.
        #[arg(long)]
        asset: Option<String>,
        /// A record id (repeatable): the records `resync` asks for again
        /// (none: all of them), or that `delete --scope ids` removes.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// What `delete` removes: the whole asset, one tenant's data
        /// (`--tenant`) or records (`--id`).
        #[arg(long, value_enum)]
        scope: Option<ScopeArg>,
        /// The tenant whose data `delete --scope tenant` removes.
        #[arg(long)]
        tenant: Option<String>,
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

/// The exports `call` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Export {
    Describe,
    TestConnection,
    Discover,
    Collect,
    Resync,
    Delete,
}

/// `delete`'s `--scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    Asset,
    Tenant,
    Ids,
}

/// The arguments of the actions, as given on the command line.
#[derive(Debug, Default)]
struct ActionArgs {
    asset: Option<String>,
    ids: Vec<String>,
    scope: Option<ScopeArg>,
    tenant: Option<String>,
}

impl ActionArgs {
    /// The call `export` makes with these arguments; an argument the export
    /// does not take, or one it needs and lacks, is named.
    fn call(self, export: Export) -> anyhow::Result<Call> {
        use anyhow::{Context, bail, ensure};
        let ActionArgs {
            asset,
            ids,
            scope,
            tenant,
        } = self;
        let action = matches!(export, Export::Resync | Export::Delete);
        ensure!(
            action || (asset.is_none() && ids.is_empty() && scope.is_none() && tenant.is_none()),
            "--asset, --id, --scope and --tenant are for resync and delete only"
        );
        ensure!(
            export == Export::Delete || (scope.is_none() && tenant.is_none()),
            "--scope and --tenant are for delete only"
        );
        Ok(match export {
            Export::Describe => Call::Describe,
            Export::TestConnection => Call::TestConnection,
            Export::Discover => Call::Discover,
            Export::Collect => Call::Collect,
            Export::Resync => {
                let asset = asset.context("resync needs --asset NAME")?;
                Call::Action(Action::Resync { asset, ids })
            }
            Export::Delete => {
                let asset = asset.context("delete needs --asset NAME")?;
                let scope = match (scope, tenant, ids.is_empty()) {
                    (None, ..) => bail!("delete needs --scope asset|tenant|ids"),
                    (Some(ScopeArg::Asset), None, true) => Scope::Asset,
                    (Some(ScopeArg::Asset), ..) => {
                        bail!("delete --scope asset takes neither --tenant nor --id")
                    }
                    (Some(ScopeArg::Tenant), None, _) => {
                        bail!("delete --scope tenant needs --tenant NAME")
                    }
                    (Some(ScopeArg::Tenant), Some(tenant), true) => Scope::Tenant(tenant),
                    (Some(ScopeArg::Tenant), Some(_), false) => {
                        bail!("delete --scope tenant takes --tenant, not --id")
                    }
                    (Some(ScopeArg::Ids), _, true) => {
                        bail!("delete --scope ids needs the records: --id ID (repeatable)")
                    }
                    (Some(ScopeArg::Ids), None, false) => Scope::Ids(ids),
                    (Some(ScopeArg::Ids), Some(_), false) => {
                        bail!("delete --scope ids takes --id, not --tenant")
                    }
                };
                Call::Action(Action::Delete { asset, scope })
            }
        })
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
            update,
        } => {
            let on_difference = if update {
                test::OnDifference::Update
            } else {
                test::OnDifference::Fail
            };
            test::test(&dir, wasm, fixtures, &cache_dir(cache), on_difference).await
        }
        PluginCommand::Call {
            file,
            export,
            asset,
            ids,
            scope,
            tenant,
            config,
            allow_hosts,
            now,
            cache_dir: cache,
        } => {
            let args = ActionArgs {
                asset,
                ids,
                scope,
                tenant,
            };
            call::call(
                &file,
                args.call(export)?,
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

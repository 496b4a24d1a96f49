//! A plugin folder: every `*.wasm` in it loaded at once, each file failing
//! alone.
//!
//! It owns what makes a folder's plugins usable together: one plugin per name
//! (two files claiming a name are both refused, so neither can take the
//! other's checks and their secrets), a config schema that is a JSON Schema,
//! and the list of files that failed and why (for the log, the API, metrics
//! and the runs of the checks that needed them). It must not read the config
//! or decide what a failure means for a reload: the reload module does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use super::engine::{Plugin, PluginHost};

/// How many files load at once. Compiling is spread over the cores by
/// wasmtime already; loading several at once mostly overlaps `describe`
/// calls, so a slow one costs its deadline once rather than once per file.
const LOAD_AT_ONCE: usize = 8;

/// The plugins of a folder: those loaded, and the files that failed.
#[derive(Clone, Default)]
pub struct PluginSet {
    pub loaded: Vec<Plugin>,
    pub failed: Vec<FailedPlugin>,
}

impl From<Vec<Plugin>> for PluginSet {
    /// Plugins loaded one by one (tests, tools): nothing failed.
    fn from(loaded: Vec<Plugin>) -> Self {
        Self {
            loaded,
            failed: Vec::new(),
        }
    }
}

/// A plugin file that did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPlugin {
    pub file: PathBuf,
    /// The name it gave itself, when it got as far as `describe`.
    pub name: Option<String>,
    /// Why, naming the file.
    pub error: String,
}

impl std::fmt::Display for FailedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

/// Why connector `name` is missing when some plugin files failed: the file
/// that described itself as `name`, else one that could not say and is named
/// `name.wasm`, else every file that could not say (any of them may be it).
/// `None` when no failed file can be it.
pub fn missing_because(failed: &[FailedPlugin], name: &str) -> Option<String> {
    let named: Vec<&FailedPlugin> = failed
        .iter()
        .filter(|f| f.name.as_deref() == Some(name))
        .collect();
    let unnamed = || failed.iter().filter(|f| f.name.is_none());
    let stem = |f: &&FailedPlugin| f.file.file_stem().is_some_and(|s| s == name);
    let candidates: Vec<&FailedPlugin> = if !named.is_empty() {
        named
    } else if let Some(f) = unnamed().find(stem) {
        vec![f]
    } else {
        unnamed().collect()
    };
    match candidates.as_slice() {
        [] => None,
        [one] if one.name.is_some() || stem(one) => {
            Some(format!("its plugin failed to load: {}", one.error))
        }
        many => Some(format!(
            "no loaded plugin is named {name:?}, and {} plugin file(s) failed to load before saying their name: {}",
            many.len(),
            many.iter()
                .map(|f| f.error.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

/// Loads every `*.wasm` in `dir`, several at once. A file that does not load
/// (not a component, another contract major, no answer from `describe` in
/// time, a config schema that is not a JSON Schema, a name another file
/// claims too) is logged and listed in [`PluginSet::failed`]; the others load.
pub async fn load_folder(host: &PluginHost, dir: &Path) -> std::io::Result<PluginSet> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    tracing::info!(folder = %dir.display(), files = files.len(), "loading plugins");
    // A failure comes with the name the plugin gave itself, if it did.
    type Loaded = Result<Plugin, (Option<String>, String)>;
    let results: Vec<(PathBuf, Loaded)> = futures_util::stream::iter(files)
        .map(|file| async move {
            let result = match host.load(&file).await {
                Ok(plugin) => match check_schema(&plugin) {
                    Ok(()) => Ok(plugin),
                    Err(error) => Err((Some(plugin.name().to_owned()), error)),
                },
                Err(err) => Err((None, err.to_string())),
            };
            (file, result)
        })
        .buffered(LOAD_AT_ONCE)
        .collect()
        .await;

    let mut set = PluginSet::default();
    let mut by_name: BTreeMap<String, Vec<Plugin>> = BTreeMap::new();
    for (file, result) in results {
        match result {
            Ok(plugin) => by_name
                .entry(plugin.name().to_owned())
                .or_default()
                .push(plugin),
            Err((name, error)) => set.failed.push(FailedPlugin { file, name, error }),
        }
    }
    for (name, mut plugins) in by_name {
        if plugins.len() == 1 {
            set.loaded.extend(plugins.pop());
            continue;
        }
        let files: Vec<String> = plugins
            .iter()
            .map(|p| p.path().display().to_string())
            .collect();
        let error = format!(
            "plugin name {name:?} is claimed by {}: none of them is loaded (remove all but one, or give each its own name)",
            files.join(" and ")
        );
        set.failed.extend(plugins.iter().map(|p| FailedPlugin {
            file: p.path().to_owned(),
            name: Some(name.clone()),
            error: error.clone(),
        }));
    }
    for failed in &set.failed {
        tracing::error!(file = %failed.file.display(), error = %failed.error, "plugin not loaded");
    }
    set.failed.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(set)
}

/// Refuses a plugin whose config schema is not a JSON Schema: no check could
/// be validated against it.
fn check_schema(plugin: &Plugin) -> Result<(), String> {
    let fail = |why: String| {
        format!(
            "plugin {:?} ({}) describes an invalid config schema: {why}",
            plugin.name(),
            plugin.path().display()
        )
    };
    let schema: serde_json::Value = serde_json::from_str(&plugin.descriptor().config_schema)
        .map_err(|e| fail(e.to_string()))?;
    jsonschema::options()
        .build(&schema)
        .map(drop)
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(file: &str, name: Option<&str>) -> FailedPlugin {
        FailedPlugin {
            file: file.into(),
            name: name.map(str::to_owned),
            error: format!("{file} broke"),
        }
    }

    #[test]
    fn a_missing_connector_is_blamed_on_the_file_that_can_be_it() {
        let all = [
            failed("p/a.wasm", Some("snowflake")),
            failed("p/dbt.wasm", None),
            failed("p/x.wasm", None),
        ];
        assert_eq!(
            missing_because(&all, "snowflake").unwrap(),
            "its plugin failed to load: p/a.wasm broke"
        );
        assert_eq!(
            missing_because(&all, "dbt").unwrap(),
            "its plugin failed to load: p/dbt.wasm broke"
        );
        let looker = missing_because(&all, "looker").unwrap();
        assert!(
            looker.contains("p/dbt.wasm broke; p/x.wasm broke"),
            "{looker}"
        );
        assert_eq!(missing_because(&all[..1], "looker"), None);
    }
}

//! dbt Core mode: the artifacts of the last invocations, read from the
//! directory the check grants read-only (the sandbox shows it as `/data`;
//! point the grant at the project's `target/`).

use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};

use plugin_sdk::prelude::*;

use crate::artifacts::{Manifest, RunResults, Sources};
use crate::report::{self, FreshnessResults, Inputs};

/// Where the host mounts the check's `read_dir` grant.
const ROOT: &str = "/data";

/// The three artifact names, relative to the grant.
pub struct Files {
    run_results: String,
    sources: String,
    manifest: String,
}

impl Files {
    pub fn new(
        run_results: Option<String>,
        sources: Option<String>,
        manifest: Option<String>,
    ) -> Result<Self, ConnectorError> {
        let checked = |field: &str, value: Option<String>, default: &str| {
            let value = value.unwrap_or_else(|| default.to_owned());
            let path = Path::new(&value);
            let inside = !value.is_empty()
                && path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if inside {
                Ok(value)
            } else {
                Err(ConnectorError::config(format_args!(
                    "invalid config: `{field}` = {value:?} must be a file name relative to the \
                     granted directory (no leading `/`, no `..`)"
                )))
            }
        };
        Ok(Files {
            run_results: checked("run_results", run_results, "run_results.json")?,
            sources: checked("sources", sources, "sources.json")?,
            manifest: checked("manifest", manifest, "manifest.json")?,
        })
    }

    /// Checks that the artifacts are there and of versions we read.
    pub fn test(&self) -> Result<(), ConnectorError> {
        RunResults::load(&self.run_results, &opener(&self.run_results))?;
        Manifest::load(&self.manifest, &opener(&self.manifest))?;
        if exists(&self.sources)? {
            Sources::load(&self.sources, &opener(&self.sources))?;
        }
        Ok(())
    }

    /// Every model, seed, snapshot, test, source and exposure the manifest
    /// knows.
    pub fn discover(&self) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Ok(Manifest::load(&self.manifest, &opener(&self.manifest))?.descriptors())
    }

    pub fn collect(&self) -> Result<Vec<Observation>, ConnectorError> {
        let run = RunResults::load(&self.run_results, &opener(&self.run_results))?;
        let manifest = Manifest::load(&self.manifest, &opener(&self.manifest))?;
        let sources = if exists(&self.sources)? {
            Some(Sources::load(&self.sources, &opener(&self.sources))?)
        } else {
            None
        };
        let freshness = match &sources {
            Some(s) => FreshnessResults::Present {
                results: &s.results,
                described_as: describe(&self.sources, s.invocation.invocation_id.as_deref()),
            },
            None => FreshnessResults::Absent(format!(
                "there is no {} in the granted directory (run `dbt source freshness`)",
                self.sources
            )),
        };
        let mut observations = report::observations(&Inputs {
            nodes: &run.nodes,
            freshness,
            manifest: Some(&manifest),
            origin: None,
        });
        let mut summaries = vec![report::run_summary(&self.run_results, &run, None)];
        if let Some(s) = &sources {
            summaries.push(report::freshness_summary(
                &self.sources,
                &s.invocation,
                &observations,
                None,
            ));
        }
        observations.extend(summaries);
        Ok(observations)
    }
}

/// `sources.json (invocation 3d3e…)`: how messages name a freshness run.
pub fn describe(file: &str, invocation_id: Option<&str>) -> String {
    match invocation_id {
        Some(id) => format!("{file} (invocation {id})"),
        None => file.to_owned(),
    }
}

fn path(name: &str) -> PathBuf {
    Path::new(ROOT).join(name)
}

fn exists(name: &str) -> Result<bool, ConnectorError> {
    match std::fs::metadata(path(name)) {
        Ok(meta) => Ok(meta.is_file()),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
        Err(err) => Err(file_error(name, err)),
    }
}

/// Opens `/data/<name>`, as often as [`crate::artifacts::load`] asks.
fn opener<'a>(name: &'a str) -> impl Fn() -> Result<Box<dyn Read + 'a>, ConnectorError> + 'a {
    move || {
        std::fs::File::open(path(name))
            .map(|f| Box::new(f) as Box<dyn Read + 'a>)
            .map_err(|err| file_error(name, err))
    }
}

fn file_error(name: &str, err: std::io::Error) -> ConnectorError {
    let at = path(name);
    match err.kind() {
        ErrorKind::NotFound => ConnectorError::config(format_args!(
            "{name} not found in the granted directory (looked for {}): does the check grant \
             read_dir = \"<project>/target\", and did dbt write it there?",
            at.display()
        )),
        _ => ConnectorError::from(err).context(format_args!("reading {}", at.display())),
    }
}

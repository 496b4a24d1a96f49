//! `tributary plugin test`: runs a built plugin against each recorded
//! fixture (`tests/*.json`) in the real plugin host and compares the outcome
//! with the fixture's `expect`, printing a line per fixture and the
//! differences of the failed ones. Replaying and comparing are
//! `plugin_sdk::harness::replay`, shared with Rust tests; this module only
//! finds the files and reports.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plugin_sdk::harness::replay::{self, Fixture, Verdict};

/// Tests `wasm` (the one component in `dir/build/` when not given) against
/// `fixtures` (every `dir/tests/*.json` when empty). Fails when any fails.
pub async fn test(
    dir: &Path,
    wasm: Option<PathBuf>,
    fixtures: Vec<PathBuf>,
    cache_dir: &Path,
) -> anyhow::Result<()> {
    let wasm = match wasm {
        Some(wasm) => wasm,
        None => built_component(dir)?,
    };
    let fixtures = if fixtures.is_empty() {
        fixtures_in(&dir.join("tests"))?
    } else {
        fixtures
    };
    let mut failed = 0;
    for path in &fixtures {
        let shown = path.strip_prefix(dir).unwrap_or(path).display();
        match test_one(&wasm, path, cache_dir).await {
            Ok(()) => println!("ok    {shown}"),
            Err(lines) => {
                failed += 1;
                println!("FAIL  {shown}");
                for line in lines {
                    println!("      {line}");
                }
            }
        }
    }
    println!(
        "{} passed, {failed} failed ({})",
        fixtures.len() - failed,
        wasm.display()
    );
    if failed > 0 {
        bail!("{failed} of {} fixture(s) failed", fixtures.len());
    }
    Ok(())
}

/// Runs one fixture; the lines that say why it failed.
async fn test_one(wasm: &Path, path: &Path, cache_dir: &Path) -> Result<(), Vec<String>> {
    let fixture = Fixture::load(path).map_err(|e| vec![e.to_string()])?;
    let replayed = replay::run(wasm, &fixture, cache_dir)
        .await
        .map_err(|e| vec![e.to_string()])?;
    match replayed.verdict(&fixture) {
        Verdict::Passed => Ok(()),
        Verdict::NoExpectation => Err(vec![
            "the fixture has no \"expect\"; the plugin gave (check it, then paste it as \"expect\"):"
                .into(),
            serde_json::to_string_pretty(&replayed.outcome).unwrap_or_default(),
        ]),
        Verdict::Failed { unmatched, diff } => {
            let mut lines = unmatched;
            if !diff.is_empty() {
                lines.push("the outcome differs from \"expect\" (expected vs got):".into());
                lines.extend(diff.into_iter().map(|d| format!("  {d}")));
            }
            Err(lines)
        }
    }
}

/// The single `.wasm` in `dir/build/`.
fn built_component(dir: &Path) -> anyhow::Result<PathBuf> {
    let build = dir.join("build");
    let found = wasm_files(&build, "wasm").unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "no component in {}: run `tributary plugin build` first, or give --wasm FILE",
            build.display()
        ),
        many => bail!(
            "several components in {} ({}): choose one with --wasm FILE",
            build.display(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn fixtures_in(tests: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let found = wasm_files(tests, "json")
        .with_context(|| format!("cannot read the fixture folder {}", tests.display()))?;
    anyhow::ensure!(
        !found.is_empty(),
        "no fixtures (*.json) in {}: see docs/plugin-toolkit.md for the format",
        tests.display()
    );
    Ok(found)
}

/// The files of `dir` ending in `.ext`, sorted.
fn wasm_files(dir: &Path, ext: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    Ok(found)
}

//! `tributary plugin test`: runs a built plugin against each recorded
//! fixture (`tests/*.json`) in the real plugin host and compares the outcome
//! with the fixture's `expect`, printing a line per fixture and the
//! differences of the failed ones; with `--update` it writes the outcome
//! into each fixture that differs instead. Replaying and comparing are
//! `plugin_sdk::harness::replay`, shared with Rust tests; this module finds
//! the files, reports, and rewrites a fixture's `expect`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indexmap::IndexMap;
use plugin_sdk::harness::replay::{self, Fixture, Verdict};
use serde_json::Value;
use serde_json::value::RawValue;

/// What `test` does with a fixture whose outcome differs from its `expect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDifference {
    Fail,
    /// Write the outcome as the new `expect` (snapshot style): the author
    /// reviews the change in their diff. A fixture with a request no
    /// exchange answers still fails: its recording is incomplete.
    Update,
}

/// Tests `wasm` (the one component in `dir/build/` when not given) against
/// `fixtures` (every `dir/tests/*.json` when empty). Fails when any fails.
pub async fn test(
    dir: &Path,
    wasm: Option<PathBuf>,
    fixtures: Vec<PathBuf>,
    cache_dir: &Path,
    on_difference: OnDifference,
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
    let (mut failed, mut updated) = (0, 0);
    for path in &fixtures {
        let shown = path.strip_prefix(dir).unwrap_or(path).display();
        match test_one(&wasm, path, cache_dir, on_difference).await {
            Ok(Tested::Passed) => println!("ok    {shown}"),
            Ok(Tested::Updated(lines)) => {
                updated += 1;
                println!("UPDATED {shown}");
                for line in lines {
                    println!("      {line}");
                }
            }
            Err(lines) => {
                failed += 1;
                println!("FAIL  {shown}");
                for line in lines {
                    println!("      {line}");
                }
            }
        }
    }
    let passed = fixtures.len() - failed - updated;
    match on_difference {
        OnDifference::Fail => println!("{passed} passed, {failed} failed ({})", wasm.display()),
        OnDifference::Update => println!(
            "{passed} passed, {updated} updated, {failed} failed ({}){}",
            wasm.display(),
            if updated > 0 {
                "; check the updated \"expect\"s before you keep them"
            } else {
                ""
            }
        ),
    }
    if failed > 0 {
        bail!("{failed} of {} fixture(s) failed", fixtures.len());
    }
    Ok(())
}

/// How a fixture that did not fail came out.
enum Tested {
    Passed,
    /// Its `expect` was rewritten; the differences it had.
    Updated(Vec<String>),
}

/// Runs one fixture; the lines that say why it failed.
async fn test_one(
    wasm: &Path,
    path: &Path,
    cache_dir: &Path,
    on_difference: OnDifference,
) -> Result<Tested, Vec<String>> {
    let fixture = Fixture::load(path).map_err(|e| vec![e.to_string()])?;
    let replayed = replay::run(wasm, &fixture, cache_dir)
        .await
        .map_err(|e| vec![e.to_string()])?;
    let differences = match replayed.verdict(&fixture) {
        Verdict::Passed => return Ok(Tested::Passed),
        Verdict::NoExpectation if on_difference == OnDifference::Update => {
            vec!["it had no \"expect\"".to_owned()]
        }
        Verdict::NoExpectation => {
            return Err(vec![
                "the fixture has no \"expect\"; the plugin gave (check it, then paste it as \"expect\", or run test --update):"
                    .into(),
                serde_json::to_string_pretty(&replayed.outcome).unwrap_or_default(),
            ]);
        }
        Verdict::Failed { unmatched, diff }
            if on_difference == OnDifference::Fail || !unmatched.is_empty() =>
        {
            let mut lines = unmatched;
            if !diff.is_empty() {
                lines.push("the outcome differs from \"expect\" (expected vs got):".into());
                lines.extend(diff.into_iter().map(|d| format!("  {d}")));
            }
            return Err(lines);
        }
        Verdict::Failed { diff, .. } => diff,
    };
    write_expect(path, &replayed.outcome).map_err(|e| vec![format!("{e:#}")])?;
    Ok(Tested::Updated(differences))
}

/// Rewrites the fixture at `path` with `outcome` as its `expect`, keeping
/// every other member as it was written (order and text), through a
/// temporary file renamed over it so an interrupted write loses nothing.
/// A symlinked fixture is rewritten where it lives; the link stays.
fn write_expect(path: &Path, outcome: &Value) -> anyhow::Result<()> {
    let path =
        &std::fs::canonicalize(path).with_context(|| format!("cannot find {}", path.display()))?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    // The members in the order written, each value as its text.
    let mut members: IndexMap<String, Box<RawValue>> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    // Nested one level: the pretty value's own lines move in by two spaces.
    let expect = serde_json::to_string_pretty(outcome)?.replace('\n', "\n  ");
    // In its place when there is one, last otherwise.
    members.insert("expect".into(), RawValue::from_string(expect)?);
    let lines = members
        .iter()
        .map(|(key, raw)| Ok(format!("  {}: {}", serde_json::to_string(key)?, raw.get())))
        .collect::<serde_json::Result<Vec<String>>>()?;
    let updated = format!("{{\n{}\n}}\n", lines.join(",\n"));
    let temporary = path.with_extension("json.updating");
    std::fs::write(&temporary, updated)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
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

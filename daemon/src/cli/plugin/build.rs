//! `tributary plugin build`: builds the plugin project in a folder into
//! `build/<folder>.wasm`, for whichever language it is written in.
//!
//! The language is told by the project's files (`Cargo.toml`, `app.py`,
//! `plugin.js`). Python and JavaScript run the SDK's own `build.sh` that
//! `plugin new` wrote into `sdk/` (the repository's script, byte for byte);
//! Rust runs cargo for `wasm32-wasip2` in release mode, as
//! `scripts/build-plugins.sh` does. Every component is then checked for the
//! contract's export, so a plugin that forgot it fails here and not at load.
//! It must not load or run the plugin: that is `test` and `call`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::Lang;
use super::component::{CONTRACT_EXPORT, Facts};

/// Which language the project in `dir` is written in, from its files.
pub fn detect(dir: &Path) -> anyhow::Result<Lang> {
    let found = [
        ("Cargo.toml", Lang::Rust),
        ("app.py", Lang::Python),
        ("plugin.js", Lang::Js),
    ]
    .into_iter()
    .find(|(file, _)| dir.join(file).is_file());
    match found {
        Some((_, lang)) => Ok(lang),
        None => bail!(
            "{} holds no plugin project: expected Cargo.toml (Rust), app.py (Python) or plugin.js \
             (JavaScript); make one with `tributary plugin new NAME --lang rust|python|js`",
            dir.display()
        ),
    }
}

/// Builds the project in `dir`; returns the component's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("no folder {}", dir.display()))?;
    let lang = detect(&dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    let out = dir.join("build").join(format!("{name}.wasm"));
    std::fs::create_dir_all(dir.join("build")).context("cannot make the build folder")?;
    match lang {
        Lang::Python => {
            let script = sdk_script(&dir, "plugin-sdk-python")?;
            run(
                Command::new(script).arg(".").arg("-o").arg(&out),
                &dir,
                "componentize-py",
            )?;
        }
        Lang::Js => {
            let script = sdk_script(&dir, "plugin-sdk-js")?;
            let sdk = dir.join("sdk/plugin-sdk-js");
            if !sdk.join("node_modules/.bin/componentize-js").exists() {
                eprintln!("installing the JavaScript SDK's build tools (npm ci, once)");
                run(
                    Command::new("npm")
                        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                        .arg(&sdk),
                    &dir,
                    "npm",
                )?;
            }
            run(
                Command::new(script).arg("plugin.js").arg("-o").arg(&out),
                &dir,
                "componentize-js",
            )?;
        }
        Lang::Rust => {
            let built = cargo(&dir)?;
            std::fs::copy(&built, &out)
                .with_context(|| format!("cannot copy {} to {}", built.display(), out.display()))?;
        }
    }
    let bytes =
        std::fs::read(&out).with_context(|| format!("no component at {}", out.display()))?;
    let facts =
        Facts::read(&bytes).with_context(|| format!("{} is not WebAssembly", out.display()))?;
    if !facts.is_connector() {
        let hint = match lang {
            Lang::Rust => "add plugin_sdk::export_connector!(YourConnector); to src/lib.rs",
            Lang::Python => "app.py must assign `Plugin = tributary.export(YourConnector)`",
            Lang::Js => "plugin.js must `export const plugin = connector({...})`",
        };
        let _ = std::fs::remove_file(&out);
        bail!(
            "the component does not export {CONTRACT_EXPORT}* (exports: {}): {hint}",
            if facts.exports.is_empty() {
                "none".into()
            } else {
                facts.exports.join(", ")
            }
        );
    }
    Ok(out)
}

/// The SDK's build script in the project, or why there is none.
fn sdk_script(dir: &Path, sdk: &str) -> anyhow::Result<PathBuf> {
    let script = dir.join("sdk").join(sdk).join("build.sh");
    anyhow::ensure!(
        script.is_file(),
        "{} is missing: this project was not made by `tributary plugin new` \
         (make one and move your source into it)",
        script.display()
    );
    Ok(script)
}

/// Runs a build tool in `dir`, its output on ours; fails naming `what`.
fn run(command: &mut Command, dir: &Path, what: &str) -> anyhow::Result<()> {
    let status = command
        .current_dir(dir)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    anyhow::ensure!(status.success(), "the build failed ({what}, {status})");
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2` in `dir`; the component
/// cargo made. Cargo's diagnostics pass through to our stderr as they come,
/// watched for the SDK's missing-export import so the failure can say what
/// to add.
fn cargo(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run cargo")?;
    let stderr = child.stderr.take().context("cargo's stderr is piped")?;
    let watcher = std::thread::spawn(move || {
        let mut missing_export = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            missing_export |= line.contains(plugin_sdk::MISSING_EXPORT_SYMBOL);
            eprintln!("{line}");
        }
        missing_export
    });
    let output = child.wait_with_output().context("cannot run cargo")?;
    let missing_export = watcher.join().unwrap_or(false);
    anyhow::ensure!(
        !missing_export,
        "the build failed: the crate does not export its connector; add \
         `plugin_sdk::export_connector!(YourConnector);` at its root"
    );
    anyhow::ensure!(
        output.status.success(),
        "the build failed (cargo, {}); is the target installed? `rustup target add wasm32-wasip2`",
        output.status
    );
    let folder = plugin_sdk::harness::wasm_artifact_dir(&output.stdout)
        .context("cargo built no .wasm: is the crate `crate-type = [\"cdylib\"]`?")?;
    let stem = package_name(dir)?.replace('-', "_");
    Ok(folder.join(format!("{stem}.wasm")))
}

/// The package name in `dir/Cargo.toml`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).context("cannot read Cargo.toml")?;
    let manifest: toml::Table = toml::from_str(&text).context("Cargo.toml is not valid TOML")?;
    manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .context("Cargo.toml has no [package] name")
}

//! Building plugins as an author does: `scripts/build-plugins.sh -p NAME`
//! builds and copies that plugin only, and a crate that forgot
//! `export_connector!` fails to build, naming the macro.

use std::path::Path;
use std::process::Command;

#[test]
fn building_one_plugin_copies_that_plugin_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new("bash")
        .arg(root.join("scripts/build-plugins.sh"))
        .args(["-p", "example"])
        // Settings of the outer `cargo test` must not leak into the wasm build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run build-plugins.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("built 1 plugin component(s)"), "{stdout}");
    assert!(stdout.contains("target/plugins/example.wasm"), "{stdout}");
}

/// A crate that implements `Connector` but never calls `export_connector!`
/// would build into a component that exports nothing; it must not build.
#[test]
fn a_plugin_without_export_connector_fails_to_build_naming_the_macro() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().expect("the repository");
    let krate = tempfile_dir("forgot-export");
    let sdk = root.join("plugin-sdk");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"forgot-export\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nplugin-sdk = {{ path = {sdk:?} }}\n\n\
             [workspace]\n\n{}",
            // The plugins workspace's profile, so its compiled dependencies are reused.
            release_profile(&root)
        ),
    )
    .unwrap();
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("src/lib.rs"),
        r#"
use plugin_sdk::prelude::*;

pub struct Forgot;

impl Connector for Forgot {
    type Config = plugin_sdk::serde_json::Value;
    fn describe() -> Descriptor {
        Descriptor::new("forgot", "0.1.0", "never exported")
    }
    async fn test_connection(_: Self::Config) -> Result<(), ConnectorError> {
        Ok(())
    }
    async fn discover(_: Self::Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Ok(vec![])
    }
    async fn collect(_: Self::Config, _: RunContext) -> Result<Report, ConnectorError> {
        Ok(Report::builder().build())
    }
}
"#,
    )
    .unwrap();
    // Same versions as the plugins, and nothing to fetch.
    std::fs::copy(root.join("plugins/Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--offline",
            "--target",
            "wasm32-wasip2",
        ])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", root.join("target/wasm"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::remove_dir_all(&krate).ok();
    assert!(!output.status.success(), "the crate built:\n{stderr}");
    assert!(
        stderr.contains(plugin_sdk::MISSING_EXPORT_SYMBOL),
        "{stderr}"
    );
}

/// A fresh folder of this process under the system's temp folder.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `[profile.release]` table of `plugins/Cargo.toml`.
fn release_profile(root: &Path) -> String {
    let manifest = std::fs::read_to_string(root.join("plugins/Cargo.toml")).unwrap();
    let start = manifest
        .find("[profile.release]")
        .expect("plugins/Cargo.toml has a release profile");
    manifest[start..].to_owned()
}

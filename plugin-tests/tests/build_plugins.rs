//! `scripts/build-plugins.sh -p NAME`, as a plugin author runs it: builds and
//! copies that plugin only, and does not fail looking for the others.

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

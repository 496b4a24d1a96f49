//! `tributary validate` as an operator runs it: every error with its place, and
//! the exit code says whether the file is usable.

use std::process::Command;

fn validate(file: &std::path::Path) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("validate")
        .arg(file)
        .args(["--allow-unknown-connectors", "--plugins", "/nonexistent"])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap()
}

#[test]
fn the_example_config_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/example.toml");
    let out = validate(&example);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("valid (2 tenants, 2 flows, 5 checks)"),
        "{stdout}"
    );
}

#[test]
fn every_error_is_reported_with_its_line_and_the_exit_code_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"nope\"\n\n[[checks]]\nid = \"a\"\nsystem = \"x\"\nconnector = \"example\"\nschedule = { every = \"5m\" }\n",
    )
    .unwrap();
    let out = validate(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("bad.toml:2:1: /server/listen: invalid listen address \"nope\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad.toml:6:1: /checks/0/system: unknown system \"x\""),
        "{stdout}"
    );
}

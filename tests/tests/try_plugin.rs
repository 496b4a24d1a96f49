//! The config README's "Write a plugin" gives a newcomer to try a plugin,
//! `plugin-tests/try-plugin.toml`, validates and runs the example connector
//! with the commands the README shows, from a folder laid out like the
//! repository (the components in `target/plugins/`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use tributary_tests::kit::{Fake, TOKEN, daemon_binary, doc_ids, document_service};
use tributary_tests::{plugin, repo_root};

/// The address the file grants and calls, for the README's static server.
const DOCS_SERVICE: &str = "http://127.0.0.1:8099";

fn tributary(root: &Path, args: &[&str]) -> Output {
    Command::new(daemon_binary())
        .args(args)
        .current_dir(root)
        .env("EXAMPLE_TOKEN", TOKEN)
        .output()
        .expect("run tributary")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_try_config_validates_and_runs_the_example() {
    let file = std::fs::read_to_string(repo_root().join("plugin-tests/try-plugin.toml"))
        .expect("plugin-tests/try-plugin.toml");
    assert!(
        file.contains(DOCS_SERVICE),
        "the file no longer calls {DOCS_SERVICE}: update this test and the README"
    );
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("target/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(plugin("example"), plugins.join("example.wasm")).unwrap();
    std::fs::write(root.path().join("try-plugin.toml"), &file).unwrap();

    let out = tributary(root.path(), &["validate", "try-plugin.toml"]);
    assert!(out.status.success(), "{}", text(&out));

    // The same file, with the fake service where the README starts its own.
    let service = document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(12),
        ..Fake::default()
    })))
    .await;
    std::fs::write(
        root.path().join("try-plugin.toml"),
        file.replace(DOCS_SERVICE, &service.url()),
    )
    .unwrap();
    let out = tributary(root.path(), &["run", "try", "--config", "try-plugin.toml"]);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("check try (example 0.1.0)"), "{printed}");
    assert!(printed.contains(": succeeded in"), "{printed}");
    assert!(printed.contains("received 12"), "{printed}");
    assert_eq!(service.requests().len(), 1, "one GET of the stats");
}

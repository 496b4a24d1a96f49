//! The reference GraphQL clients (graphql-ws, Apollo Client, urql) driven
//! from Node: the scripts live in `tests/js/`, their packages are pinned in
//! `tests/js/package-lock.json` and installed by `.ci/run` (`npm ci`).
//!
//! A script is given the daemon's address in its arguments and prints one
//! JSON object per line on stdout, each a thing it saw; the Rust test reads
//! those lines as they come, so it can act in between (publish a change,
//! stop the daemon) and assert on what the client reported.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// `tests/js/`, with its packages installed.
pub fn scripts() -> PathBuf {
    let dir = crate::repo_root().join("tests/js");
    assert!(
        dir.join("node_modules/graphql-ws").exists(),
        "the Node clients are not installed: run `npm ci --prefix tests/js` (.ci/run does)"
    );
    dir
}

/// A running script; killed when dropped.
pub struct Script {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Script {
    /// Starts `node tests/js/<name> <args>`.
    pub fn start(name: &str, args: &[&str]) -> Script {
        let dir = scripts();
        let mut child = Command::new("node")
            .arg(dir.join(name))
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (Node.js 20 or later on PATH)");
        let stdout = child.stdout.take().expect("stdout is piped");
        Script {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next thing the script reports, waiting at most `within`; `None`
    /// when it has exited.
    pub async fn next(&mut self, within: Duration) -> Option<serde_json::Value> {
        let line = tokio::time::timeout(within, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the script said nothing within {within:?}"))
            .expect("reading the script's stdout")?;
        Some(
            serde_json::from_str(&line).unwrap_or_else(|e| {
                panic!("the script printed a line that is not JSON ({e}): {line}")
            }),
        )
    }

    /// Reads reports until one has `"event": event`, and returns it.
    pub async fn until(&mut self, event: &str, within: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(v) if v["event"] == event => return v,
                Some(_) => continue,
                None => panic!("the script exited before reporting {event}"),
            }
        }
    }

    /// Waits for the script to exit on its own and returns every report it
    /// printed, failing if it exits non-zero.
    pub async fn finish(mut self, within: Duration) -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(v) => seen.push(v),
                None => break,
            }
        }
        let status = tokio::time::timeout(
            deadline.saturating_duration_since(tokio::time::Instant::now()),
            self.child.wait(),
        )
        .await
        .expect("the script exits after closing stdout")
        .expect("waiting for node");
        assert!(
            status.success(),
            "the script failed ({status}); it printed {seen:#?}"
        );
        seen
    }
}

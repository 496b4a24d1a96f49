//! Shared pieces of the end-to-end tests: where the built plugins are, a
//! daemon with a fake service to watch ([`kit`]), a GraphQL client ([`gql`]),
//! a writer that keeps what the daemon logs ([`logs`]) and the reference
//! GraphQL clients run from Node ([`node`]).
//!
//! Plugins are real components built from `plugins/` to `wasm32-wasip2` (once
//! per test process; cargo makes the rebuild a no-op when nothing changed).

use std::path::{Path, PathBuf};

pub mod bench;
pub mod fakes;
pub mod gql;
pub mod kit;
pub mod logs;
pub mod node;
pub mod observed;
pub mod proxy;
pub mod statements;
pub mod storm;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// Builds the plugins workspace (once per process) and returns the path of
/// `name.wasm` (crate name with `-` as `_`).
pub fn plugin(name: &str) -> PathBuf {
    plugin_sdk::harness::plugin(&repo_root().join("plugins/Cargo.toml"), name)
}

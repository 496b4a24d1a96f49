//! Tributary watches data flowing between systems through sandboxed WebAssembly
//! connector plugins.
//!
//! The library holds every concept of the daemon in its own module; the
//! `tributary` binary only parses the command line and calls into [`cli`].
//!
//! - [`plugin`]: the plugin host, which loads connector components and runs them
//!   inside a sandbox with per-run limits.
//! - [`clock`]: the time seam, so tests can fix "now".
//! - [`health`]: the health engine: rules into health, hysteresis, mute, roll-up.
//! - [`config`]: the config file: reading, validating (every error at once, with its
//!   place) and typing it.

pub mod cli;
pub mod clock;
pub mod config;
pub mod health;
pub mod plugin;

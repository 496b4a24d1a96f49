//! Tributary watches data flowing between systems through sandboxed WebAssembly
//! connector plugins.
//!
//! The library holds every concept of the daemon in its own module; the
//! `tributary` binary only parses the command line and calls into [`cli`].
//!
//! - [`alerts`]: health changes delivered to webhooks, Slack, PagerDuty and email.
//! - [`api`]: the GraphQL API over HTTP and WebSocket, with auth and limits.
//! - [`reload`]: building a config and its plugins from disk and swapping them in.
//! - [`rendered`]: a rendered page kept for many requests, gzipped once, sent
//!   with its ETag (the status pages' and the web UI's kept answers).
//! - [`plugin`]: the plugin host (the `plugin-host` crate), which loads
//!   connector components and runs them inside a sandbox with per-run limits.
//! - [`push`]: the native push API: systems that cannot be polled report to
//!   push checks over HTTP (reports, id batches, heartbeats).
//! - [`clock`]: the time seam, so tests can fix "now" (from `plugin-host`).
//! - [`health`]: the health engine: rules into health, hysteresis, mute, roll-up.
//! - [`config`]: the config file: reading, validating (every error at once, with its
//!   place) and typing it.
//! - [`events`]: the in-process bus of health events and completed runs.
//! - [`metrics`]: the Prometheus figures served at `/metrics`.
//! - [`reconcile`]: id sets streamed by plugins and what a downstream system lacks.
//! - [`scheduler`]: when checks run, how many at once, retries, run-now, shutdown.
//! - [`service`]: the running daemon: one run from plugin to store to events.
//! - [`statuspage`]: public status pages and badges of public tenants, and
//!   the 90 daily bars every page draws.
//! - [`store`]: SQLite or Postgres: runs, observations, ids, health, events,
//!   rollups, the audit log.
//! - [`web`]: the signed-in web UI at `/`, pages and actions through the API.

pub mod alerts;
pub mod api;
pub mod cli;
pub use plugin_host::clock;
pub mod config;
pub mod events;
pub mod health;
pub mod metrics;
/// The plugin host is a crate of its own (`plugin-host/`), so plugin
/// authors' tests build without the daemon; it keeps its place here.
pub use plugin_host as plugin;
pub mod push;
pub mod reconcile;
pub mod reload;
pub mod rendered;
pub mod revalidate;
pub mod scheduler;
pub mod service;
pub mod slo;
pub mod statuspage;
pub mod store;
pub mod web;

//! The plugin host: loads connector components and runs them in a sandbox.
//!
//! A crate of its own so that what runs a plugin (the daemon, the plugin
//! test harness in `plugin-sdk`, the benches) builds without storage, the
//! API or the scheduler: a plugin author's tests compile this and wasmtime,
//! not the daemon. [`clock`] is the time seam both sides share.
//!
//! It owns the wasmtime engine, the compiled-component cache, loading a
//! folder of plugins (each file failing alone), the contract version check
//! and everything a plugin can reach while it runs (HTTP through an
//! allowlist, a read-only directory, the `log` and `emit-ids` imports), and
//! charges every host allocation a plugin can cause to its run's [`Limits`]
//! (memory, time, report, HTTP bodies, headers and connections, resource
//! handles, ids, log bytes). A failed, hostile or broken plugin ends its own
//! run with a [`RunError`]; the host and other runs go on.
//!
//! It must not know about schedules, storage or health: it takes a config and a
//! sandbox, and hands back a report, ids (through an [`IdSink`]) or an error.

mod bindings;
mod cache;
pub mod clock;
pub mod contract;
mod engine;
mod folder;
mod http;
mod imports;
mod logs;
mod redact;
mod run;
pub mod sandbox;

pub use bindings::types::{
    ActionOutcome, AssetDescriptor, AssetError, Capabilities, ConnectorError, Counts, DeleteScope,
    Descriptor, ErrorClass, ErrorTotal, LastReceived, LogLevel, MetadataEntry, NamedCount,
    NativeStatus, Observation, Report, StatusLevel, Timestamp,
};
pub use cache::CacheOutcome;
pub use engine::{Allocation, DEFAULT_MAX_CONNECTIONS, HostConfig, LoadError, Plugin, PluginHost};
pub use folder::{FailedPlugin, PluginSet, load_folder, missing_because};
pub use http::DenyReason;
pub use logs::{RunLabels, escape_controls};
pub use redact::{MASK, Redactor};
pub use run::{CollectRequest, IdSink, Invocation, RunError, VecIdSink, Violation};
pub use sandbox::{Grants, HostGrant, Limits};

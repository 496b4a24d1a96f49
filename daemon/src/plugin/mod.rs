//! The plugin host: loads connector components and runs them in a sandbox.
//!
//! It owns the wasmtime engine, the compiled-component cache, loading a
//! folder of plugins (each file failing alone), the contract version check
//! and everything a plugin can reach while it runs (HTTP through an
//! allowlist, a read-only directory, the `log` and `emit-ids` imports, limits on
//! memory, time, report size, HTTP and ids). A failed, hostile or broken plugin
//! ends its own run with a [`RunError`]; the host and other runs go on.
//!
//! It must not know about schedules, storage or health: it takes a config and a
//! sandbox, and hands back a report, ids (through an [`IdSink`]) or an error.

mod bindings;
mod cache;
pub mod contract;
mod engine;
mod folder;
mod http;
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
pub use engine::{Allocation, HostConfig, LoadError, Plugin, PluginHost};
pub use folder::{FailedPlugin, PluginSet, load_folder, missing_because};
pub use http::DenyReason;
pub use logs::RunLabels;
pub use redact::{MASK, Redactor};
pub use run::{CollectRequest, IdSink, Invocation, RunError, VecIdSink, Violation};
pub use sandbox::{Grants, HostGrant, Limits};

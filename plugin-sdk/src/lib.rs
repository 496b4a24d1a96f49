//! # plugin-sdk: write Tributary connectors in Rust
//!
//! A Tributary connector is a WebAssembly component that implements the WIT
//! contract in `plugin-sdk/wit/connector.wit` (package
//! `tributary:connector@1.0.0`). The daemon runs it in a sandbox: no network
//! except the hosts a check grants, no files except a granted read-only
//! directory, an empty environment, and limits on memory, time and output.
//!
//! This crate hides the component plumbing (wit-bindgen, the canonical ABI,
//! the async runtime) behind plain Rust:
//!
//! - [`Connector`]: the trait you implement. Config arrives as JSON and is
//!   parsed into your own `serde` type; a bad config becomes a `config`-class
//!   error naming the offending field.
//! - [`export_connector!`]: one line that turns your type into the component's
//!   exports.
//! - [`Report`], [`Observation`], [`AssetError`], [`NativeStatus`],
//!   [`Descriptor`]...: typed builders for what a run returns.
//! - [`Timestamp`]: UTC instants, to and from RFC 3339 and Unix seconds.
//! - [`http`]: a JSON-friendly HTTP client over `wasi:http` that classifies
//!   failures the way the daemon expects (401 is `auth`, 503 is `transient`,
//!   a host the check did not grant is `config`...).
//! - [`log`]: structured log lines that reach the daemon's log.
//! - [`ids`]: stream large sets of record ids to the host in batches.
//! - [`ConnectorError`]: the classified error every call returns.
//!
//! Only `transient` errors are retried by the daemon, so the class matters:
//! see [`ErrorClass`].
//!
//! ## Writing a plugin
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2` (the `plugins/`
//! workspace sets the target and a size-optimised release profile; run
//! `scripts/build-plugins.sh`).
//!
//! ```ignore
//! use plugin_sdk::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     base_url: String,
//!     token: String,
//! }
//!
//! struct Hello;
//!
//! impl Connector for Hello {
//!     type Config = Config;
//!
//!     fn describe() -> Descriptor {
//!         Descriptor::new("hello", env!("CARGO_PKG_VERSION"), "Says hello")
//!             .config_schema(serde_json::json!({
//!                 "type": "object",
//!                 "required": ["base_url", "token"],
//!                 "properties": {
//!                     "base_url": { "type": "string" },
//!                     "token": { "type": "string", "x-secret": true }
//!                 }
//!             }))
//!     }
//!
//!     async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
//!         Client::new().base_url(&cfg.base_url).bearer_auth(&cfg.token)
//!             .get("/health").send().await?;
//!         Ok(())
//!     }
//!
//!     async fn discover(_cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
//!         Ok(vec![AssetDescriptor::new("greetings", "table")])
//!     }
//!
//!     async fn collect(cfg: Config, _ctx: RunContext) -> Result<Report, ConnectorError> {
//!         #[derive(serde::Deserialize)]
//!         struct Stats { count: u64, updated_at: Timestamp }
//!         let stats: Stats = Client::new().base_url(&cfg.base_url).bearer_auth(&cfg.token)
//!             .get("/stats").send().await?.json()?;
//!         Ok(Report::builder()
//!             .observation(
//!                 Observation::new("greetings", "table")
//!                     .received(stats.count)
//!                     .freshness(stats.updated_at),
//!             )
//!             .build())
//!     }
//! }
//!
//! plugin_sdk::export_connector!(Hello);
//! ```
//!
//! `plugins/example` is a complete, commented connector.
//!
//! ## Why everything is `cfg(target_arch = "wasm32")`
//!
//! The SDK only makes sense inside a component: its functions call host
//! imports that do not exist natively. The crate is still a member of the
//! root workspace (so `cargo build` / `cargo clippy` at the root work), where
//! it compiles to nothing but the optional host-side test `harness` module (feature
//! `harness`), which runs a built plugin in the daemon's real plugin host.
//! Build the docs for the guest with
//! `cargo doc -p plugin-sdk --target wasm32-wasip2`.

#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(unused, rustdoc::broken_intra_doc_links)
)]

/// Host-side test harness: run a built plugin component in the daemon's plugin
/// host from a native test.
#[cfg(all(not(target_arch = "wasm32"), feature = "harness"))]
pub mod harness;

// The generated bindings and the export macro refer to this crate by its
// name, also from inside it.
#[cfg(target_arch = "wasm32")]
extern crate self as plugin_sdk;

/// The raw bindings generated from the WIT contract. Not part of the API:
/// everything useful is re-exported under friendlier names at the crate root.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(clippy::all, missing_docs, unsafe_op_in_unsafe_fn)]
pub mod __bindings {
    // The `connector` world imports only `tributary:connector/host` (and the
    // types it uses); it does not mention WASI. The WASI imports a plugin
    // uses (wasi:http, clocks, random, cli) come from `wstd`'s `wasip2` crate,
    // the single set of WASI bindings in a plugin. Should the world ever
    // import a WASI interface, map it here with
    // `with: { "wasi:http/types@0.2.12": wstd::__internal::wasip2::http::types, ... }`
    // rather than `generate_all`, or the plugin would carry two copies.
    wit_bindgen::generate!({
        path: "wit",
        world: "connector",
        // The export macro is used from plugin crates, which do not depend on
        // wit-bindgen: point every generated path at this crate.
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "plugin_sdk::__bindings",
        runtime_path: "plugin_sdk::__private::wit_bindgen::rt",
        additional_derives: [PartialEq, Eq],
        additional_type_attributes: {
            "tributary:connector/types@1.0.0/timestamp": [#[derive(PartialOrd, Ord, Hash)]],
        },
    });
}

#[cfg(target_arch = "wasm32")]
mod connector;
#[cfg(target_arch = "wasm32")]
mod error;
#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod ids;
#[cfg(target_arch = "wasm32")]
mod json;
#[cfg(target_arch = "wasm32")]
pub mod log;
#[cfg(target_arch = "wasm32")]
mod report;
#[cfg(target_arch = "wasm32")]
mod time;

#[cfg(target_arch = "wasm32")]
pub use crate::__bindings::tributary::connector::types::{
    ActionOutcome, AssetDescriptor, AssetError, Capabilities, ConnectorError, Counts, DeleteScope,
    Descriptor, ErrorClass, ErrorTotal, LastReceived, LogLevel, MetadataEntry, NamedCount,
    NativeStatus, Observation, Report, RunContext, StatusLevel, Timestamp,
};
#[cfg(target_arch = "wasm32")]
pub use crate::connector::{Connector, parse_config};
#[cfg(target_arch = "wasm32")]
pub use crate::report::{MAX_ERROR_SAMPLE, ReportBuilder};

/// Re-exported so plugins use the same versions as the SDK.
#[cfg(target_arch = "wasm32")]
pub use {chrono, serde, serde_json};

/// Run a future to completion on the plugin's single thread (wstd's reactor).
///
/// The SDK already does this around every [`Connector`] method; you only
/// need it for async code outside of them.
#[cfg(target_arch = "wasm32")]
pub use wstd::runtime::block_on;

/// Wait without blocking the plugin's reactor: between polls of a slow
/// statement, or for a `Retry-After` that fits in the run. Takes a
/// `std::time::Duration` through `.into()`.
#[cfg(target_arch = "wasm32")]
pub use wstd::task::sleep;

/// The names most plugins need: `use plugin_sdk::prelude::*;`.
#[cfg(target_arch = "wasm32")]
pub mod prelude {
    pub use crate::http::Client;
    pub use crate::ids::IdStream;
    pub use crate::{
        ActionOutcome, AssetDescriptor, AssetError, Capabilities, Connector, ConnectorError,
        DeleteScope, Descriptor, ErrorClass, NativeStatus, Observation, Report, RunContext,
        StatusLevel, Timestamp,
    };
}

/// The import a plugin crate's build fails on when it lacks
/// [`export_connector!`] (see `export_check`): build tools look for it in
/// the linker's output to tell the author what to add.
pub const MISSING_EXPORT_SYMBOL: &str =
    "plugin_sdk_export_connector_missing_add_plugin_sdk_export_connector_to_the_plugin_crate";

/// The link-time check that the plugin crate called [`export_connector!`].
///
/// Without the macro a crate still compiles, into a component that exports
/// nothing, which the daemon would refuse only when it loads it. The SDK
/// exports a function calling one that only the macro defines, so instead
/// the build fails: the linker leaves the call as an import, which turning
/// the module into a component refuses with
/// ``failed to resolve import `env::plugin_sdk_export_connector_missing_add_plugin_sdk_export_connector_to_the_plugin_crate` ``.
#[cfg(target_arch = "wasm32")]
mod export_check {
    unsafe extern "C" {
        #[link_name = "plugin_sdk_export_connector_missing_add_plugin_sdk_export_connector_to_the_plugin_crate"]
        fn exported();
    }

    /// Exported from every plugin (a `cdylib` exports its dependencies'
    /// unmangled functions), so the linker always sees the call.
    #[unsafe(no_mangle)]
    pub extern "C" fn plugin_sdk_export_check() {
        // SAFETY: never called; the macro's definition takes no arguments and
        // does nothing.
        unsafe { exported() }
    }
}

/// Implementation details used by [`export_connector!`]. Not part of the API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    pub use crate::__bindings::exports::tributary::connector::plugin::Guest;
    pub use crate::connector::glue;
    pub use wit_bindgen;
}

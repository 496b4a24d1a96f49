//! The [`Connector`] trait and the glue between it and the component exports.
//!
//! The WIT contract hands every call the check's config as a JSON string and
//! expects synchronous functions. The trait instead gives the author a typed
//! config and `async` methods; the glue parses the config, runs the future on
//! wstd's single-threaded reactor (`block_on`) and returns its result.

use serde::de::DeserializeOwned;

use crate::{
    ActionOutcome, AssetDescriptor, ConnectorError, DeleteScope, Descriptor, Report, RunContext,
};

/// What a connector does. Implement it on a unit struct and export it with
/// [`export_connector!`](crate::export_connector).
///
/// Every method but [`describe`](Connector::describe) receives the check's
/// config already parsed into [`Connector::Config`] (secrets resolved by the
/// host). The methods are `async`: await HTTP calls freely, they run on a
/// single-threaded reactor, so nothing needs to be `Send`.
///
/// The daemon retries a run only when it fails with a
/// [`transient`](crate::ErrorClass::Transient) error; pick the class of your
/// errors with care (the SDK's HTTP client already does for HTTP failures).
///
/// ```ignore
/// use plugin_sdk::prelude::*;
///
/// struct Noop;
///
/// impl Connector for Noop {
///     type Config = serde_json::Value;
///
///     fn describe() -> Descriptor {
///         Descriptor::new("noop", "0.1.0", "Does nothing")
///     }
///     async fn test_connection(_: Self::Config) -> Result<(), ConnectorError> {
///         Ok(())
///     }
///     async fn discover(_: Self::Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
///         Ok(vec![])
///     }
///     async fn collect(_: Self::Config, _: RunContext) -> Result<Report, ConnectorError> {
///         Ok(Report::builder().build())
///     }
/// }
///
/// plugin_sdk::export_connector!(Noop);
/// ```
// The futures never leave the plugin's single thread, so the `Send` bound the
// lint asks about is of no use here.
#[allow(async_fn_in_trait)]
pub trait Connector {
    /// The plugin's config, deserialized from the check's JSON config. Add
    /// `#[serde(deny_unknown_fields)]` to catch typos.
    type Config: DeserializeOwned;

    /// Name, version, description, config JSON Schema, capabilities and
    /// suggested hosts. Called without a config, often (keep it cheap).
    fn describe() -> Descriptor;

    /// The "check my credentials" button: reach the system and authenticate.
    async fn test_connection(config: Self::Config) -> Result<(), ConnectorError>;

    /// The assets this config can watch.
    async fn discover(config: Self::Config) -> Result<Vec<AssetDescriptor>, ConnectorError>;

    /// One run: observe the assets and report.
    async fn collect(config: Self::Config, context: RunContext) -> Result<Report, ConnectorError>;

    /// Ask the system to send these records again (all of them when `ids` is
    /// empty). Declare [`Capabilities::RESYNC`](crate::Capabilities::RESYNC) in
    /// [`describe`](Connector::describe) when you implement it; the default
    /// says it is not supported.
    async fn resync(
        config: Self::Config,
        asset: String,
        ids: Vec<String>,
    ) -> Result<ActionOutcome, ConnectorError> {
        let _ = (config, asset, ids);
        Err(ConnectorError::config(
            "this connector does not support resync",
        ))
    }

    /// Delete data in the monitored system. Declare
    /// [`Capabilities::DELETE`](crate::Capabilities::DELETE) when you
    /// implement it; the default says it is not supported.
    async fn delete(
        config: Self::Config,
        asset: String,
        scope: DeleteScope,
    ) -> Result<ActionOutcome, ConnectorError> {
        let _ = (config, asset, scope);
        Err(ConnectorError::config(
            "this connector does not support delete",
        ))
    }
}

/// Parse a check's JSON config into `T`, as the SDK does before every
/// [`Connector`] call.
///
/// A failure is a [`config`](crate::ErrorClass::Config) error naming the
/// field (as a path such as `tables[2].name`) and serde's reason, e.g.
/// `invalid config at "collect_ids": invalid type: string "yes", expected a boolean at line 1 column 20`.
pub fn parse_config<T: DeserializeOwned>(json: &str) -> Result<T, ConnectorError> {
    crate::json::decode(json.as_bytes()).map_err(|err| {
        ConnectorError::config(format_args!("invalid config{}: {}", err.at(), err.reason))
    })
}

/// The functions [`export_connector!`](crate::export_connector) wires to the
/// component exports. Not part of the API.
#[doc(hidden)]
pub mod glue {
    use super::*;
    use wstd::runtime::block_on;

    pub fn describe<C: Connector>() -> Descriptor {
        C::describe()
    }

    pub fn test_connection<C: Connector>(config: String) -> Result<(), ConnectorError> {
        let config = parse_config::<C::Config>(&config)?;
        block_on(C::test_connection(config))
    }

    pub fn discover<C: Connector>(config: String) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        let config = parse_config::<C::Config>(&config)?;
        block_on(C::discover(config))
    }

    pub fn collect<C: Connector>(
        config: String,
        context: RunContext,
    ) -> Result<Report, ConnectorError> {
        let config = parse_config::<C::Config>(&config)?;
        block_on(C::collect(config, context))
    }

    pub fn resync<C: Connector>(
        config: String,
        asset: String,
        ids: Vec<String>,
    ) -> Result<ActionOutcome, ConnectorError> {
        let config = parse_config::<C::Config>(&config)?;
        block_on(C::resync(config, asset, ids))
    }

    pub fn delete<C: Connector>(
        config: String,
        asset: String,
        scope: DeleteScope,
    ) -> Result<ActionOutcome, ConnectorError> {
        let config = parse_config::<C::Config>(&config)?;
        block_on(C::delete(config, asset, scope))
    }
}

/// Export a [`Connector`] implementation as the component's
/// `tributary:connector/plugin` interface. Use it once, at the root of your
/// plugin crate (a plugin crate without it fails to link, on an import named
/// `plugin_sdk_export_connector_missing_add_plugin_sdk_export_connector_to_the_plugin_crate`):
///
/// ```ignore
/// struct MyConnector;
/// impl plugin_sdk::Connector for MyConnector { /* ... */ }
/// plugin_sdk::export_connector!(MyConnector);
/// ```
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        const _: () = {
            struct __TributaryExports;

            impl $crate::__private::Guest for __TributaryExports {
                fn describe() -> $crate::Descriptor {
                    $crate::__private::glue::describe::<$connector>()
                }
                fn test_connection(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::ConnectorError> {
                    $crate::__private::glue::test_connection::<$connector>(config)
                }
                fn discover(
                    config: ::std::string::String,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::AssetDescriptor>,
                    $crate::ConnectorError,
                > {
                    $crate::__private::glue::discover::<$connector>(config)
                }
                fn collect(
                    config: ::std::string::String,
                    context: $crate::RunContext,
                ) -> ::core::result::Result<$crate::Report, $crate::ConnectorError> {
                    $crate::__private::glue::collect::<$connector>(config, context)
                }
                fn resync(
                    config: ::std::string::String,
                    asset: ::std::string::String,
                    ids: ::std::vec::Vec<::std::string::String>,
                ) -> ::core::result::Result<$crate::ActionOutcome, $crate::ConnectorError> {
                    $crate::__private::glue::resync::<$connector>(config, asset, ids)
                }
                fn delete(
                    config: ::std::string::String,
                    asset: ::std::string::String,
                    scope: $crate::DeleteScope,
                ) -> ::core::result::Result<$crate::ActionOutcome, $crate::ConnectorError> {
                    $crate::__private::glue::delete::<$connector>(config, asset, scope)
                }
            }

            $crate::__bindings::__export_connector_world!(
                __TributaryExports with_types_in $crate::__bindings
            );

            // What the SDK's link-time check calls (see `export_check`).
            #[unsafe(export_name = "plugin_sdk_export_connector_missing_add_plugin_sdk_export_connector_to_the_plugin_crate")]
            extern "C" fn __tributary_connector_exported() {}
        };
    };
}

//! The contract version: which `tributary:connector` a component was built for,
//! and whether this host can run it.
//!
//! The version is read from the names the component exports
//! (`tributary:connector/plugin@X.Y.Z`), so it can be checked before
//! instantiation, and a component built for another major version gets a message
//! naming both versions instead of a linker error about missing functions.

use semver::Version;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract version this host implements (the version in
/// `plugin-sdk/wit/connector.wit`).
pub const HOST_CONTRACT: &str = "1.0.0";

const PLUGIN_INTERFACE: &str = "tributary:connector/plugin";

/// Why a component's contract is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error(
        "the component does not export `{PLUGIN_INTERFACE}`; it is not a Tributary connector (exports: {exports}); \
         a Rust plugin exports it with `plugin_sdk::export_connector!(YourConnector);` in its lib.rs"
    )]
    NotAConnector { exports: String },
    #[error("the component exports `{PLUGIN_INTERFACE}@{version}`, which is not a semver version")]
    BadVersion { version: String },
    #[error(
        "the plugin was built for connector contract {plugin}, but this daemon speaks contract {host}; \
         major versions must match: rebuild the plugin against plugin-sdk {host_major}.x or run a daemon that supports {plugin_major}.x"
    )]
    UnsupportedMajor {
        plugin: Version,
        host: Version,
        plugin_major: u64,
        host_major: u64,
    },
}

pub fn host_contract() -> Version {
    Version::parse(HOST_CONTRACT).expect("HOST_CONTRACT is a valid version")
}

/// Reads the contract version a component exports and checks it against the host's.
pub fn check(engine: &Engine, component: &Component) -> Result<Version, ContractError> {
    let ty = component.component_type();
    let names: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let version = exported_version(&names).ok_or_else(|| ContractError::NotAConnector {
        exports: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })?;
    compatible(version)
}

fn exported_version<'a>(names: &[&'a str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        let (interface, version) = name.split_once('@')?;
        (interface == PLUGIN_INTERFACE).then_some(version)
    })
}

fn compatible(version: &str) -> Result<Version, ContractError> {
    let plugin = Version::parse(version).map_err(|_| ContractError::BadVersion {
        version: version.to_owned(),
    })?;
    let host = host_contract();
    if plugin.major != host.major {
        return Err(ContractError::UnsupportedMajor {
            plugin_major: plugin.major,
            host_major: host.major,
            plugin,
            host,
        });
    }
    Ok(plugin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_plugin_interface_version() {
        let names = ["wasi:cli/run@0.2.0", "tributary:connector/plugin@1.2.0"];
        assert_eq!(exported_version(&names), Some("1.2.0"));
        assert_eq!(exported_version(&["tributary:connector/other@1.0.0"]), None);
    }

    #[test]
    fn same_major_is_accepted_and_other_majors_refused_naming_both() {
        assert_eq!(compatible("1.4.0").unwrap(), Version::new(1, 4, 0));
        let err = compatible("2.0.0").unwrap_err().to_string();
        assert!(err.contains("contract 2.0.0"), "{err}");
        assert!(err.contains(&format!("contract {HOST_CONTRACT}")), "{err}");
        assert!(matches!(
            compatible("x"),
            Err(ContractError::BadVersion { .. })
        ));
    }

    #[test]
    fn host_contract_matches_the_wit_package() {
        let wit = include_str!("../../plugin-sdk/wit/connector.wit");
        assert!(wit.contains(&format!("package tributary:connector@{HOST_CONTRACT};")));
    }
}

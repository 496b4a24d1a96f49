//! # describe-modes: a TEST-ONLY connector
//!
//! Never deploy it. Its `describe` misbehaves, to prove that one bad plugin
//! file does not keep the daemon from starting or from loading the others.
//! What it does is read from a marker in its own data, [`MARKER`] followed by
//! a mode, so a test makes each variant by replacing the mode's bytes in a
//! copy of the built `.wasm` (same length, so the component stays valid):
//!
//! | mode | `describe` |
//! | --- | --- |
//! | `answer` | answers, as `describe-modes` with an empty object schema |
//! | `loop` | loops forever |
//! | `bad-schema` | answers with a config schema that is not a JSON Schema |
//!
//! The build itself answers, so the file does no harm in a folder of plugins.
//! `collect` reports one asset; the other calls succeed.

// Plugins only exist as WebAssembly components (see `probe`).
#![cfg(target_arch = "wasm32")]

use std::hint::black_box;

use plugin_sdk::prelude::*;
use serde_json::json;

/// What precedes the mode in the file.
pub const MARKER: &str = "tributary-test-describe-mode:";

/// The marker and the mode, padded with spaces to [`MODE_LEN`] bytes.
static MODE: [u8; 41] = *b"tributary-test-describe-mode:answer      ";

/// Bytes after the marker a test may rewrite.
pub const MODE_LEN: usize = 12;

fn mode() -> String {
    // Read through an opaque reference, so the compiler keeps the bytes in
    // the data segment and cannot fold the comparison away.
    let bytes: &[u8] = black_box(&MODE[..]);
    String::from_utf8_lossy(&bytes[MARKER.len()..])
        .trim_end()
        .to_owned()
}

struct DescribeModes;

impl Connector for DescribeModes {
    type Config = serde_json::Value;

    fn describe() -> Descriptor {
        let descriptor = Descriptor::new(
            "describe-modes",
            env!("CARGO_PKG_VERSION"),
            "TEST ONLY: describe misbehaves as its file says",
        );
        match mode().as_str() {
            "loop" => loop {
                black_box(0);
            },
            "bad-schema" => descriptor.config_schema(json!({"type": 12, "properties": []})),
            _ => descriptor,
        }
    }

    async fn test_connection(_: Self::Config) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn discover(_: Self::Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Ok(vec![AssetDescriptor::new("described", "test")])
    }

    async fn collect(_: Self::Config, _: RunContext) -> Result<Report, ConnectorError> {
        Ok(Report::from(
            Observation::new("described", "test").received(1),
        ))
    }
}

plugin_sdk::export_connector!(DescribeModes);

//! TEST ONLY: a component built against a hypothetical major version 2 of the
//! connector contract (`tributary:connector@2.0.0`). The daemon must refuse to
//! load it with a clear message; it deliberately does not use `plugin-sdk`.

// Plugins only exist as WebAssembly components. `plugins/.cargo/config.toml`
// selects wasm32-wasip2, but cargo reads that file only when run from inside
// `plugins/`; run from elsewhere (`--manifest-path plugins/Cargo.toml`), it
// builds for the host, where this crate compiles to nothing.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: "
        package tributary:connector@2.0.0;

        interface plugin {
            describe: func() -> string;
        }

        world connector {
            export plugin;
        }
    ",
    world: "connector",
});

struct ContractV2;

impl exports::tributary::connector::plugin::Guest for ContractV2 {
    fn describe() -> String {
        "contract-v2: built against tributary:connector@2.0.0".to_string()
    }
}

export!(ContractV2);

//! What a component file says of itself without running it: who made it
//! (the `producers` custom sections of the component and its core modules)
//! and whether it exports the Tributary contract. `inspect` shows the first,
//! `build` checks the second. Reading only: nothing here compiles or runs a
//! plugin.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wasmparser::{KnownCustom, Parser, Payload};

/// The interface every connector exports, at any version (the host checks
/// the version when it loads the component).
pub const CONTRACT_EXPORT: &str = "tributary:connector/plugin@";

/// The facts of one component file.
#[derive(Debug, Default)]
pub struct Facts {
    /// `language`, `processed-by` and `sdk` entries (`name version`), from
    /// every nested module, without repeats.
    pub languages: BTreeSet<String>,
    pub processed_by: BTreeSet<String>,
    pub sdks: BTreeSet<String>,
    /// Names the component itself exports.
    pub exports: Vec<String>,
    /// Modules its core modules import from: componentize-py links CPython
    /// and its runtime as `lib*.so` modules without naming itself in a
    /// producers section, so this is how a Python plugin is told.
    pub core_imports: BTreeSet<String>,
}

impl Facts {
    /// Reads `bytes`; fails when they are not WebAssembly.
    pub fn read(bytes: &[u8]) -> anyhow::Result<Self> {
        let mut facts = Facts::default();
        // Nesting depth: 1 is the outer component, deeper ones its modules.
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                Payload::Version { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                Payload::ComponentExportSection(exports) if depth == 1 => {
                    for export in exports {
                        facts.exports.push(export?.name.name.to_owned());
                    }
                }
                Payload::ImportSection(imports) => {
                    for import in imports.into_imports() {
                        facts.core_imports.insert(import?.module.to_owned());
                    }
                }
                Payload::CustomSection(section) => {
                    if let KnownCustom::Producers(fields) = section.as_known() {
                        for field in fields {
                            let field = field?;
                            let set = match field.name {
                                "language" => &mut facts.languages,
                                "processed-by" => &mut facts.processed_by,
                                "sdk" => &mut facts.sdks,
                                _ => continue,
                            };
                            for value in field.values {
                                let value = value?;
                                set.insert(
                                    format!("{} {}", value.name, value.version)
                                        .trim()
                                        .to_owned(),
                                );
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(facts)
    }

    /// Whether the component exports the connector contract.
    pub fn is_connector(&self) -> bool {
        self.exports.iter().any(|e| e.starts_with(CONTRACT_EXPORT))
    }

    /// The plugin's language and the tool that made it a component, in
    /// words: `JavaScript (ComponentizeJS 0.23.0)`.
    pub fn toolchain(&self) -> String {
        let tools = |prefixes: &[&str]| -> Vec<&str> {
            self.processed_by
                .iter()
                .chain(&self.sdks)
                .filter(|p| {
                    let p = p.to_ascii_lowercase();
                    prefixes.iter().any(|prefix| p.starts_with(prefix))
                })
                .map(String::as_str)
                .collect()
        };
        let python: Vec<&str> = self
            .core_imports
            .iter()
            .filter(|m| m.starts_with("libpython"))
            .map(String::as_str)
            .collect();
        if self
            .core_imports
            .iter()
            .any(|m| m.starts_with("libcomponentize_py"))
        {
            return format!("Python (componentize-py, {})", python.join(", "));
        }
        let js = tools(&["componentizejs", "componentize-js"]);
        if !js.is_empty() {
            return format!("JavaScript ({})", js.join(", "));
        }
        let rust = tools(&["rustc", "wit-bindgen-rust"]);
        if self.languages.iter().any(|l| l.starts_with("Rust")) || !rust.is_empty() {
            return format!("Rust ({})", rust.join(", "));
        }
        match (self.languages.is_empty(), self.processed_by.is_empty()) {
            (false, _) => self
                .languages
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            (true, false) => format!(
                "unknown language (processed by {})",
                self.processed_by
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (true, true) => "unknown (no producers section)".into(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "toolchain": self.toolchain(),
            "language": self.languages,
            "processed_by": self.processed_by,
            "sdk": self.sdks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_component() {
        assert!(Facts::read(b"not wasm at all").is_err());
    }

    #[test]
    fn the_toolchain_is_named_from_the_producers() {
        let mut facts = Facts::default();
        assert_eq!(facts.toolchain(), "unknown (no producers section)");
        facts.processed_by.insert("wit-component 0.244.0".into());
        assert_eq!(
            facts.toolchain(),
            "unknown language (processed by wit-component 0.244.0)"
        );
        facts.languages.insert("Rust".into());
        facts.processed_by.insert("rustc 1.95.0".into());
        facts.processed_by.insert("wit-bindgen-rust 0.63.0".into());
        assert_eq!(
            facts.toolchain(),
            "Rust (rustc 1.95.0, wit-bindgen-rust 0.63.0)"
        );
        facts.processed_by.insert("ComponentizeJS 0.23.0".into());
        assert_eq!(facts.toolchain(), "JavaScript (ComponentizeJS 0.23.0)");
        facts
            .core_imports
            .insert("libcomponentize_py_runtime.so".into());
        facts.core_imports.insert("libpython3.12.so".into());
        assert_eq!(
            facts.toolchain(),
            "Python (componentize-py, libpython3.12.so)"
        );
    }
}

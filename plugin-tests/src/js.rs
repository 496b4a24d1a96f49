//! Connectors written in JavaScript (`plugin-sdk-js/`), built into
//! components with the SDK's `build.sh` (ComponentizeJS) for the tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The component built from the JavaScript entry module `entry` (a path
/// relative to the repository, e.g. `plugin-sdk-js/examples/example/plugin.js`),
/// built once per test process.
///
/// The component goes to the system's temp folder under the entry's folder
/// name; it is written under a name of this process and renamed into place,
/// so test processes running at the same time never read a half-written file.
///
/// # Panics
/// When the build fails, e.g. because `npm ci --prefix plugin-sdk-js` was
/// not run.
pub fn js_plugin(entry: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .expect("build lock");
    if let Some(path) = built.get(entry) {
        return path.clone();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = repo.join(entry);
    let name = source
        .parent()
        .and_then(Path::file_name)
        .unwrap_or_else(|| panic!("{entry} has no folder to name the plugin after"))
        .to_string_lossy()
        .into_owned();
    let dir = std::env::temp_dir().join("tributary-js-plugins");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
    let output = Command::new(repo.join("plugin-sdk-js/build.sh"))
        .arg(&source)
        .arg("-o")
        .arg(&partial)
        .output()
        .unwrap_or_else(|e| panic!("cannot run plugin-sdk-js/build.sh: {e}"));
    assert!(
        output.status.success(),
        "building the JavaScript plugin {entry} failed (run `npm ci --prefix plugin-sdk-js` first):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.join(format!("{name}.wasm"));
    std::fs::rename(&partial, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    built.insert(entry.to_owned(), path.clone());
    path
}

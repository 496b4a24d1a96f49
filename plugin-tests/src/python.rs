//! Python connectors built for tests: [`python_plugin`] runs
//! `plugin-sdk-python/build.sh` (componentize-py, pinned) once per test
//! process and per app folder, skips the ~20 s build when nothing the
//! component is made of changed since the last one, and compiles it once
//! into the harness's cache before any test loads it.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The component built from the Python app in `dir` (relative to the
/// repository root, e.g. `plugins-python/example`).
///
/// # Panics
/// When the build fails: the test cannot go on without its plugin. The
/// message says how to install componentize-py when it is missing.
pub fn python_plugin(dir: impl AsRef<Path>) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<PathBuf, PathBuf>>> = OnceLock::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let app = root.join(dir.as_ref());
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .expect("build lock");
    if let Some(out) = built.get(&app) {
        return out.clone();
    }
    let sdk = root.join("plugin-sdk-python");
    let name = app
        .file_name()
        .expect("the app folder has a name")
        .to_string_lossy()
        .into_owned();
    let out_dir = root.join("target/python-plugins");
    let out = out_dir.join(format!("{name}.wasm"));
    let stamp = out_dir.join(format!("{name}.inputs"));
    let inputs = inputs_hash(&[
        &app,
        &sdk.join("tributary"),
        &sdk.join("wit"),
        &sdk.join("build.sh"),
        &sdk.join("requirements.txt"),
        &root.join("plugin-sdk/wit/connector.wit"),
    ]);
    let fresh = out.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&inputs);
    if !fresh {
        let output = Command::new(sdk.join("build.sh"))
            .arg(&app)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap_or_else(|e| panic!("cannot run plugin-sdk-python/build.sh: {e}"));
        assert!(
            output.status.success(),
            "building the Python plugin {} failed:\n{}{}",
            app.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp, &inputs).expect("write the build stamp");
    }
    precompile(&out);
    built.insert(app, out.clone());
    out
}

/// Loads the component once into a harness, under the build lock, so it is
/// compiled (~20 s for CPython) into the harness's shared cache once rather
/// than by every test of the process at the same time.
fn precompile(component: &Path) {
    let component = component.to_path_buf();
    // Our caller runs inside a test's runtime: load from a thread of our own.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(plugin_sdk::harness::Harness::builder(component.clone()).build())
            .unwrap_or_else(|e| panic!("{} does not load: {e}", component.display()));
    })
    .join()
    .expect("the precompile thread");
}

/// A hash of the names and contents of every file under `paths` (Python
/// caches excluded), so an edit anywhere rebuilds.
fn inputs_hash(paths: &[&Path]) -> String {
    fn walk(path: &Path, hasher: &mut DefaultHasher) {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .map(|e| e.expect("directory entry").path())
                .filter(|p| p.file_name().is_none_or(|n| n != "__pycache__"))
                .collect();
            entries.sort();
            for entry in entries {
                walk(&entry, hasher);
            }
        } else {
            path.hash(hasher);
            std::fs::read(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .hash(hasher);
        }
    }
    let mut hasher = DefaultHasher::new();
    for path in paths {
        walk(path, &mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

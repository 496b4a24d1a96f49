//! `tributary plugin new NAME --lang rust|python|js`: a plugin project that
//! builds and passes its own tests at once.
//!
//! The project gets a small real connector (describe, test-connection,
//! discover, collect against one HTTP endpoint, config validated by its
//! schema), recorded fixtures with their expected outcomes in `tests/`, a
//! README, and in `sdk/` the SDK and the WIT contract of its language. The
//! SDK files are this repository's own, compiled into the binary with
//! `include_str!`, so a project always builds against the contract of the
//! `tributary` that made it and nothing can drift or be fetched. This module
//! only writes files; building and testing are `build.rs` and `test.rs`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::Lang;

/// One file of a new project.
struct File {
    path: &'static str,
    text: String,
    executable: bool,
}

impl File {
    fn new(path: &'static str, text: impl Into<String>) -> Self {
        Self {
            path,
            text: text.into(),
            executable: false,
        }
    }

    fn script(path: &'static str, text: &str) -> Self {
        Self {
            executable: true,
            ..Self::new(path, text)
        }
    }
}

/// The contract, shared by the three SDKs.
const CONNECTOR_WIT: &str = include_str!("../../../../plugin-sdk/wit/connector.wit");

/// Writes a new project for `name` in `lang` into `dir` (`./NAME` when not
/// given), which must not exist or be empty. Returns the folder.
pub fn new(name: &str, lang: Lang, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        anyhow::ensure!(
            empty,
            "{} already exists and is not empty: choose another --dir",
            dir.display()
        );
    }
    for file in files(name, lang) {
        let path = dir.join(file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot make {}", parent.display()))?;
        }
        std::fs::write(&path, &file.text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
    }
    Ok(dir)
}

/// A plugin name is a folder, a crate and a connector name: lowercase ASCII
/// letters, digits and `-`, starting with a letter, at most 64 bytes. Nothing
/// else, so a name can never leave the folder it is made in (`../x`, `/etc`).
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    anyhow::ensure!(
        ok,
        "invalid plugin name {:?}: use 1 to 64 lowercase letters, digits and '-', starting with a letter (e.g. my-connector)",
        name.escape_debug().to_string()
    );
    Ok(())
}

fn files(name: &str, lang: Lang) -> Vec<File> {
    let fill = |text: &str| text.replace("{{name}}", name);
    let (source, language, prerequisites) = match lang {
        Lang::Rust => (
            "src/lib.rs",
            "Rust",
            "Building needs Rust with the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`).",
        ),
        Lang::Python => (
            "app.py",
            "Python",
            "Building needs Python 3.10 or newer and componentize-py \
             (`python3 -m pip install -r sdk/plugin-sdk-python/requirements.txt`).",
        ),
        Lang::Js => (
            "plugin.js",
            "JavaScript",
            "Building needs Node.js 20 or newer; the first `tributary plugin build` runs \
             `npm ci` in `sdk/plugin-sdk-js` (exact versions from its package-lock.json).",
        ),
    };
    let readme = fill(include_str!("templates/common/README.md"))
        .replace("{{language}}", language)
        .replace("{{source}}", source)
        .replace("{{prerequisites}}", prerequisites);
    let mut files = vec![
        File::new("README.md", readme),
        File::new(
            ".gitignore",
            "/build/\n/target/\nnode_modules/\n__pycache__/\n",
        ),
        File::new(
            "tests/collect.json",
            include_str!("templates/common/collect.json"),
        ),
        File::new(
            "tests/test-connection.json",
            include_str!("templates/common/test-connection.json"),
        ),
        File::new("sdk/plugin-sdk/wit/connector.wit", CONNECTOR_WIT),
    ];
    match lang {
        Lang::Rust => files.extend(rust(name)),
        Lang::Python => files.extend(python(&fill)),
        Lang::Js => files.extend(js(&fill)),
    }
    files
}

fn python(fill: &dyn Fn(&str) -> String) -> Vec<File> {
    macro_rules! sdk {
        ($path:literal) => {
            File::new(
                concat!("sdk/plugin-sdk-python/", $path),
                include_str!(concat!("../../../../plugin-sdk-python/", $path)),
            )
        };
    }
    vec![
        File::new("app.py", fill(include_str!("templates/python/app.py"))),
        File::script(
            "sdk/plugin-sdk-python/build.sh",
            include_str!("../../../../plugin-sdk-python/build.sh"),
        ),
        sdk!("requirements.txt"),
        sdk!("tributary/__init__.py"),
        sdk!("tributary/connector.py"),
        sdk!("tributary/errors.py"),
        sdk!("tributary/http.py"),
        sdk!("tributary/ids.py"),
        sdk!("tributary/log.py"),
        sdk!("tributary/report.py"),
        sdk!("wit/connector-http.wit"),
        sdk!("wit/README.md"),
        sdk!("wit/deps/cli.wit"),
        sdk!("wit/deps/clocks.wit"),
        sdk!("wit/deps/filesystem.wit"),
        sdk!("wit/deps/http.wit"),
        sdk!("wit/deps/io.wit"),
        sdk!("wit/deps/random.wit"),
        sdk!("wit/deps/sockets.wit"),
    ]
}

fn js(fill: &dyn Fn(&str) -> String) -> Vec<File> {
    macro_rules! sdk {
        ($path:literal) => {
            File::new(
                concat!("sdk/plugin-sdk-js/", $path),
                include_str!(concat!("../../../../plugin-sdk-js/", $path)),
            )
        };
    }
    vec![
        File::new("plugin.js", fill(include_str!("templates/js/plugin.js"))),
        File::script(
            "sdk/plugin-sdk-js/build.sh",
            include_str!("../../../../plugin-sdk-js/build.sh"),
        ),
        sdk!("bundle.mjs"),
        sdk!("sdk.js"),
        sdk!("sdk.d.ts"),
        sdk!("package.json"),
        sdk!("package-lock.json"),
    ]
}

fn rust(name: &str) -> Vec<File> {
    macro_rules! sdk {
        ($path:literal) => {
            File::new(
                concat!("sdk/plugin-sdk/", $path),
                include_str!(concat!("../../../../plugin-sdk/", $path)),
            )
        };
    }
    vec![
        File::new(
            "Cargo.toml",
            include_str!("templates/rust/Cargo.toml").replace("{{name}}", name),
        ),
        // The plugins workspace's lock: the versions the SDK is built and
        // tested with here, so a new project resolves nothing new.
        File::new("Cargo.lock", include_str!("../../../../plugins/Cargo.lock")),
        File::new(
            ".cargo/config.toml",
            include_str!("templates/rust/cargo-config.toml"),
        ),
        File::new(
            "src/lib.rs",
            include_str!("templates/rust/lib.rs").replace("{{name}}", name),
        ),
        File::new("sdk/plugin-sdk/Cargo.toml", rust_sdk_manifest()),
        sdk!("src/lib.rs"),
        sdk!("src/connector.rs"),
        sdk!("src/error.rs"),
        sdk!("src/http.rs"),
        sdk!("src/ids.rs"),
        sdk!("src/json.rs"),
        sdk!("src/log.rs"),
        sdk!("src/report.rs"),
        sdk!("src/time.rs"),
    ]
}

/// The SDK crate's manifest outside this repository's workspace: its own
/// package lines, and its guest dependencies copied from the real
/// `plugin-sdk/Cargo.toml` (the host-side test harness is not part of a
/// project: `tributary plugin test` is).
fn rust_sdk_manifest() -> String {
    const REAL: &str = include_str!("../../../../plugin-sdk/Cargo.toml");
    const GUEST: &str = "[target.'cfg(target_arch = \"wasm32\")'.dependencies]";
    let guest = REAL.find(GUEST).map_or("", |start| {
        let rest = &REAL[start..];
        let end = rest[GUEST.len()..]
            .find("\n[")
            .map_or(rest.len(), |i| i + GUEST.len() + 1);
        &rest[..end]
    });
    format!(
        "# Written by `tributary plugin new` from Tributary's plugin-sdk {version}.\n\
         [package]\nname = \"plugin-sdk\"\nversion = \"{version}\"\nedition = \"2024\"\n\
         license = \"Apache-2.0\"\npublish = false\n\n\
         [lib]\nname = \"plugin_sdk\"\npath = \"src/lib.rs\"\n\n\
         [features]\n# The host-side harness stays in Tributary's repository.\nharness = []\n\n\
         {guest}",
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for bad in [
            "../evil",
            "/etc",
            "a/b",
            "..",
            ".",
            "",
            "A",
            "1abc",
            "a b",
            "a\nb",
            "a-",
            "ä",
            &"a".repeat(65),
        ] {
            let err = check_name(bad).expect_err(bad).to_string();
            assert!(err.starts_with("invalid plugin name"), "{bad}: {err}");
        }
        for good in ["hello", "my-connector", "s3", &"a".repeat(64)] {
            check_name(good).expect(good);
        }
    }

    #[test]
    fn the_rust_sdk_manifest_keeps_the_guest_dependencies() {
        let manifest = rust_sdk_manifest();
        let parsed: toml::Table = toml::from_str(&manifest).expect("valid TOML");
        let deps = &parsed["target"]["cfg(target_arch = \"wasm32\")"]["dependencies"];
        for dep in [
            "wit-bindgen",
            "wstd",
            "serde",
            "serde_json",
            "wasip2",
            "chrono",
        ] {
            assert!(deps.get(dep).is_some(), "{dep} missing from\n{manifest}");
        }
        assert!(!manifest.contains(".workspace"), "{manifest}");
        assert!(!manifest.contains("plugin-host"), "{manifest}");
    }

    #[test]
    fn every_language_gets_its_sdk_the_contract_and_fixtures() {
        for (lang, source, sdk) in [
            (Lang::Rust, "src/lib.rs", "sdk/plugin-sdk/src/lib.rs"),
            (Lang::Python, "app.py", "sdk/plugin-sdk-python/build.sh"),
            (Lang::Js, "plugin.js", "sdk/plugin-sdk-js/build.sh"),
        ] {
            let files = files("hello", lang);
            let paths: Vec<&str> = files.iter().map(|f| f.path).collect();
            for want in [
                source,
                sdk,
                "sdk/plugin-sdk/wit/connector.wit",
                "tests/collect.json",
                "README.md",
            ] {
                assert!(paths.contains(&want), "{lang:?}: {want} missing");
            }
            let text = &files
                .iter()
                .find(|f| f.path == source)
                .expect("source")
                .text;
            assert!(
                text.contains("\"hello\"") || text.contains("'hello'"),
                "{lang:?}: {text}"
            );
            let left = files
                .iter()
                .filter(|f| !f.path.starts_with("sdk/"))
                .find(|f| f.text.contains("{{"));
            assert!(
                left.is_none(),
                "{lang:?}: a placeholder is left in {:?}",
                left.map(|f| f.path)
            );
        }
    }
}

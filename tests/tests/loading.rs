//! Loading plugins as the `tributary` binary does: a broken, slow or
//! duplicate plugin file fails alone and is reported, a check may pin its
//! plugin file's sha256, and `tributary validate` checks a file against its
//! own plugin folder, quietly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use plugin_sdk::harness::TestServer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary::health::EntityRef;
use tributary_tests::gql::Client;
use tributary_tests::kit::{
    Fake, config_text, daemon_binary, doc_ids, document_service, eventually,
};
use tributary_tests::plugin;

/// The bytes before the mode in `describe-modes`' file, and the mode's width.
const MARKER: &[u8] = b"tributary-test-describe-mode:";
const MODE_LEN: usize = 12;

/// A copy of `describe-modes` whose `describe` does `mode` (`loop`,
/// `bad-schema`), written to `to`.
fn describe_modes(mode: &str, to: &Path) {
    let mut wasm = std::fs::read(plugin("describe-modes")).unwrap();
    let at: Vec<usize> = wasm
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER)
        .map(|(i, _)| i + MARKER.len())
        .collect();
    assert_eq!(at.len(), 1, "one mode marker in describe_modes.wasm");
    let padded = format!("{mode:<MODE_LEN$}");
    wasm[at[0]..at[0] + MODE_LEN].copy_from_slice(padded.as_bytes());
    std::fs::write(to, wasm).unwrap();
}

fn sha256_of(file: &Path) -> String {
    Sha256::digest(std::fs::read(file).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A config for `dir` with its own plugin folder `dir/plugins` holding the
/// example plugin, the API on a free port, and one example check
/// `ingest-docs` on `service`; `extra` is appended.
struct Setup {
    dir: tempfile::TempDir,
    plugins: PathBuf,
    file: PathBuf,
    port: u16,
}

impl Setup {
    fn new(service: &TestServer, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let example = plugin("example");
        let plugins = dir.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::copy(&example, plugins.join("example.wasm")).unwrap();
        let text = config_text(dir.path(), &[("ingest-docs", "ingest", &service.url(), "")])
            .replace(
                &format!("plugins_dir = \"{}\"", example.parent().unwrap().display()),
                &format!("plugins_dir = \"{}\"", plugins.display()),
            )
            .replace(
                "[storage]",
                &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]"),
            );
        assert!(text.contains(&plugins.display().to_string()));
        let file = dir.path().join("tributary.toml");
        std::fs::write(&file, format!("{text}\n{extra}")).unwrap();
        Setup {
            dir,
            plugins,
            file,
            port,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// Starts `tributary serve`; its log goes to [`Setup::log`].
    fn serve(&self) -> Served {
        let child = Command::new(daemon_binary())
            .args(["serve", "--config"])
            .arg(&self.file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log()).unwrap())
            .spawn()
            .unwrap();
        Served {
            child,
            api: Client::new(format!("http://127.0.0.1:{}", self.port)),
        }
    }

    fn validate(&self) -> std::process::Output {
        Command::new(daemon_binary())
            .arg("validate")
            .arg(&self.file)
            .output()
            .unwrap()
    }
}

/// A check of connector `connector` on system `warehouse`, hourly.
fn check(id: &str, connector: &str) -> String {
    format!(
        "[[checks]]\nid = \"{id}\"\nsystem = \"warehouse\"\nconnector = \"{connector}\"\n\
         schedule = {{ every = \"1h\" }}\n"
    )
}

struct Served {
    child: Child,
    api: Client,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    async fn ready(&self) {
        eventually("the daemon to be ready", || async {
            (self.api.get("/readyz").await.status == 200).then_some(())
        })
        .await;
    }

    async fn query(&self, query: &str) -> Value {
        let answer = self.api.query(Some("admin-token"), query, json!({})).await;
        answer.data().clone()
    }

    /// The latest run of `check` once there is one: `(outcome, errorMessage)`.
    async fn latest_run(&self, check: &str) -> (String, String) {
        let query = format!(
            r#"{{ check(key: "{check}") {{ runs(first: 1) {{ nodes {{ outcome errorMessage }} }} }} }}"#
        );
        eventually(&format!("a run of {check}"), || async {
            let data = self.query(&query).await;
            let run = data["check"]["runs"]["nodes"].get(0)?.clone();
            Some((
                run["outcome"].as_str()?.to_owned(),
                run["errorMessage"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .await
    }

    async fn metric(&self, series: &str) -> f64 {
        let text = self.api.get("/metrics").await.text;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .parse()
            .unwrap()
    }

    async fn last_reload_error(&self, failed: i64) -> String {
        eventually(&format!("{failed} refused reload(s)"), || async {
            let data = self
                .query("{ daemon { config { lastReloadError reloadsFailed } } }")
                .await;
            let config = &data["daemon"]["config"];
            (config["reloadsFailed"] == failed)
                .then(|| config["lastReloadError"].as_str().map(str::to_owned))
                .flatten()
        })
        .await
    }
}

async fn service() -> (TestServer, Arc<Mutex<Fake>>) {
    let fake = Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    }));
    (document_service(fake.clone()).await, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_past_broken_and_looping_plugin_files_and_says_why() {
    let (service, _fake) = service().await;
    let s = Setup::new(
        &service,
        &format!(
            "{}\n{}",
            check("needs-loops", "loops"),
            check("needs-schema", "describe-modes")
        ),
    );
    describe_modes("loop", &s.plugins.join("loops.wasm"));
    describe_modes("loop", &s.plugins.join("loops-too.wasm"));
    describe_modes("bad-schema", &s.plugins.join("bad-schema.wasm"));
    std::fs::write(s.plugins.join("junk.wasm"), b"not a component").unwrap();

    let d = s.serve();
    d.ready().await;
    let data = d
        .query("{ daemon { failedPlugins { file name error } } connectors { name sha256 file } }")
        .await;
    // The good plugin loaded, with the hash of its file.
    let example = s.plugins.join("example.wasm");
    assert_eq!(
        data["connectors"],
        json!([{"name": "example", "sha256": sha256_of(&example), "file": example.display().to_string()}])
    );
    let failed = data["daemon"]["failedPlugins"].as_array().unwrap();
    let by_file = |name: &str| {
        failed
            .iter()
            .find(|f| f["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {failed:?}"))
    };
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        by_file("/loops.wasm")["error"]
            .as_str()
            .unwrap()
            .contains("`describe` failed: the run took longer than its deadline of 2s"),
        "{failed:?}"
    );
    let schema = by_file("/bad-schema.wasm");
    assert_eq!(schema["name"], "describe-modes");
    assert!(
        schema["error"]
            .as_str()
            .unwrap()
            .contains("describes an invalid config schema"),
        "{schema}"
    );
    assert!(
        by_file("/junk.wasm")["error"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component"),
        "{failed:?}"
    );
    assert_eq!(d.metric("tributary_plugins_loaded").await, 1.0);
    assert_eq!(d.metric("tributary_plugins_failed").await, 4.0);

    // The rest runs; a check that needs a failed plugin fails with its
    // reason, and is UNKNOWN for it.
    assert_eq!(d.latest_run("ingest-docs").await.0, "SUCCEEDED");
    let (outcome, why) = d.latest_run("needs-loops").await;
    assert_eq!(outcome, "FAILED");
    assert!(
        why.contains("connector \"loops\" is not loaded")
            && why.contains("loops.wasm")
            && why.contains("deadline"),
        "{why}"
    );
    let (_, why) = d.latest_run("needs-schema").await;
    assert!(
        why.contains("bad-schema.wasm") && why.contains("invalid config schema"),
        "{why}"
    );
    let health = eventually("needs-loops to be judged", || async {
        let data = d
            .query(r#"{ check(key: "needs-loops") { health { status reasons { message } } } }"#)
            .await;
        let health = data["check"]["health"].clone();
        health.is_object().then_some(health)
    })
    .await;
    assert_eq!(health["status"], "UNKNOWN");
    assert!(
        health["reasons"].to_string().contains("loops.wasm"),
        "{health}"
    );
    // Each file is named in the log.
    let log = std::fs::read_to_string(s.log()).unwrap();
    for file in [
        "loops.wasm",
        "loops-too.wasm",
        "bad-schema.wasm",
        "junk.wasm",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("plugin not loaded") && l.contains(file)),
            "{file} in\n{log}"
        );
    }
    let hash = sha256_of(&example);
    assert!(
        log.lines()
            .any(|l| l.contains("plugin loaded") && l.contains(&hash)),
        "the loaded file's hash is logged:\n{log}"
    );

    // `validate` still calls the checks of failed plugins errors.
    let out = s.validate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(
            "/checks/1/connector: connector \"loops\" is not loaded: its plugin failed to load"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("/checks/2/connector: connector \"describe-modes\" is not loaded"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_files_of_one_name_are_both_refused_and_no_secret_reaches_either() {
    let (service, _fake) = service().await;
    let s = Setup::new(&service, "");
    // An impostor: another file that calls itself `example`.
    let impostor = s.plugins.join("impostor.wasm");
    std::fs::copy(s.plugins.join("example.wasm"), &impostor).unwrap();

    let d = s.serve();
    d.ready().await;
    let data = d
        .query("{ daemon { failedPlugins { file name error } } connectors { name } }")
        .await;
    assert_eq!(data["connectors"], json!([]));
    let failed = data["daemon"]["failedPlugins"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for f in failed {
        assert_eq!(f["name"], "example");
        let error = f["error"].as_str().unwrap();
        assert!(
            error.contains("example.wasm") && error.contains("impostor.wasm"),
            "both files named: {error}"
        );
    }
    let (outcome, why) = d.latest_run("ingest-docs").await;
    assert_eq!(outcome, "FAILED");
    assert!(why.contains("is claimed by"), "{why}");
    assert!(
        service.requests().is_empty(),
        "no plugin ran with the check's secret"
    );

    // Removing the impostor loads the real one.
    std::fs::remove_file(&impostor).unwrap();
    eventually("the plugin to load once alone", || async {
        let data = d.query("{ connectors { name } }").await;
        (data["connectors"] == json!([{"name": "example"}])).then_some(())
    })
    .await;
    let id = {
        use base64::Engine;
        let key = tributary::store::entity_key(&EntityRef::Check("ingest-docs".into()));
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    };
    let queued = d
        .query(&format!(
            r#"mutation {{ runCheck(input: {{checkId: "{id}"}}) {{ queued }} }}"#
        ))
        .await;
    assert_eq!(queued["runCheck"]["queued"], true, "{queued}");
    eventually("a run with the real plugin", || async {
        (d.latest_run("ingest-docs").await.0 == "SUCCEEDED").then_some(())
    })
    .await;

    // An impostor dropped next to a running plugin is refused whole: the
    // running plugin goes on.
    std::fs::copy(s.plugins.join("example.wasm"), &impostor).unwrap();
    let why = d.last_reload_error(1).await;
    assert!(
        why.contains("is claimed by") && why.contains("impostor.wasm"),
        "{why}"
    );
    let data = d.query("{ connectors { name file } }").await;
    assert!(
        data["connectors"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("/example.wasm")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_sha256_is_checked_at_validate_start_and_reload() {
    let (service, _fake) = service().await;
    let s = Setup::new(&service, "");
    let example = s.plugins.join("example.wasm");
    let good = sha256_of(&example);
    let wrong = "0".repeat(64);
    let text = std::fs::read_to_string(&s.file).unwrap();
    let pin = |sha: &str| {
        text.replace(
            "connector = \"example\"\n",
            &format!("connector = \"example\"\nplugin_sha256 = \"{sha}\"\n"),
        )
    };

    // validate, with the file's own plugin folder and no INFO lines.
    std::fs::write(&s.file, pin(&wrong)).unwrap();
    let out = s.validate();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success());
    assert!(
        stdout.contains(&format!(
            "/checks/0/plugin_sha256: connector \"example\" is loaded from {} whose sha256 is {good}, not the pinned {wrong}",
            example.display()
        )),
        "{stdout}"
    );
    assert!(
        !stderr.contains("INFO"),
        "validate logs only warnings: {stderr}"
    );
    std::fs::write(&s.file, pin(&good)).unwrap();
    let out = s.validate();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // start: a wrong pin is refused.
    std::fs::write(&s.file, pin(&wrong)).unwrap();
    let mut refused = s.serve();
    let status = refused.child.wait().unwrap();
    assert!(!status.success());
    let log = std::fs::read_to_string(s.log()).unwrap();
    assert!(log.contains("not the pinned"), "{log}");

    // reload: the right pin runs; a wrong one is refused.
    std::fs::write(&s.file, pin(&good)).unwrap();
    let d = s.serve();
    d.ready().await;
    assert_eq!(d.latest_run("ingest-docs").await.0, "SUCCEEDED");
    std::fs::write(&s.file, pin(&wrong)).unwrap();
    let why = d.last_reload_error(1).await;
    assert!(
        why.contains("plugin_sha256") && why.contains("not the pinned"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_prints_its_class_once() {
    let (service, fake) = service().await;
    fake.lock().unwrap().fail_with = Some(400);
    let s = Setup::new(&service, "");
    let out = Command::new(daemon_binary())
        .args(["run", "ingest-docs", "--config"])
        .arg(&s.file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let failed = stdout
        .lines()
        .find(|l| l.contains("FAILED ("))
        .unwrap_or_else(|| panic!("{stdout}"));
    let class = failed
        .split("FAILED (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap();
    assert!(
        !failed.contains(&format!("{class} error")),
        "the class once: {failed}"
    );
    assert!(
        stderr.contains(&format!("the run failed ({class}): "))
            && !stderr.contains(&format!("{class} error")),
        "{stderr}"
    );
}

//! The config file at scale and mid-save, with the `tributary` binary: a big
//! broken file gets the first errors and a count (in `validate`, the last
//! reload error and the mutation's answer), its TOML syntax is checked before
//! any plugin is compiled, and a save that pauses half-way is never applied
//! half-written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugin_sdk::harness::TestServer;
use serde_json::{Value, json};
use tributary_tests::gql::Client;
use tributary_tests::kit::{
    Fake, config_text, daemon_binary, doc_ids, document_service, eventually, free_port,
};

/// How many errors are shown; the rest are counted.
const SHOWN: usize = 200;

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
    async fn start(file: &Path, port: u16) -> Self {
        let child = Command::new(daemon_binary())
            .args(["serve", "--config"])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let served = Served {
            child,
            api: Client::new(format!("http://127.0.0.1:{port}")),
        };
        eventually("the daemon to be ready", || async {
            (served.api.get("/readyz").await.status == 200).then_some(())
        })
        .await;
        served
    }

    async fn query(&self, query: &str) -> Value {
        let answer = self.api.query(Some("admin-token"), query, json!({})).await;
        answer.data().clone()
    }

    async fn config_status(&self) -> Value {
        self.query(
            "{ daemon { config { checks reloadsSucceeded reloadsFailed lastReloadError } } }",
        )
        .await["daemon"]["config"]
            .clone()
    }
}

/// A config for `dir` with its API on `port` and `checks` example checks on
/// `service`.
fn config(dir: &Path, service: &TestServer, checks: usize, port: u16) -> String {
    let ids: Vec<String> = (0..checks).map(|i| format!("c{i:04}")).collect();
    let url = service.url();
    let list: Vec<(&str, &str, &str, &str)> = ids
        .iter()
        .map(|id| (id.as_str(), "ingest", url.as_str(), ""))
        .collect();
    config_text(dir, &list).replace(
        "[storage]",
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]"),
    )
}

/// `n` checks, each with five mistakes: an unknown system, an unknown key, a
/// bad timeout, a bad schedule and a config of the wrong type.
fn broken_checks(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[checks]]\nid = \"bad-{i}\"\nsystem = \"nowhere-{i}\"\nconnector = \"example\"\n\
                 colour = \"red\"\ntimeout = \"soon\"\nschedule = {{ every = \"0s\" }}\n\
                 config = {{ base_url = 42 }}\n\n"
            )
        })
        .collect()
}

async fn service() -> TestServer {
    document_service(Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    })))
    .await
}

/// The lines of an error text that are errors with a place (`file:line:col: ...`).
fn placed(text: &str, file: &Path) -> usize {
    let prefix = format!("{}:", file.display());
    text.lines().filter(|l| l.starts_with(&prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_broken_config_gets_the_first_200_errors_and_a_count_everywhere() {
    let service = service().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config(dir.path(), &service, 1, port);
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, &text).unwrap();
    let d = Served::start(&file, port).await;

    let broken = format!("{text}\n{}", broken_checks(2_000));
    std::fs::write(&file, &broken).unwrap();

    // validate: the first 200 in the order of the file, then the count.
    let out = Command::new(daemon_binary())
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(placed(&stdout, &file), SHOWN, "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(
        last.starts_with("... and ") && last.contains(" more errors ("),
        "{last}"
    );
    let lines: Vec<usize> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{}:", file.display())))
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert!(lines.is_sorted(), "in the order of the file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let total: usize = stderr
        .lines()
        .find_map(|l| {
            l.split(" error(s) in ")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(total >= 5 * 2_000, "{total} errors counted: {stderr}");
    assert!(last.contains(&format!("({total} in all")), "{last}");

    // The watcher's reload: the last reload error is capped the same way.
    let status = eventually("the broken file to be refused", || async {
        let status = d.config_status().await;
        (status["reloadsFailed"] == 1).then_some(status)
    })
    .await;
    assert_eq!(status["checks"], 1, "the running config stays");
    let error = status["lastReloadError"].as_str().unwrap();
    assert_eq!(placed(error, &file), SHOWN, "{error}");
    assert!(error.contains(&format!("({total} in all")), "{error}");

    // The mutation answers with the same capped text.
    let answer = d
        .query("mutation { reloadConfig { added userErrors { message } } }")
        .await;
    let message = answer["reloadConfig"]["userErrors"][0]["message"]
        .as_str()
        .unwrap();
    assert_eq!(placed(message, &file), SHOWN, "{message}");
    assert!(message.len() < 200 * 400, "{} bytes", message.len());
}

#[test]
fn validate_checks_toml_syntax_before_compiling_any_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    let plugins = tributary_tests::plugin("example")
        .parent()
        .unwrap()
        .to_owned();
    std::fs::write(
        &file,
        format!(
            "plugins_dir = \"{}\"\n[storage\nurl = 1\n",
            plugins.display()
        ),
    )
    .unwrap();
    let out = Command::new(daemon_binary())
        .arg("validate")
        .arg(&file)
        .arg("--plugins")
        .arg(&plugins)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with(&format!("{}:2:", file.display())),
        "{stdout}"
    );
    assert!(
        !stderr.contains("loading plugins") && !stderr.contains("plugin loaded"),
        "no plugin was loaded for a file that does not parse: {stderr}"
    );
}

/// Saves `text` to `file` as a slow writer does: opens and truncates it,
/// writes up to `cut`, pauses for `pause` with the file open, then writes the
/// rest and closes it.
fn slow_save(file: &PathBuf, text: &str, cut: usize, pause: Duration) {
    let mut f = std::fs::File::create(file).unwrap();
    f.write_all(&text.as_bytes()[..cut]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(pause);
    f.write_all(&text.as_bytes()[cut..]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_that_pauses_mid_write_is_applied_only_whole() {
    let service = service().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = config(dir.path(), &service, 10, port);
    let file = dir.path().join("tributary.toml");
    std::fs::write(&file, &text).unwrap();
    let d = Served::start(&file, port).await;

    for save in 1..=3usize {
        // Each save adds a check; its first part holds only half the checks
        // (a valid config that would remove the others).
        let next = config(dir.path(), &service, 10 + save, port);
        let cut = next.find("id = \"c0005\"").unwrap();
        let (file, next) = (file.clone(), next.clone());
        tokio::task::spawn_blocking(move || {
            slow_save(&file, &next, cut, Duration::from_millis(2_000))
        })
        .await
        .unwrap();
        let status = eventually(&format!("save {save} to be applied"), || async {
            let status = d.config_status().await;
            (status["reloadsSucceeded"].as_i64()? >= save as i64).then_some(status)
        })
        .await;
        assert_eq!(status["checks"], 10 + save as i64, "{status}");
    }
    let status = d.config_status().await;
    assert_eq!(
        (
            status["reloadsSucceeded"].as_i64(),
            status["reloadsFailed"].as_i64()
        ),
        (Some(3), Some(0)),
        "one reload per save, none of a half-written file: {status}"
    );
}

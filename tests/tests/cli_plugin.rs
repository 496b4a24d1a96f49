//! The plugin toolkit as an author uses it, through the real `tributary`
//! binary: `plugin new` + `build` + `test` for Rust, Python and JavaScript,
//! `test` failing with a diff or naming an unmatched request, `call` of each
//! export, `inspect` naming the toolchain, and the attacks (a path in the
//! name, huge fixtures and answers, a plugin that loops).
//!
//! Build caches are shared with the other tests: Rust projects build into
//! the plugins' target dir (same dependency versions and profile), the JS
//! project uses the SDK's installed `node_modules`, and every compiled
//! component lands in the harness's cache folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use plugin_sdk::harness::{Reply, TestServer};
use serde_json::{Value, json};
use tributary_tests::kit::daemon_binary;
use tributary_tests::{plugin, repo_root};

fn tributary(args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(daemon_binary());
    // Rust projects have the plugins' dependencies and release profile:
    // building into the plugins' target dir reuses what is compiled there.
    command
        .arg("plugin")
        .args(args)
        .env("CARGO_TARGET_DIR", repo_root().join("target/wasm"))
        // Flags meant for the outer host build must not reach wasm builds.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.output().expect("run tributary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `tributary plugin ARGS` and returns its stdout; fails the test,
/// with everything it printed, when it fails.
fn ok(args: &[&str], dir: Option<&Path>) -> String {
    let out = tributary(args, dir);
    assert!(
        out.status.success(),
        "tributary plugin {args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `tributary plugin ARGS`, which must fail; stdout and stderr together.
fn fails(args: &[&str], dir: Option<&Path>) -> String {
    let out = tributary(args, dir);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success(),
        "tributary plugin {args:?} succeeded:\n{all}"
    );
    all
}

/// `plugin new hello --lang LANG`, then `build` and `test` in the project;
/// prints how long each step took. Returns the project folder.
fn new_build_test(tmp: &Path, lang: &str, prepare: impl FnOnce(&Path)) -> PathBuf {
    let project = tmp.join("hello");
    let started = Instant::now();
    let made = ok(
        &[
            "new",
            "hello",
            "--lang",
            lang,
            "--dir",
            project.to_str().unwrap(),
        ],
        None,
    );
    assert!(made.contains("tributary plugin build"), "{made}");
    prepare(&project);
    let new_done = started.elapsed();
    let built = ok(&["build"], Some(&project));
    let build_done = started.elapsed();
    assert!(built.contains("build/hello.wasm"), "{built}");
    let tested = ok(&["test"], Some(&project));
    let test_done = started.elapsed();
    assert!(tested.contains("ok    tests/collect.json"), "{tested}");
    assert!(
        tested.contains("ok    tests/test-connection.json"),
        "{tested}"
    );
    assert!(tested.contains("2 passed, 0 failed"), "{tested}");
    eprintln!(
        "{lang}: new {:.2} s, build {:.1} s, test {:.2} s",
        new_done.as_secs_f64(),
        (build_done - new_done).as_secs_f64(),
        (test_done - build_done).as_secs_f64()
    );
    project
}

fn inspect_toolchain(wasm: &Path) -> String {
    let data = tempfile::tempdir().unwrap();
    let out = ok(
        &[
            "inspect",
            wasm.to_str().unwrap(),
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        None,
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v["producers"]["toolchain"].as_str().unwrap().to_owned()
}

#[test]
fn a_python_project_builds_and_passes_its_own_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let project = new_build_test(tmp.path(), "python", |_| {});
    let toolchain = inspect_toolchain(&project.join("build/hello.wasm"));
    assert!(
        toolchain.starts_with("Python (componentize-py, libpython3"),
        "{toolchain}"
    );
}

#[test]
fn a_javascript_project_builds_and_passes_its_own_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let project = new_build_test(tmp.path(), "js", |project| {
        // The SDK's pinned tools are installed in the repository already
        // (the JS SDK tests need them): share them rather than `npm ci` again.
        let installed = repo_root().join("plugin-sdk-js/node_modules");
        if installed.is_dir() {
            std::os::unix::fs::symlink(&installed, project.join("sdk/plugin-sdk-js/node_modules"))
                .unwrap();
        }
    });
    let toolchain = inspect_toolchain(&project.join("build/hello.wasm"));
    assert!(
        toolchain.starts_with("JavaScript (ComponentizeJS 0.23.0)"),
        "{toolchain}"
    );
}

/// The Rust project, and everything `test` reports when the plugin and the
/// fixtures disagree (on this project: its component loads fastest).
#[test]
fn a_rust_project_builds_passes_its_tests_and_test_reports_what_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let project = new_build_test(tmp.path(), "rust", |_| {});
    let toolchain = inspect_toolchain(&project.join("build/hello.wasm"));
    assert!(toolchain.starts_with("Rust ("), "{toolchain}");

    // The service answers something else than the recording expects.
    let collect: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("tests/collect.json")).unwrap())
            .unwrap();
    let mut differs = collect.clone();
    differs["exchanges"][0]["response"]["body"]["received"] = json!(121);
    differs["exchanges"][0]["response"]["body"]["updated_at"] = json!("2026-11-20T09:00:00Z");
    let path = tmp.path().join("differs.json");
    std::fs::write(&path, differs.to_string()).unwrap();
    let out = fails(&["test", path.to_str().unwrap()], Some(&project));
    assert!(out.contains("FAIL  "), "{out}");
    assert!(
        out.contains("/report/observations/0/counts/received: expected 120, got 121"),
        "{out}"
    );
    assert!(
        out.contains(
            "/report/observations/0/freshness: expected \"2026-11-20T09:55:00Z\", got \"2026-11-20T09:00:00Z\""
        ),
        "{out}"
    );
    assert!(out.contains("0 passed, 1 failed"), "{out}");

    // The plugin asks for a path no exchange has: named, with the closest.
    let mut unmatched = collect.clone();
    unmatched["exchanges"][0]["request"]["path"] = json!("/v2/stats");
    unmatched["exchanges"].as_array_mut().unwrap().push(
        json!({"request": {"method": "POST", "path": "/v1/other"}, "response": {"status": 204}}),
    );
    std::fs::write(&path, unmatched.to_string()).unwrap();
    let out = fails(&["test", path.to_str().unwrap()], Some(&project));
    assert!(
        out.contains("no exchange matches GET /v1/stats; closest: exchanges[0] (GET /v2/stats), which wants path /v2/stats (got /v1/stats)"),
        "{out}"
    );

    // A wrong token is a header mismatch, named without its value.
    let mut wrong_token = collect.clone();
    wrong_token["config"]["token"] = json!("s3cret-value");
    std::fs::write(&path, wrong_token.to_string()).unwrap();
    let out = fails(&["test", path.to_str().unwrap()], Some(&project));
    assert!(
        out.contains("header authorization (different value)"),
        "{out}"
    );
    assert!(!out.contains("s3cret-value"), "a secret leaked:\n{out}");

    // No expectation yet: the outcome is printed to check and paste.
    let mut unset = collect.clone();
    unset.as_object_mut().unwrap().remove("expect");
    std::fs::write(&path, unset.to_string()).unwrap();
    let out = fails(&["test", path.to_str().unwrap()], Some(&project));
    assert!(out.contains("has no \"expect\""), "{out}");
    assert!(out.contains("\"received\": 120"), "{out}");

    // A huge answer hits the run's response limit like in the daemon.
    let mut huge = collect.clone();
    huge["limits"] = json!({"http_response_bytes": 1 << 20});
    huge["exchanges"][0]["response"]["body"]["padding"] = json!("x".repeat(2 << 20));
    std::fs::write(&path, huge.to_string()).unwrap();
    let out = fails(&["test", path.to_str().unwrap()], Some(&project));
    assert!(out.contains("HTTP response limit reached"), "{out}");

    // A fixture file over 16 MiB is refused before it is read.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(17 << 20).unwrap();
    let out = fails(&["test", path.to_str().unwrap()], Some(&project));
    assert!(out.contains("over the limit of 16777216"), "{out}");
    std::fs::remove_file(&path).unwrap();

    // A plugin that logs its token: the schema marks `token` secret, so the
    // value is masked in what `test` shows, even without fixture `secrets`.
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    let leaky = source.replace(
        "let stats: Stats = client(&cfg)",
        "plugin_sdk::log::info(\"calling\", &[(\"token\", &cfg.token)]);\n        let stats: Stats = client(&cfg)",
    );
    assert_ne!(leaky, source);
    std::fs::write(&lib, leaky).unwrap();
    ok(&["build"], Some(&project));
    let mut no_secrets = collect.clone();
    no_secrets.as_object_mut().unwrap().remove("secrets");
    std::fs::write(&path, no_secrets.to_string()).unwrap();
    let out = Command::new(daemon_binary())
        .args(["plugin", "test", path.to_str().unwrap()])
        .current_dir(&project)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let logged = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{logged}");
    assert!(
        logged.contains("calling"),
        "the plugin's log line is shown:\n{logged}"
    );
    assert!(!logged.contains("t0ken"), "the token leaked:\n{logged}");
    std::fs::remove_file(&path).unwrap();

    // A crate that forgot the export macro fails at build, naming it.
    std::fs::write(
        &lib,
        source.replace("plugin_sdk::export_connector!(Plugin);", ""),
    )
    .unwrap();
    let out = fails(&["build"], Some(&project));
    assert!(out.contains("plugin_sdk::export_connector!"), "{out}");
}

#[test]
fn a_looping_plugin_is_stopped_at_the_fixture_deadline() {
    let probe = plugin("probe");
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("loop.json");
    std::fs::write(
        &fixture,
        json!({
            "config": {"mode": "loop"},
            "limits": {"deadline_ms": 500},
            "expect": {"error": {"class": "transient", "message": "the run took longer than its deadline of 500ms and was stopped"}}
        })
        .to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let out = ok(
        &[
            "test",
            "--wasm",
            probe.to_str().unwrap(),
            fixture.to_str().unwrap(),
        ],
        Some(tmp.path()),
    );
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    eprintln!("loop stopped; test took {:?}", started.elapsed());
}

#[test]
fn a_name_that_is_a_path_makes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["../evil", "/tmp/evil", "a/../../evil", "Evil"] {
        let out = fails(&["new", name, "--lang", "python"], Some(tmp.path()));
        assert!(out.contains("invalid plugin name"), "{name}: {out}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert!(!tmp.path().parent().unwrap().join("evil").exists());
    // An existing project is never overwritten.
    std::fs::write(tmp.path().join("keep"), "mine").unwrap();
    let out = fails(
        &[
            "new",
            "hello",
            "--lang",
            "js",
            "--dir",
            tmp.path().to_str().unwrap(),
        ],
        None,
    );
    assert!(out.contains("already exists and is not empty"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn call_runs_each_export_of_the_example_plugin() {
    let example = plugin("example");
    let wasm = example.to_str().unwrap().to_owned();
    let server = TestServer::start(
        |req| match (req.header("authorization"), req.path.as_str()) {
            (Some("Bearer t0ken"), "/v1/health") => Reply::json(200, json!({"ok": true})),
            (Some("Bearer t0ken"), "/v1/tenants/acme/documents/resync") => {
                let ids = req.json().map(|b| b["ids"].clone()).unwrap_or_default();
                let accepted = ids.as_array().map_or(0, Vec::len);
                Reply::json(202, json!({"accepted": accepted}))
            }
            (Some("Bearer t0ken"), "/v1/tenants/acme/stats") => Reply::json(
                200,
                json!({"documents": {"expected": 100, "received": 97, "failed": 1},
                   "updated_at": "2026-11-20T09:30:00Z", "errors": []}),
            ),
            _ => Reply::status(401),
        },
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("c.json");
    std::fs::write(
        &config,
        json!({"base_url": server.url(), "tenant": "acme", "token": "t0ken"}).to_string(),
    )
    .unwrap();
    let config = config.to_str().unwrap().to_owned();
    let url = server.url();
    let call = |args: Vec<&str>| {
        let out = tributary(&[&["call", &wasm][..], &args].concat(), None);
        (
            out.status.success(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null),
        )
    };
    let (good, described) = tokio::task::block_in_place(|| call(vec!["describe"]));
    assert!(good);
    assert_eq!(described["descriptor"]["name"], "example");
    assert_eq!(described["descriptor"]["capabilities"], json!(["resync"]));

    let (good, tested) = tokio::task::block_in_place(|| {
        call(vec![
            "test-connection",
            "--config",
            &config,
            "--allow-host",
            &url,
        ])
    });
    assert!(good, "{tested}");
    assert_eq!(tested, json!({"ok": true}));

    let (good, discovered) =
        tokio::task::block_in_place(|| call(vec!["discover", "--config", &config]));
    assert!(good, "{discovered}");
    assert_eq!(discovered["assets"][0]["asset"], "documents");

    let (good, collected) = tokio::task::block_in_place(|| {
        call(vec![
            "collect",
            "--config",
            &config,
            "--allow-host",
            &url,
            "--now",
            "2026-11-20T10:00:00Z",
        ])
    });
    assert!(good, "{collected}");
    let observation = &collected["report"]["observations"][0];
    assert_eq!(
        observation["counts"],
        json!({"expected": 100, "received": 97, "errored": 1})
    );
    assert_eq!(observation["freshness"], "2026-11-20T09:30:00Z");

    // Without the grant the sandbox refuses the host: a config error, exit 1.
    let (good, denied) = tokio::task::block_in_place(|| call(vec!["collect", "--config", &config]));
    assert!(!good);
    assert_eq!(denied["error"]["class"], "config", "{denied}");

    // The actions, with their arguments on the command line.
    let (good, resynced) = tokio::task::block_in_place(|| {
        call(vec![
            "resync",
            "--asset",
            "documents",
            "--id",
            "d-1",
            "--id",
            "d-2",
            "--config",
            &config,
            "--allow-host",
            &url,
        ])
    });
    assert!(good, "{resynced}");
    assert_eq!(
        resynced,
        json!({"outcome": {"affected": 2, "message": "the service accepted 2 document(s) for resync"}})
    );
    let asked = server.take_requests();
    let resync = asked
        .iter()
        .find(|r| r.path.ends_with("/resync"))
        .expect("asked");
    assert_eq!(resync.json(), Some(json!({"ids": ["d-1", "d-2"]})));
    // `delete` is not in the example's capabilities: the host refuses it.
    let (good, refused) = tokio::task::block_in_place(|| {
        call(vec![
            "delete",
            "--asset",
            "documents",
            "--scope",
            "tenant",
            "--tenant",
            "acme",
            "--config",
            &config,
        ])
    });
    assert!(!good);
    assert_eq!(
        refused,
        json!({"error": {"class": "config", "message": "the plugin does not implement the optional `delete` action"}})
    );
    // Arguments an export does not take, or lacks, are named before any call.
    for (args, says) in [
        (
            vec!["collect", "--asset", "documents"],
            "are for resync and delete only",
        ),
        (vec!["resync", "--id", "d-1"], "resync needs --asset NAME"),
        (
            vec!["delete", "--asset", "documents"],
            "delete needs --scope asset|tenant|ids",
        ),
        (
            vec!["delete", "--asset", "documents", "--scope", "tenant"],
            "delete --scope tenant needs --tenant NAME",
        ),
        (
            vec![
                "delete",
                "--asset",
                "documents",
                "--scope",
                "asset",
                "--id",
                "d-1",
            ],
            "delete --scope asset takes neither --tenant nor --id",
        ),
        (
            vec!["resync", "--asset", "documents", "--tenant", "acme"],
            "--scope and --tenant are for delete only",
        ),
    ] {
        let out = tributary(&[&["call", &wasm][..], &args].concat(), None);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} called the plugin");
    }

    // A bad time is refused by the command line, naming the format.
    let out = tributary(&["call", &wasm, "collect", "--now", "yesterday"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not an RFC 3339 time"),
        "{}",
        text(&out.stderr)
    );

    let toolchain = inspect_toolchain(&example);
    assert!(toolchain.starts_with("Rust ("), "{toolchain}");
}

/// The Rust harness and `tributary plugin test` are one implementation: the
/// same fixture gives the same verdict through `plugin_sdk::harness::replay`
/// as through the binary.
#[tokio::test(flavor = "multi_thread")]
async fn the_harness_replays_a_fixture_as_the_command_does() {
    use plugin_sdk::harness::replay::{self, Fixture, Verdict};

    let example = plugin("example");
    let tmp = tempfile::tempdir().unwrap();
    let stats = json!({"documents": {"expected": 10, "received": 9, "failed": 0},
                       "updated_at": "2026-11-20T09:00:00Z", "errors": []});
    let mut fixture = json!({
        "now": "2026-11-20T10:00:00Z",
        "config": {"base_url": "${server}", "tenant": "acme", "token": "t0ken"},
        "exchanges": [{"request": {"method": "GET", "path": "/v1/tenants/acme/stats"},
                       "response": {"body": stats}}],
        "expect": {"report": {"observations": [{
            "asset": "documents", "kind": "documents",
            "counts": {"expected": 10, "received": 9, "errored": 0},
            "freshness": "2026-11-20T09:00:00Z",
            "metadata": {"tenant": "acme"}
        }]}}
    });
    let path = tmp.path().join("example.json");
    let cache = plugin_sdk::harness::default_cache_dir();
    for (received, passes) in [(9, true), (8, false)] {
        fixture["exchanges"][0]["response"]["body"]["documents"]["received"] = json!(received);
        std::fs::write(&path, fixture.to_string()).unwrap();
        let loaded = Fixture::load(&path).unwrap();
        let replayed = replay::run(&example, &loaded, &cache).await.unwrap();
        let verdict = replayed.verdict(&loaded);
        let args = [
            "test",
            "--wasm",
            example.to_str().unwrap(),
            path.to_str().unwrap(),
        ];
        let out = tokio::task::block_in_place(|| tributary(&args, Some(tmp.path())));
        let printed = text(&out.stdout);
        assert_eq!(out.status.success(), passes, "{printed}");
        match verdict {
            Verdict::Passed => assert!(passes, "{printed}"),
            Verdict::Failed { unmatched, diff } => {
                assert!(!passes && unmatched.is_empty());
                assert_eq!(
                    diff,
                    ["/report/observations/0/counts/received: expected 9, got 8"]
                );
                assert!(printed.contains(&diff[0]), "{printed}");
            }
            Verdict::NoExpectation => panic!("the fixture has an expectation"),
        }
    }
}

/// `test --update` writes the outcome as `expect` where it differs or is
/// missing, keeps the rest of the file as written, and never updates a
/// fixture whose recording lacks an answer; fixtures call the actions too.
#[test]
fn test_update_writes_the_outcome_and_keeps_the_rest() {
    let example = plugin("example");
    let wasm = example.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tests = tmp.path().join("tests");
    std::fs::create_dir(&tests).unwrap();
    // Written by hand, in an order and spacing of the author's own.
    let resync = r#"{
  "description": "resync asks the service again for two documents",
  "call": {"resync": {"asset": "documents", "ids": ["d-1", "d-2"]}},
  "config": {"tenant": "acme", "token": "t0ken", "base_url": "${server}"},
  "exchanges": [
    {"request": {"method": "POST", "path": "/v1/tenants/acme/documents/resync", "body": {"ids": ["d-1", "d-2"]}},
     "response": {"status": 202, "body": {"accepted": 2}}}
  ]
}
"#;
    let path = tests.join("resync.json");
    std::fs::write(&path, resync).unwrap();
    let wrong = tests.join("wrong.json");
    let wrong_text = resync
        .replace("resync asks", "a stale expectation: resync asks")
        .replace(
            "\n  ]\n}",
            "\n  ],\n  \"expect\": {\"outcome\": {\"affected\": 3}}\n}",
        );
    std::fs::write(&wrong, &wrong_text).unwrap();
    let unanswered = tests.join("unanswered.json");
    let unanswered_text = resync.replace("/documents/resync\"", "/documents/sync\"");
    std::fs::write(&unanswered, &unanswered_text).unwrap();
    // A fixture kept elsewhere and linked in: updated where it lives.
    let shared = tmp.path().join("shared.json");
    std::fs::write(&shared, resync).unwrap();
    std::os::unix::fs::symlink(&shared, tests.join("linked.json")).unwrap();

    let out = fails(&["test", "--wasm", wasm], Some(tmp.path()));
    assert!(out.contains("0 passed, 4 failed"), "{out}");
    assert!(out.contains("or run test --update"), "{out}");

    let out = fails(&["test", "--update", "--wasm", wasm], Some(tmp.path()));
    assert!(out.contains("UPDATED tests/resync.json"), "{out}");
    assert!(out.contains("UPDATED tests/wrong.json"), "{out}");
    assert!(
        out.contains("/outcome/affected: expected 3, got 2"),
        "{out}"
    );
    assert!(out.contains("FAIL  tests/unanswered.json"), "{out}");
    assert!(out.contains("0 passed, 3 updated, 1 failed"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&unanswered).unwrap(),
        unanswered_text
    );

    let expect = r#"  "expect": {
    "outcome": {
      "affected": 2,
      "message": "the service accepted 2 document(s) for resync"
    }
  }"#;
    let updated = std::fs::read_to_string(&path).unwrap();
    let kept = resync.trim_end().strip_suffix("\n}").unwrap();
    assert_eq!(updated, format!("{kept},\n{expect}\n}}\n"));
    let updated_wrong = std::fs::read_to_string(&wrong).unwrap();
    let before_expect = wrong_text.split("  \"expect\"").next().unwrap();
    assert_eq!(updated_wrong, format!("{before_expect}{expect}\n}}\n"));
    assert!(!tests.join("resync.json.updating").exists());
    let link = std::fs::symlink_metadata(tests.join("linked.json")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&shared).unwrap(), updated);

    // Now they pass as they are; the unanswered one still fails.
    std::fs::remove_file(&unanswered).unwrap();
    let out = ok(&["test", "--wasm", wasm], Some(tmp.path()));
    assert!(out.contains("3 passed, 0 failed"), "{out}");
}

//! What a user sees: files that load, and files whose every mistake is named
//! with its place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

const EXAMPLE: &str = include_str!("../../../config/example.toml");

fn no_plugins() -> BTreeMap<String, Value> {
    BTreeMap::new()
}

fn snowflake_schema() -> BTreeMap<String, Value> {
    BTreeMap::from([(
        "snowflake".to_owned(),
        json!({
            "type": "object",
            "required": ["account", "user", "token"],
            "properties": {
                "account": { "type": "string" },
                "user": { "type": "string" },
                "token": { "type": "string", "minLength": 20 },
                "port": { "type": "integer" }
            }
        }),
    )])
}

fn errors_of(text: &str, plugins: &BTreeMap<String, Value>) -> ConfigErrors {
    parse(text, Path::new("tributary.toml"), plugins).expect_err("the config should be invalid")
}

/// The error at `pointer`, or a failure listing them all.
fn at<'e>(errors: &'e ConfigErrors, pointer: &str) -> &'e ConfigError {
    errors
        .iter()
        .find(|e| e.pointer == pointer)
        .unwrap_or_else(|| panic!("no error at {pointer}; got:\n{errors}"))
}

/// Every sandbox limit a check may set reaches its run's `Limits`.
#[test]
fn every_sandbox_limit_is_read() {
    let text = EXAMPLE.replace(
        r#"limits = { memory = "128MiB","#,
        r#"limits = { http_request = "1MiB", http_headers = "8KiB", http_connections = 4, handles = 100, id_bytes = "2MiB", id_length = "1KiB", log_bytes = "10KiB", memory = "128MiB","#,
    );
    assert_ne!(text, EXAMPLE);
    let config = parse_with(
        &text,
        Path::new("config/example.toml"),
        &no_plugins(),
        Options {
            require_known_connectors: false,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let limits = &config.check("snowflake-documents").unwrap().limits;
    assert_eq!(limits.http_request_bytes, 1 << 20);
    assert_eq!(limits.http_headers, 8 << 10);
    assert_eq!(limits.http_connections, 4);
    assert_eq!(limits.handles, 100);
    assert_eq!(limits.id_bytes, 2 << 20);
    assert_eq!(limits.id_length, 1 << 10);
    assert_eq!(limits.log_bytes, 10 << 10);
}

/// The example config passes the syntax, schema and meaning layers. Its plugins'
/// schemas are not at hand here, so connectors are not required to be known.
#[test]
fn the_example_config_loads() {
    let config = parse_with(
        EXAMPLE,
        Path::new("config/example.toml"),
        &no_plugins(),
        Options {
            require_known_connectors: false,
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config.storage.retention.raw,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(config.scheduler.jitter, Jitter::Fraction(0.1));
    assert_eq!(config.scheduler.per_connector["snowflake"], 4);
    assert_eq!(config.tenants.len(), 2);
    assert_eq!(
        config.flows[0].downstream,
        ["snowflake-analytics", "looker"]
    );
    assert_eq!(
        config.flows[0].links.contact.as_deref(),
        Some("#data-oncall")
    );

    let snowflake = config.check("snowflake-documents").unwrap();
    assert!(matches!(&snowflake.schedule, Schedule::Cron(c) if c.expr == "0 */5 * * * *"));
    assert_eq!(snowflake.limits.memory_bytes, 128 << 20);
    assert_eq!(snowflake.limits.deadline, Duration::from_secs(120));
    assert_eq!(snowflake.limits.http_requests, 200);
    assert_eq!(
        snowflake.grants.allowed_hosts[0].to_string(),
        "https://*.snowflakecomputing.com"
    );
    assert_eq!(snowflake.rules.failure_threshold, Some(2));
    assert_eq!(snowflake.rules.overrides.len(), 1);
    assert_eq!(
        snowflake.config.secrets[0].source,
        SecretSource::File("secrets/snowflake_key.p8".into())
    );
    assert_eq!(
        snowflake.config.secrets[0].pointer,
        "/checks/2/config/auth/private_key"
    );

    let dbt = config.check("dbt-models").unwrap();
    assert_eq!(dbt.schedule, Schedule::Every(Duration::from_secs(300)));
    assert_eq!(
        dbt.limits,
        crate::plugin::Limits {
            deadline: Duration::from_secs(30),
            ..Default::default()
        }
    );
    assert_eq!(
        dbt.grants.read_dir.as_deref(),
        Some(Path::new("/srv/dbt/analytics/target"))
    );

    let looker = config.check("looker-datagroups").unwrap();
    let names: Vec<_> = looker
        .config
        .secrets
        .iter()
        .map(|s| s.at.as_str())
        .collect();
    assert_eq!(names, ["/client_id", "/client_secret"]);
}

/// Without the relaxed option, the example's connectors must be known.
#[test]
fn unknown_connectors_are_named_when_required() {
    let errors = errors_of(EXAMPLE, &snowflake_schema());
    let e = at(&errors, "/checks/0/connector");
    assert!(e.message.contains("unknown connector \"example\""), "{e}");
    assert!(e.message.contains("known connectors: snowflake"), "{e}");
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let config = parse("", Path::new("empty.toml"), &no_plugins()).unwrap();
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.storage.url, "sqlite://data/tributary.db");
    assert_eq!(config.scheduler.max_concurrent_runs, 16);
    assert!(config.checks.is_empty());
}

const MISTAKES: &str = r#"[scheduler]
max_concurrent_runs = "sixteen"

[[tenants]]
id = "acme"
name = "Acme"

[[systems]]
id = "warehouse"
name = "Warehouse"
kind = "snowflake"

[[flows]]
id = "docs"
tenant = "acme"
name = "Docs"
upstream = "warehouse"
downstream = ["lake", "warehouse"]

[[checks]]
id = "wh"
system = "warehouse"
connector = "snowflake"
schedule = { cron = "61 * * * *" }
grants = { allowed_hosts = ["ftp://warehouse.example.com"] }
config = { account = 42, token = { env = "SNOWFLAKE_TOKEN" } }
rules = { freshness = { warn_after = "2h", error_after = "1h" } }

[[checks]]
id = "wh"
system = "warehouse"
connector = "oracle"
schedule = { every = "5m" }
timeout = "2h"
"#;

/// One file, many mistakes: every one is reported at once with its place.
#[test]
fn every_mistake_is_reported_at_once_with_its_place() {
    let errors = errors_of(MISTAKES, &snowflake_schema());
    let text = errors.to_string();

    // Schema: a string where a number belongs.
    let e = at(&errors, "/scheduler/max_concurrent_runs");
    assert_eq!((e.line, e.column), (2, 1), "{e}");
    assert!(e.message.contains("integer"), "{e}");

    // Meaning: a flow naming a system that does not exist, and one that is
    // both upstream and downstream.
    let e = at(&errors, "/flows/0/downstream/0");
    assert_eq!((e.line, e.column), (18, 15), "{e}");
    assert!(e.message.contains("unknown system \"lake\""), "{e}");
    assert!(e.message.contains("known systems: warehouse"), "{e}");
    let e = at(&errors, "/flows/0/downstream/1");
    assert!(e.message.contains("both upstream and downstream"), "{e}");

    // A cron expression that does not parse.
    let e = at(&errors, "/checks/0/schedule/cron");
    assert_eq!(e.line, 24, "{e}");
    assert!(
        e.message.contains("invalid cron expression \"61 * * * *\""),
        "{e}"
    );

    // A host grant that does not parse.
    let e = at(&errors, "/checks/0/grants/allowed_hosts/0");
    assert_eq!((e.line, e.column), (25, 29), "{e}");
    assert!(e.message.contains("scheme must be http or https"), "{e}");

    // The plugin's schema: a wrong type and a missing field; the secret
    // reference stands for a string, so `token` is not reported.
    let e = at(&errors, "/checks/0/config/account");
    assert_eq!(e.line, 26, "{e}");
    assert!(e.message.contains("string"), "{e}");
    let e = at(&errors, "/checks/0/config");
    assert_eq!(e.line, 26, "{e}");
    assert!(e.message.contains("\"user\" is a required property"), "{e}");
    assert!(!text.contains("/checks/0/config/token"), "{text}");

    // Thresholds that make no sense.
    let e = at(&errors, "/checks/0/rules");
    assert_eq!(e.line, 27, "{e}");
    assert!(
        e.message
            .contains("warn_after 2h is more than error_after 1h"),
        "{e}"
    );

    // A duplicate id, an unknown connector, a timeout above the maximum.
    let e = at(&errors, "/checks/1/id");
    assert_eq!((e.line, e.column), (30, 1), "{e}");
    assert!(
        e.message
            .contains("duplicate check id \"wh\" (first defined at line 21)"),
        "{e}"
    );
    let e = at(&errors, "/checks/1/connector");
    assert_eq!(e.line, 32, "{e}");
    assert!(
        e.message
            .contains("unknown connector \"oracle\"; known connectors: snowflake"),
        "{e}"
    );
    let e = at(&errors, "/checks/1/timeout");
    assert_eq!(e.line, 34, "{e}");
    assert!(e.message.contains("maximum of 1h"), "{e}");

    assert_eq!(errors.len(), 11, "{text}");
    // One line each, `path:line:col: /pointer: message`, in file order.
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("tributary.toml:2:1: /scheduler/max_concurrent_runs: "),
        "{text}"
    );
    assert_eq!(text.lines().count(), errors.len());
}

#[test]
fn a_misspelt_key_points_at_the_key() {
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\n\n[storage]\nurl = \"sqlite://x.db\"\nretension = { raw = \"1d\" }\n";
    let errors = errors_of(text, &no_plugins());
    let e = at(&errors, "/storage/retension");
    assert_eq!((e.line, e.column), (6, 1), "{e}");
    assert!(e.message.contains("unknown key \"retension\""), "{e}");
}

#[test]
fn a_misspelt_rule_is_an_error() {
    let text = "[[systems]]\nid = \"s\"\nname = \"S\"\nkind = \"x\"\n\n[[checks]]\nid = \"c\"\nsystem = \"s\"\nconnector = \"http\"\nschedule = { every = \"1m\" }\n\n[checks.rules]\nfreshnes = { warn_after = \"1h\" }\n";
    let errors = errors_of(text, &no_plugins_but("http"));
    let e = at(&errors, "/checks/0/rules/freshnes");
    assert_eq!(e.line, 13, "{e}");
}

fn no_plugins_but(name: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([(name.to_owned(), json!({ "type": "object" }))])
}

#[test]
fn a_toml_syntax_error_reports_its_line_and_column() {
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\nport = = 2\n";
    let errors = errors_of(text, &no_plugins());
    let e = &errors.shown[0];
    assert_eq!(e.line, 3, "{errors}");
    assert!(e.column >= 6, "{errors}");
    assert!(
        errors.to_string().starts_with("tributary.toml:3:"),
        "{errors}"
    );
}

#[test]
fn a_missing_file_is_one_error() {
    let errors = load(Path::new("/nonexistent/tributary.toml"), &no_plugins()).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors.to_string().contains("cannot read the config file"),
        "{errors}"
    );
}

fn check_config(secrets: &[(&str, SecretSource)], value: Value) -> CheckConfig {
    CheckConfig {
        value,
        secrets: secrets
            .iter()
            .map(|(at, source)| SecretRef {
                at: (*at).to_owned(),
                pointer: format!("/checks/0/config{at}"),
                line: 7,
                column: 3,
                source: source.clone(),
            })
            .collect(),
        file: PathBuf::from("tributary.toml"),
    }
}

fn temp_path(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("tributary-{}-{nanos}-{name}", std::process::id()))
}

#[test]
fn secrets_resolve_from_files_and_env_and_stay_out_of_debug() {
    let file = temp_path("token");
    std::fs::write(&file, "s3cr3t-from-file\n").unwrap();
    let path_value = std::env::var("PATH").expect("PATH is set");

    let text = format!(
        "[[systems]]\nid = \"s\"\nname = \"S\"\nkind = \"x\"\n\n[[checks]]\nid = \"c\"\nsystem = \"s\"\nconnector = \"http\"\nschedule = {{ every = \"1m\" }}\nconfig = {{ url = \"https://x\", token = {{ file = {:?} }}, nested = {{ search = {{ env = \"PATH\" }} }} }}\n",
        file.to_str().unwrap()
    );
    let config = parse(&text, Path::new("t.toml"), &no_plugins_but("http")).unwrap();
    let check = &config.checks[0];
    assert_eq!(check.config.secrets.len(), 2);
    assert!(!format!("{check:?}").contains("s3cr3t"));

    let resolved = resolve_secrets(&check.config).unwrap();
    std::fs::remove_file(&file).unwrap();
    let json: Value = serde_json::from_str(&resolved.json).unwrap();
    assert_eq!(json["token"], "s3cr3t-from-file");
    assert_eq!(json["nested"]["search"], path_value.as_str());
    assert_eq!(json["url"], "https://x");
    assert!(resolved.secrets.contains(&"s3cr3t-from-file".to_owned()));

    let debug = format!("{resolved:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(!debug.contains(&path_value), "{debug}");
}

#[test]
fn a_missing_env_var_or_file_is_named_without_leaking() {
    let name = "TRIBUTARY_TEST_SURELY_UNSET_VARIABLE_9F3A";
    assert!(std::env::var_os(name).is_none());
    let config = check_config(
        &[("/token", SecretSource::Env(name.into()))],
        json!({ "token": { "env": name }, "user": "visible" }),
    );
    let e = resolve_secrets(&config).unwrap_err();
    assert_eq!(e.pointer, "/checks/0/config/token");
    assert_eq!((e.line, e.column), (7, 3));
    assert!(
        e.to_string()
            .contains(&format!("environment variable {name} is not set")),
        "{e}"
    );

    let missing = temp_path("absent");
    let config = check_config(
        &[
            ("/a", SecretSource::Env("PATH".into())),
            ("/b", SecretSource::File(missing.clone())),
        ],
        json!({ "a": { "env": "PATH" }, "b": { "file": missing } }),
    );
    let e = resolve_secrets(&config).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("cannot read secret file"), "{message}");
    assert!(
        !message.contains(&std::env::var("PATH").unwrap()),
        "{message}"
    );
}

#[test]
fn a_file_secret_keeps_all_but_one_trailing_newline() {
    let file = temp_path("multi");
    std::fs::write(&file, "line1\nline2\n\n").unwrap();
    let config = check_config(
        &[("/k", SecretSource::File(file.clone()))],
        json!({ "k": { "file": file } }),
    );
    let resolved = resolve_secrets(&config).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(resolved.secrets, ["line1\nline2\n"]);
}

#[test]
fn a_secret_where_the_plugin_wants_a_number_is_an_error() {
    let text = "[[systems]]\nid = \"s\"\nname = \"S\"\nkind = \"x\"\n\n[[checks]]\nid = \"c\"\nsystem = \"s\"\nconnector = \"snowflake\"\nschedule = { every = \"1m\" }\nconfig = { account = \"a\", user = \"u\", token = { env = \"T\" }, port = { env = \"P\" } }\n";
    let errors = errors_of(text, &snowflake_schema());
    assert_eq!(errors.len(), 1, "{errors}");
    let e = at(&errors, "/checks/0/config/port");
    assert!(
        e.message.contains("a secret reference gives a string"),
        "{e}"
    );
}

#[test]
fn listen_and_database_changes_need_a_restart() {
    let opts = Options {
        require_known_connectors: false,
        ..Options::default()
    };
    let old = parse_with(EXAMPLE, Path::new("example.toml"), &no_plugins(), opts).unwrap();
    let same = parse_with(EXAMPLE, Path::new("example.toml"), &no_plugins(), opts).unwrap();
    assert!(old.restart_needed(&same).is_empty());
    let changed = EXAMPLE
        .replace("127.0.0.1:8080", "0.0.0.0:9090")
        .replace(
            "sqlite://data/tributary.db",
            "postgres://localhost/tributary",
        )
        .replace("every = \"30s\"", "every = \"45s\"");
    let new = parse_with(&changed, Path::new("example.toml"), &no_plugins(), opts).unwrap();
    assert_eq!(old.restart_needed(&new), ["server.listen", "storage.url"]);
}

#[test]
fn the_embedded_schema_is_valid_json_schema() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    assert!(jsonschema::meta::is_valid(&schema));
}

/// A file of `n` checks of connector `snowflake`, each with five mistakes.
fn broken_checks(n: usize) -> String {
    let mut text =
        String::from("[[systems]]\nid = \"warehouse\"\nname = \"W\"\nkind = \"warehouse\"\n\n");
    for i in 0..n {
        text.push_str(&format!(
            "[[checks]]\nid = \"c{i}\"\nsystem = \"lake-{i}\"\nconnector = \"snowflake\"\ncolour = 1\n\
             timeout = \"soon\"\nschedule = {{ every = \"0s\" }}\nconfig = {{ port = \"x\" }}\n\n"
        ));
    }
    text
}

#[test]
fn a_big_broken_file_keeps_the_first_errors_by_place_and_counts_the_rest() {
    let errors = errors_of(&broken_checks(300), &snowflake_schema());
    assert_eq!(errors.shown.len(), SHOWN_ERRORS);
    assert!(
        errors.more >= 5 * 300 - SHOWN_ERRORS,
        "{} more",
        errors.more
    );
    assert_eq!(errors.len(), errors.shown.len() + errors.more);
    let places: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
    assert!(places.is_sorted(), "in the order of the file: {places:?}");
    // The first check's mistakes are all there, the last check's are not.
    assert!(errors.iter().any(|e| e.pointer == "/checks/0/system"));
    assert!(!errors.iter().any(|e| e.pointer.starts_with("/checks/299/")));
    let text = errors.to_string();
    assert_eq!(text.lines().count(), SHOWN_ERRORS + 1);
    assert!(
        text.ends_with(&format!(
            "... and {} more errors ({} in all; the first {SHOWN_ERRORS} are shown)",
            errors.more,
            errors.len()
        )),
        "{}",
        text.lines().last().unwrap()
    );
}

#[test]
fn a_small_broken_file_shows_every_error_and_no_count() {
    let errors = errors_of(&broken_checks(2), &snowflake_schema());
    assert_eq!(errors.more, 0);
    assert!(!errors.to_string().contains("more errors"));
}

const PINNED: &str = r#"
[[systems]]
id = "warehouse"
name = "Warehouse"
kind = "warehouse"

[[checks]]
id = "pinned"
system = "warehouse"
connector = "snowflake"
plugin_sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
schedule = { every = "1m" }
config = { account = "a", user = "u", token = "01234567890123456789" }
"#;

fn snowflake_from(sha256: &str) -> Connectors {
    let mut connectors = Connectors::from_schemas(&snowflake_schema());
    for connector in connectors.loaded.values_mut() {
        connector.file = Some((PathBuf::from("plugins/snowflake.wasm"), sha256.to_owned()));
    }
    connectors
}

#[test]
fn a_pinned_plugin_file_must_have_the_pinned_hash() {
    let file = Path::new("tributary.toml");
    let pin = "1".repeat(64);
    let config = parse_against(PINNED, file, &snowflake_from(&pin), Options::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.checks[0].plugin_sha256.as_deref(),
        Some(pin.as_str())
    );

    let other = "2".repeat(64);
    let errors = parse_against(PINNED, file, &snowflake_from(&other), Options::default())
        .expect_err("another file is refused");
    let e = at(&errors, "/checks/0/plugin_sha256");
    assert_eq!(e.line, 11, "{e}");
    assert!(
        e.message.contains(&format!(
            "loaded from plugins/snowflake.wasm whose sha256 is {other}, not the pinned {pin}"
        )),
        "{e}"
    );

    // A pin must look like one.
    let text = PINNED.replace(&pin, "abc");
    let errors = errors_of(&text, &snowflake_schema());
    at(&errors, "/checks/0/plugin_sha256");
}

#[test]
fn a_check_of_a_failed_plugin_is_kept_by_the_daemon_and_refused_by_validate() {
    let file = Path::new("tributary.toml");
    let connectors = Connectors {
        loaded: BTreeMap::new(),
        failed: vec![crate::plugin::FailedPlugin {
            file: "plugins/snowflake.wasm".into(),
            name: None,
            error: "plugins/snowflake.wasm is not a valid WebAssembly component: bad magic".into(),
        }],
    };
    let errors = parse_against(PINNED, file, &connectors, Options::default())
        .expect_err("validate refuses it");
    let e = at(&errors, "/checks/0/connector");
    assert_eq!(
        e.message,
        "connector \"snowflake\" is not loaded: its plugin failed to load: plugins/snowflake.wasm is not a valid WebAssembly component: bad magic"
    );
    let daemon = Options {
        keep_checks_of_failed_plugins: true,
        ..Options::default()
    };
    let config = parse_against(PINNED, file, &connectors, daemon).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.checks[0].connector, "snowflake");
    // Without a failed file that can be it, a connector is still unknown.
    let errors = parse_against(PINNED, file, &Connectors::default(), daemon)
        .expect_err("an unknown connector is an error");
    assert!(
        at(&errors, "/checks/0/connector")
            .message
            .contains("unknown connector")
    );
}

#[test]
fn folders_are_read_after_the_syntax_only() {
    let file = Path::new("tributary.toml");
    let read = folders("plugins_dir = \"p\"\nscheduler = 3\n", file).unwrap();
    assert_eq!(read.plugins_dir, PathBuf::from("p"));
    assert_eq!(read.data_dir, PathBuf::from("data"));
    let errors = folders("plugins_dir = \"p\"\n[storage\n", file).unwrap_err();
    assert_eq!(errors.shown[0].line, 2, "{errors}");
}

/// `[api.limits]` reads the alias and answer limits, and names a bad one.
#[test]
fn api_limits_read_aliases_and_answer_bytes() {
    let text = "[api.limits]\nmax_aliases = 10\nmax_answer = \"1MiB\"\n";
    let config =
        parse(text, Path::new("tributary.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.api.limits.max_aliases, 10);
    assert_eq!(config.api.limits.max_answer_bytes, 1 << 20);
    let errors = errors_of(
        "[api.limits]\nmax_aliases = 0\nmax_answer = \"lots\"\n",
        &no_plugins(),
    );
    at(&errors, "/api/limits/max_aliases");
    at(&errors, "/api/limits/max_answer");
}

/// CORS origins are compared as browsers send them, so anything else (a
/// path, a trailing slash) is refused where it stands.
#[test]
fn api_cors_origins_are_read_and_malformed_ones_named() {
    let with = |origins: &str| {
        EXAMPLE.replace(
            "[storage]",
            &format!("[api.cors]\nallowed_origins = {origins}\n\n[storage]"),
        )
    };
    let options = || Options {
        require_known_connectors: false,
        ..Options::default()
    };
    let text = with(r#"["https://app.example.com", "http://127.0.0.1:3000"]"#);
    let config = parse_with(&text, Path::new("t.toml"), &no_plugins(), options())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.api.allowed_origins,
        ["https://app.example.com", "http://127.0.0.1:3000"]
    );
    let text = with(r#"["https://app.example.com", "https://app.example.com/"]"#);
    let errors = parse_with(&text, Path::new("t.toml"), &no_plugins(), options())
        .expect_err("a trailing slash is refused");
    at(&errors, "/api/cors/allowed_origins/1");
}

#[test]
fn api_introspection_is_read_and_an_unknown_setting_named() {
    let with = |setting: &str| {
        EXAMPLE.replace(
            "[api.limits]",
            &format!("[api]\nintrospection = \"{setting}\"\n\n[api.limits]"),
        )
    };
    let options = || Options {
        require_known_connectors: false,
        ..Options::default()
    };
    let config = parse_with(
        &with("authenticated"),
        Path::new("t.toml"),
        &no_plugins(),
        options(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.api.introspection, Introspection::Authenticated);
    let errors = parse_with(
        &with("maybe"),
        Path::new("t.toml"),
        &no_plugins(),
        options(),
    )
    .expect_err("an unknown setting is refused");
    at(&errors, "/api/introspection");
}

/// `api.persisted_queries` is `"off"` or a table whose `max_bytes` is a size
/// of at least a byte; anything else is named where it stands.
#[test]
fn api_persisted_queries_are_read_and_bad_settings_named() {
    let with =
        |api: &str| EXAMPLE.replace("[api.limits]", &format!("[api]\n{api}\n\n[api.limits]"));
    let options = || Options {
        require_known_connectors: false,
        ..Options::default()
    };
    let read = |api: &str| parse_with(&with(api), Path::new("t.toml"), &no_plugins(), options());
    let setting = |api: &str| {
        read(api)
            .unwrap_or_else(|e| panic!("{e}"))
            .api
            .persisted_queries
    };
    assert_eq!(
        setting(""),
        PersistedQueries::On {
            max_bytes: 16 << 20
        }
    );
    assert_eq!(
        setting("persisted_queries = \"off\""),
        PersistedQueries::Off
    );
    assert_eq!(
        setting("persisted_queries = { max_bytes = \"1MiB\" }"),
        PersistedQueries::On { max_bytes: 1 << 20 }
    );
    for bad in [
        "persisted_queries = \"on\"",
        "persisted_queries = { max_bytes = 0 }",
        "persisted_queries = { max_bytes = \"lots\" }",
        "persisted_queries = { max_entries = 10 }",
    ] {
        let errors = read(bad).expect_err(bad);
        assert!(
            errors
                .iter()
                .any(|e| e.pointer.starts_with("/api/persisted_queries")),
            "{bad}: {errors}"
        );
    }
}

/// `[api.websocket]` is read; a zero, a non-duration and an idle timeout
/// that a client answering every ping would still hit are each named where
/// they stand.
#[test]
fn api_websocket_is_read_and_bad_settings_named() {
    let file = Path::new("tributary.toml");
    let config = parse("", file, &no_plugins()).unwrap();
    assert_eq!(config.api.websocket, ApiWebSocket::default());
    assert_eq!(
        config.api.websocket.ping_interval,
        Duration::from_secs(15),
        "the documented default"
    );
    let text = "[api.websocket]\nping_interval = \"5s\"\nidle_timeout = \"20s\"\n\
                init_timeout = \"2s\"\nmax_subscriptions = 3\n";
    let ws = parse(text, file, &no_plugins()).unwrap().api.websocket;
    assert_eq!(
        ws,
        ApiWebSocket {
            ping_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            init_timeout: Duration::from_secs(2),
            max_subscriptions: 3,
        }
    );

    let errors = errors_of(
        "[api.websocket]\nping_interval = \"0s\"\ninit_timeout = \"soon\"\nmax_subscriptions = 0\n",
        &no_plugins(),
    );
    assert!(
        at(&errors, "/api/websocket/ping_interval")
            .message
            .contains("longer than 0s")
    );
    at(&errors, "/api/websocket/init_timeout");
    at(&errors, "/api/websocket/max_subscriptions");

    let errors = errors_of(
        "[api.websocket]\nping_interval = \"30s\"\nidle_timeout = \"30s\"\n",
        &no_plugins(),
    );
    let e = at(&errors, "/api/websocket/idle_timeout");
    assert!(e.message.contains("longer than ping_interval (30s)"), "{e}");
    assert_eq!(e.line, 3, "{e}");
    // Only the interval written: it is the one named, against the default.
    let errors = errors_of("[api.websocket]\nping_interval = \"2m\"\n", &no_plugins());
    let e = at(&errors, "/api/websocket/ping_interval");
    assert!(e.message.contains("shorter than idle_timeout (60s"), "{e}");
    let errors = errors_of("[api.websocket]\npings = \"5s\"\n", &no_plugins());
    at(&errors, "/api/websocket/pings");
}

const PUSH_BASE: &str = r#"
[[systems]]
id = "app"
name = "App"
kind = "service"
"#;

fn sha(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

/// A push check needs no plugin and no schedule; its heartbeat, origins,
/// limits and tokens are read, and it is not run on a schedule.
#[test]
fn a_push_check_is_read_without_plugin_or_schedule() {
    let text = format!(
        r#"{PUSH_BASE}
[[checks]]
id = "uploads"
system = "app"
connector = "push"
[checks.push]
expect_every = "5m"
grace = "1m"
assets = ["documents"]
allowed_origins = ["https://app.example.com"]
max_body = "1MiB"
rate = 7
[[checks.push.tokens]]
name = "page"
sha256 = "{a}"
"#,
        a = sha('a')
    );
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    let push = config.check("uploads").unwrap().push.as_deref().unwrap();
    assert_eq!(
        push.expect,
        Some(crate::health::Heartbeat {
            every: Duration::from_secs(300),
            grace: Duration::from_secs(60),
        })
    );
    assert_eq!(push.assets, ["documents"]);
    assert_eq!(push.allowed_origins, ["https://app.example.com"]);
    assert_eq!((push.max_body_bytes, push.rate_per_second), (1 << 20, 7));
    assert_eq!(push.tokens[0].sha256, sha('a'));
}

/// `[checks.push.deadlines.ASSET]`: an asset's own heartbeat, read like the
/// check's; mistakes in one are located at the asset.
#[test]
fn per_asset_deadlines_are_read_and_their_mistakes_located() {
    let check = |deadlines: &str| {
        format!(
            r#"{PUSH_BASE}
[[checks]]
id = "uploads"
system = "app"
connector = "push"
[checks.push]
assets = ["documents", "heartbeat"]
tokens = [{{ name = "page", sha256 = "{a}" }}]
{deadlines}
"#,
            a = sha('a')
        )
    };
    let text = check("[checks.push.deadlines.documents]\nexpect_every = \"5m\"\ngrace = \"30s\"");
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    let push = config.check("uploads").unwrap().push.as_deref().unwrap();
    assert_eq!(push.expect, None);
    assert_eq!(
        push.deadlines.get("documents"),
        Some(&crate::health::Heartbeat {
            every: Duration::from_secs(300),
            grace: Duration::from_secs(30),
        })
    );

    let errors = errors_of(
        &check(
            r#"[checks.push.deadlines.invoices]
expect_every = "5m"
[checks.push.deadlines.heartbeat]
expect_every = "200ms"
[checks.push.deadlines."a/b"]
grace = "1m""#,
        ),
        &no_plugins(),
    );
    let message = |pointer: &str| at(&errors, pointer).message.clone();
    assert!(
        message("/checks/0/push/deadlines/invoices").contains("push.assets"),
        "{errors}"
    );
    assert!(
        message("/checks/0/push/deadlines/heartbeat/expect_every").contains("1s"),
        "{errors}"
    );
    assert!(
        message("/checks/0/push/deadlines/a~1b").contains("expect_every"),
        "{errors}"
    );
}

#[test]
fn push_mistakes_are_named_with_their_place() {
    let text = format!(
        r#"{PUSH_BASE}
[[checks]]
id = "no-tokens"
system = "app"
connector = "push"
[checks.push]
grace = "1m"
tokens = []

[[checks]]
id = "scheduled"
system = "app"
connector = "snowflake"
schedule = {{ every = "1m" }}
[checks.push]
tokens = [{{ name = "x", sha256 = "{a}" }}]

[[checks]]
id = "twice"
system = "app"
connector = "push"
[checks.push]
expect_every = "500ms"
allowed_origins = ["https://app.example.com/"]
tokens = [{{ name = "y", sha256 = "{a}" }}]

[[checks]]
id = "no-table"
system = "app"
connector = "push"
"#,
        a = sha('a')
    );
    let errors = errors_of(&text, &no_plugins_but("snowflake"));
    assert!(
        at(&errors, "/checks/0/push/tokens")
            .message
            .contains("1 item"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/0/push/grace")
            .message
            .contains("expect_every"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/1/push").message.contains("push"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/2/push/expect_every")
            .message
            .contains("1s"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/2/push/allowed_origins/0")
            .message
            .contains("origin"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/2/push/tokens/0/sha256")
            .message
            .contains("twice"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/3").message.contains("push"),
        "{errors}"
    );
}

/// An OpenLineage check: its jobs, a 5 MiB body by default; mistakes
/// located like a push check's, and a token shared with a push check named.
#[test]
fn an_openlineage_check_is_read_and_its_mistakes_located() {
    let good = format!(
        r#"{PUSH_BASE}
[[checks]]
id = "dbt"
system = "app"
connector = "openlineage"
[checks.openlineage]
jobs = ["shop/*", "shop-*/daily.*"]
expect_every = "1d"
[[checks.openlineage.tokens]]
name = "dbt-ol"
sha256 = "{a}"
"#,
        a = sha('a')
    );
    let config = parse(&good, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    let push = config.check("dbt").unwrap().push.as_deref().unwrap();
    let jobs = push.openlineage.as_ref().unwrap();
    assert!(jobs.maps("shop", "shop.marts.fct_orders"));
    assert!(jobs.maps("shop-eu", "daily.load"));
    assert!(!jobs.maps("other", "shop.x"));
    assert_eq!(push.max_body_bytes, 5 << 20);
    // The heartbeat deadline is a push check's: silence becomes a verdict.
    assert_eq!(
        push.expect.map(|h| h.every),
        Some(Duration::from_secs(86_400))
    );

    let bad = format!(
        r#"{PUSH_BASE}
[[checks]]
id = "no-jobs"
system = "app"
connector = "openlineage"
[checks.openlineage]
jobs = [""]
tokens = [{{ name = "x", sha256 = "{a}" }}]

[[checks]]
id = "native"
system = "app"
connector = "push"
[checks.openlineage]
jobs = ["x/*"]
tokens = [{{ name = "y", sha256 = "{b}" }}]

[[checks]]
id = "no-table"
system = "app"
connector = "openlineage"

[[checks]]
id = "shared"
system = "app"
connector = "openlineage"
[checks.openlineage]
jobs = ["y/*"]
assets = ["a"]
tokens = [{{ name = "z", sha256 = "{a}" }}]
"#,
        a = sha('a'),
        b = sha('b')
    );
    let errors = errors_of(&bad, &no_plugins());
    at(&errors, "/checks/0/openlineage/jobs/0");
    assert!(
        at(&errors, "/checks/1/openlineage")
            .message
            .contains("openlineage"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/2").message.contains("openlineage"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/3/openlineage/tokens/0/sha256")
            .message
            .contains("twice"),
        "{errors}"
    );
    at(&errors, "/checks/3/openlineage/assets");
}

/// An OpenLineage check's held-state budgets: shares of the server's
/// total by default, explicit ones checked against it and each other.
#[test]
fn openlineage_budgets_are_shares_of_the_total_and_checked() {
    let ol = |id: &str, c: char, extra: &str| {
        format!(
            r#"
[[checks]]
id = "{id}"
system = "app"
connector = "openlineage"
[checks.openlineage]
jobs = ["{id}/*"]
{extra}
tokens = [{{ name = "t", sha256 = "{sha}" }}]
"#,
            sha = sha(c)
        )
    };
    let held = |config: &crate::config::Config, id: &str| {
        let push = config.check(id).unwrap().push.as_deref().unwrap();
        let j = push.openlineage.clone().unwrap();
        (j.max_run_held, j.max_held, j.run_idle)
    };
    // Defaults: 1MiB a run, 64MiB a check, a day idle, 256MiB in all.
    let text = format!("{PUSH_BASE}{}", ol("a", 'a', ""));
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.openlineage_max_held, 256 << 20);
    assert_eq!(
        held(&config, "a"),
        (1 << 20, 64 << 20, Duration::from_secs(86_400))
    );
    // A smaller total is shared among the checks without max_held.
    let text = format!(
        "{PUSH_BASE}[server]\nopenlineage_max_held = \"10MiB\"\n{}{}{}",
        ol("a", 'a', "max_held = \"4MiB\"\nrun_idle = \"90s\""),
        ol("b", 'b', ""),
        ol("c", 'c', "max_run_held = \"2KiB\""),
    );
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        held(&config, "a"),
        (1 << 20, 4 << 20, Duration::from_secs(90))
    );
    assert_eq!(held(&config, "b").1, 3 << 20);
    assert_eq!(held(&config, "c").0, 2048);
    // A share under a run's default budget lowers that too.
    let text = format!(
        "{PUSH_BASE}[server]\nopenlineage_max_held = \"512KiB\"\n{}",
        ol("a", 'a', "")
    );
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(held(&config, "a").0, 512 << 10);

    let bad = format!(
        "{PUSH_BASE}[server]\nopenlineage_max_held = \"8MiB\"\n{}{}{}",
        ol("a", 'a', "max_held = \"6MiB\"\nmax_run_held = \"7MiB\""),
        ol("b", 'b', "max_held = \"4MiB\""),
        ol("c", 'c', "max_held = 10\nrun_idle = \"0s\""),
    );
    let errors = errors_of(&bad, &no_plugins());
    assert!(
        at(&errors, "/checks/2/openlineage/max_held")
            .message
            .contains("1KiB"),
        "{errors}"
    );
    assert!(
        at(&errors, "/checks/2/openlineage/run_idle")
            .message
            .contains("1s"),
        "{errors}"
    );
    // c is refused, so a and b are what is left: 10MiB over the total.
    assert!(
        at(&errors, "/server/openlineage_max_held")
            .message
            .contains("add up to"),
        "{errors}"
    );
    let bad = format!(
        "{PUSH_BASE}{}",
        ol("a", 'a', "max_held = \"6MiB\"\nmax_run_held = \"7MiB\""),
    );
    let errors = errors_of(&bad, &no_plugins());
    assert!(
        at(&errors, "/checks/0/openlineage/max_run_held")
            .message
            .contains("max_held"),
        "{errors}"
    );
}

const ALERTS_BASE: &str = r#"
[[tenants]]
id = "acme"
name = "Acme"
"#;

/// A secret file holding `text`, for alert channels; kept while the test runs.
fn secret_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn alert_channels_and_routes_load_with_their_secrets_read_and_hidden() {
    let secret = secret_file("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n");
    let text = format!(
        r#"{ALERTS_BASE}
[alerts]
link_base = "https://t.example.com"

[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.com/x"
secret = {{ file = "{}" }}

[[alerts.routes]]
name = "acme"
tenant = "acme"
channels = ["hook"]
min_status = "UNHEALTHY"
group_by = ["check"]
group_wait = "0s"
repeat_every = "4h"
"#,
        secret.path().display()
    );
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    let channel = &config.alerts.channels[0];
    let ChannelKind::Webhook { secrets, .. } = &channel.kind else {
        panic!("{channel:?}");
    };
    assert_eq!(
        secrets[0].expose(),
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    );
    assert!(
        !format!("{config:?}").contains("C2FVsBQ"),
        "Debug shows no secret"
    );
    let route = &config.alerts.routes[0];
    assert_eq!(route.min_status, crate::health::Status::Unhealthy);
    assert_eq!(route.group_wait, Duration::ZERO);
    assert_eq!(route.group_interval, Duration::from_secs(300));
    assert_eq!(route.repeat_every, Some(Duration::from_secs(4 * 3600)));
    assert!(route.send_resolved);
}

#[test]
fn bad_alert_channels_and_routes_are_located_errors() {
    let text = format!(
        r#"{ALERTS_BASE}
[[alerts.channels]]
name = "teams"
kind = "teams"

[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "ftp://hooks.example.com"
secret = {{ env = "TRIBUTARY_TEST_NO_SUCH_VARIABLE" }}

[[alerts.channels]]
name = "chat"
kind = "slack"
webhook_url = {{ env = "TRIBUTARY_TEST_NO_SUCH_VARIABLE" }}

[[alerts.routes]]
name = "r"
tenant = "initech"
channels = ["nowhere"]
group_wait = "soon"
group_by = ["planet"]
"#
    );
    let errors = errors_of(&text, &no_plugins());
    assert!(
        at(&errors, "/alerts/channels/0/kind")
            .message
            .contains("unknown channel kind")
    );
    assert!(
        at(&errors, "/alerts/channels/1/url")
            .message
            .contains("http")
    );
    assert!(
        at(&errors, "/alerts/channels/2/webhook_url")
            .message
            .contains("TRIBUTARY_TEST_NO_SUCH_VARIABLE is not set")
    );
    assert!(
        at(&errors, "/alerts/routes/0/tenant")
            .message
            .contains("unknown tenant")
    );
    assert!(
        at(&errors, "/alerts/routes/0/channels/0")
            .message
            .contains("unknown channel")
    );
    at(&errors, "/alerts/routes/0/group_wait");
    at(&errors, "/alerts/routes/0/group_by/0");
    let line = at(&errors, "/alerts/channels/0/kind").line;
    assert_eq!(line, 8, "{errors}");
}

#[test]
fn maintenance_windows_are_read_one_off_and_recurring() {
    let text = r#"
[[maintenance]]
name = "upgrade"
reason = "warehouse upgrade"
start = 2026-03-01T22:00:00Z
end = "2026-03-02T02:00:00+01:00"
system = "warehouse"

[[maintenance]]
name = "nightly"
reason = "bulk load"
cron = "0 1 * * *"
duration = "90m"
timezone = "Europe/Berlin"
tenant = "acme"
check = "wh-*"
"#;
    let config = parse(text, Path::new("m.toml"), &no_plugins()).unwrap();
    let [once, nightly] = &config.maintenance[..] else {
        panic!("{:?}", config.maintenance)
    };
    assert_eq!(once.scope.system.as_deref(), Some("warehouse"));
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T22:00:00Z").unwrap();
    let end = chrono::DateTime::parse_from_rfc3339("2026-03-02T01:00:00Z").unwrap();
    assert_eq!(
        once.when,
        crate::health::When::Once {
            start: start.into(),
            end: end.into()
        }
    );
    let crate::health::When::Recurring(r) = &nightly.when else {
        panic!("{nightly:?}")
    };
    assert_eq!(r.zone.name(), "Europe/Berlin");
    assert_eq!(r.duration, Duration::from_secs(90 * 60));
    assert_eq!(nightly.scope.check.as_deref(), Some("wh-*"));
}

#[test]
fn every_mistake_in_a_maintenance_window_is_located() {
    let text = r#"
[[maintenance]]
name = "a"
reason = "r"
cron = "0 25 * * *"
duration = "1h"
timezone = "Mars/Olympus_Mons"
system = "warehouse"

[[maintenance]]
name = "a"
reason = "r"
start = "2026-03-02T00:00:00Z"
end = "2026-03-01T00:00:00Z"
system = "warehouse"

[[maintenance]]
name = "b"
reason = "r"
start = "yesterday"
end = "2026-03-01T00:00:00Z"

[[maintenance]]
name = "c"
reason = "r"
start = "2026-03-01T00:00:00Z"
cron = "0 1 * * *"
system = "*"
"#;
    let errors = errors_of(text, &no_plugins());
    assert!(at(&errors, "/maintenance/0/cron").message.contains("0 25"));
    let zone = at(&errors, "/maintenance/0/timezone");
    assert!(zone.message.contains("Mars/Olympus_Mons"), "{zone}");
    assert_eq!(zone.line, 7);
    assert!(
        at(&errors, "/maintenance/1/name")
            .message
            .contains("first defined at line 3")
    );
    assert!(
        at(&errors, "/maintenance/1/end")
            .message
            .contains("after the start")
    );
    assert!(
        at(&errors, "/maintenance/2/start")
            .message
            .contains("RFC 3339")
    );
    assert!(
        at(&errors, "/maintenance/2")
            .message
            .contains("at least one of")
    );
    assert!(
        at(&errors, "/maintenance/3")
            .message
            .contains("`start` and `end`")
    );
}

#[test]
fn owners_and_labels_load_on_entities_and_routes() {
    let secret = secret_file("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n");
    let text = format!(
        r#"
[[tenants]]
id = "acme"
name = "Acme"
owner = "data@acme.example"
labels = {{ team = "data-eng", tier = "1" }}

[[alerts.channels]]
name = "chat"
kind = "webhook"
url = "https://hooks.example.com/x"
secret = {{ file = "{}" }}

[[alerts.routes]]
name = "data"
owner = "*@acme.example"
labels = {{ team = "data-*" }}
channels = ["chat"]
"#,
        secret.path().display()
    );
    let config = parse(&text, Path::new("t.toml"), &no_plugins()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.tenants[0].owner.as_deref(),
        Some("data@acme.example")
    );
    assert_eq!(config.tenants[0].labels["tier"], "1");
    let route = &config.alerts.routes[0];
    assert_eq!(route.owner.as_deref(), Some("*@acme.example"));
    assert_eq!(route.labels["team"], "data-*");
}

#[test]
fn bad_owners_and_labels_are_located_errors() {
    let text = r#"
[[tenants]]
id = "acme"
name = "Acme"
owner = ""

[[systems]]
id = "wh"
name = "Warehouse"
kind = "snowflake"
labels = { "Team Name" = "x" }

[[flows]]
id = "f"
tenant = "acme"
name = "F"
upstream = "wh"
downstream = ["wh2"]
labels = { tier = 1 }
"#;
    let errors = errors_of(text, &no_plugins());
    at(&errors, "/tenants/0/owner");
    at(&errors, "/systems/0/labels");
    at(&errors, "/flows/0/labels/tier");
    assert_eq!(at(&errors, "/tenants/0/owner").line, 5, "{errors}");
}

#[test]
fn slos_are_read_with_their_defaults_stated() {
    let text = r#"
[[slos]]
name = "freshness-analytics"
check = "warehouse"
asset = "ANALYTICS.*"
indicator = "freshness"
deadline = "06:00"
window = "20d"
target = "95%"
timezone = "Europe/Berlin"

[[slos]]
name = "availability-hourly"
tenant = "acme"
indicator = "availability"
slice = "1h"
window = "month"
target = 0.999
no_data = "excluded"
maintenance = "good"
severity = "UNHEALTHY"
budget_alerts = ["25%", 0.75, 0]

[[slos]]
name = "flow-healthy"
flow = "*"
level = "flow"
indicator = "healthy"
budgeting = "occurrences"
target = 0.9

[[slos]]
name = "rows"
asset = "*"
indicator = "completeness"
max_drop = "10%"
target = 0.95

[[slos]]
name = "fresh-hours"
asset = "*"
indicator = "freshness"
max_age = "26h"
slice = "1h"
window = "48h"
burn_alerts = false
target = 0.95
"#;
    use crate::slo::{
        Budgeting, Counts, FreshnessGoal, Indicator, Level, SliceLen, Window as SloWindow,
    };
    let config = parse(text, Path::new("s.toml"), &no_plugins()).unwrap();
    let [fresh, avail, flow, rows, hours] = &config.slos[..] else {
        panic!("{:?}", config.slos)
    };
    assert_eq!(fresh.name, "freshness-analytics");
    assert_eq!(fresh.scope.asset.as_deref(), Some("ANALYTICS.*"));
    assert_eq!(fresh.level, Level::Asset);
    let six = chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap();
    assert_eq!(
        fresh.indicator,
        Indicator::Freshness(FreshnessGoal::Deadline(six))
    );
    assert_eq!(fresh.calendar.slice, SliceLen::Day);
    assert_eq!(fresh.calendar.zone.name(), "Europe/Berlin");
    assert_eq!(fresh.window, SloWindow::Rolling { slices: 20 });
    assert!((fresh.counting.target - 0.95).abs() < 1e-12);
    // The defaults README states.
    assert_eq!(fresh.counting.budgeting, Budgeting::Timeslices);
    assert_eq!(fresh.counting.no_data, Counts::Bad);
    assert_eq!(fresh.counting.excluded, Counts::Excluded);
    assert_eq!(fresh.severity, crate::health::Status::Warning);
    assert_eq!(fresh.budget_alerts, vec![0.5, 0.0]);
    assert!(!fresh.burn_alerts, "day slices have no burn alerts");

    assert_eq!(avail.calendar.slice, SliceLen::Hour);
    assert_eq!(avail.calendar.zone, chrono_tz::UTC);
    assert_eq!(avail.window, SloWindow::CalendarMonth);
    assert_eq!(avail.counting.no_data, Counts::Excluded);
    assert_eq!(avail.counting.excluded, Counts::Good);
    assert_eq!(avail.severity, crate::health::Status::Unhealthy);
    assert_eq!(avail.budget_alerts, vec![0.75, 0.25, 0.0], "highest first");
    assert!(avail.burn_alerts, "hour slices have burn alerts by default");

    assert_eq!(flow.level, Level::Flow);
    assert_eq!(flow.counting.budgeting, Budgeting::Occurrences);
    assert_eq!(
        flow.window,
        SloWindow::Rolling { slices: 28 },
        "28d by default"
    );

    assert_eq!(rows.indicator, Indicator::Completeness { max_drop: 0.1 });
    assert_eq!(
        hours.indicator,
        Indicator::Freshness(FreshnessGoal::MaxAge(Duration::from_secs(26 * 3600)))
    );
    assert_eq!(hours.window, SloWindow::Rolling { slices: 48 });
    assert!(!hours.burn_alerts);
}

#[test]
fn every_mistake_in_an_slo_is_located() {
    let text = r#"
[[slos]]
name = "a"
indicator = "freshness"
target = 1

[[slos]]
name = "a"
asset = "*"
indicator = "availability"
level = "check"
max_drop = 0.1
target = "95"
window = "36h"
timezone = "Mars/Olympus_Mons"

[[slos]]
name = "c"
asset = "*"
indicator = "freshness"
deadline = "6 o'clock"
slice = "1h"
target = 0.95
burn_alerts = true

[[slos]]
name = "d"
asset = "*"
indicator = "completeness"
max_drop = "120%"
target = 0.95
window = "1000d"
slice = "1d"
burn_alerts = true
budget_alerts = ["150%"]

[[slos]]
name = "Bad Name"
asset = "*"
indicator = "freshness"
deadline = "06:00"
max_age = "1h"
target = 0.95
"#;
    let errors = errors_of(text, &no_plugins());
    assert!(at(&errors, "/slos/0").message.contains("at least one of"));
    assert!(at(&errors, "/slos/0/target").message.contains("below 1"));
    assert!(
        at(&errors, "/slos/1/name")
            .message
            .contains("first defined at line 3")
    );
    assert!(
        at(&errors, "/slos/1/level")
            .message
            .contains("only `healthy`")
    );
    assert!(
        at(&errors, "/slos/1/max_drop")
            .message
            .contains("availability")
    );
    at(&errors, "/slos/1/target");
    assert!(
        at(&errors, "/slos/1/window")
            .message
            .contains("multiple of a day")
    );
    let zone = at(&errors, "/slos/1/timezone");
    assert_eq!(zone.line, 15, "{errors}");
    assert!(at(&errors, "/slos/2/deadline").message.contains("HH:MM"));
    assert!(
        at(&errors, "/slos/3/max_drop")
            .message
            .contains("less than 1")
    );
    assert!(
        at(&errors, "/slos/3/window")
            .message
            .contains("at most 366d")
    );
    assert!(
        at(&errors, "/slos/3/burn_alerts")
            .message
            .contains("hour slices")
    );
    assert!(
        at(&errors, "/slos/3/budget_alerts/0")
            .message
            .contains("between")
    );
    at(&errors, "/slos/4/name");
    assert!(at(&errors, "/slos/4").message.contains("not both"));
}

#[test]
fn a_public_tenant_is_read_and_a_wrong_public_points_at_its_place() {
    let text = "[[tenants]]\nid = \"acme\"\nname = \"Acme\"\npublic = true\n\n[[tenants]]\nid = \"globex\"\nname = \"Globex\"\n";
    let config = parse(text, Path::new("tributary.toml"), &no_plugins()).unwrap();
    let public: Vec<bool> = config.tenants.iter().map(|t| t.public).collect();
    assert_eq!(public, [true, false]);
    let text = "[[tenants]]\nid = \"acme\"\nname = \"Acme\"\npublic = \"yes\"\n";
    let errors = errors_of(text, &no_plugins());
    let e = at(&errors, "/tenants/0/public");
    assert_eq!(e.line, 4, "{e}");
}

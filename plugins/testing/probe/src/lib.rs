//! # probe: a TEST-ONLY connector
//!
//! Never deploy it. It misbehaves on demand so the daemon's tests can prove
//! the sandbox holds (a loop is stopped, a huge allocation or a stack
//! overflow traps, files and environment are out of reach, a denied host is
//! reported), and its `ok` mode is the cheapest possible run, for benchmarks.
//!
//! Config: `{"mode": "<mode>", ...parameters}`; `collect` does:
//!
//! | mode | behaviour | parameters (default) |
//! | --- | --- | --- |
//! | `ok` | one observation `probe`/`probe`, received = 1 | |
//! | `loop` | loops forever | |
//! | `alloc` | allocates and touches `bytes` | `bytes` (1 GiB) |
//! | `recurse` | recurses until the stack overflows: 1 KiB frames overflow the shadow stack in linear memory (out-of-bounds trap); with `small_frames` the engine's call stack (stack-exhausted trap) | `small_frames` (false) |
//! | `http` | GETs `url` with the SDK client; the SDK's error on failure; with `echo`, the body (as text) and `tenant` are reported as metadata `body`, `tenant`, and the asset is named after `tenant` | `url` (required), `parse_json` (false), `timeout_ms`, `max_response_bytes`, `token` (bearer), `user` + `password` (basic), `echo` (false), `tenant` |
//! | `fs-env` | reads a file and the environment, reports what it saw | `path` (`/etc/passwd`), `var` (`HOME`) |
//! | `panic` | panics | |
//! | `big-report` | `count` observations with `pad_bytes` of metadata each | `count` (100), `pad_bytes` (100000) |
//! | `ids` | emits `count` ids `id-0`.. for asset `probe`, `batch` per call | `count` (100000), `batch` (10000) |
//! | `fail` | returns an error | `class` (`system`), `message` (`probe failed on purpose`), `repeat` (1: the message that many times) |
//! | `log` | one log line per level (`message` as a field), one stdout and one stderr line | `message` |
//! | `clock` | reports `context.now` and the WASI wall clock as metadata `context_now`, `wall_clock` | |
//! | `report` | returns the report given as JSON (crafted data the SDK's builders would not make: duplicates, NUL, huge numbers, out-of-range times) | `report` (inline) or `report_file` (a path the check's `read_dir` grants, read on each run); format below |
//!
//! The `report` mode's JSON mirrors the contract's records, lists as lists so
//! duplicates survive: `{"observations": [{"asset", "kind", "expected",
//! "received", "errored", "extras": [[name, n]], "freshness": [seconds,
//! nanos], "last_received": {"id", "at": [s, n]}, "native": {"level":
//! "ok|warn|error|unknown", "label", "message"}, "errors": [{"kind",
//! "message", "document_id", "log_link", "at": [s, n]}], "totals": [[kind,
//! n]], "metadata": [[key, value]]}]}`; everything but `asset` is optional.
//!
//! `test-connection` succeeds, except in mode `fail` (same error as
//! `collect`). `discover` returns the asset `probe`. `resync` and `delete`
//! are declared and succeed, reporting how many ids they were given.

// Plugins only exist as WebAssembly components. `plugins/.cargo/config.toml`
// selects wasm32-wasip2, but cargo reads that file only when run from inside
// `plugins/`; run from elsewhere (`--manifest-path plugins/Cargo.toml`), it
// builds for the host, where this crate compiles to nothing.
#![cfg(target_arch = "wasm32")]

use std::hint::black_box;

use plugin_sdk::prelude::*;
use plugin_sdk::{Counts, ErrorTotal, LastReceived, MetadataEntry, NamedCount, ids, log};
use serde::Deserialize;
use serde_json::json;

const ASSET: &str = "probe";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
struct Config {
    #[serde(default = "default_mode")]
    mode: String,
    /// `alloc`.
    bytes: Option<u64>,
    /// `http`.
    url: Option<String>,
    #[serde(default)]
    parse_json: bool,
    timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    /// `fs-env`.
    path: Option<String>,
    var: Option<String>,
    /// `big-report`, `ids`.
    count: Option<u64>,
    pad_bytes: Option<usize>,
    /// `recurse`.
    #[serde(default)]
    small_frames: bool,
    batch: Option<usize>,
    /// `fail`.
    class: Option<String>,
    message: Option<String>,
    repeat: Option<usize>,
    /// `http` credentials and echo.
    token: Option<String>,
    user: Option<String>,
    password: Option<String>,
    #[serde(default)]
    echo: bool,
    tenant: Option<String>,
    /// `report`.
    report: Option<Crafted>,
    report_file: Option<String>,
}

/// A report as the `report` mode takes it (see the module doc).
#[derive(Debug, Deserialize)]
struct Crafted {
    observations: Vec<CraftedObservation>,
}

#[derive(Debug, Deserialize)]
struct CraftedObservation {
    asset: String,
    #[serde(default = "default_kind")]
    kind: String,
    expected: Option<u64>,
    received: Option<u64>,
    errored: Option<u64>,
    #[serde(default)]
    extras: Vec<(String, u64)>,
    freshness: Option<(i64, u32)>,
    last_received: Option<CraftedLast>,
    native: Option<CraftedNative>,
    #[serde(default)]
    errors: Vec<CraftedError>,
    #[serde(default)]
    totals: Vec<(String, u64)>,
    #[serde(default)]
    metadata: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct CraftedLast {
    id: String,
    at: Option<(i64, u32)>,
}

#[derive(Debug, Deserialize)]
struct CraftedNative {
    level: String,
    label: String,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CraftedError {
    kind: String,
    message: String,
    document_id: Option<String>,
    log_link: Option<String>,
    at: Option<(i64, u32)>,
}

fn default_kind() -> String {
    "probe".to_string()
}

fn stamp((seconds, nanos): (i64, u32)) -> Timestamp {
    Timestamp { seconds, nanos }
}

/// `report`: the crafted report, field by field, without the SDK's checks.
fn crafted(cfg: Config) -> Result<Report, ConnectorError> {
    let crafted = match (cfg.report, cfg.report_file) {
        (Some(report), _) => report,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|err| ConnectorError::config(format_args!("cannot read {path}: {err}")))?;
            serde_json::from_str(&text)
                .map_err(|err| ConnectorError::config(format_args!("{path}: {err}")))?
        }
        (None, None) => {
            return Err(ConnectorError::config(
                "mode report needs \"report\" or \"report_file\"",
            ));
        }
    };
    let observations = crafted
        .observations
        .into_iter()
        .map(|o| Observation {
            asset: o.asset,
            kind: o.kind,
            counts: Counts {
                expected: o.expected,
                received: o.received,
                errored: o.errored,
                extras: o
                    .extras
                    .into_iter()
                    .map(|(name, value)| NamedCount { name, value })
                    .collect(),
            },
            freshness: o.freshness.map(stamp),
            last_received: o.last_received.map(|l| LastReceived {
                id: l.id,
                at: l.at.map(stamp),
            }),
            native_status: o.native.map(|n| NativeStatus {
                level: match n.level.as_str() {
                    "ok" => StatusLevel::Ok,
                    "warn" => StatusLevel::Warn,
                    "error" => StatusLevel::Error,
                    _ => StatusLevel::Unknown,
                },
                label: n.label,
                message: n.message,
            }),
            errors: o
                .errors
                .into_iter()
                .map(|e| AssetError {
                    kind: e.kind,
                    message: e.message,
                    document_id: e.document_id,
                    log_link: e.log_link,
                    at: e.at.map(stamp),
                })
                .collect(),
            error_totals: o
                .totals
                .into_iter()
                .map(|(kind, count)| ErrorTotal { kind, count })
                .collect(),
            metadata: o
                .metadata
                .into_iter()
                .map(|(key, value)| MetadataEntry { key, value })
                .collect(),
        })
        .collect();
    Ok(Report { observations })
}

fn default_mode() -> String {
    "ok".to_string()
}

fn ok_report() -> Report {
    Report::from(Observation::new(ASSET, "probe").received(1))
}

fn fail(cfg: &Config) -> ConnectorError {
    let class = cfg.class.as_deref().unwrap_or("system");
    let message = cfg
        .message
        .as_deref()
        .unwrap_or("probe failed on purpose")
        .repeat(cfg.repeat.unwrap_or(1));
    match ErrorClass::parse(class) {
        Some(class) => ConnectorError::new(class, message),
        None => ConnectorError::config(format_args!(
            "unknown error class {class:?} (config, auth, transient or system)"
        )),
    }
}

/// A loop the optimiser cannot remove: every iteration goes through
/// `black_box`.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn allocate(bytes: u64) -> Report {
    let size = usize::try_from(bytes).unwrap_or(usize::MAX);
    // `vec!` writes every byte, so the memory is really touched.
    let buffer = black_box(vec![1u8; size]);
    let sum: u64 = buffer.iter().step_by(4096).map(|&b| u64::from(b)).sum();
    Report::from(
        Observation::new(ASSET, "probe")
            .received(1)
            .extra("bytes", buffer.len() as u64)
            .extra("touched_pages", black_box(sum)),
    )
}

/// Recursion that is neither a tail call nor inlinable: each frame keeps a
/// 1 KiB array alive across the call and uses it after. The array lives on
/// the shadow stack in linear memory, which overflows first (below address 0
/// with Rust's stack-first layout): an out-of-bounds memory access trap.
#[inline(never)]
fn recurse_big(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[(depth % 1024) as usize] = depth as u8;
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let below = black_box(recurse_big(black_box(depth + 1)));
    below.wrapping_add(u64::from(frame[(below % 1024) as usize]))
}

/// Recursion with no shadow-stack frame: exhausts the engine's own call
/// stack instead (wasmtime: "call stack exhausted").
#[inline(never)]
fn recurse_small(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    // Passing the result through `black_box` keeps the call out of tail
    // position, so LLVM cannot turn the recursion into a loop.
    black_box(recurse_small(black_box(depth + 1))).wrapping_add(1)
}

async fn http(cfg: &Config) -> Result<Report, ConnectorError> {
    let url = cfg
        .url
        .as_deref()
        .ok_or_else(|| ConnectorError::config("mode http needs a \"url\""))?;
    let mut client = Client::new();
    if let Some(ms) = cfg.timeout_ms {
        client = client.timeout(std::time::Duration::from_millis(ms));
    }
    if let Some(max) = cfg.max_response_bytes {
        client = client.max_response_bytes(max);
    }
    let mut request = client.get(url);
    if let Some(token) = &cfg.token {
        request = request.bearer_auth(token);
    }
    if let (Some(user), Some(password)) = (&cfg.user, &cfg.password) {
        request = request.basic_auth(user, password);
    }
    let response = request.send().await?;
    let received = if cfg.parse_json {
        match response.json::<serde_json::Value>()? {
            serde_json::Value::Array(items) => items.len() as u64,
            _ => 1,
        }
    } else {
        1
    };
    let tenant = cfg.tenant.as_deref().unwrap_or("");
    let asset = if cfg.echo {
        format!("{ASSET}/{tenant}")
    } else {
        ASSET.to_string()
    };
    let mut observation = Observation::new(asset, "probe")
        .received(received)
        .extra("bytes", response.bytes().len() as u64)
        .metadata("status", response.status());
    if cfg.echo {
        observation = observation
            .metadata("body", String::from_utf8_lossy(response.bytes()))
            .metadata("tenant", tenant);
    }
    Ok(Report::from(observation))
}

fn fs_env(cfg: &Config) -> Report {
    let path = cfg.path.as_deref().unwrap_or("/etc/passwd");
    let var = cfg.var.as_deref().unwrap_or("HOME");
    let file = match std::fs::read_to_string(path) {
        Ok(text) => format!("read {} bytes", text.len()),
        Err(err) => format!("denied: {err}"),
    };
    let env = std::env::var(var).unwrap_or_else(|_| "absent".to_string());
    let env_count = std::env::vars_os().count();
    Report::from(
        Observation::new(ASSET, "probe")
            .received(1)
            .metadata("file", file)
            .metadata("env", env)
            .metadata("env_count", env_count),
    )
}

fn big_report(cfg: &Config) -> Report {
    let count = cfg.count.unwrap_or(100);
    let pad = "x".repeat(cfg.pad_bytes.unwrap_or(100_000));
    Report::builder()
        .observations((0..count).map(|i| {
            Observation::new(format!("probe-{i}"), "probe")
                .received(1)
                .metadata("pad", &pad)
        }))
        .build()
}

fn emit_ids(cfg: &Config) -> Result<Report, ConnectorError> {
    let count = cfg.count.unwrap_or(100_000);
    let batch_size = cfg.batch.unwrap_or(10_000).max(1) as u64;
    let mut start = 0;
    while start < count {
        let end = (start + batch_size).min(count);
        let batch: Vec<String> = (start..end).map(|i| format!("id-{i}")).collect();
        ids::emit(ASSET, &batch)?;
        start = end;
    }
    Ok(Report::from(
        Observation::new(ASSET, "probe").received(count),
    ))
}

/// `log`: one line per level (with `message`, if given, as a field), then one
/// line on stdout and one on stderr, so tests can see where each goes and that
/// secrets in any of them are masked.
fn write_logs(cfg: &Config) -> Report {
    let message = cfg.message.as_deref().unwrap_or("");
    log::trace(
        "probe log line",
        &[("level", &"trace"), ("message", &message)],
    );
    log::debug(
        "probe log line",
        &[("level", &"debug"), ("message", &message)],
    );
    log::info(
        "probe log line",
        &[("level", &"info"), ("message", &message)],
    );
    log::warn(
        "probe log line",
        &[("level", &"warn"), ("message", &message)],
    );
    log::error(
        "probe log line",
        &[("level", &"error"), ("message", &message)],
    );
    println!("probe stdout line {message}");
    eprintln!("probe stderr line {message}");
    ok_report()
}

struct Probe;

impl Connector for Probe {
    type Config = Config;

    fn describe() -> Descriptor {
        Descriptor::new(
            "probe",
            env!("CARGO_PKG_VERSION"),
            "TEST ONLY: misbehaves on demand to prove the sandbox holds",
        )
        .config_schema(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "mode": {
                    "enum": ["ok", "loop", "alloc", "recurse", "http", "fs-env", "panic",
                             "big-report", "ids", "fail", "log", "clock", "report"]
                },
                "token": { "type": "string", "pattern": "^tok-" },
                "user": { "type": "string" },
                "password": { "type": "string" },
                "echo": { "type": "boolean" },
                "tenant": { "type": "string" },
                "report": { "type": "object" },
                "report_file": { "type": "string" },
                "bytes": { "type": "integer", "minimum": 0 },
                "url": { "type": "string" },
                "parse_json": { "type": "boolean" },
                "small_frames": { "type": "boolean" },
                "timeout_ms": { "type": "integer", "minimum": 0 },
                "max_response_bytes": { "type": "integer", "minimum": 0 },
                "path": { "type": "string" },
                "var": { "type": "string" },
                "count": { "type": "integer", "minimum": 0 },
                "pad_bytes": { "type": "integer", "minimum": 0 },
                "batch": { "type": "integer", "minimum": 1 },
                "class": { "enum": ["config", "auth", "transient", "system"] },
                "repeat": { "type": "integer", "minimum": 1 },
                "message": { "type": "string" }
            }
        }))
        .capabilities(Capabilities::RESYNC | Capabilities::DELETE)
    }

    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        match cfg.mode.as_str() {
            "fail" => Err(fail(&cfg)),
            _ => Ok(()),
        }
    }

    async fn discover(_cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        Ok(vec![AssetDescriptor::new(ASSET, "probe")])
    }

    async fn collect(cfg: Config, ctx: RunContext) -> Result<Report, ConnectorError> {
        match cfg.mode.as_str() {
            "ok" => Ok(ok_report()),
            "loop" => spin(),
            "alloc" => Ok(allocate(cfg.bytes.unwrap_or(1 << 30))),
            "recurse" => {
                let depth = if cfg.small_frames {
                    recurse_small(0)
                } else {
                    recurse_big(0)
                };
                Ok(Report::from(
                    Observation::new(ASSET, "probe").received(depth),
                ))
            }
            "http" => http(&cfg).await,
            "fs-env" => Ok(fs_env(&cfg)),
            "panic" => panic!("probe panicked on purpose"),
            "big-report" => Ok(big_report(&cfg)),
            "ids" => emit_ids(&cfg),
            "fail" => Err(fail(&cfg)),
            "log" => Ok(write_logs(&cfg)),
            "clock" => Ok(Report::from(
                Observation::new(ASSET, "probe")
                    .metadata("context_now", ctx.now.to_rfc3339())
                    .metadata("wall_clock", Timestamp::now().to_rfc3339()),
            )),
            "report" => crafted(cfg),
            other => Err(ConnectorError::config(format_args!(
                "unknown mode {other:?}"
            ))),
        }
    }

    async fn resync(
        _cfg: Config,
        _asset: String,
        ids: Vec<String>,
    ) -> Result<ActionOutcome, ConnectorError> {
        Ok(ActionOutcome::new()
            .affected(ids.len() as u64)
            .message("probe resync"))
    }

    async fn delete(
        _cfg: Config,
        _asset: String,
        scope: DeleteScope,
    ) -> Result<ActionOutcome, ConnectorError> {
        let outcome = ActionOutcome::new();
        Ok(match scope {
            DeleteScope::Asset => outcome.message("probe delete: asset"),
            DeleteScope::Tenant(tenant) => {
                outcome.message(format!("probe delete: tenant {tenant}"))
            }
            DeleteScope::Ids(ids) => outcome
                .affected(ids.len() as u64)
                .message("probe delete: ids"),
        })
    }
}

plugin_sdk::export_connector!(Probe);

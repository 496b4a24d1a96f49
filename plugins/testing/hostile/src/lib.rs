//! TEST ONLY: a hostile connector, built straight from the contract's WIT with
//! wit-bindgen and from raw WASI 0.2 calls (`wasip2`), not with `plugin-sdk`, so
//! it can do what the SDK never would: pass lists whose strings all alias one
//! buffer, create handles by the million, build megabyte headers, send a body
//! that never ends, hold connections open. The daemon must fail its run with
//! the limit it hit and go on serving everything else.
//!
//! `collect` reads `{"mode": ..., ...}` from its config:
//!
//! | mode | does | keys |
//! | --- | --- | --- |
//! | `ok` | reports one healthy asset, `hostile` unless named | `asset` |
//! | `alias-ids` | one `emit-ids` call: `count` ids, all the same `length`-byte string | `length`, `count` |
//! | `ids` | streams `count` distinct ids of `length` bytes in batches of `batch`, spread over `assets` assets | `length`, `count`, `batch`, `assets` |
//! | `log` | `lines` log calls, each with `fields` fields aliasing one `value_length`-byte value, and `message` | `lines`, `fields`, `value_length`, `message` |
//! | `handles` | creates `count` header sets and keeps them | `count` |
//! | `header` | builds a header set of `count` entries of `length` bytes, from a list or by `append` | `count`, `length`, `append` |
//! | `post` | POSTs an endless body to `authority` | `authority` |
//! | `hold` | GETs `authority` `count` times, keeping every response unread | `authority`, `count` |
//! | `alloc` | grows its memory by `bytes` | `bytes` |
//! | `poll` | waits on one hour-long pollable listed `count` times | `count` |
//! | `alias-report` | returns `count` observations whose asset names all alias one `length`-byte string | `length`, `count` |
//!
//! It is also the Rust member of the sandbox suite every language runs
//! (`plugin-tests/src/hostile.rs`), with the modes the Python and JavaScript
//! hostile plugins share:
//!
//! | mode | does | keys |
//! | --- | --- | --- |
//! | `raise` | panics with `hostile raised on purpose`, in every export | |
//! | `loop` | spins forever | |
//! | `http` | GETs `url` (`http://authority/path`, a JSON array), reports its length | `url` |
//! | `report` | returns `count` observations named by distinct `length`-byte strings | `length`, `count` |
//! | `alloc` | (above) | |

// Plugins only exist as WebAssembly components; see contract-v2 for why.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../plugin-sdk/wit",
    world: "connector",
    // Borrowed list elements (`&[&str]`) are what lets one buffer stand for
    // every id of a list.
    ownership: Borrowing { duplicate_if_necessary: false },
});

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use exports::tributary::connector::plugin::Guest;
use serde_json::Value;
use tributary::connector::host::{emit_ids, log};
use tributary::connector::types::{
    ActionOutcome, AssetDescriptor, Capabilities, ConnectorError, Counts, DeleteScope, Descriptor,
    ErrorClass, LogLevel, Observation, Report, RunContext,
};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingRequest, Scheme,
};

struct Hostile;

/// The system allocator, except that it stops freeing once `alias-report` has
/// started: the host frees each returned string after the call, and those
/// strings share one buffer.
struct Allocator;

static LEAK: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !LEAK.load(Ordering::Relaxed) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }
}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

fn fail(message: impl Into<String>) -> ConnectorError {
    ConnectorError {
        class: ErrorClass::System,
        message: message.into(),
        retry_after_ms: None,
    }
}

fn num(config: &Value, key: &str, default: u64) -> usize {
    config[key].as_u64().unwrap_or(default) as usize
}

fn healthy() -> Report {
    Report {
        observations: vec![observation("hostile".into())],
    }
}

fn observation(asset: String) -> Observation {
    Observation {
        asset,
        kind: "probe".into(),
        counts: Counts {
            expected: None,
            received: Some(1),
            errored: None,
            extras: Vec::new(),
        },
        freshness: None,
        last_received: None,
        native_status: None,
        errors: Vec::new(),
        error_totals: Vec::new(),
        metadata: Vec::new(),
    }
}

fn alias_report(config: &Value) -> Result<Report, ConnectorError> {
    let length = num(config, "length", 32 << 20);
    let mut buffer = std::mem::ManuallyDrop::new("x".repeat(length));
    let ptr = buffer.as_mut_ptr();
    LEAK.store(true, Ordering::Relaxed);
    let observations = (0..num(config, "count", 50_000))
        // SAFETY: none of these strings is ever written to or freed (the
        // allocator leaks from here on); they only alias for reading.
        .map(|_| observation(unsafe { String::from_raw_parts(ptr, length, length) }))
        .collect();
    Ok(Report { observations })
}

fn alias_ids(config: &Value) -> Result<Report, ConnectorError> {
    let id = "x".repeat(num(config, "length", 32 << 20));
    let ids = vec![id.as_str(); num(config, "count", 100_000)];
    emit_ids("hostile", &ids)?;
    Ok(healthy())
}

fn stream_ids(config: &Value) -> Result<Report, ConnectorError> {
    let (length, count) = (num(config, "length", 16), num(config, "count", 1_000));
    let (batch, assets) = (
        num(config, "batch", 10_000).max(1),
        num(config, "assets", 1),
    );
    let mut sent = 0;
    let mut asset = 0;
    while sent < count {
        let n = batch.min(count - sent);
        let ids: Vec<String> = (sent..sent + n)
            .map(|i| {
                let i = i.to_string();
                "0".repeat(length.saturating_sub(i.len())) + &i
            })
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        emit_ids(&format!("asset-{asset}"), &refs)?;
        sent += n;
        asset = (asset + 1) % assets.max(1);
    }
    Ok(healthy())
}

fn flood_log(config: &Value) -> Result<Report, ConnectorError> {
    let value = "v".repeat(num(config, "value_length", 16));
    let fields = vec![("key", value.as_str()); num(config, "fields", 0)];
    let message = config["message"].as_str().unwrap_or("hostile says hello");
    for _ in 0..num(config, "lines", 1) {
        log(LogLevel::Info, message, &fields);
    }
    Ok(healthy())
}

fn handles(config: &Value) -> Result<Report, ConnectorError> {
    let held: Vec<Fields> = (0..num(config, "count", 6_000_000))
        .map(|_| Fields::new())
        .collect();
    Err(fail(format!("the host let me hold {} handles", held.len())))
}

fn header(config: &Value) -> Result<Report, ConnectorError> {
    let entry = (
        "x-big".to_owned(),
        vec![b'a'; num(config, "length", 1 << 20)],
    );
    let entries = vec![entry; num(config, "count", 1)];
    if config["append"].as_bool().unwrap_or(false) {
        let fields = Fields::new();
        for (name, value) in &entries {
            fields
                .append(name, value)
                .map_err(|e| fail(format!("header refused: {e:?}")))?;
        }
        return Err(fail("the host took the header set"));
    }
    match Fields::from_list(&entries) {
        Ok(_) => Err(fail("the host took the header set")),
        Err(e) => Err(fail(format!("header refused: {e:?}"))),
    }
}

fn request(config: &Value, method: &Method, path: &str) -> Result<OutgoingRequest, ConnectorError> {
    let authority = config["authority"]
        .as_str()
        .ok_or_else(|| fail("this mode needs an \"authority\""))?;
    let request = OutgoingRequest::new(Fields::new());
    let set = request.set_method(method).is_ok()
        && request.set_scheme(Some(&Scheme::Http)).is_ok()
        && request.set_authority(Some(authority)).is_ok()
        && request.set_path_with_query(Some(path)).is_ok();
    set.then_some(request)
        .ok_or_else(|| fail("cannot build the request"))
}

fn wait(response: &FutureIncomingResponse) -> Result<IncomingResponse, ConnectorError> {
    loop {
        match response.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(fail(format!("request failed: {code:?}"))),
            Some(Err(())) => return Err(fail("response taken twice")),
            None => response.subscribe().block(),
        }
    }
}

fn endless_post(config: &Value) -> Result<Report, ConnectorError> {
    let request = request(config, &Method::Post, "/upload")?;
    let body = request.body().map_err(|()| fail("no body"))?;
    let out = body.write().map_err(|()| fail("no body stream"))?;
    let response = outgoing_handler::handle(request, None)
        .map_err(|code| fail(format!("request refused: {code:?}")))?;
    let chunk = vec![b'x'; 64 << 10];
    loop {
        let permitted = out
            .check_write()
            .map_err(|e| fail(format!("body stream closed: {e:?}")))?;
        if permitted == 0 {
            out.subscribe().block();
            if let Some(done) = response.get() {
                return Err(fail(format!("the server answered mid-body: {done:?}")));
            }
            continue;
        }
        let n = (permitted as usize).min(chunk.len());
        out.write(&chunk[..n])
            .map_err(|e| fail(format!("body stream closed: {e:?}")))?;
    }
}

fn hold(config: &Value) -> Result<Report, ConnectorError> {
    let mut held = Vec::new();
    for i in 0..num(config, "count", 1_000) {
        let request = request(config, &Method::Get, "/big")?;
        let response = outgoing_handler::handle(request, None)
            .map_err(|code| fail(format!("request {i} refused: {code:?}")))?;
        let response = wait(&response).map_err(|e| fail(format!("request {i}: {}", e.message)))?;
        let body = response.consume().map_err(|()| fail("no body"))?;
        held.push((response, body));
    }
    Err(fail(format!(
        "the host let me hold {} connections",
        held.len()
    )))
}

fn poll(config: &Value) -> Result<Report, ConnectorError> {
    let hour = wasip2::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000);
    let list = vec![&hour; num(config, "count", 6_000_000)];
    let ready = wasip2::io::poll::poll(&list);
    Err(fail(format!("{} ready", ready.len())))
}

/// What every hostile plugin of the sandbox suite raises.
const RAISED: &str = "hostile raised on purpose";

/// The attacks every export shares: a panic is how Rust raises.
fn attack(config: &str) {
    let config: Value = serde_json::from_str(config).unwrap_or_default();
    if config["mode"] == "raise" {
        panic!("{RAISED}");
    }
}

fn spin() -> Result<Report, ConnectorError> {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn get(config: &Value) -> Result<Report, ConnectorError> {
    let url = config["url"]
        .as_str()
        .ok_or_else(|| fail("this mode needs a \"url\""))?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail("the url must start with http://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = request(
        &serde_json::json!({ "authority": authority }),
        &Method::Get,
        path,
    )?;
    let response = outgoing_handler::handle(request, None)
        .map_err(|code| fail(format!("request refused: {code:?}")))?;
    let response = wait(&response)?;
    let body = response.consume().map_err(|()| fail("no body"))?;
    let stream = body.stream().map_err(|()| fail("no body stream"))?;
    let mut bytes = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 << 10) {
        bytes.extend_from_slice(&chunk);
    }
    let rows: Vec<Value> =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("not a JSON array: {e}")))?;
    let mut observation = observation("hostile".into());
    observation.counts.received = Some(rows.len() as u64);
    Ok(Report {
        observations: vec![observation],
    })
}

fn big_report(config: &Value) -> Result<Report, ConnectorError> {
    let length = num(config, "length", 32 << 10);
    let observations = (0..num(config, "count", 64))
        .map(|i| observation(format!("{i:08}{}", "x".repeat(length.saturating_sub(8)))))
        .collect();
    Ok(Report { observations })
}

fn alloc(config: &Value) -> Result<Report, ConnectorError> {
    let bytes = num(config, "bytes", 1 << 30);
    let block = vec![1u8; bytes];
    Err(fail(format!("allocated {} bytes", block.len())))
}

impl Guest for Hostile {
    fn describe() -> Descriptor {
        Descriptor {
            name: "hostile".into(),
            version: "0.1.0".into(),
            description: "TEST ONLY: attacks the host".into(),
            config_schema: r#"{"type": "object"}"#.into(),
            capabilities: Capabilities::RESYNC | Capabilities::DELETE,
            suggested_hosts: Vec::new(),
        }
    }

    fn test_connection(config: String) -> Result<(), ConnectorError> {
        attack(&config);
        Ok(())
    }

    fn discover(config: String) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        attack(&config);
        Ok(Vec::new())
    }

    fn collect(config: String, _: RunContext) -> Result<Report, ConnectorError> {
        attack(&config);
        let config: Value =
            serde_json::from_str(&config).map_err(|e| fail(format!("bad config: {e}")))?;
        match config["mode"].as_str().unwrap_or("ok") {
            "ok" => Ok(Report {
                observations: vec![observation(
                    config["asset"].as_str().unwrap_or("hostile").into(),
                )],
            }),
            "alias-ids" => alias_ids(&config),
            "ids" => stream_ids(&config),
            "log" => flood_log(&config),
            "handles" => handles(&config),
            "header" => header(&config),
            "post" => endless_post(&config),
            "hold" => hold(&config),
            "alloc" => alloc(&config),
            "loop" => spin(),
            "http" => get(&config),
            "report" => big_report(&config),
            "poll" => poll(&config),
            "alias-report" => alias_report(&config),
            other => Err(fail(format!("unknown mode {other:?}"))),
        }
    }

    fn resync(config: String, _: String, _: Vec<String>) -> Result<ActionOutcome, ConnectorError> {
        attack(&config);
        Err(fail("no resync"))
    }

    fn delete(config: String, _: String, _: DeleteScope) -> Result<ActionOutcome, ConnectorError> {
        attack(&config);
        Err(fail("no delete"))
    }
}

export!(Hostile);

//! Run a built plugin inside the real Tributary host, from an ordinary
//! `#[tokio::test]`, the way the daemon will run it.
//!
//! The harness loads the `.wasm` with the daemon's own plugin host (same
//! sandbox, same limits, same contract check), fixes the clock the plugin sees,
//! and hands back the report and the ids the plugin streamed. [`TestServer`]
//! answers the plugin's HTTP on 127.0.0.1 and records what it was asked, so a
//! test can assert both sides. [`build_workspace`] builds plugins to
//! `wasm32-wasip2` once per test process.
//!
//! ```no_run
//! use plugin_sdk::harness::{Harness, Reply, TestServer};
//! use serde_json::json;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start(|req| match req.path.as_str() {
//!     "/v1/health" => Reply::json(200, json!({"ok": true})),
//!     _ => Reply::status(404),
//! })
//! .await;
//! let harness = Harness::builder("target/plugins/example.wasm")
//!     .now_unix(1_763_632_800)
//!     .allow_host(&server.url())
//!     .build()
//!     .await?;
//! let run = harness.collect(json!({"base_url": server.url(), "tenant": "acme", "token": "t"})).await?;
//! println!("{:?}", run.report.observations);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use plugin_host::clock::FixedClock;
use plugin_host::{
    ActionOutcome, AssetDescriptor, CollectRequest, DeleteScope, HostConfig, HostGrant, Invocation,
    Limits, LoadError, Plugin, PluginHost, Report, RunError, RunLabels, VecIdSink,
};

pub use plugin_host as plugin;

pub mod outcome;
pub mod replay;

/// What one `collect` produced.
#[derive(Debug, Clone)]
pub struct Collected {
    pub report: Report,
    /// Ids streamed through `emit-ids`, by asset, in the order sent.
    pub ids: BTreeMap<String, Vec<String>>,
}

/// A loaded plugin and the sandbox its calls run in.
pub struct Harness {
    plugin: Plugin,
    invocation: Invocation,
    /// Config fields whose values are secrets, from the plugin's schema.
    secret_fields: Vec<String>,
}

/// Configures a [`Harness`]: the clock, the grants, the limits, the labels.
pub struct HarnessBuilder {
    wasm: PathBuf,
    now: SystemTime,
    invocation: Invocation,
    cache_dir: PathBuf,
}

impl Harness {
    pub fn builder(wasm: impl Into<PathBuf>) -> HarnessBuilder {
        HarnessBuilder {
            wasm: wasm.into(),
            now: SystemTime::now(),
            invocation: Invocation {
                labels: RunLabels {
                    plugin: String::new(),
                    check: "harness".into(),
                    tenant: None,
                },
                ..Invocation::default()
            },
            cache_dir: default_cache_dir(),
        }
    }

    /// The loaded plugin, e.g. for its descriptor.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Runs `collect` with `config` and returns the report and streamed ids.
    pub async fn collect(&self, config: serde_json::Value) -> Result<Collected, RunError> {
        let sink = Arc::new(VecIdSink::default());
        let invocation = Invocation {
            ids: Some(sink.clone()),
            ..self.with_config(config)
        };
        let request = CollectRequest {
            run_id: "harness-run".into(),
            last_success: None,
            attempt: 1,
        };
        let report = self.plugin.collect(&invocation, &request).await?;
        Ok(Collected {
            report,
            ids: sink.take(),
        })
    }

    pub async fn test_connection(&self, config: serde_json::Value) -> Result<(), RunError> {
        self.plugin.test_connection(&self.with_config(config)).await
    }

    pub async fn discover(
        &self,
        config: serde_json::Value,
    ) -> Result<Vec<AssetDescriptor>, RunError> {
        self.plugin.discover(&self.with_config(config)).await
    }

    pub async fn resync(
        &self,
        config: serde_json::Value,
        asset: &str,
        ids: &[String],
    ) -> Result<ActionOutcome, RunError> {
        self.plugin
            .resync(&self.with_config(config), asset, ids)
            .await
    }

    pub async fn delete(
        &self,
        config: serde_json::Value,
        asset: &str,
        scope: &DeleteScope,
    ) -> Result<ActionOutcome, RunError> {
        self.plugin
            .delete(&self.with_config(config), asset, scope)
            .await
    }

    /// The invocation for one call: `config`, and its values in fields the
    /// plugin's schema marks `"x-secret": true` masked in the plugin's log
    /// output like the secrets the daemon resolves.
    fn with_config(&self, config: serde_json::Value) -> Invocation {
        let mut invocation = self.invocation.clone();
        invocation.secrets.extend(
            self.secret_fields
                .iter()
                .filter_map(|field| config.get(field)?.as_str())
                .filter(|value| !value.is_empty())
                .map(str::to_owned),
        );
        invocation.config = config.to_string();
        invocation
    }
}

/// The top-level properties of a config JSON Schema marked `"x-secret": true`.
fn secret_fields(schema: &str) -> Vec<String> {
    let Ok(schema) = serde_json::from_str::<serde_json::Value>(schema) else {
        return Vec::new();
    };
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
        .filter(|(_, property)| property.get("x-secret") == Some(&serde_json::Value::Bool(true)))
        .map(|(name, _)| name.clone())
        .collect()
}

impl HarnessBuilder {
    /// Fixes the time the plugin sees (its WASI clock and `context.now`).
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = now;
        self
    }

    /// Fixes the time at `secs` seconds after the Unix epoch.
    pub fn now_unix(self, secs: u64) -> Self {
        self.now(FixedClock::at_unix(secs).0)
    }

    /// Grants HTTP access to `grant` (`scheme://host[:port]`, `*.` wildcard).
    ///
    /// # Panics
    /// When the grant does not parse: a test bug.
    pub fn allow_host(self, grant: &str) -> Self {
        self.try_allow_host(grant).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Grants HTTP access to `grant`, or says why it does not parse.
    pub fn try_allow_host(
        mut self,
        grant: &str,
    ) -> Result<Self, plugin_host::sandbox::GrantParseError> {
        self.invocation.grants.allowed_hosts.push(grant.parse()?);
        Ok(self)
    }

    /// Grants read-only access to `dir`, seen by the plugin as `/data`.
    pub fn read_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.invocation.grants.read_dir = Some(dir.into());
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.invocation.limits = limits;
        self
    }

    /// Marks a value as secret: it is masked in the plugin's log output.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        self.invocation.secrets.push(value.into());
        self
    }

    pub fn check(mut self, id: impl Into<String>) -> Self {
        self.invocation.labels.check = id.into();
        self
    }

    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.invocation.labels.tenant = Some(tenant.into());
        self
    }

    /// Where compiled components are cached (default: a folder in the system
    /// temp dir, shared by all tests so each component compiles once).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = dir.into();
        self
    }

    /// Loads the plugin into a new host.
    pub async fn build(self) -> Result<Harness, HarnessError> {
        let mut config = HostConfig::new(self.cache_dir);
        config.clock = Arc::new(FixedClock(self.now));
        // Tests run many hosts side by side; a few pool slots each is plenty.
        config.max_instances = 8;
        let host = PluginHost::new(config).map_err(|e| HarnessError::Host(format!("{e:#}")))?;
        let plugin = host.load(&self.wasm).await?;
        Ok(Harness {
            secret_fields: secret_fields(&plugin.descriptor().config_schema),
            plugin,
            invocation: self.invocation,
        })
    }
}

/// Where compiled components are cached unless a test says otherwise: one
/// folder in the system temp dir, so each component compiles once for all
/// tests and `tributary plugin test` runs.
pub fn default_cache_dir() -> PathBuf {
    std::env::temp_dir().join("tributary-harness-cache")
}

/// Why a harness could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot start the plugin host: {0}")]
    Host(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Grant(#[from] plugin_host::sandbox::GrantParseError),
}

/// Builds a cargo workspace of plugins to `wasm32-wasip2` in release mode, once
/// per process, and returns the folder holding the `.wasm` files.
///
/// Plugins build into `<manifest dir>/../target/wasm` unless the workspace's
/// `.cargo/config.toml` says otherwise, so the build never waits on the lock of
/// the `cargo test` that runs it.
///
/// # Panics
/// When cargo fails: the test cannot go on without its plugin.
pub fn build_workspace(manifest: &Path) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<PathBuf, PathBuf>>> = OnceLock::new();
    let manifest = manifest
        .canonicalize()
        .unwrap_or_else(|e| panic!("plugin manifest {}: {e}", manifest.display()));
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .expect("build lock");
    if let Some(dir) = built.get(&manifest) {
        return dir.clone();
    }
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(manifest.parent().expect("manifest has a folder"))
        // Settings of the outer `cargo test` must not leak into the wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    assert!(
        output.status.success(),
        "building plugins in {} failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
        manifest.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = wasm_artifact_dir(&output.stdout).unwrap_or_else(|| {
        panic!(
            "cargo built no .wasm in {}; are the plugins `crate-type = [\"cdylib\"]`?",
            manifest.display()
        )
    });
    built.insert(manifest, dir.clone());
    dir
}

/// Builds the plugin workspace of `manifest` (once per process, see
/// [`build_workspace`]) and returns the path of its component `name`
/// (the crate name; `-` becomes `_` in the file name).
///
/// # Panics
/// When the build fails or made no component of that name.
pub fn plugin(manifest: &Path, name: &str) -> PathBuf {
    let dir = build_workspace(manifest);
    let path = dir.join(format!("{}.wasm", name.replace('-', "_")));
    assert!(path.exists(), "no plugin {} in {}", name, dir.display());
    path
}

/// The folder of the first `.wasm` artifact in the JSON messages of
/// `cargo build --message-format=json` (also how `tributary plugin build`
/// finds a Rust plugin's component).
pub fn wasm_artifact_dir(messages: &[u8]) -> Option<PathBuf> {
    String::from_utf8_lossy(messages).lines().find_map(|line| {
        let msg: serde_json::Value = serde_json::from_str(line).ok()?;
        msg.get("filenames")?
            .as_array()?
            .iter()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"))
            .and_then(|f| Path::new(f).parent().map(Path::to_path_buf))
    })
}

/// One request the [`TestServer`] received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    pub query: Option<String>,
    /// Header names lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The value of query parameter `name`, undecoded.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .as_deref()?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What the [`TestServer`] answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (to test timeouts).
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::status(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// An HTTP server on 127.0.0.1 that answers with a closure and records every
/// request. It stops when dropped.
pub struct TestServer {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    /// Starts a server on a free loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Self::bind(any_port, handler)
            .await
            .expect("bind a loopback port")
    }

    /// Starts a server on `addr`: a fixed port, for fakes a config points at
    /// (the demo's `fakes` binary). Fails when the port is taken.
    pub async fn bind(
        addr: std::net::SocketAddr,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        use axum::serve::ListenerExt;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        // Without TCP_NODELAY a multi-segment answer stalls on delayed ACKs
        // (40 ms a response), which would swamp what tests and benches measure.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = requests.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let handler = handler.clone();
            let recorded = recorded.clone();
            async move { answer(req, &*handler, &recorded).await }
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            requests,
            _shutdown: tx,
        })
    }

    /// `http://127.0.0.1:PORT`, which is also the grant that allows it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Every request received since the last call, removed from the record:
    /// for a test that asserts one phase at a time, and for a long-running
    /// fake that must not keep every request it ever saw.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().expect("requests lock"))
    }
}

async fn answer(
    req: axum::extract::Request,
    handler: &Handler,
    recorded: &Mutex<Vec<Recorded>>,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let request = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let reply = handler(&request);
    recorded.lock().expect("requests lock").push(request);
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = axum::response::Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response
        .body(axum::body::Body::from(reply.body))
        .unwrap_or_else(|_| axum::response::Response::new(axum::body::Body::empty()))
}

#[cfg(test)]
mod tests {
    use super::secret_fields;

    #[test]
    fn secret_fields_are_the_properties_marked_x_secret() {
        let schema = r#"{"properties": {"token": {"type": "string", "x-secret": true},
            "user": {"type": "string"}, "password": {"x-secret": "yes"}, "key": {"x-secret": true}}}"#;
        let mut fields = secret_fields(schema);
        fields.sort();
        assert_eq!(fields, ["key", "token"]);
        assert!(secret_fields("not json").is_empty());
        assert!(secret_fields("{}").is_empty());
    }
}

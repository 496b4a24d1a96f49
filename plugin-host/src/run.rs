//! One call into a plugin: a fresh store with the check's limits, the call,
//! and a verdict that says in plain words why a failed run failed.
//!
//! Every export (`describe`, `collect`, the actions...) goes through
//! [`Plugin::invoke`], so limits, deadlines and failure reasons are the same
//! for all of them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::component::{ResourceTable, ResourceTableError};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{FieldMapError, WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::Connector;
use super::bindings::types::{
    ActionOutcome, AssetDescriptor, ConnectorError, DeleteScope, Descriptor, ErrorClass, Report,
    RunContext, Timestamp,
};
use super::engine::Plugin;
use super::http::{DenyReason, HttpGuard};
use super::imports::IdIntake;
use super::logs::{GuestOutput, PluginLog, RunLabels};
use super::sandbox::{GUEST_DATA_DIR, Grants, Limits};
use crate::clock::SharedClock;

/// Extra time the host waits past the deadline before it abandons a call that
/// is blocked in host I/O (epoch interruption only fires while wasm runs).
const HOST_GRACE: Duration = Duration::from_millis(500);

/// The most random bytes one `get-random-bytes` call returns (seeding a hash
/// map takes 16).
const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// Where the ids a plugin streams through `emit-ids` go. Shared so the caller
/// keeps a handle while the run owns another.
pub trait IdSink: Send + Sync + 'static {
    /// Takes one batch of ids for `asset`; an error is handed to the plugin.
    fn accept(&self, asset: &str, ids: Vec<String>) -> Result<(), String>;
}

/// An [`IdSink`] that keeps every id in memory, by asset: for tests and the
/// plugin harness, not for millions of ids in the daemon.
#[derive(Debug, Default)]
pub struct VecIdSink(Mutex<BTreeMap<String, Vec<String>>>);

impl VecIdSink {
    pub fn take(&self) -> BTreeMap<String, Vec<String>> {
        std::mem::take(&mut self.0.lock().expect("id sink lock"))
    }
}

impl IdSink for VecIdSink {
    fn accept(&self, asset: &str, ids: Vec<String>) -> Result<(), String> {
        let mut map = self.0.lock().expect("id sink lock");
        map.entry(asset.to_owned()).or_default().extend(ids);
        Ok(())
    }
}

/// Everything a call needs besides its arguments: who it is for, the plugin's
/// config, and the sandbox.
#[derive(Clone, Default)]
pub struct Invocation {
    pub labels: RunLabels,
    /// The plugin config as JSON, secrets resolved.
    pub config: String,
    /// Secret values, masked wherever the plugin's output is logged.
    pub secrets: Vec<String>,
    pub limits: Limits,
    pub grants: Grants,
    pub ids: Option<Arc<dyn IdSink>>,
}

/// What the caller says about a `collect` run; the host adds the check, the time
/// and the deadline.
#[derive(Debug, Clone)]
pub struct CollectRequest {
    pub run_id: String,
    pub last_success: Option<SystemTime>,
    pub attempt: u32,
}

/// A limit a run hit, or a request the sandbox refused, recorded by host code
/// as it happens so the run's failure can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Memory {
        limit: usize,
        requested: usize,
    },
    HostDenied {
        dest: String,
        grant: String,
        reason: DenyReason,
    },
    HttpRequests {
        limit: u32,
    },
    HttpResponseBytes {
        limit: u64,
    },
    HttpRequestBytes {
        limit: u64,
    },
    HttpHeaders {
        limit: usize,
    },
    HttpConnections {
        limit: u32,
    },
    Handles {
        limit: u32,
    },
    /// One call moved more data between the plugin and the host than the
    /// plugin's memory could hold: its strings or lists overlap.
    CallData {
        limit: usize,
    },
    Ids {
        limit: u64,
    },
    IdBytes {
        limit: u64,
    },
    IdLength {
        limit: usize,
        length: usize,
    },
    Deadline,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Memory { limit, requested } => write!(
                f,
                "memory limit of {} exceeded: the plugin asked for {} (raise limits.memory of the check if this is expected)",
                Mib(*limit),
                Mib(*requested)
            ),
            Violation::HostDenied {
                dest,
                grant,
                reason,
            } => match reason {
                DenyReason::NotGranted => write!(
                    f,
                    "request to {dest} denied: the check does not grant this host; add \"{grant}\" to its allowed_hosts"
                ),
                DenyReason::InternalAddress { address, kind } => write!(
                    f,
                    "request to {dest} denied: the name resolves to {address}, a {kind} address, which a granted name may not reach; grant \"{grant}\" explicitly to allow it"
                ),
                DenyReason::UnsupportedUri => {
                    write!(
                        f,
                        "request to {dest} denied: only http and https URLs with a host are allowed"
                    )
                }
            },
            Violation::HttpRequests { limit } => write!(
                f,
                "HTTP request limit reached: at most {limit} requests per run (raise limits.http_requests of the check)"
            ),
            Violation::HttpResponseBytes { limit } => write!(
                f,
                "HTTP response limit reached: at most {} of response bodies per run (raise limits.http_response of the check)",
                Mib(*limit as usize)
            ),
            Violation::HttpRequestBytes { limit } => write!(
                f,
                "HTTP request body limit reached: at most {} of request bodies per run (raise limits.http_request of the check)",
                Mib(*limit as usize)
            ),
            Violation::HttpHeaders { limit } => write!(
                f,
                "HTTP header limit reached: a set of headers may take at most {} (raise limits.http_headers of the check)",
                Mib(*limit)
            ),
            Violation::HttpConnections { limit } => write!(
                f,
                "HTTP connection limit reached: at most {limit} connections open at once; read or drop response bodies before sending more (raise limits.http_connections of the check)"
            ),
            Violation::Handles { limit } => write!(
                f,
                "resource handle limit reached: at most {limit} handles (headers, requests, bodies, streams, files) held at once (raise limits.handles of the check)"
            ),
            Violation::CallData { limit } => write!(
                f,
                "a single call passed more than {} of data to the host, more than the plugin's memory holds (its strings, lists or handles overlap or repeat; raise limits.memory of the check if this is expected)",
                Mib(*limit)
            ),
            Violation::Ids { limit } => write!(
                f,
                "id limit reached: at most {limit} ids per run (raise limits.ids of the check)"
            ),
            Violation::IdBytes { limit } => write!(
                f,
                "id limit reached: at most {} of ids per run (raise limits.id_bytes of the check)",
                Mib(*limit as usize)
            ),
            Violation::IdLength { limit, length } => write!(
                f,
                "an id or asset name of {length} bytes is over the limit of {limit} (raise limits.id_length of the check)"
            ),
            Violation::Deadline => write!(f, "deadline reached"),
        }
    }
}

struct Mib(usize);

impl fmt::Display for Mib {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 20 {
            write!(f, "{:.1} MiB", self.0 as f64 / (1u64 << 20) as f64)
        } else {
            write!(f, "{} bytes", self.0)
        }
    }
}

/// The first violation of a run (later ones are consequences).
#[derive(Debug, Default)]
pub(crate) struct Incidents(Mutex<Option<Violation>>);

impl Incidents {
    pub(crate) fn record(&self, violation: Violation) {
        self.0
            .lock()
            .expect("incidents lock")
            .get_or_insert(violation);
    }

    fn first(&self) -> Option<Violation> {
        self.0.lock().expect("incidents lock").clone()
    }
}

/// Why a call into a plugin failed. Each variant is one reason an operator can
/// act on; [`RunError::class`] says whether a retry may help.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// The plugin ran and reported an error of its own.
    #[error("{class} error: {message}", class = class_name(*.class))]
    Connector {
        class: ErrorClass,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the run took longer than its deadline of {0:?} and was stopped")]
    Timeout(Duration),
    /// The sandbox refused something or a limit was hit.
    #[error("{0}")]
    Sandbox(Violation),
    #[error("the plugin overflowed its stack (unbounded recursion?)")]
    StackOverflow,
    /// Rust and C keep their stack in linear memory below the data, so a deep
    /// recursion there ends as an access below address zero, not as a wasm
    /// call-stack overflow.
    #[error(
        "the plugin accessed memory out of bounds; in a Rust or C plugin this means its stack overflowed (unbounded recursion or very large locals)"
    )]
    MemoryFault,
    #[error("the plugin panicked: {0}")]
    Panic(String),
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error(
        "the report is {size} bytes, over the limit of {limit} (raise limits.report of the check or report less)"
    )]
    ReportTooLarge { size: usize, limit: usize },
    #[error("the plugin could not be started: {0}")]
    Instantiate(String),
    #[error("the plugin does not implement the optional `{0}` action")]
    Unsupported(&'static str),
}

fn class_name(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Config => "config",
        ErrorClass::Auth => "auth",
        ErrorClass::Transient => "transient",
        ErrorClass::System => "system",
    }
}

impl RunError {
    /// How the failure is classified: only `Transient` is worth a retry.
    pub fn class(&self) -> ErrorClass {
        match self {
            RunError::Connector { class, .. } => *class,
            RunError::Timeout(_) => ErrorClass::Transient,
            RunError::Sandbox(Violation::HostDenied { .. }) | RunError::Unsupported(_) => {
                ErrorClass::Config
            }
            RunError::Sandbox(Violation::Deadline) => ErrorClass::Transient,
            _ => ErrorClass::System,
        }
    }
}

impl From<ConnectorError> for RunError {
    fn from(err: ConnectorError) -> Self {
        RunError::Connector {
            class: err.class,
            message: err.message,
            retry_after: err.retry_after_ms.map(Duration::from_millis),
        }
    }
}

/// The data of one run's store.
pub(crate) struct RunState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: HttpGuard,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(super) log: Arc<PluginLog>,
    pub(super) ids: IdIntake,
    pub(super) limits: Limits,
    pub(super) incidents: Arc<Incidents>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl super::bindings::types::Host for RunState {}

/// Caps linear memory and remembers that it did, because the trap a refused
/// growth raises does not say why.
struct MemoryLimiter {
    limit: usize,
    incidents: Arc<Incidents>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.incidents.record(Violation::Memory {
                limit: self.limit,
                requested: desired,
            });
            wasmtime::bail!("memory limit exceeded");
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// A wall clock for WASI that reads the host's [`Clock`](crate::clock::Clock).
struct WallClock(SharedClock);

impl wasmtime_wasi::HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

pub(crate) fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
    }
}

impl Plugin {
    /// Calls `describe` with default limits and no grants.
    pub async fn describe(&self) -> Result<Descriptor, RunError> {
        self.invoke(&Invocation::default(), async |c, store| {
            c.tributary_connector_plugin()
                .call_describe(store)
                .await
                .map(Ok)
        })
        .await
    }

    pub async fn test_connection(&self, inv: &Invocation) -> Result<(), RunError> {
        self.invoke(inv, async |c, store| {
            c.tributary_connector_plugin()
                .call_test_connection(store, &inv.config)
                .await
        })
        .await
    }

    pub async fn discover(&self, inv: &Invocation) -> Result<Vec<AssetDescriptor>, RunError> {
        self.invoke(inv, async |c, store| {
            c.tributary_connector_plugin()
                .call_discover(store, &inv.config)
                .await
        })
        .await
    }

    /// Runs `collect` and checks the report against the size limit.
    pub async fn collect(
        &self,
        inv: &Invocation,
        req: &CollectRequest,
    ) -> Result<Report, RunError> {
        let now = self.inner.host.clock.now();
        let context = RunContext {
            check_id: inv.labels.check.clone(),
            run_id: req.run_id.clone(),
            tenant: inv.labels.tenant.clone(),
            now: timestamp(now),
            deadline: timestamp(now + inv.limits.deadline),
            last_success: req.last_success.map(timestamp),
            attempt: req.attempt,
        };
        let report = self
            .invoke(inv, async |c, store| {
                c.tributary_connector_plugin()
                    .call_collect(store, &inv.config, &context)
                    .await
            })
            .await?;
        let size = report_size(&report);
        if size > inv.limits.report_bytes {
            return Err(RunError::ReportTooLarge {
                size,
                limit: inv.limits.report_bytes,
            });
        }
        Ok(report)
    }

    pub async fn resync(
        &self,
        inv: &Invocation,
        asset: &str,
        ids: &[String],
    ) -> Result<ActionOutcome, RunError> {
        self.require(super::Capabilities::RESYNC, "resync")?;
        self.invoke(inv, async |c, store| {
            c.tributary_connector_plugin()
                .call_resync(store, &inv.config, asset, ids)
                .await
        })
        .await
    }

    pub async fn delete(
        &self,
        inv: &Invocation,
        asset: &str,
        scope: &DeleteScope,
    ) -> Result<ActionOutcome, RunError> {
        self.require(super::Capabilities::DELETE, "delete")?;
        self.invoke(inv, async |c, store| {
            c.tributary_connector_plugin()
                .call_delete(store, &inv.config, asset, scope)
                .await
        })
        .await
    }

    /// Refuses an optional action the plugin did not declare in `describe`.
    fn require(&self, capability: super::Capabilities, name: &'static str) -> Result<(), RunError> {
        if self.descriptor().capabilities.contains(capability) {
            Ok(())
        } else {
            Err(RunError::Unsupported(name))
        }
    }

    /// Instantiates the plugin in a fresh store with the invocation's sandbox,
    /// runs `call` under the deadline and turns whatever went wrong into a
    /// [`RunError`].
    async fn invoke<R>(
        &self,
        inv: &Invocation,
        call: impl AsyncFnOnce(
            &Connector,
            &mut Store<RunState>,
        ) -> wasmtime::Result<Result<R, ConnectorError>>,
    ) -> Result<R, RunError> {
        let host = &self.inner.host;
        let limits = &inv.limits;
        let deadline = Instant::now() + limits.deadline;
        let mut labels = inv.labels.clone();
        if labels.plugin.is_empty() {
            labels.plugin = self.label();
        }
        let log = Arc::new(PluginLog::new(labels, &inv.secrets, limits));
        let memory_limit = limits.memory_bytes.min(host.max_memory_bytes);
        let incidents = Arc::new(Incidents::default());
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits.http_headers);
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.handles as usize);
        let state = RunState {
            wasi: wasi_ctx(&inv.grants, &log, host.clock.clone())?,
            http,
            hooks: HttpGuard::new(
                Arc::new(inv.grants.clone()),
                limits,
                deadline,
                host.connections.clone(),
                incidents.clone(),
                log.clone(),
            ),
            table,
            limiter: MemoryLimiter {
                limit: memory_limit,
                incidents: incidents.clone(),
            },
            log: log.clone(),
            ids: IdIntake::new(inv.ids.clone(), limits, incidents.clone()),
            limits: limits.clone(),
            incidents: incidents.clone(),
        };
        let mut store = Store::new(&host.engine, state);
        store.limiter(|state| &mut state.limiter);
        // What one call may copy between the plugin and the host. Data that
        // does not overlap fits in the plugin's memory; overlapping strings
        // (every element of a list pointing at one buffer) would otherwise
        // make one call cost up to wasmtime's default of 128 MiB.
        store.set_hostcall_fuel(memory_limit);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= deadline {
                ctx.data_mut().incidents.record(Violation::Deadline);
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Yield each tick so one busy plugin cannot hog an executor thread.
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let run = async {
            let connector = self
                .inner
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(|err| Err(RunError::Instantiate(format!("{err:#}"))))?;
            call(&connector, &mut store).await.map_err(Ok)
        };
        let outcome = tokio::time::timeout(limits.deadline + HOST_GRACE, run).await;
        let violation = incidents.first();
        match outcome {
            Err(_elapsed) => Err(RunError::Timeout(limits.deadline)),
            Ok(Ok(Ok(value))) => match violation {
                // A limit hit means the result is incomplete, even if the
                // plugin carried on; a denied request it recovered from is fine.
                Some(v) if !matches!(v, Violation::HostDenied { .. }) => Err(verdict(v, limits)),
                _ => Ok(value),
            },
            Ok(Ok(Err(connector_error))) => Err(match violation {
                Some(v) => verdict(v, limits),
                None => connector_error.into(),
            }),
            Ok(Err(Err(run_error))) => Err(run_error),
            Ok(Err(Ok(trap))) => Err(
                match violation.or_else(|| host_limit(&trap, memory_limit, limits)) {
                    Some(v) => verdict(v, limits),
                    None => classify_trap(&trap, &log),
                },
            ),
        }
    }

    fn label(&self) -> String {
        match &self.inner.descriptor.get() {
            Some(d) => d.name.clone(),
            None => self
                .inner
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

fn verdict(violation: Violation, limits: &Limits) -> RunError {
    match violation {
        Violation::Deadline => RunError::Timeout(limits.deadline),
        v => RunError::Sandbox(v),
    }
}

/// wasmtime's message when a call's copy runs out of hostcall fuel (the error
/// type is private to wasmtime).
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// The limit behind a trap raised in host code: a full resource table (the
/// handle limit), a header set over its size (wasmtime traps for both), or a
/// call that copied more than the plugin's memory (hostcall fuel).
fn host_limit(err: &wasmtime::Error, memory_limit: usize, limits: &Limits) -> Option<Violation> {
    err.chain().find_map(|e| {
        if e.to_string().contains(HOSTCALL_FUEL_EXHAUSTED) {
            return Some(Violation::CallData {
                limit: memory_limit,
            });
        }
        if let Some(ResourceTableError::Full) = e.downcast_ref() {
            return Some(Violation::Handles {
                limit: limits.handles,
            });
        }
        match e.downcast_ref() {
            Some(FieldMapError::TotalSizeTooBig | FieldMapError::TooManyFields) => {
                Some(Violation::HttpHeaders {
                    limit: limits.http_headers,
                })
            }
            _ => None,
        }
    })
}

fn classify_trap(err: &wasmtime::Error, log: &PluginLog) -> RunError {
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => RunError::StackOverflow,
        Some(Trap::MemoryOutOfBounds) => RunError::MemoryFault,
        // A Rust panic ends in `unreachable`; its message is on stderr.
        Some(trap @ Trap::UnreachableCodeReached) => match log.panic_message() {
            Some(message) => RunError::Panic(message),
            None => RunError::Trap(trap.to_string()),
        },
        Some(trap) => RunError::Trap(trap.to_string()),
        None => RunError::Trap(log.redactor().redact(&format!("{err:#}")).into_owned()),
    }
}

fn wasi_ctx(
    grants: &Grants,
    log: &Arc<PluginLog>,
    clock: SharedClock,
) -> Result<WasiCtx, RunError> {
    let mut builder = WasiCtxBuilder::new();
    // No environment, no arguments, no sockets: the empty sandbox.
    builder
        .stdout(GuestOutput::stdout(log.clone()))
        .stderr(GuestOutput::stderr(log.clone()))
        .wall_clock(WallClock(clock))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        // wasmtime's default lets one call ask for 64 MiB of random bytes.
        .max_random_size(MAX_RANDOM_BYTES);
    if let Some(dir) = &grants.read_dir {
        builder
            .preopened_dir(dir, GUEST_DATA_DIR, FsPerms::ReadOnly)
            .map_err(|err| {
                RunError::Instantiate(format!(
                    "cannot open the granted directory {}: {err:#}",
                    dir.display()
                ))
            })?;
    }
    Ok(builder.build())
}

/// The size of a report as the limit counts it: the bytes of its strings plus
/// 16 bytes per number and 64 per record, close to what it costs to hold.
pub(crate) fn report_size(report: &Report) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    report
        .observations
        .iter()
        .map(|o| {
            64 + o.asset.len()
                + o.kind.len()
                + 48
                + o.counts
                    .extras
                    .iter()
                    .map(|e| 16 + e.name.len())
                    .sum::<usize>()
                + o.last_received.as_ref().map_or(0, |l| 16 + l.id.len())
                + o.native_status
                    .as_ref()
                    .map_or(0, |n| 16 + n.label.len() + opt(&n.message))
                + o.errors
                    .iter()
                    .map(|e| {
                        64 + e.kind.len() + e.message.len() + opt(&e.document_id) + opt(&e.log_link)
                    })
                    .sum::<usize>()
                + o.error_totals
                    .iter()
                    .map(|t| 16 + t.kind.len())
                    .sum::<usize>()
                + o.metadata
                    .iter()
                    .map(|m| 16 + m.key.len() + m.value.len())
                    .sum::<usize>()
        })
        .sum()
}

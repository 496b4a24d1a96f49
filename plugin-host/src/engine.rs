//! The engine, the linker and loading a plugin from a `.wasm` file.
//!
//! One engine serves every plugin: compiled code is shared, and an epoch
//! ticker thread advances time for every store's deadline. Instances come from
//! the pooling allocator (fast, preallocated slots) unless the machine cannot
//! reserve the address space for it, in which case the host falls back to
//! on-demand allocation and says so.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use semver::Version;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{ConnectorPre, types::Descriptor};
use super::cache::{CacheOutcome, ComponentCache};
use super::contract::{self, ContractError};
use super::run::{RunError, RunState};
use crate::clock::{SharedClock, SystemClock};

/// How often the epoch advances; deadlines are measured in these ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How long a plugin's `describe` may take at load. It only returns
/// constants, so a plugin that needs longer is broken; and while it runs, the
/// daemon is not ready (a reload is not applied). Far shorter than a run's
/// default deadline.
pub(crate) const DESCRIBE_DEADLINE: Duration = Duration::from_secs(2);

/// The default cap on the host's open outgoing connections: a quarter of the
/// 1,024 fds a process often gets, leaving the rest to the API and database.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Settings of the plugin host that hold for every plugin and run.
#[derive(Clone)]
pub struct HostConfig {
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// How many plugin instances may be alive at once (pool slots).
    pub max_instances: u32,
    /// The largest memory limit a check may ask for; pool slots are sized for it.
    pub max_memory_bytes: usize,
    /// Outgoing HTTP connections open at once over all runs; each is a file
    /// descriptor, so keep it well under the process's fd limit.
    pub max_connections: usize,
    /// The wall clock plugins see (the harness fixes it).
    pub clock: SharedClock,
}

impl HostConfig {
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            max_instances: 64,
            max_memory_bytes: 1 << 30,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    Pooling,
    OnDemand,
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid WebAssembly component: {message}")]
    Compile { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Contract {
        path: PathBuf,
        source: ContractError,
    },
    #[error("{path} needs imports this host does not provide: {message}")]
    Link { path: PathBuf, message: String },
    #[error("{path}: `describe` failed: {source}")]
    Describe { path: PathBuf, source: RunError },
}

/// The engine and linker shared by all plugins.
#[derive(Clone)]
pub struct PluginHost {
    inner: Arc<HostInner>,
}

pub(crate) struct HostInner {
    pub(crate) engine: Engine,
    linker: Linker<RunState>,
    cache: ComponentCache,
    pub(crate) clock: SharedClock,
    pub(crate) max_memory_bytes: usize,
    /// Permits for open outgoing connections, shared by every run.
    pub(crate) connections: Arc<tokio::sync::Semaphore>,
    allocation: Allocation,
    ticker: Arc<AtomicBool>,
}

impl Drop for HostInner {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// A loaded plugin: compiled, checked, pre-instantiated and described. Cheap to
/// clone; each call gets a fresh store and instance.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
}

pub(crate) struct PluginInner {
    pub(crate) host: Arc<HostInner>,
    pub(crate) pre: ConnectorPre<RunState>,
    pub(crate) path: PathBuf,
    pub(crate) sha256: String,
    pub(crate) contract: Version,
    pub(crate) cache: CacheOutcome,
    pub(crate) descriptor: OnceLock<Descriptor>,
}

impl PluginHost {
    pub fn new(config: HostConfig) -> anyhow::Result<Self> {
        let (engine, allocation) = build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(to_anyhow)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(to_anyhow)?;
        super::imports::add_to_linker(&mut linker).map_err(to_anyhow)?;
        let cache = ComponentCache::new(&config.cache_dir, &engine)?;
        let ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker.clone())?;
        Ok(Self {
            inner: Arc::new(HostInner {
                engine,
                linker,
                cache,
                clock: config.clock,
                max_memory_bytes: config.max_memory_bytes,
                connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
                allocation,
                ticker,
            }),
        })
    }

    pub fn allocation(&self) -> Allocation {
        self.inner.allocation
    }

    pub fn cache_dir(&self) -> &Path {
        self.inner.cache.dir()
    }

    /// Loads a plugin: compiles it (or takes it from the cache), refuses an
    /// unknown contract major version, links it and calls `describe`.
    pub async fn load(&self, path: impl AsRef<Path>) -> Result<Plugin, LoadError> {
        let path = path.as_ref().to_path_buf();
        let wasm = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let engine = &self.inner.engine;
        let started = std::time::Instant::now();
        // Compiling blocks for seconds: keep it off the runtime's workers,
        // which go on serving the API and running checks during a reload.
        let compiled = {
            let (cache, engine, file) = (self.inner.cache.clone(), engine.clone(), path.clone());
            tokio::task::spawn_blocking(move || cache.load(&engine, &wasm, &file)).await
        };
        let (component, cache, sha256) = compiled
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
            .map_err(|err| LoadError::Compile {
                path: path.clone(),
                message: format!("{err:#}"),
            })?;
        let contract =
            contract::check(engine, &component).map_err(|source| LoadError::Contract {
                path: path.clone(),
                source,
            })?;
        let link_err = |err: wasmtime::Error| LoadError::Link {
            path: path.clone(),
            message: format!("{err:#}"),
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(link_err)?;
        let pre = ConnectorPre::new(pre).map_err(link_err)?;
        let plugin = Plugin {
            inner: Arc::new(PluginInner {
                host: self.inner.clone(),
                pre,
                path: path.clone(),
                sha256,
                contract,
                cache,
                descriptor: OnceLock::new(),
            }),
        };
        // Dropping the call at the deadline ends it: a looping guest yields
        // to the runtime every epoch tick.
        let descriptor = tokio::time::timeout(DESCRIBE_DEADLINE, plugin.describe())
            .await
            .unwrap_or(Err(RunError::Timeout(DESCRIBE_DEADLINE)))
            .map_err(|source| LoadError::Describe {
                path: path.clone(),
                source,
            })?;
        tracing::info!(
            plugin = %descriptor.name,
            version = %descriptor.version,
            contract = %plugin.inner.contract,
            path = %path.display(),
            sha256 = %plugin.inner.sha256,
            cache = ?cache,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plugin loaded"
        );
        plugin
            .inner
            .descriptor
            .set(descriptor)
            .expect("a new plugin has no descriptor yet");
        Ok(plugin)
    }
}

impl Plugin {
    /// What the plugin said of itself at load.
    pub fn descriptor(&self) -> &Descriptor {
        self.inner
            .descriptor
            .get()
            .expect("a loaded plugin has been described")
    }

    /// The plugin's name, from `describe`.
    pub fn name(&self) -> &str {
        &self.descriptor().name
    }

    /// The contract version the component was built for.
    pub fn contract_version(&self) -> &Version {
        &self.inner.contract
    }

    /// The sha256 of the `.wasm` file, hex.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether loading compiled the component or found it in the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }
}

/// Core instances one component may hold: a Rust component has about 4, a
/// Python one (componentize-py 0.25) 14; the rest is headroom.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;

/// Core instances the pool reserves per instance slot: enough for a Python
/// component in every slot at the same time. Pool slots cost address space,
/// not memory, until used.
const CORE_INSTANCES_PER_SLOT: u32 = 16;

fn build_engine(config: &HostConfig) -> anyhow::Result<(Engine, Allocation)> {
    let mut wasm_config = Config::new();
    wasm_config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed);
    let mut pooling = PoolingAllocationConfig::default();
    let slots = config.max_instances.max(1);
    // A Rust component holds a handful of core instances (the program and the
    // shims wit-component adds), one memory and a few tables. A Python one
    // (componentize-py) holds 14 core instances (CPython, libc, the bindings
    // and their shims): the pool must fit one in every slot at once, and a
    // component may hold up to twice that before loading fails.
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_SLOT)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        .total_stacks(slots)
        .max_memory_size(config.max_memory_bytes)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(2)
        .max_tables_per_component(16)
        // Resetting a slot with madvise makes the next run page-fault its
        // stack and heap back in, which costs more than the run itself. With
        // PAGEMAP_SCAN (Linux 6.7+) only the pages a run dirtied are reset, in
        // place; elsewhere the low pages are memset.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(1 << 20)
        .async_stack_keep_resident(1 << 20);
    let mut pooled = wasm_config.clone();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    match Engine::new(&pooled) {
        Ok(engine) => Ok((engine, Allocation::Pooling)),
        Err(err) => {
            tracing::warn!(error = %err, "pooling allocator unavailable (address space too small?); using on-demand allocation");
            let engine = Engine::new(&wasm_config).map_err(to_anyhow)?;
            Ok((engine, Allocation::OnDemand))
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until `stop` is set.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("tributary-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
    Ok(())
}

pub(crate) fn to_anyhow(err: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{err:#}")
}

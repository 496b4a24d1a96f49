//! The store: everything Tributary keeps, in SQLite (the embedded default, one
//! file in WAL mode) or Postgres (by URL).
//!
//! It owns the schema and its migrations (one folder per backend under
//! `daemon/migrations/`, run at start), the write of a batch of runs with the
//! health they caused in one transaction, the reads the API and the daemon
//! need, the audit log and retention.
//!
//! It must not decide anything: health, reconciliation and scheduling hand it
//! finished rows. Both backends run the same SQL through sqlx's `Any` driver
//! (only integers, text and blobs cross it; times are Unix milliseconds), so
//! there is one implementation to test on both.
//!
//! Health events get their sequence number from the database. The daemon has a
//! single writer, so transactions commit in sequence order: a reader that saw
//! event `n` has seen every event before it (what resumable subscriptions need).
//!
//! Writes have connections of their own, apart from the readers' pool, so a
//! flood of reads never holds a write (the writer's own reads go through them
//! too: [`Store::for_writer`]), and so a write that failed half-way
//! (a full disk, a cut connection) can drop its connections and start again
//! with fresh ones ([`Store::reset_writer`]): a SQLite connection left inside
//! a failed transaction would otherwise keep the file's write lock for good.

mod alerts;
mod dispatch;
mod lineage;
mod model;
mod push;
mod read;
mod slo;
pub mod testing;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use alerts::{
    AlertBacklog, AlertGroupRow, DeliveryFilter, DeliveryRecord, DeliveryRow, DeliveryStatus,
    DeliveryUpdate, DisabledChannelRow, NewDelivery,
};
pub use dispatch::{AlertDue, NotNow};
pub use lineage::{DatasetName, LineageEdge, Neighbour};
pub use model::{
    AuditEntry, DataScope, Deleted, ErrorRow, HealthEvent, IdSetRow, MAX_TIME_MS, NativeRow,
    NewEvent, ObservationRow, Period, Pruned, ReconciliationCounts, ReconciliationRow, Rollup,
    RunFailure, RunRow, RunWrite, StoredError, StoredObservation, Trigger, WindowRow, WriteBatch,
    entity_key, from_ms, parse_entity_key, to_ms,
};
pub use slo::{SliceDelta, StoredSlice};

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://...")]
    Url(String),
    #[error("could not create the folder {path} for the database: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database could not be reached or is not accepting work
    /// right now (down, restarting, unreachable, out of connections, busy):
    /// the same request may succeed later. Anything else is a fault of the
    /// request or of the data, and trying again would fail again.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            // Postgres: class 08 is "connection exception", 57P01-57P03 a
            // server shutting down or starting. SQLite gives (extended) result
            // codes: the primary code is the low byte, and 5 is SQLITE_BUSY,
            // 6 SQLITE_LOCKED, 10 SQLITE_IOERR, 13 SQLITE_FULL (the disk),
            // 14 SQLITE_CANTOPEN.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || ["57P01", "57P02", "57P03"].contains(&&*code)
                    || sqlite_primary_code(&code).is_some_and(|c| [5, 6, 10, 13, 14].contains(&c))
            }),
            _ => false,
        }
    }
}

/// The primary result code of a SQLite error code (`"778"` is
/// SQLITE_IOERR_WRITE, primary 10); `None` for a Postgres SQLSTATE.
fn sqlite_primary_code(code: &str) -> Option<i32> {
    (code.len() < 5)
        .then(|| code.parse::<i32>().ok())
        .flatten()
        .map(|c| c & 0xff)
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    /// Connections for reads.
    pool: AnyPool,
    /// Connections for writes, replaceable after a failed write.
    writer: Arc<WritePool>,
    backend: Backend,
}

/// The writers' pool and how to open another one.
#[derive(Debug)]
struct WritePool {
    pool: RwLock<AnyPool>,
    options: AnyConnectOptions,
}

/// Connections the readers' pool opens at most.
const READ_CONNECTIONS: u32 = 8;

impl Store {
    /// Opens (creating it if needed) the database at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url) = normalise_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = pool_options(backend, READ_CONNECTIONS)
            .connect_with(options.clone())
            .await?;
        let write_pool =
            pool_options(backend, write_connections(backend)).connect_lazy_with(options.clone());
        let store = Store {
            pool,
            writer: Arc::new(WritePool {
                pool: RwLock::new(write_pool),
                options,
            }),
            backend,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The pool writes go through now.
    fn write_pool(&self) -> AnyPool {
        self.writer
            .pool
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The same store, reading through the write connections: for the
    /// writer's own reads (id sets, latest runs, health after a failed write),
    /// so that however many API reads hold the readers' pool, they never
    /// delay a write. Ask again for each read: [`Store::reset_writer`]
    /// replaces the connections.
    pub fn for_writer(&self) -> Store {
        Store {
            pool: self.write_pool(),
            writer: self.writer.clone(),
            backend: self.backend,
        }
    }

    /// Drops the write connections and starts with fresh ones, opened when
    /// next needed. Called after a write failed: whatever that connection
    /// still holds (an open transaction, SQLite's write lock, a broken
    /// socket) goes with it, so the next write can succeed as soon as the
    /// database can take it.
    pub async fn reset_writer(&self) {
        let fresh = pool_options(self.backend, write_connections(self.backend))
            .connect_lazy_with(self.writer.options.clone());
        let old = std::mem::replace(
            &mut *self
                .writer
                .pool
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            fresh,
        );
        // Closing waits for connections in use; none is when the writer
        // calls this, and a stuck one must not hold the writer.
        let _ = tokio::time::timeout(Duration::from_secs(1), old.close()).await;
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.write_pool().close().await;
        self.pool.close().await;
    }
}

/// Connections the writers' pool opens at most. SQLite has one writer at a
/// time whatever the pool, so one connection: writes then wait on the pool
/// rather than on the file lock (WAL lets readers run beside it).
fn write_connections(backend: Backend) -> u32 {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }
}

/// How a pool of `backend` connects: SQLite in WAL mode with foreign keys;
/// Postgres with a short acquire timeout, so that while the server is away an
/// API read says UNAVAILABLE rather than hanging.
fn pool_options(backend: Backend, max_connections: u32) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().max_connections(max_connections);
    match backend {
        Backend::Sqlite => options.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                )
                .await?;
                Ok(())
            })
        }),
        Backend::Postgres => options.acquire_timeout(Duration::from_secs(3)),
    }
}

/// Turns a config URL into what sqlx expects: `sqlite:PATH` and
/// `sqlite://PATH` both name a file (relative to the working directory),
/// created with its folder when missing.
/// `n` bind parameters numbered from `first` (1-based), comma separated:
/// `?` on SQLite (numbered parameters cost it a linear lookup each) and `$N`
/// on Postgres.
fn placeholders(backend: Backend, first: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        match backend {
            Backend::Sqlite => out.push('?'),
            Backend::Postgres => {
                out.push('$');
                out.push_str(&(first + i).to_string());
            }
        }
    }
    out
}

fn normalise_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(StoreError::Url(url.to_owned()));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        // A memory database is a new one per connection: nothing would persist.
        return Err(StoreError::Url(url.to_owned()));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let mut url = format!("sqlite://{path}?mode=rwc");
    if !query.is_empty() {
        url.push('&');
        url.push_str(query);
    }
    Ok((Backend::Sqlite, url))
}

#[cfg(test)]
mod tests;

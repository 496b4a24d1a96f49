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

mod model;
mod read;
pub mod testing;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use model::{
    AuditEntry, DataScope, Deleted, ErrorRow, HealthEvent, IdSetRow, MAX_TIME_MS, NativeRow,
    NewEvent, ObservationRow, Period, Pruned, ReconciliationCounts, ReconciliationRow, Rollup,
    RunFailure, RunRow, RunWrite, StoredError, StoredObservation, Trigger, WriteBatch, entity_key,
    from_ms, parse_entity_key, to_ms,
};

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
            // server shutting down or starting; SQLite: 5 is SQLITE_BUSY,
            // 13 SQLITE_FULL (the disk).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08") || ["57P01", "57P02", "57P03", "5", "13"].contains(&&*code)
            }),
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating it if needed) the database at `url` and brings its
    /// schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url) = normalise_url(url)?;
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    // WAL lets readers run beside the one writer.
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    // While the server is away, an API read says UNAVAILABLE
                    // after this rather than hanging.
                    .acquire_timeout(Duration::from_secs(3))
                    .connect_with(options)
                    .await?
            }
        };
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
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
        self.pool.close().await;
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

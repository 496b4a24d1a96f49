//! Throwaway databases for tests and benchmarks: a SQLite file in a temporary
//! folder, or a fresh schema in the local Postgres, so tests run in parallel
//! without seeing each other's rows.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor, PgConnection};

use super::{Result, Store};

/// The Postgres server tests use: `TRIBUTARY_TEST_PG` or the local server with
/// trust auth (user `root`, database `test`).
pub fn postgres_base_url() -> String {
    std::env::var("TRIBUTARY_TEST_PG")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".to_owned())
}

/// A schema of its own in the test Postgres, dropped by [`PgScratch::drop_schema`].
#[derive(Debug)]
pub struct PgScratch {
    base: String,
    pub schema: String,
    /// A URL whose connections use only `schema`.
    pub url: String,
}

impl PgScratch {
    /// Creates a uniquely named schema (`prefix_<pid>_<n>`).
    pub async fn new(prefix: &str) -> Result<PgScratch> {
        static N: AtomicU64 = AtomicU64::new(0);
        let base = postgres_base_url();
        let schema = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&base).await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        )))
        .await?;
        conn.close().await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Ok(PgScratch { base, schema, url })
    }

    /// Opens a store in the schema.
    pub async fn store(&self) -> Result<Store> {
        Store::open(&self.url).await
    }

    pub async fn drop_schema(self) -> Result<()> {
        let mut conn = PgConnection::connect(&self.base).await?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.schema
        )))
        .await?;
        conn.close().await?;
        Ok(())
    }
}

//! # The snowflake connector
//!
//! Watches tables in Snowflake: per table its row count, size and last
//! change, read from metadata (`<DB>.INFORMATION_SCHEMA.TABLES`, one
//! statement per database), so the account barely notices a run. Per table
//! it can also run a few queries the check configures: an expected count, a
//! freshness column's `MAX`, and the record ids for reconciliation (streamed
//! to the host partition by partition).
//!
//! Wire format: the Snowflake SQL API v2 (`/api/v2/statements`), see the
//! module `api` for the statement protocol (202 and polling, partitions,
//! resubmits), `cells` for how values are encoded, and `auth` for the
//! key-pair JWT. Every request carries `Authorization: Bearer <token>`,
//! `X-Snowflake-Authorization-Token-Type`, `User-Agent`, `Accept` and
//! `Content-Type: application/json`.
//!
//! What a run reports, per table `DB.SCHEMA.TABLE`:
//! - kind `table` (any kind of table) or `view` (views and materialized views);
//! - `received` = ROW_COUNT, extra `bytes` = BYTES, freshness = LAST_ALTERED
//!   (or `MAX(freshness_column)` when configured); views get neither rows
//!   nor freshness;
//! - `expected` from `expected_count_sql`; ids from `ids_sql`;
//! - metadata: table type, owner, transient, clustering key, created, last altered.
//!
//! A per-table query that Snowflake refuses (a table that vanished, an SQL
//! error) becomes an error and a native `error` status on that table only;
//! anything else (auth, the listing itself, time running out) fails the run.

#![cfg(target_arch = "wasm32")]

mod api;
mod auth;
mod catalog;
mod cells;
mod config;

use std::collections::BTreeMap;
use std::time::Duration;

use plugin_sdk::log;
use plugin_sdk::prelude::*;

use crate::api::{Deadline, QueryFailure, ResultSet, Session, SessionOptions, SqlError, Statement};
use crate::auth::Credentials;
use crate::config::{AssetQueries, Config, TableName, quote_ident};

/// The time `test_connection` and `discover` allow themselves: they get no
/// run context, and the host's default deadline is 30 s. Without a context
/// they also date their JWT by `Timestamp::now()`, which reads the host's
/// clock through WASI (the same clock as a context's `now`).
const CALL_BUDGET: Duration = Duration::from_secs(25);

pub struct Snowflake;

impl Snowflake {
    /// A session whose JWT (if any) is issued at `now`, the host's clock.
    fn session(
        cfg: &Config,
        now: Timestamp,
        deadline: Deadline,
    ) -> Result<Session, ConnectorError> {
        let credentials = Credentials::new(&cfg.account, &cfg.auth, now)?;
        let options = SessionOptions {
            base_url: cfg.base_url(),
            warehouse: cfg.warehouse.as_deref(),
            role: cfg.role.as_deref(),
            timeout_secs: cfg.statement_timeout_secs,
            query_tag: &cfg.query_tag,
        };
        Ok(Session::new(options, credentials, deadline))
    }

    /// Runs the configured queries of one table, recording on its
    /// observation what Snowflake refused.
    async fn observe(
        session: &Session,
        name: &TableName,
        queries: &AssetQueries,
        observation: &mut Observation,
    ) -> Result<(), ConnectorError> {
        let statement = |sql: String| Statement {
            sql,
            database: Some(&name.database),
            schema: Some(&name.schema),
            bindings: Vec::new(),
        };
        if let Some(sql) = &queries.expected_count_sql {
            let outcome = match session.run(&statement(sql.clone())).await {
                Ok(result) => first_cell(&result, |column, cell| column.count(cell)),
                Err(err) => Err(query_error(err)?),
            };
            match outcome {
                Ok(Some(count)) => observation.counts.expected = Some(count),
                Ok(None) => refuse(observation, "expected_count_sql", "returned NULL".into()),
                Err(why) => refuse(observation, "expected_count_sql", why),
            }
        }
        if let Some(column) = &queries.freshness_column {
            let sql = format!("SELECT MAX({}) FROM {}", quote_ident(column), name.sql());
            let outcome = match session.run(&statement(sql)).await {
                Ok(result) => first_cell(&result, |column, cell| column.timestamp(cell)),
                Err(err) => Err(query_error(err)?),
            };
            match outcome {
                Ok(at) => {
                    // An empty table has no freshness, whatever LAST_ALTERED says.
                    observation.freshness = at;
                    observation.set_metadata("freshness_source", format_args!("MAX({column})"));
                }
                Err(why) => refuse(observation, "freshness_column", why),
            }
        }
        if let Some(sql) = &queries.ids_sql {
            match session.run(&statement(sql.clone())).await {
                Ok(result) => {
                    let (sent, nulls) = stream_ids(session, &name.key(), result).await?;
                    observation.counts.extras.push(plugin_sdk::NamedCount {
                        name: "ids".into(),
                        value: sent,
                    });
                    if nulls > 0 {
                        observation.record_error(AssetError::new(
                            "null_id",
                            format!("ids_sql returned {nulls} row(s) with a NULL id"),
                        ));
                    }
                }
                Err(err) => refuse(observation, "ids_sql", query_error(err)?),
            }
        }
        Ok(())
    }
}

/// A statement Snowflake refused is the asset's problem (its message);
/// any other failure ends the run.
fn query_error(err: SqlError) -> Result<String, ConnectorError> {
    match err {
        SqlError::Failed(failure) => Ok(failure_text(&failure)),
        SqlError::Other(err) => Err(err),
    }
}

fn failure_text(failure: &QueryFailure) -> String {
    if failure.status == 408 {
        format!(
            "ran past statement_timeout_secs and was cancelled: {}",
            failure.describe()
        )
    } else {
        failure.describe()
    }
}

/// The first cell of a one-row result, read by `read`.
fn first_cell<T>(
    result: &ResultSet,
    read: impl Fn(&cells::Column, Option<&str>) -> Result<Option<T>, String>,
) -> Result<Option<T>, String> {
    let (Some(column), Some(row)) = (result.columns.first(), result.rows.first()) else {
        return Err(format!("statement {} returned no value", result.handle));
    };
    read(column, row[0].as_deref())
}

/// Records a failed per-table query: an error of kind `query` and the
/// native status `error`, so the table turns UNHEALTHY instead of quietly
/// missing a count.
fn refuse(observation: &mut Observation, setting: &str, why: String) {
    let message = format!("{setting}: {why}");
    if observation.native_status.is_none() {
        observation.native_status = Some(NativeStatus::error("query failed").message(&message));
    }
    observation.record_error(AssetError::new("query", message));
}

/// Streams the first column of every row to the host; returns how many ids
/// were sent and how many rows had none.
async fn stream_ids(
    session: &Session,
    asset: &str,
    result: ResultSet,
) -> Result<(u64, u64), ConnectorError> {
    let mut ids = IdStream::new(asset);
    let mut nulls = 0;
    session
        .each_row(result, |row| match row.into_iter().next().flatten() {
            Some(id) => ids.push(id),
            None => {
                nulls += 1;
                Ok(())
            }
        })
        .await?;
    Ok((ids.finish()?, nulls))
}

/// The observation of a configured table the listing did not return.
fn missing(name: &TableName) -> Observation {
    let message = format!(
        "not in {}.INFORMATION_SCHEMA.TABLES: dropped, renamed, or not visible to the role",
        name.database
    );
    Observation::new(name.key(), "table")
        .native_status(NativeStatus::error("missing").message(&message))
        .error(AssetError::new("missing", message))
}

impl Connector for Snowflake {
    type Config = Config;

    fn describe() -> Descriptor {
        Descriptor::new(
            "snowflake",
            env!("CARGO_PKG_VERSION"),
            "Snowflake tables: row counts, bytes and freshness from INFORMATION_SCHEMA, \
             plus optional expected counts, freshness columns and id reconciliation (SQL API v2)",
        )
        .config_schema(config::schema())
        .suggested_host("https://*.snowflakecomputing.com")
    }

    async fn test_connection(cfg: Config) -> Result<(), ConnectorError> {
        cfg.validate()?;
        let session = Self::session(&cfg, Timestamp::now(), Deadline::within(CALL_BUDGET))?;
        let statement = Statement {
            sql: "SELECT CURRENT_VERSION()".into(),
            database: None,
            schema: None,
            bindings: Vec::new(),
        };
        let result = session.run(&statement).await?;
        let version = first_cell(&result, |_, cell| Ok(cell.map(str::to_string)))
            .map_err(ConnectorError::system)?
            .unwrap_or_default();
        log::info("connected to Snowflake", &[("version", &version)]);
        Ok(())
    }

    async fn discover(cfg: Config) -> Result<Vec<AssetDescriptor>, ConnectorError> {
        cfg.validate()?;
        let session = Self::session(&cfg, Timestamp::now(), Deadline::within(CALL_BUDGET))?;
        let mut assets = Vec::new();
        for db in &cfg.databases {
            for table in catalog::list(&session, db).await? {
                assets.push(
                    AssetDescriptor::new(table.name.key(), table.kind())
                        .description(table.describe()),
                );
            }
        }
        Ok(assets)
    }

    async fn collect(cfg: Config, ctx: RunContext) -> Result<Report, ConnectorError> {
        let configured = cfg.validate()?;
        let session = Self::session(&cfg, ctx.now, Deadline::until(ctx.now, ctx.deadline))?;
        let mut observations = Vec::new();
        let mut by_key = BTreeMap::new();
        for db in &cfg.databases {
            let tables = catalog::list(&session, db).await?;
            log::info(
                "listed tables",
                &[("database", &db.name), ("tables", &tables.len())],
            );
            for table in tables {
                by_key.insert(table.name.key(), observations.len());
                observations.push(table.observation());
            }
        }
        for (name, queries) in configured {
            let at = match by_key.get(&name.key()) {
                Some(&at) => at,
                None => {
                    observations.push(missing(&name));
                    observations.len() - 1
                }
            };
            Self::observe(&session, &name, queries, &mut observations[at])
                .await
                .map_err(|err| err.context(format_args!("asset {}", name.key())))?;
        }
        Ok(Report::from(observations))
    }
}

plugin_sdk::export_connector!(Snowflake);

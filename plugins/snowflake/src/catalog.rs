//! Listing tables from `<DB>.INFORMATION_SCHEMA.TABLES`: one statement per
//! database, whatever the number of schemas and tables. The view is served
//! from metadata by the cloud-services layer, so listing scans no table.

use plugin_sdk::{ConnectorError, Observation, Timestamp};

use crate::api::{Session, Statement};
use crate::config::{Database, TableName, quote_ident};

/// The columns read, by name (the order of `rowType` is not relied on).
const COLUMNS: [&str; 11] = [
    "TABLE_CATALOG",
    "TABLE_SCHEMA",
    "TABLE_NAME",
    "TABLE_TYPE",
    "TABLE_OWNER",
    "IS_TRANSIENT",
    "CLUSTERING_KEY",
    "ROW_COUNT",
    "BYTES",
    "CREATED",
    "LAST_ALTERED",
];

/// One row of INFORMATION_SCHEMA.TABLES.
pub struct Table {
    pub name: TableName,
    table_type: String,
    owner: Option<String>,
    is_transient: Option<String>,
    clustering_key: Option<String>,
    row_count: Option<u64>,
    bytes: Option<u64>,
    created: Option<Timestamp>,
    last_altered: Option<Timestamp>,
}

impl Table {
    /// `view` for views and materialized views, `table` for every kind of
    /// table (base, transient, external, dynamic, event...).
    pub fn kind(&self) -> &'static str {
        if self.table_type.ends_with("VIEW") {
            "view"
        } else {
            "table"
        }
    }

    pub fn describe(&self) -> String {
        match self.row_count {
            Some(rows) if self.kind() == "table" => format!("{}, {rows} rows", self.table_type),
            _ => self.table_type.clone(),
        }
    }

    /// What the listing alone says: rows as ROW_COUNT, size as the `bytes`
    /// extra, freshness as LAST_ALTERED. A view has neither rows nor data
    /// of its own, and its LAST_ALTERED only dates its definition, so it
    /// stays in the metadata.
    pub fn observation(&self) -> Observation {
        let mut observation =
            Observation::new(self.name.key(), self.kind()).metadata("table_type", &self.table_type);
        if self.kind() == "table" {
            observation = observation.freshness(self.last_altered);
            if let Some(rows) = self.row_count {
                observation = observation.received(rows);
            }
        }
        if let Some(bytes) = self.bytes {
            observation = observation.extra("bytes", bytes);
        }
        let text = [
            ("owner", &self.owner),
            ("is_transient", &self.is_transient),
            ("clustering_key", &self.clustering_key),
        ];
        for (key, value) in text {
            if let Some(value) = value {
                observation.set_metadata(key, value);
            }
        }
        for (key, value) in [
            ("created", self.created),
            ("last_altered", self.last_altered),
        ] {
            if let Some(at) = value {
                observation.set_metadata(key, at);
            }
        }
        observation
    }
}

/// The database's tables in the configured schemas (and matching the
/// table patterns), ordered by schema and name. Schema names and patterns
/// travel as bindings; the database name, which SQL cannot bind, is quoted.
pub async fn list(session: &Session, db: &Database) -> Result<Vec<Table>, ConnectorError> {
    let placeholders = |n: usize| vec!["?"; n].join(", ");
    let mut sql = format!(
        "SELECT {} FROM {}.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA IN ({})",
        COLUMNS.join(", "),
        quote_ident(&db.name),
        placeholders(db.schemas.len())
    );
    if !db.tables.is_empty() {
        let likes = vec!["TABLE_NAME LIKE ?"; db.tables.len()].join(" OR ");
        sql.push_str(&format!(" AND ({likes})"));
    }
    sql.push_str(" ORDER BY TABLE_SCHEMA, TABLE_NAME");
    let statement = Statement {
        sql,
        database: Some(&db.name),
        schema: None,
        bindings: db.schemas.iter().chain(&db.tables).cloned().collect(),
    };
    let context =
        |err: ConnectorError| err.context(format_args!("listing the tables of {}", db.name));
    let result = session
        .run(&statement)
        .await
        .map_err(|e| context(e.into()))?;
    let index: Vec<usize> = COLUMNS
        .iter()
        .map(|name| result.column(name))
        .collect::<Result<_, _>>()
        .map_err(context)?;
    let columns = result.columns.clone();
    let handle = result.handle.clone();
    let mut tables = Vec::new();
    session
        .each_row(result, |row| {
            let cell = |i: usize| row[index[i]].as_deref();
            let text = |i: usize| cell(i).map(str::to_string);
            let bad =
                |why: String| ConnectorError::system(format_args!("statement {handle}: {why}"));
            let count = |i: usize| columns[index[i]].count(cell(i)).map_err(bad);
            let timestamp = |i: usize| columns[index[i]].timestamp(cell(i)).map_err(bad);
            let required = |i: usize| text(i).ok_or_else(|| bad(format!("{} is NULL", COLUMNS[i])));
            tables.push(Table {
                name: TableName {
                    database: required(0)?,
                    schema: required(1)?,
                    table: required(2)?,
                },
                table_type: required(3)?,
                owner: text(4),
                is_transient: text(5),
                clustering_key: text(6),
                row_count: count(7)?,
                bytes: count(8)?,
                created: timestamp(9)?,
                last_altered: timestamp(10)?,
            });
            Ok(())
        })
        .await
        .map_err(context)?;
    Ok(tables)
}

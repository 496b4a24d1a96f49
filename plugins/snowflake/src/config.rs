//! The check's config, its JSON Schema, and the checks the schema cannot
//! express (asset keys that name a configured database and schema).

use std::collections::BTreeMap;

use plugin_sdk::ConnectorError;
use serde::Deserialize;
use serde_json::{Value, json};

/// Snowflake's own ceiling for a statement's `timeout` (7 days).
const MAX_STATEMENT_TIMEOUT_SECS: u64 = 604_800;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The account identifier: `orgname-account_name`, or an account
    /// locator such as `xy12345.us-east-2.aws`.
    pub account: String,
    /// Where the SQL API lives; `https://<account>.snowflakecomputing.com`
    /// when absent (set it for PrivateLink, or a fake in tests).
    #[serde(default)]
    pub base_url: Option<String>,
    pub auth: Auth,
    #[serde(default)]
    pub warehouse: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    /// Snowflake cancels a statement that runs longer than this.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_secs: u64,
    /// Lets the account's admins find (and bill) our statements in
    /// QUERY_HISTORY.
    #[serde(default = "default_query_tag")]
    pub query_tag: String,
    pub databases: Vec<Database>,
    /// Optional per-table queries, keyed `DATABASE.SCHEMA.TABLE`.
    #[serde(default)]
    pub assets: BTreeMap<String, AssetQueries>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// A key-pair JWT signed here with the user's PKCS#8 private key.
    KeyPair { user: String, private_key: String },
    /// An OAuth access token (Snowflake OAuth or External OAuth).
    Oauth { token: String },
    /// A programmatic access token.
    ProgrammaticAccessToken { token: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// As Snowflake stores it (usually upper case): it is quoted in SQL.
    pub name: String,
    /// Schemas to list, as stored.
    pub schemas: Vec<String>,
    /// `LIKE` patterns on table names; every table when empty.
    #[serde(default)]
    pub tables: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetQueries {
    /// SQL returning one row with one number: the count the table should hold.
    #[serde(default)]
    pub expected_count_sql: Option<String>,
    /// A date or timestamp column whose `MAX` is the table's freshness.
    #[serde(default)]
    pub freshness_column: Option<String>,
    /// SQL returning the table's record ids in its first column.
    #[serde(default)]
    pub ids_sql: Option<String>,
}

/// Where one configured asset lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableName {
    pub database: String,
    pub schema: String,
    pub table: String,
}

impl TableName {
    /// The asset key, `DATABASE.SCHEMA.TABLE`.
    pub fn key(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.table)
    }

    /// The fully qualified, quoted name for SQL.
    pub fn sql(&self) -> String {
        format!(
            "{}.{}.{}",
            quote_ident(&self.database),
            quote_ident(&self.schema),
            quote_ident(&self.table)
        )
    }
}

/// A double-quoted identifier (`"a""b"` for `a"b`): names from the config
/// reach SQL only this way, so none can end the identifier early.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn default_statement_timeout() -> u64 {
    60
}

fn default_query_tag() -> String {
    "tributary".to_string()
}

impl Config {
    /// The checks the JSON Schema cannot make; the daemon validates the
    /// schema first, but a config can also arrive from elsewhere.
    pub fn validate(&self) -> Result<Vec<(TableName, &AssetQueries)>, ConnectorError> {
        let empty = |what: &str| ConnectorError::config(format_args!("{what} must not be empty"));
        if self.account.trim().is_empty() {
            return Err(empty("account"));
        }
        if self.databases.is_empty() {
            return Err(empty("databases"));
        }
        if !(1..=MAX_STATEMENT_TIMEOUT_SECS).contains(&self.statement_timeout_secs) {
            return Err(ConnectorError::config(format_args!(
                "statement_timeout_secs must be between 1 and {MAX_STATEMENT_TIMEOUT_SECS}, not {}",
                self.statement_timeout_secs
            )));
        }
        for (i, db) in self.databases.iter().enumerate() {
            if db.name.is_empty() {
                return Err(empty(&format!("databases[{i}].name")));
            }
            if db.schemas.is_empty() || db.schemas.iter().any(String::is_empty) {
                return Err(ConnectorError::config(format_args!(
                    "databases[{i}].schemas ({}) must list at least one schema, none empty",
                    db.name
                )));
            }
        }
        self.assets
            .iter()
            .map(|(key, queries)| Ok((self.asset_table(key)?, queries)))
            .collect()
    }

    /// `DATABASE.SCHEMA.TABLE`, where the database and schema are listed in
    /// `databases` (else the table would never be looked at).
    fn asset_table(&self, key: &str) -> Result<TableName, ConnectorError> {
        let parts: Vec<&str> = key.split('.').collect();
        let [database, schema, table] = parts[..] else {
            return Err(ConnectorError::config(format_args!(
                "assets key {key:?} must be DATABASE.SCHEMA.TABLE"
            )));
        };
        if table.is_empty() {
            return Err(ConnectorError::config(format_args!(
                "assets key {key:?} has an empty table name"
            )));
        }
        let listed = self
            .databases
            .iter()
            .any(|db| db.name == database && db.schemas.iter().any(|s| s == schema));
        if !listed {
            return Err(ConnectorError::config(format_args!(
                "assets key {key:?}: database {database:?} with schema {schema:?} is not in `databases`"
            )));
        }
        Ok(TableName {
            database: database.to_string(),
            schema: schema.to_string(),
            table: table.to_string(),
        })
    }

    /// The SQL API's origin.
    pub fn base_url(&self) -> String {
        match &self.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            // Account names may hold `_`, which Snowflake spells `-` in host
            // names.
            None => format!(
                "https://{}.snowflakecomputing.com",
                self.account.trim().to_ascii_lowercase().replace('_', "-")
            ),
        }
    }
}

/// The config's JSON Schema (draft 2020-12), as `describe` returns it.
pub fn schema() -> Value {
    let name =
        |description: &str| json!({"type": "string", "minLength": 1, "description": description});
    let secret = |description: &str| json!({"type": "string", "minLength": 1, "x-secret": true, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "snowflake connector config",
        "type": "object",
        "additionalProperties": false,
        "required": ["account", "auth", "databases"],
        "properties": {
            "account": name("Account identifier: orgname-account_name, or an account locator such as xy12345.us-east-2.aws"),
            "base_url": {
                "type": "string",
                "pattern": "^https?://",
                "description": "SQL API origin; default https://<account>.snowflakecomputing.com. Grant it in allowed_hosts"
            },
            "auth": {
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "user", "private_key"],
                        "properties": {
                            "type": {"const": "key_pair"},
                            "user": name("The Snowflake user the public key is assigned to"),
                            "private_key": secret("Unencrypted PKCS#8 PEM private key (BEGIN PRIVATE KEY)")
                        }
                    },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "token"],
                        "properties": {
                            "type": {"const": "oauth"},
                            "token": secret("OAuth access token")
                        }
                    },
                    {
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["type", "token"],
                        "properties": {
                            "type": {"const": "programmatic_access_token"},
                            "token": secret("Programmatic access token")
                        }
                    }
                ]
            },
            "warehouse": name("Warehouse for the statements (case-sensitive, as SHOW WAREHOUSES prints it); the user's default when absent"),
            "role": name("Role for the statements (case-sensitive); the user's default when absent"),
            "statement_timeout_secs": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_STATEMENT_TIMEOUT_SECS,
                "default": 60,
                "description": "Snowflake cancels a statement running longer than this"
            },
            "query_tag": {
                "type": "string",
                "default": "tributary",
                "description": "QUERY_TAG of every statement, to find them in QUERY_HISTORY"
            },
            "databases": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "schemas"],
                    "properties": {
                        "name": name("Database name as stored (usually upper case)"),
                        "schemas": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "minLength": 1},
                            "description": "Schemas to watch, as stored"
                        },
                        "tables": {
                            "type": "array",
                            "items": {"type": "string", "minLength": 1},
                            "description": "LIKE patterns on table names (% and _); every table when absent"
                        }
                    }
                }
            },
            "assets": {
                "type": "object",
                "description": "Per-table queries, keyed DATABASE.SCHEMA.TABLE",
                "propertyNames": {"pattern": "^[^.]+\\.[^.]+\\.[^.]+$"},
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "expected_count_sql": name("SQL returning one number: how many rows the table should hold"),
                        "freshness_column": name("Date or timestamp column whose MAX is the table's freshness"),
                        "ids_sql": name("SQL returning the table's record ids in its first column")
                    }
                }
            }
        }
    })
}

//! The statement protocol of the SQL API v2.
//!
//! - `POST /api/v2/statements?requestId=<uuid>` with the statement and its
//!   context. `200` is a `ResultSet` holding partition 0; `202` a
//!   `QueryStatus` (still running: Snowflake answers so after 45 s even
//!   without `async=true`); `408` a `QueryStatus` (the statement ran past its
//!   `timeout` and Snowflake cancelled it); `422` a `QueryFailureStatus` (the
//!   SQL failed).
//! - A submit that got no answer, a `429` or a `5xx` is sent again with the
//!   same `requestId` and `retry=true`, which Snowflake documents as the way
//!   to resubmit without running the statement twice.
//! - A `202` is followed by polling the `statementStatusUrl` the server gave,
//!   with a growing pause, until `200` or the run's deadline; on giving up
//!   the statement is cancelled (`POST .../cancel`) so it stops costing
//!   warehouse time. Only the path and query of that URL are used, always
//!   against the check's own origin: an absolute URL naming another host is
//!   never followed (it would carry the check's token there).
//! - Polling stops early enough to leave the cancel a time of its own
//!   ([`Deadline`]), and the run's error says whether Snowflake confirmed the
//!   cancel.
//! - Partitions 1..n of a result come from
//!   `GET /api/v2/statements/{handle}?partition=N`, one at a time, and may be
//!   gzip-compressed.
//!
//! Backoff has no jitter: each check is one client, and the scheduler
//! already spreads runs out.

use std::io::Read as _;
use std::time::{Duration, Instant};

use plugin_sdk::http::{Client, RequestBuilder, Response, encode};
use plugin_sdk::{ConnectorError, ErrorClass, Timestamp, log};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::cells::Column;

const STATEMENTS: &str = "/api/v2/statements";

/// How often one request is sent before its failure (429, 5xx, no answer)
/// ends the call.
const MAX_ATTEMPTS: u32 = 4;
/// The pause before the first retry or poll; it doubles up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// The longest one request may take: the server holds a submit up to 45 s
/// before it answers `202`.
const MAX_REQUEST: Duration = Duration::from_secs(60);
/// The largest answer read (a result partition), and the largest a gzip
/// partition may inflate to.
const MAX_RESPONSE_BYTES: usize = 48 << 20;

/// The most time set aside for the cancel of a statement given up at the
/// deadline (a fifth of the run when that is less).
const CANCEL_RESERVE: Duration = Duration::from_secs(3);
/// The most time set aside to return the run's answer to the host (a tenth
/// of the run when that is less).
const ANSWER_RESERVE: Duration = Duration::from_secs(2);
/// The longest a cancel is waited for, whenever it is sent.
const MAX_CANCEL: Duration = Duration::from_secs(5);

/// The time a call may use, measured on the monotonic clock (the host's wall
/// clock is fixed in tests). The run's time is split three ways: work
/// (requests, polls and pauses), then a reserve for cancelling a statement
/// still running when the work time is up, then a reserve to answer the
/// host before it stops the run.
pub struct Deadline {
    started: Instant,
    /// Until the work time is up.
    work: Duration,
    /// Until the cancel's time is up too.
    cancel: Duration,
}

impl Deadline {
    /// Until the run's deadline, both ends read from the host's clock.
    pub fn until(now: Timestamp, deadline: Timestamp) -> Self {
        Self::within(deadline.duration_since(now).unwrap_or_default())
    }

    pub fn within(total: Duration) -> Self {
        let answer = (total / 10).min(ANSWER_RESERVE);
        let cancel = total.saturating_sub(answer);
        Deadline {
            started: Instant::now(),
            work: cancel.saturating_sub((total / 5).min(CANCEL_RESERVE)),
            cancel,
        }
    }

    /// Work time left.
    fn left(&self) -> Duration {
        self.work.saturating_sub(self.started.elapsed())
    }

    /// What a cancel sent now may wait: what is left of the work time and
    /// of the cancel reserve, at most [`MAX_CANCEL`].
    fn left_to_cancel(&self) -> Duration {
        self.cancel
            .saturating_sub(self.started.elapsed())
            .min(MAX_CANCEL)
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// One statement to run. Every binding is `TEXT`: the connector only binds
/// names and patterns.
pub struct Statement<'a> {
    pub sql: String,
    pub database: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub bindings: Vec<String>,
}

/// A finished statement: its columns, the rows of partition 0, and how many
/// rows each partition holds.
pub struct ResultSet {
    pub handle: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<String>>>,
    partition_rows: Vec<u64>,
}

impl ResultSet {
    /// The index of the column called `name` (Snowflake upper-cases
    /// unquoted names).
    pub fn column(&self, name: &str) -> Result<usize, ConnectorError> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ConnectorError::system(format_args!(
                    "the result of statement {} has no column {name}",
                    self.handle
                ))
            })
    }
}

/// Why Snowflake refused a statement: a `422` (the SQL failed) or a `408`
/// (it ran past its timeout and was cancelled).
#[derive(Debug, Clone)]
pub struct QueryFailure {
    pub status: u16,
    pub code: String,
    pub sql_state: String,
    pub message: String,
    pub handle: String,
}

impl QueryFailure {
    /// Message, code, SQLSTATE and handle: the handle finds the statement in
    /// Snowsight's query history.
    pub fn describe(&self) -> String {
        format!(
            "{} (code {}, SQLSTATE {}, statement handle {})",
            self.message.trim(),
            self.code,
            self.sql_state,
            self.handle
        )
    }

    /// A timeout may pass; an SQL compilation error, a missing object or a
    /// missing warehouse is the config's to fix.
    fn class(&self) -> ErrorClass {
        if self.status == 408 {
            return ErrorClass::Transient;
        }
        let state = self.sql_state.as_str();
        if self.message.starts_with("SQL compilation error")
            || state.starts_with("42")
            || matches!(state, "02000" | "0A000" | "57P03")
        {
            ErrorClass::Config
        } else if state.starts_with("28") {
            ErrorClass::Auth
        } else if state == "57014" || state.starts_with("08") {
            ErrorClass::Transient
        } else {
            ErrorClass::System
        }
    }

    pub fn into_error(self) -> ConnectorError {
        let what = if self.status == 408 {
            "the statement ran past its timeout and Snowflake cancelled it"
        } else {
            "the statement failed"
        };
        ConnectorError::new(self.class(), format_args!("{what}: {}", self.describe()))
    }
}

/// A statement that failed in SQL (which a caller may record against one
/// asset) or for any other reason (which ends the call).
#[derive(Debug)]
pub enum SqlError {
    Failed(QueryFailure),
    Other(ConnectorError),
}

impl From<ConnectorError> for SqlError {
    fn from(err: ConnectorError) -> Self {
        SqlError::Other(err)
    }
}

impl From<SqlError> for ConnectorError {
    fn from(err: SqlError) -> Self {
        match err {
            SqlError::Failed(failure) => failure.into_error(),
            SqlError::Other(err) => err,
        }
    }
}

/// What came of asking Snowflake to cancel a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    Confirmed,
    /// Snowflake answered with an error status.
    Refused,
    /// No answer within the cancel's time (or the request failed).
    NoAnswer,
}

impl Cancel {
    /// For the run's error: the statement may still be running unless
    /// Snowflake confirmed, and then its own timeout is what stops it.
    fn worded(self, why: Option<String>, statement_timeout_secs: u64) -> String {
        let why = why.unwrap_or_default();
        let runs_on =
            format!("so it may run on until its statement timeout ({statement_timeout_secs} s)");
        match self {
            Cancel::Confirmed => "cancelled it, and Snowflake confirmed the cancel".to_owned(),
            Cancel::Refused => {
                format!("asked Snowflake to cancel it, which it refused ({why}), {runs_on}")
            }
            Cancel::NoAnswer => {
                format!("asked Snowflake to cancel it but got no answer ({why}), {runs_on}")
            }
        }
    }
}

/// `https://host:port` and the rest (path, query) of an absolute URL;
/// `None` for a relative one.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let scheme = url.find("://")?;
    if !url[..scheme].eq_ignore_ascii_case("https") && !url[..scheme].eq_ignore_ascii_case("http") {
        return None;
    }
    let rest = scheme + 3;
    let end = url[rest..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| rest + i);
    Some(url.split_at(end))
}

/// `QueryStatus` (202, 408), `QueryFailureStatus` (422), `ResultSet` (200):
/// the fields read of any of them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    statement_handle: String,
    #[serde(default)]
    statement_status_url: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    sql_state: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultBody {
    statement_handle: String,
    result_set_meta_data: MetaData,
    #[serde(default)]
    data: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaData {
    #[serde(default)]
    num_rows: Option<u64>,
    row_type: Vec<Column>,
    #[serde(default)]
    partition_info: Vec<PartitionInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartitionInfo {
    row_count: u64,
}

/// A later partition: only its rows are read.
#[derive(Debug, Deserialize)]
struct PartitionBody {
    data: Vec<Vec<Option<String>>>,
}

/// Everything statements share: the client with its auth headers, the
/// deadline, and the context sent with every statement.
pub struct Session {
    client: Client,
    /// `https://host[:port]` of the base URL: where every request goes.
    origin: String,
    deadline: Deadline,
    warehouse: Option<String>,
    role: Option<String>,
    timeout_secs: u64,
    query_tag: String,
}

/// What a [`Session`] needs besides the credentials.
pub struct SessionOptions<'a> {
    pub base_url: String,
    pub warehouse: Option<&'a str>,
    pub role: Option<&'a str>,
    pub timeout_secs: u64,
    pub query_tag: &'a str,
}

impl Session {
    pub fn new(
        options: SessionOptions<'_>,
        credentials: crate::auth::Credentials,
        deadline: Deadline,
    ) -> Self {
        let origin = split_origin(&options.base_url)
            .map_or_else(|| options.base_url.clone(), |(origin, _)| origin.to_owned());
        let client = Client::new()
            .base_url(options.base_url)
            .bearer_auth(&credentials.token)
            .header(
                "X-Snowflake-Authorization-Token-Type",
                credentials.token_type,
            )
            .header(
                "User-Agent",
                concat!("tributary-snowflake/", env!("CARGO_PKG_VERSION")),
            )
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .max_response_bytes(MAX_RESPONSE_BYTES);
        Session {
            client,
            origin,
            deadline,
            warehouse: options.warehouse.map(str::to_string),
            role: options.role.map(str::to_string),
            timeout_secs: options.timeout_secs,
            query_tag: options.query_tag.to_string(),
        }
    }

    /// Runs one statement to its end: submit (and resubmit), poll, and read
    /// partition 0.
    pub async fn run(&self, statement: &Statement<'_>) -> Result<ResultSet, SqlError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = self.body(statement);
        let response = self
            .send("submitting a statement", |resend| {
                let request = self.client.post(STATEMENTS).query("requestId", &request_id);
                let request = if resend {
                    request.query("retry", "true")
                } else {
                    request
                };
                request.json(&body)
            })
            .await?;
        match response.status() {
            202 => {
                let status: StatusBody = response.json()?;
                self.wait(status).await
            }
            _ => finished(response),
        }
    }

    fn body(&self, statement: &Statement<'_>) -> Value {
        let mut body = Map::new();
        body.insert("statement".into(), json!(statement.sql));
        body.insert("timeout".into(), json!(self.timeout_secs));
        let context = [
            ("database", statement.database),
            ("schema", statement.schema),
            ("warehouse", self.warehouse.as_deref()),
            ("role", self.role.as_deref()),
        ];
        for (key, value) in context {
            if let Some(value) = value {
                body.insert(key.into(), json!(value));
            }
        }
        if !statement.bindings.is_empty() {
            let bindings: Map<String, Value> = statement
                .bindings
                .iter()
                .enumerate()
                .map(|(i, value)| ((i + 1).to_string(), json!({"type": "TEXT", "value": value})))
                .collect();
            body.insert("bindings".into(), Value::Object(bindings));
        }
        // One statement only: SQL from the config cannot smuggle a second.
        body.insert(
            "parameters".into(),
            json!({"timezone": "UTC", "query_tag": self.query_tag, "multi_statement_count": 1}),
        );
        Value::Object(body)
    }

    /// Polls a running statement until it ends, or cancels it when the run's
    /// work time is up (the cancel has a reserve of its own).
    async fn wait(&self, status: StatusBody) -> Result<ResultSet, SqlError> {
        let handle = status.statement_handle;
        let mut url = match status.statement_status_url {
            Some(given) => self.on_own_origin(&given),
            None => format!("{STATEMENTS}/{}", encode(&handle)),
        };
        let mut pause = FIRST_PAUSE;
        loop {
            if pause > self.deadline.left() {
                let cancel = self.cancel(&handle).await;
                return Err(ConnectorError::transient(format_args!(
                    "statement {handle} was still running after {} s, at the run's deadline; \
                     {cancel} (raise the check's deadline, or make the query cheaper)",
                    self.deadline.elapsed().as_secs()
                ))
                .into());
            }
            plugin_sdk::sleep(pause.into()).await;
            pause = (pause * 2).min(MAX_PAUSE);
            let response = match self
                .send("polling a statement", |_| self.client.get(&url))
                .await
            {
                Ok(response) => response,
                Err(err) => {
                    let cancel = self.cancel(&handle).await;
                    return Err(err
                        .context(format_args!("statement {handle} (given up: {cancel})"))
                        .into());
                }
            };
            if response.status() != 202 {
                return finished(response);
            }
            let status: StatusBody = response.json()?;
            if let Some(next) = status.statement_status_url {
                url = self.on_own_origin(&next);
            }
        }
    }

    /// The `statementStatusUrl` a server gave, to be followed on the check's
    /// own origin: a relative URL as it is, an absolute one by its path and
    /// query only. Snowflake gives a relative path; an absolute URL naming
    /// another origin is not followed, since the request carries the check's
    /// token and the host to grant is the check's to choose, not the
    /// server's.
    fn on_own_origin(&self, given: &str) -> String {
        let Some((origin, path)) = split_origin(given) else {
            return given.to_owned();
        };
        if !origin.eq_ignore_ascii_case(&self.origin) {
            log::warn(
                "Snowflake named another origin for a statement's status; polling the check's own",
                &[("named", &origin), ("polling", &self.origin)],
            );
        }
        let path = path.split('#').next().unwrap_or_default();
        match path.starts_with('/') {
            true => format!("{}{path}", self.origin),
            false => format!("{}/{path}", self.origin),
        }
    }

    /// Asks Snowflake to stop a statement we no longer wait for, within the
    /// cancel's reserve; says what came of it, for the run's error.
    async fn cancel(&self, handle: &str) -> String {
        let sent = self
            .client
            .post(format!("{STATEMENTS}/{}/cancel", encode(handle)))
            .timeout(self.deadline.left_to_cancel())
            .send_any_status()
            .await;
        let (outcome, why) = match sent.map(Response::error_for_status) {
            Ok(Ok(_)) => (Cancel::Confirmed, None),
            Ok(Err(err)) => (Cancel::Refused, Some(err.message)),
            Err(err) => (Cancel::NoAnswer, Some(err.message)),
        };
        match &why {
            None => log::info("cancelled a statement", &[("handle", &handle)]),
            Some(why) => log::warn(
                "could not cancel a statement",
                &[("handle", &handle), ("error", why)],
            ),
        }
        outcome.worded(why, self.timeout_secs)
    }

    /// Calls `each` with every row of `result`, partition after partition:
    /// only one partition is held at a time.
    pub async fn each_row(
        &self,
        result: ResultSet,
        mut each: impl FnMut(Vec<Option<String>>) -> Result<(), ConnectorError>,
    ) -> Result<(), ConnectorError> {
        let ResultSet {
            handle,
            columns,
            rows,
            partition_rows,
        } = result;
        rows.into_iter().try_for_each(&mut each)?;
        for (partition, expected) in partition_rows.iter().enumerate().skip(1) {
            let response = self
                .send("fetching a result partition", |_| {
                    self.client
                        .get(format!("{STATEMENTS}/{}", encode(&handle)))
                        .query("partition", partition)
                        .header("Accept-Encoding", "gzip")
                })
                .await?
                .error_for_status()?;
            let body: PartitionBody = parse_json(&inflate(&response)?, &response)?;
            check_rows(&handle, partition, &columns, &body.data, Some(*expected))?;
            body.data.into_iter().try_for_each(&mut each)?;
        }
        Ok(())
    }

    /// Sends a request until it gets an answer other than 429 or 5xx, at most
    /// [`MAX_ATTEMPTS`] times and never past the deadline; `build(true)` makes
    /// a resend. The pause is the server's `Retry-After` when it gave one.
    async fn send(
        &self,
        what: &str,
        build: impl Fn(bool) -> RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        let mut attempt = 0;
        loop {
            let left = self.deadline.left();
            if left.is_zero() {
                return Err(ConnectorError::transient(format_args!(
                    "{what}: no time left before the run's deadline"
                )));
            }
            let sent = build(attempt > 0)
                .timeout(left.min(MAX_REQUEST))
                .send_any_status()
                .await;
            let err = match sent {
                Ok(response) if response.status() == 429 || response.status() >= 500 => {
                    match response.error_for_status() {
                        Err(err) => err,
                        Ok(response) => return Ok(response),
                    }
                }
                Ok(response) => return Ok(response),
                Err(err) if err.is_transient() => err,
                Err(err) => return Err(err.context(what)),
            };
            attempt += 1;
            let pause = err
                .retry_after_ms
                .map(Duration::from_millis)
                .unwrap_or_else(|| backoff(attempt));
            if attempt >= MAX_ATTEMPTS || pause > self.deadline.left() {
                return Err(err.context(format_args!("{what}: gave up after {attempt} attempt(s)")));
            }
            log::warn(
                "retrying a Snowflake request",
                &[
                    ("what", &what),
                    ("attempt", &attempt),
                    ("pause_ms", &pause.as_millis()),
                    ("error", &err.message),
                ],
            );
            plugin_sdk::sleep(pause.into()).await;
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1 << attempt.saturating_sub(1).min(8))
        .min(MAX_PAUSE)
}

/// The end of a statement: its result, its failure, or another status.
fn finished(response: Response) -> Result<ResultSet, SqlError> {
    match response.status() {
        200 => Ok(result_set(&response)?),
        408 | 422 => {
            let status: StatusBody = response.json()?;
            Err(SqlError::Failed(QueryFailure {
                status: response.status(),
                code: status.code.unwrap_or_default(),
                sql_state: status.sql_state.unwrap_or_default(),
                message: status.message.unwrap_or_default(),
                handle: status.statement_handle,
            }))
        }
        _ => Err(response
            .error_for_status()
            .err()
            .unwrap_or_else(|| {
                ConnectorError::system("the SQL API answered an unexpected success status")
            })
            .into()),
    }
}

fn result_set(response: &Response) -> Result<ResultSet, ConnectorError> {
    let body: ResultBody = response.json()?;
    let meta = body.result_set_meta_data;
    let partition_rows: Vec<u64> = meta.partition_info.iter().map(|p| p.row_count).collect();
    check_rows(
        &body.statement_handle,
        0,
        &meta.row_type,
        &body.data,
        partition_rows.first().copied(),
    )?;
    if let Some(total) = meta.num_rows
        && !partition_rows.is_empty()
        && partition_rows.iter().sum::<u64>() != total
    {
        return Err(malformed(
            &body.statement_handle,
            format_args!("numRows is {total} but the partitions add up to a different count"),
        ));
    }
    Ok(ResultSet {
        handle: body.statement_handle,
        columns: meta.row_type,
        rows: body.data,
        partition_rows,
    })
}

/// Refuses a partition whose rows do not match the metadata: reading cells
/// by position would otherwise report one column's value as another's.
fn check_rows(
    handle: &str,
    partition: usize,
    columns: &[Column],
    rows: &[Vec<Option<String>>],
    expected: Option<u64>,
) -> Result<(), ConnectorError> {
    if let Some(expected) = expected
        && rows.len() as u64 != expected
    {
        return Err(malformed(
            handle,
            format_args!(
                "partition {partition} has {} rows, partitionInfo says {expected}",
                rows.len()
            ),
        ));
    }
    if let Some((i, row)) = rows
        .iter()
        .enumerate()
        .find(|(_, row)| row.len() != columns.len())
    {
        return Err(malformed(
            handle,
            format_args!(
                "row {i} of partition {partition} has {} cells, rowType has {} columns",
                row.len(),
                columns.len()
            ),
        ));
    }
    Ok(())
}

fn malformed(handle: &str, why: std::fmt::Arguments<'_>) -> ConnectorError {
    ConnectorError::system(format_args!(
        "the result set of statement {handle} is malformed: {why}"
    ))
}

/// The body, inflated when the server gzip-compressed it.
fn inflate(response: &Response) -> Result<Vec<u8>, ConnectorError> {
    let gzip = response
        .header("content-encoding")
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(response.bytes().to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(response.bytes())
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| {
            ConnectorError::system(format_args!(
                "a gzip result partition does not inflate: {err}"
            ))
        })?;
    if out.len() > MAX_RESPONSE_BYTES {
        return Err(ConnectorError::system(format_args!(
            "a result partition inflates to more than {MAX_RESPONSE_BYTES} bytes"
        )));
    }
    Ok(out)
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    response: &Response,
) -> Result<T, ConnectorError> {
    serde_json::from_slice(bytes).map_err(|err| {
        ConnectorError::system(format_args!(
            "a result partition (HTTP {}) is not the expected JSON: {err}",
            response.status()
        ))
    })
}

//! Fake of the Snowflake SQL API v2 (`/work/shared/reference/snowflake.md`,
//! `specs/snowflake-sqlapi-v2.yaml`).
//!
//! Endpoints: `POST /api/v2/statements` (query `requestId`, `retry`),
//! `GET /api/v2/statements/{handle}` (query `partition`), `POST
//! /api/v2/statements/{handle}/cancel`. Like the real service it checks:
//!
//! - `User-Agent` is present (400 without it), `Content-Type` is JSON when
//!   given (415 otherwise), the body parses (400);
//! - the bearer token by its `X-Snowflake-Authorization-Token-Type` (OAUTH
//!   when absent, as the spec says): a key-pair JWT must be RS256, signed by
//!   the configured public key, with `iss = ACCOUNT.USER.SHA256:<fingerprint>`,
//!   `sub = ACCOUNT.USER`, not expired by the [`FakeClock`], and living at
//!   most an hour; OAuth and programmatic access tokens must be known.
//!   Anything else is a 401 with Snowflake's `{code, message}` body;
//! - the warehouse named in the body exists (422 `000606` otherwise).
//!
//! It runs statements by reading them: a small SQL reader understands the
//! shapes a connector sends (`SELECT <columns> FROM <db>.INFORMATION_SCHEMA.TABLES
//! WHERE ... ORDER BY ...` with `IN`, `LIKE`, `=`, `AND`, `OR` over bound
//! `?` values or literals; `SELECT COUNT(*) | MAX(col) | col FROM table`;
//! `SELECT 1`, `SELECT CURRENT_VERSION()`) and evaluates them against its
//! catalogue, answering anything else as Snowflake does a syntax error
//! (422 `001003`). Results use the `jsonv2` encoding (every cell a string:
//! `fixed` decimals, `timestamp_ltz`/`ntz` as `seconds.nanos`, `timestamp_tz`
//! with the offset plus 1440, `date` as days), split into partitions of
//! [`FakeSetup::partition_rows`] rows, later partitions gzip-compressed when
//! the client accepts gzip.
//!
//! Statements on tables marked `slow` (every statement in the `slow`
//! scenario) answer `202` and need [`FakeSetup::slow_polls`] polls of the
//! `statementStatusUrl` before they finish; tables marked `times_out` answer
//! `408`. [`FakeSetup::status_url_origin`] makes that URL absolute on
//! another origin; [`FakeSetup::cancel_delay`] holds the answer to a cancel. A submit with a `requestId` it has seen and `retry=true` returns
//! that statement again instead of running it twice; [`SnowflakeFake::submissions`]
//! records every submit so tests can see it.
//!
//! Scenarios: `healthy`; `stale` (LAST_ALTERED and freshness columns
//! [`FakeSetup::stale_by`] older); `failing` (tables marked
//! `vanishes_when_failing` are gone: not listed, and any statement naming
//! them is a 422 `002003` "does not exist or not authorized"); `slow` (every
//! statement 202, every poll answered after [`FakeSetup::slow_poll_delay`]);
//! `unauthorized` (401 for every request); `rate-limited` (429 with
//! `Retry-After` for every request); `malformed` (200 whose rows miss their
//! last cell and whose `numRows` disagrees with the partitions).
//!
//! Error codes used: `390144` (JWT invalid) and `390303` (OAuth token
//! invalid) on 401; `001003`, `000904`, `002003`, `002049`, `000606`,
//! `000630` (statement timeout), `000604` (cancelled) as Snowflake reports
//! them; `333334` on a 202. The SQL API documents no 429 body.

use std::collections::{HashMap, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use plugin_sdk::harness::{Recorded, Reply, TestServer};
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::sha2::{Digest, Sha256};
use serde_json::{Value, json};

use super::{FakeClock, Scenario, ScenarioSwitch};

/// The public key of `tests/fixtures/snowflake/test_only_rsa_key.p8`.
pub const TEST_PUBLIC_KEY: &str = include_str!("../../fixtures/snowflake/test_only_rsa_key.pub");
/// The private key the tests and the demo give the plugin. Test-only.
pub const TEST_PRIVATE_KEY: &str = include_str!("../../fixtures/snowflake/test_only_rsa_key.p8");

const STATEMENTS: &str = "/api/v2/statements";
/// Statements kept for polls and partition fetches; older ones are
/// forgotten (Snowflake keeps results about a day).
const KEEP_STATEMENTS: usize = 1_000;

/// What the fake knows and how it behaves.
#[derive(Debug, Clone)]
pub struct FakeSetup {
    /// The account as a JWT names it (upper case, no region).
    pub account: String,
    pub user: String,
    /// PEM (`BEGIN PUBLIC KEY`) of the user's key-pair.
    pub public_key_pem: String,
    pub oauth_tokens: Vec<String>,
    pub programmatic_access_tokens: Vec<String>,
    pub warehouses: Vec<String>,
    pub tables: Vec<FakeTable>,
    /// Rows per result partition.
    pub partition_rows: usize,
    /// How many polls a slow statement answers 202 to before it finishes.
    pub slow_polls: u32,
    /// How long each poll takes in the `slow` scenario.
    pub slow_poll_delay: Duration,
    /// `Retry-After` of the `rate-limited` scenario, in seconds.
    pub retry_after_secs: u64,
    /// How much older the data is in the `stale` scenario.
    pub stale_by: Duration,
    /// When set, every `statementStatusUrl` is absolute on this origin
    /// (`http://127.0.0.1:PORT`) instead of a path, as a server (or a proxy
    /// rewriting answers) pointing the client at another host would.
    pub status_url_origin: Option<String>,
    /// How long a cancel takes to be answered (it takes effect at once).
    pub cancel_delay: Duration,
}

/// One table or view of the catalogue.
#[derive(Debug, Clone)]
pub struct FakeTable {
    pub database: String,
    pub schema: String,
    pub name: String,
    /// `BASE TABLE`, `VIEW`...
    pub table_type: String,
    pub owner: String,
    pub transient: bool,
    pub row_count: Option<u64>,
    pub bytes: Option<u64>,
    pub created_ago: Duration,
    pub last_altered_ago: Duration,
    pub freshness: Option<FreshnessColumn>,
    pub ids: Option<IdColumn>,
    pub slow: bool,
    pub times_out: bool,
    pub vanishes_when_failing: bool,
}

/// A date or timestamp column and how long ago its latest value is.
#[derive(Debug, Clone)]
pub struct FreshnessColumn {
    pub name: String,
    pub time_type: TimeType,
    pub ago: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeType {
    Ltz,
    Ntz,
    /// With this offset from UTC, in minutes.
    Tz(i32),
    Date,
}

/// A column of record ids: `fixed` numbers or `text`.
#[derive(Debug, Clone)]
pub struct IdColumn {
    pub name: String,
    pub ids: Vec<String>,
    pub numeric: bool,
}

impl FakeTable {
    /// A base table.
    pub fn table(database: &str, schema: &str, name: &str, rows: u64, bytes: u64) -> Self {
        FakeTable {
            database: database.into(),
            schema: schema.into(),
            name: name.into(),
            table_type: "BASE TABLE".into(),
            owner: "LOADER".into(),
            transient: false,
            row_count: Some(rows),
            bytes: Some(bytes),
            created_ago: Duration::from_secs(90 * 86_400),
            last_altered_ago: Duration::from_secs(600),
            freshness: None,
            ids: None,
            slow: false,
            times_out: false,
            vanishes_when_failing: false,
        }
    }

    /// A view: no rows or bytes of its own.
    pub fn view(database: &str, schema: &str, name: &str) -> Self {
        FakeTable {
            table_type: "VIEW".into(),
            row_count: None,
            bytes: None,
            ..Self::table(database, schema, name, 0, 0)
        }
    }

    pub fn last_altered(mut self, ago: Duration) -> Self {
        self.last_altered_ago = ago;
        self
    }

    pub fn freshness(mut self, column: &str, time_type: TimeType, ago: Duration) -> Self {
        self.freshness = Some(FreshnessColumn {
            name: column.into(),
            time_type,
            ago,
        });
        self
    }

    pub fn ids(mut self, column: &str, ids: Vec<String>, numeric: bool) -> Self {
        self.ids = Some(IdColumn {
            name: column.into(),
            ids,
            numeric,
        });
        self
    }

    pub fn transient(mut self) -> Self {
        self.transient = true;
        self
    }

    pub fn slow(mut self) -> Self {
        self.slow = true;
        self
    }

    pub fn times_out(mut self) -> Self {
        self.times_out = true;
        self
    }

    pub fn vanishes_when_failing(mut self) -> Self {
        self.vanishes_when_failing = true;
        self
    }

    pub fn key(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.name)
    }
}

impl FakeSetup {
    /// Account `MYORG-MYACCOUNT`, user `TRIBUTARY` with the test-only key,
    /// OAuth token `test-oauth-token`, programmatic access token `test-pat`,
    /// warehouse `MONITOR_WH`, and two databases:
    ///
    /// | table | rows | notes |
    /// | --- | --- | --- |
    /// | ANALYTICS.PUBLIC.ORDERS | 2,500 | ids `ID` 1..=2500; `UPDATED_AT` ltz; vanishes when failing |
    /// | ANALYTICS.PUBLIC.CUSTOMERS | 48,210 | `LOADED_AT` ntz |
    /// | ANALYTICS.PUBLIC.ORDERS_V | view | |
    /// | ANALYTICS.STAGING.EVENTS | 9,007,199,254,740,993 | `EVENT_TS` tz at UTC-8; transient |
    /// | RAW.LANDING.ORDERS_LANDING | 2,512 | `LOAD_DATE` date |
    /// | RAW.LANDING.AUDIT_LOG | 77 | slow |
    /// | RAW.LANDING.HUGE | 1,000,000,000 | times out |
    pub fn example() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        FakeSetup {
            account: "MYORG-MYACCOUNT".into(),
            user: "TRIBUTARY".into(),
            public_key_pem: TEST_PUBLIC_KEY.into(),
            oauth_tokens: vec!["test-oauth-token".into()],
            programmatic_access_tokens: vec!["test-pat".into()],
            warehouses: vec!["MONITOR_WH".into()],
            tables: vec![
                FakeTable::table("ANALYTICS", "PUBLIC", "ORDERS", 2_500, 1_048_576)
                    .last_altered(minutes(5))
                    .freshness(
                        "UPDATED_AT",
                        TimeType::Ltz,
                        Duration::new(7 * 60, 876_543_211),
                    )
                    .ids("ID", (1..=2_500).map(|i| i.to_string()).collect(), true)
                    .vanishes_when_failing(),
                FakeTable::table("ANALYTICS", "PUBLIC", "CUSTOMERS", 48_210, 5_242_880)
                    .last_altered(minutes(30))
                    .freshness("LOADED_AT", TimeType::Ntz, minutes(45)),
                FakeTable::view("ANALYTICS", "PUBLIC", "ORDERS_V")
                    .last_altered(minutes(3 * 24 * 60)),
                FakeTable::table(
                    "ANALYTICS",
                    "STAGING",
                    "EVENTS",
                    9_007_199_254_740_993,
                    123_456_789_012,
                )
                .last_altered(minutes(2))
                .freshness(
                    "EVENT_TS",
                    TimeType::Tz(-480),
                    Duration::new(90, 500_000_000),
                )
                .transient(),
                FakeTable::table("RAW", "LANDING", "ORDERS_LANDING", 2_512, 1_100_000)
                    .last_altered(minutes(20))
                    .freshness("LOAD_DATE", TimeType::Date, Duration::ZERO),
                FakeTable::table("RAW", "LANDING", "AUDIT_LOG", 77, 4_096).slow(),
                FakeTable::table("RAW", "LANDING", "HUGE", 1_000_000_000, 1 << 40).times_out(),
            ],
            partition_rows: 1_000,
            slow_polls: 3,
            slow_poll_delay: Duration::from_secs(2),
            retry_after_secs: 30,
            stale_by: Duration::from_secs(3 * 86_400),
            status_url_origin: None,
            cancel_delay: Duration::ZERO,
        }
    }
}

/// One `POST /api/v2/statements` as received.
#[derive(Debug, Clone)]
pub struct Submission {
    pub request_id: Option<String>,
    pub retry: bool,
    pub statement: String,
    /// Binding values in order (`"1"`, `"2"`...).
    pub bindings: Vec<String>,
    pub body: Value,
    /// The statement's handle, when it got one.
    pub handle: Option<String>,
}

/// An answer forced on the next submits, to test retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Run the statement, then answer this 5xx (as if the answer was lost).
    ServerError(u16),
    /// Answer 429 with this `Retry-After` (seconds) without running anything.
    RateLimited(u64),
}

/// The fake service; clones share state.
#[derive(Clone)]
pub struct SnowflakeFake {
    inner: Arc<Inner>,
}

struct Inner {
    clock: FakeClock,
    scenario: ScenarioSwitch,
    setup: FakeSetup,
    public_key: rsa::PublicKey,
    fingerprint: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_handle: u64,
    statements: HashMap<String, Stored>,
    order: VecDeque<String>,
    by_request: HashMap<String, String>,
    submissions: VecDeque<Submission>,
    cancelled: Vec<String>,
    faults: VecDeque<Fault>,
}

struct Stored {
    request_id: Option<String>,
    outcome: Outcome,
    polls_left: u32,
    cancelled: bool,
    created_ms: i64,
    timeout: u64,
}

#[derive(Clone)]
enum Outcome {
    Rows {
        columns: Vec<ColumnSpec>,
        rows: Vec<Vec<Option<String>>>,
    },
    Failed(Failure),
    TimedOut,
}

#[derive(Debug, Clone)]
struct Failure {
    code: &'static str,
    sql_state: &'static str,
    message: String,
}

impl Failure {
    fn new(code: &'static str, sql_state: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            sql_state,
            message: message.into(),
        }
    }

    fn syntax(token: &str) -> Self {
        Failure::new(
            "001003",
            "42000",
            format!(
                "SQL compilation error:\nsyntax error line 1 at position 0 unexpected '{token}'."
            ),
        )
    }

    fn invalid_identifier(name: &str) -> Self {
        Failure::new(
            "000904",
            "42000",
            format!(
                "SQL compilation error: error line 1 at position 7\ninvalid identifier '{name}'"
            ),
        )
    }

    fn missing(what: &str, name: &str) -> Self {
        Failure::new(
            "002003",
            "02000",
            format!("SQL compilation error:\n{what} '{name}' does not exist or not authorized."),
        )
    }
}

#[derive(Debug, Clone)]
struct ColumnSpec {
    name: String,
    type_name: &'static str,
    scale: Option<u32>,
}

impl ColumnSpec {
    fn new(name: &str, type_name: &'static str) -> Self {
        let scale = match type_name {
            "fixed" => Some(0),
            t if t.starts_with("timestamp") => Some(9),
            _ => None,
        };
        ColumnSpec {
            name: name.into(),
            type_name,
            scale,
        }
    }

    fn row_type(&self) -> Value {
        let text = self.type_name == "text";
        json!({
            "name": self.name,
            "database": "",
            "schema": "",
            "table": "",
            "type": self.type_name,
            "nullable": true,
            "precision": if self.type_name == "fixed" { json!(38) } else { Value::Null },
            "scale": self.scale,
            "length": if text { json!(16_777_216) } else { Value::Null },
            "byteLength": if text { json!(16_777_216) } else { Value::Null },
            "collation": Value::Null,
        })
    }
}

impl SnowflakeFake {
    /// # Panics
    /// When `setup.public_key_pem` is not a PEM public key: a test bug.
    pub fn new(clock: FakeClock, scenario: ScenarioSwitch, setup: FakeSetup) -> Self {
        let public_key = rsa::PublicKey::from_public_key_pem(setup.public_key_pem.trim())
            .expect("FakeSetup::public_key_pem is a PEM public key");
        let der = public_key
            .to_public_key_der()
            .expect("a public key encodes as DER");
        let fingerprint = STANDARD.encode(Sha256::digest(der.as_bytes()));
        SnowflakeFake {
            inner: Arc::new(Inner {
                clock,
                scenario,
                setup,
                public_key,
                fingerprint,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// On a free loopback port.
    pub async fn start(self) -> TestServer {
        TestServer::start(move |r| self.handle(r)).await
    }

    /// `SHA256:<base64>`, as `DESCRIBE USER` shows the key's fingerprint.
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", self.inner.fingerprint)
    }

    /// Every submit received (the latest 1,000), oldest first.
    pub fn submissions(&self) -> Vec<Submission> {
        self.state().submissions.iter().cloned().collect()
    }

    /// Handles of the statements cancelled by the client.
    pub fn cancelled(&self) -> Vec<String> {
        self.state().cancelled.clone()
    }

    /// Answer the next submits with these faults, one each, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state().faults.extend(faults);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("snowflake fake state")
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Answers one request, following the SQL API's wire format.
    pub fn handle(&self, req: &Recorded) -> Reply {
        let scenario = self.inner.scenario.get();
        if scenario == Scenario::Unauthorized {
            return unauthorized(&token_type(req));
        }
        if scenario == Scenario::RateLimited {
            return Reply::status(429).header(
                "Retry-After",
                &self.inner.setup.retry_after_secs.to_string(),
            );
        }
        let Some(rest) = req.path.strip_prefix(STATEMENTS) else {
            return Reply::json(404, json!({"message": "Not found"}));
        };
        if req.header("user-agent").is_none_or(str::is_empty) {
            return Reply::json(
                400,
                json!({"message": "The User-Agent header is required."}),
            );
        }
        if let Some(content_type) = req.header("content-type")
            && !content_type
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        {
            return Reply::json(
                415,
                json!({"message": format!("Unsupported media type {content_type:?}: the API accepts application/json only.")}),
            );
        }
        if let Err(reply) = self.authenticate(req) {
            return reply;
        }
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (req.method.as_str(), segments.as_slice()) {
            ("POST", []) => self.submit(req),
            ("GET", [handle]) => self.status(req, handle, scenario),
            ("POST", [handle, "cancel"]) => self.cancel(handle),
            (_, [] | [_] | [_, "cancel"]) => {
                Reply::json(405, json!({"message": "Method not allowed"}))
            }
            _ => Reply::json(404, json!({"message": "Not found"})),
        }
    }

    fn authenticate(&self, req: &Recorded) -> Result<(), Reply> {
        let token_type = token_type(req);
        let token = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized(&token_type))?;
        let setup = &self.inner.setup;
        let known = |tokens: &[String]| tokens.iter().any(|t| t == token);
        let ok = match token_type.as_str() {
            "KEYPAIR_JWT" => self.verify_jwt(token).is_ok(),
            "OAUTH" => known(&setup.oauth_tokens),
            "PROGRAMMATIC_ACCESS_TOKEN" => known(&setup.programmatic_access_tokens),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(unauthorized(&token_type))
        }
    }

    /// Why a JWT is refused, as Snowflake checks it.
    pub fn verify_jwt(&self, token: &str) -> Result<(), String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err("not three dot-separated parts".into());
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| format!("bad base64url: {e}"))
        };
        let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
        if header["alg"] != "RS256" {
            return Err(format!("alg is {}, not RS256", header["alg"]));
        }
        let signed = format!("{}.{}", parts[0], parts[1]);
        self.inner
            .public_key
            .pkcs1v15_verify::<Sha256>(signed.as_bytes(), &decode(signature)?)
            .map_err(|_| "the signature does not verify with the user's public key".to_string())?;
        let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
        let setup = &self.inner.setup;
        let subject = format!(
            "{}.{}",
            setup.account.to_ascii_uppercase(),
            setup.user.to_ascii_uppercase()
        );
        let issuer = format!("{subject}.SHA256:{}", self.inner.fingerprint);
        if claims["sub"] != subject.as_str() {
            return Err(format!("sub is {}, not {subject}", claims["sub"]));
        }
        if claims["iss"] != issuer.as_str() {
            return Err(format!("iss is {}, not {issuer}", claims["iss"]));
        }
        let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
            return Err("iat and exp must be integers".into());
        };
        let now = self.now().timestamp();
        if exp <= now {
            return Err(format!("expired at {exp}, now is {now}"));
        }
        if exp - iat > 3_600 {
            return Err(format!("lives {} s, more than an hour", exp - iat));
        }
        if iat > now + 60 {
            return Err(format!("issued in the future ({iat}, now is {now})"));
        }
        Ok(())
    }

    fn submit(&self, req: &Recorded) -> Reply {
        let request_id = req.query_param("requestId").map(str::to_string);
        if let Some(id) = &request_id
            && !is_uuid(id)
        {
            return Reply::json(
                400,
                json!({"message": format!("requestId {id:?} is not a UUID")}),
            );
        }
        let retry = req.query_param("retry") == Some("true");
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(body @ Value::Object(_)) => body,
            _ => {
                return Reply::json(
                    400,
                    json!({"message": "Unable to parse the JSON request body."}),
                );
            }
        };
        let Some(statement) = body["statement"].as_str().map(str::to_string) else {
            return Reply::json(400, json!({"message": "The statement field is required."}));
        };
        if !body["timeout"].is_null() && body["timeout"].as_u64().is_none() {
            return Reply::json(
                400,
                json!({"message": "timeout must be a non-negative integer."}),
            );
        }
        let Some(bindings) = read_bindings(&body["bindings"]) else {
            return Reply::json(
                400,
                json!({"message": "bindings must map positions to {type, value} strings."}),
            );
        };
        let mut submission = Submission {
            request_id: request_id.clone(),
            retry,
            statement: statement.clone(),
            bindings: bindings.clone(),
            body: body.clone(),
            handle: None,
        };

        let mut state = self.state();
        // A resubmit of a statement already received: answer it as it stands.
        if retry
            && let Some(handle) = request_id
                .as_ref()
                .and_then(|id| state.by_request.get(id))
                .cloned()
        {
            submission.handle = Some(handle.clone());
            record(&mut state, submission);
            return self.answer(&mut state, &handle);
        }
        let fault = state.faults.pop_front();
        if let Some(Fault::RateLimited(secs)) = fault {
            record(&mut state, submission);
            return Reply::status(429).header("Retry-After", &secs.to_string());
        }

        let timeout = body["timeout"].as_u64().unwrap_or(172_800);
        let (outcome, slow) = match body["warehouse"].as_str() {
            Some(wh) if !self.inner.setup.warehouses.iter().any(|w| w == wh) => (
                Outcome::Failed(Failure::new(
                    "000606",
                    "57P03",
                    "No active warehouse selected in the current session.  Select an active warehouse with the 'use warehouse' command.",
                )),
                false,
            ),
            _ => self.execute(&statement, &bindings, &body),
        };
        let slow = slow || self.inner.scenario.get() == Scenario::Slow;
        state.next_handle += 1;
        let handle = format!("01b9f00d-0000-4000-8000-{:012x}", state.next_handle);
        let stored = Stored {
            request_id: request_id.clone(),
            outcome,
            polls_left: if slow { self.inner.setup.slow_polls } else { 0 },
            cancelled: false,
            created_ms: self.now().timestamp_millis(),
            timeout,
        };
        state.statements.insert(handle.clone(), stored);
        state.order.push_back(handle.clone());
        if let Some(id) = &request_id {
            state.by_request.insert(id.clone(), handle.clone());
        }
        while state.order.len() > KEEP_STATEMENTS {
            if let Some(old) = state.order.pop_front()
                && let Some(gone) = state.statements.remove(&old)
                && let Some(id) = gone.request_id
            {
                state.by_request.remove(&id);
            }
        }
        submission.handle = Some(handle.clone());
        record(&mut state, submission);
        if let Some(Fault::ServerError(status)) = fault {
            return Reply::json(
                status,
                json!({"message": "Service unavailable. Retry with backoff."}),
            );
        }
        if slow {
            return self.query_status(202, &handle, state.statements.get(&handle));
        }
        self.answer(&mut state, &handle)
    }

    /// `GET /api/v2/statements/{handle}`: still running, or one partition.
    fn status(&self, req: &Recorded, handle: &str, scenario: Scenario) -> Reply {
        let delay = (scenario == Scenario::Slow).then_some(self.inner.setup.slow_poll_delay);
        let with_delay = |reply: Reply| match delay {
            Some(d) => reply.delay(d),
            None => reply,
        };
        let mut state = self.state();
        let Some(stored) = state.statements.get_mut(handle) else {
            return Reply::json(
                404,
                json!({"message": format!("Statement {handle} not found.")}),
            );
        };
        if stored.polls_left > 0 && !stored.cancelled {
            stored.polls_left -= 1;
            return with_delay(self.query_status(202, handle, state.statements.get(handle)));
        }
        let partition = match req.query_param("partition").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                return Reply::json(
                    400,
                    json!({"message": "partition must be a non-negative integer."}),
                );
            }
        };
        if partition == 0 {
            return with_delay(self.answer(&mut state, handle));
        }
        let gzip = req
            .header("accept-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"));
        let Some(Outcome::Rows { rows, .. }) = state.statements.get(handle).map(|s| &s.outcome)
        else {
            return self.answer(&mut state, handle);
        };
        let partitions: Vec<&[Vec<Option<String>>]> = rows
            .chunks(self.inner.setup.partition_rows.max(1))
            .collect();
        let Some(data) = partitions.get(partition) else {
            return Reply::json(
                400,
                json!({"message": format!("partition {partition} out of range (0 to {})", partitions.len().saturating_sub(1))}),
            );
        };
        let data = self.maybe_break(data.to_vec());
        let body = json!({"data": data}).to_string();
        if gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder
                .write_all(body.as_bytes())
                .expect("gzip into memory");
            let compressed = encoder.finish().expect("gzip into memory");
            return with_delay(
                Reply::status(200)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(compressed),
            );
        }
        with_delay(
            Reply::status(200)
                .header("content-type", "application/json")
                .body(body),
        )
    }

    fn cancel(&self, handle: &str) -> Reply {
        let mut state = self.state();
        let Some(stored) = state.statements.get_mut(handle) else {
            return Reply::json(
                404,
                json!({"message": format!("Statement {handle} not found.")}),
            );
        };
        stored.cancelled = true;
        state.cancelled.push(handle.to_string());
        Reply::json(
            200,
            json!({
                "code": "000604",
                "sqlState": "57014",
                "message": "successfully canceled",
                "statementHandle": handle,
                "statementStatusUrl": self.status_url(handle, None),
            }),
        )
        .delay(self.inner.setup.cancel_delay)
    }

    /// A statement's current answer: its result, or its failure.
    fn answer(&self, state: &mut State, handle: &str) -> Reply {
        let Some(stored) = state.statements.get(handle) else {
            return Reply::json(
                404,
                json!({"message": format!("Statement {handle} not found.")}),
            );
        };
        if stored.cancelled {
            return self.failure(
                422,
                handle,
                stored,
                &Failure::new("000604", "57014", "SQL execution canceled"),
            );
        }
        if stored.polls_left > 0 {
            return self.query_status(202, handle, Some(stored));
        }
        match &stored.outcome {
            Outcome::TimedOut => {
                let failure = Failure::new(
                    "000630",
                    "57014",
                    format!(
                        "Statement reached its statement or warehouse timeout of {} second(s) and was canceled.",
                        stored.timeout
                    ),
                );
                self.failure(408, handle, stored, &failure)
            }
            Outcome::Failed(failure) => self.failure(422, handle, stored, failure),
            Outcome::Rows { columns, rows } => {
                let size = self.inner.setup.partition_rows.max(1);
                let partitions: Vec<&[Vec<Option<String>>]> = rows.chunks(size).collect();
                let partition_info: Vec<Value> = if partitions.is_empty() {
                    vec![json!({"rowCount": 0, "uncompressedSize": 0})]
                } else {
                    partitions
                        .iter()
                        .map(|p| json!({"rowCount": p.len(), "uncompressedSize": json!(p).to_string().len()}))
                        .collect()
                };
                let first = partitions.first().map(|p| p.to_vec()).unwrap_or_default();
                let mut num_rows = rows.len();
                if self.inner.scenario.get() == Scenario::Malformed {
                    num_rows += 1;
                }
                let last = partition_info.len() - 1;
                // Partition 0 is this answer; `next` only when there is one.
                let mut links = vec![(0, "first")];
                if last > 0 {
                    links.push((1, "next"));
                }
                links.push((last, "last"));
                let link = links
                    .iter()
                    .map(|(n, rel)| format!("<{STATEMENTS}/{handle}?partition={n}>; rel=\"{rel}\""))
                    .collect::<Vec<_>>()
                    .join(",");
                let body = json!({
                    "code": "090001",
                    "sqlState": "00000",
                    "message": "Statement executed successfully.",
                    "statementHandle": handle,
                    "createdOn": stored.created_ms,
                    "statementStatusUrl": self.status_url(handle, stored.request_id.as_deref()),
                    "resultSetMetaData": {
                        "numRows": num_rows,
                        "format": "jsonv2",
                        "partitionInfo": partition_info,
                        "rowType": columns.iter().map(ColumnSpec::row_type).collect::<Vec<_>>(),
                        "nullable": true,
                        "parameters": {
                            "TIMEZONE": "UTC",
                            "TIMESTAMP_OUTPUT_FORMAT": "YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM",
                            "DATE_OUTPUT_FORMAT": "YYYY-MM-DD",
                        },
                    },
                    "data": self.maybe_break(first),
                });
                Reply::json(200, body).header("link", &link)
            }
        }
    }

    /// In the malformed scenario every row loses its last cell.
    fn maybe_break(&self, mut rows: Vec<Vec<Option<String>>>) -> Vec<Vec<Option<String>>> {
        if self.inner.scenario.get() == Scenario::Malformed {
            for row in &mut rows {
                row.pop();
            }
        }
        rows
    }

    /// Where the client polls a statement: a path, as Snowflake gives it,
    /// or an absolute URL on [`FakeSetup::status_url_origin`].
    fn status_url(&self, handle: &str, request_id: Option<&str>) -> String {
        let origin = self.inner.setup.status_url_origin.as_deref().unwrap_or("");
        match request_id {
            Some(id) => format!("{origin}{STATEMENTS}/{handle}?requestId={id}"),
            None => format!("{origin}{STATEMENTS}/{handle}"),
        }
    }

    fn query_status(&self, status: u16, handle: &str, stored: Option<&Stored>) -> Reply {
        Reply::json(
            status,
            json!({
                "code": "333334",
                "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
                "statementHandle": handle,
                "createdOn": stored.map(|s| s.created_ms),
                "statementStatusUrl": self.status_url(handle, stored.and_then(|s| s.request_id.as_deref())),
            }),
        )
    }

    fn failure(&self, status: u16, handle: &str, stored: &Stored, failure: &Failure) -> Reply {
        Reply::json(
            status,
            json!({
                "code": failure.code,
                "sqlState": failure.sql_state,
                "message": failure.message,
                "statementHandle": handle,
                "createdOn": stored.created_ms,
                "statementStatusUrl": self.status_url(handle, stored.request_id.as_deref()),
            }),
        )
    }

    /// Runs a statement against the catalogue; also says whether it touched
    /// a slow table.
    fn execute(&self, statement: &str, bindings: &[String], body: &Value) -> (Outcome, bool) {
        let query = match parse(statement) {
            Ok(query) => query,
            Err(failure) => return (Outcome::Failed(failure), false),
        };
        let mut values = bindings.iter();
        let mut bind = |value: &Operand| -> Result<String, Failure> {
            match value {
                Operand::Literal(text) => Ok(text.clone()),
                Operand::Param => values.next().cloned().ok_or_else(|| {
                    Failure::new(
                        "002049",
                        "42601",
                        "SQL compilation error: error line 1 at position 0\nBind variable ? not set.",
                    )
                }),
            }
        };
        let result = match query {
            Query::Constant(items) => self.constant(&items),
            Query::Tables {
                database,
                items,
                filter,
                order,
            } => {
                let filter = match filter.map(|f| f.bind(&mut bind)).transpose() {
                    Ok(filter) => filter,
                    Err(failure) => return (Outcome::Failed(failure), false),
                };
                self.information_schema(&database, &items, filter.as_ref(), &order)
            }
            Query::Table { name, item } => {
                return match self.resolve(&name, body) {
                    Ok(table) if table.times_out => (Outcome::TimedOut, table.slow),
                    Ok(table) => (
                        self.table_query(table, &item)
                            .unwrap_or_else(Outcome::Failed),
                        table.slow,
                    ),
                    Err(failure) => (Outcome::Failed(failure), false),
                };
            }
        };
        (result.unwrap_or_else(Outcome::Failed), false)
    }

    fn constant(&self, items: &[Item]) -> Result<Outcome, Failure> {
        let mut columns = Vec::new();
        let mut row = Vec::new();
        for item in items {
            match item {
                Item::Number(n) => {
                    columns.push(ColumnSpec::new(n, "fixed"));
                    row.push(Some(n.clone()));
                }
                Item::Call(f) if f == "CURRENT_VERSION" => {
                    columns.push(ColumnSpec::new("CURRENT_VERSION()", "text"));
                    row.push(Some("9.38.1".into()));
                }
                Item::Call(f) => {
                    return Err(Failure::new(
                        "002140",
                        "42601",
                        format!("SQL compilation error:\nUnknown function {f}"),
                    ));
                }
                Item::Column(c) | Item::Max(c) => return Err(Failure::invalid_identifier(c)),
                Item::Count => return Err(Failure::syntax("COUNT")),
            }
        }
        Ok(Outcome::Rows {
            columns,
            rows: vec![row],
        })
    }

    fn visible(&self) -> impl Iterator<Item = &FakeTable> {
        let failing = self.inner.scenario.get() == Scenario::Failing;
        self.inner
            .setup
            .tables
            .iter()
            .filter(move |t| !(failing && t.vanishes_when_failing))
    }

    fn age(&self, ago: Duration) -> DateTime<Utc> {
        let stale = if self.inner.scenario.get() == Scenario::Stale {
            self.inner.setup.stale_by
        } else {
            Duration::ZERO
        };
        self.now() - chrono::Duration::from_std(ago + stale).expect("a sane age")
    }

    fn information_schema(
        &self,
        database: &str,
        items: &[Item],
        filter: Option<&Filter<String>>,
        order: &[String],
    ) -> Result<Outcome, Failure> {
        if !self
            .inner
            .setup
            .tables
            .iter()
            .any(|t| t.database == database)
        {
            return Err(Failure::missing("Database", database));
        }
        let names: Vec<&str> = items
            .iter()
            .map(|item| match item {
                Item::Column(c) => Ok(c.as_str()),
                Item::Number(n) => Err(Failure::syntax(n)),
                _ => Err(Failure::syntax("(")),
            })
            .collect::<Result<_, _>>()?;
        let columns: Vec<ColumnSpec> = names
            .iter()
            .map(|name| {
                info_schema_type(name)
                    .map(|t| ColumnSpec::new(name, t))
                    .ok_or_else(|| Failure::invalid_identifier(name))
            })
            .collect::<Result<_, _>>()?;
        for name in order {
            if info_schema_type(name).is_none() {
                return Err(Failure::invalid_identifier(name));
            }
        }
        if let Some(filter) = filter {
            filter.check_columns()?;
        }
        let mut tables: Vec<&FakeTable> = self
            .visible()
            .filter(|t| t.database == database)
            .filter(|t| filter.is_none_or(|f| f.matches(&|column| self.info_text(t, column))))
            .collect();
        tables.sort_by(|a, b| {
            order
                .iter()
                .map(|c| self.info_text(a, c).cmp(&self.info_text(b, c)))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let rows = tables
            .iter()
            .map(|t| names.iter().map(|c| self.info_cell(t, c)).collect())
            .collect();
        Ok(Outcome::Rows { columns, rows })
    }

    fn info_text(&self, table: &FakeTable, column: &str) -> String {
        self.info_cell(table, column).unwrap_or_default()
    }

    fn info_cell(&self, table: &FakeTable, column: &str) -> Option<String> {
        let ltz = |at: DateTime<Utc>| Some(epoch(at));
        match column {
            "TABLE_CATALOG" => Some(table.database.clone()),
            "TABLE_SCHEMA" => Some(table.schema.clone()),
            "TABLE_NAME" => Some(table.name.clone()),
            "TABLE_OWNER" => Some(table.owner.clone()),
            "TABLE_TYPE" => Some(table.table_type.clone()),
            "IS_TRANSIENT" => Some(if table.transient { "YES" } else { "NO" }.into()),
            "CLUSTERING_KEY" | "COMMENT" | "LAST_DDL_BY" => None,
            "ROW_COUNT" => table.row_count.map(|n| n.to_string()),
            "BYTES" => table.bytes.map(|n| n.to_string()),
            "RETENTION_TIME" => Some("1".into()),
            "CREATED" => {
                ltz(self.now() - chrono::Duration::from_std(table.created_ago).expect("a sane age"))
            }
            "LAST_ALTERED" => ltz(self.age(table.last_altered_ago)),
            "LAST_DDL" => {
                ltz(self.now() - chrono::Duration::from_std(table.created_ago).expect("a sane age"))
            }
            _ => None,
        }
    }

    /// A table named in a statement: `DB.SCHEMA.TABLE`, or shorter with the
    /// body's `database` and `schema`.
    fn resolve(&self, name: &[String], body: &Value) -> Result<&FakeTable, Failure> {
        let context = |key: &str| body[key].as_str().map(str::to_string);
        let (database, schema, table) = match name {
            [d, s, t] => (Some(d.clone()), Some(s.clone()), t.clone()),
            [s, t] => (context("database"), Some(s.clone()), t.clone()),
            [t] => (context("database"), context("schema"), t.clone()),
            _ => return Err(Failure::syntax(".")),
        };
        let (Some(database), Some(schema)) = (database, schema) else {
            return Err(Failure::new(
                "090105",
                "22000",
                "Cannot perform SELECT. This session does not have a current database. Call 'USE DATABASE', or use a qualified name.",
            ));
        };
        self.visible()
            .find(|t| t.database == database && t.schema == schema && t.name == table)
            .ok_or_else(|| Failure::missing("Object", &format!("{database}.{schema}.{table}")))
    }

    fn table_query(&self, table: &FakeTable, item: &Item) -> Result<Outcome, Failure> {
        match item {
            Item::Count => Ok(Outcome::Rows {
                columns: vec![ColumnSpec::new("COUNT(*)", "fixed")],
                rows: vec![vec![Some(table.row_count.unwrap_or(0).to_string())]],
            }),
            Item::Max(column) => {
                let fresh = table
                    .freshness
                    .as_ref()
                    .filter(|f| &f.name == column)
                    .ok_or_else(|| Failure::invalid_identifier(column))?;
                let at = self.age(fresh.ago);
                let (type_name, cell) = match fresh.time_type {
                    TimeType::Ltz => ("timestamp_ltz", epoch(at)),
                    // Written as the UTC wall clock: the session's timezone is UTC.
                    TimeType::Ntz => ("timestamp_ntz", epoch(at)),
                    TimeType::Tz(offset) => {
                        ("timestamp_tz", format!("{} {}", epoch(at), offset + 1440))
                    }
                    TimeType::Date => ("date", at.timestamp().div_euclid(86_400).to_string()),
                };
                Ok(Outcome::Rows {
                    columns: vec![ColumnSpec::new(&format!("MAX({column})"), type_name)],
                    rows: vec![vec![Some(cell)]],
                })
            }
            Item::Column(column) => {
                let ids = table
                    .ids
                    .as_ref()
                    .filter(|i| &i.name == column)
                    .ok_or_else(|| Failure::invalid_identifier(column))?;
                Ok(Outcome::Rows {
                    columns: vec![ColumnSpec::new(
                        column,
                        if ids.numeric { "fixed" } else { "text" },
                    )],
                    rows: ids.ids.iter().map(|id| vec![Some(id.clone())]).collect(),
                })
            }
            Item::Number(n) => Err(Failure::syntax(n)),
            Item::Call(f) => Err(Failure::syntax(f)),
        }
    }
}

fn record(state: &mut State, submission: Submission) {
    state.submissions.push_back(submission);
    while state.submissions.len() > KEEP_STATEMENTS {
        state.submissions.pop_front();
    }
}

fn token_type(req: &Recorded) -> String {
    req.header("x-snowflake-authorization-token-type")
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("OAUTH")
        .trim()
        .to_ascii_uppercase()
}

fn unauthorized(token_type: &str) -> Reply {
    let (code, message) = if token_type == "KEYPAIR_JWT" {
        ("390144", "JWT token is invalid.")
    } else {
        ("390303", "Invalid OAuth access token.")
    };
    Reply::json(401, json!({"code": code, "message": message}))
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `{"1": {"type": "TEXT", "value": "x"}, ...}` as the values in order.
fn read_bindings(bindings: &Value) -> Option<Vec<String>> {
    let Some(map) = bindings.as_object() else {
        return bindings.is_null().then(Vec::new);
    };
    (1..=map.len())
        .map(|i| {
            let binding = map.get(&i.to_string())?;
            binding["type"].as_str()?;
            binding["value"].as_str().map(str::to_string)
        })
        .collect()
}

/// `seconds.nanos`, nine decimals, as `timestamp_ltz`/`ntz` cells are written.
fn epoch(at: DateTime<Utc>) -> String {
    format!("{}.{:09}", at.timestamp(), at.timestamp_subsec_nanos())
}

fn info_schema_type(column: &str) -> Option<&'static str> {
    Some(match column {
        "TABLE_CATALOG" | "TABLE_SCHEMA" | "TABLE_NAME" | "TABLE_OWNER" | "TABLE_TYPE"
        | "IS_TRANSIENT" | "CLUSTERING_KEY" | "COMMENT" | "LAST_DDL_BY" => "text",
        "ROW_COUNT" | "BYTES" | "RETENTION_TIME" => "fixed",
        "CREATED" | "LAST_ALTERED" | "LAST_DDL" => "timestamp_ltz",
        _ => return None,
    })
}

// ---- The SQL reader -------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An unquoted word, upper-cased as Snowflake resolves it.
    Word(String),
    /// A double-quoted identifier, exact.
    Quoted(String),
    /// A single-quoted string literal.
    Text(String),
    Number(String),
    Symbol(char),
}

impl Token {
    fn show(&self) -> String {
        match self {
            Token::Word(w) | Token::Number(w) => w.clone(),
            Token::Quoted(q) => format!("\"{q}\""),
            Token::Text(t) => format!("'{t}'"),
            Token::Symbol(c) => c.to_string(),
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w == word)
    }

    fn identifier(&self) -> Option<String> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w.clone()),
            _ => None,
        }
    }
}

fn tokenize(sql: &str) -> Result<Vec<Token>, Failure> {
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(q) if q == c && chars.peek() == Some(&c) => {
                        chars.next();
                        text.push(c);
                    }
                    Some(q) if q == c => break,
                    Some(other) => text.push(other),
                    None => return Err(Failure::syntax(&c.to_string())),
                }
            }
            tokens.push(if c == '"' {
                Token::Quoted(text)
            } else {
                Token::Text(text)
            });
        } else if c.is_ascii_digit() {
            let mut number = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit() || **d == '.') {
                number.push(d);
                chars.next();
            }
            tokens.push(Token::Number(number));
        } else if c.is_alphabetic() || c == '_' {
            let mut word = String::new();
            while let Some(&w) = chars
                .peek()
                .filter(|w| w.is_alphanumeric() || **w == '_' || **w == '$')
            {
                word.push(w);
                chars.next();
            }
            tokens.push(Token::Word(word.to_uppercase()));
        } else if "(),.*?=;".contains(c) {
            tokens.push(Token::Symbol(c));
            chars.next();
        } else {
            return Err(Failure::syntax(&c.to_string()));
        }
    }
    Ok(tokens)
}

/// One item of a select list.
#[derive(Debug, Clone)]
enum Item {
    Number(String),
    Column(String),
    Count,
    Max(String),
    /// A function without arguments: `CURRENT_VERSION()`.
    Call(String),
}

/// A value in a filter: a `?` to bind, or a literal.
#[derive(Debug, Clone)]
enum Operand {
    Param,
    Literal(String),
}

#[derive(Debug, Clone)]
enum Filter<V> {
    And(Vec<Filter<V>>),
    Or(Vec<Filter<V>>),
    In(String, Vec<V>),
    Like(String, V),
    Eq(String, V),
}

impl Filter<Operand> {
    /// Replaces every `?` with its binding, in order of appearance.
    fn bind(
        self,
        bind: &mut impl FnMut(&Operand) -> Result<String, Failure>,
    ) -> Result<Filter<String>, Failure> {
        Ok(match self {
            Filter::And(parts) => Filter::And(
                parts
                    .into_iter()
                    .map(|p| p.bind(bind))
                    .collect::<Result<_, _>>()?,
            ),
            Filter::Or(parts) => Filter::Or(
                parts
                    .into_iter()
                    .map(|p| p.bind(bind))
                    .collect::<Result<_, _>>()?,
            ),
            Filter::In(column, values) => Filter::In(
                column,
                values.iter().map(&mut *bind).collect::<Result<_, _>>()?,
            ),
            Filter::Like(column, value) => Filter::Like(column, bind(&value)?),
            Filter::Eq(column, value) => Filter::Eq(column, bind(&value)?),
        })
    }
}

impl Filter<String> {
    fn check_columns(&self) -> Result<(), Failure> {
        match self {
            Filter::And(parts) | Filter::Or(parts) => {
                parts.iter().try_for_each(Filter::check_columns)
            }
            Filter::In(column, _) | Filter::Like(column, _) | Filter::Eq(column, _) => {
                info_schema_type(column)
                    .map(|_| ())
                    .ok_or_else(|| Failure::invalid_identifier(column))
            }
        }
    }

    fn matches(&self, cell: &dyn Fn(&str) -> String) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|p| p.matches(cell)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(cell)),
            Filter::In(column, values) => values.contains(&cell(column)),
            Filter::Like(column, pattern) => like(&cell(column), pattern),
            Filter::Eq(column, value) => &cell(column) == value,
        }
    }
}

/// SQL `LIKE`, case-sensitive as in Snowflake: `%` any run, `_` one
/// character, `\` escapes.
fn like(text: &str, pattern: &str) -> bool {
    fn go(text: &[char], pattern: &[char]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some(('%', rest)) => (0..=text.len()).any(|i| go(&text[i..], rest)),
            Some(('_', rest)) => !text.is_empty() && go(&text[1..], rest),
            Some(('\\', [escaped, rest @ ..])) => {
                text.first() == Some(escaped) && go(&text[1..], rest)
            }
            Some((c, rest)) => text.first() == Some(c) && go(&text[1..], rest),
        }
    }
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    go(&text, &pattern)
}

enum Query {
    Constant(Vec<Item>),
    Tables {
        database: String,
        items: Vec<Item>,
        filter: Option<Filter<Operand>>,
        order: Vec<String>,
    },
    Table {
        name: Vec<String>,
        item: Item,
    },
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Result<Token, Failure> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| Failure::syntax("<EOF>"))?;
        self.at += 1;
        Ok(token)
    }

    fn unexpected(&self) -> Failure {
        Failure::syntax(&self.peek().map_or("<EOF>".into(), Token::show))
    }

    fn expect_symbol(&mut self, c: char) -> Result<(), Failure> {
        match self.peek() {
            Some(Token::Symbol(s)) if *s == c => {
                self.at += 1;
                Ok(())
            }
            _ => Err(self.unexpected()),
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_word(word));
        if found {
            self.at += 1;
        }
        found
    }

    fn identifier(&mut self) -> Result<String, Failure> {
        match self.peek().and_then(Token::identifier) {
            Some(name) => {
                self.at += 1;
                Ok(name)
            }
            None => Err(self.unexpected()),
        }
    }

    fn item(&mut self) -> Result<Item, Failure> {
        let token = self.next()?;
        if let Token::Number(n) = token {
            return Ok(Item::Number(n));
        }
        let Some(name) = token.identifier() else {
            self.at -= 1;
            return Err(self.unexpected());
        };
        if !matches!(token, Token::Word(_)) || self.peek() != Some(&Token::Symbol('(')) {
            return Ok(Item::Column(name));
        }
        self.expect_symbol('(')?;
        let item = match name.as_str() {
            "COUNT" => {
                self.expect_symbol('*')?;
                Item::Count
            }
            "MAX" => Item::Max(self.identifier()?),
            _ => Item::Call(name),
        };
        self.expect_symbol(')')?;
        Ok(item)
    }

    fn value(&mut self) -> Result<Operand, Failure> {
        match self.next()? {
            Token::Symbol('?') => Ok(Operand::Param),
            Token::Text(text) => Ok(Operand::Literal(text)),
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }

    /// `a AND b AND ...` (or `OR`), where each part is a comparison or a
    /// parenthesised filter.
    fn filter(&mut self, joiner: &str) -> Result<Filter<Operand>, Failure> {
        let mut parts = vec![self.predicate()?];
        while self.eat_word(joiner) {
            parts.push(self.predicate()?);
        }
        Ok(match (joiner, parts.len()) {
            (_, 1) => parts.remove(0),
            ("AND", _) => Filter::And(parts),
            _ => Filter::Or(parts),
        })
    }

    fn predicate(&mut self) -> Result<Filter<Operand>, Failure> {
        if self.peek() == Some(&Token::Symbol('(')) {
            self.at += 1;
            let first = self.filter("AND")?;
            let filter = if self.peek().is_some_and(|t| t.is_word("OR")) {
                let mut parts = vec![first];
                while self.eat_word("OR") {
                    parts.push(self.filter("AND")?);
                }
                Filter::Or(parts)
            } else {
                first
            };
            self.expect_symbol(')')?;
            return Ok(filter);
        }
        let column = self.identifier()?;
        if self.eat_word("IN") {
            self.expect_symbol('(')?;
            let mut values = vec![self.value()?];
            while self.peek() == Some(&Token::Symbol(',')) {
                self.at += 1;
                values.push(self.value()?);
            }
            self.expect_symbol(')')?;
            return Ok(Filter::In(column, values));
        }
        if self.eat_word("LIKE") {
            return Ok(Filter::Like(column, self.value()?));
        }
        self.expect_symbol('=')?;
        Ok(Filter::Eq(column, self.value()?))
    }
}

fn parse(sql: &str) -> Result<Query, Failure> {
    let mut p = Parser {
        tokens: tokenize(sql)?,
        at: 0,
    };
    if p.tokens.last() == Some(&Token::Symbol(';')) {
        p.tokens.pop();
    }
    if !p.eat_word("SELECT") {
        return Err(p.unexpected());
    }
    let mut items = vec![p.item()?];
    while p.peek() == Some(&Token::Symbol(',')) {
        p.at += 1;
        items.push(p.item()?);
    }
    if p.peek().is_none() {
        return Ok(Query::Constant(items));
    }
    if !p.eat_word("FROM") {
        return Err(p.unexpected());
    }
    let mut name = vec![p.identifier()?];
    while p.peek() == Some(&Token::Symbol('.')) {
        p.at += 1;
        name.push(p.identifier()?);
    }
    let is_tables = name.len() == 3 && name[1] == "INFORMATION_SCHEMA" && name[2] == "TABLES";
    if !is_tables {
        let [item] = <[Item; 1]>::try_from(items).map_err(|_| Failure::syntax(","))?;
        if p.peek().is_some() {
            return Err(p.unexpected());
        }
        return Ok(Query::Table { name, item });
    }
    let filter = if p.eat_word("WHERE") {
        Some(p.filter("AND")?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.eat_word("ORDER") {
        if !p.eat_word("BY") {
            return Err(p.unexpected());
        }
        order.push(p.identifier()?);
        while p.peek() == Some(&Token::Symbol(',')) {
            p.at += 1;
            order.push(p.identifier()?);
        }
    }
    if p.peek().is_some() {
        return Err(p.unexpected());
    }
    Ok(Query::Tables {
        database: name.remove(0),
        items,
        filter,
        order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_follows_sql() {
        assert!(like("ORDERS", "ORD%"));
        assert!(like("ORDERS", "%"));
        assert!(like("ORDERS", "ORDER_"));
        assert!(!like("ORDERS", "ORDER"));
        assert!(!like("orders", "ORD%"));
        assert!(like("A_B", "A\\_B"));
        assert!(!like("AXB", "A\\_B"));
    }

    #[test]
    fn the_reader_understands_the_listing_and_refuses_the_rest() {
        let query = parse(
            "SELECT TABLE_NAME, ROW_COUNT FROM \"ANALYTICS\".INFORMATION_SCHEMA.TABLES \
             WHERE TABLE_SCHEMA IN (?, ?) AND (TABLE_NAME LIKE ? OR TABLE_NAME LIKE ?) ORDER BY TABLE_SCHEMA, TABLE_NAME",
        )
        .unwrap();
        let Query::Tables {
            database,
            items,
            filter,
            order,
        } = query
        else {
            panic!("not a listing");
        };
        assert_eq!(database, "ANALYTICS");
        assert_eq!(items.len(), 2);
        assert_eq!(order, ["TABLE_SCHEMA", "TABLE_NAME"]);
        let mut values = ["PUBLIC", "STAGING", "ORD%", "EV%"]
            .map(String::from)
            .into_iter();
        let filter = filter
            .unwrap()
            .bind(&mut |_| Ok(values.next().unwrap()))
            .unwrap();
        let row = |schema: &str, name: &str| {
            let (schema, name) = (schema.to_string(), name.to_string());
            move |column: &str| {
                if column == "TABLE_SCHEMA" {
                    schema.clone()
                } else {
                    name.clone()
                }
            }
        };
        assert!(filter.matches(&row("PUBLIC", "ORDERS")));
        assert!(filter.matches(&row("STAGING", "EVENTS")));
        assert!(!filter.matches(&row("PUBLIC", "CUSTOMERS")));
        assert!(!filter.matches(&row("RAW", "ORDERS")));

        let failure = parse("SELEC 1").err().unwrap();
        assert_eq!((failure.code, failure.sql_state), ("001003", "42000"));
        assert!(parse("SELECT MAX(\"UPDATED_AT\") FROM \"A\".\"B\".\"C\"").is_ok());
        assert!(parse("SELECT 1; DROP TABLE X").is_err());
    }
}

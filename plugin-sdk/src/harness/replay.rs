//! Recorded HTTP exchanges: a plugin test as a file, in any plugin language.
//!
//! A [`Fixture`] (JSON, format in `docs/plugin-toolkit.md`) holds a call
//! (`collect` by default; the actions with their arguments), a fixed clock, a config, grants, limits, the HTTP
//! exchanges the plugin's service answers with, and the outcome expected.
//! [`run`] loads the plugin in the real host, answers its requests from the
//! exchanges on a [`TestServer`] on 127.0.0.1, and returns what happened;
//! [`Replayed::verdict`] compares it with the fixture's `expect`.
//! `tributary plugin test` and Rust tests share this code; the matching rules
//! are here only. It must not print or exit: callers decide how to report.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use plugin_host::{DeleteScope, Limits};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::outcome;
use super::{Harness, HarnessError, Recorded, Reply, TestServer};

/// The largest fixture file read: a recording is a test's data, not a dump.
pub const MAX_FIXTURE_BYTES: u64 = 16 << 20;

/// What `${server}` in a fixture's config and grants becomes: the replay
/// server's `http://127.0.0.1:PORT`.
pub const SERVER_PLACEHOLDER: &str = "${server}";

/// One plugin test: a call, its setting, the service's answers and the
/// expected outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// What the test shows, for the reader.
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub call: Call,
    /// The time the plugin sees (RFC 3339).
    #[serde(default = "default_now", deserialize_with = "rfc3339")]
    pub now: SystemTime,
    /// The plugin config (secrets included, as the host would resolve them).
    #[serde(default = "empty_object")]
    pub config: Value,
    /// Hosts the plugin may reach; the replay server when not given.
    #[serde(default)]
    pub allow_hosts: Option<Vec<String>>,
    /// Values masked in the plugin's log output.
    #[serde(default)]
    pub secrets: Vec<String>,
    #[serde(default)]
    pub limits: FixtureLimits,
    /// The service's side: requests it expects and what it answers, tried in
    /// order; the first that matches answers (any number of times).
    #[serde(default)]
    pub exchanges: Vec<Exchange>,
    /// The outcome, in the form of `tributary plugin call`'s output.
    #[serde(default)]
    pub expect: Option<Value>,
}

/// Which export a fixture calls: a name (`"collect"`), or for the actions,
/// which take arguments, an object (`{"resync": {"asset": "orders", "ids":
/// ["o-1"]}}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Call {
    Describe,
    TestConnection,
    Discover,
    #[default]
    Collect,
    Action(Action),
}

/// An optional action, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Ask the service to send these records of `asset` again (all when
    /// `ids` is empty or left out).
    Resync {
        asset: String,
        #[serde(default)]
        ids: Vec<String>,
    },
    /// Remove `scope` of `asset`'s data.
    Delete { asset: String, scope: Scope },
}

impl<'de> Deserialize<'de> for Call {
    /// By hand, so that an action named without its arguments says what
    /// they are (serde's own message would be "invalid type: unit variant").
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        const NAMES: &[&str] = &[
            "describe",
            "test-connection",
            "discover",
            "collect",
            "resync",
            "delete",
        ];
        match Value::deserialize(deserializer)? {
            Value::String(name) => match name.as_str() {
                "describe" => Ok(Call::Describe),
                "test-connection" => Ok(Call::TestConnection),
                "discover" => Ok(Call::Discover),
                "collect" => Ok(Call::Collect),
                "resync" => Err(D::Error::custom(
                    r#"call "resync" takes its arguments: {"resync": {"asset": "NAME", "ids": ["ID", ...]}}"#,
                )),
                "delete" => Err(D::Error::custom(
                    r#"call "delete" takes its arguments: {"delete": {"asset": "NAME", "scope": "asset" or {"tenant": "NAME"} or {"ids": ["ID", ...]}}}"#,
                )),
                other => Err(D::Error::unknown_variant(other, NAMES)),
            },
            value => Action::deserialize(value)
                .map(Call::Action)
                .map_err(|e| D::Error::custom(format_args!("call: {e}"))),
        }
    }
}

/// What a `delete` removes, as the contract's `delete-scope`: `"asset"`,
/// `{"tenant": "acme"}` or `{"ids": ["o-1"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Asset,
    Tenant(String),
    Ids(Vec<String>),
}

impl From<Scope> for DeleteScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Asset => DeleteScope::Asset,
            Scope::Tenant(tenant) => DeleteScope::Tenant(tenant),
            Scope::Ids(ids) => DeleteScope::Ids(ids),
        }
    }
}

/// Limits of the run; the host's defaults where not given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureLimits {
    pub deadline_ms: Option<u64>,
    pub memory_bytes: Option<usize>,
    pub http_response_bytes: Option<u64>,
    pub http_requests: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exchange {
    pub request: Matcher,
    pub response: Answer,
}

/// What a request must be to get an exchange's answer. Only what is given is
/// compared: `query` and `headers` list the parameters and headers that must
/// be there (others may be too); a JSON `body` is compared as JSON, a string
/// `body` as text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default)]
    pub method: Option<String>,
    pub path: String,
    #[serde(default)]
    pub query: Map<String, Value>,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<Value>,
}

/// The answer of an exchange: a JSON `body` is sent as JSON (with a JSON
/// content type unless `headers` names one), a string as it is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Option<Value>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

fn default_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_632_800)
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn ok() -> u16 {
    200
}

fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let text = String::deserialize(d)?;
    chrono::DateTime::parse_from_rfc3339(&text)
        .map(SystemTime::from)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time: {e}")))
}

/// Why a fixture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read the fixture {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the fixture {path} is {size} bytes, over the limit of {MAX_FIXTURE_BYTES}: record less"
    )]
    TooLarge { path: String, size: u64 },
    #[error("the fixture {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

impl Fixture {
    /// Reads a fixture file, refusing one over [`MAX_FIXTURE_BYTES`] before
    /// reading it.
    pub fn load(path: &Path) -> Result<Self, FixtureError> {
        let shown = path.display().to_string();
        let read = |source| FixtureError::Read {
            path: shown.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_FIXTURE_BYTES {
            return Err(FixtureError::TooLarge { path: shown, size });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text).map_err(|message| FixtureError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses fixture JSON; the error says where (line, column) and what.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fixture: Fixture = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for (i, x) in fixture.exchanges.iter().enumerate() {
            if !x.request.path.starts_with('/') {
                return Err(format!(
                    "exchanges[{i}].request.path {:?} must start with /",
                    x.request.path
                ));
            }
            if !(100..=999).contains(&x.response.status) {
                return Err(format!(
                    "exchanges[{i}].response.status {} is not an HTTP status",
                    x.response.status
                ));
            }
        }
        Ok(fixture)
    }

    fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        let l = &self.limits;
        if let Some(ms) = l.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(bytes) = l.memory_bytes {
            limits.memory_bytes = bytes;
        }
        if let Some(bytes) = l.http_response_bytes {
            limits.http_response_bytes = bytes;
        }
        if let Some(n) = l.http_requests {
            limits.http_requests = n;
        }
        limits
    }
}

/// A request no exchange matched, and the exchange closest to it.
#[derive(Debug, Clone)]
pub struct Unmatched {
    pub request: String,
    /// `exchanges[i] (METHOD /path): how it differs`, or why there is none.
    pub closest: String,
}

/// What one fixture run gave.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The outcome in `tributary plugin call`'s form.
    pub outcome: Value,
    /// Every request the plugin sent, in order.
    pub requests: Vec<Recorded>,
    pub unmatched: Vec<Unmatched>,
}

/// How a run compares with its fixture's expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// The fixture has no `expect` yet: nothing to compare with.
    NoExpectation,
    /// Requests without an exchange, and differences from `expect`.
    Failed {
        unmatched: Vec<String>,
        diff: Vec<String>,
    },
}

impl Replayed {
    pub fn verdict(&self, fixture: &Fixture) -> Verdict {
        let unmatched: Vec<String> = self
            .unmatched
            .iter()
            .map(|u| format!("no exchange matches {}; closest: {}", u.request, u.closest))
            .collect();
        let diff = match &fixture.expect {
            Some(expected) => outcome::diff(expected, &self.outcome),
            None if unmatched.is_empty() => return Verdict::NoExpectation,
            None => Vec::new(),
        };
        if unmatched.is_empty() && diff.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Failed { unmatched, diff }
        }
    }
}

/// Runs `fixture` against the plugin `wasm`, compiled components cached in
/// `cache_dir`.
pub async fn run(
    wasm: &Path,
    fixture: &Fixture,
    cache_dir: &Path,
) -> Result<Replayed, HarnessError> {
    let server = TestServer::replay(fixture.exchanges.clone()).await;
    let url = server.server.url();
    let config = substitute(&fixture.config, &url);
    let hosts = match &fixture.allow_hosts {
        Some(hosts) => hosts
            .iter()
            .map(|h| h.replace(SERVER_PLACEHOLDER, &url))
            .collect(),
        None => vec![url.clone()],
    };
    let mut builder = Harness::builder(wasm)
        .now(fixture.now)
        .limits(fixture.limits())
        .cache_dir(cache_dir);
    for host in &hosts {
        builder = builder.try_allow_host(host)?;
    }
    for secret in &fixture.secrets {
        builder = builder.secret(secret.clone());
    }
    let harness = builder.build().await?;
    let outcome = harness.call_json(fixture.call.clone(), config).await;
    Ok(Replayed {
        outcome: outcome.unwrap_or_else(|e| e),
        requests: server.server.requests(),
        unmatched: server.unmatched(),
    })
}

impl Harness {
    /// Calls one export with `config`; its outcome in the form of
    /// [`outcome`], `Err` holding `{"error": ...}` when the call failed.
    pub async fn call_json(&self, call: Call, config: Value) -> Result<Value, Value> {
        let result = match call {
            Call::Describe => Ok(outcome::descriptor(self.plugin().descriptor())),
            Call::TestConnection => self
                .test_connection(config)
                .await
                .map(|()| serde_json::json!({"ok": true})),
            Call::Discover => self.discover(config).await.map(|a| outcome::assets(&a)),
            Call::Collect => self
                .collect(config)
                .await
                .map(|c| outcome::collected(&c.report, &c.ids)),
            Call::Action(Action::Resync { asset, ids }) => self
                .resync(config, &asset, &ids)
                .await
                .map(|o| outcome::action(&o)),
            Call::Action(Action::Delete { asset, scope }) => self
                .delete(config, &asset, &scope.into())
                .await
                .map(|o| outcome::action(&o)),
        };
        result.map_err(|e| outcome::error(&e))
    }
}

/// Every string in `value` with `${server}` replaced by `url`.
fn substitute(value: &Value, url: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(SERVER_PLACEHOLDER, url)),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, url)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, url)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A [`TestServer`] answering from recorded exchanges, which remembers the
/// requests none matched.
pub struct ReplayServer {
    pub server: TestServer,
    unmatched: Arc<Mutex<Vec<Unmatched>>>,
}

impl ReplayServer {
    pub fn unmatched(&self) -> Vec<Unmatched> {
        self.unmatched.lock().expect("unmatched lock").clone()
    }
}

impl TestServer {
    /// Starts a server that answers each request with the first exchange
    /// whose matcher it satisfies, and a 404 naming the closest matcher
    /// otherwise (also kept in [`ReplayServer::unmatched`]).
    pub async fn replay(exchanges: Vec<Exchange>) -> ReplayServer {
        let unmatched = Arc::new(Mutex::new(Vec::new()));
        let missed = unmatched.clone();
        let server =
            TestServer::start(
                move |req| match exchanges.iter().find(|x| x.request.matches(req)) {
                    Some(x) => x.response.reply(),
                    None => {
                        let miss = Unmatched {
                            request: describe(req),
                            closest: closest(&exchanges, req),
                        };
                        let reply = Reply::status(404)
                        .header("content-type", "text/plain")
                        .body(format!(
                            "tributary plugin test: no recorded exchange matches {}; closest: {}",
                            miss.request, miss.closest
                        ));
                        missed.lock().expect("unmatched lock").push(miss);
                        reply
                    }
                },
            )
            .await;
        ReplayServer { server, unmatched }
    }
}

impl Matcher {
    /// Whether `req` satisfies every part of this matcher.
    pub fn matches(&self, req: &Recorded) -> bool {
        self.mismatches(req).is_empty()
    }

    /// The parts of this matcher `req` does not satisfy, in words.
    pub fn mismatches(&self, req: &Recorded) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(method) = &self.method
            && !method.eq_ignore_ascii_case(&req.method)
        {
            out.push(format!("method {method} (got {})", req.method));
        }
        if self.path != req.path {
            out.push(format!("path {} (got {})", self.path, req.path));
        }
        let query = decoded_query(req.query.as_deref().unwrap_or(""));
        for (name, want) in &self.query {
            let want = text(want);
            match query.iter().find(|(k, _)| k == name) {
                Some((_, got)) if *got == want => {}
                Some((_, got)) => out.push(format!("query {name}={want} (got {got})")),
                None => out.push(format!("query {name}={want} (absent)")),
            }
        }
        for (name, want) in &self.headers {
            let want = text(want);
            match req.header(name) {
                Some(got) if got == want => {}
                // Header values may be secrets: say which header, not its value.
                Some(_) => out.push(format!("header {name} (different value)")),
                None => out.push(format!("header {name} (absent)")),
            }
        }
        match &self.body {
            None => {}
            Some(Value::String(want)) if want.as_bytes() != req.body.as_slice() => {
                out.push(format!("body text ({} bytes sent)", req.body.len()));
            }
            Some(Value::String(_)) => {}
            Some(want) if req.json().as_ref() != Some(want) => {
                out.push(format!("JSON body ({} bytes sent)", req.body.len()));
            }
            Some(_) => {}
        }
        out
    }
}

impl Answer {
    fn reply(&self) -> Reply {
        let mut reply = Reply::status(self.status);
        let has_type = self
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        for (name, value) in &self.headers {
            reply = reply.header(name, &text(value));
        }
        reply = match &self.body {
            None => reply,
            Some(Value::String(s)) => reply.body(s.clone()),
            Some(json) if has_type => reply.body(json.to_string()),
            Some(json) => reply
                .header("content-type", "application/json")
                .body(json.to_string()),
        };
        match self.delay_ms {
            Some(ms) => reply.delay(Duration::from_millis(ms)),
            None => reply,
        }
    }
}

/// A matcher value as text: strings as they are, numbers and booleans as JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Query parameters, percent-decoded (`+` is a space), in order.
fn decoded_query(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(kv), String::new()),
        })
        .collect()
}

/// `GET /path?query` with control characters escaped, cut at 300 bytes.
fn describe(req: &Recorded) -> String {
    let mut line = format!("{} {}", req.method, req.path);
    if let Some(q) = &req.query {
        line.push('?');
        line.push_str(q);
    }
    let line = plugin_host::escape_controls(&line).into_owned();
    if line.len() <= 300 {
        return line;
    }
    let mut end = 300;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &line[..end], line.len())
}

/// The exchange whose matcher `req` misses on the fewest parts (a path
/// mismatch counts most), described with what differs.
fn closest(exchanges: &[Exchange], req: &Recorded) -> String {
    let best = exchanges
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let misses = x.request.mismatches(req);
            let path_missed = x.request.path != req.path;
            (usize::from(path_missed) * 100 + misses.len(), i, misses)
        })
        .min_by_key(|(score, i, _)| (*score, *i));
    match best {
        None => "none: the fixture has no exchanges".into(),
        Some((_, i, misses)) => {
            let x = &exchanges[i].request;
            format!(
                "exchanges[{i}] ({} {}), which wants {}",
                x.method.as_deref().unwrap_or("any method"),
                x.path,
                plugin_host::escape_controls(&misses.join(", "))
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn request(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Recorded {
        Recorded {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_owned),
            headers: BTreeMap::from([("authorization".into(), "Bearer t0ken".into())]),
            body: body.to_vec(),
        }
    }

    fn exchanges(json: Value) -> Vec<Exchange> {
        serde_json::from_value(json).expect("exchanges")
    }

    #[test]
    fn a_matcher_compares_only_what_it_names() {
        let x = exchanges(json!([{
            "request": {"method": "get", "path": "/v1/stats", "query": {"limit": 10, "cursor": "a b"},
                        "headers": {"Authorization": "Bearer t0ken"}},
            "response": {"status": 200}
        }]));
        let m = &x[0].request;
        assert!(m.matches(&request(
            "GET",
            "/v1/stats",
            Some("cursor=a%20b&limit=10&extra=1"),
            b""
        )));
        assert!(m.matches(&request(
            "GET",
            "/v1/stats",
            Some("limit=10&cursor=a+b"),
            b""
        )));
        assert_eq!(
            m.mismatches(&request("POST", "/v1/stats", Some("limit=11"), b"")),
            vec![
                "method get (got POST)",
                "query cursor=a b (absent)",
                "query limit=10 (got 11)"
            ]
        );
        let mut other_token = request("GET", "/v1/stats", Some("limit=10&cursor=a+b"), b"");
        other_token
            .headers
            .insert("authorization".into(), "Bearer secret".into());
        // The value may be a secret: the mismatch names the header only.
        assert_eq!(
            m.mismatches(&other_token),
            vec!["header Authorization (different value)"]
        );
    }

    #[test]
    fn bodies_compare_as_json_or_as_text() {
        let x = exchanges(json!([
            {"request": {"path": "/j", "body": {"ids": ["a"]}}, "response": {}},
            {"request": {"path": "/t", "body": "raw"}, "response": {}}
        ]));
        assert!(
            x[0].request
                .matches(&request("POST", "/j", None, br#"{ "ids" : ["a"] }"#))
        );
        assert!(
            !x[0]
                .request
                .matches(&request("POST", "/j", None, br#"{"ids":["b"]}"#))
        );
        assert!(
            !x[0]
                .request
                .matches(&request("POST", "/j", None, b"not json"))
        );
        assert!(x[1].request.matches(&request("POST", "/t", None, b"raw")));
        assert!(
            !x[1]
                .request
                .matches(&request("POST", "/t", None, b"\"raw\""))
        );
    }

    #[test]
    fn the_closest_matcher_prefers_the_same_path() {
        let x = exchanges(json!([
            {"request": {"method": "POST", "path": "/v1/other"}, "response": {}},
            {"request": {"method": "GET", "path": "/v1/stats", "query": {"page": "2"}}, "response": {}},
        ]));
        let req = request("GET", "/v1/stats", Some("page=3"), b"");
        assert_eq!(
            closest(&x, &req),
            "exchanges[1] (GET /v1/stats), which wants query page=2 (got 3)"
        );
        assert_eq!(closest(&[], &req), "none: the fixture has no exchanges");
    }

    #[test]
    fn hostile_request_lines_are_escaped_and_cut() {
        let path = format!("/a\n\u{1b}[31m{}", "x".repeat(1000));
        let line = describe(&request("GET", &path, None, b""));
        assert!(!line.contains('\n') && !line.contains('\u{1b}'), "{line}");
        assert!(line.len() < 340, "{}", line.len());
    }

    #[test]
    fn a_fixture_says_what_is_wrong_and_where() {
        let err = Fixture::parse(r#"{"exchanges": [{"request": {"path": "v1"}, "response": {}}]}"#)
            .expect_err("relative path");
        assert_eq!(err, "exchanges[0].request.path \"v1\" must start with /");
        let err = Fixture::parse(r#"{"now": "yesterday"}"#).expect_err("bad time");
        assert!(
            err.contains("\"yesterday\" is not an RFC 3339 time"),
            "{err}"
        );
        let err = Fixture::parse(r#"{"cal": "collect"}"#).expect_err("typo");
        assert!(
            err.contains("unknown field `cal`") && err.contains("line 1"),
            "{err}"
        );
        let err = Fixture::parse(r#"{"call": "explode"}"#).expect_err("unknown call");
        assert!(err.contains("unknown variant `explode`"), "{err}");
    }

    #[test]
    fn the_actions_take_their_arguments() {
        let call = |text: &str| Fixture::parse(text).map(|f| f.call);
        assert_eq!(call(r#"{}"#), Ok(Call::Collect));
        assert_eq!(
            call(r#"{"call": {"resync": {"asset": "orders", "ids": ["o-1", "o-2"]}}}"#),
            Ok(Call::Action(Action::Resync {
                asset: "orders".into(),
                ids: vec!["o-1".into(), "o-2".into()]
            }))
        );
        for (scope, expected) in [
            (r#""asset""#, Scope::Asset),
            (r#"{"tenant": "acme"}"#, Scope::Tenant("acme".into())),
            (r#"{"ids": ["o-1"]}"#, Scope::Ids(vec!["o-1".into()])),
        ] {
            let text =
                format!(r#"{{"call": {{"delete": {{"asset": "orders", "scope": {scope}}}}}}}"#);
            assert_eq!(
                call(&text),
                Ok(Call::Action(Action::Delete {
                    asset: "orders".into(),
                    scope: expected
                }))
            );
        }
        assert_eq!(
            call(r#"{"call": {"resync": {"asset": "orders"}}}"#),
            Ok(Call::Action(Action::Resync {
                asset: "orders".into(),
                ids: vec![]
            }))
        );
        let err = call(r#"{"call": "resync"}"#).expect_err("no arguments");
        assert!(
            err.contains(r#"call "resync" takes its arguments: {"resync": {"asset""#)
                && err.contains("line 1"),
            "{err}"
        );
        let err =
            call(r#"{"call": {"resync": {"asset": "orders", "id": ["o-1"]}}}"#).expect_err("typo");
        assert!(err.contains("unknown field `id`"), "{err}");
        let err = call(r#"{"call": {"delete": {"asset": "orders", "scope": "everything"}}}"#)
            .expect_err("unknown scope");
        assert!(err.contains("unknown variant `everything`"), "{err}");
        let err = call(r#"{"call": {"collect": {}}}"#).expect_err("collect takes none");
        assert!(err.contains("collect"), "{err}");
    }

    #[test]
    fn an_oversized_fixture_is_refused_before_it_is_read() {
        let dir = std::env::temp_dir().join(format!("replay-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("big.json");
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(MAX_FIXTURE_BYTES + 1).expect("grow");
        let err = Fixture::load(&path).expect_err("too large").to_string();
        std::fs::remove_dir_all(&dir).expect("clean");
        assert!(err.contains("over the limit of 16777216"), "{err}");
    }

    #[test]
    fn answers_default_to_json() {
        let x = exchanges(json!([
            {"request": {"path": "/"}, "response": {"body": {"ok": true}, "delay_ms": 5}},
            {"request": {"path": "/"}, "response": {"status": 503, "headers": {"Retry-After": 2}, "body": "busy"}},
        ]));
        let json = x[0].response.reply();
        assert_eq!(json.status, 200);
        assert_eq!(
            json.headers,
            vec![("content-type".into(), "application/json".into())]
        );
        assert_eq!(json.body, br#"{"ok":true}"#);
        assert_eq!(json.delay, Some(Duration::from_millis(5)));
        let text = x[1].response.reply();
        assert_eq!((text.status, text.body.as_slice()), (503, &b"busy"[..]));
        assert_eq!(text.headers, vec![("Retry-After".into(), "2".into())]);
    }

    #[test]
    fn the_server_placeholder_is_replaced_in_every_string() {
        let config = json!({"base_url": "${server}/api", "list": ["${server}"], "n": 1});
        assert_eq!(
            substitute(&config, "http://127.0.0.1:9"),
            json!({"base_url": "http://127.0.0.1:9/api", "list": ["http://127.0.0.1:9"], "n": 1})
        );
    }

    #[test]
    fn a_verdict_lists_unmatched_requests_and_differences() {
        let fixture = Fixture::parse(r#"{"expect": {"ok": true}}"#).expect("fixture");
        let mut replayed = Replayed {
            outcome: json!({"ok": true}),
            requests: Vec::new(),
            unmatched: Vec::new(),
        };
        assert_eq!(replayed.verdict(&fixture), Verdict::Passed);
        replayed.outcome = json!({"error": {"class": "config", "message": "m"}});
        replayed.unmatched.push(Unmatched {
            request: "GET /x".into(),
            closest: "none: the fixture has no exchanges".into(),
        });
        assert_eq!(
            replayed.verdict(&fixture),
            Verdict::Failed {
                unmatched: vec![
                    "no exchange matches GET /x; closest: none: the fixture has no exchanges"
                        .into()
                ],
                diff: vec![
                    "/ok: expected true, got nothing".into(),
                    "/error: expected nothing, got {\"class\":\"config\",\"message\":\"m\"}".into(),
                ],
            }
        );
        let unset = Fixture::parse("{}").expect("fixture");
        replayed.unmatched.clear();
        assert_eq!(replayed.verdict(&unset), Verdict::NoExpectation);
    }
}

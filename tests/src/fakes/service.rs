//! Fake of a multi-tenant document service, watched by the generic `http`
//! connector. It exposes what Data Flora asks of every system
//! (`../shared/reference/peers.md`, section 1): totals per tenant, errors
//! in aggregate and by document id with log links, every document id of a
//! tenant, and re-sync and delete per tenant. Field names follow Data
//! Flora's camelCase model (`expected`, `received`, `inError`,
//! `lastReceived {documentId, ...}`, `errorType`, `logLink`).
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /ping` (no auth) | `pong` |
//! | `GET /api/v1/health` | `{"status": "ok" \| "degraded", "version", "tenants"}` |
//! | `GET /api/v1/tenants` | `{"tenants": [{"tenantId", "name"}]}` |
//! | `GET /api/v1/tenants/{t}/stats` | `{"tenantId", "status", "expected", "received", "inError", "lastReceived": {"documentId", "receivedAt" (Unix seconds)}, "updatedAt" (RFC 3339), "errorsByType": {type: count}}` |
//! | `GET /api/v1/tenants/{t}/errors` | `{"aggregates": [{"errorType", "count", "message", "logLink"}], "errors": [{"documentId", "errorType", "message", "logLink", "timestamp" (Unix ms)}]}` |
//! | `GET /api/v1/tenants/{t}/documents?cursor=C&limit=N` | `{"documents": [{"documentId"}], "nextCursor": "..." \| null}` |
//! | `GET /api/v1/tenants/{t}/document-ids?page=P&per_page=N` | `{"ids", "page", "perPage", "totalPages", "hasMore"}` |
//! | `GET /api/v1/tenants/{t}/document-ids?offset=O&limit=N` | `{"ids", "offset", "limit", "total"}` |
//! | `POST /api/v1/tenants/{t}/resync` `{"documentIds": [...]}` (empty: all) | `202 {"accepted", "unknown", "jobId"}` |
//! | `DELETE /api/v1/tenants/{t}/documents` | `{"deleted"}`: every document of the tenant |
//! | `POST /api/v1/tenants/{t}/documents/delete` `{"documentIds": [...]}` | `{"deleted"}` |
//!
//! Every `/api/` request needs `Authorization: Bearer <token>`,
//! `Authorization: Basic <user:password>` or `X-Api-Key: <key>`
//! ([`Credentials`]); otherwise `401` with `WWW-Authenticate`. Errors are
//! `{"error": code, "message": text}`: `404 not_found` for an unknown
//! tenant or path, `400 bad_request` for a bad parameter or cursor,
//! `415` for a body that is not JSON, `405` for a wrong method.
//! Path segments are percent-decoded (`umbrella%20corp%2Feu`).
//!
//! Data: tenant `acme` expects 250 documents and has received 245
//! (`doc-00001`..`doc-00245`), 3 of them in error; `globex` expects and has
//! 40, none in error; `umbrella corp/eu` (a name that needs encoding) has 7.
//!
//! Scenarios: healthy (updated 2 minutes before the clock's now); stale
//! (updated 3 days before); failing (150 documents in error, status
//! `degraded`); slow (every `/api/` answer waits [`ServiceFake::slow_delay`],
//! 5 s by default); unauthorized (401 whatever the credentials); rate-limited
//! (429 with `Retry-After: 30`); malformed (200 with bodies whose fields
//! have the wrong types: counts as text, lists as text, times as the wrong
//! kind).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::SecondsFormat;
use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::{Value, json};

use super::{FakeClock, Scenario, ScenarioSwitch};

/// How long the healthy service's data is behind the clock.
pub const FRESH_AGE: Duration = Duration::from_secs(120);
/// How long the stale service's data is behind the clock.
pub const STALE_AGE: Duration = Duration::from_secs(3 * 24 * 3600);
/// Documents in error in the failing scenario.
pub const FAILING_ERRORS: usize = 150;
/// `Retry-After` of the rate-limited scenario, in seconds.
pub const RETRY_AFTER_SECS: u64 = 30;
/// The largest `limit` / `per_page` the service accepts.
pub const MAX_PAGE: usize = 500;
/// Page size when the request gives none.
pub const DEFAULT_PAGE: usize = 100;

/// What the service accepts as proof of identity.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub token: String,
    pub user: String,
    pub password: String,
    pub api_key: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            token: "svc-token-8f2c".into(),
            user: "tributary".into(),
            password: "pa ss:word".into(),
            api_key: "key-5b1e".into(),
        }
    }
}

const ERROR_TYPES: [(&str, &str); 3] = [
    ("InvalidData", "field 'title' is missing"),
    ("NetworkError", "upstream connection reset"),
    ("MissingData", "attachment not found"),
];

#[derive(Debug, Clone)]
struct Tenant {
    name: String,
    expected: usize,
    /// Received document ids, in order.
    docs: Vec<String>,
    /// How many of the first documents are in error (when not failing).
    in_error: usize,
}

#[derive(Debug, Default)]
struct State {
    tenants: BTreeMap<String, Tenant>,
    resync_jobs: u64,
}

/// The fake service. Clones share state, so a test keeps one to look at
/// what a delete did while the server runs another.
#[derive(Clone)]
pub struct ServiceFake {
    clock: FakeClock,
    scenario: ScenarioSwitch,
    credentials: Credentials,
    slow_delay: Duration,
    state: Arc<Mutex<State>>,
}

fn doc_id(i: usize) -> String {
    format!("doc-{i:05}")
}

impl ServiceFake {
    pub fn new(clock: FakeClock, scenario: ScenarioSwitch) -> Self {
        let mut tenants = BTreeMap::new();
        for (id, name, expected, received, in_error) in [
            ("acme", "Acme Corp", 250, 245, 3),
            ("globex", "Globex", 40, 40, 0),
            ("umbrella corp/eu", "Umbrella Corp (EU)", 7, 7, 0),
        ] {
            tenants.insert(
                id.to_owned(),
                Tenant {
                    name: name.into(),
                    expected,
                    docs: (1..=received).map(doc_id).collect(),
                    in_error,
                },
            );
        }
        ServiceFake {
            clock,
            scenario,
            credentials: Credentials::default(),
            slow_delay: Duration::from_secs(5),
            state: Arc::new(Mutex::new(State {
                tenants,
                resync_jobs: 0,
            })),
        }
    }

    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// How long answers wait in the slow scenario.
    pub fn slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The document ids `tenant` has now (after deletes).
    pub fn document_ids(&self, tenant: &str) -> Vec<String> {
        let state = self.state.lock().expect("state lock");
        state
            .tenants
            .get(tenant)
            .map(|t| t.docs.clone())
            .unwrap_or_default()
    }

    /// On a free loopback port (tests).
    pub async fn start(self) -> TestServer {
        TestServer::start(move |r| self.handle(r)).await
    }

    /// Answers one request, following the wire format above.
    pub fn handle(&self, req: &Recorded) -> Reply {
        if req.path == "/ping" {
            return Reply::status(200)
                .header("content-type", "text/plain")
                .body("pong");
        }
        if !req.path.starts_with("/api/") {
            return error(404, "not_found", "no such path");
        }
        let scenario = self.scenario.get();
        match scenario {
            Scenario::Unauthorized => return self.unauthorized("the credentials were revoked"),
            Scenario::RateLimited => {
                return error(
                    429,
                    "rate_limited",
                    &format!("too many requests; retry in {RETRY_AFTER_SECS} s"),
                )
                .header("retry-after", &RETRY_AFTER_SECS.to_string());
            }
            _ => {}
        }
        if !self.authorized(req) {
            return self.unauthorized("missing or invalid credentials");
        }
        let reply = self.route(req, scenario);
        if scenario == Scenario::Slow {
            reply.delay(self.slow_delay)
        } else {
            reply
        }
    }

    fn unauthorized(&self, message: &str) -> Reply {
        error(401, "unauthorized", message).header(
            "www-authenticate",
            "Bearer realm=\"documents\", Basic realm=\"documents\"",
        )
    }

    fn authorized(&self, req: &Recorded) -> bool {
        let c = &self.credentials;
        if req.header("x-api-key") == Some(c.api_key.as_str()) {
            return true;
        }
        let Some(auth) = req.header("authorization") else {
            return false;
        };
        if let Some(token) = auth.strip_prefix("Bearer ") {
            return token == c.token;
        }
        if let Some(encoded) = auth.strip_prefix("Basic ") {
            let expected = format!("{}:{}", c.user, c.password);
            return base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .is_ok_and(|d| d == expected.as_bytes());
        }
        false
    }

    fn route(&self, req: &Recorded, scenario: Scenario) -> Reply {
        let segments: Vec<String> = req.path.split('/').skip(1).map(decode).collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = req.method.as_str();
        match segments.as_slice() {
            ["api", "v1", "health"] => only(method, "GET", || self.health(scenario)),
            ["api", "v1", "tenants"] => only(method, "GET", || self.tenants()),
            ["api", "v1", "tenants", tenant, rest @ ..] => {
                let state = self.state.lock().expect("state lock");
                if !state.tenants.contains_key(*tenant) {
                    return error(404, "not_found", &format!("no tenant {tenant:?}"));
                }
                drop(state);
                match (rest, method) {
                    (["stats"], "GET") => self.stats(tenant, scenario),
                    (["errors"], "GET") => self.errors(tenant, scenario),
                    (["documents"], "GET") => self.cursor_page(req, tenant, scenario),
                    (["documents"], "DELETE") => self.delete_all(tenant),
                    (["document-ids"], "GET") => self.numbered_page(req, tenant, scenario),
                    (["resync"], "POST") => self.resync(req, tenant),
                    (["documents", "delete"], "POST") => self.delete_some(req, tenant),
                    (["stats" | "errors" | "document-ids"], _)
                    | (["documents"], _)
                    | (["resync"], _)
                    | (["documents", "delete"], _) => error(
                        405,
                        "method_not_allowed",
                        &format!("{method} is not allowed here"),
                    ),
                    _ => error(404, "not_found", "no such path"),
                }
            }
            _ => error(404, "not_found", "no such path"),
        }
    }

    fn tenant(&self, id: &str) -> Tenant {
        let state = self.state.lock().expect("state lock");
        state.tenants.get(id).cloned().expect("checked by route")
    }

    fn health(&self, scenario: Scenario) -> Reply {
        let tenants = self.state.lock().expect("state lock").tenants.len();
        let status = service_status(scenario);
        Reply::json(
            200,
            json!({"status": status, "version": "2.3.1", "tenants": tenants}),
        )
    }

    fn tenants(&self) -> Reply {
        let state = self.state.lock().expect("state lock");
        let tenants: Vec<Value> = state
            .tenants
            .iter()
            .map(|(id, t)| json!({"tenantId": id, "name": t.name}))
            .collect();
        Reply::json(200, json!({ "tenants": tenants }))
    }

    /// When the tenant's data last changed, per the scenario.
    fn updated_at(&self, scenario: Scenario) -> chrono::DateTime<chrono::Utc> {
        let age = if scenario == Scenario::Stale {
            STALE_AGE
        } else {
            FRESH_AGE
        };
        self.clock.now() - chrono::Duration::from_std(age).expect("a small duration")
    }

    /// The tenant's documents in error: (document id, type, message).
    fn failures(tenant: &Tenant, scenario: Scenario) -> Vec<(String, &'static str, &'static str)> {
        let n = if scenario == Scenario::Failing {
            FAILING_ERRORS.min(tenant.docs.len())
        } else {
            tenant.in_error.min(tenant.docs.len())
        };
        tenant.docs[..n]
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let (kind, message) = ERROR_TYPES[i % ERROR_TYPES.len()];
                (id.clone(), kind, message)
            })
            .collect()
    }

    fn stats(&self, id: &str, scenario: Scenario) -> Reply {
        let tenant = self.tenant(id);
        let updated = self.updated_at(scenario);
        let failures = Self::failures(&tenant, scenario);
        if scenario == Scenario::Malformed {
            return Reply::json(
                200,
                json!({
                    "tenantId": id,
                    "status": ["ok"],
                    "expected": tenant.expected.to_string(),
                    "received": "two hundred forty-five",
                    "inError": null,
                    "lastReceived": tenant.docs.last(),
                    "updatedAt": updated.timestamp(),
                    "errorsByType": "none"
                }),
            );
        }
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, kind, _) in &failures {
            *by_type.entry(kind).or_default() += 1;
        }
        let status = service_status(scenario);
        Reply::json(
            200,
            json!({
                "tenantId": id,
                "status": status,
                "expected": tenant.expected,
                "received": tenant.docs.len(),
                "inError": failures.len(),
                "lastReceived": tenant.docs.last().map(|doc| json!({
                    "documentId": doc,
                    "receivedAt": updated.timestamp()
                })),
                "updatedAt": updated.to_rfc3339_opts(SecondsFormat::Secs, true),
                "errorsByType": by_type
            }),
        )
    }

    fn errors(&self, id: &str, scenario: Scenario) -> Reply {
        let tenant = self.tenant(id);
        if scenario == Scenario::Malformed {
            return Reply::json(
                200,
                json!({"aggregates": "none", "errors": {"documentId": "doc-00001"}}),
            );
        }
        let failures = Self::failures(&tenant, scenario);
        let now = self.clock.now();
        let errors: Vec<Value> = failures
            .iter()
            .enumerate()
            .map(|(i, (doc, kind, message))| {
                let at = now - chrono::Duration::minutes(10 + i as i64);
                // Network errors have no log of ours to link to.
                let link = (*kind != "NetworkError")
                    .then(|| format!("https://logs.example.com/documents/{doc}"));
                json!({
                    "documentId": doc,
                    "errorType": kind,
                    "message": message,
                    "logLink": link,
                    "timestamp": at.timestamp_millis()
                })
            })
            .collect();
        let aggregates: Vec<Value> = ERROR_TYPES
            .iter()
            .filter_map(|(kind, message)| {
                let count = failures.iter().filter(|f| f.1 == *kind).count();
                (count > 0).then(|| {
                    json!({
                        "errorType": kind,
                        "count": count,
                        "message": message,
                        "logLink": format!("https://logs.example.com/errors?type={kind}")
                    })
                })
            })
            .collect();
        Reply::json(200, json!({"aggregates": aggregates, "errors": errors}))
    }

    /// `?limit=` (or `per_page`), checked as the service does.
    fn page_size(req: &Recorded, name: &str) -> Result<usize, Reply> {
        match req.query_param(name) {
            None => Ok(DEFAULT_PAGE),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
                _ => Err(error(
                    400,
                    "bad_request",
                    &format!("{name} must be a number from 1 to {MAX_PAGE}"),
                )),
            },
        }
    }

    fn number(req: &Recorded, name: &str, min: usize) -> Result<Option<usize>, Reply> {
        match req.query_param(name) {
            None => Ok(None),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n >= min => Ok(Some(n)),
                _ => Err(error(
                    400,
                    "bad_request",
                    &format!("{name} must be a whole number of at least {min}"),
                )),
            },
        }
    }

    fn cursor_page(&self, req: &Recorded, id: &str, scenario: Scenario) -> Reply {
        let tenant = self.tenant(id);
        if scenario == Scenario::Malformed {
            return Reply::json(
                200,
                json!({"documents": tenant.docs.join(","), "nextCursor": 0}),
            );
        }
        let limit = match Self::page_size(req, "limit") {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        // The cursor is opaque to clients: the id of the last document sent.
        let start = match req.query_param("cursor").map(decode) {
            None => 0,
            Some(cursor) => match tenant
                .docs
                .iter()
                .position(|d| format!("after:{d}") == cursor)
            {
                Some(i) => i + 1,
                None => return error(400, "bad_request", "invalid cursor"),
            },
        };
        let end = (start + limit).min(tenant.docs.len());
        let page = &tenant.docs[start..end];
        let next = (end < tenant.docs.len()).then(|| format!("after:{}", tenant.docs[end - 1]));
        let documents: Vec<Value> = page.iter().map(|d| json!({"documentId": d})).collect();
        Reply::json(200, json!({"documents": documents, "nextCursor": next}))
    }

    fn numbered_page(&self, req: &Recorded, id: &str, scenario: Scenario) -> Reply {
        let tenant = self.tenant(id);
        if scenario == Scenario::Malformed {
            return Reply::json(200, json!({"ids": tenant.docs.join(","), "total": "many"}));
        }
        let total = tenant.docs.len();
        let (page, offset) = match (Self::number(req, "page", 1), Self::number(req, "offset", 0)) {
            (Err(reply), _) | (_, Err(reply)) => return reply,
            (Ok(page), Ok(offset)) => (page, offset),
        };
        match (page, offset) {
            (Some(_), Some(_)) => error(400, "bad_request", "give page or offset, not both"),
            (Some(_), None) if req.query_param("limit").is_some() => {
                error(400, "bad_request", "page goes with per_page, not limit")
            }
            (None, Some(offset)) => Self::offset_page(req, &tenant.docs, offset),
            (None, None) if req.query_param("limit").is_some() => {
                Self::offset_page(req, &tenant.docs, 0)
            }
            (page, None) => {
                let page = page.unwrap_or(1);
                let per_page = match Self::page_size(req, "per_page") {
                    Ok(n) => n,
                    Err(reply) => return reply,
                };
                let start = ((page - 1) * per_page).min(total);
                let end = (start + per_page).min(total);
                let total_pages = total.div_ceil(per_page);
                Reply::json(
                    200,
                    json!({
                        "ids": tenant.docs[start..end],
                        "page": page,
                        "perPage": per_page,
                        "totalPages": total_pages,
                        "hasMore": page < total_pages
                    }),
                )
            }
        }
    }

    fn offset_page(req: &Recorded, docs: &[String], offset: usize) -> Reply {
        let limit = match Self::page_size(req, "limit") {
            Ok(n) => n,
            Err(reply) => return reply,
        };
        let start = offset.min(docs.len());
        let end = (start + limit).min(docs.len());
        Reply::json(
            200,
            json!({
                "ids": docs[start..end],
                "offset": offset,
                "limit": limit,
                "total": docs.len()
            }),
        )
    }

    /// The `documentIds` of a JSON body, refused as the service does.
    fn document_ids_in(req: &Recorded) -> Result<Vec<String>, Reply> {
        let is_json = req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        if !is_json {
            return Err(error(
                415,
                "unsupported_media_type",
                "send application/json",
            ));
        }
        let body = req
            .json()
            .ok_or_else(|| error(400, "bad_request", "the body is not JSON"))?;
        body.get("documentIds")
            .and_then(Value::as_array)
            .and_then(|ids| {
                ids.iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| error(400, "bad_request", "documentIds must be a list of ids"))
    }

    fn resync(&self, req: &Recorded, id: &str) -> Reply {
        let ids = match Self::document_ids_in(req) {
            Ok(ids) => ids,
            Err(reply) => return reply,
        };
        let mut state = self.state.lock().expect("state lock");
        state.resync_jobs += 1;
        let job = format!("resync-{}", state.resync_jobs);
        let tenant = state.tenants.get(id).expect("checked by route");
        let (accepted, unknown): (Vec<&String>, Vec<&String>) = if ids.is_empty() {
            (tenant.docs.iter().collect(), Vec::new())
        } else {
            ids.iter().partition(|d| tenant.docs.contains(d))
        };
        Reply::json(
            202,
            json!({"accepted": accepted.len(), "unknown": unknown, "jobId": job}),
        )
    }

    fn delete_all(&self, id: &str) -> Reply {
        let mut state = self.state.lock().expect("state lock");
        let tenant = state.tenants.get_mut(id).expect("checked by route");
        let deleted = tenant.docs.len();
        tenant.docs.clear();
        tenant.in_error = 0;
        Reply::json(200, json!({ "deleted": deleted }))
    }

    fn delete_some(&self, req: &Recorded, id: &str) -> Reply {
        let ids = match Self::document_ids_in(req) {
            Ok(ids) => ids,
            Err(reply) => return reply,
        };
        let mut state = self.state.lock().expect("state lock");
        let tenant = state.tenants.get_mut(id).expect("checked by route");
        let before = tenant.docs.len();
        tenant.docs.retain(|d| !ids.contains(d));
        let deleted = before - tenant.docs.len();
        tenant.in_error = tenant.in_error.min(tenant.docs.len());
        Reply::json(200, json!({ "deleted": deleted }))
    }
}

fn only(method: &str, allowed: &str, answer: impl FnOnce() -> Reply) -> Reply {
    if method == allowed {
        answer()
    } else {
        error(
            405,
            "method_not_allowed",
            &format!("{method} is not allowed here"),
        )
    }
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": code, "message": message}))
}

/// Percent-decoding of a path segment or query value (`+` stays `+`).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the service says of itself: `degraded` while failing.
fn service_status(scenario: Scenario) -> &'static str {
    if scenario == Scenario::Failing {
        "degraded"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> ServiceFake {
        ServiceFake::new(
            FakeClock::fixed_unix(1_795_168_800),
            ScenarioSwitch::default(),
        )
    }

    fn request(method: &str, path: &str, query: Option<&str>, auth: bool) -> Recorded {
        let mut headers = BTreeMap::new();
        if auth {
            headers.insert("authorization".into(), "Bearer svc-token-8f2c".into());
        }
        Recorded {
            method: method.into(),
            path: path.into(),
            query: query.map(str::to_owned),
            headers,
            body: Vec::new(),
        }
    }

    fn answer(reply: &Reply) -> (u16, Value) {
        (reply.status, serde_json::from_slice(&reply.body).unwrap())
    }

    #[test]
    fn refuses_what_the_service_refuses() {
        let f = fake();
        let reply = f.handle(&request("GET", "/api/v1/tenants/acme/stats", None, false));
        assert_eq!(reply.status, 401);
        assert!(reply.headers.iter().any(|(k, _)| k == "www-authenticate"));
        for (method, path, query, status) in [
            ("POST", "/api/v1/tenants/acme/resync", None, 415),
            (
                "GET",
                "/api/v1/tenants/acme/documents",
                Some("cursor=bogus"),
                400,
            ),
            (
                "GET",
                "/api/v1/tenants/acme/document-ids",
                Some("page=1&offset=0"),
                400,
            ),
            (
                "GET",
                "/api/v1/tenants/acme/document-ids",
                Some("per_page=501"),
                400,
            ),
            ("PUT", "/api/v1/tenants/acme/stats", None, 405),
            ("GET", "/api/v1/tenants/initech/stats", None, 404),
        ] {
            let reply = f.handle(&request(method, path, query, true));
            assert_eq!(reply.status, status, "{method} {path}?{query:?}");
            assert!(answer(&reply).1["error"].is_string());
        }
    }

    #[test]
    fn decodes_tenant_names_and_pages_by_number() {
        let f = fake();
        let reply = f.handle(&request(
            "GET",
            "/api/v1/tenants/umbrella%20corp%2Feu/document-ids",
            Some("page=2&per_page=5"),
            true,
        ));
        assert_eq!(
            answer(&reply),
            (
                200,
                json!({"ids": ["doc-00006", "doc-00007"], "page": 2, "perPage": 5, "totalPages": 2, "hasMore": false})
            )
        );
    }

    #[test]
    fn rate_limited_and_slow_answer_as_their_docs_say() {
        let f = fake();
        f.scenario.set(Scenario::RateLimited);
        let reply = f.handle(&request("GET", "/api/v1/health", None, true));
        assert_eq!(reply.status, 429);
        assert!(reply.headers.contains(&("retry-after".into(), "30".into())));
        f.scenario.set(Scenario::Slow);
        let reply = f.handle(&request("GET", "/api/v1/health", None, true));
        assert_eq!(
            (reply.status, reply.delay),
            (200, Some(Duration::from_secs(5)))
        );
    }
}

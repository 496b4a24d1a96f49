//! Fake of Looker API 4.0: the endpoints the `looker` connector calls, shaped
//! as `looker-open-source/sdk-codegen` `spec/Looker.4.0.oas.json` shapes them
//! (see `../shared/reference/looker.md`).
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /api/4.0/login`, form body `client_id=..&client_secret=..` | `AccessToken` `{access_token, token_type: "Bearer", expires_in, refresh_token: null}` |
//! | `DELETE /api/4.0/logout` | 204, the token is gone |
//! | `GET /api/4.0/user` | `User` (the API user) |
//! | `GET /api/4.0/datagroups` | `Datagroup[]`, times in Unix seconds, unpaginated |
//! | `GET /api/4.0/dashboards/{id}`, `/looks/{id}` | `Dashboard`, `LookWithQuery` (times ISO 8601), 404 when unknown |
//! | `GET /api/4.0/dashboards/search`, `/looks/search` | arrays paged by `limit`/`offset`, filtered by `deleted` |
//! | `GET /api/4.0/content_validation` | `ContentValidation` |
//!
//! Every answer honours `fields=` (`a,b,c(d,e)`) as Looker does, so a test
//! sees what a client that forgot a field would get. Failures carry Looker's
//! `Error` body `{message, documentation_url}`.
//!
//! What it checks, as Looker does: the login's credentials in a
//! `application/x-www-form-urlencoded` body (an unknown key gets 404 "Not
//! found", Looker's answer to bad credentials); `Authorization: token <t>`
//! (or `Bearer <t>`) on every other call, refused with 401 "Requires
//! authentication." when the token is unknown, logged out, past its
//! `expires_in` by the [`FakeClock`], or revoked. Stricter than Looker: it
//! refuses credentials in the query string (deprecated by the spec), so a
//! client that leaks its secret into URLs fails.
//!
//! Scenarios: `healthy` (datagroups triggered minutes ago, content edited
//! yesterday, no content errors); `stale` (triggers and edits days ago);
//! `failing` (a datagroup's `trigger_error`, content validation errors on a
//! look, a dashboard's tile and filter, and an unwatched dashboard); `slow`
//! (every answer after [`LookerFake::slow_delay`]); `unauthorized` (the
//! login refused, every token refused); `rate-limited` (every request 429
//! with `Retry-After`); `malformed` (logins work, every API answer is 200
//! with its JSON cut in half).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use plugin_sdk::harness::{Recorded, Reply, TestServer};
use serde_json::{Map, Value, json};

use super::{FakeClock, Scenario, ScenarioSwitch};

/// The API key the fake accepts.
pub const CLIENT_ID: &str = "fake-looker-client-id";
pub const CLIENT_SECRET: &str = "fake-looker-client-secret";
/// `expires_in` of the fake's tokens unless [`LookerFake::token_lifetime`]
/// says otherwise: Looker's usual hour.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The `Retry-After` of the rate-limited scenario, in seconds.
pub const RETRY_AFTER_SECS: u64 = 30;
/// How long the slow scenario waits before answering, unless
/// [`LookerFake::slow_delay`] says otherwise.
pub const SLOW_DELAY: Duration = Duration::from_secs(5);

const API: &str = "/api/4.0";
const DAY: i64 = 86_400;

/// A Looker instance with a few datagroups, dashboards and looks.
pub struct LookerFake {
    clock: FakeClock,
    scenario: ScenarioSwitch,
    token_lifetime: Duration,
    revoke_after: Option<usize>,
    slow_delay: Duration,
    extra_dashboards: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    issued: u64,
    tokens: HashMap<String, Issued>,
}

struct Issued {
    at: DateTime<Utc>,
    /// Authenticated calls it has served.
    served: usize,
}

impl LookerFake {
    pub fn new(clock: FakeClock, scenario: ScenarioSwitch) -> Self {
        Self {
            clock,
            scenario,
            token_lifetime: TOKEN_LIFETIME,
            revoke_after: None,
            slow_delay: SLOW_DELAY,
            extra_dashboards: 0,
            state: Mutex::default(),
        }
    }

    /// The `expires_in` of the tokens it issues; a token is refused once
    /// that long has passed on the clock.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// Revoke every token after it has served `calls` authenticated calls
    /// (an admin disabling the key, a restarted instance): the next call
    /// with it gets 401. With 0, every token is refused on first use.
    pub fn revoke_tokens_after(mut self, calls: usize) -> Self {
        self.revoke_after = Some(calls);
        self
    }

    /// How long the slow scenario waits before each answer.
    pub fn slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    /// `n` more dashboards (ids from 1000, titled `Generated n`), so the
    /// search endpoints have pages to turn.
    pub fn extra_dashboards(mut self, n: usize) -> Self {
        self.extra_dashboards = n;
        self
    }

    /// On a free loopback port (tests).
    pub async fn start(self) -> TestServer {
        let fake = Arc::new(self);
        TestServer::start(move |req| fake.handle(req)).await
    }

    /// Answers one request as Looker would.
    pub fn handle(&self, req: &Recorded) -> Reply {
        let scenario = self.scenario.get();
        let reply = match scenario {
            Scenario::RateLimited => error(429, "Too Many Requests", &route(req))
                .header("retry-after", &RETRY_AFTER_SECS.to_string()),
            _ => self.route(req, scenario),
        };
        match scenario {
            Scenario::Slow => reply.delay(self.slow_delay),
            _ => reply,
        }
    }

    fn route(&self, req: &Recorded, scenario: Scenario) -> Reply {
        let Some(path) = req.path.strip_prefix(API) else {
            return error(404, "Not found", &route(req));
        };
        if (req.method.as_str(), path) == ("POST", "/login") {
            return self.login(req, scenario);
        }
        let Some(token) = self.authenticate(req, scenario) else {
            return error(401, "Requires authentication.", &route(req));
        };
        if (req.method.as_str(), path) == ("DELETE", "/logout") {
            self.state.lock().expect("fake state").tokens.remove(&token);
            return Reply::status(204);
        }
        if req.method != "GET" {
            return error(404, "Not found", &route(req));
        }
        let query = decode(req.query.as_deref().unwrap_or_default());
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let now = self.clock.now();
        let body = match path.split('/').skip(1).collect::<Vec<_>>()[..] {
            ["user"] => user(),
            ["datagroups"] => datagroups(now, scenario),
            ["content_validation"] => content_validation(scenario),
            [kind @ ("dashboards" | "looks"), "search"] => {
                let deleted = param("deleted").map(|d| d == "true");
                let offset = param("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
                let limit = param("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(usize::MAX);
                let items: Vec<Value> = self
                    .content(kind, now, scenario)
                    .into_iter()
                    .filter(|item| deleted.is_none_or(|d| item["deleted"] == d))
                    .skip(offset)
                    .take(limit)
                    .collect();
                Value::Array(items)
            }
            [kind @ ("dashboards" | "looks"), id] => {
                match self
                    .content(kind, now, scenario)
                    .into_iter()
                    .find(|item| item["id"] == id)
                {
                    Some(item) => item,
                    None => return error(404, "Not found", &route(req)),
                }
            }
            _ => return error(404, "Not found", &route(req)),
        };
        let body = match param("fields") {
            Some(fields) => select(&body, &parse_fields(fields)),
            None => body,
        };
        if scenario == Scenario::Malformed {
            let text = body.to_string();
            let cut = text.len() / 2;
            return Reply::status(200)
                .header("content-type", "application/json")
                .body(text[..cut].to_string());
        }
        Reply::json(200, body)
    }

    fn login(&self, req: &Recorded, scenario: Scenario) -> Reply {
        let route = route(req);
        if req.query.is_some() {
            return error(
                400,
                "Pass client_id and client_secret in the request body, not the query string",
                &route,
            );
        }
        let form = req
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return error(400, "Bad Request", &route);
        }
        let body = decode(&String::from_utf8_lossy(&req.body));
        let given = |name: &str| {
            body.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if scenario == Scenario::Unauthorized
            || given("client_id") != Some(CLIENT_ID)
            || given("client_secret") != Some(CLIENT_SECRET)
        {
            return error(404, "Not found", &route);
        }
        let mut state = self.state.lock().expect("fake state");
        state.issued += 1;
        let token = format!("fake-looker-token-{}", state.issued);
        state.tokens.insert(
            token.clone(),
            Issued {
                at: self.clock.now(),
                served: 0,
            },
        );
        Reply::json(
            200,
            json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime.as_secs(),
                "refresh_token": null
            }),
        )
    }

    /// The token of an authenticated request, counted as served.
    fn authenticate(&self, req: &Recorded, scenario: Scenario) -> Option<String> {
        let header = req.header("authorization")?;
        let (scheme, token) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut state = self.state.lock().expect("fake state");
        let issued = state.tokens.get_mut(token.trim())?;
        let lifetime = chrono::Duration::from_std(self.token_lifetime).ok()?;
        let revoked = self.revoke_after.is_some_and(|n| issued.served >= n);
        if scenario == Scenario::Unauthorized || revoked || self.clock.now() >= issued.at + lifetime
        {
            return None;
        }
        issued.served += 1;
        Some(token.trim().to_string())
    }

    /// Every dashboard or every look, as `GET /dashboards/{id}` (a
    /// `Dashboard`) or `GET /looks/{id}` (a `LookWithQuery`) returns it.
    fn content(&self, kind: &str, now: DateTime<Utc>, scenario: Scenario) -> Vec<Value> {
        let stale = scenario == Scenario::Stale;
        let (edited, accessed) = if stale {
            (120 * DAY, 45 * DAY)
        } else {
            (DAY, 600)
        };
        let at = |seconds_ago: i64| iso(now - chrono::Duration::seconds(seconds_ago));
        let item = |id: &str, title: &str, folder: &str, views: u64, deleted: bool| {
            let mut item = json!({
                "can": {"show": true, "update": false},
                "id": id,
                "title": title,
                "description": null,
                "user_id": "12",
                "created_at": at(400 * DAY),
                "updated_at": at(edited),
                "last_accessed_at": at(accessed),
                "last_viewed_at": at(accessed + 60),
                "view_count": views,
                "favorite_count": views / 100,
                "deleted": deleted,
                "deleted_at": if deleted { Value::String(at(7 * DAY)) } else { Value::Null },
                "folder": {"id": folder, "name": format!("Folder {folder}")},
                "url": format!("/{kind}/{id}"),
            });
            let extra = match kind {
                "dashboards" => json!({
                    "hidden": false,
                    "slug": format!("slug{id}"),
                    "model": {"id": "thelook", "label": "The Look"},
                    "refresh_interval": null,
                    "dashboard_elements": [
                        {"id": format!("{id}01"), "dashboard_id": id, "title": "Revenue by Week", "type": "vis", "query_id": "55"},
                        {"id": format!("{id}02"), "dashboard_id": id, "title": "Orders", "type": "vis", "query_id": "56"}
                    ],
                    "dashboard_filters": [
                        {"id": format!("{id}1"), "dashboard_id": id, "name": "region", "title": "Region", "type": "field_filter"}
                    ]
                }),
                _ => json!({
                    "public": false,
                    "short_url": format!("/x/{id}abc"),
                    "query_id": "77",
                    "last_updater_id": "12",
                    "model": {"id": "thelook", "label": "The Look"},
                    "query": {"id": "77", "model": "thelook", "view": "orders", "fields": ["orders.count", "orders.created_week"]}
                }),
            };
            if let (Some(item), Value::Object(extra)) = (item.as_object_mut(), extra) {
                item.extend(extra);
            }
            item
        };
        match kind {
            "dashboards" => {
                let mut all = vec![
                    item("1", "Sales Overview", "5", 1523, false),
                    item("2", "Executive KPIs", "5", 310, false),
                    item("3", "Old Funnel", "6", 12, true),
                    item("9", "Marketing Funnel", "6", 88, false),
                ];
                all.extend((0..self.extra_dashboards).map(|n| {
                    item(
                        &(1000 + n).to_string(),
                        &format!("Generated {n}"),
                        "7",
                        1,
                        false,
                    )
                }));
                all
            }
            _ => vec![
                item("7", "Weekly Orders", "5", 240, false),
                item("8", "Returns by Region", "5", 75, false),
            ],
        }
    }
}

/// `GET /user`: the API user.
fn user() -> Value {
    json!({
        "id": "12",
        "display_name": "Tributary Monitor",
        "first_name": "Tributary",
        "last_name": "Monitor",
        "email": "monitor@example.com",
        "is_disabled": false
    })
}

/// `GET /datagroups`. Healthy: the orders datagroup triggered 15 minutes
/// ago, the two daily ones hours ago; stale: days ago; failing: the orders
/// trigger errs and has not triggered for two days. `weekly_cache` has only
/// a `max_cache_age`, so it is never checked.
fn datagroups(now: DateTime<Utc>, scenario: Scenario) -> Value {
    let now = now.timestamp();
    let (orders, daily) = match scenario {
        Scenario::Stale => (3 * DAY, 4 * DAY),
        Scenario::Failing => (2 * DAY, 6 * 3600),
        _ => (15 * 60, 6 * 3600),
    };
    let trigger_error = (scenario == Scenario::Failing).then_some(
        "Error running trigger query: SQL compilation error: Object 'ANALYTICS.PUBLIC.ORDERS' does not exist or not authorized.",
    );
    let value = |unix: i64| {
        DateTime::from_timestamp(unix, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let day = |unix: i64| {
        DateTime::from_timestamp(unix, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let can = json!({"show": true, "update": false});
    json!([
        {
            "can": can, "id": "1", "model_name": "thelook", "name": "orders_datagroup",
            "created_at": now - 90 * DAY, "triggered_at": now - orders, "trigger_check_at": now - 120,
            "stale_before": now - orders, "trigger_value": value(now - orders), "trigger_error": trigger_error
        },
        {
            "can": can, "id": "2", "model_name": "thelook", "name": "daily_refresh",
            "created_at": now - 90 * DAY, "triggered_at": now - daily, "trigger_check_at": now - 300,
            "stale_before": now - daily, "trigger_value": day(now - daily), "trigger_error": null
        },
        {
            "can": can, "id": "3", "model_name": "marketing", "name": "daily_refresh",
            "created_at": now - 30 * DAY, "triggered_at": now - daily - 3600, "trigger_check_at": now - 300,
            "stale_before": now - daily - 3600, "trigger_value": day(now - daily - 3600), "trigger_error": null
        },
        {
            "can": can, "id": "4", "model_name": "thelook", "name": "weekly_cache",
            "created_at": now - 90 * DAY, "triggered_at": null, "trigger_check_at": null,
            "stale_before": 0, "trigger_value": null, "trigger_error": null
        }
    ])
}

/// `GET /content_validation`. Failing: an unknown field in look 7, an
/// unknown explore in a tile of dashboard 1 and a bad filter of it, and an
/// unknown model behind dashboard 9.
fn content_validation(scenario: Scenario) -> Value {
    let folder = json!({"id": "5", "name": "Folder 5"});
    let errors = if scenario == Scenario::Failing {
        json!([
            {
                "id": "cv-1",
                "look": {"id": "7", "title": "Weekly Orders", "short_url": "/x/7abc", "folder": folder},
                "errors": [{"message": "Unknown field \"orders.total_revenue\"", "field_name": "orders.total_revenue",
                            "model_name": "thelook", "explore_name": "orders", "removable": true}]
            },
            {
                "id": "cv-2",
                "dashboard_element": {"id": "101", "dashboard_id": "1", "look_id": null, "query_id": "55",
                                      "title": "Revenue by Week", "type": "vis"},
                "errors": [{"message": "Unknown explore \"order_items\"", "field_name": null,
                            "model_name": "thelook", "explore_name": "order_items", "removable": false}]
            },
            {
                "id": "cv-3",
                "dashboard_filter": {"id": "11", "dashboard_id": "1", "name": "region", "title": "Region",
                                     "type": "field_filter", "model": "thelook", "explore": "orders", "dimension": "users.region"},
                "errors": [{"message": "Unknown field \"users.region\"", "field_name": "users.region",
                            "model_name": "thelook", "explore_name": "orders", "removable": true}]
            },
            {
                "id": "cv-4",
                "dashboard": {"id": "9", "title": "Marketing Funnel", "url": "/dashboards/9", "description": null, "folder": folder},
                "errors": [{"message": "Unknown model \"marketing_v1\"", "field_name": null,
                            "model_name": "marketing_v1", "explore_name": null, "removable": false}]
            }
        ])
    } else {
        json!([])
    };
    json!({
        "content_with_errors": errors,
        "computation_time": 2.5,
        "total_looks_validated": 2,
        "total_dashboard_elements_validated": 8,
        "total_dashboard_filters_validated": 4,
        "total_scheduled_plans_validated": 1,
        "total_alerts_validated": 0,
        "total_explores_validated": 3
    })
}

/// Looker's `Error` body, with a documentation link in its style.
fn error(status: u16, message: &str, route: &str) -> Reply {
    Reply::json(
        status,
        json!({
            "message": message,
            "documentation_url": format!("https://cloud.google.com/looker/docs/r/err/4.0/{status}/{route}")
        }),
    )
}

/// `get/dashboards/:dashboard_id`: the method and path template of a
/// request, as Looker's error links spell them.
fn route(req: &Recorded) -> String {
    let path = req.path.strip_prefix(API).unwrap_or(&req.path);
    let template = match path.split('/').skip(1).collect::<Vec<_>>()[..] {
        ["dashboards", id] if id != "search" => "dashboards/:dashboard_id".to_string(),
        ["looks", id] if id != "search" => "looks/:look_id".to_string(),
        _ => path.trim_start_matches('/').to_string(),
    };
    format!("{}/{template}", req.method.to_ascii_lowercase())
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// A query string or form body, percent-decoded.
fn decode(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// One entry of a `fields` list: a name, and the fields wanted of it.
struct Field {
    name: String,
    of: Vec<Field>,
}

/// `id,title,folder(id,name)`.
fn parse_fields(text: &str) -> Vec<Field> {
    let mut fields = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                fields.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(&text[start..]);
    fields
        .into_iter()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match (f.find('('), f.strip_suffix(')')) {
            (Some(open), Some(inner)) => Field {
                name: f[..open].trim().to_string(),
                of: parse_fields(&inner[open + 1..]),
            },
            _ => Field {
                name: f.to_string(),
                of: Vec::new(),
            },
        })
        .collect()
}

/// `value` with only `fields`, applied to each element of an array.
fn select(value: &Value, fields: &[Field]) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| select(v, fields)).collect()),
        Value::Object(object) => Value::Object(
            fields
                .iter()
                .filter_map(|field| {
                    let inner = object.get(&field.name)?;
                    let inner = if field.of.is_empty() {
                        inner.clone()
                    } else {
                        select(inner, &field.of)
                    };
                    Some((field.name.clone(), inner))
                })
                .collect::<Map<String, Value>>(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    const NOW: i64 = 1_795_168_800;

    fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Recorded {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (target, None),
        };
        Recorded {
            method: method.into(),
            path: path.into(),
            query,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn body(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).expect("a JSON body")
    }

    fn login(fake: &LookerFake) -> String {
        let form = format!("client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}");
        let reply = fake.handle(&request(
            "POST",
            "/api/4.0/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        ));
        assert_eq!(reply.status, 200);
        body(&reply)["access_token"].as_str().unwrap().to_string()
    }

    fn get(fake: &LookerFake, target: &str, token: &str) -> Reply {
        let auth = format!("token {token}");
        fake.handle(&request("GET", target, &[("authorization", &auth)], ""))
    }

    fn healthy() -> LookerFake {
        LookerFake::new(FakeClock::fixed_unix(NOW), ScenarioSwitch::default())
    }

    #[test]
    fn a_login_takes_the_key_from_a_form_body_only() {
        let fake = healthy();
        let json_body = fake.handle(&request(
            "POST",
            "/api/4.0/login",
            &[("content-type", "application/json")],
            &format!(r#"{{"client_id":"{CLIENT_ID}","client_secret":"{CLIENT_SECRET}"}}"#),
        ));
        assert_eq!(json_body.status, 400);
        let in_query = fake.handle(&request(
            "POST",
            &format!("/api/4.0/login?client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"),
            &[],
            "",
        ));
        assert_eq!(in_query.status, 400);
        let wrong = fake.handle(&request(
            "POST",
            "/api/4.0/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("client_id={CLIENT_ID}&client_secret=nope"),
        ));
        assert_eq!(wrong.status, 404);
        assert_eq!(
            body(&wrong),
            json!({"message": "Not found",
                   "documentation_url": "https://cloud.google.com/looker/docs/r/err/4.0/404/post/login"})
        );

        let reply = fake.handle(&request(
            "POST",
            "/api/4.0/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}"),
        ));
        assert_eq!(
            body(&reply),
            json!({"access_token": "fake-looker-token-1", "token_type": "Bearer",
                   "expires_in": 3600, "refresh_token": null})
        );
    }

    #[test]
    fn tokens_expire_by_the_clock_and_end_at_logout() {
        let elapsed = Arc::new(AtomicI64::new(0));
        let clock = {
            let elapsed = elapsed.clone();
            FakeClock(Arc::new(move || {
                DateTime::from_timestamp(NOW + elapsed.load(Ordering::Relaxed), 0).unwrap()
            }))
        };
        let fake = LookerFake::new(clock, ScenarioSwitch::default());
        let token = login(&fake);
        assert_eq!(get(&fake, "/api/4.0/user", &token).status, 200);
        elapsed.store(3599, Ordering::Relaxed);
        assert_eq!(get(&fake, "/api/4.0/user", &token).status, 200);
        elapsed.store(3600, Ordering::Relaxed);
        let expired = get(&fake, "/api/4.0/user", &token);
        assert_eq!(expired.status, 401);
        assert_eq!(body(&expired)["message"], "Requires authentication.");

        let token = login(&fake);
        let auth = format!("token {token}");
        let logout = fake.handle(&request(
            "DELETE",
            "/api/4.0/logout",
            &[("authorization", &auth)],
            "",
        ));
        assert_eq!(logout.status, 204);
        assert_eq!(get(&fake, "/api/4.0/user", &token).status, 401);
        assert_eq!(
            fake.handle(&request("GET", "/api/4.0/user", &[], ""))
                .status,
            401
        );
    }

    #[test]
    fn fields_trim_an_answer_to_what_was_asked_nested_too() {
        let fake = healthy();
        let token = login(&fake);
        let reply = get(
            &fake,
            "/api/4.0/dashboards/1?fields=id%2Ctitle%2Cfolder(name)",
            &token,
        );
        assert_eq!(
            body(&reply),
            json!({"id": "1", "title": "Sales Overview", "folder": {"name": "Folder 5"}})
        );
        let page = get(
            &fake,
            "/api/4.0/dashboards/search?fields=id&deleted=false&limit=2&offset=1",
            &token,
        );
        assert_eq!(body(&page), json!([{"id": "2"}, {"id": "9"}]));
        let missing = get(&fake, "/api/4.0/looks/99", &token);
        assert_eq!(missing.status, 404);
        assert_eq!(
            body(&missing)["documentation_url"],
            "https://cloud.google.com/looker/docs/r/err/4.0/404/get/looks/:look_id"
        );
    }

    #[test]
    fn each_scenario_answers_in_lookers_wire_format() {
        let switch = ScenarioSwitch::default();
        let fake = LookerFake::new(FakeClock::fixed_unix(NOW), switch.clone());
        let token = login(&fake);

        switch.set(Scenario::RateLimited);
        let limited = get(&fake, "/api/4.0/datagroups", &token);
        assert_eq!(limited.status, 429);
        assert!(
            limited
                .headers
                .contains(&("retry-after".into(), "30".into()))
        );
        assert_eq!(body(&limited)["message"], "Too Many Requests");

        switch.set(Scenario::Malformed);
        let malformed = get(&fake, "/api/4.0/datagroups", &token);
        assert_eq!(malformed.status, 200);
        assert!(serde_json::from_slice::<Value>(&malformed.body).is_err());

        switch.set(Scenario::Slow);
        let slow = get(&fake, "/api/4.0/datagroups", &token);
        assert_eq!((slow.status, slow.delay), (200, Some(SLOW_DELAY)));

        switch.set(Scenario::Failing);
        let failing = body(&get(&fake, "/api/4.0/datagroups", &token));
        assert!(failing[0]["trigger_error"].is_string());
        let validation = body(&get(&fake, "/api/4.0/content_validation", &token));
        assert_eq!(
            validation["content_with_errors"].as_array().unwrap().len(),
            4
        );

        switch.set(Scenario::Stale);
        let stale = body(&get(&fake, "/api/4.0/datagroups", &token));
        assert_eq!(stale[0]["triggered_at"], NOW - 3 * DAY);

        switch.set(Scenario::Unauthorized);
        assert_eq!(get(&fake, "/api/4.0/datagroups", &token).status, 401);
        let form = format!("client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}");
        let refused = fake.handle(&request(
            "POST",
            "/api/4.0/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        ));
        assert_eq!(refused.status, 404);
    }
}

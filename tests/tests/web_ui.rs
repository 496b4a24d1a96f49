//! The web UI through `tributary serve`, over real HTTP on loopback: the
//! session cookie and its flags, CSRF and Origin checks on every form,
//! sign-out, roles and tenant scope as the API's (a viewer's forged form is
//! refused, another tenant's pages are 404s), hostile input; and, in Debian's
//! Chromium (`tests/js/web-drill.mjs`), a person's drill from tenant to asset,
//! a card turning red without a reload, an operator action found in the
//! audit log, axe-core at every page, at 360 and 1,440 px.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugin_sdk::harness::TestServer;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tributary_tests::gql::Client;
use tributary_tests::kit::{
    ClockedCheck, Fake, KillOnDrop, at, doc_ids, document_service, eventually, flow_config,
    free_port, serve_ready,
};
use tributary_tests::node::Script;

/// A daemon of tenant acme (flow `docs`: ingest -> warehouse, both with 100
/// ids), tenant globex (nothing) and a tenant whose name is a script tag.
struct World {
    base: String,
    api: Client,
    warehouse: Arc<Mutex<Fake>>,
    config: PathBuf,
    _services: [TestServer; 2],
    _daemon: KillOnDrop,
    _dir: tempfile::TempDir,
}

const HOSTILE: &str = "<script>alert(1)</script>";

async fn world() -> World {
    let ingest = Arc::new(Mutex::new(Fake {
        ids: doc_ids(100),
        ..Fake::default()
    }));
    let warehouse = Arc::new(Mutex::new(Fake {
        ids: doc_ids(100),
        ..Fake::default()
    }));
    let up = document_service(ingest).await;
    let down = document_service(warehouse.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let text = flow_config(
        dir.path(),
        &up,
        &down,
        &format!(
            "[[tenants]]\nid = \"evil\"\nname = \"{HOSTILE}\"\n\n\
             [server]\nlisten = \"127.0.0.1:{port}\""
        ),
    );
    let config = dir.path().join("tributary.toml");
    std::fs::write(&config, &text).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let daemon = KillOnDrop(serve_ready(&config, &base).await);
    let api = Client::new(base.clone());
    let w = World {
        base,
        api,
        warehouse,
        config,
        _services: [up, down],
        _daemon: daemon,
        _dir: dir,
    };
    w.wait_for_run_of("warehouse-docs", 1).await;
    w.wait_for_run_of("ingest-docs", 1).await;
    w
}

impl World {
    async fn admin(&self, query: &str, variables: Value) -> Value {
        let a = self.api.query(Some("admin-token"), query, variables).await;
        assert!(a.body["errors"].is_null(), "{}", a.text);
        a.data().clone()
    }

    async fn wait_for_run_of(&self, check: &str, n: usize) {
        eventually(&format!("{n} runs of {check}"), || async {
            let d = self
                .admin("query($k: String!) { check(key: $k) { runs(first: 100) { nodes { outcome } } } }", json!({ "k": check }))
                .await;
            (d["check"]["runs"]["nodes"].as_array().map_or(0, Vec::len) >= n).then_some(())
        })
        .await;
    }

    async fn audit(&self) -> Vec<Value> {
        let d = self
            .admin("{ auditLog(last: 100) { actor action target } }", json!({}))
            .await;
        d["auditLog"].as_array().cloned().unwrap_or_default()
    }

    async fn flow_id(&self) -> String {
        let d = self
            .admin(
                r#"{ tenant(key: "acme") { flows { nodes { id } } } }"#,
                json!({}),
            )
            .await;
        d["tenant"]["flows"]["nodes"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }
}

/// What a browser does, by hand: keeps the session cookie, sends `Origin`.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
    }

    fn set_cookie(&self) -> &str {
        self.headers
            .get("set-cookie")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .expect("a form with a CSRF token");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    /// A browser of the daemon at `base`, not signed in.
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await.expect("the daemon answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(c) = headers.get("set-cookie").and_then(|c| c.to_str().ok()) {
            let pair = c.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// POSTs a form, from this site's page unless `origin` says otherwise.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let origin = origin.map_or(self.base.clone(), str::to_owned);
        headers.insert("origin", HeaderValue::from_str(&origin).unwrap());
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .headers(headers)
            .body(body);
        self.send(request).await
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        let page = self
            .post("/sign-in", &[("token", token), ("next", "/")], None)
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        page
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_gives_a_safe_session_cookie_and_sign_out_ends_it() {
    let w = world().await;
    let mut b = w.browser();
    // Not signed in: to the sign-in form, and back after.
    let page = b.get("/tenants/acme").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/sign-in?next=%2Ftenants%2Facme");
    assert_eq!(b.get("/sign-in").await.status, 200);

    let refused = b.post("/sign-in", &[("token", "not-a-token")], None).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("not known"), "{}", refused.body);
    // Another site's page cannot sign a browser in (login CSRF).
    let foreign = b
        .post(
            "/sign-in",
            &[("token", "viewer-token")],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert!(b.cookie.is_none());

    let signed = b.sign_in("viewer-token").await;
    let cookie = signed.set_cookie().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    assert!(
        !cookie.contains("viewer-token"),
        "the token is in the cookie: {cookie}"
    );
    let home = b.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Acme"), "{}", home.body);
    assert!(
        !home.body.contains("viewer-token"),
        "the token is in the page"
    );

    // A cookie this daemon never issued (another daemon's, a guess).
    let mut stranger = w.browser();
    stranger.cookie = Some("tributary_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    assert_eq!(stranger.get("/").await.status, 303);

    // Sign-out needs the form's CSRF token too.
    let csrf = home.csrf();
    assert_eq!(
        b.post("/sign-out", &[("csrf", "forged")], None)
            .await
            .status,
        403
    );
    let kept = b.cookie.clone().unwrap();
    let out = b.post("/sign-out", &[("csrf", &csrf)], None).await;
    assert_eq!(out.status, 303);
    assert!(
        out.set_cookie().contains("Max-Age=0"),
        "{}",
        out.set_cookie()
    );
    // The old cookie, replayed, opens nothing.
    b.cookie = Some(kept);
    let after = b.get("/").await;
    assert_eq!(after.status, 303);
    assert!(after.location().starts_with("/sign-in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_the_csrf_token_and_this_origin_and_viewers_are_refused_by_the_api() {
    let w = world().await;
    let mut op = w.browser();
    op.sign_in("operator-token").await;
    let page = op.get("/checks/warehouse-docs").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Run now"), "an operator sees the button");
    let csrf = page.csrf();
    let check = {
        let d = w
            .admin(r#"{ check(key: "warehouse-docs") { id } }"#, json!({}))
            .await;
        d["check"]["id"].as_str().unwrap().to_owned()
    };
    let back = "/checks/warehouse-docs";
    let without: Vec<(&str, &str)> = vec![("check", &check), ("back", back)];
    assert_eq!(
        op.post("/actions/run-now", &without, None).await.status,
        403,
        "no CSRF token"
    );
    let forged: Vec<(&str, &str)> = vec![("csrf", "forged"), ("check", &check), ("back", back)];
    assert_eq!(
        op.post("/actions/run-now", &forged, None).await.status,
        403,
        "a wrong token"
    );
    let good: Vec<(&str, &str)> = vec![("csrf", &csrf), ("check", &check), ("back", back)];
    let elsewhere = op
        .post("/actions/run-now", &good, Some("http://evil.example"))
        .await;
    assert_eq!(elsewhere.status, 403, "another site's page");
    assert!(w.audit().await.is_empty(), "nothing refused was done");

    let done = op.post("/actions/run-now", &good, None).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), back);
    let shown = op.get(back).await;
    assert!(
        shown.body.contains("Run of warehouse-docs queued."),
        "{}",
        shown.body
    );
    let audit = w.audit().await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["actor"], "operator");
    assert_eq!(audit[0]["action"], "run_now");

    // A viewer sees no buttons; a forged form with its own valid CSRF token
    // is refused by the API, and nothing is done.
    let mut viewer = w.browser();
    viewer.sign_in("viewer-token").await;
    let page = viewer.get(back).await;
    assert_eq!(page.status, 200);
    for button in ["Run now", "Mute", "Re-sync", "Delete data"] {
        assert!(!page.body.contains(button), "a viewer sees {button}");
    }
    let csrf = page.csrf();
    let forged: Vec<(&str, &str)> = vec![("csrf", &csrf), ("check", &check), ("back", back)];
    let refused = viewer.post("/actions/run-now", &forged, None).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("has role viewer"), "{}", refused.body);
    assert_eq!(w.audit().await.len(), 1, "the viewer's form did nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tenants_pages_are_not_found_and_hostile_input_is_handled() {
    let w = world().await;
    let flow = w.flow_id().await;
    let mut globex = w.browser();
    globex.sign_in("globex-viewer-token").await;
    assert_eq!(globex.get("/tenants/globex").await.status, 200);
    for path in [
        "/tenants/acme".to_owned(),
        format!("/flows/{flow}"),
        "/checks/warehouse-docs".to_owned(),
        "/tenants/no-such-tenant".to_owned(),
        "/assets/bm90LWFuLWlk".to_owned(),
    ] {
        let page = globex.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(!page.body.contains("Acme"), "{path} shows acme");
    }
    let home = globex.get("/").await;
    assert!(
        !home.body.contains("Acme"),
        "globex's list shows acme: {}",
        home.body
    );

    let mut admin = w.browser();
    admin.sign_in("admin-token").await;
    let home = admin.get("/").await;
    assert!(
        !home.body.contains(HOSTILE),
        "the tenant's name ran as a script"
    );
    assert!(
        home.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        home.body
    );
    let found = admin.get("/?q=%3Cscript").await;
    assert!(
        found.body.contains("&lt;script&gt;alert(1)"),
        "search finds it, escaped"
    );

    let page = admin.get(&format!("/?q={}", "x".repeat(60_000))).await;
    assert_eq!(page.status, 400);
    assert!(
        page.body.contains("search: at most 200 characters"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(&"x".repeat(300)),
        "the input is not echoed whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_removed_by_a_reload_ends_its_sessions() {
    let w = world().await;
    let mut viewer = w.browser();
    viewer.sign_in("viewer-token").await;
    assert_eq!(viewer.get("/").await.status, 200);
    let text = std::fs::read_to_string(&w.config).unwrap();
    let hash = tributary_tests::kit::hex_sha256("viewer-token");
    let without = text.replace(
        &format!("sha256 = \"{hash}\""),
        &format!("sha256 = \"{}\"", "0".repeat(64)),
    );
    std::fs::write(&w.config, without).unwrap();
    eventually("the viewer's session to end", || {
        let mut b = Browser {
            http: viewer.http.clone(),
            base: viewer.base.clone(),
            cookie: viewer.cookie.clone(),
        };
        async move { (b.get("/").await.status == 303).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_person_drills_down_sees_an_outage_live_and_acts() {
    let w = world().await;
    // The warehouse loses 20 of its 100 documents; nothing runs until the
    // operator presses "Run now" in the browser (the checks run hourly).
    w.warehouse.lock().unwrap().ids = doc_ids(80);
    let shots = tributary_tests::repo_root().join("target/screenshots/web-ui");
    let script = Script::start("web-drill.mjs", &[&w.base, &shots.display().to_string()]);
    let seen = script.finish(Duration::from_secs(180)).await;
    let pages: Vec<&Value> = seen.iter().filter(|s| s["event"] == "page").collect();
    let names: Vec<&str> = pages.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "sign-in",
            "tenants",
            "tenant",
            "flow",
            "system",
            "check",
            "asset",
            "tenant-360",
            "check-360",
            "audit",
            "check-as-viewer",
            "not-found"
        ]
    );
    for p in &pages {
        assert_eq!(
            p["violations"],
            json!([]),
            "axe on {}: {:#}",
            p["name"],
            p["violations"]
        );
        assert!(
            p["overflow"].as_i64().unwrap() <= 0,
            "{} is wider than the screen: {p}",
            p["name"]
        );
    }
    let event = |name: &str| -> &Value {
        seen.iter()
            .find(|s| s["event"] == name)
            .unwrap_or_else(|| panic!("no {name} in {seen:#?}"))
    };
    let drilled = event("drilled")["buttons"].to_string();
    for button in ["Re-sync", "Mute"] {
        assert!(
            drilled.contains(button),
            "the asset page lacks {button}: {drilled}"
        );
    }
    // Deleting data is an admin's.
    assert!(
        !drilled.contains("Delete data"),
        "an operator may delete: {drilled}"
    );
    let live = event("live");
    assert_eq!(live["before"], "HEALTHY", "{live}");
    assert_eq!(live["word"], "Failed", "{live}");
    assert_eq!(live["notReloaded"], true, "the page was reloaded: {live}");
    assert!(live["flash"].as_str().unwrap().contains("queued"), "{live}");
    let audit = event("audit")["rows"].to_string();
    assert!(
        audit.contains("run_now") && audit.contains("check:warehouse-docs"),
        "{audit}"
    );
    assert_eq!(
        event("viewer")["buttons"],
        0,
        "a viewer's page has buttons (sign-out is outside main)"
    );
    assert_eq!(event("other-tenant")["statuses"], json!([404, 404]));
}

/// The ids of the `health` events a `/ui/live` stream sends, read until one
/// is past `until` or 30 s pass.
async fn live_ids(mut response: reqwest::Response, until: i64) -> Vec<i64> {
    let mut text = String::new();
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ids.last().is_none_or(|&last| last < until) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no event past {until} in 30 s; saw {ids:?}: {text}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        ids = text
            .lines()
            .filter_map(|l| l.strip_prefix("id:"))
            .map(|id| id.trim().parse().unwrap())
            .collect();
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_stream_resumes_after_the_last_event_the_browser_saw() {
    let w = world().await;
    let mut b = w.browser();
    b.sign_in("viewer-token").await;
    let seen = w.admin("{ lastEventSeq }", json!({})).await["lastEventSeq"]
        .as_i64()
        .unwrap();
    // Health changes while the browser is away: the warehouse loses ids.
    w.warehouse.lock().unwrap().ids = doc_ids(80);
    let check = w
        .admin(r#"{ check(key: "warehouse-docs") { id } }"#, json!({}))
        .await;
    w.admin(
        "mutation($id: ID!) { runCheck(input: { checkId: $id }) { queued } }",
        json!({ "id": check["check"]["id"] }),
    )
    .await;
    let last = eventually("the change to be stored", || async {
        let seq = w.admin("{ lastEventSeq }", json!({})).await["lastEventSeq"]
            .as_i64()
            .unwrap();
        (seq > seen).then_some(seq)
    })
    .await;
    // The browser reconnects saying the last event it saw; the page's own
    // (older) resume point is overruled by it.
    let response = b
        .http
        .get(format!("{}/ui/live?after=0", w.base))
        .header("cookie", b.cookie.clone().unwrap())
        .header("last-event-id", seen.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let ids = live_ids(response, last).await;
    // Every change after `seen`, once, in order (later ones may follow).
    let expected: Vec<i64> = (seen + 1..=*ids.last().unwrap()).collect();
    assert_eq!(ids, expected, "a gap or a repeat after {seen}");

    // Without a session there is no stream.
    let stranger = w.browser().get("/ui/live").await;
    assert_eq!(stranger.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_mutes_and_deletes_an_asset_s_data_only_once_its_key_is_typed() {
    let w = world().await;
    let asset = w
        .admin(
            r#"{ check(key: "warehouse-docs") { assets { nodes { id } } } }"#,
            json!({}),
        )
        .await;
    let asset = asset["check"]["assets"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut admin = w.browser();
    admin.sign_in("admin-token").await;
    let back = format!("/assets/{asset}");
    let page = admin.get(&back).await;
    assert!(page.body.contains("Delete data"), "an admin sees delete");
    let csrf = page.csrf();

    let muted = admin
        .post(
            "/actions/mute",
            &[
                ("csrf", &csrf),
                ("entity", &asset),
                ("reason", "loader migration"),
                ("for", "4h"),
                ("back", &back),
            ],
            None,
        )
        .await;
    assert_eq!(muted.status, 303, "{}", muted.body);
    let page = admin.get(&back).await;
    assert!(page.body.contains("Muted until"), "{}", page.body);
    assert!(
        page.body.contains("loader migration"),
        "the reason is shown"
    );
    assert!(page.body.contains("Unmute"), "a muted asset offers unmute");

    let typo = admin
        .post(
            "/actions/delete",
            &[
                ("csrf", &csrf),
                ("target", &asset),
                ("confirm", "document"),
                ("back", &back),
            ],
            None,
        )
        .await;
    assert_eq!(typo.status, 400);
    assert!(typo.body.contains("nothing was deleted"), "{}", typo.body);
    let actions = |audit: Vec<Value>| -> Vec<String> {
        audit
            .iter()
            .map(|r| r["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(actions(w.audit().await), ["mute"]);

    let deleted = admin
        .post(
            "/actions/delete",
            &[
                ("csrf", &csrf),
                ("target", &asset),
                ("confirm", "documents"),
                ("back", &back),
            ],
            None,
        )
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    let page = admin.get(&back).await;
    assert!(
        page.body.contains("Deleted the stored data of documents"),
        "{}",
        page.body
    );
    assert_eq!(actions(w.audit().await), ["delete_data", "mute"]);
}

/// A page is kept per session while the API's answer stays the same: a
/// browser that has it gets a 304, and two browsers signed in with one
/// token each get forms with their own session's CSRF token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_page_is_revalidated_and_each_session_has_its_own_forms() {
    let w = world().await;
    let (mut one, mut two) = (w.browser(), w.browser());
    one.sign_in("operator-token").await;
    two.sign_in("operator-token").await;
    let first = one.get("/tenants/acme").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.headers["cache-control"], "private, no-cache");
    let etag = first.headers["etag"].clone();
    let again = one
        .send(
            one.http
                .get(format!("{}/tenants/acme", one.base))
                .header("if-none-match", etag),
        )
        .await;
    assert_eq!(again.status, 304, "{}", again.body);
    let other = two.get("/tenants/acme").await;
    assert_eq!(other.status, 200);
    assert_ne!(
        first.csrf(),
        other.csrf(),
        "one session's token in another's page"
    );
    // The other session's token opens nothing for this one.
    let refused = one
        .post("/sign-out", &[("csrf", &other.csrf())], None)
        .await;
    assert_eq!(refused.status, 403);
}

/// The check and asset pages show an asset's freshness: its age and the
/// ages its rule warns and errs past, and the age moves on with the next
/// run (a page may be served from the answer the run outdated while its
/// successor is built, then shows the new one: docs/web-ui.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_asset_pages_show_freshness_age_and_thresholds() {
    // The fake's documents were updated at 10:00.
    let fake = Fake {
        ids: doc_ids(5),
        ..Fake::default()
    };
    let rules = r#"freshness = { warn_after = "1h", error_after = "2h" }"#;
    let c = ClockedCheck::start(at("2026-11-20T11:30:00Z"), fake, rules, |t| t).await;
    let mut b = Browser::new(&c.base);
    b.sign_in("viewer-token").await;
    let thresholds = "(warn &gt; 1h 0m, error &gt; 2h 0m)";
    let check = b.get("/checks/ingest-docs").await;
    assert_eq!(check.status, 200, "{}", check.body);
    for text in ["1h 30m old", thresholds, "Warning"] {
        assert!(check.body.contains(text), "{text}: {}", check.body);
    }
    let link = check
        .body
        .find("href=\"/assets/")
        .expect("a link to the asset");
    let asset = &check.body[link + "href=\"".len()..];
    let asset = b.get(&asset[..asset.find('"').unwrap()]).await;
    assert_eq!(asset.status, 200, "{}", asset.body);
    for text in ["Freshness 1h 30m old", thresholds] {
        assert!(asset.body.contains(text), "{text}: {}", asset.body);
    }

    c.clock.set(at("2026-11-20T12:30:00Z"));
    c.d.run_now("ingest-docs").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let later = loop {
        let page = b.get("/checks/ingest-docs").await;
        if page.body.contains("2h 30m old") {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "still the old age: {}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for text in [thresholds, "Failed"] {
        assert!(later.body.contains(text), "{text}: {}", later.body);
    }
    c.d.service.stop(Duration::from_secs(5)).await;
}

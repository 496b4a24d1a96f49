//! The public status pages and badges through `tributary serve`, over real
//! HTTP on loopback, without a token: what a public tenant's page shows,
//! that a private or unknown tenant is one and the same 404, badges of every
//! period in SVG and Shields' JSON, hostile names escaped, nothing of another
//! tenant; and in Debian's Chromium (tests/js/status-page.mjs): the page at
//! 360 and 1,440 px with no serious axe-core violation, a badge, and a
//! fake's outage turning the banner from operational to degraded.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plugin_sdk::harness::TestServer;
use serde_json::Value;
use tributary_tests::kit::{
    ClockedCheck, Fake, KillOnDrop, at, config_text, doc_ids, document_service, eventually,
    free_port, serve_ready,
};
use tributary_tests::node::Script;

/// A flow name that tries to break out of HTML and attributes.
const HOSTILE: &str = "Docs <script>alert(1)</script> \"quoted\" & 'single'";
/// What the private tenant's names say: none may reach a public answer.
const SECRET: &str = "Globex-secret";

/// A served daemon: tenant `acme` public, with flow `docs` from `ingest` to
/// `warehouse` (a check of the example connector every second against a
/// fake document service), and tenant `globex` private with a flow of its
/// own watched the same way.
struct World {
    base: String,
    http: reqwest::Client,
    fake: Arc<Mutex<Fake>>,
    long_name: String,
    _service: TestServer,
    _daemon: KillOnDrop,
    _dir: tempfile::TempDir,
}

/// [`config_text`] served on `port`, its tenant public, its flow and
/// warehouse renamed, checks every second, and the private tenant `globex`
/// (which [`config_text`] lists) given a flow watched the same way.
fn config(dir: &Path, port: u16, url: &str, long_name: &str) -> String {
    let checks = [
        ("warehouse-docs", "warehouse", url, ""),
        ("globex-docs", "globex-bi", url, ""),
    ];
    let text = config_text(dir, &checks)
        .replace(
            "[storage]",
            &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[storage]"),
        )
        .replace("name = \"Acme\"\n", "name = \"Acme\"\npublic = true\n")
        .replace(
            "name = \"Acme documents\"",
            &format!("name = {}", toml_string(HOSTILE)),
        )
        .replace(
            "name = \"Warehouse\"",
            &format!("name = {}", toml_string(long_name)),
        )
        .replace("every = \"1h\"", "every = \"1s\"");
    // A window two days ago, over before the daemon started: its day is
    // drawn as maintenance.
    let start = chrono::Utc::now() - chrono::Duration::days(2);
    let rfc3339 =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (start, end) = (rfc3339(start), rfc3339(start + chrono::Duration::hours(1)));
    format!(
        r#"{text}
[[maintenance]]
name = "past-upgrade"
reason = "warehouse upgrade"
start = "{start}"
end = "{end}"
system = "warehouse"

[[systems]]
id = "globex-db"
name = "{SECRET} database"
kind = "service"

[[systems]]
id = "globex-bi"
name = "{SECRET} BI"
kind = "service"

[[flows]]
id = "ledger"
tenant = "globex"
name = "{SECRET} ledger"
upstream = "globex-db"
downstream = ["globex-bi"]
"#
    )
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

impl World {
    async fn start() -> World {
        let fake = Arc::new(Mutex::new(Fake {
            ids: doc_ids(10),
            ..Fake::default()
        }));
        let service = document_service(fake.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // 10 KB of name, with a slash and a percent sign for good measure.
        let long_name = format!("Warehouse/{}%", "w".repeat(10 * 1024));
        let file = dir.path().join("tributary.toml");
        std::fs::write(&file, config(dir.path(), port, &service.url(), &long_name)).unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let daemon = KillOnDrop(serve_ready(&file, &base).await);
        let world = World {
            base,
            http: reqwest::Client::new(),
            fake,
            long_name,
            _service: service,
            _daemon: daemon,
            _dir: dir,
        };
        world.wait_banner("HEALTHY").await;
        world
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn text(&self, path: &str) -> (u16, String) {
        let answer = self.get(path).await;
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    /// Waits until the public page's banner says `status`.
    async fn wait_banner(&self, status: &str) -> String {
        let wanted = format!("data-status=\"{status}\"");
        eventually(&format!("the banner to say {status}"), || async {
            let (code, page) = self.text("/status/acme").await;
            (code == 200 && page.contains(&wanted)).then_some(page)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_tenant_has_a_page_with_banner_flows_systems_bars_and_incidents() {
    let w = World::start().await;
    let answer = w.get("/status/acme").await;
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=5")
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let page = answer.text().await.unwrap();
    assert!(page.contains("<h1>Acme status</h1>"), "{page}");
    assert!(page.contains("All systems operational"), "{page}");
    // The flow and both of its systems, each with its status in words and
    // its 90 days of bars with the uptime over them.
    assert_eq!(page.matches("data-testid=\"flow\"").count(), 1, "{page}");
    assert!(page.contains(">Ingest</h4>"), "{page}");
    assert_eq!(
        page.matches("the last 90 days, oldest first").count(),
        3,
        "{page}"
    );
    // The warehouse and the flow have runs; the ingest system no check.
    assert_eq!(page.matches("% uptime over 90 days").count(), 2, "{page}");
    assert_eq!(page.matches("No data in 90 days").count(), 1, "{page}");
    assert!(
        page.contains(": no data\""),
        "days before the first run: {page}"
    );
    assert!(page.contains("% up\""), "today: {page}");
    // The warehouse's day of maintenance, and only the warehouse's (a
    // window on a system does not cover its flow); its name stays private.
    assert_eq!(
        page.matches(": maintenance, no data\"").count(),
        1,
        "{page}"
    );
    assert!(!page.contains("past-upgrade") && !page.contains("warehouse upgrade"));
    // Incidents: the warehouse's failing runs show as a change of health.
    assert!(page.contains("Recent incidents"), "{page}");
    // Never what only a token may read.
    for private in [
        "warehouse-docs",
        "documents",
        "Bearer",
        "reasons",
        "base_url",
    ] {
        assert!(!page.contains(private), "{private} leaked: {page}");
    }

    // The same answer again is a 304 for a client that has it.
    let again = w
        .http
        .get(format!("{}/status/acme", w.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // An outage moves the banner and adds an incident.
    w.fake.lock().unwrap().fail_with = Some(503);
    let page = w.wait_banner("UNKNOWN").await;
    assert!(page.contains("Degraded"), "{page}");
    assert!(page.contains("went from healthy to unknown"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_unknown_tenants_are_the_same_404() {
    let w = World::start().await;
    let private = w.get("/status/globex").await;
    let unknown = w.get("/status/nobody").await;
    assert_eq!(private.status(), 404);
    assert_eq!(unknown.status(), 404);
    let headers = |r: &reqwest::Response| {
        let mut h: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        h.sort();
        h
    };
    assert_eq!(headers(&private), headers(&unknown));
    let (private, unknown) = (private.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(private, unknown);
    assert!(!private.contains("globex"));
    // The private tenant's entities have no badges either, as if absent.
    for path in [
        "/badge/flow:ledger/health.svg",
        "/badge/system:globex-db/uptime/30d.json",
        "/badge/tenant:globex/health.json",
        "/badge/check:globex-docs/health.svg",
        "/badge/asset:globex-docs:documents/health.svg",
        "/badge/flow:nothing/health.svg",
        "/badge/nonsense/health.svg",
    ] {
        assert_eq!(w.text(path).await, (404, private.clone()), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_of_public_entities_for_every_period_in_svg_and_shields_json() {
    let w = World::start().await;
    // An asset key in the URL is percent-encoded like any segment.
    let entities = [
        ("flow:docs", HOSTILE),
        ("tenant:acme", "Acme"),
        ("check:warehouse-docs", "warehouse-docs"),
        ("asset:warehouse-docs:documents", "documents"),
    ];
    // A system no check watches has no data yet.
    let json: Value = w
        .get("/badge/system:ingest/health.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["message"], "no data", "{json}");
    let json: Value = w
        .get("/badge/system:ingest/uptime/7d.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json["message"], "no data", "{json}");
    for (entity, name) in entities {
        let encoded = entity.replace(':', "%3A");
        let svg = w.get(&format!("/badge/{encoded}/health.svg")).await;
        assert_eq!(svg.status(), 200, "{entity}");
        assert_eq!(svg.headers()["content-type"], "image/svg+xml");
        let svg = svg.text().await.unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.contains(">healthy</text>"), "{entity}: {svg}");
        let json: Value = w
            .get(&format!("/badge/{entity}/health.json"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(json["schemaVersion"], 1, "{json}");
        assert_eq!(json["message"], "healthy", "{json}");
        assert_eq!(json["color"], "2e7d32", "{json}");
        let label: String = name.chars().take(40).collect();
        assert!(
            json["label"].as_str().unwrap().starts_with(&label),
            "{json}"
        );
        for period in ["1d", "7d", "30d", "90d"] {
            let json: Value = w
                .get(&format!("/badge/{entity}/uptime/{period}.json"))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(json["schemaVersion"], 1);
            let message = json["message"].as_str().unwrap();
            assert!(message.ends_with('%'), "{entity} {period}: {json}");
            assert!(
                json["label"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(" uptime {period}")),
                "{json}"
            );
            let (code, svg) = w
                .text(&format!("/badge/{entity}/uptime/{period}.svg"))
                .await;
            assert_eq!(code, 200);
            assert!(svg.contains(&format!(">{message}</text>")), "{svg}");
        }
    }
    // A period or file that is not one of them says what is.
    let (code, text) = w.text("/badge/flow:docs/uptime/2d.svg").await;
    assert_eq!(code, 400);
    assert!(text.contains("1d, 7d, 30d and 90d"), "{text}");
    let (code, text) = w.text("/badge/flow:docs/health.png").await;
    assert_eq!(code, 400);
    assert!(text.contains(".svg or .json"), "{text}");
    // An asset no run reported is not there.
    assert_eq!(
        w.text("/badge/asset:warehouse-docs:nothing/health.svg")
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_huge_names_are_escaped_everywhere() {
    let w = World::start().await;
    let (_, page) = w.text("/status/acme").await;
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains(
            "Docs &lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; 'single'"
        ),
        "{page}"
    );
    // The 10 KB name is shown whole on the page (wrapped by the browser).
    assert!(page.contains(&w.long_name), "the long name is on the page");
    let (_, svg) = w.text("/badge/flow:docs/health.svg").await;
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(svg.contains("&lt;script&gt;"), "{svg}");
    // A badge's label is cut to 40 characters, its width follows.
    let (code, svg) = w.text("/badge/system:warehouse/health.svg").await;
    assert_eq!(code, 200);
    assert!(svg.len() < 2000, "{} bytes", svg.len());
    assert!(svg.contains("Warehouse/www"), "{svg}");
    let width: u32 = svg
        .split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((200..600).contains(&width), "{width}: {svg}");
    // Names with `/` in a URL are percent-encoded: a system key has none,
    // but an asset's might; `%2F` stays one segment.
    assert_eq!(
        w.text("/badge/asset:warehouse-docs:a%2Fb/health.svg")
            .await
            .0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_another_tenant_reaches_a_public_answer() {
    let w = World::start().await;
    let mut answers = vec![w.text("/status/acme").await.1];
    for entity in [
        "tenant:acme",
        "flow:docs",
        "system:ingest",
        "system:warehouse",
    ] {
        for file in [
            "health.svg",
            "health.json",
            "uptime/90d.svg",
            "uptime/1d.json",
        ] {
            answers.push(w.text(&format!("/badge/{entity}/{file}")).await.1);
        }
    }
    for answer in answers {
        assert!(!answer.contains(SECRET), "{answer}");
        assert!(!answer.contains("globex"), "{answer}");
    }
}

/// The script's next report, which must be `event` (not an error).
async fn step(script: &mut Script, event: &str) -> Value {
    let seen = script
        .next(Duration::from_secs(90))
        .await
        .unwrap_or_else(|| panic!("the script exited before reporting {event}"));
    assert_eq!(seen["event"], event, "{seen}");
    seen
}

/// The page and a badge in Chromium, without a token: at 360 and 1,440 px,
/// axe-core finds nothing serious, screenshots go to
/// `target/screenshots/status-page/`; an outage of the fake turns the banner
/// from operational to degraded (the script reloads the page until it does:
/// the page itself does not refresh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_page_reads_well_at_both_widths_and_shows_an_outage() {
    let w = World::start().await;
    let shots = tributary_tests::repo_root().join("target/screenshots/status-page");
    let mut script = Script::start(
        "status-page.mjs",
        &[
            "test",
            &w.base,
            "acme",
            "flow:docs",
            shots.to_str().unwrap(),
        ],
    );
    for width in [360, 1440] {
        let seen = step(&mut script, "page").await;
        assert_eq!(seen["width"], width, "{seen}");
        assert_eq!(seen["status"], 200, "{seen}");
        assert_eq!(seen["banner"], "HEALTHY", "{seen}");
        assert_eq!(seen["violations"], serde_json::json!([]), "{seen}");
        assert!(
            seen["overflow"] == false,
            "the page scrolls sideways at {width} px: {seen}"
        );
        assert_eq!(seen["focused"], "Skip to recent incidents", "{seen}");
    }
    let badge = step(&mut script, "badge").await;
    assert_eq!(badge["status"], 200, "{badge}");
    assert_eq!(badge["type"], "image/svg+xml", "{badge}");
    assert!(
        badge["width"].as_u64().is_some_and(|w| w > 50),
        "the badge is drawn: {badge}"
    );
    step(&mut script, "waiting").await;
    w.fake.lock().unwrap().fail_with = Some(503);
    let outage = step(&mut script, "outage").await;
    assert_ne!(outage["banner"], "HEALTHY", "{outage}");
    assert!(
        outage["text"].as_str().unwrap().contains("Degraded"),
        "{outage}"
    );
    let done = script.finish(Duration::from_secs(30)).await;
    assert!(done.iter().all(|d| d["event"] != "error"), "{done:#?}");
}

/// Today's bar includes the status the entity is in now: just past
/// midnight, before any run of the new day, a system whose check failed
/// last night shows today as failed too, not as a day without data next to
/// its failed status, and its uptime counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_s_bar_shows_the_status_in_force_before_today_s_first_run() {
    let failing = Fake {
        ids: doc_ids(5),
        fail_with: Some(503),
        ..Fake::default()
    };
    let c = ClockedCheck::start(at("2026-11-20T23:05:00Z"), failing, "", |text| {
        text.replace("name = \"Acme\"\n", "name = \"Acme\"\npublic = true\n")
    })
    .await;
    let system = tributary::health::EntityRef::System("ingest".into());
    let status = eventually("the ingest system's health", || async {
        let health = c.d.store.health(&system).await.unwrap();
        health.map(|h| h.state.status)
    })
    .await;
    assert_ne!(status, tributary::health::Status::Healthy);
    c.clock.set(at("2026-11-21T00:30:00Z"));

    let page = reqwest::get(format!("{}/status/acme", c.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page
        .find("aria-label=\"Ingest: the last 90 days")
        .expect("the ingest system's bars");
    let bars = &page[start..];
    let bars = &bars[..bars.find("</p>").unwrap()];
    let word = format!("{status:?}").to_lowercase();
    assert!(
        bars.contains(&format!("20 Nov 2026 to 21 Nov 2026: {word}, 0% up")),
        "today reads as last night's {word}: {bars}"
    );
    assert!(!bars.contains("21 Nov 2026: no data"), "{bars}");
    assert!(bars.contains("0% uptime over 90 days"), "{bars}");
    c.d.service.stop(Duration::from_secs(5)).await;
}

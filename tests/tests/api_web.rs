//! The API as a browser app meets it, over real HTTP on loopback: CORS for
//! configured origins (and their WebSocket), compressed answers, answers a
//! client can read as GraphQL (codes on every refusal), times that read the
//! same live and stored, counts scoped to the token's tenant.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tributary_tests::gql::{Client, Protocol, Subscription};
use tributary_tests::kit::{
    ApiFlow, Daemon, api_daemon, config_text, doc_ids, eventually, start_live,
};
use tributary_tests::plugin;

use plugin_sdk::harness::{Recorded, Reply, TestServer};

const WAIT: Duration = Duration::from_secs(30);

/// The flow of [`ApiFlow`] (tenant acme; tenant globex has nothing), the
/// warehouse with every id.
async fn world() -> ApiFlow {
    ApiFlow::with_every_id("").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_a_graphql_error_with_a_code() {
    let w = world().await;
    // The default limit is 256 KiB.
    let big = format!("{{ lastEventSeq }} #{}", "x".repeat(300 * 1024));
    let a = w.api.query(Some("viewer-token"), &big, json!({})).await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(a.codes(), ["BAD_USER_INPUT"], "{}", a.text);
    let message = a.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("limit of 262144 bytes"), "{message}");
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_health_event_carries_the_same_time_as_its_stored_copy() {
    let w = world().await;
    let mut sub = Subscription::start(
        w.api.base(),
        Protocol::TransportWs,
        Some("viewer-token"),
        "subscription { healthChanged { seq at } }",
        json!({}),
    )
    .await
    .unwrap();
    w.d.wait_subscriptions(1).await;
    w.warehouse.lock().unwrap().ids = doc_ids(80);
    w.d.run_now("warehouse-docs").await;
    let live = sub.next(WAIT).await.expect("a live event").unwrap();
    let live = &live["healthChanged"];
    let stored = w
        .api
        .query(
            Some("viewer-token"),
            "{ healthEvents(first: 100) { nodes { seq at } } }",
            json!({}),
        )
        .await;
    let stored = stored.data()["healthEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == live["seq"])
        .cloned()
        .expect("the live event is stored");
    assert_eq!(live["at"], stored["at"]);
    w.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_scoped_token_counts_only_its_tenant_in_daemon() {
    let w = world().await;
    let counts = |token: &'static str| {
        let api = w.api.clone();
        async move {
            let a = api
                .query(
                    Some(token),
                    "{ daemon { config { tenants flows checks } } }",
                    json!({}),
                )
                .await;
            a.data()["daemon"]["config"].clone()
        }
    };
    assert_eq!(
        counts("viewer-token").await,
        json!({"tenants": 2, "flows": 1, "checks": 2})
    );
    assert_eq!(
        counts("globex-viewer-token").await,
        json!({"tenants": 1, "flows": 0, "checks": 0})
    );
    w.d.service.stop(Duration::from_secs(5)).await;
}

/// What `daemon` shows of running checks, failed plugins and the last
/// reload error, a tenant-scoped token sees only where it concerns its
/// tenant: acme's check running is not globex's, a plugin file no acme check
/// names is not acme's, and a refused file's errors may name anyone's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_scoped_token_sees_only_its_part_of_the_daemon() {
    // Each attempt of acme's check takes 2 s: long enough to be seen running.
    let slow =
        TestServer::start(|_: &Recorded| Reply::status(503).delay(Duration::from_secs(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(plugin("example"), plugins.join("example.wasm")).unwrap();
    std::fs::write(plugins.join("junk.wasm"), b"not a component").unwrap();
    std::fs::write(plugins.join("stray.wasm"), b"not a component").unwrap();
    let text = config_text(dir.path(), &[("slow", "ingest", &slow.url(), "")]).replace(
        &format!(
            "plugins_dir = \"{}\"",
            plugin("example").parent().unwrap().display()
        ),
        &format!("plugins_dir = \"{}\"", plugins.display()),
    );
    let d = start_live(dir, &text).await;
    let api = Client::new(d.serve_api().await);
    let daemon = |token: &'static str, fields: String| {
        let api = api.clone();
        async move {
            let a = api
                .query(
                    Some(token),
                    &format!("{{ daemon {{ {fields} }} }}"),
                    json!({}),
                )
                .await;
            a.data()["daemon"].clone()
        }
    };
    // Asked in this order, acme's check was running throughout globex's
    // question. Each round's text differs, so no kept answer is reused.
    let mut round = 0;
    let globex = eventually("acme's check seen running", || {
        round += 1;
        let fields = format!("runningChecks # {round}\n");
        let daemon = &daemon;
        async move {
            let acme = daemon("acme-admin-token", fields.clone()).await;
            let globex = daemon("globex-viewer-token", fields.clone()).await;
            let all = daemon("viewer-token", fields).await;
            (acme["runningChecks"] == 1 && all["runningChecks"] == 1).then_some(globex)
        }
    })
    .await;
    assert_eq!(globex["runningChecks"], 0);

    // A reload that loads the folder: junk.wasm is the connector of an acme
    // check, stray.wasm of none.
    let with_junk = format!(
        "{text}\n[[checks]]\nid = \"uses-junk\"\nsystem = \"warehouse\"\nconnector = \"junk\"\n\
         schedule = {{ every = \"1h\" }}\n"
    );
    std::fs::write(&d.config_file, with_junk).unwrap();
    let reload = "mutation { reloadConfig { added userErrors { message } } }";
    let reloaded = api.query(Some("admin-token"), reload, json!({})).await;
    assert_eq!(
        reloaded.data()["reloadConfig"]["added"],
        json!(["uses-junk"])
    );
    let failed = |token: &'static str| {
        let daemon = &daemon;
        async move {
            let d = daemon(token, "failedPlugins { file }".into()).await;
            let mut files: Vec<String> = (d["failedPlugins"].as_array().unwrap().iter())
                .map(|f| {
                    f["file"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_owned()
                })
                .collect();
            files.sort();
            files
        }
    };
    assert_eq!(failed("viewer-token").await, ["junk.wasm", "stray.wasm"]);
    assert_eq!(failed("acme-admin-token").await, ["junk.wasm"]);
    assert!(failed("globex-viewer-token").await.is_empty());

    // A refused reload: its errors are for tokens without a tenant only.
    std::fs::write(&d.config_file, "[storage\n").unwrap();
    let refused = api.query(Some("admin-token"), reload, json!({})).await;
    assert!(
        !refused.data()["reloadConfig"]["userErrors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let error = |token: &'static str| {
        let daemon = &daemon;
        async move {
            daemon(token, "config { lastReloadError reloadsFailed }".into()).await["config"].clone()
        }
    };
    let all = error("viewer-token").await;
    assert!(all["lastReloadError"].is_string(), "{all}");
    for token in ["acme-admin-token", "globex-viewer-token"] {
        let scoped = error(token).await;
        assert_eq!(
            scoped,
            json!({"lastReloadError": null, "reloadsFailed": 1}),
            "{token}"
        );
    }
    d.service.stop(Duration::from_secs(5)).await;
}

const APP: &str = "https://app.example.com";

/// A daemon without checks whose API lets the pages of [`APP`] in; its API's
/// base URL.
async fn web_daemon() -> (Daemon, String) {
    web_daemon_with("").await
}

/// [`web_daemon`] with `api` (lines of the `[api]` table) added.
async fn web_daemon_with(api: &str) -> (Daemon, String) {
    api_daemon(&format!(
        "{api}\n\n[api.cors]\nallowed_origins = [\"{APP}\"]"
    ))
    .await
}

/// Sends a request with `headers`; the status, headers and body bytes.
async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, Bytes) {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status.as_u16(), parts.headers, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_origin_gets_cors_answers_and_others_do_not() {
    let (d, base) = web_daemon().await;
    let url = format!("{base}/graphql");
    let preflight = |origin: &'static str| {
        let url = url.clone();
        async move {
            send(
                "OPTIONS",
                &url,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type",
                    ),
                ],
                "",
            )
            .await
        }
    };
    let (status, headers, _) = preflight(APP).await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], APP);
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let (_, headers, _) = preflight("https://evil.example").await;
    assert!(headers.get("access-control-allow-origin").is_none());

    // The request itself carries the header the browser needs to read it.
    let query = r#"{"query": "{ lastEventSeq }"}"#;
    let post = |origin: &'static str| {
        let url = url.clone();
        async move {
            let headers = [
                ("origin", origin),
                ("content-type", "application/json"),
                ("authorization", "Bearer viewer-token"),
            ];
            send("POST", &url, &headers, query).await
        }
    };
    let (status, headers, body) = post(APP).await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(headers["access-control-allow-origin"], APP);
    let (_, headers, _) = post("https://evil.example").await;
    assert!(headers.get("access-control-allow-origin").is_none());
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_from_an_unlisted_origin_is_refused() {
    let (d, base) = web_daemon().await;
    let connect = |origin: Option<String>| {
        let mut request = format!("{}/graphql", base.replacen("http", "ws", 1))
            .into_client_request()
            .unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        if let Some(o) = origin {
            headers.insert("origin", o.parse().unwrap());
        }
        async move {
            match tokio_tungstenite::connect_async(request).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(connect(Some("https://evil.example".into())).await, 403);
    assert_eq!(connect(Some(APP.into())).await, 101);
    // The API's own pages (GraphiQL) and clients that are not browsers.
    assert_eq!(connect(Some(base.clone())).await, 101);
    assert_eq!(connect(None).await, 101);
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_compressed_as_the_client_accepts() {
    let (d, base) = web_daemon().await;
    let url = format!("{base}/graphql");
    let query = r#"{"query": "{ __schema { types { name description } } }"}"#;
    let post = |encoding: &'static str| {
        let url = url.clone();
        async move {
            let headers = [
                ("accept-encoding", encoding),
                ("content-type", "application/json"),
                ("authorization", "Bearer viewer-token"),
            ];
            send("POST", &url, &headers, query).await
        }
    };
    let (status, headers, plain) = post("identity").await;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none());
    let plain: Value = serde_json::from_slice(&plain).unwrap();
    assert!(plain["data"]["__schema"]["types"].is_array(), "{plain}");
    for encoding in ["gzip", "br", "zstd"] {
        let (status, headers, body) = post(encoding).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-encoding"], encoding);
        if encoding == "gzip" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
                .unwrap();
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), plain);
        }
    }
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_a_query_is_answered_and_graphiql_goes_only_to_browsers() {
    let (d, base) = web_daemon().await;
    let get = |path_and_query: &str, accept: &'static str| {
        let url = format!("{base}/graphql{path_and_query}");
        async move {
            let headers = [("accept", accept), ("authorization", "Bearer viewer-token")];
            let (status, headers, body) = send("GET", &url, &headers, "").await;
            let text = String::from_utf8_lossy(&body).into_owned();
            (status, headers, text)
        }
    };
    // urql's GET: query and variables URL-encoded.
    let (status, headers, text) = get(
        "?query=query%20Q%28%24n%3A%20Int%29%20%7B%20healthEvents%28first%3A%20%24n%29%20%7B%20nodes%20%7B%20seq%20%7D%20%7D%20%7D&variables=%7B%22n%22%3A1%7D",
        "application/graphql-response+json, application/json",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    // What it prefers: the GraphQL-over-HTTP media type.
    assert_eq!(headers["content-type"], "application/graphql-response+json");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert!(
        answer["data"]["healthEvents"]["nodes"].is_array(),
        "{answer}"
    );
    // A browser asking for a page with a query gets the answer too.
    let (_, _, text) = get("?query=%7BlastEventSeq%7D", "text/html").await;
    assert!(
        text.contains("lastEventSeq") && !text.contains("graphiql"),
        "{text}"
    );
    // A mutation is never run from a GET.
    let (status, headers, text) = get(
        "?query=mutation%20%7B%20reloadConfig%20%7B%20ok%20%7D%20%7D",
        "application/json",
    )
    .await;
    assert_eq!(status, 405, "{text}");
    assert_eq!(headers["allow"], "POST");
    let refused: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    // GraphiQL only for a browser asking for HTML without a query.
    let (status, _, text) = get("", "text/html,application/xhtml+xml").await;
    assert_eq!(status, 200);
    assert!(text.contains("graphiql"), "GraphiQL page");
    let (status, _, text) = get("", "application/json").await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("graphiql"));
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_is_open_to_whom_the_config_says() {
    let schema = "{ __schema { queryType { name } } }";
    for (setting, anonymous, with_token) in [
        ("public", true, true),
        ("authenticated", false, true),
        ("off", false, false),
    ] {
        let (d, base) = web_daemon_with(&format!("introspection = \"{setting}\"")).await;
        let api = Client::new(base);
        for (token, allowed) in [(None, anonymous), (Some("viewer-token"), with_token)] {
            let a = api.query(token, schema, json!({})).await;
            if allowed {
                assert_eq!(
                    a.data()["__schema"]["queryType"]["name"],
                    "QueryRoot",
                    "{setting} {token:?}"
                );
            } else {
                // As async-graphql hides it: the schema reads as null.
                assert_eq!(
                    a.body["data"]["__schema"],
                    Value::Null,
                    "{setting} {token:?}"
                );
            }
        }
        d.service.stop(Duration::from_secs(5)).await;
    }
}

//! The API as the reference GraphQL clients meet it on their default
//! settings, from Node: Apollo Client 4 (`HttpLink`, and the persisted-queries
//! link over POST and GET) and urql 6 (`cacheExchange` and `fetchExchange`,
//! short queries as GET) run `tests/js/*-client.mjs` against a real daemon on
//! loopback. The scripts record every HTTP request the client made; the
//! tests check those, what the client reported, and the daemon's own count.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tributary_tests::gql::Client;
use tributary_tests::kit::{Daemon, api_daemon};
use tributary_tests::node::Script;

const WAIT: Duration = Duration::from_secs(60);
const APP: &str = "https://app.example.com";

/// A daemon whose API lets the pages of [`APP`] in.
async fn daemon() -> (Daemon, String) {
    api_daemon(&format!("[api.cors]\nallowed_origins = [\"{APP}\"]")).await
}

/// Runs `script` through `scenarios` against the API at `base`; what it
/// reported, by event.
async fn run(script: &str, base: &str, scenarios: &[&str]) -> HashMap<String, Value> {
    let settings = json!({
        "url": base,
        "token": "viewer-token",
        "adminToken": "admin-token",
        "origin": APP,
    })
    .to_string();
    let args: Vec<&str> = std::iter::once(settings.as_str())
        .chain(scenarios.iter().copied())
        .collect();
    let seen = Script::start(script, &args).finish(WAIT).await;
    seen.into_iter()
        .map(|v| (v["event"].as_str().unwrap_or_default().to_owned(), v))
        .collect()
}

/// `(method, sent the query text, sent a hash, status)` of each request.
fn requests(report: &Value) -> Vec<(String, bool, bool, u64)> {
    report["requests"]
        .as_array()
        .unwrap_or_else(|| panic!("no requests in {report}"))
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["sentQuery"].as_bool().unwrap(),
                r["sentHash"].as_bool().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn request(method: &str, query: bool, hash: bool, status: u64) -> (String, bool, bool, u64) {
    (method.to_owned(), query, hash, status)
}

/// What every client must see: the query's data, the mutation acting (the
/// daemon counts the reload), `UNAUTHENTICATED` for an unknown token and a
/// limit's code and name as GraphQL errors (not a bare HTTP status), and
/// the CORS header for a browser origin.
async fn check_client(script: &str, query_method: &str) {
    let (d, base) = daemon().await;
    let seen = run(script, &base, &["query", "mutation", "errors", "cors"]).await;

    let query = &seen["query"];
    assert!(query["data"]["lastEventSeq"].is_number(), "{query}");
    assert_eq!(
        query["data"]["daemon"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        requests(query),
        [request(query_method, true, false, 200)],
        "{query}"
    );

    let mutation = &seen["mutation"];
    assert!(
        mutation["data"]["reloadConfig"]["added"].is_array(),
        "{mutation}"
    );
    assert_eq!(requests(mutation), [request("POST", true, false, 200)]);
    let reloads = Client::new(&base)
        .query(
            Some("viewer-token"),
            "{ daemon { config { reloadsSucceeded } } }",
            json!({}),
        )
        .await;
    assert_eq!(reloads.data()["daemon"]["config"]["reloadsSucceeded"], 1);

    let unknown = &seen["unknown token"];
    assert_eq!(unknown["codes"], json!(["UNAUTHENTICATED"]), "{unknown}");
    assert_eq!(requests(unknown)[0].3, 401);
    assert_eq!(
        unknown["requests"][0]["contentType"], "application/graphql-response+json",
        "the media type that tells the client a 401 is still GraphQL"
    );

    let limit = &seen["limit"];
    assert_eq!(limit["codes"], json!(["BAD_USER_INPUT"]), "{limit}");
    let message = limit["messages"][0].as_str().unwrap();
    assert!(message.contains("api.limits.max_aliases"), "{message}");

    let cors = &seen["cors"];
    assert!(cors["data"]["lastEventSeq"].is_number(), "{cors}");
    assert_eq!(cors["requests"][0]["allowOrigin"], APP, "{cors}");
    d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_client_on_default_settings_queries_mutates_and_reads_coded_errors() {
    check_client("apollo-client.mjs", "POST").await;
}

/// urql sends short queries as GET by default: they get JSON answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urql_on_default_settings_queries_by_get_mutates_and_reads_coded_errors() {
    check_client("urql-client.mjs", "GET").await;
}

/// The value of the series `name{labels}` in a scrape of `/metrics`.
async fn metric(api: &Client, series: &str) -> f64 {
    let text = api.get("/metrics").await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Apollo's persisted-queries link, by default (hashes over POST) and with
/// `useGETForHashedQueries`: the first request of a query sends only its
/// hash and misses, the link sends the text once, and the second request is
/// answered from the hash alone, as the client's requests and the daemon's
/// count both show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apollo_persisted_queries_send_the_text_once_then_only_the_hash() {
    let (d, base) = daemon().await;
    let seen = run("apollo-client.mjs", &base, &["persisted", "persisted-get"]).await;
    for (label, first, second, method) in [
        ("POST", "persisted first", "persisted second", "POST"),
        ("GET", "persisted-get first", "persisted-get second", "GET"),
    ] {
        let (first, second) = (&seen[first], &seen[second]);
        assert!(first["data"]["lastEventSeq"].is_number(), "{first}");
        assert_eq!(first["data"], second["data"], "{label}");
        assert_eq!(
            requests(first),
            [
                // The hash alone: PERSISTED_QUERY_NOT_FOUND (HTTP 200).
                request(method, false, true, 200),
                // The link sends the text with its hash, always by POST.
                request("POST", true, true, 200),
            ],
            "{label}: {first}"
        );
        assert_eq!(
            requests(second),
            [request(method, false, true, 200)],
            "{label}: {second}"
        );
    }
    let api = Client::new(&base);
    let count = |outcome: &'static str| {
        let api = api.clone();
        async move {
            let series = format!("tributary_api_persisted_queries_total{{outcome=\"{outcome}\"}}");
            metric(&api, &series).await
        }
    };
    assert_eq!(count("miss").await, 2.0);
    assert_eq!(count("registered").await, 2.0);
    assert_eq!(count("hit").await, 2.0);
    let scrape = api.get("/metrics").await.text;
    assert!(
        !scrape.contains("PersistedPost") && !scrape.contains("lastEventSeq"),
        "no query text in /metrics"
    );
    d.service.stop(Duration::from_secs(5)).await;
}

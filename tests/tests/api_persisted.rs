//! Automatic Persisted Queries as an attacker meets them, over real HTTP:
//! a text is stored only under its own hash, a persisted query is held to
//! every rule a sent one is (token, rights, limits, GET only reads), the
//! store keeps to its bytes, and it can be turned off. (The reference
//! client's view is in `api_clients.rs`.)

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary_tests::gql::{Answer, Client};
use tributary_tests::kit::{Daemon, api_daemon};

fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn extension(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// POSTs `query` (omitted when empty) with the persisted-query extension
/// naming `hash`.
async fn post(api: &Client, token: Option<&str>, query: &str, hash: &str) -> Answer {
    let mut body = json!({"extensions": extension(hash)});
    if !query.is_empty() {
        body["query"] = json!(query);
    }
    api.send("POST", "/graphql", token, body.to_string().into_bytes())
        .await
}

/// GETs the persisted query `hash` names, as Apollo's link does with
/// `useGETForHashedQueries`.
async fn get(api: &Client, token: Option<&str>, hash: &str) -> Answer {
    let ext = extension(hash).to_string();
    let ext: String = form_urlencoded::byte_serialize(ext.as_bytes()).collect();
    api.send(
        "GET",
        &format!("/graphql?extensions={ext}"),
        token,
        Vec::new(),
    )
    .await
}

async fn daemon(api: &str) -> (Daemon, Client) {
    let (d, base) = api_daemon(api).await;
    (d, Client::new(base))
}

const VIEWER: Option<&str> = Some("viewer-token");

/// An attacker who sends another text with a hash that clients use gets
/// an error naming the real hash; nothing is stored, so the hash still
/// names its own text (or nothing), never the attacker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_is_stored_only_under_its_own_hash() {
    let (d, api) = daemon("").await;
    let popular = "query Status { daemon { config { tenants } } }";
    let evil = "query Status { lastEventSeq }";
    // Before anyone stored it: the attacker's text under its hash.
    let refused = post(&api, VIEWER, evil, &hash(popular)).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.codes(), ["BAD_USER_INPUT"]);
    let message = refused.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&hash(evil)), "{message}");
    assert!(refused.body["data"].is_null(), "nothing ran");
    let missing = post(&api, VIEWER, "", &hash(popular)).await;
    assert_eq!(missing.codes(), ["PERSISTED_QUERY_NOT_FOUND"]);
    assert_eq!(
        missing.body["errors"][0]["message"],
        "PersistedQueryNotFound"
    );

    // After: registering and the attempt again; the hash keeps its text.
    let stored = post(&api, VIEWER, popular, &hash(popular)).await;
    assert_eq!(stored.data()["daemon"]["config"]["tenants"], 2);
    let again = post(&api, VIEWER, evil, &hash(popular)).await;
    assert_eq!(again.codes(), ["BAD_USER_INPUT"]);
    for answer in [
        post(&api, VIEWER, "", &hash(popular)).await,
        get(&api, VIEWER, &hash(popular)).await,
    ] {
        assert_eq!(answer.data(), stored.data());
    }
    d.service.stop(Duration::from_secs(5)).await;
}

/// A persisted query is run as a sent one: with the asker's token and
/// scope, within the limits, and never acting from a GET; outsiders can
/// neither use the store nor ask what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persisted_query_meets_every_rule_a_sent_one_does() {
    let (d, api) = daemon("").await;
    let status = "query Status { daemon { config { tenants } } }";
    post(&api, VIEWER, status, &hash(status)).await.data();
    // The tenant-scoped token gets its own answer, not the viewer's.
    let scoped = post(&api, Some("globex-viewer-token"), "", &hash(status)).await;
    assert_eq!(scoped.data()["daemon"]["config"]["tenants"], 1);
    // No token, or an unknown one: refused before the store is read.
    for token in [None, Some("not-a-token")] {
        let refused = post(&api, token, "", &hash(status)).await;
        assert_eq!(refused.status, 401, "{token:?}: {}", refused.text);
        assert_eq!(refused.codes(), ["UNAUTHENTICATED"]);
        let refused = post(&api, token, "{ lastEventSeq }", &hash("{ lastEventSeq }")).await;
        assert_eq!(refused.codes(), ["UNAUTHENTICATED"]);
    }
    let unseen = post(&api, VIEWER, "", &hash("{ lastEventSeq }")).await;
    assert_eq!(unseen.codes(), ["PERSISTED_QUERY_NOT_FOUND"], "not stored");

    // The alias limit holds when the text is sent and when it is named.
    let aliased: Vec<String> = (0..51).map(|i| format!("a{i}: lastEventSeq")).collect();
    let aliased = format!("{{ {} }}", aliased.join(" "));
    for answer in [
        post(&api, VIEWER, &aliased, &hash(&aliased)).await,
        post(&api, VIEWER, "", &hash(&aliased)).await,
        get(&api, VIEWER, &hash(&aliased)).await,
    ] {
        assert_eq!(answer.codes(), ["BAD_USER_INPUT"], "{}", answer.text);
        assert!(
            answer.text.contains("api.limits.max_aliases"),
            "{}",
            answer.text
        );
    }

    // A stored mutation is not run from a GET.
    let reload = "mutation { reloadConfig { added } }";
    let admin = Some("admin-token");
    post(&api, admin, reload, &hash(reload)).await.data();
    let refused = get(&api, admin, &hash(reload)).await;
    assert_eq!(refused.status, 405, "{}", refused.text);
    let by_post = post(&api, admin, "", &hash(reload)).await;
    assert!(by_post.data()["reloadConfig"]["added"].is_array());

    // Versions and hashes other than Apollo's are named.
    for (ext, want) in [
        (
            json!({"version": 2, "sha256Hash": hash(status)}),
            "version 2",
        ),
        (json!({"version": 1, "sha256Hash": "abc"}), "64 hex digits"),
    ] {
        let body = json!({"extensions": {"persistedQuery": ext}}).to_string();
        let a = api
            .send("POST", "/graphql", VIEWER, body.into_bytes())
            .await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.codes(), ["BAD_USER_INPUT"]);
        assert!(a.text.contains(want), "{}", a.text);
    }
    d.service.stop(Duration::from_secs(5)).await;
}

/// 400 distinct queries of about a kilobyte into a 64 KiB store: the store
/// never holds more than its bound, and what it holds is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_keeps_to_its_bytes() {
    let (d, api) = daemon("persisted_queries = { max_bytes = \"64KiB\" }").await;
    let bytes = || async {
        let text = api.get("/metrics").await.text;
        text.lines()
            .find_map(|l| l.strip_prefix("tributary_api_persisted_query_bytes "))
            .unwrap_or_else(|| panic!("no store size in\n{text}"))
            .parse::<u64>()
            .unwrap()
    };
    let padding = "x".repeat(1000);
    let mut texts = Vec::new();
    for i in 0..400 {
        let text = format!("query Q{i} {{ lastEventSeq }} # {padding}");
        post(&api, VIEWER, &text, &hash(&text)).await.data();
        texts.push(text);
        let held = bytes().await;
        assert!(
            held <= 64 << 10,
            "{held} bytes held after {} queries",
            i + 1
        );
    }
    assert!(bytes().await > 32 << 10, "the store is used");
    let hashes: Vec<String> = texts.iter().map(|t| hash(t)).collect();
    let served =
        futures_util::future::join_all(hashes.iter().map(|h| post(&api, VIEWER, "", h))).await;
    let hits = served.iter().filter(|a| a.codes().is_empty()).count();
    assert!((1..400).contains(&hits), "{hits} of 400 still stored");
    d.service.stop(Duration::from_secs(5)).await;
}

/// Off: a hash gets `PERSISTED_QUERY_NOT_SUPPORTED`, which tells Apollo
/// Client to send texts from then on; plain queries are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_can_be_turned_off() {
    let (d, api) = daemon("persisted_queries = \"off\"").await;
    let q = "{ lastEventSeq }";
    for answer in [
        post(&api, VIEWER, "", &hash(q)).await,
        post(&api, VIEWER, q, &hash(q)).await,
    ] {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.codes(), ["PERSISTED_QUERY_NOT_SUPPORTED"]);
        assert_eq!(
            answer.body["errors"][0]["message"],
            "PersistedQueryNotSupported"
        );
    }
    assert!(api.query(VIEWER, q, json!({})).await.data()["lastEventSeq"].is_number());
    d.service.stop(Duration::from_secs(5)).await;
}

/// A query in a GET's URL is held to the body limit like one in a body,
/// with a coded answer, and the operation it names is the one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_is_held_to_the_body_limit_and_runs_the_operation_it_names() {
    let (d, api) = daemon("[api.limits]\nmax_body = \"16KiB\"").await;
    let long = format!("{{ lastEventSeq }} #{}", "x".repeat(20 * 1024));
    let long: String = form_urlencoded::byte_serialize(long.as_bytes()).collect();
    let refused = api
        .send("GET", &format!("/graphql?query={long}"), VIEWER, Vec::new())
        .await;
    assert_eq!(refused.status, 414, "{}", refused.text);
    assert_eq!(refused.codes(), ["BAD_USER_INPUT"]);
    assert!(
        refused
            .text
            .contains("limit of 16384 bytes (api.limits.max_body)"),
        "{}",
        refused.text
    );

    let two = "query A { lastEventSeq } query B { daemon { version } }";
    let two: String = form_urlencoded::byte_serialize(two.as_bytes()).collect();
    let b = api
        .send(
            "GET",
            &format!("/graphql?query={two}&operationName=B"),
            VIEWER,
            Vec::new(),
        )
        .await;
    assert_eq!(
        b.data(),
        &json!({"daemon": {"version": env!("CARGO_PKG_VERSION")}})
    );
    d.service.stop(Duration::from_secs(5)).await;
}

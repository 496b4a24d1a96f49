//! The API's cost limits over real HTTP on loopback: what a query may ask for
//! is counted by what its answer holds (days of history, connectors' config
//! schemas, aliased copies), answers are capped in bytes with a code, and a
//! document full of mistakes gets a bounded list of errors.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tributary_tests::gql::{Answer, Client};
use tributary_tests::kit::{Daemon, Fake, config_text, document_service, start_live};

use plugin_sdk::harness::TestServer;

const TOKEN: Option<&str> = Some("viewer-token");

/// Every field of a history bucket: what a dashboard asks for.
const BUCKET: &str = "day status uptimePercent runs failedRuns expected received errored \
                      missing maxFreshnessLagSeconds";

/// A daemon with check `ingest-docs` and `[api.limits]` set to `limits`
/// (TOML lines), its API served on loopback.
async fn daemon(limits: &str) -> (Daemon, TestServer, Client) {
    let service = document_service(Arc::new(Mutex::new(Fake::default()))).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = config_text(dir.path(), &[("ingest-docs", "ingest", &service.url(), "")]);
    text.push_str(&format!("\n[api.limits]\n{limits}\n"));
    let d = start_live(dir, &text).await;
    let api = Client::new(d.serve_api().await);
    (d, service, api)
}

/// `n` aliased copies of `field`.
fn aliased(n: usize, field: &str) -> String {
    (0..n).map(|i| format!("a{i}: {field} ")).collect()
}

fn history_query(copies: usize, days: u32) -> String {
    let copies = aliased(copies, &format!("history(days: {days}) {{ {BUCKET} }}"));
    format!("{{ check(key: \"ingest-docs\") {{ {copies} }} }}")
}

fn messages(answer: &Answer) -> String {
    answer.body["errors"].to_string()
}

/// The start of an answer, for failure messages (a wrong one can be megabytes).
fn head(answer: &Answer) -> &str {
    let end = (0..=answer.text.len().min(2000))
        .rev()
        .find(|&i| answer.text.is_char_boundary(i))
        .unwrap_or(0);
    &answer.text[..end]
}

/// 1,000 aliased `history(days: 400)` once answered 143 MB in 21 s, 3,000
/// aliased `configSchema` 56 MB: now both are refused before they run, with
/// an answer of a few hundred bytes saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_cannot_multiply_an_answer() {
    let (_d, _s, api) = daemon("").await;
    let history = api.query(TOKEN, &history_query(1000, 400), json!({})).await;
    let schemas = format!("{{ connectors {{ {} }} }}", aliased(3000, "configSchema"));
    let schemas = api.query(TOKEN, &schemas, json!({})).await;
    for answer in [&history, &schemas] {
        assert_eq!(answer.codes(), ["BAD_USER_INPUT"], "{}", head(answer));
        assert!(
            messages(answer).contains("api.limits.max_aliases"),
            "{}",
            answer.text
        );
        assert!(answer.body["data"].is_null(), "{}", head(answer));
        assert!(answer.text.len() < 1000, "{} bytes", answer.text.len());
    }
    // Up to the limit (50 by default), aliases are served.
    let served = api.query(TOKEN, &history_query(50, 7), json!({})).await;
    let check = &served.data()["check"];
    assert_eq!(check["a49"].as_array().map(Vec::len), Some(7));
}

/// A day of history and a connector's config schema cost what they hold:
/// three `history(days: 400)` (12,030 with their fields) and 21
/// `configSchema` (10,500) pass a complexity limit of 10,000 no more, while
/// a month of history and one schema are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_days_and_config_schemas_count_in_the_complexity() {
    let (_d, _s, api) = daemon("max_complexity = 10000").await;
    let year = api.query(TOKEN, &history_query(3, 400), json!({})).await;
    let schemas = format!("{{ connectors {{ {} }} }}", aliased(21, "configSchema"));
    let schemas = api.query(TOKEN, &schemas, json!({})).await;
    for answer in [&year, &schemas] {
        assert_eq!(answer.codes(), ["BAD_USER_INPUT"], "{}", head(answer));
        assert!(messages(answer).contains("too complex"), "{}", head(answer));
    }
    let month = api.query(TOKEN, &history_query(3, 30), json!({})).await;
    assert_eq!(
        month.data()["check"]["a2"].as_array().map(Vec::len),
        Some(30)
    );
    let one = api
        .query(TOKEN, "{ connectors { name configSchema } }", json!({}))
        .await;
    let example = one.data()["connectors"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "example"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(example["configSchema"].is_object(), "{}", head(&one));
}

/// Two years of history are 150 KB of JSON: over `max_answer = "64KiB"` the
/// answer is one coded error instead, and asking again gets the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_max_answer_is_refused_with_a_code() {
    let (_d, _s, api) = daemon("max_answer = \"64KiB\"").await;
    for _ in 0..2 {
        let big = api.query(TOKEN, &history_query(2, 400), json!({})).await;
        assert_eq!(big.status, 200);
        assert_eq!(big.codes(), ["ANSWER_TOO_LARGE"], "{}", head(&big));
        assert!(messages(&big).contains("65536 bytes"), "{}", head(&big));
        assert!(big.body["data"].is_null());
        assert!(big.text.len() < 1000, "{} bytes", big.text.len());
    }
    let small = api.query(TOKEN, &history_query(2, 7), json!({})).await;
    assert_eq!(
        small.data()["check"]["a1"].as_array().map(Vec::len),
        Some(7)
    );
}

/// 10,000 repeated `@include` directives once gave 9,999 errors (1.25 MB):
/// the answer lists the first 100 and counts the rest in one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_are_capped_at_100_and_counted() {
    let (_d, _s, api) = daemon("").await;
    let directives = "@include(if: true) ".repeat(10_000);
    let answer = api
        .query(
            TOKEN,
            &format!("{{ lastEventSeq {directives} }}"),
            json!({}),
        )
        .await;
    let errors = answer.body["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        errors.len(),
        101,
        "{}",
        &answer.text[..answer.text.len().min(2000)]
    );
    let last = &errors[100];
    assert_eq!(last["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(last["extensions"]["more"], 9899, "{last}");
    assert!(answer.text.len() < 50_000, "{} bytes", answer.text.len());
}

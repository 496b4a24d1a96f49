//! The example connector's behaviour, as one suite every implementation of it
//! must pass: the Rust one in `plugins/example/`, and the same connector in
//! any other language the SDKs support. Each test file names its component
//! and runs the suite with [`example_suite!`]; a new plugin's own tests go
//! in `tests/<plugin>.rs` beside them (`cargo test -p plugin-tests --test
//! <plugin>`).
//!
//! The suite runs the component in the real plugin host through
//! `plugin_sdk::harness`, against a fake of the document service it watches
//! (wire format in `plugins/example/src/lib.rs`).

use std::path::{Path, PathBuf};

use plugin_sdk::harness::plugin::{
    Capabilities, DeleteScope, ErrorClass, RunError, StatusLevel, Timestamp,
};
use plugin_sdk::harness::{Harness, Recorded, Reply, TestServer};
use serde_json::{Value, json};

pub mod hostile;
mod js;
mod python;
pub use js::js_plugin;
pub use python::python_plugin;

/// The component `name` of the repository's Rust plugins workspace, built
/// once per test process.
pub fn rust_plugin(name: &str) -> PathBuf {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/Cargo.toml");
    plugin_sdk::harness::plugin(&plugins, name)
}

/// One `#[tokio::test]` per check of the suite, each running `$component`
/// (an expression giving the component's path).
#[macro_export]
macro_rules! example_suite {
    ($component:expr) => {
        $crate::example_suite!(@tests $component; describes_itself_with_a_secret_token_and_resync, collect_reports_counts_freshness_and_errors, collect_streams_every_id_through_the_pages, a_refused_token_is_an_auth_error_and_an_unknown_tenant_a_config_error, a_bad_config_is_a_config_error_naming_the_field, test_connection_discover_and_resync_work);
    };
    (@tests $component:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::$name(&$component).await;
            }
        )*
    };
}

const TOKEN: &str = "s3cr3t-token-value";
/// 2026-11-20T10:00:00Z
const UPDATED_AT: i64 = 1_795_168_800;

/// The document service: `acme` exists, with `ids` as its document ids.
fn document_service(ids: Vec<String>) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    move |req| {
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Reply::json(401, json!({"error": "unauthorized"}));
        }
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/v1/health") => Reply::json(200, json!({"ok": true})),
            ("GET", "/v1/tenants/acme/stats") => Reply::json(
                200,
                json!({
                    "documents": {"expected": 100, "received": 97, "failed": 2},
                    "last_received": {"id": "doc-97", "at": "2026-11-20T10:00:00Z"},
                    "updated_at": "2026-11-20T10:00:00Z",
                    "errors": [
                        {"kind": "parse", "message": "bad date", "document_id": "doc-5",
                         "log_url": "https://logs.example/doc-5", "at": "2026-11-20T09:00:00Z"},
                        {"kind": "schema", "message": "missing title", "document_id": "doc-9",
                         "log_url": null, "at": "2026-11-20T09:30:00Z"}
                    ]
                }),
            ),
            ("GET", "/v1/tenants/acme/documents/ids") => {
                let start: usize = req.query_param("cursor").map_or(0, |c| c.parse().unwrap());
                let limit: usize = req.query_param("limit").unwrap().parse().unwrap();
                let end = (start + limit).min(ids.len());
                let next = (end < ids.len()).then(|| end.to_string());
                Reply::json(200, json!({"ids": ids[start..end], "next_cursor": next}))
            }
            ("POST", "/v1/tenants/acme/documents/resync") => {
                let body = req.json().unwrap();
                let n = body["ids"].as_array().unwrap().len();
                Reply::json(202, json!({"accepted": n}))
            }
            (_, path) if path.starts_with("/v1/tenants/") => {
                Reply::json(404, json!({"error": "tenant not found"}))
            }
            _ => Reply::status(404),
        }
    }
}

async fn setup(component: &Path, ids: Vec<String>) -> (TestServer, Harness) {
    let server = TestServer::start(document_service(ids)).await;
    let harness = Harness::builder(component.to_path_buf())
        .now_unix(UPDATED_AT as u64 + 3_600)
        .allow_host(&server.url())
        .secret(TOKEN)
        .tenant("acme")
        .build()
        .await
        .expect("the example connector loads");
    (server, harness)
}

fn config(server: &TestServer, tenant: &str, token: &str) -> Value {
    json!({"base_url": server.url(), "tenant": tenant, "token": token})
}

pub async fn describes_itself_with_a_secret_token_and_resync(component: &Path) {
    let (_server, harness) = setup(component, vec![]).await;
    let d = harness.plugin().descriptor();
    assert_eq!(d.name, "example");
    assert!(d.capabilities.contains(Capabilities::RESYNC));
    assert!(!d.capabilities.contains(Capabilities::DELETE));
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(schema["properties"]["token"]["x-secret"], true);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"base_url") && required.contains(&"token"),
        "{required:?}"
    );
}

pub async fn collect_reports_counts_freshness_and_errors(component: &Path) {
    let (server, harness) = setup(component, vec![]).await;
    let run = harness
        .collect(config(&server, "acme", TOKEN))
        .await
        .unwrap();
    assert_eq!(run.report.observations.len(), 1);
    let o = &run.report.observations[0];
    assert_eq!(
        (o.asset.as_str(), o.kind.as_str()),
        ("documents", "documents")
    );
    assert_eq!(o.counts.expected, Some(100));
    assert_eq!(o.counts.received, Some(97));
    assert_eq!(o.counts.errored, Some(2));
    let at = Timestamp {
        seconds: UPDATED_AT,
        nanos: 0,
    };
    assert_eq!(o.freshness, Some(at));
    let last = o.last_received.as_ref().unwrap();
    assert_eq!((last.id.as_str(), last.at), ("doc-97", Some(at)));
    assert_eq!(o.errors.len(), 2);
    let first = &o.errors[0];
    assert_eq!(first.kind, "parse");
    assert_eq!(first.message, "bad date");
    assert_eq!(first.document_id.as_deref(), Some("doc-5"));
    assert_eq!(
        first.log_link.as_deref(),
        Some("https://logs.example/doc-5")
    );
    assert_eq!(o.errors[1].log_link, None);
    let mut totals: Vec<(String, u64)> = o
        .error_totals
        .iter()
        .map(|t| (t.kind.clone(), t.count))
        .collect();
    totals.sort();
    assert_eq!(totals, vec![("parse".into(), 1), ("schema".into(), 1)]);
    assert!(
        o.native_status.is_none() || o.native_status.as_ref().unwrap().level == StatusLevel::Ok
    );
    assert!(
        o.metadata
            .iter()
            .any(|m| m.key == "tenant" && m.value == "acme")
    );
    assert!(run.ids.is_empty(), "ids were not asked for");

    // It asked with the token and did not page through ids.
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/tenants/acme/stats");
}

pub async fn collect_streams_every_id_through_the_pages(component: &Path) {
    let ids: Vec<String> = (0..2_500).map(|i| format!("doc-{i}")).collect();
    let (server, harness) = setup(component, ids.clone()).await;
    let mut cfg = config(&server, "acme", TOKEN);
    cfg["collect_ids"] = json!(true);
    let run = harness.collect(cfg).await.unwrap();
    assert_eq!(run.ids["documents"], ids);
    let cursors: Vec<Option<String>> = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/documents/ids"))
        .map(|r| r.query_param("cursor").map(str::to_owned))
        .collect();
    assert_eq!(
        cursors,
        vec![None, Some("1000".into()), Some("2000".into())]
    );
}

pub async fn a_refused_token_is_an_auth_error_and_an_unknown_tenant_a_config_error(
    component: &Path,
) {
    let (server, harness) = setup(component, vec![]).await;
    let err = harness
        .collect(config(&server, "acme", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    let err = harness
        .test_connection(config(&server, "acme", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");

    let err = harness
        .collect(config(&server, "globex", TOKEN))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("globex"), "{err}");
}

pub async fn a_bad_config_is_a_config_error_naming_the_field(component: &Path) {
    let (server, harness) = setup(component, vec![]).await;
    let err = harness
        .collect(json!({"base_url": server.url(), "token": TOKEN}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Connector {
                class: ErrorClass::Config,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tenant"), "{err}");
}

pub async fn test_connection_discover_and_resync_work(component: &Path) {
    let (server, harness) = setup(component, vec![]).await;
    harness
        .test_connection(config(&server, "acme", TOKEN))
        .await
        .unwrap();
    let assets = harness
        .discover(config(&server, "acme", TOKEN))
        .await
        .unwrap();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].asset, "documents");

    let ids = vec!["doc-5".to_owned(), "doc-9".to_owned()];
    let outcome = harness
        .resync(config(&server, "acme", TOKEN), "documents", &ids)
        .await
        .unwrap();
    assert_eq!(outcome.affected, Some(2));
    let posted = server
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(posted.json().unwrap()["ids"], json!(["doc-5", "doc-9"]));

    // `delete` is not declared, so the host never calls into the plugin for it.
    let before = server.requests().len();
    let err = harness
        .delete(
            config(&server, "acme", TOKEN),
            "documents",
            &DeleteScope::Asset,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Unsupported("delete")), "{err}");
    assert_eq!(err.class(), ErrorClass::Config);
    assert_eq!(server.requests().len(), before);
}

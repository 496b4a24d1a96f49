//! The sandbox holds: hostile and broken plugins fail their own run, each with
//! its own clear reason, and the same host then runs a good plugin as if nothing
//! had happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use plugin_sdk::harness::{Reply, TestServer};
use serde_json::{Value, json};
use tributary::plugin::{
    Allocation, CacheOutcome, CollectRequest, DenyReason, ErrorClass, HostConfig, Invocation,
    Limits, LoadError, Plugin, PluginHost, RunError, RunLabels, VecIdSink, Violation,
};
use tributary_tests::plugin;

struct Fixture {
    host: PluginHost,
    probe: Plugin,
    _cache: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let cache = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(cache.path());
    config.max_instances = 8;
    let host = PluginHost::new(config).unwrap();
    let probe = host.load(plugin("probe")).await.unwrap();
    Fixture {
        host,
        probe,
        _cache: cache,
    }
}

fn invocation(config: Value) -> Invocation {
    Invocation {
        labels: RunLabels {
            plugin: String::new(),
            check: "sandbox-test".into(),
            tenant: Some("acme".into()),
        },
        config: config.to_string(),
        ..Invocation::default()
    }
}

fn request() -> CollectRequest {
    CollectRequest {
        run_id: "run-1".into(),
        last_success: None,
        attempt: 1,
    }
}

impl Fixture {
    async fn collect(&self, inv: &Invocation) -> Result<tributary::plugin::Report, RunError> {
        self.probe.collect(inv, &request()).await
    }

    /// After whatever the previous run did, a good run on the same host works.
    async fn assert_host_still_serves(&self) {
        let report = self
            .collect(&invocation(json!({"mode": "ok"})))
            .await
            .expect("a good run after a failed one");
        assert_eq!(report.observations.len(), 1);
        assert_eq!(report.observations[0].counts.received, Some(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let f = fixture().await;
    let mut inv = invocation(json!({"mode": "loop"}));
    inv.limits.deadline = Duration::from_secs(1);
    let started = Instant::now();
    let err = f.collect(&inv).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, RunError::Timeout(d) if d == Duration::from_secs(1)),
        "{err}"
    );
    assert!(err.to_string().contains("deadline of 1s"), "{err}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(
        elapsed < Duration::from_secs(2),
        "stopped after {elapsed:?}"
    );
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_a_gibibyte_hits_the_memory_limit() {
    let f = fixture().await;
    let err = f
        .collect(&invocation(json!({"mode": "alloc", "bytes": 1u64 << 30})))
        .await
        .unwrap_err();
    match &err {
        RunError::Sandbox(Violation::Memory { limit, requested }) => {
            assert_eq!(*limit, 64 << 20);
            assert!(*requested > 64 << 20);
        }
        other => panic!("expected a memory limit error, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("memory limit of 64.0 MiB exceeded"),
        "{err}"
    );
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_recursion_is_a_stack_overflow() {
    let f = fixture().await;
    // Small frames exhaust wasm's own call stack first.
    let err = f
        .collect(&invocation(
            json!({"mode": "recurse", "small_frames": true}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::StackOverflow), "{err}");
    assert_eq!(err.class(), ErrorClass::System);
    f.assert_host_still_serves().await;
    // Large frames exhaust the stack Rust keeps in linear memory first.
    let err = f
        .collect(&invocation(json!({"mode": "recurse"})))
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::MemoryFault), "{err}");
    assert!(err.to_string().contains("stack overflowed"), "{err}");
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_not_granted_is_never_contacted() {
    let f = fixture().await;
    let server = TestServer::start(|_| Reply::json(200, json!([1, 2, 3]))).await;
    let mut inv = invocation(
        json!({"mode": "http", "url": format!("{}/data", server.url()), "parse_json": true}),
    );
    inv.grants.allowed_hosts = vec!["https://api.example.com".parse().unwrap()];
    let err = f.collect(&inv).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            &err,
            RunError::Sandbox(Violation::HostDenied {
                reason: DenyReason::NotGranted,
                ..
            })
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!("add \"{}\" to its allowed_hosts", server.url())),
        "{message}"
    );
    assert_eq!(err.class(), ErrorClass::Config);
    assert!(server.requests().is_empty(), "the server was contacted");

    // The same request with the grant goes through.
    inv.grants.allowed_hosts = vec![server.url().parse().unwrap()];
    let report = f.collect(&inv).await.expect("granted request");
    assert_eq!(report.observations[0].counts.received, Some(3));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_name_resolving_to_loopback_is_refused() {
    let f = fixture().await;
    let server = TestServer::start(|_| Reply::json(200, json!([1]))).await;
    let port = server.url().rsplit(':').next().unwrap().to_owned();
    let mut inv = invocation(json!({"mode": "http", "url": format!("http://localhost:{port}/")}));
    inv.grants.allowed_hosts = vec![format!("http://localhost:{port}").parse().unwrap()];
    let err = f.collect(&inv).await.unwrap_err();
    match &err {
        RunError::Sandbox(Violation::HostDenied {
            reason: DenyReason::InternalAddress { kind, .. },
            grant,
            ..
        }) => {
            assert_eq!(*kind, "loopback");
            assert!(grant.ends_with(&format!(":{port}")), "{grant}");
        }
        other => panic!("expected an internal-address denial, got {other}"),
    }
    assert!(err.to_string().contains("loopback address"), "{err}");
    assert!(server.requests().is_empty(), "the server was contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_and_environment_are_out_of_reach() {
    let f = fixture().await;
    // The daemon's own environment has variables; the plugin must see none.
    assert!(std::env::var("PATH").is_ok());
    let report = f
        .collect(&invocation(
            json!({"mode": "fs-env", "path": "/etc/passwd", "var": "PATH"}),
        ))
        .await
        .expect("the probe reports what it saw");
    let meta = metadata(&report);
    assert!(meta["file"].starts_with("denied"), "file: {}", meta["file"]);
    assert_eq!(meta["env"], "absent");
    assert_eq!(meta["env_count"], "0");

    // A granted directory is readable, read-only, at /data.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run_results.json"), b"{\"ok\":true}").unwrap();
    let mut inv =
        invocation(json!({"mode": "fs-env", "path": "/data/run_results.json", "var": "PATH"}));
    inv.grants.read_dir = Some(dir.path().to_path_buf());
    let report = f.collect(&inv).await.unwrap();
    assert_eq!(metadata(&report)["file"], "read 11 bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_the_run_with_the_panic_message() {
    let f = fixture().await;
    let err = f
        .collect(&invocation(json!({"mode": "panic"})))
        .await
        .unwrap_err();
    match &err {
        RunError::Panic(message) => {
            assert!(message.contains("probe panicked on purpose"), "{message}")
        }
        other => panic!("expected a panic, got {other}"),
    }
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_over_the_limit_is_refused() {
    let f = fixture().await;
    let mut inv = invocation(json!({"mode": "big-report", "count": 200, "pad_bytes": 10_000}));
    inv.limits.report_bytes = 1 << 20;
    let err = f.collect(&inv).await.unwrap_err();
    match &err {
        RunError::ReportTooLarge { size, limit } => {
            assert_eq!(*limit, 1 << 20);
            assert!(*size > 2_000_000, "{size}");
        }
        other => panic!("expected report too large, got {other}"),
    }
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_cannot_hold_a_run_past_its_deadline() {
    let f = fixture().await;
    let server =
        TestServer::start(|_| Reply::json(200, json!([1])).delay(Duration::from_secs(10))).await;
    let mut inv = invocation(json!({"mode": "http", "url": server.url()}));
    inv.grants.allowed_hosts = vec![server.url().parse().unwrap()];
    inv.limits.deadline = Duration::from_secs(1);
    let started = Instant::now();
    let err = f.collect(&inv).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    // Either the clamped HTTP timeout or the deadline ends it: both are transient.
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    f.assert_host_still_serves().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bytes_and_request_counts_are_capped() {
    let f = fixture().await;
    let big = serde_json::to_vec(&vec![1u8; 600_000]).unwrap();
    let server = TestServer::start(move |_| Reply::status(200).body(big.clone())).await;
    let mut inv = invocation(json!({"mode": "http", "url": server.url(), "parse_json": true}));
    inv.grants.allowed_hosts = vec![server.url().parse().unwrap()];
    inv.limits.http_response_bytes = 100_000;
    let err = f.collect(&inv).await.unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Sandbox(Violation::HttpResponseBytes { limit: 100_000 })
        ),
        "{err}"
    );

    inv.limits = Limits {
        http_requests: 0,
        ..Limits::default()
    };
    let err = f.collect(&inv).await.unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::HttpRequests { limit: 0 })),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_stream_in_batches_up_to_the_limit() {
    let f = fixture().await;
    let sink = Arc::new(VecIdSink::default());
    let mut inv = invocation(json!({"mode": "ids", "count": 25_000, "batch": 10_000}));
    inv.ids = Some(sink.clone());
    let report = f.collect(&inv).await.unwrap();
    assert_eq!(report.observations[0].counts.received, Some(25_000));
    let ids = sink.take();
    assert_eq!(ids["probe"].len(), 25_000);
    assert_eq!(ids["probe"][24_999], "id-24999");

    inv.limits.ids = 15_000;
    let err = f.collect(&inv).await.unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::Ids { limit: 15_000 })),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_error_keeps_its_class_and_message() {
    let f = fixture().await;
    let err = f
        .collect(&invocation(
            json!({"mode": "fail", "class": "auth", "message": "token expired"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth);
    assert_eq!(err.to_string(), "auth error: token expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_for_another_major_contract_is_refused_at_load() {
    let f = fixture().await;
    let err = f
        .host
        .load(plugin("contract-v2"))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Contract { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("contract 2.0.0"), "{message}");
    assert!(message.contains("contract 1.0.0"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_components_are_cached_and_reused() {
    let cache = tempfile::tempdir().unwrap();
    let load = || async {
        let host = PluginHost::new(HostConfig::new(cache.path())).unwrap();
        host.load(plugin("probe")).await.unwrap()
    };
    assert_eq!(load().await.cache_outcome(), CacheOutcome::Compiled);
    let again = load().await;
    assert_eq!(again.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(again.name(), "probe");
}

fn metadata(report: &tributary::plugin::Report) -> std::collections::BTreeMap<String, String> {
    report.observations[0]
        .metadata
        .iter()
        .map(|m| (m.key.clone(), m.value.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_address_space_for_the_pool_the_host_falls_back_to_on_demand() {
    let cache = tempfile::tempdir().unwrap();
    let mut config = HostConfig::new(cache.path());
    // A pool this large cannot be reserved in a 47-bit address space.
    config.max_instances = 1_000_000;
    let host = PluginHost::new(config).unwrap();
    assert_eq!(host.allocation(), Allocation::OnDemand);
    let probe = host.load(plugin("probe")).await.unwrap();
    let report = probe
        .collect(&invocation(json!({"mode": "ok"})), &request())
        .await
        .unwrap();
    assert_eq!(report.observations[0].counts.received, Some(1));
    let err = probe
        .collect(&invocation(json!({"mode": "alloc"})), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RunError::Sandbox(Violation::Memory { .. })),
        "{err}"
    );
}

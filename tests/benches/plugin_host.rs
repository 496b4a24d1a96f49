//! Instantiate + `collect` through the real plugin host: a trivial plugin in
//! each language (the Rust probe, the Python and JavaScript hostile plugins
//! in a mode that reports one observation), and one that fetches and parses
//! a 1 MB JSON body from a loopback server.
//!
//! Run: `cargo bench -p tributary-tests --bench plugin_host`

use criterion::{Criterion, criterion_group, criterion_main};
use plugin_sdk::harness::{Reply, TestServer};
use serde_json::json;
use tributary::plugin::{CollectRequest, HostConfig, Invocation, PluginHost};
use tributary_tests::plugin;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(HostConfig::new(cache.path())).unwrap();
    let probe = runtime.block_on(host.load(plugin("probe"))).unwrap();
    let request = CollectRequest {
        run_id: "bench".into(),
        last_success: None,
        attempt: 1,
    };

    let trivial = Invocation {
        config: json!({"mode": "ok"}).to_string(),
        ..Invocation::default()
    };
    let python = runtime
        .block_on(host.load(plugin_tests::python_plugin("plugins-python/hostile")))
        .unwrap();
    let javascript = runtime
        .block_on(host.load(plugin_tests::js_plugin("plugin-tests/js/hostile/plugin.js")))
        .unwrap();
    for (language, loaded) in [
        ("rust", &probe),
        ("python", &python),
        ("javascript", &javascript),
    ] {
        c.bench_function(&format!("instantiate+collect/trivial/{language}"), |b| {
            b.to_async(&runtime)
                .iter(|| async { loaded.collect(&trivial, &request).await.unwrap() })
        });
    }

    // 1 MB of JSON: an array of small records.
    let body: Vec<serde_json::Value> = (0..22_000)
        .map(|i| json!({"id": format!("doc-{i:06}"), "status": "ok", "bytes": i}))
        .collect();
    let body = serde_json::to_vec(&body).unwrap();
    assert!(body.len() >= 1_000_000, "{} bytes", body.len());
    let server = runtime.block_on(TestServer::start(move |_| {
        Reply::status(200).body(body.clone())
    }));
    let mut fetch = Invocation {
        config: json!({"mode": "http", "url": server.url(), "parse_json": true}).to_string(),
        ..Invocation::default()
    };
    fetch.grants.allowed_hosts = vec![server.url().parse().unwrap()];
    c.bench_function("instantiate+collect/http-1MB-json", |b| {
        b.to_async(&runtime).iter(|| async {
            let report = probe.collect(&fetch, &request).await.unwrap();
            assert_eq!(report.observations[0].counts.received, Some(22_000));
        })
    });

    // The same transfer without parsing: separates HTTP from JSON cost.
    let mut raw = fetch.clone();
    raw.config = json!({"mode": "http", "url": server.url()}).to_string();
    c.bench_function("instantiate+collect/http-1MB-raw", |b| {
        b.to_async(&runtime)
            .iter(|| async { probe.collect(&raw, &request).await.unwrap() })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

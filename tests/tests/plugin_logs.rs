//! What a plugin writes (the `log` import, stdout, stderr) reaches the daemon's
//! log with the plugin, check and tenant, and secrets never do.

use serde_json::json;
use tributary::plugin::{CollectRequest, HostConfig, Invocation, PluginHost, RunLabels};
use tributary_tests::logs::Captured;
use tributary_tests::plugin;

// A current-thread runtime keeps the plugin on this thread, where the
// subscriber below is the default.
#[tokio::test(flavor = "current_thread")]
async fn plugin_output_is_logged_with_its_labels_and_secrets_masked() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(HostConfig::new(cache.path())).unwrap();
    let probe = host.load(plugin("probe")).await.unwrap();
    let secret = "pa55w0rd-xyz";
    let inv = Invocation {
        labels: RunLabels {
            plugin: String::new(),
            check: "nightly-load".into(),
            tenant: Some("acme".into()),
        },
        config: json!({"mode": "log", "message": format!("token={secret}")}).to_string(),
        secrets: vec![secret.into()],
        ..Invocation::default()
    };
    let request = CollectRequest {
        run_id: "r1".into(),
        last_success: None,
        attempt: 1,
    };
    probe.collect(&inv, &request).await.unwrap();

    let log = captured.text();
    let plugin_lines: Vec<&str> = log.lines().filter(|l| l.contains("plugin=probe")).collect();
    for (level, source) in [
        ("TRACE", "log"),
        ("DEBUG", "log"),
        ("INFO", "log"),
        ("WARN", "log"),
        ("ERROR", "log"),
        ("INFO", "stdout"),
        ("WARN", "stderr"),
    ] {
        assert!(
            plugin_lines.iter().any(|l| l.contains(level)
                && l.contains(&format!("source=\"{source}\""))
                && l.contains("check=nightly-load")
                && l.contains("tenant=\"acme\"")),
            "no {level} line from {source} in:\n{log}"
        );
    }
    assert!(log.contains("probe stdout line token=[REDACTED]"), "{log}");
    assert!(log.contains("message=token=[REDACTED]"), "{log}");
    assert!(!log.contains(secret), "the secret reached the log:\n{log}");
}

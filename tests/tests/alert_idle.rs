//! The alert dispatcher does not poll: a daemon with alerts configured and
//! nothing happening issues no SQL statement at all, and when a check then
//! fails its alert still arrives at once, woken by the health event (the
//! safety poll is set to a minute here, so only the event can explain it).
//! Statements are counted by `tributary_tests::statements`; its own test
//! binary, since the count is process-wide.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary_tests::fakes::webhook::{SECRET, WebhookFake};
use tributary_tests::kit::{Fake, config_text, doc_ids, document_service, eventually, start_live};
use tributary_tests::statements;

/// How long the idle daemon is watched.
const QUIET: Duration = Duration::from_secs(3);

/// The only test here: another running beside it would add its statements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_issues_no_statement_and_an_alert_still_arrives_at_once() {
    statements::count();
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let service = Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    }));
    let server = document_service(service.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("alert-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let text = format!(
        r#"{}
[alerts]
[[alerts.channels]]
name = "hook"
kind = "webhook"
url = "{}/hook"
secret = {{ file = "{}" }}

[alerts.delivery]
poll_interval = "60s"

[[alerts.routes]]
name = "checks"
entities = ["check"]
channels = ["hook"]
group_wait = "0s"
"#,
        config_text(dir.path(), &[("c0", "ingest", &server.url(), "")]),
        receiver.url(),
        secret.display(),
    );
    let d = start_live(dir, &text).await;
    // The first run's events (all healthy: no alert) routed and gone.
    d.wait_total_runs(1).await;
    eventually("the outbox emptied", || async {
        let backlog = d.store.alert_backlog().await.unwrap();
        (backlog.outbox == 0).then_some(())
    })
    .await;
    // Settled: the pass those events woke is over (a daemon that polled
    // would never settle, and fail here).
    eventually("the daemon settled", || async {
        let before = statements::issued();
        tokio::time::sleep(Duration::from_millis(500)).await;
        (statements::issued() == before).then_some(())
    })
    .await;

    let before = statements::issued();
    tokio::time::sleep(QUIET).await;
    let idle = statements::issued() - before;
    assert_eq!(idle, 0, "statements issued by an idle daemon in {QUIET:?}");

    service.lock().unwrap().fail_with = Some(400);
    d.run_now("c0").await;
    let stored = Instant::now();
    let taken = eventually("the alert", || async { hook.taken().first().cloned() }).await;
    let took = stored.elapsed();
    assert_eq!(taken.entities(), ["check:c0"]);
    assert!(
        took < Duration::from_secs(5),
        "the alert took {took:?}: woken by the event, not the 60 s poll"
    );
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());
    d.service.stop(Duration::from_secs(5)).await;
}

//! Alerts end to end: `tributary serve` with the real example plugin
//! watching a fake document service; when the service fails, its checks go
//! UNKNOWN and the daemon delivers to receivers on 127.0.0.1 that
//! check what real ones check (the webhook fake verifies Standard Webhooks
//! signatures and timestamps, the Slack and PagerDuty fakes their wire
//! formats). Intervals are small so the whole file runs in well under two
//! minutes; waits are on conditions with deadlines.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_tests::fakes::pagerduty::{PagerDutyFake, ROUTING_KEY};
use tributary_tests::fakes::slack::{SlackFake, WEBHOOK_PATH};
use tributary_tests::fakes::smtp::{SmtpOptions, SmtpServer};
use tributary_tests::fakes::stalling::{Stall, StallingReceiver};
use tributary_tests::fakes::webhook::{Answer, SECRET, WebhookFake};
use tributary_tests::gql::Client;
use tributary_tests::kit::{
    Fake, config_text, daemon_binary, doc_ids, document_service, eventually, free_port,
};

/// A daemon run by `tributary serve` on a config with `checks` example
/// checks against one document service, and `alerts` appended.
struct Serve {
    child: Option<Child>,
    dir: tempfile::TempDir,
    file: PathBuf,
    service: Arc<Mutex<Fake>>,
    _server: plugin_sdk::harness::TestServer,
    listen: String,
    /// The database the daemon stores in (its SQLite file unless a test
    /// edits the config to another).
    db: String,
}

impl Serve {
    async fn start(checks: usize, alerts: &str) -> Serve {
        Serve::start_edited(checks, alerts, |text| text).await
    }

    /// As [`start`](Self::start), the config text passed through `edit`
    /// first (e.g. to give checks owners).
    async fn start_edited(
        checks: usize,
        alerts: &str,
        edit: impl FnOnce(String) -> String,
    ) -> Serve {
        let service = Arc::new(Mutex::new(Fake {
            ids: doc_ids(5),
            ..Fake::default()
        }));
        let server = document_service(service.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let url = server.url();
        let ids: Vec<String> = (0..checks).map(|i| format!("c{i}")).collect();
        let refs: Vec<(&str, &str, &str, &str)> = ids
            .iter()
            .map(|id| (id.as_str(), "ingest", url.as_str(), ""))
            .collect();
        let listen = format!("127.0.0.1:{}", free_port());
        // Only the example plugin: each daemon compiles its folder.
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let example = tributary_tests::plugin("example");
        std::fs::copy(&example, plugins.join("example.wasm")).unwrap();
        let text = format!(
            "{}\n[server]\nlisten = \"{listen}\"\n{alerts}",
            config_text(dir.path(), &refs)
                .replace(r#"every = "1h""#, r#"every = "1s""#)
                .replace(
                    &example.parent().unwrap().display().to_string(),
                    &plugins.display().to_string()
                )
        );
        let file = dir.path().join("tributary.toml");
        std::fs::write(&file, edit(text)).unwrap();
        let db = format!("sqlite://{}", dir.path().join("tributary.db").display());
        let mut serve = Serve {
            child: None,
            dir,
            file,
            service,
            _server: server,
            listen,
            db,
        };
        serve.spawn();
        serve
    }

    fn spawn(&mut self) {
        let child = Command::new(daemon_binary())
            .args(["serve", "--config"])
            .arg(&self.file)
            .env("RUST_LOG", "warn")
            .env("ALERT_SECRET", SECRET)
            .env("ALERT_PD_KEY", ROUTING_KEY)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown at all.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Every check's run fails from now on (a system error: the assets go
    /// UNKNOWN at once), or succeeds again.
    fn fail(&self, fail: bool) {
        self.service.lock().unwrap().fail_with = fail.then_some(400);
    }

    /// The statuses of the deliveries made, oldest first.
    async fn deliveries(&self) -> Vec<(String, String)> {
        (self.stored_deliveries().await.into_iter())
            .map(|(_, channel, status)| (channel, status))
            .collect()
    }

    /// The deliveries made, oldest first: id, channel and status.
    async fn stored_deliveries(&self) -> Vec<(String, String, String)> {
        const ROWS: &str = "SELECT id, channel, status FROM alert_deliveries ORDER BY n";
        if self.db.starts_with("postgres") {
            let Ok(pool) = sqlx::PgPool::connect(&self.db).await else {
                return Vec::new();
            };
            let rows = sqlx::query_as(ROWS).fetch_all(&pool).await;
            pool.close().await;
            return rows.unwrap_or_default();
        }
        let Ok(pool) = sqlx::SqlitePool::connect(&self.db).await else {
            return Vec::new();
        };
        let rows = sqlx::query_as(ROWS).fetch_all(&pool).await;
        pool.close().await;
        rows.unwrap_or_default()
    }

    async fn metrics(&self) -> Option<String> {
        let response = reqwest::get(format!("http://{}/metrics", self.listen))
            .await
            .ok()?;
        response.text().await.ok()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
        // A failed test shows what the daemon said.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("daemon.log"));
            eprintln!("daemon log:\n{}", log.unwrap_or_default());
        }
    }
}

/// A webhook channel `hook` to `url` and a route sending every check's
/// change to it, grouped by tenant; `extra` adds route settings.
fn webhook_alerts(url: &str, extra: &str) -> String {
    tributary_tests::kit::webhook_alerts(
        url,
        r#"{ env = "ALERT_SECRET" }"#,
        "checks",
        "check",
        &format!("group_by = [\"tenant\"]\n{extra}"),
    )
}

/// Waits until `probe` holds, failing after 60 s with `what`.
async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_one_signed_message_and_recovery_one_resolved_message() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let d = Serve::start(
        10,
        &webhook_alerts(
            &receiver.url(),
            "group_wait = \"3s\"\ngroup_interval = \"1s\"",
        ),
    )
    .await;
    d.fail(true);
    let firing = until("the firing message", || hook.taken().first().cloned()).await;
    assert_eq!(firing.state(), "firing");
    let mut entities = firing.entities();
    entities.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("check:c{i}")).collect();
    expected.sort();
    assert_eq!(entities, expected, "one message lists the whole burst");
    let alert = &firing.body["data"]["alerts"][0];
    assert_eq!(alert["status"], "UNKNOWN");
    assert_eq!(alert["path"][0]["name"], "Acme");
    assert!(
        alert["link"]
            .as_str()
            .unwrap()
            .starts_with("https://tributary.example.com/entities/"),
        "{alert}"
    );
    // The payload is what `tributary alert-schema` describes.
    let schema: serde_json::Value =
        serde_json::from_str(tributary::alerts::webhook::SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&firing.body), "{}", firing.body);

    d.fail(false);
    let resolved = until("the resolved message", || hook.taken().get(1).cloned()).await;
    assert_eq!(resolved.state(), "resolved");
    assert_eq!(resolved.entities().len(), 10);
    assert_ne!(resolved.id, firing.id, "a new message, a new id");
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_through_a_restart_gets_the_alert_under_one_id() {
    let hook = WebhookFake::new(&[SECRET]);
    hook.answer(Answer::Status(503));
    let receiver = hook.clone().start().await;
    let mut d = Serve::start(1, &webhook_alerts(&receiver.url(), "group_wait = \"0s\"")).await;
    d.fail(true);
    until("three refused attempts", || {
        (hook.attempts().len() >= 3).then_some(())
    })
    .await;
    // Killed mid-retries: the message is in the database, not in memory.
    d.kill();
    let before = hook.attempts().len();
    d.spawn();
    until("an attempt after the restart", || {
        (hook.attempts().len() > before).then_some(())
    })
    .await;
    hook.answer(Answer::Take);
    let taken = until("the delivery", || hook.taken().first().cloned()).await;
    let ids: Vec<String> = hook.attempts().into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() >= 5, "{ids:?}");
    assert!(
        ids.iter().all(|id| *id == taken.id),
        "every attempt, before and after the restart, carries the message's id: {ids:?}"
    );
    assert_eq!(hook.taken().len(), 1);
    let metrics = d.metrics().await.unwrap_or_default();
    assert!(
        metrics.contains("tributary_alert_deliveries_total{channel=\"hook\",outcome=\"retry\"}"),
        "{metrics}"
    );
}

/// A daemon whose one webhook channel's receiver answers 410 (gone), with
/// that receiver and its server (kept alive with the daemon).
async fn serve_to_a_gone_receiver() -> (WebhookFake, plugin_sdk::harness::TestServer, Serve) {
    let gone = WebhookFake::new(&[SECRET]);
    gone.answer(Answer::Status(410));
    let receiver = gone.clone().start().await;
    let d = Serve::start(1, &webhook_alerts(&receiver.url(), "group_wait = \"0s\"")).await;
    (gone, receiver, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_receiver_disables_the_channel_and_a_redirect_is_not_followed() {
    let (gone, _gone_receiver, d) = serve_to_a_gone_receiver().await;
    d.fail(true);
    until("the first attempt", || {
        (!gone.attempts().is_empty()).then_some(())
    })
    .await;
    // With retries every 200 ms, a channel still enabled would be tried
    // again and again within these two seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(gone.attempts().len(), 1, "disabled after the 410");
    let deliveries = d.deliveries().await;
    assert_eq!(deliveries, [("hook".to_owned(), "pending".to_owned())]);
    drop(d);

    let target = WebhookFake::new(&[SECRET]);
    let target_receiver = target.clone().start().await;
    let redirecting = WebhookFake::new(&[SECRET]);
    redirecting.answer(Answer::Redirect(format!("{}/hooks", target_receiver.url())));
    let redirecting_receiver = redirecting.clone().start().await;
    let d = Serve::start(
        1,
        &webhook_alerts(&redirecting_receiver.url(), "group_wait = \"0s\""),
    )
    .await;
    d.fail(true);
    let deliveries = eventually("the refused delivery", || async {
        let rows = d.deliveries().await;
        rows.iter().any(|(_, s)| s == "rejected").then_some(rows)
    })
    .await;
    assert_eq!(deliveries[0].1, "rejected");
    assert_eq!(redirecting.attempts().len(), 1);
    assert!(
        target.attempts().is_empty(),
        "the redirect was not followed"
    );
}

/// A daemon whose one webhook channel's receiver answers 503 and which
/// gives a message up after a second, its check failing: with that
/// receiver and its server.
async fn serve_to_a_receiver_down_giving_up_after_1s()
-> (WebhookFake, plugin_sdk::harness::TestServer, Serve) {
    let down = WebhookFake::new(&[SECRET]);
    down.answer(Answer::Status(503));
    let receiver = down.clone().start().await;
    let alerts = webhook_alerts(&receiver.url(), "group_wait = \"0s\"").replace(
        "timeout = \"2s\"",
        "timeout = \"2s\"\ngive_up_after = \"1s\"",
    );
    let d = Serve::start(1, &alerts).await;
    d.fail(true);
    (down, receiver, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_holds_the_channel_and_an_old_message_is_given_up() {
    let hook = WebhookFake::new(&[SECRET]);
    hook.answer(Answer::RetryAfter(2));
    let receiver = hook.clone().start().await;
    let d = Serve::start(1, &webhook_alerts(&receiver.url(), "group_wait = \"0s\"")).await;
    d.fail(true);
    until("the throttled attempt", || {
        (!hook.attempts().is_empty()).then_some(())
    })
    .await;
    hook.answer(Answer::Take);
    let taken = until("the delivery", || hook.taken().first().cloned()).await;
    let attempts = hook.attempts();
    assert_eq!(attempts.len(), 2, "one wait, one retry: {attempts:?}");
    let waited = attempts[1].1.duration_since(attempts[0].1).unwrap();
    assert!(waited >= Duration::from_millis(1_900), "waited {waited:?}");
    assert_eq!(taken.id, attempts[0].0);
    drop(d);

    let (down, _receiver, d) = serve_to_a_receiver_down_giving_up_after_1s().await;
    eventually("the delivery given up", || async {
        d.deliveries()
            .await
            .iter()
            .any(|(_, s)| s == "gave_up")
            .then_some(())
    })
    .await;
    assert!(down.attempts().len() >= 2, "retried before giving up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_pagerduty_and_email_get_the_alert_through_serve() {
    let slack = SlackFake::new();
    let slack_server = slack.clone().start().await;
    let pd = PagerDutyFake::default();
    let pd_server = pd.clone().start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let alerts = format!(
        r#"
[[alerts.channels]]
name = "chat"
kind = "slack"
webhook_url = {{ file = "{slack_file}" }}

[[alerts.channels]]
name = "pager"
kind = "pagerduty"
url = "{pd_url}/v2/enqueue"
routing_key = {{ env = "ALERT_PD_KEY" }}

[[alerts.channels]]
name = "mail"
kind = "email"
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
from = "Tributary <alerts@acme.example>"
to = ["data-team@acme.example"]

[alerts.delivery]
poll_interval = "50ms"

[[alerts.routes]]
name = "checks"
entities = ["check"]
channels = ["chat", "pager", "mail"]
group_wait = "0s"
"#,
        slack_file = "SLACK_FILE",
        pd_url = pd_server.url(),
        smtp_port = smtp.port(),
    );
    let mut d = Serve::start(1, "").await;
    d.kill();
    let slack_file = d.dir.path().join("slack-url");
    std::fs::write(
        &slack_file,
        format!("{}{WEBHOOK_PATH}\n", slack_server.url()),
    )
    .unwrap();
    let text = std::fs::read_to_string(&d.file).unwrap()
        + &alerts.replace("SLACK_FILE", &slack_file.display().to_string());
    std::fs::write(&d.file, text).unwrap();
    d.spawn();
    d.fail(true);
    let posted = until("the Slack post", || slack.posted().first().cloned()).await;
    assert!(
        posted.shown_text().contains("UNKNOWN"),
        "{}",
        posted.shown_text()
    );
    let event = until("the PagerDuty event", || pd.events().first().cloned()).await;
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["dedup_key"], "tributary:check:c0");
    let mail = &smtp.wait_for(1, Duration::from_secs(60)).await[0];
    assert!(mail.subject.contains("FIRING UNKNOWN"), "{}", mail.subject);
    assert_eq!(mail.rcpt_tos, ["data-team@acme.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_still_firing_is_told_again_and_a_channel_keeps_its_rate() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let alerts = webhook_alerts(
        &receiver.url(),
        "group_wait = \"0s\"\nrepeat_every = \"1s\"",
    )
    .replace("group_by = [\"tenant\"]", "group_by = [\"check\"]")
    .replace(
        "kind = \"webhook\"",
        "kind = \"webhook\"\nmin_interval = \"700ms\"",
    );
    let d = Serve::start(2, &alerts).await;
    d.fail(true);
    let taken = until("two messages per group", || {
        let taken = hook.taken();
        let per_group = |key: &str| {
            taken
                .iter()
                .filter(|t| t.body["data"]["group_key"] == key)
                .count()
        };
        (per_group("check=c0") >= 2 && per_group("check=c1") >= 2).then_some(taken)
    })
    .await;
    assert!(taken.iter().all(|t| t.state() == "firing"));
    let mut ids: Vec<&str> = taken.iter().map(|t| t.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        taken.len(),
        "each repeat is a message of its own"
    );
    let times: Vec<_> = hook.attempts().into_iter().map(|(_, at)| at).collect();
    for pair in times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(gap >= Duration::from_millis(650), "requests {gap:?} apart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_alerts_reload_is_refused_and_the_old_channel_keeps_working() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let d = Serve::start(1, &webhook_alerts(&receiver.url(), "group_wait = \"0s\"")).await;
    eventually("the daemon serving", || async { d.metrics().await }).await;
    let text = std::fs::read_to_string(&d.file).unwrap();
    std::fs::write(
        &d.file,
        text.replace("channels = [\"hook\"]", "channels = [\"nowhere\"]"),
    )
    .unwrap();
    let pid = d.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually("the reload refused", || async {
        let m = d.metrics().await?;
        // The file watcher may see the write before the signal: any refusal.
        m.contains("tributary_config_last_reload_successful 0")
            .then_some(())
    })
    .await;
    d.fail(true);
    let taken = until("the alert on the old config", || {
        hook.taken().first().cloned()
    })
    .await;
    assert_eq!(taken.state(), "firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_scoped_route_never_sees_another_tenants_entities() {
    let acme = WebhookFake::new(&[SECRET]);
    let acme_receiver = acme.clone().start().await;
    let globex = WebhookFake::new(&[SECRET]);
    let globex_receiver = globex.clone().start().await;
    let alerts = format!(
        r#"
[alerts]

[[alerts.channels]]
name = "acme-hook"
kind = "webhook"
url = "{acme}/hook"
secret = {{ env = "ALERT_SECRET" }}

[[alerts.channels]]
name = "globex-hook"
kind = "webhook"
url = "{globex}/hook"
secret = {{ env = "ALERT_SECRET" }}

[alerts.delivery]
poll_interval = "50ms"

[[alerts.routes]]
name = "acme"
tenant = "acme"
channels = ["acme-hook"]
group_wait = "0s"

[[alerts.routes]]
name = "globex"
tenant = "globex"
channels = ["globex-hook"]
group_wait = "0s"
"#,
        acme = acme_receiver.url(),
        globex = globex_receiver.url(),
    );
    let d = Serve::start(1, &alerts).await;
    d.fail(true);
    let taken = until("acme's alert", || acme.taken().first().cloned()).await;
    let paths: Vec<String> = taken.body["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"][0]["key"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(paths.iter().all(|k| k == "acme"), "{paths:?}");
    // Both routes saw the same events in the same pass, and a message is
    // stored before it is sent: none was made for globex.
    let deliveries = d.deliveries().await;
    assert!(
        deliveries.iter().all(|(channel, _)| channel == "acme-hook"),
        "{deliveries:?}"
    );
    assert!(globex.attempts().is_empty());
}

/// Two checks of different owners fail together: each route by owner (one
/// also by a label inherited from the tenant) reaches only its owner's
/// channel, and the alert says who owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_by_owner_reaches_only_its_owners_channel() {
    let data = WebhookFake::new(&[SECRET]);
    let data_receiver = data.clone().start().await;
    let ops = WebhookFake::new(&[SECRET]);
    let ops_receiver = ops.clone().start().await;
    let alerts = format!(
        r#"
[alerts]

[[alerts.channels]]
name = "data-hook"
kind = "webhook"
url = "{data}/hook"
secret = {{ env = "ALERT_SECRET" }}

[[alerts.channels]]
name = "ops-hook"
kind = "webhook"
url = "{ops}/hook"
secret = {{ env = "ALERT_SECRET" }}

[alerts.delivery]
poll_interval = "50ms"

[[alerts.routes]]
name = "data-team"
owner = "data-*"
labels = {{ tier = "gold" }}
entities = ["check"]
channels = ["data-hook"]
group_by = ["check"]
group_wait = "0s"

[[alerts.routes]]
name = "ops"
owner = "ops"
entities = ["check"]
channels = ["ops-hook"]
group_wait = "0s"
"#,
        data = data_receiver.url(),
        ops = ops_receiver.url(),
    );
    let d = Serve::start_edited(2, &alerts, |text| {
        text.replacen(
            "id = \"acme\"\n",
            "id = \"acme\"\nlabels = { tier = \"gold\" }\n",
            1,
        )
        .replacen("id = \"c0\"\n", "id = \"c0\"\nowner = \"data-eng\"\n", 1)
        .replacen("id = \"c1\"\n", "id = \"c1\"\nowner = \"ops\"\n", 1)
    })
    .await;
    d.fail(true);
    let taken = until("the data team's alert", || data.taken().first().cloned()).await;
    assert_eq!(taken.entities(), vec!["check:c0".to_owned()]);
    let alert = &taken.body["data"]["alerts"][0];
    assert_eq!(alert["owner"], "data-eng", "{alert}");
    assert_eq!(alert["labels"]["tier"], "gold", "{alert}");
    let taken = until("the ops alert", || ops.taken().first().cloned()).await;
    assert_eq!(taken.entities(), vec!["check:c1".to_owned()]);
    assert_eq!(taken.body["data"]["alerts"][0]["owner"], "ops");
    // Both checks failed before either message: neither channel got the
    // other owner's check.
    for (hook, check) in [(&data, "check:c0"), (&ops, "check:c1")] {
        for message in hook.taken() {
            assert_eq!(message.entities(), vec![check.to_owned()]);
        }
    }
}

/// Once both checks failed: c1's alert arrives, c0's change is counted as
/// held back for `reason`, and no message names c0.
async fn c0_held_back_while_c1_alerts(d: &Serve, hook: &WebhookFake, reason: &str) {
    let names = |t: &tributary_tests::fakes::webhook::Taken| t.entities();
    until("c1's alert", || {
        hook.taken()
            .iter()
            .any(|t| names(t).contains(&"check:c1".to_owned()))
            .then_some(())
    })
    .await;
    let counted = format!("tributary_alerts_suppressed_total{{reason=\"{reason}\"}}");
    eventually("c0's change held back", || async {
        let metrics = d.metrics().await?;
        metrics.contains(&counted).then_some(())
    })
    .await;
    assert!(
        hook.taken()
            .iter()
            .all(|t| !names(t).contains(&"check:c0".to_owned())),
        "nothing about c0 while it is held back ({reason}): {:?}",
        hook.taken().iter().map(|t| &t.body).collect::<Vec<_>>()
    );
}

/// A maintenance window keeps its check's alert back while a check outside
/// it alerts; when the window goes (removed by a reload), the still-failing
/// check is announced once, as new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintenance_window_holds_its_alert_until_it_goes() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let window = r#"
[[maintenance]]
name = "c0-upgrade"
reason = "moving c0's service"
start = "2020-01-01T00:00:00Z"
end = "2999-01-01T00:00:00Z"
check = "c0"
"#;
    let alerts = webhook_alerts(
        &receiver.url(),
        "group_wait = \"0s\"\ngroup_interval = \"1s\"",
    );
    let d = Serve::start(2, &format!("{alerts}{window}")).await;
    d.fail(true);
    let names = |t: &tributary_tests::fakes::webhook::Taken| t.entities();
    c0_held_back_while_c1_alerts(&d, &hook, "maintenance").await;

    // The window goes: the daemon reads the saved file and lets c0 speak.
    let text = std::fs::read_to_string(&d.file).unwrap();
    std::fs::write(&d.file, text.replace(window, "")).unwrap();
    let announced = until("c0 announced once the window is gone", || {
        hook.taken()
            .into_iter()
            .find(|t| names(t).contains(&"check:c0".to_owned()))
    })
    .await;
    assert_eq!(announced.state(), "firing");
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());
}

const CHANNELS: &str = "{ alertChannels { name kind enabled disabledReason host } }";

/// `alertChannels` as `token` sees it.
async fn channels(d: &Serve, token: &str) -> serde_json::Value {
    let api = Client::new(format!("http://{}", d.listen));
    let answer = api.query(Some(token), CHANNELS, json!({})).await;
    answer.data()["alertChannels"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_channels_say_which_a_receiver_disabled_and_never_where_a_secret_is() {
    let (_gone, _gone_receiver, d) = serve_to_a_gone_receiver().await;
    let enabled = eventually("the API", || async {
        let c = channels(&d, "operator-token").await;
        c.is_array().then_some(c)
    })
    .await;
    assert_eq!(
        enabled,
        json!([{"name": "hook", "kind": "WEBHOOK", "enabled": true,
                "disabledReason": null, "host": "127.0.0.1"}])
    );

    d.fail(true);
    let disabled = eventually("the channel disabled", || async {
        let c = channels(&d, "operator-token").await;
        (c[0]["enabled"] == json!(false)).then_some(c)
    })
    .await;
    let reason = disabled[0]["disabledReason"].as_str().unwrap();
    assert!(reason.contains("410"), "the receiver's answer: {reason}");
    assert_eq!(disabled[0]["host"], "127.0.0.1");

    // A viewer learns the state, not where the channel points; a tenant's
    // token sees no channel (it carries every tenant's alerts).
    let viewer = channels(&d, "viewer-token").await;
    assert_eq!(viewer[0]["enabled"], false);
    assert_eq!(viewer[0]["host"], serde_json::Value::Null);
    assert_eq!(channels(&d, "acme-admin-token").await, json!([]));
    let text = channels(&d, "admin-token").await.to_string();
    assert!(!text.contains(SECRET) && !text.contains("/hooks"), "{text}");
}

impl Serve {
    fn api(&self) -> Client {
        Client::new(format!("http://{}", self.listen))
    }

    /// `query` as `token`, once the API answers; its `data`.
    async fn gql(
        &self,
        token: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let api = self.api();
        eventually("the API", || async {
            let answer = api.query(Some(token), query, variables.clone()).await;
            (answer.status == 200).then(|| answer.data().clone())
        })
        .await
    }

    /// The global id of check `key`.
    async fn check_id(&self, key: &str) -> String {
        let data = self
            .gql(
                "admin-token",
                "query($k: String!) { check(key: $k) { id } }",
                json!({"k": key}),
            )
            .await;
        data["check"]["id"].as_str().unwrap().to_owned()
    }
}

const DELIVERIES: &str = "query($channel: String, $status: AlertDeliveryStatus, $entity: ID, \
    $first: Int, $after: String) { alertDeliveries(channel: $channel, status: $status, \
    entity: $entity, first: $first, after: $after) { pageInfo { hasNextPage endCursor } \
    edges { node { id channel route status state summary attempts lastError nextAttemptAt \
    createdAt deliveredAt alerts { entityId path status } } } } }";

/// The nodes of `alertDeliveries(vars)` as `token` sees them.
async fn deliveries_of(d: &Serve, token: &str, vars: serde_json::Value) -> Vec<serde_json::Value> {
    let data = d.gql(token, DELIVERIES, vars).await;
    (data["alertDeliveries"]["edges"].as_array().unwrap().iter())
        .map(|e| e["node"].clone())
        .collect()
}

/// A check's alert goes to a receiver that takes it and to one that
/// answers 503: `alertDeliveries` shows one delivered and one failing, with
/// its attempts, last error and next attempt; filters by channel, status
/// and entity, pages, and shows a tenant's token only its tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_deliveries_show_what_was_delivered_and_what_is_failing() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let down = WebhookFake::new(&[SECRET]);
    down.answer(Answer::Status(503));
    let down_receiver = down.clone().start().await;
    let alerts = webhook_alerts(&receiver.url(), "group_wait = \"0s\"")
        .replace("channels = [\"hook\"]", "channels = [\"hook\", \"down\"]")
        + &format!(
            "\n[[alerts.channels]]\nname = \"down\"\nkind = \"webhook\"\nurl = \"{}/hook\"\n\
             secret = {{ env = \"ALERT_SECRET\" }}\n",
            down_receiver.url()
        );
    let d = Serve::start(1, &alerts).await;
    d.fail(true);
    let taken = until("the delivery", || hook.taken().first().cloned()).await;
    until("two failed attempts", || {
        (down.attempts().len() >= 2).then_some(())
    })
    .await;

    let all = deliveries_of(&d, "viewer-token", json!({})).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let delivered = all.iter().find(|n| n["channel"] == "hook").unwrap();
    assert_eq!(
        delivered["id"],
        taken.id.as_str(),
        "the id the receiver got"
    );
    assert_eq!(delivered["status"], "DELIVERED");
    assert_eq!(delivered["state"], "FIRING");
    assert_eq!(delivered["attempts"], 1);
    assert!(delivered["deliveredAt"].is_string(), "{delivered}");
    assert!(delivered["nextAttemptAt"].is_null(), "{delivered}");
    assert!(delivered["lastError"].is_null(), "{delivered}");
    let c0 = d.check_id("c0").await;
    assert_eq!(delivered["alerts"][0]["entityId"], c0.as_str());
    assert_eq!(delivered["alerts"][0]["status"], "UNKNOWN");
    assert!(
        delivered["alerts"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("Acme"),
        "{delivered}"
    );
    assert!(
        delivered["summary"]
            .as_str()
            .unwrap()
            .starts_with("FIRING UNKNOWN")
    );
    let failing = all.iter().find(|n| n["channel"] == "down").unwrap();
    assert_eq!(failing["status"], "PENDING");
    assert!(failing["attempts"].as_i64().unwrap() >= 1, "{failing}");
    assert!(
        failing["lastError"].as_str().unwrap().contains("503"),
        "{failing}"
    );
    assert!(failing["nextAttemptAt"].is_string(), "{failing}");
    assert!(failing["deliveredAt"].is_null(), "{failing}");
    assert_ne!(failing["id"], delivered["id"], "one message per channel");

    // Filters.
    let by_channel = deliveries_of(&d, "viewer-token", json!({"channel": "down"})).await;
    assert_eq!(by_channel.len(), 1);
    assert_eq!(by_channel[0]["channel"], "down");
    let by_status = deliveries_of(&d, "viewer-token", json!({"status": "DELIVERED"})).await;
    assert_eq!(by_status.len(), 1);
    assert_eq!(by_status[0]["channel"], "hook");
    let by_entity = deliveries_of(&d, "viewer-token", json!({"entity": c0})).await;
    assert_eq!(by_entity.len(), 2);
    let tenant = d
        .gql("admin-token", "{ tenant(key: \"acme\") { id } }", json!({}))
        .await;
    let other = deliveries_of(
        &d,
        "viewer-token",
        json!({"entity": tenant["tenant"]["id"]}),
    )
    .await;
    assert!(
        other.is_empty(),
        "no message was about the tenant: {other:?}"
    );

    // Pages of one.
    let page = d.gql("viewer-token", DELIVERIES, json!({"first": 1})).await;
    let page = &page["alertDeliveries"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let next = d
        .gql(
            "viewer-token",
            DELIVERIES,
            json!({"first": 1, "after": page["pageInfo"]["endCursor"]}),
        )
        .await;
    let next = &next["alertDeliveries"];
    assert_eq!(next["pageInfo"]["hasNextPage"], false);
    let ids = [
        page["edges"][0]["node"]["id"].clone(),
        next["edges"][0]["node"]["id"].clone(),
    ];
    assert_ne!(ids[0], ids[1]);

    // Tenant scope: acme's token sees acme's deliveries, globex's none.
    assert_eq!(
        deliveries_of(&d, "acme-admin-token", json!({})).await.len(),
        2
    );
    let globex = deliveries_of(&d, "globex-viewer-token", json!({})).await;
    assert!(globex.is_empty(), "{globex:?}");
}

const RETRY: &str = "mutation($id: ID!) { retryDelivery(input: {id: $id}) { \
    delivery { id status } userErrors { code message } } }";

/// A delivery given up on is retried by an operator: the receiver, back,
/// gets it under the id every earlier attempt carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_up_delivery_retried_arrives_under_the_same_id() {
    let (hook, _receiver, d) = serve_to_a_receiver_down_giving_up_after_1s().await;
    let given_up = eventually("the delivery given up", || async {
        let nodes = deliveries_of(&d, "viewer-token", json!({"status": "GAVE_UP"})).await;
        nodes.first().cloned()
    })
    .await;
    let id = given_up["id"].as_str().unwrap().to_owned();
    assert!(given_up["lastError"].as_str().unwrap().contains("given up"));

    // A viewer may look, not retry.
    let refused = d
        .api()
        .query(Some("viewer-token"), RETRY, json!({"id": id}))
        .await;
    assert_eq!(refused.codes(), ["FORBIDDEN"], "{}", refused.body);
    let unknown = d
        .gql("operator-token", RETRY, json!({"id": "msg_nothing"}))
        .await;
    assert_eq!(
        unknown["retryDelivery"]["userErrors"][0]["code"],
        "NOT_FOUND"
    );

    hook.answer(Answer::Take);
    let retried = d.gql("operator-token", RETRY, json!({"id": id})).await;
    assert_eq!(
        retried["retryDelivery"]["delivery"],
        json!({"id": id, "status": "PENDING"}),
        "{retried}"
    );
    let taken = until("the retried delivery", || hook.taken().first().cloned()).await;
    assert_eq!(taken.id, id);
    let ids: Vec<String> = hook.attempts().into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() >= 3 && ids.iter().all(|i| *i == id), "{ids:?}");
    let audit = d
        .gql(
            "admin-token",
            "{ auditLog(last: 5) { action target actor } }",
            json!({}),
        )
        .await;
    assert!(
        audit["auditLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "retry_delivery" && a["actor"] == "operator"),
        "{audit}"
    );
    eventually("the delivery marked delivered", || async {
        let nodes = deliveries_of(&d, "viewer-token", json!({"status": "DELIVERED"})).await;
        nodes.first().filter(|n| n["id"] == id.as_str()).cloned()
    })
    .await;
}

const TEST_CHANNEL: &str = "mutation($name: String!) { testAlertChannel(input: {name: $name}) { \
    test { delivered error latencyMs answers { status excerpt } } userErrors { code } } }";

/// `testAlertChannel` sends a signed test message to a receiver that
/// verifies it and says what it answered; PagerDuty gets a trigger and its
/// resolve; against a receiver that is down, it reports the connection
/// error. No delivery is stored either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_a_channel_reports_what_the_receiver_answered() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let pd = PagerDutyFake::default();
    let pd_server = pd.clone().start().await;
    let closed = free_port();
    let alerts = webhook_alerts(&receiver.url(), "group_wait = \"0s\"")
        + &format!(
            "\n[[alerts.channels]]\nname = \"down\"\nkind = \"webhook\"\n\
             url = \"http://127.0.0.1:{closed}/hook\"\nsecret = {{ env = \"ALERT_SECRET\" }}\n\
             \n[[alerts.channels]]\nname = \"pager\"\nkind = \"pagerduty\"\n\
             url = \"{}/v2/enqueue\"\nrouting_key = {{ env = \"ALERT_PD_KEY\" }}\n",
            pd_server.url()
        );
    let d = Serve::start(1, &alerts).await;

    let answer = d
        .gql("operator-token", TEST_CHANNEL, json!({"name": "hook"}))
        .await;
    let test = &answer["testAlertChannel"]["test"];
    assert_eq!(test["delivered"], true, "{answer}");
    assert_eq!(test["answers"], json!([{"status": 204, "excerpt": ""}]));
    assert!(test["latencyMs"].as_i64().unwrap() >= 0);
    let taken = hook.taken();
    assert_eq!(taken.len(), 1, "the signature was verified");
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());
    assert_eq!(taken[0].state(), "firing");
    assert!(taken[0].id.starts_with("msg_"), "{}", taken[0].id);

    let answer = d
        .gql("admin-token", TEST_CHANNEL, json!({"name": "down"}))
        .await;
    let test = &answer["testAlertChannel"]["test"];
    assert_eq!(test["delivered"], false, "{answer}");
    assert!(test["answers"][0]["status"].is_null(), "{answer}");
    let excerpt = test["answers"][0]["excerpt"].as_str().unwrap();
    assert!(excerpt.contains("no answer"), "{excerpt}");
    assert!(test["error"].as_str().unwrap().contains("no answer"));
    assert!(!answer.to_string().contains(SECRET));

    let answer = d
        .gql("operator-token", TEST_CHANNEL, json!({"name": "pager"}))
        .await;
    let test = &answer["testAlertChannel"]["test"];
    assert_eq!(test["delivered"], true, "{answer}");
    let statuses: Vec<&serde_json::Value> = (test["answers"].as_array().unwrap().iter())
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(202), &json!(202)], "{answer}");
    assert!(!answer.to_string().contains(ROUTING_KEY), "{answer}");
    let events = pd.events();
    let actions: Vec<&serde_json::Value> = events.iter().map(|e| &e["event_action"]).collect();
    assert_eq!(actions, [&json!("trigger"), &json!("resolve")]);
    assert!(
        events
            .iter()
            .all(|e| e["dedup_key"] == "tributary:test:pager")
    );
    assert!(pd.refused().is_empty(), "{:?}", pd.refused());

    let unknown = d
        .gql("operator-token", TEST_CHANNEL, json!({"name": "nowhere"}))
        .await;
    assert_eq!(
        unknown["testAlertChannel"]["userErrors"][0]["code"],
        "NOT_FOUND"
    );
    let viewer = d
        .api()
        .query(Some("viewer-token"), TEST_CHANNEL, json!({"name": "hook"}))
        .await;
    assert_eq!(viewer.codes(), ["FORBIDDEN"], "{}", viewer.body);
    assert!(d.deliveries().await.is_empty(), "a test is not a delivery");
}

const ENABLE: &str = "mutation { enableAlertChannel(input: {name: \"hook\"}) { \
    channel { name enabled disabledReason } userErrors { code } } }";

/// A channel a 410 disabled is still disabled after a SIGKILL and a
/// restart, until an operator enables it; then its pending message goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_disabled_by_a_gone_receiver_stays_disabled_across_a_restart() {
    let (gone, _gone_receiver, mut d) = serve_to_a_gone_receiver().await;
    fail_until_disabled(&d).await;
    d.kill();
    d.spawn();
    let after = eventually("the API after the restart", || async {
        let c = channels(&d, "operator-token").await;
        c.is_array().then_some(c)
    })
    .await;
    assert_eq!(after[0]["enabled"], false, "{after}");
    assert!(after[0]["disabledReason"].as_str().unwrap().contains("410"));
    assert_eq!(
        gone.attempts().len(),
        1,
        "not tried again after the restart"
    );

    gone.answer(Answer::Take);
    let enabled = d.gql("operator-token", ENABLE, json!({})).await;
    assert_eq!(
        enabled["enableAlertChannel"],
        json!({"channel": {"name": "hook", "enabled": true, "disabledReason": null},
               "userErrors": []})
    );
    let taken = until("the pending message", || gone.taken().first().cloned()).await;
    assert_eq!(taken.id, gone.attempts()[0].0, "the message kept its id");
    let again = d.gql("operator-token", ENABLE, json!({})).await;
    assert_eq!(
        again["enableAlertChannel"]["userErrors"][0]["code"],
        "INVALID"
    );
}

/// A muted check's failure sends nothing while the mute holds, while an
/// unmuted one alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_holds_its_entitys_alert() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let d = Serve::start(2, &webhook_alerts(&receiver.url(), "group_wait = \"0s\"")).await;
    let c0 = d.check_id("c0").await;
    let mute = "mutation($id: ID!) { mute(input: {entityId: $id, until: \"2999-01-01T00:00:00Z\", \
        reason: \"migrating\"}) { muted userErrors { message } } }";
    // A check can be muted once it has been evaluated.
    eventually("c0 muted", || async {
        let answer = d
            .api()
            .query(Some("operator-token"), mute, json!({"id": c0}))
            .await;
        (answer.body["data"]["mute"]["muted"] == json!(true)).then_some(())
    })
    .await;
    d.fail(true);
    c0_held_back_while_c1_alerts(&d, &hook, "muted").await;
}

/// A check that turns WARNING alerts; when it worsens to UNHEALTHY, the
/// group is told again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_from_warning_to_unhealthy_notifies_again() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let d = Serve::start_edited(
        1,
        &webhook_alerts(
            &receiver.url(),
            "group_wait = \"0s\"\ngroup_interval = \"1s\"",
        ),
        |text| {
            text.replace(
                "[checks.rules]\n",
                "[checks.rules]\nerrors = { warn = \"0\", error = \"10\" }\n",
            )
        },
    )
    .await;
    let error = json!({"kind": "parse", "message": "bad date", "document_id": "doc-001"});
    d.service.lock().unwrap().errors = vec![error.clone()];
    let warning = until("the WARNING alert", || hook.taken().first().cloned()).await;
    assert_eq!(warning.state(), "firing");
    assert_eq!(warning.body["data"]["alerts"][0]["status"], "WARNING");
    d.service.lock().unwrap().errors = vec![error; 11];
    let unhealthy = until("the UNHEALTHY alert", || hook.taken().get(1).cloned()).await;
    assert_eq!(unhealthy.state(), "firing");
    assert_eq!(unhealthy.body["data"]["alerts"][0]["status"], "UNHEALTHY");
    assert_ne!(unhealthy.id, warning.id);
}

/// Fails the checks and waits until the gone receiver's 410 disabled the
/// channel.
async fn fail_until_disabled(d: &Serve) {
    d.fail(true);
    eventually("the channel disabled", || async {
        let c = channels(d, "operator-token").await;
        (c[0]["enabled"] == json!(false)).then_some(())
    })
    .await;
}

/// A channel a 410 disabled is enabled again by a reload that changes its
/// definition: the pending message goes to the new URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_channel_given_a_new_url_is_enabled_again() {
    let (_gone, gone_receiver, d) = serve_to_a_gone_receiver().await;
    fail_until_disabled(&d).await;
    let moved = WebhookFake::new(&[SECRET]);
    let moved_receiver = moved.clone().start().await;
    let text = std::fs::read_to_string(&d.file).unwrap();
    std::fs::write(
        &d.file,
        text.replace(&gone_receiver.url(), &moved_receiver.url()),
    )
    .unwrap();
    let taken = until("the pending message at the new URL", || {
        moved.taken().first().cloned()
    })
    .await;
    assert_eq!(taken.state(), "firing");
    let c = channels(&d, "operator-token").await;
    assert_eq!(c[0]["enabled"], true, "{c}");
}

/// Every message the daemon made was delivered and taken by `hook`, each
/// taken once or, when an attempt's answer was lost, again under the same
/// id with the same body. The ids taken, once each.
async fn every_message_taken_once_or_again_under_its_id(
    d: &Serve,
    hook: &WebhookFake,
) -> Vec<String> {
    let stored = eventually("every message delivered", || async {
        let rows = d.stored_deliveries().await;
        (!rows.is_empty() && rows.iter().all(|(_, _, status)| status == "delivered"))
            .then_some(rows)
    })
    .await;
    let taken = hook.taken();
    let mut bodies: std::collections::HashMap<&str, &serde_json::Value> = Default::default();
    for t in &taken {
        let first = *bodies.entry(t.id.as_str()).or_insert(&t.body);
        assert_eq!(first, &t.body, "a duplicate of {} with another body", t.id);
    }
    let mut made: Vec<String> = stored.into_iter().map(|(id, _, _)| id).collect();
    made.sort();
    let mut ids: Vec<String> = bodies.keys().map(|id| (*id).to_owned()).collect();
    ids.sort();
    assert_eq!(ids, made, "the messages taken are the messages made");
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());
    ids
}

/// For each check `c{i}`, `i < checks`: a firing message listed it and a
/// later resolved one too.
fn each_check_fired_then_resolved(hook: &WebhookFake, checks: usize) -> bool {
    let taken = hook.taken();
    (0..checks).all(|i| {
        let key = format!("check:c{i}");
        let fired = taken
            .iter()
            .position(|t| t.state() == "firing" && t.entities().contains(&key));
        fired.is_some_and(|f| {
            taken[f..]
                .iter()
                .any(|t| t.state() == "resolved" && t.entities().contains(&key))
        })
    })
}

/// A route telling each check's changes to `hook` at once, one group per
/// check.
fn per_check_alerts(url: &str, delivery: &str) -> String {
    webhook_alerts(url, "group_wait = \"0s\"\ngroup_interval = \"0s\"")
        .replace("group_by = [\"tenant\"]", "group_by = [\"check\"]")
        .replace("retry_schedule = [\"200ms\"]", delivery)
}

/// The database goes away (Postgres behind a proxy the test cuts, as in
/// `faults.rs`) while messages are being delivered and while the checks
/// keep changing (they recover during the outage, held by the writer):
/// once it is back, every message made is delivered, and each check's
/// firing and resolution arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_deliveries_loses_no_alert() {
    let scratch = tributary::store::testing::PgScratch::new("alert_outage")
        .await
        .unwrap();
    let server = scratch.url[scratch.url.find('@').unwrap() + 1..]
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let target = tokio::net::lookup_host(&server)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = tributary_tests::proxy::Proxy::start(target).await;
    let url = scratch.url.replace(&server, &proxy.addr().to_string());
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let alerts = per_check_alerts(&receiver.url(), "retry_schedule = [\"200ms\"]");
    let mut d = Serve::start_edited(4, &alerts, |text| {
        let sqlite = text
            .lines()
            .find(|l| l.starts_with("url = \"sqlite://"))
            .unwrap()
            .to_owned();
        text.replace(&sqlite, &format!("url = \"{url}\""))
    })
    .await;
    d.db = scratch.url.clone();
    d.fail(true);
    until("the first message", || hook.taken().first().cloned()).await;
    proxy.cut();
    d.fail(false);
    // Five seconds away: five rounds of runs held, the dispatcher failing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.restore();
    until("each check's firing and resolution", || {
        each_check_fired_then_resolved(&hook, 4).then_some(())
    })
    .await;
    every_message_taken_once_or_again_under_its_id(&d, &hook).await;
    d.kill();
    scratch.drop_schema().await.unwrap();
}

/// The receiver down "for 10 minutes" (answering 503), then back: every
/// message arrives. The retry schedule is the Standard Webhooks one scaled
/// 1:200 (5 s, 5 min, 30 min -> 25 ms, 1.5 s, 9 s), so 10 minutes down is
/// 3 s here: the attempts at 0, 5 s and 5 min fail, the one at 35 min
/// (here ~10.5 s, jittered) is taken, as it would be in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_10_minutes_then_back_gets_every_alert() {
    let hook = WebhookFake::new(&[SECRET]);
    hook.answer(Answer::Status(503));
    let receiver = hook.clone().start().await;
    let alerts = per_check_alerts(
        &receiver.url(),
        "retry_schedule = [\"25ms\", \"1500ms\", \"9s\"]",
    );
    let d = Serve::start(3, &alerts).await;
    d.fail(true);
    until("the first refused attempt", || {
        (!hook.attempts().is_empty()).then_some(())
    })
    .await;
    let down_since = Instant::now();
    // Changes go on while it is down: each check recovers.
    until("a resolution waiting", || {
        (hook.attempts().len() >= 6).then_some(())
    })
    .await;
    d.fail(false);
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(down_since.elapsed())).await;
    hook.answer(Answer::Take);
    until("each check's firing and resolution", || {
        each_check_fired_then_resolved(&hook, 3).then_some(())
    })
    .await;
    every_message_taken_once_or_again_under_its_id(&d, &hook).await;
}

/// SIGKILL while a burst of messages is being delivered (ten groups, the
/// receiver slow), then a restart: every message arrives, a message whose
/// answer the kill lost arriving again under the same id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_of_deliveries_loses_none() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let alerts = per_check_alerts(&receiver.url(), "retry_schedule = [\"200ms\"]");
    let mut d = Serve::start(10, &alerts).await;
    eventually("the daemon serving", || async { d.metrics().await }).await;
    hook.answer(Answer::TakeSlowly(Duration::from_millis(300)));
    d.fail(true);
    until("a delivery taken, its answer not yet sent", || {
        (!hook.taken().is_empty()).then_some(())
    })
    .await;
    d.kill();
    hook.answer(Answer::Take);
    d.spawn();
    until("each check's alert", || {
        let taken = hook.taken();
        (0..10)
            .all(|i| {
                let key = format!("check:c{i}");
                taken.iter().any(|t| t.entities().contains(&key))
            })
            .then_some(())
    })
    .await;
    every_message_taken_once_or_again_under_its_id(&d, &hook).await;
}

/// With no route configured, events still leave the outbox (the dispatcher,
/// woken by them, only removes them): nothing waits there for a route a
/// later reload adds, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_routes_the_outbox_is_consumed() {
    let service = Arc::new(Mutex::new(Fake {
        ids: doc_ids(5),
        ..Fake::default()
    }));
    let server = document_service(service.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), &[("c0", "ingest", &server.url(), "")]);
    let d = tributary_tests::kit::start_live(dir, &text).await;
    d.wait_total_runs(1).await;
    service.lock().unwrap().fail_with = Some(400);
    d.run_now("c0").await;
    eventually("the outbox emptied", || async {
        let backlog = d.store.alert_backlog().await.unwrap();
        (backlog.outbox == 0 && backlog.pending == 0).then_some(())
    })
    .await;
    d.service.stop(Duration::from_secs(5)).await;
}

/// Fan-out stays per group, not per entity: one route matching every check
/// with 20 channels turns ten checks failing together into 20 messages (one
/// per channel, each listing the ten), not 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_to_20_channels_sends_one_message_per_channel_per_group() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let names: Vec<String> = (0..20).map(|i| format!("hook{i}")).collect();
    let mut alerts = String::from("[alerts]\n");
    for name in &names {
        alerts.push_str(&format!(
            "[[alerts.channels]]\nname = \"{name}\"\nkind = \"webhook\"\n\
             url = \"{}/{name}\"\nsecret = {{ env = \"ALERT_SECRET\" }}\n\n",
            receiver.url()
        ));
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    alerts.push_str(&format!(
        "[[alerts.routes]]\nname = \"everything\"\nentities = [\"check\"]\n\
         channels = [{}]\ngroup_wait = \"3s\"\nsend_resolved = false\n",
        quoted.join(", ")
    ));
    let d = Serve::start(10, &alerts).await;
    d.fail(true);
    let taken = until("a message on every channel", || {
        let taken = hook.taken();
        (taken.len() >= 20).then_some(taken)
    })
    .await;
    for message in &taken {
        assert_eq!(message.entities().len(), 10, "{:?}", message.entities());
    }
    let deliveries = d.deliveries().await;
    assert_eq!(deliveries.len(), 20, "{deliveries:?}");
}

/// Webhook channels on one route telling each check's changes at once:
/// `hook` to the webhook fake at `fast`, and, to the stalling receiver at
/// `slow`, one channel per name in `slow_channels` (`name` or
/// `name:min_interval`); `timeout` the delivery timeout.
fn fast_and_slow_alerts(fast: &str, slow: &str, slow_channels: &[&str], timeout: &str) -> String {
    let mut alerts = format!(
        "[alerts]\n[[alerts.channels]]\nname = \"hook\"\nkind = \"webhook\"\n\
         url = \"{fast}/hooks/tributary\"\nsecret = {{ env = \"ALERT_SECRET\" }}\n\n"
    );
    let mut names = vec!["\"hook\"".to_owned()];
    for channel in slow_channels {
        let (name, rate) = channel.split_once(':').unwrap_or((channel, "0s"));
        alerts.push_str(&format!(
            "[[alerts.channels]]\nname = \"{name}\"\nkind = \"webhook\"\n\
             url = \"{slow}/{name}\"\nsecret = {{ env = \"ALERT_SECRET\" }}\n\
             min_interval = \"{rate}\"\n\n"
        ));
        names.push(format!("\"{name}\""));
    }
    alerts.push_str(&format!(
        "[alerts.delivery]\npoll_interval = \"50ms\"\nretry_schedule = [\"200ms\"]\n\
         timeout = \"{timeout}\"\n\n\
         [[alerts.routes]]\nname = \"checks\"\nentities = [\"check\"]\nchannels = [{}]\n\
         group_by = [\"check\"]\ngroup_wait = \"0s\"\ngroup_interval = \"0s\"\n",
        names.join(", ")
    ));
    alerts
}

/// The stored deliveries of `channels`: id and status.
async fn stored_of(d: &Serve, channels: &[&str]) -> Vec<(String, String)> {
    (d.stored_deliveries().await.into_iter())
        .filter(|(_, channel, _)| channels.contains(&channel.as_str()))
        .map(|(id, _, status)| (id, status))
        .collect()
}

/// A receiver that accepts and never answers holds only its own channels.
/// Ten checks fail, then recover; each change goes to `hook` (answering at
/// once), `stuck` and `metered` (a rate: one request at a time, the rest
/// due meanwhile), both to a receiver holding every request until the test
/// releases it. Before the release `hook` has every firing message and,
/// routed and grouped meanwhile, every resolved one, while the stuck
/// receiver still holds each message sent to it, sent once. Released (the
/// held requests hung up on), it gets every message, the held ones again
/// under their ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_delays_only_its_own_channel() {
    const CHECKS: usize = 10;
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let stuck = StallingReceiver::start(Stall::Hold).await;
    let slow = ["stuck", "metered:50ms"];
    // A timeout longer than the test: only the release ends the hold.
    let alerts = fast_and_slow_alerts(&receiver.url(), &stuck.url(), &slow, "10m");
    let d = Serve::start(CHECKS, &alerts).await;
    d.fail(true);
    until("each check's firing message on hook", || {
        let taken = hook.taken();
        (0..CHECKS)
            .all(|i| {
                let key = format!("check:c{i}");
                taken.iter().any(|t| t.entities().contains(&key))
            })
            .then_some(())
    })
    .await;
    d.fail(false);
    until("each check's firing then resolved message on hook", || {
        each_check_fired_then_resolved(&hook, CHECKS).then_some(())
    })
    .await;
    // All the while: every stuck message held, sent once, none answered;
    // the metered channel one at a time.
    let held = until("the stuck channel's messages held", || {
        let asked = stuck.asked();
        (asked.len() > CHECKS).then_some(asked)
    })
    .await;
    assert_eq!(held.len(), CHECKS + 1, "{held:?}");
    assert!(held.iter().all(|a| !a.answered), "{held:?}");
    let paths: Vec<&str> = held.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths.iter().filter(|p| **p == "/metered").count(),
        1,
        "{paths:?}"
    );
    let mut ids: Vec<&str> = held.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), CHECKS + 1, "each sent once: {held:?}");
    let slow_stored = stored_of(&d, &["stuck", "metered"]).await;
    assert!(
        slow_stored.iter().all(|(_, status)| status == "pending"),
        "{slow_stored:?}"
    );
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());

    stuck.release();
    let stored = eventually("every stuck message delivered", || async {
        let rows = stored_of(&d, &["stuck", "metered"]).await;
        (rows.len() == 4 * CHECKS && rows.iter().all(|(_, s)| s == "delivered")).then_some(rows)
    })
    .await;
    let asked = stuck.asked();
    let mut answered: Vec<&str> = (asked.iter())
        .filter(|a| a.answered)
        .map(|a| a.id.as_str())
        .collect();
    answered.sort_unstable();
    let mut made: Vec<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    made.sort_unstable();
    assert_eq!(answered, made, "each message answered once, under its id");
    for id in ids {
        assert!(answered.contains(&id), "{id} held, then sent again");
    }
}

/// The next three attacks on the same hold. A receiver trickling its
/// answer a byte at a time is cut by the timeout and tried again, same id,
/// and a receiver answering 100 MB is read no further than its first
/// bytes (it cannot write the rest: the daemon hung up); meanwhile `hook`
/// gets each check's firing and resolved messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_or_huge_answer_holds_only_its_channel() {
    const HUNDRED_MB: u64 = 100 << 20;
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let trickling = StallingReceiver::start(Stall::Trickle {
        every: Duration::from_millis(100),
    })
    .await;
    let huge = StallingReceiver::start(Stall::Huge { bytes: HUNDRED_MB }).await;
    let mut alerts = fast_and_slow_alerts(&receiver.url(), &trickling.url(), &["trickle"], "1s");
    // The huge receiver's channel beside the trickling one.
    alerts = alerts.replace(
        "channels = [\"hook\", \"trickle\"]",
        "channels = [\"hook\", \"trickle\", \"huge\"]",
    );
    alerts.push_str(&format!(
        "\n[[alerts.channels]]\nname = \"huge\"\nkind = \"webhook\"\n\
         url = \"{}/huge\"\nsecret = {{ env = \"ALERT_SECRET\" }}\n",
        huge.url()
    ));
    let d = Serve::start(2, &alerts).await;
    d.fail(true);
    until("each check's firing message on hook", || {
        (hook.taken_count() >= 2).then_some(())
    })
    .await;
    d.fail(false);
    until("each check's firing then resolved message on hook", || {
        each_check_fired_then_resolved(&hook, 2).then_some(())
    })
    .await;

    // The trickled answers: each cut, the message tried again, same id.
    let asked = until("each trickled message tried twice", || {
        let asked = trickling.asked();
        let ids: std::collections::HashSet<&str> = asked.iter().map(|a| a.id.as_str()).collect();
        (ids.len() >= 2
            && ids
                .iter()
                .all(|id| asked.iter().filter(|a| a.id == *id).count() >= 2))
        .then(|| asked.clone())
    })
    .await;
    let trickled = stored_of(&d, &["trickle"]).await;
    for (id, status) in &trickled {
        assert_eq!(status, "pending", "never delivered: {id}");
    }
    let first_ids: std::collections::HashSet<&str> = asked.iter().map(|a| a.id.as_str()).collect();
    let made: std::collections::HashSet<&str> =
        trickled.iter().map(|(id, _)| id.as_str()).collect();
    assert!(first_ids.is_subset(&made), "retried under the same ids");
    let errors = deliveries_of(&d, "viewer-token", json!({"channel": "trickle"})).await;
    assert!(
        errors.iter().any(|n| n["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within"))),
        "{errors:?}"
    );

    // The huge answers: taken (200), each read only in part.
    eventually("the huge channel's messages delivered", || async {
        let rows = stored_of(&d, &["huge"]).await;
        (rows.len() >= 4 && rows.iter().all(|(_, s)| s == "delivered")).then_some(())
    })
    .await;
    let written = until("each huge answer ended", || {
        let written = huge.written();
        (written.len() >= 4).then_some(written)
    })
    .await;
    for bytes in written {
        assert!(
            bytes < HUNDRED_MB / 2,
            "the daemon read {bytes} bytes of 100 MB"
        );
    }
}

const RETRY_WARNING: &str = "mutation($id: ID!) { retryDelivery(input: {id: $id}) { \
    delivery { id status } warning userErrors { code message } } }";

/// `retryDelivery` on a message of a channel a receiver disabled (410)
/// says it waits, naming the channel and how to enable it; enabled as it
/// says, the receiver (back) gets the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_delivery_of_a_disabled_channel_says_how_to_enable_it() {
    let (gone, _gone_receiver, d) = serve_to_a_gone_receiver().await;
    fail_until_disabled(&d).await;
    let pending = deliveries_of(&d, "viewer-token", json!({"status": "PENDING"})).await;
    let id = pending[0]["id"].as_str().unwrap().to_owned();
    let retried = d
        .gql("operator-token", RETRY_WARNING, json!({"id": id}))
        .await;
    let answer = &retried["retryDelivery"];
    assert_eq!(answer["delivery"], json!({"id": id, "status": "PENDING"}));
    assert_eq!(answer["userErrors"], json!([]));
    let warning = answer["warning"].as_str().unwrap();
    assert!(
        warning.contains("\"hook\" is disabled") && warning.contains("enableAlertChannel"),
        "{warning}"
    );
    assert_eq!(gone.attempts().len(), 1, "still waiting");

    gone.answer(Answer::Take);
    let enabled = d.gql("operator-token", ENABLE, json!({})).await;
    assert_eq!(
        enabled["enableAlertChannel"]["userErrors"],
        json!([]),
        "{enabled}"
    );
    let taken = until("the message", || gone.taken().first().cloned()).await;
    assert_eq!(taken.id, id);
    // The channel enabled: a retry warns of nothing.
    let again = d
        .gql("operator-token", RETRY_WARNING, json!({"id": id}))
        .await;
    assert_eq!(again["retryDelivery"]["warning"], json!(null), "{again}");
}

/// A reload while sends hang: the stuck channel is removed and a new one
/// (`moved`, to the receiver that answers) takes its place on the route.
/// The daemon goes on (routing, grouping, delivering to `moved`); the
/// messages in flight end under the old definition when the receiver hangs
/// up, and are dropped with their channel: sent neither again nor to the
/// new channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_removing_a_channel_with_sends_in_flight_sends_none_twice() {
    const CHECKS: usize = 3;
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let stuck = StallingReceiver::start(Stall::Hold).await;
    let alerts = fast_and_slow_alerts(&receiver.url(), &stuck.url(), &["stuck"], "10m");
    let d = Serve::start(CHECKS, &alerts).await;
    d.fail(true);
    let held = until("the stuck messages held", || {
        let asked = stuck.asked();
        (asked.len() >= CHECKS).then_some(asked)
    })
    .await;
    let text = std::fs::read_to_string(&d.file).unwrap();
    let moved = text
        .replace("name = \"stuck\"", "name = \"moved\"")
        .replace("\"stuck\"]", "\"moved\"]")
        .replace(
            &format!("{}/stuck", stuck.url()),
            &format!("{}/moved", receiver.url()),
        );
    std::fs::write(&d.file, moved).unwrap();
    eventually("the reload", || async {
        let c = channels(&d, "operator-token").await;
        let names: Vec<&str> = (c.as_array().into_iter().flatten())
            .filter_map(|c| c["name"].as_str())
            .collect();
        (names == ["hook", "moved"]).then_some(())
    })
    .await;
    d.fail(false);
    eventually("each resolution delivered on moved", || async {
        let rows = stored_of(&d, &["moved"]).await;
        (rows.len() == CHECKS && rows.iter().all(|(_, s)| s == "delivered")).then_some(())
    })
    .await;

    stuck.release();
    eventually("the stuck messages dropped", || async {
        let rows = stored_of(&d, &["stuck"]).await;
        (!rows.is_empty() && rows.iter().all(|(_, s)| s == "dropped")).then_some(())
    })
    .await;
    assert_eq!(stuck.asked().len(), held.len(), "none sent again");
    let taken: Vec<String> = hook.attempts().into_iter().map(|(id, _)| id).collect();
    for asked in &held {
        assert!(
            !taken.contains(&asked.id),
            "{} sent to the new channel",
            asked.id
        );
    }
    assert!(d.metrics().await.is_some(), "the daemon still serves");
}

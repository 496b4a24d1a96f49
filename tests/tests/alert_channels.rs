//! The Slack, PagerDuty and email alert channels, each sending for real over
//! loopback to a receiver that checks what the real service checks (the
//! fakes of `tributary_tests::fakes`, and aiosmtpd for SMTP): what a person
//! would see, how each answer is classified, and that hostile names and
//! reasons from plugins stay text.
//!
//! The HTTP channels' requests go through a reqwest client set up as the
//! dispatcher's (no redirects, a timeout), the crate and version the
//! workspace pins.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::Value;
use tributary::alerts::email::{self, EmailSettings, Mailer, Security};
use tributary::alerts::message::{Alert, AlertState, Counts, Message, Outcome, Step};
use tributary::alerts::pagerduty::{self, PagerDutySettings};
use tributary::alerts::slack::{self, SlackSettings};
use tributary::health::{EntityRef, Reason, RuleKind, Status};
use tributary_tests::fakes::pagerduty::{self as pd_fake, PagerDutyFake};
use tributary_tests::fakes::slack::{self as slack_fake, SlackFake};
use tributary_tests::fakes::smtp::{SmtpOptions, SmtpServer};

const WAIT: Duration = Duration::from_secs(30);
/// 2026-05-01T10:00:00Z.
const NOW: u64 = 1_777_629_600;

fn at(unix: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
}

fn step(kind: &'static str, key: &str, name: &str) -> Step {
    Step {
        kind,
        key: key.to_owned(),
        name: name.to_owned(),
    }
}

/// Asset `name` of check `orders_check`, in Acme > Orders > Snowflake.
fn asset(name: &str, status: Status) -> Alert {
    let key = name.to_lowercase().replace(' ', "_");
    Alert {
        entity: EntityRef::Asset {
            check: "orders_check".into(),
            asset: key.clone(),
        },
        path: vec![
            step("tenant", "acme", "Acme"),
            step("flow", "orders", "Orders"),
            step("system", "snowflake", "Snowflake"),
            step("check", "orders_check", "Orders check"),
            step("asset", &key, name),
        ],
        status,
        previous: Some(Status::Healthy),
        reasons: vec![
            Reason::new(
                RuleKind::Freshness,
                status,
                "freshness: last update 3h 2m ago, more than error_after 2h",
            ),
            Reason::new(
                RuleKind::Completeness,
                Status::Warning,
                "completeness: 12 of 100 records missing",
            ),
        ],
        counts: Some(Counts {
            expected: Some(100),
            received: Some(88),
            missing: Some(12),
            errored: Some(0),
        }),
        since: at(NOW - 120),
        seq: 42,
        link: Some(format!("https://tributary.example/assets/{key}")),
        dedup_key: format!("tributary:acme:asset:orders_check:{key}"),
        also_affected: vec![step("system", "looker", "Looker dashboards")],
        owner: Some("data-eng".into()),
        labels: [("tier".to_owned(), "gold".to_owned())].into(),
    }
}

fn message(id: &str, state: AlertState, alerts: Vec<Alert>) -> Message {
    Message {
        id: id.to_owned(),
        state,
        group_key: "tenant=acme".into(),
        route: "data-team".into(),
        alerts,
        truncated: 0,
        at: at(NOW),
    }
}

fn resolved(mut alert: Alert) -> Alert {
    alert.previous = Some(alert.status);
    alert.status = Status::Healthy;
    alert.reasons.clear();
    alert
}

/// What a receiver answered.
struct Answer {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// Sends `request` as the dispatcher does: one shared client, no redirects.
async fn send(request: http::Request<Vec<u8>>) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(WAIT)
        .build()
        .expect("a client");
    let request = reqwest::Request::try_from(request).expect("a reqwest request");
    let response = client.execute(request).await.expect("the fake answers");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("a body").to_vec(),
    }
}

async fn slack_send(settings: &SlackSettings, message: &Message) -> Outcome {
    let answer = send(slack::request(settings, message)).await;
    slack::classify(
        answer.status,
        &answer.headers,
        &answer.body,
        SystemTime::now(),
    )
}

/// Sends a message's events in order, stopping at the first one not taken,
/// as the dispatcher does.
async fn pagerduty_send(settings: &PagerDutySettings, message: &Message) -> Outcome {
    for request in pagerduty::requests(settings, message) {
        let answer = send(request).await;
        let outcome = pagerduty::classify(
            answer.status,
            &answer.headers,
            &answer.body,
            SystemTime::now(),
        );
        if outcome != Outcome::Delivered {
            return outcome;
        }
    }
    Outcome::Delivered
}

async fn slack_world() -> (SlackFake, SlackSettings, plugin_sdk::harness::TestServer) {
    let fake = SlackFake::new();
    let server = fake.clone().start().await;
    let settings = SlackSettings::new(&format!("{}{}", server.url(), slack_fake::WEBHOOK_PATH))
        .expect("valid settings");
    (fake, settings, server)
}

// --- Slack -----------------------------------------------------------------

#[tokio::test]
async fn slack_shows_the_status_path_reasons_counts_and_link_then_the_resolution() {
    let (fake, settings, _server) = slack_world().await;
    let alert = asset("orders", Status::Unhealthy);
    let firing = message("m1", AlertState::Firing, vec![alert.clone()]);
    assert_eq!(slack_send(&settings, &firing).await, Outcome::Delivered);
    let resolution = message("m2", AlertState::Resolved, vec![resolved(alert)]);
    assert_eq!(slack_send(&settings, &resolution).await, Outcome::Delivered);

    let posted = fake.posted();
    assert_eq!(posted.len(), 2);
    let first = &posted[0];
    let fallback = &first.shown[0];
    assert!(
        fallback.contains("FIRING UNHEALTHY: Acme > Orders > Snowflake > Orders check > orders"),
        "{fallback}"
    );
    assert!(fallback.contains("last update 3h 2m ago"), "{fallback}");
    let shown = first.shown_text();
    for expected in [
        "FIRING · UNHEALTHY · 1 entity",
        "UNHEALTHY (was HEALTHY)",
        "Acme › Orders › Snowflake › Orders check › orders",
        "freshness: last update 3h 2m ago",
        "completeness: 12 of 100 records missing",
        "Counts: expected 100, received 88, missing 12, errored 0",
        "_Also affected:_ Looker dashboards",
        "Owner: data-eng",
        "route data-team",
    ] {
        assert!(shown.contains(expected), "{expected:?} in {shown}");
    }
    let button = &first.blocks()[1]["accessory"];
    assert_eq!(button["url"], "https://tributary.example/assets/orders");

    let second = posted[1].shown_text();
    assert!(second.contains("RESOLVED · HEALTHY · 1 entity"), "{second}");
    assert!(second.contains("HEALTHY (was UNHEALTHY)"), "{second}");
    assert!(
        posted[1].body["text"]
            .as_str()
            .unwrap()
            .contains(":large_green_circle: RESOLVED")
    );
}

#[tokio::test]
async fn slack_rate_limit_is_retried_after_what_slack_says_and_the_retry_is_taken() {
    let (fake, settings, _server) = slack_world().await;
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Warning)],
    );
    fake.rate_limit_next(1, 7);
    match slack_send(&settings, &m).await {
        Outcome::Retry { after, reason } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert!(reason.contains("429"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(1);
    assert!(matches!(
        slack_send(&settings, &m).await,
        Outcome::Retry { after: None, .. }
    ));
    assert_eq!(slack_send(&settings, &m).await, Outcome::Delivered);
    assert_eq!(fake.posted().len(), 1);
}

#[tokio::test]
async fn slack_archived_channel_disables_the_channel_and_says_why() {
    let (fake, settings, _server) = slack_world().await;
    fake.archive();
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Unhealthy)],
    );
    match slack_send(&settings, &m).await {
        Outcome::Disable { reason } => {
            assert!(
                reason.contains("410") && reason.contains("archived"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.posted().is_empty());
}

#[tokio::test]
async fn slack_invalid_payload_rejects_the_message_and_a_wrong_token_disables() {
    let (fake, settings, server) = slack_world().await;
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Unhealthy)],
    );
    // A body Slack refuses: more blocks than it takes.
    let mut request = slack::request(&settings, &m);
    let divider = serde_json::json!({ "type": "divider" });
    *request.body_mut() = serde_json::json!({ "text": "x", "blocks": vec![divider; 51] })
        .to_string()
        .into_bytes();
    let answer = send(request).await;
    match slack::classify(
        answer.status,
        &answer.headers,
        &answer.body,
        SystemTime::now(),
    ) {
        Outcome::Reject { reason } => assert!(reason.contains("invalid_payload"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.refused(), ["51 blocks, more than 50"]);

    let revoked =
        SlackSettings::new(&format!("{}/services/T0001/B0001/revoked", server.url())).unwrap();
    match slack_send(&revoked, &m).await {
        Outcome::Disable { reason } => assert!(reason.contains("no_service"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn slack_a_50_alert_group_fits_in_one_message_and_lists_the_rest() {
    let (fake, settings, _server) = slack_world().await;
    let alerts: Vec<Alert> = (0..50)
        .map(|i| asset(&format!("table_{i:02}"), Status::Unhealthy))
        .collect();
    let m = message("m1", AlertState::Firing, alerts);
    assert_eq!(slack_send(&settings, &m).await, Outcome::Delivered);
    let posted = &fake.posted()[0];
    assert!(posted.blocks().len() <= slack::MAX_BLOCKS);
    let shown = posted.shown_text();
    assert!(shown.contains("50 entities"), "{shown}");
    assert!(shown.contains("and 40 more:"), "{shown}");
    for i in 0..50 {
        assert!(
            shown.contains(&format!("table_{i:02}")),
            "table_{i:02} in {shown}"
        );
    }

    // Names and reasons as long as a plugin can make them still fit.
    let huge: Vec<Alert> = (0..50)
        .map(|i| {
            let mut a = asset(&format!("{i}{}", "&<>".repeat(2_000)), Status::Unhealthy);
            a.reasons =
                vec![Reason::new(RuleKind::Errors, Status::Unhealthy, "<".repeat(9_000)); 30];
            a.also_affected = vec![step("system", "s", &"&".repeat(5_000)); 40];
            // Longer than a Slack button takes: no button rather than a refusal.
            a.link = Some(format!("https://tributary.example/{}", "a".repeat(3_000)));
            a
        })
        .collect();
    let m = message("m2", AlertState::Firing, huge);
    assert_eq!(
        slack_send(&settings, &m).await,
        Outcome::Delivered,
        "{:?}",
        fake.refused()
    );
    let shown = fake.posted()[1].shown_text();
    assert!(shown.contains("not listed"), "{shown}");
}

/// Everything an attacker's plugin or config could put in a name to make
/// Slack notify people or show a link.
const HOSTILE: &str = "<!channel> <!here|here> <@U0123ABC> <#C0123|general> \
    <!subteam^S0123|@oncall> <https://evil.example/login|Open Tributary> \
    https://evil.example/bare #general &amp;";

#[tokio::test]
async fn slack_hostile_names_and_reasons_are_shown_as_written_never_as_mentions_or_links() {
    let (fake, settings, _server) = slack_world().await;
    let mut alert = asset(HOSTILE, Status::Unhealthy);
    alert.reasons = vec![Reason::new(
        RuleKind::NativeStatus,
        Status::Unhealthy,
        HOSTILE,
    )];
    alert.also_affected = vec![step("system", "x", HOSTILE)];
    alert.link = Some("javascript:alert(1)".into());
    let mut m = message("m1", AlertState::Firing, vec![alert]);
    m.route = HOSTILE.into();
    m.group_key = HOSTILE.into();
    assert_eq!(slack_send(&settings, &m).await, Outcome::Delivered);
    let posted = &fake.posted()[0];
    assert_eq!(posted.mentions, Vec::<String>::new());
    assert_eq!(posted.links, Vec::<String>::new());
    assert!(
        posted.blocks()[1].get("accessory").is_none(),
        "no button for a javascript: link"
    );
    // The reader sees the name exactly as the plugin wrote it.
    assert!(
        posted.shown_text().contains(HOSTILE),
        "{}",
        posted.shown_text()
    );
}

// --- PagerDuty -------------------------------------------------------------

async fn pagerduty_world() -> (
    PagerDutyFake,
    PagerDutySettings,
    plugin_sdk::harness::TestServer,
) {
    let fake = PagerDutyFake::default();
    let server = fake.clone().start().await;
    let url = format!("{}{}", server.url(), pd_fake::ENQUEUE_PATH);
    let settings = PagerDutySettings::new(pd_fake::ROUTING_KEY, Some(&url)).expect("valid");
    (fake, settings, server)
}

#[tokio::test]
async fn pagerduty_triggers_one_alert_per_entity_then_resolves_them_with_the_same_key() {
    let (fake, settings, _server) = pagerduty_world().await;
    let orders = asset("orders", Status::Unhealthy);
    let mut customers = asset("customers", Status::Warning);
    customers.link = None;
    let firing = message(
        "m1",
        AlertState::Firing,
        vec![orders.clone(), customers.clone()],
    );
    assert_eq!(pagerduty_send(&settings, &firing).await, Outcome::Delivered);

    let open = fake.alert(&orders.dedup_key).expect("an alert for orders");
    assert!(open.open);
    assert_eq!(open.severity, "critical");
    assert_eq!(
        open.summary,
        "UNHEALTHY: Acme > Orders > Snowflake > Orders check > orders: freshness: last update \
         3h 2m ago, more than error_after 2h"
    );
    assert_eq!(
        fake.alert(&customers.dedup_key).unwrap().severity,
        "warning"
    );

    let events = fake.events();
    let trigger = &events[0];
    assert_eq!(trigger["client"], "Tributary");
    assert_eq!(trigger["payload"]["source"], "Snowflake");
    assert_eq!(trigger["payload"]["component"], "orders");
    assert_eq!(trigger["payload"]["group"], "Orders");
    assert_eq!(trigger["payload"]["class"], "freshness");
    assert_eq!(trigger["payload"]["timestamp"], "2026-05-01T09:58:00.000Z");
    let details = &trigger["payload"]["custom_details"];
    assert_eq!(details["counts"]["missing"], 12);
    assert_eq!(
        details["reasons"][1]["message"],
        "completeness: 12 of 100 records missing"
    );
    assert_eq!(details["also_affected"][0]["name"], "Looker dashboards");
    assert_eq!(
        trigger["links"][0]["href"],
        "https://tributary.example/assets/orders"
    );
    assert!(events[1].get("links").is_none());

    // A repeat of the same message is folded into the open alerts.
    assert_eq!(pagerduty_send(&settings, &firing).await, Outcome::Delivered);
    assert_eq!(fake.alert(&orders.dedup_key).unwrap().triggers, 2);
    assert_eq!(fake.alert(&orders.dedup_key).unwrap().opened, 1);

    let resolution = message(
        "m2",
        AlertState::Resolved,
        vec![resolved(orders.clone()), resolved(customers.clone())],
    );
    assert_eq!(
        pagerduty_send(&settings, &resolution).await,
        Outcome::Delivered
    );
    assert!(!fake.alert(&orders.dedup_key).unwrap().open);
    assert!(!fake.alert(&customers.dedup_key).unwrap().open);
    let resolve = &fake.events()[4];
    let mut keys: Vec<&str> = resolve
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["dedup_key", "event_action", "routing_key"]);
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

#[tokio::test]
async fn pagerduty_severity_follows_the_status() {
    let (fake, settings, _server) = pagerduty_world().await;
    let alerts = vec![
        asset("a", Status::Unhealthy),
        asset("b", Status::Unknown),
        asset("c", Status::Warning),
    ];
    let m = message("m1", AlertState::Firing, alerts);
    assert_eq!(pagerduty_send(&settings, &m).await, Outcome::Delivered);
    let severities: Vec<Value> = fake
        .events()
        .iter()
        .map(|e| e["payload"]["severity"].clone())
        .collect();
    assert_eq!(severities, ["critical", "error", "warning"]);
}

#[tokio::test]
async fn pagerduty_a_dedup_key_too_long_becomes_a_stable_hash_shared_by_trigger_and_resolve() {
    let (fake, settings, _server) = pagerduty_world().await;
    let mut long = asset("orders", Status::Unhealthy);
    long.dedup_key = format!("tributary:acme:{}", "x".repeat(400));
    let firing = message("m1", AlertState::Firing, vec![long.clone()]);
    assert_eq!(pagerduty_send(&settings, &firing).await, Outcome::Delivered);
    let resolution = message("m2", AlertState::Resolved, vec![resolved(long.clone())]);
    assert_eq!(
        pagerduty_send(&settings, &resolution).await,
        Outcome::Delivered
    );
    let events = fake.events();
    let key = events[0]["dedup_key"].as_str().unwrap();
    assert!(
        key.len() <= 255 && key.starts_with("tributary:sha256:"),
        "{key}"
    );
    assert_eq!(events[1]["dedup_key"], key);
    assert!(!fake.alert(key).unwrap().open);
    // Another entity's long key is another key.
    long.dedup_key.push('y');
    assert_ne!(pagerduty::dedup_key(&long), key);
}

#[tokio::test]
async fn pagerduty_refusal_rejects_and_the_rate_limit_backs_off_a_minute() {
    let (fake, settings, server) = pagerduty_world().await;
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Unhealthy)],
    );
    let url = format!("{}{}", server.url(), pd_fake::ENQUEUE_PATH);
    let unknown = PagerDutySettings::new("UNKN0WNKEY000000000000000000000Z", Some(&url)).unwrap();
    match pagerduty_send(&unknown, &m).await {
        Outcome::Reject { reason } => {
            assert!(
                reason.contains("400") && reason.contains("Invalid routing key"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }

    let burst: Vec<Alert> = (0..pd_fake::RATE_LIMIT + 1)
        .map(|i| asset(&format!("t{i}"), Status::Unhealthy))
        .collect();
    let m = message("m2", AlertState::Firing, burst);
    match pagerduty_send(&settings, &m).await {
        Outcome::Retry { after, reason } => {
            assert_eq!(after, Some(pagerduty::RATE_LIMIT_BACKOFF));
            assert!(reason.contains("429"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.events().len(), pd_fake::RATE_LIMIT);
}

#[tokio::test]
async fn pagerduty_events_stay_within_its_limits_whatever_plugins_report() {
    let (fake, settings, _server) = pagerduty_world().await;
    let mut alert = asset(&"n".repeat(100_000), Status::Unhealthy);
    alert.reasons =
        vec![Reason::new(RuleKind::Errors, Status::Unhealthy, "e".repeat(100_000)); 500];
    alert.also_affected = vec![step("system", &"k".repeat(50_000), &"a".repeat(50_000)); 500];
    let m = message(&"i".repeat(100_000), AlertState::Firing, vec![alert]);
    let requests = pagerduty::requests(&settings, &m);
    assert!(requests[0].body().len() <= pagerduty::MAX_BODY);
    assert_eq!(
        pagerduty_send(&settings, &m).await,
        Outcome::Delivered,
        "{:?}",
        fake.refused()
    );
    let summary = fake.events()[0]["payload"]["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(summary.chars().count() <= 1_024);
}

// --- Email -----------------------------------------------------------------

fn email_settings(port: u16, to: &[&str]) -> EmailSettings {
    EmailSettings {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: Security::Plain,
        credentials: None,
        ca_pem: None,
        from: "Tributary <alerts@tributary.example>".into(),
        to: to.iter().map(|s| (*s).to_owned()).collect(),
        timeout: WAIT,
    }
}

#[tokio::test]
async fn email_sends_text_and_html_threaded_by_group_and_a_resend_is_the_same_mail() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let mailer = Mailer::new(&email_settings(smtp.port(), &["data-team@acme.example"])).unwrap();
    let alert = asset("orders", Status::Unhealthy);
    let firing = message(
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        AlertState::Firing,
        vec![alert.clone()],
    );
    assert_eq!(mailer.send(&firing).await, Outcome::Delivered);
    assert_eq!(mailer.send(&firing).await, Outcome::Delivered);
    let resolution = message("msg_2", AlertState::Resolved, vec![resolved(alert)]);
    assert_eq!(mailer.send(&resolution).await, Outcome::Delivered);
    let mails = smtp.wait_for(3, WAIT).await;

    let first = &mails[0];
    assert_eq!(first.mail_from, "alerts@tributary.example");
    assert_eq!(first.rcpt_tos, ["data-team@acme.example"]);
    assert_eq!(
        first.subject,
        "[Tributary] FIRING UNHEALTHY: Acme > Orders > Snowflake > Orders check > orders"
    );
    assert_eq!(first.content_type, "multipart/alternative");
    assert!(first.defects.is_empty(), "{:?}", first.defects);
    assert_eq!(
        first.message_id,
        "<msg_27UH4WbU6Z5A5EzD8u03UvzRbpk@tributary.example>"
    );
    let text = first.text.as_deref().unwrap();
    let html = first.html.as_deref().unwrap();
    assert!(
        text.contains("UNHEALTHY (was HEALTHY) since 2026-05-01 09:58 UTC"),
        "{text}"
    );
    assert!(html.contains("<strong>UNHEALTHY (was HEALTHY)</strong> since 2026-05-01 09:58 UTC"));
    for expected in [
        "Acme &gt; Orders &gt; Snowflake &gt; Orders check &gt; orders",
        "freshness: last update 3h 2m ago",
        "Counts: expected 100, received 88, missing 12, errored 0",
        "Looker dashboards",
    ] {
        assert!(html.contains(expected), "{expected:?} in {html}");
        let plain = expected.replace("&gt;", ">");
        assert!(text.contains(&plain), "{plain:?} in {text}");
    }
    assert!(
        html.contains(r#"<a href="https://tributary.example/assets/orders">"#),
        "{html}"
    );

    // The resend is the same mail: same id, same date, same content.
    let again = &mails[1];
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.header_values("date"), first.header_values("date"));
    assert_eq!(again.text, first.text);

    // The resolution is another mail in the same thread.
    let last = &mails[2];
    assert_ne!(last.message_id, first.message_id);
    assert!(
        last.subject.starts_with("[Tributary] RESOLVED HEALTHY"),
        "{}",
        last.subject
    );
    assert!(!first.references.is_empty());
    assert_eq!(last.references, first.references);
    assert_eq!(last.in_reply_to, first.in_reply_to);
}

#[tokio::test]
async fn email_hostile_names_cannot_add_headers_recipients_or_markup() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let mailer = Mailer::new(&email_settings(smtp.port(), &["data-team@acme.example"])).unwrap();
    let name = "orders\r\nBcc: victim@evil.example\r\nX-Injected: yes\n\
        <script>alert(1)</script><a href=\"https://evil.example\">click</a>";
    let mut alert = asset(name, Status::Unhealthy);
    alert.reasons = vec![Reason::new(RuleKind::Errors, Status::Unhealthy, name)];
    alert.link = Some("javascript:alert(1)".into());
    let mut m = message(
        "id with spaces\r\nX-Evil: 1",
        AlertState::Firing,
        vec![alert],
    );
    m.group_key = name.into();
    m.route = "x".repeat(10_000);
    assert_eq!(mailer.send(&m).await, Outcome::Delivered);
    let mail = &smtp.wait_for(1, WAIT).await[0];

    assert_eq!(mail.rcpt_tos, ["data-team@acme.example"]);
    assert!(mail.defects.is_empty(), "{:?}", mail.defects);
    for header in ["bcc", "x-injected", "x-evil"] {
        assert!(
            mail.header_values(header).is_empty(),
            "{header}: {:?}",
            mail.headers
        );
    }
    assert_eq!(mail.header_values("subject").len(), 1);
    assert!(!mail.subject.contains(['\r', '\n']), "{:?}", mail.subject);
    assert!(mail.subject.chars().count() <= 200, "{}", mail.subject);
    assert!(
        mail.subject.contains("orders  Bcc: victim@evil.example"),
        "{}",
        mail.subject
    );
    assert!(mail.message_id.starts_with("<tributary.") && !mail.message_id.contains(' '));

    let html = mail.html.as_deref().unwrap();
    assert!(
        !html.contains("<script>") && html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("href=\"https://evil.example\""), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
}

#[tokio::test]
async fn email_smtp_answers_are_classified_as_the_module_documents() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Unhealthy)],
    );

    let gone = Mailer::new(&email_settings(smtp.port(), &["gone@acme.example"])).unwrap();
    match gone.send(&m).await {
        Outcome::Reject { reason } => assert!(reason.contains("550"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let busy = Mailer::new(&email_settings(smtp.port(), &["busy@acme.example"])).unwrap();
    match busy.send(&m).await {
        Outcome::Retry { reason, .. } => assert!(reason.contains("451"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A port nobody listens on: taken, then freed.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let down = Mailer::new(&email_settings(closed, &["data-team@acme.example"])).unwrap();
    assert!(matches!(down.send(&m).await, Outcome::Retry { .. }));
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn email_starttls_with_auth_delivers_and_bad_credentials_disable_the_channel() {
    let auth = ("tributary".to_owned(), "s3cret-pass".to_owned());
    let smtp = SmtpServer::start(SmtpOptions {
        starttls: true,
        auth: Some(auth.clone()),
    })
    .await;
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Unhealthy)],
    );
    let mut settings = email_settings(smtp.port(), &["data-team@acme.example"]);
    settings.security = Security::StartTls;
    settings.ca_pem = Some(smtp.ca_pem().expect("a certificate").as_bytes().to_vec());
    settings.credentials = Some(auth);
    assert_eq!(
        Mailer::new(&settings).unwrap().send(&m).await,
        Outcome::Delivered
    );
    let mail = &smtp.wait_for(1, WAIT).await[0];
    assert!(mail.tls && mail.authenticated);

    settings.credentials = Some(("tributary".into(), "wrong".into()));
    match Mailer::new(&settings).unwrap().send(&m).await {
        Outcome::Disable { reason } => {
            assert!(reason.contains("535"), "{reason}");
            assert!(
                !reason.contains("wrong"),
                "the password stays out: {reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{settings:?}").contains("wrong"));
}

#[tokio::test]
async fn email_starttls_required_never_falls_back_to_plain() {
    let plain = SmtpServer::start(SmtpOptions::default()).await;
    let mut settings = email_settings(plain.port(), &["data-team@acme.example"]);
    settings.security = Security::StartTls;
    let m = message(
        "m1",
        AlertState::Firing,
        vec![asset("orders", Status::Unhealthy)],
    );
    assert!(matches!(
        Mailer::new(&settings).unwrap().send(&m).await,
        Outcome::Retry { .. }
    ));
    assert!(plain.received().is_empty());
}

#[test]
fn email_settings_errors_name_the_setting() {
    let mut settings = email_settings(25, &["data-team@acme.example", "data-team.acme.example"]);
    let err = Mailer::new(&settings).unwrap_err().to_string();
    assert!(
        err.starts_with("to: \"data-team.acme.example\" is not an email address"),
        "{err}"
    );
    // One address cannot smuggle a header or a second recipient.
    for sneaky in [
        "a@b.example\r\nBcc: victim@evil.example",
        "a@b.example, victim@evil.example",
    ] {
        settings.to = vec![sneaky.into()];
        let err = Mailer::new(&settings).unwrap_err().to_string();
        assert!(err.starts_with("to: "), "{err}");
    }
    settings.to.clear();
    assert_eq!(
        Mailer::new(&settings).unwrap_err().to_string(),
        "to: no recipient"
    );
    settings.to = vec!["a@b.example".into()];
    settings.security = Security::StartTls;
    settings.ca_pem = Some(b"not pem".to_vec());
    assert!(
        Mailer::new(&settings)
            .unwrap_err()
            .to_string()
            .starts_with("ca_pem:")
    );
}

// --- Any text a plugin can produce -----------------------------------------

fn any_message() -> impl Strategy<Value = Message> {
    let text = || any::<String>();
    (
        prop::collection::vec((text(), text(), text()), 1..60),
        text(),
        text(),
        any::<bool>(),
    )
        .prop_map(|(entities, route, group_key, firing)| {
            let alerts = entities
                .into_iter()
                .map(|(name, reason, key)| {
                    let mut a = asset(&name, Status::Unhealthy);
                    a.reasons = vec![Reason::new(RuleKind::Errors, Status::Unhealthy, reason)];
                    a.dedup_key = key;
                    a.also_affected = vec![step("system", "k", &name)];
                    a
                })
                .collect();
            let state = if firing {
                AlertState::Firing
            } else {
                AlertState::Resolved
            };
            let mut m = message("m", state, alerts);
            m.route = route;
            m.group_key = group_key;
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_text_renders_a_slack_body_slack_takes_without_mentions_or_links(m in any_message()) {
        let posted = slack_fake::validate(slack::body(&m));
        let posted = posted.map_err(TestCaseError::fail)?;
        prop_assert!(posted.mentions.is_empty(), "{:?}", posted.mentions);
        prop_assert!(posted.links.is_empty(), "{:?}", posted.links);
    }

    #[test]
    fn any_text_renders_pagerduty_events_pagerduty_takes(m in any_message()) {
        let settings = PagerDutySettings::new(pd_fake::ROUTING_KEY, None).unwrap();
        let keys = [pd_fake::ROUTING_KEY.to_owned()];
        for request in pagerduty::requests(&settings, &m) {
            let checked = pd_fake::validate(request.body(), &keys);
            prop_assert!(checked.is_ok(), "{:?}", checked);
        }
    }

    #[test]
    fn any_text_renders_a_one_line_subject(m in any_message()) {
        let subject = email::subject(&m);
        prop_assert!(!subject.contains(['\r', '\n']));
        prop_assert!(subject.len() <= email::MAX_SUBJECT);
        let mailer = Mailer::new(&email_settings(25, &["a@b.example"])).unwrap();
        prop_assert!(mailer.email(&m).is_ok());
    }
}

/// An attack by size: a group of 10,000 entities, each with a 1 KiB key
/// (the most a report may carry) and twenty 64 KiB reasons (the most a
/// stored message may be), the first 1 MiB each. Every channel's message
/// stays bounded: the webhook body under 1 MiB, Slack within its limits,
/// the mail text under 256 KiB, PagerDuty one event per listed entity.
#[test]
fn a_huge_group_with_huge_reasons_makes_bounded_messages_on_every_channel() {
    let reasons = |len: usize| -> Vec<Reason> {
        let text = "x".repeat(len);
        (0..20)
            .map(|_| Reason::new(RuleKind::Freshness, Status::Unhealthy, &text))
            .collect()
    };
    let name = "n".repeat(1_024);
    let mut alert = asset(&name, Status::Unhealthy);
    alert.reasons = reasons(64 * 1024);
    let mut first = alert.clone();
    first.reasons = reasons(1 << 20);
    let mut alerts = vec![alert; tributary::alerts::grouping::MAX_LISTED - 1];
    alerts.insert(0, first);
    let mut message = message("msg_big", AlertState::Firing, alerts);
    message.truncated = 9_900;

    let body = tributary::alerts::webhook::payload(&message).to_string();
    assert!(body.len() < 1 << 20, "webhook body {} bytes", body.len());
    assert!(body.contains(r#""truncated_alerts":9900"#));

    let slack_body = slack::body(&message).to_string();
    assert!(
        slack_body.len() < 100_000,
        "slack body {} bytes",
        slack_body.len()
    );
    assert!(slack_body.contains("and 9990 more"), "{slack_body}");

    let text = email::text(&message);
    assert!(text.len() < 256 * 1024, "mail text {} bytes", text.len());

    let pd = PagerDutySettings::new(pd_fake::ROUTING_KEY, None).unwrap();
    let events = pagerduty::events(&pd, &message);
    assert_eq!(events.len(), tributary::alerts::grouping::MAX_LISTED);
    assert!(events.iter().all(|e| e.to_string().len() < 512 * 1024));
}

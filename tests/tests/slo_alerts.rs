//! What SLO figures do to health, alerts and `/metrics` (issue 16): a spent
//! budget is a health reason at the SLO's severity until the bad slices
//! leave the window, a budget level crossed is a WARNING reason whose health
//! event an alert route delivers to a real webhook receiver, a fast burn on
//! hour slices fires at the workbook's factor rescaled to the window, and
//! the figures are Sloth-style gauges. Reports of known counts are pushed
//! on a manual clock into the daemon core, as `tests/slo.rs` does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tributary::clock::ManualClock;
use tributary::events::EventBus;
use tributary::health::{EntityRef, RuleKind, Status};
use tributary::service::Pushed;
use tributary::store::ObservationRow;
use tributary::store::testing::PgScratch;
use tributary_tests::fakes::webhook::{SECRET, WebhookFake};
use tributary_tests::gql::Client;
use tributary_tests::kit::{self, Daemon, config_text, eventually, hex_sha256, webhook_alerts};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

fn at(text: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
}

fn documents() -> EntityRef {
    EntityRef::Asset {
        check: "app".into(),
        asset: "documents".into(),
    }
}

/// Push check `app` (asset `documents` on `ingest`) with `extra` appended,
/// stored in SQLite or at `pg`.
fn config(dir: &std::path::Path, pg: Option<&str>, extra: &str) -> String {
    let mut text = config_text(dir, &[]);
    if let Some(url) = pg {
        let sqlite = format!("url = \"sqlite://{}\"", dir.join("tributary.db").display());
        text = text.replace(&sqlite, &format!("url = \"{url}\""));
    }
    let sha = hex_sha256("trp_app");
    format!(
        "{text}\n[[checks]]\nid = \"app\"\nsystem = \"ingest\"\nconnector = \"push\"\n\n\
         [[checks.push.tokens]]\nname = \"app\"\nsha256 = \"{sha}\"\n{extra}\n"
    )
}

/// A completeness SLO `docs` on `documents` (a drop over 5% is a bad
/// slice, a slice without reports good) with `fields`.
fn docs_slo(fields: &str) -> String {
    format!(
        "\n[[slos]]\nname = \"docs\"\ncheck = \"app\"\nasset = \"documents\"\n\
         indicator = \"completeness\"\nmax_drop = \"5%\"\nno_data = \"good\"\n{fields}\n"
    )
}

struct Core {
    d: Daemon,
    api: String,
    clock: Arc<ManualClock>,
    pushes: usize,
}

impl Core {
    async fn start(dir: tempfile::TempDir, text: &str, clock: Arc<ManualClock>) -> Core {
        let d = kit::start(dir, text, clock.clone(), EventBus::default()).await;
        let api = d.serve_api().await;
        Core {
            d,
            api,
            clock,
            pushes: 0,
        }
    }

    /// A report at `when` (the clock set there) that `documents` had
    /// `received` rows.
    async fn push(&mut self, when: SystemTime, received: u64) {
        self.clock.set(when);
        self.pushes += 1;
        self.d
            .service
            .accept_push(Pushed {
                check: "app".into(),
                run_id: format!("report-{}-{}", self.pushes, to_secs(when)),
                at: when,
                observations: vec![ObservationRow {
                    asset: "documents".into(),
                    kind: "upload".into(),
                    received: Some(received),
                    ..ObservationRow::default()
                }],
                ids: BTreeMap::new(),
            })
            .await
            .unwrap();
    }

    /// Waits until `documents` is at `status` with exactly the SLO reasons
    /// `slo` (their messages).
    async fn wait_for(&self, status: Status, slo: &[&str]) {
        eventually(&format!("documents at {status} for {slo:?}"), || async {
            let h = self.d.store.health(&documents()).await.ok()??;
            let shown: Vec<&str> = h
                .state
                .reasons
                .iter()
                .filter(|r| r.rule == RuleKind::Slo)
                .map(|r| r.message.as_str())
                .collect();
            (h.state.status == status && shown == slo).then_some(())
        })
        .await;
    }

    /// The scrape once it shows `series` (the writer sets the SLO gauges
    /// as it starts).
    async fn metrics_with(&self, series: &str) -> String {
        eventually(&format!("{series} in /metrics"), || async {
            let text = reqwest::get(format!("{}/metrics", self.api))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains(series).then_some(text)
        })
        .await
    }

    /// The asset's health as GraphQL shows it.
    async fn graphql_health(&self) -> Value {
        let answer = Client::new(self.api.clone())
            .query(
                Some("admin-token"),
                "{ check(key: \"app\") { health { status reasons { rule status message childId } } \
                 assets { nodes { health { status reasons { rule status message } } } } } }",
                json!({}),
            )
            .await;
        answer.data()["check"].clone()
    }

    async fn restart(self, text: &str) -> Core {
        let (clock, pushes) = (self.clock.clone(), self.pushes);
        self.d.service.stop(Duration::from_secs(5)).await;
        self.d.store.close().await;
        let mut again = Core::start(self.d.dir, text, clock).await;
        again.pushes = pushes;
        again
    }
}

fn to_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

/// The value of the series `name{labels}` in a scrape.
fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

const DOCS: &str = "slo=\"docs\",entity_kind=\"asset\",entity=\"app:documents\"";

/// 4 days at 80%: a budget of 0.8 day, so one bad day spends it. Day 1
/// drops 10% (bad); on day 2 the window (days -2..1) is 3 good of 4.
async fn spent_and_recovered(pg: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        pg.as_deref(),
        &docs_slo("slice = \"1d\"\nwindow = \"4d\"\ntarget = 0.8\nseverity = \"UNHEALTHY\""),
    );
    let day0 = at("2026-03-10T00:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(day0);
    let mut c = Core::start(dir, &text, clock).await;
    c.push(day0 + 10 * HOUR, 1000).await;
    c.push(day0 + DAY + 10 * HOUR, 900).await;
    c.wait_for(Status::Healthy, &[]).await;
    c.push(day0 + 2 * DAY + 10 * HOUR, 900).await;
    let spent = "slo docs: budget spent, 75% < 80% over 4d".to_owned();
    c.wait_for(Status::Unhealthy, &[&spent]).await;

    // GraphQL shows it on the asset, and rolled up on its check.
    let check = c.graphql_health().await;
    let asset = &check["assets"]["nodes"][0]["health"];
    assert_eq!(asset["status"], "UNHEALTHY", "{check}");
    assert_eq!(
        asset["reasons"],
        json!([{ "rule": "SLO", "status": "UNHEALTHY", "message": spent }])
    );
    assert_eq!(check["health"]["status"], "UNHEALTHY", "{check}");
    assert_eq!(check["health"]["reasons"][0]["rule"], "SLO", "{check}");

    // One health event, the one alert routes see.
    let events = c.d.events_of(&documents()).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.from, last.to),
        (Some(Status::Healthy), Status::Unhealthy)
    );
    assert_eq!(last.reasons[0].message, spent);

    // The gauges, by hand: 3 of 4 good; budget 0.8, 1 spent; over the
    // last day 1 bad of 1, over three days 1 of 3, over (1 - 0.8).
    let m = c.metrics_with("tributary_slo_attainment_ratio{").await;
    let value = |name: &str| series(&m, name, DOCS).unwrap_or_else(|| panic!("{name} in {m}"));
    assert!((value("tributary_slo_objective_ratio") - 0.8).abs() < 1e-9);
    assert!((value("tributary_slo_attainment_ratio") - 0.75).abs() < 1e-9);
    assert!((value("tributary_slo_error_budget_remaining_ratio") - (-0.2 / 0.8)).abs() < 1e-9);
    let burn = |lookback: &str| {
        series(
            &m,
            "tributary_slo_burn_rate",
            &format!("{DOCS},lookback=\"{lookback}\""),
        )
    };
    assert!((burn("1d").unwrap() - 1.0 / 0.2).abs() < 1e-9, "{m}");
    assert!(
        (burn("3d").unwrap() - (1.0 / 3.0) / 0.2).abs() < 1e-9,
        "{m}"
    );
    assert_eq!(burn("1h"), None, "no hour lookback on day slices");

    // A restart keeps the reason and announces nothing again.
    let mut c = c.restart(&text).await;
    c.wait_for(Status::Unhealthy, &[&spent]).await;
    assert_eq!(c.d.events_of(&documents()).await.len(), events.len());
    let m = c.metrics_with("tributary_slo_attainment_ratio{").await;
    assert!((series(&m, "tributary_slo_attainment_ratio", DOCS).unwrap() - 0.75).abs() < 1e-9);

    // Day 5: the window is days 1-4, day 1 still in it. Day 6: it left.
    c.push(day0 + 5 * DAY + 10 * HOUR, 900).await;
    c.wait_for(Status::Unhealthy, &[&spent]).await;
    c.push(day0 + 6 * DAY + 10 * HOUR, 900).await;
    c.wait_for(Status::Healthy, &[]).await;
    let events = c.d.events_of(&documents()).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.from, last.to),
        (Some(Status::Unhealthy), Status::Healthy)
    );
    c.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_is_a_reason_at_its_severity_until_the_bad_day_leaves_the_window() {
    spent_and_recovered(None).await;
    let pg = PgScratch::new("slo_alerts").await.unwrap();
    spent_and_recovered(Some(pg.url.clone())).await;
    pg.drop_schema().await.unwrap();
}

/// 10 days at 80%: a budget of 2 days; one bad day leaves 50%, the
/// `budget_alerts` level. The route sends asset changes to a Standard
/// Webhooks receiver on 127.0.0.1. Times are today's: the receiver checks
/// the signature's timestamp against its own clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_level_crossed_is_delivered_by_an_alert_route() {
    let hook = WebhookFake::new(&[SECRET]);
    let receiver = hook.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("hook.secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let secret = format!("{{ file = \"{}\" }}", secret_file.display());
    let alerts = webhook_alerts(
        &receiver.url(),
        &secret,
        "assets",
        "asset",
        "group_wait = \"0s\"",
    );
    let text = config(
        dir.path(),
        None,
        &(docs_slo(
            "slice = \"1d\"\nwindow = \"10d\"\ntarget = 0.8\nbudget_alerts = [\"50%\", \"0%\"]",
        ) + &alerts),
    );
    let now = SystemTime::now();
    let today = SystemTime::UNIX_EPOCH + DAY * u32::try_from(to_secs(now) / 86_400).unwrap();
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(today - 2 * DAY);
    let mut c = Core::start(dir, &text, clock).await;
    c.push(today - 2 * DAY + HOUR, 1000).await;
    c.push(today - DAY + HOUR, 900).await;
    c.push(now, 900).await;
    let left = "slo docs: 50% of budget left, at or under 50% (90% for 80% over 10d)";
    c.wait_for(Status::Warning, &[left]).await;
    let taken = eventually("the webhook delivery", || async {
        hook.taken()
            .into_iter()
            .find(|t| t.body.to_string().contains("slo docs"))
    })
    .await;
    assert_eq!(taken.state(), "firing");
    assert!(taken.body.to_string().contains(left), "{}", taken.body);
    assert!(hook.refused().is_empty(), "{:?}", hook.refused());
    c.d.service.stop(Duration::from_secs(5)).await;
}

/// 20 days at 80%: a budget of 4 days, `budget_alerts` at 75% and 25%.
/// The first bad day leaves 75% (HEALTHY to WARNING); the second 50%, the
/// same level, only the reason's text changes; the third 25%, a lower
/// level while already WARNING: one more event, from WARNING to WARNING
/// with the new reason, which alert routes tell as a new one (issue 16
/// item 4: each threshold raises its event).
async fn each_level_raises_its_event(pg: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        pg.as_deref(),
        &docs_slo(
            "slice = \"1d\"\nwindow = \"20d\"\ntarget = 0.8\nbudget_alerts = [\"75%\", \"25%\"]",
        ),
    );
    let day0 = at("2026-03-10T00:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(day0);
    let mut c = Core::start(dir, &text, clock).await;
    let day = |d: u32| day0 + d * DAY + 10 * HOUR;
    c.push(day(0), 1000).await;
    c.push(day(1), 900).await;
    // Day 1 dropped 10%: bad. 19 of 20 good; 3 of the 4 days left.
    c.push(day(2), 800).await;
    c.wait_for(
        Status::Warning,
        &["slo docs: 75% of budget left, at or under 75% (95% for 80% over 20d)"],
    )
    .await;
    let events = c.d.events_of(&documents()).await;
    let first = events.last().unwrap();
    assert_eq!(
        (first.from, first.to),
        (Some(Status::Healthy), Status::Warning)
    );
    let first_seq = first.seq;
    // Day 2 dropped 11%: 50% left, still under 75% only: no event.
    c.push(day(3), 700).await;
    c.wait_for(
        Status::Warning,
        &["slo docs: 50% of budget left, at or under 75% (90% for 80% over 20d)"],
    )
    .await;
    assert_eq!(c.d.events_of(&documents()).await.len(), events.len());
    // Day 3 dropped 12.5%: 25% left, under the 25% level: announced.
    c.push(day(4), 700).await;
    let lower = "slo docs: 25% of budget left, at or under 25% (85% for 80% over 20d)";
    c.wait_for(Status::Warning, &[lower]).await;
    let later: Vec<_> =
        c.d.events_of(&documents())
            .await
            .into_iter()
            .filter(|e| e.seq > first_seq)
            .collect();
    assert_eq!(later.len(), 1, "{later:?}");
    let again = &later[0];
    assert_eq!(
        (again.from, again.to),
        (Some(Status::Warning), Status::Warning)
    );
    assert!(
        again.reasons.iter().any(|r| r.message == lower),
        "{:?}",
        again.reasons
    );
    // A restart announces nothing again.
    let c = c.restart(&text).await;
    c.wait_for(Status::Warning, &[lower]).await;
    let after = c.d.events_of(&documents()).await;
    assert_eq!(after.last().map(|e| e.seq), Some(again.seq));
    c.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_budget_level_raises_its_event_even_while_already_warning() {
    each_level_raises_its_event(None).await;
    let pg = PgScratch::new("slo_levels").await.unwrap();
    each_level_raises_its_event(Some(pg.url.clone())).await;
    pg.drop_schema().await.unwrap();
}

/// 20 days of hour slices at 99%: 4.8 slices of budget. One bad hour is a
/// burn of 100x over 1h; the page condition (2% of the budget in 1h)
/// rescaled to 480 hours is 0.02 x 480 / 1 = 9.6x.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_burn_on_hour_slices_fires_at_the_rescaled_factor() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        None,
        &docs_slo("slice = \"1h\"\nwindow = \"20d\"\ntarget = 0.99\nburn_alerts = true"),
    );
    let h0 = at("2026-04-01T08:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(h0);
    let mut c = Core::start(dir, &text, clock).await;
    c.push(h0 + Duration::from_secs(600), 1000).await;
    c.push(h0 + HOUR + Duration::from_secs(600), 900).await;
    c.push(h0 + 2 * HOUR + Duration::from_secs(600), 900).await;
    let factor = 0.02 * 480.0 / 1.0;
    let burn = 1.0 / (1.0 - 0.99);
    let expected = format!(
        "slo docs: burning {burn:.1}x over 1h, at least {factor:.1}x (page: 2% of the 20d budget in 1h)"
    );
    c.wait_for(Status::Warning, &[&expected]).await;
    let m = c.metrics_with("lookback=\"1h\"").await;
    let rate = series(
        &m,
        "tributary_slo_burn_rate",
        &format!("{DOCS},lookback=\"1h\""),
    );
    assert!((rate.unwrap() - burn).abs() < 1e-6, "{m}");
    // The next hour is good: the 1h burn is 0, so neither page condition
    // holds; the ticket one (10% of the budget in 3d, 0.1 x 480 / 72 =
    // 0.67x) does: 1 bad hour of 72 is 1.39x, 1 of 6 is 16.7x.
    c.push(h0 + 3 * HOUR + Duration::from_secs(600), 900).await;
    let (three_days, six_hours) = ((1.0 / 72.0) / 0.01, (1.0 / 6.0) / 0.01);
    let ticket = 0.1 * 480.0 / 72.0;
    let expected = format!(
        "slo docs: burning {three_days:.1}x over 3d and {six_hours:.1}x over 6h, at least \
         {ticket:.1}x (ticket: 10% of the 20d budget in 3d)"
    );
    c.wait_for(Status::Warning, &[&expected]).await;
    c.d.service.stop(Duration::from_secs(5)).await;
}

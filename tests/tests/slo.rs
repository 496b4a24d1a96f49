//! SLOs end to end (issue 16): reports of known counts pushed at chosen
//! times on a manual clock, slices judged and stored as they arrive, and the
//! figures read through GraphQL as a user sees them, each checked against a
//! hand computation written here. On SQLite and Postgres.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary::clock::ManualClock;
use tributary::events::EventBus;
use tributary::service::Pushed;
use tributary::store::ObservationRow;
use tributary::store::testing::PgScratch;
use tributary_tests::gql::Client;
use tributary_tests::kit::{self, Daemon, config_text};

const DAY: Duration = Duration::from_secs(86_400);

fn at(text: &str) -> SystemTime {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().into()
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

#[track_caller]
fn assert_close(v: &Value, expected: f64, what: &str) {
    assert!(close(v, expected), "{what}: {v} vs {expected}");
}

/// The time a GraphQL `DateTime` names.
fn time_of(v: &Value) -> SystemTime {
    at(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
}

/// The config: push check `app` (asset `documents` on `ingest`), `slos`
/// and `extra` appended, stored in SQLite or at `pg`.
fn config(dir: &std::path::Path, pg: Option<&str>, extra: &str) -> String {
    let mut text = config_text(dir, &[]);
    if let Some(url) = pg {
        let sqlite = format!("url = \"sqlite://{}\"", dir.join("tributary.db").display());
        text = text.replace(&sqlite, &format!("url = \"{url}\""));
    }
    let sha: String = Sha256::digest(b"trp_app")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    text.push_str(&format!(
        r#"
[[checks]]
id = "app"
system = "ingest"
connector = "push"

[[checks.push.tokens]]
name = "app"
sha256 = "{sha}"
{extra}
"#
    ));
    text
}

/// A daemon on the manual `clock` with its API served.
struct Served {
    d: Daemon,
    api: Client,
    clock: Arc<ManualClock>,
    pushes: usize,
}

impl Served {
    async fn start(dir: tempfile::TempDir, text: &str, clock: Arc<ManualClock>) -> Served {
        let d = kit::start(dir, text, clock.clone(), EventBus::default()).await;
        let api = Client::new(d.serve_api().await);
        Served {
            d,
            api,
            clock,
            pushes: 0,
        }
    }

    /// Stops the daemon and starts it again on the same database.
    async fn restart(self, text: &str) -> Served {
        let pushes = self.pushes;
        let clock = self.clock.clone();
        self.d.service.stop(Duration::from_secs(5)).await;
        self.d.store.close().await;
        let mut again = Served::start(self.d.dir, text, clock).await;
        again.pushes = pushes;
        again
    }

    /// A report that `documents` had `received` rows at `when`; the clock
    /// shows `now` (a late report is older than now).
    async fn push(&mut self, when: SystemTime, now: SystemTime, received: u64) {
        let row = ObservationRow {
            received: Some(received),
            ..ObservationRow::default()
        };
        self.report(when, now, row).await;
    }

    /// A report of `documents` saying `row` (its asset and kind filled in).
    async fn report(&mut self, when: SystemTime, now: SystemTime, row: ObservationRow) {
        self.report_to("app", "documents", when, now, row).await;
    }

    /// A report to push check `check` of `asset` saying `row`.
    async fn report_to(
        &mut self,
        check: &str,
        asset: &str,
        when: SystemTime,
        now: SystemTime,
        row: ObservationRow,
    ) {
        self.clock.set(now);
        self.pushes += 1;
        self.d
            .service
            .accept_push(Pushed {
                check: check.into(),
                run_id: format!("report-{}", self.pushes),
                at: when,
                observations: vec![ObservationRow {
                    asset: asset.into(),
                    kind: "upload".into(),
                    ..row
                }],
                ids: BTreeMap::new(),
            })
            .await
            .unwrap();
    }

    /// Reloads the config from `text`, as `reloadConfig` does.
    async fn reload(&self, text: &str) {
        std::fs::write(&self.d.config_file, text).unwrap();
        let answer = self
            .api
            .query(
                Some("admin-token"),
                "mutation { reloadConfig { userErrors { message } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            answer.data()["reloadConfig"]["userErrors"],
            json!([]),
            "{}",
            answer.text
        );
    }

    /// The root `slos` of `slo`: (asset key, figures), worst first.
    async fn listed(&self, slo: &str) -> Vec<(String, Value)> {
        let answer = self
            .api
            .query(
                Some("admin-token"),
                &format!("query($slo: String) {{ slos(slo: $slo, worst: 100) {{ {FIGURES} }} }}"),
                json!({ "slo": slo }),
            )
            .await;
        answer.data()["slos"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", answer.text))
            .iter()
            .map(|f| {
                (
                    f["entity"]["key"].as_str().unwrap_or("").to_owned(),
                    f.clone(),
                )
            })
            .collect()
    }

    /// Waits (up to 20 s) until the root `slos` of `slo` lists exactly
    /// `assets`, in that order (the writer tells the store what a reload or
    /// a start covers after it takes the config); returns their figures.
    async fn listed_as(&self, slo: &str, assets: &[&str]) -> Vec<Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let listed = self.listed(slo).await;
            let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
            if keys == assets {
                return listed.into_iter().map(|(_, f)| f).collect();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{slo} lists {keys:?}, not {assets:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `slo`'s figures for `documents`, from the asset's `slos`.
    async fn figures(&self, slo: &str) -> Value {
        let answer = self
            .api
            .query(
                Some("admin-token"),
                &format!(
                    "query($slo: String) {{ check(key: \"app\") {{ assets {{ nodes {{ \
                     slos(slo: $slo) {{ {FIGURES} }} }} }} }} }}"
                ),
                json!({ "slo": slo }),
            )
            .await;
        let all = answer.data()["check"]["assets"]["nodes"][0]["slos"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", answer.text))
            .clone();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    }

    /// The root `slos` as `token` sees them, of `tenant` when given.
    async fn root(&self, token: &str, tenant: Option<&str>) -> Vec<Value> {
        let answer = self
            .api
            .query(
                Some(token),
                &format!("query($t: String) {{ slos(tenant: $t) {{ {FIGURES} }} }}"),
                json!({ "t": tenant }),
            )
            .await;
        answer.data()["slos"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", answer.text))
            .clone()
    }

    /// The one entity the root `slos` lists for `slo`: its figures and its
    /// slices starting in `[from, to)`.
    async fn root_slices(&self, slo: &str, from: &str, to: &str) -> (Value, Vec<Value>) {
        let answer = self
            .api
            .query(
                Some("admin-token"),
                &format!(
                    "query($slo: String, $from: DateTime, $to: DateTime) {{ slos(slo: $slo) {{ \
                     {FIGURES} slices(from: $from, to: $to) {{ start state good total reason }} }} }}"
                ),
                json!({ "slo": slo, "from": from, "to": to }),
            )
            .await;
        let all = answer.data()["slos"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", answer.text))
            .clone();
        assert_eq!(all.len(), 1, "{all:?}");
        let slices = all[0]["slices"].as_array().unwrap().clone();
        (all[0].clone(), slices)
    }

    /// `slo`'s slices for `documents` starting in `[from, to)`, through the
    /// asset's own `slos`.
    async fn slices(&self, slo: &str, from: &str, to: &str) -> Vec<Value> {
        let answer = self
            .api
            .query(
                Some("admin-token"),
                "query($slo: String, $from: DateTime, $to: DateTime) { check(key: \"app\") { \
                 assets { nodes { key slos(slo: $slo) { name \
                 slices(from: $from, to: $to) { start end state good total reason } } } } } }",
                json!({ "slo": slo, "from": from, "to": to }),
            )
            .await;
        let assets = answer.data()["check"]["assets"]["nodes"].clone();
        assert_eq!(assets[0]["key"], "documents", "{assets}");
        let slos = assets[0]["slos"].as_array().unwrap().clone();
        assert_eq!(slos.len(), 1, "{slos:?}");
        slos[0]["slices"].as_array().unwrap().clone()
    }
}

/// The fields of an `SloStatus` the tests read.
const FIGURES: &str = "name window slice timeZone windowStart windowEnd attainment \
    budgetTotal budgetSpent budgetRemaining budgetRemainingRatio burnRates { lookback rate } \
    exhaustsAt exhausted goodSlices badSlices noDataSlices excludedSlices \
    entity { id ... on Asset { key } }";

/// Whether two times are within a second (figures give times from
/// fractional hours).
#[track_caller]
fn assert_near(a: SystemTime, b: SystemTime) {
    let gap = a.max(b).duration_since(a.min(b)).unwrap();
    assert!(gap < Duration::from_secs(1), "{a:?} vs {b:?}");
}

/// Runs `scenario` on SQLite (`None`), then on a fresh schema of the test
/// Postgres (its URL).
async fn on_both<F, Fut>(prefix: &str, scenario: F)
where
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    scenario(None).await;
    let pg = PgScratch::new(prefix).await.unwrap();
    scenario(Some(pg.url.clone())).await;
    pg.drop_schema().await.unwrap();
}

/// A `[[slos]]` entry named `name` on asset `documents` of `app`, with
/// `fields`.
fn documents_slo(name: &str, fields: &str) -> String {
    format!("\n[[slos]]\nname = \"{name}\"\ncheck = \"app\"\nasset = \"documents\"\n{fields}\n")
}

/// Good, bad, no-data and excluded slices of a status.
fn slice_counts(f: &Value) -> [i64; 4] {
    ["goodSlices", "badSlices", "noDataSlices", "excludedSlices"]
        .map(|k| f[k].as_i64().unwrap_or_else(|| panic!("{k} in {f}")))
}

fn burn(f: &Value, lookback: &str) -> Option<f64> {
    f["burnRates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["lookback"] == lookback)
        .and_then(|b| b["rate"].as_f64())
}

/// Two completeness SLOs over 20 days at 80%, with the default policies
/// and with no data good and maintenance bad; a maintenance window on
/// 23 March.
fn twenty_days() -> String {
    let rows = "indicator = \"completeness\"\nmax_drop = \"5%\"\nwindow = \"20d\"\ntarget = 0.8";
    documents_slo("rows", rows)
        + &documents_slo(
            "rows-lenient",
            &format!("{rows}\nno_data = \"good\"\nmaintenance = \"bad\""),
        )
        + r#"
[[maintenance]]
name = "upgrade"
reason = "ingest upgrade"
start = 2026-03-23T10:00:00Z
end = 2026-03-23T11:00:00Z
check = "app"
"#
}

/// Thirty days of daily counts from 1 March 2026 (day 0): 1000 rows a day,
/// 900 on days 5, 12 and 28 (a 10% drop: bad), no report on day 20, and
/// day 22 (23 March) under a maintenance window for an hour. The daemon
/// restarts after day 15. On 31 March at 06:00 the 20-day window is days
/// 10-29 (11-30 March).
async fn thirty_days(pg: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), pg.as_deref(), &twenty_days());
    let day0 = at("2026-03-01T12:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(day0);
    let mut s = Served::start(dir, &text, clock.clone()).await;
    for d in 0..30u32 {
        if d == 20 {
            continue;
        }
        let when = day0 + DAY * d;
        let received = if [5, 12, 28].contains(&d) { 900 } else { 1000 };
        s.push(when, when, received).await;
        if d == 15 {
            // Restart in the middle: the figures read the same after.
            s.clock.set(when + Duration::from_secs(3600));
            let before = (s.figures("rows").await, s.figures("rows-lenient").await);
            s = s.restart(&text).await;
            let after = (s.figures("rows").await, s.figures("rows-lenient").await);
            assert_eq!(before, after, "figures changed across a restart");
        }
    }
    let now = at("2026-03-31T06:00:00Z");
    let window_end = at("2026-03-31T00:00:00Z");
    s.clock.set(now);

    // rows: days 12 and 28 bad, day 20 no data (counts bad), day 22
    // excluded (left out). 16 good of 19 counted; the budget is 20% of the
    // 19 slices not left out: 3.8, of which 3 are spent.
    let f = s.figures("rows").await;
    assert_eq!(f["name"], "rows");
    assert_eq!(f["window"], "20d");
    assert_eq!(f["slice"], "1d");
    assert_eq!(f["timeZone"], "UTC");
    assert_eq!(f["entity"]["key"], "documents");
    assert_eq!(time_of(&f["windowStart"]), at("2026-03-11T00:00:00Z"));
    assert_eq!(time_of(&f["windowEnd"]), window_end);
    assert_eq!(slice_counts(&f), [16, 2, 1, 1]);
    assert_close(&f["attainment"], 16.0 / 19.0, "attainment");
    assert_close(&f["budgetTotal"], 0.2 * 19.0, "budget total");
    assert_close(&f["budgetSpent"], 3.0, "budget spent");
    assert_close(&f["budgetRemaining"], 0.2 * 19.0 - 3.0, "budget remaining");
    assert_close(
        &f["budgetRemainingRatio"],
        (0.2 * 19.0 - 3.0) / (0.2 * 19.0),
        "remaining ratio",
    );
    // Day slices: no 1h or 6h burn. The last day (29) was good; of the
    // last three (27-29) one was bad: (1/3) / 0.2.
    assert_eq!(burn(&f, "1h"), None);
    assert_eq!(burn(&f, "6h"), None);
    assert!((burn(&f, "1d").unwrap() - 0.0).abs() < 1e-9, "{f}");
    assert!(
        (burn(&f, "3d").unwrap() - (1.0 / 3.0) / 0.2).abs() < 1e-9,
        "{f}"
    );
    // One bad slice in 72 hours: the 0.8 slices left last 57.6 hours.
    assert_eq!(f["exhausted"], false);
    let runs_out = window_end + Duration::from_secs_f64(0.8 * 72.0 * 3600.0);
    assert_near(time_of(&f["exhaustsAt"]), runs_out);

    // rows-lenient: no data counts good, maintenance bad. 17 good of 20;
    // a budget of 4, 3 spent; at one bad slice in 72 hours, 72 hours left.
    let f = s.figures("rows-lenient").await;
    assert_eq!(slice_counts(&f), [16, 2, 1, 1]);
    assert_close(&f["attainment"], 17.0 / 20.0, "lenient attainment");
    assert_close(&f["budgetTotal"], 4.0, "lenient budget total");
    assert_close(&f["budgetRemaining"], 1.0, "lenient remaining");
    assert_close(&f["budgetRemainingRatio"], 0.25, "lenient ratio");
    assert_near(time_of(&f["exhaustsAt"]), window_end + 3 * DAY);

    // The root lists both, the least budget left first (rows: 0.8 of 3.8,
    // lenient: 1 of 4), for the tenant
    // and an admin; another tenant's token sees none of them.
    let root = s.root("admin-token", Some("acme")).await;
    let names: Vec<&Value> = root.iter().map(|f| &f["name"]).collect();
    assert_eq!(names, [&json!("rows"), &json!("rows-lenient")]);
    assert_eq!(root[0]["entity"]["key"], "documents");
    assert!(s.root("admin-token", Some("globex")).await.is_empty());
    assert!(s.root("globex-viewer-token", None).await.is_empty());
    assert_eq!(s.root("acme-admin-token", None).await.len(), 2);

    // The slices say why.
    let slices = s
        .slices("rows", "2026-03-12T00:00:00Z", "2026-03-14T00:00:00Z")
        .await;
    assert_eq!(slices.len(), 2, "{slices:?}");
    assert_eq!(time_of(&slices[0]["start"]), at("2026-03-12T00:00:00Z"));
    assert_eq!(time_of(&slices[0]["end"]), at("2026-03-13T00:00:00Z"));
    assert_eq!(slices[0]["state"], "GOOD");
    assert_eq!(slices[1]["state"], "BAD");
    assert_eq!(
        slices[1]["reason"],
        "count 900 dropped 10.0% from 1000 (max 5%)"
    );
    let around = s
        .slices("rows", "2026-03-21T00:00:00Z", "2026-03-24T00:00:00Z")
        .await;
    let states: Vec<&Value> = around.iter().map(|s| &s["state"]).collect();
    assert_eq!(
        states,
        [&json!("NO_DATA"), &json!("GOOD"), &json!("EXCLUDED")]
    );
    assert_eq!(around[2]["reason"], "maintenance window upgrade");

    // Late data: the missing report of day 20 arrives (its slice turns
    // good), and a report of day 15 at 18:00 says 500 rows (its slice
    // turns bad: half of the latest count).
    s.push(day0 + DAY * 20, now, 1000).await;
    s.push(day0 + DAY * 15 + Duration::from_secs(6 * 3600), now, 500)
        .await;
    let f = s.figures("rows").await;
    assert_eq!(slice_counts(&f), [16, 3, 0, 1]);
    assert_close(&f["attainment"], 16.0 / 19.0, "attainment after late data");
    assert_close(&f["budgetSpent"], 3.0, "spent after late data");
    let late = s
        .slices("rows", "2026-03-16T00:00:00Z", "2026-03-22T00:00:00Z")
        .await;
    assert_eq!(late.len(), 6);
    assert_eq!(late[0]["state"], "BAD");
    assert_eq!(
        (&late[0]["good"], &late[0]["total"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(
        late[0]["reason"],
        "count 500 dropped 50.0% from 1000 (max 5%)"
    );
    assert_eq!(late[5]["state"], "GOOD");

    // rows-lenient: 16 good, 3 bad and the maintenance day bad: 16 of 20,
    // the budget of 4 all spent.
    let f = s.figures("rows-lenient").await;
    assert_close(&f["attainment"], 0.8, "lenient attainment after late data");
    assert_close(
        &f["budgetRemaining"],
        0.0,
        "lenient remaining after late data",
    );
    assert_eq!(f["exhausted"], true);
    assert_eq!(f["exhaustsAt"], Value::Null);

    // Retention keeps the longest window: the slices of days 0-9 (before
    // 11 March), of both SLOs, go; the figures stay.
    let before = s.figures("rows").await;
    let config = s.d.service.loaded().config.clone();
    let keep = tributary::slo::keep_slices_from(&config.slos, tributary::store::to_ms(now));
    assert_eq!(
        keep,
        Some(tributary::store::to_ms(at("2026-03-11T00:00:00Z")))
    );
    assert_eq!(s.d.store.prune_slices(keep.unwrap()).await.unwrap(), 20);
    assert_eq!(s.figures("rows").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_of_slices_give_the_hand_computed_figures_on_sqlite_and_postgres() {
    on_both("slo_thirty", thirty_days).await;
}

/// Completeness over the calendar month in Berlin, no data left out.
fn berlin_month_slo() -> String {
    documents_slo(
        "rows-month",
        "indicator = \"completeness\"\nmax_drop = \"5%\"\nwindow = \"month\"\n\
         timezone = \"Europe/Berlin\"\ntarget = 0.9\nno_data = \"excluded\"",
    )
}

/// October 2026 in Berlin: 31 days, the 25th 25 hours long (summer time
/// ends). Daily reports from the 20th, the 27th a 10% drop.
async fn berlin_month(pg: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), pg.as_deref(), &berlin_month_slo());
    let first = at("2026-10-20T12:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(first);
    let mut s = Served::start(dir, &text, clock).await;
    for d in 0..12u32 {
        let when = first + DAY * d;
        s.push(when, when, if d == 7 { 900 } else { 1000 }).await;
    }
    // 23:30 on 31 October in Berlin: 1-30 October judged, 20-30 with data
    // (one bad), 1-19 without (left out). The budget is 10% of the 12
    // slices of the month not left out.
    s.clock.set(at("2026-10-31T22:30:00Z"));
    let f = s.figures("rows-month").await;
    assert_eq!(f["window"], "1M");
    assert_eq!(f["timeZone"], "Europe/Berlin");
    assert_eq!(time_of(&f["windowStart"]), at("2026-10-01T00:00:00+02:00"));
    assert_eq!(time_of(&f["windowEnd"]), at("2026-11-01T00:00:00+01:00"));
    assert_eq!(slice_counts(&f), [10, 1, 19, 0]);
    assert_close(&f["attainment"], 10.0 / 11.0, "october attainment");
    assert_close(&f["budgetTotal"], 0.1 * 12.0, "october budget");
    assert_close(&f["budgetRemaining"], 0.1 * 12.0 - 1.0, "october remaining");
    // The day summer time ends is one slice of 25 hours.
    let dst = s
        .slices(
            "rows-month",
            "2026-10-25T00:00:00+02:00",
            "2026-10-26T00:00:00+01:00",
        )
        .await;
    assert_eq!(dst.len(), 1, "{dst:?}");
    assert_eq!(time_of(&dst[0]["start"]), at("2026-10-24T22:00:00Z"));
    assert_eq!(time_of(&dst[0]["end"]), at("2026-10-25T23:00:00Z"));
    assert_eq!(dst[0]["state"], "GOOD");

    // An hour later it is November in Berlin (still October in UTC): a new
    // month, nothing judged, the whole budget of 30 days left; a report
    // now falls in 1 November.
    let november = at("2026-10-31T23:30:00Z");
    s.push(november, november, 1000).await;
    let f = s.figures("rows-month").await;
    assert_eq!(time_of(&f["windowStart"]), at("2026-11-01T00:00:00+01:00"));
    assert_eq!(time_of(&f["windowEnd"]), at("2026-12-01T00:00:00+01:00"));
    assert_eq!(f["attainment"], Value::Null);
    assert_eq!(f["goodSlices"], 0);
    assert_close(&f["budgetTotal"], 0.1 * 30.0, "november budget");
    assert_close(&f["budgetRemainingRatio"], 1.0, "november ratio");
    // 31 October kept its one report (12:00 UTC); the one at 23:30 UTC is
    // November's.
    let last = s
        .slices(
            "rows-month",
            "2026-10-31T00:00:00+01:00",
            "2026-11-01T00:00:00+01:00",
        )
        .await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(
        (&last[0]["state"], &last[0]["total"]),
        (&json!("GOOD"), &json!(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_month_in_berlin_crosses_the_dst_change_and_the_month_end_on_both_backends() {
    on_both("slo_month", berlin_month).await;
}

/// Freshness by 06:00 over 5 days at 50%, and at most 2 hours old over
/// 24 hourly slices at 90%.
fn freshness_slos() -> String {
    documents_slo(
        "fresh-by-six",
        "indicator = \"freshness\"\ndeadline = \"06:00\"\nwindow = \"5d\"\ntarget = 0.5",
    ) + &documents_slo(
        "fresh-hourly",
        "indicator = \"freshness\"\nmax_age = \"2h\"\nslice = \"1h\"\nwindow = \"24h\"\n\
         target = 0.9",
    )
}

/// Freshness by a deadline and by a maximum age, and a mute excluding the
/// slices it covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freshness_slices_follow_the_deadline_and_the_age_and_a_mute_excludes() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), None, &freshness_slos());
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(at("2026-03-01T00:00:00Z"));
    let mut s = Served::start(dir, &text, clock).await;
    let refreshed = |when: &str, fresh: &str| {
        let (when, fresh) = (at(when), at(fresh));
        (
            when,
            ObservationRow {
                freshness: Some(fresh),
                ..ObservationRow::default()
            },
        )
    };
    for (when, fresh) in [
        // 1 March: landed at 05:30, before the deadline: good.
        ("2026-03-01T07:00:00Z", "2026-03-01T05:30:00Z"),
        // 2 March: landed at 06:45: bad.
        ("2026-03-02T07:00:00Z", "2026-03-02T06:45:00Z"),
        // 3 March: nothing new by 05:00 says nothing yet; by 08:00, bad.
        ("2026-03-03T05:00:00Z", "2026-03-02T06:45:00Z"),
        ("2026-03-03T08:00:00Z", "2026-03-02T06:45:00Z"),
        // 4 March: no report. 5 March: landed at 05:40, seen at 05:50
        // (good) and at 09:30, then 3h 50m old (bad for the hourly SLO).
        ("2026-03-05T05:50:00Z", "2026-03-05T05:40:00Z"),
        ("2026-03-05T09:30:00Z", "2026-03-05T05:40:00Z"),
    ] {
        let (when, row) = refreshed(when, fresh);
        s.report(when, when, row).await;
    }
    s.clock.set(at("2026-03-06T01:00:00Z"));

    // Days 1-5: good, bad, bad, no data (bad), good: 2 of 5.
    let f = s.figures("fresh-by-six").await;
    assert_eq!(slice_counts(&f)[..3], [2, 2, 1]);
    assert_close(&f["attainment"], 0.4, "deadline attainment");
    assert_close(&f["budgetRemaining"], 0.5 * 5.0 - 3.0, "deadline remaining");
    assert_eq!(f["exhausted"], true);
    let days = s
        .slices(
            "fresh-by-six",
            "2026-03-02T00:00:00Z",
            "2026-03-04T00:00:00Z",
        )
        .await;
    assert_eq!(days[0]["reason"], "refreshed at 06:45, deadline 06:00");
    assert_eq!(days[1]["reason"], "no refresh landed by the deadline 06:00");
    assert_eq!(
        (&days[1]["good"], &days[1]["total"]),
        (&json!(0), &json!(1))
    );

    // The last 24 hours (5 March 01:00 to 6 March 01:00): the 05:00 hour
    // good, the 09:00 hour bad, 22 without data.
    let f = s.figures("fresh-hourly").await;
    assert_eq!(slice_counts(&f)[..3], [1, 1, 22]);
    assert_close(&f["attainment"], 1.0 / 24.0, "age attainment");
    let hour = s
        .slices(
            "fresh-hourly",
            "2026-03-05T09:00:00Z",
            "2026-03-05T10:00:00Z",
        )
        .await;
    assert_eq!(hour[0]["reason"], "data 3h 50m old, max 2h");

    // Muted, the asset's next slices are excluded, with the mute's reason.
    let documents = tributary::health::EntityRef::Asset {
        check: "app".into(),
        asset: "documents".into(),
    };
    let muted =
        s.d.service
            .mute(
                documents,
                Some(tributary::health::Mute {
                    until: at("2026-03-07T00:00:00Z"),
                    reason: "backfill".into(),
                }),
                "test",
            )
            .await
            .unwrap();
    assert!(muted);
    let (when, row) = refreshed("2026-03-06T02:10:00Z", "2026-03-05T05:40:00Z");
    s.report(when, when, row).await;
    s.clock.set(at("2026-03-06T03:00:00Z"));
    let hour = s
        .slices(
            "fresh-hourly",
            "2026-03-06T02:00:00Z",
            "2026-03-06T03:00:00Z",
        )
        .await;
    assert_eq!(hour[0]["state"], "EXCLUDED");
    assert_eq!(hour[0]["reason"], "muted: backfill");
    let f = s.figures("fresh-hourly").await;
    assert_eq!(f["excludedSlices"], 1);
}

const RUNS: &str = r#"
[[slos]]
name = "up"
check = "ingest-docs"
asset = "*"
indicator = "availability"
slice = "1h"
window = "24h"
target = 0.9

[[slos]]
name = "ingest-ok"
system = "ingest"
level = "system"
indicator = "healthy"
slice = "1h"
window = "24h"
target = 0.9
"#;

/// A plugin check's runs: availability of its asset (a failed run makes
/// the hour bad) and the system's health as it rolls up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_and_health_make_their_hours_bad() {
    let fake = Arc::new(std::sync::Mutex::new(kit::Fake {
        ids: kit::doc_ids(5),
        ..kit::Fake::default()
    }));
    let service = kit::document_service(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut text = config_text(dir.path(), &[("ingest-docs", "ingest", &service.url(), "")]);
    text.push_str(RUNS);
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(at("2026-03-01T10:05:00Z"));
    let s = Served::start(dir, &text, clock.clone()).await;
    s.d.wait_runs("ingest-docs", 1).await;
    // 11:05: the service refuses the credentials; 12:05: back.
    clock.set(at("2026-03-01T11:05:00Z"));
    fake.lock().unwrap().fail_with = Some(401);
    s.d.run_now("ingest-docs").await;
    clock.set(at("2026-03-01T12:05:00Z"));
    fake.lock().unwrap().fail_with = None;
    s.d.run_now("ingest-docs").await;
    clock.set(at("2026-03-01T13:30:00Z"));

    let (f, hours) = s
        .root_slices("up", "2026-03-01T10:00:00Z", "2026-03-01T13:00:00Z")
        .await;
    assert_eq!(f["entity"]["key"], "documents");
    let states: Vec<&Value> = hours.iter().map(|h| &h["state"]).collect();
    assert_eq!(states, [&json!("GOOD"), &json!("BAD"), &json!("GOOD")]);
    let reason = hours[1]["reason"].as_str().unwrap();
    assert!(reason.starts_with("run failed: "), "{reason}");
    // 24 hours back from 13:00: three judged, 21 without data (bad).
    assert_eq!(slice_counts(&f)[..3], [2, 1, 21]);

    let (_, hours) = s
        .root_slices("ingest-ok", "2026-03-01T10:00:00Z", "2026-03-01T12:00:00Z")
        .await;
    assert_eq!(hours[0]["state"], "GOOD");
    assert_eq!(hours[1]["state"], "BAD");
    let reason = hours[1]["reason"].as_str().unwrap();
    assert!(reason.starts_with("UNKNOWN"), "{reason}");
}

/// An SLO a reload adds judges from then on; the others keep their slices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_slo_added_by_a_reload_judges_from_then_on() {
    let rows = "indicator = \"completeness\"\nmax_drop = \"5%\"\nwindow = \"5d\"\ntarget = 0.5";
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), None, &documents_slo("rows", rows));
    let day1 = at("2026-03-01T12:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(day1);
    let mut s = Served::start(dir, &text, clock).await;
    for d in 0..2u32 {
        s.push(day1 + DAY * d, day1 + DAY * d, 1000).await;
    }
    let reloaded = config(
        s.d.dir.path(),
        None,
        &(documents_slo("rows", rows) + &documents_slo("rows-new", rows)),
    );
    s.reload(&reloaded).await;
    // Day 3: a 10% drop, bad for both.
    s.push(day1 + DAY * 2, day1 + DAY * 2, 900).await;
    s.clock.set(at("2026-03-04T01:00:00Z"));

    // 27 February to 3 March: rows saw days 1-3, rows-new only day 3.
    let f = s.figures("rows").await;
    assert_eq!(slice_counts(&f), [2, 1, 2, 0]);
    let f = s.figures("rows-new").await;
    assert_eq!(slice_counts(&f), [0, 1, 4, 0]);
}

/// Four SLOs on every asset of `app` that count differently: hour slices
/// with the default policies, hour slices by occurrences with excluded
/// slices counted, a calendar month of days in Berlin with no data left
/// out and maintenance bad, ten days in Berlin by occurrences with
/// maintenance good.
fn ranked_slos() -> String {
    let on = "check = \"app\"\nasset = \"*\"\nindicator = \"completeness\"\n";
    format!(
        "\n[[slos]]\nname = \"h-default\"\n{on}slice = \"1h\"\nwindow = \"2d\"\ntarget = 0.9\n\
         \n[[slos]]\nname = \"h-occurrences\"\n{on}slice = \"1h\"\nwindow = \"36h\"\n\
         budgeting = \"occurrences\"\nmaintenance = \"bad\"\ntarget = 0.8\n\
         \n[[slos]]\nname = \"d-month\"\n{on}slice = \"1d\"\nwindow = \"month\"\n\
         timezone = \"Europe/Berlin\"\nno_data = \"excluded\"\nmaintenance = \"bad\"\ntarget = 0.7\n\
         \n[[slos]]\nname = \"d-occurrences\"\n{on}slice = \"1d\"\nwindow = \"10d\"\n\
         timezone = \"Europe/Berlin\"\nbudgeting = \"occurrences\"\nmaintenance = \"good\"\n\
         target = \"95%\"\n"
    )
}

/// Random slices of 60 assets (names whose byte order and a locale's
/// order differ) under the four [`ranked_slos`], written straight to the
/// store; then the root list, ranked by the database on its sums, must be
/// the reference (every entity's figures from its slices, sorted in Rust),
/// in order and figure for figure, cut at several lengths; and again once
/// late slices changed the sums and the window moved on.
async fn ranked_like_the_figures(pg: Option<String>) {
    use tributary::health::EntityRef;
    use tributary::store::{SliceDelta, WriteBatch};
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), pg.as_deref(), &ranked_slos());
    // The 26th of October 2026 in Berlin: the day after summer time ended.
    let now = at("2026-10-26T15:30:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(now);
    let s = Served::start(dir, &text, clock).await;
    let names = ["a", "B", "_x", "é", "Z9", "z", "a b", "A"];
    let assets: Vec<String> = (0..60)
        .map(|i| format!("{}{}", names[i % names.len()], i / names.len()))
        .collect();
    // A small generator with a fixed seed: the same slices every run.
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let h = 3_600_000i64;
    let now_ms = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = now_ms - now_ms % h;
    let mut write = |back: std::ops::Range<i64>, step: &dyn Fn(i64) -> i64| {
        let mut slices = Vec::new();
        for (a, asset) in assets.iter().enumerate() {
            let entity = EntityRef::Asset {
                check: "app".into(),
                asset: asset.clone(),
            };
            // Some assets have nothing at all, some a few slices, some many.
            let density = [0, 3, 30, 90, 100][a % 5];
            for (slo, day) in [
                ("h-default", false),
                ("h-occurrences", false),
                ("d-month", true),
                ("d-occurrences", true),
            ] {
                for b in back.clone() {
                    if next(100) >= density {
                        continue;
                    }
                    let start = if day { step(b) } else { hour - b * h };
                    let total = 1 + next(4);
                    let good = if next(10) == 0 { next(total) } else { total };
                    slices.push(SliceDelta {
                        slo: slo.into(),
                        entity: entity.clone(),
                        start,
                        good,
                        total,
                        excluded: next(25) == 0,
                        reason: (good < total).then(|| "bad".to_owned()),
                    });
                }
            }
        }
        slices
    };
    // Berlin midnights, the day slices' starts: at 23:00 UTC the day
    // before on the 26th (CET), at 22:00 UTC before (CEST, to the 25th).
    let berlin = |back: i64| {
        let day = 86_400_000i64;
        let today_utc = now_ms - now_ms % day;
        today_utc - back * day - if back == 0 { h } else { 2 * h }
    };
    let slices = write(0..50, &berlin);
    s.d.store
        .write(&WriteBatch {
            slices,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    let compare = |label: &'static str| {
        let service = s.d.service.clone();
        async move {
            let mut reference = service.slo_statuses(None).await.unwrap();
            reference.sort_by(|a, b| {
                let left = |s: &tributary::service::SloStatus| {
                    s.figures.budget_remaining_ratio.unwrap_or(f64::INFINITY)
                };
                left(a)
                    .total_cmp(&left(b))
                    .then_with(|| a.slo.name.cmp(&b.slo.name))
                    .then_with(|| {
                        tributary::store::entity_key(&a.entity)
                            .cmp(&tributary::store::entity_key(&b.entity))
                    })
            });
            assert!(reference.len() > 150, "{label}: {}", reference.len());
            let shown = |list: &[tributary::service::SloStatus]| -> Vec<String> {
                list.iter()
                    .map(|s| format!("{} {:?} {:?}", s.slo.name, s.entity, s.figures))
                    .collect()
            };
            for n in [1, 7, 100, 1000] {
                let worst = service.slo_worst(None, n, |_| true).await.unwrap();
                let want = &reference[..n.min(reference.len())];
                let (got, want) = (shown(&worst), shown(want));
                let first = got.iter().zip(&want).position(|(a, b)| a != b);
                assert!(
                    first.is_none() && got.len() == want.len(),
                    "{label}: worst {n}: {} listed for {}, first difference at {first:?}: {:?}",
                    got.len(),
                    want.len(),
                    first.map(|i| (&got[i], &want[i]))
                );
            }
            // One SLO, and a filter keeping every third asset.
            let worst = service
                .slo_worst(
                    Some("d-month"),
                    10,
                    |e| matches!(e, EntityRef::Asset { asset, .. } if asset.ends_with('3')),
                )
                .await
                .unwrap();
            let want: Vec<_> = reference
                .iter()
                .filter(|s| {
                    s.slo.name == "d-month"
                        && matches!(&s.entity, EntityRef::Asset { asset, .. } if asset.ends_with('3'))
                })
                .take(10)
                .cloned()
                .collect();
            assert!(!want.is_empty());
            assert_eq!(shown(&worst), shown(&want), "{label}: filtered");
        }
    };
    compare("first read").await;
    // Late data inside the summed span, then two hours and a day later.
    let late = write(1..6, &berlin);
    s.d.store
        .write(&WriteBatch {
            slices: late,
            ..WriteBatch::default()
        })
        .await
        .unwrap();
    compare("after late slices").await;
    s.clock.set(now + 2 * Duration::from_secs(3_600));
    compare("two hours on").await;
    s.clock.set(now + DAY);
    compare("a day on").await;
    s.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_list_ranks_in_the_database_as_the_figures_from_slices_do() {
    on_both("slo_ranked", ranked_like_the_figures).await;
}

/// Completeness of every asset of `app` over 5 days at 80%, with no data
/// bad (`rows`), good (`rows-lenient`) and left out (`rows-out`); and of
/// every asset of push check `feed`.
fn covering_slos(rows_asset: &str) -> String {
    let rows = "indicator = \"completeness\"\nmax_drop = \"5%\"\nwindow = \"5d\"\ntarget = 0.8";
    let on = |name: &str, check: &str, asset: &str, policy: &str| {
        format!(
            "\n[[slos]]\nname = \"{name}\"\ncheck = \"{check}\"\nasset = \"{asset}\"\n{rows}\n{policy}\n"
        )
    };
    let feed_sha: String = Sha256::digest(b"trp_feed")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    on("rows", "app", rows_asset, "")
        + &on("rows-lenient", "app", "*", "no_data = \"good\"")
        + &on("rows-out", "app", "*", "no_data = \"excluded\"")
        + &on("feed-rows", "feed", "*", "")
        + &format!(
            "\n[[checks]]\nid = \"feed\"\nsystem = \"ingest\"\nconnector = \"push\"\n\n\
             [[checks.push.tokens]]\nname = \"feed\"\nsha256 = \"{feed_sha}\"\n"
        )
}

/// [`config`] with `app` declaring its assets (`push.assets`).
fn covering_config(dir: &std::path::Path, pg: Option<&str>, extra: &str) -> String {
    config(dir, pg, extra).replace(
        "[[checks.push.tokens]]\nname = \"app\"",
        "[checks.push]\nassets = [\"documents\", \"invoices\", \"payments\"]\n\n\
         [[checks.push.tokens]]\nname = \"app\"",
    )
}

/// The figures of an entity with no slice in a 5-day window of day
/// slices at 80%, no data counting bad: five bad slices against a budget
/// of one.
#[track_caller]
fn assert_all_no_data_bad(f: &Value) {
    assert_eq!(slice_counts(f), [0, 0, 5, 0], "{f}");
    assert_close(&f["attainment"], 0.0, "attainment");
    assert_close(&f["budgetTotal"], 0.2 * 5.0, "budget total");
    assert_close(&f["budgetSpent"], 5.0, "budget spent");
    assert_close(&f["budgetRemaining"], 0.2 * 5.0 - 5.0, "remaining");
    assert_close(&f["budgetRemainingRatio"], -4.0, "remaining ratio");
    // The last day and the last three all bad: 1 / 0.2.
    assert!((burn(f, "1d").unwrap() - 5.0).abs() < 1e-9, "{f}");
    assert!((burn(f, "3d").unwrap() - 5.0).abs() < 1e-9, "{f}");
    assert_eq!(f["exhausted"], true);
    assert_eq!(f["exhaustsAt"], Value::Null);
}

/// The lists show every entity an SLO covers, slices or not: `invoices`
/// (declared, never reported), `payments` (reported, never with a count:
/// nothing to judge) and an asset a report names for the first time, with
/// the figures the no-data policy gives; a reload that narrows one SLO and
/// adds another changes who is listed; a restart changes nothing.
///
/// `documents` reports 1000 rows a day on 1-5 March 2026, 900 on the 3rd
/// (bad); on 6 March at 06:00 the 5-day window is 1-5 March.
async fn covered_without_slices(pg: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let text = covering_config(dir.path(), pg.as_deref(), &covering_slos("*"));
    let day0 = at("2026-03-01T12:00:00Z");
    let clock = Arc::new(ManualClock::at_unix(0));
    clock.set(day0);
    let mut s = Served::start(dir, &text, clock).await;
    for d in 0..5u32 {
        let when = day0 + DAY * d;
        s.push(when, when, if d == 2 { 900 } else { 1000 }).await;
        s.report_to("app", "payments", when, when, ObservationRow::default())
            .await;
    }
    let now = at("2026-03-06T06:00:00Z");
    s.clock.set(now);

    // rows: invoices and payments 5 no-data slices, bad: -4 of a budget
    // of 1 (tied: by key); documents 4 good and 1 bad: 0 left.
    let rows = s
        .listed_as("rows", &["invoices", "payments", "documents"])
        .await;
    assert_all_no_data_bad(&rows[0]);
    assert_all_no_data_bad(&rows[1]);
    assert_eq!(slice_counts(&rows[2]), [4, 1, 0, 0]);
    assert_close(&rows[2]["budgetRemainingRatio"], 0.0, "documents' ratio");
    // The asset's own list gives the same figures.
    assert_eq!(rows[2], s.figures("rows").await);

    // rows-lenient: no data is good, the whole budget of 1 left (ratio 1,
    // after documents' 0).
    let lenient = s
        .listed_as("rows-lenient", &["documents", "invoices", "payments"])
        .await;
    for f in &lenient[1..] {
        assert_eq!(slice_counts(f), [0, 0, 5, 0], "{f}");
        assert_close(&f["attainment"], 1.0, "lenient attainment");
        assert_close(&f["budgetTotal"], 0.2 * 5.0, "lenient budget");
        assert_close(&f["budgetSpent"], 0.0, "lenient spent");
        assert_close(&f["budgetRemainingRatio"], 1.0, "lenient ratio");
        assert_eq!(f["exhausted"], false);
        assert_eq!(f["exhaustsAt"], Value::Null);
    }
    // rows-out: no data left out, nothing counted: no attainment, a budget
    // of 0 (no ratio), listed last.
    let out = s
        .listed_as("rows-out", &["documents", "invoices", "payments"])
        .await;
    for f in &out[1..] {
        assert_eq!(f["attainment"], Value::Null, "{f}");
        assert_close(&f["budgetTotal"], 0.0, "left-out budget");
        assert_eq!(f["budgetRemainingRatio"], Value::Null, "{f}");
        assert_eq!(f["exhausted"], false);
    }

    // The check's own list has its assets' statuses of all three SLOs,
    // worst first (budget left, then SLO, then asset).
    let answer = s
        .api
        .query(
            Some("admin-token"),
            "{ check(key: \"app\") { slos(first: 100) { name entity { ... on Asset { key } } } } }",
            json!({}),
        )
        .await;
    let listed: Vec<(String, String)> = answer.data()["check"]["slos"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", answer.text))
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["entity"]["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("rows", "invoices"),
        ("rows", "payments"),
        ("rows", "documents"),
        ("rows-lenient", "documents"),
        ("rows-out", "documents"),
        ("rows-lenient", "invoices"),
        ("rows-lenient", "payments"),
        ("rows-out", "invoices"),
        ("rows-out", "payments"),
    ]
    .map(|(a, b)| (a.to_owned(), b.to_owned()))
    .into();
    assert_eq!(listed, want);

    // feed declares no assets: none is covered until a report names one,
    // listed from that write on (its slice in progress is not judged yet).
    assert!(s.listed("feed-rows").await.is_empty());
    s.report_to("feed", "orders", now, now, ObservationRow::default())
        .await;
    let feed = s.listed_as("feed-rows", &["orders"]).await;
    assert_all_no_data_bad(&feed[0]);

    // A restart: the same lists, the same figures.
    let before = (s.listed("rows").await, s.listed("feed-rows").await);
    s = s.restart(&text).await;
    assert_eq!(
        (s.listed("rows").await, s.listed("feed-rows").await),
        before
    );

    // A reload narrows rows to documents and adds rows-new on invoices:
    // invoices and payments leave rows' list (no slice keeps them), and
    // invoices is in rows-new's at once, with no report since.
    let narrowed = covering_slos("documents")
        + &documents_slo(
            "rows-new",
            "indicator = \"completeness\"\nwindow = \"5d\"\ntarget = 0.8",
        )
        .replace("asset = \"documents\"", "asset = \"invoices\"");
    s.reload(&covering_config(s.d.dir.path(), pg.as_deref(), &narrowed))
        .await;
    let rows = s.listed_as("rows", &["documents"]).await;
    assert_eq!(slice_counts(&rows[0]), [4, 1, 0, 0]);
    let new = s.listed_as("rows-new", &["invoices"]).await;
    assert_all_no_data_bad(&new[0]);
    s.listed_as("rows-lenient", &["documents", "invoices", "payments"])
        .await;
    // Back to every asset: listed again.
    s.reload(&text).await;
    s.listed_as("rows", &["invoices", "payments", "documents"])
        .await;
    s.d.service.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn covered_entities_without_slices_are_listed_on_sqlite_and_postgres() {
    on_both("slo_covered", covered_without_slices).await;
}

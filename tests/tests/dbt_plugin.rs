//! The dbt connector, run through the real host by the SDK's harness: Core
//! mode on the real artifacts of `tests/fixtures/dbt/shop/` (checked against
//! its `expected.json` and README facts), and both dbt Cloud modes against
//! the fake in `tributary_tests::fakes::dbt_cloud`, which serves the same
//! artifacts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use plugin_sdk::harness::{Harness, Recorded, TestServer};
use serde_json::{Value, json};
use tributary::plugin::{ErrorClass, Observation, Report, RunError, StatusLevel, Timestamp};
use tributary_tests::fakes::dbt_cloud::{
    ACCOUNT_ID, DbtCloudFake, ENVIRONMENT_ID, JOB_ID, LATEST_RUN_ID, RETRY_AFTER_S, RUN_INTERVAL,
    STALE, TOKEN,
};
use tributary_tests::fakes::{FakeClock, Scenario, ScenarioSwitch};
use tributary_tests::observed::{extra, metadata as meta};
use tributary_tests::{plugin, repo_root};

/// 2026-11-23T06:13:20Z: the clock of the host and of the fake.
const NOW: i64 = 1_795_400_000;

fn shop(run: &str) -> PathBuf {
    repo_root().join("tests/fixtures/dbt/shop").join(run)
}

fn expected() -> &'static Value {
    static EXPECTED: OnceLock<Value> = OnceLock::new();
    EXPECTED.get_or_init(|| {
        let text = std::fs::read_to_string(shop("expected.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    })
}

fn fixture(run: &str, file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(shop(run).join(file)).unwrap()).unwrap()
}

fn ts(text: &str) -> Timestamp {
    let at = DateTime::parse_from_rfc3339(text).unwrap();
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos(),
    }
}

fn shift(at: Timestamp, by: TimeDelta) -> Timestamp {
    let at = DateTime::from_timestamp(at.seconds, at.nanos).unwrap() + by;
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos(),
    }
}

fn find<'a>(report: &'a Report, asset: &str) -> &'a Observation {
    report
        .observations
        .iter()
        .find(|o| o.asset == asset)
        .unwrap_or_else(|| {
            let assets: Vec<&str> = report
                .observations
                .iter()
                .map(|o| o.asset.as_str())
                .collect();
            panic!("no observation of {asset}; have {assets:?}")
        })
}

fn native(o: &Observation) -> (StatusLevel, &str, Option<&str>) {
    let n = o
        .native_status
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no native status", o.asset));
    (n.level, n.label.as_str(), n.message.as_deref())
}

fn level_of(status: &str) -> StatusLevel {
    match status {
        "success" | "pass" | "no-op" => StatusLevel::Ok,
        // Not built or tested this time: no evidence of health.
        "warn" | "skipped" => StatusLevel::Warn,
        "error" | "fail" | "runtime error" => StatusLevel::Error,
        _ => StatusLevel::Unknown,
    }
}

fn same_instant(a: &str, b: &str) -> bool {
    DateTime::parse_from_rfc3339(a).unwrap() == DateTime::parse_from_rfc3339(b).unwrap()
}

async fn core_harness(dir: Option<&Path>) -> Harness {
    let builder = Harness::builder(plugin("dbt")).now_unix(NOW as u64);
    let builder = match dir {
        Some(dir) => builder.read_dir(dir),
        None => builder,
    };
    builder.build().await.expect("the dbt plugin loads")
}

async fn core_report(run: &str) -> Report {
    core_harness(Some(&shop(run)))
        .await
        .collect(json!({}))
        .await
        .unwrap()
        .report
}

// ---------------------------------------------------------------------------
// Core mode against expected.json

/// Asserts every fact expected.json lists for `run`.
fn assert_matches_expected(report: &Report, run: &str) {
    let run_facts = &expected()["runs"][run];
    let build = &run_facts["build"];
    let nodes = build["nodes"].as_object().unwrap();
    for (id, node) in nodes {
        let o = find(report, id);
        let status = node["status"].as_str().unwrap();
        assert_eq!(o.kind, node["resource_type"].as_str().unwrap(), "{id}");
        let (level, label, message) = native(o);
        assert_eq!((level, label), (level_of(status), status), "{id}");
        if let Some(text) = node["message"].as_str() {
            assert_eq!(message, Some(text), "{id}");
        }
        if let Some(failures) = node.get("failures") {
            assert_eq!(o.counts.errored, failures.as_u64(), "{id}");
        }
        assert_eq!(
            meta(o, "invocation_id"),
            build["invocation_id"].as_str(),
            "{id}"
        );
    }

    let summary = find(report, "run_results.json");
    for (status, count) in build["counts"].as_object().unwrap() {
        let name = status.replace('-', "_");
        assert_eq!(extra(summary, &name), count.as_u64(), "count of {status}");
    }
    let console = &build["dbt_console_summary"];
    let line = format!(
        "PASS={} WARN={} ERROR={} SKIP={} NO-OP={} TOTAL={}",
        console["PASS"],
        console["WARN"],
        console["ERROR"],
        console["SKIP"],
        console["NO-OP"],
        console["TOTAL"]
    );
    let failed =
        build["counts"]["error"].as_u64() > Some(0) || build["counts"]["fail"].as_u64() > Some(0);
    let (level, _, message) = native(summary);
    assert_eq!(message, Some(line.as_str()));
    assert_eq!(
        level,
        if failed {
            StatusLevel::Error
        } else {
            StatusLevel::Ok
        }
    );
    assert_eq!(
        summary.freshness,
        Some(ts(build["generated_at"].as_str().unwrap()))
    );
    assert_eq!(meta(summary, "schema_version"), Some("v6"));

    let freshness = &run_facts["freshness"];
    for (id, source) in freshness["sources"].as_object().unwrap() {
        let o = find(report, id);
        let status = source["status"].as_str().unwrap();
        assert_eq!(o.kind, "source");
        let (level, label, _) = native(o);
        assert_eq!((level, label), (level_of(status), status), "{id}");
        assert_eq!(
            o.freshness,
            Some(ts(source["max_loaded_at"].as_str().unwrap())),
            "{id}"
        );
        // The age is dbt's (the warehouse clock's), never recomputed.
        let age: f64 = meta(o, "max_loaded_at_time_ago_in_s")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(age, source["age_s"].as_f64().unwrap(), "{id}");
        assert!(same_instant(
            meta(o, "snapshotted_at").unwrap(),
            source["snapshotted_at"].as_str().unwrap()
        ));
        for key in ["warn_after", "error_after"] {
            let t = &source[key];
            let text = format!("{} {}", t["count"], t["period"].as_str().unwrap());
            assert_eq!(meta(o, key), Some(text.as_str()), "{id} {key}");
        }
        assert!(o.errors.is_empty(), "{id}: {:?}", o.errors);
    }
    let missing = freshness["sources_not_in_sources_json"]
        .as_object()
        .unwrap();
    for id in missing.keys() {
        let o = find(report, id);
        let (level, label, message) = native(o);
        assert_eq!((level, label), (StatusLevel::Error, "no result"), "{id}");
        let message = message.unwrap();
        assert!(
            message.contains("freshness is configured")
                && message.contains(freshness["invocation_id"].as_str().unwrap()),
            "{message}"
        );
        // dbt counted nothing: no error, so no errored count is implied.
        assert!(o.errors.is_empty(), "{id}: {:?}", o.errors);
        assert_eq!(o.counts.errored, None, "{id}");
        assert_eq!(o.freshness, None);
    }
    let fsum = find(report, "sources.json");
    for (status, count) in freshness["counts"].as_object().unwrap() {
        let name = status.replace(' ', "_");
        assert_eq!(
            extra(fsum, &name),
            count.as_u64(),
            "freshness count of {status}"
        );
    }
    assert_eq!(extra(fsum, "no_result"), Some(missing.len() as u64));
    assert_eq!(
        fsum.freshness,
        Some(ts(freshness["generated_at"].as_str().unwrap()))
    );

    // Every node, the four sources and the two summaries; nothing else.
    assert_eq!(report.observations.len(), nodes.len() + 4 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_run1_green_matches_expected() {
    let report = core_report("run1-green").await;
    assert_matches_expected(&report, "run1-green");
    let seed = find(&report, "seed.shop.landing_payments");
    assert_eq!(extra(seed, "rows_affected"), Some(28));
    assert_eq!(meta(seed, "materialized"), Some("seed"));
    let exposure = find(&report, "exposure.shop.daily_revenue_dashboard");
    assert_eq!(exposure.freshness, None, "a no-op builds nothing");
    assert_eq!(
        meta(exposure, "url"),
        Some("https://looker.example.com/dashboards/42")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_run2_failures_matches_expected_with_causes_and_errors() {
    let report = core_report("run2-failures").await;
    assert_matches_expected(&report, "run2-failures");

    // The broken model: no new data, dbt's error in its native status, and
    // no errored count or error of its own: dbt counts no failing rows for a
    // model (an error would make the daemon count one).
    let fct = find(&report, "model.shop.fct_orders");
    assert_eq!(fct.freshness, None);
    assert!(
        native(fct)
            .2
            .unwrap()
            .contains("Referenced column \"amount_usd\" not found")
    );
    assert_eq!(fct.counts.errored, None);
    assert!(fct.errors.is_empty(), "{:?}", fct.errors);
    assert!(fct.error_totals.is_empty(), "{:?}", fct.error_totals);
    assert_eq!(
        meta(fct, "relation"),
        Some("\"shop\".\"marts\".\"fct_orders\"")
    );
    assert_eq!(meta(fct, "materialized"), Some("table"));
    assert_eq!(meta(fct, "execution_time_s"), Some("0.1791553497314453"));

    // A model that ran is fresh as of its execute step.
    let stg = find(&report, "model.shop.stg_orders");
    assert_eq!(stg.freshness, Some(ts("2026-11-21T21:42:50.355566Z")));

    // A failing test: its failing rows are errored, with one error.
    let email = find(&report, "test.shop.not_null_dim_customers_email.ed68b54d1a");
    assert_eq!(email.counts.errored, Some(1));
    assert_eq!(email.errors[0].kind, "test_failure");
    assert_eq!(
        email.errors[0].message,
        "Got 1 result, configured to fail if != 0"
    );
    assert_eq!(
        meta(email, "attached_node"),
        Some("model.shop.dim_customers")
    );
    assert_eq!(meta(email, "severity"), Some("ERROR"));
    assert_eq!(meta(email, "test"), Some("not_null"));
    let broken = find(
        &report,
        "test.shop.source_unique_shop_raw_shipments_shipment_id.e4e35b134a",
    );
    assert_eq!(native(broken).0, StatusLevel::Error);
    assert!(native(broken).2.unwrap().contains("Catalog Error"));
    assert_eq!(
        broken.counts.errored, None,
        "an erroring test counts no rows"
    );
    assert!(broken.errors.is_empty(), "{:?}", broken.errors);

    // Skips name the upstream failure that caused them, at level warn: the
    // daemon ignores a native `unknown`, and a skip is no evidence of health.
    let rpt = find(&report, "model.shop.rpt_daily_revenue");
    assert_eq!(
        native(rpt),
        (
            StatusLevel::Warn,
            "skipped",
            Some("skipped because upstream model.shop.fct_orders (error) failed")
        )
    );
    let singular = find(&report, "test.shop.assert_daily_revenue_not_negative");
    assert_eq!(
        meta(singular, "skipped_because"),
        Some("model.shop.fct_orders")
    );
    let exposure = find(&report, "exposure.shop.daily_revenue_dashboard");
    assert_eq!(
        meta(exposure, "skipped_because"),
        Some("model.shop.fct_orders, test.shop.not_null_dim_customers_email.ed68b54d1a")
    );

    // The source whose freshness query failed is failed, never healthy.
    let shipments = find(&report, "source.shop.shop_raw.shipments");
    assert_eq!(meta(shipments, "warn_after"), Some("12 hour"));
    assert_eq!(meta(shipments, "location"), Some("shop.raw.shipments"));
    let orders = find(&report, "source.shop.shop_raw.orders");
    assert_eq!(meta(orders, "loaded_at_field"), Some("loaded_at"));
    assert_eq!(meta(orders, "loaded_at_query"), None);
    assert_eq!(meta(orders, "meta.owner"), Some("data-platform"));
    // A stale source says what dbt compared: its age (12008.99 s, on the
    // warehouse clock) and its thresholds.
    assert_eq!(
        native(orders),
        (
            StatusLevel::Warn,
            "warn",
            Some("loaded 3h 20m 9s ago; dbt's warn_after is 1 hour, error_after 6 hours")
        )
    );
    assert_eq!(
        native(find(&report, "source.shop.shop_raw.payments")).2,
        Some("loaded 1d 7h 9s ago; dbt's warn_after is 6 hours, error_after 24 hours")
    );
    assert_eq!(
        native(find(&report, "source.shop.shop_raw.customers")).2,
        Some("loaded 25m 9s ago; dbt's warn_after is 12 hours, error_after 24 hours")
    );
    let fsum = find(&report, "sources.json");
    assert_eq!(native(fsum).0, StatusLevel::Error);
    assert_eq!(
        native(fsum).2,
        Some("PASS=1 WARN=1 ERROR=1 RUNTIME_ERROR=0 NO_RESULT=1 TOTAL=4")
    );
}

/// run2 as if `rpt_daily_revenue` read `fct_orders` through an ephemeral
/// model, as dbt writes it: the ephemeral node is in the manifest (and its
/// maps) but never in run_results.json, since dbt compiles it into its
/// children instead of running it.
fn run2_with_an_ephemeral_model() -> tempfile::TempDir {
    const EPHEMERAL: &str = "model.shop.int_order_revenue";
    const FCT: &str = "model.shop.fct_orders";
    const RPT: &str = "model.shop.rpt_daily_revenue";
    edited("run2-failures", "manifest.json", |doc| {
        let mut node = doc["nodes"][FCT].clone();
        node["unique_id"] = json!(EPHEMERAL);
        node["name"] = json!("int_order_revenue");
        node["alias"] = json!("int_order_revenue");
        node["config"]["materialized"] = json!("ephemeral");
        node["relation_name"] = Value::Null;
        node["depends_on"]["nodes"] = json!([FCT]);
        doc["nodes"][EPHEMERAL] = node;
        doc["nodes"][RPT]["depends_on"]["nodes"] = json!([EPHEMERAL]);
        doc["parent_map"][EPHEMERAL] = json!([FCT]);
        doc["parent_map"][RPT] = json!([EPHEMERAL]);
        doc["child_map"][EPHEMERAL] = json!([RPT]);
        for child in doc["child_map"][FCT].as_array_mut().unwrap() {
            if child == RPT {
                *child = json!(EPHEMERAL);
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_a_skip_behind_an_ephemeral_model_names_the_failure_above_it() {
    let dir = run2_with_an_ephemeral_model();
    let run_results = std::fs::read_to_string(dir.path().join("run_results.json")).unwrap();
    assert!(!run_results.contains("int_order_revenue"), "never run");
    let report = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap()
        .report;
    let rpt = find(&report, "model.shop.rpt_daily_revenue");
    assert_eq!(
        native(rpt),
        (
            StatusLevel::Warn,
            "skipped",
            Some("skipped because upstream model.shop.fct_orders (error) failed")
        )
    );
    assert_eq!(meta(rpt, "skipped_because"), Some("model.shop.fct_orders"));
    // Its tests skip for the same cause, two steps further down.
    let singular = find(&report, "test.shop.assert_daily_revenue_not_negative");
    assert_eq!(
        meta(singular, "skipped_because"),
        Some("model.shop.fct_orders")
    );
    // The ephemeral model is no observation: dbt said nothing of it.
    assert!(
        report
            .observations
            .iter()
            .all(|o| o.asset != "model.shop.int_order_revenue")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_a_source_read_by_loaded_at_query_shows_the_query() {
    const QUERY: &str = "select max(synced_at) from raw.orders_sync_log";
    const OLD_STYLE: &str = "select max(loaded_at) from raw.customers";
    let dir = edited("run2-failures", "manifest.json", |doc| {
        // dbt 1.10+: in the source's config (and mirrored at the top).
        let orders = &mut doc["sources"]["source.shop.shop_raw.orders"];
        orders["loaded_at_field"] = Value::Null;
        orders["config"]["loaded_at_field"] = Value::Null;
        orders["loaded_at_query"] = json!(QUERY);
        orders["config"]["loaded_at_query"] = json!(QUERY);
        // Only the top-level property.
        let customers = &mut doc["sources"]["source.shop.shop_raw.customers"];
        customers["loaded_at_field"] = Value::Null;
        customers["config"]["loaded_at_field"] = Value::Null;
        customers["loaded_at_query"] = json!(OLD_STYLE);
    });
    let report = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap()
        .report;
    let orders = find(&report, "source.shop.shop_raw.orders");
    assert_eq!(meta(orders, "loaded_at_query"), Some(QUERY));
    assert_eq!(meta(orders, "loaded_at_field"), None);
    let customers = find(&report, "source.shop.shop_raw.customers");
    assert_eq!(meta(customers, "loaded_at_query"), Some(OLD_STYLE));
    // The sources left alone keep their field.
    let shipments = find(&report, "source.shop.shop_raw.shipments");
    assert_eq!(meta(shipments, "loaded_at_field"), Some("loaded_at"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_run3_recovering_matches_expected() {
    let report = core_report("run3-recovering").await;
    assert_matches_expected(&report, "run3-recovering");
    let payments = find(&report, "source.shop.shop_raw.payments");
    assert_eq!(native(payments).0, StatusLevel::Warn);
    assert_eq!(native(find(&report, "sources.json")).0, StatusLevel::Warn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_dbt_1_7_artifacts_read_as_v5_and_v11() {
    let report = core_report("run2-failures-dbt1.7").await;
    let run_results = fixture("run2-failures-dbt1.7", "run_results.json");
    let results = run_results["results"].as_array().unwrap();
    assert_eq!(results.len(), 34);
    for row in results {
        let id = row["unique_id"].as_str().unwrap();
        let status = row["status"].as_str().unwrap();
        let o = find(&report, id);
        assert_eq!(native(o).1, status, "{id}");
        assert_eq!(native(o).0, level_of(status), "{id}");
    }
    let summary = find(&report, "run_results.json");
    for (name, n) in [
        ("success", 9),
        ("pass", 15),
        ("error", 2),
        ("fail", 1),
        ("skipped", 7),
        ("no_op", 0),
        ("total", 34),
    ] {
        assert_eq!(extra(summary, name), Some(n), "{name}");
    }
    assert_eq!(meta(summary, "schema_version"), Some("v5"));
    assert_eq!(meta(summary, "dbt_version"), Some("1.7.19"));
    // No exposure ran in dbt 1.7; the manifest knows it, the run does not.
    assert!(report.observations.iter().all(|o| o.kind != "exposure"));

    // The old runtime-error row: an error with dbt's text, thresholds from
    // the manifest (the row has none).
    let shipments = find(&report, "source.shop.shop_raw.shipments");
    let (level, label, message) = native(shipments);
    assert_eq!((level, label), (StatusLevel::Error, "runtime error"));
    assert!(
        message
            .unwrap()
            .starts_with("Runtime Error in source shipments")
    );
    assert!(shipments.errors.is_empty(), "{:?}", shipments.errors);
    assert_eq!(shipments.counts.errored, None);
    assert_eq!(shipments.freshness, None);
    assert_eq!(meta(shipments, "error_after"), Some("24 hour"));
    let fsum = find(&report, "sources.json");
    assert_eq!(extra(fsum, "runtime_error"), Some(1));
    assert_eq!(extra(fsum, "no_result"), Some(0));
    let payments = find(&report, "source.shop.shop_raw.payments");
    assert_eq!(native(payments).1, "error");
    assert_eq!(
        meta(payments, "max_loaded_at_time_ago_in_s"),
        Some("111609.896536")
    );
}

/// A copy of `run`'s artifacts with `edit` applied to the named file.
fn edited(run: &str, file: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["run_results.json", "sources.json", "manifest.json"] {
        std::fs::copy(shop(run).join(name), dir.path().join(name)).unwrap();
    }
    let mut doc = fixture(run, file);
    edit(&mut doc);
    std::fs::write(dir.path().join(file), doc.to_string()).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_refuses_schema_versions_it_cannot_read() {
    for (file, version, named) in [
        (
            "run_results.json",
            "https://schemas.getdbt.com/dbt/run-results/v7.json",
            "v7",
        ),
        (
            "run_results.json",
            "https://schemas.getdbt.com/dbt/run-results/v3.json",
            "v3",
        ),
        (
            "sources.json",
            "https://schemas.getdbt.com/dbt/sources/v4.json",
            "v4",
        ),
    ] {
        let dir = edited("run1-green", file, |doc| {
            doc["metadata"]["dbt_schema_version"] = json!(version);
        });
        let err = core_harness(Some(dir.path()))
            .await
            .collect(json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::System, "{err}");
        let text = err.to_string();
        assert!(text.contains(file) && text.contains(named), "{text}");
    }

    // An unknown version is named even when the file no longer parses.
    let dir = edited("run1-green", "run_results.json", |doc| {
        doc["metadata"]["dbt_schema_version"] =
            json!("https://schemas.getdbt.com/dbt/run-results/v9.json");
        doc["results"] = json!({"renamed": true});
    });
    let err = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("v9"), "{err}");

    // A supported version that does not parse names the field.
    let dir = edited("run1-green", "run_results.json", |doc| {
        doc["results"][3]["status"] = json!(42);
    });
    let err = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert!(err.to_string().contains("results[3].status"), "{err}");

    // Swapped file names are the config's fault.
    let err = core_harness(Some(&shop("run1-green")))
        .await
        .collect(json!({"run_results": "manifest.json"}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("is a manifest artifact"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_reads_run_results_v4_and_any_manifest_that_parses() {
    // run1 as dbt 1.6 would write it: schema v4, no relation_name, no
    // batch_results; and a manifest of a newer version than tested.
    let dir = edited("run1-green", "run_results.json", |doc| {
        doc["metadata"]["dbt_schema_version"] =
            json!("https://schemas.getdbt.com/dbt/run-results/v4.json");
        for row in doc["results"].as_array_mut().unwrap() {
            let row = row.as_object_mut().unwrap();
            for key in [
                "compiled",
                "compiled_code",
                "relation_name",
                "batch_results",
                "message",
                "failures",
            ] {
                row.remove(key);
            }
        }
    });
    let mut manifest = fixture("run1-green", "manifest.json");
    manifest["metadata"]["dbt_schema_version"] =
        json!("https://schemas.getdbt.com/dbt/manifest/v13.json");
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).unwrap();

    let report = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap()
        .report;
    let nodes = expected()["runs"]["run1-green"]["build"]["nodes"]
        .as_object()
        .unwrap();
    for (id, node) in nodes {
        assert_eq!(
            native(find(&report, id)).1,
            node["status"].as_str().unwrap()
        );
    }
    assert_eq!(
        meta(find(&report, "run_results.json"), "schema_version"),
        Some("v4")
    );
    // The relation still comes from the manifest.
    let fct = find(&report, "model.shop.fct_orders");
    assert_eq!(
        meta(fct, "relation"),
        Some("\"shop\".\"marts\".\"fct_orders\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_microbatch_partial_success_is_an_error_and_naive_times_are_utc() {
    let dir = edited("run1-green", "run_results.json", |doc| {
        doc["metadata"]["generated_at"] = json!("2026-11-21T21:42:32.683419");
        let row = doc["results"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["unique_id"] == "model.shop.fct_orders")
            .unwrap();
        row["status"] = json!("partial success");
        row["message"] = json!("1 of 3 batches failed");
        row["batch_results"] = json!({
            "successful": [["2026-11-19T00:00:00Z", "2026-11-20T00:00:00Z"],
                           ["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"]],
            "failed": [["2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"]]
        });
    });
    let report = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap()
        .report;
    let fct = find(&report, "model.shop.fct_orders");
    assert_eq!(
        native(fct),
        (
            StatusLevel::Error,
            "partial success",
            Some("1 of 3 batches failed")
        )
    );
    assert_eq!(
        (
            extra(fct, "successful_batches"),
            extra(fct, "failed_batches")
        ),
        (Some(2), Some(1))
    );
    // Batches are not rows: no errored count is implied.
    assert!(fct.errors.is_empty(), "{:?}", fct.errors);
    assert_eq!(fct.counts.errored, None);
    assert_eq!(fct.freshness, None);
    let summary = find(&report, "run_results.json");
    assert_eq!(extra(summary, "partial_success"), Some(1));
    assert_eq!(summary.freshness, Some(ts("2026-11-21T21:42:32.683419Z")));
    assert_eq!(native(summary).0, StatusLevel::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_without_sources_json_reports_configured_sources_as_not_checked() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["run_results.json", "manifest.json"] {
        std::fs::copy(shop("run1-green").join(name), dir.path().join(name)).unwrap();
    }
    let report = core_harness(Some(dir.path()))
        .await
        .collect(json!({}))
        .await
        .unwrap()
        .report;
    let orders = find(&report, "source.shop.shop_raw.orders");
    let (level, label, message) = native(orders);
    assert_eq!((level, label), (StatusLevel::Unknown, "not checked"));
    assert!(
        message.unwrap().contains("there is no sources.json"),
        "{message:?}"
    );
    assert_eq!(meta(orders, "warn_after"), Some("1 hour"));
    assert!(
        report
            .observations
            .iter()
            .all(|o| o.asset != "sources.json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_file_names_are_relative_and_the_grant_is_required() {
    // Renamed artifacts, configured by name.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("prod")).unwrap();
    for name in ["run_results.json", "sources.json", "manifest.json"] {
        std::fs::copy(
            shop("run3-recovering").join(name),
            dir.path().join("prod").join(name),
        )
        .unwrap();
    }
    let harness = core_harness(Some(dir.path())).await;
    let cfg = json!({"mode": "core", "run_results": "prod/run_results.json",
                     "sources": "prod/sources.json", "manifest": "prod/manifest.json"});
    harness.test_connection(cfg.clone()).await.unwrap();
    let report = harness.collect(cfg).await.unwrap().report;
    assert_matches_expected_summary_names(&report);

    for bad in ["../etc/passwd", "/data/run_results.json", ""] {
        let err = harness
            .collect(json!({"run_results": bad}))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Config, "{err}");
        assert!(err.to_string().contains("relative"), "{err}");
    }
    let err = harness.collect(json!({})).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(
        err.to_string().contains("run_results.json not found"),
        "{err}"
    );

    // Without a read_dir grant there is nothing to read.
    let err = core_harness(None)
        .await
        .collect(json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("read_dir"), "{err}");
}

// ---------------------------------------------------------------------------
// Through the daemon: what `tributary run --json` stores and judges

/// `tributary run dbt-shop --json` on `dir` (granted as the project's
/// `target/`), with the native-status rule on; the printed JSON.
fn daemon_run(dir: &Path) -> Value {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            r#"
plugins_dir = "{plugins}"
data_dir = "{data}"

[storage]
url = "sqlite://{db}"

[[tenants]]
id = "shop"
name = "Shop"

[[systems]]
id = "dbt-shop"
name = "dbt (shop)"
kind = "dbt"

[[checks]]
id = "dbt-shop"
system = "dbt-shop"
connector = "dbt"
schedule = {{ every = "5m" }}
grants = {{ read_dir = "{dir}" }}

[checks.rules]
native_status = {{ enabled = true }}
"#,
            plugins = plugin("dbt").parent().unwrap().display(),
            data = work.path().join("data").display(),
            db = work.path().join("tributary.db").display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(tributary_tests::kit::daemon_binary())
        .args(["run", "dbt-shop", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn printed<'a>(run: &'a Value, asset: &str) -> &'a Value {
    run["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["asset"] == asset)
        .unwrap_or_else(|| panic!("no observation of {asset}"))
}

/// The printed health of an asset of the check: status and reasons.
fn health_of<'a>(run: &'a Value, asset: &str) -> (&'a str, Vec<&'a str>) {
    let entity = format!("asset:dbt-shop:{asset}");
    let h = run["health"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["entity"] == entity.as_str())
        .unwrap_or_else(|| panic!("no health of {entity}"));
    let reasons = h["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    (h["status"].as_str().unwrap(), reasons)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_daemon_skips_are_not_healthy_and_nothing_is_invented_or_cut() {
    let run = daemon_run(&shop("run2-failures"));

    // A skip is no evidence of health: WARNING, with its cause.
    let (status, reasons) = health_of(&run, "model.shop.rpt_daily_revenue");
    assert_eq!(status, "WARNING", "{reasons:?}");
    assert!(
        reasons[0].contains("skipped because upstream model.shop.fct_orders (error) failed"),
        "{reasons:?}"
    );

    // The failed model: UNHEALTHY by dbt's word, with no errored count
    // dbt never gave.
    let (status, reasons) = health_of(&run, "model.shop.fct_orders");
    assert_eq!(status, "UNHEALTHY", "{reasons:?}");
    let fct = printed(&run, "model.shop.fct_orders");
    assert_eq!(fct["errored"], Value::Null, "{fct}");
    assert_eq!(fct["error_totals"], json!({}), "{fct}");
    // The failing test's count is dbt's.
    let email = printed(&run, "test.shop.not_null_dim_customers_email.ed68b54d1a");
    assert_eq!(email["errored"], json!(1));

    // A stale source's reason says dbt's age and threshold.
    let (status, reasons) = health_of(&run, "source.shop.shop_raw.orders");
    assert_eq!(status, "WARNING");
    assert!(
        reasons[0].contains("loaded 3h 20m 9s ago; dbt's warn_after is 1 hour"),
        "{reasons:?}"
    );

    // Freshness to the millisecond the store keeps (dbt wrote
    // 21:42:50.355566), not cut to the second.
    let stg = printed(&run, "model.shop.stg_orders");
    assert_eq!(stg["freshness"], "2026-11-21T21:42:50.355Z");
}

fn assert_matches_expected_summary_names(report: &Report) {
    assert_eq!(
        extra(find(report, "prod/run_results.json"), "success"),
        Some(11)
    );
    assert_eq!(extra(find(report, "prod/sources.json"), "warn"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_discover_lists_the_manifest_nodes() {
    let assets = core_harness(Some(&shop("run1-green")))
        .await
        .discover(json!({}))
        .await
        .unwrap();
    let count = |kind: &str| assets.iter().filter(|a| a.kind == kind).count();
    assert_eq!(
        (
            count("model"),
            count("seed"),
            count("test"),
            count("source"),
            count("exposure")
        ),
        (6, 5, 23, 4, 1)
    );
    assert_eq!(assets.len(), 39);
    let orders = assets
        .iter()
        .find(|a| a.asset == "source.shop.shop_raw.orders")
        .unwrap();
    assert_eq!(orders.description.as_deref(), Some("shop.raw.orders"));
}

// ---------------------------------------------------------------------------
// Config and description

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describes_itself_and_its_schema_agrees_with_the_config() {
    let harness = core_harness(None).await;
    let d = harness.plugin().descriptor();
    assert_eq!(d.name, "dbt");
    assert_eq!(
        d.suggested_hosts,
        vec![
            "https://cloud.getdbt.com",
            "https://metadata.cloud.getdbt.com",
            "https://*.dbt.com"
        ]
    );
    let schema: Value = serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(schema["properties"]["token"]["x-secret"], true);
    let validator = jsonschema::draft202012::new(&schema).unwrap();

    let admin =
        json!({"mode": "cloud", "api": "admin", "account_id": 1, "job_ids": [2], "token": "t"});
    let discovery = json!({"mode": "cloud", "api": "discovery", "environment_id": 3, "token": "t"});
    for good in [
        json!({}),
        json!({"manifest": "m.json"}),
        admin.clone(),
        discovery.clone(),
    ] {
        assert!(validator.is_valid(&good), "{good}");
    }
    let mut bad = vec![
        json!({"token": "t"}),
        json!({"mode": "cloud", "token": "t"}),
        json!({"mode": "cloud", "api": "admin", "job_ids": [2], "token": "t"}),
        json!({"mode": "cloud", "api": "admin", "account_id": 1, "job_ids": [2]}),
        json!({"mode": "core", "api": "admin"}),
        json!({"colour": "blue"}),
    ];
    let mut with = |base: &Value, key: &str, value: Value| {
        let mut v = base.clone();
        v[key] = value;
        bad.push(v);
    };
    with(&discovery, "job_ids", json!([1]));
    with(&admin, "environment_id", json!(1));
    with(&admin, "run_results", json!("x.json"));
    with(&discovery, "page_size", json!(501));
    // The schema and the plugin refuse the same configs.
    for cfg in bad {
        assert!(!validator.is_valid(&cfg), "the schema accepts {cfg}");
        let err = harness.collect(cfg.clone()).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Config, "{cfg}: {err}");
    }
}

// ---------------------------------------------------------------------------
// dbt Cloud, Admin API

struct Cloud {
    switch: ScenarioSwitch,
    fake: DbtCloudFake,
    server: TestServer,
    harness: Harness,
}

async fn cloud(configure: impl FnOnce(DbtCloudFake) -> DbtCloudFake) -> Cloud {
    let switch = ScenarioSwitch::new(Scenario::Healthy);
    let fake = configure(DbtCloudFake::new(
        FakeClock::fixed_unix(NOW),
        switch.clone(),
    ));
    let server = fake.clone().start().await;
    let harness = Harness::builder(plugin("dbt"))
        .now_unix(NOW as u64)
        .allow_host(&server.url())
        .secret(TOKEN)
        .build()
        .await
        .expect("the dbt plugin loads");
    Cloud {
        switch,
        fake,
        server,
        harness,
    }
}

fn admin_config(server: &TestServer) -> Value {
    json!({"mode": "cloud", "api": "admin", "account_id": ACCOUNT_ID, "job_ids": [JOB_ID],
           "token": TOKEN, "base_url": server.url()})
}

fn href(run: u64) -> String {
    format!("https://cloud.getdbt.com/deploy/{ACCOUNT_ID}/projects/5190/runs/{run}/")
}

/// `core`'s observation as the Cloud fake must report it: times moved by
/// the fake's shift, dbt Cloud's run on it.
fn as_cloud(core: &Observation, by: TimeDelta, run: u64) -> Observation {
    let mut o = core.clone();
    o.freshness = o.freshness.map(|t| shift(t, by));
    for e in &mut o.errors {
        e.at = e.at.map(|t| shift(t, by));
        e.log_link = Some(href(run));
    }
    for m in &mut o.metadata {
        if m.key == "snapshotted_at" {
            let at = DateTime::parse_from_rfc3339(&m.value)
                .unwrap()
                .with_timezone(&Utc)
                + by;
            m.value = at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        }
    }
    for (key, value) in [("dbt_cloud_job_id", JOB_ID), ("dbt_cloud_run_id", run)] {
        o.metadata.push(tributary::plugin::MetadataEntry {
            key: key.into(),
            value: value.to_string(),
        });
    }
    o
}

/// Every node and source of Core mode's report of `run`, reported the same
/// through the Admin API.
async fn assert_same_as_core(cloud: &Report, run: &str, by: TimeDelta) {
    let core = core_report(run).await;
    let mut compared = 0;
    for core_obs in &core.observations {
        if core_obs.kind == "invocation" {
            continue;
        }
        assert_eq!(
            find(cloud, &core_obs.asset),
            &as_cloud(core_obs, by, LATEST_RUN_ID),
            "{}",
            core_obs.asset
        );
        compared += 1;
    }
    // And nothing more than the job.
    assert_eq!(cloud.observations.len(), compared + 1);
}

fn runs_requests(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/runs/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reports_the_latest_run_exactly_like_core_mode() {
    let c = cloud(|f| f).await;
    let report = c
        .harness
        .collect(admin_config(&c.server))
        .await
        .unwrap()
        .report;
    let by = c.fake.artifact_shift();
    assert_same_as_core(&report, "run1-green", by).await;

    let job = find(&report, &format!("job.{JOB_ID}"));
    assert_eq!(job.kind, "job");
    assert_eq!(native(job), (StatusLevel::Ok, "Success", None));
    let finished = Timestamp {
        seconds: NOW - 300,
        nanos: 0,
    };
    assert_eq!(job.freshness, Some(finished));
    assert_eq!(
        meta(job, "run_id"),
        Some(LATEST_RUN_ID.to_string().as_str())
    );
    assert_eq!(meta(job, "href"), Some(href(LATEST_RUN_ID).as_str()));
    assert_eq!(
        meta(job, "summary"),
        Some("PASS=34 WARN=0 ERROR=0 SKIP=0 NO-OP=1 TOTAL=35")
    );
    assert_eq!(meta(job, "in_progress_run_id"), None);
    for (name, n) in [
        ("success", 11),
        ("pass", 23),
        ("no_op", 1),
        ("total", 35),
        ("freshness_pass", 4),
        ("freshness_no_result", 0),
    ] {
        assert_eq!(extra(job, name), Some(n), "{name}");
    }
    // Freshness is real relative to the clock: run1's orders were 15 min
    // old when the run ended, 5 minutes ago.
    let orders = find(&report, "source.shop.shop_raw.orders");
    let age = NOW - orders.freshness.unwrap().seconds;
    assert!((1_200..1_220).contains(&age), "{age}");

    // What it asked: one page of runs, then the run's three artifacts.
    let requests = c.server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    let artifacts = format!("/api/v2/accounts/{ACCOUNT_ID}/runs/{LATEST_RUN_ID}/artifacts");
    assert_eq!(
        paths,
        vec![
            format!("/api/v2/accounts/{ACCOUNT_ID}/runs/"),
            format!("{artifacts}/run_results.json"),
            format!("{artifacts}/manifest.json"),
            format!("{artifacts}/sources.json"),
        ]
    );
    let list = &requests[0];
    assert_eq!(
        list.query.as_deref(),
        Some(format!("job_definition_id={JOB_ID}&order_by=-id&limit=5&offset=0").as_str())
    );
    for r in &requests {
        assert_eq!(r.method, "GET");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Token {TOKEN}").as_str())
        );
        assert_eq!(r.header("accept"), Some("application/json"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_failing_run_reports_the_error_and_run2_like_core_mode() {
    let c = cloud(|f| f).await;
    c.switch.set(Scenario::Failing);
    let report = c
        .harness
        .collect(admin_config(&c.server))
        .await
        .unwrap()
        .report;
    assert_same_as_core(&report, "run2-failures", c.fake.artifact_shift()).await;

    let job = find(&report, &format!("job.{JOB_ID}"));
    let (level, label, message) = native(job);
    assert_eq!((level, label), (StatusLevel::Error, "Error"));
    assert!(message.unwrap().contains("fct_orders"), "{message:?}");
    assert_eq!(
        job.freshness, None,
        "a failed run refreshed nothing for sure"
    );
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    assert_eq!(job.counts.errored, None);
    assert_eq!(meta(job, "href"), Some(href(LATEST_RUN_ID).as_str()));
    assert_eq!(extra(job, "error"), Some(2));
    assert_eq!(extra(job, "freshness_no_result"), Some(1));
    let email = find(&report, "test.shop.not_null_dim_customers_email.ed68b54d1a");
    assert_eq!(
        email.errors[0].log_link.as_deref(),
        Some(href(LATEST_RUN_ID).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_pages_past_runs_in_progress_to_the_last_finished_one() {
    let c = cloud(|f| f.runs_in_progress(6)).await;
    let report = c
        .harness
        .collect(admin_config(&c.server))
        .await
        .unwrap()
        .report;
    let job = find(&report, &format!("job.{JOB_ID}"));
    assert_eq!(native(job).1, "Success");
    assert_eq!(
        meta(job, "run_id"),
        Some(LATEST_RUN_ID.to_string().as_str())
    );
    assert_eq!(
        meta(job, "in_progress_run_id"),
        Some((LATEST_RUN_ID + 6).to_string().as_str())
    );
    assert_eq!(meta(job, "in_progress_status"), Some("Queued"));
    assert!(meta(job, "in_progress_since").is_some());

    let requests = c.server.requests();
    let offsets: Vec<Option<&str>> = runs_requests(&requests)
        .iter()
        .map(|r| r.query_param("offset"))
        .collect();
    assert_eq!(offsets, vec![Some("0"), Some("5")]);
    assert!(requests.iter().any(|r| {
        r.path
            .contains(&format!("/runs/{LATEST_RUN_ID}/artifacts/"))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_stale_run_reports_old_freshness() {
    let c = cloud(|f| f).await;
    c.switch.set(Scenario::Stale);
    let report = c
        .harness
        .collect(admin_config(&c.server))
        .await
        .unwrap()
        .report;
    let job = find(&report, &format!("job.{JOB_ID}"));
    let finished = NOW - STALE.as_secs() as i64;
    assert_eq!(
        job.freshness,
        Some(Timestamp {
            seconds: finished,
            nanos: 0
        })
    );
    // dbt said pass when it ran; the age relative to the clock is days.
    let orders = find(&report, "source.shop.shop_raw.orders");
    assert_eq!(native(orders).1, "pass");
    let by = c.fake.artifact_shift();
    assert_eq!(
        orders.freshness,
        Some(shift(ts("2026-11-21T21:27:26.143678+00:00"), by))
    );
    assert!(NOW - orders.freshness.unwrap().seconds > STALE.as_secs() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_job_without_freshness_or_manifest_fetches_only_run_results() {
    let c = cloud(|f| f.without_freshness()).await;
    let mut cfg = admin_config(&c.server);
    cfg["fetch_manifest"] = json!(false);
    let report = c.harness.collect(cfg).await.unwrap().report;
    let requests = c.server.requests();
    let fetched: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.path.rsplit_once("/artifacts/").map(|(_, name)| name))
        .collect();
    assert_eq!(fetched, vec!["run_results.json"]);
    // Without a manifest or freshness, sources are unknown to this run.
    assert!(report.observations.iter().all(|o| o.kind != "source"));
    assert_eq!(report.observations.len(), 35 + 1);
    let job = find(&report, &format!("job.{JOB_ID}"));
    assert_eq!(extra(job, "freshness_pass"), None);

    // With the manifest, configured sources are "not checked", not failed.
    let report = c
        .harness
        .collect(admin_config(&c.server))
        .await
        .unwrap()
        .report;
    let orders = find(&report, "source.shop.shop_raw.orders");
    let (level, label, message) = native(orders);
    assert_eq!((level, label), (StatusLevel::Unknown, "not checked"));
    assert!(message.unwrap().contains("did not check source freshness"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_failures_are_classified() {
    let c = cloud(|f| f.slow_delay(Duration::from_millis(1_500))).await;
    let cfg = admin_config(&c.server);

    c.switch.set(Scenario::Unauthorized);
    let err = c.harness.collect(cfg.clone()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");
    assert!(err.to_string().contains("Invalid token."), "{err}");

    c.switch.set(Scenario::RateLimited);
    let err = c.harness.collect(cfg.clone()).await.unwrap_err();
    assert!(
        matches!(err, RunError::Connector { class: ErrorClass::Transient, retry_after: Some(wait), .. }
                 if wait == Duration::from_secs(RETRY_AFTER_S)),
        "{err:?}"
    );

    c.switch.set(Scenario::Malformed);
    let err = c.harness.collect(cfg.clone()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert!(
        err.to_string()
            .contains("unexpected response body at \"data\""),
        "{err}"
    );

    c.switch.set(Scenario::Slow);
    let mut slow_cfg = cfg.clone();
    slow_cfg["request_timeout_s"] = json!(1);
    let err = c.harness.collect(slow_cfg).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");

    c.switch.set(Scenario::Healthy);
    let mut wrong = cfg.clone();
    wrong["token"] = json!("not-the-token");
    assert_eq!(
        c.harness.collect(wrong).await.unwrap_err().class(),
        ErrorClass::Auth
    );
    let mut other_account = cfg.clone();
    other_account["account_id"] = json!(1);
    let err = c.harness.collect(other_account).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("account 1 not found"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_test_connection_and_discover() {
    let c = cloud(|f| f).await;
    c.harness
        .test_connection(admin_config(&c.server))
        .await
        .unwrap();
    let jobs = c.server.take_requests();
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].path,
        format!("/api/v2/accounts/{ACCOUNT_ID}/jobs/{JOB_ID}/")
    );

    let mut cfg = admin_config(&c.server);
    cfg["job_ids"] = json!([JOB_ID, 999]);
    let err = c.harness.test_connection(cfg).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("job 999 not found"), "{err}");

    let assets = c.harness.discover(admin_config(&c.server)).await.unwrap();
    assert_eq!(assets.len(), 39 + 1);
    assert!(
        assets
            .iter()
            .any(|a| a.asset == format!("job.{JOB_ID}") && a.kind == "job")
    );
}

// ---------------------------------------------------------------------------
// dbt Cloud, Discovery API

fn discovery_config(server: &TestServer, page_size: u32) -> Value {
    json!({"mode": "cloud", "api": "discovery", "environment_id": ENVIRONMENT_ID,
           "token": TOKEN, "metadata_url": format!("{}/graphql", server.url()),
           "page_size": page_size})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_pages_through_sources_and_models() {
    let c = cloud(|f| f).await;
    let report = c
        .harness
        .collect(discovery_config(&c.server, 2))
        .await
        .unwrap()
        .report;
    let by = c.fake.artifact_shift();

    // Sources: dbt's freshness verdicts and ages, loaded-at times moved
    // with the run.
    let facts = &expected()["runs"]["run1-green"]["freshness"]["sources"];
    for (id, source) in facts.as_object().unwrap() {
        let o = find(&report, id);
        assert_eq!(native(o).1, source["status"].as_str().unwrap());
        assert_eq!(
            o.freshness,
            Some(shift(ts(source["max_loaded_at"].as_str().unwrap()), by))
        );
        let age: f64 = meta(o, "max_loaded_at_time_ago_in_s")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(age, source["age_s"].as_f64().unwrap());
        assert_eq!(
            meta(o, "freshness_run_id"),
            Some(LATEST_RUN_ID.to_string().as_str())
        );
        let warn = format!(
            "{} {}",
            source["warn_after"]["count"],
            source["warn_after"]["period"].as_str().unwrap()
        );
        assert_eq!(meta(o, "warn_after"), Some(warn.as_str()));
    }
    // Models: the last run's verdict, fresh as of its execute step.
    let stg = find(&report, "model.shop.stg_orders");
    assert_eq!(stg.kind, "model");
    assert_eq!(native(stg).0, StatusLevel::Ok);
    let completed = fixture("run1-green", "run_results.json")["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.stg_orders")
        .unwrap()["timing"][1]["completed_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(stg.freshness, Some(shift(ts(&completed), by)));
    assert_eq!(meta(stg, "relation"), Some("shop.staging.stg_orders"));
    assert_eq!(meta(stg, "materialized"), Some("view"));
    assert_eq!(
        meta(stg, "last_run_id"),
        Some(LATEST_RUN_ID.to_string().as_str())
    );
    assert_eq!(report.observations.len(), 4 + 6);

    // Four sources and six models in pages of two: 2 + 3 requests, each
    // asking for the page after the last one.
    let requests = c.server.requests();
    assert_eq!(requests.len(), 5);
    let mut cursors: Vec<(String, Value)> = Vec::new();
    for r in &requests {
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/graphql"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let body = r.json().unwrap();
        assert_eq!(body["variables"]["environmentId"], json!(ENVIRONMENT_ID));
        assert_eq!(body["variables"]["first"], json!(2));
        cursors.push((
            body["operationName"].as_str().unwrap().to_owned(),
            body["variables"]["after"].clone(),
        ));
    }
    let ops: Vec<&str> = cursors.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "TributarySources",
            "TributarySources",
            "TributaryModels",
            "TributaryModels",
            "TributaryModels"
        ]
    );
    let afters: Vec<&Value> = cursors.iter().map(|(_, after)| after).collect();
    assert_eq!(afters[0], &Value::Null);
    assert_eq!(afters[2], &Value::Null);
    assert!(afters[1].is_string() && afters[3].is_string() && afters[4].is_string());
    assert_ne!(afters[3], afters[4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_failing_reports_last_attempt_and_last_success() {
    let c = cloud(|f| f).await;
    c.switch.set(Scenario::Failing);
    let report = c
        .harness
        .collect(discovery_config(&c.server, 500))
        .await
        .unwrap()
        .report;
    let fct = find(&report, "model.shop.fct_orders");
    let (level, label, message) = native(fct);
    assert_eq!((level, label), (StatusLevel::Error, "error"));
    assert!(message.unwrap().contains("amount_usd"));
    assert_eq!(fct.counts.errored, None);
    assert!(fct.errors.is_empty(), "{:?}", fct.errors);
    // Its data is as of the previous run's successful build.
    let previous = c.fake.latest_finished_at() - TimeDelta::from_std(RUN_INTERVAL).unwrap();
    let green_end = DateTime::parse_from_rfc3339(
        fixture("run1-green", "sources.json")["metadata"]["generated_at"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
    .with_timezone(&Utc);
    let fct_green = fixture("run1-green", "run_results.json")["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unique_id"] == "model.shop.fct_orders")
        .unwrap()["timing"][1]["completed_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fct.freshness,
        Some(shift(ts(&fct_green), previous - green_end))
    );
    assert_eq!(
        meta(fct, "last_success_run_id"),
        Some((LATEST_RUN_ID - 1).to_string().as_str())
    );

    // The applied state has no lineage to name the cause; still no
    // evidence of health.
    let rpt = find(&report, "model.shop.rpt_daily_revenue");
    assert_eq!(native(rpt).0, StatusLevel::Warn);
    assert_eq!(
        native(rpt).2,
        Some("skipped, but no failed upstream node is in these results to say why")
    );
    assert_eq!(
        native(find(&report, "source.shop.shop_raw.orders")).1,
        "warn"
    );
    assert_eq!(
        native(find(&report, "source.shop.shop_raw.payments")).1,
        "error"
    );
    let shipments = find(&report, "source.shop.shop_raw.shipments");
    let (level, label, message) = native(shipments);
    assert_eq!((level, label), (StatusLevel::Error, "no result"));
    assert!(
        message
            .unwrap()
            .contains(&format!("environment {ENVIRONMENT_ID}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_stale_and_failures() {
    let c = cloud(|f| f.slow_delay(Duration::from_millis(1_500))).await;
    let cfg = discovery_config(&c.server, 500);

    c.switch.set(Scenario::Stale);
    let report = c.harness.collect(cfg.clone()).await.unwrap().report;
    let orders = find(&report, "source.shop.shop_raw.orders");
    assert!(NOW - orders.freshness.unwrap().seconds > STALE.as_secs() as i64);

    c.switch.set(Scenario::Unauthorized);
    let err = c.harness.collect(cfg.clone()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Auth, "{err}");

    c.switch.set(Scenario::RateLimited);
    let err = c.harness.collect(cfg.clone()).await.unwrap_err();
    assert!(
        matches!(err, RunError::Connector { class: ErrorClass::Transient, retry_after: Some(wait), .. }
                 if wait == Duration::from_secs(RETRY_AFTER_S)),
        "{err:?}"
    );

    c.switch.set(Scenario::Malformed);
    let err = c.harness.collect(cfg.clone()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::System, "{err}");
    assert!(err.to_string().contains("edges"), "{err}");

    c.switch.set(Scenario::Slow);
    let mut slow = cfg.clone();
    slow["request_timeout_s"] = json!(1);
    assert_eq!(
        c.harness.collect(slow).await.unwrap_err().class(),
        ErrorClass::Transient
    );

    c.switch.set(Scenario::Healthy);
    let mut other = cfg.clone();
    other["environment_id"] = json!(7);
    let err = c.harness.collect(other).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    assert!(err.to_string().contains("environment 7 not found"), "{err}");

    c.harness.test_connection(cfg.clone()).await.unwrap();
    let last = c.server.requests().pop().unwrap();
    assert_eq!(last.json().unwrap()["variables"]["first"], json!(1));
    let assets = c.harness.discover(cfg).await.unwrap();
    assert_eq!(assets.len(), 10);
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn slos_of(toml: &str) -> Vec<Slo> {
    crate::config::parse(toml, Path::new("t.toml"), &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .slos
}

fn import_one(yaml: &str) -> Result<Imported, ImportErrors> {
    import(&[(PathBuf::from("slos.yaml"), yaml.to_owned())])
}

/// The one error of a refused batch, as the user reads it.
fn refusal(yaml: &str) -> String {
    let errors = import_one(yaml).expect_err("refused");
    assert_eq!(errors.0.len(), 1, "{errors}");
    errors.to_string()
}

/// Every indicator, both windows, both budgetings, every policy away from
/// its default, time zones on rolling and calendar windows.
const EVERY_KIND: &str = r#"
[[slos]]
timezone = "Europe/Berlin"
target = "95%"
name = "marts-fresh"
indicator = "freshness"
deadline = "07:30"
description = "The marts are built by half past seven"
window = "20d"
system = "dbt-*"
check = "dbt-core"

[[slos]]
name = "availability-hourly"
tenant = "acme"
system = "wh"
indicator = "availability"
slice = "1h"
window = "month"
target = 0.999
timezone = "America/New_York"
no_data = "excluded"
maintenance = "good"
severity = "UNHEALTHY"
budget_alerts = ["25%", 0.75, 0.1, 0]

[[slos]]
name = "flow-healthy"
flow = "orders-*"
level = "flow"
indicator = "healthy"
budgeting = "occurrences"
target = 0.9
no_data = "good"
maintenance = "bad"

[[slos]]
name = "rows"
asset = "*"
indicator = "completeness"
max_drop = "7.5%"
target = 0.95
budget_alerts = []

[[slos]]
name = "fresh-hours"
asset = "*"
indicator = "freshness"
max_age = "26h 30m"
slice = "1h"
window = "36h"
burn_alerts = false
target = 0.95

[[slos]]
name = "fresh-rule"
tenant = "acme"
indicator = "freshness"
budgeting = "occurrences"
slice = "1h"
window = "2d"
target = 0.99

[[slos]]
name = "tenant-healthy"
tenant = "acme"
level = "tenant"
indicator = "healthy"
target = 0.5
"#;

#[test]
fn config_export_import_gives_the_same_slos() {
    let slos = slos_of(EVERY_KIND);
    assert_eq!(slos.len(), 7);
    let yaml = export(&slos);
    let imported = import_one(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(imported.slos, 7);
    assert!(imported.skipped.is_empty());
    assert_eq!(slos_of(&imported.toml), slos, "{yaml}\n{}", imported.toml);
    // And once more: the import's TOML exports to the same documents.
    assert_eq!(export(&slos_of(&imported.toml)), yaml);
}

#[test]
fn an_export_is_openslo_v1_with_the_rest_in_annotations() {
    let yaml = export(&slos_of(EVERY_KIND));
    let docs: Vec<Value> = yaml_serde::Deserializer::from_str(&yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 7);
    let fresh = &docs[0];
    assert_eq!(fresh["apiVersion"], "openslo/v1");
    assert_eq!(fresh["kind"], "SLO");
    assert_eq!(fresh["metadata"]["name"], "marts-fresh");
    assert_eq!(
        fresh["spec"]["description"],
        "The marts are built by half past seven"
    );
    assert_eq!(fresh["spec"]["service"], "dbt-core", "the plainest name");
    assert_eq!(fresh["spec"]["budgetingMethod"], "Timeslices");
    let source = &fresh["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"];
    assert_eq!(source["type"], "tributary");
    assert_eq!(
        source["spec"],
        serde_json::json!({"indicator": "freshness", "system": "dbt-*",
            "check": "dbt-core", "level": "asset", "deadline": "07:30"})
    );
    assert_eq!(
        fresh["spec"]["timeWindow"],
        serde_json::json!([{"duration": "20d", "isRolling": true}])
    );
    assert_eq!(
        fresh["spec"]["objectives"],
        serde_json::json!([{"target": 0.95, "timeSliceTarget": 1, "timeSliceWindow": "1d"}])
    );
    assert_eq!(
        fresh["metadata"]["annotations"],
        serde_json::json!({
            "tributary.dev/no-data": "bad",
            "tributary.dev/maintenance": "excluded",
            "tributary.dev/severity": "WARNING",
            "tributary.dev/budget-alerts": "50%, 0%",
            "tributary.dev/burn-alerts": "false",
            "tributary.dev/timezone": "Europe/Berlin",
        })
    );

    let hourly = &docs[1];
    assert_eq!(hourly["spec"]["service"], "wh");
    assert_eq!(
        hourly["spec"]["timeWindow"],
        serde_json::json!([{"duration": "1M", "isRolling": false,
            "calendar": {"startTime": "2020-01-01 00:00:00", "timeZone": "America/New_York"}}])
    );
    assert!(
        hourly["metadata"]["annotations"]
            .get("tributary.dev/timezone")
            .is_none(),
        "the calendar says it"
    );
    let flow = &docs[2];
    assert_eq!(flow["spec"]["service"], "tributary", "globs only");
    assert_eq!(flow["spec"]["budgetingMethod"], "Occurrences");
    assert_eq!(
        flow["spec"]["objectives"],
        serde_json::json!([{"target": 0.9, "timeSliceWindow": "1d"}]),
        "no timeSliceTarget under Occurrences"
    );
    assert_eq!(
        docs[4]["spec"]["timeWindow"][0]["duration"], "36h",
        "hours when not whole days"
    );
    assert_eq!(docs[5]["spec"]["timeWindow"][0]["duration"], "2d");
}

/// Written as the OpenSLO spec's own examples are: a calendar month in a
/// time zone, `targetPercent`, a day slice, comments, other kinds beside.
const SPEC_STYLE: &str = r#"
# Freshness of the analytics marts, as the data platform states it.
apiVersion: openslo/v1
kind: Service
metadata:
  name: analytics
spec:
  description: The analytics marts
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: freshness-analytics
  displayName: Analytics is refreshed by 6am
  labels:
    team: [data-platform]
  annotations:
    owner: data-platform
    tributary.dev/severity: UNHEALTHY
spec:
  description: The daily refresh landed by 06:00.
  service: analytics
  indicator:
    metadata:
      name: analytics-freshness
    spec:
      thresholdMetric:
        metricSource:
          type: tributary
          spec:
            indicator: freshness
            check: warehouse
            asset: ANALYTICS.*
            deadline: "06:00"
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar:
        startTime: 2022-01-01 00:00:00
        timeZone: Europe/Berlin
  budgetingMethod: Timeslices
  objectives:
    - displayName: Most days
      targetPercent: 95
      timeSliceTarget: 1
      timeSliceWindow: 1d
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: orders-available
spec:
  service: orders
  indicator:
    metadata:
      name: orders
    spec:
      thresholdMetric:
        metricSource:
          type: Tributary
          spec:
            indicator: availability
            asset: orders
  timeWindow:
    - duration: 2w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.95
      timeSliceWindow: 1h
"#;

#[test]
fn a_spec_style_document_imports_to_the_expected_toml() {
    let imported = import_one(SPEC_STYLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        imported.toml,
        r#"[[slos]]
name = "freshness-analytics"
description = "The daily refresh landed by 06:00."
check = "warehouse"
asset = "ANALYTICS.*"
indicator = "freshness"
deadline = "06:00"
slice = "1d"
window = "month"
timezone = "Europe/Berlin"
budgeting = "timeslices"
target = "95%"
severity = "UNHEALTHY"

[[slos]]
name = "orders-available"
asset = "orders"
indicator = "availability"
slice = "1h"
window = "14d"
budgeting = "occurrences"
target = 0.95
"#
    );
    assert_eq!(imported.slos, 2);
    assert_eq!(
        imported.skipped,
        vec![(PathBuf::from("slos.yaml"), 1, "Service".to_owned())]
    );
    let slos = slos_of(&imported.toml);
    assert_eq!(slos[0].window, Window::CalendarMonth);
    assert_eq!(slos[0].calendar.zone, chrono_tz::Europe::Berlin);
    assert!((slos[0].counting.target - 0.95).abs() < 1e-12);
    assert_eq!(slos[1].window, Window::Rolling { slices: 14 * 24 });
}

#[test]
fn an_indicator_ref_names_an_sli_document_of_the_batch() {
    let sli = r#"
apiVersion: openslo/v1
kind: SLI
metadata:
  name: rows-kept
spec:
  thresholdMetric:
    metricSource:
      type: tributary
      spec:
        indicator: completeness
        asset: "*"
        max_drop: 0.1
"#;
    let slo = r#"
apiVersion: openslo/v1
kind: SLO
metadata:
  name: rows
spec:
  service: all
  indicatorRef: rows-kept
  budgetingMethod: Timeslices
  objectives:
    - target: 0.9
      timeSliceTarget: 1.0
      timeSliceWindow: 24h
"#;
    let files = [
        (PathBuf::from("slo.yaml"), slo.to_owned()),
        (PathBuf::from("sli.yaml"), sli.to_owned()),
    ];
    let imported = import(&files).unwrap_or_else(|e| panic!("{e}"));
    let slos = slos_of(&imported.toml);
    assert_eq!(slos[0].indicator, Indicator::Completeness { max_drop: 0.1 });
    assert_eq!(slos[0].calendar.slice, SliceLen::Day);
    assert_eq!(
        slos[0].window,
        Window::Rolling { slices: 28 },
        "the default"
    );

    let alone = import(&files[..1]).expect_err("the SLI is not there");
    assert_eq!(alone.0.len(), 1);
    assert_eq!(alone.0[0].at.path, "spec.indicatorRef");
    assert!(alone.0[0].message.contains("names no SLI"), "{alone}");
}

/// `SPEC_STYLE`'s second SLO with `from` replaced by `to`.
fn altered(from: &str, to: &str) -> String {
    let second = SPEC_STYLE.split("---").nth(2).unwrap();
    assert!(second.contains(from), "{from}");
    second.replacen(from, to, 1)
}

#[test]
fn what_tributary_cannot_judge_is_refused_with_the_reason() {
    let ratio = refusal(&altered("Occurrences", "RatioTimeslices"));
    assert!(
        ratio.starts_with("slos.yaml: document 1, spec.budgetingMethod: RatioTimeslices"),
        "{ratio}"
    );
    assert!(ratio.contains("use Timeslices"), "{ratio}");

    let prometheus = refusal(&altered("type: Tributary", "type: Prometheus"));
    assert!(
        prometheus.contains(
            "document 1, spec.indicator.spec.thresholdMetric.metricSource.type: metric source type \"Prometheus\" is not Tributary's"
        ),
        "{prometheus}"
    );
    let ratio_metric = refusal(&altered(
        "thresholdMetric:",
        "ratioMetric: {counter: true}\n      thresholdMetric:",
    ));
    assert!(
        ratio_metric.contains("spec.indicator.spec.ratioMetric: a ratio metric"),
        "{ratio_metric}"
    );
    let latency = refusal(&altered("indicator: availability", "indicator: latency"));
    assert!(
        latency.contains("metricSource.spec.indicator: \"latency\" is not a Tributary indicator"),
        "{latency}"
    );
    let stray = refusal(&altered(
        "asset: orders",
        "asset: orders\n            query: up",
    ));
    assert!(
        stray.contains("metricSource.spec.query: unknown field"),
        "{stray}"
    );
    let partial = refusal(
        &altered(
            "budgetingMethod: Occurrences",
            "budgetingMethod: Timeslices",
        )
        .replace(
            "timeSliceWindow: 1h",
            "timeSliceWindow: 1h\n      timeSliceTarget: 0.99",
        ),
    );
    assert!(
        partial.contains("spec.objectives[0].timeSliceTarget: 0.99 is not taken"),
        "{partial}"
    );
    let minutes = refusal(&altered("timeSliceWindow: 1h", "timeSliceWindow: 5m"));
    assert!(
        minutes.contains("spec.objectives[0].timeSliceWindow"),
        "{minutes}"
    );
    let two = refusal(&altered(
        "    - target: 0.95",
        "    - target: 0.95\n    - target: 0.9",
    ));
    assert!(two.contains("spec.objectives: one objective only"), "{two}");
    let threshold = refusal(
        &altered(
            "    - target: 0.95",
            "    - target: 0.95\n      op: lt\n      value: 500",
        )
        .replace("      value: 500\n", ""),
    );
    assert!(
        threshold.contains("spec.objectives[0].op: not taken"),
        "{threshold}"
    );
    let quarter = refusal(
        &SPEC_STYLE
            .split("---")
            .nth(1)
            .unwrap()
            .replace("duration: 1M", "duration: 1Q"),
    );
    assert!(
        quarter.contains(
            "spec.timeWindow[0].duration: \"1Q\": Tributary's calendar window is the month"
        ),
        "{quarter}"
    );
    let mid_month = refusal(
        &SPEC_STYLE
            .split("---")
            .nth(1)
            .unwrap()
            .replace("2022-01-01 00:00:00", "2022-01-21 12:30:00"),
    );
    assert!(
        mid_month.contains("spec.timeWindow[0].calendar.startTime: \"2022-01-21 12:30:00\""),
        "{mid_month}"
    );
    let typo = refusal(&altered(
        "name: orders-available",
        "name: orders-available\n  annotations:\n    tributary.dev/severty: UNHEALTHY",
    ));
    assert!(
        typo.contains(
            "metadata.annotations[\"tributary.dev/severty\"]: unknown Tributary annotation"
        ),
        "{typo}"
    );
    let v1alpha = refusal(&altered(
        "apiVersion: openslo/v1",
        "apiVersion: openslo/v1alpha",
    ));
    assert!(
        v1alpha.contains("document 1, apiVersion: \"openslo/v1alpha\" is not openslo/v1"),
        "{v1alpha}"
    );
}

#[test]
fn what_the_config_refuses_is_named_at_the_openslo_field() {
    let target = refusal(&altered("target: 0.95", "target: 1.5"));
    assert!(
        target.starts_with(
            "slos.yaml: document 1, spec.objectives[0].target: a target must be above 0 and below 1"
        ),
        "{target}"
    );
    let window = refusal(
        &altered("duration: 2w", "duration: 36h")
            .replace("timeSliceWindow: 1h", "timeSliceWindow: 1d"),
    );
    assert!(
        window.contains("spec.timeWindow[0].duration: a window is whole slices"),
        "{window}"
    );
    let zone = refusal(
        &SPEC_STYLE
            .split("---")
            .nth(1)
            .unwrap()
            .replace("Europe/Berlin", "Mars/Olympus_Mons"),
    );
    assert!(
        zone.contains("spec.timeWindow[0].calendar.timeZone: unknown time zone"),
        "{zone}"
    );
    let no_scope = refusal(&altered("            asset: orders\n", ""));
    assert!(
        no_scope.contains(
            "spec.indicator.spec.thresholdMetric.metricSource.spec: name at least one of"
        ),
        "{no_scope}"
    );
    let drop = refusal(&altered(
        "indicator: availability",
        "indicator: availability\n            max_drop: 0.1",
    ));
    assert!(
        drop.contains("metricSource.spec.max_drop: `max_drop` does not apply"),
        "{drop}"
    );
    let zones = refusal(
        &SPEC_STYLE
            .split("---")
            .nth(1)
            .unwrap()
            .replace("owner: data-platform", "tributary.dev/timezone: UTC"),
    );
    assert!(
        zones.contains(
            "metadata.annotations[\"tributary.dev/timezone\"]: \"UTC\" contradicts \"Europe/Berlin\" given at spec.timeWindow[0].calendar.timeZone"
        ),
        "{zones}"
    );
}

#[test]
fn one_bad_document_stops_the_batch_and_every_mistake_is_named() {
    let good = SPEC_STYLE.split("---").nth(2).unwrap();
    let bad = altered("Occurrences", "RatioTimeslices").replace("orders-available", "orders-bad");
    let worse =
        altered("target: 0.95", "targetPercent: 200").replace("orders-available", "orders-worse");
    let text = format!("{good}---{bad}---{worse}");
    let errors = import_one(&text).expect_err("refused whole");
    let places: Vec<String> = errors.0.iter().map(|e| e.at.to_string()).collect();
    assert_eq!(
        places,
        [
            "slos.yaml: document 2, spec.budgetingMethod",
            "slos.yaml: document 3, spec.objectives[0].targetPercent",
        ],
        "{errors}"
    );
    // A duplicate name across files is the config's mistake, at the second.
    let files = [
        (PathBuf::from("a.yaml"), good.to_owned()),
        (PathBuf::from("b.yaml"), good.to_owned()),
    ];
    let twice = import(&files).expect_err("one name twice");
    assert_eq!(twice.0.len(), 1, "{twice}");
    assert_eq!(
        twice.to_string(),
        "b.yaml: document 1, metadata.name: duplicate SLO name \"orders-available\" (first at a.yaml: document 1)"
    );
}

#[test]
fn broken_yaml_is_named_at_its_document() {
    let text = format!(
        "{}---\nkind: SLO\nspec: [unclosed\n",
        SPEC_STYLE.split("---").nth(2).unwrap()
    );
    let errors = import_one(&text).expect_err("not YAML");
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].at.document, 2);
    assert!(errors.0[0].message.starts_with("not YAML"), "{errors}");
}

#[test]
fn a_document_serde_cannot_type_does_not_hide_the_next_ones() {
    let good = SPEC_STYLE.split("---").nth(2).unwrap();
    let text = format!(
        "{good}---\n1: [a]\n---\n{}",
        altered("target: 0.95", "target: 2").replace("orders-available", "orders-two")
    );
    let errors = import_one(&text).expect_err("refused");
    let places: Vec<String> = errors.0.iter().map(|e| e.at.to_string()).collect();
    assert_eq!(
        places,
        [
            "slos.yaml: document 2",
            "slos.yaml: document 3, spec.objectives[0].target",
        ],
        "{errors}"
    );
}

#[test]
fn text_from_a_document_stays_a_value_in_the_toml() {
    let sneaky = "x\"\n[server]\nlisten = \"0.0.0.0:1\"\n[[slos]]\nname = \"y";
    let yaml = SPEC_STYLE
        .split("---")
        .nth(2)
        .unwrap()
        .replace(
            "service: orders",
            &format!("description: {sneaky:?}\n  service: orders"),
        )
        .replace("asset: orders", "asset: \"orders\\n[storage]\"");
    let imported = import_one(&yaml).unwrap_or_else(|e| panic!("{e}"));
    let config = crate::config::parse(&imported.toml, Path::new("t.toml"), &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    assert_eq!(config.slos.len(), 1);
    assert_eq!(config.slos[0].description.as_deref(), Some(sneaky));
    assert_eq!(
        config.slos[0].scope.asset.as_deref(),
        Some("orders\n[storage]")
    );
    assert_eq!(
        config.server,
        crate::config::parse("", Path::new("e.toml"), &BTreeMap::new())
            .unwrap()
            .server
    );
}

//! `tributary slo export` and `tributary slo import` as a user runs them:
//! the config's SLOs out as OpenSLO YAML and back in as `[[slos]]` TOML
//! that the config reads to the same SLOs; a batch with a document it
//! cannot read prints nothing, names each mistake and exits non-zero.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use tributary::config::{Options, parse_with};
use tributary::slo::Slo;
use tributary_tests::kit::daemon_binary;

fn slo(args: &[&str], dir: &Path) -> Output {
    Command::new(daemon_binary())
        .arg("slo")
        .args(args)
        .current_dir(dir)
        .env_remove("TRIBUTARY_CONFIG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn slos_of(toml: &str, file: &Path) -> Vec<Slo> {
    let options = Options {
        require_known_connectors: false,
        ..Default::default()
    };
    parse_with(toml, file, &BTreeMap::new(), options)
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .slos
}

/// The README's worked example, and the kinds it does not show.
const CONFIG: &str = r#"
[[slos]]
name = "orders-available"
check = "warehouse"
asset = "ANALYTICS.ORDERS"
indicator = "availability"
slice = "1h"
window = "20d"
target = "95%"

[[slos]]
name = "orders-complete"
check = "warehouse"
asset = "ANALYTICS.ORDERS"
indicator = "completeness"
max_drop = "5%"
window = "20d"
target = "95%"

[[slos]]
name = "orders-fresh"
check = "warehouse"
asset = "ANALYTICS.ORDERS"
indicator = "freshness"
deadline = "06:00"
timezone = "Europe/Berlin"
window = "20d"
target = "95%"

[[slos]]
name = "acme-monthly"
tenant = "acme"
level = "tenant"
indicator = "healthy"
slice = "1h"
window = "month"
timezone = "America/New_York"
budgeting = "occurrences"
target = 0.999
no_data = "excluded"
maintenance = "good"
severity = "UNHEALTHY"
budget_alerts = ["75%", "10%", 0]
burn_alerts = false
"#;

#[test]
fn exported_slos_import_back_to_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tributary.toml");
    std::fs::write(&config, CONFIG).unwrap();

    let out = slo(&["export", "--config", "tributary.toml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert_eq!(yaml.matches("apiVersion: openslo/v1").count(), 4, "{yaml}");
    assert!(yaml.contains("budgetingMethod: Occurrences"), "{yaml}");
    assert!(yaml.contains("timeZone: America/New_York"), "{yaml}");
    std::fs::write(dir.path().join("slos.yaml"), &yaml).unwrap();

    let out = slo(&["import", "slos.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let toml = text(&out.stdout);
    assert_eq!(toml.matches("[[slos]]").count(), 4, "{toml}");
    assert_eq!(
        slos_of(&toml, Path::new("imported.toml")),
        slos_of(CONFIG, &config)
    );
}

#[test]
fn the_demo_slos_export_and_import() {
    let root = tributary_tests::repo_root();
    let out = slo(&["export", "--config", "config/demo.toml"], &root);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("demo-slos.yaml");
    std::fs::write(&yaml, &out.stdout).unwrap();
    let out = slo(&["import", yaml.to_str().unwrap()], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let names: Vec<String> = slos_of(&text(&out.stdout), &yaml)
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        [
            "intake-available",
            "analytics-fresh",
            "acme-documents-healthy"
        ]
    );
}

/// Flow style, as generators write it.
const GOOD: &str = r#"
apiVersion: openslo/v1
kind: SLO
metadata: {name: orders-available, annotations: {tributary.dev/no-data: excluded}}
spec:
  service: orders
  indicator:
    metadata: {name: orders}
    spec: {thresholdMetric: {metricSource: {type: tributary, spec: {indicator: availability, asset: orders}}}}
  timeWindow: [{duration: 4w, isRolling: true}]
  budgetingMethod: Timeslices
  objectives: [{target: 0.99, timeSliceTarget: 1, timeSliceWindow: 1h}]
"#;

#[test]
fn a_batch_with_a_document_it_cannot_read_prints_nothing_and_names_each_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let ratio = GOOD
        .replace("orders-available", "orders-ratio")
        .replace("Timeslices", "RatioTimeslices");
    let prometheus = GOOD
        .replace("orders-available", "orders-prom")
        .replace("type: tributary", "type: Prometheus");
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        format!("{ratio}---{prometheus}"),
    )
    .unwrap();

    let out = slo(&["import", "good.yaml", "bad.yaml"], dir.path());
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "", "nothing for the batch");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml: document 1, spec.budgetingMethod: RatioTimeslices averages"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "bad.yaml: document 2, spec.indicator.spec.thresholdMetric.metricSource.type: metric source type \"Prometheus\" is not Tributary's"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("2 error(s): nothing imported"), "{stderr}");

    // The good file alone imports.
    let out = slo(&["import", "good.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let slos = slos_of(&text(&out.stdout), Path::new("good.toml"));
    assert_eq!(slos.len(), 1);
    assert!((slos[0].counting.target - 0.99).abs() < 1e-12);
    assert_eq!(slos[0].counting.no_data, tributary::slo::Counts::Excluded);
    assert_eq!(
        slos[0].window,
        tributary::slo::Window::Rolling { slices: 28 * 24 }
    );

    // A file that is not there, and a config that is wrong, are named too.
    let out = slo(&["import", "missing.yaml"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("cannot read missing.yaml"));
    std::fs::write(
        dir.path().join("wrong.toml"),
        "[[slos]]\nname = \"x\"\nasset = \"*\"\nindicator = \"availability\"\ntarget = 2\n",
    )
    .unwrap();
    let out = slo(&["export", "--config", "wrong.toml"], dir.path());
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("/slos/0/target"),
        "{}",
        text(&out.stderr)
    );
}

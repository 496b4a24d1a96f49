//! Rules as written in config, per check, with per-asset overrides by glob.
//!
//! Every rule is optional. An override replaces the check's rules field by field
//! (a whole rule at a time: an override's `freshness` replaces the check's
//! `freshness`), so `freshness = {}` in an override turns freshness off for the
//! assets it matches.

use serde::{Deserialize, Serialize};

use super::model::Status;
use super::parse::{HumanDuration, Threshold, glob_match};

/// Freshness: the age of the asset's last update (`now - freshness`). Each
/// threshold is breached when the age is strictly greater, as dbt does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_after: Option<HumanDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_after: Option<HumanDuration>,
}

/// Completeness: missing = expected - received, as a count or a percent of
/// expected. Does not apply when expected or received is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletenessRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Threshold>,
}

/// Errors: the errored count, or as a percent the rate of errored out of
/// received + errored. Does not apply when errored is unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Threshold>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Threshold>,
}

/// Volume: received compared with the trailing mean of the received counts of
/// the last `window` completed runs, or (with `per = "days"`) of the last
/// `window` days before today, each day counting its latest received count. A
/// drop or spike of strictly more than the percent gives WARNING, or UNHEALTHY
/// past the `error_` percent. Does not apply with fewer than `min_history`
/// (default: `window`) previous runs or days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRule {
    pub window: u32,
    #[serde(default)]
    pub per: VolumeWindow,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_history: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_drop_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_spike_percent: Option<f64>,
}

/// What a volume rule's `window` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeWindow {
    /// Completed runs: for checks whose volume is steady from run to run.
    #[default]
    Runs,
    /// Days (UTC): for volumes with a daily rhythm that many runs a day would
    /// drown in their own noise.
    Days,
}

impl VolumeRule {
    /// How many previous runs are needed before the rule applies (at least 1).
    pub fn min_history(&self) -> usize {
        self.min_history.unwrap_or(self.window).max(1) as usize
    }
}

/// Native status: what the system itself says (a dbt test `error`, a Looker
/// trigger error). On by default: error → UNHEALTHY, warn → WARNING; ok and
/// unknown give no opinion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NativeStatusRule {
    pub enabled: bool,
    pub error: Status,
    pub warn: Status,
}

impl Default for NativeStatusRule {
    fn default() -> Self {
        Self {
            enabled: true,
            error: Status::Unhealthy,
            warn: Status::Warning,
        }
    }
}

/// How many consecutive evaluations it takes to change an entity's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Consecutive evaluations at least as bad as a worse status to move to it.
    pub failure: u32,
    /// Consecutive evaluations at least as good as a better status to move to it.
    pub success: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            failure: 1,
            success: 1,
        }
    }
}

/// The rules of one check, as in config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<CompletenessRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorsRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeRule>,
    /// Absent means the default (on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_status: Option<NativeStatusRule>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
    /// Per-asset overrides; the first whose glob matches the asset key wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// Rules for the assets whose key matches `assets` (`*` and `?` globs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub assets: String,
    pub rules: RuleOverride,
}

/// The fields an override may set; each one given replaces the check's.
///
/// It repeats the fields of [`Rules`] rather than being flattened into it
/// because serde cannot combine `flatten` with `deny_unknown_fields`, and a
/// misspelt rule must be an error, not a silently ignored key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<FreshnessRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<CompletenessRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<ErrorsRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_status: Option<NativeStatusRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
}

/// The rules that hold for one asset: overrides applied, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRules {
    pub freshness: Option<FreshnessRule>,
    pub completeness: Option<CompletenessRule>,
    pub errors: Option<ErrorsRule>,
    pub volume: Option<VolumeRule>,
    pub native_status: NativeStatusRule,
    pub thresholds: Thresholds,
}

impl Rules {
    /// The rules for `asset_key`: the check's, with the first matching
    /// override's fields in place of the check's.
    pub fn for_asset(&self, asset_key: &str) -> AssetRules {
        let mut r = self.clone();
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| glob_match(&o.assets, asset_key))
        {
            let o = o.rules.clone();
            r.freshness = o.freshness.or(r.freshness);
            r.completeness = o.completeness.or(r.completeness);
            r.errors = o.errors.or(r.errors);
            r.volume = o.volume.or(r.volume);
            r.native_status = o.native_status.or(r.native_status);
            r.failure_threshold = o.failure_threshold.or(r.failure_threshold);
            r.success_threshold = o.success_threshold.or(r.success_threshold);
        }
        AssetRules {
            freshness: r.freshness,
            completeness: r.completeness,
            errors: r.errors,
            volume: r.volume,
            native_status: r.native_status.unwrap_or_default(),
            thresholds: Thresholds {
                failure: r.failure_threshold.unwrap_or(1).max(1),
                success: r.success_threshold.unwrap_or(1).max(1),
            },
        }
    }

    /// The hysteresis thresholds for the check itself (no asset override).
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            failure: self.failure_threshold.unwrap_or(1).max(1),
            success: self.success_threshold.unwrap_or(1).max(1),
        }
    }

    /// Problems of meaning the config should report: thresholds that cannot be
    /// met or contradict each other. Each message starts with its place, such as
    /// `overrides[0].rules.freshness`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let base = RuleOverride {
            freshness: self.freshness.clone(),
            completeness: self.completeness.clone(),
            errors: self.errors.clone(),
            volume: self.volume.clone(),
            native_status: self.native_status.clone(),
            failure_threshold: self.failure_threshold,
            success_threshold: self.success_threshold,
        };
        validate_set("", &base, &mut problems);
        for (i, o) in self.overrides.iter().enumerate() {
            if o.assets.is_empty() {
                problems.push(format!("overrides[{i}].assets: the glob is empty"));
            }
            validate_set(&format!("overrides[{i}].rules."), &o.rules, &mut problems);
        }
        problems
    }
}

fn validate_set(at: &str, r: &RuleOverride, problems: &mut Vec<String>) {
    if let Some(FreshnessRule {
        warn_after: Some(w),
        error_after: Some(e),
    }) = &r.freshness
        && w > e
    {
        problems.push(format!(
            "{at}freshness: warn_after {w} is more than error_after {e}, so it would never warn"
        ));
    }
    for (name, rule) in [
        (
            "completeness",
            r.completeness.as_ref().map(|c| (c.warn, c.error)),
        ),
        ("errors", r.errors.as_ref().map(|c| (c.warn, c.error))),
    ] {
        if let Some((Some(w), Some(e))) = rule {
            let backwards = match (w, e) {
                (Threshold::Count(w), Threshold::Count(e)) => w > e,
                (Threshold::Percent(w), Threshold::Percent(e)) => w > e,
                _ => false,
            };
            if backwards {
                problems.push(format!(
                    "{at}{name}: warn {w} is more than error {e}, so it would never warn"
                ));
            }
        }
    }
    if let Some(v) = &r.volume {
        if v.window == 0 {
            problems.push(format!("{at}volume.window: must be at least 1 run"));
        }
        if let Some(m) = v.min_history
            && m > v.window
        {
            problems.push(format!(
                "{at}volume.min_history: {m} is more than window {}, so the rule would never apply",
                v.window
            ));
        }
        for (name, value) in [
            ("drop_percent", v.drop_percent),
            ("error_drop_percent", v.error_drop_percent),
            ("spike_percent", v.spike_percent),
            ("error_spike_percent", v.error_spike_percent),
        ] {
            if let Some(p) = value
                && !(p.is_finite() && p >= 0.0)
            {
                problems.push(format!(
                    "{at}volume.{name}: {p} is not a percent of 0 or more"
                ));
            }
        }
        for (name, value) in [
            ("drop_percent", v.drop_percent),
            ("error_drop_percent", v.error_drop_percent),
        ] {
            if let Some(p) = value
                && p > 100.0
            {
                problems.push(format!(
                    "{at}volume.{name}: {p} is more than 100, and a drop cannot be"
                ));
            }
        }
        if v.drop_percent.is_none()
            && v.error_drop_percent.is_none()
            && v.spike_percent.is_none()
            && v.error_spike_percent.is_none()
        {
            problems.push(format!(
                "{at}volume: give at least one of drop_percent, error_drop_percent, \
                 spike_percent, error_spike_percent"
            ));
        }
    }
    for (name, value) in [
        ("failure_threshold", r.failure_threshold),
        ("success_threshold", r.success_threshold),
    ] {
        if value == Some(0) {
            problems.push(format!("{at}{name}: must be at least 1"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: serde_json::Value) -> Rules {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rules_read_from_config() {
        let r = rules(json!({
            "freshness": { "warn_after": "1h", "error_after": "2h" },
            "completeness": { "warn": "2%", "error": 10 },
            "volume": { "window": 7, "drop_percent": 50 },
            "failure_threshold": 3,
            "overrides": [ { "assets": "raw.*", "rules": { "freshness": { "error_after": "1d" } } } ]
        }));
        assert_eq!(
            r.freshness.as_ref().unwrap().warn_after,
            Some(HumanDuration::from_secs(3_600))
        );
        assert_eq!(
            r.completeness.as_ref().unwrap().warn,
            Some(Threshold::Percent(2.0))
        );
        assert_eq!(r.volume.as_ref().unwrap().min_history(), 7);
        assert_eq!(
            r.thresholds(),
            Thresholds {
                failure: 3,
                success: 1
            }
        );
        assert!(r.validate().is_empty(), "{:?}", r.validate());
        // It serialises back to something that reads the same.
        let again: Rules = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_with_the_value() {
        let err = serde_json::from_value::<Rules>(json!({ "freshnes": {} }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("freshnes"), "{err}");
        let err =
            serde_json::from_value::<Rules>(json!({ "freshness": { "warn_after": "2 hours" } }))
                .unwrap_err()
                .to_string();
        assert!(err.contains("\"2 hours\""), "{err}");
    }

    #[test]
    fn native_status_is_on_by_default_and_can_be_turned_off() {
        let r = Rules::default().for_asset("x");
        assert!(r.native_status.enabled);
        assert_eq!(r.native_status.error, Status::Unhealthy);
        let r = rules(json!({ "native_status": { "enabled": false } })).for_asset("x");
        assert!(!r.native_status.enabled);
    }

    #[test]
    fn the_first_matching_override_replaces_the_checks_fields() {
        let r = rules(json!({
            "freshness": { "warn_after": "1h", "error_after": "2h" },
            "completeness": { "warn": 5 },
            "overrides": [
                { "assets": "raw.*", "rules": { "freshness": { "error_after": "1d" }, "failure_threshold": 2 } },
                { "assets": "raw.orders", "rules": { "freshness": {} } }
            ]
        }));
        let raw = r.for_asset("raw.orders");
        assert_eq!(
            raw.freshness,
            Some(FreshnessRule {
                warn_after: None,
                error_after: Some(HumanDuration::from_secs(86_400))
            })
        );
        assert_eq!(
            raw.completeness, r.completeness,
            "fields not overridden are kept"
        );
        assert_eq!(raw.thresholds.failure, 2);
        let other = r.for_asset("staging.orders");
        assert_eq!(other.freshness, r.freshness);
        assert_eq!(other.thresholds, Thresholds::default());
    }

    #[test]
    fn validation_names_the_place_and_the_problem() {
        let r = rules(json!({
            "freshness": { "warn_after": "3h", "error_after": "2h" },
            "errors": { "warn": 10, "error": 5 },
            "volume": { "window": 3, "min_history": 5 },
            "success_threshold": 0,
            "overrides": [ { "assets": "", "rules": { "completeness": { "warn": "5%", "error": "1%" } } } ]
        }));
        let problems = r.validate();
        let all = problems.join("\n");
        assert!(
            all.contains("freshness: warn_after 3h is more than error_after 2h"),
            "{all}"
        );
        assert!(
            all.contains("errors: warn 10 is more than error 5"),
            "{all}"
        );
        assert!(
            all.contains("volume.min_history: 5 is more than window 3"),
            "{all}"
        );
        assert!(all.contains("volume: give at least one"), "{all}");
        assert!(
            all.contains("success_threshold: must be at least 1"),
            "{all}"
        );
        assert!(
            all.contains("overrides[0].assets: the glob is empty"),
            "{all}"
        );
        assert!(
            all.contains("overrides[0].rules.completeness: warn 5% is more than error 1%"),
            "{all}"
        );
        assert_eq!(problems.len(), 7, "{all}");
    }
}

//! The small value types of rule config: durations (`"30m"`, `"1h30m"`, or whole
//! seconds), thresholds (a count `5` or a percent `"2%"`) and asset globs.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rule value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error(
        "invalid duration {value:?}: {why}; write a number and a unit (ms, s, m, h, d, w) \
         such as \"30m\", \"2h\", \"1d\" or \"1h30m\", or whole seconds as a number"
    )]
    Duration { value: String, why: String },
    #[error(
        "invalid threshold {value:?}: {why}; write a count such as 5 or a percent such as \"2%\""
    )]
    Threshold { value: String, why: String },
}

fn duration_error(value: &str, why: impl Into<String>) -> ParseError {
    ParseError::Duration {
        value: value.to_owned(),
        why: why.into(),
    }
}

/// Reads a duration such as `"30m"`, `"2h"`, `"1d"`, `"1h30m"` or `"1h 30m"`.
///
/// Units: `ms`, `s`, `m`, `h`, `d` (24 h), `w` (7 d). Every number needs a unit
/// right after it; spaces may separate the parts but not a number from its unit.
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err(duration_error(text, "it is empty"));
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(duration_error(
                text,
                format!("expected a number at {:?}", rest),
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| duration_error(text, "the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        let unit_secs: u64 = match unit {
            "ms" => 0,
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            "" => {
                return Err(duration_error(
                    text,
                    format!("{number} has no unit right after it"),
                ));
            }
            other => return Err(duration_error(text, format!("unknown unit {other:?}"))),
        };
        let part = if unit == "ms" {
            Some(Duration::from_millis(number))
        } else {
            number.checked_mul(unit_secs).map(Duration::from_secs)
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| duration_error(text, "it is too large"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

/// Writes a duration for people: `"3h 2m 15s"`, `"2h"`, `"1d 4h"`, `"250ms"`.
/// Parts below a second are dropped once the duration is a second or more.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3_600, "h"),
        (secs % 3_600 / 60, "m"),
        (secs % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration in rule config: a string such as `"30m"` or whole seconds.
/// Serialises back as a string (`"1h 30m"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"30m\", \"2h\", \"1d\", or whole seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(HumanDuration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(HumanDuration::from_secs)
                    .map_err(|_| E::custom(duration_error(&v.to_string(), "it is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(duration_error(
                    &v.to_string(),
                    "seconds must be a whole number",
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A limit on a count: either an absolute count or a percent of a whole.
/// A rule breaches a threshold when its value is strictly greater.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    /// 0 to 100.
    Percent(f64),
}

impl Threshold {
    /// Whether `count` out of `whole` is strictly more than this threshold.
    /// A percent of an empty whole is 0%.
    pub fn exceeded_by(&self, count: u64, whole: u64) -> bool {
        match *self {
            Threshold::Count(limit) => count > limit,
            Threshold::Percent(limit) => percent(count, whole) > limit,
        }
    }
}

/// `part` as a percent of `whole`; 0 when `whole` is 0.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Count(n) => write!(f, "{n}"),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
}

fn threshold_error(value: &str, why: impl Into<String>) -> ParseError {
    ParseError::Threshold {
        value: value.to_owned(),
        why: why.into(),
    }
}

/// Reads a threshold: `"5"` is a count, `"2%"` or `"2.5 %"` a percent.
pub fn parse_threshold(text: &str) -> Result<Threshold, ParseError> {
    let trimmed = text.trim();
    if let Some(number) = trimmed.strip_suffix('%') {
        let number = number.trim_end();
        let is_decimal = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && number.bytes().filter(|b| *b == b'.').count() <= 1;
        let value: f64 = if is_decimal {
            number.parse().ok()
        } else {
            None
        }
        .ok_or_else(|| threshold_error(text, format!("{number:?} is not a number")))?;
        if value > 100.0 {
            return Err(threshold_error(text, "a percent cannot be more than 100"));
        }
        Ok(Threshold::Percent(value))
    } else if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        trimmed
            .parse()
            .map(Threshold::Count)
            .map_err(|_| threshold_error(text, "the count is too large"))
    } else {
        Err(threshold_error(
            text,
            "it is neither a whole count nor a percent",
        ))
    }
}

impl std::str::FromStr for Threshold {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_threshold(s)
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Threshold::Count(n) => s.serialize_u64(*n),
            Threshold::Percent(_) => s.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count such as 5 or a percent such as \"2%\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Threshold::Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(Threshold::Count)
                    .map_err(|_| E::custom(threshold_error(&v.to_string(), "it is negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(threshold_error(
                    &v.to_string(),
                    "a count must be whole; write a fraction as a percent string like \"2.5%\"",
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_threshold(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Matches `text` against a glob where `*` is any run of characters (including
/// none, and including `/` and `.`) and `?` is exactly one character. Every other
/// character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index it took up to).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if let Some((after, taken)) = star {
            // Let the last `*` swallow one more character and try again.
            pi = after;
            ti = taken + 1;
            star = Some((after, taken + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units_parse() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1_800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7_200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("1w").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("45s").unwrap(), Duration::from_secs(45));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(
            parse_duration(" 1h 30m ").unwrap(),
            Duration::from_secs(5_400)
        );
    }

    #[test]
    fn bad_durations_say_which_value_and_why() {
        let err = parse_duration("2 hours").unwrap_err().to_string();
        assert!(err.contains("\"2 hours\""), "{err}");
        assert!(err.contains("no unit"), "{err}");
        let err = parse_duration("2hours").unwrap_err().to_string();
        assert!(err.contains("unknown unit \"hours\""), "{err}");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("1.5h").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration("9999999999999999999w").is_err());
    }

    #[test]
    fn durations_format_for_people_and_round_trip() {
        assert_eq!(
            format_duration(Duration::from_secs(3 * 3_600 + 120)),
            "3h 2m"
        );
        assert_eq!(format_duration(Duration::from_secs(7_200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(7_201)), "2h 1s");
        assert_eq!(format_duration(Duration::from_secs(90_000)), "1d 1h");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        for text in ["3h 2m", "2h", "1d 1h", "250ms", "5s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn durations_deserialise_from_strings_or_seconds() {
        let d: HumanDuration = serde_json::from_str("\"30m\"").unwrap();
        assert_eq!(d, HumanDuration::from_secs(1_800));
        let d: HumanDuration = serde_json::from_str("90").unwrap();
        assert_eq!(d, HumanDuration::from_secs(90));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m 30s\"");
        let err = serde_json::from_str::<HumanDuration>("\"2 hours\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"2 hours\""), "{err}");
        assert!(serde_json::from_str::<HumanDuration>("-5").is_err());
        assert!(serde_json::from_str::<HumanDuration>("1.5").is_err());
    }

    #[test]
    fn thresholds_parse_as_count_or_percent() {
        assert_eq!(parse_threshold("5").unwrap(), Threshold::Count(5));
        assert_eq!(parse_threshold("2%").unwrap(), Threshold::Percent(2.0));
        assert_eq!(parse_threshold("2.5 %").unwrap(), Threshold::Percent(2.5));
        assert_eq!(parse_threshold("0%").unwrap(), Threshold::Percent(0.0));
        let t: Threshold = serde_json::from_str("5").unwrap();
        assert_eq!(t, Threshold::Count(5));
        let t: Threshold = serde_json::from_str("\"2%\"").unwrap();
        assert_eq!(t, Threshold::Percent(2.0));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2%\"");
        assert_eq!(serde_json::to_string(&Threshold::Count(5)).unwrap(), "5");
    }

    #[test]
    fn bad_thresholds_say_which_value_and_why() {
        for bad in [
            "150%", "-1%", "nan%", "inf%", "%", "five", "1.5", "", "1.2.3%",
        ] {
            let err = parse_threshold(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        let err = serde_json::from_str::<Threshold>("2.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"2.5%\""), "{err}");
        assert!(serde_json::from_str::<Threshold>("-3").is_err());
    }

    #[test]
    fn thresholds_are_breached_only_when_strictly_exceeded() {
        assert!(!Threshold::Count(5).exceeded_by(5, 100));
        assert!(Threshold::Count(5).exceeded_by(6, 100));
        assert!(!Threshold::Percent(2.0).exceeded_by(2, 100));
        assert!(Threshold::Percent(2.0).exceeded_by(3, 100));
        assert!(!Threshold::Percent(0.0).exceeded_by(0, 0));
        assert!(Threshold::Count(0).exceeded_by(1, 1));
    }

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything/at.all"));
        assert!(glob_match("raw.*", "raw.orders"));
        assert!(!glob_match("raw.*", "staging.orders"));
        assert!(glob_match("*.orders", "raw.orders"));
        assert!(glob_match("model.*.stg_*", "model.shop.stg_orders"));
        assert!(!glob_match("model.*.stg_*", "model.shop.fct_orders"));
        assert!(glob_match("t?ble", "table"));
        assert!(!glob_match("t?ble", "tble"));
        assert!(glob_match("a*b*c", "aXXbYYbZZc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("**", "x"));
        assert!(glob_match("café*", "café_orders"));
    }
}

//! Reading result cells. The SQL API (format `jsonv2`) sends every value as a
//! JSON string (or `null`) whatever its SQL type, so the column's type from
//! `resultSetMetaData.rowType` decides how a cell is read:
//!
//! | `rowType.type` | cell |
//! | --- | --- |
//! | `fixed` | a decimal string as written, `"1200431"`, `"12.50"` |
//! | `timestamp_ltz`, `timestamp_ntz` | seconds since the epoch with up to 9 decimals, `"1616173619.000000000"` |
//! | `timestamp_tz` | the same, a space, then the offset in minutes plus 1440, `"1616173619.000000000 960"` |
//! | `date` | days since 1970-01-01, `"18262"` |
//!
//! Type names come in either case (the docs show `fixed`, the OpenAPI
//! example `FIXED`). Numbers are read digit by digit: row counts beyond 2^53
//! and nanoseconds must survive, which an `f64` would not let them.

use plugin_sdk::Timestamp;
use serde::Deserialize;

/// One entry of `resultSetMetaData.rowType`; the other keys are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// The column types whose cells this connector reads as something other
/// than text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fixed,
    Real,
    Date,
    /// `timestamp_ltz` (an instant) and `timestamp_ntz` (a wall-clock time
    /// written as if UTC: with the session's `timezone` set to UTC, read as UTC).
    Timestamp,
    TimestampTz,
    Other,
}

impl Column {
    fn kind(&self) -> Kind {
        match self.type_name.to_ascii_lowercase().as_str() {
            "fixed" | "number" | "decimal" | "integer" => Kind::Fixed,
            "real" | "float" | "double" => Kind::Real,
            "date" => Kind::Date,
            "timestamp_ltz" | "timestamp_ntz" => Kind::Timestamp,
            "timestamp_tz" => Kind::TimestampTz,
            _ => Kind::Other,
        }
    }

    /// A cell read as a count: a non-negative whole number in a `fixed` (or
    /// `real` written in plain decimals) column. `"12.000"` is 12; `"12.5"`,
    /// `"-1"` and `"1e3"` are refused.
    pub fn count(&self, cell: Option<&str>) -> Result<Option<u64>, String> {
        let Some(text) = cell else { return Ok(None) };
        if !matches!(self.kind(), Kind::Fixed | Kind::Real) {
            return Err(format!(
                "column {} is {}, not a number",
                self.name, self.type_name
            ));
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
            return Err(format!(
                "column {}: {text:?} is not a non-negative decimal number",
                self.name
            ));
        }
        if fraction.bytes().any(|b| b != b'0') {
            return Err(format!(
                "column {}: {text:?} is not a whole number",
                self.name
            ));
        }
        whole
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("column {}: {text:?} does not fit in 64 bits", self.name))
    }

    /// A cell read as an instant, from a `date` or any `timestamp_*` column.
    pub fn timestamp(&self, cell: Option<&str>) -> Result<Option<Timestamp>, String> {
        let Some(text) = cell else { return Ok(None) };
        let bad = |why: &str| format!("column {} ({}): {text:?} {why}", self.name, self.type_name);
        let at = match self.kind() {
            Kind::Timestamp => epoch_seconds(text).ok_or_else(|| bad("is not seconds.nanos")),
            Kind::TimestampTz => {
                // The epoch part is already UTC; the offset only says which
                // zone the value was written in, so it is checked, not applied.
                let (epoch, offset) = text
                    .split_once(' ')
                    .ok_or_else(|| bad("has no time zone offset"))?;
                let offset: u16 = offset
                    .parse()
                    .map_err(|_| bad("has an unreadable time zone offset"))?;
                if offset > 2 * 1440 {
                    return Err(bad("has a time zone offset out of range"));
                }
                epoch_seconds(epoch).ok_or_else(|| bad("is not seconds.nanos offset"))
            }
            Kind::Date => {
                let days: i64 = text.parse().map_err(|_| bad("is not a number of days"))?;
                days.checked_mul(86_400)
                    .map(Timestamp::from_unix)
                    .ok_or_else(|| bad("is out of range"))
            }
            _ => Err(bad("is not a date or timestamp column")),
        }?;
        Ok(Some(at))
    }
}

/// `"1616173619.123456789"` (sign allowed, 0 to 9 decimals) as an instant.
fn epoch_seconds(text: &str) -> Option<Timestamp> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.is_empty()
        || fraction.len() > 9
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds: i128 = whole.parse().ok()?;
    let nanos: i128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i128>().ok()? * 10_i128.pow(9 - fraction.len() as u32)
    };
    let total = seconds.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    let total = if negative { -total } else { total };
    Some(Timestamp {
        seconds: i64::try_from(total.div_euclid(1_000_000_000)).ok()?,
        nanos: total.rem_euclid(1_000_000_000) as u32,
    })
}

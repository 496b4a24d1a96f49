//! [`Timestamp`]: the contract's UTC instant (seconds and nanoseconds since
//! the Unix epoch), with conversions from and to RFC 3339 text, Unix seconds,
//! `SystemTime` and `chrono`.
//!
//! It also implements `serde`: it serializes as RFC 3339 text and
//! deserializes from RFC 3339 text (any offset, normalised to UTC) or a
//! number of Unix seconds, so vendor responses can use it directly:
//!
//! ```ignore
//! #[derive(serde::Deserialize)]
//! struct Stats {
//!     updated_at: plugin_sdk::Timestamp, // "2026-11-20T10:00:00Z"
//! }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

use crate::{ConnectorError, RunContext, Timestamp};

const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp {
        seconds: 0,
        nanos: 0,
    };

    /// From seconds since the Unix epoch.
    pub fn from_unix(seconds: i64) -> Self {
        Timestamp { seconds, nanos: 0 }
    }

    /// From milliseconds since the Unix epoch (negative values are before it).
    pub fn from_unix_millis(millis: i64) -> Self {
        Timestamp {
            seconds: millis.div_euclid(1000),
            nanos: (millis.rem_euclid(1000) * 1_000_000) as u32,
        }
    }

    /// From fractional seconds since the Unix epoch (e.g. `1732096800.25`),
    /// as some APIs report them. Not-a-number is the epoch.
    pub fn from_unix_f64(seconds: f64) -> Self {
        let nanos_total = (seconds * 1e9).round();
        let nanos_total = if nanos_total.is_nan() {
            0
        } else {
            nanos_total as i128
        };
        let seconds = nanos_total.div_euclid(NANOS_PER_SEC as i128);
        Timestamp {
            seconds: seconds.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            nanos: nanos_total.rem_euclid(NANOS_PER_SEC as i128) as u32,
        }
    }

    /// The current time from the plugin's wall clock (`wasi:clocks`). For the
    /// run's start as the host sees it (fixed in tests), prefer
    /// [`RunContext::now`](crate::RunContext).
    pub fn now() -> Self {
        SystemTime::now().into()
    }

    /// Parse RFC 3339 text such as `2026-11-20T10:00:00Z` or
    /// `2026-11-20T11:00:00.5+01:00`. A failure is a `system` error (the
    /// monitored system answered something unusable); use
    /// [`ConnectorError::config`] yourself when the text came from the config.
    pub fn parse_rfc3339(text: &str) -> Result<Self, ConnectorError> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(Timestamp::from)
            .map_err(|err| {
                ConnectorError::system(format_args!("invalid RFC 3339 timestamp {text:?}: {err}"))
            })
    }

    /// RFC 3339 text in UTC, with as many fractional digits as needed:
    /// `2026-11-20T10:00:00Z`, `2026-11-20T10:00:00.250Z`.
    pub fn to_rfc3339(&self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            // Out of chrono's range (about ±262,000 years): say it plainly.
            None => format!("@{}.{:09}", self.seconds, self.nanos),
        }
    }

    /// As a `chrono` UTC date-time; `None` when out of chrono's range.
    pub fn to_datetime(&self) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(self.seconds, self.nanos.min(999_999_999))
            .single()
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// Milliseconds since the Unix epoch (rounded down, saturating).
    pub fn unix_millis(&self) -> i64 {
        self.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos / 1_000_000))
    }

    /// How long after `earlier` this is; `None` when it is before `earlier`.
    pub fn duration_since(&self, earlier: Timestamp) -> Option<Duration> {
        let a = i128::from(self.seconds) * NANOS_PER_SEC as i128 + i128::from(self.nanos);
        let b = i128::from(earlier.seconds) * NANOS_PER_SEC as i128 + i128::from(earlier.nanos);
        let diff = u128::try_from(a - b).ok()?;
        let secs = u64::try_from(diff / NANOS_PER_SEC as u128).ok()?;
        Some(Duration::new(secs, (diff % NANOS_PER_SEC as u128) as u32))
    }

    /// This instant moved forward by `duration` (saturating).
    pub fn saturating_add(&self, duration: Duration) -> Timestamp {
        let secs = i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        let mut seconds = self.seconds.saturating_add(secs);
        let mut nanos = self.nanos + duration.subsec_nanos();
        if nanos >= 1_000_000_000 {
            nanos -= 1_000_000_000;
            seconds = seconds.saturating_add(1);
        }
        Timestamp { seconds, nanos }
    }
}

impl<Tz: TimeZone> From<DateTime<Tz>> for Timestamp {
    fn from(dt: DateTime<Tz>) -> Self {
        Timestamp {
            seconds: dt.timestamp(),
            nanos: dt.timestamp_subsec_nanos().min(999_999_999),
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp::UNIX_EPOCH.saturating_add(d),
            Err(before) => {
                let d = before.duration();
                let mut seconds = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                let mut nanos = 0;
                if d.subsec_nanos() > 0 {
                    seconds -= 1;
                    nanos = 1_000_000_000 - d.subsec_nanos();
                }
                Timestamp { seconds, nanos }
            }
        }
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturating, as [`Timestamp::saturating_add`].
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl FromStr for Timestamp {
    type Err = ConnectorError;

    /// RFC 3339, as [`Timestamp::parse_rfc3339`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

/// RFC 3339 in UTC, as [`Timestamp::to_rfc3339`].
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or a number of Unix seconds")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                DateTime::parse_from_rfc3339(v.trim())
                    .map(Timestamp::from)
                    .map_err(|err| {
                        E::custom(format_args!("invalid RFC 3339 timestamp {v:?}: {err}"))
                    })
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_unix(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp::from_unix)
                    .map_err(|_| E::custom("Unix seconds out of range"))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_unix_f64(v))
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl RunContext {
    /// Time left before the host stops the run, measured against the
    /// plugin's wall clock (zero when already past). Useful to size page
    /// loops or HTTP timeouts.
    pub fn time_left(&self) -> Duration {
        self.deadline
            .duration_since(Timestamp::now())
            .unwrap_or(Duration::ZERO)
    }
}

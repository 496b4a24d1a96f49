//! Sizes (`"64MiB"`) and jitter (`"10%"` or `"30s"`) as written in config.
//! Durations are [`crate::health::parse_duration`]'s.

use std::time::Duration;

use crate::health::parse_duration;

/// Reads a size: whole bytes, or a number and a unit (`B`, `KB`, `KiB`, `MB`,
/// `MiB`, `GB`, `GiB`, `TB`, `TiB`; decimal units are powers of 1000, binary
/// ones of 1024), such as `"64MiB"` or `"8 MB"`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "invalid size {text:?}: write bytes or a number and a unit, such as \"64MiB\""
        ));
    }
    let number: u64 = t[..digits]
        .parse()
        .map_err(|_| format!("invalid size {text:?}: the number is too large"))?;
    let unit: u64 = match t[digits..].trim_start() {
        "" | "B" => 1,
        "KB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "invalid size {text:?}: unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)"
            ));
        }
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("invalid size {text:?}: it is too large"))
}

/// How much a check's start may be delayed at random, so checks configured
/// alike do not all hit a system in the same second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    #[default]
    None,
    /// Up to this fraction (0 to 1) of the check's interval.
    Fraction(f64),
    /// Up to this long.
    Fixed(Duration),
}

/// Reads a jitter: a percent of the interval (`"10%"`) or a duration (`"30s"`).
pub fn parse_jitter(text: &str) -> Result<Jitter, String> {
    if let Some(number) = text.trim().strip_suffix('%') {
        let p: f64 = number
            .trim()
            .parse()
            .ok()
            .filter(|p: &f64| p.is_finite() && (0.0..=100.0).contains(p))
            .ok_or_else(|| {
                format!("invalid jitter {text:?}: a percent must be a number from 0 to 100")
            })?;
        return Ok(if p == 0.0 {
            Jitter::None
        } else {
            Jitter::Fraction(p / 100.0)
        });
    }
    match parse_duration(text) {
        Ok(d) if d.is_zero() => Ok(Jitter::None),
        Ok(d) => Ok(Jitter::Fixed(d)),
        Err(e) => Err(format!(
            "invalid jitter {text:?}: write a percent of the interval such as \"10%\" or a duration ({e})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("8 MB"), Ok(8_000_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("64 megs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn jitter() {
        assert_eq!(parse_jitter("10%"), Ok(Jitter::Fraction(0.1)));
        assert_eq!(
            parse_jitter("30s"),
            Ok(Jitter::Fixed(Duration::from_secs(30)))
        );
        assert_eq!(parse_jitter("0%"), Ok(Jitter::None));
        assert!(parse_jitter("150%").is_err());
        assert!(parse_jitter("soon").is_err());
    }
}

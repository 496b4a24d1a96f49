//! Reads a receiver's `Retry-After` answer (RFC 9110 §10.2.3): a number of
//! seconds or an HTTP-date, into how long to wait.
//!
//! Every HTTP channel's `classify` and the dispatcher share this one reader.
//! It only reads a header: it must not decide whether to retry (that is each
//! channel's `classify`) nor schedule anything (the dispatcher's).

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// The longest wait a receiver can ask for. A broken or hostile receiver
/// answering `Retry-After: 999999999` must not park a delivery for years
/// out of sight of the give-up age: past an hour the dispatcher tries again
/// and the receiver can say so again.
pub const MAX: Duration = Duration::from_secs(3_600);

/// How long the `Retry-After` header of `headers` asks to wait, from `now`;
/// `None` when there is none or it is neither form.
pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse(value, now)
}

/// How long `value` asks to wait, from `now`, at most [`MAX`].
///
/// `delay-seconds` is digits only (no sign, no fraction, per the RFC); more
/// digits than fit are still a very long wait, so [`MAX`]. An HTTP-date in
/// any of the three forms the RFC makes recipients accept; a date already
/// past means now (zero).
pub fn parse(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        value.parse::<u64>().map_or(MAX, Duration::from_secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    }

    #[test]
    fn seconds_are_read_as_a_wait() {
        assert_eq!(parse("30", at(0)), Some(Duration::from_secs(30)));
        assert_eq!(parse(" 0 ", at(0)), Some(Duration::ZERO));
    }

    #[test]
    fn an_http_date_in_each_accepted_form_is_a_wait_from_now() {
        // Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example.
        let now = at(784_111_777 - 90);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse(form, now), Some(Duration::from_secs(90)), "{form}");
        }
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:37 GMT", at(2_000_000_000)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_huge_wait_is_capped() {
        assert_eq!(parse("999999999", at(0)), Some(MAX));
        assert_eq!(parse(&"9".repeat(40), at(0)), Some(MAX));
        assert_eq!(parse("Fri, 31 Dec 9999 23:59:59 GMT", at(0)), Some(MAX));
    }

    #[test]
    fn anything_else_is_no_answer() {
        for bad in [
            "",
            "  ",
            "-5",
            "+5",
            "1.5",
            "5s",
            "soon",
            "0x10",
            "Sun, 06 Nov",
        ] {
            assert_eq!(parse(bad, at(0)), None, "{bad:?}");
        }
    }

    #[test]
    fn the_header_is_read_from_a_header_map() {
        let mut headers = HeaderMap::new();
        assert_eq!(from_headers(&headers, at(0)), None);
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(from_headers(&headers, at(0)), Some(Duration::from_secs(7)));
    }
}

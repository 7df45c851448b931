//! `Retry-After` values: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

use std::time::{Duration, SystemTime};

/// Reads a `Retry-After` value as a delay from `now`, at most `cap`.
///
/// Accepts delta-seconds (`120`) and every HTTP-date form (`Sun, 06 Nov 1994 08:49:37 GMT`,
/// and the obsolete RFC 850 and asctime forms). A date in the past means "now" (zero). A value
/// that is neither gives `None`, so the caller falls back to its own backoff.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }

    let delay = if value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a very long time", not garbage.
        value.parse::<u64>().map_or(cap, Duration::from_secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };

    Some(delay.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(3600);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(
            parse_retry_after("120", at(0), CAP),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", at(0), CAP), Some(Duration::ZERO));
    }

    #[test]
    fn delta_seconds_are_clamped() {
        assert_eq!(parse_retry_after("86400", at(0), CAP), Some(CAP));
        assert_eq!(
            parse_retry_after("99999999999999999999999", at(0), CAP),
            Some(CAP)
        );
    }

    #[test]
    fn http_date_in_every_form() {
        // 1994-11-06T08:49:37Z is 784111777 seconds after the epoch.
        let now = at(784_111_777 - 30);
        for value in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(value, now, CAP),
                Some(Duration::from_secs(30)),
                "{value}"
            );
        }
    }

    #[test]
    fn http_date_in_the_past_is_now() {
        let now = at(784_111_777 + 5);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, CAP),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn http_date_far_ahead_is_clamped() {
        let now = at(784_111_777 - 7 * 86_400);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, CAP),
            Some(CAP)
        );
    }

    #[test]
    fn garbage_is_none() {
        for value in ["", "soon", "-5", "1.5", "Sun, 99 Nov 1994 08:49:37 GMT"] {
            assert_eq!(parse_retry_after(value, at(0), CAP), None, "{value:?}");
        }
    }
}

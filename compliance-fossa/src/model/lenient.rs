//! Deserializers that accept the variants FOSSA and its public clients show.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use compliance_core::Timestamp;
use serde::de::{self, Deserializer, Visitor};

/// Parses FOSSA's timestamps: RFC 3339 (`2026-08-14T09:14:02.418Z`), the same without an
/// offset (read as UTC), or a bare date.
pub(crate) fn parse_timestamp(s: &str) -> Option<Timestamp> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// An optional timestamp: `null`, absent, or a string [`parse_timestamp`] reads.
pub(crate) fn opt_timestamp<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Timestamp>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Timestamp>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an ISO 8601 timestamp or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if s.is_empty() {
                return Ok(None);
            }
            parse_timestamp(s)
                .map(Some)
                .ok_or_else(|| E::custom(format!("invalid timestamp {s:?}")))
        }
    }
    d.deserialize_option(V)
}

/// An id FOSSA sends as a number (the documented form) or as a string.
pub(crate) fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an issue id (integer or string)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            if v.is_empty() {
                return Err(E::custom("empty issue id"));
            }
            Ok(v.to_owned())
        }
    }
    d.deserialize_any(V)
}

/// An optional number that may also come as a numeric string (CVSS scores).
pub(crate) fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, a numeric string or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        #[allow(clippy::cast_precision_loss)] // CVSS scores are tiny integers at most.
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(None);
            }
            v.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| E::custom(format!("not a number: {v:?}")))
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_the_forms_fossa_uses() {
        let expected = "2026-08-14T09:14:02.418Z";
        for s in [
            "2026-08-14T09:14:02.418Z",
            "2026-08-14T09:14:02.418+00:00",
            "2026-08-14T11:14:02.418+02:00",
            "2026-08-14T09:14:02.418",
            "2026-08-14 09:14:02.418",
        ] {
            let t = parse_timestamp(s).unwrap();
            assert_eq!(
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                expected,
                "{s}"
            );
        }
        assert!(parse_timestamp("2026-07-19").is_some());
        assert!(parse_timestamp("yesterday").is_none());
    }
}

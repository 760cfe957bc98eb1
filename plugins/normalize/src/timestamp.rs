//! Timestamps in the shapes Python services write them, to RFC 3339 UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Epoch values at or above this are milliseconds (1973 in ms; year 5138 in seconds).
const MILLIS_THRESHOLD: f64 = 1e11;

/// Parses an ISO 8601 / RFC 3339 string (zone optional: none means UTC; fractional seconds;
/// `T` or space; Python's `,` before milliseconds) or epoch seconds/milliseconds given as text.
pub fn parse_text(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return parse_epoch(n);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    let text = text.replacen(',', ".", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&text) {
        return Some(dt.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&text, format) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&text, format) {
            return Some(Utc.from_utc_datetime(&naive));
        }
    }
    None
}

/// Epoch seconds, or milliseconds when large.
pub fn parse_epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let millis = if n >= MILLIS_THRESHOLD { n } else { n * 1000.0 };
    DateTime::from_timestamp_millis(millis.round() as i64)
}

/// `2025-01-15T10:30:45.123Z`.
pub fn format(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> Option<String> {
        parse_text(text).map(format)
    }

    #[test]
    fn iso_and_rfc3339_shapes() {
        assert_eq!(
            norm("2025-01-15T10:30:45.123Z").as_deref(),
            Some("2025-01-15T10:30:45.123Z")
        );
        assert_eq!(
            norm("2025-01-15T12:30:45+02:00").as_deref(),
            Some("2025-01-15T10:30:45.000Z")
        );
        assert_eq!(
            norm("2025-01-15T10:30:45.123456").as_deref(),
            Some("2025-01-15T10:30:45.123Z")
        );
        assert_eq!(
            norm("2025-01-15 10:30:45,123").as_deref(),
            Some("2025-01-15T10:30:45.123Z")
        );
        assert_eq!(
            norm("2025-01-15 10:30:45.5-0100").as_deref(),
            Some("2025-01-15T11:30:45.500Z")
        );
    }

    #[test]
    fn epoch_seconds_and_milliseconds() {
        assert_eq!(
            parse_epoch(1736937045.0).map(format).as_deref(),
            Some("2025-01-15T10:30:45.000Z")
        );
        assert_eq!(
            parse_epoch(1736937045123.0).map(format).as_deref(),
            Some("2025-01-15T10:30:45.123Z")
        );
        assert_eq!(
            norm("1736937045.5").as_deref(),
            Some("2025-01-15T10:30:45.500Z")
        );
    }

    #[test]
    fn garbage_is_none() {
        for bad in ["yesterday", "2025-13-45T10:00:00Z", "", "15/01/2025"] {
            assert_eq!(norm(bad), None, "{bad}");
        }
        assert_eq!(parse_epoch(f64::NAN), None);
    }
}

//! Timestamps in the shapes Python services write them, to RFC 3339 UTC.

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};

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

/// `2025-01-15T10:30:45.123Z`. Four-digit years are written digit by digit (chrono's
/// formatter goes through `core::fmt`, ~1.5% of a chain's CPU); others (before year 0 or
/// after 9999) by chrono, which signs and widens them.
pub fn format(dt: DateTime<Utc>) -> String {
    let year = dt.year();
    if !(0..=9999).contains(&year) {
        return dt.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    // A leap second's nanoseconds run past 1e9; chrono writes its milliseconds as 1000+.
    let millis = dt.timestamp_subsec_millis();
    if millis > 999 {
        return dt.to_rfc3339_opts(SecondsFormat::Millis, true);
    }
    let mut out = [0u8; 24];
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut v = value;
        for i in (at..at + digits).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, dt.month(), 2);
    put(8, dt.day(), 2);
    put(11, dt.hour(), 2);
    put(14, dt.minute(), 2);
    put(17, dt.second(), 2);
    put(20, millis, 3);
    for (at, byte) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        out[at] = byte;
    }
    match std::str::from_utf8(&out) {
        Ok(text) => text.to_owned(),
        // Unreachable: only ASCII digits and separators were written.
        Err(_) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
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
    fn format_writes_what_chrono_writes() {
        // Years 0 to 9999, the years written digit by digit, against chrono.
        let mut seconds: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
        let mut checked = 0;
        while seconds < 253_402_300_800 {
            for nanos in [0, 1_000_000, 999_999_999, 123_456_789] {
                let dt = DateTime::from_timestamp(seconds, nanos).unwrap();
                assert_eq!(
                    format(dt),
                    dt.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "{seconds}.{nanos}"
                );
                checked += 1;
            }
            seconds += 86_399_937; // a day's worth less a minute, and a bit
        }
        assert!(checked > 10_000);
    }

    /// The two shapes the digit-by-digit writer hands to chrono, against text written out
    /// by hand (RFC 3339's leap second `:60`; ISO 8601's expanded, signed year).
    #[test]
    fn leap_seconds_and_years_past_9999_are_written_as_iso_8601_says() {
        assert_eq!(
            norm("2016-12-31T23:59:60.5Z").as_deref(),
            Some("2016-12-31T23:59:60.500Z")
        );
        // 253,402,300,800 s after the epoch is 10000-01-01T00:00:00Z.
        assert_eq!(
            parse_epoch(253_402_300_800_000.0).map(format).as_deref(),
            Some("+10000-01-01T00:00:00.000Z")
        );
        assert_eq!(
            parse_epoch(253_402_300_799_999.0).map(format).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
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

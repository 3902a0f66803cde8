//! Timestamps: Unix milliseconds inside, ISO-8601 with milliseconds and `Z` on the wire.

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time in Unix milliseconds.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// `2024-01-15T10:30:00.000Z` for a Unix-millisecond time.
pub fn format_iso_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 / ISO-8601 timestamp (with an offset) into Unix milliseconds.
pub fn parse_iso_millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip() {
        let s = "2024-01-15T10:30:00.000Z";
        let ms = parse_iso_millis(s).expect("parses");
        assert_eq!(ms, 1_705_314_600_000);
        assert_eq!(format_iso_millis(ms), s);
        assert_eq!(parse_iso_millis("yesterday"), None);
    }
}

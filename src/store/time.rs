//! Timestamps: UTC, RFC 3339, fixed width (microseconds, 'Z'), so that text order
//! is time order on both backends.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn now() -> String {
    format(Utc::now())
}

/// Parses any RFC 3339 instant into the stored form, for comparisons in filters.
pub fn normalize(s: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| format(t.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalizes_offsets_to_utc() {
        assert_eq!(
            super::normalize("2015-10-10T14:38:21.8617979-07:00").as_deref(),
            Some("2015-10-10T21:38:21.861797Z")
        );
        assert!(super::normalize("04-12-2018 00:00:00").is_none());
    }
}

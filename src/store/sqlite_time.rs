//! How SQLite stores a time: fixed-width UTC text with microseconds, so that text order is
//! time order and an index on it serves time ranges.

use chrono::{DateTime, SecondsFormat, Utc};

/// The stored form of a time.
pub(super) fn ts(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A stored time; `None` if the text is not one.
pub(super) fn parse_ts(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_order_is_time_order_and_it_reads_back() {
        let early = DateTime::parse_from_rfc3339("2025-03-04T12:00:00.5+01:00")
            .unwrap()
            .to_utc();
        let late = DateTime::parse_from_rfc3339("2025-03-04T12:00:00.000001Z")
            .unwrap()
            .to_utc();
        assert_eq!(ts(&early), "2025-03-04T11:00:00.500000Z");
        assert!(ts(&early) < ts(&late));
        assert_eq!(parse_ts(&ts(&late)), Some(late));
        assert_eq!(parse_ts("not a time"), None);
    }
}

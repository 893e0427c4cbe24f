//! The single timestamp format of `operations.db` and of spool envelopes.
//!
//! Every `ts`-like column holds RFC 3339 UTC with milliseconds and a `Z`
//! (`2026-11-24T13:53:42.123Z`). One fixed-width format means string order
//! is time order, so time windows are index-friendly string comparisons and
//! SQLite's own `strftime('%Y-%m-%dT%H:%M:%fZ', …)` produces comparable
//! bounds. The migrations enforce the shape with CHECK constraints (except on
//! `events` and `calls`, whose values come only from [`format()`]); the
//! ingester normalises whatever RFC 3339 an envelope carries into it.

use chrono::{DateTime, SecondsFormat, Utc};

/// SQL expression for "now" in the canonical format.
pub const SQL_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// The canonical text of `t`.
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The canonical text of a time given in milliseconds since the epoch
/// (`None` out of chrono's range).
pub fn format_millis(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(format)
}

/// The canonical text of the current time.
pub fn now() -> String {
    format(Utc::now())
}

/// Parses any RFC 3339 timestamp (any offset, any precision) into UTC.
pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Milliseconds since the Unix epoch of a stored timestamp. The canonical
/// format is read by position (sequence mining reads millions of them);
/// anything else goes through [`parse`].
pub fn epoch_millis(s: &str) -> Option<i64> {
    canonical_millis(s.as_bytes()).or_else(|| parse(s).map(|t| t.timestamp_millis()))
}

fn canonical_millis(b: &[u8]) -> Option<i64> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?;
    let time = date.and_hms_milli_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?)?;
    Some(time.and_utc().timestamp_millis())
}

/// Parses a duration written `500ms`, `30s`, `10m`, `6h` (CONTRACT §1).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration '{s}': {e} (write e.g. 500ms, 30s, 10m, 6h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_offsets_and_precision() {
        let t = parse("2026-11-24T15:53:42.123456+02:00").unwrap();
        assert_eq!(format(t), "2026-11-24T13:53:42.123Z");
        assert_eq!(
            format(parse("2026-11-24T13:53:42Z").unwrap()),
            "2026-11-24T13:53:42.000Z"
        );
        assert!(parse("yesterday").is_none());
    }

    #[test]
    fn epoch_millis_reads_canonical_and_other_forms() {
        let canonical = "2026-11-24T13:53:42.123Z";
        let expected = parse(canonical).unwrap().timestamp_millis();
        assert_eq!(epoch_millis(canonical), Some(expected));
        assert_eq!(
            epoch_millis("2026-11-24T15:53:42.123+02:00"),
            Some(expected)
        );
        assert_eq!(epoch_millis("2026-13-24T13:53:42.123Z"), None);
        assert_eq!(epoch_millis("later"), None);
    }

    #[test]
    fn durations_in_contract_units() {
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(parse_duration("6h").unwrap().as_secs(), 21600);
        assert!(parse_duration("soon").is_err());
    }
}

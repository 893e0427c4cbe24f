//! Writing envelope v1 lines (CONTRACT §2): what every appender to the
//! spool — the hook today, other writers later — puts on one line.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::timefmt;

/// Envelope v1 as it is written: borrowed parts of one spool line. (Its
/// reader, which borrows from a line read back, is
/// [`Envelope`](super::Envelope).)
#[derive(Serialize)]
pub struct EnvelopeLine<'a> {
    pub v: u8,
    pub id: &'a str,
    pub ts: &'a str,
    pub host: &'a str,
    pub event: &'a Map<String, Value>,
}

/// The envelope of `event` as one JSONL line: a fresh UUIDv7 id, `now` in
/// the canonical timestamp format, this machine's host name, and `\n`.
pub fn envelope_line(event: &Map<String, Value>, now: DateTime<Utc>) -> Vec<u8> {
    let id = uuid::Uuid::now_v7().to_string();
    let ts = timefmt::format(now);
    let host = gethostname::gethostname();
    let envelope = EnvelopeLine {
        v: super::ENVELOPE_VERSION,
        id: &id,
        ts: &ts,
        host: &host.to_string_lossy(),
        event,
    };
    // Serialising a map of JSON values into memory cannot fail.
    let mut line = serde_json::to_vec(&envelope).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_contract_shape() {
        let mut event = Map::new();
        event.insert("hook_event_name".into(), "Stop".into());
        let line = envelope_line(&event, Utc::now());
        assert!(line.ends_with(b"\n"));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["event"]["hook_event_name"], "Stop");
        assert_eq!(
            v["ts"].as_str().unwrap().len(),
            "2026-11-24T13:53:42.123Z".len()
        );
        assert!(!v["id"].as_str().unwrap().is_empty());
        assert!(v["host"].is_string());
    }

    #[test]
    fn a_written_line_reads_back() {
        let mut event = Map::new();
        event.insert("hook_event_name".into(), "PreToolUse".into());
        event.insert("session_id".into(), "s1".into());
        let line = envelope_line(&event, Utc::now());
        let read = super::super::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!(read.hook_event_name(), "PreToolUse");
        assert_eq!(read.field("session_id"), Some("s1"));
    }
}

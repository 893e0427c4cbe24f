//! Parsing and validating one spool line (CONTRACT §2).
//!
//! A line is accepted when it is at most [`MAX_LINE`](crate::spool::MAX_LINE)
//! bytes, UTF-8, JSON (nesting bounded by serde_json's recursion limit, so a
//! hostile line cannot overflow the stack), and an envelope v1 whose `event`
//! is a hook event. Everything else is a [`Rejection`], whose text becomes the
//! quarantine `reason`.
//!
//! Rejection texts never quote the line: the reason is stored in
//! operations.db, where raw text must not go. serde_json's syntax errors
//! only name positions; shape errors are written here.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::hook::reduce::INVALID_EVENT;

/// Envelope ids longer than this are rejected (ours are 36 characters).
pub const MAX_ID_LEN: usize = 256;

/// A valid envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub ts: DateTime<Utc>,
    pub host: Option<String>,
    pub event: Map<String, Value>,
}

impl Envelope {
    /// A string field of the event.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.event.get(name).and_then(Value::as_str)
    }

    pub fn hook_event_name(&self) -> &str {
        self.field("hook_event_name").unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("line of {len} bytes exceeds the 1 MiB limit")]
    TooLong { len: u64 },
    #[error("invalid UTF-8 at byte {at}")]
    InvalidUtf8 { at: usize },
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("not an envelope: {0}")]
    Shape(&'static str),
    #[error("unsupported envelope version {0}")]
    Version(String),
    #[error("the hook could not parse its input (event _invalid)")]
    InvalidHookInput,
}

/// Parses one line (without its trailing `\n`).
pub fn parse(line: &[u8]) -> Result<Envelope, Rejection> {
    let text = std::str::from_utf8(line).map_err(|e| Rejection::InvalidUtf8 {
        at: e.valid_up_to(),
    })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| Rejection::InvalidJson(e.to_string()))?;
    let Value::Object(mut top) = value else {
        return Err(Rejection::Shape("not a JSON object"));
    };
    match top.get("v") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        Some(Value::Number(n)) => return Err(Rejection::Version(n.to_string())),
        Some(_) => return Err(Rejection::Shape("\"v\" is not a number")),
        None => return Err(Rejection::Shape("missing \"v\"")),
    }
    let id = match top.remove("id") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_ID_LEN => id,
        Some(Value::String(_)) => return Err(Rejection::Shape("\"id\" is empty or too long")),
        _ => return Err(Rejection::Shape("\"id\" is missing or not a string")),
    };
    let ts = match top.get("ts") {
        Some(Value::String(ts)) => crate::timefmt::parse(ts)
            .ok_or(Rejection::Shape("\"ts\" is not an RFC 3339 timestamp"))?,
        _ => return Err(Rejection::Shape("\"ts\" is missing or not a string")),
    };
    let host = match top.remove("host") {
        Some(Value::String(host)) => Some(host),
        None | Some(Value::Null) => None,
        Some(_) => return Err(Rejection::Shape("\"host\" is not a string")),
    };
    let event = match top.remove("event") {
        Some(Value::Object(event)) => event,
        _ => return Err(Rejection::Shape("\"event\" is missing or not an object")),
    };
    match event.get("hook_event_name") {
        Some(Value::String(name)) if name == INVALID_EVENT => {
            return Err(Rejection::InvalidHookInput)
        }
        Some(Value::String(name)) if !name.is_empty() => {}
        _ => return Err(Rejection::Shape("event has no \"hook_event_name\" string")),
    }
    Ok(Envelope {
        id,
        ts,
        host,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Envelope {
        parse(line.as_bytes()).unwrap()
    }

    fn rejected(line: &[u8]) -> Rejection {
        parse(line).unwrap_err()
    }

    #[test]
    fn accepts_a_contract_envelope() {
        let e = ok(
            r#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42.123Z","host":"h","event":{"hook_event_name":"Stop","session_id":"s"}}"#,
        );
        assert_eq!(e.id, "a");
        assert_eq!(e.hook_event_name(), "Stop");
        assert_eq!(e.field("session_id"), Some("s"));
        assert_eq!(crate::timefmt::format(e.ts), "2026-11-24T13:53:42.123Z");
    }

    #[test]
    fn rejects_with_reasons_that_never_quote_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe{}", "UTF-8"),
            (br#"{"v":1,"id":"SECRET"#, "JSON"),
            (b"[1,2]", "object"),
            (br#"{"v":2,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"x"}}"#, "version 2"),
            (br#"{"v":"1","id":"a"}"#, "\"v\""),
            (br#"{"v":1,"id":7,"ts":"x","event":{}}"#, "\"id\""),
            (br#"{"v":1,"id":"a","ts":"SECRET","event":{"hook_event_name":"x"}}"#, "RFC 3339"),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":[]}"#, "\"event\""),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"x":1}}"#, "hook_event_name"),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"_invalid","raw":"SECRET"}}"#, "_invalid"),
        ];
        for (line, needle) in cases {
            let reason = rejected(line).to_string();
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
            assert!(!reason.contains("SECRET"), "{reason:?} quotes the line");
        }
    }

    #[test]
    fn deep_nesting_is_rejected_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            rejected(deep.as_bytes()),
            Rejection::InvalidJson(_)
        ));
    }
}

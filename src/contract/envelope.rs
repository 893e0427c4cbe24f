//! Parsing and validating one spool line (CONTRACT §2).
//!
//! A line is accepted when it is at most [`MAX_LINE`](super::MAX_LINE)
//! bytes, UTF-8, one JSON object, and an envelope v1 whose `event` is a hook
//! event. Everything else is a [`Rejection`], whose text becomes the
//! quarantine `reason`.
//!
//! # Zero-copy
//! An [`Envelope`] borrows from the line: each member is first taken as a
//! raw JSON slice and then interpreted here (string, integer, boolean, or
//! left raw, like `tool_input`). Nothing builds a `serde_json::Value` tree;
//! a string is copied only when it contains escapes. This is most of the
//! ingester's CPU saved per line (see BENCHMARKS.md).
//!
//! # Privacy
//! Rejection texts never quote the line: the reason is stored in
//! operations.db, where raw text must not go. Because values are interpreted
//! by this module rather than by serde's typed deserialisers (whose type
//! errors quote the offending string), the only serde errors that reach a
//! reason are syntax errors, which name positions only.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::events::INVALID as INVALID_EVENT;

/// Envelope ids longer than this are rejected (ours are 36 characters).
pub const MAX_ID_LEN: usize = 256;

/// One member value of an event, interpreted.
#[derive(Debug, Clone)]
pub enum Field<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    /// A member kept as raw JSON: those in [`RAW_MEMBERS`].
    Raw(&'a RawValue),
    /// Anything else (null, floats, huge integers, other objects and
    /// arrays): present, but not interpreted.
    Opaque,
}

/// Event members whose value (an object or array) classification reads:
/// kept as raw JSON. Every other member is read in the same single pass.
pub const RAW_MEMBERS: &[&str] = &["tool_input", "tool_input_keys"];

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Field<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Field<'a>, E> {
                Ok(Field::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Field<'a>, E> {
                Ok(Field::Str(Cow::Owned(s.to_string())))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Field<'a>, E> {
                Ok(Field::Int(n))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Field<'a>, E> {
                Ok(i64::try_from(n).map_or(Field::Opaque, Field::Int))
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Field<'a>, E> {
                Ok(Field::Bool(b))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Field<'a>, E> {
                Ok(Field::Opaque)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Field<'a>, E> {
                Ok(Field::Opaque)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Field<'a>, A::Error> {
                // Nested values go through `Field` too (not `IgnoredAny`, which
                // skips iteratively), so serde_json's recursion limit rejects
                // hostile nesting instead of letting it through.
                while seq.next_element::<Field<'a>>()?.is_some() {}
                Ok(Field::Opaque)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, Field<'a>>()?.is_some() {}
                Ok(Field::Opaque)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A valid envelope, borrowing from its line.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub id: Cow<'a, str>,
    pub ts: DateTime<Utc>,
    /// `ts` in the canonical database format, formatted once.
    pub ts_text: String,
    pub host: Option<Cow<'a, str>>,
    /// The event's members in line order; keys are unique.
    event: Vec<(Cow<'a, str>, Field<'a>)>,
    /// Where the members every stage asks for are in `event`.
    hot: HotMembers,
}

/// Positions in `event` of the members looked up several times per event
/// by every stage (dedupe, pairing, sessions): found once, at parse time.
#[derive(Debug, Clone, Default)]
struct HotMembers {
    session_id: Option<usize>,
    tool_use_id: Option<usize>,
    hook_event_name: Option<usize>,
}

impl HotMembers {
    fn find(event: &[(Cow<'_, str>, Field<'_>)]) -> Self {
        let mut hot = HotMembers::default();
        for (i, (key, _)) in event.iter().enumerate() {
            match key.as_ref() {
                "session_id" => hot.session_id = Some(i),
                "tool_use_id" => hot.tool_use_id = Some(i),
                "hook_event_name" => hot.hook_event_name = Some(i),
                _ => {}
            }
        }
        hot
    }
}

impl<'a> Envelope<'a> {
    fn member(&self, name: &str) -> Option<&Field<'a>> {
        let hot = match name {
            "session_id" => self.hot.session_id,
            "tool_use_id" => self.hot.tool_use_id,
            "hook_event_name" => self.hot.hook_event_name,
            _ => return self.event.iter().find(|(k, _)| k == name).map(|(_, v)| v),
        };
        hot.map(|i| &self.event[i].1)
    }

    /// A string member of the event.
    pub fn field(&self, name: &str) -> Option<&str> {
        match self.member(name)? {
            Field::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An integer member of the event.
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.member(name)? {
            Field::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// A boolean member of the event.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.member(name)? {
            Field::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An object or array member of the event, as raw JSON.
    pub fn raw(&self, name: &str) -> Option<&'a RawValue> {
        match self.member(name)? {
            Field::Raw(raw) => Some(raw),
            _ => None,
        }
    }

    pub fn hook_event_name(&self) -> &str {
        self.field("hook_event_name").unwrap_or_default()
    }

    /// The event's members, in line order.
    pub fn members(&self) -> impl Iterator<Item = (&str, &Field<'a>)> {
        self.event.iter().map(|(k, v)| (k.as_ref(), v))
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

/// What one pass over a line collects: the envelope's members, with the
/// event's members already interpreted.
#[derive(Default)]
struct Parts<'a> {
    v: Option<Field<'a>>,
    id: Option<Field<'a>>,
    ts: Option<Field<'a>>,
    host: Option<Field<'a>>,
    event: Option<EventSlot<'a>>,
    duplicate: bool,
}

/// The members of an event object, in order; `duplicate` if a key repeats.
struct EventMembers<'a> {
    members: Vec<(Cow<'a, str>, Field<'a>)>,
    duplicate: bool,
}

impl<'de: 'a, 'a> Deserialize<'de> for Parts<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Parts<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an envelope object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'a>, A::Error> {
                let mut parts = Parts::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "v" => &mut parts.v,
                        "id" => &mut parts.id,
                        "ts" => &mut parts.ts,
                        "host" => &mut parts.host,
                        "event" => {
                            parts.duplicate |= parts.event.is_some();
                            parts.event = Some(map.next_value()?);
                            continue;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    parts.duplicate |= slot.is_some();
                    *slot = Some(map.next_value()?);
                }
                Ok(parts)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The `event` member: its members when it is an object, read in the same
/// pass as the envelope; `NotObject` otherwise (never a serde type error,
/// which would quote the value).
enum EventSlot<'a> {
    Members(EventMembers<'a>),
    NotObject,
}

impl<'de: 'a, 'a> Deserialize<'de> for EventSlot<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EventSlot<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventSlot<'a>, A::Error> {
                let mut members: Vec<(Cow<'a, str>, Field<'a>)> = Vec::with_capacity(16);
                let mut duplicate = false;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value = if RAW_MEMBERS.contains(&key.as_ref()) {
                        Field::Raw(map.next_value()?)
                    } else {
                        map.next_value()?
                    };
                    duplicate |= members.iter().any(|(k, _)| *k == key);
                    members.push((key, value));
                }
                Ok(EventSlot::Members(EventMembers { members, duplicate }))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<EventSlot<'a>, A::Error> {
                while seq.next_element::<Field<'a>>()?.is_some() {}
                Ok(EventSlot::NotObject)
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<EventSlot<'a>, E> {
                Ok(EventSlot::NotObject)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<EventSlot<'a>, E> {
                Ok(EventSlot::NotObject)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<EventSlot<'a>, E> {
                Ok(EventSlot::NotObject)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<EventSlot<'a>, E> {
                Ok(EventSlot::NotObject)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<EventSlot<'a>, E> {
                Ok(EventSlot::NotObject)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<EventSlot<'a>, E> {
                Ok(EventSlot::NotObject)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Parses one line (without its trailing `\n`).
pub fn parse(line: &[u8]) -> Result<Envelope<'_>, Rejection> {
    // JSON would take the CR of a CRLF ending as whitespace, but no writer
    // that follows the contract produces one: such a line comes from a tool
    // that does not know the format, and is kept aside rather than guessed.
    if line.last() == Some(&b'\r') {
        return Err(Rejection::Shape("line ends in CR (a CRLF line ending)"));
    }
    let text = std::str::from_utf8(line).map_err(|e| Rejection::InvalidUtf8 {
        at: e.valid_up_to(),
    })?;
    // Checked first so that serde never reports (and quotes) a non-object.
    if text.trim_start().as_bytes().first() != Some(&b'{') {
        return Err(Rejection::Shape("not a JSON object"));
    }
    let parts: Parts<'_> =
        serde_json::from_str(text).map_err(|e| Rejection::InvalidJson(e.to_string()))?;
    if parts.duplicate {
        return Err(Rejection::Shape("duplicate key"));
    }
    match parts.v {
        Some(Field::Int(1)) => {}
        Some(Field::Int(n)) => return Err(Rejection::Version(n.to_string())),
        Some(Field::Opaque) => return Err(Rejection::Shape("\"v\" is not an integer")),
        Some(_) => return Err(Rejection::Shape("\"v\" is not a number")),
        None => return Err(Rejection::Shape("missing \"v\"")),
    }
    let id = match parts.id {
        Some(Field::Str(id)) if !id.is_empty() && id.len() <= MAX_ID_LEN => id,
        Some(Field::Str(_)) => return Err(Rejection::Shape("\"id\" is empty or too long")),
        _ => return Err(Rejection::Shape("\"id\" is missing or not a string")),
    };
    let ts = match parts.ts {
        Some(Field::Str(ts)) => super::timefmt::parse(&ts)
            .ok_or(Rejection::Shape("\"ts\" is not an RFC 3339 timestamp"))?,
        _ => return Err(Rejection::Shape("\"ts\" is missing or not a string")),
    };
    let host = match parts.host {
        Some(Field::Str(host)) => Some(host),
        None | Some(Field::Opaque) => None,
        Some(_) => return Err(Rejection::Shape("\"host\" is not a string")),
    };
    let event = match parts.event {
        Some(EventSlot::Members(event)) if event.duplicate => {
            return Err(Rejection::Shape("duplicate key"))
        }
        Some(EventSlot::Members(event)) => event.members,
        _ => return Err(Rejection::Shape("\"event\" is missing or not an object")),
    };
    let ts_text = super::timefmt::format(ts);
    let envelope = Envelope {
        id,
        ts,
        ts_text,
        host,
        hot: HotMembers::find(&event),
        event,
    };
    match envelope.field("hook_event_name") {
        Some(INVALID_EVENT) => Err(Rejection::InvalidHookInput),
        Some(name) if !name.is_empty() => Ok(envelope),
        _ => Err(Rejection::Shape("event has no \"hook_event_name\" string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Envelope<'_> {
        parse(line.as_bytes()).unwrap()
    }

    fn rejected(line: &[u8]) -> Rejection {
        parse(line).unwrap_err()
    }

    #[test]
    fn accepts_a_contract_envelope() {
        let e = ok(
            r#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42.123Z","host":"h","event":{"hook_event_name":"Stop","session_id":"s","duration_ms":12,"is_interrupt":false,"tool_input":{"id":"x"}}}"#,
        );
        assert_eq!(e.id, "a");
        assert_eq!(e.hook_event_name(), "Stop");
        assert_eq!(e.field("session_id"), Some("s"));
        assert_eq!(e.int("duration_ms"), Some(12));
        assert_eq!(e.flag("is_interrupt"), Some(false));
        assert_eq!(
            e.raw("tool_input").map(RawValue::get),
            Some(r#"{"id":"x"}"#)
        );
        assert_eq!(
            crate::contract::timefmt::format(e.ts),
            "2026-11-24T13:53:42.123Z"
        );
    }

    #[test]
    fn strings_with_escapes_are_unescaped() {
        let e = ok(
            r#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"PreToolUse","command":"echo \"hi\"\n"}}"#,
        );
        assert_eq!(e.field("command"), Some("echo \"hi\"\n"));
    }

    #[test]
    fn rejects_with_reasons_that_never_quote_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"\xff\xfe{}", "UTF-8"),
            (br#"{"v":1,"id":"SECRET"#, "JSON"),
            (b"[1,2]", "object"),
            (br#""SECRET""#, "object"),
            (br#"{"v":2,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"x"}}"#, "version 2"),
            (br#"{"v":"SECRET","id":"a"}"#, "\"v\""),
            (br#"{"v":1,"id":7,"ts":"x","event":{}}"#, "\"id\""),
            (br#"{"v":1,"id":"a","ts":"SECRET","event":{"hook_event_name":"x"}}"#, "RFC 3339"),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":["SECRET"]}"#, "\"event\""),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"x":"SECRET"}}"#, "hook_event_name"),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"_invalid","raw":"SECRET"}}"#, "_invalid"),
            (br#"{"v":1,"id":"a","id":"SECRET","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"x"}}"#, "duplicate"),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"x","k":1,"k":"SECRET"}}"#, "duplicate"),
            (br#"{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{"hook_event_name":"x"}} SECRET"#, "trailing"),
            (b"{\"v\":1,\"id\":\"SECRET\",\"ts\":\"2026-11-24T13:53:42Z\",\"event\":{\"hook_event_name\":\"x\"}}\r", "CRLF"),
        ];
        for (line, needle) in cases {
            let reason = rejected(line).to_string();
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
            assert!(!reason.contains("SECRET"), "{reason:?} quotes the line");
        }
    }

    #[test]
    fn deep_nesting_is_rejected_never_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(rejected(deep.as_bytes()), Rejection::Shape(_)));
        let inside = format!(
            r#"{{"v":1,"id":"a","ts":"2026-11-24T13:53:42Z","event":{{"hook_event_name":"x","deep":{deep}}}}}"#
        );
        // serde_json's recursion limit stops it: rejected, never a crash.
        assert!(parse(inside.as_bytes()).is_err());
    }
}

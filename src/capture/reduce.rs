//! CONTRACT §3: what the hook keeps of a Claude Code payload.
//!
//! The reduction is the privacy boundary of the hook: tool outputs, file
//! contents and prompts are measured (byte counts, line counts, a content
//! hash, a character count) and then dropped; only the Bash command, a small
//! MCP input and a short error survive, and only into the spool, which the
//! daemon consumes and deletes. Code a successful write puts into a file is
//! kept as its fingerprints ([`crate::contract::code`]): hashes of masked
//! token runs, for copy detection, never text.
//!
//! It is also the hook's cost: a Bash payload may carry megabytes of output.
//! Large parts (`tool_input`, `tool_response`) are borrowed as raw JSON and
//! parsed into structs that count string lengths without copying, so the
//! work is one scan of the input and no allocation proportional to it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::contract::code::{fingerprint_texts, Lang};
use crate::contract::events;

/// Bash commands are kept up to this many bytes.
pub const COMMAND_MAX: usize = 64 * 1024;
/// MCP inputs up to this size (as JSON text) are kept whole, larger ones as keys.
pub const MCP_INPUT_MAX: usize = 16 * 1024;
/// Failure messages are kept up to this many bytes.
pub const ERROR_MAX: usize = 4 * 1024;
/// Non-JSON stdin is kept up to this many bytes, for quarantine.
pub const RAW_MAX: usize = 64 * 1024;
/// Common string fields (paths, ids, reasons) are cut at this many bytes.
pub const FIELD_MAX: usize = 4 * 1024;

/// The `hook_event_name` given to stdin that is not a JSON object.
pub use crate::contract::events::INVALID as INVALID_EVENT;

const COMMON_FIELDS: &[&str] = &[
    "session_id",
    "cwd",
    "hook_event_name",
    "permission_mode",
    "prompt_id",
    "agent_id",
    "agent_type",
    "tool_name",
    "tool_use_id",
    "duration_ms",
    "source",
    "reason",
    "model",
    "is_interrupt",
    // PreCompact/PostCompact: manual or auto.
    "trigger",
    // Notification: permission_prompt, idle_prompt, ...
    "notification_type",
];

/// Reduces raw hook stdin to the event object of an envelope.
pub fn reduce(input: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice::<Payload<'_>>(input) {
        Ok(payload) => payload.reduce(),
        Err(_) => invalid(input),
    }
}

/// The `_invalid` event for stdin that is not a JSON object.
pub fn invalid(input: &[u8]) -> Map<String, Value> {
    let raw = String::from_utf8_lossy(&input[..floor_boundary(input, RAW_MAX)]);
    let mut event = Map::new();
    event.insert("hook_event_name".into(), INVALID_EVENT.into());
    event.insert("raw".into(), Value::String(raw.into_owned()));
    event
}

/// The parts of a payload the reduction reads. Large members are borrowed
/// as raw JSON; every other member is skipped without being copied.
#[derive(Default)]
struct Payload<'a> {
    tool_input: Option<&'a RawValue>,
    tool_response: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
    prompt: Option<CharCount>,
    /// The common fields of §3, as scalars, in input order.
    common: Vec<(&'static str, Value)>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Payload<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a hook payload object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload<'a>, A::Error> {
                let mut p = Payload::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "tool_input" => p.tool_input = map.next_value()?,
                        "tool_response" => p.tool_response = map.next_value()?,
                        "error" => p.error = map.next_value()?,
                        "prompt" => {
                            // Borrowed raw first: a non-string prompt is
                            // skipped, not an error for the whole payload.
                            let raw: &'a RawValue = map.next_value()?;
                            p.prompt = serde_json::from_str::<CharCount>(raw.get()).ok();
                        }
                        other => match COMMON_FIELDS.iter().find(|f| **f == other) {
                            Some(name) => {
                                if let Scalar(Some(v)) = map.next_value()? {
                                    p.common.push((*name, v));
                                }
                            }
                            None => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(p)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A string (cut to [`FIELD_MAX`]), number or boolean; objects and arrays
/// are consumed and dropped.
struct Scalar(Option<Value>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(Value::String(
                    truncate(s, FIELD_MAX).to_string(),
                ))))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(Value::Bool(b))))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(n.into())))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(n.into())))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Scalar, E> {
                Ok(Scalar(serde_json::Number::from_f64(n).map(Value::Number)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The UTF-8 length of a string, read without keeping the string.
#[derive(Default, Clone, Copy)]
struct ByteLen(usize);

impl<'de> Deserialize<'de> for ByteLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteLen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteLen, E> {
                Ok(ByteLen(s.len()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The number of characters of a string (the prompt), without keeping it.
struct CharCount(usize);

impl<'de> Deserialize<'de> for CharCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = CharCount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CharCount, E> {
                Ok(CharCount(s.chars().count()))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
struct BashInput<'a> {
    #[serde(borrow, default)]
    command: Option<Cow<'a, str>>,
    #[serde(default)]
    run_in_background: Option<bool>,
}

#[derive(Deserialize)]
struct BashResponse {
    #[serde(default)]
    stdout: Option<ByteLen>,
    #[serde(default)]
    stderr: Option<ByteLen>,
    #[serde(default)]
    interrupted: Option<bool>,
}

#[derive(Deserialize)]
struct EditInput<'a> {
    #[serde(borrow, default)]
    file_path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    notebook_path: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    old_string: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    new_string: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    new_source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    edits: Vec<EditPair<'a>>,
}

#[derive(Deserialize)]
struct EditPair<'a> {
    #[serde(borrow, default)]
    old_string: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    new_string: Option<Cow<'a, str>>,
}

impl Payload<'_> {
    fn reduce(self) -> Map<String, Value> {
        let mut event: Map<String, Value> = self
            .common
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let tool = event
            .get("tool_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let hook_event = event
            .get("hook_event_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match tool.as_str() {
            "Bash" => keep_bash(&mut event, self.tool_input, self.tool_response),
            "Edit" | "MultiEdit" | "Write" | "NotebookEdit" => keep_edit(
                &mut event,
                self.tool_input,
                hook_event == events::POST_TOOL_USE,
            ),
            t if t.starts_with("mcp__") => keep_mcp(&mut event, self.tool_input),
            _ => {}
        }
        if hook_event == "PostToolUseFailure" {
            if let Some(error) = self.error {
                event.insert("error".into(), Value::String(error_text(error)));
            }
        }
        if hook_event == "UserPromptSubmit" {
            if let Some(CharCount(n)) = self.prompt {
                event.insert("prompt_chars".into(), n.into());
            }
        }
        event
    }
}

fn keep_bash(
    event: &mut Map<String, Value>,
    input: Option<&RawValue>,
    response: Option<&RawValue>,
) {
    if let Some(input) = input.and_then(|raw| serde_json::from_str::<BashInput<'_>>(raw.get()).ok())
    {
        if let Some(command) = input.command {
            let kept = truncate(&command, COMMAND_MAX);
            if kept.len() < command.len() {
                event.insert("command_truncated".into(), true.into());
            }
            event.insert("command".into(), kept.into());
        }
        if let Some(background) = input.run_in_background {
            event.insert("run_in_background".into(), background.into());
        }
    }
    if let Some(response) =
        response.and_then(|raw| serde_json::from_str::<BashResponse>(raw.get()).ok())
    {
        if let Some(interrupted) = response.interrupted {
            event.insert("interrupted".into(), interrupted.into());
        }
        if let Some(ByteLen(n)) = response.stdout {
            event.insert("stdout_bytes".into(), n.into());
        }
        if let Some(ByteLen(n)) = response.stderr {
            event.insert("stderr_bytes".into(), n.into());
        }
    }
}

/// Counts and a digest of the text written, never the text; after a
/// successful write (`written`), the fingerprints of the code it put into
/// the file, for copy detection (only hashes: see [`code`]).
fn keep_edit(event: &mut Map<String, Value>, input: Option<&RawValue>, written: bool) {
    let Some(input) = input.and_then(|raw| serde_json::from_str::<EditInput<'_>>(raw.get()).ok())
    else {
        return;
    };
    if let Some(path) = input
        .file_path
        .as_deref()
        .or(input.notebook_path.as_deref())
    {
        event.insert("file_path".into(), truncate(path, FIELD_MAX).into());
    }
    // (old, new) text pairs: Write has only new content, Edit one pair,
    // MultiEdit several, NotebookEdit a new cell source.
    let mut pairs: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    if let Some(content) = input.content.as_deref() {
        pairs.push((None, Some(content)));
    }
    if input.old_string.is_some() || input.new_string.is_some() {
        pairs.push((input.old_string.as_deref(), input.new_string.as_deref()));
    }
    if let Some(source) = input.new_source.as_deref() {
        pairs.push((None, Some(source)));
    }
    for edit in &input.edits {
        pairs.push((edit.old_string.as_deref(), edit.new_string.as_deref()));
    }
    if pairs.is_empty() {
        return;
    }
    let path = event.get("file_path").and_then(Value::as_str);
    if let Some(lang) = path.and_then(Lang::of_path).filter(|_| written) {
        let fingerprints = fingerprint_texts(pairs.iter().filter_map(|(_, new)| *new), lang);
        if !fingerprints.is_empty() {
            event.insert("code_fingerprints".into(), fingerprints.to_hex().into());
        }
    }
    let mut hasher = Sha256::new();
    let (mut added, mut removed) = (0usize, 0usize);
    for (old, new) in pairs {
        removed += old.map_or(0, line_count);
        if let Some(new) = new {
            added += line_count(new);
            hasher.update(new.as_bytes());
        }
    }
    event.insert("lines_added".into(), added.into());
    event.insert("lines_removed".into(), removed.into());
    event.insert(
        "content_sha256".into(),
        hex::encode(hasher.finalize()).into(),
    );
}

fn keep_mcp(event: &mut Map<String, Value>, input: Option<&RawValue>) {
    let Some(raw) = input else { return };
    if raw.get().len() <= MCP_INPUT_MAX {
        if let Ok(value) = serde_json::from_str::<Value>(raw.get()) {
            event.insert("tool_input".into(), value);
        }
        return;
    }
    if let Ok(map) =
        serde_json::from_str::<std::collections::BTreeMap<Cow<'_, str>, IgnoredAny>>(raw.get())
    {
        let keys: Vec<Value> = map
            .into_keys()
            .map(|k| Value::String(truncate(&k, FIELD_MAX).to_string()))
            .collect();
        event.insert("tool_input_keys".into(), keys.into());
    }
    event.insert("tool_input_truncated".into(), true.into());
}

/// The failure text: a string as is, anything else as its JSON; cut to
/// [`ERROR_MAX`] bytes.
fn error_text(raw: &RawValue) -> String {
    let text: Cow<'_, str> = match serde_json::from_str::<Cow<'_, str>>(raw.get()) {
        Ok(s) => s,
        Err(_) => Cow::Borrowed(raw.get()),
    };
    truncate(&text, ERROR_MAX).to_string()
}

/// Lines in a text as an editor counts them: a final line without `\n`
/// still counts.
fn line_count(s: &str) -> usize {
    let newlines = memchr::memchr_iter(b'\n', s.as_bytes()).count();
    newlines + usize::from(!s.is_empty() && !s.ends_with('\n'))
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// The largest index `<= max` that does not split a UTF-8 sequence.
fn floor_boundary(bytes: &[u8], max: usize) -> usize {
    if bytes.len() <= max {
        return bytes.len();
    }
    let mut end = max;
    // Step back over continuation bytes (10xxxxxx).
    while end > 0 && (bytes[end] & 0b1100_0000) == 0b1000_0000 {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reduce_json(v: Value) -> Value {
        Value::Object(reduce(v.to_string().as_bytes()))
    }

    #[test]
    fn bash_keeps_command_and_measures_output() {
        let out = reduce_json(json!({
            "session_id": "s1", "hook_event_name": "PostToolUse", "tool_name": "Bash",
            "tool_use_id": "tu1", "transcript_path": "/secret/path.jsonl", "cwd": "/w",
            "tool_input": {"command": "fn run csv_read_py_data x.csv", "description": "d", "run_in_background": false},
            "tool_response": {"stdout": "héllo", "stderr": "", "interrupted": false, "isImage": false}
        }));
        assert_eq!(
            out,
            json!({
                "session_id": "s1", "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "tu1",
                "cwd": "/w", "command": "fn run csv_read_py_data x.csv", "run_in_background": false,
                "interrupted": false, "stdout_bytes": 6, "stderr_bytes": 0
            })
        );
    }

    #[test]
    fn long_command_is_cut_on_a_char_boundary() {
        let command = format!("{}é{}", "a".repeat(COMMAND_MAX - 1), "b".repeat(100));
        let out = reduce_json(json!({"tool_name": "Bash", "tool_input": {"command": command}}));
        let kept = out["command"].as_str().unwrap();
        assert_eq!(kept.len(), COMMAND_MAX - 1);
        assert_eq!(out["command_truncated"], true);
    }

    #[test]
    fn edits_keep_counts_and_hash_not_text() {
        let out = reduce_json(json!({
            "tool_name": "MultiEdit", "hook_event_name": "PostToolUse",
            "tool_input": {"file_path": "functions/py/data/csv_read.py", "edits": [
                {"old_string": "a\nb\n", "new_string": "c"},
                {"old_string": "x", "new_string": "y\nz\n"}
            ]},
            "tool_response": {"originalFile": "SECRET FILE CONTENT"}
        }));
        assert_eq!(out["lines_added"], 3);
        assert_eq!(out["lines_removed"], 3);
        assert_eq!(
            out["content_sha256"],
            hex::encode(Sha256::digest(b"cy\nz\n"))
        );
        assert!(!out.to_string().contains("SECRET"));
        let write = reduce_json(
            json!({"tool_name": "Write", "tool_input": {"file_path": "f.py", "content": "1\n2\n3"}}),
        );
        assert_eq!(
            (write["lines_added"].clone(), write["lines_removed"].clone()),
            (json!(3), json!(0))
        );
        let nb = reduce_json(
            json!({"tool_name": "NotebookEdit", "tool_input": {"notebook_path": "n.ipynb", "new_source": "x"}}),
        );
        assert_eq!(nb["file_path"], "n.ipynb");
    }

    #[test]
    fn a_written_code_file_keeps_fingerprints_not_code() {
        let body = "def load(path):\n    with open(path) as f:\n        rows = [r.split(',') for r in f]\n    return {r[0]: r[1:] for r in rows if r}\n";
        let payload = |event: &str, path: &str| {
            reduce_json(json!({
                "tool_name": "Write", "hook_event_name": event,
                "tool_input": {"file_path": path, "content": body},
                "tool_response": {"filePath": path, "content": body}
            }))
        };
        let post = payload("PostToolUse", "C:\\work\\app\\load.py");
        let hex = post["code_fingerprints"].as_str().unwrap();
        let expected = fingerprint_texts([body], Lang::Python);
        assert_eq!(hex, expected.to_hex());
        assert!(!expected.is_empty());
        assert!(!post.to_string().contains("split"));
        // Not before the write happened, and not for a file that is not code.
        assert!(payload("PreToolUse", "/w/load.py")
            .get("code_fingerprints")
            .is_none());
        assert!(payload("PostToolUse", "/w/notes.md")
            .get("code_fingerprints")
            .is_none());
    }

    #[test]
    fn mcp_input_kept_small_or_as_keys() {
        let small = reduce_json(
            json!({"tool_name": "mcp__registry__run", "tool_input": {"function_id": "a_py_b"}}),
        );
        assert_eq!(small["tool_input"], json!({"function_id": "a_py_b"}));
        let big = reduce_json(
            json!({"tool_name": "mcp__registry__run", "tool_input": {"id": "x", "blob": "z".repeat(MCP_INPUT_MAX)}}),
        );
        assert_eq!(big["tool_input_keys"], json!(["blob", "id"]));
        assert_eq!(big["tool_input_truncated"], true);
        assert!(big.get("tool_input").is_none());
    }

    #[test]
    fn failure_error_is_cut_and_prompt_only_counted() {
        let out = reduce_json(
            json!({"hook_event_name": "PostToolUseFailure", "tool_name": "Read", "error": "e".repeat(10_000)}),
        );
        assert_eq!(out["error"].as_str().unwrap().len(), ERROR_MAX);
        let prompt =
            reduce_json(json!({"hook_event_name": "UserPromptSubmit", "prompt": "ñandú secret"}));
        assert_eq!(
            prompt,
            json!({"hook_event_name": "UserPromptSubmit", "prompt_chars": 12})
        );
    }

    #[test]
    fn unknown_events_keep_common_fields_and_drop_objects() {
        let out = reduce_json(
            json!({"hook_event_name": "Notification", "session_id": "s", "message": "hi", "reason": {"nested": 1}}),
        );
        assert_eq!(
            out,
            json!({"hook_event_name": "Notification", "session_id": "s"})
        );
    }

    #[test]
    fn non_json_stdin_becomes_invalid() {
        for input in [&b"not json"[..], b"[1,2]", b"\xff\xfe", b""] {
            let out = reduce(input);
            assert_eq!(out["hook_event_name"], INVALID_EVENT);
            assert!(out["raw"].is_string());
        }
    }
}

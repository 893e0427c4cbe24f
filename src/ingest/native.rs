//! Native-shape lines (CONTRACT §2): an envelope whose `event` is a Claude
//! Code payload in its own nesting (`tool_input.command`,
//! `tool_response.stdout`, `prompt`), as a third-party writer or a `jq`
//! one-liner hook spools it. Such a line is reduced here, on the reader
//! thread and before anything is parsed for the database, by the hook's own
//! reduction ([`crate::capture::reduce`]: one reduction, two callers), so it
//! is recognised exactly as the hook's line would be and none of its raw
//! text (outputs, file contents, prompts) goes further.
//!
//! # Which lines
//! A reduced event never holds `tool_response`, `prompt` or
//! `transcript_path`, nor a `tool_input` of a tool other than MCP; a
//! payload always holds at least one of them. A cheap byte search skips the
//! lines that cannot be native; the rest are parsed whole and decided on
//! their members. The reduced line keeps the envelope's `v`, `id`, `ts` and
//! `host`, so dedupe and time are the original line's. (Should the
//! reduced line still be rejected — a bad `ts`, say — it is the reduced
//! line that is quarantined: raw payload text is not kept there either.)

use memchr::memmem;
use serde_json::{Map, Value};

use crate::capture::reduce;

/// Members only a native payload has.
const NATIVE_ONLY: &[&str] = &["tool_response", "prompt", "transcript_path"];

/// The line with its event reduced, when `line` is a native-shape envelope;
/// `None` when it is not (or is no valid JSON: the parser then says why).
pub(super) fn reduce_line(line: &[u8]) -> Option<Vec<u8>> {
    if !might_be_native(line) {
        return None;
    }
    let mut envelope: Map<String, Value> = serde_json::from_slice(line).ok()?;
    let event = envelope.get("event")?.as_object()?;
    if !is_native(event) {
        return None;
    }
    let payload = serde_json::to_vec(event).ok()?;
    envelope.insert("event".into(), Value::Object(reduce::reduce(&payload)));
    serde_json::to_vec(&envelope).ok()
}

/// Whether the line names a member only payloads have (quoted as a JSON
/// key would be); false means it certainly is not native.
fn might_be_native(line: &[u8]) -> bool {
    NATIVE_ONLY
        .iter()
        .chain(&["tool_input"])
        .any(|name| memmem::find(line, format!("\"{name}\"").as_bytes()).is_some())
}

/// Whether an event object is a payload in Claude Code's own nesting.
fn is_native(event: &Map<String, Value>) -> bool {
    if NATIVE_ONLY.iter().any(|name| event.contains_key(*name)) {
        return true;
    }
    // The reduction keeps `tool_input` for MCP tools only.
    let mcp = event
        .get("tool_name")
        .and_then(Value::as_str)
        .is_some_and(|tool| tool.starts_with("mcp__"));
    event.contains_key("tool_input") && !mcp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(event: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"v": 1, "id": "a", "ts": "2026-12-04T10:00:00.000Z", "host": "h", "event": event}))
            .unwrap()
    }

    #[test]
    fn a_native_bash_post_is_reduced_and_keeps_its_envelope() {
        let native = line(json!({
            "session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash",
            "transcript_path": "/home/u/.claude/projects/p/s.jsonl",
            "tool_input": {"command": "fn run a_py_x", "description": "secret words"},
            "tool_response": {"stdout": "OUTPUT TEXT", "stderr": "", "interrupted": false},
        }));
        let reduced: Value = serde_json::from_slice(&reduce_line(&native).unwrap()).unwrap();
        assert_eq!(reduced["id"], "a");
        assert_eq!(reduced["ts"], "2026-12-04T10:00:00.000Z");
        assert_eq!(reduced["host"], "h");
        assert_eq!(reduced["event"]["command"], "fn run a_py_x");
        assert_eq!(reduced["event"]["stdout_bytes"], 11);
        let text = String::from_utf8(reduce_line(&native).unwrap()).unwrap();
        for raw in [
            "OUTPUT TEXT",
            "secret words",
            "transcript_path",
            "tool_response",
        ] {
            assert!(!text.contains(raw), "{raw} survived: {text}");
        }
    }

    #[test]
    fn reduced_lines_and_mcp_inputs_are_left_as_they_are() {
        let reduced = line(json!({
            "session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "command": "echo \"tool_input\" \"prompt\"",
        }));
        assert_eq!(reduce_line(&reduced), None);
        let mcp = line(json!({
            "session_id": "s", "hook_event_name": "PreToolUse",
            "tool_name": "mcp__registry__run", "tool_input": {"function_id": "a_py_x"},
        }));
        assert_eq!(reduce_line(&mcp), None);
        assert_eq!(reduce_line(b"{\"tool_response\": [1,"), None);
    }

    #[test]
    fn a_prompt_becomes_its_length() {
        let native = line(json!({
            "session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "héllo",
        }));
        let reduced: Value = serde_json::from_slice(&reduce_line(&native).unwrap()).unwrap();
        assert_eq!(reduced["event"]["prompt_chars"], 5);
        assert!(reduced["event"].get("prompt").is_none());
    }
}

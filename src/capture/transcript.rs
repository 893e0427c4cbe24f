//! Claude Code transcripts as the hook events they imply (issue 23): the
//! conversion a transcript importer feeds to the same reduction as the
//! hook ([`super::reduce::reduce`]), so nothing raw reaches the database
//! whichever way an event arrived.
//!
//! A transcript (`~/.claude/projects/<project>/<session>.jsonl`, subagents
//! in `<session>/subagents/agent-<id>.jsonl`) is one JSON object per line,
//! `type` among `user`, `assistant`, `system`, `progress`, `summary`,
//! `file-history-snapshot`, `queue-operation`… with `sessionId`, `cwd`,
//! `timestamp`, `uuid`, `isSidechain`. What becomes an event:
//!
//! - each `tool_use` block `{id, name, input}` of an `assistant` line → a
//!   `PreToolUse` at that line's time;
//! - each `tool_result` block `{tool_use_id, content, is_error}` of a
//!   `user` line → a `PostToolUse` (its `content` the `tool_response`), or
//!   with `is_error` a `PostToolUseFailure` (its text the `error`; an
//!   interruption marked `is_interrupt`), at that line's time — the
//!   engine takes the duration from the Pre's time, as for a hook without
//!   `duration_ms`. The tool's name and input come from its `tool_use`
//!   seen earlier in the file ([`Converter`] remembers them);
//! - a `user` line that is the person's prompt (text, not tool results,
//!   not a meta line) → a `UserPromptSubmit`.
//!
//! Every other line is skipped, and says why ([`Skipped`]). In a subagent's
//! file every event carries `agent_id` (from the file name), as the
//! hook's do inside a subagent.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// Why a transcript line gave no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Not a JSON object.
    NotJson,
    /// No `sessionId` or `timestamp`.
    NoSession,
    /// A line type that holds no tool use or prompt (`summary`,
    /// `progress`, `system`, snapshots, queue operations, new ones).
    OtherType,
    /// A `user` or `assistant` line without tool uses, results or a prompt
    /// (assistant text, thinking, meta lines).
    NothingToCount,
}

/// One hook event a transcript line implies: its time (the line's
/// `timestamp`) and the payload the hook would have received.
#[derive(Debug, Clone, PartialEq)]
pub struct ImpliedEvent {
    pub ts: String,
    pub payload: Value,
}

impl ImpliedEvent {
    /// Whether it is a tool use's start (one per `tool_use` block).
    pub fn is_tool_use(&self) -> bool {
        self.payload["hook_event_name"] == "PreToolUse"
    }
}

/// What the tool uses of one transcript file have said so far.
#[derive(Debug, Default)]
pub struct Converter {
    agent_id: Option<String>,
    /// Tool use id → (tool name, input), until its result.
    open_uses: HashMap<String, (String, Value)>,
}

/// What Claude Code writes in a tool result when the person interrupts it.
const INTERRUPTED: &str = "[Request interrupted by user";

impl Converter {
    /// A converter for the file at `path`: a subagent's when its name is
    /// `agent-<id>.jsonl`.
    pub fn for_file(path: &std::path::Path) -> Self {
        let agent_id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("agent-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .map(str::to_string);
        Converter {
            agent_id,
            open_uses: HashMap::new(),
        }
    }

    /// The events one transcript line implies, in order.
    pub fn events(&mut self, line: &[u8]) -> Result<Vec<ImpliedEvent>, Skipped> {
        let Ok(Value::Object(line)) = serde_json::from_slice::<Value>(line) else {
            return Err(Skipped::NotJson);
        };
        let (Some(session), Some(ts)) = (text(&line, "sessionId"), text(&line, "timestamp")) else {
            return Err(Skipped::NoSession);
        };
        let mut base = Map::new();
        base.insert("session_id".into(), session.into());
        if let Some(cwd) = text(&line, "cwd") {
            base.insert("cwd".into(), cwd.into());
        }
        if let Some(agent) = &self.agent_id {
            base.insert("agent_id".into(), agent.as_str().into());
        }
        let content = line.get("message").and_then(|m| m.get("content"));
        let events = match text(&line, "type") {
            Some("assistant") => self.tool_uses(&base, content),
            Some("user") => self.results_or_prompt(&base, &line, content),
            _ => return Err(Skipped::OtherType),
        };
        if events.is_empty() {
            return Err(Skipped::NothingToCount);
        }
        Ok(events
            .into_iter()
            .map(|payload| ImpliedEvent {
                ts: ts.to_string(),
                payload,
            })
            .collect())
    }

    fn tool_uses(&mut self, base: &Map<String, Value>, content: Option<&Value>) -> Vec<Value> {
        blocks(content, "tool_use")
            .filter_map(|block| {
                let id = block.get("id")?.as_str()?;
                let name = block.get("name")?.as_str()?;
                let input = block.get("input").cloned().unwrap_or(json!({}));
                self.open_uses
                    .insert(id.to_string(), (name.to_string(), input.clone()));
                let mut event = base.clone();
                event.insert("hook_event_name".into(), "PreToolUse".into());
                event.insert("tool_name".into(), name.into());
                event.insert("tool_use_id".into(), id.into());
                event.insert("tool_input".into(), input);
                Some(Value::Object(event))
            })
            .collect()
    }

    fn results_or_prompt(
        &mut self,
        base: &Map<String, Value>,
        line: &Map<String, Value>,
        content: Option<&Value>,
    ) -> Vec<Value> {
        let results: Vec<Value> = blocks(content, "tool_result")
            .filter_map(|block| self.result(base, block))
            .collect();
        if !results.is_empty() {
            return results;
        }
        let meta = line.get("isMeta").and_then(Value::as_bool) == Some(true);
        match prompt_text(content) {
            Some(prompt) if !meta => {
                let mut event = base.clone();
                event.insert("hook_event_name".into(), "UserPromptSubmit".into());
                event.insert("prompt".into(), prompt.into());
                vec![Value::Object(event)]
            }
            _ => Vec::new(),
        }
    }

    fn result(&mut self, base: &Map<String, Value>, block: &Value) -> Option<Value> {
        let id = block.get("tool_use_id")?.as_str()?;
        let failed = block.get("is_error").and_then(Value::as_bool) == Some(true);
        let content = block.get("content").cloned().unwrap_or(Value::Null);
        let mut event = base.clone();
        let name = if failed {
            "PostToolUseFailure"
        } else {
            "PostToolUse"
        };
        event.insert("hook_event_name".into(), name.into());
        event.insert("tool_use_id".into(), id.into());
        if let Some((tool, input)) = self.open_uses.remove(id) {
            event.insert("tool_name".into(), tool.into());
            event.insert("tool_input".into(), input);
        }
        if failed {
            let error = result_text(&content);
            if error.starts_with(INTERRUPTED) {
                event.insert("is_interrupt".into(), true.into());
            }
            event.insert("error".into(), error.into());
        } else {
            event.insert("tool_response".into(), content);
        }
        Some(Value::Object(event))
    }
}

fn text<'a>(line: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    line.get(key).and_then(Value::as_str)
}

/// The blocks of `kind` in a message's content (an array of blocks; a
/// string content has none).
fn blocks<'a>(content: Option<&'a Value>, kind: &'a str) -> impl Iterator<Item = &'a Value> {
    content
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |b| b.get("type").and_then(Value::as_str) == Some(kind))
}

/// The person's prompt: a string content, or its text blocks joined.
fn prompt_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(_) => {
            let texts: Vec<&str> = blocks(content, "text")
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// A tool result's text: a string content, or its text blocks joined.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn line(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn assistant(ts: &str, content: Value) -> Vec<u8> {
        line(json!({
            "type": "assistant", "sessionId": "s-1", "cwd": "/home/dev/app", "timestamp": ts,
            "uuid": "u", "isSidechain": false, "version": "2.1.200",
            "message": {"role": "assistant", "content": content}
        }))
    }

    fn user(ts: &str, content: Value) -> Vec<u8> {
        line(json!({
            "type": "user", "sessionId": "s-1", "cwd": "/home/dev/app", "timestamp": ts,
            "uuid": "v", "message": {"role": "user", "content": content}
        }))
    }

    #[test]
    fn parallel_tool_uses_and_their_results_become_pre_and_post_events() {
        let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
        let pre = c
            .events(&assistant(
                "2026-12-01T10:00:00.000Z",
                json!([
                    {"type": "text", "text": "Let me run both."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "fn run a_py_x", "description": "d"}},
                    {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"file_path": "/a.py"}}
                ]),
            ))
            .unwrap();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[0].ts, "2026-12-01T10:00:00.000Z");
        assert_eq!(pre[0].payload["hook_event_name"], "PreToolUse");
        assert_eq!(pre[0].payload["tool_name"], "Bash");
        assert_eq!(pre[0].payload["tool_input"]["command"], "fn run a_py_x");
        assert_eq!(pre[0].payload["session_id"], "s-1");
        assert_eq!(pre[0].payload["cwd"], "/home/dev/app");
        assert_eq!(pre[1].payload["tool_use_id"], "toolu_01B");

        let post = c
            .events(&user(
                "2026-12-01T10:00:02.500Z",
                json!([
                    {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "x = 1"},
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "is_error": true,
                     "content": [{"type": "text", "text": "Exit code 1\nboom"}]}
                ]),
            ))
            .unwrap();
        assert_eq!(post[0].payload["hook_event_name"], "PostToolUse");
        assert_eq!(post[0].payload["tool_name"], "Read");
        assert_eq!(post[0].payload["tool_response"], "x = 1");
        assert_eq!(post[1].payload["hook_event_name"], "PostToolUseFailure");
        assert_eq!(post[1].payload["tool_name"], "Bash");
        assert_eq!(post[1].payload["tool_input"]["command"], "fn run a_py_x");
        assert_eq!(post[1].payload["error"], "Exit code 1\nboom");
        assert!(post[1].payload.get("is_interrupt").is_none());
    }

    #[test]
    fn interruptions_prompts_and_other_lines() {
        let mut c = Converter::for_file(Path::new("/p/s-1/subagents/agent-a7f.jsonl"));
        c.events(&assistant(
            "2026-12-01T10:00:00.000Z",
            json!([{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "sleep 100"}}]),
        ))
        .unwrap();
        let cut = c
            .events(&user(
                "2026-12-01T10:00:09.000Z",
                json!([{"type": "tool_result", "tool_use_id": "t1", "is_error": true,
                        "content": "[Request interrupted by user for tool use]"}]),
            ))
            .unwrap();
        assert_eq!(cut[0].payload["is_interrupt"], true);
        assert_eq!(cut[0].payload["agent_id"], "a7f", "a subagent's file");

        let prompt = c
            .events(&user("2026-12-01T10:01:00.000Z", json!("fix the test")))
            .unwrap();
        assert_eq!(prompt[0].payload["hook_event_name"], "UserPromptSubmit");
        assert_eq!(prompt[0].payload["prompt"], "fix the test");
        let blocks = c
            .events(&user(
                "2026-12-01T10:01:00.000Z",
                json!([{"type": "text", "text": "and"}, {"type": "text", "text": "this"}]),
            ))
            .unwrap();
        assert_eq!(blocks[0].payload["prompt"], "and\nthis");

        let meta = line(
            json!({"type": "user", "sessionId": "s-1", "timestamp": "t", "isMeta": true,
                               "message": {"content": "<command-name>/clear</command-name>"}}),
        );
        assert_eq!(c.events(&meta), Err(Skipped::NothingToCount));
        let text_only = assistant("t", json!([{"type": "text", "text": "Done."}]));
        assert_eq!(c.events(&text_only), Err(Skipped::NothingToCount));
        let summary = line(json!({"type": "summary", "summary": "Fixing tests", "leafUuid": "x"}));
        assert_eq!(c.events(&summary), Err(Skipped::NoSession));
        let progress =
            line(json!({"type": "progress", "sessionId": "s-1", "timestamp": "t", "data": {}}));
        assert_eq!(c.events(&progress), Err(Skipped::OtherType));
        assert_eq!(c.events(b"{\"type\": \"assist"), Err(Skipped::NotJson));
    }

    #[test]
    fn a_result_whose_tool_use_came_before_the_checkpoint_still_pairs_by_id() {
        // Read again from a checkpoint, the tool_use line is not seen: the
        // Post carries its id, which the stored Pre pairs with.
        let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
        let post = c
            .events(&user(
                "2026-12-01T10:00:02.000Z",
                json!([{"type": "tool_result", "tool_use_id": "toolu_old", "content": "ok"}]),
            ))
            .unwrap();
        assert_eq!(post[0].payload["tool_use_id"], "toolu_old");
        assert!(post[0].payload.get("tool_name").is_none());
    }

    #[test]
    fn the_hook_reduction_takes_the_implied_payloads() {
        // What the importer will do with them: the hook's own reduction,
        // which keeps the command (the spool's raw text, redacted at
        // ingestion) and drops outputs for their sizes.
        let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
        c.events(&assistant(
            "t",
            json!([{"type": "tool_use", "id": "toolu_01A", "name": "Bash",
                    "input": {"command": "fn run a_py_x", "description": "d"}}]),
        ))
        .unwrap();
        let output = "secret row\n".repeat(100);
        let post = c
            .events(&user(
                "t",
                json!([{"type": "tool_result", "tool_use_id": "toolu_01A",
                        "content": {"stdout": output, "stderr": "", "interrupted": false}}]),
            ))
            .unwrap();
        let reduced =
            crate::capture::reduce::reduce(&serde_json::to_vec(&post[0].payload).unwrap());
        assert_eq!(reduced["hook_event_name"], "PostToolUse");
        assert_eq!(reduced["tool_use_id"], "toolu_01A");
        assert_eq!(reduced["command"], "fn run a_py_x");
        assert!(!serde_json::to_string(&reduced)
            .unwrap()
            .contains("secret row"));
    }
}

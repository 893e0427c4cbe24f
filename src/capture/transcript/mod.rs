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

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::contract::timefmt;

/// Why a transcript line gave no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Not a JSON object.
    NotJson,
    /// No `sessionId` or `timestamp`.
    NoSession,
    /// A line type that holds no tool use or prompt (`summary`, `system`,
    /// snapshots, queue operations, progress other than a subagent's
    /// messages, new ones).
    OtherType,
    /// A `user` or `assistant` line without tool uses, results or a prompt
    /// (assistant text, thinking, meta lines, a subagent's task prompt).
    NothingToCount,
    /// Older than the import's `--since`, or the result of a tool use that
    /// was.
    BeforeSince,
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
    /// The subagent's type, from `agent-<id>.meta.json` beside its file.
    agent_type: Option<String>,
    /// The file, to find the meta files of subagents whose messages it
    /// copies (`<session>/subagents/agent-<id>.meta.json`).
    path: std::path::PathBuf,
    /// Their types, once looked up.
    copied_agent_types: HashMap<String, Option<String>>,
    /// Lines before this time imply nothing (`--since`).
    since: Option<DateTime<Utc>>,
    /// Tool use id → (tool name, input), until its result.
    open_uses: HashMap<String, (String, Value)>,
    /// Tool uses begun before `since`: their results imply nothing either.
    uses_before_since: HashSet<String>,
}

/// What Claude Code writes in a tool result when the person interrupts it.
const INTERRUPTED: &str = "[Request interrupted by user";

/// One message of a transcript: a line's own, or a subagent's copied into
/// its parent's transcript by a `progress` line.
struct Message<'a> {
    /// `user` or `assistant`.
    kind: &'a str,
    ts: &'a str,
    content: Option<&'a Value>,
    /// The subagent it belongs to, if any, and its type when known.
    agent_id: Option<&'a str>,
    agent_type: Option<&'a str>,
    /// Copied from a subagent's transcript by a `progress` line.
    copied: bool,
    /// A line Claude Code marks as not the person's (`isMeta`), or a
    /// subagent's side chain (`isSidechain`): never a prompt.
    not_a_prompt: bool,
}

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
        let agent_type = agent_id.as_ref().and_then(|id| agent_type_beside(path, id));
        Converter {
            agent_id,
            agent_type,
            path: path.to_path_buf(),
            ..Converter::default()
        }
    }

    /// The same, implying nothing for lines before `since`.
    pub fn since(mut self, since: Option<DateTime<Utc>>) -> Self {
        self.since = since;
        self
    }

    /// The events one transcript line implies, in order.
    pub fn events(&mut self, line: &[u8]) -> Result<Vec<ImpliedEvent>, Skipped> {
        let Ok(Value::Object(line)) = serde_json::from_slice::<Value>(line) else {
            return Err(Skipped::NotJson);
        };
        let (Some(session), Some(ts)) = (text(&line, "sessionId"), text(&line, "timestamp")) else {
            return Err(Skipped::NoSession);
        };
        let file_agent = (self.agent_id.clone(), self.agent_type.clone());
        let message = message_of(
            &line,
            ts,
            (file_agent.0.as_deref(), file_agent.1.as_deref()),
        )?;
        let mut base = Map::new();
        base.insert("session_id".into(), session.into());
        if let Some(cwd) = text(&line, "cwd") {
            base.insert("cwd".into(), cwd.into());
        }
        if let Some(agent) = message.agent_id {
            base.insert("agent_id".into(), agent.into());
        }
        let agent_type = match (message.agent_type, message.agent_id) {
            (Some(kind), _) => Some(kind.to_string()),
            (None, Some(agent)) if message.copied => self.copied_agent_type(agent),
            _ => None,
        };
        if let Some(kind) = agent_type {
            base.insert("agent_type".into(), kind.into());
        }
        let before_since = self
            .since
            .is_some_and(|since| timefmt::parse(message.ts).is_some_and(|t| t < since));
        let events = match message.kind {
            "assistant" => self.tool_uses(&base, message.content, before_since),
            _ if before_since => {
                self.forget_results(message.content);
                return Err(Skipped::BeforeSince);
            }
            _ => self.results_or_prompt(&base, &message),
        };
        if before_since && message.kind == "assistant" {
            return Err(Skipped::BeforeSince);
        }
        if events.is_empty() {
            return Err(Skipped::NothingToCount);
        }
        Ok(events
            .into_iter()
            .map(|payload| ImpliedEvent {
                ts: message.ts.to_string(),
                payload,
            })
            .collect())
    }

    fn tool_uses(
        &mut self,
        base: &Map<String, Value>,
        content: Option<&Value>,
        before_since: bool,
    ) -> Vec<Value> {
        blocks(content, "tool_use")
            .filter_map(|block| {
                let id = block.get("id")?.as_str()?;
                let name = block.get("name")?.as_str()?;
                if before_since {
                    self.uses_before_since.insert(id.to_string());
                    return None;
                }
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

    /// The type of the subagent `agent` whose messages this file copies,
    /// from its meta file under `<this file's stem>/subagents/`.
    fn copied_agent_type(&mut self, agent: &str) -> Option<String> {
        if let Some(known) = self.copied_agent_types.get(agent) {
            return known.clone();
        }
        let beside = self
            .path
            .with_extension("")
            .join("subagents")
            .join(format!("agent-{agent}.jsonl"));
        let found = agent_type_beside(&beside, agent);
        self.copied_agent_types
            .insert(agent.to_string(), found.clone());
        found
    }

    /// Forgets the open tool uses whose results `content` holds.
    fn forget_results(&mut self, content: Option<&Value>) {
        for block in blocks(content, "tool_result") {
            if let Some(id) = block.get("tool_use_id").and_then(Value::as_str) {
                self.open_uses.remove(id);
                self.uses_before_since.remove(id);
            }
        }
    }

    fn results_or_prompt(
        &mut self,
        base: &Map<String, Value>,
        message: &Message<'_>,
    ) -> Vec<Value> {
        let mut found_results = false;
        let results: Vec<Value> = blocks(message.content, "tool_result")
            .filter_map(|block| {
                found_results = true;
                self.result(base, block)
            })
            .collect();
        if found_results || message.not_a_prompt || message.agent_id.is_some() {
            // A subagent's `user` text is its task, from the parent agent:
            // the hook's UserPromptSubmit fires for a person's prompts only.
            return results;
        }
        match prompt_text(message.content) {
            Some(prompt) => {
                let mut event = base.clone();
                event.insert("hook_event_name".into(), "UserPromptSubmit".into());
                event.insert("prompt".into(), prompt.into());
                vec![Value::Object(event)]
            }
            None => Vec::new(),
        }
    }

    fn result(&mut self, base: &Map<String, Value>, block: &Value) -> Option<Value> {
        let id = block.get("tool_use_id")?.as_str()?;
        if self.uses_before_since.remove(id) {
            return None;
        }
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

/// The message `line` holds: its own (`user`, `assistant`), or the
/// subagent's it copies (`progress` of type `agent_progress`, written
/// by some versions into the parent's transcript).
fn message_of<'a>(
    line: &'a Map<String, Value>,
    ts: &'a str,
    (file_agent, file_agent_type): (Option<&'a str>, Option<&'a str>),
) -> Result<Message<'a>, Skipped> {
    let flag = |map: &Map<String, Value>, key: &str| map.get(key).and_then(Value::as_bool);
    match text(line, "type") {
        Some(kind @ ("assistant" | "user")) => Ok(Message {
            kind,
            ts,
            content: line.get("message").and_then(|m| m.get("content")),
            agent_id: file_agent,
            agent_type: file_agent_type,
            copied: false,
            not_a_prompt: flag(line, "isMeta") == Some(true)
                || flag(line, "isSidechain") == Some(true),
        }),
        Some("progress") => {
            let data = line.get("data").and_then(Value::as_object);
            let data = data.filter(|d| text(d, "type") == Some("agent_progress"));
            let copied = data
                .and_then(|d| d.get("message"))
                .and_then(Value::as_object)
                .ok_or(Skipped::OtherType)?;
            let kind = text(copied, "type")
                .filter(|k| matches!(*k, "assistant" | "user"))
                .ok_or(Skipped::OtherType)?;
            Ok(Message {
                kind,
                ts: text(copied, "timestamp").unwrap_or(ts),
                content: copied.get("message").and_then(|m| m.get("content")),
                agent_id: data.and_then(|d| text(d, "agentId")).or(file_agent),
                agent_type: data.and_then(|d| text(d, "agentType")),
                copied: true,
                not_a_prompt: true,
            })
        }
        _ => Err(Skipped::OtherType),
    }
}

/// The `agentType` of `agent-<id>.meta.json` beside a subagent's transcript
/// (written by recent versions), if any.
fn agent_type_beside(path: &std::path::Path, id: &str) -> Option<String> {
    let meta = path.with_file_name(format!("agent-{id}.meta.json"));
    let text = std::fs::read(meta).ok()?;
    let meta: Value = serde_json::from_slice(&text).ok()?;
    Some(meta.get("agentType")?.as_str()?.to_string())
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
mod tests;

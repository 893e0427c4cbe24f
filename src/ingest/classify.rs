//! From a stored envelope to the rows it implies: `sessions` and `calls`.
//!
//! This is the minimal classifier of the ingestion engine: it recognises
//! `fn run <id>` in Bash commands and `mcp__registry__*` tools carrying a
//! function id, and pairs Pre/Post events of the same tool use. The full
//! rules engine (tests, e2e, writes, violations, heredocs) replaces
//! [`recognise`] behind the same [`apply`] entry point.
//!
//! # Pairing
//! A tool use produces up to two events (PreToolUse, then PostToolUse or
//! PostToolUseFailure) that may arrive in either order, in different
//! batches or files. Each recognised call is keyed by
//! (`session_id`, `tool_use_id`, `ordinal`), where `ordinal` is its position
//! in the command, so both events land on the same `calls` row:
//! - Pre writes the start time, leaving `success` NULL (an unfinished call
//!   stays visible as such);
//! - Post writes `success`, `error_class` and `duration_ms` — from the
//!   payload, else Post minus Pre time when the Pre event is known.

use std::sync::LazyLock;

use regex::Regex;
use rusqlite::{OptionalExtension, Transaction};
use serde_json::Value;

use crate::envelope::Envelope;
use crate::timefmt;

/// `fn run <function_id>`, at a command start or after a shell separator.
static FN_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s;&|(`{])fn\s+run\s+([A-Za-z0-9][A-Za-z0-9_]*)").expect("valid regex")
});

/// How a call reached the registry (`calls.tool_used`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolUsed {
    FnRun,
    Mcp,
}

impl ToolUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolUsed::FnRun => "fn_run",
            ToolUsed::Mcp => "mcp",
        }
    }
}

/// A registry call recognised in one tool use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRef {
    pub function_id: String,
    pub tool_used: ToolUsed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pre,
    Post { success: bool },
}

impl Phase {
    fn of(hook_event_name: &str) -> Option<Self> {
        match hook_event_name {
            "PreToolUse" => Some(Phase::Pre),
            "PostToolUse" => Some(Phase::Post { success: true }),
            "PostToolUseFailure" => Some(Phase::Post { success: false }),
            _ => None,
        }
    }
}

/// Applies one new envelope to the event tables.
pub fn apply(tx: &Transaction<'_>, env: &Envelope) -> rusqlite::Result<()> {
    let Some(session_id) = env.field("session_id") else {
        return Ok(());
    };
    let ts = timefmt::format(env.ts);
    upsert_session(tx, env, session_id, &ts)?;
    let Some(phase) = Phase::of(env.hook_event_name()) else {
        return Ok(());
    };
    let calls = recognise(env);
    if calls.is_empty() {
        return Ok(());
    }
    let tool_use_id = env.field("tool_use_id");
    match phase {
        Phase::Pre => record_start(tx, env, session_id, tool_use_id, &ts, &calls),
        Phase::Post { success } => {
            record_end(tx, env, session_id, tool_use_id, &ts, success, &calls)
        }
    }
}

/// The registry calls of one tool use, in order.
pub fn recognise(env: &Envelope) -> Vec<CallRef> {
    let tool = env.field("tool_name").unwrap_or_default();
    if tool == "Bash" {
        let command = env.field("command").unwrap_or_default();
        return FN_RUN
            .captures_iter(command)
            .map(|c| CallRef {
                function_id: c[1].to_string(),
                tool_used: ToolUsed::FnRun,
            })
            .collect();
    }
    if tool.starts_with("mcp__registry__") {
        let input = env.event.get("tool_input");
        let id = input
            .and_then(|i| i.get("function_id").or_else(|| i.get("id")))
            .and_then(Value::as_str);
        if let Some(id) = id {
            return vec![CallRef {
                function_id: id.to_string(),
                tool_used: ToolUsed::Mcp,
            }];
        }
    }
    Vec::new()
}

fn upsert_session(
    tx: &Transaction<'_>,
    env: &Envelope,
    session_id: &str,
    ts: &str,
) -> rusqlite::Result<()> {
    let ended = (env.hook_event_name() == "SessionEnd").then_some(ts);
    tx.prepare_cached(
        "INSERT INTO sessions (session_id, cwd, host, started_at, ended_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (session_id) DO UPDATE SET
            cwd = COALESCE(sessions.cwd, excluded.cwd),
            host = COALESCE(sessions.host, excluded.host),
            started_at = MIN(COALESCE(sessions.started_at, excluded.started_at), excluded.started_at),
            ended_at = CASE WHEN excluded.ended_at IS NULL THEN sessions.ended_at
                            ELSE MAX(COALESCE(sessions.ended_at, excluded.ended_at), excluded.ended_at) END",
    )?
    .execute((session_id, env.field("cwd"), &env.host, ts, ended))?;
    Ok(())
}

/// The timestamp of another event of the same tool use, if stored.
fn partner_ts(
    tx: &Transaction<'_>,
    session_id: &str,
    tool_use_id: &str,
    events: &[&str],
) -> rusqlite::Result<Option<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT ts FROM events WHERE session_id = ?1 AND tool_use_id = ?2 AND hook_event_name = ?3",
    )?;
    for event in events {
        if let Some(ts) = stmt
            .query_row((session_id, tool_use_id, event), |r| r.get(0))
            .optional()?
        {
            return Ok(Some(ts));
        }
    }
    Ok(None)
}

fn millis_between(from: &str, to: &str) -> Option<i64> {
    let (from, to) = (timefmt::parse(from)?, timefmt::parse(to)?);
    let ms = (to - from).num_milliseconds();
    (ms >= 0).then_some(ms)
}

fn record_start(
    tx: &Transaction<'_>,
    _env: &Envelope,
    session_id: &str,
    tool_use_id: Option<&str>,
    ts: &str,
    calls: &[CallRef],
) -> rusqlite::Result<()> {
    let end = match tool_use_id {
        Some(id) => partner_ts(tx, session_id, id, &["PostToolUse", "PostToolUseFailure"])?,
        None => None,
    };
    let duration = end.as_deref().and_then(|end| millis_between(ts, end));
    let mut stmt = tx.prepare_cached(
        "INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success, tool_use_id, ordinal)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)
         ON CONFLICT (session_id, tool_use_id, ordinal) WHERE tool_use_id IS NOT NULL DO UPDATE SET
            ts = excluded.ts,
            duration_ms = COALESCE(calls.duration_ms, excluded.duration_ms)",
    )?;
    for (ordinal, call) in calls.iter().enumerate() {
        stmt.execute((
            session_id,
            &call.function_id,
            call.tool_used.as_str(),
            ts,
            duration,
            tool_use_id,
            ordinal as i64,
        ))?;
    }
    Ok(())
}

fn record_end(
    tx: &Transaction<'_>,
    env: &Envelope,
    session_id: &str,
    tool_use_id: Option<&str>,
    ts: &str,
    success: bool,
    calls: &[CallRef],
) -> rusqlite::Result<()> {
    let start = match tool_use_id {
        Some(id) => partner_ts(tx, session_id, id, &["PreToolUse"])?,
        None => None,
    };
    let duration = env
        .event
        .get("duration_ms")
        .and_then(Value::as_i64)
        .filter(|d| *d >= 0)
        .or_else(|| start.as_deref().and_then(|start| millis_between(start, ts)));
    let error_class = (!success).then(|| error_class(env));
    let call_ts = start.as_deref().unwrap_or(ts);
    let mut stmt = tx.prepare_cached(
        "INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success, error_class, tool_use_id, ordinal)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (session_id, tool_use_id, ordinal) WHERE tool_use_id IS NOT NULL DO UPDATE SET
            success = excluded.success,
            error_class = excluded.error_class,
            duration_ms = COALESCE(excluded.duration_ms, calls.duration_ms)",
    )?;
    for (ordinal, call) in calls.iter().enumerate() {
        stmt.execute((
            session_id,
            &call.function_id,
            call.tool_used.as_str(),
            call_ts,
            duration,
            i64::from(success),
            &error_class,
            tool_use_id,
            ordinal as i64,
        ))?;
    }
    Ok(())
}

/// A coarse, text-free class of a failure.
pub fn error_class(env: &Envelope) -> String {
    static EXIT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)exit(?:ed)?(?: with)?(?: code| status)?\s*[:=]?\s*(\d{1,3})\b")
            .expect("valid regex")
    });
    let interrupted = ["is_interrupt", "interrupted"]
        .iter()
        .any(|k| env.event.get(*k).and_then(Value::as_bool) == Some(true));
    if interrupted {
        return "interrupted".into();
    }
    let error = env.field("error").unwrap_or_default();
    if let Some(code) = EXIT.captures(error).and_then(|c| c[1].parse::<u8>().ok()) {
        return format!("exit_{code}");
    }
    let lower = error.to_ascii_lowercase();
    let class = if lower.contains("timed out") || lower.contains("timeout") {
        "timeout"
    } else if lower.contains("not found") || lower.contains("no such file") {
        "not_found"
    } else if lower.contains("permission denied") {
        "permission_denied"
    } else {
        "other"
    };
    class.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(event: Value) -> Envelope {
        Envelope {
            id: "e".into(),
            ts: chrono::Utc::now(),
            host: None,
            event: event.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn recognises_each_fn_run_in_a_command() {
        let e = env(
            json!({"tool_name": "Bash", "command": "fn run a_py_x && (fn run b_go_y | cat); echo fn runner; xfn run c"}),
        );
        let ids: Vec<String> = recognise(&e).into_iter().map(|c| c.function_id).collect();
        assert_eq!(ids, ["a_py_x", "b_go_y"]);
    }

    #[test]
    fn recognises_registry_mcp_calls() {
        let e = env(
            json!({"tool_name": "mcp__registry__run", "tool_input": {"function_id": "a_py_x"}}),
        );
        assert_eq!(
            recognise(&e),
            vec![CallRef {
                function_id: "a_py_x".into(),
                tool_used: ToolUsed::Mcp
            }]
        );
        let other = env(json!({"tool_name": "mcp__github__run", "tool_input": {"id": "a_py_x"}}));
        assert!(recognise(&other).is_empty());
    }

    #[test]
    fn error_classes() {
        let class = |error: &str| error_class(&env(json!({"error": error})));
        assert_eq!(class("Command failed with exit code 1"), "exit_1");
        assert_eq!(class("exit status 127"), "exit_127");
        assert_eq!(class("Command timed out after 2m"), "timeout");
        assert_eq!(class("bash: fn: command not found"), "not_found");
        assert_eq!(class("Permission denied"), "permission_denied");
        assert_eq!(class("weird"), "other");
        assert_eq!(
            error_class(&env(json!({"is_interrupt": true}))),
            "interrupted"
        );
    }
}

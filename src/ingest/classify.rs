//! From a stored envelope to the rows it implies: `sessions` and `calls`.
//!
//! This is the minimal classifier of the ingestion engine: it recognises
//! `fn run <id>` in Bash commands and `mcp__registry__*` tools carrying a
//! function id, and pairs Pre/Post events of the same tool use. The full
//! rules engine (tests, e2e, writes, violations, heredocs) replaces
//! [`recognise`] behind the same [`Classifier::apply_batch`] entry point.
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
//!   payload, else Post minus Pre time.
//!
//! The row itself carries what pairing needs, so no event is looked up: a
//! Post that finds the row computes the duration from the start the Pre
//! wrote; a Post that comes first writes its own time into `ts` with
//! `success` set, and the late Pre computes the duration from it and then
//! puts the start time in `ts`.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use rusqlite::Transaction;

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

/// Applies new envelopes to the event tables, one batch (transaction) at a
/// time. It keeps a cache of sessions already written, so the per-event
/// session upsert is skipped when it could not change the row.
#[derive(Default)]
pub struct Classifier {
    sessions: HashMap<String, SessionSeen>,
}

/// What the database already holds for a session (committed or in the
/// current transaction). The session merge is monotone — `started_at` only
/// moves earlier, `cwd` and `host` only go from NULL to a value — so an
/// event that would not move any of them can skip its upsert.
struct SessionSeen {
    started_at: String,
    has_cwd: bool,
    has_host: bool,
}

/// Sessions remembered before the cache is simply cleared.
const SESSION_CACHE_MAX: usize = 100_000;

impl Classifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets cached state; called when a transaction rolls back.
    pub fn forget(&mut self) {
        self.sessions.clear();
    }

    /// Applies the envelopes newly stored in `tx`, in order.
    pub fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        batch: &[Envelope<'_>],
    ) -> rusqlite::Result<()> {
        // A Pre whose Post comes later in the same batch writes nothing: the
        // Post writes the complete row at once (one insert, not two writes).
        let mut post_at: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, env) in batch.iter().enumerate() {
            if let (Some(Phase::Post { .. }), Some(key)) =
                (Phase::of(env.hook_event_name()), pair_key(env))
            {
                post_at.entry(key).or_insert(i);
            }
        }
        let mut starts: HashMap<(&str, &str), &str> = HashMap::new();
        for (i, env) in batch.iter().enumerate() {
            let Some(session_id) = env.field("session_id") else {
                continue;
            };
            let ts = env.ts_text.as_str();
            self.session(tx, env, session_id, ts)?;
            let Some(phase) = Phase::of(env.hook_event_name()) else {
                continue;
            };
            let key = pair_key(env);
            if let (Phase::Pre, Some(key)) = (phase, key) {
                if post_at.get(&key).is_some_and(|&post| post > i) {
                    starts.insert(key, ts);
                    continue;
                }
            }
            let calls = recognise(env);
            if calls.is_empty() {
                continue;
            }
            let tool_use = ToolUse {
                session_id,
                tool_use_id: env.field("tool_use_id"),
                ts,
            };
            match phase {
                Phase::Pre => record_start(tx, &tool_use, &calls)?,
                Phase::Post { success } => {
                    let start = key.and_then(|k| starts.remove(&k));
                    let outcome = Outcome { success, start };
                    record_end(tx, env, &tool_use, outcome, &calls)?
                }
            }
        }
        Ok(())
    }

    fn session(
        &mut self,
        tx: &Transaction<'_>,
        env: &Envelope<'_>,
        session_id: &str,
        ts: &str,
    ) -> rusqlite::Result<()> {
        let (has_cwd, has_host) = (env.field("cwd").is_some(), env.host.is_some());
        let ending = env.hook_event_name() == "SessionEnd";
        if let Some(seen) = self.sessions.get(session_id) {
            let changes = ending
                || ts < seen.started_at.as_str()
                || (has_cwd && !seen.has_cwd)
                || (has_host && !seen.has_host);
            if !changes {
                return Ok(());
            }
        }
        upsert_session(tx, env, session_id, ts)?;
        if self.sessions.len() >= SESSION_CACHE_MAX {
            self.sessions.clear();
        }
        let seen = self
            .sessions
            .entry(session_id.to_string())
            .or_insert_with(|| SessionSeen {
                started_at: ts.to_string(),
                has_cwd,
                has_host,
            });
        if ts < seen.started_at.as_str() {
            seen.started_at = ts.to_string();
        }
        seen.has_cwd |= has_cwd;
        seen.has_host |= has_host;
        Ok(())
    }
}

/// The pairing key of a tool-use event.
fn pair_key<'e>(env: &'e Envelope<'_>) -> Option<(&'e str, &'e str)> {
    Some((env.field("session_id")?, env.field("tool_use_id")?))
}

/// The id-carrying members of a registry MCP tool's input.
#[derive(serde::Deserialize)]
struct RegistryInput<'a> {
    #[serde(borrow, default)]
    function_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
}

/// The registry calls of one tool use, in order.
pub fn recognise(env: &Envelope<'_>) -> Vec<CallRef> {
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
        let input = env
            .raw("tool_input")
            .and_then(|raw| serde_json::from_str::<RegistryInput<'_>>(raw.get()).ok());
        if let Some(id) = input.and_then(|i| i.function_id.or(i.id)) {
            return vec![CallRef {
                function_id: id.into_owned(),
                tool_used: ToolUsed::Mcp,
            }];
        }
    }
    Vec::new()
}

fn upsert_session(
    tx: &Transaction<'_>,
    env: &Envelope<'_>,
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
    .execute((session_id, env.field("cwd"), env.host.as_deref(), ts, ended))?;
    Ok(())
}

/// Milliseconds from `b` to `a` (canonical timestamps) in SQL, NULL when
/// negative (clock skew between hosts is not a duration).
macro_rules! sql_millis {
    ($a:literal, $b:literal) => {
        concat!(
            "(SELECT CASE WHEN d >= 0 THEN d END FROM (SELECT CAST(round((unixepoch(",
            $a,
            ", 'subsec') - unixepoch(",
            $b,
            ", 'subsec')) * 1000) AS INTEGER) AS d))"
        )
    };
}

/// Pre: the row's `ts` is the start. If the Post came first (`success` is
/// set and `ts` holds the end), the duration is end minus this start.
const RECORD_START: &str = concat!(
    "INSERT INTO calls (session_id, function_id, tool_used, ts, tool_use_id, ordinal)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (session_id, tool_use_id, ordinal) WHERE tool_use_id IS NOT NULL DO UPDATE SET
        ts = excluded.ts,
        duration_ms = COALESCE(calls.duration_ms,
            CASE WHEN calls.success IS NOT NULL THEN ",
    sql_millis!("calls.ts", "excluded.ts"),
    " END)"
);

/// Post: outcome and duration (the payload's, else end minus the start the
/// Pre wrote). Without a Pre yet, `ts` holds the end until the Pre arrives.
const RECORD_END: &str = concat!(
    "INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success, error_class, tool_use_id, ordinal)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (session_id, tool_use_id, ordinal) WHERE tool_use_id IS NOT NULL DO UPDATE SET
        success = excluded.success,
        error_class = excluded.error_class,
        duration_ms = COALESCE(excluded.duration_ms, calls.duration_ms, ",
    sql_millis!("excluded.ts", "calls.ts"),
    ")"
);

fn millis_between(from: &str, to: &str) -> Option<i64> {
    let ms = (timefmt::parse(to)? - timefmt::parse(from)?).num_milliseconds();
    (ms >= 0).then_some(ms)
}

/// The tool-use event being recorded: its session, its id (absent in some
/// external events) and its own time.
struct ToolUse<'a> {
    session_id: &'a str,
    tool_use_id: Option<&'a str>,
    ts: &'a str,
}

/// What a Post event says: success, and the start time when its Pre was in
/// the same batch.
#[derive(Clone, Copy)]
struct Outcome<'a> {
    success: bool,
    start: Option<&'a str>,
}

fn record_start(
    tx: &Transaction<'_>,
    tool_use: &ToolUse<'_>,
    calls: &[CallRef],
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(RECORD_START)?;
    for (ordinal, call) in calls.iter().enumerate() {
        stmt.execute((
            tool_use.session_id,
            &call.function_id,
            call.tool_used.as_str(),
            tool_use.ts,
            tool_use.tool_use_id,
            ordinal as i64,
        ))?;
    }
    Ok(())
}

fn record_end(
    tx: &Transaction<'_>,
    env: &Envelope<'_>,
    tool_use: &ToolUse<'_>,
    outcome: Outcome<'_>,
    calls: &[CallRef],
) -> rusqlite::Result<()> {
    let Outcome { success, start } = outcome;
    let ts = tool_use.ts;
    // With the start known (Pre in the same batch) the row is written
    // complete; otherwise the upsert pairs it with a stored Pre, if any.
    let duration = env
        .int("duration_ms")
        .filter(|d| *d >= 0)
        .or_else(|| start.and_then(|start| millis_between(start, ts)));
    let ts = start.unwrap_or(ts);
    let error_class = (!success).then(|| error_class(env));
    let mut stmt = tx.prepare_cached(RECORD_END)?;
    for (ordinal, call) in calls.iter().enumerate() {
        stmt.execute((
            tool_use.session_id,
            &call.function_id,
            call.tool_used.as_str(),
            ts,
            duration,
            i64::from(success),
            &error_class,
            tool_use.tool_use_id,
            ordinal as i64,
        ))?;
    }
    Ok(())
}

/// A coarse, text-free class of a failure.
pub fn error_class(env: &Envelope<'_>) -> String {
    static EXIT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)exit(?:ed)?(?: with)?(?: code| status)?\s*[:=]?\s*(\d{1,3})\b")
            .expect("valid regex")
    });
    let interrupted = ["is_interrupt", "interrupted"]
        .iter()
        .any(|k| env.flag(k) == Some(true));
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
    use serde_json::{json, Value};

    /// An envelope around `event`, parsed as the ingester would (the line is
    /// leaked: tests are short-lived).
    fn env(event: Value) -> Envelope<'static> {
        let mut event = event;
        event["hook_event_name"] = "PostToolUseFailure".into();
        let line = json!({"v": 1, "id": "e", "ts": "2026-11-24T10:00:00.000Z", "event": event})
            .to_string();
        crate::envelope::parse(Box::leak(line.into_boxed_str()).as_bytes()).unwrap()
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

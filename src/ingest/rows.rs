//! The row writers: one tool use's facts into `calls`, `test_runs`,
//! `e2e_runs_fn`, `code_writes`, `function_versions`, `violations` and
//! `heredocs`, keeping its Pre and Post on the same rows.
//!
//! # Pairing
//! A tool use produces up to two events (PreToolUse, then PostToolUse or
//! PostToolUseFailure) that may arrive in either order, in different
//! batches or files. Calls, test runs and e2e runs are keyed by
//! (`session_id`, `tool_use_id`, `ordinal`), where `ordinal` is the row's
//! position within the tool use, so both events land on the same row
//! ([`super::row_sql`] says how). The row itself carries what pairing
//! needs, so no event is looked up.
//!
//! Writes are recorded on a successful Post only (a failed Edit changed
//! nothing), each with an `edit_hook` row in `function_versions`, and so
//! are copies (a registry function's code found in another file: a
//! `copy_detected` row);
//! violations and heredoc occurrences on whichever event comes first, once
//! per tool use (unique indexes).
//!
//! Every call row written is reported, before and after, to the rollups
//! ([`super::rollups::Pending`]) in the same transaction.

use rusqlite::{CachedStatement, OptionalExtension, Transaction};

use super::rollups::{self, CallRow};
use super::row_sql::*;
use crate::contract::{timefmt, Envelope, Origin};
use crate::recognise::{redact, Facts};

/// What a Post event says: success, error class, duration (the
/// payload's, else from the start when its Pre was in the same batch),
/// and, when it failed a test, a redacted error snippet.
pub(super) fn outcome<'e>(
    env: &Envelope<'_>,
    success: bool,
    start: Option<&'e str>,
    facts: &Facts,
    error_class: Option<&'e str>,
) -> Outcome<'e> {
    let duration_ms = duration_of(env, start);
    Outcome {
        success,
        start,
        duration_ms,
        // Recognised::of classes failed Posts with facts, and only those.
        error_class,
        snippet: (!success && !facts.tests.is_empty())
            .then(|| env.field("error").map(redact::redact))
            .flatten(),
    }
}

/// A Post's duration: the payload's, else from `start` (its Pre's time,
/// when that was in the same batch) to the Post.
pub(super) fn duration_of(env: &Envelope<'_>, start: Option<&str>) -> Option<i64> {
    env.int("duration_ms")
        .filter(|d| *d >= 0)
        .or_else(|| start.and_then(|start| millis_between(start, &env.ts_text)))
}

fn millis_between(from: &str, to: &str) -> Option<i64> {
    let ms = timefmt::epoch_millis(to)? - timefmt::epoch_millis(from)?;
    (ms >= 0).then_some(ms)
}

/// The tool-use event being recorded: its session, its id (absent in some
/// external events) and its own time.
pub(super) struct ToolUse<'a> {
    pub(super) session_id: &'a str,
    pub(super) tool_use_id: Option<&'a str>,
    pub(super) ts: &'a str,
    /// The subagent it ran in, if any.
    pub(super) agent_id: Option<&'a str>,
    pub(super) agent_type: Option<&'a str>,
    /// Which writer its event came from (`source` of a new row).
    pub(super) origin: Origin,
}

/// What a Post event says.
pub(super) struct Outcome<'a> {
    pub(super) success: bool,
    /// The start time, when its Pre was in the same batch.
    pub(super) start: Option<&'a str>,
    pub(super) duration_ms: Option<i64>,
    error_class: Option<&'a str>,
    /// Redacted error text, for failed tests.
    snippet: Option<String>,
}

/// One call row as its event writes it: what a fresh insert stores, and so
/// what the rollups count when nothing was there before.
struct CallValues<'a> {
    ordinal: usize,
    ts: &'a str,
    duration_ms: Option<i64>,
    function_id: &'a str,
    tool_used: &'a str,
    args_hash: &'a str,
    success: Option<i64>,
    error_class: Option<&'a str>,
}

/// Writes one call row and reports the row before and after to the
/// rollups. Usually the row is new (a Pre, or a Post whose Pre is in the
/// same batch): one plain insert, whose row is `values`. Only when the
/// tool use already has its row (the other phase came in an earlier batch)
/// does it pair with it — CALL_START for a Pre (no outcome yet), CALL_END
/// for a Post —, reading the row before and after.
fn write_call(
    tx: &Transaction<'_>,
    call_insert: &mut CachedStatement<'_>,
    rollups: &mut rollups::Pending,
    tool_use: &ToolUse<'_>,
    values: &CallValues<'_>,
) -> rusqlite::Result<()> {
    let inserted = call_insert.execute((
        tool_use.session_id,
        values.ts,
        tool_use.tool_use_id,
        values.ordinal as i64,
        values.duration_ms,
        values.function_id,
        values.tool_used,
        values.args_hash,
        values.success,
        values.error_class,
        tool_use.agent_id,
        tool_use.agent_type,
        tool_use.origin.as_str(),
    ))?;
    if inserted == 1 {
        let row = CallRow {
            function_id: Some(values.function_id.into()),
            ts: values.ts.into(),
            success: values.success,
            duration_ms: values.duration_ms,
            mcp: values.tool_used == "mcp",
        };
        rollups.call_written(tool_use.session_id, None, &row);
        return Ok(());
    }
    // A conflict needs a conflict target: only rows with a tool-use id.
    let Some(tool_use_id) = tool_use.tool_use_id else {
        return Ok(());
    };
    let read = || {
        tx.prepare_cached(CALL_ROW)?
            .query_row(
                (tool_use.session_id, tool_use_id, values.ordinal as i64),
                CallRow::from_row,
            )
            .optional()
    };
    let before = read()?;
    match values.success {
        None => tx.prepare_cached(CALL_START)?.execute((
            tool_use.session_id,
            values.ts,
            tool_use_id,
            values.ordinal as i64,
            values.function_id,
            values.tool_used,
            values.args_hash,
            tool_use.agent_id,
            tool_use.agent_type,
        ))?,
        Some(success) => tx.prepare_cached(CALL_END)?.execute((
            tool_use.session_id,
            values.ts,
            tool_use_id,
            values.ordinal as i64,
            values.duration_ms,
            values.function_id,
            values.tool_used,
            values.args_hash,
            success,
            values.error_class,
            tool_use.agent_id,
            tool_use.agent_type,
        ))?,
    };
    if let Some(after) = read()? {
        rollups.call_written(tool_use.session_id, before.as_ref(), &after);
    }
    Ok(())
}

pub(super) fn record_start(
    tx: &Transaction<'_>,
    call_insert: &mut CachedStatement<'_>,
    rollups: &mut rollups::Pending,
    tool_use: &ToolUse<'_>,
    facts: &Facts,
) -> rusqlite::Result<()> {
    let ToolUse {
        session_id,
        tool_use_id,
        ts,
        ..
    } = *tool_use;
    for (ordinal, call) in facts.calls.iter().enumerate() {
        let values = CallValues {
            ordinal,
            ts,
            duration_ms: None,
            function_id: &call.function_id,
            tool_used: call.tool_used.as_str(),
            args_hash: &call.args_hash,
            success: None,
            error_class: None,
        };
        write_call(tx, call_insert, rollups, tool_use, &values)?;
    }
    if !facts.tests.is_empty() {
        let mut stmt = tx.prepare_cached(TEST_START)?;
        for (ordinal, test) in facts.tests.iter().enumerate() {
            stmt.execute((
                session_id,
                ts,
                tool_use_id,
                ordinal as i64,
                &test.function_id,
                &test.test_id,
            ))?;
        }
    }
    record_e2e(tx, tool_use, ts, None, facts)?;
    record_violations(tx, tool_use, tool_use.ts, facts)?;
    record_heredocs(tx, tool_use, tool_use.ts, facts)
}

pub(super) fn record_end(
    tx: &Transaction<'_>,
    call_insert: &mut CachedStatement<'_>,
    rollups: &mut rollups::Pending,
    tool_use: &ToolUse<'_>,
    outcome: &Outcome<'_>,
    facts: &Facts,
) -> rusqlite::Result<()> {
    let session_id = tool_use.session_id;
    let tool_use_id = tool_use.tool_use_id;
    // With the start known (Pre in the same batch) the row is written
    // complete; otherwise the upsert pairs it with a stored Pre, if any.
    let ts = outcome.start.unwrap_or(tool_use.ts);
    let success = i64::from(outcome.success);
    for (ordinal, call) in facts.calls.iter().enumerate() {
        let values = CallValues {
            ordinal,
            ts,
            duration_ms: outcome.duration_ms,
            function_id: &call.function_id,
            tool_used: call.tool_used.as_str(),
            args_hash: &call.args_hash,
            success: Some(success),
            error_class: outcome.error_class,
        };
        write_call(tx, call_insert, rollups, tool_use, &values)?;
    }
    if !facts.tests.is_empty() {
        let mut stmt = tx.prepare_cached(TEST_END)?;
        for (ordinal, test) in facts.tests.iter().enumerate() {
            stmt.execute((
                session_id,
                ts,
                tool_use_id,
                ordinal as i64,
                outcome.duration_ms,
                &test.function_id,
                &test.test_id,
                success,
                &outcome.snippet,
            ))?;
        }
    }
    record_e2e(tx, tool_use, ts, Some(success), facts)?;
    if outcome.success && !facts.writes.is_empty() {
        let mut stmt = tx.prepare_cached(WRITE)?;
        for write in &facts.writes {
            let inserted = stmt.execute((
                session_id,
                &write.function_id,
                &write.file_path,
                write.lines_added,
                write.lines_removed,
                tool_use.ts,
                tool_use_id,
            ))? == 1;
            // Rolled up here, not by a trigger (migration 007).
            if inserted {
                rollups.write_inserted(&write.function_id);
            }
        }
        // A registry file written is a new version of its function.
        let mut stmt = tx.prepare_cached(EDIT_VERSION)?;
        for write in &facts.writes {
            stmt.execute((
                &write.function_id,
                &write.content_sha256,
                tool_use.ts,
                session_id,
                tool_use_id,
            ))?;
        }
    }
    // A registry function's code pasted elsewhere: a version of it too.
    if outcome.success && !facts.copies.is_empty() {
        let mut stmt = tx.prepare_cached(COPY_VERSION)?;
        for copy in &facts.copies {
            stmt.execute((
                &copy.function_id,
                &copy.content_sha256,
                tool_use.ts,
                session_id,
                tool_use_id,
                &copy.file_path,
            ))?;
        }
    }
    // Dated like the calls: at the tool use's start when known.
    record_violations(tx, tool_use, ts, facts)?;
    record_heredocs(tx, tool_use, ts, facts)
}

/// e2e rows: `passed` is `None` for a Pre.
fn record_e2e(
    tx: &Transaction<'_>,
    tool_use: &ToolUse<'_>,
    ts: &str,
    passed: Option<i64>,
    facts: &Facts,
) -> rusqlite::Result<()> {
    if facts.e2e.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(E2E)?;
    for (ordinal, run) in facts.e2e.iter().enumerate() {
        stmt.execute((
            tool_use.session_id,
            ts,
            tool_use.tool_use_id,
            ordinal as i64,
            &run.function_id,
            &run.app_id,
            &run.check_id,
            passed,
        ))?;
    }
    Ok(())
}

/// Heredoc occurrences (pattern candidates): the skeleton once, the
/// occurrence once per tool use and position.
fn record_heredocs(
    tx: &Transaction<'_>,
    tool_use: &ToolUse<'_>,
    ts: &str,
    facts: &Facts,
) -> rusqlite::Result<()> {
    if facts.heredocs.is_empty() {
        return Ok(());
    }
    let mut skeleton = tx.prepare_cached(HEREDOC_SKELETON)?;
    let mut occurrence = tx.prepare_cached(HEREDOC)?;
    for (ordinal, h) in facts.heredocs.iter().enumerate() {
        skeleton.execute((&h.skeleton_hash, &h.skeleton, h.tokens as i64))?;
        occurrence.execute((
            tool_use.session_id,
            tool_use.tool_use_id,
            ordinal as i64,
            &h.skeleton_hash,
            ts,
        ))?;
    }
    Ok(())
}

fn record_violations(
    tx: &Transaction<'_>,
    tool_use: &ToolUse<'_>,
    ts: &str,
    facts: &Facts,
) -> rusqlite::Result<()> {
    if facts.violations.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(VIOLATION)?;
    for v in &facts.violations {
        stmt.execute((
            tool_use.session_id,
            &v.rule_id,
            &v.function_id,
            v.severity.as_str(),
            ts,
            tool_use.tool_use_id,
        ))?;
    }
    Ok(())
}

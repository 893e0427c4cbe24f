//! Calls the Python telemetry wrapper measured ([`events::FUNCTION_CALL`],
//! CONTRACT §8): each registry function call a Python process made, with
//! its own duration, success and exception class.
//!
//! # Joining
//! A heredoc that imports registry functions already has a call row per
//! imported function, from its Bash tool use, whose outcome is the whole
//! script's. A measured call with a session id *refines* that row instead
//! of adding one: the session's latest heredoc call row of the function
//! that started before the measured call (within [`CLOCK_SLACK_MS`]). The
//! first measurement replaces the row's duration, success and error class;
//! later ones add their duration, clear success on a failure, and keep the
//! first failure's class (`calls.wrapper_calls` counts them). The Bash
//! command's PostToolUse, which comes after, leaves them as they are.
//!
//! A measured call with no such row — no session id, a script run from a
//! file, or a heredoc row not stored yet (its PreToolUse in a later hourly
//! file) — is a call row of its own, `source = 'wrapper'`; without a session
//! its `session_id` is `wrapper:<host>`, a name no Claude Code session has.
//!
//! Every value is checked: a function id that is not an identifier drops
//! the call (the event row stays); a bad class or hash is left out.

use rusqlite::{OptionalExtension, Transaction};

use super::rollups::{self, CallRow};
use super::row_sql::{CALL_INSERT, WRAPPER_REFINE, WRAPPER_TARGET};
use crate::contract::{timefmt, Envelope, Origin};
use crate::recognise::rules::is_identifier;

/// How far a measured call's start may precede its heredoc's start (the
/// hook and the wrapper read the same clock, but not at the same instant).
pub const CLOCK_SLACK_MS: i64 = 2_000;

/// A measured call, checked.
struct Measured<'e> {
    function_id: &'e str,
    /// The call's start (the envelope's time when it gave none), in
    /// milliseconds and as stored.
    started_ms: i64,
    started_at: String,
    duration_ms: Option<i64>,
    success: bool,
    /// A failed call's exception class (`Exception` when it sent none or
    /// a bad one); `None` for a success.
    error_class: Option<&'e str>,
    args_hash: Option<&'e str>,
}

impl<'e> Measured<'e> {
    fn of(env: &'e Envelope<'_>) -> Option<Self> {
        let function_id = env.field("function_id").filter(|id| is_identifier(id))?;
        let started_ms = env
            .field("started_at")
            .and_then(timefmt::epoch_millis)
            .unwrap_or_else(|| env.ts.timestamp_millis());
        let started_at = timefmt::format_millis(started_ms).unwrap_or_else(|| env.ts_text.clone());
        let success = env.flag("success").unwrap_or(true);
        let error_class = (!success).then(|| {
            env.field("error_class")
                .filter(|c| is_identifier(c) && c.len() <= 64)
                .unwrap_or("Exception")
        });
        Some(Measured {
            function_id,
            started_ms,
            started_at,
            duration_ms: env.int("duration_ms").filter(|d| *d >= 0),
            success,
            error_class,
            args_hash: env
                .field("args_hash")
                .filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit())),
        })
    }
}

/// Records one measured call; returns the session whose health it may
/// change (a real session's).
pub(super) fn record<'e>(
    tx: &Transaction<'_>,
    rollups: &mut rollups::Pending,
    env: &'e Envelope<'_>,
) -> rusqlite::Result<Option<&'e str>> {
    let Some(call) = Measured::of(env) else {
        return Ok(None);
    };
    let session = env.field("session_id").filter(|s| !s.is_empty());
    if let Some(session_id) = session {
        if refine(tx, rollups, session_id, &call)? {
            return Ok(session);
        }
    }
    let session_id = match session {
        Some(id) => id.to_string(),
        None => format!("wrapper:{}", env.host.as_deref().unwrap_or("unknown")),
    };
    insert_own(tx, rollups, &session_id, &call)?;
    Ok(session)
}

/// Folds `call` into its heredoc call row, if there is one. The row is
/// read once: what the rollups had (`before`), and what the update leaves
/// (`after`: the same row with the new success and duration).
fn refine(
    tx: &Transaction<'_>,
    rollups: &mut rollups::Pending,
    session_id: &str,
    call: &Measured<'_>,
) -> rusqlite::Result<bool> {
    let latest_start = timefmt::format_millis(call.started_ms + CLOCK_SLACK_MS)
        .unwrap_or_else(|| call.started_at.clone());
    type Target = (CallRow<'static>, String, i64, i64, Option<String>);
    let target: Option<Target> = tx
        .prepare_cached(WRAPPER_TARGET)?
        .query_row((session_id, call.function_id, &latest_start), |r| {
            Ok((
                CallRow::from_row(r)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
            ))
        })
        .optional()?;
    let Some((before, tool_use_id, ordinal, measured, class)) = target else {
        return Ok(false);
    };
    let (success, duration, class) = if measured == 0 {
        (
            call.success,
            call.duration_ms,
            call.error_class.map(str::to_string),
        )
    } else {
        (
            before.success != Some(0) && call.success,
            Some(before.duration_ms.unwrap_or(0) + call.duration_ms.unwrap_or(0)),
            class.or_else(|| call.error_class.map(str::to_string)),
        )
    };
    tx.prepare_cached(WRAPPER_REFINE)?.execute((
        session_id,
        &tool_use_id,
        ordinal,
        i64::from(success),
        duration,
        class,
    ))?;
    let after = CallRow {
        success: Some(i64::from(success)),
        duration_ms: duration,
        ..before.clone()
    };
    rollups.call_written(session_id, Some(&before), &after);
    Ok(true)
}

/// A measured call with no heredoc row: a row of its own.
fn insert_own(
    tx: &Transaction<'_>,
    rollups: &mut rollups::Pending,
    session_id: &str,
    call: &Measured<'_>,
) -> rusqlite::Result<()> {
    let success = i64::from(call.success);
    tx.prepare_cached(CALL_INSERT)?.execute((
        session_id,
        &call.started_at,
        None::<&str>,
        0i64,
        call.duration_ms,
        call.function_id,
        "heredoc",
        call.args_hash,
        success,
        call.error_class,
        None::<&str>,
        None::<&str>,
        Origin::Wrapper.as_str(),
    ))?;
    let row = CallRow {
        function_id: Some(call.function_id.into()),
        ts: call.started_at.as_str().into(),
        success: Some(success),
        duration_ms: call.duration_ms,
        mcp: false,
    };
    rollups.call_written(session_id, None, &row);
    Ok(())
}

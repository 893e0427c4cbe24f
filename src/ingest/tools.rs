//! Tool-use rows: one `tool_uses` row per tool use of any tool, whether or
//! not recognition found a registry call in it (migration 010).
//!
//! # Pairing
//! Pre and Post land on one row keyed by (`session_id`, `tool_use_id`), as
//! calls do ([`super::row_sql`]). Claude Code before late 2025 sent no
//! `tool_use_id`; such an event gets a *queue id* ([`queue_id`]): per
//! session, events are queued by a pairing hash of the subagent, the tool
//! and the reduced input (the Bash command, the edited file and content
//! hash, the MCP input), and the n-th Pre of a queue pairs with its n-th
//! Post — first in, first out — under the id `fifo:<hash>:<n>`. The
//! queues live in `tool_use_queues`, in the transaction of the rows, so the
//! pairing survives restarts and holds across files. A Pre whose Post never
//! comes (the agent was killed) shifts nothing for other inputs; for the
//! same input, the next Post pairs with it, which is the price of having
//! no id.

use rusqlite::{CachedStatement, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::plan::Phase;
use super::row_sql::{QUEUE_NEXT, TOOL_END, TOOL_ROW, TOOL_START};
use super::rows::ToolUse;
use super::tool_rollups::{self, ToolRow};
use crate::contract::Envelope;

/// The reduced-input members a queue's pairing hash covers, besides the
/// subagent and the tool.
const PAIRED_MEMBERS: &[&str] = &["command", "file_path", "content_sha256"];
const PAIRED_RAW_MEMBERS: &[&str] = &["tool_input", "tool_input_keys"];

/// The pairing hash of a tool-use event without a `tool_use_id`: 16 hex
/// digits of a SHA-256 over its agent, tool and reduced input.
pub(super) fn pair_hash(env: &Envelope<'_>) -> String {
    let mut hasher = Sha256::new();
    for name in ["agent_id", "tool_name"].iter().chain(PAIRED_MEMBERS) {
        hasher.update(env.field(name).unwrap_or_default().as_bytes());
        hasher.update([0]);
    }
    for name in PAIRED_RAW_MEMBERS {
        hasher.update(env.raw(name).map(|raw| raw.get()).unwrap_or_default());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The queue id of a tool-use event without a `tool_use_id` (module docs):
/// takes the next place of its queue, for Pres or for Posts.
pub(super) fn queue_id(
    tx: &Transaction<'_>,
    session_id: &str,
    env: &Envelope<'_>,
    phase: Phase,
) -> rusqlite::Result<String> {
    let hash = pair_hash(env);
    let (pre, post) = match phase {
        Phase::Pre => (1, 0),
        Phase::Post { .. } => (0, 1),
    };
    let (pres, posts): (i64, i64) = tx
        .prepare_cached(QUEUE_NEXT)?
        .query_row((session_id, &hash, pre, post), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let place = if pre == 1 { pres } else { posts } - 1;
    Ok(format!("fifo:{hash}:{place}"))
}

/// What the event says of its tool use's outcome, for a Post.
pub(super) struct ToolOutcome {
    pub(super) success: bool,
    pub(super) duration_ms: Option<i64>,
    /// Its start, when its Pre was in the same batch.
    pub(super) start: Option<String>,
}

/// Writes the `tool_uses` row of one tool-use event and reports the row
/// before and after to the rollups. `outcome` is `None` for a Pre.
pub(super) fn write_tool_use(
    tx: &Transaction<'_>,
    insert: &mut CachedStatement<'_>,
    rollups: &mut tool_rollups::Pending,
    tool_use: &ToolUse<'_>,
    tool_name: &str,
    env: &Envelope<'_>,
    outcome: Option<&ToolOutcome>,
) -> rusqlite::Result<()> {
    let interrupted =
        env.flag("interrupted") == Some(true) || env.flag("is_interrupt") == Some(true);
    let ts = outcome
        .and_then(|o| o.start.as_deref())
        .unwrap_or(tool_use.ts);
    let success = outcome.map(|o| i64::from(o.success));
    let duration_ms = outcome.and_then(|o| o.duration_ms);
    let inserted = insert.execute((
        tool_use.session_id,
        ts,
        tool_use.tool_use_id,
        duration_ms,
        tool_name,
        tool_use.agent_id,
        tool_use.agent_type,
        success,
        i64::from(interrupted),
        tool_use.origin.as_str(),
    ))?;
    if inserted == 1 {
        let row = ToolRow {
            tool_name: tool_name.into(),
            ts: ts.into(),
            success,
            interrupted,
            duration_ms,
        };
        rollups.tool_written(tool_use.session_id, None, &row);
        return Ok(());
    }
    let Some(tool_use_id) = tool_use.tool_use_id else {
        return Ok(());
    };
    let read = || {
        tx.prepare_cached(TOOL_ROW)?
            .query_row((tool_use.session_id, tool_use_id), ToolRow::from_row)
            .optional()
    };
    let before = read()?;
    match success {
        None => tx.prepare_cached(TOOL_START)?.execute((
            tool_use.session_id,
            ts,
            tool_use_id,
            0,
            tool_name,
            tool_use.agent_id,
            tool_use.agent_type,
        ))?,
        Some(success) => tx.prepare_cached(TOOL_END)?.execute((
            tool_use.session_id,
            ts,
            tool_use_id,
            0,
            duration_ms,
            tool_name,
            tool_use.agent_id,
            tool_use.agent_type,
            success,
            i64::from(interrupted),
        ))?,
    };
    if let Some(after) = read()? {
        rollups.tool_written(tool_use.session_id, before.as_ref(), &after);
    }
    Ok(())
}

//! Writing `calls` rows: a new row per call of a tool use, or the other
//! phase's row completed, and what each write changes for the rollups.
//!
//! A Pre and a Post of one tool use meet in the row keyed by (`session_id`,
//! `tool_use_id`, `ordinal`). When they come in one batch the classifier
//! writes the row once, complete; otherwise the second one to arrive finds
//! the first one's row and pairs with it ([`write_call`]). Most rows are new,
//! so [`NewCalls`] inserts them a chunk at a time and only falls back to
//! [`write_call`], row by row, for a chunk that met a stored row.
//!
//! # Invariants
//! - Rows are written in event order, and the rollups get every row's
//!   before and after (none before for a new row) exactly once.
//! - A chunk is all or nothing: SQLite backs out a failed statement, and the
//!   transaction goes on.

use rusqlite::{CachedStatement, OptionalExtension, Transaction};

use super::classify::{ToolUse, CALL_END, CALL_START};
use crate::rollups::{self, CallRow};

/// What the rollups need of a call row, before and after each write. (Not
/// `RETURNING`: SQLite runs it like a trigger, with a statement journal.)
const CALL_ROW: &str = "SELECT function_id, ts, success, duration_ms, tool_used FROM calls
     WHERE session_id = ?1 AND tool_use_id = ?2 AND ordinal = ?3";
/// A call row written whole, when the tool use has none yet.
const CALL_INSERT: &str = "INSERT INTO calls (session_id, ts, tool_use_id, ordinal, duration_ms,
        function_id, tool_used, args_hash, success, error_class)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";

/// One call row as its event writes it: what a fresh insert stores, and so
/// what the rollups count when nothing was there before.
#[derive(Clone, Copy)]
pub(super) struct CallValues<'a> {
    pub(super) ordinal: usize,
    pub(super) ts: &'a str,
    pub(super) duration_ms: Option<i64>,
    pub(super) function_id: &'a str,
    pub(super) tool_used: &'a str,
    pub(super) args_hash: &'a str,
    pub(super) success: Option<i64>,
    pub(super) error_class: Option<&'a str>,
}

/// Rows per multi-row insert of [`NewCalls`].
const CALL_CHUNK: usize = 32;

/// Call rows expected to be new, inserted [`CALL_CHUNK`] to a statement
/// rather than one each (a statement per row spent as much on itself as on
/// the row; `events` does the same, events.rs). A full chunk goes in as one
/// plain `INSERT`; one that meets a row of the same tool use and position
/// (the other phase came in an earlier batch) fails on the pairing key, and
/// SQLite backs out that statement alone: its rows are then written one by
/// one by [`write_call`], which pairs them. Either way rows are written in
/// event order (two phases of one tool use in the same chunk fail it, and
/// are then paired in order), and nothing else in the batch reads `calls`.
pub(super) struct NewCalls<'t, 'b> {
    tx: &'t Transaction<'t>,
    /// Prepared once per batch: a cached statement handed back after each
    /// use costs two hashes of its SQL (≈ 4 % of the database thread).
    one: CachedStatement<'t>,
    waiting: Vec<(ToolUse<'b>, CallValues<'b>)>,
}

impl<'t, 'b> NewCalls<'t, 'b> {
    pub(super) fn new(tx: &'t Transaction<'t>) -> rusqlite::Result<Self> {
        Ok(NewCalls {
            tx,
            one: tx.prepare_cached(CALL_INSERT)?,
            waiting: Vec::with_capacity(CALL_CHUNK),
        })
    }

    /// Writes the row of `values` now or with the next chunk.
    pub(super) fn add(
        &mut self,
        rollups: &mut rollups::Pending,
        tool_use: ToolUse<'b>,
        values: CallValues<'b>,
    ) -> rusqlite::Result<()> {
        self.waiting.push((tool_use, values));
        if self.waiting.len() == CALL_CHUNK {
            self.flush(rollups)?;
        }
        Ok(())
    }

    /// Writes the waiting rows: a full chunk in one statement if it can,
    /// else one by one.
    pub(super) fn flush(&mut self, rollups: &mut rollups::Pending) -> rusqlite::Result<()> {
        if self.waiting.len() == CALL_CHUNK {
            match self.insert_chunk() {
                Ok(()) => {
                    for (tool_use, values) in self.waiting.drain(..) {
                        rollups.call_written(tool_use.session_id, None, &values.row());
                    }
                    return Ok(());
                }
                // Backed out whole; any other failure shows again row by row.
                Err(e)
                    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {}
                Err(e) => return Err(e),
            }
        }
        for (tool_use, values) in self.waiting.drain(..) {
            write_call(self.tx, &mut self.one, rollups, &tool_use, &values)?;
        }
        Ok(())
    }

    /// The waiting rows (a full chunk) in one statement, all or none.
    fn insert_chunk(&mut self) -> rusqlite::Result<()> {
        let mut chunk = self.tx.prepare_cached(&CALL_INSERT_CHUNK)?;
        for (row, (tool_use, values)) in self.waiting.iter().enumerate() {
            let first = 10 * row + 1;
            chunk.raw_bind_parameter(first, tool_use.session_id)?;
            chunk.raw_bind_parameter(first + 1, values.ts)?;
            chunk.raw_bind_parameter(first + 2, tool_use.tool_use_id)?;
            chunk.raw_bind_parameter(first + 3, values.ordinal as i64)?;
            chunk.raw_bind_parameter(first + 4, values.duration_ms)?;
            chunk.raw_bind_parameter(first + 5, values.function_id)?;
            chunk.raw_bind_parameter(first + 6, values.tool_used)?;
            chunk.raw_bind_parameter(first + 7, values.args_hash)?;
            chunk.raw_bind_parameter(first + 8, values.success)?;
            chunk.raw_bind_parameter(first + 9, values.error_class)?;
        }
        chunk.raw_execute().map(drop)
    }
}

/// [`CALL_CHUNK`] rows of [`CALL_INSERT`] in one statement, failing on a
/// row already there instead of skipping it.
static CALL_INSERT_CHUNK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows: Vec<String> = (0..CALL_CHUNK)
        .map(|row| {
            let params: Vec<String> = (1..=10).map(|p| format!("?{}", 10 * row + p)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO calls (session_id, ts, tool_use_id, ordinal, duration_ms, function_id, tool_used, args_hash, success, error_class) VALUES {}",
        rows.join(", ")
    )
});

impl<'a> CallValues<'a> {
    /// The rollup columns of the row these values insert.
    fn row(&self) -> CallRow<'a> {
        CallRow {
            function_id: Some(self.function_id.into()),
            ts: self.ts.into(),
            success: self.success,
            duration_ms: self.duration_ms,
            mcp: self.tool_used == "mcp",
        }
    }
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
    ))?;
    if inserted == 1 {
        rollups.call_written(tool_use.session_id, None, &values.row());
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
        ))?,
    };
    if let Some(after) = read()? {
        rollups.call_written(tool_use.session_id, before.as_ref(), &after);
    }
    Ok(())
}

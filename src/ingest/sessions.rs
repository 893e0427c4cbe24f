//! The `sessions` rows: one per session, merged from every event that
//! names it, and its health recomputed once per transaction.
//!
//! # Merge
//! `started_at` is the earliest event time seen, `ended_at` the latest
//! SessionEnd, `cwd` and `host` the first values seen, `model` the last one
//! named (SessionStart names it, when Claude Code says). The activity
//! counts (prompts, tool uses, ...) are added by the tool rollups
//! ([`super::tool_rollups`]). The merge is
//! monotone, so [`Sessions`] remembers what each session already holds and
//! skips the upsert of an event that could not change the row.
//!
//! # Health
//! Before each commit, `mcp_ratio` and `health_score` of the sessions whose
//! rows the transaction changed are recomputed ([`Sessions::update_health`];
//! formulas in the README and on [`SESSION_HEALTH`]): the call terms from
//! the session's tallies, which the rollups keep in the same transaction,
//! the test and violation terms from the session's rows.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use rusqlite::Transaction;

use super::rollups::remember;
use crate::contract::{events, Envelope};

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

/// The session rows of one ingester: a cache of what the database holds,
/// and the sessions the current transaction touched.
pub(super) struct Sessions {
    seen: HashMap<String, SessionSeen>,
    /// Sessions whose rows the current transaction changed: their health
    /// is recomputed by [`Sessions::update_health`].
    touched: HashSet<String>,
}

impl Sessions {
    pub(super) fn new() -> Self {
        Sessions {
            seen: HashMap::new(),
            touched: HashSet::new(),
        }
    }

    /// Forgets everything; called when a transaction rolls back.
    pub(super) fn forget(&mut self) {
        self.seen.clear();
        self.touched.clear();
    }

    /// Merges `env` (an event of `session_id` at `ts`) into its session row.
    pub(super) fn record(
        &mut self,
        tx: &Transaction<'_>,
        env: &Envelope<'_>,
        session_id: &str,
        ts: &str,
    ) -> rusqlite::Result<()> {
        let (has_cwd, has_host) = (env.field("cwd").is_some(), env.host.is_some());
        let ending = env.hook_event_name() == events::SESSION_END;
        if let Some(seen) = self.seen.get(session_id) {
            let merges = env.field("model").is_some()
                || ts < seen.started_at.as_str()
                || (has_cwd && !seen.has_cwd)
                || (has_host && !seen.has_host);
            if !merges {
                // A SessionEnd of a known session moves `ended_at` alone:
                // an UPDATE of that column leaves the row's indexes alone,
                // where the upsert rewrote the entries of cwd, host and
                // started_at (SQLite rewrites those of every column SET).
                if ending {
                    end_session(tx, session_id, ts)?;
                }
                return Ok(());
            }
        }
        upsert_session(tx, env, session_id, ts)?;
        if self.seen.len() >= SESSION_CACHE_MAX {
            self.seen.clear();
        }
        let seen = self
            .seen
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

    /// Marks a session whose rows changed, for its health.
    pub(super) fn touch(&mut self, session_id: &str) {
        remember(&mut self.touched, session_id);
    }

    /// Recomputes the health of every session touched since the last call.
    /// Run last in the transaction, after the rollups were flushed.
    pub(super) fn update_health(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut health = tx.prepare_cached(SESSION_HEALTH)?;
        for session_id in self.touched.drain() {
            health.execute([&session_id])?;
        }
        Ok(())
    }
}

/// Moves the `ended_at` of a stored session to `ts` if later (the merge of
/// [`upsert_session`] for a SessionEnd that changes nothing else).
fn end_session(tx: &Transaction<'_>, session_id: &str, ts: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE sessions SET ended_at = MAX(COALESCE(ended_at, ?2), ?2) WHERE session_id = ?1",
    )?
    .execute((session_id, ts))?;
    Ok(())
}

fn upsert_session(
    tx: &Transaction<'_>,
    env: &Envelope<'_>,
    session_id: &str,
    ts: &str,
) -> rusqlite::Result<()> {
    let ended = (env.hook_event_name() == events::SESSION_END).then_some(ts);
    tx.prepare_cached(
        "INSERT INTO sessions (session_id, cwd, host, started_at, ended_at, model) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (session_id) DO UPDATE SET
            cwd = COALESCE(sessions.cwd, excluded.cwd),
            model = COALESCE(excluded.model, sessions.model),
            host = COALESCE(sessions.host, excluded.host),
            started_at = MIN(COALESCE(sessions.started_at, excluded.started_at), excluded.started_at),
            ended_at = CASE WHEN excluded.ended_at IS NULL THEN sessions.ended_at
                            ELSE MAX(COALESCE(sessions.ended_at, excluded.ended_at), excluded.ended_at) END",
    )?
    .execute((
        session_id,
        env.field("cwd"),
        env.host.as_deref(),
        ts,
        ended,
        env.field("model"),
    ))?;
    Ok(())
}

/// Recomputes a session's `mcp_ratio` and `health_score` from its rows.
///
/// - `mcp_ratio` = MCP calls / registry calls (NULL without calls).
/// - `health_score` = 100 − 30 × (failed calls / finished calls)
///   − 20 × (failed tests / finished tests)
///   − min(50, 10 × error + 5 × warn + 1 × info violations), floored at 0,
///   rounded to one decimal. A session without finished calls or tests
///   loses nothing on those terms.
///
/// The call terms come from the session's tallies (`session_calls`,
/// maintained with the rollups), so the cost does not grow with the
/// session's length; a session without calls has no tally row, and the
/// sums over none are NULL. A division by zero is NULL in SQLite, hence
/// the COALESCEs.
const SESSION_HEALTH: &str = "
UPDATE sessions SET (mcp_ratio, health_score) = (
    SELECT CASE WHEN c.n > 0 THEN 1.0 * c.mcp / c.n END,
           MAX(0.0, round(100.0
               - 30.0 * COALESCE(1.0 * c.failed / c.finished, 0.0)
               - 20.0 * COALESCE((SELECT 1.0 * SUM(passed = 0) / COUNT(passed) FROM test_runs WHERE session_id = ?1), 0.0)
               - MIN(50.0, (SELECT COALESCE(SUM(CASE severity WHEN 'error' THEN 10 WHEN 'warn' THEN 5 ELSE 1 END), 0)
                            FROM violations WHERE session_id = ?1)), 1))
    FROM (SELECT SUM(calls) AS n, SUM(mcp) AS mcp, SUM(failed) AS failed,
                 SUM(finished) AS finished
          FROM session_calls WHERE session_id = ?1) AS c)
WHERE session_id = ?1";

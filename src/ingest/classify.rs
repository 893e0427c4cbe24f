//! From a stored envelope to the rows it implies: `sessions`, `calls`,
//! `test_runs`, `e2e_runs_fn`, `code_writes`, `violations`.
//!
//! What a tool use states is decided by [`super::recognise`]; this module
//! decides when each fact is written, and keeps the Pre and the Post of one
//! tool use on the same rows.
//!
//! # Pairing
//! A tool use produces up to two events (PreToolUse, then PostToolUse or
//! PostToolUseFailure) that may arrive in either order, in different
//! batches or files. Calls, test runs and e2e runs are keyed by
//! (`session_id`, `tool_use_id`, `ordinal`), where `ordinal` is the row's
//! position within the tool use, so both events land on the same row:
//! - Pre writes the start time, leaving the outcome NULL (an unfinished call
//!   stays visible as such);
//! - Post writes the outcome (`success`/`passed`, `error_class`) and
//!   `duration_ms` — from the payload, else Post minus Pre time.
//!
//! The row itself carries what pairing needs, so no event is looked up: a
//! Post that finds the row computes the duration from the start the Pre
//! wrote; a Post that comes first writes its own time into `ts` with the
//! outcome set, and the late Pre computes the duration from it and then
//! puts the start time in `ts`.
//!
//! Writes are recorded on a successful Post only (a failed Edit changed
//! nothing), each with an `edit_hook` row in `function_versions`;
//! violations and heredoc occurrences on whichever event comes first, once
//! per tool use (unique indexes).
//!
//! # Session health
//! Before each commit, `mcp_ratio` and `health_score` of the sessions whose
//! rows the transaction changed are recomputed ([`SESSION_HEALTH`]; formulas
//! in the README): the call terms from the session's tallies, which the
//! rollups keep in the same transaction, the test and violation terms from
//! the session's rows.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::Arc;

use rusqlite::{CachedStatement, OptionalExtension, Transaction};

use super::recognise::{Facts, Recogniser};
use crate::envelope::Envelope;
use crate::rollups::{self, CallRow};
use crate::{redact, timefmt};

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

/// Applies new envelopes to the event tables, one batch at a time, and
/// completes each transaction ([`Classifier::finish`]). It keeps a cache of
/// sessions already written, so the per-event session upsert is skipped
/// when it could not change the row.
pub struct Classifier {
    recogniser: Arc<Recogniser>,
    sessions: HashMap<String, SessionSeen>,
    rollups: rollups::Pending,
    /// Sessions whose rows the current transaction changed: their health
    /// is recomputed by [`Classifier::finish`].
    touched: HashSet<String>,
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
    pub fn new(recogniser: Recogniser) -> Self {
        Classifier {
            recogniser: Arc::new(recogniser),
            sessions: HashMap::new(),
            rollups: rollups::Pending::default(),
            touched: HashSet::new(),
        }
    }

    /// Uses new rules or a new catalog from the next batch on.
    pub fn set_recogniser(&mut self, recogniser: Recogniser) {
        self.recogniser = Arc::new(recogniser);
    }

    /// The recogniser in use, to work a batch out ahead on another thread
    /// ([`work_ahead`]).
    pub fn recogniser(&self) -> Arc<Recogniser> {
        Arc::clone(&self.recogniser)
    }

    /// Forgets cached state; called when a transaction rolls back.
    pub fn forget(&mut self) {
        self.sessions.clear();
        self.rollups.clear();
        self.touched.clear();
    }

    /// Applies the envelopes newly stored in `tx`, in order. `ahead` holds,
    /// position by position, what [`work_ahead`] made of them. Its plan is
    /// followed when it was made for exactly this batch (`ahead.exact`: no
    /// event turned out a duplicate), else planned again; an event that
    /// needs facts and has none is recognised now. The facts are left in
    /// `ahead.plan` (one entry per envelope), for the caller to free where
    /// they were made.
    pub fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        batch: &[&Envelope<'_>],
        ahead: &mut Ahead,
    ) -> rusqlite::Result<()> {
        if !(ahead.exact && ahead.plan.len() == batch.len()) {
            let mut recognised: Vec<_> = ahead.plan.drain(..).map(|p| p.recognised).collect();
            recognised.resize_with(batch.len(), || None);
            ahead.plan = recognition_plan(batch)
                .into_iter()
                .zip(recognised)
                .map(|(plan, recognised)| Planned {
                    recognised: recognised.filter(|_| plan.action == Action::Record),
                    ..plan
                })
                .collect();
        }
        let plan = &mut ahead.plan;
        // Prepared once per batch: a cached statement handed back after each
        // use costs two hashes of its SQL (≈ 4 % of the database thread).
        let mut call_insert = tx.prepare_cached(CALL_INSERT)?;
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
            if plan[i].action == Action::StartOnly {
                if let Some(key) = key {
                    starts.insert(key, ts);
                }
                continue;
            }
            let Recognised { facts, error_class } = plan[i]
                .recognised
                .get_or_insert_with(|| Recognised::of(&self.recogniser, env));
            if facts.is_empty() {
                continue;
            }
            if !self.touched.contains(session_id) {
                self.touched.insert(session_id.to_string());
            }
            let tool_use = ToolUse {
                session_id,
                tool_use_id: env.field("tool_use_id"),
                ts,
            };
            match phase {
                Phase::Pre => {
                    record_start(tx, &mut call_insert, &mut self.rollups, &tool_use, facts)?
                }
                Phase::Post { success } => {
                    let start = key.and_then(|k| starts.remove(&k));
                    let outcome = outcome(env, success, start, facts, error_class.as_deref());
                    record_end(
                        tx,
                        &mut call_insert,
                        &mut self.rollups,
                        &tool_use,
                        &outcome,
                        facts,
                    )?
                }
            }
        }
        self.rollups.events_inserted(batch.len() as u64);
        Ok(())
    }

    /// Completes the transaction's rows: the rollup deltas, then the health
    /// of the sessions its batches touched (which reads the session tallies
    /// just updated). Called once, last, before the commit.
    pub fn finish(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.rollups.flush(tx)?;
        let mut health = tx.prepare_cached(SESSION_HEALTH)?;
        for session_id in self.touched.drain() {
            health.execute([&session_id])?;
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

/// What [`Classifier::apply_batch`] does with each event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Not a tool-use event of a session: no facts.
    Skip,
    /// A Pre whose Post comes later in the same batch: it only lends its
    /// start time, and the Post writes the complete row at once (one
    /// insert, not two writes).
    StartOnly,
    /// Recognised and recorded.
    Record,
}

/// One event's action and, when worked out ahead, its recognition.
pub struct Planned {
    action: Action,
    recognised: Option<Recognised>,
}

/// What an event states: its facts and, for a failed Post with facts, its
/// error class.
pub struct Recognised {
    facts: Facts,
    error_class: Option<String>,
}

impl Recognised {
    fn of(recogniser: &Recogniser, env: &Envelope<'_>) -> Self {
        let failed = Phase::of(env.hook_event_name()) == Some(Phase::Post { success: false });
        let facts = recogniser.recognise(env);
        // Only recorded facts carry an error class.
        let error_class = (failed && !facts.is_empty()).then(|| recogniser.error_class(env));
        Recognised { facts, error_class }
    }
}

/// A batch worked out ahead ([`work_ahead`]) for [`Classifier::apply_batch`].
#[derive(Default)]
pub struct Ahead {
    /// Per event, in batch order.
    pub plan: Vec<Planned>,
    /// Whether the plan was made for exactly the events being applied.
    pub exact: bool,
}

fn recognition_plan(batch: &[&Envelope<'_>]) -> Vec<Planned> {
    let mut post_at: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, env) in batch.iter().enumerate() {
        if let (Some(Phase::Post { .. }), Some(key)) =
            (Phase::of(env.hook_event_name()), pair_key(env))
        {
            post_at.entry(key).or_insert(i);
        }
    }
    batch
        .iter()
        .enumerate()
        .map(|(i, env)| {
            let action = match Phase::of(env.hook_event_name()) {
                _ if env.field("session_id").is_none() => Action::Skip,
                None => Action::Skip,
                Some(Phase::Pre)
                    if pair_key(env)
                        .and_then(|key| post_at.get(&key))
                        .is_some_and(|&post| post > i) =>
                {
                    Action::StartOnly
                }
                Some(_) => Action::Record,
            };
            Planned {
                action,
                recognised: None,
            }
        })
        .collect()
}

/// Plans `batch` and recognises the events to record, as if all of them
/// were new — pure, so it runs on another thread ahead of the database
/// work. (An event found to be a duplicate just has its work dropped, and
/// the batch is planned again; the rare event that then needs facts it was
/// not planned for, a Pre whose Post turned out a duplicate, is recognised
/// at that point.)
pub fn work_ahead(recogniser: &Recogniser, batch: &[&Envelope<'_>]) -> Vec<Planned> {
    let mut plan = recognition_plan(batch);
    for (planned, env) in plan.iter_mut().zip(batch) {
        if planned.action == Action::Record {
            planned.recognised = Some(Recognised::of(recogniser, env));
        }
    }
    plan
}

/// What a Post event says: success, error class, duration (the
/// payload's, else from the start when its Pre was in the same batch),
/// and, when it failed a test, a redacted error snippet.
fn outcome<'e>(
    env: &Envelope<'_>,
    success: bool,
    start: Option<&'e str>,
    facts: &Facts,
    error_class: Option<&'e str>,
) -> Outcome<'e> {
    let duration_ms = env
        .int("duration_ms")
        .filter(|d| *d >= 0)
        .or_else(|| start.and_then(|start| millis_between(start, &env.ts_text)));
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

/// The pairing key of a tool-use event.
fn pair_key<'e>(env: &'e Envelope<'_>) -> Option<(&'e str, &'e str)> {
    Some((env.field("session_id")?, env.field("tool_use_id")?))
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
    ($a:expr, $b:expr) => {
        concat!(
            "(SELECT CASE WHEN d >= 0 THEN d END FROM (SELECT CAST(round((unixepoch(",
            $a,
            ", 'subsec') - unixepoch(",
            $b,
            ", 'subsec')) * 1000) AS INTEGER) AS d))"
        )
    };
}

/// The conflict target of rows paired by tool use.
macro_rules! on_tool_use {
    () => {
        " ON CONFLICT (session_id, tool_use_id, ordinal) WHERE tool_use_id IS NOT NULL DO UPDATE SET "
    };
}

/// Pre: the row's `ts` is the start. If the Post came first (the outcome is
/// set and `ts` holds the end), the duration is end minus this start.
macro_rules! record_start_sql {
    ($table:literal, $outcome:literal, $columns:literal, $values:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (session_id, ts, tool_use_id, ordinal, ",
            $columns,
            ")
             VALUES (?1, ?2, ?3, ?4, ",
            $values,
            ")",
            on_tool_use!(),
            "ts = excluded.ts, duration_ms = COALESCE(",
            $table,
            ".duration_ms, CASE WHEN ",
            $table,
            ".",
            $outcome,
            " IS NOT NULL THEN ",
            sql_millis!(concat!($table, ".ts"), "excluded.ts"),
            " END)"
        )
    };
}

/// Post: outcome and duration (the payload's, else end minus the start the
/// Pre wrote). Without a Pre yet, `ts` holds the end until the Pre arrives.
macro_rules! record_end_sql {
    ($table:literal, $columns:literal, $values:literal, $updates:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (session_id, ts, tool_use_id, ordinal, duration_ms, ",
            $columns,
            ")
             VALUES (?1, ?2, ?3, ?4, ?5, ",
            $values,
            ")",
            on_tool_use!(),
            $updates,
            ", duration_ms = COALESCE(excluded.duration_ms, ",
            $table,
            ".duration_ms, ",
            sql_millis!("excluded.ts", concat!($table, ".ts")),
            ")"
        )
    };
}

const CALL_START: &str = record_start_sql!(
    "calls",
    "success",
    "function_id, tool_used, args_hash",
    "?5, ?6, ?7"
);
const CALL_END: &str = record_end_sql!(
    "calls",
    "function_id, tool_used, args_hash, success, error_class",
    "?6, ?7, ?8, ?9, ?10",
    "success = excluded.success, error_class = excluded.error_class, args_hash = COALESCE(calls.args_hash, excluded.args_hash)"
);
/// What the rollups need of a call row, before and after each write. (Not
/// `RETURNING`: SQLite runs it like a trigger, with a statement journal.)
const CALL_ROW: &str = "SELECT function_id, ts, success, duration_ms, tool_used FROM calls
     WHERE session_id = ?1 AND tool_use_id = ?2 AND ordinal = ?3";
/// A call row written whole, when the tool use has none yet.
const CALL_INSERT: &str = "INSERT INTO calls (session_id, ts, tool_use_id, ordinal, duration_ms,
        function_id, tool_used, args_hash, success, error_class)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";
const TEST_START: &str = record_start_sql!("test_runs", "passed", "function_id, test_id", "?5, ?6");
const TEST_END: &str = record_end_sql!(
    "test_runs",
    "function_id, test_id, passed, output_snippet",
    "?6, ?7, ?8, ?9",
    "passed = excluded.passed, output_snippet = excluded.output_snippet"
);
/// e2e rows have no duration column. Pre binds `passed` NULL and sets the
/// start time; Post binds the outcome and keeps a start already there.
const E2E: &str = concat!(
    "INSERT INTO e2e_runs_fn (session_id, ts, tool_use_id, ordinal, function_id, app_id, check_id, passed)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    on_tool_use!(),
    "ts = CASE WHEN excluded.passed IS NULL THEN excluded.ts ELSE e2e_runs_fn.ts END,
     passed = COALESCE(excluded.passed, e2e_runs_fn.passed)"
);
const WRITE: &str = "INSERT INTO code_writes (session_id, function_id, file_path, lines_added, lines_removed, ts, tool_use_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";
const EDIT_VERSION: &str =
    "INSERT INTO function_versions (function_id, version, content_hash, source, seen_at, session_id, tool_use_id)
     VALUES (?1, NULL, ?2, 'edit_hook', ?3, ?4, ?5) ON CONFLICT DO NOTHING";
const HEREDOC_SKELETON: &str = "INSERT INTO heredoc_skeletons (skeleton_hash, skeleton, tokens)
     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
const HEREDOC: &str = "INSERT INTO heredocs (session_id, tool_use_id, ordinal, skeleton_hash, ts)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";
const VIOLATION: &str =
    "INSERT INTO violations (session_id, rule_id, function_id, severity, ts, tool_use_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING";

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
pub const SESSION_HEALTH: &str = "
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

fn millis_between(from: &str, to: &str) -> Option<i64> {
    let ms = timefmt::epoch_millis(to)? - timefmt::epoch_millis(from)?;
    (ms >= 0).then_some(ms)
}

/// The tool-use event being recorded: its session, its id (absent in some
/// external events) and its own time.
struct ToolUse<'a> {
    session_id: &'a str,
    tool_use_id: Option<&'a str>,
    ts: &'a str,
}

/// What a Post event says.
struct Outcome<'a> {
    success: bool,
    /// The start time, when its Pre was in the same batch.
    start: Option<&'a str>,
    duration_ms: Option<i64>,
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

fn record_start(
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

fn record_end(
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

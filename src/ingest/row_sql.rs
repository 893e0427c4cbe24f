//! The SQL of the row writers ([`super::rows`]): generated at compile time
//! for the three tables paired by tool use (`calls`, `test_runs`,
//! `e2e_runs_fn`), whose Pre and Post write one row between them, and
//! plain inserts for the rest.
//!
//! # Pairing in SQL
//! A row is keyed by (`session_id`, `tool_use_id`, `ordinal`). Pre writes
//! the start time and leaves the outcome NULL; Post writes the outcome and
//! the duration — the payload's, else end minus the start the Pre wrote.
//! A Post that comes first writes its own time into `ts` with the outcome
//! set, and the late Pre computes the duration from it and then puts the
//! start time in `ts`.

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
/// Where `$kept` holds (a call the Python wrapper measured), the row's own
/// duration stays.
macro_rules! record_end_sql {
    ($table:literal, $columns:literal, $values:literal, $updates:literal) => {
        record_end_sql!(@ $table, $columns, $values, $updates, "COALESCE(excluded.duration_ms, ",
            $table, ".duration_ms, ", sql_millis!("excluded.ts", concat!($table, ".ts")), ")")
    };
    ($table:literal, $columns:literal, $values:literal, $updates:literal, $kept:literal) => {
        record_end_sql!(@ $table, $columns, $values, $updates, "CASE WHEN ", $kept, " THEN ",
            $table, ".duration_ms ELSE COALESCE(excluded.duration_ms, ", $table, ".duration_ms, ",
            sql_millis!("excluded.ts", concat!($table, ".ts")), ") END")
    };
    (@ $table:literal, $columns:literal, $values:literal, $updates:literal, $($duration:expr),+) => {
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
            ", duration_ms = ",
            $($duration),+
        )
    };
}

pub(super) const CALL_START: &str = record_start_sql!(
    "calls",
    "success",
    "function_id, tool_used, args_hash, agent_id, agent_type",
    "?5, ?6, ?7, ?8, ?9"
);
pub(super) const CALL_END: &str = record_end_sql!(
    "calls",
    "function_id, tool_used, args_hash, success, error_class, agent_id, agent_type",
    "?6, ?7, ?8, ?9, ?10, ?11, ?12",
    "success = CASE WHEN calls.wrapper_calls > 0 THEN calls.success ELSE excluded.success END,
     error_class = CASE WHEN calls.wrapper_calls > 0 THEN calls.error_class ELSE excluded.error_class END,
     args_hash = COALESCE(calls.args_hash, excluded.args_hash)",
    "calls.wrapper_calls > 0"
);
/// What the rollups need of a call row, before and after each write. (Not
/// `RETURNING`: SQLite runs it like a trigger, with a statement journal.)
pub(super) const CALL_ROW: &str =
    "SELECT function_id, ts, success, duration_ms, tool_used FROM calls
     WHERE session_id = ?1 AND tool_use_id = ?2 AND ordinal = ?3";
/// A call row written whole, when the tool use has none yet. Only this
/// insert sets `source`: the pairing statements above run when the row
/// exists, and leave it the source of its first event (migration 012).
pub(super) const CALL_INSERT: &str =
    "INSERT INTO calls (session_id, ts, tool_use_id, ordinal, duration_ms,
        function_id, tool_used, args_hash, success, error_class, agent_id, agent_type, source)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT DO NOTHING";
pub(super) const TEST_START: &str =
    record_start_sql!("test_runs", "passed", "function_id, test_id", "?5, ?6");
pub(super) const TEST_END: &str = record_end_sql!(
    "test_runs",
    "function_id, test_id, passed, output_snippet",
    "?6, ?7, ?8, ?9",
    "passed = excluded.passed, output_snippet = excluded.output_snippet"
);
/// e2e rows have no duration column. Pre binds `passed` NULL and sets the
/// start time; Post binds the outcome and keeps a start already there.
pub(super) const E2E: &str = concat!(
    "INSERT INTO e2e_runs_fn (session_id, ts, tool_use_id, ordinal, function_id, app_id, check_id, passed)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    on_tool_use!(),
    "ts = CASE WHEN excluded.passed IS NULL THEN excluded.ts ELSE e2e_runs_fn.ts END,
     passed = COALESCE(excluded.passed, e2e_runs_fn.passed)"
);
pub(super) const WRITE: &str = "INSERT INTO code_writes (session_id, function_id, file_path, lines_added, lines_removed, ts, tool_use_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";
pub(super) const EDIT_VERSION: &str =
    "INSERT INTO function_versions (function_id, version, content_hash, source, seen_at, session_id, tool_use_id)
     VALUES (?1, NULL, ?2, 'edit_hook', ?3, ?4, ?5) ON CONFLICT DO NOTHING";
pub(super) const COPY_VERSION: &str =
    "INSERT INTO function_versions (function_id, version, content_hash, source, seen_at, session_id, tool_use_id, file_path)
     VALUES (?1, NULL, ?2, 'copy_detected', ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING";
/// The heredoc call row a wrapper-measured call belongs to: the session's
/// latest heredoc call of the function that started before `?3` (the
/// call's start, plus a little clock slack). The first five columns are
/// [`CALL_ROW`]'s, for the rollups.
pub(super) const WRAPPER_TARGET: &str = "SELECT function_id, ts, success, duration_ms, tool_used,
            tool_use_id, ordinal, wrapper_calls, error_class FROM calls
     WHERE session_id = ?1 AND function_id = ?2 AND tool_used = 'heredoc' AND source <> 'wrapper'
       AND tool_use_id IS NOT NULL AND ts <= ?3
     ORDER BY ts DESC, ordinal LIMIT 1";
/// A heredoc call row refined by the wrapper's measurement.
pub(super) const WRAPPER_REFINE: &str =
    "UPDATE calls SET success = ?4, duration_ms = ?5, error_class = ?6, wrapper_calls = wrapper_calls + 1
     WHERE session_id = ?1 AND tool_use_id = ?2 AND ordinal = ?3";
pub(super) const HEREDOC_SKELETON: &str =
    "INSERT INTO heredoc_skeletons (skeleton_hash, skeleton, tokens)
     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
pub(super) const HEREDOC: &str =
    "INSERT INTO heredocs (session_id, tool_use_id, ordinal, skeleton_hash, ts)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";
pub(super) const VIOLATION: &str =
    "INSERT INTO violations (session_id, rule_id, function_id, severity, ts, tool_use_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING";

/// A tool use of any tool (`tool_uses`, migration 010), paired like the
/// rows above; its `ordinal` is always 0.
pub(super) const TOOL_START: &str = record_start_sql!(
    "tool_uses",
    "success",
    "tool_name, agent_id, agent_type",
    "?5, ?6, ?7"
);
pub(super) const TOOL_END: &str = record_end_sql!(
    "tool_uses",
    "tool_name, agent_id, agent_type, success, interrupted",
    "?6, ?7, ?8, ?9, ?10",
    "success = excluded.success, interrupted = excluded.interrupted"
);
/// A tool-use row written whole, when the tool use has none yet (the only
/// statement setting `source`, as for calls).
pub(super) const TOOL_INSERT: &str =
    "INSERT INTO tool_uses (session_id, ts, tool_use_id, ordinal, duration_ms,
        tool_name, agent_id, agent_type, success, interrupted, source)
     VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT DO NOTHING";
/// What the rollups need of a tool-use row, before and after each write.
pub(super) const TOOL_ROW: &str =
    "SELECT tool_name, ts, success, interrupted, duration_ms FROM tool_uses
     WHERE session_id = ?1 AND tool_use_id = ?2 AND ordinal = 0";
/// The next Pre or Post of a queue of tool uses without ids.
pub(super) const QUEUE_NEXT: &str =
    "INSERT INTO tool_use_queues (session_id, pair_hash, pres, posts) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT DO UPDATE SET pres = pres + excluded.pres, posts = posts + excluded.posts
     RETURNING pres, posts";

-- 007_lean_inserts: fewer B-tree and trigger writes per ingested line
-- (BENCHMARKS.md, replay in 0.7.0).
--
--   * `calls` and `test_runs` had a session index beside the unique
--     (session_id, tool_use_id, ordinal) index that pairs Pre and Post. The
--     pairing index is now total (not partial: SQLite's NULLs are distinct in
--     a UNIQUE index, so rows without a tool use still never conflict), and
--     its leading `session_id` serves the session lookups (session health,
--     sequence mining), so the session index goes: one index write fewer
--     per call, ≈ 6 % of the ingester's instructions. Sequence mining now
--     sorts each session's calls by time (SQLite's "temp B-tree for right
--     part of ORDER BY") instead of reading them sorted.
--   * `code_writes` is rolled up into `function_counts.writes` by the
--     ingester, like `calls` (src/rollups.rs), not by triggers: a statement
--     that can fire a trigger journals every page it touches first, and one
--     Edit or Write in ten tool uses made that ≈ 4 % of the ingester's work.
--     Rows changed by hand need `call_monitor init --rebuild-rollups`, as
--     for `calls`.

DROP INDEX calls_session_ts;
DROP INDEX calls_tool_use;
CREATE UNIQUE INDEX calls_tool_use ON calls (session_id, tool_use_id, ordinal);

DROP INDEX test_runs_session;
DROP INDEX test_runs_tool_use;
CREATE UNIQUE INDEX test_runs_tool_use ON test_runs (session_id, tool_use_id, ordinal);

DROP TRIGGER code_writes_rollup_insert;
DROP TRIGGER code_writes_rollup_delete;
DROP TRIGGER code_writes_rollup_update;

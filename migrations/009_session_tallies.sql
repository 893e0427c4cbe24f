-- 009_session_tallies: session health from per-session call tallies, not
-- from a scan of the session's calls (BENCHMARKS.md, 0.9.0).
--
-- Every transaction recomputes `mcp_ratio` and `health_score` of the
-- sessions it touched. Until 008 that read every call of each such session
-- (an index entry and a table row per call), so the cost of one more event
-- grew with the length of its session: the daemon committing 10 lines into
-- a session of 60 000 calls spent ~100 M instructions on it, 4x the rest of
-- the work. The call terms of the formulas only need four counts, so the
-- ingester keeps them here, in the same transaction as the rows, like the
-- function rollups of 005 (src/rollups.rs):
--
--   session_calls  per session: calls, MCP calls, failed calls (success = 0)
--                  and finished calls (success not NULL).
--
-- A session without calls has no row. Test runs and violations are few per
-- session and are still counted where they are (indexed by session).
-- Rows of `calls` changed by hand need `call_monitor init
-- --rebuild-rollups`, which runs the block below (also the backfill).

CREATE TABLE session_calls (
    session_id TEXT PRIMARY KEY NOT NULL,
    calls      INTEGER NOT NULL,
    mcp        INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    finished   INTEGER NOT NULL
) WITHOUT ROWID;

-- rebuild:begin
DELETE FROM session_calls;
INSERT INTO session_calls (session_id, calls, mcp, failed, finished)
SELECT session_id, COUNT(*), COALESCE(SUM(tool_used = 'mcp'), 0), COALESCE(SUM(success = 0), 0),
       COUNT(success)
FROM calls GROUP BY session_id;
-- rebuild:end

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
--   * `events` keeps its second dedupe key (CONTRACT §2: same `session_id` +
--     `tool_use_id` + `hook_event_name`) as one text column, `tool_use_key`,
--     instead of three: `<bytes>:<session_id> <bytes>:<tool_use_id> <hook>`,
--     where `<bytes>` is the UTF-8 length of the value that follows, so the
--     mapping is one-to-one (equal keys exactly when the three are equal).
--     Within a session the three-column key compared equal on its first
--     column at every step of every seek, and SQLite's generic comparison of
--     the rest cost ≈ 20 % of each `events` insert; one text column is one
--     memcmp. NULL when the event has no session or tool-use id (NULLs never
--     conflict). The ingester builds it by the same rule
--     (`ingest::tool_use_key`), and existing rows are converted here, so a
--     line stored before the upgrade is still a duplicate after.

DROP INDEX calls_session_ts;
DROP INDEX calls_tool_use;
CREATE UNIQUE INDEX calls_tool_use ON calls (session_id, tool_use_id, ordinal);

DROP INDEX test_runs_session;
DROP INDEX test_runs_tool_use;
CREATE UNIQUE INDEX test_runs_tool_use ON test_runs (session_id, tool_use_id, ordinal);

DROP TRIGGER code_writes_rollup_insert;
DROP TRIGGER code_writes_rollup_delete;
DROP TRIGGER code_writes_rollup_update;

CREATE TABLE events_keyed (
    envelope_id  BLOB PRIMARY KEY NOT NULL,
    tool_use_key TEXT,
    ts           INTEGER NOT NULL,
    ingested_at  INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO events_keyed (envelope_id, tool_use_key, ts, ingested_at)
SELECT envelope_id,
       length(CAST(session_id AS BLOB)) || ':' || session_id || ' '
           || length(CAST(tool_use_id AS BLOB)) || ':' || tool_use_id || ' ' || hook_event_name,
       ts, ingested_at
FROM events;

DROP TABLE events;
ALTER TABLE events_keyed RENAME TO events;
CREATE UNIQUE INDEX events_tool_use ON events (tool_use_key);

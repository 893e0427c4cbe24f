-- 015_source_checks: `tool_uses.source` and `calls.source` checked with
-- comparisons instead of `IN` (issue 21).
--
-- SQLite evaluates `x IN (a, b, c)` — three or more constants — against a
-- temporary b-tree it builds for each evaluation: in a CHECK, one for every
-- row inserted or updated. 012's `source IN ('hook', 'transcript',
-- 'wrapper')` so opened (and zeroed a page of) a temporary database for
-- every tool use and call stored: 8 % of a replay (BENCHMARKS.md, session
-- 17). `calls.tool_used` is written with OR for the same reason.
--
-- The constraint is the same; SQLite cannot alter a CHECK, so both tables
-- are rebuilt with their rows, ids and indexes. `legacy_alter_table` keeps
-- the rename from re-checking the views over them (`function_stats`,
-- `tool_stats`) between the DROP and the RENAME, when their table is
-- briefly missing; the views name the tables, and find the new ones.

PRAGMA legacy_alter_table = ON;

CREATE TABLE tool_uses_checked (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    tool_name   TEXT NOT NULL,
    ts          TEXT NOT NULL,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    success     INTEGER CHECK (success IS NULL OR success = 0 OR success = 1),
    interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted = 0 OR interrupted = 1),
    agent_id    TEXT,
    agent_type  TEXT,
    tool_use_id TEXT,
    ordinal     INTEGER NOT NULL DEFAULT 0,
    source      TEXT NOT NULL DEFAULT 'hook'
        CHECK (source = 'hook' OR source = 'transcript' OR source = 'wrapper')
);
INSERT INTO tool_uses_checked (id, session_id, tool_name, ts, duration_ms, success,
        interrupted, agent_id, agent_type, tool_use_id, ordinal, source)
    SELECT id, session_id, tool_name, ts, duration_ms, success,
        interrupted, agent_id, agent_type, tool_use_id, ordinal, source
    FROM tool_uses;
DROP TABLE tool_uses;
ALTER TABLE tool_uses_checked RENAME TO tool_uses;
CREATE UNIQUE INDEX tool_uses_tool_use ON tool_uses (session_id, tool_use_id, ordinal)
    WHERE tool_use_id IS NOT NULL;
CREATE INDEX tool_uses_tool_ts ON tool_uses (tool_name, ts);
CREATE INDEX tool_uses_no_id ON tool_uses (session_id) WHERE tool_use_id IS NULL;

CREATE TABLE calls_checked (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    function_id TEXT,
    tool_used   TEXT NOT NULL CHECK (tool_used = 'fn_run' OR tool_used = 'mcp' OR tool_used = 'heredoc'),
    ts          TEXT NOT NULL,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    success     INTEGER CHECK (success IS NULL OR success = 0 OR success = 1),
    error_class TEXT,
    args_hash   TEXT,
    -- Which tool use produced the call, and its position within it (a Bash
    -- command may hold several `fn run`): lets Pre and Post be paired.
    tool_use_id TEXT,
    ordinal     INTEGER NOT NULL DEFAULT 0,
    agent_id    TEXT,
    agent_type  TEXT,
    source      TEXT NOT NULL DEFAULT 'hook'
        CHECK (source = 'hook' OR source = 'transcript' OR source = 'wrapper'),
    wrapper_calls INTEGER NOT NULL DEFAULT 0 CHECK (wrapper_calls >= 0)
);
INSERT INTO calls_checked (id, session_id, function_id, tool_used, ts, duration_ms,
        success, error_class, args_hash, tool_use_id, ordinal, agent_id, agent_type,
        source, wrapper_calls)
    SELECT id, session_id, function_id, tool_used, ts, duration_ms,
        success, error_class, args_hash, tool_use_id, ordinal, agent_id, agent_type,
        source, wrapper_calls
    FROM calls;
DROP TABLE calls;
ALTER TABLE calls_checked RENAME TO calls;
CREATE INDEX calls_function_ts ON calls (function_id, ts);
CREATE UNIQUE INDEX calls_tool_use ON calls (session_id, tool_use_id, ordinal);
CREATE INDEX calls_function_errors ON calls (function_id, ts, error_class) WHERE success = 0;

PRAGMA legacy_alter_table = OFF;

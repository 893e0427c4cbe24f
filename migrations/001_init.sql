-- 001_init: the event-log tables of the seed, plus the ingestion bookkeeping.
--
-- Conventions (every migration keeps them):
--   * Every timestamp column holds canonical RFC 3339 UTC with milliseconds,
--     `YYYY-MM-DDTHH:MM:SS.sssZ`, the format `strftime('%Y-%m-%dT%H:%M:%fZ')`
--     produces. Text in one fixed format sorts chronologically, so windows are
--     plain string comparisons that use the indexes. CHECKs enforce it, except
--     on `events` and `calls`: written for every line ingested, only through
--     the ingester's one formatter, where a GLOB per row cost ~4 % of replay.
--   * Enumerations are checked with `=`/`OR`, not `IN (...)`: SQLite builds an
--     ephemeral table for an IN list in a CHECK on every row (~10 % of replay).
--   * No raw command, argument, prompt, file content, output or error text is
--     stored here. Arguments survive only as `args_hash`; free-text columns
--     (`output_snippet`, `skeleton`) hold redacted text only.
--   * Rows are append-only event logs; `id INTEGER PRIMARY KEY` is ingest order.

CREATE TABLE sessions (
    session_id   TEXT PRIMARY KEY,
    cwd          TEXT,
    host         TEXT,
    started_at   TEXT CHECK (started_at IS NULL OR started_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    ended_at     TEXT CHECK (ended_at IS NULL OR ended_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    health_score REAL CHECK (health_score IS NULL OR health_score BETWEEN 0 AND 100),
    mcp_ratio    REAL CHECK (mcp_ratio IS NULL OR mcp_ratio BETWEEN 0 AND 1)
);

CREATE TABLE calls (
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
    ordinal     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX calls_function_ts ON calls (function_id, ts);
CREATE INDEX calls_session_ts ON calls (session_id, ts);
CREATE UNIQUE INDEX calls_tool_use ON calls (session_id, tool_use_id, ordinal)
    WHERE tool_use_id IS NOT NULL;

CREATE TABLE code_writes (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    function_id   TEXT,
    file_path     TEXT NOT NULL,
    lines_added   INTEGER NOT NULL DEFAULT 0 CHECK (lines_added >= 0),
    lines_removed INTEGER NOT NULL DEFAULT 0 CHECK (lines_removed >= 0),
    ts            TEXT NOT NULL CHECK (ts GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    tool_use_id   TEXT
);
CREATE INDEX code_writes_function_ts ON code_writes (function_id, ts);

CREATE TABLE test_runs (
    id             INTEGER PRIMARY KEY,
    session_id     TEXT NOT NULL,
    function_id    TEXT,
    test_id        TEXT,
    passed         INTEGER CHECK (passed IS NULL OR passed = 0 OR passed = 1),
    duration_ms    INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    output_snippet TEXT,
    ts             TEXT NOT NULL CHECK (ts GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    tool_use_id    TEXT
);
CREATE INDEX test_runs_function_ts ON test_runs (function_id, ts);

CREATE TABLE e2e_runs_fn (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    function_id TEXT,
    app_id      TEXT NOT NULL,
    check_id    TEXT,
    passed      INTEGER CHECK (passed IS NULL OR passed = 0 OR passed = 1),
    ts          TEXT NOT NULL CHECK (ts GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    tool_use_id TEXT
);
CREATE INDEX e2e_runs_fn_function_ts ON e2e_runs_fn (function_id, ts);

CREATE TABLE violations (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    function_id TEXT,
    severity    TEXT NOT NULL CHECK (severity = 'info' OR severity = 'warn' OR severity = 'error'),
    ts          TEXT NOT NULL CHECK (ts GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    tool_use_id TEXT
);
CREATE INDEX violations_function ON violations (function_id);
CREATE INDEX violations_rule ON violations (rule_id, severity);
-- A rule fires at most once per tool use.
CREATE UNIQUE INDEX violations_tool_use_rule ON violations (session_id, tool_use_id, rule_id)
    WHERE tool_use_id IS NOT NULL;

CREATE TABLE patterns (
    pattern_hash TEXT PRIMARY KEY,
    occurrences  INTEGER NOT NULL DEFAULT 0 CHECK (occurrences >= 0),
    session_ids  TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(session_ids) AND json_type(session_ids) = 'array'),
    first_seen   TEXT CHECK (first_seen IS NULL OR first_seen GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    last_seen    TEXT CHECK (last_seen IS NULL OR last_seen GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
    skeleton     TEXT
);

CREATE TABLE function_versions (
    id           INTEGER PRIMARY KEY,
    function_id  TEXT NOT NULL,
    version      TEXT,
    content_hash TEXT,
    source       TEXT NOT NULL CHECK (source = 'index' OR source = 'edit_hook' OR source = 'copy_detected'),
    seen_at      TEXT NOT NULL CHECK (seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
);
CREATE INDEX function_versions_function ON function_versions (function_id, seen_at);

-- Lines that could not be ingested. The raw bytes live in <spool>/quarantine/
-- (0600), never here: this row only locates and fingerprints them.
CREATE TABLE quarantine (
    id     INTEGER PRIMARY KEY,
    file   TEXT NOT NULL,
    offset INTEGER NOT NULL CHECK (offset >= 0),
    length INTEGER NOT NULL CHECK (length >= 0),
    sha256 TEXT NOT NULL,
    reason TEXT NOT NULL,
    ts     TEXT NOT NULL CHECK (ts GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
);

-- One row per ingested envelope: the dedupe keys of CONTRACT §2 and the
-- denominator of "events" in `status`. No payload is kept. Keyed by the
-- envelope id itself (WITHOUT ROWID): one B-tree to insert into, not two.
CREATE TABLE events (
    envelope_id     TEXT PRIMARY KEY NOT NULL,
    session_id      TEXT,
    tool_use_id     TEXT,
    hook_event_name TEXT NOT NULL,
    host            TEXT,
    ts              TEXT NOT NULL,
    -- When the row was committed: ingested_at - ts is the hook-to-row latency.
    ingested_at     TEXT NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_tool_use ON events (session_id, tool_use_id, hook_event_name)
    WHERE session_id IS NOT NULL AND tool_use_id IS NOT NULL;

-- Read checkpoints of spool files, committed in the same transaction as the
-- rows read from them. `file_key` identifies a file independently of its name
-- (so rotation, truncation and re-creation are recognised).
CREATE TABLE spool_files (
    file_key   TEXT PRIMARY KEY,
    path       TEXT NOT NULL,
    offset     INTEGER NOT NULL CHECK (offset >= 0),
    updated_at TEXT NOT NULL
);

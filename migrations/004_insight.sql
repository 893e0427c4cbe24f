-- 004_insight: what the insight loop needs.
--
--   * `edit_hook` versions come from writes of registry files: recorded once
--     per tool use (and function), like the write itself.
--   * Heredoc patterns: each distinct normalised skeleton once (masked text,
--     never the body), and one row per heredoc occurrence. The periodic
--     clustering pass reads these and rewrites `patterns`.

ALTER TABLE function_versions ADD COLUMN session_id TEXT;
ALTER TABLE function_versions ADD COLUMN tool_use_id TEXT;
CREATE UNIQUE INDEX function_versions_tool_use
    ON function_versions (session_id, tool_use_id, function_id)
    WHERE tool_use_id IS NOT NULL;

CREATE TABLE heredoc_skeletons (
    skeleton_hash TEXT PRIMARY KEY NOT NULL,
    skeleton      TEXT NOT NULL,
    tokens        INTEGER NOT NULL CHECK (tokens >= 0)
) WITHOUT ROWID;

CREATE TABLE heredocs (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    tool_use_id   TEXT,
    -- Position of the heredoc within its command.
    ordinal       INTEGER NOT NULL DEFAULT 0,
    skeleton_hash TEXT NOT NULL REFERENCES heredoc_skeletons (skeleton_hash),
    ts            TEXT NOT NULL CHECK (ts GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
);
CREATE UNIQUE INDEX heredocs_tool_use ON heredocs (session_id, tool_use_id, ordinal)
    WHERE tool_use_id IS NOT NULL;
CREATE INDEX heredocs_skeleton ON heredocs (skeleton_hash, session_id);

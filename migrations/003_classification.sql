-- 003_classification: what the full classifier needs.
--
--   * Test and e2e runs are paired Pre/Post like calls: keyed by the tool
--     use and the row's position within it (`ordinal`), so a Post completes
--     the row its Pre opened, in any order, in any batch.
--   * A write is recorded once per tool use.
--   * Session health is recomputed from calls, tests and violations of one
--     session: those lookups need a session index.

ALTER TABLE test_runs ADD COLUMN ordinal INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX test_runs_tool_use ON test_runs (session_id, tool_use_id, ordinal)
    WHERE tool_use_id IS NOT NULL;
CREATE INDEX test_runs_session ON test_runs (session_id);

ALTER TABLE e2e_runs_fn ADD COLUMN ordinal INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX e2e_runs_fn_tool_use ON e2e_runs_fn (session_id, tool_use_id, ordinal)
    WHERE tool_use_id IS NOT NULL;

CREATE UNIQUE INDEX code_writes_tool_use ON code_writes (session_id, tool_use_id)
    WHERE tool_use_id IS NOT NULL;

CREATE INDEX violations_session ON violations (session_id);

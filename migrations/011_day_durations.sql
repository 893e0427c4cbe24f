-- 011_day_durations: what the dashboard (issue 20) reads at 10 M calls.
--
--   call_day_durations    registry-call durations per UTC day, for the p95
--                         trend: a histogram over `day_duration_buckets`,
--                         buckets 5 % wide (lo / 20) instead of the 1 % of
--                         `duration_buckets` — a trend needs no finer, and a
--                         year of days is then ~50 000 rows to rank, not
--                         ~300 000. p95's relative error is at most 2.5 %.
--                         Kept by the ingester with the other call rollups
--                         (src/ingest/rollups.rs), rebuilt by
--                         `init --rebuild-rollups`.
--   sessions_*            the sessions page: newest first, by host, by cwd;
--                         the health distribution from an index alone.
--   violations_rule       now covers ts and session_id: violations by rule
--                         and by day are read from the index alone.
--   tool_uses_no_id       a session's tool uses without a tool_use_id (old
--                         Claude Code versions) — the unique index is partial
--                         and does not hold them; with this one, a session's
--                         timeline is two index lookups, never a scan.
--   calls_function_errors now also covers `error_class`: a function's
--                         errors by class are read from the index alone.

CREATE TABLE day_duration_buckets (
    lo  INTEGER PRIMARY KEY,
    rep INTEGER NOT NULL
);
WITH RECURSIVE b(lo) AS (
    SELECT 0
    UNION ALL
    SELECT lo + MAX(1, lo / 20) FROM b WHERE lo < 9000000000000000000
)
INSERT INTO day_duration_buckets (lo, rep) SELECT lo, lo + (MAX(1, lo / 20) - 1) / 2 FROM b;

CREATE TABLE call_day_durations (
    day TEXT NOT NULL,
    lo  INTEGER NOT NULL,
    n   INTEGER NOT NULL,
    PRIMARY KEY (day, lo)
) WITHOUT ROWID;

CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_host ON sessions (host, started_at);
CREATE INDEX sessions_cwd ON sessions (cwd, started_at);
CREATE INDEX sessions_health ON sessions (health_score);
DROP INDEX violations_rule;
CREATE INDEX violations_rule ON violations (rule_id, severity, ts, session_id);
CREATE INDEX tool_uses_no_id ON tool_uses (session_id) WHERE tool_use_id IS NULL;
DROP INDEX calls_function_errors;
CREATE INDEX calls_function_errors ON calls (function_id, ts, error_class) WHERE success = 0;

-- rebuild:begin
DELETE FROM call_day_durations;
INSERT INTO call_day_durations (day, lo, n)
SELECT substr(ts, 1, 10) AS day,
       (SELECT lo FROM day_duration_buckets WHERE lo <= duration_ms ORDER BY lo DESC LIMIT 1) AS bucket,
       COUNT(*)
FROM calls WHERE function_id IS NOT NULL AND duration_ms IS NOT NULL GROUP BY day, bucket;
-- rebuild:end

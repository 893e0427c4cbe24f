-- 005_rollups: function_stats served from rollups, not from a scan of calls.
--
-- Who maintains them, always in the transaction that writes the rows:
--   * events and calls (one row per line, the hot path): the ingester, from
--     each call's row before and after its write (src/rollups.rs). Triggers
--     there were measured 4x slower per insert: a statement that can fire a
--     trigger writes every page it touches to a statement journal first.
--   * sessions, code_writes, test_runs, e2e_runs_fn, violations, quarantine
--     (low volume): the triggers below, whoever writes.
-- `call_monitor init --rebuild-rollups` recomputes everything from the rows
-- (after editing calls or events by hand); it runs the block marked
-- "rebuild" at the end of this file, which is also the backfill.
--
--   call_totals     per function: the same sums over all time.
--   call_days       per function and UTC day: calls, errors, finished calls,
--                   sum and count of durations. calls_Nx add the whole days
--                   after the window's start plus, from the calls index, the
--                   calls of the start's own day that fall after it (exact).
--   call_durations  per function: a histogram of durations over the fixed
--                   buckets of `duration_buckets`, for p95.
--   function_counts per function: writes, tests, e2e runs, violations.
--   function_apps   per function and app: e2e runs (consumer_apps_count).
--   row_counts      rows per table, for status totals.
--
-- Latest timestamps (last_used_at, last_error_ts, last_write_at,
-- last_test_failed_at) are read from (partial) indexes: one seek each.
--
-- Duration buckets: lower bounds 0, 1, 2, ... and from 100 on each bucket is
-- lo/100 wide (integer division), so a bucket never spans more than 1 % of
-- its values. A bucket is represented by its middle value `rep`, at most
-- 0.5 % from any duration in it; below 100 ms buckets hold one value each
-- (exact). p95 = `rep` of the bucket holding the nearest-rank value, so its
-- relative error is at most 0.5 %.

CREATE TABLE duration_buckets (
    lo  INTEGER PRIMARY KEY,
    rep INTEGER NOT NULL
);
WITH RECURSIVE b(lo) AS (
    SELECT 0
    UNION ALL
    SELECT lo + MAX(1, lo / 100) FROM b WHERE lo < 9000000000000000000
)
INSERT INTO duration_buckets (lo, rep) SELECT lo, lo + (MAX(1, lo / 100) - 1) / 2 FROM b;

CREATE TABLE call_days (
    function_id  TEXT NOT NULL,
    day          TEXT NOT NULL,
    calls        INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    finished     INTEGER NOT NULL,
    duration_sum INTEGER NOT NULL,
    durations    INTEGER NOT NULL,
    PRIMARY KEY (function_id, day)
) WITHOUT ROWID;

CREATE TABLE call_totals (
    function_id  TEXT PRIMARY KEY NOT NULL,
    calls        INTEGER NOT NULL,
    errors       INTEGER NOT NULL,
    finished     INTEGER NOT NULL,
    duration_sum INTEGER NOT NULL,
    durations    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE call_durations (
    function_id TEXT NOT NULL,
    lo          INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (function_id, lo)
) WITHOUT ROWID;

CREATE TABLE function_counts (
    function_id  TEXT PRIMARY KEY NOT NULL,
    writes       INTEGER NOT NULL DEFAULT 0,
    tests        INTEGER NOT NULL DEFAULT 0,
    tests_failed INTEGER NOT NULL DEFAULT 0,
    -- With an outcome (passed not NULL): a rate needs at least one.
    tests_done   INTEGER NOT NULL DEFAULT 0,
    e2e          INTEGER NOT NULL DEFAULT 0,
    e2e_failed   INTEGER NOT NULL DEFAULT 0,
    e2e_done     INTEGER NOT NULL DEFAULT 0,
    violations   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE function_apps (
    function_id TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    runs        INTEGER NOT NULL,
    PRIMARY KEY (function_id, app_id)
) WITHOUT ROWID;

CREATE TABLE row_counts (
    tbl TEXT PRIMARY KEY NOT NULL,
    n   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX calls_function_errors ON calls (function_id, ts) WHERE success = 0;
CREATE INDEX test_runs_function_failed ON test_runs (function_id, ts) WHERE passed = 0;

-- writes, tests, e2e runs, violations --------------------------------------

CREATE TRIGGER code_writes_rollup_insert AFTER INSERT ON code_writes WHEN NEW.function_id IS NOT NULL
BEGIN
    INSERT INTO function_counts (function_id, writes) VALUES (NEW.function_id, 1)
    ON CONFLICT DO UPDATE SET writes = writes + 1;
END;
CREATE TRIGGER code_writes_rollup_delete AFTER DELETE ON code_writes WHEN OLD.function_id IS NOT NULL
BEGIN
    UPDATE function_counts SET writes = writes - 1 WHERE function_id = OLD.function_id;
END;
CREATE TRIGGER code_writes_rollup_update AFTER UPDATE OF function_id ON code_writes
BEGIN
    UPDATE function_counts SET writes = writes - 1 WHERE OLD.function_id IS NOT NULL AND function_id = OLD.function_id;
    INSERT INTO function_counts (function_id, writes) SELECT NEW.function_id, 1 WHERE NEW.function_id IS NOT NULL
    ON CONFLICT DO UPDATE SET writes = writes + 1;
END;

CREATE TRIGGER test_runs_rollup_insert AFTER INSERT ON test_runs WHEN NEW.function_id IS NOT NULL
BEGIN
    INSERT INTO function_counts (function_id, tests, tests_failed, tests_done)
    VALUES (NEW.function_id, 1, COALESCE(NEW.passed = 0, 0), NEW.passed IS NOT NULL)
    ON CONFLICT DO UPDATE SET tests = tests + 1, tests_failed = tests_failed + excluded.tests_failed,
        tests_done = tests_done + excluded.tests_done;
END;
CREATE TRIGGER test_runs_rollup_delete AFTER DELETE ON test_runs WHEN OLD.function_id IS NOT NULL
BEGIN
    UPDATE function_counts SET tests = tests - 1, tests_failed = tests_failed - COALESCE(OLD.passed = 0, 0),
        tests_done = tests_done - (OLD.passed IS NOT NULL)
    WHERE function_id = OLD.function_id;
END;
CREATE TRIGGER test_runs_rollup_update AFTER UPDATE OF function_id, passed ON test_runs
BEGIN
    UPDATE function_counts SET tests = tests - 1, tests_failed = tests_failed - COALESCE(OLD.passed = 0, 0),
        tests_done = tests_done - (OLD.passed IS NOT NULL)
    WHERE OLD.function_id IS NOT NULL AND function_id = OLD.function_id;
    INSERT INTO function_counts (function_id, tests, tests_failed, tests_done)
    SELECT NEW.function_id, 1, COALESCE(NEW.passed = 0, 0), NEW.passed IS NOT NULL WHERE NEW.function_id IS NOT NULL
    ON CONFLICT DO UPDATE SET tests = tests + 1, tests_failed = tests_failed + excluded.tests_failed,
        tests_done = tests_done + excluded.tests_done;
END;

CREATE TRIGGER e2e_rollup_insert AFTER INSERT ON e2e_runs_fn WHEN NEW.function_id IS NOT NULL
BEGIN
    INSERT INTO function_counts (function_id, e2e, e2e_failed, e2e_done)
    VALUES (NEW.function_id, 1, COALESCE(NEW.passed = 0, 0), NEW.passed IS NOT NULL)
    ON CONFLICT DO UPDATE SET e2e = e2e + 1, e2e_failed = e2e_failed + excluded.e2e_failed,
        e2e_done = e2e_done + excluded.e2e_done;
    INSERT INTO function_apps (function_id, app_id, runs) VALUES (NEW.function_id, NEW.app_id, 1)
    ON CONFLICT DO UPDATE SET runs = runs + 1;
END;
CREATE TRIGGER e2e_rollup_delete AFTER DELETE ON e2e_runs_fn WHEN OLD.function_id IS NOT NULL
BEGIN
    UPDATE function_counts SET e2e = e2e - 1, e2e_failed = e2e_failed - COALESCE(OLD.passed = 0, 0),
        e2e_done = e2e_done - (OLD.passed IS NOT NULL)
    WHERE function_id = OLD.function_id;
    UPDATE function_apps SET runs = runs - 1 WHERE function_id = OLD.function_id AND app_id = OLD.app_id;
    DELETE FROM function_apps WHERE function_id = OLD.function_id AND app_id = OLD.app_id AND runs = 0;
END;
CREATE TRIGGER e2e_rollup_update AFTER UPDATE OF function_id, app_id, passed ON e2e_runs_fn
BEGIN
    UPDATE function_counts SET e2e = e2e - 1, e2e_failed = e2e_failed - COALESCE(OLD.passed = 0, 0),
        e2e_done = e2e_done - (OLD.passed IS NOT NULL)
    WHERE OLD.function_id IS NOT NULL AND function_id = OLD.function_id;
    UPDATE function_apps SET runs = runs - 1
    WHERE OLD.function_id IS NOT NULL AND function_id = OLD.function_id AND app_id = OLD.app_id;
    INSERT INTO function_counts (function_id, e2e, e2e_failed, e2e_done)
    SELECT NEW.function_id, 1, COALESCE(NEW.passed = 0, 0), NEW.passed IS NOT NULL WHERE NEW.function_id IS NOT NULL
    ON CONFLICT DO UPDATE SET e2e = e2e + 1, e2e_failed = e2e_failed + excluded.e2e_failed,
        e2e_done = e2e_done + excluded.e2e_done;
    INSERT INTO function_apps (function_id, app_id, runs)
    SELECT NEW.function_id, NEW.app_id, 1 WHERE NEW.function_id IS NOT NULL
    ON CONFLICT DO UPDATE SET runs = runs + 1;
    DELETE FROM function_apps WHERE OLD.function_id IS NOT NULL AND function_id = OLD.function_id
        AND app_id = OLD.app_id AND runs = 0;
END;

CREATE TRIGGER violations_rollup_insert AFTER INSERT ON violations WHEN NEW.function_id IS NOT NULL
BEGIN
    INSERT INTO function_counts (function_id, violations) VALUES (NEW.function_id, 1)
    ON CONFLICT DO UPDATE SET violations = violations + 1;
END;
CREATE TRIGGER violations_rollup_delete AFTER DELETE ON violations WHEN OLD.function_id IS NOT NULL
BEGIN
    UPDATE function_counts SET violations = violations - 1 WHERE function_id = OLD.function_id;
END;
CREATE TRIGGER violations_rollup_update AFTER UPDATE OF function_id ON violations
BEGIN
    UPDATE function_counts SET violations = violations - 1
    WHERE OLD.function_id IS NOT NULL AND function_id = OLD.function_id;
    INSERT INTO function_counts (function_id, violations) SELECT NEW.function_id, 1 WHERE NEW.function_id IS NOT NULL
    ON CONFLICT DO UPDATE SET violations = violations + 1;
END;

-- row counts (status totals) -------------------------------------------------

CREATE TRIGGER sessions_count_insert AFTER INSERT ON sessions BEGIN UPDATE row_counts SET n = n + 1 WHERE tbl = 'sessions'; END;
CREATE TRIGGER sessions_count_delete AFTER DELETE ON sessions BEGIN UPDATE row_counts SET n = n - 1 WHERE tbl = 'sessions'; END;
CREATE TRIGGER violations_count_insert AFTER INSERT ON violations BEGIN UPDATE row_counts SET n = n + 1 WHERE tbl = 'violations'; END;
CREATE TRIGGER violations_count_delete AFTER DELETE ON violations BEGIN UPDATE row_counts SET n = n - 1 WHERE tbl = 'violations'; END;
CREATE TRIGGER quarantine_count_insert AFTER INSERT ON quarantine BEGIN UPDATE row_counts SET n = n + 1 WHERE tbl = 'quarantine'; END;
CREATE TRIGGER quarantine_count_delete AFTER DELETE ON quarantine BEGIN UPDATE row_counts SET n = n - 1 WHERE tbl = 'quarantine'; END;

-- backfill from the rows already there ---------------------------------------
-- rebuild:begin
DELETE FROM row_counts;
DELETE FROM call_days;
DELETE FROM call_totals;
DELETE FROM call_durations;
DELETE FROM function_counts;
DELETE FROM function_apps;

INSERT INTO row_counts (tbl, n)
SELECT 'events', COUNT(*) FROM events UNION ALL SELECT 'sessions', COUNT(*) FROM sessions
UNION ALL SELECT 'calls', COUNT(*) FROM calls UNION ALL SELECT 'violations', COUNT(*) FROM violations
UNION ALL SELECT 'quarantine', COUNT(*) FROM quarantine;

INSERT INTO call_days (function_id, day, calls, errors, finished, duration_sum, durations)
SELECT function_id, substr(ts, 1, 10), COUNT(*), COALESCE(SUM(success = 0), 0), COUNT(success),
       COALESCE(SUM(duration_ms), 0), COUNT(duration_ms)
FROM calls WHERE function_id IS NOT NULL GROUP BY function_id, substr(ts, 1, 10);

INSERT INTO call_totals (function_id, calls, errors, finished, duration_sum, durations)
SELECT function_id, SUM(calls), SUM(errors), SUM(finished), SUM(duration_sum), SUM(durations)
FROM call_days GROUP BY function_id;

INSERT INTO call_durations (function_id, lo, n)
SELECT function_id, (SELECT lo FROM duration_buckets WHERE lo <= duration_ms ORDER BY lo DESC LIMIT 1) AS bucket, COUNT(*)
FROM calls WHERE function_id IS NOT NULL AND duration_ms IS NOT NULL GROUP BY function_id, bucket;

INSERT INTO function_counts (function_id, writes, tests, tests_failed, tests_done, e2e, e2e_failed, e2e_done, violations)
SELECT function_id, SUM(w), SUM(t), SUM(tf), SUM(td), SUM(e), SUM(ef), SUM(ed), SUM(v) FROM (
    SELECT function_id, 1 AS w, 0 AS t, 0 AS tf, 0 AS td, 0 AS e, 0 AS ef, 0 AS ed, 0 AS v
    FROM code_writes WHERE function_id IS NOT NULL
    UNION ALL SELECT function_id, 0, 1, COALESCE(passed = 0, 0), passed IS NOT NULL, 0, 0, 0, 0
    FROM test_runs WHERE function_id IS NOT NULL
    UNION ALL SELECT function_id, 0, 0, 0, 0, 1, COALESCE(passed = 0, 0), passed IS NOT NULL, 0
    FROM e2e_runs_fn WHERE function_id IS NOT NULL
    UNION ALL SELECT function_id, 0, 0, 0, 0, 0, 0, 0, 1 FROM violations WHERE function_id IS NOT NULL
) GROUP BY function_id;

INSERT INTO function_apps (function_id, app_id, runs)
SELECT function_id, app_id, COUNT(*) FROM e2e_runs_fn WHERE function_id IS NOT NULL GROUP BY function_id, app_id;
-- rebuild:end

-- the view, same columns and meaning as 002's --------------------------------

DROP VIEW function_stats;
CREATE VIEW function_stats AS
WITH
bounds AS (
    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')   AS since_24h,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')  AS since_7d,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days') AS since_30d,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-90 days') AS since_90d
),
known AS (
    SELECT function_id FROM call_totals
    UNION SELECT function_id FROM function_counts WHERE writes + tests + e2e + violations > 0
    UNION SELECT function_id FROM function_versions
)
-- Every per-function value is a correlated lookup, so a query for a few
-- functions (status's top N) computes only their rows. A window's calls are
-- the whole days after its start (call_days) plus, from the calls index,
-- those of the start's own day at or after it: exact.
SELECT k.function_id                                        AS function_id,
       COALESCE(c.calls, 0)                                 AS calls_total,
       (SELECT COALESCE(SUM(d.calls), 0) FROM call_days d
        WHERE d.function_id = k.function_id AND d.day > substr(b.since_24h, 1, 10))
     + (SELECT COUNT(*) FROM calls x WHERE x.function_id = k.function_id
        AND x.ts >= b.since_24h AND x.ts < date(b.since_24h, '+1 day')) AS calls_24h,
       (SELECT COALESCE(SUM(d.calls), 0) FROM call_days d
        WHERE d.function_id = k.function_id AND d.day > substr(b.since_7d, 1, 10))
     + (SELECT COUNT(*) FROM calls x WHERE x.function_id = k.function_id
        AND x.ts >= b.since_7d AND x.ts < date(b.since_7d, '+1 day')) AS calls_7d,
       (SELECT COALESCE(SUM(d.calls), 0) FROM call_days d
        WHERE d.function_id = k.function_id AND d.day > substr(b.since_30d, 1, 10))
     + (SELECT COUNT(*) FROM calls x WHERE x.function_id = k.function_id
        AND x.ts >= b.since_30d AND x.ts < date(b.since_30d, '+1 day')) AS calls_30d,
       (SELECT COALESCE(SUM(d.calls), 0) FROM call_days d
        WHERE d.function_id = k.function_id AND d.day > substr(b.since_90d, 1, 10))
     + (SELECT COUNT(*) FROM calls x WHERE x.function_id = k.function_id
        AND x.ts >= b.since_90d AND x.ts < date(b.since_90d, '+1 day')) AS calls_90d,
       (SELECT MAX(ts) FROM calls WHERE function_id = k.function_id) AS last_used_at,
       COALESCE(c.errors, 0)                                AS errors_total,
       CASE WHEN c.finished > 0
            THEN CAST(c.errors AS REAL) / c.finished END    AS error_rate,
       (SELECT MAX(ts) FROM calls WHERE function_id = k.function_id AND success = 0) AS last_error_ts,
       CASE WHEN c.durations > 0
            THEN CAST(c.duration_sum AS REAL) / c.durations END AS mean_duration_ms,
       -- The bucket where the running count reaches the nearest rank ceil(0.95 n).
       (SELECT q.rep FROM duration_buckets q WHERE q.lo = (
            SELECT lo FROM (
                SELECT h.lo, SUM(h.n) OVER (ORDER BY h.lo ROWS UNBOUNDED PRECEDING) AS upto
                FROM call_durations h WHERE h.function_id = k.function_id)
            WHERE upto >= (95 * c.durations + 99) / 100 ORDER BY lo LIMIT 1)) AS p95_duration_ms,
       COALESCE(f.writes, 0)                                AS writes_count,
       (SELECT MAX(ts) FROM code_writes WHERE function_id = k.function_id) AS last_write_at,
       COALESCE(f.tests, 0)                                 AS tests_total,
       COALESCE(f.tests_failed, 0)                          AS tests_failed,
       CASE WHEN f.tests_done > 0
            THEN CAST(f.tests_failed AS REAL) / f.tests END AS test_fail_rate,
       (SELECT MAX(ts) FROM test_runs WHERE function_id = k.function_id AND passed = 0) AS last_test_failed_at,
       COALESCE(f.e2e, 0)                                   AS e2e_total,
       COALESCE(f.e2e_failed, 0)                            AS e2e_failed,
       CASE WHEN f.e2e_done > 0
            THEN CAST(f.e2e_failed AS REAL) / f.e2e END     AS e2e_fail_rate,
       (SELECT COUNT(*) FROM function_apps a WHERE a.function_id = k.function_id) AS consumer_apps_count,
       COALESCE(f.violations, 0)                            AS violations_caused
FROM known k
CROSS JOIN bounds b
LEFT JOIN call_totals c     ON c.function_id = k.function_id
LEFT JOIN function_counts f ON f.function_id = k.function_id;

-- 002_function_stats_view: one row per function_id known to any event table
-- or to the registry snapshot, with the columns of CONTRACT §4.
--
-- Definitions (also in the README):
--   calls_Nx        calls whose ts is within the last N (24h, 7d, 30d, 90d) of now.
--   errors_total    calls with success = 0.
--   error_rate      errors_total / calls with a known outcome (success not NULL);
--                   NULL when no call has finished. Unfinished calls are not successes.
--   mean_duration_ms, p95_duration_ms
--                   over calls with a duration. p95 is the nearest-rank percentile:
--                   the value at rank ceil(0.95 * n) of the sorted durations,
--                   computed exactly with integer arithmetic ((95n + 99) / 100).
--   test_fail_rate  tests_failed / tests_total, NULL without tests; e2e likewise.
--   consumer_apps_count  distinct app_id among the function's e2e runs.
--   violations_caused    violations whose function_id is this function.
CREATE VIEW function_stats AS
WITH
bounds AS (
    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')   AS since_24h,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')  AS since_7d,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-30 days') AS since_30d,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-90 days') AS since_90d
),
known AS (
    SELECT function_id FROM calls WHERE function_id IS NOT NULL
    UNION SELECT function_id FROM code_writes WHERE function_id IS NOT NULL
    UNION SELECT function_id FROM test_runs WHERE function_id IS NOT NULL
    UNION SELECT function_id FROM e2e_runs_fn WHERE function_id IS NOT NULL
    UNION SELECT function_id FROM violations WHERE function_id IS NOT NULL
    UNION SELECT function_id FROM function_versions
),
call_agg AS (
    SELECT c.function_id,
           COUNT(*)                                      AS calls_total,
           SUM(c.ts >= b.since_24h)                      AS calls_24h,
           SUM(c.ts >= b.since_7d)                       AS calls_7d,
           SUM(c.ts >= b.since_30d)                      AS calls_30d,
           SUM(c.ts >= b.since_90d)                      AS calls_90d,
           MAX(c.ts)                                     AS last_used_at,
           SUM(c.success = 0)                            AS errors_total,
           SUM(c.success IS NOT NULL)                    AS finished,
           MAX(CASE WHEN c.success = 0 THEN c.ts END)    AS last_error_ts,
           AVG(c.duration_ms)                            AS mean_duration_ms
    FROM calls c, bounds b
    WHERE c.function_id IS NOT NULL
    GROUP BY c.function_id
),
ranked AS (
    SELECT function_id, duration_ms,
           ROW_NUMBER() OVER (PARTITION BY function_id ORDER BY duration_ms) AS rn,
           COUNT(*) OVER (PARTITION BY function_id)                          AS n
    FROM calls
    WHERE function_id IS NOT NULL AND duration_ms IS NOT NULL
),
p95 AS (
    SELECT function_id, duration_ms AS p95_duration_ms
    FROM ranked
    WHERE rn = (95 * n + 99) / 100
),
write_agg AS (
    SELECT function_id, COUNT(*) AS writes_count, MAX(ts) AS last_write_at
    FROM code_writes WHERE function_id IS NOT NULL GROUP BY function_id
),
test_agg AS (
    SELECT function_id,
           COUNT(*)                                   AS tests_total,
           SUM(passed = 0)                            AS tests_failed,
           MAX(CASE WHEN passed = 0 THEN ts END)      AS last_test_failed_at
    FROM test_runs WHERE function_id IS NOT NULL GROUP BY function_id
),
e2e_agg AS (
    SELECT function_id,
           COUNT(*)               AS e2e_total,
           SUM(passed = 0)        AS e2e_failed,
           COUNT(DISTINCT app_id) AS consumer_apps_count
    FROM e2e_runs_fn WHERE function_id IS NOT NULL GROUP BY function_id
),
violation_agg AS (
    SELECT function_id, COUNT(*) AS violations_caused
    FROM violations WHERE function_id IS NOT NULL GROUP BY function_id
)
SELECT k.function_id                                        AS function_id,
       COALESCE(c.calls_total, 0)                           AS calls_total,
       COALESCE(c.calls_24h, 0)                             AS calls_24h,
       COALESCE(c.calls_7d, 0)                              AS calls_7d,
       COALESCE(c.calls_30d, 0)                             AS calls_30d,
       COALESCE(c.calls_90d, 0)                             AS calls_90d,
       c.last_used_at                                       AS last_used_at,
       COALESCE(c.errors_total, 0)                          AS errors_total,
       CASE WHEN c.finished > 0
            THEN CAST(c.errors_total AS REAL) / c.finished END AS error_rate,
       c.last_error_ts                                      AS last_error_ts,
       c.mean_duration_ms                                   AS mean_duration_ms,
       p.p95_duration_ms                                    AS p95_duration_ms,
       COALESCE(w.writes_count, 0)                          AS writes_count,
       w.last_write_at                                      AS last_write_at,
       COALESCE(t.tests_total, 0)                           AS tests_total,
       COALESCE(t.tests_failed, 0)                          AS tests_failed,
       CASE WHEN t.tests_total > 0
            THEN CAST(t.tests_failed AS REAL) / t.tests_total END AS test_fail_rate,
       t.last_test_failed_at                                AS last_test_failed_at,
       COALESCE(e.e2e_total, 0)                             AS e2e_total,
       COALESCE(e.e2e_failed, 0)                            AS e2e_failed,
       CASE WHEN e.e2e_total > 0
            THEN CAST(e.e2e_failed AS REAL) / e.e2e_total END AS e2e_fail_rate,
       COALESCE(e.consumer_apps_count, 0)                   AS consumer_apps_count,
       COALESCE(v.violations_caused, 0)                     AS violations_caused
FROM known k
LEFT JOIN call_agg c      ON c.function_id = k.function_id
LEFT JOIN p95 p           ON p.function_id = k.function_id
LEFT JOIN write_agg w     ON w.function_id = k.function_id
LEFT JOIN test_agg t      ON t.function_id = k.function_id
LEFT JOIN e2e_agg e       ON e.function_id = k.function_id
LEFT JOIN violation_agg v ON v.function_id = k.function_id;

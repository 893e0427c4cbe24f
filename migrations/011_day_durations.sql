-- 011_day_durations: registry-call durations per UTC day, for the
-- dashboard's p95 trend (issue 20).
--
--   call_day_durations  the `call_durations` histogram (same buckets,
--                       `duration_buckets`) with the day in place of the
--                       function: a day's p95 is read from a few hundred
--                       bucket rows instead of all its calls. Kept by the
--                       ingester with the other call rollups (src/ingest/
--                       rollups.rs), rebuilt by `init --rebuild-rollups`.

CREATE TABLE call_day_durations (
    day TEXT NOT NULL,
    lo  INTEGER NOT NULL,
    n   INTEGER NOT NULL,
    PRIMARY KEY (day, lo)
) WITHOUT ROWID;

-- rebuild:begin
DELETE FROM call_day_durations;
INSERT INTO call_day_durations (day, lo, n)
SELECT substr(ts, 1, 10) AS day,
       (SELECT lo FROM duration_buckets WHERE lo <= duration_ms ORDER BY lo DESC LIMIT 1) AS bucket, COUNT(*)
FROM calls WHERE function_id IS NOT NULL AND duration_ms IS NOT NULL GROUP BY day, bucket;
-- rebuild:end

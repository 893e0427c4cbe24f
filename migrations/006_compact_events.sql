-- 006_compact_events: `events` keeps only what deduplication and the latency
-- figure need, in fewer bytes. It is written once for every line ingested and
-- was the largest table (≈ 60 % of the database after a replay), so its size
-- is ingestion's cost: every page it fills is written to the WAL and again
-- by the checkpoint (BENCHMARKS.md, replay).
--
--   * `envelope_id`: a canonical UUID (lowercase, hyphenated — what the hook
--     writes) is stored as its 16 bytes, any other id as its text. The
--     mapping is one-to-one, so two ids are the same key exactly when they
--     are the same string; the ingester applies the same rule
--     (`ingest::event_key`), and this migration converts existing rows with
--     it, so a line ingested before the upgrade is still a duplicate after.
--   * `ts` and `ingested_at`: milliseconds since the Unix epoch (UTC).
--     `ingested_at - ts` is the hook-to-row latency. (The text convention of
--     001 is for tables others read; `events` is the pipeline's own.)
--   * `host` is gone: `sessions.host` keeps it.

CREATE TABLE events_compact (
    envelope_id     BLOB PRIMARY KEY NOT NULL,
    session_id      TEXT,
    tool_use_id     TEXT,
    hook_event_name TEXT NOT NULL,
    ts              INTEGER NOT NULL,
    ingested_at     INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO events_compact (envelope_id, session_id, tool_use_id, hook_event_name, ts, ingested_at)
SELECT CASE WHEN envelope_id GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'
            THEN unhex(replace(envelope_id, '-', '')) ELSE envelope_id END,
       session_id, tool_use_id, hook_event_name,
       -- Always canonical in rows the ingester wrote; a hand-made row that is
       -- not must not block the upgrade (it only blurs the latency figure).
       COALESCE(CAST(round(unixepoch(ts, 'subsec') * 1000) AS INTEGER), 0),
       COALESCE(CAST(round(unixepoch(ingested_at, 'subsec') * 1000) AS INTEGER), 0)
FROM events;

DROP TABLE events;
ALTER TABLE events_compact RENAME TO events;
CREATE UNIQUE INDEX events_tool_use ON events (session_id, tool_use_id, hook_event_name)
    WHERE session_id IS NOT NULL AND tool_use_id IS NOT NULL;

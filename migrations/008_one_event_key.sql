-- 008_one_event_key: `events` is one B-tree, keyed by the one key that
-- recognises a redelivery of each kind of event (BENCHMARKS.md, replay in
-- 0.8.0).
--
-- Until 007 every event had two unique keys, the envelope id (the table's
-- key) and the session/tool-use/hook key (an index), and every insert
-- searched and wrote both B-trees: ≈ 17 % of the ingester's instructions
-- went to the second one. But the two never disagree about a redelivery: a
-- line delivered twice has the same id *and* the same session, tool use and
-- hook event. The second key is there for the same event spooled again
-- under a new id (a retried hook); the first for events that have no tool
-- use. So each event is now keyed by one of them:
--
--   * `dedupe_key` — a tool-use event (one with `session_id` and
--     `tool_use_id`): the 007 key, text,
--     `<bytes>:<session_id> <bytes>:<tool_use_id> <hook_event_name>`;
--     any other event: its envelope id as 006 stored it — the 16 bytes of a
--     canonical UUID (a blob) — or, for any other id, the text `id:<id>`.
--     Tool-use keys start with a digit and blobs are never equal to text,
--     so the three kinds never collide. The ingester builds it by the same
--     rule (`ingest::dedupe_key`).
--   * `envelope_id` stays, as 006 stores it, so an event can still be found
--     by its id; it is no longer unique by itself. Two different tool uses
--     that arrive under one id (an external appender that reuses ids, which
--     the contract forbids) are both stored, where they used to lose one.
--
-- Rows stored before are converted by the same rule, so a line ingested
-- before the upgrade is still a duplicate after it.

CREATE TABLE events_keyed_once (
    dedupe_key  BLOB PRIMARY KEY NOT NULL,
    envelope_id BLOB NOT NULL,
    ts          INTEGER NOT NULL,
    ingested_at INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO events_keyed_once (dedupe_key, envelope_id, ts, ingested_at)
SELECT COALESCE(tool_use_key,
                CASE typeof(envelope_id) WHEN 'blob' THEN envelope_id
                                         ELSE 'id:' || envelope_id END),
       envelope_id, ts, ingested_at
FROM events
ORDER BY 1;

DROP TABLE events;
ALTER TABLE events_keyed_once RENAME TO events;

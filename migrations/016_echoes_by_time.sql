-- 016_echoes_by_time: `event_echoes` keyed by time first (issue 21).
--
-- The echo check (src/ingest/echoes.rs) looks for the same key within two
-- seconds. Keyed (echo_key, ts), every insert went to a random page of the
-- table — the key is a hash — and split pages all over it: a replay wrote
-- most of the table to the WAL in every transaction. Keyed (ts, echo_key),
-- inserts append (events arrive nearly in time order) and the check reads
-- the few rows of a four-second window. The rows and what they match are
-- the same.

CREATE TABLE event_echoes_by_time (
    echo_key BLOB NOT NULL,
    ts       INTEGER NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (ts, echo_key)
) WITHOUT ROWID;
INSERT INTO event_echoes_by_time (echo_key, ts, seen_at)
    SELECT echo_key, ts, seen_at FROM event_echoes;
DROP TABLE event_echoes;
ALTER TABLE event_echoes_by_time RENAME TO event_echoes;
CREATE INDEX event_echoes_seen ON event_echoes (seen_at);

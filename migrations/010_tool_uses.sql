-- 010_tool_uses: every tool use, not only registry calls (issue 19).
--
--   tool_uses        one row per tool use of any tool (Bash, Read, Edit,
--                    Task/Agent, mcp__server__tool, ...): its start, outcome,
--                    duration, interrupt, and the subagent it ran in. Pre and
--                    Post pair on (session_id, tool_use_id, ordinal) like
--                    `calls` (ordinal is always 0); a payload without a
--                    tool_use_id gets a queue id from `tool_use_queues`.
--   tool_use_queues  per session and pairing hash (agent, tool, reduced
--                    input): Pres and Posts seen so far. The n-th Pre and
--                    the n-th Post of a queue are one tool use (first in,
--                    first out), whose id is `fifo:<hash>:<n>`.
--   tool_members     stat key -> tool: each tool is its own key, and each
--                    `mcp__server__tool` also belongs to `mcp__server`.
--   tool_totals, tool_days, tool_durations, tool_sessions
--                    the rollups behind `tool_stats`, per stat key, kept by
--                    the ingester in the transaction of the rows (as
--                    `call_totals` & co. for `function_stats`, 005).
--   event_names      every hook event name seen, with its count: unknown
--                    events are stored and counted, never rejected.
--   event_echoes     (hash of a reduced event, its time) of events without a
--                    tool-use key, for a day after their ingestion: the same
--                    event spooled twice by a hook registered twice is
--                    stored once (src/ingest/echoes.rs).
--
-- `sessions` gains what a session did besides registry calls, and `calls`
-- the subagent a call ran in. tool_stats starts empty on an upgraded
-- database: `events` keeps keys only (006), so earlier tool uses cannot be
-- re-derived.

CREATE TABLE tool_uses (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    tool_name   TEXT NOT NULL,
    ts          TEXT NOT NULL,
    duration_ms INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    success     INTEGER CHECK (success IS NULL OR success = 0 OR success = 1),
    interrupted INTEGER NOT NULL DEFAULT 0 CHECK (interrupted = 0 OR interrupted = 1),
    agent_id    TEXT,
    agent_type  TEXT,
    tool_use_id TEXT,
    ordinal     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tool_uses_tool_use ON tool_uses (session_id, tool_use_id, ordinal)
    WHERE tool_use_id IS NOT NULL;
CREATE INDEX tool_uses_tool_ts ON tool_uses (tool_name, ts);

CREATE TABLE tool_use_queues (
    session_id TEXT NOT NULL,
    pair_hash  TEXT NOT NULL,
    pres       INTEGER NOT NULL,
    posts      INTEGER NOT NULL,
    PRIMARY KEY (session_id, pair_hash)
) WITHOUT ROWID;

CREATE TABLE tool_members (
    stat_key  TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    PRIMARY KEY (stat_key, tool_name)
) WITHOUT ROWID;

CREATE TABLE tool_totals (
    tool_name    TEXT PRIMARY KEY NOT NULL,
    uses         INTEGER NOT NULL,
    finished     INTEGER NOT NULL,
    failures     INTEGER NOT NULL,
    interrupts   INTEGER NOT NULL,
    duration_sum INTEGER NOT NULL,
    durations    INTEGER NOT NULL,
    sessions     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE tool_days (
    tool_name TEXT NOT NULL,
    day       TEXT NOT NULL,
    uses      INTEGER NOT NULL,
    PRIMARY KEY (tool_name, day)
) WITHOUT ROWID;

CREATE TABLE tool_durations (
    tool_name TEXT NOT NULL,
    lo        INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (tool_name, lo)
) WITHOUT ROWID;

CREATE TABLE tool_sessions (
    tool_name  TEXT NOT NULL,
    session_id TEXT NOT NULL,
    PRIMARY KEY (tool_name, session_id)
) WITHOUT ROWID;

CREATE TABLE event_names (
    hook_event_name TEXT PRIMARY KEY NOT NULL,
    n               INTEGER NOT NULL,
    last_ts         TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE event_echoes (
    echo_key BLOB NOT NULL,
    ts       INTEGER NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (echo_key, ts)
) WITHOUT ROWID;
CREATE INDEX event_echoes_seen ON event_echoes (seen_at);

ALTER TABLE sessions ADD COLUMN prompts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tool_uses INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN tool_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN permission_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN compactions_manual INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN compactions_auto INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN subagents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN model TEXT;

ALTER TABLE calls ADD COLUMN agent_id TEXT;
ALTER TABLE calls ADD COLUMN agent_type TEXT;

-- One row per stat key. Windows as in function_stats: whole days after the
-- window's start from tool_days, plus that day's uses at or after the start
-- from the (tool_name, ts) index of each member tool: exact.
CREATE VIEW tool_stats AS
WITH bounds AS (
    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')  AS since_24h,
           strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days') AS since_7d
)
SELECT t.tool_name                                          AS tool_name,
       t.uses                                               AS uses,
       t.finished                                           AS uses_finished,
       t.failures                                           AS failures,
       t.interrupts                                         AS interrupts,
       CASE WHEN t.finished > 0 THEN CAST(t.failures AS REAL) / t.finished END AS error_rate,
       CASE WHEN t.durations > 0 THEN CAST(t.duration_sum AS REAL) / t.durations END AS mean_duration_ms,
       (SELECT q.rep FROM duration_buckets q WHERE q.lo = (
            SELECT lo FROM (
                SELECT h.lo, SUM(h.n) OVER (ORDER BY h.lo ROWS UNBOUNDED PRECEDING) AS upto
                FROM tool_durations h WHERE h.tool_name = t.tool_name)
            WHERE upto >= (95 * t.durations + 99) / 100 ORDER BY lo LIMIT 1)) AS p95_duration_ms,
       t.sessions                                           AS sessions,
       (SELECT COALESCE(SUM(d.uses), 0) FROM tool_days d
        WHERE d.tool_name = t.tool_name AND d.day > substr(b.since_24h, 1, 10))
     + (SELECT COUNT(*) FROM tool_members m JOIN tool_uses x ON x.tool_name = m.tool_name
        WHERE m.stat_key = t.tool_name
          AND x.ts >= b.since_24h AND x.ts < date(b.since_24h, '+1 day')) AS uses_24h,
       (SELECT COALESCE(SUM(d.uses), 0) FROM tool_days d
        WHERE d.tool_name = t.tool_name AND d.day > substr(b.since_7d, 1, 10))
     + (SELECT COUNT(*) FROM tool_members m JOIN tool_uses x ON x.tool_name = m.tool_name
        WHERE m.stat_key = t.tool_name
          AND x.ts >= b.since_7d AND x.ts < date(b.since_7d, '+1 day')) AS uses_7d,
       (SELECT MAX((SELECT MAX(x.ts) FROM tool_uses x WHERE x.tool_name = m.tool_name))
        FROM tool_members m WHERE m.stat_key = t.tool_name) AS last_used_at
FROM tool_totals t, bounds b;

-- rebuild:begin
DELETE FROM tool_members;
INSERT INTO tool_members (stat_key, tool_name)
SELECT DISTINCT tool_name, tool_name FROM tool_uses
UNION
SELECT DISTINCT 'mcp__' || substr(tool_name, 6, instr(substr(tool_name, 6), '__') - 1), tool_name
FROM tool_uses
WHERE tool_name LIKE 'mcp\_\_%' ESCAPE '\' AND instr(substr(tool_name, 6), '__') > 1;
DELETE FROM tool_totals;
INSERT INTO tool_totals (tool_name, uses, finished, failures, interrupts, duration_sum, durations, sessions)
SELECT m.stat_key, COUNT(*), COUNT(u.success), COALESCE(SUM(u.success = 0), 0), SUM(u.interrupted),
       COALESCE(SUM(u.duration_ms), 0), COUNT(u.duration_ms), COUNT(DISTINCT u.session_id)
FROM tool_members m JOIN tool_uses u ON u.tool_name = m.tool_name GROUP BY m.stat_key;
DELETE FROM tool_days;
INSERT INTO tool_days (tool_name, day, uses)
SELECT m.stat_key, substr(u.ts, 1, 10), COUNT(*)
FROM tool_members m JOIN tool_uses u ON u.tool_name = m.tool_name GROUP BY 1, 2;
DELETE FROM tool_durations;
INSERT INTO tool_durations (tool_name, lo, n)
SELECT m.stat_key,
       (SELECT lo FROM duration_buckets WHERE lo <= u.duration_ms ORDER BY lo DESC LIMIT 1), COUNT(*)
FROM tool_members m JOIN tool_uses u ON u.tool_name = m.tool_name
WHERE u.duration_ms IS NOT NULL GROUP BY 1, 2;
DELETE FROM tool_sessions;
INSERT INTO tool_sessions (tool_name, session_id)
SELECT DISTINCT m.stat_key, u.session_id FROM tool_members m JOIN tool_uses u ON u.tool_name = m.tool_name;
UPDATE sessions SET tool_uses = 0, tool_failures = 0;
UPDATE sessions SET tool_uses = t.n, tool_failures = t.failed
FROM (SELECT session_id, COUNT(*) AS n, COALESCE(SUM(success = 0), 0) AS failed
      FROM tool_uses GROUP BY session_id) AS t
WHERE t.session_id = sessions.session_id;
-- rebuild:end

-- 012_sources: which source saw a row first, and prompts seen by two
-- sources (issue 23, CONTRACT §8).
--
--   tool_uses.source,  `hook` (a spool line: the hook, or another writer of
--   calls.source       hook payloads), `transcript` (import-transcripts,
--                      daemon --transcripts) or `wrapper` (the Python
--                      telemetry wrapper). The source of the first event of
--                      the tool use stored; a later event from another
--                      source pairs with the row and leaves it as it is.
--                      Rows stored before this migration say `hook`: 0.12's
--                      transcript imports were not told apart.
--   prompt_marks       one row per prompt read: a hash of (session, agent,
--                      prompt length, source), its time, and whether it was
--                      paired. A prompt from one source is the same prompt
--                      as an unpaired one from the other source with the
--                      same session, agent and length within 30 s
--                      (src/ingest/prompts.rs): Claude Code's transcript
--                      line and its UserPromptSubmit hook are one prompt. Kept for good, unlike event_echoes: a
--                      transcript may be imported weeks after its hooks.

ALTER TABLE tool_uses ADD COLUMN source TEXT NOT NULL DEFAULT 'hook'
    CHECK (source IN ('hook', 'transcript', 'wrapper'));
ALTER TABLE calls ADD COLUMN source TEXT NOT NULL DEFAULT 'hook'
    CHECK (source IN ('hook', 'transcript', 'wrapper'));

CREATE TABLE prompt_marks (
    mark   BLOB NOT NULL,
    ts     INTEGER NOT NULL,
    -- 1 once matched with the other source's mark of the same prompt.
    paired INTEGER NOT NULL DEFAULT 0 CHECK (paired IN (0, 1)),
    PRIMARY KEY (mark, ts)
) WITHOUT ROWID;

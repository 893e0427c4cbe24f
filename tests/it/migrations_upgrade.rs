//! A database made by an earlier migration set is upgraded in place, rows
//! and all, when the binary learns later migrations.

use call_monitor::store::migrations::{self, Migration, MIGRATIONS};
use call_monitor::store::{Database, Missing};
use rusqlite::Connection;

/// A database at `path` made by the first `version` migrations, as an
/// older call_monitor left it.
fn at_schema(path: impl AsRef<std::path::Path>, version: usize) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    migrations::apply(&mut conn, &MIGRATIONS[..version]).unwrap();
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A spool line of a Stop of session `s`: an event without a tool use.
fn stop_line(id: &str, ts: &str) -> String {
    let event = serde_json::json!({"session_id": "s", "hook_event_name": "Stop"});
    let envelope = serde_json::json!({"v": 1, "id": id, "ts": ts, "host": "test", "event": event});
    format!("{envelope}\n")
}

#[test]
fn first_migration_set_upgrades_with_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // What a binary that only knew migration 001 would have left behind.
        let mut conn = Connection::open(&path).unwrap();
        let outcome = migrations::apply(&mut conn, &MIGRATIONS[..1]).unwrap();
        assert_eq!(outcome.version, 1);
        conn.execute_batch(
            "INSERT INTO sessions (session_id, cwd, host) VALUES ('s1', '/w', 'h');
             INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success)
             VALUES ('s1', 'old_py_data', 'fn_run', '2026-01-01T00:00:00.000Z', 40, 1);",
        )
        .unwrap();
        assert_eq!(
            count(
                &conn,
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'function_stats'"
            ),
            0
        );
    }

    // The current binary opens it.
    let db = Database::open(&path, Missing::Refuse).unwrap();
    let later: Vec<u32> = call_monitor::store::migrations::MIGRATIONS[1..]
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(db.migration().applied, later);
    let c = db.conn();
    assert_eq!(count(c, "SELECT COUNT(*) FROM sessions"), 1);
    assert_eq!(
        count(
            c,
            "SELECT calls_total FROM function_stats WHERE function_id = 'old_py_data'"
        ),
        1
    );
    assert_eq!(
        count(
            c,
            "SELECT p95_duration_ms FROM function_stats WHERE function_id = 'old_py_data'"
        ),
        40
    );
    drop(db);

    // A later release adds one more migration: applied once, rows still there.
    const ADD_COLUMN: Migration = Migration {
        version: 1000,
        name: "test_add_column",
        sql: "ALTER TABLE calls ADD COLUMN note TEXT; UPDATE calls SET note = 'migrated';",
    };
    let later: Vec<Migration> = MIGRATIONS.iter().copied().chain([ADD_COLUMN]).collect();
    let mut conn = Connection::open(&path).unwrap();
    assert_eq!(
        migrations::apply(&mut conn, &later).unwrap().applied,
        vec![1000]
    );
    assert!(
        migrations::apply(&mut conn, &later)
            .unwrap()
            .applied
            .is_empty(),
        "re-running is a no-op"
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM calls WHERE note = 'migrated'"),
        1
    );
    assert_eq!(
        count(&conn, "SELECT MAX(version) FROM schema_migrations"),
        1000
    );
}

/// Migration 006 keys `events` by the 16 bytes of a canonical UUID and by
/// the text of any other id. A line ingested before the upgrade must still
/// be a duplicate after it — whatever shape its id has — and the times
/// become milliseconds without moving.
#[test]
fn envelope_ids_stored_before_compact_events_are_still_duplicates() {
    let scratch = crate::support::Scratch::new();
    let ids = [
        "01a20f50-4841-7007-b311-5167b83baf5c", // canonical: becomes 16 bytes
        "01A20F50-4841-7007-B311-5167B83BAF5C", // upper case: another id, kept as text
        "{01a20f50-4841-7007-b311-5167b83baf5d}",
        "01a20f5048417007b3115167b83baf5e",
        "01a20f50-4841-7007-b311-5167b83baf5",
        "p-1",
    ];
    {
        let conn = at_schema(scratch.db(), 5);
        // As 0.5.0 stored them: text ids and times; no tool-use id, so only
        // the envelope id can recognise the lines below.
        for id in ids {
            conn.execute(
                "INSERT INTO events (envelope_id, session_id, hook_event_name, host, ts, ingested_at)
                 VALUES (?1, 's', 'PostToolUse', 'h', '2026-11-24T10:00:00.000Z', '2026-11-24T10:00:00.250Z')",
                [id],
            )
            .unwrap();
        }
    }
    let spool = scratch.private_spool();
    let file = spool.join("again.jsonl");
    // Two new ids that differ only in case are two envelopes.
    let fresh = [
        "01a20f50-4841-7007-b311-5167b83baf5f",
        "01A20F50-4841-7007-B311-5167B83BAF5F",
    ];
    // The same events again: without a tool-use id, like the rows above,
    // so (since migration 008) their id is their only key.
    let lines: String = ids
        .iter()
        .chain(&fresh)
        .map(|id| {
            let event = serde_json::json!({
                "session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash",
                "command": "fn run a_py_x"
            });
            let envelope = serde_json::json!({"v": 1, "id": id, "ts": "2026-11-24T10:00:00.000Z", "host": "test", "event": event});
            format!("{envelope}\n")
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let out = crate::support::succeed(scratch.cmd(&["replay"]).arg(&file));
    assert_eq!(out.trim(), "events=8 inserted=2 duplicates=6 quarantined=0");

    let conn = scratch.read();
    let kinds: Vec<(String, String)> = conn
        .prepare(
            "SELECT typeof(envelope_id), CASE typeof(dedupe_key) WHEN 'blob' THEN hex(dedupe_key) ELSE dedupe_key END
             FROM events ORDER BY 2, 1",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<(String, String)> = [
        ("blob", "01A20F5048417007B3115167B83BAF5C"),
        ("blob", "01A20F5048417007B3115167B83BAF5F"),
        ("text", "id:01A20F50-4841-7007-B311-5167B83BAF5C"),
        ("text", "id:01A20F50-4841-7007-B311-5167B83BAF5F"),
        ("text", "id:01a20f50-4841-7007-b311-5167b83baf5"),
        ("text", "id:01a20f5048417007b3115167b83baf5e"),
        ("text", "id:p-1"),
        ("text", "id:{01a20f50-4841-7007-b311-5167b83baf5d}"),
    ]
    .iter()
    .map(|(k, t)| (k.to_string(), t.to_string()))
    .collect();
    assert_eq!(kinds, expected);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events
             WHERE ts = unixepoch('2026-11-24T10:00:00') * 1000 AND ingested_at - ts = 250"
        ),
        6
    );
}

/// Migration 007 makes the pairing indexes of `calls` and `test_runs` total
/// (no longer partial) and drops the `code_writes` rollup triggers: stored
/// rows without a tool use still never conflict, rows with one still do, and
/// the write counts the triggers kept are kept.
#[test]
fn lean_inserts_upgrade_keeps_rows_and_write_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = at_schema(&path, 6);
        conn.execute_batch(
            "INSERT INTO calls (session_id, function_id, tool_used, ts)
             VALUES ('s', 'a_py_data', 'fn_run', '2026-01-01T00:00:00.000Z'),
                    ('s', 'a_py_data', 'fn_run', '2026-01-01T00:00:01.000Z');
             INSERT INTO calls (session_id, function_id, tool_used, ts, tool_use_id)
             VALUES ('s', 'a_py_data', 'fn_run', '2026-01-01T00:00:02.000Z', 't1');
             INSERT INTO test_runs (session_id, function_id, ts)
             VALUES ('s', 'a_py_data', '2026-01-01T00:00:00.000Z'),
                    ('s', 'a_py_data', '2026-01-01T00:00:01.000Z');
             INSERT INTO code_writes (session_id, function_id, file_path, ts)
             VALUES ('s', 'a_py_data', 'functions/py/data/a.py', '2026-01-01T00:00:00.000Z');",
        )
        .unwrap();
    }
    let db = Database::open(&path, Missing::Refuse).unwrap();
    let later: Vec<u32> = MIGRATIONS[6..].iter().map(|m| m.version).collect();
    assert_eq!(db.migration().applied, later);
    let c = db.conn();
    assert_eq!(count(c, "SELECT COUNT(*) FROM calls"), 3);
    assert_eq!(
        count(c, "SELECT COUNT(*) FROM calls WHERE source = 'hook'"),
        3,
        "rows from before 012 say hook"
    );
    assert_eq!(count(c, "SELECT COUNT(*) FROM test_runs"), 2);
    assert_eq!(
        count(
            c,
            "SELECT writes_count FROM function_stats WHERE function_id = 'a_py_data'"
        ),
        1
    );
    let insert = "INSERT INTO calls (session_id, function_id, tool_used, ts, tool_use_id)
                  VALUES ('s', 'a_py_data', 'fn_run', '2026-01-01T00:00:03.000Z', ?1)";
    c.execute(insert, [None::<&str>]).unwrap();
    assert!(
        c.execute(insert, [Some("t1")]).is_err(),
        "a second row of tool use t1 at ordinal 0"
    );
    assert_eq!(
        count(
            c,
            "SELECT COUNT(*) FROM sqlite_master
             WHERE name IN ('calls_session_ts', 'test_runs_session')
                OR name LIKE 'code_writes_rollup_%'"
        ),
        0
    );
}

/// Migration 007 folds `events`' second dedupe key (session, tool use, hook
/// event) into one column; the ingester must build it exactly as the
/// migration converts stored rows — byte lengths, not characters — and the
/// key must stay one-to-one where the three joined by spaces would not be.
#[test]
fn tool_use_keys_stored_before_lean_inserts_are_still_duplicates() {
    let scratch = crate::support::Scratch::new();
    {
        let conn = at_schema(scratch.db(), 6);
        for (id, session, tool_use) in [
            ("old-1", "s", "t"),
            ("old-2", "sé", "tø"),
            ("old-3", "a b", "c"),
        ] {
            conn.execute(
                "INSERT INTO events (envelope_id, session_id, tool_use_id, hook_event_name, ts, ingested_at)
                 VALUES (?1, ?2, ?3, 'PostToolUse', 0, 0)",
                (id, session, tool_use),
            )
            .unwrap();
        }
    }
    let file = scratch.private_spool().join("again.jsonl");
    let lines: String = [
        ("new-1", "s", "t"),
        ("new-2", "sé", "tø"),
        ("new-3", "a", "b c"),
    ]
    .iter()
    .map(|(id, session, tool_use)| crate::support::envelope_line(id, session, tool_use, "a_py_x"))
    .collect();
    std::fs::write(&file, lines).unwrap();
    let out = crate::support::succeed(scratch.cmd(&["replay"]).arg(&file));
    assert_eq!(out.trim(), "events=3 inserted=1 duplicates=2 quarantined=0");
    assert_eq!(
        count(
            &scratch.read(),
            "SELECT COUNT(*) FROM events WHERE dedupe_key IN ('3:sé 3:tø PostToolUse', '1:a 3:b c PostToolUse')"
        ),
        2
    );
}

/// Migration 008 keys `events` once: a tool-use event by its session, tool
/// use and hook event, any other event by its envelope id (`id:` text for a
/// non-UUID id). Rows stored under schema 7 still recognise their lines, an
/// id reused by another tool use no longer hides it, and the kinds of key
/// never collide.
#[test]
fn events_stored_before_one_event_key_are_still_duplicates() {
    let scratch = crate::support::Scratch::new();
    {
        let conn = at_schema(scratch.db(), 7);
        conn.execute_batch(
            "INSERT INTO events (envelope_id, tool_use_key, ts, ingested_at) VALUES
               (unhex('01a20f5048417007b3115167b83baf50'), '1:s 2:t1 PostToolUse', 0, 0),
               (unhex('01a20f5048417007b3115167b83baf51'), NULL, 0, 0),
               ('p-2', NULL, 0, 0);",
        )
        .unwrap();
    }
    // Stops seconds apart: an identical event within two seconds would be
    // an echo of the hook registered twice (ingest/echoes.rs).
    let lines = [
        // Duplicates: the stored tool use under a new id (a retried hook),
        // and the two events without a tool use under their ids.
        crate::support::envelope_line("01a20f50-4841-7007-b311-5167b83baf52", "s", "t1", "a_py_x"),
        stop_line(
            "01a20f50-4841-7007-b311-5167b83baf51",
            "2026-11-24T10:00:00.000Z",
        ),
        stop_line("p-2", "2026-11-24T10:00:10.000Z"),
        // New: another tool use under the first row's id, and an id that
        // spells the stored tool-use key.
        crate::support::envelope_line("01a20f50-4841-7007-b311-5167b83baf50", "s", "t2", "a_py_x"),
        stop_line("1:s 2:t1 PostToolUse", "2026-11-24T10:00:20.000Z"),
    ];
    let file = scratch.private_spool().join("again.jsonl");
    std::fs::write(&file, lines.concat()).unwrap();
    let out = crate::support::succeed(scratch.cmd(&["replay"]).arg(&file));
    assert_eq!(out.trim(), "events=5 inserted=2 duplicates=3 quarantined=0");
    let conn = scratch.read();
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE dedupe_key IN
               ('1:s 2:t1 PostToolUse', '1:s 2:t2 PostToolUse', 'id:1:s 2:t1 PostToolUse', 'id:p-2')"
        ),
        4
    );
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events"), 5);
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM events WHERE envelope_id = unhex('01a20f5048417007b3115167b83baf50')"
        ),
        2,
        "one id, two tool uses"
    );
}

/// Migration 009 backfills each session's call tallies from the calls
/// stored before it, so the health computed at the next event of a session
/// still counts its earlier calls.
#[test]
fn session_health_after_the_tallies_upgrade_counts_earlier_calls() {
    let scratch = crate::support::Scratch::new();
    {
        let conn = at_schema(scratch.db(), 8);
        conn.execute_batch(
            "INSERT INTO sessions (session_id) VALUES ('s'), ('quiet');
             INSERT INTO calls (session_id, function_id, tool_used, ts, success, tool_use_id) VALUES
               ('s', 'a_py_x', 'fn_run', '2026-11-24T09:00:00.000Z', 1, 't1'),
               ('s', 'b_go_y', 'mcp', '2026-11-24T09:00:01.000Z', 0, 't2'),
               ('s', 'a_py_x', 'fn_run', '2026-11-24T09:00:02.000Z', NULL, 't3'),
               ('quiet', 'b_go_y', 'mcp', '2026-11-24T09:00:03.000Z', NULL, 't4');",
        )
        .unwrap();
    }
    let file = scratch.private_spool().join("next.jsonl");
    let line =
        crate::support::envelope_line("01a20f50-4841-7007-b311-5167b83baf60", "s", "t5", "a_py_x");
    std::fs::write(&file, line).unwrap();
    let out = crate::support::succeed(scratch.cmd(&["replay"]).arg(&file));
    assert_eq!(out.trim(), "events=1 inserted=1 duplicates=0 quarantined=0");
    let conn = scratch.read();
    let tallies: Vec<(String, i64, i64, i64, i64)> = conn
        .prepare("SELECT session_id, calls, mcp, failed, finished FROM session_calls ORDER BY 1")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        tallies,
        [
            ("quiet".to_string(), 1, 1, 0, 0),
            ("s".to_string(), 4, 1, 1, 3)
        ]
    );
    // One failed of three finished calls: 100 − 30 / 3; one MCP call of four.
    let (ratio, health): (f64, f64) = conn
        .query_row(
            "SELECT mcp_ratio, health_score FROM sessions WHERE session_id = 's'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((ratio, health), (0.25, 90.0));
}

/// Migration 015 rebuilds `tool_uses` and `calls` with comparisons in the
/// `source` CHECK: every row keeps its id and columns, the views over them
/// still answer, a bad source is still refused, and storing a row no longer
/// builds a temporary b-tree for the CHECK.
#[test]
fn source_checks_upgrade_keeps_rows_and_the_constraint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let snapshot = |conn: &Connection| -> Vec<String> {
        [
            "SELECT group_concat(id || session_id || tool_name || ts || ifnull(duration_ms, '-')
                 || ifnull(success, '-') || interrupted || ifnull(agent_id, '-')
                 || ifnull(tool_use_id, '-') || ordinal || source, ';') FROM tool_uses",
            "SELECT group_concat(id || session_id || ifnull(function_id, '-') || tool_used || ts
                 || ifnull(error_class, '-') || ifnull(tool_use_id, '-') || ordinal || source
                 || wrapper_calls, ';') FROM calls",
            "SELECT group_concat(function_id || calls_total || errors_total, ';') FROM function_stats",
            "SELECT group_concat(tool_name || uses, ';') FROM tool_stats",
        ]
        .iter()
        .map(|sql| conn.query_row(sql, [], |r| r.get(0)).unwrap())
        .collect()
    };
    let before = {
        let conn = at_schema(&path, 14);
        conn.execute_batch(
            "INSERT INTO tool_uses (session_id, tool_name, ts, duration_ms, success, tool_use_id, source)
             VALUES ('s', 'Bash', '2026-11-24T09:00:00.000Z', 40, 1, 't1', 'hook'),
                    ('s', 'Read', '2026-11-24T09:00:01.000Z', NULL, NULL, NULL, 'transcript');
             INSERT INTO calls (session_id, function_id, tool_used, ts, success, tool_use_id,
                                source, wrapper_calls)
             VALUES ('s', 'a_py_x', 'heredoc', '2026-11-24T09:00:00.000Z', 0, 't1', 'wrapper', 2),
                    ('s', 'b_go_y', 'mcp', '2026-11-24T09:00:02.000Z', 1, 't2', 'hook', 0);",
        )
        .unwrap();
        call_monitor::store::migrations::rebuild_rollups(&conn).unwrap();
        snapshot(&conn)
    };
    assert!(before.iter().all(|s| !s.is_empty()), "{before:?}");

    let db = Database::open(&path, Missing::Refuse).unwrap();
    let conn = db.conn();
    assert_eq!(snapshot(conn), before);
    assert_eq!(
        count(
            conn,
            "SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check <> 'ok'"
        ),
        0
    );
    for table in ["tool_uses", "calls"] {
        let refused = conn.execute(
            &format!("UPDATE {table} SET source = 'bogus' WHERE id = 1"),
            [],
        );
        assert!(refused.is_err(), "{table} took a bad source");
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN UPDATE {table} SET source = 'hook' WHERE id = 1"
            ))
            .unwrap()
            .query_map([], |r| r.get(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            !plan.iter().any(|op| op == "OpenEphemeral"),
            "{table}: {plan:?}"
        );
    }
}

/// Migration 016 keys `event_echoes` by time first: the rows are kept as
/// they were, and an echo of an event stored before the upgrade is still
/// recognised (within two seconds, not after).
#[test]
fn echoes_stored_before_keying_by_time_still_match() {
    let replay = |scratch: &crate::support::Scratch, name: &str, lines: &[String]| {
        let file = scratch.private_spool().join(name);
        std::fs::write(&file, lines.concat()).unwrap();
        crate::support::succeed(scratch.cmd(&["replay"]).arg(&file))
    };
    // The echo row a Stop leaves, as the current schema computes it.
    let first = stop_line("p-1", "2026-11-24T10:00:00.000Z");
    let probe = crate::support::Scratch::new();
    replay(&probe, "first.jsonl", std::slice::from_ref(&first));
    let (key, ts): (Vec<u8>, i64) = probe
        .read()
        .query_row("SELECT echo_key, ts FROM event_echoes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();

    // The same event stored by a schema-15 call_monitor, with another
    // session's echo row beside it.
    // Seen an hour ago: kept (for a day), and told apart from rows the
    // replay below adds.
    let scratch = crate::support::Scratch::new();
    let seen_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 3_600_000;
    let rows_seen_then = |conn: &Connection| -> String {
        conn.query_row(
            "SELECT group_concat(hex(echo_key) || ts || seen_at, ';')
             FROM (SELECT * FROM event_echoes WHERE seen_at = ?1 ORDER BY echo_key, ts)",
            [seen_at],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = {
        let conn = at_schema(scratch.db(), 15);
        conn.execute(
            "INSERT INTO event_echoes (echo_key, ts, seen_at) VALUES (?1, ?2, ?3), (?4, ?2, ?3)",
            (&key, ts, seen_at, &[7u8; 16][..]),
        )
        .unwrap();
        rows_seen_then(&conn)
    };

    let out = replay(
        &scratch,
        "again.jsonl",
        &[
            // The second hook process's copy, 3 ms later: an echo.
            stop_line("p-1-echo", "2026-11-24T10:00:00.003Z"),
            // The same content three seconds later: a new Stop.
            stop_line("p-2", "2026-11-24T10:00:03.000Z"),
        ],
    );
    assert_eq!(out.trim(), "events=2 inserted=1 duplicates=1 quarantined=0");
    let conn = scratch.read();
    assert_eq!(rows_seen_then(&conn), before, "rows kept as they were");
    let primary_key: Vec<String> = conn
        .prepare("SELECT name FROM pragma_index_info('sqlite_autoindex_event_echoes_1')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(primary_key, ["ts", "echo_key"]);
}

//! A database made by an earlier migration set is upgraded in place, rows
//! and all, when the binary learns later migrations.

use call_monitor::db::{Database, Missing};
use call_monitor::migrations::{self, Migration, MIGRATIONS};
use rusqlite::Connection;

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
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
    let later: Vec<u32> = call_monitor::migrations::MIGRATIONS[1..]
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

//! The versioned schema of `operations.db` and its in-place upgrades.
//!
//! Migrations are the SQL files in `migrations/NNN_name.sql`, embedded in the
//! binary. [`apply`] brings a database up to the newest version it knows.
//!
//! # Invariants
//! - `schema_migrations(version, name, applied_at)` records every applied
//!   migration. A migration is applied at most once; re-running is a no-op.
//! - All pending migrations are applied in **one** `BEGIN IMMEDIATE`
//!   transaction together with their bookkeeping rows: a database is either
//!   fully upgraded or left exactly as it was. Existing rows are kept.
//! - A database that records a version this binary does not know (made by a
//!   newer call_monitor), or a different name for a known version, is refused
//!   rather than guessed at.
//! - A SQLite file that has tables but no `schema_migrations` is someone
//!   else's database (a `registry.db` passed by mistake, say): it is refused,
//!   never written.
//!
//! # Concurrency
//! Several processes may open the same database at once (`init` while the
//! daemon runs). The pending set is re-read inside the write transaction, so
//! two racing upgraders apply each migration once between them.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

/// One schema step: `migrations/NNN_name.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order. A test checks this list
/// against the files in `migrations/` so none is forgotten.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/001_init.sql"),
    },
    Migration {
        version: 2,
        name: "function_stats_view",
        sql: include_str!("../../migrations/002_function_stats_view.sql"),
    },
    Migration {
        version: 3,
        name: "classification",
        sql: include_str!("../../migrations/003_classification.sql"),
    },
    Migration {
        version: 4,
        name: "insight",
        sql: include_str!("../../migrations/004_insight.sql"),
    },
    Migration {
        version: 5,
        name: "rollups",
        sql: include_str!("../../migrations/005_rollups.sql"),
    },
    Migration {
        version: 6,
        name: "compact_events",
        sql: include_str!("../../migrations/006_compact_events.sql"),
    },
    Migration {
        version: 7,
        name: "lean_inserts",
        sql: include_str!("../../migrations/007_lean_inserts.sql"),
    },
    Migration {
        version: 8,
        name: "one_event_key",
        sql: include_str!("../../migrations/008_one_event_key.sql"),
    },
    Migration {
        version: 9,
        name: "session_tallies",
        sql: include_str!("../../migrations/009_session_tallies.sql"),
    },
    Migration {
        version: 10,
        name: "tool_uses",
        sql: include_str!("../../migrations/010_tool_uses.sql"),
    },
    Migration {
        version: 11,
        name: "day_durations",
        sql: include_str!("../../migrations/011_day_durations.sql"),
    },
    Migration {
        version: 12,
        name: "sources",
        sql: include_str!("../../migrations/012_sources.sql"),
    },
    Migration {
        version: 13,
        name: "copies",
        sql: include_str!("../../migrations/013_copies.sql"),
    },
    Migration {
        version: 14,
        name: "wrapper_calls",
        sql: include_str!("../../migrations/014_wrapper_calls.sql"),
    },
    Migration {
        version: 15,
        name: "source_checks",
        sql: include_str!("../../migrations/015_source_checks.sql"),
    },
    Migration {
        version: 16,
        name: "echoes_by_time",
        sql: include_str!("../../migrations/016_echoes_by_time.sql"),
    },
];

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationOutcome {
    /// Schema version after the call.
    pub version: u32,
    /// Versions applied by this call (empty when already up to date).
    pub applied: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "database schema version {found} is newer than this call_monitor supports ({known}); upgrade call_monitor"
    )]
    TooNew { found: u32, known: u32 },
    #[error("database records migration {version} as '{found}' but this call_monitor calls it '{expected}'")]
    Mismatch {
        version: u32,
        expected: &'static str,
        found: String,
    },
    #[error("this SQLite database is not a call_monitor database (it has other tables and no schema_migrations); refusing to modify it")]
    Foreign,
    #[error("migration {version} ({name}) failed: {source}")]
    Step {
        version: u32,
        name: &'static str,
        source: rusqlite::Error,
    },
    #[error("cannot read or record the schema version: {0}")]
    Bookkeeping(#[from] rusqlite::Error),
}

const BOOKKEEPING_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

/// Brings `conn` up to the newest migration of `set` (normally
/// [`MIGRATIONS`]; tests pass prefixes to build older databases).
pub fn apply(conn: &mut Connection, set: &[Migration]) -> Result<MigrationOutcome, MigrateError> {
    // Cheap read first, so that an up-to-date database never takes the
    // write lock (status must not wait on a busy daemon just to learn that).
    if let Some(outcome) = up_to_date(conn, set)? {
        return Ok(outcome);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    refuse_foreign(&tx)?;
    tx.execute_batch(BOOKKEEPING_DDL)?;
    let recorded = recorded_versions(&tx)?;
    check_known(set, &recorded)?;
    let mut applied = Vec::new();
    for step in set
        .iter()
        .filter(|m| !recorded.iter().any(|(v, _)| *v == m.version))
    {
        tx.execute_batch(step.sql)
            .map_err(|source| MigrateError::Step {
                version: step.version,
                name: step.name,
                source,
            })?;
        tx.execute(
            &format!(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, {})",
                crate::contract::timefmt::SQL_NOW
            ),
            (step.version, step.name),
        )?;
        applied.push(step.version);
    }
    tx.commit()?;
    Ok(MigrationOutcome {
        version: newest(set),
        applied,
    })
}

/// `Some` when nothing is pending; errors for a foreign or too-new database.
fn up_to_date(
    conn: &Connection,
    set: &[Migration],
) -> Result<Option<MigrationOutcome>, MigrateError> {
    if !has_bookkeeping(conn)? {
        refuse_foreign(conn)?;
        return Ok(None);
    }
    let recorded = recorded_versions(conn)?;
    check_known(set, &recorded)?;
    let pending = set
        .iter()
        .any(|m| !recorded.iter().any(|(v, _)| *v == m.version));
    Ok((!pending).then(|| MigrationOutcome {
        version: newest(set),
        applied: Vec::new(),
    }))
}

fn has_bookkeeping(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        [],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

fn refuse_foreign(conn: &Connection) -> Result<(), MigrateError> {
    if has_bookkeeping(conn)? {
        return Ok(());
    }
    let user_objects: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )?;
    if user_objects > 0 {
        return Err(MigrateError::Foreign);
    }
    Ok(())
}

fn recorded_versions(conn: &Connection) -> rusqlite::Result<Vec<(u32, String)>> {
    let mut stmt = conn.prepare("SELECT version, name FROM schema_migrations ORDER BY version")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

fn check_known(set: &[Migration], recorded: &[(u32, String)]) -> Result<(), MigrateError> {
    let known = newest(set);
    for (version, found) in recorded {
        match set.iter().find(|m| m.version == *version) {
            Some(m) if m.name == found => {}
            Some(m) => {
                return Err(MigrateError::Mismatch {
                    version: *version,
                    expected: m.name,
                    found: found.clone(),
                })
            }
            None if *version > known => {
                return Err(MigrateError::TooNew {
                    found: *version,
                    known,
                })
            }
            // An unknown version below the newest known one is a gap we
            // never produce; treat it as a mismatch of that slot.
            None => {
                return Err(MigrateError::Mismatch {
                    version: *version,
                    expected: "(none)",
                    found: found.clone(),
                })
            }
        }
    }
    Ok(())
}

fn newest(set: &[Migration]) -> u32 {
    set.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The statements between `-- rebuild:begin` and `-- rebuild:end` of a
/// migration that creates rollups.
fn rebuild_block(sql: &'static str) -> &'static str {
    let begin = sql.find("-- rebuild:begin").expect("rebuild block start");
    let end = sql.find("-- rebuild:end").expect("rebuild block end");
    &sql[begin..end]
}

/// Recomputes every rollup the ingester keeps from the rows, in one
/// transaction: the function rollups (migration 005), then the session
/// tallies (009), the tool rollups and session tool tallies (010), the
/// per-day duration histogram (011). For
/// rows written by something else than the ingester (a manual fix with
/// `sqlite3`).
pub fn rebuild_rollups(conn: &Connection) -> rusqlite::Result<()> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    tx.execute_batch(rebuild_block(include_str!(
        "../../migrations/005_rollups.sql"
    )))?;
    tx.execute_batch(rebuild_block(include_str!(
        "../../migrations/009_session_tallies.sql"
    )))?;
    tx.execute_batch(rebuild_block(include_str!(
        "../../migrations/010_tool_uses.sql"
    )))?;
    tx.execute_batch(rebuild_block(include_str!(
        "../../migrations/011_day_durations.sql"
    )))?;
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn list_matches_the_files_in_migrations_dir() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:03}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, listed);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }

    #[test]
    fn fresh_database_gets_every_migration_once() {
        let mut conn = memory();
        let first = apply(&mut conn, MIGRATIONS).unwrap();
        let every: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(first.applied, every);
        let again = apply(&mut conn, MIGRATIONS).unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(again.version, *every.last().unwrap());
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, every.len() as i64);
    }

    #[test]
    fn newer_database_is_refused() {
        let mut conn = memory();
        apply(&mut conn, MIGRATIONS).unwrap();
        let err = apply(&mut conn, &MIGRATIONS[..1]).unwrap_err();
        assert!(
            matches!(err, MigrateError::TooNew { found: 2, known: 1 }),
            "{err}"
        );
    }

    #[test]
    fn renamed_migration_is_refused() {
        let mut conn = memory();
        apply(&mut conn, MIGRATIONS).unwrap();
        conn.execute(
            "UPDATE schema_migrations SET name = 'other' WHERE version = 1",
            [],
        )
        .unwrap();
        let err = apply(&mut conn, MIGRATIONS).unwrap_err();
        assert!(
            matches!(err, MigrateError::Mismatch { version: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn foreign_database_is_left_untouched() {
        let mut conn = memory();
        conn.execute_batch("CREATE TABLE functions (id TEXT PRIMARY KEY)")
            .unwrap();
        let err = apply(&mut conn, MIGRATIONS).unwrap_err();
        assert!(matches!(err, MigrateError::Foreign), "{err}");
        let objects: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(objects, ["functions"]);
    }

    #[test]
    fn failing_step_rolls_back_the_whole_upgrade() {
        const BROKEN: &[Migration] = &[
            Migration {
                version: 1,
                name: "ok",
                sql: "CREATE TABLE a (x);",
            },
            Migration {
                version: 2,
                name: "broken",
                sql: "CREATE TABLE b (x); NOT SQL;",
            },
        ];
        let mut conn = memory();
        let err = apply(&mut conn, BROKEN).unwrap_err();
        assert!(
            matches!(err, MigrateError::Step { version: 2, .. }),
            "{err}"
        );
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('a', 'b', 'schema_migrations')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "nothing of the failed upgrade may remain");
    }
}

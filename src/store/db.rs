//! Opening `operations.db`.
//!
//! Every command goes through [`Database::open`], so every connection has the
//! same settings:
//! - WAL journal, so the daemon's writes never block readers (`status`,
//!   dashboards) and readers never block it;
//! - `synchronous=NORMAL`: in WAL mode a commit is still atomic and
//!   consistent after a crash; only the last transactions before a power
//!   loss may roll back, which the spool checkpoints make safe (offsets are
//!   committed with their rows, so rolled-back rows are simply read again);
//! - a busy timeout, so short lock contention is waited out, not failed;
//! - an 8 MiB page cache per connection: enough for the index pages an
//!   ingest touches (a 64 MiB one replayed no faster), and a bound on the
//!   memory a long-running daemon settles at (BENCHMARKS.md, soak); and
//!   WAL checkpoints every ~40 MB rather than every 4 MB;
//! - the schema brought up to date by [`crate::store::migrations`].
//!
//! A new database file is created `0600`: telemetry is private to its user
//! even though it holds no raw text. SQLite gives its `-wal` and `-shm` files
//! the database file's permissions.
//!
//! Failures are reported as [`OpenError`], one line each, naming the path.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::store::migrations::{self, MigrateError, MigrationOutcome};

/// How long a statement waits for a lock held by another connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements each connection keeps. Ingestion alone runs some 60
/// distinct statements; with rusqlite's default of 16 they evicted each
/// other, and every batch compiled most of them again (their triggers
/// included): 6 % of replay's database thread, 10 % of its wall time
/// (BENCHMARKS.md, session 17).
const STATEMENT_CACHE: usize = 128;

/// What to do when the database file does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Create it (and its parent directory): `init`, `replay`, `daemon`.
    Create,
    /// Refuse with a hint to run `init`: read-only reports such as `status`,
    /// where silently creating an empty database at a mistyped path would
    /// hide the mistake.
    Refuse,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no database at {path} (run `call_monitor init --db {path}` to create it)")]
    NotFound { path: String },
    #[error("cannot create directory {dir} for the database: {source}")]
    CreateDir { dir: String, source: io::Error },
    #[error("cannot create database file {path}: {source}")]
    CreateFile { path: String, source: io::Error },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{path} is not a SQLite database")]
    NotADatabase { path: String },
    #[error("cannot enable WAL on {path}: the journal mode stays '{mode}' (is it on a network file system?)")]
    NoWal { path: String, mode: String },
    #[error("cannot configure database {path}: {source}")]
    Configure {
        path: String,
        source: rusqlite::Error,
    },
    #[error("cannot migrate database {path}: {source}")]
    Migrate { path: String, source: MigrateError },
    #[error("database {path} has schema {found}, this binary reads {expected}: run `call_monitor init --db {path}` (or the newer call_monitor that wrote it)")]
    SchemaMismatch {
        path: String,
        found: u32,
        expected: u32,
    },
}

/// An open, configured, up-to-date `operations.db`.
#[derive(Debug)]
pub struct Database {
    conn: Connection,
    path: PathBuf,
    migration: MigrationOutcome,
}

impl Database {
    /// Opens (or creates, per `missing`) the database at `path` and applies
    /// pending migrations.
    pub fn open(path: &Path, missing: Missing) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        if !path.exists() {
            match missing {
                Missing::Refuse => return Err(OpenError::NotFound { path: shown }),
                Missing::Create => create_private_file(path)?,
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| OpenError::Open {
            path: shown.clone(),
            source,
        })?;
        configure(&conn, &shown)?;
        let mut conn = conn;
        let migration =
            migrations::apply(&mut conn, migrations::MIGRATIONS).map_err(
                |source| match source {
                    MigrateError::Bookkeeping(e) if is_not_a_database(&e) => {
                        OpenError::NotADatabase {
                            path: shown.clone(),
                        }
                    }
                    source => OpenError::Migrate {
                        path: shown.clone(),
                        source,
                    },
                },
            )?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            migration,
        })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Gives up the wrapper, keeping the configured connection.
    pub fn into_conn(self) -> Connection {
        self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version and what this open applied.
    pub fn migration(&self) -> &MigrationOutcome {
        &self.migration
    }
}

/// Opens `path` for reading only (`mode=ro` and `query_only`): the
/// dashboard's connections, which must never write, not even a migration.
/// The schema must be this binary's: an older one is refused with the
/// command that upgrades it, rather than read wrongly.
pub fn open_read_only(path: &Path) -> Result<Connection, OpenError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(OpenError::NotFound { path: shown });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| OpenError::Open {
        path: shown.clone(),
        source,
    })?;
    let fail = |source| classify(&shown, source);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -8192;")
        .map_err(fail)?;
    let found: u32 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let expected = migrations::MIGRATIONS.len() as u32;
    if found != expected {
        return Err(OpenError::SchemaMismatch {
            path: shown,
            found,
            expected,
        });
    }
    Ok(conn)
}

/// Creates an empty `0600` file (and missing parent directories, `0700`), so
/// SQLite never creates the database with the process umask.
fn create_private_file(path: &Path) -> Result<(), OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| OpenError::CreateDir {
                dir: dir.display().to_string(),
                source,
            })?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| OpenError::CreateFile {
            path: path.display().to_string(),
            source,
        })
}

fn configure(conn: &Connection, path: &str) -> Result<(), OpenError> {
    let fail = |source| classify(path, source);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // journal_mode answers with the mode in force; it is the first statement
    // that reads the file, so a non-database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::NoWal {
            path: path.to_string(),
            mode,
        });
    }
    // An 8 MiB page cache per connection: a larger one makes a long-running
    // daemon grow towards it (BENCHMARKS.md, soak). One-shot ingestion
    // raises it (`ingest::Workload::Bulk`).
    // Checkpoint the WAL every ~40 MB instead of every 4 MB: a long ingest
    // rewrites the same hot index pages in every batch, and fewer, larger
    // checkpoints copy each of them back fewer times (~5 % of replay).
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -8192;
         PRAGMA wal_autocheckpoint = 10000;",
    )
    .map_err(fail)
}

fn is_not_a_database(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(ErrorCode::NotADatabase)
}

fn classify(path: &str, source: rusqlite::Error) -> OpenError {
    if is_not_a_database(&source) {
        OpenError::NotADatabase {
            path: path.to_string(),
        }
    } else {
        OpenError::Configure {
            path: path.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_private_wal_database_with_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/ops.db");
        let db = Database::open(&path, Missing::Create).unwrap();
        let mode: String = db
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let perms = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(perms, 0o600);
        assert_eq!(
            db.migration().version,
            crate::store::migrations::MIGRATIONS.len() as u32
        );
    }

    /// `.cargo/config.toml` builds the bundled SQLite without the shared
    /// page cache and the memory counters (two mutexes per page fetch and
    /// allocation); this fails if that setting is lost.
    #[test]
    fn bundled_sqlite_is_built_without_global_mutexes() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }

    #[test]
    fn read_only_connections_cannot_write_and_want_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.db");
        let db = Database::open(&path, Missing::Create).unwrap();
        let reader = open_read_only(&path).unwrap();
        let err = reader
            .execute("DELETE FROM sessions", [])
            .expect_err("a read-only connection wrote");
        assert!(err.to_string().contains("readonly"), "{err}");
        let older = migrations::MIGRATIONS.len() as u32 - 1;
        db.conn()
            .execute("DELETE FROM schema_migrations WHERE version > ?1", [older])
            .unwrap();
        let err = open_read_only(&path).unwrap_err();
        assert!(
            matches!(err, OpenError::SchemaMismatch { found, .. } if found == older),
            "{err}"
        );
        let missing = open_read_only(&dir.path().join("none.db")).unwrap_err();
        assert!(matches!(missing, OpenError::NotFound { .. }), "{missing}");
    }

    #[test]
    fn refuses_to_create_when_asked_not_to() {
        let dir = tempfile::tempdir().unwrap();
        let err = Database::open(&dir.path().join("none.db"), Missing::Refuse).unwrap_err();
        assert!(matches!(err, OpenError::NotFound { .. }), "{err}");
        assert!(!dir.path().join("none.db").exists());
    }

    #[test]
    fn text_file_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        std::fs::write(
            &path,
            "this is not sqlite, just some text that is long enough\n".repeat(20),
        )
        .unwrap();
        let err = Database::open(&path, Missing::Create).unwrap_err();
        assert!(matches!(err, OpenError::NotADatabase { .. }), "{err}");
    }
}

//! The fn_registry database (registry.db, CONTRACT §5), from
//! call_monitor's side.
//!
//! - [`open`] checks that a path is a fn_registry database and opens it,
//!   read-only unless proposals are written ([`Access`]); it never creates
//!   the file.
//! - [`read_catalog`] reads what recognition needs (a
//!   [`Catalog`]); without a registry, [`catalog_from_snapshot`] builds a
//!   thinner one from the ids in operations.db's `function_versions`.
//!   Either way [`add_function_code`] adds the fingerprints of the
//!   functions' sources that `snapshot` recorded, for copy detection.
//!
//! call_monitor writes nothing to registry.db but `proposals`
//! ([`crate::insight`]'s outbox).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::contract::code::Fingerprints;
use crate::recognise::{split_function_id, Catalog};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read registry {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("registry {0} is locked by another process (waited {secs} s); try again later", secs = REGISTRY_BUSY_TIMEOUT.as_secs())]
    Locked(PathBuf),
    #[error("{0} is not a fn_registry database (no `functions` table with id, name, lang, domain, file_path)")]
    Foreign(PathBuf),
    #[error("cannot read function ids from function_versions: {0}")]
    Snapshot(rusqlite::Error),
    #[error("cannot read the registry's code fingerprints from function_code: {0}")]
    Code(rusqlite::Error),
}

impl RegistryError {
    /// Classifies a SQLite failure on `path`: a lock held too long gets its
    /// own message, the rest keep SQLite's.
    pub fn sqlite(path: &Path, source: rusqlite::Error) -> Self {
        match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                RegistryError::Locked(path.to_path_buf())
            }
            Some(rusqlite::ErrorCode::NotADatabase) => RegistryError::Foreign(path.to_path_buf()),
            _ => RegistryError::Sqlite {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// How [`open`] opens registry.db.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Classification and `snapshot`.
    ReadOnly,
    /// Writing proposals, the one table call_monitor writes there.
    ReadWrite,
}

/// How long registry access waits for `fn index` or another writer.
pub const REGISTRY_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens registry.db after checking it exists and is a fn_registry database
/// (a `functions` table with id, name, lang, domain, file_path). Never
/// creates the file.
pub fn open(path: &Path, access: Access) -> Result<Connection, RegistryError> {
    if !path.exists() {
        return Err(RegistryError::Missing(path.to_path_buf()));
    }
    let sqlite = |source| RegistryError::sqlite(path, source);
    let flags = match access {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    conn.busy_timeout(REGISTRY_BUSY_TIMEOUT).map_err(sqlite)?;
    let is_registry: bool = conn
        .query_row(
            "SELECT COUNT(*) = 5 FROM pragma_table_info('functions')
             WHERE name = 'id' OR name = 'name' OR name = 'lang' OR name = 'domain' OR name = 'file_path'",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?;
    if !is_registry {
        return Err(RegistryError::Foreign(path.to_path_buf()));
    }
    Ok(conn)
}

/// Every function id in registry.db, sorted (the dashboard's orphans).
pub fn function_ids(path: &Path) -> Result<Vec<String>, RegistryError> {
    let conn = open(path, Access::ReadOnly)?;
    let sqlite = |source| RegistryError::sqlite(path, source);
    let mut stmt = conn
        .prepare("SELECT id FROM functions ORDER BY id")
        .map_err(sqlite)?;
    let ids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite)?;
    ids.collect::<Result<_, _>>().map_err(sqlite)
}

/// Reads functions, apps and their links from registry.db.
pub fn read_catalog(path: &Path) -> Result<Catalog, RegistryError> {
    let conn = open(path, Access::ReadOnly)?;
    let sqlite = |source| RegistryError::sqlite(path, source);
    let mut catalog = Catalog::new(path.display().to_string());
    if let Some(root) = registry_root(path) {
        catalog.set_root(&root.to_string_lossy());
    }
    let mut stmt = conn
        .prepare("SELECT id, name, file_path FROM functions")
        .map_err(sqlite)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .map_err(sqlite)?;
    for row in rows {
        let (id, name, file_path) = row.map_err(sqlite)?;
        catalog.add_function(&id, name.as_deref(), file_path.as_deref());
    }
    let has_apps: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_schema WHERE name = 'app_functions'",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite)?;
    if has_apps {
        let mut stmt = conn
            .prepare("SELECT app_id, function_id FROM app_functions ORDER BY app_id, function_id")
            .map_err(sqlite)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sqlite)?;
        for row in rows {
            let (app, function) = row.map_err(sqlite)?;
            catalog.add_app_function(&app, &function);
        }
    }
    Ok(catalog)
}

/// The registry's directory: the one registry.db is in, absolute (the
/// functions' `file_path`s are relative to it).
pub fn registry_root(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path)
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

/// Adds to `catalog` the source fingerprints `snapshot` recorded in
/// operations.db (`function_code`); none before the first snapshot.
pub fn add_function_code(catalog: &mut Catalog, ops: &Connection) -> Result<(), RegistryError> {
    let mut read = || -> rusqlite::Result<()> {
        let mut stmt = ops.prepare("SELECT function_id, fingerprints FROM function_code")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (id, blob) = row?;
            catalog.add_code(&id, &Fingerprints::from_blob(&blob));
        }
        Ok(())
    };
    read().map_err(RegistryError::Code)
}

/// Without a registry: names from the function ids in operations.db's
/// `function_versions` (what the last `snapshot` recorded).
pub fn catalog_from_snapshot(conn: &Connection) -> Result<Catalog, RegistryError> {
    let read = || -> rusqlite::Result<Catalog> {
        let mut stmt = conn.prepare("SELECT DISTINCT function_id FROM function_versions")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut catalog = Catalog::new("function_versions");
        for id in ids {
            let id = id?;
            if split_function_id(&id).is_some() {
                catalog.add_function(&id, None, None);
            }
        }
        Ok(catalog)
    };
    read().map_err(RegistryError::Snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_registry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE functions (id TEXT PRIMARY KEY, name TEXT, lang TEXT, domain TEXT, version TEXT,
                                     file_path TEXT, content_hash TEXT, updated_at TEXT);
             CREATE TABLE app_functions (app_id TEXT, function_id TEXT);
             INSERT INTO functions (id, name, lang, domain, file_path) VALUES
               ('sqlite_open_go_infra', 'sqlite_open', 'go', 'infra', 'functions/go/infra/sqlite_open.go'),
               ('sqlite_open_py_infra', 'sqlite_open', 'py', 'infra', 'functions/py/infra/sqlite_open.py');
             INSERT INTO app_functions VALUES ('billing', 'sqlite_open_go_infra');",
        )
        .unwrap();
        // Every row and column read (lookups are tested with the catalog).
        let catalog = read_catalog(&path).unwrap();
        assert_eq!(catalog.len(), 2);
        assert_eq!(
            catalog.function_named("sqlite_open", &["py"]),
            Some("sqlite_open_py_infra")
        );
        assert_eq!(
            catalog.function_at("functions/go/infra/sqlite_open.go"),
            Some("sqlite_open_go_infra")
        );
        assert_eq!(catalog.app_functions("billing"), ["sqlite_open_go_infra"]);

        let foreign = dir.path().join("other.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            read_catalog(&foreign),
            Err(RegistryError::Foreign(_))
        ));
        assert!(matches!(
            read_catalog(&dir.path().join("none.db")),
            Err(RegistryError::Missing(_))
        ));
    }
}

//! What classification knows about the function registry (CONTRACT §5).
//!
//! A [`Catalog`] answers three questions: which function a file path is
//! (for `code_writes`), which function a name denotes (for
//! `heredoc_reinvention`), and which functions an app uses (to expand
//! `fn e2e`). It is read once from `--registry` (registry.db, opened
//! read-only: call_monitor never writes there except `proposals`) or, without
//! one, built from the function ids of the latest snapshot in
//! `function_versions` — ids alone give names, not paths or apps.
//!
//! # Lifecycle
//! Loaded when ingestion starts and again when the daemon receives SIGHUP;
//! classification only reads it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// Languages of the registry, as they appear in function ids.
pub const LANGS: &[&str] = &["py", "go", "ts", "rs", "sh"];

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Function name → ids carrying it (sorted, so the choice is stable).
    by_name: HashMap<String, BTreeSet<String>>,
    /// Registry `file_path` (as stored, relative or absolute) → id.
    by_path: HashMap<String, String>,
    /// App id → the functions it uses.
    apps: HashMap<String, Vec<String>>,
    /// Where it was read from, for logs.
    pub source: String,
}

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

/// A function id split into its CONTRACT §5 parts: `<name>_<lang>_<domain>`.
pub fn split_function_id(id: &str) -> Option<(&str, &str, &str)> {
    // The name may contain underscores, the domain may too: take the
    // right-most `_<lang>_` that leaves a non-empty name and domain.
    let bytes = id.as_bytes();
    (1..id.len()).rev().find_map(|at| {
        if bytes[at] != b'_' {
            return None;
        }
        let (name, rest) = (&id[..at], &id[at + 1..]);
        let (lang, domain) = rest.split_once('_')?;
        (!name.is_empty() && !domain.is_empty() && LANGS.contains(&lang))
            .then_some((name, lang, domain))
    })
}

impl Catalog {
    /// Reads functions, apps and their links from registry.db.
    pub fn load_registry(path: &Path) -> Result<Catalog, RegistryError> {
        let conn = open(path, Access::ReadOnly)?;
        let sqlite = |source| RegistryError::sqlite(path, source);
        let mut catalog = Catalog {
            source: path.display().to_string(),
            ..Catalog::default()
        };
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
            let name = name.or_else(|| split_function_id(&id).map(|(n, _, _)| n.to_string()));
            if let Some(name) = name {
                catalog.by_name.entry(name).or_default().insert(id.clone());
            }
            if let Some(file_path) = file_path.filter(|p| !p.is_empty()) {
                catalog
                    .by_path
                    .insert(file_path.trim_start_matches("./").to_string(), id);
            }
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
                .prepare(
                    "SELECT app_id, function_id FROM app_functions ORDER BY app_id, function_id",
                )
                .map_err(sqlite)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sqlite)?;
            for row in rows {
                let (app, function) = row.map_err(sqlite)?;
                catalog.apps.entry(app).or_default().push(function);
            }
        }
        Ok(catalog)
    }

    /// Names from the function ids in operations.db's `function_versions`.
    pub fn from_snapshot(conn: &Connection) -> rusqlite::Result<Catalog> {
        let mut stmt = conn.prepare("SELECT DISTINCT function_id FROM function_versions")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut catalog = Catalog {
            source: "function_versions".into(),
            ..Catalog::default()
        };
        for id in ids {
            let id = id?;
            if let Some((name, _, _)) = split_function_id(&id) {
                catalog
                    .by_name
                    .entry(name.to_string())
                    .or_default()
                    .insert(id.clone());
            }
        }
        Ok(catalog)
    }

    /// The registry function a name denotes. With several (same name in
    /// different languages or domains) the one whose language matches
    /// `lang_hint` wins, else the smallest id.
    pub fn function_named(&self, name: &str, lang_hint: &[&str]) -> Option<&str> {
        let ids = self.by_name.get(name)?;
        ids.iter()
            .find(|id| split_function_id(id).is_some_and(|(_, lang, _)| lang_hint.contains(&lang)))
            .or_else(|| ids.iter().next())
            .map(String::as_str)
    }

    /// The registry function stored at `path`: the registry's `file_path`
    /// equals it or is a suffix of it at a `/` (agents write absolute paths,
    /// registries store them relative to their root).
    pub fn function_at(&self, path: &str) -> Option<&str> {
        if self.by_path.is_empty() {
            return None;
        }
        if let Some(id) = self.by_path.get(path) {
            return Some(id);
        }
        path.match_indices('/')
            .find_map(|(at, _)| self.by_path.get(&path[at + 1..]))
            .map(String::as_str)
    }

    /// The functions `app` uses (empty when unknown).
    pub fn app_functions(&self, app: &str) -> &[String] {
        self.apps.get(app).map_or(&[], Vec::as_slice)
    }

    /// How many functions the catalog knows by name.
    pub fn len(&self) -> usize {
        self.by_name.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_function_ids() {
        assert_eq!(
            split_function_id("sqlite_open_go_infra"),
            Some(("sqlite_open", "go", "infra"))
        );
        assert_eq!(
            split_function_id("parse_py_log_py_data_etl"),
            Some(("parse_py_log", "py", "data_etl"))
        );
        assert_eq!(split_function_id("no_language_here"), None);
        assert_eq!(split_function_id("_py_x"), None);
    }

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
        let catalog = Catalog::load_registry(&path).unwrap();
        assert_eq!(
            catalog.function_named("sqlite_open", &["py"]),
            Some("sqlite_open_py_infra")
        );
        assert_eq!(
            catalog.function_named("sqlite_open", &[]),
            Some("sqlite_open_go_infra")
        );
        assert_eq!(
            catalog.function_at("/home/u/reg/functions/py/infra/sqlite_open.py"),
            Some("sqlite_open_py_infra")
        );
        assert_eq!(catalog.function_at("/home/u/other.py"), None);
        assert_eq!(catalog.app_functions("billing"), ["sqlite_open_go_infra"]);

        let foreign = dir.path().join("other.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            Catalog::load_registry(&foreign),
            Err(RegistryError::Foreign(_))
        ));
        assert!(matches!(
            Catalog::load_registry(&dir.path().join("none.db")),
            Err(RegistryError::Missing(_))
        ));
    }
}

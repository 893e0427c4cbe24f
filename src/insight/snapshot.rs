//! `snapshot`: the registry's function versions into `function_versions`.
//!
//! Each function of registry.db (`functions.id`, `version`, `content_hash`)
//! gets a row with source `index` when its version or content hash differs
//! from its latest `index` row — so running it after every `fn index`, or
//! every daemon interval, records each change once and otherwise nothing.
//! (`edit_hook` rows come from ingestion: a write of a registry file.)
//!
//! It also fingerprints each function's source (its `file_path`, relative
//! to the registry's directory) into `function_code`, for copy detection
//! ([`crate::contract::code`]): only hashes, never code. A source whose
//! SHA-256 is unchanged is not fingerprinted again; one that cannot be
//! read, or is not code, is counted and its previous fingerprints (if any)
//! kept; a function gone from the registry loses its row.
//!
//! The registry is opened read-only; a registry that is missing, locked
//! longer than its busy timeout, or not a fn_registry database is refused
//! with a one-line reason ([`RegistryError`]).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::contract::code::{Fingerprints, Lang};
use crate::contract::timefmt::SQL_NOW;
use crate::store::registry::{self, Access, RegistryError};

/// What a snapshot did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Functions in the registry.
    pub functions: usize,
    /// New `index` rows (new functions or changed versions).
    pub recorded: usize,
    pub unchanged: usize,
    /// Sources fingerprinted anew (new or changed files).
    pub fingerprinted: usize,
    /// Sources that could not be read or are not code.
    pub unreadable: usize,
    /// Fingerprints dropped with functions gone from the registry.
    pub code_removed: usize,
}

impl Snapshot {
    /// Whether the fingerprints copy detection reads have changed (the
    /// daemon then reloads its catalog).
    pub fn code_changed(&self) -> bool {
        self.fingerprinted > 0 || self.code_removed > 0
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "functions={} recorded={} unchanged={} fingerprinted={} unreadable={}",
            self.functions, self.recorded, self.unchanged, self.fingerprinted, self.unreadable
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot write function_versions: {0}")]
    Operations(#[from] rusqlite::Error),
}

type Version = (Option<String>, Option<String>);

/// A registry function as snapshot reads it.
struct Function {
    id: String,
    version: Version,
    file_path: Option<String>,
}

/// Records the registry at `registry_path` into operations.db.
pub fn run(registry_path: &Path, ops: &mut Connection) -> Result<Snapshot, SnapshotError> {
    let functions = read_registry(registry_path)?;
    let tx = ops.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let latest = latest_index_versions(&tx)?;
    let mut snapshot = Snapshot {
        functions: functions.len(),
        ..Snapshot::default()
    };
    {
        let mut insert = tx.prepare(&format!(
            "INSERT INTO function_versions (function_id, version, content_hash, source, seen_at)
             VALUES (?1, ?2, ?3, 'index', {SQL_NOW})"
        ))?;
        for f in &functions {
            if latest.get(&f.id) == Some(&f.version) {
                snapshot.unchanged += 1;
                continue;
            }
            insert.execute((&f.id, &f.version.0, &f.version.1))?;
            snapshot.recorded += 1;
        }
    }
    let root = registry::registry_root(registry_path);
    record_code(&tx, root.as_deref(), &functions, &mut snapshot)?;
    tx.commit()?;
    Ok(snapshot)
}

/// Fingerprints the sources that are new or changed into `function_code`.
fn record_code(
    tx: &Connection,
    root: Option<&Path>,
    functions: &[Function],
    snapshot: &mut Snapshot,
) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS snapshot_ids (id TEXT PRIMARY KEY);
         DELETE FROM snapshot_ids;",
    )?;
    let mut known = tx.prepare("INSERT OR IGNORE INTO snapshot_ids (id) VALUES (?1)")?;
    let mut stored =
        tx.prepare("SELECT content_sha256 FROM function_code WHERE function_id = ?1")?;
    let mut upsert = tx.prepare(&format!(
        "INSERT INTO function_code (function_id, content_sha256, fingerprints, seen_at)
         VALUES (?1, ?2, ?3, {SQL_NOW})
         ON CONFLICT (function_id) DO UPDATE SET content_sha256 = excluded.content_sha256,
             fingerprints = excluded.fingerprints, seen_at = excluded.seen_at"
    ))?;
    for f in functions {
        known.execute([&f.id])?;
        let source = f.file_path.as_deref().and_then(|p| read_source(root, p));
        let Some((text, lang)) = source else {
            snapshot.unreadable += 1;
            continue;
        };
        let sha = hex::encode(Sha256::digest(text.as_bytes()));
        let previous: Option<String> = stored.query_row([&f.id], |r| r.get(0)).optional()?;
        if previous.as_deref() == Some(sha.as_str()) {
            continue;
        }
        let code = Fingerprints::of(&text, lang);
        upsert.execute((&f.id, &sha, code.to_blob()))?;
        snapshot.fingerprinted += 1;
    }
    snapshot.code_removed = tx.execute(
        "DELETE FROM function_code WHERE function_id NOT IN (SELECT id FROM snapshot_ids)",
        [],
    )?;
    Ok(())
}

/// A function's source and language: `file_path` as stored (relative to
/// the registry's directory, or absolute); `None` when it cannot be read
/// as text or is not code.
fn read_source(root: Option<&Path>, file_path: &str) -> Option<(String, Lang)> {
    let lang = Lang::of_path(file_path)?;
    let relative = Path::new(file_path.trim_start_matches("./"));
    let path = match root {
        Some(root) if relative.is_relative() => root.join(relative),
        _ => relative.to_path_buf(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    Some((text, lang))
}

fn read_registry(path: &Path) -> Result<Vec<Function>, RegistryError> {
    let conn = registry::open(path, Access::ReadOnly)?;
    let sqlite = |e| RegistryError::sqlite(path, e);
    let mut stmt = conn
        .prepare(
            "SELECT id, CAST(version AS TEXT), CAST(content_hash AS TEXT), CAST(file_path AS TEXT)
             FROM functions ORDER BY id",
        )
        .map_err(sqlite)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Function {
                id: r.get(0)?,
                version: (r.get(1)?, r.get(2)?),
                file_path: r.get(3)?,
            })
        })
        .map_err(sqlite)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sqlite)
}

/// The latest `index` version of every function (by insertion order).
fn latest_index_versions(conn: &Connection) -> rusqlite::Result<HashMap<String, Version>> {
    let mut stmt = conn.prepare(
        "SELECT function_id, version, content_hash FROM function_versions
         WHERE source = 'index' ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))?;
    rows.collect()
}

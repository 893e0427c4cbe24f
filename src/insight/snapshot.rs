//! `snapshot`: the registry's function versions into `function_versions`.
//!
//! Each function of registry.db (`functions.id`, `version`, `content_hash`)
//! gets a row with source `index` when its version or content hash differs
//! from its latest `index` row — so running it after every `fn index`, or
//! every daemon interval, records each change once and otherwise nothing.
//! (`edit_hook` rows come from ingestion: a write of a registry file.)
//!
//! The registry is opened read-only; a registry that is missing, locked
//! longer than its busy timeout, or not a fn_registry database is refused
//! with a one-line reason ([`RegistryError`]).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;

use crate::store::registry::{self, Access, RegistryError};

/// What a snapshot did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Functions in the registry.
    pub functions: usize,
    /// New `index` rows (new functions or changed versions).
    pub recorded: usize,
    pub unchanged: usize,
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "functions={} recorded={} unchanged={}",
            self.functions, self.recorded, self.unchanged
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
             VALUES (?1, ?2, ?3, 'index', {})",
            crate::contract::timefmt::SQL_NOW
        ))?;
        for (id, version) in &functions {
            if latest.get(id) == Some(version) {
                snapshot.unchanged += 1;
                continue;
            }
            insert.execute((id, &version.0, &version.1))?;
            snapshot.recorded += 1;
        }
    }
    tx.commit()?;
    Ok(snapshot)
}

fn read_registry(path: &Path) -> Result<Vec<(String, Version)>, RegistryError> {
    let conn = registry::open(path, Access::ReadOnly)?;
    let sqlite = |e| RegistryError::sqlite(path, e);
    let mut stmt = conn
        .prepare("SELECT id, CAST(version AS TEXT), CAST(content_hash AS TEXT) FROM functions ORDER BY id")
        .map_err(sqlite)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
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

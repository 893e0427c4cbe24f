//! Proposals written back into the function registry (CONTRACT §5).
//!
//! `proposals` is the only table call_monitor writes in registry.db; it is
//! created, in the contract's shape, when missing. Every proposal carries a
//! `dedupe_key` naming what it is about (`new_pipeline:a>b>c`,
//! `new_function:<pattern_hash>`, `error_prone:<function_id>`…): a key
//! already present — whatever its status, so a proposal a maintainer
//! rejected is not raised again — adds nothing. Submitting the same
//! proposals twice therefore adds each once.
//!
//! # Concurrency
//! `fn index` and other tools may write registry.db at the same time: one
//! short transaction per submission, with the registry's busy timeout; a
//! lock held longer is reported as [`RegistryError::Locked`] and the next
//! pass tries again.

use std::path::Path;

use rusqlite::{params, Connection};
use serde_json::Value;

use crate::store::registry::{self, Access, RegistryError};

/// One proposal, as the registry stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    /// `new_pipeline`, `new_function`, `error_prone`, `untested`, `unused`.
    pub kind: &'static str,
    pub title: String,
    /// Why: the numbers that triggered it (stored as JSON text).
    pub evidence: Value,
    pub dedupe_key: String,
}

/// What a submission did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Submitted {
    pub added: usize,
    pub already_present: usize,
}

impl std::fmt::Display for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "proposals added={} already_present={}",
            self.added, self.already_present
        )
    }
}

const CREATE_PROPOSALS: &str = "CREATE TABLE IF NOT EXISTS proposals (
    id         INTEGER PRIMARY KEY,
    kind       TEXT,
    title      TEXT,
    evidence   TEXT,
    status     TEXT DEFAULT 'open',
    dedupe_key TEXT UNIQUE,
    created_at TEXT
)";

/// registry.db opened for writing proposals.
#[derive(Debug)]
pub struct Outbox {
    conn: Connection,
    path: std::path::PathBuf,
}

impl Outbox {
    /// Opens the registry at `path` (which must exist and be a fn_registry
    /// database) and creates `proposals` if it is missing.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let conn = registry::open(path, Access::ReadWrite)?;
        conn.execute_batch(CREATE_PROPOSALS)
            .map_err(|e| RegistryError::sqlite(path, e))?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Adds the proposals whose `dedupe_key` is not there yet, in one
    /// transaction.
    pub fn submit(&mut self, proposals: &[Proposal]) -> Result<Submitted, RegistryError> {
        let path = self.path.clone();
        let sqlite = |e| RegistryError::sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let mut submitted = Submitted::default();
        {
            // Not `ON CONFLICT`: a registry's own `proposals` may predate the
            // UNIQUE constraint, and this works either way.
            let mut insert = tx
                .prepare(&format!(
                    "INSERT INTO proposals (kind, title, evidence, status, dedupe_key, created_at)
                     SELECT ?1, ?2, ?3, 'open', ?4, {now}
                     WHERE NOT EXISTS (SELECT 1 FROM proposals WHERE dedupe_key = ?4)",
                    now = crate::contract::timefmt::SQL_NOW
                ))
                .map_err(sqlite)?;
            for p in proposals {
                let added = insert
                    .execute(params![
                        p.kind,
                        p.title,
                        p.evidence.to_string(),
                        p.dedupe_key
                    ])
                    .map_err(sqlite)?;
                if added == 1 {
                    submitted.added += 1;
                } else {
                    submitted.already_present += 1;
                }
            }
        }
        tx.commit().map_err(sqlite)?;
        Ok(submitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_the_table_and_adds_each_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE functions (id TEXT PRIMARY KEY, name TEXT, lang TEXT, domain TEXT,
                                         version TEXT, file_path TEXT, content_hash TEXT, updated_at TEXT)",
            )
            .unwrap();
        let proposal = |key: &str| Proposal {
            kind: "new_pipeline",
            title: format!("pipeline {key}"),
            evidence: serde_json::json!({"support": 3}),
            dedupe_key: key.to_string(),
        };
        let mut outbox = Outbox::open(&path).unwrap();
        let first = outbox
            .submit(&[proposal("new_pipeline:a>b"), proposal("new_pipeline:b>c")])
            .unwrap();
        assert_eq!(first.added, 2);
        let again = Outbox::open(&path)
            .unwrap()
            .submit(&[proposal("new_pipeline:a>b"), proposal("new_pipeline:c>d")])
            .unwrap();
        assert_eq!((again.added, again.already_present), (1, 1));
        let conn = Connection::open(&path).unwrap();
        let (count, status): (i64, String) = conn
            .query_row("SELECT COUNT(*), MIN(status) FROM proposals", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((count, status.as_str()), (3, "open"));
    }

    #[test]
    fn refuses_what_is_not_a_registry() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.db");
        assert!(matches!(
            Outbox::open(&missing),
            Err(RegistryError::Missing(_))
        ));
        assert!(!missing.exists(), "a missing registry is never created");
        let foreign = dir.path().join("other.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            Outbox::open(&foreign),
            Err(RegistryError::Foreign(_))
        ));
    }
}

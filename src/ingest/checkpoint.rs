//! A spool file's checkpoint: how far into it is committed, in
//! `spool_files`, keyed by the file's identity (not its path: a renamed
//! file continues from its checkpoint; see [`crate::spool::reader`]).
//!
//! # Invariant
//! The offset is written only by [`Checkpoint::save`] inside the
//! transaction that stores the rows of the lines before it, so after any
//! crash the file is read again from the last committed offset and every
//! line is applied once. It only ever points just past a complete line.

use rusqlite::{Connection, OptionalExtension, Transaction};

/// The checkpoint of one spool file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Checkpoint {
    /// The file's identity ([`crate::spool::reader::identify`]).
    key: String,
}

impl Checkpoint {
    pub(super) fn new(key: String) -> Self {
        Checkpoint { key }
    }

    /// The committed offset (0 for a file never read). Read again inside a
    /// write transaction, it tells whether another ingester moved it.
    pub(super) fn load(&self, conn: &Connection) -> rusqlite::Result<u64> {
        // Cached: it runs for every file of a replay, twice.
        conn.prepare_cached("SELECT offset FROM spool_files WHERE file_key = ?1")?
            .query_row([&self.key], |r| r.get::<_, i64>(0))
            .optional()
            .map(|offset| offset.unwrap_or(0).max(0) as u64)
    }

    /// Records `offset` (and the path the file had, for people reading the
    /// table) in `tx`, the transaction holding the rows up to it.
    pub(super) fn save(
        &self,
        tx: &Transaction<'_>,
        path: &str,
        offset: u64,
        now: &str,
    ) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT INTO spool_files (file_key, path, offset, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (file_key) DO UPDATE SET path = excluded.path, offset = excluded.offset,
                                                  updated_at = excluded.updated_at",
        )?
        .execute((&self.key, path, offset as i64, now))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Database, Missing};

    #[test]
    fn a_saved_offset_is_loaded_back_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Database::open(&dir.path().join("ops.db"), Missing::Create)
            .unwrap()
            .into_conn();
        let checkpoint = Checkpoint::new("dev:ino:hash".into());
        let other = Checkpoint::new("other".into());
        assert_eq!(checkpoint.load(&conn).unwrap(), 0);

        let tx = conn.transaction().unwrap();
        checkpoint.save(&tx, "a.jsonl", 120, "now").unwrap();
        drop(tx); // rolled back
        assert_eq!(checkpoint.load(&conn).unwrap(), 0);

        let tx = conn.transaction().unwrap();
        checkpoint.save(&tx, "a.jsonl", 120, "now").unwrap();
        checkpoint.save(&tx, "b.jsonl", 240, "now").unwrap();
        tx.commit().unwrap();
        assert_eq!(checkpoint.load(&conn).unwrap(), 240);
        assert_eq!(other.load(&conn).unwrap(), 0);
    }
}

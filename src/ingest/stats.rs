//! What an ingestion run counted, and how it can fail.

use std::io;

/// Counts of one run, as printed by `replay`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IngestStats {
    /// Complete lines read.
    pub events: u64,
    /// New envelopes stored.
    pub inserted: u64,
    /// Envelopes already stored before.
    pub duplicates: u64,
    /// Lines quarantined.
    pub quarantined: u64,
}

impl IngestStats {
    pub(super) fn add(&mut self, other: IngestStats) {
        self.events += other.events;
        self.inserted += other.inserted;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
    }

    /// What was counted after `before` was taken (counts only grow).
    pub fn since(&self, before: IngestStats) -> IngestStats {
        IngestStats {
            events: self.events - before.events,
            inserted: self.inserted - before.inserted,
            duplicates: self.duplicates - before.duplicates,
            quarantined: self.quarantined - before.quarantined,
        }
    }
}

impl std::fmt::Display for IngestStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "events={} inserted={} duplicates={} quarantined={}",
            self.events, self.inserted, self.duplicates, self.quarantined
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read spool file {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot quarantine a line of {path}: {source}")]
    Quarantine { path: String, source: io::Error },
    #[error("cannot store events from {path}: {source}")]
    Store {
        path: String,
        source: rusqlite::Error,
    },
}

impl IngestError {
    /// Whether storage as a whole is failing — the database full, locked
    /// past the busy timeout, read-only, corrupt or failing I/O, or the
    /// quarantine directory unwritable — rather than this file or its
    /// lines: every other file would fail the same way right now.
    pub fn is_storage_wide(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            IngestError::Read { .. } => false,
            IngestError::Quarantine { .. } => true,
            IngestError::Store { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(
                    DiskFull
                        | DatabaseBusy
                        | DatabaseLocked
                        | ReadOnly
                        | SystemIoFailure
                        | CannotOpen
                        | OutOfMemory
                        | DatabaseCorrupt
                        | NotADatabase
                )
            ),
        }
    }
}

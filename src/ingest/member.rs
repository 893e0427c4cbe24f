//! One file of a group of small files ([`super::group`]): opened, its
//! new lines read and prepared, until its group commits.

use std::io;
use std::path::{Path, PathBuf};

use super::batches::Prepared;
use super::group::FileOutcome;
use super::{FileProgress, IngestError, Opened};

/// One file of a group: opened, its new lines read and prepared.
pub(super) struct Member {
    pub(super) opened: Opened,
    pub(super) batches: Vec<Prepared>,
    /// The stash files of batches applied and released before their
    /// transaction commits ([`Member::release`]).
    pub(super) stashes: Vec<PathBuf>,
    /// Reading stopped on this error after `batches`; reported once they
    /// are committed.
    pub(super) read_failure: Option<io::Error>,
}

impl Member {
    pub(super) fn lines(&self) -> usize {
        self.batches
            .iter()
            .map(|b| b.lines.borrow_owner().len())
            .sum()
    }

    pub(super) fn bytes(&self) -> u64 {
        self.batches.last().map_or(0, |b| b.end) - self.opened.position.committed
    }

    /// Deletes what reading stashed, for batches that were not applied
    /// (or were, by a transaction that then failed).
    pub(super) fn discard(&self) {
        for batch in &self.batches {
            batch.discard();
        }
        for stash in &self.stashes {
            let _ = std::fs::remove_file(stash);
        }
    }

    /// Hands its applied batches to `spent`, keeping what a failed commit
    /// must still delete.
    pub(super) fn release(&mut self, spent: &mut dyn FnMut(Vec<Prepared>)) {
        let batches = std::mem::take(&mut self.batches);
        let stashes = batches.iter().flat_map(Prepared::stashes);
        self.stashes.extend(stashes.map(Path::to_path_buf));
        spent(batches);
    }

    /// Its outcome once its lines up to `committed` are committed: the
    /// read error that stopped it, if one did.
    pub(super) fn outcome(self, committed: u64) -> FileOutcome {
        let Opened {
            path, shown, file, ..
        } = self.opened;
        let result = match self.read_failure {
            Some(source) => Err(IngestError::Read {
                path: shown,
                source,
            }),
            None => Ok(FileProgress {
                file,
                committed: Some(committed),
            }),
        };
        FileOutcome { path, result }
    }
}

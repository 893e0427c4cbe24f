//! How much an ingestor takes in at once: the [`Workload`].

use rusqlite::Connection;

use super::{BATCH_BYTES, BATCH_LINES};

/// What an ingestor is for, which sets how much one transaction takes in
/// and how many pages the connection keeps.
///
/// Every commit writes the pages it dirtied to the WAL, and the hot pages
/// (the indexes every line touches, the rollups, the sessions) are dirtied
/// by every batch: the more batches to a commit, the fewer times they are
/// written; and a page cache smaller than what a transaction dirties
/// spills pages to the WAL mid-transaction and reads them back. Both cost
/// memory, which a one-shot command can spend and a resident daemon
/// should not (its RSS stays under 30 MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The daemon: up to [`LIVE_BATCHES`] batches ready at once to a
    /// transaction, the connection's default 8 MiB cache.
    Live,
    /// `replay` and `import-transcripts`: up to [`BULK_BATCHES`] to a
    /// transaction (small files gathered up to [`BULK_GROUP_LINES`] lines
    /// or [`BULK_GROUP_BYTES`]) and a [`BULK_CACHE_KIB`] page cache. On the
    /// representative spool this replays ~10 % faster than `Live`, in at
    /// most ~120 MB (BENCHMARKS.md, sessions 17–18).
    Bulk,
}

/// Batches a `Live` transaction takes in at most, when they are read ahead
/// and ready: four write the hot pages once instead of four times, while
/// the lines are still freed batch by batch (BENCHMARKS.md, replay in
/// 0.8.0).
pub(super) const LIVE_BATCHES: usize = 4;
/// Batches a `Bulk` transaction takes in at most.
const BULK_BATCHES: usize = 16;
/// Lines and bytes of small files gathered into one `Bulk` group at most.
/// A group is held in memory, parsed and recognised (~2 KB a line), while
/// it is applied and the next is gathered; a transaction takes in groups
/// until it holds [`BULK_BATCHES`] batches' worth of lines. Groups as large
/// as the transaction took a `replay` of hourly files to 350 MB (`Live`
/// gathers up to [`LIVE_BATCHES`] batches' worth, its transaction).
const BULK_GROUP_LINES: usize = 2 * BATCH_LINES;
const BULK_GROUP_BYTES: u64 = 8 * 1024 * 1024;
/// The page cache of a `Bulk` connection: a replay's transaction dirties
/// tens of MiB of pages.
const BULK_CACHE_KIB: u32 = 64 * 1024;

impl Workload {
    /// Sizes `conn`'s page cache (a `Live` one keeps the 8 MiB it was
    /// opened with).
    pub(super) fn configure(self, conn: &Connection) -> rusqlite::Result<()> {
        match self {
            Workload::Live => Ok(()),
            Workload::Bulk => conn.pragma_update(None, "cache_size", -i64::from(BULK_CACHE_KIB)),
        }
    }

    /// Batches one transaction takes in at most.
    pub(super) fn batches_per_transaction(self) -> usize {
        match self {
            Workload::Live => LIVE_BATCHES,
            Workload::Bulk => BULK_BATCHES,
        }
    }

    /// Lines of small files one transaction takes in at most, in groups
    /// ([`super::group`]).
    pub(super) fn transaction_lines(self) -> usize {
        self.batches_per_transaction() * BATCH_LINES
    }

    /// Lines and bytes of small files gathered into one group at most
    /// ([`super::group`]).
    pub(super) fn group_limits(self) -> (usize, u64) {
        match self {
            // Live gathers what one of its transactions takes in.
            Workload::Live => (self.transaction_lines(), LIVE_BATCHES as u64 * BATCH_BYTES),
            Workload::Bulk => (BULK_GROUP_LINES, BULK_GROUP_BYTES),
        }
    }
}

//! The ingestion engine shared by `replay` and `daemon`.
//!
//! [`Ingestor::ingest_file`] reads a spool file from its checkpoint and
//! commits it in batches, each in one `BEGIN IMMEDIATE` transaction — or,
//! when a backlog is read ahead, up to [`BATCHES_PER_TRANSACTION`] batches
//! that are ready in one (it never waits for a batch to fill a
//! transaction). A transaction holds, together:
//! - one `events` row per new envelope (its dedupe key; `events.rs` inserts
//!   them a chunk at a time),
//! - the rows classification derives from it ([`classify`]),
//! - a `quarantine` row per rejected line (its raw bytes already synced in
//!   `<spool>/quarantine/`),
//! - the file's new read offset in `spool_files`.
//!
//! # Invariants
//! - **Exactly once.** Rows and offset commit atomically, so after a crash
//!   the file is re-read from the last committed offset and every line is
//!   applied once. Redeliveries are dropped by the key of `events`
//!   (`events::dedupe_key`: a tool-use event's `session_id` + `tool_use_id` +
//!   `hook_event_name`, any other event's envelope id), so an event spooled
//!   twice, under its id or a new one, or a file replayed under another
//!   identity, is stored once.
//! - **Nothing dropped.** A line is either stored, recognised as a
//!   duplicate, or quarantined; the offset only moves past complete lines.
//! - **No raw text in the DB or logs.** Only envelope ids, keys, counts and
//!   rejection reasons (which never quote the line) are written or logged.
//!
//! # Concurrency
//! One `Ingestor` owns one connection and is used from one thread. For a
//! backlog it starts a reader thread that reads, parses and recognises one
//! batch ahead ([`prepare`]); that thread never sees the connection, and
//! only batches applied here count. Another
//! process (a second daemon, a `replay`) ingesting the same file at the same
//! time is safe: the offset is re-read inside the write transaction and a
//! batch that raced is discarded before it is applied.

pub mod classify;
mod events;
pub mod prepare;
pub mod recognise;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use tracing::{debug, warn};

use crate::envelope::Rejection;
use crate::tail::{self, LineContent, LineReader, RawLine};
use crate::{quarantine, timefmt};
use prepare::{Batches, Prepared};
pub use prepare::{BATCH_BYTES, BATCH_LINES};

/// A backlog from which a file is read ahead on a second thread
/// ([`prepare::read_ahead`]); smaller ones are prepared inline.
const READ_AHEAD_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// Batches one transaction takes in at most, when they are read ahead and
/// ready. Every commit writes the pages it dirtied to the WAL, and the hot
/// leaf pages of the per-function indexes are dirtied by every batch: four
/// batches to a commit write them once instead of four times, while the
/// lines are still freed batch by batch (BENCHMARKS.md, replay in 0.8.0).
const BATCHES_PER_TRANSACTION: usize = 4;

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
    fn add(&mut self, other: IngestStats) {
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

/// Where one file stands after [`Ingestor::ingest_file`].
pub struct FileProgress {
    /// The daemon's descriptor of the file (for [`crate::spool::retire`]).
    pub file: File,
    /// Committed offset; `None` while the file has no identity yet.
    pub committed: Option<u64>,
}

pub struct Ingestor {
    conn: Connection,
    classifier: classify::Classifier,
    quarantine_dir: PathBuf,
    totals: IngestStats,
}

impl Ingestor {
    /// An ingestor writing to `conn` (an opened, migrated operations.db),
    /// classifying with `recogniser` and quarantining into `quarantine_dir`.
    pub fn new(
        conn: Connection,
        recogniser: recognise::Recogniser,
        quarantine_dir: PathBuf,
    ) -> Self {
        // Statement journals stay in memory: a chunk of `events` rows whose
        // keys are scattered (sessions interleaved) touches more pages than
        // the 64 KiB SQLite keeps in memory by default, and spilling each to
        // a temporary file costs a write per page (BENCHMARKS.md, 0.9.0).
        // The ingester never sorts or builds temporary tables, so nothing
        // else of its grows with this.
        if let Err(error) = conn.pragma_update(None, "temp_store", "MEMORY") {
            warn!(%error, "statement journals will spill to temporary files");
        }
        Self {
            conn,
            classifier: classify::Classifier::new(recogniser),
            quarantine_dir,
            totals: IngestStats::default(),
        }
    }

    /// The database connection (to load a catalog from it).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Classifies with new rules or a new catalog from the next batch on.
    pub fn set_recogniser(&mut self, recogniser: recognise::Recogniser) {
        self.classifier.set_recogniser(recogniser);
    }

    /// Everything ingested by this ingestor so far.
    pub fn totals(&self) -> IngestStats {
        self.totals
    }

    /// Ingests the complete lines of `path` past its checkpoint. `stop` is
    /// polled between batches; `progress` receives bytes consumed.
    pub fn ingest_file(
        &mut self,
        path: &Path,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FileProgress, IngestError> {
        let shown = path.display().to_string();
        let read_err = |source| IngestError::Read {
            path: shown.clone(),
            source,
        };
        let file = tail::open(path).map_err(read_err)?;
        let Some(key) = tail::identify(&file).map_err(read_err)? else {
            return Ok(FileProgress {
                file,
                committed: None,
            });
        };
        let size = file.metadata().map_err(read_err)?.len();
        // `stored` is what spool_files holds; `committed` where reading
        // resumes. They differ only after a truncation.
        let stored = stored_offset(&self.conn, &key).map_err(|source| IngestError::Store {
            path: shown.clone(),
            source,
        })?;
        let mut committed = stored;
        if committed > size {
            warn!(file = %shown, committed, size, "spool file shrank below its checkpoint; reading it again from the start");
            committed = 0;
        }
        let reader = LineReader::new(
            file.try_clone().map_err(read_err)?,
            committed,
            &self.quarantine_dir,
        )
        .map_err(read_err)?;
        let mut position = Position { stored, committed };
        let recogniser = self.classifier.recogniser();
        let result = if size - committed >= READ_AHEAD_MIN_BYTES {
            prepare::read_ahead(reader, &recogniser, |batches| {
                self.commit_batches(path, &key, &mut position, batches, stop, progress)
            })
        } else {
            let mut batches = prepare::Inline {
                reader,
                recogniser: &recogniser,
            };
            self.commit_batches(path, &key, &mut position, &mut batches, stop, progress)
        };
        result?;
        Ok(FileProgress {
            file,
            committed: Some(position.committed),
        })
    }

    /// Commits the batches of `batches` until there are no more, `stop`
    /// says so, or another ingester moved the checkpoint.
    fn commit_batches(
        &mut self,
        path: &Path,
        key: &str,
        position: &mut Position,
        batches: &mut dyn Batches,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), IngestError> {
        let read_err = |source| IngestError::Read {
            path: path.display().to_string(),
            source,
        };
        while let Some(first) = batches.next().map_err(read_err)? {
            let Some(committed) =
                self.commit_transaction(path, key, position.stored, first, batches, stop)?
            else {
                // Another process got there first: continue from where it is.
                return Ok(());
            };
            progress(committed.end - position.committed);
            self.totals.add(committed.stats);
            *position = Position {
                stored: committed.end,
                committed: committed.end,
            };
            if let Some(source) = committed.read_failure {
                return Err(read_err(source));
            }
            if stop() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// One transaction: `first`, then the batches already read ahead, up to
    /// [`BATCHES_PER_TRANSACTION`] or until `stop` says so. `None` when
    /// another ingester moved the checkpoint (nothing applied). On failure
    /// it all rolls back, and the batch in hand is discarded.
    fn commit_transaction(
        &mut self,
        path: &Path,
        key: &str,
        stored: u64,
        first: Prepared,
        batches: &mut dyn Batches,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Committed>, IngestError> {
        let mut in_hand = Some(first);
        let result = self.apply_transaction(path, key, stored, &mut in_hand, batches, stop);
        if let Some(batch) = in_hand {
            // Not applied, or its transaction failed: reading it again
            // stashes its oversized lines again.
            batch.discard();
            batches.spent(batch);
        }
        if result.is_err() {
            // Rolled back: the classifier's cache may describe rows that no
            // longer exist.
            self.classifier.forget();
        }
        result
    }

    /// [`Self::commit_transaction`]'s work. A batch leaves `in_hand` once it
    /// is applied (its lines are then freed: if the transaction fails, the
    /// file is read again from the committed offset).
    fn apply_transaction(
        &mut self,
        path: &Path,
        key: &str,
        stored: u64,
        in_hand: &mut Option<Prepared>,
        batches: &mut dyn Batches,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Committed>, IngestError> {
        let shown = path.display().to_string();
        let store_err = |source| IngestError::Store {
            path: shown.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_err)?;
        // Another ingester may have committed this range meanwhile.
        let current = stored_offset(&tx, key).map_err(store_err)?;
        if current != stored {
            debug!(file = %shown, current, stored, "checkpoint moved under us; batch left to the other ingester");
            return Ok(None);
        }
        let now = Now::read();
        let mut committed = Committed {
            stats: IngestStats::default(),
            end: stored,
            batches: 0,
            read_failure: None,
        };
        while let Some(batch) = in_hand.as_mut() {
            let stats = batch.lines.with_dependent_mut(|raw, parsed| {
                apply_lines(
                    &tx,
                    &mut self.classifier,
                    &self.quarantine_dir,
                    &shown,
                    raw,
                    parsed,
                    &now,
                )
            })?;
            committed.stats.add(stats);
            committed.end = batch.end;
            committed.batches += 1;
            batches.spent(in_hand.take().expect("the batch just applied"));
            if committed.batches >= BATCHES_PER_TRANSACTION || stop() {
                break;
            }
            match batches.ready() {
                Ok(next) => *in_hand = next,
                // What is applied is committed; the error is reported after.
                Err(source) => committed.read_failure = Some(source),
            }
        }
        tx.execute(
            "INSERT INTO spool_files (file_key, path, offset, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (file_key) DO UPDATE SET path = excluded.path, offset = excluded.offset,
                                                  updated_at = excluded.updated_at",
            (key, &shown, committed.end as i64, &now.text),
        )
        .map_err(store_err)?;
        self.classifier.finish(&tx).map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        let stats = committed.stats;
        debug!(file = %shown, to = committed.end, batches = committed.batches, inserted = stats.inserted, duplicates = stats.duplicates, quarantined = stats.quarantined, "transaction committed");
        Ok(Some(committed))
    }
}

fn quarantine_line(
    quarantine_dir: &Path,
    tx: &Transaction<'_>,
    file: &str,
    line: &RawLine,
    rejection: &Rejection,
    now: &Now,
) -> Result<(), IngestError> {
    let q_err = |source| IngestError::Quarantine {
        path: file.to_string(),
        source,
    };
    let sha256 = match &line.content {
        LineContent::Bytes(bytes) => quarantine::store(quarantine_dir, bytes).map_err(q_err)?,
        LineContent::Oversized { sha256, stash } => {
            quarantine::adopt(quarantine_dir, stash, sha256).map_err(q_err)?;
            sha256.clone()
        }
    };
    warn!(file, offset = line.offset, length = line.len, reason = %rejection, "line quarantined");
    tx.execute(
            "INSERT INTO quarantine (file, offset, length, sha256, reason, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (file, line.offset as i64, line.len as i64, &sha256, rejection.to_string(), &now.text),
        )
        .map_err(|source| IngestError::Store { path: file.to_string(), source })?;
    Ok(())
}

/// The committed read offset of a file (0 for a file never read).
fn stored_offset(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT offset FROM spool_files WHERE file_key = ?1",
        [key],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|offset| offset.unwrap_or(0).max(0) as u64)
}

/// Stores, classifies or quarantines each line of a batch inside `tx`.
fn apply_lines(
    tx: &Transaction<'_>,
    classifier: &mut classify::Classifier,
    quarantine_dir: &Path,
    file: &str,
    raw: &[RawLine],
    parsed: &mut [prepare::Parsed<'_>],
    now: &Now,
) -> Result<IngestStats, IngestError> {
    let store_err = |source| IngestError::Store {
        path: file.to_string(),
        source,
    };
    let mut stats = IngestStats::default();
    let mut fresh = Vec::with_capacity(parsed.len());
    let mut ahead = classify::Ahead::default();
    let stored = events::store(tx, parsed, now.millis).map_err(store_err)?;
    // Where each fresh envelope is in the batch.
    let mut fresh_at = Vec::with_capacity(parsed.len());
    for (at, (line, parsed)) in raw.iter().zip(parsed.iter_mut()).enumerate() {
        stats.events += 1;
        match &parsed.envelope {
            Ok(env) => {
                if stored[at] {
                    fresh.push(env);
                    fresh_at.push(at);
                    ahead.plan.extend(parsed.planned.take());
                    stats.inserted += 1;
                } else {
                    stats.duplicates += 1;
                }
            }
            Err(rejection) => {
                quarantine_line(quarantine_dir, tx, file, line, rejection, now)?;
                stats.quarantined += 1;
            }
        }
    }
    // The plan ahead was made for every valid envelope of the batch.
    ahead.exact = stats.duplicates == 0;
    classifier
        .apply_batch(tx, &fresh, &mut ahead)
        .map_err(store_err)?;
    // What was worked out for each event goes back to its line, to be freed
    // with the batch on the reader thread that allocated it: freed here,
    // every string took the lock of that thread's allocator arena while the
    // reader allocated the next batch (BENCHMARKS.md, replay in 0.8.0).
    for (at, planned) in fresh_at.into_iter().zip(ahead.plan) {
        parsed[at].planned = Some(planned);
    }
    Ok(stats)
}

/// The batch's clock: `spool_files` and `quarantine` take the canonical
/// text, `events` milliseconds.
struct Now {
    text: String,
    millis: i64,
}

impl Now {
    fn read() -> Self {
        let now = chrono::Utc::now();
        Now {
            text: timefmt::format(now),
            millis: now.timestamp_millis(),
        }
    }
}

/// What one transaction committed.
struct Committed {
    stats: IngestStats,
    /// The offset just past its last line.
    end: u64,
    batches: usize,
    /// Reading the batch after its last failed; reported once it commits.
    read_failure: Option<io::Error>,
}

/// Where a file stands: the offset `spool_files` holds and the one reading
/// resumes from (they differ only after a truncation).
struct Position {
    stored: u64,
    committed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argkey::ArgsKey;
    use crate::db::{Database, Missing};
    use crate::registry::Catalog;
    use crate::rules::Rules;
    use recognise::Recogniser;

    /// Batches that are always ready ahead: every transaction takes in as
    /// many as it may (with a reader thread that depends on timing).
    struct AlwaysReady<'r>(prepare::Inline<'r>);

    impl Batches for AlwaysReady<'_> {
        fn next(&mut self) -> io::Result<Option<Prepared>> {
            self.0.next()
        }

        fn ready(&mut self) -> io::Result<Option<Prepared>> {
            self.0.next()
        }
    }

    fn line(i: usize) -> String {
        format!(
            r#"{{"v":1,"id":"e-{i}","ts":"2026-11-24T10:00:00.000Z","host":"h","event":{{"session_id":"s-{}","hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"t-{i}","command":"fn run a_py_x"}}}}"#,
            i / 100
        ) + "\n"
    }

    /// An ingestor on a fresh database, and a spool file of `lines` lines
    /// in `dir`.
    fn backlog(dir: &Path, lines: usize) -> (Ingestor, PathBuf, String) {
        let path = dir.join("backlog.jsonl");
        std::fs::write(&path, (0..lines).map(line).collect::<String>()).unwrap();
        let db = Database::open(&dir.join("ops.db"), Missing::Create).unwrap();
        let recogniser =
            Recogniser::new(Rules::builtin(), Catalog::default(), ArgsKey::ephemeral());
        let ingestor = Ingestor::new(db.into_conn(), recogniser, dir.join("q"));
        let key = tail::identify(&tail::open(&path).unwrap())
            .unwrap()
            .unwrap();
        (ingestor, path, key)
    }

    /// Commits `path` from `position` with every batch ready ahead; returns
    /// the bytes each transaction reported.
    fn commit_all_ready(
        ingestor: &mut Ingestor,
        path: &Path,
        key: &str,
        position: &mut Position,
    ) -> Result<Vec<u64>, IngestError> {
        let shared = ingestor.classifier.recogniser();
        let stash = path.with_extension("stash");
        let reader =
            LineReader::new(tail::open(path).unwrap(), position.committed, &stash).unwrap();
        let mut batches = AlwaysReady(prepare::Inline {
            reader,
            recogniser: &shared,
        });
        let mut commits = Vec::new();
        ingestor
            .commit_batches(path, key, position, &mut batches, &|| false, &mut |n| {
                commits.push(n)
            })
            .map(|()| commits)
    }

    /// A `fn run` event of tool use `t` in session `s`, at second `second`.
    fn phase(hook: &str, t: usize, second: usize) -> String {
        format!(
            r#"{{"v":1,"id":"{hook}-{t}","ts":"2026-11-24T10:00:{second:02}.000Z","host":"h","event":{{"session_id":"s","hook_event_name":"{hook}","tool_name":"Bash","tool_use_id":"t-{t}","command":"fn run a_py_x"}}}}"#
        ) + "\n"
    }

    /// Posts of Pres stored by an earlier batch, mixed with Posts without a
    /// Pre and Pre/Post pairs: every Post completes its Pre's row (no second
    /// row), the new rows are stored once, and the rollups and session
    /// tallies count each row once.
    #[test]
    fn posts_pair_with_rows_of_earlier_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (mut ingestor, _, _) = backlog(dir.path(), 1);
        let earlier = dir.path().join("earlier.jsonl");
        std::fs::write(
            &earlier,
            (0..40)
                .map(|t| phase("PreToolUse", t, 1))
                .collect::<String>(),
        )
        .unwrap();
        ingestor
            .ingest_file(&earlier, &|| false, &mut |_| {})
            .unwrap();
        // Posts of 20 stored Pres, 20 Posts without a Pre, 40 Pre/Post pairs.
        let mut later: String = (20..60).map(|t| phase("PostToolUse", t, 3)).collect();
        for t in 60..100 {
            later += &phase("PreToolUse", t, 2);
            later += &phase("PostToolUse", t, 4);
        }
        let later_path = dir.path().join("later.jsonl");
        std::fs::write(&later_path, later).unwrap();
        ingestor
            .ingest_file(&later_path, &|| false, &mut |_| {})
            .unwrap();

        let count = |sql| count(&ingestor, sql);
        assert_eq!(count("SELECT COUNT(*) FROM calls"), 100);
        assert_eq!(
            count("SELECT COUNT(*) FROM calls WHERE success IS NULL"),
            20
        );
        // Paired across batches: from the Pre's start, 2 s.
        assert_eq!(
            count("SELECT COUNT(*) FROM calls WHERE duration_ms = 2000"),
            60
        );
        assert_eq!(
            count("SELECT COUNT(*) FROM calls WHERE success = 1 AND duration_ms IS NULL"),
            20
        );
        assert_eq!(count("SELECT calls FROM call_totals"), 100);
        assert_eq!(count("SELECT finished FROM call_totals"), 80);
        assert_eq!(count("SELECT finished FROM session_calls"), 80);
        assert_eq!(count("SELECT n FROM row_counts WHERE tbl = 'calls'"), 100);
    }

    /// The ingester's statement journals never spill to temporary files
    /// (a chunk of `events` rows with scattered keys outgrows the default
    /// 64 KiB in memory).
    #[test]
    fn statement_journals_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (ingestor, _, _) = backlog(dir.path(), 1);
        // 2 = MEMORY.
        assert_eq!(count(&ingestor, "PRAGMA temp_store"), 2);
    }

    fn count(ingestor: &Ingestor, sql: &str) -> i64 {
        ingestor.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Batches read ahead are committed several to a transaction, each
    /// transaction with the offset past its last line: every line is stored
    /// once, and nothing is read again.
    #[test]
    fn transactions_take_in_the_batches_ready_and_commit_past_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let lines = BATCH_LINES * (BATCHES_PER_TRANSACTION + 1) + 7;
        let (mut ingestor, path, key) = backlog(dir.path(), lines);
        let size = std::fs::metadata(&path).unwrap().len();
        let mut position = Position {
            stored: 0,
            committed: 0,
        };
        let commits = commit_all_ready(&mut ingestor, &path, &key, &mut position).unwrap();

        // Two transactions: four batches, then the rest.
        assert_eq!(commits.len(), 2, "{commits:?}");
        assert_eq!(commits.iter().sum::<u64>(), size);
        assert_eq!(position.committed, size);
        let count = |sql| count(&ingestor, sql);
        assert_eq!(count("SELECT offset FROM spool_files"), size as i64);
        assert_eq!(count("SELECT COUNT(*) FROM events"), lines as i64);
        assert_eq!(count("SELECT COUNT(*) FROM calls"), lines as i64);
        // Health of every session, rolled-up calls: done for all batches.
        assert_eq!(
            count("SELECT COUNT(*) FROM sessions WHERE health_score IS NOT NULL"),
            lines.div_ceil(100) as i64
        );
        assert_eq!(count("SELECT SUM(calls) FROM call_totals"), lines as i64);
    }

    /// A line that cannot be stored in the third batch of a transaction
    /// rolls back all of it — the batches before it included, and the
    /// rollup deltas they left pending — so the retry stores every line,
    /// and counts every call, once.
    #[test]
    fn a_failure_late_in_a_transaction_rolls_back_all_its_batches() {
        let dir = tempfile::tempdir().unwrap();
        let lines = BATCH_LINES * BATCHES_PER_TRANSACTION;
        let (mut ingestor, path, key) = backlog(dir.path(), lines);
        let poisoned = BATCH_LINES * 2 + 5;
        ingestor
            .conn
            .execute_batch(&format!(
                "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.envelope_id = 'e-{poisoned}'
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
            ))
            .unwrap();
        let mut position = Position {
            stored: 0,
            committed: 0,
        };
        let failed = commit_all_ready(&mut ingestor, &path, &key, &mut position);
        assert!(
            matches!(failed, Err(IngestError::Store { .. })),
            "{failed:?}"
        );
        assert_eq!(position.committed, 0);
        assert_eq!(count(&ingestor, "SELECT COUNT(*) FROM events"), 0);

        ingestor.conn.execute_batch("DROP TRIGGER poison").unwrap();
        commit_all_ready(&mut ingestor, &path, &key, &mut position).unwrap();
        assert_eq!(
            count(&ingestor, "SELECT COUNT(*) FROM events"),
            lines as i64
        );
        assert_eq!(
            count(&ingestor, "SELECT SUM(calls) FROM call_totals"),
            lines as i64
        );
    }
}

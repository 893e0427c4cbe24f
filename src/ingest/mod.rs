//! Ingestion: spool lines into operations.db, exactly once — the engine
//! shared by `replay` and the daemon.
//!
//! [`Ingestor::ingest_file`] reads a spool file from its [`Checkpoint`] and
//! commits it in batches, each in one `BEGIN IMMEDIATE` transaction — or,
//! when a backlog is read ahead, as many batches that are ready as the
//! [`Workload`] allows in one (it never waits for a batch to fill a
//! transaction). [`Ingestor::ingest_files`] does the same for many files,
//! those with a small backlog several to a transaction ([`group`]). A
//! transaction holds, together:
//! - one `events` row per new envelope (its dedupe key: [`events`]),
//! - the rows recognition's facts imply ([`record`], planned by [`plan`],
//!   written by [`rows`] and [`sessions`], rolled up by [`rollups`]),
//! - a `quarantine` row per rejected line (its raw bytes already synced in
//!   `<spool>/quarantine/`),
//! - each file's new read offset ([`Checkpoint::save`]).
//!
//! # Invariants
//! - **Exactly once.** Rows and offset commit atomically, so after a crash
//!   the file is re-read from the last committed offset and every line is
//!   applied once. Redeliveries are dropped by the key of `events`
//!   (`events::dedupe_key`: a tool-use event's `session_id` + `tool_use_id` +
//!   `hook_event_name`, any other event's envelope id), so an event spooled
//!   twice, under its id or a new one, or a file replayed under another
//!   identity, is stored once. A prompt both the hook and a transcript saw
//!   is counted once ([`prompts`]).
//! - **Nothing dropped.** A line is either stored, recognised as a
//!   duplicate, or quarantined; the offset only moves past complete lines.
//! - **No raw text in the DB or logs.** Only envelope ids, keys, counts and
//!   rejection reasons (which never quote the line) are written or logged.
//!
//! # Concurrency
//! One `Ingestor` owns one connection and is used from one thread. For a
//! backlog it starts a reader thread that reads, parses, plans and
//! recognises one batch ahead ([`batches`]); that thread never sees the
//! connection, and only batches applied here count. Another process (a
//! second daemon, a `replay`) ingesting the same file at the same time is
//! safe: the checkpoint is re-read inside the write transaction and a batch
//! that raced is discarded before it is applied.

mod batches;
mod checkpoint;
mod echoes;
mod events;
mod group;
mod member;
mod native;
mod plan;
mod prompts;
mod record;
mod rollups;
mod row_sql;
mod rows;
mod sessions;
mod stats;
#[cfg(test)]
mod tests;
mod tool_rollups;
mod tools;
mod transcripts;
mod workload;
mod wrapper;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tracing::{debug, warn};

use crate::contract::{timefmt, Rejection};
use crate::spool::quarantine;
use crate::spool::reader::{self as spool_file, LineContent, LineReader, RawLine};
use crate::Recogniser;
use batches::{Batches, Prepared};
pub use batches::{BATCH_BYTES, BATCH_LINES};
use checkpoint::Checkpoint;
pub use group::FileOutcome;
pub use rollups::bucket as duration_bucket;
pub use stats::{IngestError, IngestStats};
use transcripts::TranscriptCounts;
pub use workload::Workload;

/// A backlog from which a file is read ahead on a second thread
/// ([`batches::read_ahead`]); smaller ones are prepared inline.
const READ_AHEAD_MIN_BYTES: u64 = 4 * 1024 * 1024;

/// Where one file stands after [`Ingestor::ingest_file`].
pub struct FileProgress {
    /// The daemon's descriptor of the file (for [`crate::spool::retire`]).
    pub file: File,
    /// Committed offset; `None` while the file has no identity yet.
    pub committed: Option<u64>,
}

pub struct Ingestor {
    conn: Connection,
    recorder: record::Recorder,
    quarantine_dir: PathBuf,
    totals: IngestStats,
    /// What the transcripts read so far held.
    transcript_counts: Arc<TranscriptCounts>,
    workload: Workload,
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Envelope lines: a spool file.
    Spool,
    /// A Claude Code transcript ([`transcripts`]); lines before `since`
    /// imply nothing, and the file has a checkpoint of its own for that
    /// `since` (so a later import without it still reads them).
    Transcript { since: Option<DateTime<Utc>> },
}

/// Longest transcript line held in memory: a transcript line holds a tool's
/// whole output (an image's base64, a 700 KB file) but only its reduced
/// events go further. Longer ones are quarantined like an oversized spool
/// line.
const MAX_TRANSCRIPT_LINE: usize = 64 * 1024 * 1024;

impl Ingestor {
    /// An ingestor writing to `conn` (an opened, migrated operations.db),
    /// classifying with `recogniser` and quarantining into `quarantine_dir`.
    pub fn new(conn: Connection, recogniser: Recogniser, quarantine_dir: PathBuf) -> Self {
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
            recorder: record::Recorder::new(recogniser),
            quarantine_dir,
            totals: IngestStats::default(),
            transcript_counts: Arc::default(),
            workload: Workload::Live,
        }
    }

    /// Sizes transactions and the page cache for `workload` (a new
    /// ingestor is [`Workload::Live`]).
    pub fn set_workload(&mut self, workload: Workload) -> rusqlite::Result<()> {
        workload.configure(&self.conn)?;
        self.workload = workload;
        Ok(())
    }

    /// Transcript lines read so far that implied no event, and tool uses
    /// read.
    pub fn transcript_counts(&self) -> (u64, u64) {
        let counts = &self.transcript_counts;
        (
            counts.skipped.load(Ordering::Relaxed),
            counts.tool_uses.load(Ordering::Relaxed),
        )
    }

    /// The database connection (to load a catalog from it).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Classifies with new rules or a new catalog from the next batch on.
    pub fn set_recogniser(&mut self, recogniser: Recogniser) {
        self.recorder.set_recogniser(recogniser);
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
        self.ingest_path(path, FileKind::Spool, stop, progress)
    }

    /// [`Self::ingest_file`] for a file of `kind`.
    fn ingest_path(
        &mut self,
        path: &Path,
        kind: FileKind,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FileProgress, IngestError> {
        match open(&self.conn, path, kind)? {
            Opening::Unidentified(file) => Ok(FileProgress {
                file,
                committed: None,
            }),
            Opening::Opened(opened) => self.ingest_opened(opened, stop, progress),
        }
    }

    /// [`Self::ingest_file`] once the file is open, in transactions of its
    /// own.
    fn ingest_opened(
        &mut self,
        opened: Opened,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FileProgress, IngestError> {
        let reader = reader(&opened, &self.quarantine_dir)?;
        let source = source_of(&opened, &self.transcript_counts);
        let Opened {
            path,
            file,
            checkpoint,
            mut position,
            size,
            ..
        } = opened;
        let recogniser = self.recorder.recogniser();
        let result = if size - position.committed >= READ_AHEAD_MIN_BYTES {
            batches::read_ahead(reader, source, &recogniser, |batches| {
                self.commit_batches(&path, &checkpoint, &mut position, batches, stop, progress)
            })
        } else {
            let mut batches = batches::Inline {
                reader,
                source,
                recogniser: &recogniser,
            };
            self.commit_batches(
                &path,
                &checkpoint,
                &mut position,
                &mut batches,
                stop,
                progress,
            )
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
        checkpoint: &Checkpoint,
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
                self.commit_transaction(path, checkpoint, position.stored, first, batches, stop)?
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
    /// the workload's limit or until `stop` says so. `None` when
    /// another ingester moved the checkpoint (nothing applied). On failure
    /// it all rolls back, and the batch in hand is discarded.
    fn commit_transaction(
        &mut self,
        path: &Path,
        checkpoint: &Checkpoint,
        stored: u64,
        first: Prepared,
        batches: &mut dyn Batches,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Committed>, IngestError> {
        let mut in_hand = Some(first);
        let result = self.apply_transaction(path, checkpoint, stored, &mut in_hand, batches, stop);
        if let Some(batch) = in_hand {
            // Not applied, or its transaction failed: reading it again
            // stashes its oversized lines again.
            batch.discard();
            batches.spent(batch);
        }
        if result.is_err() {
            // Rolled back: the recorder's cache may describe rows that no
            // longer exist.
            self.recorder.forget();
        }
        result
    }

    /// [`Self::commit_transaction`]'s work. A batch leaves `in_hand` once it
    /// is applied (its lines are then freed: if the transaction fails, the
    /// file is read again from the committed offset).
    fn apply_transaction(
        &mut self,
        path: &Path,
        checkpoint: &Checkpoint,
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
        let current = checkpoint.load(&tx).map_err(store_err)?;
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
                    &mut self.recorder,
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
            if committed.batches >= self.workload.batches_per_transaction() || stop() {
                break;
            }
            match batches.ready() {
                Ok(next) => *in_hand = next,
                // What is applied is committed; the error is reported after.
                Err(source) => committed.read_failure = Some(source),
            }
        }
        checkpoint
            .save(&tx, &shown, committed.end, &now.text)
            .map_err(store_err)?;
        self.recorder.finish(&tx).map_err(store_err)?;
        tx.commit().map_err(store_err)?;
        let stats = committed.stats;
        debug!(file = %shown, to = committed.end, batches = committed.batches, inserted = stats.inserted, duplicates = stats.duplicates, quarantined = stats.quarantined, "transaction committed");
        Ok(Some(committed))
    }
}

/// Opens `path` and finds where to resume reading it (its checkpoint
/// read through `conn`).
fn open(conn: &Connection, path: &Path, kind: FileKind) -> Result<Opening, IngestError> {
    let shown = path.display().to_string();
    let read_err = |source| IngestError::Read {
        path: shown.clone(),
        source,
    };
    let file = spool_file::open(path).map_err(read_err)?;
    let Some(identity) = spool_file::identify(&file).map_err(read_err)? else {
        return Ok(Opening::Unidentified(file));
    };
    let size = file.metadata().map_err(read_err)?.len();
    // `stored` is what spool_files holds; `committed` where reading
    // resumes. They differ only after a truncation.
    let checkpoint = Checkpoint::new(match kind {
        FileKind::Transcript { since: Some(since) } => {
            format!("{identity}@since={}", since.timestamp_millis())
        }
        _ => identity,
    });
    let stored = checkpoint.load(conn).map_err(|source| IngestError::Store {
        path: shown.clone(),
        source,
    })?;
    let mut committed = stored;
    if committed > size {
        warn!(file = %shown, committed, size, "spool file shrank below its checkpoint; reading it again from the start");
        committed = 0;
    }
    Ok(Opening::Opened(Opened {
        path: path.to_path_buf(),
        shown,
        file,
        checkpoint,
        position: Position { stored, committed },
        size,
        kind,
    }))
}

/// A reader of `opened` from where it resumes.
fn reader(opened: &Opened, quarantine_dir: &Path) -> Result<LineReader, IngestError> {
    let read_err = |source| IngestError::Read {
        path: opened.shown.clone(),
        source,
    };
    let file = opened.file.try_clone().map_err(read_err)?;
    let reader =
        LineReader::new(file, opened.position.committed, quarantine_dir).map_err(read_err)?;
    Ok(match opened.kind {
        FileKind::Spool => reader,
        FileKind::Transcript { .. } => reader.holding(MAX_TRANSCRIPT_LINE),
    })
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

/// Stores, classifies or quarantines each line of a batch inside `tx`.
fn apply_lines(
    tx: &Transaction<'_>,
    recorder: &mut record::Recorder,
    quarantine_dir: &Path,
    file: &str,
    raw: &[RawLine],
    parsed: &mut [batches::Parsed<'_>],
    now: &Now,
) -> Result<IngestStats, IngestError> {
    let store_err = |source| IngestError::Store {
        path: file.to_string(),
        source,
    };
    let mut stats = IngestStats::default();
    let mut fresh = Vec::with_capacity(parsed.len());
    let mut ahead = plan::Ahead::default();
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
    recorder
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

/// A spool file opened for ingestion, or one without an identity yet.
enum Opening {
    Unidentified(File),
    Opened(Opened),
}

/// A spool file, open, with where its reading resumes.
struct Opened {
    path: PathBuf,
    shown: String,
    file: File,
    checkpoint: Checkpoint,
    position: Position,
    size: u64,
    kind: FileKind,
}

/// How `opened`'s lines become envelope lines.
fn source_of(opened: &Opened, counts: &Arc<TranscriptCounts>) -> batches::Source {
    match opened.kind {
        FileKind::Spool => batches::Source::Spool,
        FileKind::Transcript { since } => batches::Source::Transcript(Box::new(
            transcripts::Envelopes::for_file(&opened.path, since, Arc::clone(counts)),
        )),
    }
}

/// Where a file stands: the offset `spool_files` holds and the one reading
/// resumes from (they differ only after a truncation).
struct Position {
    stored: u64,
    committed: u64,
}

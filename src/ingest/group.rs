//! Many small files, few transactions: [`Ingestor::ingest_files`].
//!
//! A spool is hourly files per host, each a few hundred lines. Committed
//! one by one, every file rewrites the hot pages (the indexes, rollups and
//! sessions every line touches) to the WAL again: 600 files of 400 lines
//! replayed 2.8× slower than the same lines in one file (BENCHMARKS.md,
//! issue 21). So files whose backlog is small are read first, in groups,
//! and committed together: a transaction takes in the groups gathered
//! next, up to the [`super::Workload`]'s lines, each file's batches freed
//! once applied (a group is held parsed: groups stay small, transactions
//! large). A file with a large backlog keeps transactions of its own
//! ([`Ingestor::ingest_file`], reading ahead on a second thread).
//!
//! # Invariants
//! - **Exactly once**, as for one file: each file's checkpoint is saved in
//!   the transaction holding its rows, and re-read inside it — a file that
//!   another ingester moved meanwhile is left out of the transaction.
//! - **A poisoned file holds up only itself.** If a transaction fails for
//!   one file's sake, it rolls back whole and every file of it (of every
//!   group it took in) is read and ingested again on its own, so only the
//!   failing one fails. A
//!   failure of storage as a whole ([`IngestError::is_storage_wide`]) is
//!   not retried file by file: every file would fail the same way.
//! - **Nothing is reported committed before it is.** A file's progress is
//!   handed out only after its group's commit, so the daemon never retires
//!   a file on the strength of rows that could still roll back.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tracing::debug;

use super::batches::{self, Batches, Prepared};
use super::member::Member;
use super::transcripts::TranscriptCounts;
use super::{
    apply_lines, open, reader, source_of, FileKind, FileProgress, IngestError, IngestStats,
    Ingestor, Now, Opened, Opening, READ_AHEAD_MIN_BYTES,
};
use crate::ingest::{BATCH_BYTES, BATCH_LINES};
use crate::Recogniser;

/// More files than this are gathered on a second thread while the database
/// thread commits; fewer (the daemon's live path: the hour's file, maybe
/// the last one) are gathered inline, without a thread or a connection.
const GATHER_AHEAD_MIN_FILES: usize = 4;

/// What one file's ingestion came to.
pub struct FileOutcome {
    pub path: PathBuf,
    pub result: Result<FileProgress, IngestError>,
}

/// What the gathering of files hands the database thread, file by file.
enum Item {
    /// Files with small backlogs, read and prepared, to commit together.
    Group(Vec<Member>),
    /// A file with a large backlog, for transactions of its own.
    Alone(Opened),
    /// A file with nothing to commit: its outcome.
    Done(FileOutcome),
}

/// Opens the files of `paths` in turn and reads the new lines of those with
/// a small backlog, gathering them into groups. It needs a connection only
/// to read checkpoints, handed to each call: the database thread's own, or
/// a read-only one on the thread that gathers ahead.
struct Gatherer<'p> {
    paths: std::slice::Iter<'p, PathBuf>,
    kind: FileKind,
    transcript_counts: Arc<TranscriptCounts>,
    recogniser: Arc<Recogniser>,
    quarantine_dir: PathBuf,
    group: Vec<Member>,
    /// Lines and bytes of `group`, kept as members join (summing the group
    /// at every file would be quadratic in a spool of tiny files).
    group_lines: usize,
    group_bytes: u64,
    /// Lines and bytes a group takes in at most ([`super::Workload`]; a
    /// transaction may take in several groups).
    limits: (usize, u64),
    /// Groups taken so far.
    taken: u32,
    queue: VecDeque<Item>,
    /// Batches the database thread committed, handed back to be freed on
    /// this thread (when it is not the database thread): freed between
    /// files, so no more than the group being gathered and the one being
    /// committed are held at once.
    spent: Option<mpsc::Receiver<Vec<Prepared>>>,
}

impl Gatherer<'_> {
    fn next_item(&mut self, conn: &Connection) -> Option<Item> {
        loop {
            if let Some(spent) = &self.spent {
                spent.try_iter().for_each(drop);
            }
            if let Some(item) = self.queue.pop_front() {
                return Some(item);
            }
            let Some(path) = self.paths.next() else {
                return self.take_group();
            };
            let opened = match open(conn, path, self.kind) {
                Ok(Opening::Opened(opened)) => opened,
                Ok(Opening::Unidentified(file)) => {
                    let progress = FileProgress {
                        file,
                        committed: None,
                    };
                    return Some(Item::Done(outcome(path, Ok(progress))));
                }
                Err(e) => return Some(Item::Done(outcome(path, Err(e)))),
            };
            if opened.size - opened.position.committed >= READ_AHEAD_MIN_BYTES {
                // Files keep their order: what is gathered commits first.
                let gathered = self.take_group();
                self.queue.extend(gathered);
                self.queue.push_back(Item::Alone(opened));
                continue;
            }
            let member = match self.read(opened) {
                Ok(member) => member,
                Err(e) => return Some(Item::Done(outcome(path, Err(e)))),
            };
            if member.batches.is_empty() {
                let committed = member.opened.position.committed;
                return Some(Item::Done(member.outcome(committed)));
            }
            self.group_lines += member.lines();
            self.group_bytes += member.bytes();
            self.group.push(member);
            let (lines, bytes) = self.limits_now();
            if self.group_lines >= lines || self.group_bytes >= bytes {
                return self.take_group();
            }
        }
    }

    /// The limits for the group being gathered. They start at one batch's
    /// worth and double with each group up to the workload's: the database
    /// thread waits while the first group is gathered (16 batches took a
    /// quarter of a second to read, parse and recognise: BENCHMARKS.md,
    /// session 17).
    fn limits_now(&self) -> (usize, u64) {
        let shift = self.taken.min(8);
        (
            self.limits.0.min(BATCH_LINES << shift),
            self.limits.1.min(BATCH_BYTES << shift),
        )
    }

    fn take_group(&mut self) -> Option<Item> {
        self.taken += 1;
        (self.group_lines, self.group_bytes) = (0, 0);
        (!self.group.is_empty()).then(|| Item::Group(std::mem::take(&mut self.group)))
    }

    /// Reads and prepares every complete line of a file with a small
    /// backlog.
    fn read(&self, opened: Opened) -> Result<Member, IngestError> {
        let mut inline = batches::Inline {
            reader: reader(&opened, &self.quarantine_dir)?,
            source: source_of(&opened, &self.transcript_counts),
            recogniser: &self.recogniser,
        };
        let mut member = Member {
            opened,
            batches: Vec::new(),
            stashes: Vec::new(),
            read_failure: None,
        };
        loop {
            match inline.next() {
                Ok(Some(batch)) => member.batches.push(batch),
                Ok(None) => break,
                Err(source) => {
                    member.read_failure = Some(source);
                    break;
                }
            }
        }
        Ok(member)
    }
}

impl Item {
    /// Deletes what reading stashed, for an item that will not be applied.
    fn discard(&self) {
        if let Item::Group(members) = self {
            for member in members {
                member.discard();
            }
        }
    }
}

impl Ingestor {
    /// Ingests the complete lines of every file of `paths` past its
    /// checkpoint, files with a small backlog several to a transaction
    /// (module docs). `stop` is polled between files and transactions;
    /// `progress` receives bytes consumed, once committed. One outcome per
    /// file attempted (not necessarily in order); none for the files after
    /// `stop` or after storage as a whole failed (they wait for the next
    /// attempt).
    pub fn ingest_files(
        &mut self,
        paths: &[PathBuf],
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Vec<FileOutcome> {
        self.ingest_kind(paths, FileKind::Spool, stop, progress)
    }

    /// [`Self::ingest_files`] for Claude Code transcripts: each line turned
    /// into the hook events it implies ([`super::transcripts`]).
    /// Lines before `since` imply nothing.
    pub fn ingest_transcripts(
        &mut self,
        paths: &[PathBuf],
        since: Option<DateTime<Utc>>,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Vec<FileOutcome> {
        self.ingest_kind(paths, FileKind::Transcript { since }, stop, progress)
    }

    fn ingest_kind(
        &mut self,
        paths: &[PathBuf],
        kind: FileKind,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Vec<FileOutcome> {
        let mut gatherer = Gatherer {
            paths: paths.iter(),
            kind,
            transcript_counts: Arc::clone(&self.transcript_counts),
            recogniser: self.recorder.recogniser(),
            quarantine_dir: self.quarantine_dir.clone(),
            group: Vec::new(),
            group_lines: 0,
            group_bytes: 0,
            limits: self.workload.group_limits(),
            taken: 0,
            queue: VecDeque::new(),
            spent: None,
        };
        let mut outcomes = Vec::with_capacity(paths.len());
        let ahead = (paths.len() > GATHER_AHEAD_MIN_FILES)
            .then(|| read_only_twin(&self.conn))
            .flatten();
        match ahead {
            None => {
                while !stop() {
                    let Some(item) = gatherer.next_item(&self.conn) else {
                        break;
                    };
                    let (go_on, _) =
                        self.take(item, stop, progress, &mut outcomes, &mut drop, &mut || None);
                    if !go_on {
                        break;
                    }
                }
            }
            Some(twin) => self.gather_ahead(gatherer, twin, stop, progress, &mut outcomes),
        }
        outcomes
    }

    /// [`Self::ingest_files`] with the files gathered on a second thread,
    /// one item ahead, while this one commits.
    fn gather_ahead(
        &mut self,
        mut gatherer: Gatherer<'_>,
        twin: Connection,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
        outcomes: &mut Vec<FileOutcome>,
    ) {
        let halt = AtomicBool::new(false);
        thread::scope(|scope| {
            let (send, receive) = mpsc::sync_channel::<Item>(0);
            // Committed batches go back to be freed where they were
            // allocated: freed here, they cost this thread 4 % of its
            // instructions, and each free of another thread's memory takes
            // that allocator arena's lock (BENCHMARKS.md, session 17).
            let (send_spent, spent) = mpsc::channel::<Vec<Prepared>>();
            gatherer.spent = Some(spent);
            let halt = &halt;
            scope.spawn(move || {
                while !halt.load(Ordering::Relaxed) {
                    let Some(item) = gatherer.next_item(&twin) else {
                        break;
                    };
                    if let Err(mpsc::SendError(item)) = send.send(item) {
                        item.discard();
                        break;
                    }
                }
                // The database thread's loop ends with this sender; then
                // the last groups it committed come back.
                drop(send);
                if let Some(spent) = gatherer.spent.take() {
                    spent.iter().for_each(drop);
                }
            });
            let mut spent = move |batches| {
                // The gatherer may be gone already (halted): then here.
                let _ = send_spent.send(batches);
            };
            // A transaction goes on with the groups gathered next, while
            // nothing asks it to stop.
            let mut more = || (!stop()).then(|| receive.recv().ok()).flatten();
            let mut pending: Option<Item> = None;
            while let Some(item) = pending.take().or_else(|| receive.recv().ok()) {
                if halt.load(Ordering::Relaxed) || stop() {
                    halt.store(true, Ordering::Relaxed);
                    item.discard();
                    continue; // drained until the gatherer sees the halt
                }
                let (go_on, next) =
                    self.take(item, stop, progress, outcomes, &mut spent, &mut more);
                pending = next;
                if !go_on {
                    halt.store(true, Ordering::Relaxed);
                }
            }
            drop(spent);
        });
    }

    /// Applies one gathered item — a group with the groups `more` hands
    /// over next, up to the workload's transaction ([`Self::apply_group`]).
    /// `false` when storage as a whole failed; the item `more` handed over
    /// that was not a group, to be taken next. Applied batches go to
    /// `spent`, to be freed.
    fn take(
        &mut self,
        item: Item,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
        outcomes: &mut Vec<FileOutcome>,
        spent: &mut dyn FnMut(Vec<Prepared>),
        more: &mut dyn FnMut() -> Option<Item>,
    ) -> (bool, Option<Item>) {
        match item {
            Item::Done(outcome) => outcomes.push(outcome),
            Item::Alone(opened) => {
                let path = opened.path.clone();
                let result = self.ingest_opened(opened, stop, progress);
                let storage_wide = matches!(&result, Err(e) if e.is_storage_wide());
                outcomes.push(outcome(&path, result));
                return (!storage_wide, None);
            }
            Item::Group(members) => {
                return self.commit_group(members, stop, progress, outcomes, spent, more)
            }
        }
        (true, None)
    }

    /// Commits `members` (and the groups `more` hands over next) in one
    /// transaction, or — when that fails for one file's sake — each of its
    /// files on its own. `false` when storage as a whole failed: nothing
    /// more can be stored now.
    fn commit_group(
        &mut self,
        mut members: Vec<Member>,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
        outcomes: &mut Vec<FileOutcome>,
        spent: &mut dyn FnMut(Vec<Prepared>),
        more: &mut dyn FnMut() -> Option<Item>,
    ) -> (bool, Option<Item>) {
        let (result, next) = self.apply_group(&mut members, spent, more);
        (
            self.settle_group(members, result, stop, progress, outcomes),
            next,
        )
    }

    /// What a group's transaction came to, file by file: progress and
    /// outcomes once committed; else each file ingested on its own.
    fn settle_group(
        &mut self,
        members: Vec<Member>,
        result: Result<Vec<Option<u64>>, IngestError>,
        stop: &dyn Fn() -> bool,
        progress: &mut dyn FnMut(u64),
        outcomes: &mut Vec<FileOutcome>,
    ) -> bool {
        match result {
            Ok(ends) => {
                for (member, end) in members.into_iter().zip(ends) {
                    let before = member.opened.position.committed;
                    let committed = end.unwrap_or(before);
                    progress(committed - before);
                    outcomes.push(member.outcome(committed));
                }
            }
            Err(e) => {
                // Rolled back: the recorder's cache may describe rows that
                // no longer exist, and the batches are read again.
                self.recorder.forget();
                for member in &members {
                    member.discard();
                }
                if e.is_storage_wide() {
                    // Every file would fail the same way: the first says
                    // why, the others wait for the next attempt.
                    outcomes.push(outcome(&members[0].opened.path, Err(e)));
                    return false;
                }
                for member in members {
                    let path = member.opened.path;
                    debug!(file = %path.display(), "group failed; its files ingested one by one");
                    let kind = member.opened.kind;
                    let result = self.ingest_path(&path, kind, stop, progress);
                    let storage_wide = matches!(&result, Err(e) if e.is_storage_wide());
                    outcomes.push(outcome(&path, result));
                    if storage_wide {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// One transaction over every member, and over the members of the
    /// groups `more` hands over next while the transaction holds fewer
    /// lines than the workload's ([`super::Workload`]): per file, the
    /// checkpoint checked, the rows applied (its batches then released to
    /// `spent`: only the group being applied and the one being gathered
    /// are held) and the new checkpoint saved. The new offset of each file,
    /// or `None` for one another ingester moved meanwhile; and the item
    /// `more` handed over that was not a group.
    fn apply_group(
        &mut self,
        members: &mut Vec<Member>,
        spent: &mut dyn FnMut(Vec<Prepared>),
        more: &mut dyn FnMut() -> Option<Item>,
    ) -> (Result<Vec<Option<u64>>, IngestError>, Option<Item>) {
        let mut next = None;
        let result = self.apply_groups(members, spent, &mut || match more() {
            Some(Item::Group(group)) => Some(group),
            other => {
                next = other;
                None
            }
        });
        (result, next)
    }

    fn apply_groups(
        &mut self,
        members: &mut Vec<Member>,
        spent: &mut dyn FnMut(Vec<Prepared>),
        more: &mut dyn FnMut() -> Option<Vec<Member>>,
    ) -> Result<Vec<Option<u64>>, IngestError> {
        let store_err = |path: &str| {
            let path = path.to_string();
            move |source| IngestError::Store { path, source }
        };
        let first = members[0].opened.shown.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store_err(&first))?;
        let now = Now::read();
        let mut ends = Vec::with_capacity(members.len());
        let mut stats = IngestStats::default();
        let mut lines = 0;
        let mut at = 0;
        loop {
            let Some(member) = members.get_mut(at) else {
                if lines >= self.workload.transaction_lines() {
                    break;
                }
                match more() {
                    Some(group) => {
                        members.extend(group);
                        continue;
                    }
                    None => break,
                }
            };
            at += 1;
            lines += member.lines();
            let Opened {
                shown,
                checkpoint,
                position,
                ..
            } = &member.opened;
            let current = checkpoint.load(&tx).map_err(store_err(shown))?;
            if current != position.stored {
                debug!(file = %shown, current, stored = position.stored, "checkpoint moved under us; file left to the other ingester");
                ends.push(None);
                continue;
            }
            let mut end = position.committed;
            for batch in &mut member.batches {
                let applied = batch.lines.with_dependent_mut(|raw, parsed| {
                    apply_lines(
                        &tx,
                        &mut self.recorder,
                        &self.quarantine_dir,
                        shown,
                        raw,
                        parsed,
                        &now,
                    )
                })?;
                stats.add(applied);
                end = batch.end;
            }
            checkpoint
                .save(&tx, shown, end, &now.text)
                .map_err(store_err(shown))?;
            ends.push(Some(end));
            member.release(spent);
        }
        self.recorder.finish(&tx).map_err(store_err(&first))?;
        tx.commit().map_err(store_err(&first))?;
        self.totals.add(stats);
        debug!(
            files = members.len(),
            inserted = stats.inserted,
            duplicates = stats.duplicates,
            quarantined = stats.quarantined,
            "group committed"
        );
        Ok(ends)
    }
}

fn outcome(path: &Path, result: Result<FileProgress, IngestError>) -> FileOutcome {
    FileOutcome {
        path: path.to_path_buf(),
        result,
    }
}

/// A read-only connection to the same database, for the gathering thread
/// to read checkpoints (WAL: it reads while this thread writes). `None`
/// for a database without a file (gathered inline then).
fn read_only_twin(conn: &Connection) -> Option<Connection> {
    let path = conn.path().filter(|p| !p.is_empty())?;
    let twin = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    twin.busy_timeout(std::time::Duration::from_secs(5)).ok()?;
    Some(twin)
}

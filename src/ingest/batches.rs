//! Batches: everything about a batch that needs no database — reading its
//! complete lines, parsing their envelopes, planning and recognising them.
//!
//! Replay spends about a fifth of its time here (BENCHMARKS.md), so for a
//! long backlog [`read_ahead`] does it on a second thread while the database
//! thread commits the previous batch; a few fresh lines are prepared inline
//! (a thread per daemon wake-up would cost more than it saves).
//!
//! # Lifecycle
//! [`read_ahead`] starts the reader thread and hands the caller one
//! [`Prepared`] batch at a time. The reader is at most one batch ahead: the
//! channel has no buffer, so it waits in `send` with the next batch while
//! the caller commits the current one. When the caller stops early (a
//! shutdown, a checkpoint moved by another ingester, an error), the reader
//! is told to halt, and the batch it may still hand over is discarded —
//! nothing was committed from it, so nothing is lost: the next pass reads
//! it again from the committed offset.
//!
//! # Concurrency
//! The reader thread owns the [`LineReader`] and shares only the immutable
//! [`Recogniser`]; the database connection never leaves the caller's
//! thread. A batch is only ever applied by the caller, in file order.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

use super::plan::{self, Planned};
use crate::contract::{self, Envelope, Rejection};
use crate::recognise::Recogniser;
use crate::spool::reader::{LineContent, LineReader, RawLine};

/// Lines per batch: what is read, parsed and freed at once, and what a
/// transaction holds unless batches read ahead are waiting (then up to
/// the [`super::Workload`]'s limit). Large enough to amortise the commit,
/// small enough that a shutdown never waits long for the batch in hand.
pub const BATCH_LINES: usize = 4096;
/// Bytes per batch, whichever limit comes first.
pub const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// One line, parsed, and what could be worked out for it ahead.
pub struct Parsed<'a> {
    pub envelope: Result<Envelope<'a>, Rejection>,
    /// Its plan and recognition ([`plan::work_ahead`]), for a valid
    /// envelope; once the batch is applied, what the database thread used
    /// of it, handed back to be freed with the batch.
    pub planned: Option<Planned>,
    /// Its keys for the `events` row and the echo and prompt checks,
    /// for a valid envelope.
    pub keys: super::events::Keys,
}

type ParsedLines<'a> = Vec<Parsed<'a>>;

self_cell::self_cell!(
    /// The raw lines of a batch and what parsing made of them (borrowing
    /// from the lines, so nothing is copied to cross threads).
    pub struct Lines {
        owner: Vec<RawLine>,
        #[covariant]
        dependent: ParsedLines,
    }
);

/// A batch ready for the database: its lines and the offset just past them.
pub struct Prepared {
    pub lines: Lines,
    pub end: u64,
}

impl Prepared {
    /// Deletes the stash files of oversized lines, for a batch that will not
    /// be applied: reading it again stashes them again.
    pub fn discard(&self) {
        for stash in self.stashes() {
            let _ = std::fs::remove_file(stash);
        }
    }

    /// The stash files of its oversized lines.
    pub fn stashes(&self) -> impl Iterator<Item = &std::path::Path> {
        self.lines
            .borrow_owner()
            .iter()
            .filter_map(|line| match &line.content {
                LineContent::Oversized { stash, .. } => Some(stash.as_path()),
                _ => None,
            })
    }
}

/// Where the database thread gets its batches from.
pub trait Batches {
    /// The next prepared batch; `None` at the end of the complete lines.
    fn next(&mut self) -> io::Result<Option<Prepared>>;

    /// The next batch if it is prepared already, without waiting for it
    /// (`None` otherwise, or at the end): a transaction takes in the
    /// batches read ahead, never waits for more. Inline batches are never
    /// ready ahead.
    fn ready(&mut self) -> io::Result<Option<Prepared>> {
        Ok(None)
    }

    /// Takes back a batch that was applied or discarded. Freeing a batch's
    /// lines and envelopes is a few percent of the work per line, so
    /// [`read_ahead`] does it on its own thread.
    fn spent(&mut self, batch: Prepared) {
        drop(batch);
    }
}

/// What kind of file the lines come from.
pub enum Source {
    /// A spool file: envelope lines (native-shape ones reduced here).
    Spool,
    /// A Claude Code transcript: each line turned into the envelopes of
    /// the hook events it implies ([`super::transcripts`]).
    Transcript(Box<super::transcripts::Envelopes>),
}

impl Source {
    /// The lines to parse, from the lines read: the same for a spool file
    /// (reduced in place), the implied events' envelopes for a transcript.
    fn prepare(&mut self, raw: &mut Vec<RawLine>) {
        match self {
            Source::Spool => reduce_native(raw),
            Source::Transcript(envelopes) => envelopes.convert(raw),
        }
    }
}

/// Batches read and prepared on the caller's thread, on demand.
pub struct Inline<'r> {
    pub reader: LineReader,
    pub source: Source,
    pub recogniser: &'r Recogniser,
}

impl Batches for Inline<'_> {
    fn next(&mut self) -> io::Result<Option<Prepared>> {
        next_batch(&mut self.reader, &mut self.source, self.recogniser)
    }
}

/// Batches prepared one ahead by [`read_ahead`]'s thread.
struct FromReader {
    prepared: mpsc::Receiver<io::Result<Option<Prepared>>>,
    spent: mpsc::Sender<Prepared>,
}

impl Batches for FromReader {
    fn next(&mut self) -> io::Result<Option<Prepared>> {
        // A closed channel means the reader ended after its last batch.
        self.prepared.recv().unwrap_or(Ok(None))
    }

    fn ready(&mut self) -> io::Result<Option<Prepared>> {
        // The channel has no buffer: a batch is ready when the reader waits
        // in `send` with it.
        self.prepared.try_recv().unwrap_or(Ok(None))
    }

    fn spent(&mut self, batch: Prepared) {
        // Once the reader has ended, the batch comes back in the error and
        // is freed here.
        let _ = self.spent.send(batch);
    }
}

/// Reads and prepares the next batch of `reader`; `None` at the end of its
/// complete lines.
fn next_batch(
    reader: &mut LineReader,
    source: &mut Source,
    recogniser: &Recogniser,
) -> io::Result<Option<Prepared>> {
    let mut raw = read_lines(reader)?;
    if raw.is_empty() {
        return Ok(None);
    }
    source.prepare(&mut raw);
    let lines = Lines::new(raw, |raw| parse(raw, recogniser));
    Ok(Some(Prepared {
        lines,
        end: reader.offset(),
    }))
}

/// Reduces the native-shape lines of a batch in place ([`super::native`]).
/// Offsets and lengths stay the file's; only what is parsed changes.
fn reduce_native(lines: &mut [RawLine]) {
    for line in lines {
        if let LineContent::Bytes(bytes) = &mut line.content {
            if let Some(reduced) = super::native::reduce_line(bytes) {
                *bytes = reduced;
            }
        }
    }
}

fn read_lines(reader: &mut LineReader) -> io::Result<Vec<RawLine>> {
    let mut lines = Vec::new();
    let mut bytes = 0;
    while lines.len() < BATCH_LINES && bytes < BATCH_BYTES {
        match reader.next_line()? {
            Some(line) => {
                bytes += line.len;
                lines.push(line);
            }
            None => break,
        }
    }
    Ok(lines)
}

fn parse<'a>(raw: &'a [RawLine], recogniser: &Recogniser) -> ParsedLines<'a> {
    let envelopes: Vec<_> = raw.iter().map(accept).collect();
    let valid: Vec<&Envelope<'_>> = envelopes.iter().filter_map(|e| e.as_ref().ok()).collect();
    let mut plan = plan::work_ahead(recogniser, &valid).into_iter();
    envelopes
        .into_iter()
        .map(|envelope| {
            let (planned, keys) = match &envelope {
                Ok(env) => (plan.next(), super::events::Keys::of(env)),
                Err(_) => (None, super::events::Keys::default()),
            };
            Parsed {
                envelope,
                planned,
                keys,
            }
        })
        .collect()
}

fn accept(line: &RawLine) -> Result<Envelope<'_>, Rejection> {
    match &line.content {
        LineContent::Bytes(bytes) => contract::parse(bytes),
        LineContent::Oversized { .. } => Err(Rejection::TooLong { len: line.len }),
    }
}

/// Runs `consume` with the prepared batches of `reader`, read and prepared
/// one batch ahead on another thread, which also frees the spent ones.
/// `consume` may stop before the batches run out; what was read ahead is
/// then discarded.
pub fn read_ahead<T>(
    reader: LineReader,
    source: Source,
    recogniser: &Recogniser,
    consume: impl FnOnce(&mut dyn Batches) -> T,
) -> T {
    let halt = AtomicBool::new(false);
    let result = thread::scope(|scope| {
        let (prepared, receive_prepared) = mpsc::sync_channel(0);
        let (spent, receive_spent) = mpsc::channel::<Prepared>();
        let halt = &halt;
        let (mut reader, mut source) = (reader, source);
        scope.spawn(move || {
            while !halt.load(Ordering::Acquire) {
                receive_spent.try_iter().for_each(drop);
                let next = next_batch(&mut reader, &mut source, recogniser);
                let more = matches!(next, Ok(Some(_)));
                if let Err(mpsc::SendError(unsent)) = prepared.send(next) {
                    if let Ok(Some(batch)) = unsent {
                        batch.discard();
                    }
                    break;
                }
                if !more {
                    break;
                }
            }
        });
        let mut from_reader = FromReader {
            prepared: receive_prepared,
            spent,
        };
        let result = consume(&mut from_reader);
        halt.store(true, Ordering::Release);
        for unused in from_reader.prepared.iter() {
            if let Ok(Some(batch)) = unused {
                batch.discard();
            }
        }
        result
    });
    give_back_memory();
    result
}

/// Returns the memory the reader thread's batches used to the system. glibc
/// gives that thread an arena of its own and keeps its freed pages: without
/// this, a daemon that caught up on a long backlog stayed ~14 MB larger while
/// idle (BENCHMARKS.md, daemon at idle).
fn give_back_memory() {
    // SAFETY: malloc_trim only releases free heap memory; it takes the
    // allocator's own locks and touches no live allocation.
    #[cfg(target_env = "gnu")]
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

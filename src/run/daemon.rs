//! `daemon`: tail the spool continuously into operations.db.
//!
//! # Lifecycle
//! 1. The caller has opened the database, loaded the recogniser (which
//!    checks or creates the spool directory) and holds a [`Control`]
//!    (the binary forwards signals to it: SIGTERM/SIGINT shut down,
//!    SIGHUP reloads).
//! 2. Start an inotify watcher on the spool (through `notify`). It is only a
//!    wake-up hint: every event, whatever its kind, just wakes the ingester.
//! 3. The ingestion thread runs *passes*: for every spool file, ingest its
//!    complete lines past the checkpoint ([`Ingestor`]) and delete it if the
//!    spool's deletion protocol allows ([`spool::retire`]). It runs a pass
//!    when woken, and at least every `rescan` interval, which catches
//!    whatever the watcher missed (queue overflow, events lost while the
//!    watcher was being set up, file systems without inotify). A pass that
//!    cannot *store* (database full, locked past the busy timeout,
//!    unwritable; quarantine directory full) stops early and the next one
//!    waits, backing off from 200 ms to 5 s; wake-ups do not shorten that
//!    wait (more spool lines do not make the database writable), shutdown
//!    does. The lines wait in the spool behind their checkpoint: nothing is
//!    lost. A file that cannot be *read* is logged and skipped; the others
//!    go on.
//! 4. [`Event::Reload`]: rules (`--rules`) and the registry catalog are
//!    loaded again before the next pass; if they do not load, the daemon
//!    says why and keeps classifying with the previous ones.
//! 5. Every `interval`, the insight thread runs an [`insight::Pass`]
//!    (snapshot, sequences and their proposals, patterns, telemetry
//!    proposals) on its own connection. A snapshot that changed the
//!    registry's source fingerprints sends a reload, so copy detection
//!    uses them from the next pass on.
//! 6. [`Event::Shutdown`]: the ingester finishes the batch in hand
//!    (committed with its offset) and stops reading, a running insight pass
//!    is interrupted (it is idempotent: the next start redoes it), and
//!    [`run`] returns the totals once both threads have ended.
//!
//! # Concurrency
//! Three threads: the caller's waits for the other two to end; the
//! ingestion thread owns the ingest connection; the insight thread owns a
//! second connection (WAL lets it read while ingestion writes; its own
//! writes are short). Events reach them through one subscription to the
//! [`Control`]: it raises the reload flag, wakes the ingester through its
//! wake-up channel (which the watcher shares), and interrupts the insight
//! connection; both threads check the control's shutdown flag.
//!
//! # Latency
//! A wake-up is followed by a short settle delay (so a burst of hooks lands
//! in one transaction), then a pass that commits everything complete. A lone
//! event is therefore committed within a few milliseconds of its hook; the
//! bound without a watcher is the rescan interval.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use rusqlite::InterruptHandle;
use tracing::{debug, info, warn};

use super::control::{Control, Event};
use super::sources::{load_recogniser, Sources};
use crate::contract::timefmt;
use crate::ingest::{FileOutcome, IngestError, IngestStats, Ingestor};
use crate::insight;
use crate::spool::{self, Retired};
use crate::store::{Database, Missing};

/// Daemon settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub spool: PathBuf,
    /// Longest wait between passes without a wake-up.
    pub rescan: Duration,
    /// How long a consumed file must be unmodified before it is deleted.
    pub quiet: Duration,
    /// Rules and registry, reloaded on SIGHUP.
    pub sources: Sources,
    /// operations.db, opened again by the insight thread.
    pub db: PathBuf,
    /// Time between insight passes.
    pub interval: Duration,
    /// What an insight pass does.
    pub insight: insight::Pass,
    /// A directory of Claude Code transcripts whose new lines are imported
    /// every `interval` (`import-transcripts`), if any.
    pub transcripts: Option<PathBuf>,
}

/// Wait after a wake-up so that a burst is ingested in one transaction.
const SETTLE: Duration = Duration::from_millis(5);

/// After a pass that could not store (database full, locked past the busy
/// timeout, unwritable; quarantine directory full), the next attempt waits
/// from `RETRY_MIN`, doubling with jitter up to `RETRY_MAX`; a clean pass
/// resets it. Nothing is lost meanwhile: uncommitted lines stay in the spool
/// behind their checkpoint, and hooks keep appending.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

fn retry_delays() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::new()
        .with_min_delay(RETRY_MIN)
        .with_max_delay(RETRY_MAX)
        .with_jitter()
        .without_max_times()
        .build()
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot start a daemon thread: {0}")]
    Thread(std::io::Error),
    #[error("the ingestion thread panicked")]
    IngestPanicked,
    #[error("the insight thread panicked")]
    InsightPanicked,
}

/// Runs until `control` is shut down; returns what was ingested.
///
/// The caller owns the lifecycle: the binary installs signal handlers
/// that send to `control` ([`super::forward_signals`]), a test sends
/// itself. The spool directory must exist (loading the recogniser made
/// sure of it).
pub fn run(
    ingestor: Ingestor,
    config: DaemonConfig,
    control: &Control,
) -> Result<IngestStats, DaemonError> {
    let (wake, woken) = mpsc::channel::<()>();
    let _watcher = watch(&config, wake.clone());
    let reload = Arc::new(AtomicBool::new(false));
    let interrupt: Arc<Mutex<Option<InterruptHandle>>> = Arc::default();
    // Each event fans out to the components it concerns: the ingester is
    // woken for both (its loop checks the reload flag and the shutdown),
    // a running insight pass is interrupted on shutdown (it is
    // idempotent: the next start redoes it).
    let _fan_out = control.subscribe({
        let (reload, interrupt) = (reload.clone(), interrupt.clone());
        move |event| {
            match event {
                Event::Reload => {
                    info!("reload: rules and registry are loaded again before the next pass");
                    reload.store(true, Ordering::SeqCst);
                }
                Event::Shutdown { cause } => {
                    info!(cause, "shutting down: finishing the batch in hand");
                    if let Some(handle) =
                        interrupt.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
                    {
                        handle.interrupt();
                    }
                }
            }
            let _ = wake.send(());
        }
    });
    info!(spool = %config.spool.display(), rescan = ?config.rescan, quiet = ?config.quiet, "daemon started");

    let ingest_thread = {
        let (control, config) = (control.clone(), config.clone());
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || ingest_loop(ingestor, &config, &control, &reload, &woken))
            .map_err(DaemonError::Thread)?
    };
    let insight_thread = {
        let (control, config) = (control.clone(), config.clone());
        std::thread::Builder::new()
            .name("insight".into())
            .spawn(move || insight_loop(&config, &control, &interrupt))
    };
    let insight_thread = match insight_thread {
        Ok(thread) => thread,
        Err(e) => {
            control.shutdown("a daemon thread could not start");
            let _ = ingest_thread.join();
            return Err(DaemonError::Thread(e));
        }
    };
    let totals = ingest_thread
        .join()
        .map_err(|_| DaemonError::IngestPanicked)?;
    insight_thread
        .join()
        .map_err(|_| DaemonError::InsightPanicked)?;
    info!(%totals, "daemon stopped");
    Ok(totals)
}

/// The watcher, or `None` (with a warning) when it cannot be set up: the
/// rescan interval then does all the work.
fn watch(config: &DaemonConfig, wake: Sender<()>) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        // inotify reports opens too, and every pass opens the spool files:
        // waking on those, the daemon would chase its own reads (measured:
        // 4 % CPU while idle). Any other event, error or overflow alike,
        // just means "look again".
        if let Ok(event) = &event {
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
        }
        let _ = wake.send(());
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "file watcher unavailable; relying on rescans");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&config.spool, RecursiveMode::NonRecursive) {
        warn!(error = %e, "cannot watch the spool; relying on rescans");
        return None;
    }
    Some(watcher)
}

/// The ingestion thread: passes until shutdown. It ends only when told to,
/// so it needs no wake-up channel of its own to close.
fn ingest_loop(
    mut ingestor: Ingestor,
    config: &DaemonConfig,
    control: &Control,
    reload: &AtomicBool,
    woken: &Receiver<()>,
) -> IngestStats {
    let mut retries = retry_delays();
    let mut transcripts_due = std::time::Instant::now();
    let mut state = StateNote::new(&config.spool);
    while !control.is_shut_down() {
        if reload.swap(false, Ordering::SeqCst) {
            reload_classification(&mut ingestor, &config.sources);
        }
        if let Some(dir) = &config.transcripts {
            if std::time::Instant::now() >= transcripts_due {
                import_transcripts(&mut ingestor, dir);
                transcripts_due = std::time::Instant::now() + config.interval;
            }
        }
        if let Err(e) = pass(&mut ingestor, config, control) {
            let delay = retries.next().unwrap_or(RETRY_MAX);
            warn!(error = %e, retry_in = ?delay, "cannot store; nothing is lost, backing off");
            state.backing_off(delay, &e.to_string());
            if !sleep_unless_stopped(delay, control, woken) {
                break;
            }
            continue;
        }
        retries = retry_delays();
        state.passed();
        match woken.recv_timeout(config.rescan) {
            Ok(()) => {
                std::thread::sleep(SETTLE);
                while woken.try_recv().is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    state.stopped();
    ingestor.totals()
}

/// The daemon's state as the dashboard reads it (`spool/daemon.json`):
/// written when it changes (backing off, recovered, stopped) and at most
/// every [`StateNote::HEARTBEAT`] otherwise, atomically (a temporary file
/// renamed). A failure to write it is only logged once: it is a courtesy.
struct StateNote {
    path: PathBuf,
    started_at: String,
    backing_off: bool,
    written: Option<std::time::Instant>,
    warned: bool,
}

impl StateNote {
    const HEARTBEAT: Duration = Duration::from_secs(15);

    fn new(spool: &std::path::Path) -> Self {
        StateNote {
            path: spool.join(spool::DAEMON_STATE),
            started_at: timefmt::now(),
            backing_off: false,
            written: None,
            warned: false,
        }
    }

    fn passed(&mut self) {
        let due = self.written.is_none_or(|w| w.elapsed() >= Self::HEARTBEAT);
        if self.backing_off || due {
            self.backing_off = false;
            self.write("ingesting", None, None);
        }
    }

    fn backing_off(&mut self, delay: Duration, error: &str) {
        self.backing_off = true;
        self.write("backing_off", Some(delay), Some(error));
    }

    fn stopped(&mut self) {
        self.write("stopped", None, None);
    }

    fn write(&mut self, state: &str, retry_in: Option<Duration>, error: Option<&str>) {
        let note = serde_json::json!({
            "state": state,
            "pid": std::process::id(),
            "started_at": self.started_at,
            "updated_at": timefmt::now(),
            "retry_in_ms": retry_in.map(|d| d.as_millis() as u64),
            "last_error": error,
        });
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        let written = tempfile::NamedTempFile::new_in(dir).and_then(|mut file| {
            std::io::Write::write_all(&mut file, note.to_string().as_bytes())?;
            file.persist(&self.path).map_err(|e| e.error)?;
            Ok(())
        });
        self.written = Some(std::time::Instant::now());
        if let Err(e) = written {
            if !std::mem::replace(&mut self.warned, true) {
                warn!(path = %self.path.display(), error = %e, "cannot write the daemon's state note");
            }
        }
    }
}

/// Imports the new lines of the transcripts under `dir`; what fails is
/// logged and tried again at the next interval (the lines wait behind
/// their checkpoints).
fn import_transcripts(ingestor: &mut Ingestor, dir: &std::path::Path) {
    let files = match super::transcripts::collect(&[dir.to_path_buf()], None) {
        Ok(files) => files,
        Err(e) => {
            warn!(error = %e, "cannot list the transcripts; will retry");
            return;
        }
    };
    match super::transcripts::run(ingestor, &files, None, false) {
        Ok(imported) if imported.stats.inserted > 0 => info!(%imported, "transcripts imported"),
        Ok(_) => debug!(files = files.len(), "no new transcript lines"),
        Err(e) => warn!(error = %e, "cannot import the transcripts; will retry"),
    }
}

/// Waits `delay`, ignoring wake-ups (the spool changing does not make the
/// database writable) but not shutdown; `false` if the daemon must stop.
fn sleep_unless_stopped(delay: Duration, control: &Control, woken: &Receiver<()>) -> bool {
    let deadline = std::time::Instant::now() + delay;
    // Shutdown raises the flag, then its listener sends a wake-up: checking
    // the flag after every return from the channel cannot miss it.
    while !control.is_shut_down() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(left) {
            return false;
        }
    }
    false
}

/// Runs an insight pass every `interval` on its own connection until
/// shutdown, which also interrupts a pass under way.
fn insight_loop(
    config: &DaemonConfig,
    control: &Control,
    interrupt: &Mutex<Option<InterruptHandle>>,
) {
    let mut db = match Database::open(&config.db, Missing::Refuse) {
        Ok(db) => db,
        Err(e) => {
            warn!(error = %e, "insight passes disabled: cannot open the database");
            return;
        }
    };
    *interrupt.lock().unwrap_or_else(|p| p.into_inner()) = Some(db.conn().get_interrupt_handle());
    info!(interval = ?config.interval, registry = ?config.insight.registry, "insight passes scheduled");
    while !control.wait_for_shutdown(config.interval) {
        let started = std::time::Instant::now();
        let span = tracing::info_span!("insight_pass");
        let _entered = span.enter();
        match config.insight.run(db.conn_mut()) {
            Ok(report) => {
                info!(%report, elapsed = ?started.elapsed(), "insight pass done");
                // New source fingerprints: copy detection should use them.
                if report.snapshot.is_some_and(|s| s.code_changed()) {
                    control.reload();
                }
            }
            Err(_) if control.is_shut_down() => {
                info!("insight pass interrupted by shutdown; the next start redoes it")
            }
            Err(e) => warn!(error = %e, "insight pass failed; the next interval tries again"),
        }
    }
}

fn reload_classification(ingestor: &mut Ingestor, sources: &Sources) {
    match load_recogniser(sources, ingestor.conn()) {
        Ok(recogniser) => {
            info!(rules = %recogniser.rules.source, registry = %recogniser.catalog.source,
                  functions = recogniser.catalog.len(), "rules and registry reloaded");
            ingestor.set_recogniser(recogniser);
        }
        Err(e) => warn!(error = %e, "reload failed; keeping the previous rules and registry"),
    }
}

/// One pass over the spool; an error means the caller should back off.
/// - Storage failing as a whole (database full or locked, …) stops the
///   pass at once: the other files would only fail the same way.
/// - A file whose lines cannot be stored (a constraint one of them breaks:
///   a bug) does not hold the others up; the pass goes on and fails at
///   the end, so that file is retried after the back-off, not on every
///   wake-up.
/// - A file that cannot be read is only logged; the next pass tries again.
fn pass(
    ingestor: &mut Ingestor,
    config: &DaemonConfig,
    control: &Control,
) -> Result<(), IngestError> {
    let mut stuck = None;
    let files = match spool::list_files(&config.spool) {
        Ok(files) => files,
        Err(e) => {
            warn!(spool = %config.spool.display(), error = %e, "cannot list the spool");
            return Ok(());
        }
    };
    // Files with a small backlog share transactions (`Ingestor::ingest_files`);
    // an outcome comes only once its rows are committed.
    let outcomes = ingestor.ingest_files(&files, &|| control.is_shut_down(), &mut |_| {});
    for FileOutcome { path, result } in outcomes {
        let progress = match result {
            Ok(progress) => progress,
            // Nothing was committed for the failed batch; the next attempt
            // starts again from the same checkpoint.
            Err(e) if e.is_storage_wide() => return Err(e),
            Err(e @ IngestError::Read { .. }) => {
                warn!(error = %e, "cannot read a spool file; will retry");
                continue;
            }
            Err(e) => {
                warn!(file = %path.display(), error = %e, "cannot store this file's lines; the other files go on");
                stuck.get_or_insert(e);
                continue;
            }
        };
        let Some(committed) = progress.committed else {
            continue;
        };
        match spool::retire(&path, &progress.file, committed, config.quiet) {
            Ok(Retired::Deleted) => debug!(file = %path.display(), "consumed spool file deleted"),
            Ok(Retired::Kept(reason)) => debug!(file = %path.display(), ?reason, "spool file kept"),
            Err(e) => warn!(file = %path.display(), error = %e, "cannot retire spool file"),
        }
    }
    stuck.map_or(Ok(()), Err)
}

//! `daemon`: tail the spool continuously into operations.db.
//!
//! # Lifecycle
//! 1. Check (or create) the spool directory; open the database.
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
//! 4. SIGHUP: rules (`--rules`) and the registry catalog are loaded again
//!    before the next pass; if they do not load, the daemon says why and
//!    keeps classifying with the previous ones.
//! 5. Every `interval`, the insight thread runs an [`insight::Pass`]
//!    (snapshot, sequences and their proposals, patterns, telemetry
//!    proposals) on its own connection.
//! 6. SIGTERM or SIGINT: the flag is raised, the ingester finishes the
//!    batch in hand (committed with its offset), stops reading, a running
//!    insight pass is interrupted (it is idempotent: the next start redoes
//!    it), and the process exits 0.
//!
//! # Concurrency
//! Three threads: the main one runs a current-thread tokio runtime that only
//! waits for signals; the ingestion thread owns the ingest connection; the
//! insight thread owns a second connection (WAL lets it read while ingestion
//! writes; its own writes are short). The ingester shares with the main
//! thread a [`Shutdown`] flag, a reload flag and a wake-up channel; the
//! insight thread a stop channel and its connection's interrupt handle.
//!
//! # Latency
//! A wake-up is followed by a short settle delay (so a burst of hooks lands
//! in one transaction), then a pass that commits everything complete. A lone
//! event is therefore committed within a few milliseconds of its hook; the
//! bound without a watcher is the rescan interval.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tracing::{debug, info, warn};

use rusqlite::InterruptHandle;

use crate::db::{Database, Missing};
use crate::ingest::recognise::{Recogniser, Sources};
use crate::ingest::{IngestError, Ingestor};
use crate::insight;
use crate::shutdown::Shutdown;
use crate::spool::{self, Retired, SpoolError};

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
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("cannot start the signal handler: {0}")]
    Runtime(std::io::Error),
    #[error("the ingestion thread panicked")]
    IngestPanicked,
    #[error("the insight thread panicked")]
    InsightPanicked,
}

/// Runs until SIGTERM/SIGINT.
pub fn run(ingestor: Ingestor, config: DaemonConfig) -> Result<(), DaemonError> {
    // Signals first: from "daemon started" on, SIGTERM is a clean stop,
    // never the default action killing the process mid-batch.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let signals = {
        let _context = runtime.enter();
        Signals::listen().map_err(DaemonError::Runtime)?
    };
    spool::ensure_dir(&config.spool)?;
    let shutdown = Shutdown::new();
    let (wake, woken) = mpsc::channel::<()>();
    let _watcher = watch(&config, wake.clone());
    info!(spool = %config.spool.display(), rescan = ?config.rescan, quiet = ?config.quiet, "daemon started");

    let reload = Arc::new(AtomicBool::new(false));
    let ingest_thread = {
        let shutdown = shutdown.clone();
        let config = config.clone();
        let reload = reload.clone();
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || ingest_loop(ingestor, &config, &shutdown, &reload, &woken))
            .map_err(DaemonError::Runtime)?
    };

    // Dropping `stop_insight` wakes the insight thread for good.
    let (stop_insight, insight_stopped) = mpsc::channel::<()>();
    let interrupt: Arc<Mutex<Option<InterruptHandle>>> = Arc::default();
    let insight_thread = {
        let config = config.clone();
        let interrupt = interrupt.clone();
        std::thread::Builder::new()
            .name("insight".into())
            .spawn(move || insight_loop(&config, &insight_stopped, &interrupt))
            .map_err(DaemonError::Runtime)?
    };

    let signal = runtime.block_on(signals.wait_for_stop(|| {
        info!("SIGHUP: reloading rules and registry before the next pass");
        reload.store(true, Ordering::SeqCst);
        let _ = wake.send(());
    }));
    info!(signal, "shutting down: finishing the batch in hand");
    shutdown.trigger();
    let _ = wake.send(());
    drop(stop_insight);
    if let Some(handle) = interrupt.lock().expect("not poisoned").as_ref() {
        handle.interrupt();
    }
    let totals = ingest_thread
        .join()
        .map_err(|_| DaemonError::IngestPanicked)?;
    insight_thread
        .join()
        .map_err(|_| DaemonError::InsightPanicked)?;
    info!(%totals, "daemon stopped");
    Ok(())
}

/// The daemon's signal handlers, installed (from within the runtime) as
/// soon as they are created.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for SIGTERM or SIGINT, calling `on_hangup` for every SIGHUP.
    async fn wait_for_stop(mut self, on_hangup: impl Fn()) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => on_hangup(),
            }
        }
    }
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

fn ingest_loop(
    mut ingestor: Ingestor,
    config: &DaemonConfig,
    shutdown: &Shutdown,
    reload: &AtomicBool,
    woken: &Receiver<()>,
) -> crate::ingest::IngestStats {
    let mut retries = retry_delays();
    while !shutdown.is_triggered() {
        if reload.swap(false, Ordering::SeqCst) {
            reload_classification(&mut ingestor, &config.sources);
        }
        if let Err(e) = pass(&mut ingestor, config, shutdown) {
            let delay = retries.next().unwrap_or(RETRY_MAX);
            warn!(error = %e, retry_in = ?delay, "cannot store; nothing is lost, backing off");
            if !sleep_unless_stopped(delay, shutdown, woken) {
                break;
            }
            continue;
        }
        retries = retry_delays();
        match woken.recv_timeout(config.rescan) {
            Ok(()) => {
                std::thread::sleep(SETTLE);
                while woken.try_recv().is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    ingestor.totals()
}

/// Waits `delay`, ignoring wake-ups (the spool changing does not make the
/// database writable) but not shutdown; `false` if the daemon must stop.
fn sleep_unless_stopped(delay: Duration, shutdown: &Shutdown, woken: &Receiver<()>) -> bool {
    let deadline = std::time::Instant::now() + delay;
    // Shutdown raises the flag, then sends a wake-up: checking the flag
    // after every return from the channel cannot miss it.
    while !shutdown.is_triggered() {
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
/// `stopped` disconnects.
fn insight_loop(
    config: &DaemonConfig,
    stopped: &Receiver<()>,
    interrupt: &Mutex<Option<InterruptHandle>>,
) {
    let mut db = match Database::open(&config.db, Missing::Refuse) {
        Ok(db) => db,
        Err(e) => {
            warn!(error = %e, "insight passes disabled: cannot open the database");
            return;
        }
    };
    *interrupt.lock().expect("not poisoned") = Some(db.conn().get_interrupt_handle());
    info!(interval = ?config.interval, registry = ?config.insight.registry, "insight passes scheduled");
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(config.interval) {
        let started = std::time::Instant::now();
        let span = tracing::info_span!("insight_pass");
        let _entered = span.enter();
        match config.insight.run(db.conn_mut()) {
            Ok(report) => info!(%report, elapsed = ?started.elapsed(), "insight pass done"),
            Err(_) if matches!(stopped.try_recv(), Err(TryRecvError::Disconnected)) => {
                info!("insight pass interrupted by shutdown; the next start redoes it")
            }
            Err(e) => warn!(error = %e, "insight pass failed; the next interval tries again"),
        }
    }
}

fn reload_classification(ingestor: &mut Ingestor, sources: &Sources) {
    match Recogniser::load(sources, ingestor.conn()) {
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
    shutdown: &Shutdown,
) -> Result<(), IngestError> {
    let mut stuck = None;
    let files = match spool::list_files(&config.spool) {
        Ok(files) => files,
        Err(e) => {
            warn!(spool = %config.spool.display(), error = %e, "cannot list the spool");
            return Ok(());
        }
    };
    for path in files {
        if shutdown.is_triggered() {
            break;
        }
        let progress = match ingestor.ingest_file(&path, &|| shutdown.is_triggered(), &mut |_| {}) {
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

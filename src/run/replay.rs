//! `replay PATH...`: ingest spool files once, through the daemon's engine.
//!
//! Paths may be files or directories (their `*.jsonl` files). Replay never
//! deletes what it reads, and it is idempotent: checkpoints skip what was
//! already read from the same file, and the dedupe keys drop envelopes
//! already stored from elsewhere. A progress bar (bytes) is drawn on stderr
//! when it is a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::warn;

use crate::ingest::{FileOutcome, IngestError, IngestStats, Ingestor};
use crate::spool;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot replay {path}: {source}")]
    Path {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// The files named by `paths`, directories expanded, in order.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReplayError> {
    let mut files = Vec::new();
    for path in paths {
        let err = |source| ReplayError::Path {
            path: path.display().to_string(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(err)?;
        if meta.is_dir() {
            files.extend(spool::list_files(path).map_err(err)?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Replays `files` into the ingestor; returns this run's counts.
pub fn run(ingestor: &mut Ingestor, files: &[PathBuf]) -> Result<IngestStats, ReplayError> {
    let bar = progress_bar(files, "spool files");
    let before = ingestor.totals();
    // Small files share transactions; every file is attempted, and the
    // first failure is reported once the others are in.
    let outcomes = ingestor.ingest_files(files, &|| false, &mut |bytes| bar.inc(bytes));
    bar.finish_and_clear();
    match first_failure(outcomes) {
        Some(e) => Err(e.into()),
        None => Ok(ingestor.totals().since(before)),
    }
}

/// Each failed file of `outcomes` logged; the first failure, to report
/// once every file was attempted.
pub(super) fn first_failure(outcomes: Vec<FileOutcome>) -> Option<IngestError> {
    let mut first = None;
    for outcome in outcomes {
        if let Err(e) = outcome.result {
            warn!(file = %outcome.path.display(), error = %e, "file not (wholly) ingested");
            first.get_or_insert(e);
        }
    }
    first
}

/// A progress bar over the bytes of `files`, on stderr when it is a
/// terminal (hidden otherwise), saying `what` is read.
pub(super) fn progress_bar(files: &[PathBuf], what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let total = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

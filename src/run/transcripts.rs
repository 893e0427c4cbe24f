//! `import-transcripts [PATH...]`: weeks of history on day one, from the
//! transcripts Claude Code keeps (`~/.claude/projects/<project>/*.jsonl`,
//! subagents under `<session>/subagents/`), through the same engine as
//! the hook's lines ([`Ingestor::ingest_transcripts`]).
//!
//! Idempotent: each transcript file has a checkpoint, as a spool file
//! does, and a tool-use event is a duplicate of the same event from a hook
//! or an earlier import (its key is the session, tool use and event). A
//! torn last line (a session still running) is left for the next import.

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::capture::transcript::Converter;
use crate::ingest::{IngestError, IngestStats, Ingestor};

#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    #[error("cannot read transcripts under {path}: {source}")]
    Walk {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Copy, Default)]
pub struct Imported {
    pub files: usize,
    pub tool_uses: u64,
    pub skipped: u64,
    pub stats: IngestStats,
    pub dry_run: bool,
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "files={} tool_uses={} inserted={} duplicates={} skipped={} quarantined={}{}",
            self.files,
            self.tool_uses,
            self.stats.inserted,
            self.stats.duplicates,
            self.skipped,
            self.stats.quarantined,
            if self.dry_run { " (dry run)" } else { "" }
        )
    }
}

/// The transcript files under `paths` (files as given; directories walked
/// for `*.jsonl`, subagent files included), modified at or after `since`
/// (a file last written before it holds no line after it: Claude Code
/// appends in time order).
pub fn collect(
    paths: &[PathBuf],
    since: Option<DateTime<Utc>>,
) -> Result<Vec<PathBuf>, TranscriptError> {
    let mut files = Vec::new();
    for path in paths {
        walk(path, &mut files).map_err(|source| TranscriptError::Walk {
            path: path.display().to_string(),
            source,
        })?;
    }
    if let Some(since) = since.map(SystemTime::from) {
        files.retain(|f| {
            std::fs::metadata(f)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified >= since)
        });
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_file() {
        files.push(path.to_path_buf());
    } else if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let child = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(&child, files)?;
            } else if kind.is_file() && child.extension().is_some_and(|e| e == "jsonl") {
                files.push(child);
            }
        }
    }
    Ok(())
}

/// Imports `files` into the ingestor, with a progress bar on a terminal
/// when `show_progress`; the first file that failed is reported once the
/// others are in.
pub fn run(
    ingestor: &mut Ingestor,
    files: &[PathBuf],
    since: Option<DateTime<Utc>>,
    show_progress: bool,
) -> Result<Imported, TranscriptError> {
    let bar = if show_progress {
        super::replay::progress_bar(files, "transcripts")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let before = ingestor.totals();
    let (skipped_before, uses_before) = ingestor.transcript_counts();
    let outcomes =
        ingestor.ingest_transcripts(files, since, &|| false, &mut |bytes| bar.inc(bytes));
    bar.finish_and_clear();
    if let Some(e) = super::replay::first_failure(outcomes) {
        return Err(e.into());
    }
    let (skipped, tool_uses) = ingestor.transcript_counts();
    Ok(Imported {
        files: files.len(),
        tool_uses: tool_uses - uses_before,
        skipped: skipped - skipped_before,
        stats: ingestor.totals().since(before),
        dry_run: false,
    })
}

/// What importing `files` would read, without a database: every complete
/// line converted, nothing stored.
pub fn dry_run(
    files: &[PathBuf],
    since: Option<DateTime<Utc>>,
) -> Result<Imported, TranscriptError> {
    let mut imported = Imported {
        files: files.len(),
        dry_run: true,
        ..Imported::default()
    };
    for file in files {
        let read_err = |source| TranscriptError::Walk {
            path: file.display().to_string(),
            source,
        };
        let mut converter = Converter::for_file(file).since(since);
        let mut reader = std::io::BufReader::new(std::fs::File::open(file).map_err(read_err)?);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(read_err)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break; // the end, or a torn last line left for later
            }
            match converter.events(&line) {
                Ok(events) => {
                    imported.stats.events += events.len() as u64;
                    imported.tool_uses += events.iter().filter(|e| e.is_tool_use()).count() as u64;
                }
                Err(_) => imported.skipped += 1,
            }
        }
    }
    Ok(imported)
}

//! Running the pipeline: the two ways of ingesting (`replay` once, the
//! `daemon` continuously), their shared set-up, and their lifecycle.
//!
//! - [`replay`]: ingest spool files once, through the daemon's engine.
//! - [`daemon`]: tail the spool, run insight passes on a schedule, until
//!   its [`Control`] is shut down.
//! - [`serve`]: the dashboard's lifecycle (its views are [`crate::see`]).
//! - [`Control`] / [`forward_signals`]: shutdown and reload as events on
//!   one path; the binary forwards SIGTERM/SIGINT/SIGHUP to it, a test
//!   sends them itself.
//! - [`Sources`] / [`load_recogniser`]: where recognition's rules, catalog
//!   and key come from.
//!
//! This stage wires the others together; only the CLI is above it.

mod control;
mod daemon;
mod replay;
pub mod serve;
mod signals;
mod sources;
mod transcripts;

use std::path::{Path, PathBuf};

use crate::ingest::{IngestStats, Ingestor, Workload};
use crate::spool;
use crate::store::{Database, Missing, OpenError};

pub use control::{Control, Event, Subscription};
pub use daemon::{DaemonConfig, DaemonError};
pub use replay::{collect_files, ReplayError};
pub use signals::{forward_signals, SignalForwarder};
pub use sources::{load_recogniser, LoadError, Sources};
pub use transcripts::{Imported, TranscriptError};

/// What can stop `replay` or the daemon before or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Transcripts(#[from] TranscriptError),
}

/// An ingestor over `db` (created and migrated when missing) sized for
/// `workload`, recognising with what `sources` hold and quarantining into
/// the spool's quarantine directory. The spool directory is checked (or
/// created) first, once: an unsafe spool is refused before the database is
/// touched.
pub fn open_ingestor(
    db: &Path,
    sources: &Sources,
    workload: Workload,
) -> Result<Ingestor, RunError> {
    spool::ensure_dir(&sources.spool).map_err(LoadError::Spool)?;
    let database = Database::open(db, Missing::Create)?;
    let recogniser = load_recogniser(sources, database.conn())?;
    let mut ingestor = Ingestor::new(
        database.into_conn(),
        recogniser,
        sources.spool.join(spool::QUARANTINE_DIR),
    );
    ingestor
        .set_workload(workload)
        .map_err(|source| OpenError::Configure {
            path: db.display().to_string(),
            source,
        })?;
    Ok(ingestor)
}

/// `replay PATH...`: the files (directories expanded) ingested once into
/// `db`; this run's counts.
pub fn replay(db: &Path, sources: &Sources, paths: &[PathBuf]) -> Result<IngestStats, RunError> {
    let files = collect_files(paths)?;
    let mut ingestor = open_ingestor(db, sources, Workload::Bulk)?;
    Ok(replay::run(&mut ingestor, &files)?)
}

/// `import-transcripts PATH...`: the transcript files under `paths`
/// (what happened since `since`) imported into `db`, or with `dry_run`
/// only read; what that came to.
pub fn import_transcripts(
    db: &Path,
    sources: &Sources,
    paths: &[PathBuf],
    since: Option<chrono::DateTime<chrono::Utc>>,
    dry_run: bool,
) -> Result<Imported, RunError> {
    let files = transcripts::collect(paths, since)?;
    if dry_run {
        return Ok(transcripts::dry_run(&files, since)?);
    }
    let mut ingestor = open_ingestor(db, sources, Workload::Bulk)?;
    Ok(transcripts::run(&mut ingestor, &files, since, true)?)
}

/// `daemon`: runs until `control` is shut down; what it ingested.
pub fn daemon(config: DaemonConfig, control: &Control) -> Result<IngestStats, RunError> {
    let ingestor = open_ingestor(&config.db, &config.sources, Workload::Live)?;
    Ok(daemon::run(ingestor, config, control)?)
}

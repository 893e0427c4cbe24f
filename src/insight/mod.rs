//! The insight loop: from recorded telemetry back to the registry.
//!
//! One *pass* ([`Pass::run`]) does, in order:
//! 1. `snapshot` of the registry's function versions (when a registry is set);
//! 2. sequence mining (`sequences --detect`), and with a registry its
//!    `new_pipeline` proposals;
//! 3. heredoc clustering into `patterns`;
//! 4. with a registry, the proposals from telemetry ([`telemetry_proposals`]).
//!
//! The daemon runs a pass every `--interval`; `propose` runs steps 3–4 once.
//! Every step is idempotent, so a pass interrupted anywhere is simply done
//! again by the next one.
//!
//! # Concurrency
//! A pass uses its own connection to operations.db (WAL: ingestion keeps
//! writing while it reads); its writes (`function_versions`, `patterns`) are
//! short transactions that ingestion's busy timeout absorbs. The daemon
//! interrupts a running pass on shutdown ([`rusqlite::InterruptHandle`]).
//!
//! # Commands
//! `snapshot`, `sequences`, `patterns` and `propose` are one call each
//! here ([`snapshot`], [`sequences`], [`patterns`], [`propose`]), over the
//! database path the CLI was given.

pub mod patterns;
mod proposals;
pub mod sequences;
mod significance;
mod snapshot;
mod telemetry;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::store::{Database, Missing, OpenError, RegistryError};
pub use patterns::{Clustering, PatternLine, Refreshed};
pub use proposals::{Outbox, Proposal, Submitted};
pub use sequences::{Detection, Params as SequenceParams, Sequence, Verdict};
pub use snapshot::{Snapshot, SnapshotError};
pub use telemetry::{pipeline_proposals, telemetry_proposals, Thresholds};

#[derive(Debug, thiserror::Error)]
pub enum InsightError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot mine sequences from operations.db: {0}")]
    Sequences(rusqlite::Error),
    #[error("cannot cluster heredocs into patterns: {0}")]
    Patterns(rusqlite::Error),
    #[error("cannot read function_stats and patterns for proposals: {0}")]
    Telemetry(rusqlite::Error),
}

/// Settings of a scheduled pass.
#[derive(Debug, Clone)]
pub struct Pass {
    pub registry: Option<PathBuf>,
    pub sequences: sequences::Params,
    pub thresholds: Thresholds,
    pub clustering: Clustering,
}

/// What a pass did, for the log.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    pub snapshot: Option<Snapshot>,
    pub sequences: usize,
    pub pipelines: Option<Submitted>,
    pub patterns: patterns::Refreshed,
    pub telemetry: Option<Submitted>,
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(s) = &self.snapshot {
            write!(f, "snapshot {s}; ")?;
        }
        write!(f, "sequences={}; {}", self.sequences, self.patterns)?;
        if let Some(p) = &self.pipelines {
            write!(f, "; new_pipeline {p}")?;
        }
        if let Some(t) = &self.telemetry {
            write!(f, "; telemetry {t}")?;
        }
        Ok(())
    }
}

impl Pass {
    /// Runs the four steps of the module docs on `conn`.
    pub fn run(&self, conn: &mut Connection) -> Result<PassReport, InsightError> {
        let mut report = PassReport::default();
        if let Some(registry) = &self.registry {
            report.snapshot = Some(snapshot::run(registry, conn)?);
        }
        let detection = sequences::detect(conn, self.sequences).map_err(InsightError::Sequences)?;
        report.sequences = detection.sequences.len();
        report.patterns =
            patterns::refresh(conn, self.clustering).map_err(InsightError::Patterns)?;
        if let Some(registry) = &self.registry {
            let mut outbox = Outbox::open(registry)?;
            report.pipelines = Some(outbox.submit(&pipeline_proposals(&detection))?);
            let proposals =
                telemetry_proposals(conn, &self.thresholds).map_err(InsightError::Telemetry)?;
            report.telemetry = Some(outbox.submit(&proposals)?);
        }
        Ok(report)
    }
}

/// `snapshot`: the registry's function versions recorded into the
/// database at `db` (created when missing).
pub fn snapshot(db: &Path, registry: &Path) -> Result<Snapshot, InsightError> {
    let mut db = Database::open(db, Missing::Create)?;
    Ok(snapshot::run(registry, db.conn_mut())?)
}

/// What `sequences` found, and what it proposed when asked to.
#[derive(Debug)]
pub struct SequencesOutcome {
    pub detection: Detection,
    /// `new_pipeline` proposals written, with `propose_to`.
    pub submitted: Option<Submitted>,
}

/// `sequences`: mines the calls of `db`; with `propose_to`, writes the
/// `new_pipeline` proposals into that registry.
pub fn sequences(
    db: &Path,
    params: SequenceParams,
    propose_to: Option<&Path>,
) -> Result<SequencesOutcome, InsightError> {
    let db = Database::open(db, Missing::Refuse)?;
    let detection = sequences::detect(db.conn(), params).map_err(InsightError::Sequences)?;
    let submitted = match propose_to {
        Some(registry) => Some(Outbox::open(registry)?.submit(&pipeline_proposals(&detection))?),
        None => None,
    };
    Ok(SequencesOutcome {
        detection,
        submitted,
    })
}

/// What `patterns` reports.
#[derive(Debug, serde::Serialize)]
pub struct PatternsReport {
    #[serde(flatten)]
    pub refreshed: Refreshed,
    pub top: Vec<PatternLine>,
}

/// `patterns`: clusters the recorded heredocs of `db` again and lists the
/// `top` most widespread patterns.
pub fn patterns(db: &Path, top: usize) -> Result<PatternsReport, InsightError> {
    let mut db = Database::open(db, Missing::Refuse)?;
    let refreshed =
        patterns::refresh(db.conn_mut(), Clustering::default()).map_err(InsightError::Patterns)?;
    let top = patterns::top(db.conn(), top).map_err(InsightError::Patterns)?;
    Ok(PatternsReport { refreshed, top })
}

/// What `propose` found, and what it wrote.
#[derive(Debug)]
pub struct Proposed {
    pub proposals: Vec<Proposal>,
    /// With a registry to write to; `None` for a dry run.
    pub submitted: Option<Submitted>,
}

/// `propose`: refreshes the patterns of `db` and derives the telemetry
/// proposals; writes them into `registry` unless it is `None` (a dry run).
pub fn propose(
    db: &Path,
    thresholds: &Thresholds,
    registry: Option<&Path>,
) -> Result<Proposed, InsightError> {
    let mut db = Database::open(db, Missing::Refuse)?;
    patterns::refresh(db.conn_mut(), Clustering::default()).map_err(InsightError::Patterns)?;
    let proposals = telemetry_proposals(db.conn(), thresholds).map_err(InsightError::Telemetry)?;
    let submitted = match registry {
        Some(registry) => Some(Outbox::open(registry)?.submit(&proposals)?),
        None => None,
    };
    Ok(Proposed {
        proposals,
        submitted,
    })
}

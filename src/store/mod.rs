//! The store: `operations.db` opened, migrated and read back, and the
//! fn_registry database as call_monitor uses it.
//!
//! - [`Database`]: every connection to operations.db, with the pragmas the
//!   pipeline relies on (WAL, busy timeout, 0600) and the schema brought up
//!   to date ([`migrations`], one transaction for all pending steps).
//! - [`status`]: the report behind `call_monitor status`.
//! - [`registry`]: registry.db, opened read-only to build recognition's
//!   catalog and read-write only for `proposals`.
//!
//! Ingestion writes its rows through a connection this stage opened; the
//! row SQL lives with the ingester, the schema here.

mod db;
pub mod migrations;
pub mod registry;
mod status;

use std::path::Path;

pub use db::{open_read_only, Database, Missing, OpenError, BUSY_TIMEOUT};
pub use migrations::{rebuild_rollups, MigrationOutcome};
pub use registry::RegistryError;
pub use status::{totals, StatusError, StatusReport, Totals, NO_CALLS};

/// What `init` did.
#[derive(Debug)]
pub struct Initialised {
    pub path: String,
    pub schema_version: u32,
    /// Migrations applied by this open.
    pub applied: usize,
    pub rollups_rebuilt: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot rebuild the rollups: {0}")]
    Rebuild(rusqlite::Error),
}

/// `init`: creates or opens the database at `path` and applies pending
/// migrations; with `rebuild`, recomputes the rollups from the rows.
pub fn init(path: &Path, rebuild: bool) -> Result<Initialised, InitError> {
    let db = Database::open(path, Missing::Create)?;
    if rebuild {
        rebuild_rollups(db.conn()).map_err(InitError::Rebuild)?;
    }
    let migration = db.migration();
    Ok(Initialised {
        path: db.path().display().to_string(),
        schema_version: migration.version,
        applied: migration.applied.len(),
        rollups_rebuilt: rebuild,
    })
}

/// `status`: the report over the database at `path` (which must exist);
/// `top` bounds its lists.
pub fn status(path: &Path, top: usize) -> Result<StatusReport, StatusError> {
    let mut db = Database::open(path, Missing::Refuse)?;
    let shown = db.path().display().to_string();
    let version = db.migration().version;
    status::collect(db.conn_mut(), shown, version, top)
}

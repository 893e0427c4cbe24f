//! Where recognition's knowledge comes from, and loading it: the rules
//! (`--rules`), the registry catalog (`--registry`, else the snapshot in
//! operations.db) and the args_hash key (kept in the spool).
//!
//! Loaded when `replay` or the daemon starts, and again on each daemon
//! reload; a reload that fails keeps the previous recogniser.

use std::path::PathBuf;

use rusqlite::Connection;

use crate::recognise::{ArgsKey, ArgsKeyError, Recogniser, Rules, RulesError};
use crate::spool::SpoolError;
use crate::store::registry::{self, RegistryError};

/// The sources of recognition.
#[derive(Debug, Clone)]
pub struct Sources {
    pub rules: Option<PathBuf>,
    pub registry: Option<PathBuf>,
    /// The spool, which holds the args_hash key.
    pub spool: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Key(#[from] ArgsKeyError),
    #[error("cannot use the spool: {0}")]
    Spool(#[from] SpoolError),
}

/// Compiles the rules, reads the registry (or, without one, the snapshot
/// in operations.db through `conn`) with the source fingerprints the last
/// snapshot recorded, and the args_hash key, which it
/// creates in the spool directory when missing (the directory must exist:
/// [`super::open_ingestor`] checks it once per run).
pub fn load_recogniser(sources: &Sources, conn: &Connection) -> Result<Recogniser, LoadError> {
    let rules = Rules::load(sources.rules.as_deref())?;
    let mut catalog = match &sources.registry {
        Some(path) => registry::read_catalog(path)?,
        None => registry::catalog_from_snapshot(conn)?,
    };
    registry::add_function_code(&mut catalog, conn)?;
    let key = ArgsKey::load_or_create(&sources.spool)?;
    Ok(Recogniser::new(rules, catalog, key))
}

//! call_monitor: telemetry for AI coding agents working against a function
//! registry.
//!
//! The pipeline is hook → spool → daemon → `operations.db` → insight. This
//! crate is one library with a thin binary over it; each module holds one
//! concept:
//!
//! - [`cli`]: argument parsing, logging set-up and dispatch to commands.
//! - [`paths`]: where the database and spool live by default.
//! - [`db`]: opening `operations.db` with the pragmas the pipeline relies on.
//! - [`migrations`]: the versioned schema and its in-place upgrades.
//! - [`status`]: the human and JSON report over `function_stats`.
//! - [`timefmt`]: the one timestamp format every table stores.

pub mod cli;
pub mod daemon;
pub mod db;
pub mod envelope;
pub mod hook;
pub mod ingest;
pub mod migrations;
pub mod paths;
pub mod quarantine;
pub mod replay;
pub mod shutdown;
pub mod spool;
pub mod status;
pub mod tail;
pub mod timefmt;

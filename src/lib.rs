//! call_monitor: telemetry for AI coding agents working against a function
//! registry.
//!
//! The pipeline is hook → spool → daemon → `operations.db` → insight. This
//! crate is one library with a thin binary over it; each module holds one
//! concept:
//!
//! - [`cli`]: argument parsing, logging set-up and dispatch to commands.
//! - [`paths`]: where the database and spool live by default.
//! - [`install_hooks`]: wiring the hook into Claude Code's settings.
//!
//! Capture, in the agent's critical path:
//! - [`hook`]: reduce one Claude Code payload (CONTRACT §3) and spool it.
//! - [`spool`]: the spool directory and its append/delete protocol.
//!
//! Ingestion, shared by `replay` and `daemon`:
//! - [`tail`]: a spool file's identity and its complete lines.
//! - [`envelope`]: validating one line, zero-copy.
//! - [`ingest`]: batches committed with their offsets; classification.
//! - [`quarantine`]: where lines that cannot be ingested go.
//!
//! Classification, inside the ingest transaction:
//! - [`rules`]: recognition and violation rules as data, compiled once.
//! - [`bash`]: simple commands and heredocs of a command line.
//! - [`registry`]: what the function registry says (names, paths, apps).
//! - [`argkey`], [`redact`]: privacy — keyed argument hashes, masked text.
//! - [`replay`], [`daemon`], [`shutdown`]: the two ways of running it.
//!
//! Storage and reporting:
//! - [`db`]: opening `operations.db` with the pragmas the pipeline relies on.
//! - [`migrations`]: the versioned schema and its in-place upgrades.
//! - [`timefmt`]: the one timestamp format every table stores.
//! - [`rollups`]: per-day call counts and duration histograms behind
//!   `function_stats`, kept by the ingester.
//! - [`status`]: the human and JSON report over `function_stats`.

pub mod argkey;
pub mod bash;
pub mod cli;
pub mod daemon;
pub mod db;
pub mod envelope;
pub mod hook;
pub mod ingest;
pub mod insight;
pub mod install_hooks;
pub mod migrations;
pub mod paths;
pub mod patterns;
pub mod proposals;
pub mod quarantine;
pub mod redact;
pub mod registry;
pub mod replay;
pub mod rollups;
pub mod rules;
pub mod sequences;
pub mod shutdown;
pub mod snapshot;
pub mod spool;
pub mod status;
pub mod tail;
pub mod timefmt;

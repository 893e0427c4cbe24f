//! call_monitor: telemetry for AI coding agents working against a function
//! registry.
//!
//! # Crate map
//! The library's folders follow the data, one stage each, in the order it
//! flows (a thin binary, `main.rs`, hands the process to [`cli`]):
//!
//! 1. [`contract`] — the wire format: envelope v1 written and read back,
//!    the line limits, event names, the one timestamp format.
//! 2. [`capture`] — `call_monitor hook`: one Claude Code payload reduced
//!    (CONTRACT §3) and spooled, in the agent's critical path; and wiring
//!    the hook into Claude Code's settings.
//! 3. [`spool`] — the directory between hooks and the daemon: the writer and
//!    deletion protocols, a file's identity and complete lines, quarantine.
//! 4. [`recognise`] — pure recognition: rules, the Bash lexer, heredoc
//!    skeletons, the registry catalog, argument keys and redaction.
//! 5. [`ingest`] — the engine: batches committed with their checkpoints,
//!    dedupe, the row writers, sessions and rollups, exactly once.
//! 6. [`store`] — `operations.db` opened and migrated, the status report,
//!    and registry.db as call_monitor uses it.
//! 7. [`insight`] — from telemetry back to the registry: snapshot, sequences,
//!    heredoc patterns, proposals, and the scheduled pass.
//! 8. [`see`] — what the database holds, shown to a person: the dashboard
//!    (`serve`: read-only views over HTTP, live) and the HTML report.
//! 9. [`run`] — `replay` and the daemon, their set-up, and their lifecycle
//!    (shutdown and reload as events on one [`Control`]).
//! 10. [`cli`] — argument parsing, logging and exit codes; one library call
//!     per command.
//!
//! # Dependency rule
//! A stage imports only stages above it in this list, with one more
//! restriction: [`recognise`] imports nothing but [`contract`] (no spool, no
//! database). `tests/it/layout.rs` reads `src/` and fails on a `use` that
//! breaks the rule.
//!
//! The most used types are re-exported here.

pub mod capture;
pub mod cli;
pub mod contract;
pub mod ingest;
pub mod insight;
pub mod recognise;
pub mod run;
pub mod see;
pub mod spool;
pub mod store;

pub use contract::{Envelope, Rejection};
pub use ingest::{IngestError, IngestStats, Ingestor, Workload};
pub use recognise::{Catalog, Recogniser, Rules};
pub use run::{Control, DaemonConfig, Sources};
pub use store::{Database, Missing};

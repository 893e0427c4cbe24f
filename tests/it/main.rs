//! Integration tests, one binary (one link) for all of them.

mod bash_props;
mod browser;
mod classification;
mod cli;
mod copies;
mod dashboard;
mod faults;
mod function_stats;
mod fuzz_regressions;
mod hostile;
mod ingestion;
mod insight;
mod layout;
mod migrations_upgrade;
mod native_shape;
mod patterns;
mod privacy;
mod rollups;
mod sequences;
mod support;
mod systemd;
mod tool_stats;
mod transcript_equivalence;
mod transcripts;
mod wrapper;

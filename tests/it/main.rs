//! Integration tests, one binary (one link) for all of them.

mod cli;
mod function_stats;
mod ingestion;
mod migrations_upgrade;
mod support;

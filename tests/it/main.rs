//! Integration tests, one binary (one link) for all of them.

mod cli;
mod function_stats;
mod migrations_upgrade;

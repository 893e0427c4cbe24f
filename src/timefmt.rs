//! The single timestamp format of `operations.db`.
//!
//! Every `ts`-like column holds RFC 3339 UTC with milliseconds and a `Z`
//! (`2026-11-24T13:53:42.123Z`). One fixed-width format means string order
//! is time order, so time windows are index-friendly string comparisons and
//! SQLite's own `strftime('%Y-%m-%dT%H:%M:%fZ', …)` produces comparable
//! bounds. The migrations enforce the shape with CHECK constraints.

/// The `strftime` pattern that produces the canonical format inside SQLite.
pub const SQLITE_FORMAT: &str = "%Y-%m-%dT%H:%M:%fZ";

/// SQL expression for "now" in the canonical format.
pub const SQL_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

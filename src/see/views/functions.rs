//! The functions page (`function_stats`, orphans) and one function's
//! detail.

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use super::{Filter, Table};
use crate::insight::Sequence;
use crate::store;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Functions {
    /// Every `function_stats` column, plus `calls_in_range` (the filter's
    /// days), busiest first.
    pub functions: Table,
    /// Registry functions never called, or `None` without a registry.
    pub orphans: Option<Vec<String>>,
}

/// Honours the range (`calls_in_range`); host and cwd do not apply.
/// Orphans come from `registry`, when one is configured and readable.
pub fn functions(
    conn: &Connection,
    filter: &Filter,
    registry: Option<&Path>,
) -> rusqlite::Result<Functions> {
    let functions = Table::query(
        conn,
        "SELECT s.*,
                (SELECT COALESCE(SUM(d.calls), 0) FROM call_days d
                 WHERE d.function_id = s.function_id AND d.day BETWEEN ?1 AND ?2) AS calls_in_range
         FROM function_stats s ORDER BY s.calls_total DESC, s.function_id",
        [filter.first_day(), filter.last_day()],
    )?;
    let orphans = match registry_ids(registry) {
        None => None,
        Some(ids) => {
            let mut called = conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM call_totals WHERE function_id = ?1 AND calls > 0)",
            )?;
            let mut orphans = Vec::new();
            for id in ids {
                if !called.query_row([&id], |r| r.get::<_, bool>(0))? {
                    orphans.push(id);
                }
            }
            Some(orphans)
        }
    };
    Ok(Functions { functions, orphans })
}

/// The registry's function ids; `None` without a registry, or when it
/// cannot be read (logged: the page then shows no orphans).
fn registry_ids(registry: Option<&Path>) -> Option<Vec<String>> {
    match store::registry::function_ids(registry?) {
        Ok(ids) => Some(ids),
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot read the registry for orphans");
            None
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionDetail {
    pub function_id: String,
    /// Its `function_stats` row (empty when it was never seen).
    pub stats: Table,
    /// `day, calls, errors, mean_duration_ms`.
    pub days: Table,
    /// The duration histogram: `ms` (a bucket's middle), `calls`.
    pub durations: Table,
    /// Failed calls by `error_class`.
    pub errors: Table,
    /// Test runs by `test_id`: `runs, failed, last_ts`.
    pub tests: Table,
    /// End-to-end runs by app: `runs, failed, last_ts`.
    pub e2e: Table,
    /// Writes to its files: `file_path, writes, lines_added, lines_removed, last_ts`.
    pub writes: Table,
    /// The newest 50 `function_versions` rows.
    pub versions: Table,
    /// The mined sequences it takes part in (from the last detection).
    pub sequences: Vec<Sequence>,
}

impl FunctionDetail {
    /// Nothing at all recorded about the function.
    pub fn is_unknown(&self) -> bool {
        self.stats.is_empty() && self.days.is_empty() && self.versions.is_empty()
    }
}

/// Ignores the filter: a function's whole history is short (per-day rows).
pub fn function_detail(conn: &Connection, function_id: &str) -> rusqlite::Result<FunctionDetail> {
    let one = |sql: &str| Table::query(conn, sql, [function_id]);
    Ok(FunctionDetail {
        function_id: function_id.to_string(),
        stats: one("SELECT * FROM function_stats WHERE function_id = ?1")?,
        days: one("SELECT day, calls, errors,
                    ROUND(CAST(duration_sum AS REAL) / NULLIF(durations, 0), 1) AS mean_duration_ms
             FROM call_days WHERE function_id = ?1 ORDER BY day")?,
        durations: one("SELECT q.rep AS ms, h.n AS calls
             FROM call_durations h JOIN duration_buckets q ON q.lo = h.lo
             WHERE h.function_id = ?1 ORDER BY h.lo")?,
        errors: one(
            "SELECT COALESCE(error_class, 'unclassified') AS error_class, COUNT(*) AS calls
             FROM calls WHERE function_id = ?1 AND success = 0
             GROUP BY 1 ORDER BY calls DESC, error_class",
        )?,
        tests: one(
            "SELECT COALESCE(test_id, '(unnamed)') AS test_id, COUNT(*) AS runs,
                    COALESCE(SUM(passed = 0), 0) AS failed, MAX(ts) AS last_ts
             FROM test_runs WHERE function_id = ?1 GROUP BY 1 ORDER BY runs DESC, test_id",
        )?,
        e2e: one(
            "SELECT app_id, COUNT(*) AS runs, COALESCE(SUM(passed = 0), 0) AS failed,
                    MAX(ts) AS last_ts
             FROM e2e_runs_fn WHERE function_id = ?1 GROUP BY app_id ORDER BY runs DESC, app_id",
        )?,
        writes: one(
            "SELECT file_path, COUNT(*) AS writes, SUM(lines_added) AS lines_added,
                    SUM(lines_removed) AS lines_removed, MAX(ts) AS last_ts
             FROM code_writes WHERE function_id = ?1 GROUP BY file_path
             ORDER BY writes DESC, file_path",
        )?,
        versions: one("SELECT version, content_hash, source, seen_at, session_id
             FROM function_versions WHERE function_id = ?1 ORDER BY seen_at DESC LIMIT 50")?,
        sequences: Vec::new(),
    })
}

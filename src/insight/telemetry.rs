//! Proposals from telemetry: what the recorded calls, patterns and
//! sequences say the registry should change.
//!
//! # Proposals from telemetry
//! Each carries its evidence (the numbers below, as JSON) and a `dedupe_key`
//! so it is raised once (see [`crate::insight::proposals`]). Thresholds are
//! [`Thresholds`], all settable on the command line:
//!
//! | kind | when | dedupe_key |
//! |---|---|---|
//! | `new_function` | a heredoc pattern seen in ≥ `pattern_sessions` sessions (3) | `new_function:<pattern_hash>` |
//! | `error_prone` | ≥ `error_min_calls` calls (10) and `error_rate` ≥ `error_rate` (0.25) | `error_prone:<function_id>` |
//! | `untested` | ≥ `untested_min_calls` calls (20) and no test run ever | `untested:<function_id>` |
//! | `unused` | used before, but not for `unused_after` (90 days) | `unused:<function_id>` |
//!

use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use super::proposals::Proposal;
use super::sequences::{self, Detection};
use crate::contract::timefmt;

/// When telemetry becomes a proposal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub pattern_sessions: u32,
    pub error_rate: f64,
    pub error_min_calls: u32,
    pub untested_min_calls: u32,
    pub unused_after: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            pattern_sessions: 3,
            error_rate: 0.25,
            error_min_calls: 10,
            untested_min_calls: 20,
            unused_after: Duration::from_secs(90 * 86_400),
        }
    }
}

/// The proposals `patterns` and `function_stats` call for, in a stable
/// order (kind, then key).
pub fn telemetry_proposals(
    conn: &Connection,
    thresholds: &Thresholds,
) -> rusqlite::Result<Vec<Proposal>> {
    let mut out = pattern_proposals(conn, thresholds)?;
    out.extend(function_proposals(conn, thresholds)?);
    Ok(out)
}

fn pattern_proposals(conn: &Connection, t: &Thresholds) -> rusqlite::Result<Vec<Proposal>> {
    let mut stmt = conn.prepare(
        "SELECT pattern_hash, occurrences, json_array_length(session_ids), first_seen, last_seen, skeleton
         FROM patterns WHERE json_array_length(session_ids) >= ?1 ORDER BY pattern_hash",
    )?;
    let rows = stmt.query_map([t.pattern_sessions], |r| {
        let hash: String = r.get(0)?;
        let sessions: i64 = r.get(2)?;
        Ok(Proposal {
            kind: "new_function",
            title: format!("New function for a heredoc written in {sessions} sessions"),
            evidence: json!({
                "pattern_hash": hash,
                "occurrences": r.get::<_, i64>(1)?,
                "sessions": sessions,
                "first_seen": r.get::<_, Option<String>>(3)?,
                "last_seen": r.get::<_, Option<String>>(4)?,
                "skeleton": r.get::<_, Option<String>>(5)?,
                "threshold_sessions": t.pattern_sessions,
            }),
            dedupe_key: format!("new_function:{hash}"),
        })
    })?;
    rows.collect()
}

fn function_proposals(conn: &Connection, t: &Thresholds) -> rusqlite::Result<Vec<Proposal>> {
    // A window reaching before the calendar's start means "never unused":
    // an empty bound, which no timestamp sorts below.
    let unused_since = chrono::Duration::from_std(t.unused_after)
        .ok()
        .and_then(|window| chrono::Utc::now().checked_sub_signed(window))
        .map(timefmt::format)
        .unwrap_or_default();
    let mut stmt = conn.prepare(
        "SELECT function_id, calls_total, errors_total, error_rate, last_error_ts, tests_total, last_used_at
         FROM function_stats ORDER BY function_id",
    )?;
    let mut rows = stmt.query([])?;
    let (mut error_prone, mut untested, mut unused) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let calls: i64 = r.get::<_, Option<i64>>(1)?.unwrap_or(0);
        let errors: i64 = r.get::<_, Option<i64>>(2)?.unwrap_or(0);
        let error_rate: Option<f64> = r.get(3)?;
        let tests: i64 = r.get::<_, Option<i64>>(5)?.unwrap_or(0);
        let last_used: Option<String> = r.get(6)?;
        if calls >= i64::from(t.error_min_calls) && error_rate.is_some_and(|e| e >= t.error_rate) {
            error_prone.push(Proposal {
                kind: "error_prone",
                title: format!("Fix {id}: {errors} of its {calls} calls failed"),
                evidence: json!({
                    "function_id": id, "calls_total": calls, "errors_total": errors,
                    "error_rate": error_rate, "last_error_ts": r.get::<_, Option<String>>(4)?,
                    "threshold_error_rate": t.error_rate, "threshold_min_calls": t.error_min_calls,
                }),
                dedupe_key: format!("error_prone:{id}"),
            });
        }
        if calls >= i64::from(t.untested_min_calls) && tests == 0 {
            untested.push(Proposal {
                kind: "untested",
                title: format!("Add tests to {id}: called {calls} times, never tested"),
                evidence: json!({
                    "function_id": id, "calls_total": calls, "tests_total": 0,
                    "threshold_min_calls": t.untested_min_calls,
                }),
                dedupe_key: format!("untested:{id}"),
            });
        }
        if let Some(last) = last_used.filter(|l| *l < unused_since) {
            unused.push(Proposal {
                kind: "unused",
                title: format!("Review {id}: not used since {last}"),
                evidence: json!({
                    "function_id": id, "calls_total": calls, "last_used_at": last,
                    "threshold_unused_days": t.unused_after.as_secs() / 86_400,
                }),
                dedupe_key: format!("unused:{id}"),
            });
        }
    }
    Ok(error_prone
        .into_iter()
        .chain(untested)
        .chain(unused)
        .collect())
}

/// `new_pipeline` proposals for the sequences worth one.
pub fn pipeline_proposals(detection: &Detection) -> Vec<Proposal> {
    sequences::worth_a_pipeline(&detection.sequences)
        .into_iter()
        .map(|s| Proposal {
            kind: "new_pipeline",
            title: format!(
                "New pipeline {} (chained in {} sessions)",
                s.functions.join(" → "),
                s.support
            ),
            evidence: json!({
                "functions": s.functions,
                "support": s.support,
                "occurrences": s.occurrences,
                "min_support": detection.min_support,
                "max_gap_s": detection.max_gap_s,
            }),
            dedupe_key: sequences::dedupe_key(s),
        })
        .collect()
}

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
//! | `new_function` | a heredoc pattern seen in ≥ `pattern_sessions` sessions (3), its first and last sighting ≥ `pattern_days` UTC days apart, counting both (2) | `new_function:<pattern_hash>` |
//! | `error_prone` | ≥ `error_min_calls` calls (10) and the lower bound of the error rate's 95 % Wilson interval ≥ `error_rate` (0.25) | `error_prone:<function_id>` |
//! | `untested` | ≥ `untested_min_calls` calls (20) and no test run ever | `untested:<function_id>` |
//! | `unused` | used before, but not for `unused_after` (90 days) | `unused:<function_id>` |
//! | `new_pipeline` | a significant call sequence ([`super::sequences`]) | `new_pipeline:a>b>c` |
//!
//! Why the bounds: each proposal costs a maintainer's attention, so the
//! evidence must hold up. 3 errors in 10 calls is a rate of 0.3 whose 95 %
//! interval reaches down to 0.11 — not yet a pattern; 30 in 100 (lower
//! bound 0.22) is close, 40 in 100 (0.31) is one. A heredoc written in
//! three sessions of one afternoon is one agent repeating itself; across
//! days it is a habit worth a function.

use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use super::proposals::Proposal;
use super::sequences::{self, Detection};
use super::significance::wilson_lower_bound;

/// The normal quantile of a two-sided 95 % interval.
const WILSON_Z: f64 = 1.96;
use crate::contract::timefmt;

/// When telemetry becomes a proposal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub pattern_sessions: u32,
    /// UTC calendar days a pattern's sightings must span (first and last
    /// day included): 2 means "not all on one day".
    pub pattern_days: u32,
    /// The least error rate an `error_prone` function's Wilson lower
    /// bound must reach.
    pub error_rate: f64,
    pub error_min_calls: u32,
    pub untested_min_calls: u32,
    pub unused_after: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            pattern_sessions: 3,
            pattern_days: 2,
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
        "SELECT pattern_hash, occurrences, json_array_length(session_ids), first_seen, last_seen, skeleton,
                days
         FROM (SELECT *, CAST(julianday(substr(last_seen, 1, 10)) - julianday(substr(first_seen, 1, 10)) AS INTEGER) + 1 AS days
               FROM patterns)
         WHERE json_array_length(session_ids) >= ?1 AND days >= ?2 ORDER BY pattern_hash",
    )?;
    let rows = stmt.query_map([t.pattern_sessions, t.pattern_days], |r| {
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
                "days_spanned": r.get::<_, i64>(6)?,
                "threshold_sessions": t.pattern_sessions,
                "threshold_days": t.pattern_days,
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
        "SELECT s.function_id, s.calls_total, s.errors_total, s.error_rate, s.last_error_ts, s.tests_total,
                s.last_used_at, COALESCE(t.finished, 0)
         FROM function_stats s LEFT JOIN call_totals t ON t.function_id = s.function_id
         ORDER BY s.function_id",
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
        let finished: i64 = r.get(7)?;
        // The error rate is errors over finished calls; its lower bound
        // says how low it could plausibly be given how few they are.
        let lower_bound =
            wilson_lower_bound(errors.max(0) as u64, finished.max(0) as u64, WILSON_Z);
        if calls >= i64::from(t.error_min_calls) && lower_bound >= t.error_rate {
            error_prone.push(Proposal {
                kind: "error_prone",
                title: format!("Fix {id}: {errors} of its {calls} calls failed"),
                evidence: json!({
                    "function_id": id, "calls_total": calls, "calls_finished": finished,
                    "errors_total": errors, "error_rate": error_rate,
                    "error_rate_lower_bound": lower_bound, "confidence": 0.95,
                    "last_error_ts": r.get::<_, Option<String>>(4)?,
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

/// `new_pipeline` proposals for the sequences worth one (those the
/// detection marked `proposed`), with the numbers that made them so.
pub fn pipeline_proposals(detection: &Detection) -> Vec<Proposal> {
    detection
        .sequences
        .iter()
        .filter(|s| s.proposed)
        .map(|s| Proposal {
            kind: "new_pipeline",
            title: format!(
                "New pipeline {} (chained in {} sessions, {:.1}x chance)",
                s.functions.join(" → "),
                s.support,
                s.lift
            ),
            evidence: json!({
                "functions": s.functions,
                "support": s.support,
                "occurrences": s.occurrences,
                "expected": s.expected,
                "lift": s.lift,
                "p": s.p,
                "q": s.q,
                "sample_sessions": s.sample_sessions,
                "min_support": detection.min_support,
                "max_gap_s": detection.max_gap_s,
                "fdr": detection.fdr,
                "min_lift": detection.min_lift,
                "min_excess": detection.min_excess,
                "sessions": detection.sessions,
            }),
            dedupe_key: sequences::dedupe_key(s),
        })
        .collect()
}

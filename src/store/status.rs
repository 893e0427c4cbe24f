//! `status`: what has been recorded, for humans and for tools.
//!
//! The report is one [`StatusReport`] value collected by [`collect`] in a
//! single read transaction (so totals and top lists agree with each other
//! even while the daemon writes), then rendered either as text
//! ([`StatusReport::render_text`]) or serialised as JSON: both views show the
//! same data.
//!
//! While `calls` is empty the report says `no calls recorded yet` (CONTRACT
//! §1); in JSON that sentence is the `message` field.

use comfy_table::{presets, CellAlignment, Table};
use rusqlite::{Connection, Row};
use serde::Serialize;

/// Text shown (and the JSON `message`) while `calls` is empty.
pub const NO_CALLS: &str = "no calls recorded yet";

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Open(#[from] super::OpenError),
    #[error("cannot read the status report: {0}")]
    Query(#[from] rusqlite::Error),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusReport {
    pub db: String,
    pub schema_version: u32,
    pub totals: Totals,
    pub top_functions: Vec<FunctionLine>,
    /// Every tool, and every MCP server as `mcp__<server>`, by uses.
    pub top_tools: Vec<ToolLine>,
    pub top_violations: Vec<ViolationLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub events: i64,
    pub sessions: i64,
    pub calls: i64,
    /// Tool uses of any tool (each counted once, not again for its server).
    pub tool_uses: i64,
    pub violations: i64,
    pub quarantined: i64,
}

/// One row of the top-functions list: the `function_stats` columns a person
/// scans first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionLine {
    pub function_id: String,
    pub calls_total: i64,
    pub calls_24h: i64,
    pub errors_total: i64,
    pub error_rate: Option<f64>,
    pub mean_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<i64>,
    pub last_used_at: Option<String>,
}

/// One row of the top-tools list: the `tool_stats` columns a person scans
/// first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolLine {
    pub tool_name: String,
    pub uses: i64,
    pub uses_24h: i64,
    pub failures: i64,
    pub error_rate: Option<f64>,
    pub interrupts: i64,
    pub mean_duration_ms: Option<f64>,
    pub p95_duration_ms: Option<i64>,
    pub sessions: i64,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ViolationLine {
    pub rule_id: String,
    pub severity: String,
    pub count: i64,
    pub sessions: i64,
    pub last_ts: Option<String>,
}

/// Reads the report; `top` bounds both lists.
pub fn collect(
    conn: &mut Connection,
    db: String,
    schema_version: u32,
    top: usize,
) -> Result<StatusReport, StatusError> {
    let tx = conn.transaction()?;
    let totals = totals(&tx)?;
    let limit = i64::try_from(top).unwrap_or(i64::MAX);
    let top_functions = query_all(
        &tx,
        "SELECT function_id, calls_total, calls_24h, errors_total, error_rate,
                mean_duration_ms, p95_duration_ms, last_used_at
         FROM function_stats
         WHERE function_id IN (SELECT function_id FROM call_totals
                               ORDER BY calls DESC, function_id LIMIT ?1)
         ORDER BY calls_total DESC, function_id",
        limit,
        |r| {
            Ok(FunctionLine {
                function_id: r.get(0)?,
                calls_total: r.get(1)?,
                calls_24h: r.get(2)?,
                errors_total: r.get(3)?,
                error_rate: r.get(4)?,
                mean_duration_ms: r.get(5)?,
                p95_duration_ms: r.get(6)?,
                last_used_at: r.get(7)?,
            })
        },
    )?;
    let top_tools = query_all(
        &tx,
        "SELECT tool_name, uses, uses_24h, failures, error_rate, interrupts, mean_duration_ms,
                p95_duration_ms, sessions, last_used_at
         FROM tool_stats
         WHERE tool_name IN (SELECT tool_name FROM tool_totals ORDER BY uses DESC, tool_name LIMIT ?1)
         ORDER BY uses DESC, tool_name",
        limit,
        |r| {
            Ok(ToolLine {
                tool_name: r.get(0)?,
                uses: r.get(1)?,
                uses_24h: r.get(2)?,
                failures: r.get(3)?,
                error_rate: r.get(4)?,
                interrupts: r.get(5)?,
                mean_duration_ms: r.get(6)?,
                p95_duration_ms: r.get(7)?,
                sessions: r.get(8)?,
                last_used_at: r.get(9)?,
            })
        },
    )?;
    let top_violations = query_all(
        &tx,
        "SELECT rule_id, severity, COUNT(*) AS n, COUNT(DISTINCT session_id), MAX(ts)
         FROM violations GROUP BY rule_id, severity
         ORDER BY n DESC, rule_id LIMIT ?1",
        limit,
        |r| {
            Ok(ViolationLine {
                rule_id: r.get(0)?,
                severity: r.get(1)?,
                count: r.get(2)?,
                sessions: r.get(3)?,
                last_ts: r.get(4)?,
            })
        },
    )?;
    tx.commit()?;
    let message = (totals.calls == 0).then_some(NO_CALLS);
    Ok(StatusReport {
        db,
        schema_version,
        totals,
        top_functions,
        top_tools,
        top_violations,
        message,
    })
}

/// The table totals, from the trigger-kept row counts and tool rollups (a
/// `COUNT(*)` would scan millions of rows).
pub fn totals(conn: &Connection) -> rusqlite::Result<Totals> {
    conn.query_row(
        // Counted by triggers (migration 005): COUNT(*) would scan millions of rows.
        "SELECT COALESCE(SUM(n * (tbl = 'events')), 0), COALESCE(SUM(n * (tbl = 'sessions')), 0),
                COALESCE(SUM(n * (tbl = 'calls')), 0), COALESCE(SUM(n * (tbl = 'violations')), 0),
                COALESCE(SUM(n * (tbl = 'quarantine')), 0),
                (SELECT COALESCE(SUM(t.uses), 0) FROM tool_totals t
                 JOIN tool_members m ON m.stat_key = t.tool_name AND m.tool_name = t.tool_name)
         FROM row_counts",
        [],
        |r| {
            Ok(Totals {
                events: r.get(0)?,
                sessions: r.get(1)?,
                calls: r.get(2)?,
                violations: r.get(3)?,
                quarantined: r.get(4)?,
                tool_uses: r.get(5)?,
            })
        },
    )
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    limit: i64,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([limit], map)?;
    rows.collect()
}

impl StatusReport {
    /// The human report: a header, totals, then the two top lists (omitted
    /// while empty).
    pub fn render_text(&self) -> String {
        let t = &self.totals;
        let mut out = format!(
            "call_monitor status — {} (schema {})\n",
            self.db, self.schema_version
        );
        if let Some(message) = self.message {
            out.push_str(message);
            out.push('\n');
        }
        out.push_str(&format!(
            "events {} · sessions {} · tool uses {} · calls {} · violations {} · quarantined {}\n",
            t.events, t.sessions, t.tool_uses, t.calls, t.violations, t.quarantined
        ));
        if !self.top_functions.is_empty() {
            out.push_str(&format!(
                "\ntop {} functions by calls\n",
                self.top_functions.len()
            ));
            out.push_str(&self.functions_table());
            out.push('\n');
        }
        if !self.top_tools.is_empty() {
            out.push_str(&format!("\ntop {} tools by uses\n", self.top_tools.len()));
            out.push_str(&self.tools_table());
            out.push('\n');
        }
        if !self.top_violations.is_empty() {
            out.push_str(&format!("\ntop {} violations\n", self.top_violations.len()));
            out.push_str(&self.violations_table());
            out.push('\n');
        }
        out
    }

    fn functions_table(&self) -> String {
        let mut table = new_table(&[
            "function_id",
            "calls",
            "24h",
            "errors",
            "error rate",
            "mean ms",
            "p95 ms",
            "last used",
        ]);
        for f in &self.top_functions {
            table.add_row(vec![
                f.function_id.clone(),
                f.calls_total.to_string(),
                f.calls_24h.to_string(),
                f.errors_total.to_string(),
                f.error_rate
                    .map_or_else(dash, |r| format!("{:.1}%", r * 100.0)),
                f.mean_duration_ms.map_or_else(dash, |m| format!("{m:.1}")),
                f.p95_duration_ms.map_or_else(dash, |p| p.to_string()),
                f.last_used_at.clone().unwrap_or_else(dash),
            ]);
        }
        align_numbers(&mut table, 1..=6);
        trimmed(&table)
    }

    fn tools_table(&self) -> String {
        let mut table = new_table(&[
            "tool",
            "uses",
            "24h",
            "failures",
            "error rate",
            "interrupts",
            "mean ms",
            "p95 ms",
            "sessions",
            "last used",
        ]);
        for t in &self.top_tools {
            table.add_row(vec![
                t.tool_name.clone(),
                t.uses.to_string(),
                t.uses_24h.to_string(),
                t.failures.to_string(),
                t.error_rate
                    .map_or_else(dash, |r| format!("{:.1}%", r * 100.0)),
                t.interrupts.to_string(),
                t.mean_duration_ms.map_or_else(dash, |m| format!("{m:.1}")),
                t.p95_duration_ms.map_or_else(dash, |p| p.to_string()),
                t.sessions.to_string(),
                t.last_used_at.clone().unwrap_or_else(dash),
            ]);
        }
        align_numbers(&mut table, 1..=8);
        trimmed(&table)
    }

    fn violations_table(&self) -> String {
        let mut table = new_table(&["rule_id", "severity", "count", "sessions", "last seen"]);
        for v in &self.top_violations {
            table.add_row(vec![
                v.rule_id.clone(),
                v.severity.clone(),
                v.count.to_string(),
                v.sessions.to_string(),
                v.last_ts.clone().unwrap_or_else(dash),
            ]);
        }
        align_numbers(&mut table, 2..=3);
        trimmed(&table)
    }
}

fn dash() -> String {
    "-".to_string()
}

/// Renders without the padding comfy-table leaves at the end of lines.
fn trimmed(table: &Table) -> String {
    let lines: Vec<String> = table.lines().map(|l| l.trim_end().to_string()).collect();
    lines.join("\n")
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_header(header.to_vec());
    table
}

fn align_numbers(table: &mut Table, columns: std::ops::RangeInclusive<usize>) {
    for index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

//! Tools and MCP servers, heredoc patterns, violations, quarantine, and
//! the registry's proposals.

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use super::{Filter, Table};
use crate::store::registry::{self, Access};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tools {
    /// Every `tool_stats` column plus `uses_in_range`, busiest first.
    pub tools: Table,
    /// The MCP servers (`mcp__<server>` rows of `tool_stats`).
    pub servers: Table,
}

/// Honours the range (`uses_in_range`).
pub fn tools(conn: &Connection, filter: &Filter) -> rusqlite::Result<Tools> {
    let range = [filter.first_day(), filter.last_day()];
    let in_range = "(SELECT COALESCE(SUM(d.uses), 0) FROM tool_days d
                     WHERE d.tool_name = s.tool_name AND d.day BETWEEN ?1 AND ?2) AS uses_in_range";
    let tools = Table::query(
        conn,
        &format!("SELECT s.*, {in_range} FROM tool_stats s ORDER BY s.uses DESC, s.tool_name"),
        range,
    )?;
    let servers = Table::query(
        conn,
        &format!(
            "SELECT substr(s.tool_name, 6) AS server, s.*, {in_range}
             FROM tool_stats s
             WHERE s.tool_name LIKE 'mcp\\_\\_%' ESCAPE '\\' AND instr(substr(s.tool_name, 6), '__') = 0
             ORDER BY s.uses DESC, s.tool_name"
        ),
        range,
    )?;
    Ok(Tools { tools, servers })
}

/// The 200 heredoc patterns seen in most sessions (their skeletons are
/// redacted: identifiers and literals replaced). Refreshed by `patterns`
/// or the daemon's insight pass.
pub fn patterns(conn: &Connection) -> rusqlite::Result<Table> {
    Table::query(
        conn,
        "SELECT pattern_hash, json_array_length(session_ids) AS sessions, occurrences,
                first_seen, last_seen, skeleton
         FROM patterns ORDER BY sessions DESC, occurrences DESC, pattern_hash LIMIT 200",
        [],
    )
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Violations {
    /// `rule_id, severity, count, sessions, last_ts` in the range.
    pub rules: Table,
    /// `day, violations` in the range.
    pub days: Table,
    /// The newest 100 in the range.
    pub recent: Table,
}

/// Honours the range.
pub fn violations(conn: &Connection, filter: &Filter) -> rusqlite::Result<Violations> {
    let range = [filter.start_ts(), filter.end_ts()];
    let range = rusqlite::params_from_iter(range.iter());
    Ok(Violations {
        rules: Table::query(
            conn,
            "SELECT rule_id, severity, COUNT(*) AS count, COUNT(DISTINCT session_id) AS sessions,
                    MAX(ts) AS last_ts
             FROM violations WHERE ts >= ?1 AND ts < ?2
             GROUP BY rule_id, severity ORDER BY count DESC, rule_id",
            range.clone(),
        )?,
        days: Table::query(
            conn,
            "SELECT substr(ts, 1, 10) AS day, COUNT(*) AS violations FROM violations
             WHERE ts >= ?1 AND ts < ?2 GROUP BY day ORDER BY day",
            range.clone(),
        )?,
        recent: Table::query(
            conn,
            "SELECT ts, rule_id, severity, function_id, session_id FROM violations
             WHERE ts >= ?1 AND ts < ?2 ORDER BY id DESC LIMIT 100",
            range.clone(),
        )?,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Quarantine {
    pub total: i64,
    /// The newest 200: where each line is (file, offset, length), its
    /// SHA-256 and the reason; never its text.
    pub lines: Table,
}

pub fn quarantine(conn: &Connection) -> rusqlite::Result<Quarantine> {
    Ok(Quarantine {
        total: conn.query_row(
            "SELECT COALESCE(SUM(n), 0) FROM row_counts WHERE tbl = 'quarantine'",
            [],
            |r| r.get(0),
        )?,
        lines: Table::query(
            conn,
            "SELECT id, ts, file, offset, length, sha256, reason FROM quarantine
             ORDER BY id DESC LIMIT 200",
            [],
        )?,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Proposals {
    /// The registry read, or `None` when none is configured.
    pub registry: Option<String>,
    /// Why the registry could not be read, if it could not.
    pub error: Option<String>,
    /// The newest 500: `id, kind, title, status, dedupe_key, created_at,
    /// evidence` (evidence as the JSON text the registry holds).
    pub proposals: Table,
}

/// Reads `proposals` from registry.db; a registry without the table (no
/// proposal written yet) has none.
pub fn proposals(registry_path: Option<&Path>) -> Proposals {
    let Some(path) = registry_path else {
        return Proposals {
            registry: None,
            error: None,
            proposals: Table::default(),
        };
    };
    let read = || -> Result<Table, String> {
        let conn = registry::open(path, Access::ReadOnly).map_err(|e| e.to_string())?;
        let has_table: bool = conn
            .query_row(
                "SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'proposals'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if !has_table {
            return Ok(Table::default());
        }
        Table::query(
            &conn,
            "SELECT id, kind, title, status, dedupe_key, created_at, evidence
             FROM proposals ORDER BY id DESC LIMIT 500",
            [],
        )
        .map_err(|e| e.to_string())
    };
    let (proposals, error) = match read() {
        Ok(table) => (table, None),
        Err(e) => (Table::default(), Some(e)),
    };
    Proposals {
        registry: Some(path.display().to_string()),
        error,
        proposals,
    }
}

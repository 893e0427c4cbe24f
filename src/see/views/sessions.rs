//! The sessions page (health, MCP share, filters) and one session's
//! timeline.

use rusqlite::Connection;
use serde::Serialize;

use super::{Filter, Table};

/// The condition a session must meet to pass a [`Filter`] (`1` when
/// nothing is set) and its parameters, `?1`, `?2`… Only the fields set are
/// written into the SQL: `(?1 IS NULL OR host = ?1)` would keep SQLite
/// from using the host, cwd and start indexes.
pub(super) fn matching(filter: &Filter) -> (String, Vec<String>) {
    let mut terms = Vec::new();
    let mut params = Vec::new();
    let mut add = |term: &str, value: String| {
        params.push(value);
        terms.push(format!("{term} ?{}", params.len()));
    };
    if filter.from.is_some() {
        add("started_at >=", filter.start_ts());
    }
    if filter.to.is_some() {
        add("started_at <", filter.end_ts());
    }
    if let Some(host) = &filter.host {
        add("host =", host.clone());
    }
    if let Some(cwd) = &filter.cwd {
        add("cwd =", cwd.clone());
    }
    if terms.is_empty() {
        terms.push("1".into());
    }
    (terms.join(" AND "), params)
}

/// How many sessions the list shows (the newest).
pub const SESSION_LIMIT: i64 = 500;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sessions {
    /// Sessions matching the filter (the list shows the newest
    /// [`SESSION_LIMIT`]).
    pub matching: i64,
    pub sessions: Table,
    /// Every host and the sessions it ran (for the filter).
    pub hosts: Table,
    /// The 50 busiest working directories.
    pub cwds: Table,
}

/// Honours every filter field.
pub fn sessions(conn: &Connection, filter: &Filter) -> rusqlite::Result<Sessions> {
    let (condition, params) = matching(filter);
    // Unfiltered, the trigger-kept row count answers without a scan.
    let matching = if params.is_empty() {
        conn.query_row(
            "SELECT COALESCE(SUM(n), 0) FROM row_counts WHERE tbl = 'sessions'",
            [],
            |r| r.get(0),
        )?
    } else {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM sessions WHERE {condition}"),
            rusqlite::params_from_iter(&params),
            |r| r.get(0),
        )?
    };
    let sessions = Table::query(
        conn,
        &format!(
            "SELECT session_id, host, cwd, started_at, ended_at, health_score, mcp_ratio,
                    prompts, tool_uses, tool_failures, subagents, model,
                    COALESCE((SELECT calls FROM session_calls c WHERE c.session_id = s.session_id), 0) AS calls
             FROM sessions s WHERE {condition}
             ORDER BY started_at DESC, session_id LIMIT {SESSION_LIMIT}"
        ),
        rusqlite::params_from_iter(&params),
    )?;
    let hosts = Table::query(
        conn,
        "SELECT COALESCE(host, 'unknown') AS host, COUNT(*) AS sessions
         FROM sessions GROUP BY 1 ORDER BY sessions DESC, host",
        [],
    )?;
    let cwds = Table::query(
        conn,
        "SELECT cwd, COUNT(*) AS sessions FROM sessions WHERE cwd IS NOT NULL
         GROUP BY cwd ORDER BY sessions DESC, cwd LIMIT 50",
        [],
    )?;
    Ok(Sessions {
        matching,
        sessions,
        hosts,
        cwds,
    })
}

/// How many tool uses one session's timeline shows (the first).
pub const TIMELINE_LIMIT: i64 = 5000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionDetail {
    /// Its `sessions` row (empty for an unknown id).
    pub session: Table,
    /// Its tool uses in time order: `ts, tool_name, duration_ms, success,
    /// interrupted, agent_id, agent_type`.
    pub timeline: Table,
    /// Its registry calls in time order.
    pub calls: Table,
    /// The subagents it ran: `agent_id, agent_type, tool_uses, first_ts, last_ts`.
    pub subagents: Table,
    pub violations: Table,
}

impl SessionDetail {
    pub fn is_unknown(&self) -> bool {
        self.session.is_empty() && self.timeline.is_empty()
    }
}

/// One session's tool uses (`?1`) through two indexes: the unique one
/// holds those with a `tool_use_id`, `tool_uses_no_id` the others (old
/// Claude Code versions). `session_id = ?1` alone would scan the table.
const SESSION_TOOL_USES: &str =
    "SELECT * FROM tool_uses WHERE session_id = ?1 AND tool_use_id IS NOT NULL
     UNION ALL SELECT * FROM tool_uses WHERE session_id = ?1 AND tool_use_id IS NULL";

pub fn session_detail(conn: &Connection, session_id: &str) -> rusqlite::Result<SessionDetail> {
    let limit = TIMELINE_LIMIT.to_string();
    let one = |sql: &str| Table::query(conn, sql, [session_id]);
    Ok(SessionDetail {
        session: one("SELECT * FROM sessions WHERE session_id = ?1")?,
        timeline: Table::query(
            conn,
            &format!(
                "SELECT ts, tool_name, duration_ms, success, interrupted, agent_id, agent_type
                 FROM ({SESSION_TOOL_USES}) ORDER BY ts, id LIMIT CAST(?2 AS INTEGER)"
            ),
            [session_id, limit.as_str()],
        )?,
        calls: one(
            "SELECT ts, function_id, tool_used, duration_ms, success, error_class, agent_id
             FROM calls WHERE session_id = ?1 ORDER BY ts, id",
        )?,
        subagents: one(&format!(
            "SELECT agent_id, MAX(agent_type) AS agent_type, COUNT(*) AS tool_uses,
                    MIN(ts) AS first_ts, MAX(ts) AS last_ts
             FROM ({SESSION_TOOL_USES}) WHERE agent_id IS NOT NULL
             GROUP BY agent_id ORDER BY first_ts"
        ))?,
        violations: one("SELECT ts, rule_id, severity, function_id FROM violations
             WHERE session_id = ?1 ORDER BY ts, id")?,
    })
}

//! The overview (totals, the day series, session health) and pipeline
//! health (is capture working: tool uses per hour by host, hook events,
//! spool bytes not yet ingested, the last commit, the daemon's state).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::{Filter, Table};
use crate::spool;
use crate::store::{self, Totals};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overview {
    pub totals: Totals,
    /// Failed ÷ finished registry calls, all time.
    pub error_rate: Option<f64>,
    /// Failed ÷ finished tool uses, all time.
    pub tool_error_rate: Option<f64>,
    /// Per UTC day in the filter's range: `day, calls, call_errors,
    /// tool_uses, mean_duration_ms, p95_duration_ms` (the last two over
    /// registry calls).
    pub days: Table,
    /// Sessions by health score, in bins of 10 (`lo` = 0, 10, … 90), for
    /// the sessions the filter selects (range on `started_at`, host, cwd).
    pub health: Table,
}

/// Honours every filter field: the range for `days` and `health`, host and
/// cwd for `health` (the day rollups have no host).
pub fn overview(conn: &Connection, filter: &Filter) -> rusqlite::Result<Overview> {
    let totals = store::totals(conn)?;
    let (error_rate, tool_error_rate) = conn.query_row(
        "SELECT (SELECT CAST(SUM(errors) AS REAL) / NULLIF(SUM(finished), 0) FROM call_totals),
                (SELECT CAST(SUM(t.failures) AS REAL) / NULLIF(SUM(t.finished), 0)
                 FROM tool_totals t
                 JOIN tool_members m ON m.stat_key = t.tool_name AND m.tool_name = t.tool_name)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut days = Table::query(
        conn,
        "WITH d AS (
             SELECT day, SUM(calls) AS calls, SUM(errors) AS errors, 0 AS uses,
                    SUM(duration_sum) AS ds, SUM(durations) AS dn
             FROM call_days WHERE day BETWEEN ?1 AND ?2 GROUP BY day
             UNION ALL
             SELECT d.day, 0, 0, SUM(d.uses), 0, 0
             FROM tool_days d
             JOIN tool_members m ON m.stat_key = d.tool_name AND m.tool_name = d.tool_name
             WHERE d.day BETWEEN ?1 AND ?2 GROUP BY d.day)
         SELECT day, SUM(calls) AS calls, SUM(errors) AS call_errors, SUM(uses) AS tool_uses,
                ROUND(CAST(SUM(ds) AS REAL) / NULLIF(SUM(dn), 0), 1) AS mean_duration_ms
         FROM d GROUP BY day ORDER BY day",
        [filter.first_day(), filter.last_day()],
    )?;
    let p95 = day_p95s(conn, filter)?;
    days.columns.push("p95_duration_ms".into());
    for row in &mut days.rows {
        let day = row[0].as_str().unwrap_or_default();
        row.push(
            p95.get(day)
                .map_or(serde_json::Value::Null, |&ms| ms.into()),
        );
    }
    let (condition, params) = super::sessions::matching(filter);
    let health = Table::query(
        conn,
        &format!(
            "SELECT MIN(CAST(health_score / 10 AS INTEGER), 9) * 10 AS lo, COUNT(*) AS sessions
             FROM sessions WHERE health_score IS NOT NULL AND {condition}
             GROUP BY lo ORDER BY lo"
        ),
        rusqlite::params_from_iter(&params),
    )?;
    Ok(Overview {
        totals,
        error_rate,
        tool_error_rate,
        days,
        health,
    })
}

/// Each day's p95 registry-call duration, from its histogram in
/// `call_day_durations` read once in key order (day, then bucket): the
/// middle of the bucket where the running count reaches the nearest rank
/// ceil(0.95 n), as `function_stats` does with its finer buckets. In one
/// pass here, because SQL ranks each day's buckets with a window over every
/// row (3× slower at a year of days).
fn day_p95s(
    conn: &Connection,
    filter: &Filter,
) -> rusqlite::Result<std::collections::HashMap<String, i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT day, lo, n FROM call_day_durations WHERE day BETWEEN ?1 AND ?2 ORDER BY day, lo",
    )?;
    let mut rows = stmt.query([filter.first_day(), filter.last_day()])?;
    let mut p95 = std::collections::HashMap::new();
    let mut day: Option<String> = None;
    let mut buckets: Vec<(i64, i64)> = Vec::new();
    let mut finish = |day: Option<String>, buckets: &mut Vec<(i64, i64)>| {
        let total: i64 = buckets.iter().map(|b| b.1).sum();
        let rank = (95 * total + 99) / 100;
        let mut upto = 0;
        if let Some(&(lo, _)) = buckets.iter().find(|b| {
            upto += b.1;
            upto >= rank
        }) {
            // A day bucket's middle (migration 011: 5 % wide).
            p95.insert(day.unwrap_or_default(), lo + ((lo / 20).max(1) - 1) / 2);
        }
        buckets.clear();
    };
    while let Some(row) = rows.next()? {
        let this = row.get_ref(0)?.as_str()?;
        if day.as_deref() != Some(this) {
            if day.is_some() {
                finish(day.take(), &mut buckets);
            }
            day = Some(this.to_string());
        }
        buckets.push((row.get(1)?, row.get(2)?));
    }
    if day.is_some() {
        finish(day, &mut buckets);
    }
    Ok(p95)
}

/// Where pipeline health looks besides the database.
#[derive(Debug, Clone, Default)]
pub struct PipelineSources {
    /// The spool directory whose unread bytes are the backlog.
    pub spool: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pipeline {
    /// The window's start: tool uses since then are counted by hour.
    pub since: String,
    /// `host, hour, tool_uses` over the last 24 hours.
    pub hours: Table,
    /// Every hook event name seen: `hook_event_name, events, last_ts`.
    pub events: Table,
    /// The newest checkpoint commit (any spool file or transcript).
    pub last_commit: Option<String>,
    pub backlog: Option<Backlog>,
    /// What the daemon last said about itself (`spool/daemon.json`).
    pub daemon: Option<serde_json::Value>,
}

/// Spool bytes written but not yet committed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Backlog {
    pub spool: String,
    pub files: usize,
    pub bytes: u64,
    /// Files with bytes not yet ingested.
    pub files_behind: usize,
}

/// Ignores the filter: health is about now.
pub fn pipeline(conn: &Connection, sources: &PipelineSources) -> rusqlite::Result<Pipeline> {
    let since = (chrono::Utc::now() - chrono::Duration::hours(24))
        .format("%Y-%m-%dT%H:00:00.000Z")
        .to_string();
    // Tool by tool through the (tool_name, ts) index: a range over `ts`
    // alone would scan every tool use ever made.
    let hours = Table::query(
        conn,
        "SELECT COALESCE(s.host, 'unknown') AS host, substr(t.ts, 1, 13) || ':00Z' AS hour,
                COUNT(*) AS tool_uses
         FROM (SELECT DISTINCT tool_name FROM tool_members) m
         CROSS JOIN tool_uses t ON t.tool_name = m.tool_name AND t.ts >= ?1
         LEFT JOIN sessions s ON s.session_id = t.session_id
         GROUP BY 1, 2 ORDER BY 2, 1",
        [&since],
    )?;
    let events = Table::query(
        conn,
        "SELECT hook_event_name, n AS events, last_ts FROM event_names ORDER BY n DESC",
        [],
    )?;
    let last_commit = conn
        .query_row("SELECT MAX(updated_at) FROM spool_files", [], |r| r.get(0))
        .optional()?
        .flatten();
    let backlog = match &sources.spool {
        Some(dir) => Some(backlog(conn, dir)?),
        None => None,
    };
    let daemon = sources.spool.as_deref().and_then(read_daemon_state);
    Ok(Pipeline {
        since,
        hours,
        events,
        last_commit,
        backlog,
        daemon,
    })
}

/// Each spool file's size past its committed offset (a file not yet
/// checkpointed counts whole). Unreadable files are skipped: the daemon
/// logs them.
fn backlog(conn: &Connection, dir: &Path) -> rusqlite::Result<Backlog> {
    let files = spool::list_files(dir).unwrap_or_default();
    let mut stmt = conn.prepare_cached("SELECT offset FROM spool_files WHERE file_key = ?1")?;
    let (mut bytes, mut behind) = (0u64, 0usize);
    for path in &files {
        let Ok(file) = spool::reader::open(path) else {
            continue;
        };
        let Ok(size) = file.metadata().map(|m| m.len()) else {
            continue;
        };
        let committed = match spool::reader::identify(&file) {
            Ok(Some(key)) => stmt
                .query_row([key], |r| r.get::<_, i64>(0))
                .optional()?
                .map_or(0, |o| o.max(0) as u64),
            _ => 0,
        };
        let unread = size.saturating_sub(committed);
        bytes += unread;
        behind += usize::from(unread > 0);
    }
    Ok(Backlog {
        spool: dir.display().to_string(),
        files: files.len(),
        bytes,
        files_behind: behind,
    })
}

fn read_daemon_state(spool: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(spool.join(spool::DAEMON_STATE)).ok()?;
    serde_json::from_str(&text).ok()
}

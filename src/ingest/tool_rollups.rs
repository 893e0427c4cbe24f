//! Rollups behind `tool_stats` and the sessions' activity counts
//! (migration 010), kept like the function rollups ([`super::rollups`]):
//! deltas collected during the transaction and added at its end.
//!
//! # Stat keys
//! A tool use counts under its tool (`Bash`, `mcp__github__create_issue`)
//! and, for an MCP tool, also under its server (`mcp__github`): see
//! [`stat_keys`]. `tool_members` maps each key to its tools, for the
//! view's exact windows and `last_used_at`.
//!
//! # Invariants
//! - After each committed transaction the rollups equal an aggregation of
//!   `tool_uses` (the rebuild block of migration 010 is that aggregation;
//!   a property test compares the two on random tool uses).
//! - A `tool_uses` row never changes tool or session, so `tool_sessions`
//!   only grows; its start time may move earlier (a late Pre), which moves
//!   the row from one day to another.

use foldhash::{HashMap, HashSet};
use std::borrow::Cow;

use rusqlite::Transaction;

use super::rollups::{bucket, day_of, remember, slot};
use crate::contract::events;

/// The rollup-relevant columns of one `tool_uses` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRow<'a> {
    pub tool_name: Cow<'a, str>,
    pub ts: Cow<'a, str>,
    pub success: Option<i64>,
    pub interrupted: bool,
    pub duration_ms: Option<i64>,
}

impl ToolRow<'static> {
    /// Reads a row selected as `tool_name, ts, success, interrupted, duration_ms`.
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(ToolRow {
            tool_name: Cow::Owned(row.get(0)?),
            ts: Cow::Owned(row.get(1)?),
            success: row.get(2)?,
            interrupted: row.get::<_, i64>(3)? != 0,
            duration_ms: row.get(4)?,
        })
    }
}

/// The keys a tool's uses count under: the tool itself and, for
/// `mcp__<server>__<tool>`, the server `mcp__<server>`.
pub fn stat_keys(tool_name: &str) -> (&str, Option<&str>) {
    let server = tool_name.strip_prefix("mcp__").and_then(|rest| {
        let end = rest.find("__").filter(|&end| end > 0)?;
        Some(&tool_name[..5 + end])
    });
    (tool_name, server)
}

/// What tool uses add to one stat key's totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct ToolSums {
    uses: i64,
    finished: i64,
    failures: i64,
    interrupts: i64,
    duration_sum: i64,
    durations: i64,
}

impl ToolSums {
    fn add(&mut self, row: &ToolRow<'_>, sign: i64) {
        self.uses += sign;
        self.finished += sign * i64::from(row.success.is_some());
        self.failures += sign * i64::from(row.success == Some(0));
        self.interrupts += sign * i64::from(row.interrupted);
        self.duration_sum += sign * row.duration_ms.unwrap_or(0);
        self.durations += sign * i64::from(row.duration_ms.is_some());
    }
}

#[derive(Debug, Default)]
struct KeyDeltas {
    total: ToolSums,
    days: HashMap<String, i64>,
    durations: HashMap<i64, i64>,
}

/// What one session did in the transaction besides registry calls
/// (`sessions` columns of migration 010).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SessionActivity {
    prompts: i64,
    tool_uses: i64,
    tool_failures: i64,
    permission_requests: i64,
    compactions_manual: i64,
    compactions_auto: i64,
    subagents: i64,
}

/// Event names are stored as given when they look like one; anything else
/// (over long, or not an identifier) is counted as this.
const OTHER_EVENT: &str = "_other";
const EVENT_NAME_MAX: usize = 64;

/// Deltas of the current transaction, not yet written.
#[derive(Debug, Default)]
pub struct Pending {
    keys: HashMap<String, KeyDeltas>,
    /// Tools whose membership rows may be new.
    tools: HashSet<String>,
    /// The sessions seen in the transaction, by stat key.
    key_sessions: HashMap<String, HashSet<String>>,
    sessions: HashMap<String, SessionActivity>,
    /// Events per name, and the latest time of each.
    names: HashMap<String, (i64, String)>,
}

impl Pending {
    /// Records that a `tool_uses` row of `session_id` went from `before`
    /// (`None`: inserted) to `after`.
    pub fn tool_written(
        &mut self,
        session_id: &str,
        before: Option<&ToolRow<'_>>,
        after: &ToolRow<'_>,
    ) {
        if before == Some(after) {
            return;
        }
        // Keys are copied only when new (`slot`): this runs for every tool
        // use, and the copies were ~3 % of the database thread.
        let activity = slot(&mut self.sessions, session_id);
        match before {
            Some(before) => {
                activity.tool_failures -= i64::from(before.success == Some(0));
                self.count(before, -1);
            }
            None => {
                activity.tool_uses += 1;
                let (tool, server) = stat_keys(&after.tool_name);
                for key in std::iter::once(tool).chain(server) {
                    remember(slot(&mut self.key_sessions, key), session_id);
                }
                remember(&mut self.tools, &after.tool_name);
            }
        }
        let activity = slot(&mut self.sessions, session_id);
        activity.tool_failures += i64::from(after.success == Some(0));
        self.count(after, 1);
    }

    fn count(&mut self, row: &ToolRow<'_>, sign: i64) {
        let (tool, server) = stat_keys(&row.tool_name);
        for key in std::iter::once(tool).chain(server) {
            let deltas = slot(&mut self.keys, key);
            deltas.total.add(row, sign);
            *slot(&mut deltas.days, day_of(&row.ts)) += sign;
            if let Some(duration) = row.duration_ms {
                *deltas.durations.entry(bucket(duration)).or_default() += sign;
            }
        }
    }

    /// Counts one new event: its name, and what it says of its session.
    pub fn event(&mut self, name: &str, session_id: Option<&str>, trigger: Option<&str>, ts: &str) {
        let shown = if name.len() <= EVENT_NAME_MAX
            && !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            name
        } else {
            OTHER_EVENT
        };
        // Runs for every event: no copy of a known name, and the latest
        // time overwritten in place.
        let (count, latest) = slot(&mut self.names, shown);
        *count += 1;
        if ts > latest.as_str() {
            latest.clear();
            latest.push_str(ts);
        }
        let Some(session_id) = session_id else { return };
        let mut activity = SessionActivity::default();
        match name {
            events::USER_PROMPT_SUBMIT => activity.prompts = 1,
            events::PERMISSION_REQUEST => activity.permission_requests = 1,
            events::SUBAGENT_START => activity.subagents = 1,
            events::PRE_COMPACT if trigger == Some("manual") => activity.compactions_manual = 1,
            events::PRE_COMPACT => activity.compactions_auto = 1,
            _ => return,
        }
        let sums = slot(&mut self.sessions, session_id);
        sums.prompts += activity.prompts;
        sums.permission_requests += activity.permission_requests;
        sums.subagents += activity.subagents;
        sums.compactions_manual += activity.compactions_manual;
        sums.compactions_auto += activity.compactions_auto;
    }

    /// Forgets the deltas (their transaction rolled back).
    pub fn clear(&mut self) {
        *self = Pending::default();
    }

    /// Adds the deltas to the tables inside `tx`, and clears them. Session
    /// rows exist already (every event of a session upserts its row first).
    pub fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut member = tx.prepare_cached(ADD_MEMBER)?;
        for tool in self.tools.drain() {
            let (own, server) = stat_keys(&tool);
            for key in std::iter::once(own).chain(server) {
                member.execute((key, &tool))?;
            }
        }
        let mut add_total = tx.prepare_cached(ADD_TOTAL)?;
        let mut add_day = tx.prepare_cached(ADD_DAY)?;
        let mut add_duration = tx.prepare_cached(ADD_DURATION)?;
        for (key, deltas) in self.keys.drain() {
            let t = deltas.total;
            add_total.execute((
                &key,
                t.uses,
                t.finished,
                t.failures,
                t.interrupts,
                t.duration_sum,
                t.durations,
            ))?;
            for (day, n) in deltas.days {
                if n != 0 {
                    add_day.execute((&key, &day, n))?;
                    if n < 0 {
                        tx.prepare_cached(DROP_EMPTY_DAY)?.execute((&key, &day))?;
                    }
                }
            }
            for (lo, n) in deltas.durations {
                if n != 0 {
                    add_duration.execute((&key, lo, n))?;
                    if n < 0 {
                        tx.prepare_cached(DROP_EMPTY_DURATION)?
                            .execute((&key, lo))?;
                    }
                }
            }
        }
        let mut add_session = tx.prepare_cached(ADD_KEY_SESSION)?;
        let mut count_session = tx.prepare_cached(COUNT_KEY_SESSION)?;
        for (key, sessions) in self.key_sessions.drain() {
            for session_id in sessions {
                if add_session.execute((&key, &session_id))? == 1 {
                    count_session.execute([&key])?;
                }
            }
        }
        let mut activity = tx.prepare_cached(ADD_ACTIVITY)?;
        for (session_id, a) in self.sessions.drain() {
            if a != SessionActivity::default() {
                activity.execute((
                    &session_id,
                    a.prompts,
                    a.tool_uses,
                    a.tool_failures,
                    a.permission_requests,
                    a.compactions_manual,
                    a.compactions_auto,
                    a.subagents,
                ))?;
            }
        }
        let mut name = tx.prepare_cached(ADD_EVENT_NAME)?;
        for (event, (n, last_ts)) in self.names.drain() {
            name.execute((&event, n, &last_ts))?;
        }
        Ok(())
    }
}

const ADD_MEMBER: &str =
    "INSERT INTO tool_members (stat_key, tool_name) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
const ADD_TOTAL: &str = "INSERT INTO tool_totals
        (tool_name, uses, finished, failures, interrupts, duration_sum, durations, sessions)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
     ON CONFLICT DO UPDATE SET uses = uses + excluded.uses, finished = finished + excluded.finished,
        failures = failures + excluded.failures, interrupts = interrupts + excluded.interrupts,
        duration_sum = duration_sum + excluded.duration_sum, durations = durations + excluded.durations";
const ADD_DAY: &str = "INSERT INTO tool_days (tool_name, day, uses) VALUES (?1, ?2, ?3)
     ON CONFLICT DO UPDATE SET uses = uses + excluded.uses";
const DROP_EMPTY_DAY: &str = "DELETE FROM tool_days WHERE tool_name = ?1 AND day = ?2 AND uses = 0";
const ADD_DURATION: &str = "INSERT INTO tool_durations (tool_name, lo, n) VALUES (?1, ?2, ?3)
     ON CONFLICT DO UPDATE SET n = n + excluded.n";
const DROP_EMPTY_DURATION: &str =
    "DELETE FROM tool_durations WHERE tool_name = ?1 AND lo = ?2 AND n = 0";
const ADD_KEY_SESSION: &str =
    "INSERT INTO tool_sessions (tool_name, session_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
const COUNT_KEY_SESSION: &str =
    "UPDATE tool_totals SET sessions = sessions + 1 WHERE tool_name = ?1";
const ADD_ACTIVITY: &str = "UPDATE sessions SET prompts = prompts + ?2, tool_uses = tool_uses + ?3,
        tool_failures = tool_failures + ?4, permission_requests = permission_requests + ?5,
        compactions_manual = compactions_manual + ?6, compactions_auto = compactions_auto + ?7,
        subagents = subagents + ?8
     WHERE session_id = ?1";
const ADD_EVENT_NAME: &str =
    "INSERT INTO event_names (hook_event_name, n, last_ts) VALUES (?1, ?2, ?3)
     ON CONFLICT DO UPDATE SET n = n + excluded.n, last_ts = MAX(last_ts, excluded.last_ts)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_tools_count_under_their_server_too() {
        assert_eq!(stat_keys("Bash"), ("Bash", None));
        assert_eq!(
            stat_keys("mcp__github__create_issue"),
            ("mcp__github__create_issue", Some("mcp__github"))
        );
        assert_eq!(
            stat_keys("mcp__fn_registry__run"),
            ("mcp__fn_registry__run", Some("mcp__fn_registry"))
        );
        // No server part, or no tool part: only the name itself.
        assert_eq!(stat_keys("mcp____x"), ("mcp____x", None));
        assert_eq!(stat_keys("mcp__solo"), ("mcp__solo", None));
    }
}

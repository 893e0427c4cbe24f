//! Rollups behind `function_stats`: what the ingester maintains itself.
//!
//! `function_stats` reads per-function and per-day call counts
//! (`call_totals`, `call_days`), a duration histogram (`call_durations`)
//! and table row counts (`row_counts`) instead
//! of scanning `calls` and `events` (migration 005 has the tables and the
//! view). The low-volume tables are rolled up by triggers; `calls`,
//! `events` and `code_writes` are not, because a statement that can fire a
//! trigger copies every page it touches to a statement journal first —
//! measured 4× slower per insert (migration 007). So the ingester does it:
//! every call write reports the row before and after ([`CallRow`]), and
//! every new write its function, to a [`Pending`] set of deltas (also kept
//! per day across functions, `call_day_durations`, migration 011), which is
//! added to the rollup tables at the end of the transaction, together with
//! the rows. The same deltas keep each session's call tallies
//! (`session_calls`, migration 009), which session health is computed from.
//!
//! # Invariants
//! - After each committed transaction, the rollups equal an aggregation of the
//!   rows (a property test compares them with the from-scratch view of
//!   migration 002 on random ingestion).
//! - A transaction that rolls back leaves no delta behind: [`Pending::clear`].
//! - Rows written by anything else than the ingester (a manual fix with
//!   `sqlite3`) are not rolled up until the store rebuilds them
//!   (`call_monitor init --rebuild-rollups`, `store::rebuild_rollups`).
//!
//! # Duration buckets
//! Lower bounds 0, 1, 2, …; from 100 on each bucket is `lo / 100` wide, so a
//! bucket never spans more than 1 % of its values and its middle value is at
//! most 0.5 % from any of them. p95 is the middle of the bucket that holds
//! the nearest-rank value: relative error ≤ 0.5 %, exact below 100 ms.

use foldhash::{HashMap, HashSet};
use std::borrow::Cow;
use std::sync::LazyLock;

use rusqlite::Transaction;

/// The rollup-relevant columns of one `calls` row: read back from the
/// database (owned), or borrowed from the values just inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRow<'a> {
    pub function_id: Option<Cow<'a, str>>,
    pub ts: Cow<'a, str>,
    pub success: Option<i64>,
    pub duration_ms: Option<i64>,
    /// `tool_used = 'mcp'`.
    pub mcp: bool,
}

impl CallRow<'static> {
    /// Reads a row selected as `function_id, ts, success, duration_ms,
    /// tool_used`.
    pub fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(CallRow {
            function_id: row.get::<_, Option<String>>(0)?.map(Cow::Owned),
            ts: Cow::Owned(row.get(1)?),
            success: row.get(2)?,
            duration_ms: row.get(3)?,
            mcp: row.get_ref(4)?.as_str_or_null()? == Some("mcp"),
        })
    }
}

/// What calls add to a function's day (`call_days`) or all-time totals
/// (`call_totals`): the two tables have the same sums.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct CallSums {
    calls: i64,
    errors: i64,
    finished: i64,
    duration_sum: i64,
    durations: i64,
}

impl CallSums {
    /// One call row counted in (`sign` 1) or out (-1).
    fn of(row: &CallRow<'_>, sign: i64) -> Self {
        CallSums {
            calls: sign,
            errors: sign * i64::from(row.success == Some(0)),
            finished: sign * i64::from(row.success.is_some()),
            duration_sum: sign * row.duration_ms.unwrap_or(0),
            durations: sign * i64::from(row.duration_ms.is_some()),
        }
    }

    fn add(&mut self, other: CallSums) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.finished += other.finished;
        self.duration_sum += other.duration_sum;
        self.durations += other.durations;
    }
}

/// What calls add to a session's tallies (`session_calls`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct SessionSums {
    calls: i64,
    mcp: i64,
    failed: i64,
    finished: i64,
}

impl SessionSums {
    /// One call row counted in (`sign` 1) or out (-1).
    fn add(&mut self, row: &CallRow<'_>, sign: i64) {
        self.calls += sign;
        self.mcp += sign * i64::from(row.mcp);
        self.failed += sign * i64::from(row.success == Some(0));
        self.finished += sign * i64::from(row.success.is_some());
    }
}

/// Deltas of the current transaction, not yet written. Keyed by function, then
/// by day or bucket, so counting a call into a function already seen
/// allocates nothing.
#[derive(Debug, Default)]
pub struct Pending {
    functions: HashMap<String, FunctionDeltas>,
    /// Call tallies per session (`session_calls`).
    sessions: HashMap<String, SessionSums>,
    /// New `code_writes` rows per function (`function_counts.writes`).
    writes: HashMap<String, i64>,
    /// Call durations per day and bucket (`call_day_durations`).
    day_durations: HashMap<String, HashMap<i64, i64>>,
    calls: i64,
    events: i64,
}

/// One function's call deltas: `call_totals`, `call_days` by day,
/// `call_durations` by bucket.
#[derive(Debug, Default)]
struct FunctionDeltas {
    total: CallSums,
    days: HashMap<String, CallSums>,
    durations: HashMap<i64, i64>,
}

/// The value of `key` in `map`, inserted as the default when missing; the
/// key is copied only then.
pub(super) fn slot<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// Adds `key` to `set`, copying it only when it is new (the set twin of
/// [`slot`]).
pub(super) fn remember(set: &mut HashSet<String>, key: &str) {
    if !set.contains(key) {
        set.insert(key.to_string());
    }
}

impl Pending {
    /// Records that a call row of `session_id` went from `before` (`None`:
    /// inserted) to `after`.
    pub fn call_written(
        &mut self,
        session_id: &str,
        before: Option<&CallRow<'_>>,
        after: &CallRow<'_>,
    ) {
        if before == Some(after) {
            return;
        }
        if let Some(before) = before {
            self.count_call(session_id, before, -1);
        } else {
            self.calls += 1;
        }
        self.count_call(session_id, after, 1);
    }

    /// Records a new `code_writes` row of `function_id`.
    pub fn write_inserted(&mut self, function_id: &str) {
        *slot(&mut self.writes, function_id) += 1;
    }

    /// Records `n` new `events` rows.
    pub fn events_inserted(&mut self, n: u64) {
        self.events += n as i64;
    }

    /// Counts `row` in (`sign` 1) or out (-1) of its session's tallies and,
    /// when it names a function, of that function's rollups.
    fn count_call(&mut self, session_id: &str, row: &CallRow<'_>, sign: i64) {
        slot(&mut self.sessions, session_id).add(row, sign);
        let Some(function_id) = &row.function_id else {
            return;
        };
        let delta = CallSums::of(row, sign);
        let function = slot(&mut self.functions, function_id);
        function.total.add(delta);
        slot(&mut function.days, day_of(&row.ts)).add(delta);
        if let Some(duration) = row.duration_ms {
            *function.durations.entry(bucket(duration)).or_default() += sign;
            *slot(&mut self.day_durations, day_of(&row.ts))
                .entry(day_bucket(duration))
                .or_default() += sign;
        }
    }

    /// Forgets the deltas (their transaction rolled back).
    pub fn clear(&mut self) {
        *self = Pending::default();
    }

    /// Adds the deltas to the rollup tables inside `tx`, and clears them.
    pub fn flush(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut add_day = tx.prepare_cached(ADD_DAY)?;
        let mut add_total = tx.prepare_cached(ADD_TOTAL)?;
        let mut add_duration = tx.prepare_cached(ADD_DURATION)?;
        for (function_id, function) in self.functions.drain() {
            for (day, d) in function.days {
                if d == CallSums::default() {
                    continue;
                }
                add_day.execute((
                    &function_id,
                    &day,
                    d.calls,
                    d.errors,
                    d.finished,
                    d.duration_sum,
                    d.durations,
                ))?;
                // Only a call moved away (a late Pre's start time) can empty a day.
                if d.calls < 0 {
                    tx.prepare_cached(DROP_EMPTY_DAY)?
                        .execute((&function_id, &day))?;
                }
            }
            let d = function.total;
            if d != CallSums::default() {
                add_total.execute((
                    &function_id,
                    d.calls,
                    d.errors,
                    d.finished,
                    d.duration_sum,
                    d.durations,
                ))?;
                if d.calls < 0 {
                    tx.prepare_cached(DROP_EMPTY_TOTAL)?
                        .execute([&function_id])?;
                }
            }
            for (lo, n) in function.durations {
                if n == 0 {
                    continue;
                }
                add_duration.execute((&function_id, lo, n))?;
                if n < 0 {
                    tx.prepare_cached(DROP_EMPTY_DURATION)?
                        .execute((&function_id, lo))?;
                }
            }
        }
        if !self.day_durations.is_empty() {
            let mut add = tx.prepare_cached(ADD_DAY_DURATION)?;
            for (day, buckets) in self.day_durations.drain() {
                for (lo, n) in buckets {
                    if n == 0 {
                        continue;
                    }
                    add.execute((&day, lo, n))?;
                    if n < 0 {
                        tx.prepare_cached(DROP_EMPTY_DAY_DURATION)?
                            .execute((&day, lo))?;
                    }
                }
            }
        }
        if !self.sessions.is_empty() {
            let mut add_session = tx.prepare_cached(ADD_SESSION)?;
            for (session_id, d) in self.sessions.drain() {
                if d != SessionSums::default() {
                    add_session.execute((&session_id, d.calls, d.mcp, d.failed, d.finished))?;
                }
            }
        }
        if !self.writes.is_empty() {
            let mut add_writes = tx.prepare_cached(ADD_WRITES)?;
            for (function_id, n) in self.writes.drain() {
                add_writes.execute((&function_id, n))?;
            }
        }
        let mut count = tx.prepare_cached(ADD_COUNT)?;
        for (table, n) in [("events", self.events), ("calls", self.calls)] {
            if n != 0 {
                count.execute((table, n))?;
            }
        }
        self.calls = 0;
        self.events = 0;
        Ok(())
    }
}

const ADD_DAY: &str = "INSERT INTO call_days (function_id, day, calls, errors, finished, duration_sum, durations)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, errors = errors + excluded.errors,
        finished = finished + excluded.finished, duration_sum = duration_sum + excluded.duration_sum,
        durations = durations + excluded.durations";
const ADD_TOTAL: &str = "INSERT INTO call_totals (function_id, calls, errors, finished, duration_sum, durations)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, errors = errors + excluded.errors,
        finished = finished + excluded.finished, duration_sum = duration_sum + excluded.duration_sum,
        durations = durations + excluded.durations";
const DROP_EMPTY_TOTAL: &str = "DELETE FROM call_totals WHERE function_id = ?1 AND calls = 0";
const ADD_DURATION: &str = "INSERT INTO call_durations (function_id, lo, n) VALUES (?1, ?2, ?3)
     ON CONFLICT DO UPDATE SET n = n + excluded.n";
const DROP_EMPTY_DAY: &str =
    "DELETE FROM call_days WHERE function_id = ?1 AND day = ?2 AND calls = 0";
const DROP_EMPTY_DURATION: &str =
    "DELETE FROM call_durations WHERE function_id = ?1 AND lo = ?2 AND n = 0";
const ADD_DAY_DURATION: &str = "INSERT INTO call_day_durations (day, lo, n) VALUES (?1, ?2, ?3)
     ON CONFLICT DO UPDATE SET n = n + excluded.n";
const DROP_EMPTY_DAY_DURATION: &str =
    "DELETE FROM call_day_durations WHERE day = ?1 AND lo = ?2 AND n = 0";
const ADD_SESSION: &str = "INSERT INTO session_calls (session_id, calls, mcp, failed, finished)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, mcp = mcp + excluded.mcp,
        failed = failed + excluded.failed, finished = finished + excluded.finished";
const ADD_WRITES: &str = "INSERT INTO function_counts (function_id, writes) VALUES (?1, ?2)
     ON CONFLICT DO UPDATE SET writes = writes + excluded.writes";
const ADD_COUNT: &str = "INSERT INTO row_counts (tbl, n) VALUES (?1, ?2)
     ON CONFLICT DO UPDATE SET n = n + excluded.n";

/// The UTC day of a canonical timestamp (`YYYY-MM-DD`).
pub(super) fn day_of(ts: &str) -> &str {
    ts.get(..10).unwrap_or(ts)
}

/// Lower bounds of the duration buckets, as in `duration_buckets`.
static BUCKETS: LazyLock<Vec<i64>> = LazyLock::new(|| {
    let mut bounds = vec![0i64];
    let mut lo = 0i64;
    while lo < 9_000_000_000_000_000_000 {
        lo += (lo / 100).max(1);
        bounds.push(lo);
    }
    bounds
});

/// Lower bounds of the per-day buckets, as in `day_duration_buckets`
/// (migration 011): 5 % wide.
static DAY_BUCKETS: LazyLock<Vec<i64>> = LazyLock::new(|| {
    let mut bounds = vec![0i64];
    let mut lo = 0i64;
    while lo < 9_000_000_000_000_000_000 {
        lo += (lo / 20).max(1);
        bounds.push(lo);
    }
    bounds
});

/// The lower bound of the bucket holding `duration_ms` (≥ 0).
pub fn bucket(duration_ms: i64) -> i64 {
    lower_bound(&BUCKETS, duration_ms)
}

/// The lower bound of the per-day bucket holding `duration_ms` (≥ 0).
pub fn day_bucket(duration_ms: i64) -> i64 {
    lower_bound(&DAY_BUCKETS, duration_ms)
}

fn lower_bound(bounds: &[i64], duration_ms: i64) -> i64 {
    let at = bounds.partition_point(|&lo| lo <= duration_ms);
    bounds[at.saturating_sub(1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    use rusqlite::Connection;

    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrations::apply(&mut conn, crate::store::migrations::MIGRATIONS).unwrap();
        conn
    }

    #[test]
    fn buckets_match_the_migrations_table() {
        let conn = migrated();
        let table: Vec<i64> = conn
            .prepare("SELECT lo FROM duration_buckets ORDER BY lo")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(table, *BUCKETS);
        for d in [
            0,
            1,
            99,
            100,
            101,
            199,
            200,
            201,
            12_345,
            9_999_999,
            i64::MAX,
        ] {
            let lo = bucket(d);
            let sql: i64 = conn
                .query_row(
                    "SELECT lo FROM duration_buckets WHERE lo <= ?1 ORDER BY lo DESC LIMIT 1",
                    [d],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(lo, sql, "duration {d}");
        }
    }

    #[test]
    fn bucket_middles_are_within_half_a_percent() {
        let conn = migrated();
        let mut stmt = conn
            .prepare("SELECT rep FROM duration_buckets WHERE lo = ?1")
            .unwrap();
        for d in (0..100).chain((100..2_000_000).step_by(997)) {
            let rep: i64 = stmt.query_row([bucket(d)], |r| r.get(0)).unwrap();
            if d < 100 {
                assert_eq!(rep, d);
            } else {
                assert!((rep - d).abs() as f64 <= 0.005 * d as f64, "{d} -> {rep}");
            }
        }
    }
}

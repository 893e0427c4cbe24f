//! `tool_stats` (migration 010), rolled up by the ingester, against a
//! from-scratch computation over `tool_uses` on random tool uses: every
//! column agrees exactly, except `mean_duration_ms` (floating sums) and
//! `p95_duration_ms` (histogram: ≤ 0.5 %, exact below 100 ms). The
//! incremental rollups also equal a rebuild, and the sessions' tool counts
//! equal counts of their rows.

use proptest::prelude::*;
use rusqlite::{types::Value, Connection};

use super::rollups::{agree, replay_in_runs, shifted, shuffle, tool_use_lines};
use super::support::{named_row, succeed, Scratch};

const TOOLS: &[&str] = &[
    "Bash",
    "Read",
    "Edit",
    "Task",
    "mcp__github__create_issue",
    "mcp__github__list_prs",
    "mcp__fs__read",
];

/// The from-scratch view: one row per tool and per MCP server, straight
/// from the rows.
const SCRATCH: &str = r"
CREATE TEMP VIEW tool_stats_scratch AS
WITH names AS (SELECT DISTINCT tool_name FROM tool_uses),
members AS (
    SELECT tool_name AS stat_key, tool_name FROM names
    UNION
    SELECT 'mcp__' || substr(tool_name, 6, instr(substr(tool_name, 6), '__') - 1), tool_name FROM names
    WHERE tool_name LIKE 'mcp\_\_%' ESCAPE '\' AND instr(substr(tool_name, 6), '__') > 1
),
u AS (SELECT m.stat_key, x.* FROM members m JOIN tool_uses x ON x.tool_name = m.tool_name),
ranked AS (
    SELECT stat_key, duration_ms,
           ROW_NUMBER() OVER (PARTITION BY stat_key ORDER BY duration_ms) AS rank,
           COUNT(*) OVER (PARTITION BY stat_key) AS n
    FROM u WHERE duration_ms IS NOT NULL
),
p95 AS (SELECT stat_key, duration_ms FROM ranked WHERE rank = (95 * n + 99) / 100)
SELECT u.stat_key AS tool_name, COUNT(*) AS uses, COUNT(success) AS uses_finished,
       COALESCE(SUM(success = 0), 0) AS failures, SUM(interrupted) AS interrupts,
       CASE WHEN COUNT(success) > 0 THEN 1.0 * SUM(success = 0) / COUNT(success) END AS error_rate,
       AVG(u.duration_ms) AS mean_duration_ms,
       (SELECT duration_ms FROM p95 WHERE p95.stat_key = u.stat_key) AS p95_duration_ms,
       COUNT(DISTINCT session_id) AS sessions,
       SUM(ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 day')) AS uses_24h,
       SUM(ts >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-7 days')) AS uses_7d,
       MAX(ts) AS last_used_at
FROM u GROUP BY u.stat_key";

#[derive(Debug, Clone)]
struct ToolUse {
    session: usize,
    tool: usize,
    /// Without a tool_use_id (Claude Code before late 2025).
    keyed: bool,
    age: i64,
    pre: bool,
    /// None: no Post; Some(true): PostToolUse; Some(false): a failure.
    post: Option<bool>,
    interrupted: bool,
    took_ms: i64,
    payload_duration: bool,
}

fn tool_use_strategy() -> impl Strategy<Value = ToolUse> {
    (
        (0usize..3, 0..TOOLS.len(), prop::bool::weighted(0.7)),
        (0i64..10 * 86_400).prop_filter("near a window edge", |age| {
            [1, 7].iter().all(|days| (age - days * 86_400).abs() > 120)
        }),
        prop::bool::weighted(0.85),
        prop_oneof![1 => Just(None), 3 => Just(Some(true)), 1 => Just(Some(false))],
        prop::bool::weighted(0.1),
        prop_oneof![0i64..100, 0i64..30_000],
        any::<bool>(),
    )
        .prop_filter("a tool use has an event", |(_, _, pre, post, ..)| {
            *pre || post.is_some()
        })
        .prop_map(
            |((session, tool, keyed), age, pre, post, interrupted, took_ms, payload_duration)| {
                ToolUse {
                    session,
                    tool,
                    keyed,
                    age,
                    pre,
                    post,
                    interrupted,
                    took_ms,
                    payload_duration,
                }
            },
        )
}

/// The envelope lines of `uses`, shuffled by `order`. Unkeyed tool uses
/// have inputs of their own, so first-in-first-out pairs them exactly.
fn spool_lines(conn: &Connection, uses: &[ToolUse], order: u64) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, u) in uses.iter().enumerate() {
        let start = shifted(conn, "now", format!("-{} seconds", u.age));
        let end = shifted(
            conn,
            &start,
            format!("+{:.3} seconds", u.took_ms as f64 / 1000.0),
        );
        let event = |name: &str| {
            let mut event = serde_json::json!({
                "session_id": format!("s{}", u.session), "hook_event_name": name,
                "tool_name": TOOLS[u.tool], "command": format!("echo {i}"),
            });
            if u.keyed {
                event["tool_use_id"] = format!("toolu_{i}").into();
            }
            event
        };
        lines.extend(tool_use_lines(
            i,
            &start,
            &end,
            u.pre,
            u.post,
            event,
            |post, success| {
                if u.payload_duration {
                    post["duration_ms"] = u.took_ms.into();
                }
                if u.interrupted {
                    post[if success {
                        "interrupted"
                    } else {
                        "is_interrupt"
                    }] = true.into();
                }
            },
        ));
    }
    shuffle(&mut lines, order);
    lines
}

fn read(conn: &Connection, view: &str) -> Vec<Vec<(String, Value)>> {
    conn.prepare(&format!("SELECT * FROM {view} ORDER BY tool_name"))
        .unwrap()
        .query_map([], named_row)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn rollup_tables(conn: &Connection) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT 'total', tool_name, uses, finished, failures, interrupts, duration_sum, durations, sessions FROM tool_totals ORDER BY 2",
        "SELECT 'day', tool_name, day, uses, 0, 0, 0, 0, 0 FROM tool_days ORDER BY 2, 3",
        "SELECT 'duration', tool_name, lo, n, 0, 0, 0, 0, 0 FROM tool_durations ORDER BY 2, 3",
        "SELECT 'session', tool_name, session_id, 0, 0, 0, 0, 0, 0 FROM tool_sessions ORDER BY 2, 3",
        "SELECT 'member', stat_key, tool_name, 0, 0, 0, 0, 0, 0 FROM tool_members ORDER BY 2, 3",
        "SELECT 'activity', session_id, tool_uses, tool_failures, 0, 0, 0, 0, 0 FROM sessions ORDER BY 2",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        rows.extend(
            stmt.query_map([], |r| (0..9).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .map(Result::unwrap),
        );
    }
    rows
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn tool_stats_equal_a_from_scratch_computation(
        uses in prop::collection::vec(tool_use_strategy(), 1..40),
        order in any::<u64>(),
        cuts in prop::collection::vec(any::<usize>(), 0..3),
    ) {
        let scratch = Scratch::new();
        succeed(&mut scratch.cmd(&["init"]));
        let conn = Connection::open(scratch.db()).unwrap();
        replay_in_runs(&scratch, &spool_lines(&conn, &uses, order), &cuts);
        // One row per tool use, however its events arrived.
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM tool_uses", [], |r| r.get(0)).unwrap();
        prop_assert_eq!(rows, uses.len() as i64);
        conn.execute_batch(SCRATCH).unwrap();
        let (rolled, scratch_rows) = (read(&conn, "tool_stats"), read(&conn, "tool_stats_scratch"));
        prop_assert_eq!(rolled.len(), scratch_rows.len());
        for (r, s) in rolled.iter().zip(&scratch_rows) {
            if let Err(e) = agree(r, s) {
                prop_assert!(false, "{:?}: {}", r[0].1, e);
            }
        }
        let mismatched: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sessions s WHERE tool_uses != (SELECT COUNT(*) FROM tool_uses t WHERE t.session_id = s.session_id)
                 OR tool_failures != (SELECT COUNT(*) FROM tool_uses t WHERE t.session_id = s.session_id AND success = 0)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        prop_assert_eq!(mismatched, 0, "session tool counts");
        let incremental = rollup_tables(&conn);
        call_monitor::store::rebuild_rollups(&conn).unwrap();
        prop_assert_eq!(incremental, rollup_tables(&conn), "incremental rollups differ from a rebuild");
    }
}

//! `function_stats` checked column by column against values computed by hand
//! from rows inserted into the event tables.

use call_monitor::store::{Database, Missing};
use rusqlite::{types::Value, Connection};

use crate::support::named_row;

/// The view's columns, in CONTRACT §4 order.
const COLUMNS: &[&str] = &[
    "function_id",
    "calls_total",
    "calls_24h",
    "calls_7d",
    "calls_30d",
    "calls_90d",
    "last_used_at",
    "errors_total",
    "error_rate",
    "last_error_ts",
    "mean_duration_ms",
    "p95_duration_ms",
    "writes_count",
    "last_write_at",
    "tests_total",
    "tests_failed",
    "test_fail_rate",
    "last_test_failed_at",
    "e2e_total",
    "e2e_failed",
    "e2e_fail_rate",
    "consumer_apps_count",
    "violations_caused",
];

fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("ops.db"), Missing::Create).unwrap();
    (dir, db)
}

/// The canonical timestamp `offset` (an SQLite modifier such as '-3 hours')
/// away from now.
fn ago(conn: &Connection, offset: &str) -> String {
    conn.query_row(
        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)",
        [offset],
        |r| r.get(0),
    )
    .unwrap()
}

fn call(conn: &Connection, function: &str, ts: &str, duration: Option<i64>, success: Option<i64>) {
    conn.execute(
        "INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success)
         VALUES ('s1', ?1, 'fn_run', ?2, ?3, ?4)",
        (function, ts, duration, success),
    )
    .unwrap();
}

/// A row of the view. Calls are written here with plain SQL, which the
/// ingester's rollups do not see: rebuild them first.
fn stats_row(conn: &Connection, function: &str) -> Vec<(String, Value)> {
    call_monitor::store::rebuild_rollups(conn).unwrap();
    let mut stmt = conn
        .prepare("SELECT * FROM function_stats WHERE function_id = ?1")
        .unwrap();
    stmt.query_row([function], named_row).unwrap()
}

fn get<'a>(row: &'a [(String, Value)], column: &str) -> &'a Value {
    &row.iter()
        .find(|(n, _)| n == column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .1
}

fn int(v: i64) -> Value {
    Value::Integer(v)
}
fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}
fn assert_real(row: &[(String, Value)], column: &str, want: f64) {
    match get(row, column) {
        Value::Real(got) => assert!(
            (got - want).abs() < 1e-9,
            "{column}: got {got}, want {want}"
        ),
        other => panic!("{column}: got {other:?}, want {want}"),
    }
}
fn assert_col(row: &[(String, Value)], column: &str, want: Value) {
    assert_eq!(get(row, column), &want, "column {column}");
}

#[test]
fn view_has_exactly_the_contract_columns_in_order() {
    let (_dir, db) = open();
    let mut stmt = db.conn().prepare("SELECT * FROM function_stats").unwrap();
    let names: Vec<&str> = stmt.column_names();
    assert_eq!(names, COLUMNS);
    assert!(stmt.query([]).unwrap().next().unwrap().is_none());
}

#[test]
fn every_column_matches_hand_computed_values() {
    let (_dir, db) = open();
    let c = db.conn();
    let t1h = ago(c, "-1 hours");
    let t3h = ago(c, "-3 hours");
    let t2d = ago(c, "-2 days");
    let t10d = ago(c, "-10 days");
    let t40d = ago(c, "-40 days");
    let t100d = ago(c, "-100 days");
    let f = "alpha_py_data";
    // calls: windows 24h={1h,3h}, 7d=+2d, 30d=+10d, 90d=+40d, total=+100d.
    call(c, f, &t1h, Some(100), Some(1));
    call(c, f, &t3h, Some(400), Some(0));
    call(c, f, &t2d, Some(200), Some(0));
    call(c, f, &t10d, Some(300), Some(1));
    call(c, f, &t40d, None, None); // unfinished: no duration, no outcome
    call(c, f, &t100d, Some(50), Some(1));
    // A call without a function id counts nowhere in the view.
    c.execute(
        "INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success)
         VALUES ('s1', NULL, 'mcp', ?1, 999999, 0)",
        [&t1h],
    )
    .unwrap();
    for ts in [&t10d, &t2d] {
        c.execute(
            "INSERT INTO code_writes (session_id, function_id, file_path, lines_added, lines_removed, ts)
             VALUES ('s1', ?1, 'functions/py/data/alpha.py', 3, 1, ?2)",
            (f, ts),
        )
        .unwrap();
    }
    for (passed, ts) in [(1, &t1h), (0, &t2d), (1, &t10d)] {
        c.execute(
            "INSERT INTO test_runs (session_id, function_id, test_id, passed, duration_ms, ts)
             VALUES ('s1', ?1, 't', ?2, 10, ?3)",
            (f, passed, ts),
        )
        .unwrap();
    }
    for (app, passed) in [("app1", 1), ("app1", 0), ("app2", 1)] {
        c.execute(
            "INSERT INTO e2e_runs_fn (session_id, function_id, app_id, check_id, passed, ts)
             VALUES ('s1', ?1, ?2, 'build', ?3, ?4)",
            (f, app, passed, &t3h),
        )
        .unwrap();
    }
    for function in [Some(f), Some(f), None, Some("only_violated_sh_ops")] {
        c.execute(
            "INSERT INTO violations (session_id, rule_id, function_id, severity, ts)
             VALUES ('s1', 'import_star', ?1, 'warn', ?2)",
            (function, &t1h),
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO function_versions (function_id, version, content_hash, source, seen_at)
         VALUES ('unused_go_infra', '1.0.0', 'abc', 'index', ?1)",
        [&t100d],
    )
    .unwrap();

    let row = stats_row(c, f);
    assert_col(&row, "calls_total", int(6));
    assert_col(&row, "calls_24h", int(2));
    assert_col(&row, "calls_7d", int(3));
    assert_col(&row, "calls_30d", int(4));
    assert_col(&row, "calls_90d", int(5));
    assert_col(&row, "last_used_at", text(&t1h));
    assert_col(&row, "errors_total", int(2));
    assert_real(&row, "error_rate", 2.0 / 5.0); // the unfinished call is not a success
    assert_col(&row, "last_error_ts", text(&t3h));
    assert_real(
        &row,
        "mean_duration_ms",
        (100.0 + 400.0 + 200.0 + 300.0 + 50.0) / 5.0,
    );
    assert_col(&row, "p95_duration_ms", int(400)); // rank ceil(0.95*5)=5 of [50,100,200,300,400]
    assert_col(&row, "writes_count", int(2));
    assert_col(&row, "last_write_at", text(&t2d));
    assert_col(&row, "tests_total", int(3));
    assert_col(&row, "tests_failed", int(1));
    assert_real(&row, "test_fail_rate", 1.0 / 3.0);
    assert_col(&row, "last_test_failed_at", text(&t2d));
    assert_col(&row, "e2e_total", int(3));
    assert_col(&row, "e2e_failed", int(1));
    assert_real(&row, "e2e_fail_rate", 1.0 / 3.0);
    assert_col(&row, "consumer_apps_count", int(2));
    assert_col(&row, "violations_caused", int(2));

    // Known only to the registry snapshot: present, with zeros and NULLs.
    let row = stats_row(c, "unused_go_infra");
    for zero in [
        "calls_total",
        "calls_24h",
        "errors_total",
        "writes_count",
        "tests_total",
        "e2e_total",
        "consumer_apps_count",
        "violations_caused",
    ] {
        assert_col(&row, zero, int(0));
    }
    for null in [
        "last_used_at",
        "error_rate",
        "mean_duration_ms",
        "p95_duration_ms",
        "test_fail_rate",
        "e2e_fail_rate",
        "last_error_ts",
    ] {
        assert_col(&row, null, Value::Null);
    }
    assert_col(
        &stats_row(c, "only_violated_sh_ops"),
        "violations_caused",
        int(1),
    );

    call_monitor::store::rebuild_rollups(c).unwrap();
    let functions: i64 = c
        .query_row("SELECT COUNT(*) FROM function_stats", [], |r| r.get(0))
        .unwrap();
    assert_eq!(functions, 3, "NULL function ids form no row");
}

#[test]
fn p95_is_the_nearest_rank_percentile() {
    let (_dir, db) = open();
    let c = db.conn();
    let ts = ago(c, "-1 minutes");
    // (n, expected p95): rank = ceil(0.95 n).
    let cases: &[(i64, i64)] = &[
        (1, 1),
        (2, 2),
        (19, 19),
        (20, 19),
        (21, 20),
        (100, 95),
        (101, 96),
    ];
    for &(n, _) in cases {
        // Insert in descending order so the view must sort, not trust ingest order.
        for d in (1..=n).rev() {
            call(c, &format!("p_{n}_sh_x"), &ts, Some(d), Some(1));
        }
    }
    for &(n, want) in cases {
        let row = stats_row(c, &format!("p_{n}_sh_x"));
        assert_col(&row, "p95_duration_ms", int(want));
        assert_real(&row, "mean_duration_ms", (n + 1) as f64 / 2.0);
    }
}

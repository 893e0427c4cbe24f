//! `snapshot` against real registries (changed, missing, foreign, locked)
//! and the daemon's scheduled insight pass.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::Connection;

use crate::support::{bash_payload, wait_until, Daemon, Scratch};

fn registry(scratch: &Scratch) -> PathBuf {
    crate::classification::fixture_registry(scratch.dir.path())
}

fn snapshot(scratch: &Scratch, registry: &std::path::Path) -> std::process::Output {
    let mut cmd = scratch.cmd(&["snapshot"]);
    cmd.arg("--registry").arg(registry);
    cmd.output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn snapshot_records_each_change_once() {
    let scratch = Scratch::new();
    let registry = registry(&scratch);
    assert_eq!(
        stdout(&snapshot(&scratch, &registry)).trim(),
        "functions=5 recorded=5 unchanged=0 fingerprinted=0 unreadable=5"
    );
    assert_eq!(
        stdout(&snapshot(&scratch, &registry)).trim(),
        "functions=5 recorded=0 unchanged=5 fingerprinted=0 unreadable=5"
    );
    Connection::open(&registry)
        .unwrap()
        .execute_batch(
            "UPDATE functions SET version = '1.3.0' WHERE id = 'sqlite_open_go_infra';
             UPDATE functions SET content_hash = 'abc' WHERE id = 'csv_load_py_data';",
        )
        .unwrap();
    assert_eq!(
        stdout(&snapshot(&scratch, &registry)).trim(),
        "functions=5 recorded=2 unchanged=3 fingerprinted=0 unreadable=5"
    );
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM function_versions WHERE source = 'index'"),
        7
    );
    assert_eq!(
        scratch.count(
            "SELECT COUNT(*) FROM function_versions WHERE function_id = 'sqlite_open_go_infra' AND version = '1.3.0'"
        ),
        1
    );
}

#[test]
fn snapshot_refuses_missing_foreign_and_locked_registries() {
    let scratch = Scratch::new();
    let missing = scratch.dir.path().join("nowhere.db");
    let out = snapshot(&scratch, &missing);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!missing.exists(), "a missing registry must not be created");

    let foreign = scratch.dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let out = snapshot(&scratch, &foreign);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a fn_registry database"));

    let out = scratch.cmd(&["snapshot"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no --registry is a usage error");

    // A writer holding an exclusive lock past the busy timeout (5 s).
    let registry = registry(&scratch);
    let holder = Connection::open(&registry).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = snapshot(&scratch, &registry);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is locked by another process"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    holder.execute_batch("ROLLBACK").unwrap();
    stdout(&snapshot(&scratch, &registry));
}

#[test]
fn daemon_runs_the_insight_pass_every_interval() {
    let scratch = Scratch::new();
    let registry = registry(&scratch);
    let registry_arg = registry.to_str().unwrap();
    // Three sessions of two calls are too few for a significant sequence;
    // this test is about the schedule, so every mined sequence counts.
    let daemon = Daemon::start(
        &scratch,
        &[
            "--interval",
            "300ms",
            "--registry",
            registry_arg,
            "--fdr",
            "1",
            "--min-lift",
            "1",
        ],
    );
    // Three sessions chain sqlite_open → sqlite_apply_migrations.
    for session in 0..3 {
        for (n, function) in ["sqlite_open_go_infra", "sqlite_apply_migrations_go_infra"]
            .iter()
            .enumerate()
        {
            let (code, stderr) = scratch.hook(&bash_payload(
                &format!("sched-{session}"),
                &format!("toolu_{session}_{n}"),
                function,
            ));
            assert_eq!(code, 0, "{stderr}");
        }
    }
    let reg = Connection::open(&registry).unwrap();
    reg.busy_timeout(Duration::from_secs(10)).unwrap();
    wait_until("a new_pipeline proposal", Duration::from_secs(60), || {
        reg.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'proposals'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
            && reg
                .query_row(
                    "SELECT COUNT(*) FROM proposals WHERE dedupe_key = 'new_pipeline:sqlite_open_go_infra>sqlite_apply_migrations_go_infra'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                == 1
    });
    // The snapshot ran too (source `index`), once per function however
    // many passes ran.
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM function_versions WHERE source = 'index'"),
        5
    );
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    // (Whether the last pass finished or was interrupted by the shutdown
    // depends on timing; both are fine, the rows above are what counts.)
    assert!(stderr.contains("insight passes scheduled"), "{stderr}");
    assert_eq!(
        reg.query_row("SELECT COUNT(*) FROM proposals", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1,
        "each proposal once across passes"
    );
}

#[test]
fn telemetry_proposals_follow_their_thresholds() {
    let scratch = Scratch::new();
    let out = scratch.cmd(&["init"]).output().unwrap();
    assert!(out.status.success());
    let conn = Connection::open(scratch.db()).unwrap();
    let now = chrono::Utc::now();
    let at = |days_ago: i64| {
        call_monitor::contract::timefmt::format(now - chrono::Duration::days(days_ago))
    };
    let mut insert = conn
        .prepare("INSERT INTO calls (session_id, function_id, tool_used, ts, success) VALUES ('s', ?1, 'fn_run', ?2, ?3)")
        .unwrap();
    // flaky: 40 calls, 20 failed: the 95 % Wilson lower bound of 50 % is
    // 0.35 ≥ 0.25 → error_prone; 40 calls and never tested → untested.
    for i in 0..40 {
        insert
            .execute(("flaky_py_ops", at(1), i64::from(i >= 20)))
            .unwrap();
    }
    // noisy: 10 calls, 3 failed — 30 %, but the lower bound is 0.11: too
    // few calls to call it error-prone.
    for i in 0..10 {
        insert
            .execute(("noisy_py_ops", at(1), i64::from(i >= 3)))
            .unwrap();
    }
    // busy: 20 calls, all fine, never tested → untested.
    for _ in 0..20 {
        insert.execute(("busy_py_ops", at(1), 1)).unwrap();
    }
    // tested: 20 calls and a test run → nothing.
    for _ in 0..20 {
        insert.execute(("tested_py_ops", at(1), 1)).unwrap();
    }
    conn.execute(
        "INSERT INTO test_runs (session_id, function_id, passed, ts) VALUES ('s', 'tested_py_ops', 1, ?1)",
        [at(1)],
    )
    .unwrap();
    // old: last used 100 days ago → unused; recent: 89 days → nothing.
    insert.execute(("old_py_ops", at(100), 1)).unwrap();
    insert.execute(("recent_py_ops", at(89), 1)).unwrap();
    // almost: 9 calls all failed → below error_min_calls.
    for _ in 0..9 {
        insert.execute(("almost_py_ops", at(1), 0)).unwrap();
    }
    drop(insert);
    // Written with plain SQL, not by the ingester: roll them up.
    call_monitor::store::rebuild_rollups(&conn).unwrap();

    let out = scratch.cmd(&["propose", "--dry-run"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(str::to_string))
        .collect();
    assert_eq!(
        keys,
        [
            "error_prone:flaky_py_ops",
            "untested:busy_py_ops",
            "untested:flaky_py_ops",
            "unused:old_py_ops"
        ]
    );

    // Thresholds are options: a lower error floor adds `almost`.
    let out = scratch
        .cmd(&[
            "propose",
            "--dry-run",
            "--error-min-calls",
            "9",
            "--unused-after",
            "30d",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error_prone:almost_py_ops"), "{text}");
    assert!(text.contains("unused:recent_py_ops"), "{text}");

    // A window longer than the calendar proposes nothing unused, and does
    // not fail.
    let out = scratch
        .cmd(&["propose", "--dry-run", "--unused-after", "500000years"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("unused:"), "{text}");
}

//! The classification fixture: realistic hook events covering every default
//! rule with positive and negative cases, replayed against a registry, must
//! produce exactly the rows in `fixtures/classification/expected.json`.
//!
//! After an intended change, regenerate the file with
//! `CALL_MONITOR_BLESS=1 cargo test --test it classification` and review
//! the diff row by row.

use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::{json, Map, Value};

use crate::support::{succeed, Scratch};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/classification")
        .join(name)
}

/// Builds registry.db from `fixtures/classification/registry.sql`.
pub fn fixture_registry(dir: &Path) -> PathBuf {
    let path = dir.join("registry.db");
    let sql = std::fs::read_to_string(fixture("registry.sql")).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute_batch(&sql)
        .unwrap();
    path
}

/// Compared columns per table: everything but ids, bookkeeping and the
/// key-dependent `args_hash` (checked separately).
const TABLES: &[(&str, &str)] = &[
    (
        "sessions",
        "session_id, cwd, host, started_at, ended_at, health_score, mcp_ratio",
    ),
    (
        "calls",
        "session_id, function_id, tool_used, ts, duration_ms, success, error_class",
    ),
    (
        "code_writes",
        "session_id, function_id, file_path, lines_added, lines_removed, ts",
    ),
    (
        "test_runs",
        "session_id, function_id, test_id, passed, duration_ms, output_snippet, ts",
    ),
    (
        "e2e_runs_fn",
        "session_id, function_id, app_id, check_id, passed, ts",
    ),
    (
        "violations",
        "session_id, rule_id, function_id, severity, ts",
    ),
    ("patterns", "pattern_hash, occurrences, session_ids"),
    (
        "function_versions",
        "function_id, version, content_hash, source, session_id",
    ),
    ("heredoc_skeletons", "skeleton_hash, skeleton, tokens"),
    ("heredocs", "session_id, ordinal, skeleton_hash, ts"),
    ("quarantine", "file, reason"),
];

fn rows(conn: &Connection, table: &str, columns: &str) -> Value {
    let sql = format!("SELECT {columns} FROM {table} ORDER BY {columns}");
    let mut stmt = conn.prepare(&sql).unwrap();
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let rows = stmt
        .query_map([], |r| {
            let mut row = Map::new();
            for (i, name) in names.iter().enumerate() {
                let value = match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => json!(n),
                    ValueRef::Real(x) => json!(x),
                    ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    ValueRef::Blob(_) => json!("<blob>"),
                };
                row.insert(name.clone(), value);
            }
            Ok(Value::Object(row))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    Value::Array(rows)
}

fn every_table(conn: &Connection) -> Value {
    let mut all = Map::new();
    for (table, columns) in TABLES {
        all.insert(table.to_string(), rows(conn, table, columns));
    }
    Value::Object(all)
}

#[test]
fn fixture_events_produce_exactly_the_expected_rows() {
    let scratch = Scratch::new();
    let registry = fixture_registry(scratch.dir.path());
    let events = fixture("events.jsonl");
    let stdout = succeed(
        scratch
            .cmd(&["replay"])
            .arg(&events)
            .arg("--registry")
            .arg(&registry),
    );
    assert_eq!(
        stdout.trim(),
        "events=47 inserted=47 duplicates=0 quarantined=0"
    );

    let conn = scratch.read();
    let actual = every_table(&conn);
    let expected_path = fixture("expected.json");
    if std::env::var_os("CALL_MONITOR_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&actual).unwrap();
        std::fs::write(&expected_path, text + "\n").unwrap();
    }
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    for (table, _) in TABLES {
        assert_eq!(
            actual[table], expected[table],
            "table {table} differs from fixtures/classification/expected.json"
        );
    }

    // args_hash: present on every call, keyed (hex, 128 bits), and equal
    // only for equal arguments.
    let bad: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE args_hash IS NULL OR length(args_hash) != 32",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bad, 0);
}

#[test]
fn same_fixture_without_registry_uses_path_patterns_and_no_app_expansion() {
    let scratch = Scratch::new();
    let out = scratch
        .cmd(&["replay"])
        .arg(fixture("events.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    // Writes are still recognised from the functions/<lang>/<domain>/ layout.
    assert_eq!(scratch.count("SELECT COUNT(*) FROM code_writes"), 2);
    // Without app_functions, each e2e run is one row with no function.
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM e2e_runs_fn WHERE function_id IS NULL"),
        2
    );
    // Without registry names, a reinvented function cannot be recognised.
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM violations WHERE rule_id = 'heredoc_reinvention'"),
        0
    );
}

#[test]
fn rules_file_changes_classification_and_bad_files_are_refused() {
    let scratch = Scratch::new();
    let rules = scratch.dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"version": 1, "rules": [
            {"id": "sqlite3_inline", "severity": "error"},
            {"id": "import_star", "enabled": false},
            {"id": "cd_srv", "kind": "violation", "scope": "command", "pattern": "^cd /srv", "severity": "info"}
        ]}"#,
    )
    .unwrap();
    let out = scratch
        .cmd(&["replay"])
        .arg(fixture("events.jsonl"))
        .arg("--rules")
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_rule = |rule: &str| {
        scratch.count(&format!(
            "SELECT COUNT(*) FROM violations WHERE rule_id = '{rule}'"
        ))
    };
    assert_eq!(by_rule("import_star"), 0);
    assert_eq!(by_rule("cd_srv"), 1);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM violations WHERE rule_id = 'sqlite3_inline' AND severity = 'error'"),
        1
    );

    std::fs::write(
        &rules,
        r#"{"rules": [{"id": "broken_rule", "kind": "violation", "scope": "command", "pattern": "fn run (", "severity": "warn"}]}"#,
    )
    .unwrap();
    let out = crate::support::call_monitor()
        .args(["replay", "--rules"])
        .arg(&rules)
        .arg("--db")
        .arg(scratch.dir.path().join("other.db"))
        .arg("--spool")
        .arg(scratch.spool())
        .arg(fixture("events.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("broken_rule") && stderr.contains("invalid pattern"),
        "{stderr}"
    );
}

#[test]
fn daemon_reloads_rules_on_sighup_and_keeps_them_when_the_file_breaks() {
    use crate::support::{envelope_line, wait_until, Daemon};
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::time::Duration;

    let scratch = Scratch::new();
    let rules = scratch.dir.path().join("rules.json");
    let write_rules = |severity: &str| {
        std::fs::write(
            &rules,
            format!(r#"{{"rules": [{{"id": "fn_run_seen", "kind": "violation", "scope": "command", "pattern": "^fn run ", "severity": "{severity}"}}]}}"#),
        )
        .unwrap();
    };
    write_rules("info");
    let rules_arg = rules.to_str().unwrap().to_string();
    let daemon = Daemon::start(&scratch, &["--rules", &rules_arg]);
    let pid = Pid::from_raw(daemon.child.id() as i32);
    let spool_line = |n: usize| {
        let line = envelope_line(&format!("e{n}"), "s", &format!("t{n}"), "a_py_x");
        let path = scratch.spool().join(format!("ext-{n}.jsonl"));
        std::fs::write(path, line).unwrap();
    };
    let severities = || {
        let conn = scratch.read();
        let mut stmt = conn
            .prepare("SELECT severity FROM violations ORDER BY tool_use_id")
            .unwrap();
        stmt.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };

    spool_line(1);
    wait_until("first violation", Duration::from_secs(30), || {
        severities().len() == 1
    });

    write_rules("error");
    kill(pid, Signal::SIGHUP).unwrap();
    // The reload happens before the next pass; the line written after the
    // signal is classified with the new rules.
    std::thread::sleep(Duration::from_secs(1));
    spool_line(2);
    wait_until("second violation", Duration::from_secs(30), || {
        severities().len() == 2
    });

    std::fs::write(&rules, "{ not json").unwrap();
    kill(pid, Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    spool_line(3);
    wait_until("third violation", Duration::from_secs(30), || {
        severities().len() == 3
    });
    assert_eq!(severities(), ["info", "error", "error"]);

    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("rules and registry reloaded"), "{stderr}");
    assert!(stderr.contains("keeping the previous rules"), "{stderr}");
}

//! The real binary, spawned: the seed's e2e checks, exit codes, one-line
//! errors, env overrides, and the report on recorded data.

use std::path::Path;
use std::process::Command;

use crate::support::{call_monitor, succeed, Scratch};

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Outcome {
    let out = cmd.output().unwrap();
    Outcome {
        code: out.status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn with_db(args: &[&str], db: &Path) -> Outcome {
    run(call_monitor().args(args).arg("--db").arg(db))
}

/// A runtime error: exit 1, exactly one stderr line, no panic or backtrace.
fn assert_one_line_error(out: &Outcome, needle: &str) {
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "stderr: {:?}", out.stderr);
    assert!(
        out.stderr.contains(needle),
        "stderr {:?} lacks {needle:?}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"));
}

#[test]
fn seed_e2e_checks_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("call_monitor_e2e.db");
    let init = with_db(&["init"], &db);
    assert_eq!(init.code, 0, "{}", init.stderr);
    assert!(init.stdout.contains("ready"), "{}", init.stdout);
    let status = with_db(&["status"], &db);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(
        status.stdout.contains("no calls recorded yet"),
        "{}",
        status.stdout
    );
    let view = run(Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT COUNT(*) FROM function_stats;"));
    assert_eq!((view.code, view.stdout.trim()), (0, "0"), "{}", view.stderr);
}

#[test]
fn init_is_idempotent_and_honours_the_env_override() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    for _ in 0..2 {
        let out = run(call_monitor().arg("init").env("CALL_MONITOR_DB", &db));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("ready"));
    }
    assert!(db.exists());
    let versions = run(Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT group_concat(version) FROM schema_migrations;"));
    let every: Vec<String> = call_monitor::store::migrations::MIGRATIONS
        .iter()
        .map(|m| m.version.to_string())
        .collect();
    assert_eq!(versions.stdout.trim(), every.join(","));
}

#[test]
fn status_reports_recorded_calls_as_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops.db");
    assert_eq!(with_db(&["init"], &db).code, 0);
    let seed = "
        INSERT INTO sessions (session_id) VALUES ('s1'), ('s2');
        INSERT INTO events (dedupe_key, envelope_id, ts, ingested_at) VALUES ('id:e1', 'e1', 1764000000000, 1764000000003);
        INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success) VALUES
          ('s1', 'sqlite_open_go_infra', 'fn_run', strftime('%Y-%m-%dT%H:%M:%fZ','now','-1 hours'), 10, 1),
          ('s1', 'sqlite_open_go_infra', 'fn_run', strftime('%Y-%m-%dT%H:%M:%fZ','now','-2 hours'), 30, 0),
          ('s2', 'csv_read_py_data', 'mcp', strftime('%Y-%m-%dT%H:%M:%fZ','now','-3 days'), NULL, NULL);
        INSERT INTO violations (session_id, rule_id, function_id, severity, ts) VALUES
          ('s1', 'sqlite3_inline', NULL, 'warn', strftime('%Y-%m-%dT%H:%M:%fZ','now'));
        INSERT INTO tool_uses (session_id, tool_name, ts, duration_ms, success) VALUES
          ('s1', 'Bash', strftime('%Y-%m-%dT%H:%M:%fZ','now','-1 hours'), 10, 1),
          ('s1', 'Bash', strftime('%Y-%m-%dT%H:%M:%fZ','now','-2 hours'), 30, 0),
          ('s2', 'Bash', strftime('%Y-%m-%dT%H:%M:%fZ','now','-3 days'), 5, 1),
          ('s2', 'mcp__registry__run', strftime('%Y-%m-%dT%H:%M:%fZ','now','-3 days'), NULL, NULL);
    ";
    assert_eq!(run(Command::new("sqlite3").arg(&db).arg(seed)).code, 0);
    // Rows written by hand: the documented way to roll them up.
    let rebuilt = with_db(&["init", "--rebuild-rollups"], &db);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert!(
        rebuilt.stdout.contains("rollups rebuilt"),
        "{}",
        rebuilt.stdout
    );

    let text = with_db(&["status", "--top", "5"], &db);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(!text.stdout.contains("no calls recorded yet"));
    assert!(
        text.stdout.contains(
            "events 1 · sessions 2 · tool uses 4 · calls 3 · violations 1 · quarantined 0"
        ),
        "{}",
        text.stdout
    );
    let first = text
        .stdout
        .lines()
        .position(|l| l.contains("sqlite_open_go_infra"))
        .unwrap();
    let second = text
        .stdout
        .lines()
        .position(|l| l.contains("csv_read_py_data"))
        .unwrap();
    assert!(first < second, "ordered by calls:\n{}", text.stdout);
    assert!(
        text.stdout.contains("50.0%"),
        "error rate shown:\n{}",
        text.stdout
    );
    assert!(text.stdout.contains("sqlite3_inline"));
    assert!(
        text.stdout.contains("top 3 tools by uses"),
        "tools, and the MCP server on its own row:\n{}",
        text.stdout
    );
    let bash = text
        .stdout
        .lines()
        .find(|l| l.starts_with(" Bash"))
        .unwrap();
    let cells: Vec<&str> = bash.split_whitespace().collect();
    // tool, uses, 24h, failures, error rate, interrupts, mean, p95, sessions
    assert_eq!(
        cells[..9],
        ["Bash", "3", "2", "1", "33.3%", "0", "15.0", "30", "2"],
        "{bash}"
    );

    let json = with_db(&["status", "--json", "--top", "1"], &db);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["totals"]["calls"], 3);
    assert_eq!(v["totals"]["tool_uses"], 4);
    assert_eq!(v["top_tools"].as_array().unwrap().len(), 1);
    assert_eq!(v["top_tools"][0]["tool_name"], "Bash");
    assert_eq!(v["top_tools"][0]["failures"], 1);
    assert_eq!(v["top_tools"][0]["sessions"], 2);
    assert_eq!(
        v["top_functions"].as_array().unwrap().len(),
        1,
        "--top bounds the list"
    );
    let top = &v["top_functions"][0];
    assert_eq!(top["function_id"], "sqlite_open_go_infra");
    assert_eq!(top["calls_total"], 2);
    assert_eq!(top["error_rate"], 0.5);
    assert_eq!(top["mean_duration_ms"], 20.0);
    assert_eq!(top["p95_duration_ms"], 30);
    assert_eq!(v["top_violations"][0]["rule_id"], "sqlite3_inline");
    assert!(v.get("message").is_none());
}

#[test]
fn empty_status_json_carries_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ops.db");
    assert_eq!(with_db(&["init"], &db).code, 0);
    let out = with_db(&["status", "--json"], &db);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["message"], "no calls recorded yet");
    assert_eq!(v["totals"]["calls"], 0);
}

#[test]
fn unusable_databases_fail_with_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    assert_one_line_error(&with_db(&["status"], &missing), "call_monitor init");
    assert!(!missing.exists(), "status never creates a database");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "plain text, not a database\n".repeat(100)).unwrap();
    assert_one_line_error(&with_db(&["init"], &text), "not a SQLite database");
    assert_one_line_error(&with_db(&["status"], &text), "not a SQLite database");

    // A regular file where a directory should be: cannot be created.
    assert_one_line_error(
        &with_db(&["init"], &text.join("x.db")),
        "cannot create directory",
    );
    // A directory where the file should be.
    assert_one_line_error(&with_db(&["init"], dir.path()), "cannot open database");

    // Someone else's SQLite database is refused, not modified.
    let foreign = dir.path().join("registry.db");
    assert_eq!(
        run(Command::new("sqlite3")
            .arg(&foreign)
            .arg("CREATE TABLE functions (id TEXT PRIMARY KEY);"))
        .code,
        0
    );
    assert_one_line_error(&with_db(&["init"], &foreign), "not a call_monitor database");
    let tables = run(Command::new("sqlite3")
        .arg(&foreign)
        .arg("SELECT COUNT(*) FROM sqlite_master WHERE type='table';"));
    assert_eq!(tables.stdout.trim(), "1");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(call_monitor().arg("no-such-command")).code, 2);
    assert_eq!(
        run(call_monitor().args(["status", "--top", "many"])).code,
        2
    );
    assert_eq!(run(&mut call_monitor()).code, 2);
}

#[test]
fn install_hooks_wires_a_working_hook_into_settings_once() {
    let scratch = crate::support::Scratch::new();
    let settings = scratch.dir.path().join(".claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        r#"{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}}"#,
    )
    .unwrap();
    let install = || {
        crate::support::succeed(
            call_monitor()
                .args(["install-hooks", "--settings"])
                .arg(&settings)
                .arg("--spool")
                .arg(scratch.spool()),
        )
    };
    assert!(install().contains("13 added"));
    assert!(install().contains("already installed"));
    let backups = std::fs::read_dir(settings.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".bak-")
        })
        .count();
    assert_eq!(backups, 1, "one backup, from the one change");

    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    assert_eq!(
        parsed["hooks"]["Stop"][0]["hooks"][0]["command"],
        "notify-send done"
    );
    // The installed command, run the way Claude Code runs it, spools the event.
    let command = parsed["hooks"]["PostToolUse"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_string();
    let mut child = Command::new("sh")
        .args(["-c", &command])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&crate::support::bash_payload("s", "t", "a_py_x"))
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(crate::support::spool_files(&scratch.spool()).len(), 1);
}

/// A report printed into a closed pipe (`status --json | head -1`) ends
/// the process quietly (SIGPIPE), without a panic message.
#[test]
fn a_closed_stdout_ends_a_report_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let scratch = Scratch::new();
    succeed(&mut scratch.cmd(&["init"]));
    for args in [&["status", "--json"][..], &["install-hooks", "--print"][..]] {
        let mut child = scratch
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before anything is printed
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

/// The hook spawned as Claude Code spawns a SessionStart hook: with
/// `CLAUDE_ENV_FILE` set.
fn hook_with_env_file(scratch: &Scratch, env_file: &Path, payload: &str) -> (i32, String) {
    crate::support::run_hook_with_env(
        &scratch.spool(),
        payload.as_bytes(),
        &[("CLAUDE_ENV_FILE", env_file)],
    )
}

#[test]
fn session_start_tells_the_sessions_commands_their_session_and_spool() {
    let scratch = Scratch::new();
    let env_file = scratch
        .dir
        .path()
        .join("session-env/sessionstart-hook-0.sh");
    std::fs::create_dir_all(env_file.parent().unwrap()).unwrap();
    let start = r#"{"session_id":"sess-env-1","hook_event_name":"SessionStart","source":"startup","cwd":"/w"}"#;
    let tool = r#"{"session_id":"sess-env-1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","tool_input":{"command":"ls"}}"#;
    assert_eq!(
        hook_with_env_file(&scratch, &env_file, start),
        (0, String::new())
    );
    assert_eq!(
        hook_with_env_file(&scratch, &env_file, tool),
        (0, String::new())
    );
    // A resume starts the same session again: nothing is added twice.
    assert_eq!(
        hook_with_env_file(&scratch, &env_file, start),
        (0, String::new())
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". '{}' && echo \"$CALL_MONITOR_SESSION_ID $CALL_MONITOR_SPOOL\"",
            env_file.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sess-env-1 {}", scratch.spool().display())
    );
    let text = std::fs::read_to_string(&env_file).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");

    // An env file that cannot be written: one line on stderr, the event
    // still spooled, exit 0.
    let (code, stderr) = hook_with_env_file(&scratch, scratch.dir.path(), start);
    assert_eq!(code, 0);
    assert!(
        stderr.starts_with("call_monitor hook: cannot write the session's environment file"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
    let spooled: usize = crate::support::spool_files(&scratch.spool())
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(spooled, 4);
}

//! `import-transcripts` (issue 23) on transcripts written the way Claude
//! Code writes them: a main session with parallel tool uses, an error
//! result, an interrupted tool use, a prompt, line types that hold no tool
//! use, a torn last line; a subagent's file. Importing twice changes
//! nothing; hooks then import, and import then hooks, store each tool use
//! once; nothing raw reaches the database.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use std::time::Duration;

use crate::support::{
    assert_secrets_absent, run_hook, spool_files, succeed, wait_until, Daemon, Scratch,
};

const SESSION: &str = "7a1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
const SECRET: &str = "sk-ant-TRANSCRIPT-SECRET-42";

fn line(kind: &str, ts: &str, content: Value) -> String {
    json!({
        "type": kind, "sessionId": SESSION, "cwd": "/home/dev/app", "timestamp": ts,
        "uuid": format!("u-{ts}"), "parentUuid": null, "isSidechain": false, "version": "2.1.210",
        "gitBranch": "main", "message": {"role": kind, "content": content}
    })
    .to_string()
}

fn tool_use(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input})
}

fn result(id: &str, content: Value, is_error: bool) -> Value {
    json!({"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error})
}

/// The main transcript's complete lines (4 tool uses) and a torn last one.
fn main_lines() -> (Vec<String>, String) {
    let lines = vec![
        json!({"type": "summary", "summary": "Fix the CSV job", "leafUuid": "x"}).to_string(),
        line("user", "2026-11-30T09:00:00.000Z", json!(format!("please fix it, my key is {SECRET}"))),
        line("assistant", "2026-11-30T09:00:05.000Z", json!([
            {"type": "text", "text": "Running both."},
            tool_use("toolu_01P1", "Bash", json!({"command": "fn run csv_read_py_data in.csv", "description": "run"})),
            tool_use("toolu_01P2", "Read", json!({"file_path": "/home/dev/app/job.py"})),
        ])),
        line("user", "2026-11-30T09:00:07.250Z", json!([
            result("toolu_01P2", json!(format!("token = '{SECRET}'")), false),
            result("toolu_01P1", json!([{"type": "text", "text": "Exit code 1\nTraceback: no such file"}]), true),
        ])),
        json!({"type": "file-history-snapshot", "messageId": "m", "snapshot": {}}).to_string(),
        line("assistant", "2026-11-30T09:01:00.000Z", json!([
            tool_use("toolu_01P3", "Bash", json!({"command": "sleep 600", "description": "wait"}))
        ])),
        line("user", "2026-11-30T09:01:30.000Z", json!([
            result("toolu_01P3", json!("[Request interrupted by user for tool use]"), true)
        ])),
        json!({"type": "progress", "sessionId": SESSION, "timestamp": "2026-11-30T09:01:31.000Z", "data": {"type": "hook_progress"}}).to_string(),
        line("assistant", "2026-11-30T09:02:00.000Z", json!([
            tool_use("toolu_01P4", "mcp__registry__run_function", json!({"function_id": "sqlite_open_go_infra", "args": {"path": "x.db"}}))
        ])),
        line("user", "2026-11-30T09:02:01.000Z", json!([
            result("toolu_01P4", json!([{"type": "text", "text": "opened"}]), false)
        ])),
        line("assistant", "2026-11-30T09:02:02.000Z", json!([{"type": "text", "text": "Done."}])),
        // The secret in a tool's input, a file's content and a command.
        line("assistant", "2026-11-30T09:02:10.000Z", json!([
            tool_use("toolu_01P6", "Write", json!({"file_path": "/home/dev/app/.env", "content": format!("KEY={SECRET}\n")})),
            tool_use("toolu_01P7", "Bash", json!({"command": format!("curl -H 'x-api-key: {SECRET}' https://api.example.com"), "description": "call"})),
        ])),
        line("user", "2026-11-30T09:02:11.000Z", json!([
            result("toolu_01P6", json!("File created"), false),
            result("toolu_01P7", json!(format!("echo {SECRET}")), false),
        ])),
    ];
    let torn = line(
        "assistant",
        "2026-11-30T09:03:00.000Z",
        json!([tool_use(
            "toolu_01P5",
            "Bash",
            json!({"command": "fn run csv_write_py_data out.csv"})
        )]),
    );
    (lines, torn)
}

fn subagent_lines() -> Vec<String> {
    vec![
        line(
            "assistant",
            "2026-11-30T09:00:10.000Z",
            json!([tool_use(
                "toolu_01S1",
                "Grep",
                json!({"pattern": "def run", "path": "/home/dev/app"})
            )]),
        ),
        line(
            "user",
            "2026-11-30T09:00:10.400Z",
            json!([result("toolu_01S1", json!("a.py\nb.py"), false)]),
        ),
    ]
}

/// Writes the transcripts under `root` the way Claude Code lays them out;
/// the main one ends with a torn line (`torn` without its newline).
fn write_transcripts(root: &Path, torn: bool) {
    let project = root.join("-home-dev-app");
    let subagents = project.join(SESSION).join("subagents");
    std::fs::create_dir_all(&subagents).unwrap();
    let (lines, last) = main_lines();
    let mut main = std::fs::File::create(project.join(format!("{SESSION}.jsonl"))).unwrap();
    for l in &lines {
        writeln!(main, "{l}").unwrap();
    }
    if torn {
        write!(main, "{}", &last[..last.len() / 2]).unwrap();
    } else {
        writeln!(main, "{last}").unwrap();
    }
    let mut sub = std::fs::File::create(subagents.join("agent-a7f3.jsonl")).unwrap();
    for l in subagent_lines() {
        writeln!(sub, "{l}").unwrap();
    }
}

fn import(scratch: &Scratch, root: &Path) -> String {
    succeed(&mut scratch.cmd(&["import-transcripts", root.to_str().unwrap()]))
}

#[test]
fn transcripts_import_once_and_join_the_hooks() {
    let scratch = Scratch::new();
    scratch.private_spool();
    let root = scratch.dir.path().join("projects");
    write_transcripts(&root, true);

    let dry =
        succeed(&mut scratch.cmd(&["import-transcripts", "--dry-run", root.to_str().unwrap()]));
    assert!(
        dry.contains("files=2 tool_uses=7") && dry.contains("(dry run)"),
        "{dry}"
    );
    assert!(!scratch.db().exists() || scratch.count("SELECT COUNT(*) FROM events") == 0);

    let summary = import(&scratch, &root);
    // 6 tool uses in the main file (the torn seventh waits), 1 in the
    // subagent's; 2 events each, and the prompt.
    assert!(
        summary.contains("files=2 tool_uses=7 inserted=15 duplicates=0"),
        "{summary}"
    );
    assert!(summary.contains("skipped=4"), "{summary}");
    let count = |sql: &str| scratch.count(sql);
    assert_eq!(count("SELECT COUNT(*) FROM tool_uses"), 7);
    assert_eq!(
        count("SELECT COUNT(*) FROM tool_uses WHERE success IS NULL"),
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM tool_uses WHERE success = 0"), 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM tool_uses WHERE agent_id = 'a7f3'"),
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM calls"),
        2,
        "fn run and the registry MCP call"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE function_id = 'csv_read_py_data' AND success = 0"),
        1
    );
    assert_eq!(
        count("SELECT duration_ms FROM tool_uses WHERE tool_use_id = 'toolu_01P2'"),
        2_250,
        "from the tool_use line's time to the result's"
    );
    assert_eq!(count("SELECT prompts FROM sessions"), 1);

    // Again: nothing new. Then the torn line completes: only it comes in.
    let again = import(&scratch, &root);
    assert!(again.contains("inserted=0"), "{again}");
    write_transcripts(&root, false);
    // (The same files, rewritten in place with the last line whole: the
    // checkpoints hold, and only that line is read.)
    let rest = import(&scratch, &root);
    assert!(rest.contains("inserted=1 "), "{rest}");
    assert_eq!(count("SELECT COUNT(*) FROM tool_uses"), 8);

    // Hooks after the import: the same tool uses are duplicates.
    let payload = json!({
        "session_id": SESSION, "hook_event_name": "PostToolUse", "tool_name": "Read",
        "tool_use_id": "toolu_01P2", "cwd": "/home/dev/app", "tool_input": {"file_path": "/home/dev/app/job.py"},
        "tool_response": {"type": "text", "file": {"content": "x"}}
    });
    let (code, _) = run_hook(&scratch.spool(), payload.to_string().as_bytes());
    assert_eq!(code, 0);
    let files = spool_files(&scratch.spool());
    let replay = succeed(&mut scratch.cmd(&["replay", files[0].to_str().unwrap()]));
    assert!(replay.contains("inserted=0 duplicates=1"), "{replay}");
    assert_eq!(count("SELECT COUNT(*) FROM tool_uses"), 8);

    // Nothing raw: the secret in the prompt, a tool's input and output, a
    // file's content and a command is in neither the database nor its WAL.
    assert_secrets_absent(&scratch.db(), &[SECRET]);
}

#[test]
fn hooks_first_then_the_transcript_stores_each_tool_use_once() {
    let scratch = Scratch::new();
    scratch.private_spool();
    // The hook saw the Bash tool use (Pre and Post) before the import.
    for (event, extra) in [
        ("PreToolUse", json!({})),
        ("PostToolUseFailure", json!({"error": "Exit code 1"})),
    ] {
        let mut payload = json!({
            "session_id": SESSION, "hook_event_name": event, "tool_name": "Bash",
            "tool_use_id": "toolu_01P1", "cwd": "/home/dev/app",
            "tool_input": {"command": "fn run csv_read_py_data in.csv", "description": "run"}
        });
        for (k, v) in extra.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let (code, _) = run_hook(&scratch.spool(), payload.to_string().as_bytes());
        assert_eq!(code, 0);
    }
    let files = spool_files(&scratch.spool());
    succeed(&mut scratch.cmd(&["replay", files[0].to_str().unwrap()]));
    assert_eq!(scratch.count("SELECT COUNT(*) FROM tool_uses"), 1);

    let root = scratch.dir.path().join("projects");
    write_transcripts(&root, true);
    let summary = import(&scratch, &root);
    assert!(summary.contains("inserted=13 duplicates=2"), "{summary}");
    assert_eq!(scratch.count("SELECT COUNT(*) FROM tool_uses"), 7);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM calls WHERE function_id = 'csv_read_py_data'"),
        1
    );
}

/// `daemon --transcripts DIR` imports the transcripts at start and their
/// new lines every `--interval`.
#[test]
fn the_daemon_imports_new_transcript_lines_on_its_interval() {
    let scratch = Scratch::new();
    scratch.private_spool();
    let root = scratch.dir.path().join("projects");
    write_transcripts(&root, true);
    let daemon = Daemon::start(
        &scratch,
        &["--transcripts", root.to_str().unwrap(), "--interval", "1s"],
    );
    let tool_uses = || {
        scratch
            .read()
            .query_row("SELECT COUNT(*) FROM tool_uses", [], |r| r.get::<_, i64>(0))
            .unwrap_or(0)
    };
    wait_until("the transcripts imported", Duration::from_secs(60), || {
        tool_uses() == 7
    });
    // The running session's torn line is completed: the next interval
    // takes it in.
    write_transcripts(&root, false);
    wait_until("the new line imported", Duration::from_secs(60), || {
        tool_uses() == 8
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains(SECRET), "the secret in the daemon's log");
}

/// `--since` goes by each line's own time, not the file's, and leaves the
/// older lines for a later import without it.
#[test]
fn since_takes_the_lines_after_it_and_leaves_the_others_for_later() {
    let scratch = Scratch::new();
    scratch.private_spool();
    let root = scratch.dir.path().join("projects");
    write_transcripts(&root, false);
    let since = |date: &str| {
        succeed(&mut scratch.cmd(&[
            "import-transcripts",
            "--since",
            date,
            root.to_str().unwrap(),
        ]))
    };
    // 09:01:00 on: the interrupted use, the MCP call, the Write, the curl
    // and the last line's use; not the prompt, not the first two uses.
    let summary = since("2026-11-30T09:01:00Z");
    assert!(summary.contains("tool_uses=5 "), "{summary}");
    assert_eq!(scratch.count("SELECT COUNT(*) FROM tool_uses"), 5);
    assert_eq!(scratch.count("SELECT prompts FROM sessions"), 0);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM tool_uses WHERE ts < '2026-11-30T09:01'"),
        0
    );
    let again = since("2026-11-30T09:01:00Z");
    assert!(again.contains("inserted=0 duplicates=0"), "{again}");
    // A day's date is its start, UTC.
    let day = since("2026-11-30");
    assert!(day.contains("inserted=7"), "{day}");
    // The day took the older lines (the first two uses, the prompt, the
    // subagent's use: 7 events); an import without `--since` reads the
    // files once more (their checkpoints are their own) and finds all 16
    // events stored (the last use has no result yet).
    let whole = import(&scratch, &root);
    assert!(whole.contains("inserted=0 duplicates=16"), "{whole}");
    assert_eq!(scratch.count("SELECT COUNT(*) FROM tool_uses"), 8);
    assert_eq!(scratch.count("SELECT prompts FROM sessions"), 1);
    let bad = scratch
        .cmd(&["import-transcripts", "--since", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a date like 2026-11-30"));
}

/// A transcript line holds a tool's whole output (a screenshot's base64,
/// a big file): over the spool's 1 MiB it is still read, and only its
/// reduced events go further.
#[test]
fn a_line_with_a_large_output_is_imported_not_quarantined() {
    let scratch = Scratch::new();
    scratch.private_spool();
    let root = scratch.dir.path().join("projects");
    let image = "iVBORw0KGgo".repeat(300_000); // 3.3 MB of base64
    let lines = [
        line(
            "assistant",
            "2026-11-30T09:00:00.000Z",
            json!([tool_use(
                "toolu_01I1",
                "Read",
                json!({"file_path": "/home/dev/app/shot.png"})
            )]),
        ),
        line(
            "user",
            "2026-11-30T09:00:01.000Z",
            json!([result(
                "toolu_01I1",
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": image}}]),
                false
            )]),
        ),
    ];
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join(format!("{SESSION}.jsonl")),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let summary = import(&scratch, &root);
    assert!(
        summary.contains("inserted=2 ") && summary.contains("quarantined=0"),
        "{summary}"
    );
    assert_eq!(
        scratch.count("SELECT success FROM tool_uses WHERE tool_use_id = 'toolu_01I1'"),
        1
    );
    let quarantine = scratch.spool().join("quarantine");
    assert!(!quarantine.exists() || std::fs::read_dir(quarantine).unwrap().next().is_none());
}

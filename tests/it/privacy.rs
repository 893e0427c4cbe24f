//! Privacy by construction: secrets planted in every place a payload can
//! carry them — commands, heredocs, MCP arguments, errors, prompts, tool
//! outputs, file contents, edit strings — spooled through `hook` (reduced),
//! as raw native-shape lines (Claude Code's own nesting, reduced by the
//! daemon) and as flattened raw lines, are found nowhere in operations.db,
//! its -wal and -shm files, or the daemon's logs at trace level.
//!
//! Errors are the one text that reaches the database, as a redacted
//! `output_snippet` of failed tests; the secrets planted there have the
//! shapes real ones have (tokens, keys, passwords, credentials in URLs).

use std::fs::File;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::classification::fixture_registry;
use crate::support::{run_hook, wait_until, Scratch};

const CMD: &str = "CanaryCmdArg_Q7w";
const GH: &str = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
const AWS: &str = "AKIAZ7CANARY0EXAMPLE";
const SLACK: &str = "xoxb-2048-canary-slack-token-0042";
const OPENAI: &str = "sk-canaryOpenAiKey0123456789abcdef";
const PASSWORD: &str = "Pa55w0rd-canary!";
const URL_PASSWORD: &str = "urlCanaryPw9";
const BEARER: &str = "eyCanaryBearer.9f8e7d6c5b4a";
const PRIVATE_KEY: &str = "MIIEcanaryPrivateKeyBody0123456789abcdef";
const PROMPT: &str = "CanaryPromptText_Zx9";
const OUTPUT: &str = "CanaryToolOutput_Yy8";
const FILE_CONTENT: &str = "CanaryFileContent_Ww7";
const HEREDOC: &str = "CanaryHeredocValue_Vv6";
const MCP: &str = "CanaryMcpArgument_Uu5";

const SECRETS: &[&str] = &[
    CMD,
    GH,
    AWS,
    SLACK,
    OPENAI,
    PASSWORD,
    URL_PASSWORD,
    BEARER,
    PRIVATE_KEY,
    PROMPT,
    OUTPUT,
    FILE_CONTENT,
    HEREDOC,
    MCP,
];

fn command() -> String {
    format!(
        "fn run deploy_sh_ops --user {CMD} --token {GH} && curl -H \"Authorization: Bearer {BEARER}\" https://admin:{URL_PASSWORD}@api.internal/x"
    )
}

fn heredoc() -> String {
    format!("python3 - <<'EOF'\nAPI_KEY = \"{OPENAI}\"\nSECRET = \"{HEREDOC}\"\nfrom fn_registry.infra import sqlite_open\nEOF")
}

fn error() -> String {
    format!(
        "psql: connect postgres://admin:{URL_PASSWORD}@db failed password={PASSWORD} key {AWS} slack {SLACK} \
         -----BEGIN PRIVATE KEY-----\n{PRIVATE_KEY}\n-----END PRIVATE KEY----- exit code 2"
    )
}

fn output() -> Value {
    json!({"stdout": format!("{OUTPUT} {AWS} {GH}"), "stderr": OUTPUT, "interrupted": false, "isImage": false})
}

/// Claude Code payloads, as the hook receives them.
fn payloads(session: &str) -> Vec<Value> {
    let common = |event: &str, tool: &str, id: &str| {
        json!({"session_id": session, "transcript_path": "/t.jsonl", "cwd": "/w",
               "hook_event_name": event, "tool_name": tool, "tool_use_id": id})
    };
    let with = |mut base: Value, extra: Value| {
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        base
    };
    vec![
        json!({"session_id": session, "hook_event_name": "UserPromptSubmit", "cwd": "/w",
               "prompt": format!("deploy with {PROMPT} and {GH}")}),
        with(
            common("PreToolUse", "Bash", "t1"),
            json!({"tool_input": {"command": command()}}),
        ),
        with(
            common("PostToolUse", "Bash", "t1"),
            json!({"tool_input": {"command": command()}, "tool_response": output()}),
        ),
        with(
            common("PostToolUse", "Bash", "t2"),
            json!({"tool_input": {"command": heredoc()}, "tool_response": output()}),
        ),
        with(
            common("PostToolUse", "mcp__registry__run_function", "t3"),
            json!({"tool_input": {"function_id": "csv_load_py_data", "args": {"password": MCP, "aws": AWS}},
                   "tool_response": {"content": [{"type": "text", "text": OUTPUT}]}}),
        ),
        with(
            common("PostToolUseFailure", "Bash", "t4"),
            json!({"tool_input": {"command": format!("fn test csv_load_py_data --token {GH}")}, "error": error()}),
        ),
        with(
            common("PostToolUseFailure", "Bash", "t5"),
            json!({"tool_input": {"command": command()}, "error": error()}),
        ),
        with(
            common("PostToolUse", "Write", "t6"),
            json!({"tool_input": {"file_path": "/w/functions/py/infra/sqlite_open.py",
                                  "content": format!("{FILE_CONTENT}\nKEY = '{OPENAI}'\n")},
                   "tool_response": {"filePath": "/w/functions/py/infra/sqlite_open.py", "content": FILE_CONTENT}}),
        ),
        with(
            common("PostToolUse", "Edit", "t7"),
            json!({"tool_input": {"file_path": "/w/functions/py/data/csv_load.py",
                                  "old_string": FILE_CONTENT, "new_string": format!("{FILE_CONTENT}2")},
                   "tool_response": {"originalFile": FILE_CONTENT}}),
        ),
    ]
}

/// Envelope lines written straight to the spool: nothing reduced them.
/// Each payload twice: in Claude Code's own nesting (a native-shape line,
/// which the daemon reduces), and with `tool_input` also flattened the way
/// the hook would, keeping everything else.
fn raw_lines(session: &str) -> String {
    let mut lines = String::new();
    for (i, event) in payloads(&format!("{session}-native"))
        .into_iter()
        .enumerate()
    {
        let envelope = json!({"v": 1, "id": format!("native-{i}"), "ts": "2026-11-24T10:00:00.000Z",
                              "host": "h", "event": event});
        lines.push_str(&format!("{envelope}\n"));
    }
    for (i, event) in payloads(session).into_iter().enumerate() {
        let mut event = event;
        let obj = event.as_object_mut().unwrap();
        // Flatten tool_input the way the hook would, but keep everything.
        if let Some(Value::Object(input)) = obj.get("tool_input").cloned() {
            if !obj["tool_name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("mcp__")
            {
                obj.extend(input);
            }
        }
        let envelope = json!({"v": 1, "id": format!("raw-{i}"), "ts": "2026-11-24T10:00:00.000Z",
                              "host": "h", "event": event});
        lines.push_str(&format!("{envelope}\n"));
    }
    // A line that cannot be parsed, carrying a secret: quarantined, and its
    // reason must not quote it.
    lines.push_str(&format!(
        "{{\"v\":1,\"id\":\"torn\",\"event\":{{\"command\":\"{GH}\n"
    ));
    lines
}

fn assert_clean(what: &str, bytes: &[u8]) {
    for secret in SECRETS {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{secret} found in {what}");
    }
}

fn check_database_files(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        if let Ok(bytes) = std::fs::read(&path) {
            assert_clean(&path, &bytes);
        }
    }
}

#[test]
fn planted_secrets_never_reach_the_database_or_the_logs() {
    let scratch = Scratch::new();
    let registry = fixture_registry(scratch.dir.path());
    let log_path = scratch.dir.path().join("daemon.log");
    let mut daemon = scratch
        .cmd(&["daemon", "--rescan", "100ms"])
        .arg("--registry")
        .arg(&registry)
        .env("CALL_MONITOR_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_until("daemon schema", Duration::from_secs(30), || {
        scratch.has_schema()
    });

    let hooked = payloads("sess-hook");
    for payload in &hooked {
        let (code, stderr) = run_hook(&scratch.spool(), payload.to_string().as_bytes());
        assert_eq!(code, 0, "{stderr}");
    }
    let raw_path = scratch.spool().join("raw-appender.jsonl");
    std::fs::write(&raw_path, raw_lines("sess-raw")).unwrap();
    let expected_events = (hooked.len() * 3) as i64;
    wait_until("every event ingested", Duration::from_secs(30), || {
        scratch.count("SELECT COUNT(*) FROM events") == expected_events
            && scratch.count("SELECT COUNT(*) FROM quarantine") == 1
    });

    // The test is not vacuous: the secrets' neighbours were classified.
    assert!(scratch.count("SELECT COUNT(*) FROM calls WHERE args_hash IS NOT NULL") >= 12);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM test_runs WHERE output_snippet IS NOT NULL"),
        3
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM code_writes"), 6);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM tool_uses"),
        3 * 7,
        "seven tool uses (t1..t7) in each of the three spoolings"
    );
    check_database_files(&scratch.db());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(daemon.wait().unwrap().success());
    check_database_files(&scratch.db());
    let log = std::fs::read(&log_path).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("TRACE")
            || String::from_utf8_lossy(&log).contains("DEBUG"),
        "the log was written at trace level"
    );
    assert_clean("the daemon's trace log", &log);

    // Replay logs at trace level are clean too.
    let other = Scratch::new();
    let out = other
        .cmd(&["replay"])
        .arg(&raw_path)
        .env("CALL_MONITOR_LOG", "trace")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_clean("replay's trace log", &out.stderr);
    assert_clean("replay's output", &out.stdout);
    check_database_files(&other.db());
}

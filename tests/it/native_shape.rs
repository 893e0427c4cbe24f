//! Every tool use and every Claude Code event (issue 19), on payloads in the
//! shapes real Claude Code versions write (`fixtures/payloads/`): the same
//! payloads spooled by `hook` (reduced) and as raw native-shape lines
//! (reduced by the daemon) give identical tables; old payloads without
//! `tool_use_id` pair first in, first out; subagents, prompts,
//! permission requests, compactions and unknown events are counted.

use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use rusqlite::types::Value;
use serde_json::json;

use crate::support::{assert_secrets_absent, run_hook, spool_files, succeed, Scratch};

const FIXTURE: &str = include_str!("../../fixtures/payloads/claude_code.jsonl");

/// Every table of `db` but the spool bookkeeping, each row as values, in a
/// stable order: what two ingestions of the same events must agree on.
fn tables(db: &Path) -> Vec<(String, Vec<Vec<Value>>)> {
    crate::support::tables(db, &[], &[])
}

/// The hook's spool lines for `payloads`, in order.
fn hooked_lines(scratch: &Scratch, payloads: &[String]) -> Vec<String> {
    for payload in payloads {
        let (code, stderr) = run_hook(&scratch.spool(), payload.as_bytes());
        assert_eq!(code, 0, "{stderr}");
    }
    let files = spool_files(&scratch.spool());
    assert_eq!(files.len(), 1, "one spool file: {files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    text.lines().map(str::to_string).collect()
}

/// `lines` with each event replaced by its payload as Claude Code wrote
/// it: same envelope id, time and host.
fn as_native(lines: &[String], payloads: &[String]) -> Vec<String> {
    assert_eq!(lines.len(), payloads.len());
    lines
        .iter()
        .zip(payloads)
        .map(|(line, payload)| {
            let mut envelope: serde_json::Value = serde_json::from_str(line).unwrap();
            envelope["event"] = serde_json::from_str(payload).unwrap();
            envelope.to_string()
        })
        .collect()
}

/// A second scratch that hashes arguments with `first`'s key (the spool's
/// `args.key`), so the two databases can be compared column by column.
fn same_key_as(first: &Scratch) -> Scratch {
    let second = Scratch::new();
    second.private_spool();
    std::fs::copy(
        first.spool().join("args.key"),
        second.spool().join("args.key"),
    )
    .unwrap();
    second
}

fn replay(scratch: &Scratch, name: &str, lines: &[String]) -> String {
    let path = scratch.dir.path().join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    drop(file);
    succeed(&mut scratch.cmd(&["replay", path.to_str().unwrap()]))
}

#[test]
fn payload_fixture_through_the_hook_and_as_native_lines_gives_the_same_tables() {
    let payloads: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
    let hooked = Scratch::new();
    let lines = hooked_lines(&hooked, &payloads);
    let native = as_native(&lines, &payloads);
    let summary = replay(&hooked, "hooked.jsonl", &lines);
    assert!(summary.contains("quarantined=0"), "{summary}");
    let raw = same_key_as(&hooked);
    let summary = replay(&raw, "native.jsonl", &native);
    assert!(summary.contains("quarantined=0"), "{summary}");

    let (a, b) = (tables(&hooked.db()), tables(&raw.db()));
    assert_eq!(a.len(), b.len());
    for ((name, hooked_rows), (_, native_rows)) in a.iter().zip(&b) {
        assert_eq!(hooked_rows, native_rows, "table {name}");
    }

    // Not vacuous: what the fixture holds is there.
    let db = hooked.read();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM events"), payloads.len() as i64);
    // 11 tool uses in the current session, 4 in the old one, 2 on Windows.
    assert_eq!(count("SELECT COUNT(*) FROM tool_uses"), 17);
    assert_eq!(
        count("SELECT COUNT(*) FROM tool_uses WHERE success IS NULL"),
        0,
        "every Pre paired with its Post, with or without a tool_use_id"
    );
    // Registry calls: fn run ×2 and MCP in the current session, the
    // importer twice in the old one, the heredoc import on Windows.
    assert_eq!(count("SELECT COUNT(*) FROM calls"), 6);
    assert_eq!(count("SELECT COUNT(*) FROM calls WHERE success IS NULL"), 0);
    // A registry file edited on Linux and on Windows (backslashes).
    assert_eq!(count("SELECT COUNT(*) FROM code_writes"), 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE agent_id = 'agent-7f3' AND agent_type = 'Explore'"),
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM tool_uses WHERE agent_id = 'agent-7f3'"),
        2
    );
    let session: (i64, i64, i64, i64, i64, i64, i64, String) = db
        .query_row(
            "SELECT prompts, tool_uses, tool_failures, permission_requests, compactions_manual,
                    compactions_auto, subagents, model
             FROM sessions WHERE session_id = '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        session,
        (1, 11, 2, 1, 1, 1, 1, "claude-sonnet-4-5".to_string())
    );
    assert_eq!(
        count("SELECT n FROM event_names WHERE hook_event_name = 'PreModelSwitch'"),
        1
    );
    let (uses, failures, interrupts, sessions): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT uses, failures, interrupts, sessions FROM tool_stats WHERE tool_name = 'Bash'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((uses, failures, interrupts, sessions), (6, 1, 1, 3));
    assert_eq!(
        count("SELECT uses FROM tool_stats WHERE tool_name = 'mcp__github'"),
        1,
        "an MCP server has its own row"
    );
    // Nothing of the payloads' raw text reached the database.
    for db in [hooked.db(), raw.db()] {
        assert_secrets_absent(
            &db,
            &[
                "hunter2",
                "sk-ant-SECRET",
                "TOKEN=abc123",
                "secret file body",
                "secret row",
                "fix secret bug",
                "keep the secret plan",
                "do not leak this prompt",
                "private notes",
                "whole original file",
                "private details",
            ],
        );
    }
}

/// The hook registered twice (user and project settings): every payload
/// spooled twice, by two hook processes, under two envelope ids. Each event
/// is stored once — tool events by their tool use, the others as echoes —
/// except the tool events of the old session, which have no tool-use id
/// (documented: they count twice).
#[test]
fn a_hook_registered_twice_stores_each_event_once() {
    let payloads: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
    let twice: Vec<String> = payloads
        .iter()
        .flat_map(|p| [p.clone(), p.clone()])
        .collect();
    let scratch = Scratch::new();
    let lines = hooked_lines(&scratch, &twice);
    let summary = replay(&scratch, "twice.jsonl", &lines);
    let old_tool_events = payloads
        .iter()
        .filter(|p| p.contains("old-session") && p.contains("\"tool_name\""))
        .count();
    assert_eq!(old_tool_events, 8);
    let stored = payloads.len() + old_tool_events;
    assert!(
        summary.contains(&format!(
            "events={} inserted={stored} duplicates={}",
            twice.len(),
            twice.len() - stored
        )),
        "{summary}"
    );
    let db = scratch.read();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT SUM(n) FROM event_names"),
        stored as i64,
        "each stored event counted once"
    );
    assert_eq!(
        count("SELECT prompts + permission_requests + compactions_manual + compactions_auto + subagents
               FROM sessions WHERE session_id = '3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f'"),
        5
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM tool_uses WHERE session_id != 'old-session-2025-06'"),
        13
    );
}

/// Claude Code before late 2025 sent no `tool_use_id`: identical commands
/// interleaved with others pair first in, first out, across files too.
#[test]
fn payloads_without_ids_pair_first_in_first_out() {
    let scratch = Scratch::new();
    let event = |name: &str, command: &str, ts: &str, id: &str| {
        json!({"v": 1, "id": id, "ts": ts, "host": "h", "event": {
            "session_id": "old", "hook_event_name": name, "tool_name": "Bash", "command": command}})
        .to_string()
    };
    let first = vec![
        event(
            "PreToolUse",
            "fn run a_py_x",
            "2025-06-01T10:00:00.000Z",
            "1",
        ),
        event("PreToolUse", "make test", "2025-06-01T10:00:00.500Z", "2"),
        event(
            "PreToolUse",
            "fn run a_py_x",
            "2025-06-01T10:00:01.000Z",
            "3",
        ),
        event(
            "PostToolUse",
            "fn run a_py_x",
            "2025-06-01T10:00:02.000Z",
            "4",
        ),
    ];
    let second = vec![
        event(
            "PostToolUseFailure",
            "make test",
            "2025-06-01T10:00:04.500Z",
            "5",
        ),
        event(
            "PostToolUse",
            "fn run a_py_x",
            "2025-06-01T10:00:06.000Z",
            "6",
        ),
        // Redelivered: stored once, takes no place in the queue.
        event(
            "PostToolUse",
            "fn run a_py_x",
            "2025-06-01T10:00:06.000Z",
            "6",
        ),
    ];
    replay(&scratch, "a.jsonl", &first);
    replay(&scratch, "b.jsonl", &second);
    let db = scratch.read();
    let rows: Vec<(String, i64, i64)> = db
        .prepare("SELECT tool_name || ':' || ts, duration_ms, success FROM tool_uses ORDER BY ts")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            ("Bash:2025-06-01T10:00:00.000Z".into(), 2000, 1),
            ("Bash:2025-06-01T10:00:00.500Z".into(), 4000, 0),
            ("Bash:2025-06-01T10:00:01.000Z".into(), 5000, 1),
        ]
    );
    let calls: Vec<(i64, i64)> = db
        .prepare("SELECT duration_ms, success FROM calls ORDER BY ts")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(calls, vec![(2000, 1), (5000, 1)], "two calls, not four");
}

/// One generated Claude Code payload.
fn payload_strategy() -> impl Strategy<Value = serde_json::Value> {
    let tool = prop_oneof![
        Just((
            "Bash",
            json!({"command": "fn run a_py_x && echo done", "description": "d"})
        )),
        Just((
            "Bash",
            json!({"command": "python - <<'EOF'\nfrom fn_registry.data import b\nEOF"})
        )),
        Just(("Bash", json!({"command": "fn test a_py_x"}))),
        Just((
            "Edit",
            json!({"file_path": "/r/functions/py/x/a.py", "old_string": "o\n", "new_string": "n\nm\n"})
        )),
        Just((
            "Write",
            json!({"file_path": "C:\\r\\functions\\py\\x\\a.py", "content": "c\n"})
        )),
        Just(("Read", json!({"file_path": "/etc/hosts"}))),
        Just(("mcp__registry__run", json!({"function_id": "a_py_x"}))),
        Just(("mcp__github__get", json!({"q": "z".repeat(17_000)}))),
    ];
    let response = prop_oneof![
        Just(json!({"stdout": "out", "stderr": "", "interrupted": false})),
        Just(json!({"stdout": "out", "interrupted": true})),
        Just(json!([{"type": "text", "text": "blocks"}])),
        Just(json!("a string response")),
        Just(json!({"filePath": "/x", "originalFile": "whole"})),
    ];
    let event = prop_oneof![
        Just("PreToolUse"),
        Just("PostToolUse"),
        Just("PostToolUseFailure"),
        Just("UserPromptSubmit"),
        Just("SessionStart"),
        Just("PreCompact"),
        Just("SubagentStart"),
        Just("PermissionRequest"),
        Just("SomethingNew"),
    ];
    (
        tool,
        response,
        event,
        0usize..3,
        0usize..4,
        any::<bool>(),
        any::<bool>(),
        0i64..5000,
    )
        .prop_map(
            |((tool, input), response, event, session, id, subagent, old, duration)| {
                let mut p = json!({
                    "session_id": format!("s{session}"), "hook_event_name": event,
                    "transcript_path": "/t.jsonl", "cwd": "/w", "effort": {"level": "high"},
                    "tool_name": tool, "tool_input": input, "tool_response": response,
                    "error": "Exit code 1", "prompt": "a prompt", "trigger": "manual",
                    "model": "m", "duration_ms": duration,
                });
                if !old {
                    p["tool_use_id"] = format!("toolu_{id}").into();
                }
                if subagent {
                    p["agent_id"] = "ag".into();
                    p["agent_type"] = "".into();
                }
                p
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// For generated payloads P, ingesting envelope(P) and
    /// envelope(reduce(P)) gives identical rows.
    #[test]
    fn a_native_line_ingests_like_its_reduction(payloads in prop::collection::vec(payload_strategy(), 1..30)) {
        let native: Vec<String> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| json!({"v": 1, "id": format!("e{i}"), "ts": format!("2026-12-01T10:00:{:02}.000Z", i % 60), "host": "h", "event": p}).to_string())
            .collect();
        let reduced: Vec<String> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let event = call_monitor::capture::reduce::reduce(p.to_string().as_bytes());
                json!({"v": 1, "id": format!("e{i}"), "ts": format!("2026-12-01T10:00:{:02}.000Z", i % 60), "host": "h", "event": event}).to_string()
            })
            .collect();
        let a = Scratch::new();
        replay(&a, "native.jsonl", &native);
        let b = same_key_as(&a);
        replay(&b, "reduced.jsonl", &reduced);
        let (ta, tb) = (tables(&a.db()), tables(&b.db()));
        for ((name, x), (_, y)) in ta.iter().zip(&tb) {
            prop_assert_eq!(x, y, "table {}", name);
        }
    }
}

/// Files that share transactions (`Ingestor::ingest_files`) give the same
/// tables as one file of the same lines: the fixture's hooked lines one per
/// file (so every Pre and its Post are in different files), and 20 000
/// lines in 40 files, several transactions' worth, sessions and tool uses
/// running across file boundaries.
#[test]
fn many_files_sharing_transactions_give_the_tables_of_one_file() {
    let payloads: Vec<String> = FIXTURE.lines().map(str::to_string).collect();
    let one = Scratch::new();
    let mut lines = hooked_lines(&one, &payloads);
    for i in 0..10_000 {
        let session = format!("long-{}", i % 37);
        let tool_use_id = format!("toolu_many_{i}");
        for (n, event) in ["PreToolUse", "PostToolUse"].iter().enumerate() {
            let envelope = json!({
                "v": 1, "id": format!("many-{i}-{n}"), "ts": format!("2026-11-03T{:02}:{:02}:{:02}.{:03}Z", (i / 3600) % 24, (i / 60) % 60, i % 60, n * 400),
                "host": "h", "event": {
                    "session_id": session, "hook_event_name": event, "tool_name": "Bash",
                    "tool_use_id": tool_use_id, "command": format!("fn run f{}_py_x --n {i}", i % 13),
                }
            });
            lines.push(envelope.to_string());
        }
    }
    replay(&one, "all.jsonl", &lines);

    let many = same_key_as(&one);
    let dir = many.dir.path().join("hourly");
    std::fs::create_dir(&dir).unwrap();
    let fixture_lines = payloads.len();
    let file_of = |i: usize| {
        if i < fixture_lines {
            format!("a-{i:03}.jsonl")
        } else {
            format!("b-{:03}.jsonl", (i - fixture_lines) / 500)
        }
    };
    for (i, line) in lines.iter().enumerate() {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file_of(i)))
            .unwrap();
        writeln!(file, "{line}").unwrap();
    }
    let summary = succeed(&mut many.cmd(&["replay", dir.to_str().unwrap()]));
    assert!(
        summary.contains(&format!("inserted={}", lines.len())),
        "{summary}"
    );
    assert_eq!(many.count("SELECT COUNT(*) FROM spool_files"), 53 + 40);

    let (a, b) = (tables(&one.db()), tables(&many.db()));
    for ((name, one_rows), (_, many_rows)) in a.iter().zip(&b) {
        assert_eq!(one_rows, many_rows, "table {name}");
    }
    assert_eq!(
        many.count("SELECT COUNT(*) FROM tool_uses WHERE success IS NULL"),
        0
    );
}

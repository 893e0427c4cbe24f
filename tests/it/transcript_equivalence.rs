//! Transcripts and hooks agree (issue 23): the same tool uses and prompts,
//! once written into transcripts the way Claude Code writes them and once
//! sent through hooks the way Claude Code sends them, give the same tables —
//! imported alone, hooked alone, hooks then import, import then hooks. Only
//! the `source` column says which came first.
//!
//! The fixture (one description, [`world`], written both ways): a main
//! session with parallel tool uses, a failure, an interruption, an MCP
//! registry call, a heredoc, an edit, a `sqlite3` violation, a subagent
//! launched by `Agent` whose messages are in its own file (with its meta
//! file) and also copied into the parent as `progress` lines (as some
//! versions do), line types that hold no tool use, a torn last line; and a
//! resumed session whose file starts with copies of the first session's
//! lines under their own session id.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::{assert_secrets_absent, succeed, tables, Scratch};

const FIRST: &str = "3f0c9a52-1b7e-4d2a-9c61-5e8d7f4a2b10";
const RESUMED: &str = "8d2e4b71-6a3f-4c19-b0d5-2f7e9a1c3d84";
const AGENT: &str = "a7f3c19";
const CWD: &str = "/home/dev/app";
/// Planted in a subagent's task, its copies in the parent and a Read's
/// output: never in the database.
const SECRET: &str = "sk-ant-PROGRESS-SECRET-7";

/// One tool use: what the agent asked and how it ended, in the words of
/// both the transcript (`content`) and the hook (`response`).
struct Use {
    id: &'static str,
    tool: &'static str,
    input: Value,
    end: End,
}

enum End {
    Done { content: Value, response: Value },
    Failed(&'static str),
    Interrupted,
}

/// One exchange: a person's prompt, or an assistant message of parallel
/// tool uses and the user line holding their results.
enum Step {
    Prompt {
        ts: &'static str,
        text: &'static str,
    },
    Tools {
        asked: &'static str,
        answered: &'static str,
        uses: Vec<Use>,
    },
}

/// The steps of one transcript file: its session, and its subagent if it
/// is a subagent's file.
struct Thread {
    session: &'static str,
    agent: Option<(&'static str, &'static str)>,
    steps: Vec<Step>,
}

fn bash(id: &'static str, command: &str, end: End) -> Use {
    Use {
        id,
        tool: "Bash",
        input: json!({"command": command, "description": "run"}),
        end,
    }
}

fn stdout(text: &str) -> End {
    End::Done {
        content: json!(text),
        response: json!({"stdout": text, "stderr": "", "interrupted": false, "isImage": false}),
    }
}

fn first_session() -> Thread {
    Thread {
        session: FIRST,
        agent: None,
        steps: vec![
            Step::Prompt { ts: "2026-11-30T09:00:00.000Z", text: "please fix the CSV job" },
            Step::Tools {
                asked: "2026-11-30T09:00:05.000Z",
                answered: "2026-11-30T09:00:07.250Z",
                uses: vec![
                    bash("toolu_01P1", "fn run csv_read_py_data in.csv", End::Failed("Exit code 1\nTraceback: no such file")),
                    Use {
                        id: "toolu_01P2",
                        tool: "Read",
                        input: json!({"file_path": "/home/dev/app/job.py"}),
                        end: End::Done {
                            content: json!(format!("     1\u{2192}import csv  # {SECRET}")),
                            response: json!({"type": "text", "file": {"filePath": "/home/dev/app/job.py", "content": "import csv", "numLines": 1, "startLine": 1, "totalLines": 1}}),
                        },
                    },
                ],
            },
            Step::Tools {
                asked: "2026-11-30T09:01:00.000Z",
                answered: "2026-11-30T09:01:30.000Z",
                uses: vec![bash("toolu_01P3", "sleep 600", End::Interrupted)],
            },
            Step::Tools {
                asked: "2026-11-30T09:02:00.000Z",
                answered: "2026-11-30T09:02:01.000Z",
                uses: vec![Use {
                    id: "toolu_01P4",
                    tool: "mcp__registry__run_function",
                    input: json!({"function_id": "sqlite_open_go_infra", "args": {"path": "x.db"}}),
                    end: End::Done {
                        content: json!([{"type": "text", "text": "opened"}]),
                        response: json!([{"type": "text", "text": "opened"}]),
                    },
                }],
            },
            Step::Tools {
                asked: "2026-11-30T09:02:10.000Z",
                answered: "2026-11-30T09:02:12.500Z",
                uses: vec![
                    bash(
                        "toolu_01P5",
                        "python3 - <<'EOF'\nfrom fn_registry.csv import csv_read_py_data\nrows = csv_read_py_data('in.csv')\nprint(len(rows))\nEOF",
                        stdout("3\n"),
                    ),
                    Use {
                        id: "toolu_01P6",
                        tool: "Edit",
                        input: json!({"file_path": "/home/dev/app/job.py", "old_string": "import csv", "new_string": "import csv\nimport sys", "replace_all": false}),
                        end: End::Done {
                            content: json!("The file /home/dev/app/job.py has been updated."),
                            response: json!({"filePath": "/home/dev/app/job.py", "oldString": "import csv", "newString": "import csv\nimport sys", "originalFile": "import csv\n", "structuredPatch": [], "userModified": false, "replaceAll": false}),
                        },
                    },
                ],
            },
            Step::Tools {
                asked: "2026-11-30T09:02:20.000Z",
                answered: "2026-11-30T09:02:40.000Z",
                uses: vec![Use {
                    id: "toolu_01P7",
                    tool: "Agent",
                    input: json!({"description": "find the readers", "prompt": format!("find every CSV reader, key {SECRET}"), "subagent_type": "Explore"}),
                    end: End::Done {
                        content: json!([{"type": "text", "text": "Two readers."}]),
                        response: json!({"status": "completed", "agentId": AGENT, "content": [{"type": "text", "text": "Two readers."}], "totalTokens": 900, "totalDurationMs": 20000, "totalToolUseCount": 2}),
                    },
                }],
            },
            Step::Tools {
                asked: "2026-11-30T09:03:00.000Z",
                answered: "2026-11-30T09:03:01.000Z",
                uses: vec![bash("toolu_01P8", "sqlite3 app.db 'select count(*) from jobs'", stdout("1\n"))],
            },
        ],
    }
}

fn subagent() -> Thread {
    Thread {
        session: FIRST,
        agent: Some((AGENT, "Explore")),
        steps: vec![
            Step::Tools {
                asked: "2026-11-30T09:02:25.000Z",
                answered: "2026-11-30T09:02:25.400Z",
                uses: vec![Use {
                    id: "toolu_01S1",
                    tool: "Grep",
                    input: json!({"pattern": "csv.reader", "path": CWD, "output_mode": "files_with_matches"}),
                    end: End::Done {
                        content: json!("Found 2 files\na.py\nb.py"),
                        response: json!({"mode": "files_with_matches", "filenames": ["a.py", "b.py"], "numFiles": 2}),
                    },
                }],
            },
            Step::Tools {
                asked: "2026-11-30T09:02:30.000Z",
                answered: "2026-11-30T09:02:31.200Z",
                uses: vec![bash(
                    "toolu_01S2",
                    "fn run csv_read_py_data b.csv",
                    stdout("ok\n"),
                )],
            },
        ],
    }
}

fn resumed_session() -> Thread {
    Thread {
        session: RESUMED,
        agent: None,
        steps: vec![
            Step::Prompt {
                ts: "2026-11-30T10:00:00.000Z",
                text: "continue",
            },
            Step::Tools {
                asked: "2026-11-30T10:00:05.000Z",
                answered: "2026-11-30T10:00:09.000Z",
                uses: vec![bash(
                    "toolu_01Q1",
                    "pytest -q tests/test_csv.py",
                    stdout("3 passed\n"),
                )],
            },
        ],
    }
}

// ---- The transcript side ----------------------------------------------

fn transcript_line(session: &str, kind: &str, ts: &str, content: Value) -> Value {
    json!({
        "parentUuid": null, "isSidechain": false, "userType": "external", "cwd": CWD,
        "sessionId": session, "version": "2.1.210", "gitBranch": "main", "type": kind,
        "message": {"role": kind, "content": content}, "uuid": format!("u-{ts}-{kind}"),
        "timestamp": ts
    })
}

/// The lines of one step, as its thread's own file holds them.
fn step_lines(thread: &Thread, step: &Step) -> Vec<Value> {
    match step {
        Step::Prompt { ts, text } => vec![transcript_line(thread.session, "user", ts, json!(text))],
        Step::Tools {
            asked,
            answered,
            uses,
        } => {
            let mut blocks = vec![json!({"type": "text", "text": "Let me look."})];
            blocks.extend(uses.iter().map(
                |u| json!({"type": "tool_use", "id": u.id, "name": u.tool, "input": u.input}),
            ));
            let results: Vec<Value> = uses
                .iter()
                .map(|u| match &u.end {
                    End::Done { content, .. } => json!({"type": "tool_result", "tool_use_id": u.id, "content": content}),
                    End::Failed(text) => json!({"type": "tool_result", "tool_use_id": u.id, "content": text, "is_error": true}),
                    End::Interrupted => json!({"type": "tool_result", "tool_use_id": u.id, "content": "[Request interrupted by user for tool use]", "is_error": true}),
                })
                .collect();
            let mut result_line = transcript_line(thread.session, "user", answered, json!(results));
            result_line["toolUseResult"] = json!({"stdout": "", "stderr": ""});
            vec![
                transcript_line(thread.session, "assistant", asked, json!(blocks)),
                result_line,
            ]
        }
    }
}

/// `line` of a subagent as its parent's transcript copies it.
fn as_progress(line: &Value, agent: &str) -> Value {
    json!({
        "parentUuid": null, "isSidechain": false, "cwd": CWD, "sessionId": line["sessionId"],
        "version": "2.0.60", "type": "progress", "toolUseID": "agent_msg_1", "parentToolUseID": "toolu_01P7",
        "uuid": format!("p-{}", line["uuid"].as_str().unwrap()), "timestamp": line["timestamp"],
        "data": {"type": "agent_progress", "agentId": agent, "prompt": format!("find every CSV reader, key {SECRET}"),
                 "message": {"type": line["type"], "message": line["message"], "uuid": line["uuid"], "timestamp": line["timestamp"]}}
    })
}

fn write_lines(path: &Path, lines: &[Value], torn: Option<&Value>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(path).unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    if let Some(torn) = torn {
        let text = torn.to_string();
        write!(file, "{}", &text[..text.len() / 2]).unwrap();
    }
}

/// Writes the world's transcripts under `root` as Claude Code lays them
/// out; returns the project directory.
fn write_transcripts(root: &Path) -> PathBuf {
    let project = root.join("-home-dev-app");
    let (first, sub, resumed) = (first_session(), subagent(), resumed_session());
    let sub_lines: Vec<Value> = sub.steps.iter().flat_map(|s| step_lines(&sub, s)).collect();

    let mut main = vec![json!({"type": "summary", "summary": "Fix the CSV job", "leafUuid": "x"})];
    for (i, step) in first.steps.iter().enumerate() {
        main.extend(step_lines(&first, step));
        match i {
            1 => main.push(json!({"type": "file-history-snapshot", "messageId": "m", "snapshot": {"trackedFileBackups": {}}, "isSnapshotUpdate": false})),
            // The subagent runs while the Agent tool use is open: some
            // versions copy its messages into the parent.
            5 => {
                let result = main.pop().unwrap();
                main.extend(sub_lines.iter().map(|l| as_progress(l, AGENT)));
                main.push(json!({"type": "progress", "sessionId": FIRST, "timestamp": "2026-11-30T09:02:39.000Z", "uuid": "hp", "data": {"type": "hook_progress", "hookEvent": "PostToolUse"}}));
                main.push(result);
            }
            _ => {}
        }
    }
    main.push(json!({"type": "system", "subtype": "compact_boundary", "sessionId": FIRST, "timestamp": "2026-11-30T09:03:02.000Z", "content": "Conversation compacted"}));
    main.push(json!({"type": "queue-operation", "operation": "dequeue", "sessionId": FIRST, "timestamp": "2026-11-30T09:03:03.000Z"}));
    main.push(transcript_line(
        FIRST,
        "assistant",
        "2026-11-30T09:03:04.000Z",
        json!([{"type": "text", "text": "Done."}]),
    ));
    let torn = transcript_line(
        FIRST,
        "assistant",
        "2026-11-30T09:04:00.000Z",
        json!([{"type": "tool_use", "id": "toolu_01P9", "name": "Bash", "input": {"command": "ls"}}]),
    );
    write_lines(&project.join(format!("{FIRST}.jsonl")), &main, Some(&torn));

    let agents = project.join(FIRST).join("subagents");
    write_lines(
        &agents.join(format!("agent-{AGENT}.jsonl")),
        &sub_lines,
        None,
    );
    std::fs::write(
        agents.join(format!("agent-{AGENT}.meta.json")),
        json!({"agentType": "Explore", "description": "find the readers"}).to_string(),
    )
    .unwrap();

    // Resumed: the new file starts with the first session's opening lines,
    // copied under their own session id.
    let mut lines: Vec<Value> = first.steps[..2]
        .iter()
        .flat_map(|s| step_lines(&first, s))
        .collect();
    lines.extend(resumed.steps.iter().flat_map(|s| step_lines(&resumed, s)));
    write_lines(&project.join(format!("{RESUMED}.jsonl")), &lines, None);
    project
}

// ---- The hook side ----------------------------------------------------

fn hook_payload(thread: &Thread, event: &str) -> serde_json::Map<String, Value> {
    let mut payload = json!({
        "session_id": thread.session, "cwd": CWD, "permission_mode": "default",
        "transcript_path": format!("/home/dev/.claude/projects/-home-dev-app/{}.jsonl", thread.session),
        "hook_event_name": event
    });
    if let Some((agent, kind)) = thread.agent {
        payload["agent_id"] = json!(agent);
        payload["agent_type"] = json!(kind);
    }
    payload.as_object().unwrap().clone()
}

/// The hook payloads Claude Code sends for `thread`, with their times.
fn hook_events(thread: &Thread) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for step in &thread.steps {
        match step {
            Step::Prompt { ts, text } => {
                let mut p = hook_payload(thread, "UserPromptSubmit");
                p.insert("prompt".into(), json!(text));
                out.push((*ts, Value::Object(p)));
            }
            Step::Tools {
                asked,
                answered,
                uses,
            } => {
                for u in uses {
                    let mut pre = hook_payload(thread, "PreToolUse");
                    pre.insert("tool_name".into(), json!(u.tool));
                    pre.insert("tool_input".into(), u.input.clone());
                    pre.insert("tool_use_id".into(), json!(u.id));
                    out.push((*asked, Value::Object(pre.clone())));
                    let mut post = pre;
                    match &u.end {
                        End::Done { response, .. } => {
                            post.insert("hook_event_name".into(), json!("PostToolUse"));
                            post.insert("tool_response".into(), response.clone());
                        }
                        End::Failed(text) => {
                            post.insert("hook_event_name".into(), json!("PostToolUseFailure"));
                            post.insert("error".into(), json!(text));
                        }
                        End::Interrupted => {
                            post.insert("hook_event_name".into(), json!("PostToolUseFailure"));
                            post.insert(
                                "error".into(),
                                json!("[Request interrupted by user for tool use]"),
                            );
                            post.insert("is_interrupt".into(), json!(true));
                        }
                    }
                    out.push((*answered, Value::Object(post)));
                }
            }
        }
    }
    out
}

/// A spool file of the world's hook events, as native-shape envelope lines
/// stamped with the times Claude Code sent them, in time order.
fn write_hook_spool(dir: &Path) -> PathBuf {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let mut events: Vec<(&str, Value)> = [first_session(), subagent(), resumed_session()]
        .iter()
        .flat_map(hook_events)
        .collect();
    events.sort_by_key(|(ts, _)| *ts);
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("hooks.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    for (n, (ts, event)) in events.iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-{n:012x}");
        writeln!(
            file,
            "{}",
            json!({"v": 1, "id": id, "ts": ts, "host": host, "event": event})
        )
        .unwrap();
    }
    path
}

// ---- The comparisons --------------------------------------------------

/// What the two sources must agree on: every table but the events' own
/// keys (envelope ids differ by source) and the cross-source bookkeeping,
/// without the `source` column.
fn agreed(scratch: &Scratch) -> Vec<(String, Vec<Vec<rusqlite::types::Value>>)> {
    tables(
        &scratch.db(),
        &[
            "events",
            "event_echoes",
            "prompt_marks",
            "day_duration_buckets",
        ],
        &["source"],
    )
}

/// Asserts `scratch`'s tables are `expected`, table by table.
fn assert_agrees(
    scratch: &Scratch,
    expected: &[(String, Vec<Vec<rusqlite::types::Value>>)],
    what: &str,
) {
    let got = agreed(scratch);
    let names = |t: &[(String, _)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&got), names(expected), "{what}: the tables");
    for ((name, rows), (_, want)) in got.iter().zip(expected) {
        assert_eq!(rows, want, "{what}: table {name}");
    }
}

fn hooked(scratch: &Scratch, spool: &Path) -> String {
    succeed(&mut scratch.cmd(&["replay", spool.to_str().unwrap()]))
}

fn imported(scratch: &Scratch, root: &Path) -> String {
    succeed(&mut scratch.cmd(&["import-transcripts", root.to_str().unwrap()]))
}

/// A scratch whose argument-hash key is `like`'s: `args_hash` is keyed
/// per spool, and the comparisons are of one user's databases.
fn sharing_key(like: &Scratch) -> Scratch {
    let scratch = Scratch::new();
    let key = scratch.private_spool().join("args.key");
    std::fs::copy(like.spool().join("args.key"), key).unwrap();
    scratch
}

fn sources(scratch: &Scratch) -> Vec<(String, String, i64)> {
    let conn = scratch.read();
    let mut stmt = conn
        .prepare(
            "SELECT 'tool_uses', source, COUNT(*) FROM tool_uses GROUP BY source
             UNION ALL SELECT 'calls', source, COUNT(*) FROM calls GROUP BY source ORDER BY 1, 2",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn transcripts_and_hooks_give_the_same_tables_in_any_order() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("projects");
    write_transcripts(&root);
    let spool = write_hook_spool(&work.path().join("hooks"));

    let by_hooks = Scratch::new();
    let summary = hooked(&by_hooks, &spool);
    assert!(summary.contains("quarantined=0"), "{summary}");
    let expected = agreed(&by_hooks);
    let count = |s: &Scratch, sql: &str| s.count(sql);
    // The world as the hooks saw it: 11 tool uses (the torn one is not in
    // it), 2 prompts, the registry calls, the subagent's rows.
    assert_eq!(count(&by_hooks, "SELECT COUNT(*) FROM tool_uses"), 11);
    assert_eq!(count(&by_hooks, "SELECT SUM(prompts) FROM sessions"), 2);
    assert_eq!(
        count(
            &by_hooks,
            "SELECT COUNT(*) FROM tool_uses WHERE agent_id = 'a7f3c19' AND agent_type = 'Explore'"
        ),
        2
    );
    assert!(
        count(&by_hooks, "SELECT COUNT(*) FROM calls") >= 4,
        "fn run ×2, MCP, heredoc"
    );
    assert_eq!(count(&by_hooks, "SELECT COUNT(*) FROM violations"), 1);
    assert_eq!(
        count(&by_hooks, "SELECT COUNT(*) FROM code_writes")
            + count(&by_hooks, "SELECT COUNT(*) FROM heredocs"),
        1,
        "the heredoc"
    );

    // Imported alone: the same tables.
    let by_import = sharing_key(&by_hooks);
    let summary = imported(&by_import, &root);
    // Read: 8 + 2 copied into the parent, the subagent's 2, the resumed
    // file's 1 + 2 copied from the first session.
    assert!(summary.contains("files=3 tool_uses=15"), "{summary}");
    assert!(summary.contains("quarantined=0"), "{summary}");
    assert_agrees(&by_import, &expected, "import alone vs hooks alone");
    assert_eq!(
        sources(&by_import),
        vec![
            (
                "calls".into(),
                "transcript".into(),
                count(&by_hooks, "SELECT COUNT(*) FROM calls")
            ),
            ("tool_uses".into(), "transcript".into(), 11)
        ]
    );
    assert_secrets_absent(&by_import.db(), &[SECRET]);
    let again = imported(&by_import, &root);
    assert!(again.contains("inserted=0"), "{again}");
    assert_agrees(&by_import, &expected, "imported twice");

    // The parent's copies alone give the subagent's tool uses, its own.
    let parent_only = Scratch::new();
    let main_file = root.join("-home-dev-app").join(format!("{FIRST}.jsonl"));
    imported(&parent_only, &main_file);
    assert_eq!(
        count(&parent_only, "SELECT COUNT(*) FROM tool_uses WHERE agent_id = 'a7f3c19' AND agent_type = 'Explore' AND success = 1"),
        2,
        "the subagent's tool uses from the parent's progress lines"
    );

    // Hooks, then the import: nothing new, the hook's rows stay the hook's.
    let hooks_first = sharing_key(&by_hooks);
    hooked(&hooks_first, &spool);
    let summary = imported(&hooks_first, &root);
    assert!(summary.contains("inserted=0"), "{summary}");
    assert_agrees(&hooks_first, &expected, "hooks then import");
    assert!(sources(&hooks_first)
        .iter()
        .all(|(_, source, _)| source == "hook"));

    // The import, then hooks: the hooks' deliveries are duplicates.
    let import_first = sharing_key(&by_hooks);
    imported(&import_first, &root);
    let summary = hooked(&import_first, &spool);
    assert!(summary.contains("inserted=0"), "{summary}");
    assert_agrees(&import_first, &expected, "import then hooks");
    assert!(sources(&import_first)
        .iter()
        .all(|(_, source, _)| source == "transcript"));
}

/// A hook's prompt and its transcript line are rarely stamped the same
/// millisecond: they are one prompt within the window, and two prompts of
/// one length, one per source, minutes apart, are two.
#[test]
fn a_prompt_seen_by_both_sources_counts_once() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("projects");
    let project = root.join("-home-dev-app");
    write_lines(
        &project.join(format!("{FIRST}.jsonl")),
        &[
            transcript_line(FIRST, "user", "2026-11-30T09:00:00.480Z", json!("fix it")),
            transcript_line(FIRST, "user", "2026-11-30T09:10:00.000Z", json!("and it")),
        ],
        None,
    );
    let thread = Thread {
        session: FIRST,
        agent: None,
        steps: vec![],
    };
    let mut prompt = hook_payload(&thread, "UserPromptSubmit");
    prompt.insert("prompt".into(), json!("fix it"));
    let spool = work.path().join("hooks");
    std::fs::create_dir_all(&spool).unwrap();
    let lines = [("2026-11-30T09:00:00.020Z", "a"), ("2026-11-30T09:20:00.000Z", "b")]
        .map(|(ts, n)| json!({"v": 1, "id": format!("00000000-0000-4000-8000-00000000000{n}"), "ts": ts, "host": "h", "event": prompt}).to_string());
    std::fs::write(spool.join("p.jsonl"), lines.join("\n") + "\n").unwrap();

    let scratch = Scratch::new();
    hooked(&scratch, &spool);
    imported(&scratch, &root);
    // 09:00 hook + 09:00 transcript = one; 09:10 transcript ("and it", same
    // length) and 09:20 hook: each alone.
    assert_eq!(scratch.count("SELECT prompts FROM sessions"), 3);
    // Copies (new files, no checkpoints: a restored backup) are read
    // again, line by line: still three.
    let copies = work.path().join("copies");
    std::fs::create_dir_all(copies.join("hooks")).unwrap();
    std::fs::copy(
        project.join(format!("{FIRST}.jsonl")),
        copies.join("t.jsonl"),
    )
    .unwrap();
    std::fs::copy(spool.join("p.jsonl"), copies.join("hooks").join("p.jsonl")).unwrap();
    // A day later, when the echo rows (a hook registered twice) are
    // forgotten: only the prompt marks recognise them.
    rusqlite::Connection::open(scratch.db())
        .unwrap()
        .execute("DELETE FROM event_echoes", [])
        .unwrap();
    let again = imported(&scratch, &copies.join("t.jsonl"));
    assert!(again.contains("inserted=0 duplicates=2"), "{again}");
    let again = hooked(&scratch, &copies.join("hooks"));
    assert!(again.contains("inserted=0 duplicates=2"), "{again}");
    assert_eq!(
        scratch.count("SELECT prompts FROM sessions"),
        3,
        "read again"
    );
}

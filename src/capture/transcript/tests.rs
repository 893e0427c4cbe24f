//! The conversion of transcript lines, line by line, on the shapes Claude
//! Code writes.

use super::*;
use std::path::Path;

fn line(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn assistant(ts: &str, content: Value) -> Vec<u8> {
    line(json!({
        "type": "assistant", "sessionId": "s-1", "cwd": "/home/dev/app", "timestamp": ts,
        "uuid": "u", "isSidechain": false, "version": "2.1.200",
        "message": {"role": "assistant", "content": content}
    }))
}

fn user(ts: &str, content: Value) -> Vec<u8> {
    line(json!({
        "type": "user", "sessionId": "s-1", "cwd": "/home/dev/app", "timestamp": ts,
        "uuid": "v", "message": {"role": "user", "content": content}
    }))
}

#[test]
fn parallel_tool_uses_and_their_results_become_pre_and_post_events() {
    let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
    let pre = c
        .events(&assistant(
            "2026-12-01T10:00:00.000Z",
            json!([
                {"type": "text", "text": "Let me run both."},
                {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "fn run a_py_x", "description": "d"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"file_path": "/a.py"}}
            ]),
        ))
        .unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(pre[0].ts, "2026-12-01T10:00:00.000Z");
    assert_eq!(pre[0].payload["hook_event_name"], "PreToolUse");
    assert_eq!(pre[0].payload["tool_name"], "Bash");
    assert_eq!(pre[0].payload["tool_input"]["command"], "fn run a_py_x");
    assert_eq!(pre[0].payload["session_id"], "s-1");
    assert_eq!(pre[0].payload["cwd"], "/home/dev/app");
    assert_eq!(pre[1].payload["tool_use_id"], "toolu_01B");

    let post = c
        .events(&user(
            "2026-12-01T10:00:02.500Z",
            json!([
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "x = 1"},
                {"type": "tool_result", "tool_use_id": "toolu_01A", "is_error": true,
                 "content": [{"type": "text", "text": "Exit code 1\nboom"}]}
            ]),
        ))
        .unwrap();
    assert_eq!(post[0].payload["hook_event_name"], "PostToolUse");
    assert_eq!(post[0].payload["tool_name"], "Read");
    assert_eq!(post[0].payload["tool_response"], "x = 1");
    assert_eq!(post[1].payload["hook_event_name"], "PostToolUseFailure");
    assert_eq!(post[1].payload["tool_name"], "Bash");
    assert_eq!(post[1].payload["tool_input"]["command"], "fn run a_py_x");
    assert_eq!(post[1].payload["error"], "Exit code 1\nboom");
    assert!(post[1].payload.get("is_interrupt").is_none());
}

#[test]
fn interruptions_prompts_and_other_lines() {
    let mut c = Converter::for_file(Path::new("/p/s-1/subagents/agent-a7f.jsonl"));
    c.events(&assistant(
        "2026-12-01T10:00:00.000Z",
        json!([{"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "sleep 100"}}]),
    ))
    .unwrap();
    let cut = c
        .events(&user(
            "2026-12-01T10:00:09.000Z",
            json!([{"type": "tool_result", "tool_use_id": "t1", "is_error": true,
                    "content": "[Request interrupted by user for tool use]"}]),
        ))
        .unwrap();
    assert_eq!(cut[0].payload["is_interrupt"], true);
    assert_eq!(cut[0].payload["agent_id"], "a7f", "a subagent's file");
    // A subagent's user text is its task from the parent agent, which
    // fires no UserPromptSubmit.
    assert_eq!(
        c.events(&user("2026-12-01T10:00:10.000Z", json!("find the tests"))),
        Err(Skipped::NothingToCount)
    );

    let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
    let prompt = c
        .events(&user("2026-12-01T10:01:00.000Z", json!("fix the test")))
        .unwrap();
    assert_eq!(prompt[0].payload["hook_event_name"], "UserPromptSubmit");
    assert_eq!(prompt[0].payload["prompt"], "fix the test");
    let blocks = c
        .events(&user(
            "2026-12-01T10:01:00.000Z",
            json!([{"type": "text", "text": "and"}, {"type": "text", "text": "this"}]),
        ))
        .unwrap();
    assert_eq!(blocks[0].payload["prompt"], "and\nthis");

    let meta = line(
        json!({"type": "user", "sessionId": "s-1", "timestamp": "t", "isMeta": true,
                           "message": {"content": "<command-name>/clear</command-name>"}}),
    );
    assert_eq!(c.events(&meta), Err(Skipped::NothingToCount));
    let text_only = assistant("t", json!([{"type": "text", "text": "Done."}]));
    assert_eq!(c.events(&text_only), Err(Skipped::NothingToCount));
    let summary = line(json!({"type": "summary", "summary": "Fixing tests", "leafUuid": "x"}));
    assert_eq!(c.events(&summary), Err(Skipped::NoSession));
    let progress =
        line(json!({"type": "progress", "sessionId": "s-1", "timestamp": "t", "data": {}}));
    assert_eq!(c.events(&progress), Err(Skipped::OtherType));
    assert_eq!(c.events(b"{\"type\": \"assist"), Err(Skipped::NotJson));
}

/// Some versions copy a subagent's messages into the parent's
/// transcript as `progress` lines: their tool uses are the subagent's.
#[test]
fn a_subagents_messages_copied_into_its_parent_are_its_tool_uses() {
    let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
    let progress = |ts: &str, kind: &str, content: Value| {
        line(json!({
            "type": "progress", "sessionId": "s-1", "cwd": "/home/dev/app",
            "timestamp": "2026-12-01T10:05:00.000Z", "uuid": "p", "isSidechain": false,
            "parentToolUseID": "toolu_task", "toolUseID": "agent_msg_1",
            "data": {"type": "agent_progress", "agentId": "a9c1", "prompt": "look",
                     "message": {"type": kind, "timestamp": ts, "uuid": "m",
                                 "message": {"role": kind, "content": content}}}
        }))
    };
    let pre = c
        .events(&progress(
            "2026-12-01T10:04:58.000Z",
            "assistant",
            json!([{"type": "tool_use", "id": "toolu_S1", "name": "Glob", "input": {"pattern": "*.rs"}}]),
        ))
        .unwrap();
    assert_eq!(pre[0].payload["agent_id"], "a9c1");
    assert_eq!(pre[0].payload["tool_use_id"], "toolu_S1");
    assert_eq!(
        pre[0].ts, "2026-12-01T10:04:58.000Z",
        "the message's own time"
    );
    let post = c
        .events(&progress(
            "2026-12-01T10:04:59.000Z",
            "user",
            json!([{"type": "tool_result", "tool_use_id": "toolu_S1", "content": "a.rs"}]),
        ))
        .unwrap();
    assert_eq!(post[0].payload["hook_event_name"], "PostToolUse");
    assert_eq!(post[0].payload["tool_name"], "Glob");
    assert_eq!(post[0].payload["agent_id"], "a9c1");
    // The subagent's task prompt is no person's prompt; other progress
    // lines (hooks, bash output) hold no tool use.
    assert_eq!(
        c.events(&progress("2026-12-01T10:04:57.000Z", "user", json!("look"))),
        Err(Skipped::NothingToCount)
    );
    let hook_progress = line(json!({"type": "progress", "sessionId": "s-1",
        "timestamp": "t", "data": {"type": "hook_progress", "hookName": "PostToolUse"}}));
    assert_eq!(c.events(&hook_progress), Err(Skipped::OtherType));
}

#[test]
fn lines_before_since_and_the_results_of_their_tool_uses_imply_nothing() {
    let since = timefmt::parse("2026-12-01T10:00:00.000Z");
    let mut c = Converter::for_file(Path::new("/p/s-1.jsonl")).since(since);
    let old_use = json!([{"type": "tool_use", "id": "toolu_old", "name": "Bash", "input": {"command": "ls"}}]);
    assert_eq!(
        c.events(&assistant("2026-12-01T09:59:59.999Z", old_use)),
        Err(Skipped::BeforeSince)
    );
    assert_eq!(
        c.events(&user("2026-11-30T08:00:00.000Z", json!("an old prompt"))),
        Err(Skipped::BeforeSince)
    );
    // Its result comes after `since`: no Post-only row for it.
    let result = json!([{"type": "tool_result", "tool_use_id": "toolu_old", "content": "x"}]);
    assert_eq!(
        c.events(&user("2026-12-01T10:00:01.000Z", result)),
        Err(Skipped::NothingToCount)
    );
    let new_use = json!([{"type": "tool_use", "id": "toolu_new", "name": "Bash", "input": {"command": "ls"}}]);
    assert_eq!(
        c.events(&assistant("2026-12-01T10:00:00.000Z", new_use))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_result_whose_tool_use_came_before_the_checkpoint_still_pairs_by_id() {
    // Read again from a checkpoint, the tool_use line is not seen: the
    // Post carries its id, which the stored Pre pairs with.
    let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
    let post = c
        .events(&user(
            "2026-12-01T10:00:02.000Z",
            json!([{"type": "tool_result", "tool_use_id": "toolu_old", "content": "ok"}]),
        ))
        .unwrap();
    assert_eq!(post[0].payload["tool_use_id"], "toolu_old");
    assert!(post[0].payload.get("tool_name").is_none());
}

#[test]
fn the_hook_reduction_takes_the_implied_payloads() {
    // What the importer will do with them: the hook's own reduction,
    // which keeps the command (the spool's raw text, redacted at
    // ingestion) and drops outputs for their sizes.
    let mut c = Converter::for_file(Path::new("/p/s-1.jsonl"));
    c.events(&assistant(
        "t",
        json!([{"type": "tool_use", "id": "toolu_01A", "name": "Bash",
                "input": {"command": "fn run a_py_x", "description": "d"}}]),
    ))
    .unwrap();
    let output = "secret row\n".repeat(100);
    let post = c
        .events(&user(
            "t",
            json!([{"type": "tool_result", "tool_use_id": "toolu_01A",
                    "content": {"stdout": output, "stderr": "", "interrupted": false}}]),
        ))
        .unwrap();
    let reduced = crate::capture::reduce::reduce(&serde_json::to_vec(&post[0].payload).unwrap());
    assert_eq!(reduced["hook_event_name"], "PostToolUse");
    assert_eq!(reduced["tool_use_id"], "toolu_01A");
    assert_eq!(reduced["command"], "fn run a_py_x");
    assert!(!serde_json::to_string(&reduced)
        .unwrap()
        .contains("secret row"));
}

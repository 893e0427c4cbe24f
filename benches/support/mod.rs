//! Inputs shared by the benchmarks.

use std::io::Write;

#[allow(dead_code)] // used by the pipeline bench, not by the components one
pub mod bulk;
#[allow(dead_code)] // used by the pipeline bench, not by the components one
pub mod representative;

/// `lines` lines shaped like a real spool: sessions with prompts, Pre/Post
/// pairs of Bash (fn run and other commands), MCP registry calls, edits,
/// failures.
pub fn write_realistic_spool(out: &mut impl Write, lines: usize) -> usize {
    write_tool_uses(out, 0, lines, |i| format!("sess-{:05}", i / 40))
}

/// `lines` lines of the same shape, for tool uses numbered from `first`,
/// each in the session `session_of` names.
pub fn write_tool_uses(
    out: &mut impl Write,
    first: usize,
    lines: usize,
    session_of: impl Fn(usize) -> String,
) -> usize {
    let mut written = 0;
    let mut i = first;
    while written < lines {
        let session = session_of(i);
        let tool_use = format!("toolu_{i:09}");
        let (tool, extra): (&str, serde_json::Value) = match i % 5 {
            0 | 1 => (
                "Bash",
                serde_json::json!({"command": format!("fn run fn{}_py_data input.csv && fn run sqlite_open_go_infra", i % 97)}),
            ),
            2 => (
                "Bash",
                serde_json::json!({"command": "git status && cargo test -q 2>&1 | tail -5"}),
            ),
            3 => (
                "mcp__registry__run_function",
                serde_json::json!({"tool_input": {"function_id": format!("fn{}_ts_net", i % 31), "args": {"n": i}}}),
            ),
            _ => (
                "Edit",
                serde_json::json!({"file_path": format!("functions/py/data/fn{}.py", i % 97), "lines_added": 4, "lines_removed": 2, "content_sha256": "ab".repeat(32)}),
            ),
        };
        for (k, event) in [
            "PreToolUse",
            if i.is_multiple_of(13) {
                "PostToolUseFailure"
            } else {
                "PostToolUse"
            },
        ]
        .iter()
        .enumerate()
        {
            let mut e = serde_json::json!({
                "session_id": session, "cwd": "/home/dev/fn_registry", "hook_event_name": event,
                "permission_mode": "default", "tool_name": tool, "tool_use_id": tool_use
            });
            for (key, value) in extra.as_object().expect("object") {
                e[key] = value.clone();
            }
            if k == 1 {
                e["stdout_bytes"] = 4096.into();
                e["stderr_bytes"] = 0.into();
                if *event == "PostToolUseFailure" {
                    e["error"] = "Command failed with exit code 1".into();
                }
            }
            let ts = format!(
                "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                1 + (i / 86_400) % 28,
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60,
                k * 250
            );
            // Hook ids are UUIDv7: time-ordered, as in a real spool.
            let line = serde_json::json!({"v": 1, "id": uuid::Uuid::now_v7().to_string(), "ts": ts, "host": "bench", "event": e});
            writeln!(out, "{line}").expect("write");
            written += 1;
        }
        i += 1;
    }
    written
}

/// ~`size` bytes of varied Python source (every function differs in
/// names, literals and shape, as real code does).
pub fn python_source(size: usize) -> String {
    let mut code = String::from("import json\nimport os\nfrom pathlib import Path\n\n");
    let mut i = 0;
    while code.len() < size {
        code.push_str(&format!(
            "def step_{i}(rows, limit={}):\n    out = []\n    for n, row in enumerate(rows):\n        if n > limit or not row.get('k{}'):\n            {}\n        out.append({{'id': row['id'], 'v': row.get('v', 0) * {}}})\n    return out\n\n",
            i * 7 % 50,
            i % 13,
            ["continue", "break", "pass"][i % 3],
            i % 5 + 1,
        ));
        if i % 4 == 0 {
            code.push_str(&format!("class Model{i}:\n    def __init__(self, path):\n        self.path = Path(path) / 'm{i}.json'\n\n    def load(self):\n        return json.loads(self.path.read_text()) if self.path.exists() else {{}}\n\n"));
        }
        i += 1;
    }
    code
}

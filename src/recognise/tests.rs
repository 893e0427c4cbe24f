//! Recognition of real command shapes: calls, tests, e2e runs, writes,
//! violations and heredoc patterns, one envelope at a time.

use super::*;
use serde_json::{json, Value};

fn recogniser() -> Recogniser {
    Recogniser::new(Rules::builtin(), catalog(), ArgsKey::ephemeral())
}

fn catalog() -> Catalog {
    let mut catalog = Catalog::new("test");
    catalog.add_function(
        "sqlite_open_py_infra",
        Some("sqlite_open"),
        Some("functions/py/infra/sqlite_open.py"),
    );
    catalog.add_function(
        "sqlite_open_go_infra",
        Some("sqlite_open"),
        Some("functions/go/infra/sqlite_open.go"),
    );
    catalog.add_app_function("billing", "sqlite_open_go_infra");
    catalog.add_app_function("billing", "sqlite_open_py_infra");
    catalog
}

fn env(mut event: Value) -> Envelope<'static> {
    event["hook_event_name"] = "PostToolUseFailure".into();
    let line =
        json!({"v": 1, "id": "e", "ts": "2026-11-24T10:00:00.000Z", "event": event}).to_string();
    crate::contract::parse(Box::leak(line.into_boxed_str()).as_bytes()).unwrap()
}

fn bash(command: &str) -> Facts {
    recogniser().recognise(&env(json!({"tool_name": "Bash", "command": command})))
}

fn call_ids(facts: &Facts) -> Vec<(&str, &str)> {
    facts
        .calls
        .iter()
        .map(|c| (c.function_id.as_str(), c.tool_used.as_str()))
        .collect()
}

fn rule_ids(facts: &Facts) -> Vec<&str> {
    facts
        .violations
        .iter()
        .map(|v| v.rule_id.as_str())
        .collect()
}

#[test]
fn fn_run_in_real_commands() {
    let facts = bash(
        "fn run a_py_x && (fn run b_go_y | cat); echo fn run c_py_z; # fn run d_py_z\nxfn run e",
    );
    assert_eq!(
        call_ids(&facts),
        [("a_py_x", "fn_run"), ("b_go_y", "fn_run")]
    );
}

#[test]
fn heredoc_imports_are_calls() {
    let facts = bash(
        "python3 - <<'PY'\nfrom fn_registry.infra import sqlite_open, migrate as m\nimport fn_registry.data.load_csv\nfrom fn_registry.web.fetch import get\nPY",
    );
    assert_eq!(
        call_ids(&facts),
        [
            ("sqlite_open_py_infra", "heredoc"),
            ("migrate_py_infra", "heredoc"),
            ("fetch_py_web", "heredoc"),
            ("load_csv_py_data", "heredoc"),
        ]
    );
}

#[test]
fn args_hash_depends_on_arguments_only() {
    let r = recogniser();
    let hash = |cmd: &str| {
        r.recognise(&env(json!({"tool_name": "Bash", "command": cmd})))
            .calls[0]
            .args_hash
            .clone()
    };
    assert_eq!(
        hash("fn run a_py_x --db x"),
        hash("cd /tmp && fn run a_py_x --db x")
    );
    assert_ne!(hash("fn run a_py_x --db x"), hash("fn run a_py_x --db y"));
}

/// Heredocs that are text, in the shapes real sessions write them:
/// neither recorded as patterns nor checked by the code rules.
#[test]
fn only_code_heredocs_are_patterns_or_break_code_rules() {
    let long = "from os import *\nimport json, sys\nrows = json.load(open('a.json'))\nfor r in rows:\n    print(r['id'], r['name'])\ndef sqlite_open(path):\n    pass\nThen: fn run sqlite_open_go_infra; sqlite3 ops.db 'select 1'\n";
    let texts = [
        format!("git commit -m \"$(cat <<'EOF'\n{long}EOF\n)\""),
        format!("gh pr create --title t --body \"$(cat <<'EOF'\n{long}EOF\n)\""),
        format!("cat > notes.md <<'EOF'\n{long}EOF"),
        format!("cat <<EOF | grep import\n{long}EOF"),
    ];
    for text in &texts {
        let facts = bash(text);
        assert!(facts.heredocs.is_empty(), "{text}: {facts:?}");
        // Not code, not commands: no violation, no call, even where the
        // text stays inside the command's words (`$(cat <<EOF …)`).
        assert!(facts.violations.is_empty(), "{text}: {facts:?}");
        assert!(facts.calls.is_empty(), "{text}: {facts:?}");
    }
    // The command around the message is still read.
    let commit_then_run = format!("{} && fn run sqlite_open_go_infra", texts[0]);
    assert_eq!(bash(&commit_then_run).calls.len(), 1);
    for code in [
        format!("python3 - <<'EOF'\n{long}EOF"),
        format!("cat > job.py <<'EOF'\n{long}EOF"),
        format!("cat <<'EOF' | python3 -\n{long}EOF"),
    ] {
        let facts = bash(&code);
        assert_eq!(facts.heredocs.len(), 1, "{code}");
        assert_eq!(
            rule_ids(&facts),
            ["heredoc_reinvention", "import_star"],
            "{code}"
        );
    }
}

#[test]
fn violations() {
    assert_eq!(
        rule_ids(&bash("sqlite3 ops.db 'select 1'")),
        ["sqlite3_inline"]
    );
    assert_eq!(
        rule_ids(&bash("cd x && /usr/bin/sqlite3 ops.db")),
        ["sqlite3_inline"]
    );
    assert!(rule_ids(&bash("python3 -c 'import sqlite3'")).is_empty());
    assert!(rule_ids(&bash("python3 - <<EOF\nimport sqlite3\nEOF")).is_empty());
    assert!(rule_ids(&bash("pip install sqlite3-utils; echo sqlite3")).is_empty());
    assert_eq!(
        rule_ids(&bash("python3 -c 'from os import *'")),
        ["import_star"]
    );
    assert_eq!(
        rule_ids(&bash(
            "python3 <<EOF\nfrom os.path import *\nfrom sys import *\nEOF"
        )),
        ["import_star"],
        "once per tool use and rule"
    );
    let facts = bash("python3 <<EOF\ndef sqlite_open(path):\n    pass\nEOF");
    assert_eq!(facts.violations[0].rule_id, "heredoc_reinvention");
    assert_eq!(
        facts.violations[0].function_id.as_deref(),
        Some("sqlite_open_py_infra")
    );
    let go = bash("cat > x.go <<EOF\nfunc sqlite_open() {}\nEOF");
    assert_eq!(
        go.violations[0].function_id.as_deref(),
        Some("sqlite_open_go_infra")
    );
    assert!(bash("python3 <<EOF\ndef helper():\n    pass\nEOF")
        .violations
        .is_empty());
}

#[test]
fn tests_e2e_and_writes() {
    let facts =
        bash("fn test sqlite_open_py_infra --test test_open && fn e2e billing --check smoke");
    assert_eq!(
        facts.tests,
        [TestFact {
            function_id: "sqlite_open_py_infra".into(),
            test_id: Some("test_open".into())
        }]
    );
    assert_eq!(facts.e2e.len(), 2);
    assert!(facts
        .e2e
        .iter()
        .all(|e| e.app_id == "billing" && e.check_id.as_deref() == Some("smoke")));
    assert_eq!(bash("fn e2e unknown_app").e2e[0].function_id, None);

    let r = recogniser();
    let write = |path: &str| {
        r.recognise(&env(json!({"tool_name": "Write", "file_path": path})))
            .writes
    };
    assert_eq!(
        write("/r/functions/go/infra/sqlite_open.go")[0].function_id,
        "sqlite_open_go_infra"
    );
    assert_eq!(
        write("/r/functions/ts/web/fetch_json.ts")[0].function_id,
        "fetch_json_ts_web"
    );
    assert!(write("/r/src/main.rs").is_empty());
    // Windows paths, with the registry's path and with the path rule.
    let windows = write("C:\\Users\\dev\\r\\functions\\go\\infra\\sqlite_open.go");
    assert_eq!(windows[0].function_id, "sqlite_open_go_infra");
    assert_eq!(
        windows[0].file_path, "C:\\Users\\dev\\r\\functions\\go\\infra\\sqlite_open.go",
        "the path is kept as the agent wrote it"
    );
    assert_eq!(
        write("D:\\r\\functions\\ts\\web\\fetch_json.ts")[0].function_id,
        "fetch_json_ts_web"
    );
}

#[test]
fn mcp_calls() {
    let r = recogniser();
    let facts = r.recognise(&env(
        json!({"tool_name": "mcp__registry__run_function", "tool_input": {"function_id": "a_py_x", "args": {"k": 1}}}),
    ));
    assert_eq!(call_ids(&facts), [("a_py_x", "mcp")]);
    let by_id = r.recognise(&env(
        json!({"tool_name": "mcp__registry__get", "tool_input": {"id": "b_go_y"}}),
    ));
    assert_eq!(call_ids(&by_id), [("b_go_y", "mcp")]);
    let other = r.recognise(&env(
        json!({"tool_name": "mcp__github__get", "tool_input": {"id": "b_go_y"}}),
    ));
    assert!(other.is_empty());
    let free_text = r.recognise(&env(
        json!({"tool_name": "mcp__registry__get", "tool_input": {"id": "drop table x"}}),
    ));
    assert!(free_text.is_empty(), "a non-identifier id is not stored");
}

#[test]
fn error_classes() {
    let r = recogniser();
    let class = |error: &str| r.error_class(&env(json!({"error": error})));
    assert_eq!(class("Command failed with exit code 1"), "exit_1");
    assert_eq!(class("exit status 127"), "exit_127");
    assert_eq!(class("Command timed out after 2m"), "timeout");
    assert_eq!(class("bash: fn: command not found"), "not_found");
    assert_eq!(class("Permission denied"), "permission_denied");
    assert_eq!(class("weird"), "other");
    assert_eq!(
        r.error_class(&env(json!({"is_interrupt": true}))),
        "interrupted"
    );
}

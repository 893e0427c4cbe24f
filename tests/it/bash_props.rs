//! Properties of the Bash splitter and heredoc extractor: what is counted
//! does not depend on how commands are joined, how heredocs are delimited,
//! or what comments say.

use call_monitor::recognise::bash::{self, Script};
use call_monitor::recognise::rules::{Kind, Rules, Scope};
use proptest::prelude::*;

/// The `fn run` calls the built-in rules find in a command line.
fn calls(rules: &Rules, src: &str) -> Vec<String> {
    let script = bash::parse(src);
    let mut ids = Vec::new();
    for command in &script.commands {
        let text = command.text();
        for rule in rules.matching(Scope::Command, &text) {
            if rule.kind == Kind::Call {
                ids.extend(
                    rule.hits(&text)
                        .iter()
                        .filter_map(|h| rule.function_id(h, None)),
                );
            }
        }
    }
    ids
}

fn function_id() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,6}",
        prop::sample::select(vec!["py", "go", "ts"]),
        "[a-z]{1,5}",
    )
        .prop_map(|(name, lang, domain)| format!("{name}_{lang}_{domain}"))
}

fn argument() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "--db ops.db",
        "'a b; c'",
        "\"x && fn run hidden_py_x\"",
        "$(date +%s)",
        "-k 3",
        "> out.txt",
        "2>&1",
        "<<< 'fn run inner_py_x'",
        "",
    ])
    .prop_map(str::to_string)
}

/// A command line without a trailing separator: calls, decoys and plain
/// commands.
fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        (function_id(), argument()).prop_map(|(id, arg)| format!("fn run {id} {arg}")),
        (function_id(), argument())
            .prop_map(|(id, arg)| format!("FOO=1 timeout 30 fn run {id} {arg}")),
        function_id().prop_map(|id| format!("( fn run {id} )")),
        function_id().prop_map(|id| format!("echo 'fn run {id}'")),
        function_id().prop_map(|id| format!("git commit -m \"fn run {id}\"")),
        Just("sqlite3 ops.db 'select 1'".to_string()),
        Just("cd /tmp".to_string()),
        Just("ls -la | grep x".to_string()),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" && ", " || ", " ; ", " | ", "\n", " & "])
}

/// Heredoc body lines; none equals a delimiter used below.
fn body_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("from fn_registry.infra import sqlite_open, migrate as m".to_string()),
        Just("import fn_registry.data.load_csv".to_string()),
        Just("print('EOF is not the end')".to_string()),
        Just("  EOF".to_string()),
        Just("def helper(x):".to_string()),
        Just("# fn run not_a_call_py_x".to_string()),
        "[a-z =()'\"]{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Joining commands with any operator yields the union (in order) of
    /// the calls of each.
    #[test]
    fn joining_commands_unites_their_calls(
        parts in prop::collection::vec((command(), separator()), 1..6)
    ) {
        let rules = Rules::builtin();
        let mut joined = String::new();
        let mut expected = Vec::new();
        for (i, (cmd, sep)) in parts.iter().enumerate() {
            if i > 0 {
                joined.push_str(sep);
            }
            joined.push_str(cmd);
            expected.extend(calls(&rules, cmd));
        }
        prop_assert_eq!(calls(&rules, &joined), expected);
    }

    /// A trailing comment never adds a call.
    #[test]
    fn comments_are_not_counted(cmd in command(), comment in "[a-z_ ;&|]{0,20}", id in function_id()) {
        let rules = Rules::builtin();
        let commented = format!("{cmd} # note; fn run {id} {comment}\n# && fn run {id} | x");
        prop_assert_eq!(calls(&rules, &commented), calls(&rules, &cmd));
    }

    /// The delimiter's name and quoting, and `<<-` with tab-indented
    /// delimiter, do not change the heredoc or the commands around it.
    #[test]
    fn renaming_a_heredoc_delimiter_changes_nothing(
        lines in prop::collection::vec(body_line(), 0..8),
        after in command(),
        style in 0usize..5,
    ) {
        let body = lines.join("\n");
        let newline = if lines.is_empty() { "" } else { "\n" };
        let reference = format!("python3 - <<'EOF'\n{body}{newline}EOF\n{after}");
        let (open, close) = match style {
            0 => ("<<PY_END", "PY_END"),
            1 => ("<<\"END\"", "END"),
            2 => ("<< 'X1'", "X1"),
            3 => ("<<-STOP", "\t\tSTOP"),
            _ => ("<<\\EOT", "EOT"),
        };
        let renamed = format!("python3 - {open}\n{body}{newline}{close}\n{after}");
        let a: Script = bash::parse(&reference);
        let b: Script = bash::parse(&renamed);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.heredocs.len(), 1);
        prop_assert_eq!(a.heredocs[0].body.clone(), format!("{body}{newline}"));
    }

    /// Any input parses without panicking.
    #[test]
    fn never_panics(src in any::<String>()) {
        let _ = bash::parse(&src);
    }

    /// Shell-like noise parses without panicking either.
    #[test]
    fn never_panics_on_shell_noise(src in "[a-z $()`'\"\\\\<>|&;#{}\n\t-]{0,80}") {
        let _ = bash::parse(&src);
    }
}

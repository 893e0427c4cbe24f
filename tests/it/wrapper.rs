//! The Python telemetry wrapper (`clients/python`, issue 24): real Python
//! runs a heredoc under `FN_TELEMETRY=1` against a stub registry package,
//! with the session's environment as the hook exported it, and the real
//! binary ingests what it spooled.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

use std::time::Duration;

use crate::support::{run_hook_with_env, spool_files, succeed, wait_until, Daemon, Scratch, Tmpfs};

/// A stub fn_registry package: `fn_registry.data` defines its functions in
/// the package, `fn_registry.text.slugify` in a module of its own.
fn stub_registry(dir: &Path) -> PathBuf {
    let root = dir.join("pkgs");
    let files = [
        ("fn_registry/__init__.py", ""),
        (
            "fn_registry/data/__init__.py",
            "import time\n\n\
             def csv_load(path):\n    time.sleep(0.05)\n    return [path]\n\n\
             def strict_parse(text):\n    raise ValueError('bad row')\n\n\
             def count_rows(rows):\n    return len(rows)\n\n\
             async def fetch(n):\n    import asyncio\n    await asyncio.sleep(0.03)\n    return n\n\n\
             def _helper():\n    return 1\n",
        ),
        ("fn_registry/text/__init__.py", ""),
        (
            "fn_registry/text/slugify.py",
            "from fn_registry.data import csv_load\n\n\
             def slugify(text):\n    csv_load('nested')\n    return text.lower().replace(' ', '-')\n",
        ),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    root
}

fn client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python")
}

/// The heredoc the agent runs: two imported functions, one raising (and
/// caught, so the command itself succeeds), one module imported by name.
const SCRIPT: &str = "import call_monitor_telemetry
import importlib
from fn_registry.data import csv_load, strict_parse
csv_load('a.csv')
csv_load('SECRET-arg-91.csv')
try:
    strict_parse('x,y')
except ValueError:
    pass
slug = importlib.import_module('fn_registry.text.slugify')
print(slug.slugify('Hello World'))
";

fn command() -> String {
    format!("FN_TELEMETRY=1 python3 - <<'EOF'\n{SCRIPT}EOF")
}

/// Runs `script` with python3 the way the session's Bash command would:
/// the env file the hook wrote sourced first (when given).
fn run_python(
    env_file: Option<&Path>,
    pkgs: &Path,
    extra: &[(&str, &str)],
    script: &str,
) -> Output {
    let source = env_file.map_or(String::new(), |f| format!(". '{}' && ", f.display()));
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("{source}exec python3 -"))
        .env_remove("CALL_MONITOR_SESSION_ID")
        .env_remove("CALL_MONITOR_SPOOL")
        .env("FN_TELEMETRY", "1")
        .env(
            "PYTHONPATH",
            format!("{}:{}", client().display(), pkgs.display()),
        )
        .envs(extra.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn bash_event(event: &str, session: &str, tool_use_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": session, "cwd": "/home/dev/app", "hook_event_name": event,
        "tool_name": "Bash", "tool_use_id": tool_use_id,
        "tool_input": {"command": command(), "description": "Load the CSVs"},
        "tool_response": {"stdout": "hello-world\n", "stderr": "", "interrupted": false, "isImage": false}
    }))
    .unwrap()
}

/// Replays the spool (made private first, as the hook makes it; a replay
/// also creates the args_hash key).
fn replay(scratch: &Scratch) -> String {
    succeed(scratch.cmd(&["replay"]).arg(scratch.private_spool()))
}

/// The agent's side of a session: SessionStart (the hook exports the
/// session's environment), then a Bash tool use whose heredoc runs under
/// `FN_TELEMETRY=1`. `between` runs after each hook, as an ingester would.
fn agent_runs_the_heredoc(scratch: &Scratch, between: impl Fn()) {
    let pkgs = stub_registry(scratch.dir.path());
    let env_file = scratch.dir.path().join("sessionstart-hook-0.sh");
    let hook = |payload: &[u8]| {
        let (code, stderr) =
            run_hook_with_env(&scratch.spool(), payload, &[("CLAUDE_ENV_FILE", &env_file)]);
        assert_eq!((code, stderr.as_str()), (0, ""));
        between();
    };
    hook(br#"{"session_id":"s-wrap","hook_event_name":"SessionStart","source":"startup","cwd":"/home/dev/app"}"#);
    hook(&bash_event("PreToolUse", "s-wrap", "toolu_heredoc"));
    let out = run_python(Some(&env_file), &pkgs, &[], SCRIPT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello-world\n");
    hook(&bash_event("PostToolUse", "s-wrap", "toolu_heredoc"));
}

/// The rows the heredoc's session must end with, however it was ingested.
fn assert_refined(scratch: &Scratch) {
    let calls = scratch.texts(
        "SELECT function_id || ' ' || source || ' ' || wrapper_calls || ' ' || success || ' '
                || COALESCE(error_class, '-') || ' ' || COALESCE(tool_use_id, '-')
         FROM calls ORDER BY function_id, source",
    );
    assert_eq!(
        calls,
        [
            // Imported by the heredoc: its row, refined by two measured calls.
            "csv_load_py_data hook 2 1 - toolu_heredoc",
            // Imported by name, not in the heredoc's text: a row of its own.
            // (Its nested csv_load call is not counted.)
            "slugify_py_text wrapper 0 1 - -",
            // Raised inside a command that succeeded: the row says so.
            "strict_parse_py_data hook 1 0 ValueError toolu_heredoc",
        ]
    );
    let (duration, hash): (i64, Option<String>) = scratch
        .read()
        .query_row(
            "SELECT duration_ms, args_hash FROM calls WHERE function_id = 'slugify_py_text'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        duration >= 50,
        "slugify's nested csv_load sleeps 50 ms: {duration}"
    );
    assert_eq!(
        hash.map(|h| h.len()),
        Some(32),
        "keyed with the daemon's key"
    );
    let csv_duration =
        scratch.count("SELECT duration_ms FROM calls WHERE function_id = 'csv_load_py_data'");
    assert!(
        (100..5_000).contains(&csv_duration),
        "two measured calls of 50 ms: {csv_duration}"
    );
    assert_eq!(
        scratch.count(
            "SELECT errors_total FROM function_stats WHERE function_id = 'strict_parse_py_data'"
        ),
        1
    );
    crate::support::assert_secrets_absent(&scratch.db(), &["SECRET-arg-91"]);
}

#[test]
fn a_heredoc_under_fn_telemetry_refines_its_call_rows() {
    let scratch = Scratch::new();
    // The daemon has run before: the args_hash key exists.
    replay(&scratch);
    agent_runs_the_heredoc(&scratch, || {});
    // The wrapper's lines carry no argument values.
    let spooled: String = spool_files(&scratch.spool())
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let measured: Vec<&str> = spooled
        .lines()
        .filter(|l| l.contains("\"FunctionCall\""))
        .collect();
    assert_eq!(measured.len(), 4);
    assert!(measured.iter().all(|l| !l.contains("SECRET-arg-91")));
    // One replay: Pre, the measured calls and Post in one batch.
    replay(&scratch);
    assert_refined(&scratch);
    // The refined rows' rollups are what a rebuild from the rows gives.
    let conn = rusqlite::Connection::open(scratch.db()).unwrap();
    let incremental = crate::rollups::rollup_tables(&conn);
    call_monitor::store::rebuild_rollups(&conn).unwrap();
    assert_eq!(incremental, crate::rollups::rollup_tables(&conn));
    // Replaying again changes nothing.
    replay(&scratch);
    assert_eq!(scratch.count("SELECT SUM(wrapper_calls) FROM calls"), 3);
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), 3);
}

#[test]
fn the_daemon_refines_the_rows_as_the_lines_arrive() {
    let scratch = Scratch::new();
    scratch.private_spool();
    let daemon = Daemon::start_ready(&scratch, &[]);
    let events = || scratch.count("SELECT COUNT(*) FROM events");
    let ingested = std::cell::Cell::new(0);
    // Each hook's event is in the database before the agent goes on, as
    // with a live daemon (the measured calls arrive between Pre and Post).
    agent_runs_the_heredoc(&scratch, || {
        let before = ingested.get();
        wait_until("the hook's event ingested", Duration::from_secs(30), || {
            events() > before
        });
        ingested.set(events());
    });
    wait_until("the Post ingested", Duration::from_secs(30), || {
        scratch.count("SELECT COUNT(*) FROM tool_uses WHERE success IS NOT NULL") == 1
    });
    assert_eq!(
        events(),
        2 + 4 + 1,
        "SessionStart, Pre, 4 measured calls, Post"
    );
    assert_refined(&scratch);
    assert_eq!(daemon.terminate().0, 0);
}

#[test]
fn without_a_session_the_wrapper_calls_are_rows_of_their_own() {
    let scratch = Scratch::new();
    let pkgs = stub_registry(scratch.dir.path());
    replay(&scratch); // creates the spool's key
    let spool = scratch.spool();
    let out = run_python(
        None,
        &pkgs,
        &[("CALL_MONITOR_SPOOL", spool.to_str().unwrap())],
        "import asyncio, call_monitor_telemetry\nfrom fn_registry.data import csv_load, fetch\ncsv_load('x')\nassert asyncio.run(fetch(7)) == 7\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    replay(&scratch);
    let host = gethostname();
    assert_eq!(
        scratch.texts("SELECT session_id || ' ' || function_id || ' ' || source FROM calls ORDER BY function_id"
        ),
        [
            format!("wrapper:{host} csv_load_py_data wrapper"),
            format!("wrapper:{host} fetch_py_data wrapper"),
        ]
    );
    // A coroutine is measured until it is awaited to the end.
    assert!(
        scratch.count("SELECT duration_ms FROM calls WHERE function_id = 'fetch_py_data'") >= 30
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM sessions"), 0);
}

fn gethostname() -> String {
    let out = Command::new("python3")
        .args(["-c", "import socket; print(socket.gethostname())"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_users_code_runs_and_exits_as_it_would_without_a_usable_spool() {
    let scratch = Scratch::new();
    let pkgs = stub_registry(scratch.dir.path());
    let script = "import call_monitor_telemetry, sys\nfrom fn_registry.data import csv_load, strict_parse\nprint(csv_load('q'))\ntry:\n    strict_parse('z')\nexcept ValueError as e:\n    print('caught', e)\nsys.exit(3)\n";
    // A read-only file system (a read-only tmpfs: as root, CI's user, a
    // 0500 directory would still be writable; skipped when not root), a
    // spool others could read (the daemon would refuse it), a path that is
    // a file, and no spool at all.
    let read_only = Tmpfs::mount_read_only();
    if let Some(fs) = &read_only {
        assert!(
            std::fs::write(fs.path().join("probe"), "").is_err(),
            "mounted read-only"
        );
    }
    let shared = scratch.dir.path().join("shared-spool");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = scratch.dir.path().join("spool-is-a-file");
    std::fs::write(&file, "").unwrap();
    let missing = scratch.dir.path().join("no-such-spool");
    let plain = run_python(None, &pkgs, &[("FN_TELEMETRY", "0")], script);
    let mut spools = vec![shared.clone(), file.clone(), missing.clone()];
    spools.extend(read_only.as_ref().map(|fs| fs.path().to_path_buf()));
    for spool in &spools {
        let out = run_python(
            None,
            &pkgs,
            &[
                ("CALL_MONITOR_SPOOL", spool.to_str().unwrap()),
                ("CALL_MONITOR_SESSION_ID", "s"),
            ],
            script,
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, plain.stdout);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "['q']\ncaught bad row\n"
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!missing.exists(), "the wrapper never creates a spool");
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

#[test]
fn wrapper_processes_and_hooks_write_the_same_spool_concurrently() {
    let scratch = Scratch::new();
    let pkgs = stub_registry(scratch.dir.path());
    replay(&scratch);
    let spool = scratch.spool();
    // 4 processes of 250 calls each (several batched writes each), while
    // hooks append to the same hourly file.
    let script = "import call_monitor_telemetry\nfrom fn_registry.data import count_rows\nfor i in range(250):\n    count_rows([i])\n";
    let pythons: Vec<_> = (0..4)
        .map(|i| {
            let (pkgs, spool) = (pkgs.clone(), spool.clone());
            std::thread::spawn(move || {
                let session = format!("s-{i}");
                run_python(
                    None,
                    &pkgs,
                    &[
                        ("CALL_MONITOR_SPOOL", spool.to_str().unwrap()),
                        ("CALL_MONITOR_SESSION_ID", session.as_str()),
                    ],
                    script,
                )
            })
        })
        .collect();
    for i in 0..40 {
        let payload = crate::support::bash_payload("s-hooks", &format!("t{i}"), "a_py_x");
        assert_eq!(scratch.hook(&payload).0, 0);
    }
    for python in pythons {
        let out = python.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lines: usize = spool_files(&spool)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap().lines().count())
        .sum();
    assert_eq!(lines, 1_000 + 40);
    let summary = replay(&scratch);
    assert!(summary.contains("quarantined=0"), "{summary}");
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM calls WHERE source = 'wrapper' AND function_id = 'count_rows_py_data'"),
        1_000
    );
}

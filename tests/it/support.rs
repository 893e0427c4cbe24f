//! Helpers for tests that drive the real binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use rusqlite::{Connection, OpenFlags};

/// The binary, with the developer's own environment removed.
pub fn call_monitor() -> Command {
    let mut cmd = Command::cargo_bin("call_monitor").unwrap();
    for var in [
        "CALL_MONITOR_DB",
        "CALL_MONITOR_SPOOL",
        "CALL_MONITOR_REGISTRY",
        "CALL_MONITOR_RULES",
        "CALL_MONITOR_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A scratch directory with a database path and a spool path.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    db: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ops.db");
        Self { dir, db }
    }
    /// A scratch whose database lives at `db` (another file system).
    pub fn with_db(db: PathBuf) -> Self {
        Self { db, ..Self::new() }
    }
    pub fn db(&self) -> PathBuf {
        self.db.clone()
    }
    /// Where a daemon started with [`Daemon::start_logged`] writes its log.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }
    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }
    /// `cmd` with `--db` and `--spool` pointing here.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = call_monitor();
        cmd.args(args)
            .arg("--db")
            .arg(self.db())
            .arg("--spool")
            .arg(self.spool());
        cmd
    }
    /// Creates the spool directory, private (`0700`), as the daemon would.
    pub fn private_spool(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let spool = self.spool();
        std::fs::create_dir_all(&spool).unwrap();
        std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).unwrap();
        spool
    }
    /// A read-only connection (the daemon may be writing).
    pub fn read(&self) -> Connection {
        let conn =
            Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }
    /// Whether the database exists and its migrations are committed.
    pub fn has_schema(&self) -> bool {
        self.db().exists()
            && Connection::open_with_flags(self.db(), OpenFlags::SQLITE_OPEN_READ_ONLY)
                .and_then(|c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'function_stats'",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .is_ok_and(|n| n == 1)
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.read().query_row(sql, [], |r| r.get(0)).unwrap()
    }
    /// The first column of every row `sql` selects, as text.
    pub fn texts(&self, sql: &str) -> Vec<String> {
        let conn = self.read();
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }
    /// Runs a hook with `payload` on stdin; returns (exit code, stderr).
    pub fn hook(&self, payload: &[u8]) -> (i32, String) {
        run_hook(&self.spool(), payload)
    }
}

pub fn run_hook(spool: &Path, payload: &[u8]) -> (i32, String) {
    run_hook_with_env(spool, payload, &[])
}

/// [`run_hook`] with more environment variables, as Claude Code sets some
/// for some events (`CLAUDE_ENV_FILE` on SessionStart).
pub fn run_hook_with_env(spool: &Path, payload: &[u8], env: &[(&str, &Path)]) -> (i32, String) {
    use std::io::Write;
    let mut child = call_monitor()
        .arg("hook")
        .arg("--spool")
        .arg(spool)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running daemon, SIGKILLed if the test ends without stopping it.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    pub fn start(scratch: &Scratch, extra: &[&str]) -> Self {
        Self::spawn(scratch, extra, Stdio::piped())
    }

    /// A daemon whose log goes to [`Scratch::log`] (appended), for tests
    /// that read it while it runs or that make it log a lot.
    pub fn start_logged(scratch: &Scratch, extra: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(scratch.log())
            .unwrap();
        Self::spawn(scratch, extra, Stdio::from(log))
    }

    /// A logged daemon that has said "daemon started" — by then its signal
    /// handlers are installed, so even an immediate SIGTERM is a clean stop.
    pub fn start_ready(scratch: &Scratch, extra: &[&str]) -> Self {
        let started = || scratch.log_text().matches("daemon started").count();
        let before = started();
        let daemon = Self::start_logged(scratch, extra);
        wait_until("daemon started", Duration::from_secs(30), || {
            started() > before
        });
        daemon
    }

    fn spawn(scratch: &Scratch, extra: &[&str], stderr: Stdio) -> Self {
        let mut args = vec!["daemon", "--rescan", "200ms"];
        args.extend_from_slice(extra);
        let child = scratch
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let daemon = Self { child };
        // Ready once its database has the schema (the file appears before
        // the migrations are committed).
        wait_until(
            "daemon to create its database",
            Duration::from_secs(30),
            || scratch.has_schema(),
        );
        daemon
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; returns the exit code and stderr.
    pub fn terminate(mut self) -> (i32, String) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` until it holds; panics after `limit` (a hang, not a timing
/// assertion: the limit is far above any expected duration).
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A PostToolUse Bash payload running `fn run <function>`.
pub fn bash_payload(session: &str, tool_use_id: &str, function: &str) -> Vec<u8> {
    serde_json::json!({
        "session_id": session, "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_use_id": tool_use_id, "cwd": "/w", "transcript_path": "/t.jsonl",
        "tool_input": {"command": format!("fn run {function} --flag"), "description": "run it"},
        "tool_response": {"stdout": "x".repeat(200), "stderr": "", "interrupted": false, "isImage": false}
    })
    .to_string()
    .into_bytes()
}

/// An envelope line as an external appender would write it.
pub fn envelope_line(id: &str, session: &str, tool_use_id: &str, function: &str) -> String {
    let event = serde_json::json!({
        "session_id": session, "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_use_id": tool_use_id, "command": format!("fn run {function}"), "duration_ms": 12
    });
    let envelope = serde_json::json!({"v": 1, "id": id, "ts": "2026-11-24T10:00:00.000Z", "host": "test", "event": event});
    format!("{envelope}\n")
}

/// The `*.jsonl` files left in a spool directory.
pub fn spool_files(spool: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(spool) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `cmd`, asserts it succeeded (showing its stderr otherwise) and
/// returns its stdout.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A result row as (column name, value) pairs, in the statement's order.
pub fn named_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Vec<(String, rusqlite::types::Value)>> {
    let stmt: &rusqlite::Statement<'_> = row.as_ref();
    (0..stmt.column_count())
        .map(|i| Ok((stmt.column_name(i)?.to_string(), row.get(i)?)))
        .collect()
}

/// Every table of `db` but the spool bookkeeping and `skip_tables`, each
/// row as values without the run-dependent columns (row ids, ingestion
/// times) and `skip_columns`, in a stable order: what two ingestions of the
/// same events must agree on.
pub fn tables(
    db: &Path,
    skip_tables: &[&str],
    skip_columns: &[&str],
) -> Vec<(String, Vec<Vec<rusqlite::types::Value>>)> {
    use rusqlite::types::Value;
    let conn = Connection::open(db).unwrap();
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table'
             AND name NOT IN ('spool_files', 'schema_migrations') AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .filter(|name: &String| !skip_tables.contains(&name.as_str()))
        .collect();
    names
        .into_iter()
        .map(|name| {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
            let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
            let kept: Vec<usize> = (0..columns.len())
                .filter(|&i| {
                    let column = columns[i].as_str();
                    !matches!(column, "ingested_at" | "seen_at" | "id")
                        && !skip_columns.contains(&column)
                })
                .collect();
            let mut rows: Vec<Vec<Value>> = stmt
                .query_map([], |r| kept.iter().map(|&i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort_by_key(|row| format!("{row:?}"));
            (name, rows)
        })
        .collect()
}

/// Asserts none of `secrets` is in the database at `db`, its WAL or its
/// shared memory.
pub fn assert_secrets_absent(db: &Path, secrets: &[&str]) {
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for secret in secrets {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} found in {path}");
        }
    }
}

/// A small tmpfs, unmounted on drop; `None` (skip) when not root.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        Self::mount_with(&format!("size={size},mode=0700"))
    }

    /// A read-only one (a spool no writer can append to, even root).
    pub fn mount_read_only() -> Option<Tmpfs> {
        Self::mount_with("size=1m,mode=0700,ro")
    }

    fn mount_with(options: &str) -> Option<Tmpfs> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "root, yet mount -t tmpfs failed");
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system to the last byte; returns the filler.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

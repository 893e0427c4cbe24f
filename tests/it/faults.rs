//! Faults the pipeline must survive without losing or duplicating an event:
//! crashes and stops mid-ingestion, a full disk under the spool or the
//! database, a database locked by another process, a crowded spool,
//! symlinks, a spool with the wrong owner or mode, clocks going backwards.
//!
//! The disk-full tests mount a small tmpfs, which needs root (CI runs as
//! root); elsewhere they say so on stderr and skip.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::support::*;

const LONG: Duration = Duration::from_secs(180);

/// Writes `lines` envelope lines (ids `<prefix>-<i>`) to `path`; returns
/// the end offset of each line.
fn write_backlog(path: &Path, prefix: &str, lines: usize) -> Vec<u64> {
    let mut content = String::new();
    let mut ends = Vec::with_capacity(lines);
    for i in 0..lines {
        content.push_str(&envelope_line(
            &format!("{prefix}-{i}"),
            &format!("s{}", i % 7),
            &format!("{prefix}-tu-{i}"),
            "a_py_b",
        ));
        ends.push(content.len() as u64);
    }
    std::fs::write(path, content).unwrap();
    ends
}

/// Every line of a backlog stored exactly once, each classified once.
fn assert_exactly_once(scratch: &Scratch, lines: usize) {
    let n = lines as i64;
    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), n);
    assert_eq!(
        scratch.count("SELECT COUNT(DISTINCT envelope_id) FROM events"),
        n
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), n);
    assert_eq!(scratch.count("SELECT COUNT(*) FROM quarantine"), 0);
    assert_eq!(scratch.count("SELECT SUM(calls) FROM call_totals"), n);
}

fn wait_for_events(scratch: &Scratch, n: usize) {
    wait_until(&format!("{n} events"), LONG, || {
        scratch.count("SELECT COUNT(*) FROM events") >= n as i64
    });
}

/// A fresh daemon ingests the rest of a backlog, stops cleanly, and every
/// line is stored exactly once. (The earlier daemons may have stored it
/// all already, so wait for this one to be ready for SIGTERM.)
fn restart_and_finish(scratch: &Scratch, lines: usize) {
    let daemon = Daemon::start_ready(scratch, &[]);
    wait_for_events(scratch, lines);
    let (code, _) = daemon.terminate();
    assert_eq!(code, 0, "{}", scratch.log_text());
    assert_exactly_once(scratch, lines);
}

// ---------------------------------------------------------------- crashes

#[test]
fn sigkill_loop_during_a_large_backlog_stores_every_line_once() {
    const LINES: usize = 30_000;
    let scratch = Scratch::new();
    let file = scratch.private_spool().join("backlog.jsonl");
    let ends = write_backlog(&file, "k", LINES);
    let mut rng = rand::rng();
    for _ in 0..8 {
        let daemon = Daemon::start(&scratch, &[]);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..600)));
        daemon.kill();
        // Whatever was committed, the checkpoint is exactly its lines' end.
        let stored = scratch.count("SELECT COUNT(*) FROM events") as usize;
        let offset = scratch.count("SELECT COALESCE(MAX(offset), 0) FROM spool_files") as u64;
        assert_eq!(offset, stored.checked_sub(1).map_or(0, |i| ends[i]));
    }
    restart_and_finish(&scratch, LINES);
}

/// An hourly spool: many small files, several to a transaction. After
/// each SIGKILL, every file's checkpoint is exactly the end of its lines
/// that were stored, and nothing is lost or stored twice in the end.
#[test]
fn sigkill_loop_during_a_multi_file_backlog_stores_every_line_once() {
    let (scratch, ends) = hourly_backlog(150, 200);
    let mut rng = rand::rng();
    for _ in 0..8 {
        let daemon = Daemon::start(&scratch, &[]);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..600)));
        daemon.kill();
        assert_checkpoints_match_rows(&scratch, &ends);
    }
    restart_and_finish(&scratch, ends.len() * ends[0].len());
}

/// The same with `replay`, whose transactions take in several groups of
/// files (64 Ki lines) and free each file's lines before they commit: a
/// backlog of a few transactions, killed at random points of it (a debug
/// build replays it in ~5 s), so some kills land between commits and some
/// within a transaction.
#[test]
fn sigkill_loop_during_a_multi_file_replay_stores_every_line_once() {
    let (scratch, ends) = hourly_backlog(200, 700);
    let spool = scratch.private_spool();
    let mut rng = rand::rng();
    for _ in 0..4 {
        let mut replay = scratch
            .cmd(&["replay", spool.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(200..4000)));
        replay.kill().unwrap(); // SIGKILL
        replay.wait().unwrap();
        assert_checkpoints_match_rows(&scratch, &ends);
    }
    succeed(&mut scratch.cmd(&["replay", spool.to_str().unwrap()]));
    assert_exactly_once(&scratch, ends.len() * ends[0].len());
}

/// `files` hourly files of `lines` lines; each file's line ends.
fn hourly_backlog(files: usize, lines: usize) -> (Scratch, Vec<Vec<u64>>) {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    let ends = (0..files)
        .map(|f| {
            write_backlog(
                &spool.join(format!("h-{f:03}.jsonl")),
                &format!("m{f}"),
                lines,
            )
        })
        .collect();
    (scratch, ends)
}

/// Every file's checkpoint is exactly the end of its lines that are stored.
fn assert_checkpoints_match_rows(scratch: &Scratch, ends: &[Vec<u64>]) {
    let conn = scratch.read();
    let mut checkpoints = conn
        .prepare("SELECT path, offset FROM spool_files")
        .unwrap();
    let rows = checkpoints
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    for row in rows {
        let (path, offset) = row.unwrap();
        let f: usize = path.rsplit("h-").next().unwrap()[..3].parse().unwrap();
        let stored = scratch.count(&format!(
            "SELECT COUNT(*) FROM events WHERE envelope_id LIKE 'm{f}-%'"
        )) as usize;
        let expected = stored.checked_sub(1).map_or(0, |i| ends[f][i]);
        assert_eq!(offset as u64, expected, "{path}: {stored} lines stored");
    }
}

#[test]
fn sigterm_mid_backlog_commits_what_was_read_and_exits_0() {
    const LINES: usize = 40_000;
    let scratch = Scratch::new();
    let file = scratch.private_spool().join("backlog.jsonl");
    let ends = write_backlog(&file, "t", LINES);
    let daemon = Daemon::start(&scratch, &[]);
    wait_until("the first batch", LONG, || {
        scratch.count("SELECT COUNT(*) FROM events") > 0
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("daemon stopped"), "{stderr}");
    let stored = scratch.count("SELECT COUNT(*) FROM events") as usize;
    assert!(stored < LINES, "stopped before the end of the backlog");
    // The rows are exactly the first `stored` lines, and the checkpoint
    // stops right after them: nothing half-applied, nothing skipped.
    assert_eq!(
        scratch.count(&format!(
            "SELECT COUNT(*) FROM events WHERE CAST(substr(envelope_id, 3) AS INTEGER) < {stored}"
        )),
        stored as i64
    );
    assert_eq!(
        scratch.count("SELECT offset FROM spool_files") as u64,
        ends[stored - 1]
    );
    restart_and_finish(&scratch, LINES);
}

// ---------------------------------------------------------------- resources

#[test]
fn hook_on_a_full_spool_disk_exits_0_says_why_and_tears_nothing() {
    let Some(fs) = Tmpfs::mount("1m") else { return };
    let spool = fs.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).unwrap();
    let filler = fs.fill();
    let (code, stderr) = run_hook(&spool, &bash_payload("s", "tu-full", "a_py_b"));
    assert_eq!(code, 0, "the agent is never broken");
    assert!(stderr.contains("No space left on device"), "{stderr}");

    std::fs::remove_file(filler).unwrap();
    let (code, stderr) = run_hook(&spool, &bash_payload("s", "tu-after", "a_py_b"));
    assert_eq!((code, stderr.as_str()), (0, ""));
    let scratch = Scratch::new();
    let out = succeed(scratch.cmd(&["replay"]).arg(&spool));
    assert_eq!(
        out.trim(),
        "events=1 inserted=1 duplicates=0 quarantined=0",
        "the failed hook left no torn line"
    );
}

#[test]
fn a_full_database_disk_backs_off_and_resumes_losing_nothing() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let scratch = Scratch::with_db(fs.path().join("ops.db"));
    let spool = scratch.private_spool();
    let daemon = Daemon::start_logged(&scratch, &[]);
    write_backlog(&spool.join("a.jsonl"), "a", 100);
    wait_for_events(&scratch, 100);

    let filler = fs.fill();
    // Enough rows to outgrow whatever free pages the database and its WAL
    // still have.
    const MORE: usize = 8000;
    write_backlog(&spool.join("b.jsonl"), "b", MORE);
    wait_until("the daemon to back off", LONG, || {
        scratch.log_text().contains("backing off")
    });
    assert!(
        scratch.log_text().contains("full"),
        "the log says the database is full:\n{}",
        scratch.log_text()
    );
    assert!(scratch.count("SELECT COUNT(*) FROM events") < (100 + MORE) as i64);

    std::fs::remove_file(filler).unwrap();
    wait_for_events(&scratch, 100 + MORE);
    let (code, _) = daemon.terminate();
    assert_eq!(code, 0, "{}", scratch.log_text());
    assert_exactly_once(&scratch, 100 + MORE);
}

#[test]
fn a_database_locked_by_another_process_for_10_s_loses_nothing() {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    let daemon = Daemon::start_logged(&scratch, &[]);
    write_backlog(&spool.join("a.jsonl"), "a", 10);
    wait_for_events(&scratch, 10);

    // Another process takes the write lock and holds it for 10 s.
    let mut locker = Command::new("sqlite3")
        .arg(scratch.db())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sqlite3 (CI installs it)");
    let mut to_locker = locker.stdin.take().unwrap();
    writeln!(to_locker, "BEGIN EXCLUSIVE;\nSELECT 'locked';").unwrap();
    let mut answer = String::new();
    BufReader::new(locker.stdout.take().unwrap())
        .read_line(&mut answer)
        .unwrap();
    assert_eq!(answer.trim(), "locked");
    let started = std::time::Instant::now();
    for i in 0..40 {
        let (code, _) = scratch.hook(&bash_payload("s", &format!("locked-{i}"), "a_py_b"));
        assert_eq!(code, 0);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM events"),
        10,
        "nothing committed while the lock is held"
    );
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    writeln!(to_locker, "COMMIT;").unwrap();
    drop(to_locker);
    assert!(locker.wait().unwrap().success());

    wait_for_events(&scratch, 50);
    let (code, _) = daemon.terminate();
    assert_eq!(code, 0, "{}", scratch.log_text());
    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), 50);
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), 50);
    assert_eq!(scratch.count("SELECT COUNT(*) FROM quarantine"), 0);
}

#[test]
fn a_file_that_cannot_be_stored_does_not_hold_up_the_others() {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    let daemon = Daemon::start_logged(&scratch, &[]);
    // A trigger stands in for a bug: one line breaks a constraint, so its
    // file's batch fails every time it is tried.
    let writer = rusqlite::Connection::open(scratch.db()).unwrap();
    writer.busy_timeout(Duration::from_secs(10)).unwrap();
    writer
        .execute_batch(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.envelope_id = 'p-1'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
        )
        .unwrap();
    write_backlog(&spool.join("a-poisoned.jsonl"), "p", 3);
    write_backlog(&spool.join("b-fine.jsonl"), "f", 5);
    wait_for_events(&scratch, 5);
    wait_until("the failure to be logged", LONG, || {
        scratch
            .log_text()
            .contains("cannot store this file's lines")
    });
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM events WHERE envelope_id LIKE 'p-%'"),
        0,
        "the poisoned batch is rolled back whole"
    );

    writer.execute_batch("DROP TRIGGER poison").unwrap();
    wait_for_events(&scratch, 8);
    let (code, _) = daemon.terminate();
    assert_eq!(code, 0, "{}", scratch.log_text());
    assert_exactly_once(&scratch, 8);
}

/// The same with files that share a transaction: a poisoned one among
/// twelve holds up only itself.
#[test]
fn a_poisoned_file_among_many_holds_up_only_itself() {
    poisoned_among_many(40, 5);
}

/// And when the transaction took in several groups of files before the
/// poisoned one (1 500 lines a file: groups of a few files, all in one
/// replay transaction): every file of every group is stored again but it.
#[test]
fn a_poisoned_file_after_several_groups_holds_up_only_itself() {
    poisoned_among_many(1_500, 10);
}

/// Twelve files of `lines` lines, the second line of file `poisoned`
/// refused by the database until a trigger is dropped.
fn poisoned_among_many(lines: usize, poisoned: usize) {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    succeed(&mut scratch.cmd(&["init"]));
    let writer = rusqlite::Connection::open(scratch.db()).unwrap();
    writer
        .execute_batch(&format!(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.envelope_id = 'g{poisoned}-2'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        ))
        .unwrap();
    for f in 0..12 {
        write_backlog(
            &spool.join(format!("g-{f:02}.jsonl")),
            &format!("g{f}"),
            lines,
        );
    }
    // Replay reports the file it could not store and stores the others.
    let out = scratch
        .cmd(&["replay", spool.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("g-{poisoned:02}.jsonl")),
        "{stderr}"
    );
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM events") as usize,
        11 * lines
    );
    assert_eq!(
        scratch.count(&format!(
            "SELECT COUNT(*) FROM events WHERE envelope_id LIKE 'g{poisoned}-%'"
        )),
        0
    );
    // Once it can be stored, the daemon finishes it and deletes them all.
    writer.execute_batch("DROP TRIGGER poison").unwrap();
    let daemon = Daemon::start(&scratch, &["--quiet-period", "0s"]);
    wait_until("every file to be consumed and deleted", LONG, || {
        spool_files(&spool).is_empty()
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert_exactly_once(&scratch, 12 * lines);
}

#[test]
fn ten_thousand_spool_files_are_all_ingested_and_deleted() {
    const FILES: usize = 10_000;
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    for i in 0..FILES {
        std::fs::write(
            spool.join(format!("f-{i:05}.jsonl")),
            envelope_line(&format!("f-{i}"), "s", &format!("tu-{i}"), "a_py_b"),
        )
        .unwrap();
    }
    let daemon = Daemon::start(&scratch, &["--quiet-period", "0s"]);
    wait_until("every file to be consumed and deleted", LONG, || {
        spool_files(&spool).is_empty()
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert_exactly_once(&scratch, FILES);
}

// ---------------------------------------------------------------- file system

#[test]
fn symlinks_in_the_spool_are_never_followed() {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    let outside = scratch.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victim = outside.join("victim.jsonl");
    write_backlog(&victim, "victim", 3);
    let victim_bytes = std::fs::read(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, spool.join("link.jsonl")).unwrap();
    std::os::unix::fs::symlink(&outside, spool.join("dir.jsonl")).unwrap();

    // A planted symlink where the hook will append: refused, not followed.
    let planted = outside.join("planted.jsonl");
    let now = chrono::Utc::now();
    for at in [now, now + chrono::Duration::hours(1)] {
        std::os::unix::fs::symlink(&planted, call_monitor::spool::hook_file(&spool, at)).unwrap();
    }
    let (code, stderr) = scratch.hook(&bash_payload("s", "tu-planted", "a_py_b"));
    assert_eq!(code, 0);
    assert!(stderr.contains("event not recorded"), "{stderr}");
    assert!(!planted.exists(), "the hook wrote through a symlink");

    write_backlog(&spool.join("real.jsonl"), "real", 2);
    let daemon = Daemon::start(&scratch, &["--quiet-period", "0s"]);
    wait_until("the real file to be consumed", LONG, || {
        !spool.join("real.jsonl").exists()
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), 2);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM events WHERE envelope_id LIKE 'victim-%'"),
        0
    );
    assert_eq!(std::fs::read(&victim).unwrap(), victim_bytes);
    assert!(std::fs::symlink_metadata(spool.join("link.jsonl")).is_ok());
    assert!(!planted.exists());
}

#[test]
fn a_spool_with_the_wrong_mode_owner_or_type_is_refused_clearly() {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    let refused = |what: &str, needle: &str| {
        for args in [vec!["daemon"], vec!["replay", spool.to_str().unwrap()]] {
            let out = scratch.cmd(&args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {args:?} accepted it");
            assert!(stderr.contains(needle), "{what}: {args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        let (code, stderr) = scratch.hook(&bash_payload("s", "t", "a_py_b"));
        assert_eq!(code, 0, "{what}: the hook still exits 0");
        assert!(stderr.contains(needle), "{what}: hook: {stderr}");
    };

    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused("mode 0755", "chmod 700");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&spool, Some(65534), None).unwrap();
        refused("owned by nobody", "owned by uid 65534");
        std::os::unix::fs::chown(&spool, Some(0), None).unwrap();
    } else {
        eprintln!("SKIPPED (wrong owner): giving the spool away needs root");
    }
    let real = scratch.dir.path().join("real-spool");
    std::fs::rename(&spool, &real).unwrap();
    std::os::unix::fs::symlink(&real, &spool).unwrap();
    refused("a symlink", "symlink");
    assert!(spool_files(&real).is_empty(), "nothing written anywhere");
}

#[test]
fn clocks_going_backwards_lose_nothing_and_delete_nothing_early() {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    // Event times out of order: each Post is earlier than its Pre (one pair
    // in one batch, the other across two files, so two transactions), the
    // session's end earlier than its tool uses.
    let line = |id: &str, ts: &str, event: serde_json::Value| {
        format!(
            "{}\n",
            serde_json::json!({"v": 1, "id": id, "ts": ts, "host": "h", "event": event})
        )
    };
    let bash = |hook: &str, tool_use: &str| {
        serde_json::json!({"session_id": "back", "hook_event_name": hook, "tool_name": "Bash",
                           "tool_use_id": tool_use, "command": "fn run a_py_b"})
    };
    let first = [
        line("c1", "2026-11-24T10:00:05.000Z", bash("PreToolUse", "tu-1")),
        line("c2", "2026-11-24T10:00:09.000Z", bash("PreToolUse", "tu-2")),
        line(
            "c3",
            "2026-11-24T10:00:02.000Z",
            bash("PostToolUse", "tu-2"),
        ),
    ];
    let second = [
        line(
            "c4",
            "2026-11-24T10:00:01.000Z",
            bash("PostToolUse", "tu-1"),
        ),
        line(
            "c5",
            "2026-11-24T09:59:00.000Z",
            serde_json::json!({"session_id": "back", "hook_event_name": "SessionEnd"}),
        ),
    ];
    let files = [spool.join("skewed-a.jsonl"), spool.join("skewed-b.jsonl")];
    // Written "in the future": the clock went back after the writes.
    let set_mtime = |at: SystemTime| {
        for file in &files {
            std::fs::File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_modified(at)
                .unwrap();
        }
    };
    std::fs::write(&files[0], first.concat()).unwrap();
    std::fs::write(&files[1], second.concat()).unwrap();
    set_mtime(SystemTime::now() + Duration::from_secs(3600));

    let daemon = Daemon::start(&scratch, &["--quiet-period", "1s"]);
    wait_for_events(&scratch, 5);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        files.iter().all(|f| f.exists()),
        "a file modified 'in the future' is not yet quiet: never deleted early"
    );
    set_mtime(SystemTime::now() - Duration::from_secs(5));
    wait_until("the files to be retired", LONG, || {
        files.iter().all(|f| !f.exists())
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");

    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), 5);
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), 2);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM calls WHERE duration_ms IS NULL"),
        2,
        "a backwards clock is no duration at all, never a negative one"
    );
    let conn = scratch.read();
    let (started, ended): (String, String) = conn
        .query_row(
            "SELECT started_at, ended_at FROM sessions WHERE session_id = 'back'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        started, "2026-11-24T09:59:00.000Z",
        "the earliest time seen"
    );
    assert_eq!(ended, "2026-11-24T09:59:00.000Z");
}

//! The ingestion engine end to end: real hooks, a real daemon, real spool
//! files, the real database.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use rand::Rng;

use crate::support::*;

const LONG: Duration = Duration::from_secs(120);

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn concurrent_hooks_while_the_daemon_consumes_and_deletes() {
    const WRITERS: usize = 8;
    const RUNS: usize = 500;
    let scratch = Scratch::new();
    // Quiet period 0: the daemon deletes each file as soon as it is consumed,
    // racing the hooks that append to it: the protocol must lose nothing.
    let daemon = Daemon::start(&scratch, &["--quiet-period", "0s"]);
    let spool = scratch.spool();
    let modes_seen = std::sync::Mutex::new(HashSet::new());
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let spool = &spool;
            let modes_seen = &modes_seen;
            s.spawn(move || {
                for i in 0..RUNS {
                    let payload = bash_payload(
                        &format!("sess-{w}"),
                        &format!("tu-{w}-{i}"),
                        "csv_read_py_data",
                    );
                    let (code, stderr) = run_hook(spool, &payload);
                    assert_eq!((code, stderr.as_str()), (0, ""), "hook run {w}/{i}");
                    if i % 50 == 0 {
                        let mut seen = modes_seen.lock().unwrap();
                        seen.insert(("dir", mode(spool)));
                        for f in spool_files(spool) {
                            if let Ok(meta) = std::fs::metadata(&f) {
                                seen.insert(("file", meta.permissions().mode() & 0o777));
                            }
                        }
                    }
                }
            });
        }
    });
    let total = (WRITERS * RUNS) as i64;
    // A file is deleted only once all of it is committed, so an empty spool
    // means everything that reached a live file is in the database; a line
    // written into a deleted file would simply be missing from the count.
    wait_until("consumed files to be deleted", LONG, || {
        spool_files(&spool).is_empty()
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");

    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), total);
    assert_eq!(
        scratch.count("SELECT COUNT(DISTINCT dedupe_key) FROM events"),
        total
    );
    assert_eq!(
        scratch.count("SELECT COUNT(DISTINCT envelope_id) FROM events"),
        total
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), total);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM quarantine"),
        0,
        "a torn line would be quarantined"
    );
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM sessions"),
        WRITERS as i64
    );
    let seen = modes_seen.into_inner().unwrap();
    assert!(seen.contains(&("dir", 0o700)), "{seen:?}");
    assert!(
        seen.iter().all(|(kind, m)| if *kind == "dir" {
            *m == 0o700
        } else {
            *m == 0o600
        }),
        "{seen:?}"
    );
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    const LINES: usize = 3000;
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.spool()).unwrap();
    std::fs::set_permissions(scratch.spool(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = scratch.spool().join("external.jsonl");
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // An external appender: one write per line, except every 7th line,
        // written in two parts with a pause between (a torn read window).
        s.spawn(|| {
            let mut out = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .unwrap();
            let mut rng = rand::rng();
            for i in 0..LINES {
                let line = envelope_line(
                    &format!("ext-{i}"),
                    &format!("s{}", i % 5),
                    &format!("tu-{i}"),
                    "a_py_b",
                );
                if i % 7 == 0 {
                    let (a, b) = line.as_bytes().split_at(line.len() / 2);
                    out.write_all(a).unwrap();
                    std::thread::sleep(Duration::from_millis(3));
                    out.write_all(b).unwrap();
                } else {
                    out.write_all(line.as_bytes()).unwrap();
                }
                if rng.random_ratio(1, 10) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut rng = rand::rng();
        for _ in 0..5 {
            let daemon = Daemon::start(&scratch, &[]);
            std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
            daemon.kill();
        }
    });
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    let daemon = Daemon::start(&scratch, &[]);
    wait_until("every line", LONG, || {
        scratch.count("SELECT COUNT(*) FROM events") >= LINES as i64
    });
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "SIGTERM exits 0: {stderr}");
    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), LINES as i64);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM calls"),
        LINES as i64,
        "each event classified once"
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM quarantine"), 0);
    let size = std::fs::metadata(&file).unwrap().len() as i64;
    assert_eq!(scratch.count("SELECT MAX(offset) FROM spool_files"), size);
}

fn dump(scratch: &Scratch) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(scratch.db())
        .arg(".dump")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replaying_the_same_files_twice_changes_nothing() {
    let scratch = Scratch::new();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/spool");
    let first = scratch.cmd(&["replay"]).arg(&fixtures).output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "events=46 inserted=43 duplicates=1 quarantined=2"
    );
    let before = dump(&scratch);
    let second = scratch.cmd(&["replay"]).arg(&fixtures).output().unwrap();
    assert!(second.status.success());
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "events=0 inserted=0 duplicates=0 quarantined=0"
    );
    assert_eq!(dump(&scratch), before, "the database is unchanged");

    // The same events under another file identity are all duplicates.
    let copy = scratch.dir.path().join("copy.jsonl");
    std::fs::copy(fixtures.join("demo-session.jsonl"), &copy).unwrap();
    let third = scratch.cmd(&["replay"]).arg(&copy).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&third.stdout).trim(),
        "events=46 inserted=0 duplicates=44 quarantined=2"
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), 12);
}

#[test]
fn bad_lines_are_quarantined_raw_and_neighbours_ingested() {
    let scratch = Scratch::new();
    let file = scratch.dir.path().join("mixed.jsonl");
    let bad: Vec<Vec<u8>> = vec![
        b"{\"v\":1,\"id\":\"x\",\"ts\":\"2026".to_vec(),
        b"\xff\xfe\x00not utf8".to_vec(),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        br#"{"v":2,"id":"v2","ts":"2026-11-24T10:00:00.000Z","host":"h","event":{"hook_event_name":"Stop"}}"#.to_vec(),
        br#"{"v":1,"id":"noevent","ts":"2026-11-24T10:00:00.000Z","host":"h"}"#.to_vec(),
        [b"{\"pad\":\"".as_slice(), &vec![b'a'; 2 * 1024 * 1024], b"\"}"].concat(),
    ];
    let mut content = Vec::new();
    for (i, line) in bad.iter().enumerate() {
        content.extend_from_slice(
            envelope_line(&format!("good-{i}"), "s", &format!("tu-{i}"), "f_py_x").as_bytes(),
        );
        content.extend_from_slice(line);
        content.push(b'\n');
    }
    std::fs::write(&file, &content).unwrap();
    let out = scratch.cmd(&["replay"]).arg(&file).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("events=12 inserted=6 duplicates=0 quarantined=6")
    );
    let conn = scratch.read();
    let mut stmt = conn
        .prepare("SELECT offset, length, sha256, reason FROM quarantine ORDER BY offset")
        .unwrap();
    let rows: Vec<(i64, i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), bad.len());
    for ((offset, length, sha, reason), line) in rows.iter().zip(&bad) {
        assert_eq!(*length as usize, line.len() + 1);
        assert_eq!(
            &content[*offset as usize..*offset as usize + line.len()],
            line.as_slice()
        );
        let stored = scratch
            .spool()
            .join("quarantine")
            .join(format!("{sha}.line"));
        assert_eq!(&std::fs::read(&stored).unwrap(), line, "raw bytes kept");
        assert_eq!(mode(&stored), 0o600);
        assert!(!reason.contains("aaaa") && !reason.is_empty(), "{reason}");
    }
    assert_eq!(scratch.count("SELECT COUNT(*) FROM calls"), 6);
}

/// Writes each of `files` (contents) as `1.jsonl`, `2.jsonl`, … and replays
/// them one run each, in order; the runs' outputs.
fn replay_each(scratch: &Scratch, files: &[String]) -> Vec<String> {
    files
        .iter()
        .enumerate()
        .map(|(i, content)| {
            let path = scratch.dir.path().join(format!("{}.jsonl", i + 1));
            std::fs::write(&path, content).unwrap();
            crate::support::succeed(scratch.cmd(&["replay"]).arg(path))
        })
        .collect()
}

#[test]
fn pre_and_post_pair_across_files_in_any_order() {
    let scratch = Scratch::new();
    let pre = r#"{"v":1,"id":"p1","ts":"2026-11-24T10:00:00.000Z","host":"h","event":{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","command":"fn run a_py_x; fn run b_py_x"}}"#;
    let post = r#"{"v":1,"id":"p2","ts":"2026-11-24T10:00:01.250Z","host":"h","event":{"session_id":"s","hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_use_id":"t1","command":"fn run a_py_x; fn run b_py_x","error":"Command failed with exit code 2"}}"#;
    let lone = r#"{"v":1,"id":"p3","ts":"2026-11-24T10:00:05.000Z","host":"h","event":{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t2","command":"fn run c_py_x"}}"#;
    // Post first, in an earlier file; Pre later.
    replay_each(&scratch, &[format!("{post}\n"), format!("{pre}\n{lone}\n")]);
    let conn = scratch.read();
    type CallRow = (String, String, Option<i64>, Option<i64>, Option<String>);
    let rows: Vec<CallRow> = conn
        .prepare("SELECT function_id, ts, duration_ms, success, error_class FROM calls ORDER BY function_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let start = "2026-11-24T10:00:00.000Z".to_string();
    assert_eq!(
        rows,
        vec![
            (
                "a_py_x".into(),
                start.clone(),
                Some(1250),
                Some(0),
                Some("exit_2".into())
            ),
            (
                "b_py_x".into(),
                start,
                Some(1250),
                Some(0),
                Some("exit_2".into())
            ),
            (
                "c_py_x".into(),
                "2026-11-24T10:00:05.000Z".into(),
                None,
                None,
                None
            ),
        ]
    );
}

/// Facts are recognised ahead of the database, planned as if every event
/// were new: a Pre followed by its Post in the same batch is planned to
/// lend only its start time. When that Post turns out to be a redelivery,
/// the Pre must still be recorded (recognised late), pairing with the row
/// the Post wrote in an earlier run.
#[test]
fn a_pre_whose_post_is_a_redelivery_in_the_same_batch_still_pairs() {
    let scratch = Scratch::new();
    let pre = r#"{"v":1,"id":"p1","ts":"2026-11-24T10:00:00.000Z","host":"h","event":{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"t1","command":"fn run a_py_x"}}"#;
    let post = r#"{"v":1,"id":"p2","ts":"2026-11-24T10:00:01.250Z","host":"h","event":{"session_id":"s","hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"t1","command":"fn run a_py_x"}}"#;
    let outs = replay_each(&scratch, &[format!("{post}\n"), format!("{pre}\n{post}\n")]);
    assert_eq!(
        outs[1].trim(),
        "events=2 inserted=1 duplicates=1 quarantined=0"
    );
    let row: (String, Option<i64>, Option<i64>) = scratch
        .read()
        .query_row("SELECT ts, duration_ms, success FROM calls", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(
        row,
        ("2026-11-24T10:00:00.000Z".to_string(), Some(1250), Some(1))
    );
}

#[test]
fn hook_is_bounded_and_never_fails() {
    let scratch = Scratch::new();
    // 10 MB of output: measured, not kept.
    let big = serde_json::json!({
        "session_id": "s", "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "t",
        "tool_input": {"command": "fn run a_py_b"},
        "tool_response": {"stdout": "y".repeat(10 * 1024 * 1024), "stderr": ""}
    });
    assert_eq!(scratch.hook(big.to_string().as_bytes()), (0, String::new()));
    assert_eq!(scratch.hook(b"definitely { not json"), (0, String::new()));
    let files = spool_files(&scratch.spool());
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(text.len() < 4096, "outputs never reach the spool");
    assert_eq!(lines[0]["event"]["stdout_bytes"], 10 * 1024 * 1024);
    assert_eq!(lines[1]["event"]["hook_event_name"], "_invalid");

    // An unusable spool: still exit 0, with the reason on stderr.
    let not_a_dir = scratch.dir.path().join("file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let (code, stderr) = run_hook(&not_a_dir, &bash_payload("s", "t", "a_py_b"));
    assert_eq!(code, 0);
    assert!(stderr.contains("not a directory"), "{stderr}");
    let shared = scratch.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, stderr) = run_hook(&shared, &bash_payload("s", "t", "a_py_b"));
    assert_eq!(code, 0);
    assert!(stderr.contains("chmod 700"), "{stderr}");
    assert!(
        spool_files(&shared).is_empty(),
        "nothing written to a shared directory"
    );
}

#[test]
fn daemon_follows_rotation_truncation_and_recreation_without_rereading() {
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.spool()).unwrap();
    std::fs::set_permissions(scratch.spool(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let daemon = Daemon::start(&scratch, &[]);
    let mut next = 0;
    let mut write = |path: &std::path::Path, n: usize, truncate: bool| {
        let mut f = OpenOptions::new()
            .create(true)
            .append(!truncate)
            .write(true)
            .truncate(truncate)
            .open(path)
            .unwrap();
        for _ in 0..n {
            f.write_all(
                envelope_line(&format!("rot-{next}"), "s", &format!("tu-{next}"), "a_py_b")
                    .as_bytes(),
            )
            .unwrap();
            next += 1;
        }
    };
    let events = |n: i64| {
        wait_until(&format!("{n} events"), LONG, || {
            scratch.count("SELECT COUNT(*) FROM events") >= n
        });
    };
    let a = scratch.spool().join("a.jsonl");
    let rotated = scratch.spool().join("a.1.jsonl");
    write(&a, 10, false);
    events(10);
    // Rotation: renamed and appended to, while a new file takes the name.
    std::fs::rename(&a, &rotated).unwrap();
    write(&rotated, 5, false);
    write(&a, 5, false);
    events(20);
    // Truncation in place, then new content.
    write(&rotated, 3, true);
    events(23);
    // Deletion and re-creation under the same name.
    std::fs::remove_file(&a).unwrap();
    write(&a, 4, false);
    events(27);
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), 27);
    // Dedupe would hide re-reads from the counts above; the totals show none happened.
    assert!(
        stderr.contains("events=27 inserted=27 duplicates=0 quarantined=0"),
        "{stderr}"
    );
}

/// The daemon's own reads must not wake it: inotify reports opens too, and a
/// daemon woken by them re-reads the spool in a loop while idle (it did: 4 %
/// CPU). A consumed file stays in the spool for the quiet period and every
/// pass opens it, logging "spool file kept": with a 1 s rescan, ~3 s of
/// idling is a handful of passes, not hundreds.
#[test]
fn an_idle_daemon_is_not_woken_by_its_own_reads() {
    let scratch = Scratch::new();
    let (code, _) = scratch.hook(&bash_payload("s1", "toolu_1", "csv_read_py_data"));
    assert_eq!(code, 0);
    let child = scratch
        .cmd(&["daemon", "--rescan", "1s"])
        .env("CALL_MONITOR_LOG", "call_monitor=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon = Daemon { child };
    wait_until("the event to be ingested", Duration::from_secs(30), || {
        scratch.has_schema() && scratch.count("SELECT COUNT(*) FROM events") == 1
    });
    std::thread::sleep(Duration::from_secs(3));
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    let passes = stderr.matches("spool file kept").count();
    assert!(
        (1..=10).contains(&passes),
        "{passes} passes over an idle spool in ~3 s"
    );
}

/// A session's row takes what each event adds, whatever order the events
/// arrive in: the earliest start, the end, the cwd and host stored
/// first, the newest model; events that add nothing leave it as it is.
#[test]
fn a_session_row_gathers_its_events_in_any_order() {
    let scratch = Scratch::new();
    let line = |id: &str, ts: &str, host: Option<&str>, event: serde_json::Value| {
        let mut envelope = serde_json::json!({"v": 1, "id": id, "ts": ts, "event": event});
        if let Some(host) = host {
            envelope["host"] = host.into();
        }
        format!("{envelope}\n")
    };
    let spool = scratch.dir.path().join("late.jsonl");
    let first_run = [
        line(
            "e1",
            "2026-11-24T10:00:05.000Z",
            Some("box-b"),
            serde_json::json!({
            "session_id": "s-late", "hook_event_name": "Notification", "cwd": "/second"}),
        ),
        line(
            "e2",
            "2026-11-24T10:00:07.000Z",
            None,
            serde_json::json!({
            "session_id": "s-late", "hook_event_name": "SessionEnd"}),
        ),
    ];
    // Each event of the second run changes one thing alone.
    let second_run = [
        line(
            "e3",
            "2026-11-24T10:00:01.000Z",
            Some("box-a"),
            serde_json::json!({
            "session_id": "s-late", "hook_event_name": "SessionStart", "cwd": "/first"}),
        ),
        line(
            "e4",
            "2026-11-24T10:00:09.000Z",
            None,
            serde_json::json!({
            "session_id": "s-late", "hook_event_name": "SessionEnd"}),
        ),
        line(
            "e5",
            "2026-11-24T10:00:08.000Z",
            None,
            serde_json::json!({
            "session_id": "s-late", "hook_event_name": "Notification", "model": "m2"}),
        ),
    ];
    // Two runs, so the later events are stored before the earlier ones
    // arrive (within one batch they could be ordered first).
    std::fs::write(&spool, first_run.concat()).unwrap();
    succeed(&mut scratch.cmd(&["replay", spool.to_str().unwrap()]));
    let spool = scratch.dir.path().join("early.jsonl");
    std::fs::write(&spool, second_run.concat()).unwrap();
    succeed(&mut scratch.cmd(&["replay", spool.to_str().unwrap()]));
    let row: (String, String, String, String, String) = scratch
        .read()
        .query_row(
            "SELECT started_at, ended_at, cwd, host, model FROM sessions WHERE session_id = 's-late'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "2026-11-24T10:00:01.000Z".to_string(),
            // A session ends once: its second SessionEnd is a duplicate event.
            "2026-11-24T10:00:07.000Z".to_string(),
            // The first stored (the second run's cwd and host do not replace them).
            "/second".to_string(),
            "box-b".to_string(),
            "m2".to_string()
        )
    );
}

/// Within one run, a known session's SessionEnds move its `ended_at` to
/// the latest (an UPDATE of that column alone, not the whole upsert), and
/// an earlier one arriving later does not move it back.
#[test]
fn a_known_session_ending_again_in_one_run_keeps_the_latest_end() {
    let scratch = Scratch::new();
    let line = |id: &str, ts: &str, event: serde_json::Value| {
        let envelope =
            serde_json::json!({"v": 1, "id": id, "ts": ts, "host": "box", "event": event});
        format!("{envelope}\n")
    };
    let end = |id: &str, ts: &str, reason: &str| {
        // Reasons differ, so no end is an echo of another.
        line(
            id,
            ts,
            serde_json::json!({"session_id": "s-ends", "hook_event_name": "SessionEnd", "reason": reason}),
        )
    };
    let lines = [
        line(
            "e1",
            "2026-11-24T10:00:00.000Z",
            serde_json::json!({"session_id": "s-ends", "hook_event_name": "SessionStart", "cwd": "/w"}),
        ),
        end("e2", "2026-11-24T10:00:05.000Z", "clear"),
        end("e3", "2026-11-24T10:00:09.000Z", "logout"),
        end("e4", "2026-11-24T10:00:03.000Z", "other"),
    ];
    let spool = scratch.dir.path().join("ends.jsonl");
    std::fs::write(&spool, lines.concat()).unwrap();
    let out = succeed(&mut scratch.cmd(&["replay", spool.to_str().unwrap()]));
    assert_eq!(out.trim(), "events=4 inserted=4 duplicates=0 quarantined=0");
    let row: (String, String, String) = scratch
        .read()
        .query_row(
            "SELECT started_at, ended_at, cwd FROM sessions WHERE session_id = 's-ends'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "2026-11-24T10:00:00.000Z".to_string(),
            "2026-11-24T10:00:09.000Z".to_string(),
            "/w".to_string()
        )
    );
}

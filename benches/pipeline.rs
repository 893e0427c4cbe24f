//! Whole-process benchmarks of the pipeline, on the release binary.
//!
//! `cargo bench --bench pipeline [hook|replay|latency|scale|idle|session|soak]...` (all by default).
//! Prints one line per figure; BENCHMARKS.md records them with this command.
//! `CALL_MONITOR_BIN=path` benchmarks that binary instead of the one cargo
//! built for the bench — e.g. the installed, statically linked one:
//! `cargo build-static && CALL_MONITOR_BIN=target/static/release/call_monitor cargo bench --bench pipeline`.
//!
//! - hook: wall time of `call_monitor hook` on a Bash payload with 200 KB of
//!   output, against `/bin/true` fed the same stdin (a bare process start).
//! - replay: lines/s of `call_monitor replay` on ~250k realistic lines into
//!   a fresh database, against a bare SQLite insert of the same rows; run
//!   `CALL_MONITOR_BENCH_RUNS` times (default 1), with the medians.
//! - session: one small commit (10 lines) into a session of 60 000 calls
//!   against one into a new session: what session health costs as a
//!   session grows.
//! - latency: hook-to-row latency at 100 events/s with the daemon running,
//!   from the envelope timestamp (written by the hook) to the row's
//!   `ingested_at` (taken when its batch is applied).
//! - scale: `status --top 20` (goal < 100 ms at 10 M calls) and
//!   `sequences --detect --json` on 1 M and 10 M calls.
//! - idle: the daemon's CPU time and RSS while the spool is quiet, after it
//!   caught up on a 100 000-line backlog.
//! - soak: 200k realistic events appended at a steady rate (default 2000/s,
//!   `CALL_MONITOR_SOAK_RATE`) into rotating spool files while the daemon
//!   ingests, deletes consumed files and runs insight passes every 10 s;
//!   its RSS sampled every second must stay flat.

use std::io::Write;

#[path = "support/mod.rs"]
mod support;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::bulk::{bin, fresh_bulk_db, rebuild_rollups};

fn main() {
    println!("binary: {}", bin());
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    // CALL_MONITOR_BENCH_DIR keeps the generated inputs and databases (for
    // profiling a slice of them); by default they go to a temporary directory.
    let scratch = match std::env::var_os("CALL_MONITOR_BENCH_DIR") {
        Some(dir) => tempfile::Builder::new()
            .prefix("bench-")
            .disable_cleanup(true)
            .tempdir_in(dir)
            .expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    };
    println!("scratch: {}", scratch.path().display());
    if run("hook") {
        bench_hook(scratch.path());
    }
    if run("replay") {
        bench_replay(scratch.path());
    }
    if run("representative") {
        bench_representative(scratch.path());
    }
    if run("latency") {
        bench_latency(scratch.path());
    }
    if run("scale") {
        bench_scale(scratch.path());
    }
    if run("tools") {
        bench_tools(scratch.path());
    }
    if run("idle") {
        bench_idle(scratch.path());
    }
    if run("session") {
        bench_session(scratch.path());
    }
    if run("soak") {
        bench_soak(scratch.path());
    }
}

fn bench_soak(dir: &Path) {
    const EVENTS: usize = 200_000;
    const PER_FILE: usize = 20_000;
    let rate: usize = std::env::var("CALL_MONITOR_SOAK_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2000);
    let spool = private_spool(dir, "soak-spool");
    let mut lines = Vec::new();
    support::write_realistic_spool(&mut lines, EVENTS);
    let lines: Vec<&[u8]> = lines.split_inclusive(|&b| b == b'\n').collect();
    let db = dir.join("soak.db");
    let mut daemon = Command::new(bin())
        .args([
            "daemon",
            "--interval",
            "10s",
            "--quiet-period",
            "2s",
            "--db",
        ])
        .arg(&db)
        .arg("--spool")
        .arg(&spool)
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon");
    let pid = daemon.id();
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut next_sample = Duration::ZERO;
    // One write per line, like a hook; a new file every PER_FILE lines,
    // like the hourly hook files; paced in 10 ms ticks.
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let mut out = None;
    for (i, chunk) in lines.chunks(per_tick).enumerate() {
        for (j, line) in chunk.iter().enumerate() {
            let n = i * per_tick + j;
            if n.is_multiple_of(PER_FILE) {
                out = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(spool.join(format!("soak-{:03}.jsonl", n / PER_FILE)))
                        .expect("spool file"),
                );
            }
            out.as_mut().expect("open").write_all(line).expect("append");
        }
        if started.elapsed() >= next_sample {
            samples.push((started.elapsed().as_secs_f64(), rss_kb(pid)));
            next_sample += Duration::from_secs(1);
        }
        let due = tick * (i as u32 + 1);
        std::thread::sleep(due.saturating_sub(started.elapsed()));
    }
    let written = started.elapsed();
    let conn = rusqlite::Connection::open(&db).expect("db");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    while count(&conn) < EVENTS as i64 {
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() >= next_sample {
            samples.push((started.elapsed().as_secs_f64(), rss_kb(pid)));
            next_sample += Duration::from_secs(1);
        }
    }
    let caught_up = started.elapsed();
    // The first half includes the warm-up (page caches filling to their
    // bound); flat means the second half does not climb.
    let mb = |kb: u64| kb as f64 / 1024.0;
    let second_half: Vec<u64> = samples[samples.len() / 2..].iter().map(|s| s.1).collect();
    let third = second_half.len() / 3;
    let mean = |s: &[u64]| mb(s.iter().sum::<u64>()) / s.len().max(1) as f64;
    println!(
        "soak: {EVENTS} events at {rate}/s written in {:.1} s, all stored {:.1} s after the start; RSS over the second half ({} samples): min {:.1} MB, max {:.1} MB, mean of its first third {:.1} MB, of its last third {:.1} MB",
        written.as_secs_f64(),
        caught_up.as_secs_f64(),
        second_half.len(),
        mb(*second_half.iter().min().unwrap_or(&0)),
        mb(*second_half.iter().max().unwrap_or(&0)),
        mean(&second_half[..third]),
        mean(&second_half[second_half.len() - third..]),
    );
    println!("soak: daemon memory at the end: {}", memory_breakdown(pid));
    let shown: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 10).max(1))
        .map(|(t, kb)| format!("{t:.0}s={:.1}", *kb as f64 / 1024.0))
        .collect();
    println!("soak RSS (MB) over time: {}", shown.join(" "));
    nix_kill(pid).expect("SIGTERM");
    assert!(daemon.wait().expect("wait").success());
}

/// Where a process's resident memory is: heap and stacks (anonymous),
/// mapped files, shared memory (SQLite's WAL index).
fn memory_breakdown(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .filter(|l| {
            ["RssAnon:", "RssFile:", "RssShmem:"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `status --top 20` and `sequences --detect --json` on databases of 1 M
/// and 10 M calls (`CALL_MONITOR_BENCH_SCALES=1` for 1 M only): sessions of
/// 50 calls over 200 functions (30 % habitual `a→b→c` chains, else random),
/// 5 s to 2 min apart with a 20-minute pause now and then, spread over the
/// year before now (so every `function_stats` window has calls); durations
/// mostly 10 ms–5 s with a long tail; 5 % failures.
fn bench_scale(dir: &Path) {
    let scales: Vec<u32> = std::env::var("CALL_MONITOR_BENCH_SCALES")
        .unwrap_or_else(|_| "1,10".into())
        .split(',')
        .map(|m| m.trim().parse().expect("millions"))
        .collect();
    for millions in scales {
        let db = dir.join(format!("scale-{millions}m.db"));
        generate_calls(&db, millions * 20_000);
        let calls = count_calls(&rusqlite::Connection::open(&db).expect("open"));
        let what = format!("{calls} calls");
        let time = |args: &[&str], runs: usize| time_command(&db, args, runs, &what);
        time(&["status", "--top", "20"], 9);
        time(&["status", "--top", "20", "--json"], 9);
        time(
            &["sequences", "--detect", "--json"],
            if millions >= 10 { 3 } else { 5 },
        );
    }
}

/// A database of `sessions` × 50 calls, rolled up by `init --rebuild-rollups`.
fn generate_calls(db: &Path, sessions: u32) {
    use rand::{Rng, SeedableRng};
    let mut conn = fresh_bulk_db(db);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let started = Instant::now();
    let first = a_year_ago_ms();
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO calls (session_id, function_id, tool_used, ts, duration_ms, success)
                 VALUES (?1, ?2, 'fn_run', ?3, ?4, ?5)",
            )
            .expect("prepare");
        for session in 0..sessions {
            let mut t = first + i64::from(session) * (YEAR_MS / i64::from(sessions));
            let mut i = 0;
            while i < 50 {
                let picks: Vec<u32> = if rng.random_bool(0.3) {
                    vec![1, 2, 3]
                } else {
                    vec![rng.random_range(0..200)]
                };
                for f in picks {
                    t += rng.random_range(5_000..120_000);
                    if rng.random_bool(0.02) {
                        t += 1_200_000;
                    }
                    let ts = chrono::DateTime::from_timestamp_millis(t).expect("ts");
                    let duration: i64 = if rng.random_bool(0.02) {
                        rng.random_range(5_000..600_000)
                    } else {
                        rng.random_range(10..5_000)
                    };
                    insert
                        .execute((
                            format!("bench-{session}"),
                            format!("fn{f}_py_bench"),
                            call_monitor::contract::timefmt::format(ts),
                            duration,
                            i64::from(!rng.random_bool(0.05)),
                        ))
                        .expect("insert");
                    i += 1;
                }
            }
        }
    }
    tx.commit().expect("commit");
    rebuild_rollups(
        db,
        &format!("scale: {} calls", sessions * 50),
        started.elapsed(),
    );
}

/// `status --top 20` and a full read of the `tool_stats` view on a database
/// of 10 M tool uses (`CALL_MONITOR_BENCH_TOOL_USES` overrides): sessions
/// of 50 uses over 28 tools — Bash (40 %), the built-in file tools, Task,
/// WebFetch and 5 MCP servers of 4 tools each, so 33 stat keys — 2 s to 2 min
/// apart over the year before now (every window has uses); durations
/// mostly 5 ms–3 s with a long tail; 4 % failures, 0.5 % interrupts, 1 %
/// never finished.
fn bench_tools(dir: &Path) {
    let uses: u32 = std::env::var("CALL_MONITOR_BENCH_TOOL_USES")
        .map_or(10_000_000, |n| n.parse().expect("a count"));
    let db = dir.join("tools.db");
    let stat_keys = generate_tool_uses(&db, uses / 50);
    let what = format!("{uses} tool uses");
    time_command(&db, &["status", "--top", "20"], 9, &what);
    time_command(&db, &["status", "--top", "20", "--json"], 9, &what);
    let conn = rusqlite::Connection::open(&db).expect("open");
    let samples = (0..9)
        .map(|_| {
            let start = Instant::now();
            let rows = conn
                .prepare("SELECT * FROM tool_stats")
                .and_then(|mut s| s.query_map([], |_| Ok(())).map(Iterator::count))
                .expect("tool_stats");
            assert_eq!(rows, stat_keys, "one row per tool and per MCP server");
            start.elapsed()
        })
        .collect();
    let (median, p95, _) = summary(samples);
    println!(
        "SELECT * FROM tool_stats (in process), {uses} tool uses: median {:.1} ms, p95 {:.1} ms over 9 runs",
        ms(median),
        ms(p95)
    );
}

/// A database of `sessions` × 50 tool uses, rolled up by
/// `init --rebuild-rollups`; returns the number of `tool_stats` rows it
/// must give (each tool, Bash included, and each MCP server).
fn generate_tool_uses(db: &Path, sessions: u32) -> usize {
    use rand::{Rng, SeedableRng};
    const SERVERS: [&str; 5] = ["github", "postgres", "fn_registry", "playwright", "slack"];
    let mut tools: Vec<String> = ["Read", "Edit", "Write", "Grep", "Glob", "Task", "WebFetch"]
        .iter()
        .map(|t| (*t).to_string())
        .collect();
    for server in SERVERS {
        for tool in ["list", "get", "create", "search"] {
            tools.push(format!("mcp__{server}__{tool}"));
        }
    }
    let mut conn = fresh_bulk_db(db);
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let started = Instant::now();
    let first = a_year_ago_ms();
    let tx = conn.transaction().expect("tx");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO tool_uses (session_id, tool_name, ts, duration_ms, success, interrupted, tool_use_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        for session in 0..sessions {
            let mut t = first + i64::from(session) * (YEAR_MS / i64::from(sessions));
            for i in 0..50 {
                t += rng.random_range(2_000..120_000);
                let tool = if rng.random_bool(0.4) {
                    "Bash"
                } else {
                    &tools[rng.random_range(0..tools.len())]
                };
                let ts = chrono::DateTime::from_timestamp_millis(t).expect("ts");
                let finished = !rng.random_bool(0.01);
                let duration: Option<i64> = finished.then(|| {
                    if rng.random_bool(0.02) {
                        rng.random_range(5_000..600_000)
                    } else {
                        rng.random_range(5..3_000)
                    }
                });
                let success = finished.then(|| i64::from(!rng.random_bool(0.04)));
                insert
                    .execute((
                        format!("bench-{session}"),
                        tool,
                        call_monitor::contract::timefmt::format(ts),
                        duration,
                        success,
                        i64::from(rng.random_bool(0.005)),
                        format!("toolu_{session}_{i}"),
                    ))
                    .expect("insert");
            }
        }
    }
    tx.commit().expect("commit");
    rebuild_rollups(
        db,
        &format!("tools: {} tool uses", sessions * 50),
        started.elapsed(),
    );
    1 + tools.len() + SERVERS.len()
}

/// Runs `call_monitor ARGS --db DB` `runs` times and prints the wall
/// times' median, p95 and mean; `what` names the database's contents.
fn time_command(db: &Path, args: &[&str], runs: usize, what: &str) {
    let samples = (0..runs)
        .map(|_| {
            let mut cmd = Command::new(bin());
            cmd.args(args).arg("--db").arg(db).stdout(Stdio::null());
            timed_run(&mut cmd, b"")
        })
        .collect();
    let (median, p95, mean) = summary(samples);
    println!(
        "{}, {what}: median {:.0} ms, p95 {:.0} ms, mean {:.0} ms over {runs} runs",
        args.join(" "),
        ms(median),
        ms(p95),
        ms(mean)
    );
}

const YEAR_MS: i64 = 365 * 86_400_000;

/// The time a year before now, as epoch milliseconds: generated rows are
/// spread from there to now, so every window has some.
fn a_year_ago_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() - YEAR_MS
}

/// The daemon with nothing to do: CPU time (user + system, from
/// /proc/PID/stat) over 60 s after a 5 s settling period, and RSS at the end.
/// It first ingests 10 000 events, so caches and the page cache are warm as
/// in production.
fn bench_idle(dir: &Path) {
    const SETTLE: Duration = Duration::from_secs(5);
    const WINDOW: Duration = Duration::from_secs(60);
    let spool = private_spool(dir, "idle-spool");
    // A backlog first: large enough (≈ 38 MB) to be read ahead on the second
    // thread, whose memory must be given back once the daemon is idle.
    const BACKLOG: usize = 100_000;
    write_realistic_spool(&spool.join("warm.jsonl"), BACKLOG);
    let db = dir.join("idle.db");
    let mut daemon = spawn_daemon(&db, &spool);
    let pid = daemon.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let read_only = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = loop {
        if let Ok(conn) = rusqlite::Connection::open_with_flags(&db, read_only) {
            break conn;
        }
        assert!(Instant::now() < deadline, "no database");
        std::thread::sleep(Duration::from_millis(100));
    };
    while count(&conn) < BACKLOG as i64 {
        assert!(Instant::now() < deadline, "backlog not ingested");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(SETTLE);
    let before = cpu_ticks(pid);
    std::thread::sleep(WINDOW);
    let ticks = cpu_ticks(pid) - before;
    let rss_kb = rss_kb(pid);
    nix_kill(pid).expect("SIGTERM");
    let status = daemon.wait().expect("wait");
    assert!(status.success(), "daemon exit: {status:?}");
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .expect("sysconf")
        .expect("CLK_TCK") as f64;
    println!(
        "daemon idle over {} s: CPU {:.2} s ({:.3} %), RSS {:.1} MB",
        WINDOW.as_secs(),
        ticks as f64 / hz,
        100.0 * ticks as f64 / hz / WINDOW.as_secs_f64(),
        rss_kb as f64 / 1024.0
    );
}

/// The daemon with its default settings, logs discarded.
fn spawn_daemon(db: &Path, spool: &Path) -> std::process::Child {
    Command::new(bin())
        .args(["daemon", "--db"])
        .arg(db)
        .arg("--spool")
        .arg(spool)
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon")
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn count_calls(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM calls", [], |r| r.get(0))
        .expect("count")
}

fn bash_payload(i: usize, output: usize) -> Vec<u8> {
    serde_json::json!({
        "session_id": format!("bench-{}", i % 50), "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_use_id": format!("toolu_{i:08}"), "cwd": "/home/dev/fn_registry", "transcript_path": "/t.jsonl",
        "permission_mode": "default",
        "tool_input": {"command": "cd /tmp && fn run csv_read_py_data data.csv | head -50", "description": "Read the CSV"},
        "tool_response": {"stdout": "r".repeat(output), "stderr": "", "interrupted": false, "isImage": false}
    })
    .to_string()
    .into_bytes()
}

/// A successful Write of ~`size` bytes of varied Python.
fn python_write_payload(size: usize) -> Vec<u8> {
    let code = support::python_source(size);
    serde_json::json!({
        "session_id": "bench-0", "hook_event_name": "PostToolUse", "tool_name": "Write",
        "tool_use_id": "toolu_write", "cwd": "/home/dev/app", "transcript_path": "/t.jsonl",
        "permission_mode": "acceptEdits",
        "tool_input": {"file_path": "/home/dev/app/pipeline.py", "content": code},
        "tool_response": {"type": "create", "filePath": "/home/dev/app/pipeline.py", "content": code, "structuredPatch": []}
    })
    .to_string()
    .into_bytes()
}

/// Spawns `cmd` with `stdin` piped in and waits; returns the wall time.
fn timed_run(cmd: &mut Command, stdin: &[u8]) -> Duration {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // /bin/true may exit before reading: a broken pipe is expected there.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let status = child.wait().expect("wait");
    let elapsed = start.elapsed();
    // A crashing binary is fast: it must never be mistaken for a fast one.
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

/// Lines in the `*.jsonl` files of a spool directory.
fn spooled_lines(spool: &Path) -> usize {
    std::fs::read_dir(spool)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .map(|e| {
                    std::fs::read(e.path()).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
                })
                .sum()
        })
        .unwrap_or(0)
}

fn summary(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let pick =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    (
        pick(0.5),
        pick(0.95),
        samples.iter().sum::<Duration>() / samples.len() as u32,
    )
}

fn bench_hook(dir: &Path) {
    const RUNS: usize = 400;
    let spool = dir.join("hook-spool");
    let mut spooled = 0;
    let payloads = [
        ("small payload", bash_payload(0, 120)),
        ("200 KB Bash output", bash_payload(0, 200 * 1024)),
        // Copy detection fingerprints the code a write puts into a file.
        (
            "Write of a 40 KB Python file",
            python_write_payload(40 * 1024),
        ),
    ];
    for (what, payload) in payloads {
        let (mut hook, mut truth, mut cat) = (Vec::new(), Vec::new(), Vec::new());
        // Interleave so that machine noise hits all three alike; warm up
        // first. `/bin/true` exits without reading its stdin; `cat` must
        // read it all, as the hook must.
        for i in 0..RUNS + 20 {
            let h = timed_run(
                Command::new(bin()).arg("hook").arg("--spool").arg(&spool),
                &payload,
            );
            let t = timed_run(&mut Command::new("/bin/true"), &payload);
            let c = timed_run(&mut Command::new("cat"), &payload);
            if i >= 20 {
                hook.push(h);
                truth.push(t);
                cat.push(c);
            }
        }
        spooled += RUNS + 20;
        assert_eq!(
            spooled_lines(&spool),
            spooled,
            "every hook run spooled its line"
        );
        let (h50, h95, hmean) = summary(hook);
        let (t50, t95, tmean) = summary(truth);
        let (c50, c95, cmean) = summary(cat);
        println!(
            "hook ({what}, {} bytes, {RUNS} runs): median {:.2} ms, p95 {:.2} ms, mean {:.2} ms | /bin/true: median {:.2} ms, p95 {:.2} ms, mean {:.2} ms | cat > /dev/null: median {:.2} ms, p95 {:.2} ms, mean {:.2} ms | hook ÷ true {:.2}, hook ÷ cat {:.2}",
            payload.len(),
            ms(h50), ms(h95), ms(hmean), ms(t50), ms(t95), ms(tmean), ms(c50), ms(c95), ms(cmean),
            ms(h50) / ms(t50), ms(h50) / ms(c50)
        );
    }
}

/// Writes ~`lines` realistic spool lines to `path` (see `support`).
fn write_realistic_spool(path: &Path, lines: usize) -> usize {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    support::write_realistic_spool(&mut out, lines)
}

/// A private spool directory (replay and the daemon refuse one other users
/// could read).
fn private_spool(dir: &Path, name: &str) -> std::path::PathBuf {
    let spool = dir.join(name);
    std::fs::create_dir_all(&spool).expect("mkdir");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    spool
}

/// Replays `file` into `db`; the wall time and the summary line.
fn replay_timed(file: &Path, db: &Path, spool: &Path) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(bin())
        .arg("replay")
        .arg(file)
        .arg("--db")
        .arg(db)
        .arg("--spool")
        .arg(spool)
        .output()
        .expect("replay");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        elapsed,
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// The median, lowest and highest of `values`.
fn spread(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = (values[(n - 1) / 2] + values[n / 2]) / 2.0;
    (median, values[0], values[n - 1])
}

fn bench_replay(dir: &Path) {
    let runs: usize = std::env::var("CALL_MONITOR_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let spool = private_spool(dir, "replay-spool");
    let file = spool.join("bench.jsonl");
    let lines = write_realistic_spool(&file, 250_000);
    let bytes = std::fs::metadata(&file).expect("stat").len();
    let db = dir.join("replay.db");
    let (mut speeds, mut ratios) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        remove_db(&db);
        let (elapsed, summary) = replay_timed(&file, &db, &spool);
        println!(
            "replay: {lines} lines ({:.1} MB) in {:.2} s = {:.0} lines/s  [{summary}]",
            bytes as f64 / 1e6,
            elapsed.as_secs_f64(),
            lines as f64 / elapsed.as_secs_f64(),
        );
        speeds.push(lines as f64 / elapsed.as_secs_f64());
        for copy in [Copy::RowByRow, Copy::Bulk] {
            let ceiling = bare_insert_seconds(dir, &db, copy);
            println!(
                "{}: {:.2} s = {:.0} lines/s; replay takes {:.2}x that",
                copy.describe(),
                ceiling,
                lines as f64 / ceiling,
                elapsed.as_secs_f64() / ceiling
            );
            if matches!(copy, Copy::RowByRow) {
                ratios.push(elapsed.as_secs_f64() / ceiling);
            }
        }
    }
    if runs > 1 {
        let within = ratios.iter().filter(|&&r| r <= 2.0).count();
        let (speed, slowest, fastest) = spread(&mut speeds);
        let (ratio, lowest, highest) = spread(&mut ratios);
        println!(
            "replay over {runs} runs: median {speed:.0} lines/s ({slowest:.0}–{fastest:.0}); replay ÷ row-by-row ceiling median {ratio:.2} ({lowest:.2}–{highest:.2}), within 2x in {within} of {runs}"
        );
    }
}

/// Replay of the representative spool (`support::representative`: hourly
/// files of three hosts, interleaved sessions, heredocs, violations, MCP,
/// mixed ids, redeliveries), as its files and as one file of the same
/// lines, alternating; `CALL_MONITOR_BENCH_RUNS` runs (default 3), medians
/// and the ratio run by run. `CALL_MONITOR_BENCH_LINES` sets the size
/// (default 250 000).
fn bench_representative(dir: &Path) {
    let runs: usize = std::env::var("CALL_MONITOR_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
        .max(1);
    let lines: usize =
        std::env::var("CALL_MONITOR_BENCH_LINES").map_or(250_000, |n| n.parse().expect("a count"));
    let spool = private_spool(dir, "representative-spool");
    let files = dir.join("representative-files");
    std::fs::create_dir_all(&files).expect("mkdir");
    let written = support::representative::write(&files, lines, 21);
    let single = dir.join("representative-one-file.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&single).expect("create"));
    let mut names: Vec<_> = std::fs::read_dir(&files)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    for name in &names {
        out.write_all(&std::fs::read(name).expect("read"))
            .expect("write");
    }
    out.flush().expect("flush");
    println!(
        "representative spool: {} lines, {} files, {:.1} MB ({:.0} bytes a line)",
        written.lines,
        written.files,
        written.bytes as f64 / 1e6,
        written.bytes as f64 / written.lines as f64
    );
    let db = dir.join("representative.db");
    let (mut many, mut one, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut over_ceiling, mut over_python) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        remove_db(&db);
        let (files_time, summary) = replay_timed(&files, &db, &spool);
        let ceiling = bare_insert_seconds(dir, &db, Copy::RowByRow);
        let python = naive_loader_seconds(dir, &files);
        let replay = files_time.as_secs_f64();
        println!(
            "  {}: {ceiling:.2} s, replay over the files {:.2}x that; naive Python loader (benches/naive_loader.py) over the files: {}",
            Copy::RowByRow.describe(),
            replay / ceiling,
            python.map_or("no python3".into(), |p| format!("{p:.2} s, replay at {:.2}x its speed", p / replay)),
        );
        over_ceiling.push(replay / ceiling);
        if let Some(python) = python {
            over_python.push(python / replay);
        }
        remove_db(&db);
        let (one_time, _) = replay_timed(&single, &db, &spool);
        let (a, b) = (replay, one_time.as_secs_f64());
        println!(
            "representative replay: {} files {a:.2} s = {:.0} lines/s; one file {b:.2} s = {:.0} lines/s; files ÷ one {:.2}  [{summary}]",
            written.files,
            written.lines as f64 / a,
            written.lines as f64 / b,
            a / b
        );
        many.push(written.lines as f64 / a);
        one.push(written.lines as f64 / b);
        ratios.push(a / b);
    }
    let (many, many_low, many_high) = spread(&mut many);
    let (one, one_low, one_high) = spread(&mut one);
    let (ratio, ratio_low, ratio_high) = spread(&mut ratios);
    println!(
        "representative replay over {runs} runs: files median {many:.0} lines/s ({many_low:.0}–{many_high:.0}); one file median {one:.0} lines/s ({one_low:.0}–{one_high:.0}); files ÷ one median {ratio:.2} ({ratio_low:.2}–{ratio_high:.2})"
    );
    let (ceiling, ceiling_low, ceiling_high) = spread(&mut over_ceiling);
    println!(
        "representative replay over the files ÷ bare insert of its rows: median {ceiling:.2} ({ceiling_low:.2}–{ceiling_high:.2})"
    );
    if !over_python.is_empty() {
        let (python, python_low, python_high) = spread(&mut over_python);
        println!(
            "representative replay's speed over the files ÷ the naive Python loader's: median {python:.2} ({python_low:.2}–{python_high:.2})"
        );
    }
}

/// What one small commit costs in a long session against a new one: session
/// health is recomputed for every session a transaction touches.
fn bench_session(dir: &Path) {
    const TOOL_USES: usize = 60_000;
    const RUNS: usize = 15;
    let spool = private_spool(dir, "session-spool");
    let write = |name: &str, first: usize, lines: usize, session: &'static str| {
        let path = spool.join(name);
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        // The realistic mix of tool uses, all in one session.
        support::write_tool_uses(&mut out, first, lines, |_| session.to_string());
        out.flush().expect("flush");
        path
    };
    let long = write("long.jsonl", 0, 2 * TOOL_USES, "long");
    let base = dir.join("session-base.db");
    replay_timed(&long, &base, &spool);
    // Every call of the database is in the long session.
    let calls = count_calls(&rusqlite::Connection::open(&base).expect("open"));
    let tails = [
        write("tail-long.jsonl", 10 * TOOL_USES, 10, "long"),
        write("tail-new.jsonl", 10 * TOOL_USES, 10, "new"),
    ];
    let mut times = [Vec::new(), Vec::new()];
    let run_db = dir.join("session-run.db");
    for _ in 0..RUNS {
        for (tail, times) in tails.iter().zip(&mut times) {
            remove_db(&run_db);
            std::fs::copy(&base, &run_db).expect("copy");
            times.push(replay_timed(tail, &run_db, &spool).0);
        }
    }
    let [long, new] = times.map(|t| ms(summary(t).0));
    println!(
        "session: replay of 10 lines (one commit) into a session of {calls} calls median {long:.1} ms, into a new session {new:.1} ms ({RUNS} runs each, process start included)"
    );
}

/// How the ceiling copies replay's rows.
#[derive(Clone, Copy)]
enum Copy {
    /// One row after the other, in ingestion order: every index entry
    /// inserted where it belongs, as any ingester must.
    RowByRow,
    /// `INSERT INTO t SELECT * FROM src.t`, which SQLite runs with its
    /// transfer optimisation: each index is copied in index order, i.e.
    /// built by appending sorted entries — cheaper than any online insert.
    Bulk,
}

impl Copy {
    fn describe(self) -> &'static str {
        match self {
            Copy::RowByRow => "bare insert of the same rows, row by row in ingestion order (every table replay writes, rollups included; one transaction)",
            Copy::Bulk => "bulk copy of the same rows (SQLite's transfer optimisation: indexes built from sorted entries)",
        }
    }
}

/// The ceiling: SQLite inserting exactly the rows replay kept, with the
/// same schema, indexes and pragmas, in one transaction, with no parsing,
/// no lookups and no rows written then deleted. Every table of `replayed`
/// is copied whole — rollups and counters too, so the fresh database's
/// triggers are dropped first rather than computing them a second time.
/// Row by row, a rowid table goes in rowid order (its ingestion order)
/// and a table keyed otherwise by `ts` when it has one (arrival order).
fn bare_insert_seconds(dir: &Path, replayed: &Path, copy: Copy) -> f64 {
    let fresh = dir.join("ceiling.db");
    remove_db(&fresh);
    let status = Command::new(bin())
        .arg("init")
        .arg("--db")
        .arg(&fresh)
        .stdout(Stdio::null())
        .status()
        .expect("init");
    assert!(status.success());
    let conn = rusqlite::Connection::open(&fresh).expect("open");
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;")
        .expect("pragmas");
    conn.execute(
        "ATTACH DATABASE ?1 AS src",
        [replayed.to_str().expect("utf-8 path")],
    )
    .expect("attach");
    let names = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).expect("list");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("names")
    };
    let mut setup = String::from("BEGIN;");
    for trigger in names("SELECT name FROM main.sqlite_master WHERE type = 'trigger'") {
        setup += &format!("DROP TRIGGER main.\"{trigger}\";");
    }
    let tables = names(
        "SELECT name FROM src.sqlite_master WHERE type = 'table'
         AND name NOT IN ('schema_migrations', 'sqlite_sequence') AND name NOT LIKE 'sqlite_stat%'",
    );
    for table in &tables {
        setup += &format!("DELETE FROM main.\"{table}\";");
    }
    conn.execute_batch(&(setup + "COMMIT;"))
        .expect("empty the copy");
    let mut sql = String::from("BEGIN;");
    for table in &tables {
        let order = match copy {
            // Any WHERE or ORDER BY turns the transfer optimisation off.
            Copy::Bulk => String::new(),
            Copy::RowByRow => copy_order(&conn, table),
        };
        sql += &format!("INSERT INTO main.\"{table}\" SELECT * FROM src.\"{table}\" {order};");
    }
    let start = Instant::now();
    conn.execute_batch(&(sql + "COMMIT;")).expect("copy");
    start.elapsed().as_secs_f64()
}

/// The order a row-by-row copy of `table` takes: its arrival order, as
/// near as the stored rows tell it.
fn copy_order(conn: &rusqlite::Connection, table: &str) -> String {
    let (without_rowid, has_ts): (bool, bool) = conn
        .query_row(
            "SELECT sql LIKE '%WITHOUT ROWID%',
                    EXISTS (SELECT 1 FROM pragma_table_info(?1, 'src') WHERE name = 'ts')
             FROM src.sqlite_master WHERE name = ?1",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("table shape");
    match (without_rowid, has_ts) {
        (false, _) => "ORDER BY rowid".into(),
        (true, true) => "ORDER BY ts".into(),
        (true, false) => "WHERE 1".into(),
    }
}

/// The naive Python loader issue 21 compares replay with
/// (`benches/naive_loader.py`) over `input`: its wall time, or None
/// without python3.
fn naive_loader_seconds(dir: &Path, input: &Path) -> Option<f64> {
    let db = dir.join("naive-loader.db");
    remove_db(&db);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/naive_loader.py");
    let start = Instant::now();
    let status = Command::new("python3")
        .arg(script)
        .arg(&db)
        .arg(input)
        .stdout(Stdio::null())
        .status()
        .ok()?;
    let elapsed = start.elapsed().as_secs_f64();
    status.success().then_some(elapsed)
}

fn bench_latency(dir: &Path) {
    const EVENTS: usize = 1500;
    const RATE: f64 = 100.0;
    let spool = dir.join("latency-spool");
    let db = dir.join("latency.db");
    let mut daemon = spawn_daemon(&db, &spool);
    while !db.exists() {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    for i in 0..EVENTS {
        let due = start + Duration::from_secs_f64(i as f64 / RATE);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Spawned without waiting: at 100/s hooks overlap, as with real agents.
        let mut child = Command::new(bin())
            .arg("hook")
            .arg("--spool")
            .arg(&spool)
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("hook");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&bash_payload(i, 2048));
        std::thread::spawn(move || child.wait());
    }
    let conn = rusqlite::Connection::open(&db).expect("open");
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&conn) < EVENTS as i64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut latencies: Vec<f64> = conn
        .prepare("SELECT CAST(ingested_at - ts AS REAL) FROM events")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let _ = nix_kill(daemon.id());
    let _ = daemon.wait();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "latency at {RATE:.0} events/s ({} of {EVENTS} events stored): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
}

fn count(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap_or(0)
}

fn nix_kill(pid: u32) -> nix::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

//! A representative spool: what a team's machines really leave behind
//! (issue 21), not one file of five repeating shapes.
//!
//! - three hosts, one file per host and UTC hour (`hook-YYYYMMDDHH-<host>.jsonl`,
//!   the hook's hourly files gathered from each machine), ~440 lines a file;
//! - sessions of 8–30 tool uses, several at once on each host, interleaved in
//!   time; prompts, `Stop`, notifications and compactions between them;
//! - tool uses as Claude Code sends them, reduced by the hook's own
//!   [`call_monitor::capture::reduce::reduce`]: `fn run` of ~120 registry ids
//!   (Zipf-popular), Python heredocs importing registry functions and
//!   defining helpers, `git commit` messages through `$(cat <<EOF …)`,
//!   `sqlite3` one-liners (violations), `fn test` and `fn e2e` runs, registry
//!   MCP calls and other MCP servers, edits and writes of registry files and
//!   of other files, reads, greps, subagents; 6 % failures with error text;
//! - mixed ids: `toolu_…` tool-use ids, `call_…` ones, and none at all (older
//!   versions); UUID session ids and others; UUIDv7 envelope ids and others;
//! - 3 % of tool uses with a `PreToolUse` only (interrupted), 2 % with a
//!   `PostToolUse` only, 1 % of lines delivered twice (a later file).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const HOSTS: [&str; 3] = ["build-01", "laptop-ana", "ci-runner-7"];
const LINES_PER_FILE: usize = 440;

/// What was written.
pub struct Written {
    pub files: usize,
    pub lines: usize,
    pub bytes: u64,
}

/// Writes about `lines` lines into `dir` (hourly files per host).
pub fn write(dir: &Path, lines: usize, seed: u64) -> Written {
    let mut rng = StdRng::seed_from_u64(seed);
    let registry = registry_ids();
    let hours = (lines / (LINES_PER_FILE * HOSTS.len())).max(1) as i64;
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-02T00:00:00Z")
        .expect("start")
        .timestamp_millis();
    // Per file: (ts, line) pairs, sorted before writing.
    let mut files: BTreeMap<String, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
    let mut written = 0;
    let mut session_no = 0usize;
    while written < lines {
        let host = HOSTS[rng.random_range(0..HOSTS.len())];
        let begin = start + rng.random_range(0..hours * 3_600_000);
        let session = Session::new(&mut rng, session_no, host, begin);
        session_no += 1;
        for (ts, payload) in session.events(&mut rng, &registry) {
            let line = envelope(&mut rng, host, ts, &payload);
            let file = file_name(host, ts);
            if rng.random_bool(0.01) {
                // Delivered again an hour later: a redelivery.
                let again = file_name(host, ts + 3_600_000);
                files
                    .entry(again)
                    .or_default()
                    .push((ts + 3_600_000, line.clone()));
                written += 1;
            }
            files.entry(file).or_default().push((ts, line));
            written += 1;
        }
    }
    let mut bytes = 0;
    for (name, mut lines) in files.iter_mut().map(|(n, l)| (n, std::mem::take(l))) {
        lines.sort_by_key(|(ts, _)| *ts);
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(dir.join(name)).expect("create"));
        for (_, line) in &lines {
            out.write_all(line).expect("write");
            bytes += line.len() as u64;
        }
        out.flush().expect("flush");
    }
    Written {
        files: files.len(),
        lines: written,
        bytes,
    }
}

fn file_name(host: &str, ts: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ts).expect("ts");
    format!("hook-{}-{host}.jsonl", t.format("%Y%m%d%H"))
}

/// ~120 registry ids, `<verb>_<noun>_<lang>_<domain>`, most popular first.
fn registry_ids() -> Vec<String> {
    let verbs = [
        "read", "write", "open", "parse", "send", "fetch", "sync", "load",
    ];
    let nouns = [
        "csv", "sqlite", "json", "http", "s3", "queue", "cache", "report",
    ];
    let langs = [
        ("py", "data"),
        ("go", "infra"),
        ("ts", "net"),
        ("sh", "ops"),
    ];
    let mut ids = Vec::new();
    for (i, verb) in verbs.iter().enumerate() {
        for (j, noun) in nouns.iter().enumerate() {
            if (i + j) % 4 == 3 {
                continue;
            }
            let (lang, domain) = langs[(i * 3 + j) % langs.len()];
            ids.push(format!("{verb}_{noun}_{lang}_{domain}"));
            if ids.len() == 120 {
                return ids;
            }
        }
    }
    ids
}

/// A Zipf draw over `n` ranks (1/rank weights).
fn zipf(rng: &mut StdRng, n: usize) -> usize {
    let total: f64 = (1..=n).map(|r| 1.0 / r as f64).sum();
    let mut x = rng.random::<f64>() * total;
    for rank in 1..=n {
        x -= 1.0 / rank as f64;
        if x <= 0.0 {
            return rank - 1;
        }
    }
    n - 1
}

struct Session {
    id: String,
    cwd: String,
    begin: i64,
    tool_uses: usize,
}

impl Session {
    fn new(rng: &mut StdRng, n: usize, host: &str, begin: i64) -> Self {
        let id = if rng.random_bool(0.95) {
            uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .to_string()
        } else {
            format!("{host}-session-{n}")
        };
        Session {
            id,
            cwd: format!("/home/dev/{}", ["app", "fn_registry", "infra"][n % 3]),
            begin,
            tool_uses: rng.random_range(8..=30),
        }
    }

    /// Its hook payloads with their times.
    fn events(&self, rng: &mut StdRng, registry: &[String]) -> Vec<(i64, Value)> {
        let mut out = Vec::new();
        let mut t = self.begin;
        let base = json!({
            "session_id": self.id,
            "transcript_path": format!("/home/dev/.claude/projects/-home-dev-app/{}.jsonl", self.id),
            "cwd": self.cwd, "permission_mode": "default",
        });
        let with = |fields: Value| {
            let mut event = base.clone();
            for (k, v) in fields.as_object().expect("object") {
                event[k] = v.clone();
            }
            event
        };
        out.push((t, with(json!({"hook_event_name": "SessionStart", "source": "startup", "model": "claude-opus-4-5"}))));
        for n in 0..self.tool_uses {
            if n % 5 == 0 {
                t += rng.random_range(2_000..30_000);
                let prompt =
                    "Please look at the failing job and fix it. ".repeat(rng.random_range(1..6));
                out.push((
                    t,
                    with(json!({"hook_event_name": "UserPromptSubmit", "prompt": prompt})),
                ));
            }
            t += rng.random_range(1_000..60_000);
            let (tool, input, response) = tool_use(rng, registry);
            let id = match rng.random_range(0..100) {
                0..85 => Some(format!("toolu_01{}", base62(rng, 22))),
                85..95 => Some(format!("call_{}", base62(rng, 24))),
                _ => None, // older versions send none
            };
            let mut pre = with(
                json!({"hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": input}),
            );
            let duration = rng.random_range(5..8_000);
            let failed = rng.random_bool(0.06);
            let mut post = with(json!({
                "hook_event_name": if failed { "PostToolUseFailure" } else { "PostToolUse" },
                "tool_name": tool, "tool_input": input, "duration_ms": duration,
            }));
            if failed {
                post["error"] = json!(
                    [
                        "Command failed with exit code 1",
                        "Error: timed out after 120000ms",
                        "No such file or directory"
                    ][rng.random_range(0..3)]
                );
            } else {
                post["tool_response"] = response;
            }
            if let Some(id) = &id {
                pre["tool_use_id"] = json!(id);
                post["tool_use_id"] = json!(id);
            }
            // 2 % Post only (the Pre was lost), 3 % Pre only (interrupted).
            let (with_pre, with_post) = match rng.random_range(0..100) {
                0..2 => (false, true),
                2..5 => (true, false),
                _ => (true, true),
            };
            if with_pre {
                out.push((t, pre));
            }
            if with_post {
                out.push((t + duration, post));
            }
            if rng.random_bool(0.05) {
                out.push((t + duration + 10, with(json!({"hook_event_name": "Notification", "message": "Claude needs your permission to use Bash"}))));
            }
            if rng.random_bool(0.02) {
                out.push((
                    t + duration + 20,
                    with(json!({"hook_event_name": "PreCompact", "trigger": "auto"})),
                ));
            }
            if n % 5 == 4 {
                out.push((
                    t + duration + 30,
                    with(json!({"hook_event_name": "Stop", "stop_hook_active": false})),
                ));
            }
        }
        out.push((
            t + 90_000,
            with(json!({"hook_event_name": "SessionEnd", "reason": "exit"})),
        ));
        out
    }
}

/// One tool use: its name, `tool_input` and `tool_response`.
fn tool_use(rng: &mut StdRng, registry: &[String]) -> (String, Value, Value) {
    let id = &registry[zipf(rng, registry.len())];
    let other = &registry[zipf(rng, registry.len())];
    let stdout = |rng: &mut StdRng| "row,value,ok\n".repeat(rng.random_range(1..150));
    let bash = |command: String, out: String| {
        (
            "Bash".to_string(),
            json!({"command": command, "description": "run it", "timeout": 120000}),
            json!({"stdout": out, "stderr": "", "interrupted": false, "isImage": false}),
        )
    };
    match rng.random_range(0..100) {
        0..22 => bash(format!("fn run {id} --input data/in_{}.csv", rng.random_range(0..50)), stdout(rng)),
        22..30 => {
            let (domain, name) = id.rsplit_once('_').map(|(rest, d)| (d, rest)).expect("id");
            let body = format!(
                "import json, sys\nfrom fn_registry.{domain} import {name}\n\ndef helper_{}(rows):\n    return [r for r in rows if r.get('ok')]\n\nrows = {name}('data/in.csv')\nprint(json.dumps(helper_{}(rows))[:200])\n",
                rng.random_range(0..20),
                rng.random_range(0..20),
            );
            bash(format!("python3 - <<'EOF'\n{body}EOF"), stdout(rng))
        }
        30..34 => bash(
            "git commit -m \"$(cat <<'EOF'\nFix the csv reader\n\nfrom now on: fn run read_csv_py_data is the way\nEOF\n)\"".into(),
            "[main 1a2b3c4] Fix the csv reader\n 2 files changed".into(),
        ),
        34..37 => bash(
            format!("sqlite3 ops.db 'select count(*) from calls where function_id = \"{id}\"'"),
            "42\n".into(),
        ),
        37..43 => bash(format!("fn test {id} --test test_{}", rng.random_range(0..9)), "3 passed\n".into()),
        43..45 => bash(format!("fn e2e app_{} --check smoke", rng.random_range(0..4)), "ok\n".into()),
        45..52 => bash(
            ["git status --short", "cargo test -q 2>&1 | tail -5", "ls -la src/", "pytest -q tests/"][rng.random_range(0..4)].into(),
            stdout(rng),
        ),
        52..60 => (
            "mcp__registry__run_function".into(),
            json!({"function_id": id, "args": {"path": "data/in.csv", "limit": rng.random_range(1..500)}}),
            json!([{"type": "text", "text": stdout(rng)}]),
        ),
        60..64 => (
            ["mcp__github__get_issue", "mcp__linear__list_issues", "mcp__sentry__search"][rng.random_range(0..3)].into(),
            json!({"query": "is:open label:bug", "limit": 20}),
            json!([{"type": "text", "text": "[{\"id\": 1}]"}]),
        ),
        64..71 => {
            let (lang, path) = registry_path(id);
            (
                "Edit".into(),
                json!({"file_path": path, "old_string": "return rows", "new_string": format!("return [r for r in rows if r]  # {lang}"), "replace_all": false}),
                json!({"filePath": path, "oldString": "return rows", "structuredPatch": [{"lines": ["-return rows", "+return [r for r in rows if r]"]}]}),
            )
        }
        71..74 => {
            let (_, path) = registry_path(other);
            (
                "Write".into(),
                json!({"file_path": path, "content": "def run(rows):\n    return rows\n".repeat(rng.random_range(1..20))}),
                json!({"type": "create", "filePath": path}),
            )
        }
        74..80 => (
            "Edit".into(),
            json!({"file_path": format!("/home/dev/app/src/module_{}.py", rng.random_range(0..40)), "old_string": "x = 1", "new_string": "x = 2"}),
            json!({"filePath": "src/module.py"}),
        ),
        80..90 => (
            "Read".into(),
            json!({"file_path": format!("/home/dev/app/src/module_{}.py", rng.random_range(0..40))}),
            json!({"type": "text", "file": {"content": "x = 1\n".repeat(rng.random_range(1..400)), "numLines": 40}}),
        ),
        90..96 => (
            ["Grep", "Glob"][rng.random_range(0..2)].into(),
            json!({"pattern": "def run", "path": "/home/dev/app"}),
            json!({"numFiles": 3, "filenames": ["a.py", "b.py", "c.py"]}),
        ),
        _ => (
            "Task".into(),
            json!({"description": "Explore the repo", "prompt": "Find where the csv reader is used", "subagent_type": "Explore"}),
            json!({"content": [{"type": "text", "text": "It is used in three places."}], "totalDurationMs": 30000}),
        ),
    }
}

/// A registry function's file: `functions/<lang>/<domain>/<name>.<ext>`.
fn registry_path(id: &str) -> (&'static str, String) {
    let mut parts = id.rsplitn(3, '_');
    let domain = parts.next().expect("domain");
    let lang = parts.next().expect("lang");
    let name = parts.next().expect("name");
    // The language is also the file's extension.
    let lang: &'static str = match lang {
        "py" => "py",
        "go" => "go",
        "ts" => "ts",
        _ => "sh",
    };
    (
        lang,
        format!("/home/dev/fn_registry/functions/{lang}/{domain}/{name}.{lang}"),
    )
}

fn base62(rng: &mut StdRng, n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The line the hook writes for `payload` on `host` at `ts`.
fn envelope(rng: &mut StdRng, host: &str, ts: i64, payload: &Value) -> Vec<u8> {
    let bytes = serde_json::to_vec(payload).expect("payload");
    let event = call_monitor::capture::reduce::reduce(&bytes);
    let id = if rng.random_bool(0.97) {
        uuid::Builder::from_unix_timestamp_millis(ts as u64, &rng.random())
            .into_uuid()
            .to_string()
    } else {
        format!("wrapper-{}", base62(rng, 16))
    };
    let at = chrono::DateTime::from_timestamp_millis(ts).expect("ts");
    let line = call_monitor::contract::EnvelopeLine {
        v: 1,
        id: &id,
        ts: &call_monitor::contract::timefmt::format(at),
        host,
        event: &event,
    };
    let mut out = serde_json::to_vec(&line).expect("envelope");
    out.push(b'\n');
    out
}

//! `call_monitor serve` and `report --html` over HTTP, without a browser:
//! the API's numbers against the database, the access rules (loopback,
//! `Host`, token), the headers, and that nothing is written. The pages in
//! a real browser are `browser.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{run_hook, succeed, Scratch};

/// A session id and a tool name carrying markup: the pages must show them
/// as text.
pub const HOSTILE_SESSION: &str = "<script>window.__pwned=1</script>";
pub const HOSTILE_TOOL: &str = "mcp__evil<img src=x onerror=\"window.__pwned=2\">__run";
/// Recognition renders identifiers only, so markup reaches a function id
/// through the registry: `snapshot` records its functions' versions, and
/// the functions page lists its orphans.
pub const HOSTILE_FUNCTION: &str = "<script>window.__pwned=3</script>_py_x";

/// The dashboard's fixture: Claude Code's own payload shapes through the
/// real hook (current times, so the last 24 hours have tool uses), the
/// demo session's spool, two hostile payloads, a registry with proposals,
/// replayed and clustered.
pub fn fixture() -> (Scratch, PathBuf) {
    let scratch = Scratch::new();
    let spool = scratch.private_spool();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let payloads =
        std::fs::read_to_string(root.join("fixtures/payloads/claude_code.jsonl")).unwrap();
    for line in payloads.lines().filter(|l| !l.trim().is_empty()) {
        assert_eq!(run_hook(&spool, line.as_bytes()).0, 0);
    }
    for payload in hostile_payloads() {
        assert_eq!(run_hook(&spool, payload.as_bytes()).0, 0);
    }
    let registry = crate::classification::fixture_registry(scratch.dir.path());
    rusqlite::Connection::open(&registry)
        .unwrap()
        .execute(
            "INSERT INTO functions (id, name, lang, domain, version, file_path, content_hash)
             VALUES (?1, 'x', 'py', 'x', '1.0.0', 'functions/py/x/x.py', 'cafe')",
            [HOSTILE_FUNCTION],
        )
        .unwrap();
    let mut snapshot = scratch.cmd(&["snapshot"]);
    snapshot.arg("--registry").arg(&registry);
    succeed(&mut snapshot);
    let demo = root.join("fixtures/spool/demo-session.jsonl");
    let mut replay = scratch.cmd(&["replay"]);
    replay
        .arg(&spool)
        .arg(&demo)
        .arg("--registry")
        .arg(&registry);
    succeed(&mut replay);
    succeed(&mut scratch.cmd(&["patterns"]));
    // Thresholds low enough for a fixture this small to raise some.
    let mut propose = scratch.cmd(&[
        "propose",
        "--untested-min-calls",
        "2",
        "--error-min-calls",
        "1",
        "--error-rate",
        "0.01",
    ]);
    propose.arg("--registry").arg(&registry);
    succeed(&mut propose);
    (scratch, registry)
}

fn hostile_payloads() -> Vec<String> {
    let bash = serde_json::json!({
        "session_id": HOSTILE_SESSION, "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_use_id": "toolu_hostile_1", "cwd": "/w<b>bold</b>",
        "tool_input": {"command": "fn run sqlite_open_go_infra"},
        "tool_response": {"stdout": "", "stderr": "", "interrupted": false}
    });
    let mcp = serde_json::json!({
        "session_id": HOSTILE_SESSION, "hook_event_name": "PostToolUse", "tool_name": HOSTILE_TOOL,
        "tool_use_id": "toolu_hostile_2", "cwd": "/w", "tool_input": {}, "tool_response": {}
    });
    vec![bash.to_string(), mcp.to_string()]
}

/// A running `serve`, killed when dropped.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
}

impl Served {
    /// Starts `serve` on a free loopback port with `extra` arguments and
    /// waits for the address it prints.
    pub fn start(scratch: &Scratch, extra: &[&str]) -> Self {
        let mut args = vec![
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--sequences-every",
            "1s",
        ];
        args.extend_from_slice(extra);
        let mut child = scratch
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("dashboard at http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        Served { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn get(&self, path: &str) -> Reply {
        http(self.addr, "GET", path, &[("host", &self.addr.to_string())])
    }

    pub fn json(&self, path: &str) -> Value {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        serde_json::from_str(&reply.body).unwrap()
    }
}

impl Served {
    /// SIGTERM; the exit code once it is gone.
    pub fn terminate(mut self) -> Option<i32> {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).unwrap();
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request written by hand, so a test can send exactly the
/// headers an attacker would (a forged `Host`).
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The sum of `key` over the rows of an API table.
fn sum(rows: &Value, key: &str) -> i64 {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| row[key].as_i64().unwrap())
        .sum()
}

fn sha(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).unwrap_or_default(),
    ))
}

#[test]
fn every_api_answer_equals_the_database() {
    let (scratch, registry) = fixture();
    let before = (
        sha(&scratch.db()),
        sha(&scratch.db().with_extension("db-wal")),
    );
    let served = Served::start(&scratch, &["--registry", registry.to_str().unwrap()]);
    let count = |sql: &str| scratch.count(sql);

    let overview = served.json("/api/overview");
    let totals = &overview["totals"];
    assert_eq!(totals["events"], count("SELECT COUNT(*) FROM events"));
    assert_eq!(totals["sessions"], count("SELECT COUNT(*) FROM sessions"));
    assert_eq!(totals["calls"], count("SELECT COUNT(*) FROM calls"));
    assert_eq!(totals["tool_uses"], count("SELECT COUNT(*) FROM tool_uses"));
    assert_eq!(
        totals["violations"],
        count("SELECT COUNT(*) FROM violations")
    );
    assert_eq!(
        totals["quarantined"],
        count("SELECT COUNT(*) FROM quarantine")
    );
    let day_calls: i64 = sum(&overview["days"], "calls");
    assert_eq!(
        day_calls,
        count("SELECT COUNT(*) FROM calls WHERE function_id IS NOT NULL")
    );
    let p95 = overview["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| !d["p95_duration_ms"].is_null())
        .count();
    assert!(p95 > 0, "no day has a p95: {overview}");
    for day in overview["days"].as_array().unwrap() {
        let Some(shown) = day["p95_duration_ms"].as_i64() else {
            continue;
        };
        // Nearest rank over the day's calls: within the 5 % bucket's half-width.
        let mut durations: Vec<i64> = scratch
            .read()
            .prepare("SELECT duration_ms FROM calls WHERE function_id IS NOT NULL AND duration_ms IS NOT NULL AND ts LIKE ?1 || '%'")
            .unwrap()
            .query_map([day["day"].as_str().unwrap()], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        durations.sort_unstable();
        let exact = durations[(95 * durations.len()).div_ceil(100) - 1];
        assert!(
            (shown - exact).abs() as f64 <= exact as f64 * 0.025 + 1.0,
            "{day}: exact p95 {exact}"
        );
    }

    let functions = served.json("/api/functions");
    let rows = functions["functions"].as_array().unwrap();
    assert_eq!(
        rows.len() as i64,
        count("SELECT COUNT(*) FROM function_stats")
    );
    for row in rows {
        let id = row["function_id"].as_str().unwrap();
        let calls = scratch
            .read()
            .query_row(
                "SELECT COUNT(*) FROM calls WHERE function_id = ?1",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
        assert_eq!(row["calls_total"], calls, "{id}");
        assert_eq!(row["calls_in_range"], calls, "{id}");
    }
    let orphans = functions["orphans"]
        .as_array()
        .expect("orphans with a registry");
    assert!(orphans.iter().all(|o| !rows
        .iter()
        .any(|r| r["function_id"] == *o && r["calls_total"].as_i64() > Some(0))));
    let csv = served.get("/api/functions.csv");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(csv.body.lines().count(), rows.len() + 1, "{}", csv.body);

    let top = rows[0]["function_id"].as_str().unwrap();
    let detail = served.json(&format!("/api/functions/{top}"));
    let detail_calls: i64 = sum(&detail["days"], "calls");
    assert_eq!(detail_calls, rows[0]["calls_total"].as_i64().unwrap());
    let histogram: i64 = sum(&detail["durations"], "calls");
    assert_eq!(
        histogram,
        count(&format!(
            "SELECT COUNT(duration_ms) FROM calls WHERE function_id = '{top}'"
        ))
    );

    let tools = served.json("/api/tools");
    assert_eq!(
        tools["tools"].as_array().unwrap().len() as i64,
        count("SELECT COUNT(*) FROM tool_stats")
    );
    assert!(
        tools["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["server"] == "registry"),
        "{tools}"
    );
    assert_eq!(served.get("/api/tools.csv").status, 200);

    let sessions = served.json("/api/sessions");
    assert_eq!(sessions["matching"], count("SELECT COUNT(*) FROM sessions"));
    let filtered = served.json("/api/sessions?host=devbox&from=2026-11-20&to=2026-11-20");
    assert_eq!(
        filtered["matching"],
        count(
            "SELECT COUNT(*) FROM sessions WHERE host = 'devbox' AND started_at LIKE '2026-11-20%'"
        )
    );
    assert!(filtered["matching"].as_i64().unwrap() > 0);
    let id = "sess-alpha";
    let session = served.json(&format!("/api/sessions/{id}"));
    assert_eq!(
        session["timeline"].as_array().unwrap().len() as i64,
        count("SELECT COUNT(*) FROM tool_uses WHERE session_id = 'sess-alpha'")
    );

    let violations = served.json("/api/violations");
    let by_rule: i64 = sum(&violations["rules"], "count");
    assert_eq!(by_rule, count("SELECT COUNT(*) FROM violations"));
    assert_eq!(
        served.json("/api/quarantine")["total"],
        count("SELECT COUNT(*) FROM quarantine")
    );
    let pipeline = served.json("/api/pipeline");
    assert!(
        !pipeline["hours"].as_array().unwrap().is_empty(),
        "{pipeline}"
    );
    assert_eq!(
        pipeline["backlog"]["bytes"], 0,
        "everything was replayed: {pipeline}"
    );
    let proposals = served.json("/api/proposals");
    assert!(
        !proposals["proposals"].as_array().unwrap().is_empty(),
        "{proposals}"
    );
    assert_eq!(
        served.json("/api/patterns").as_array().unwrap().len() as i64,
        count("SELECT COUNT(*) FROM patterns")
    );
    crate::support::wait_until("sequences mined", Duration::from_secs(30), || {
        !served.json("/api/sequences")["mined"].is_null()
    });

    assert_eq!(served.get("/api/functions/no_such_fn").status, 404);
    assert_eq!(served.get("/api/sessions/nobody").status, 404);
    let bad = served.get("/api/overview?from=yesterday");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("must be a day"), "{}", bad.body);
    assert_eq!(served.get("/nowhere").status, 404);
    drop(served);
    assert_eq!(
        before,
        (
            sha(&scratch.db()),
            sha(&scratch.db().with_extension("db-wal"))
        ),
        "serve wrote to the database"
    );
}

#[test]
fn answers_carry_a_strict_policy_and_accept_only_reads() {
    let (scratch, _) = fixture();
    let served = Served::start(&scratch, &[]);
    for path in ["/", "/api/overview", "/assets/app.js", "/nowhere"] {
        let reply = served.get(path);
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("access-control-allow-origin"), None, "{path}");
    }
    let cross_origin = http(
        served.addr,
        "GET",
        "/api/overview",
        &[
            ("host", &served.addr.to_string()),
            ("origin", "http://evil.example"),
        ],
    );
    assert_eq!(cross_origin.header("access-control-allow-origin"), None);
    for method in ["POST", "PUT", "DELETE"] {
        let reply = http(
            served.addr,
            method,
            "/api/overview",
            &[("host", &served.addr.to_string()), ("content-length", "0")],
        );
        assert_eq!(reply.status, 405, "{method}");
    }
    let page = served.get("/");
    assert!(
        page.body.contains("/assets/app.js") && !page.body.contains("<script>"),
        "inline script in the page"
    );
}

#[test]
fn a_forged_host_is_refused() {
    let (scratch, _) = fixture();
    let served = Served::start(&scratch, &[]);
    let port = served.addr.port();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "localhost.evil.example",
    ] {
        let reply = http(served.addr, "GET", "/api/overview", &[("host", host)]);
        assert_eq!(reply.status, 421, "{host}");
        assert!(!reply.body.contains("totals"), "{host}");
    }
    assert_eq!(
        http(served.addr, "GET", "/api/overview", &[]).status,
        421,
        "no Host at all"
    );
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        assert_eq!(
            http(served.addr, "GET", "/api/overview", &[("host", &host)]).status,
            200,
            "{host}"
        );
    }
}

#[test]
fn off_loopback_without_a_token_it_refuses_to_start() {
    let (scratch, _) = fixture();
    let out = scratch
        .cmd(&["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address") && stderr.contains("--token"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("dashboard at"));
    let out = scratch
        .cmd(&["serve", "--listen", "0.0.0.0:0", "--token", "short"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = Scratch::new();
    let out = missing
        .cmd(&["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
}

#[test]
fn with_a_token_every_request_needs_it() {
    let (scratch, _) = fixture();
    let token = "tok-0123456789abcdef-xyz";
    let served = Served::start(&scratch, &["--token", token]);
    let host = served.addr.to_string();
    let plain = http(served.addr, "GET", "/api/overview", &[("host", &host)]);
    assert_eq!(plain.status, 401);
    assert_eq!(plain.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        http(served.addr, "GET", "/", &[("host", &host)]).status,
        401
    );
    let wrong = http(
        served.addr,
        "GET",
        "/api/overview",
        &[
            ("host", &host),
            ("authorization", "Bearer tok-0123456789abcdef-xyZ"),
        ],
    );
    assert_eq!(wrong.status, 401);
    let bearer = format!("Bearer {token}");
    assert_eq!(
        http(
            served.addr,
            "GET",
            "/api/overview",
            &[("host", &host), ("authorization", &bearer)]
        )
        .status,
        200
    );
    let first = http(
        served.addr,
        "GET",
        &format!("/?token={token}"),
        &[("host", &host)],
    );
    assert_eq!(first.status, 303);
    assert_eq!(first.header("location"), Some("/"));
    let cookie = first.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    assert_eq!(
        http(
            served.addr,
            "GET",
            "/api/overview",
            &[("host", &host), ("cookie", pair)]
        )
        .status,
        200
    );
}

#[test]
fn the_report_is_one_file_with_every_view_and_inert_ids() {
    let (scratch, registry) = fixture();
    let out = scratch.dir.path().join("report.html");
    let mut report = scratch.cmd(&["report", "--html", out.to_str().unwrap()]);
    report.arg("--registry").arg(&registry);
    let said = succeed(&mut report);
    assert!(said.contains("report written to"), "{said}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        !html.contains("src=\"/assets") && !html.contains("href=\"/assets"),
        "the report links its assets"
    );
    assert!(html.contains("id=\"report-data\""));
    assert!(
        !html.contains(HOSTILE_SESSION),
        "a raw <script> id in the report"
    );
    assert!(html.contains("\\u003cscript>window.__pwned=1\\u003c/script>"));
    for view in [
        "/api/overview",
        "/api/functions",
        "/api/sessions/sess-alpha",
        "/api/pipeline",
        "/api/proposals",
    ] {
        assert!(
            html.contains(&format!("\"{view}\"")),
            "{view} missing from the report"
        );
    }
}

#[test]
fn sigterm_stops_it_cleanly_even_with_a_live_stream_open() {
    let (scratch, _) = fixture();
    let served = Served::start(&scratch, &[]);
    let mut live = TcpStream::connect(served.addr).unwrap();
    write!(
        live,
        "GET /api/live HTTP/1.1\r\nhost: {}\r\n\r\n",
        served.addr
    )
    .unwrap();
    let mut head = [0u8; 12];
    live.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(served.terminate(), Some(0));
}

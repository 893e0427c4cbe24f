//! The dashboard in a real browser: headless Chromium driven over
//! WebDriver (chromedriver, from the distribution's `chromium-driver`;
//! `.ci/run` installs it). Every page is opened on the dashboard fixture:
//! the numbers shown must be the database's, the charts drawn, the console
//! free of errors, markup in ids inert; a screenshot of each page is saved
//! under `target/dashboard/`. A live test appends hook lines while the
//! overview is open and sees it change without a reload.
//!
//! Without chromedriver the tests say so and pass, except under `CI`,
//! where they fail: CI must run them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use crate::dashboard::{fixture, Served, HOSTILE_FUNCTION, HOSTILE_SESSION, HOSTILE_TOOL};
use crate::support::{bash_payload, run_hook, Daemon, Scratch};

/// A chromedriver process and a browser session on it.
struct Browser {
    driver: Child,
    client: Client,
    runtime: tokio::runtime::Runtime,
    _profile: tempfile::TempDir,
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

impl Browser {
    /// `None` (with a note) when this machine has no chromedriver, unless
    /// `CI` is set.
    fn start() -> Option<Self> {
        let driver = find(&["chromedriver"]);
        let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
        let (Some(driver), Some(chromium)) = (driver, chromium) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the browser tests: install chromium and chromium-driver"
            );
            eprintln!("browser tests skipped: no chromedriver/chromium on PATH");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1300,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = runtime
            .block_on(async {
                let caps = caps.as_object().unwrap().clone().into_iter().collect();
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://{addr}"))
                    .await
            })
            .expect("a browser session");
        Some(Browser {
            driver,
            client,
            runtime,
            _profile: profile,
        })
    }

    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }

    fn script(&self, js: &str) -> Value {
        self.run(self.client.execute(js, vec![])).unwrap()
    }

    /// Loads `url` afresh and waits for the view to be drawn (and its
    /// charts, which uPlot draws on the next frame).
    fn open(&self, url: &str) {
        self.run(async {
            self.client.goto("about:blank").await.unwrap();
            self.client.goto(url).await.unwrap();
        });
        self.wait("the view", || {
            self.script("return document.querySelector('main[data-rendered]') !== null && document.querySelectorAll('[data-chart]:not(svg)').length === document.querySelectorAll('[data-chart]:not(svg) canvas, [data-chart] .empty').length")
                == json!(true)
        });
    }

    fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `data-value` of a card, as the page shows it.
    fn stat(&self, key: &str) -> String {
        let js = format!("const e = document.querySelector('[data-stat={key}]'); return e ? e.dataset.value : null;");
        match self.script(&js) {
            Value::String(s) => s,
            other => panic!("no stat {key} on the page: {other}"),
        }
    }

    fn rows(&self, table: &str) -> usize {
        let js = format!(
            "return document.querySelectorAll('table[data-table={table}] tbody tr').length"
        );
        self.script(&js).as_u64().unwrap() as usize
    }

    /// Every chart on the page drew something: a canvas with a size, or an
    /// SVG with shapes.
    fn charts_drawn(&self) -> usize {
        let js = "const c = [...document.querySelectorAll('[data-chart]')];
                  const bad = c.filter(e => e.tagName.toLowerCase() === 'svg'
                      ? e.querySelectorAll('rect, line, path').length === 0
                      : !(e.querySelector('canvas') && e.querySelector('canvas').width > 0));
                  return bad.length ? 'empty: ' + bad.map(e => e.dataset.chart).join(',') : c.length;";
        match self.script(js) {
            Value::Number(n) => n.as_u64().unwrap() as usize,
            other => panic!("charts not drawn: {other}"),
        }
    }

    fn no_errors(&self, page: &str) {
        let errors = self.script("return window.__cmErrors.concat([...document.querySelectorAll('[data-error]')].map(e => e.textContent))");
        assert_eq!(errors, json!([]), "errors on {page}");
    }

    fn screenshot(&self, name: &str) {
        let png = self.run(self.client.screenshot()).unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn count(scratch: &Scratch, sql: &str) -> String {
    scratch.count(sql).to_string()
}

#[test]
fn every_page_shows_the_database_with_charts_and_no_errors() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let (scratch, registry) = fixture();
    let served = Served::start(&scratch, &["--registry", registry.to_str().unwrap()]);
    let page = |route: &str, shot: &str| {
        browser.open(&served.url(&format!("/#/{route}")));
        browser.no_errors(route);
        browser.screenshot(shot);
    };

    page("", "overview");
    for (key, sql) in [
        ("events", "SELECT COUNT(*) FROM events"),
        ("sessions", "SELECT COUNT(*) FROM sessions"),
        ("tool_uses", "SELECT COUNT(*) FROM tool_uses"),
        ("calls", "SELECT COUNT(*) FROM calls"),
        ("violations", "SELECT COUNT(*) FROM violations"),
        ("quarantined", "SELECT COUNT(*) FROM quarantine"),
    ] {
        assert_eq!(browser.stat(key), count(&scratch, sql), "overview {key}");
    }
    assert_eq!(browser.charts_drawn(), 3, "activity, quality, health");

    page("functions", "functions");
    assert_eq!(
        browser.rows("functions").to_string(),
        count(&scratch, "SELECT COUNT(*) FROM function_stats")
    );
    let top: String = scratch
        .read()
        .query_row(
            "SELECT function_id FROM call_totals ORDER BY calls DESC, function_id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let first_row = browser.script("return document.querySelector('table[data-table=functions] tbody tr td[data-col=calls_total]').textContent");
    assert_eq!(
        first_row,
        json!(count(
            &scratch,
            &format!("SELECT COUNT(*) FROM calls WHERE function_id = '{top}'")
        ))
    );

    page(&format!("functions/{top}"), "function");
    assert_eq!(
        browser.stat("calls_total"),
        count(
            &scratch,
            &format!("SELECT COUNT(*) FROM calls WHERE function_id = '{top}'")
        )
    );
    assert!(
        browser.charts_drawn() >= 2,
        "calls over time and the duration histogram"
    );

    page("tools", "tools");
    assert_eq!(
        browser.rows("tools").to_string(),
        count(&scratch, "SELECT COUNT(*) FROM tool_stats")
    );
    assert_eq!(browser.charts_drawn(), 1);

    page("sessions", "sessions");
    assert_eq!(
        browser.stat("matching"),
        count(&scratch, "SELECT COUNT(*) FROM sessions")
    );
    assert_eq!(
        browser.rows("sessions").to_string(),
        count(&scratch, "SELECT COUNT(*) FROM sessions")
    );

    page("sessions/sess-alpha", "session");
    assert_eq!(
        browser.stat("tool_uses"),
        count(
            &scratch,
            "SELECT tool_uses FROM sessions WHERE session_id = 'sess-alpha'"
        )
    );
    assert_eq!(browser.charts_drawn(), 1, "the timeline");
    assert_eq!(
        browser.rows("calls").to_string(),
        count(
            &scratch,
            "SELECT COUNT(*) FROM calls WHERE session_id = 'sess-alpha'"
        )
    );

    page("patterns", "patterns");
    assert_eq!(
        browser.rows("patterns").to_string(),
        count(&scratch, "SELECT MIN(COUNT(*), 200) FROM patterns")
    );

    browser.wait("sequences mined", || {
        served.json("/api/sequences")["mined"].is_object()
    });
    page("sequences", "sequences");
    let mined = served.json("/api/sequences")["mined"]["detection"]["sequences"]
        .as_array()
        .unwrap()
        .len();
    assert!(mined > 0, "the demo session repeats a chain");
    assert_eq!(browser.rows("sequences"), mined);
    assert_eq!(browser.charts_drawn(), 1, "the graph");

    page("proposals", "proposals");
    let registry_conn = rusqlite::Connection::open(&registry).unwrap();
    let proposals: i64 = registry_conn
        .query_row("SELECT COUNT(*) FROM proposals", [], |r| r.get(0))
        .unwrap();
    assert!(proposals > 0);
    assert_eq!(browser.rows("proposals") as i64, proposals);

    page("violations", "violations");
    assert_eq!(
        browser.rows("rules").to_string(),
        count(
            &scratch,
            "SELECT COUNT(*) FROM (SELECT DISTINCT rule_id, severity FROM violations)"
        )
    );
    assert_eq!(browser.charts_drawn(), 1);

    page("quarantine", "quarantine");
    assert_eq!(
        browser.stat("quarantined"),
        count(&scratch, "SELECT COUNT(*) FROM quarantine")
    );
    assert_eq!(
        browser.rows("quarantine").to_string(),
        count(&scratch, "SELECT COUNT(*) FROM quarantine")
    );

    page("pipeline", "pipeline");
    assert_eq!(
        browser.rows("events").to_string(),
        count(&scratch, "SELECT COUNT(*) FROM event_names")
    );
    assert_eq!(browser.stat("backlog_bytes"), "0");
    assert_eq!(browser.charts_drawn(), 1, "tool uses per hour");
}

#[test]
fn markup_in_ids_is_shown_as_text() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let (scratch, registry) = fixture();
    let served = Served::start(&scratch, &["--registry", registry.to_str().unwrap()]);
    let id = urlencoding(HOSTILE_SESSION);
    let function = urlencoding(HOSTILE_FUNCTION);
    for route in [
        "sessions".to_string(),
        "tools".to_string(),
        format!("sessions/{id}"),
        "functions".to_string(),
        format!("functions/{function}"),
    ] {
        browser.open(&served.url(&format!("/#/{route}")));
        browser.no_errors(&route);
        assert_eq!(
            browser.script("return window.__pwned === undefined"),
            json!(true),
            "{route} ran injected code"
        );
        assert_eq!(
            browser.script("return document.querySelectorAll('main script, main img').length"),
            json!(0),
            "{route}"
        );
    }
    browser.open(&served.url("/#/tools"));
    let text = browser.script("return document.querySelector('main').textContent");
    assert!(
        text.as_str().unwrap().contains(HOSTILE_TOOL),
        "the tool's name is shown as written"
    );
    browser.open(&served.url("/#/sessions"));
    let text = browser.script("return document.querySelector('main').textContent");
    assert!(text.as_str().unwrap().contains(HOSTILE_SESSION));
    browser.open(&served.url("/#/functions"));
    let text = browser.script("return document.querySelector('main').textContent");
    assert!(
        text.as_str().unwrap().matches(HOSTILE_FUNCTION).count() >= 2,
        "the function id in function_stats and among the orphans, as written"
    );
    browser.open(&served.url(&format!("/#/functions/{function}")));
    let title = browser.script("return document.querySelector('main h1').textContent");
    assert_eq!(title, json!(HOSTILE_FUNCTION));
    browser.screenshot("injection");
}

/// `encodeURIComponent` for the test's own ids.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_overview_follows_new_hook_lines_without_a_reload() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let (scratch, _) = fixture();
    let _daemon = Daemon::start(&scratch, &[]);
    let served = Served::start(&scratch, &[]);
    browser.open(&served.url("/#/"));
    browser.wait("the live stream", || {
        browser.script("return document.getElementById('live').textContent") == json!("live")
    });
    let before: i64 = browser.stat("tool_uses").parse().unwrap();
    browser.script("window.__sameDocument = true; return null");
    for n in 0..3 {
        let payload = bash_payload("sess-live", &format!("toolu_live_{n}"), "csv_read_py_data");
        assert_eq!(run_hook(&scratch.spool(), &payload).0, 0);
    }
    browser.wait("the overview to show the new tool uses", || {
        browser.stat("tool_uses").parse::<i64>().unwrap() == before + 3
    });
    assert_eq!(
        browser.script("return window.__sameDocument === true"),
        json!(true),
        "the page was reloaded"
    );
    browser.no_errors("live overview");
    browser.screenshot("live");
}

#[test]
fn the_html_report_draws_every_view_offline() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let (scratch, registry) = fixture();
    let out = scratch.dir.path().join("report.html");
    let mut report = scratch.cmd(&["report", "--html", out.to_str().unwrap()]);
    report.arg("--registry").arg(&registry);
    crate::support::succeed(&mut report);
    let url = format!("file://{}", out.display());
    for (route, charts) in [
        ("", 3),
        ("functions", 0),
        ("sessions/sess-alpha", 1),
        ("sequences", 1),
        ("pipeline", 1),
    ] {
        browser.open(&format!("{url}#/{route}"));
        browser.no_errors(route);
        assert_eq!(browser.charts_drawn(), charts, "{route}");
    }
    browser.open(&format!("{url}#/functions"));
    assert_eq!(
        browser.rows("functions").to_string(),
        count(&scratch, "SELECT COUNT(*) FROM function_stats")
    );
    browser.open(&format!("{url}#/"));
    assert_eq!(
        browser.stat("calls"),
        count(&scratch, "SELECT COUNT(*) FROM calls")
    );
    assert_eq!(
        browser.script("return window.__pwned === undefined"),
        json!(true)
    );
    browser.screenshot("report");
}

/// The sequence graph on a history of sixteen long-named functions and a
/// planted chain: its nodes' boxes neither overlap nor leave the picture
/// (on a circle, the neighbours at the bottom of twelve such names covered
/// each other), and the edges drawn dark are exactly the pairs of the
/// proposed sequences, long enough to see (a chain's functions are first
/// seen together; placed side by side, its edges were stubs).
#[test]
fn the_sequence_graph_keeps_its_nodes_apart_and_marks_proposals() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let scratch = Scratch::new();
    crate::support::succeed(&mut scratch.cmd(&["init"]));
    let conn = rusqlite::Connection::open(scratch.db()).unwrap();
    let mut insert = conn
        .prepare("INSERT INTO calls (session_id, function_id, tool_used, ts) VALUES (?1, ?2, 'fn_run', ?3)")
        .unwrap();
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let kinds = ["read", "write", "sync", "check"];
    let stores = ["sqlite", "csv", "queue", "cache"];
    let chain = [
        "plan_deploy_go_py_infra",
        "ship_deploy_go_py_infra",
        "verify_deploy_go_py_infra",
    ];
    for session in 0..60 {
        let mut calls: Vec<String> = (0..20)
            .map(|_| {
                let (kind, store) = (rng.random_range(0..4), rng.random_range(0..4));
                format!("{}_{}_go_py_infra", kinds[kind], stores[store])
            })
            .collect();
        if session % 3 == 0 {
            let at = rng.random_range(0..=calls.len());
            calls.splice(at..at, chain.map(String::from));
        }
        for (i, function) in calls.iter().enumerate() {
            let ts = format!("2026-12-01T10:{:02}:{:02}.000Z", i / 2, (i % 2) * 30);
            insert
                .execute((format!("graph-{session}"), function, ts))
                .unwrap();
        }
    }
    let detection: Value = serde_json::from_str(&crate::support::succeed(
        &mut scratch.cmd(&["sequences", "--json"]),
    ))
    .unwrap();
    let mut proposed_pairs: Vec<String> = detection["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "proposed")
        .flat_map(|s| {
            let names: Vec<&str> = s["functions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            names.windows(2).map(|w| w.join(" → ")).collect::<Vec<_>>()
        })
        .collect();
    proposed_pairs.sort();
    proposed_pairs.dedup();
    assert!(
        proposed_pairs.contains(&format!("{} → {}", chain[0], chain[1])),
        "the chain is proposed: {detection}"
    );
    let out = scratch.dir.path().join("report.html");
    crate::support::succeed(&mut scratch.cmd(&["report", "--html", out.to_str().unwrap()]));
    browser.open(&format!("file://{}#/sequences", out.display()));
    browser.no_errors("sequences");
    let boxes = browser.script(
        "const g = document.querySelector('svg[data-chart=sequence-graph]');
         const [, , w, h] = g.getAttribute('viewBox').split(' ').map(Number);
         return [...g.querySelectorAll('g.node rect')].map(r => ({
           name: r.parentNode.querySelector('title').textContent,
           x: +r.getAttribute('x'), y: +r.getAttribute('y'),
           w: +r.getAttribute('width'), h: +r.getAttribute('height'), W: w, H: h }));",
    );
    let boxes = boxes.as_array().unwrap();
    assert!(boxes.len() >= 14, "a crowded graph: {boxes:?}");
    let f = |b: &Value, k: &str| b[k].as_f64().unwrap();
    for b in boxes {
        let inside = f(b, "x") >= 0.0
            && f(b, "y") >= 0.0
            && f(b, "x") + f(b, "w") <= f(b, "W")
            && f(b, "y") + f(b, "h") <= f(b, "H");
        assert!(inside, "outside the picture: {b}");
    }
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let apart = f(a, "x") + f(a, "w") <= f(b, "x")
                || f(b, "x") + f(b, "w") <= f(a, "x")
                || f(a, "y") + f(a, "h") <= f(b, "y")
                || f(b, "y") + f(b, "h") <= f(a, "y");
            assert!(apart, "overlapping nodes: {a} and {b}");
        }
    }
    assert_eq!(
        graph_titles(&browser, "line.edge.proposed"),
        json!(proposed_pairs),
        "dark edges"
    );
    let shortest = browser.script(
        "return Math.min(...[...document.querySelectorAll('svg[data-chart=sequence-graph] line.edge.proposed')]
           .map(l => Math.hypot(l.x2.baseVal.value - l.x1.baseVal.value, l.y2.baseVal.value - l.y1.baseVal.value)));",
    );
    assert!(
        shortest.as_f64().unwrap() >= 60.0,
        "a proposed chain's edges drawn as stubs between touching boxes: {shortest}"
    );
    browser.screenshot("sequence-graph");
    only_the_proposed_sequences(&browser, &detection, &proposed_pairs);
}

/// The sequences page's switch: checked, the graph and the table hold the
/// proposed sequences and nothing else (every edge dark, every node one of
/// their functions); unchecked, everything again. It lives in the URL.
fn only_the_proposed_sequences(browser: &Browser, detection: &Value, proposed_pairs: &[String]) {
    let sequences = detection["sequences"].as_array().unwrap();
    let proposed: Vec<&Value> = sequences
        .iter()
        .filter(|s| s["verdict"] == "proposed")
        .collect();
    let mut functions: Vec<String> = proposed
        .iter()
        .flat_map(|s| s["functions"].as_array().unwrap())
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    functions.sort();
    functions.dedup();
    let all_rows = browser.rows("sequences");
    assert_eq!(all_rows, sequences.len(), "every mined sequence listed");
    let flip = || {
        let before = browser.script("return document.querySelector('main').dataset.rendered");
        browser.script("document.querySelector('input[name=proposed-only]').click()");
        browser.wait("the view drawn again", || {
            browser.script("return document.querySelector('main').dataset.rendered") != before
        });
    };
    flip();
    assert_eq!(
        browser.script(
            "return [location.hash, document.querySelector('input[name=proposed-only]').checked]"
        ),
        json!(["#/sequences?only=proposed", true])
    );
    assert_eq!(
        browser.rows("sequences"),
        proposed.len(),
        "only the proposed listed"
    );
    assert_eq!(
        graph_titles(browser, "line.edge"),
        json!(proposed_pairs),
        "only their edges drawn"
    );
    assert_eq!(
        graph_titles(browser, "g.node"),
        json!(functions),
        "only their functions drawn"
    );
    browser.no_errors("sequences?only=proposed");
    browser.screenshot("sequences-proposed-only");
    flip();
    assert_eq!(browser.rows("sequences"), all_rows, "everything again");
    assert!(graph_titles(browser, "g.node").as_array().unwrap().len() > functions.len());
}

/// The sequence graph's `what` (edges or nodes), each by its tooltip's
/// name (an edge's `a → b`, without its support), sorted.
fn graph_titles(browser: &Browser, what: &str) -> Value {
    browser.script(&format!(
        "return [...document.querySelectorAll('svg[data-chart=sequence-graph] {what} > title')]
           .map(t => t.textContent.split(':')[0]).sort();"
    ))
}

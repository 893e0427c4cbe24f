// call_monitor dashboard: one page, one view per route (#/functions, ...),
// drawn from the /api/ answers (or, in an HTML report, from the answers
// embedded in the file). Every value reaches the page as a DOM text node or
// an attribute set through the DOM: nothing is parsed as HTML.
"use strict";

// Errors seen by the page, for the browser tests (and anyone debugging).
window.__cmErrors = [];
// Capturing: a script, style or image that fails to load reports here too.
window.addEventListener("error", (e) => window.__cmErrors.push(String(e.message || ("cannot load " + (e.target && (e.target.src || e.target.href))))), true);
const consoleError = console.error.bind(console);
console.error = (...args) => { window.__cmErrors.push(args.map(String).join(" ")); consoleError(...args); };
window.addEventListener("unhandledrejection", (e) => window.__cmErrors.push(String(e.reason)));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cmErrors.push("CSP blocked " + e.blockedURI + " (" + e.violatedDirective + ")"));

const REPORT = (() => {
  const node = document.getElementById("report-data");
  return node ? JSON.parse(node.textContent) : null;
})();

const PAGES = [
  ["", "overview"], ["functions", "functions"], ["tools", "tools"], ["sessions", "sessions"],
  ["patterns", "patterns"], ["sequences", "sequences"], ["proposals", "proposals"],
  ["violations", "violations"], ["quarantine", "quarantine"], ["pipeline", "pipeline"],
];
// Pages whose answers honour the filters (the others ignore them).
const FILTERED = new Set(["", "functions", "tools", "sessions", "violations"]);

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v);
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const nf = new Intl.NumberFormat("en-US");
function num(v) { return v === null || v === undefined ? "—" : nf.format(v); }
function pct(v) { return v === null || v === undefined ? "—" : (100 * v).toFixed(1) + " %"; }
function ms(v) {
  if (v === null || v === undefined) return "—";
  return v >= 10000 ? (v / 1000).toFixed(1) + " s" : nf.format(Math.round(v)) + " ms";
}
function bytes(v) {
  if (v === null || v === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + units[i];
}
function when(ts) { return ts ? ts.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—"; }

function link(kind, id) {
  return el("a", { href: "#/" + kind + "/" + encodeURIComponent(id) }, id);
}

function card(key, label, value, format) {
  return el("div", { class: "card" },
    el("div", { class: "v", "data-stat": key, "data-value": value === null || value === undefined ? "" : String(value) },
      (format || num)(value)),
    el("div", { class: "k" }, label));
}

function panel(title, ...body) {
  return el("section", { class: "panel" }, title ? el("h2", {}, title) : null, ...body);
}

function empty(text) { return el("div", { class: "empty" }, text); }

// A table of an API table (an array of row objects). `cols`: [key, label,
// format?, render?]; rows sortable by clicking a header.
function table(name, rows, cols) {
  if (!rows || rows.length === 0) return empty("nothing recorded");
  const numeric = (k) => rows.some((r) => typeof r[k] === "number");
  let sortKey = null, asc = false;
  const tbody = el("tbody");
  const heads = cols.map(([k, label]) => el("th", {
    class: numeric(k) ? "n" : "", "data-key": k,
    on: { click: () => { asc = sortKey === k ? !asc : !numeric(k); sortKey = k; fill(); } },
  }, label));
  function fill() {
    const sorted = sortKey === null ? rows : [...rows].sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = x === y ? 0 : x === null ? 1 : y === null ? -1 : x < y ? -1 : 1;
      return asc ? c : -c;
    });
    heads.forEach((h) => h.className = (numeric(h.dataset.key) ? "n " : "") +
      (h.dataset.key === sortKey ? "sorted" + (asc ? " asc" : "") : ""));
    tbody.replaceChildren(...sorted.map((r) => el("tr", {},
      cols.map(([k, , format, render]) => {
        const v = r[k];
        const content = render ? render(v, r) : format ? format(v) : v === null ? "—" : v;
        return el("td", { class: typeof v === "number" ? "n" : (String(v).length > 60 ? "wrap" : ""), "data-col": k }, content);
      }))));
  }
  fill();
  return el("table", { "data-table": name }, el("thead", {}, el("tr", {}, heads)), tbody);
}

// ---------------------------------------------------------------- charts

const COLORS = ["#2f6fde", "#e07b39", "#15803d", "#b42318", "#7c3aed", "#0e7490", "#a16207"];

// A time series chart (uPlot): `xs` epoch seconds, `series` [{label, values, scale?}].
function timeChart(name, xs, series, opts) {
  const box = el("div", { class: "chart", "data-chart": name });
  if (!xs.length) { box.appendChild(empty("no data in this range")); return box; }
  requestAnimationFrame(() => {
    const width = Math.max(320, box.clientWidth || 600);
    // One point alone would make uPlot span years around it.
    // The x range from the data itself: uPlot's own range for a single
    // point spans years, and bars need half a step of room at each end.
    const pad = (opts && opts.pad) || 86400;
    const lo = Math.min(...xs), hi = Math.max(...xs);
    const room = lo === hi ? pad : series.some((s) => s.bars) ? pad / 2 : 0;
    const scales = { x: { time: true, range: () => [lo - room, hi + room] } };
    const axes = [{}, { scale: "y", size: 60 }];
    if (series.some((s) => s.scale === "r")) {
      scales.r = {};
      axes.push({ scale: "r", side: 1, grid: { show: false }, size: 60 });
    }
    const plot = new uPlot({
      width, height: (opts && opts.height) || 220, scales, axes,
      series: [{}, ...series.map((s, i) => ({
        label: s.label, scale: s.scale || "y", stroke: COLORS[i % COLORS.length], width: 2,
        fill: s.fill ? COLORS[i % COLORS.length] + "22" : undefined,
        paths: s.bars ? uPlot.paths.bars({ size: [0.7, 40] }) : undefined,
        points: { show: xs.length < 40 },
      }))],
    }, [xs, ...series.map((s) => s.values)], box);
    box.__plot = plot;
  });
  return box;
}

function dayEpoch(day) { return Date.parse(day + "T00:00:00Z") / 1000; }

// Day rows with the days between them that have none added (as `blank`),
// so a quiet week reads as zero rather than a line drawn across it.
function fillDays(rows, blank) {
  const out = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last) {
      for (let t = dayEpoch(last.day) + 86400; t < dayEpoch(r.day) && out.length < 4000; t += 86400)
        out.push({ ...blank, day: new Date(t * 1000).toISOString().slice(0, 10) });
    }
    out.push(r);
  }
  return out;
}

// Vertical bars (SVG): labels under each bar.
function bars(name, labels, values, opts) {
  const w = 560, h = 180, pad = 28, n = values.length;
  const max = Math.max(1, ...values);
  const bw = (w - pad * 2) / Math.max(1, n);
  const g = svg("svg", { viewBox: `0 0 ${w} ${h + 22}`, width: "100%", "data-chart": name, role: "img" });
  values.forEach((v, i) => {
    const bh = (h - 20) * v / max;
    const x = pad + i * bw;
    g.appendChild(svg("rect", { class: "bar" + (opts && opts.bad && opts.bad(i) ? " bad" : ""), x: x + 1, y: h - bh, width: Math.max(1, bw - 2), height: bh },
      svg("title", {}, `${labels[i]}: ${v}`)));
    if (n <= 24 || i % Math.ceil(n / 12) === 0)
      g.appendChild(svg("text", { x: x + bw / 2, y: h + 14, "text-anchor": "middle" }, labels[i]));
    if (v > 0 && n <= 24) g.appendChild(svg("text", { x: x + bw / 2, y: h - bh - 3, "text-anchor": "middle" }, num(v)));
  });
  return g;
}

// Horizontal bars for named counts.
function hbars(name, rows, key, valueKey) {
  const top = rows.slice(0, 15);
  const w = 560, rh = 20, lw = 200;
  const max = Math.max(1, ...top.map((r) => r[valueKey]));
  const g = svg("svg", { viewBox: `0 0 ${w} ${top.length * rh + 4}`, width: "100%", "data-chart": name, role: "img" });
  top.forEach((r, i) => {
    const bw = (w - lw - 60) * r[valueKey] / max;
    g.appendChild(svg("text", { x: lw - 6, y: i * rh + 14, "text-anchor": "end" }, String(r[key]).slice(0, 32)));
    g.appendChild(svg("rect", { class: "bar", x: lw, y: i * rh + 3, width: Math.max(1, bw), height: rh - 6 }));
    g.appendChild(svg("text", { x: lw + bw + 4, y: i * rh + 14 }, num(r[valueKey])));
  });
  return g;
}

// ---------------------------------------------------------------- data

// The query of the route (`#/page?k=v`): the filters, and a page's own
// switches, so a live redraw and a link keep them.
const hashQuery = () => new URLSearchParams(location.hash.split("?")[1] || "");

function currentFilter() {
  const q = hashQuery();
  const f = {};
  for (const k of ["from", "to", "host", "cwd"]) if (q.get(k)) f[k] = q.get(k);
  return f;
}

async function api(path, filtered) {
  if (REPORT) {
    if (!(path in REPORT)) throw new Error("not in this report (it holds the busiest functions and newest sessions)");
    return REPORT[path];
  }
  const q = filtered ? new URLSearchParams(currentFilter()).toString() : "";
  const res = await fetch(path + (q ? "?" + q : ""), { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

// ---------------------------------------------------------------- views

const VIEWS = {
  "": async () => {
    const o = await api("/api/overview", true);
    const t = o.totals;
    const days = fillDays(o.days, { calls: 0, call_errors: 0, tool_uses: 0, mean_duration_ms: null, p95_duration_ms: null });
    const xs = days.map((d) => dayEpoch(d.day));
    return [
      el("h1", {}, "Overview"),
      el("div", { class: "cards" },
        card("events", "events", t.events), card("sessions", "sessions", t.sessions),
        card("tool_uses", "tool uses", t.tool_uses), card("calls", "registry calls", t.calls),
        card("error_rate", "call error rate", o.error_rate, pct),
        card("tool_error_rate", "tool error rate", o.tool_error_rate, pct),
        card("violations", "violations", t.violations), card("quarantined", "quarantined lines", t.quarantined)),
      el("div", { class: "grid2" },
        panel("Calls and tool uses per day", timeChart("activity", xs, [
          { label: "tool uses", values: days.map((d) => d.tool_uses), fill: true },
          { label: "registry calls", values: days.map((d) => d.calls), fill: true },
        ])),
        panel("Error rate and p95 duration per day", timeChart("quality", xs, [
          { label: "error rate %", values: days.map((d) => d.calls ? 100 * d.call_errors / d.calls : null) },
          { label: "p95 ms", values: days.map((d) => d.p95_duration_ms), scale: "r" },
        ])),
        panel("Session health (score 0–100)", healthBars(o.health))),
    ];
  },

  async functions() {
    const f = await api("/api/functions", true);
    const q = new URLSearchParams(currentFilter()).toString();
    return [
      el("h1", {}, "Functions"),
      el("p", {}, el("a", { href: "/api/functions.csv" + (q ? "?" + q : ""), download: "function_stats.csv" }, "function_stats as CSV"),
        " · ", el("a", { href: "/api/functions" + (q ? "?" + q : "") }, "as JSON")),
      panel(null, table("functions", f.functions, [
        ["function_id", "function", null, (v) => link("functions", v)],
        ["calls_total", "calls"], ["calls_in_range", "in range"], ["calls_24h", "24 h"], ["calls_7d", "7 d"],
        ["errors_total", "errors"], ["error_rate", "error rate", pct],
        ["p95_duration_ms", "p95", ms], ["mean_duration_ms", "mean", ms],
        ["tests_total", "tests"], ["test_fail_rate", "test fails", pct], ["e2e_total", "e2e"],
        ["writes_count", "writes"], ["violations_caused", "violations"], ["consumer_apps_count", "apps"],
        ["last_used_at", "last used", when],
      ])),
      el("h2", {}, "Orphans (in the registry, never called)"),
      f.orphans === null ? empty("no registry configured (--registry)") :
        f.orphans.length === 0 ? empty("none: every registry function was called") :
          el("ul", { "data-list": "orphans" }, f.orphans.map((id) => el("li", {}, id))),
    ];
  },

  async function(id) {
    const d = await api("/api/functions/" + encodeURIComponent(id));
    const s = d.stats[0] || {};
    const days = fillDays(d.days, { calls: 0, errors: 0, mean_duration_ms: null });
    const xs = days.map((r) => dayEpoch(r.day));
    return [
      el("h1", {}, id),
      el("div", { class: "cards" },
        card("calls_total", "calls", s.calls_total), card("errors_total", "errors", s.errors_total),
        card("error_rate", "error rate", s.error_rate, pct), card("p95_duration_ms", "p95", s.p95_duration_ms, ms),
        card("mean_duration_ms", "mean", s.mean_duration_ms, ms), card("tests_total", "test runs", s.tests_total),
        card("e2e_total", "e2e runs", s.e2e_total), card("writes_count", "writes", s.writes_count)),
      el("div", { class: "grid2" },
        panel("Calls over time", timeChart("calls", xs, [
          { label: "calls", values: days.map((r) => r.calls), fill: true },
          { label: "errors", values: days.map((r) => r.errors) },
        ])),
        panel("Duration histogram", durationBars(d.durations)),
        panel("Errors by class", table("errors", d.errors, [["error_class", "class"], ["calls", "calls"]])),
        panel("Sequences it belongs to", d.sequences.length ? table("sequences", d.sequences, seqCols()) : empty("none mined yet"))),
      el("div", { class: "grid2" },
        panel("Tests", table("tests", d.tests, [["test_id", "test"], ["runs", "runs"], ["failed", "failed"], ["last_ts", "last", when]])),
        panel("End-to-end runs", table("e2e", d.e2e, [["app_id", "app"], ["runs", "runs"], ["failed", "failed"], ["last_ts", "last", when]])),
        panel("Writes", table("writes", d.writes, [["file_path", "file"], ["writes", "writes"], ["lines_added", "+"], ["lines_removed", "−"], ["last_ts", "last", when]])),
        panel("Versions", table("versions", d.versions, [["version", "version"], ["source", "source"], ["content_hash", "hash", (v) => v ? v.slice(0, 12) : "—"], ["seen_at", "seen", when]]))),
    ];
  },

  async tools() {
    const t = await api("/api/tools", true);
    const q = new URLSearchParams(currentFilter()).toString();
    const cols = [
      ["uses", "uses"], ["uses_in_range", "in range"], ["uses_24h", "24 h"], ["failures", "failures"],
      ["error_rate", "error rate", pct], ["interrupts", "interrupts"], ["p95_duration_ms", "p95", ms],
      ["mean_duration_ms", "mean", ms], ["sessions", "sessions"], ["last_used_at", "last used", when],
    ];
    return [
      el("h1", {}, "Tools"),
      el("p", {}, el("a", { href: "/api/tools.csv" + (q ? "?" + q : ""), download: "tool_stats.csv" }, "tool_stats as CSV")),
      panel("Uses by tool", hbars("tools", t.tools, "tool_name", "uses")),
      panel("tool_stats", table("tools", t.tools, [["tool_name", "tool"], ...cols])),
      panel("MCP servers", table("servers", t.servers, [["server", "server"], ...cols])),
    ];
  },

  async sessions() {
    const s = await api("/api/sessions", true);
    fillFilterChoices(s);
    return [
      el("h1", {}, "Sessions"),
      el("div", { class: "cards" }, card("matching", "sessions matching", s.matching)),
      panel(`Newest ${Math.min(s.matching, s.sessions.length)} of ${num(s.matching)}`, table("sessions", s.sessions, [
        ["session_id", "session", null, (v) => link("sessions", v)], ["started_at", "started", when],
        ["host", "host"], ["cwd", "cwd"], ["health_score", "health", (v) => v === null ? "—" : v.toFixed(0)],
        ["mcp_ratio", "MCP share", pct], ["tool_uses", "tool uses"], ["tool_failures", "failures"],
        ["calls", "calls"], ["prompts", "prompts"], ["subagents", "subagents"], ["model", "model"],
      ])),
    ];
  },

  async session(id) {
    const d = await api("/api/sessions/" + encodeURIComponent(id));
    const s = d.session[0] || {};
    return [
      el("h1", {}, "Session " + id),
      el("div", { class: "cards" },
        card("tool_uses", "tool uses", s.tool_uses), card("tool_failures", "failures", s.tool_failures),
        card("health_score", "health", s.health_score), card("mcp_ratio", "MCP share", s.mcp_ratio, pct),
        card("prompts", "prompts", s.prompts), card("subagents", "subagents", s.subagents)),
      el("p", { class: "note" }, `${s.host || "unknown host"} · ${s.cwd || ""} · ${when(s.started_at)} → ${when(s.ended_at)} · ${s.model || ""}`),
      panel("Timeline of tool uses", timeline(d.timeline)),
      el("div", { class: "grid2" },
        panel("Registry calls", table("calls", d.calls, [["ts", "at", when], ["function_id", "function", null, (v) => v ? link("functions", v) : "—"],
          ["tool_used", "via"], ["duration_ms", "duration", ms], ["success", "ok", okPill], ["error_class", "error"]])),
        panel("Subagents", table("subagents", d.subagents, [["agent_id", "agent"], ["agent_type", "type"], ["tool_uses", "tool uses"], ["first_ts", "from", when], ["last_ts", "to", when]])),
        panel("Violations", table("violations", d.violations, [["ts", "at", when], ["rule_id", "rule"], ["severity", "severity", severityPill], ["function_id", "function"]]))),
    ];
  },

  async patterns() {
    const p = await api("/api/patterns");
    return [
      el("h1", {}, "Heredoc patterns"),
      el("p", { class: "note" }, "Redacted skeletons of heredoc code (identifiers and literals replaced), refreshed by `call_monitor patterns` or the daemon's insight pass."),
      panel(null, table("patterns", p, [["sessions", "sessions"], ["occurrences", "occurrences"], ["first_seen", "first", when], ["last_seen", "last", when],
        ["skeleton", "skeleton", null, (v) => el("code", {}, v ? v.slice(0, 160) : "—")], ["pattern_hash", "hash", (v) => v.slice(0, 12)]])),
    ];
  },

  async sequences() {
    const s = await api("/api/sequences");
    if (!s.mined) return [el("h1", {}, "Sequences"), empty("mining… (the first pass starts with the server)")];
    const det = s.mined.detection;
    const proposedCount = det.sequences.filter((q) => q.verdict === "proposed").length;
    const only = proposedCount > 0 && hashQuery().get("only") === "proposed";
    const shown = [...det.sequences].filter((q) => !only || q.verdict === "proposed")
      .sort((a, b) => (b.proposed - a.proposed) || (b.support - a.support));
    return [
      el("h1", {}, "Sequences"),
      el("p", { class: "note" }, `${num(s.mined.total === undefined ? det.sequences.length : s.mined.total)} sequences (the ${det.sequences.length} most telling listed) with support ≥ ${det.min_support} over ${num(det.sessions)} sessions; mined ${when(s.mined.mined_at)}. Proposed: significant at q ≤ ${det.fdr} with lift ≥ ${det.min_lift} (or excess ≥ ${det.min_excess} of sessions).`),
      proposedOnlyToggle(proposedCount, only),
      panel(`Graph of the top ${only ? "proposed " : ""}sequences (edge width: support; dark: in a proposed sequence)`, sequenceGraph(shown.slice(0, 25))),
      panel(null, table("sequences", shown, seqCols())),
    ];
  },

  async proposals() {
    const p = await api("/api/proposals");
    if (p.registry === null) return [el("h1", {}, "Proposals"), empty("no registry configured (--registry): proposals live in registry.db")];
    return [
      el("h1", {}, "Proposals"),
      p.error ? el("div", { class: "error" }, p.error) : null,
      panel(null, table("proposals", p.proposals, [["id", "id"], ["kind", "kind"], ["title", "title"], ["status", "status"], ["created_at", "created", when],
        ["evidence", "evidence", null, (v) => el("details", {}, el("summary", {}, "evidence"), el("pre", {}, prettyJson(v)))]])),
    ];
  },

  async violations() {
    const v = await api("/api/violations", true);
    const days = fillDays(v.days, { violations: 0 });
    return [
      el("h1", {}, "Violations"),
      panel("Per day", timeChart("violations", days.map((d) => dayEpoch(d.day)), [{ label: "violations", values: days.map((d) => d.violations), fill: true, bars: true }])),
      el("div", { class: "grid2" },
        panel("By rule", table("rules", v.rules, [["rule_id", "rule"], ["severity", "severity", severityPill], ["count", "count"], ["sessions", "sessions"], ["last_ts", "last", when]])),
        panel("Newest", table("recent", v.recent, [["ts", "at", when], ["rule_id", "rule"], ["severity", "severity", severityPill],
          ["function_id", "function"], ["session_id", "session", null, (x) => link("sessions", x)]]))),
    ];
  },

  async quarantine() {
    const q = await api("/api/quarantine");
    return [
      el("h1", {}, "Quarantine"),
      el("p", { class: "note" }, "Lines the daemon could not read, kept aside (never their text here): where they are and why."),
      el("div", { class: "cards" }, card("quarantined", "quarantined lines", q.total)),
      panel(null, table("quarantine", q.lines, [["ts", "at", when], ["file", "file"], ["offset", "offset"], ["length", "bytes"], ["reason", "reason"], ["sha256", "sha256", (v) => v.slice(0, 16)]])),
    ];
  },

  async pipeline() {
    const p = await api("/api/pipeline");
    const hours = [...new Set(p.hours.map((r) => r.hour))].sort();
    const hosts = [...new Set(p.hours.map((r) => r.host))].sort();
    const xs = hours.map((h) => Date.parse(h.replace(/Z$/, ":00Z")) / 1000);
    const series = hosts.map((host) => ({
      label: host, values: hours.map((h) => { const r = p.hours.find((x) => x.hour === h && x.host === host); return r ? r.tool_uses : 0; }),
    }));
    const daemon = p.daemon || {};
    return [
      el("h1", {}, "Pipeline health"),
      el("div", { class: "cards" },
        card("last_commit", "last commit", p.last_commit, when),
        card("backlog_bytes", "spool bytes not yet ingested", p.backlog ? p.backlog.bytes : null, bytes),
        card("files_behind", "spool files behind", p.backlog ? p.backlog.files_behind : null),
        card("daemon_state", "daemon", daemon.state || "no state note", String),
        card("retry_in_ms", "daemon retries in", daemon.retry_in_ms, ms)),
      daemon.last_error ? el("div", { class: "error" }, "daemon: " + daemon.last_error) : null,
      panel("Tool uses per hour by host (last 24 h)", timeChart("hours", xs, series, { pad: 3600 })),
      panel("Hook events", table("events", p.events, [["hook_event_name", "event"], ["events", "events"], ["last_ts", "last", when]])),
    ];
  },
};

function healthBars(rows) {
  const counts = Array(10).fill(0);
  for (const r of rows) counts[r.lo / 10] = r.sessions;
  if (!rows.length) return empty("no session has a health score yet");
  return bars("health", counts.map((_, i) => `${i * 10}`), counts, { bad: (i) => i < 5 });
}

// Durations re-binned on a log scale (1 ms … hours), so a long tail and a
// fast mode both show.
function durationBars(rows) {
  if (!rows.length) return empty("no durations recorded");
  const edges = [0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000, Infinity];
  const counts = Array(edges.length - 1).fill(0);
  for (const r of rows) {
    const i = edges.findIndex((e, j) => r.ms >= e && r.ms < edges[j + 1]);
    if (i >= 0) counts[i] += r.calls;
  }
  const labels = edges.slice(0, -1).map((e) => e >= 1000 ? e / 1000 + "s" : e + "ms");
  return bars("durations", labels, counts);
}

// Why a mined sequence is proposed or not (`sequences::Verdict`).
const VERDICTS = {
  proposed: "worth a new_pipeline proposal",
  weak: "not common enough beyond chance to be a pipeline (lift and excess below the thresholds)",
  chance: "common enough, but chance may explain it (q above the false discovery rate)",
  in_triple: "part of a proposed triple, with nothing significant beyond it",
};

function seqCols() {
  return [
    ["functions", "sequence", null, (v) => v.join(" → ")], ["support", "support"], ["occurrences", "occurrences"],
    ["expected", "expected", (v) => v.toFixed(1)], ["lift", "lift", (v) => v.toFixed(2)],
    ["p", "p", (v) => v.toExponential(1)], ["q", "q", (v) => v.toFixed(3)],
    ["verdict", "verdict", null, (v) => el("span", { class: "pill" + (v === "proposed" ? " yes" : ""), title: VERDICTS[v] || "" }, v.replace("_", " "))],
  ];
}

// The sequences page's "only the proposed" switch; none when nothing is
// proposed (it would empty the page).
function proposedOnlyToggle(proposedCount, only) {
  if (!proposedCount) return el("p", { class: "note", "data-proposed-only": "none" }, "No sequence is proposed: each one listed is weak (too little lift) or could be chance.");
  const box = el("input", { type: "checkbox", name: "proposed-only", checked: only, on: {
    change: () => { location.hash = "#/sequences" + (box.checked ? "?only=proposed" : ""); },
  } });
  return el("label", { class: "toggle" }, box, ` only the ${num(proposedCount)} proposed`);
}

const nodeLabel = (n) => n.length > 28 ? n.slice(0, 27) + "…" : n;
const nodeWidth = (n) => 8 + nodeLabel(n).length * 6.4;
const NODE_HEIGHT = 22, GRAPH_WIDTH = 760;
// Taller as the nodes grow, so the ellipse has room for them; a handful
// (one proposed triple) needs no more than a strip.
const graphHeight = (nodes) => Math.max(nodes.length <= 6 ? 260 : 460, 30 * Math.ceil(nodes.length / 2) + 60);

// Node centres on an ellipse as wide as the widest label allows, in a
// spread order, then boxes that still overlap (neighbours near the top and
// bottom, where the ellipse runs flat) pushed apart vertically, a few
// passes.
function graphLayout(nodes) {
  const w = GRAPH_WIDTH, h = graphHeight(nodes);
  const widest = Math.max(...nodes.map(nodeWidth));
  const rx = Math.max(60, w / 2 - widest / 2 - 8), ry = h / 2 - NODE_HEIGHT;
  // Nodes seen together (a sequence's functions come in a row) are spread
  // a third of the way round from each other: neighbours on the ellipse
  // would draw their edge as a stub between touching boxes.
  const gcd = (a, b) => b ? gcd(b, a % b) : a;
  let step = Math.max(1, Math.round(nodes.length / 3));
  while (gcd(step, nodes.length) !== 1) step++;
  const at = nodes.map((n, i) => {
    const a = 2 * Math.PI * (i * step % nodes.length) / nodes.length - Math.PI / 2;
    return [w / 2 + rx * Math.cos(a), h / 2 + ry * Math.sin(a)];
  });
  const gap = NODE_HEIGHT + 4;
  for (let pass = 0; pass < 60; pass++) {
    let moved = false;
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
      const [a, b] = [at[i], at[j]];
      const dy = b[1] - a[1];
      if (Math.abs(b[0] - a[0]) >= (nodeWidth(nodes[i]) + nodeWidth(nodes[j])) / 2 + 4 || Math.abs(dy) >= gap) continue;
      const push = (gap - Math.abs(dy)) / 2 + 0.5, up = dy > 0 || (dy === 0 && a[1] < h / 2) ? -1 : 1;
      a[1] = Math.min(h - NODE_HEIGHT / 2, Math.max(NODE_HEIGHT / 2, a[1] + up * push));
      b[1] = Math.min(h - NODE_HEIGHT / 2, Math.max(NODE_HEIGHT / 2, b[1] - up * push));
      moved = true;
    }
    if (!moved) break;
  }
  return new Map(nodes.map((n, i) => [n, at[i]]));
}

// Functions as nodes on an ellipse; an edge per consecutive pair in the
// sequences shown, as wide as the support it carries, dark when a
// proposed sequence runs along it.
function sequenceGraph(seqs) {
  if (!seqs.length) return empty("no sequences");
  const edges = new Map(), proposed = new Set();
  for (const s of seqs) for (let i = 0; i + 1 < s.functions.length; i++) {
    const key = s.functions[i] + "\u0000" + s.functions[i + 1];
    edges.set(key, Math.max(edges.get(key) || 0, s.support));
    if (s.verdict === "proposed") proposed.add(key);
  }
  const nodes = [...new Set(seqs.flatMap((s) => s.functions))];
  const pos = graphLayout(nodes);
  const w = GRAPH_WIDTH, h = graphHeight(nodes);
  const maxSupport = Math.max(...edges.values());
  const g = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: "100%", "data-chart": "sequence-graph", role: "img" },
    svg("defs", {}, ...[["arrow", "#8aa4d6"], ["arrow-proposed", "#2458c6"]].map(([id, fill]) =>
      svg("marker", { id, viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 10, markerHeight: 10, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill })))));
  for (const [key, support] of edges) {
    const [a, b] = key.split("\u0000");
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    const dx = x2 - x1, dy = y2 - y1;
    // From the edge of one box to the edge of the other, so the arrow
    // head shows whatever the label's width.
    const out = (n) => dx || dy ? Math.min((nodeWidth(n) / 2 + 2) / Math.abs(dx), (NODE_HEIGHT / 2 + 2) / Math.abs(dy)) : 0;
    const from = out(a), to = out(b);
    const inProposed = proposed.has(key);
    g.appendChild(svg("line", { class: "edge" + (inProposed ? " proposed" : ""), x1: x1 + dx * from, y1: y1 + dy * from, x2: x2 - dx * to, y2: y2 - dy * to,
      "stroke-width": 1 + 5 * support / maxSupport, "marker-end": `url(#${inProposed ? "arrow-proposed" : "arrow"})` },
      svg("title", {}, `${a} → ${b}: support ${support}${inProposed ? ", in a proposed sequence" : ""}`)));
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n);
    const label = nodeLabel(n), width = nodeWidth(n);
    g.appendChild(svg("g", { class: "node" },
      svg("rect", { x: x - width / 2, y: y - NODE_HEIGHT / 2, width, height: NODE_HEIGHT, rx: 6 }),
      svg("text", { x, y: y + 4, "text-anchor": "middle" }, label), svg("title", {}, n)));
  }
  return g;
}

// One lane per tool; each use a mark from its start for its duration.
function timeline(rows) {
  if (!rows.length) return empty("no tool uses recorded");
  const t = rows.map((r) => Date.parse(r.ts));
  const t0 = Math.min(...t), t1 = Math.max(...rows.map((r, i) => t[i] + (r.duration_ms || 0)), t0 + 1000);
  const tools = [...new Set(rows.map((r) => r.tool_name))];
  const w = 1000, lw = 170, lane = 18, h = tools.length * lane + 24;
  const x = (ms) => lw + (w - lw - 10) * (ms - t0) / (t1 - t0);
  const g = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: "100%", "data-chart": "timeline", role: "img" });
  tools.forEach((tool, i) => g.appendChild(svg("text", { x: lw - 6, y: i * lane + 13, "text-anchor": "end" }, tool.slice(0, 28))));
  rows.forEach((r, i) => {
    const lane_i = tools.indexOf(r.tool_name);
    const cls = r.success === 0 || r.interrupted ? "use fail" : r.success === null ? "use open" : "use";
    g.appendChild(svg("rect", { class: cls, x: x(t[i]), y: lane_i * lane + 3, width: Math.max(2, x(t[i] + (r.duration_ms || 0)) - x(t[i])), height: lane - 6 },
      svg("title", {}, `${r.tool_name} at ${when(r.ts)}, ${ms(r.duration_ms)}${r.agent_id ? ", agent " + r.agent_id : ""}`)));
  });
  g.appendChild(svg("text", { x: lw, y: h - 4 }, when(new Date(t0).toISOString())));
  g.appendChild(svg("text", { x: w - 10, y: h - 4, "text-anchor": "end" }, when(new Date(t1).toISOString())));
  return g;
}

function okPill(v) { return el("span", { class: "pill" + (v === 0 ? " error" : v === 1 ? " yes" : "") }, v === 1 ? "ok" : v === 0 ? "failed" : "open"); }
function severityPill(v) { return el("span", { class: "pill " + v }, v); }
function prettyJson(text) { try { return JSON.stringify(JSON.parse(text), null, 2); } catch (_) { return String(text); } }

// ---------------------------------------------------------------- routing

function route() {
  const path = location.hash.replace(/^#\/?/, "").split("?")[0];
  const [page, ...rest] = path.split("/");
  const id = rest.length ? decodeURIComponent(rest.join("/")) : null;
  return { page, id };
}

let rendering = 0;
async function render() {
  const { page, id } = route();
  const mine = ++rendering;
  const view = id !== null ? (page === "functions" ? VIEWS.function : page === "sessions" ? VIEWS.session : null) : VIEWS[page];
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("on", a.dataset.page === page));
  const filters = document.getElementById("filters");
  filters.classList.toggle("hidden", REPORT !== null || id !== null || !FILTERED.has(page));
  syncFilterForm();
  const main = document.getElementById("view");
  let content;
  try {
    content = view ? await view(id) : [el("h1", {}, "Not found"), empty("no such page")];
  } catch (e) {
    content = [el("h1", {}, page || "overview"), el("div", { class: "error", "data-error": "1" }, String(e.message || e))];
  }
  if (mine !== rendering) return; // a newer render started meanwhile
  const scroll = window.scrollY;
  main.replaceChildren(...content.flat().filter(Boolean));
  main.dataset.rendered = String(mine);
  window.scrollTo(0, scroll);
}

function syncFilterForm() {
  const f = currentFilter();
  const form = document.getElementById("filters");
  for (const k of ["from", "to", "host", "cwd"]) form.elements[k].value = f[k] || "";
}

async function fillFilterChoices(s) {
  const host = document.querySelector("#filters select[name=host]");
  const keep = host.value;
  host.replaceChildren(el("option", { value: "" }, "any"), ...s.hosts.map((h) => el("option", { value: h.host }, `${h.host} (${h.sessions})`)));
  host.value = keep;
  document.getElementById("cwds").replaceChildren(...s.cwds.map((c) => el("option", { value: c.cwd })));
}

function setUp() {
  document.getElementById("nav").replaceChildren(...PAGES.map(([page, label]) =>
    el("a", { href: "#/" + page, "data-page": page }, label)));
  const form = document.getElementById("filters");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const k of ["from", "to", "host", "cwd"]) if (form.elements[k].value) q.set(k, form.elements[k].value);
    const base = location.hash.split("?")[0] || "#/";
    location.hash = base + (q.toString() ? "?" + q : "");
  });
  form.addEventListener("reset", (e) => { e.preventDefault(); location.hash = location.hash.split("?")[0] || "#/"; });
  window.addEventListener("hashchange", render);
  if (!REPORT) {
    api("/api/sessions").then(fillFilterChoices).catch(() => {});
    connectLive();
  } else {
    const live = document.getElementById("live");
    live.textContent = "report";
    document.getElementById("foot").textContent = "A call_monitor report: the dashboard's views at the time it was written; details for the busiest functions and newest sessions only.";
  }
  render();
}

// Live updates: the server sends `change` after each commit it sees; the
// current view is drawn again (at most every half second).
function connectLive() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/live");
  let timer = null;
  source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
  source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
  source.addEventListener("change", () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; render(); }, 500);
  });
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
else setUp();

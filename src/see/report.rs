//! `call_monitor report --html FILE`: the dashboard's views in one HTML
//! file, its script, style and data inline, to attach to an issue or a CI
//! run. The page is the dashboard's own script, reading its answers from
//! the embedded data instead of `/api/`: the same views, without filters
//! or live updates. Details are included for the busiest functions and
//! the newest sessions ([`DETAILS`] each).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::Value;

use super::assets;
use super::views::{self, Filter, Mined, PipelineSources, SEQUENCES_SHOWN};
use crate::store::{self, OpenError};

/// Function and session details in a report.
pub const DETAILS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot read the database: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Debug)]
pub struct Reported {
    pub path: PathBuf,
    pub bytes: usize,
    pub views: usize,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "report written to {} ({} views, {} KiB)",
            self.path.display(),
            self.views,
            self.bytes / 1024
        )
    }
}

/// Renders every view of `db` into `out` (written whole through a
/// temporary file, then renamed: never a half report).
pub fn write_report(
    db: &Path,
    registry: Option<&Path>,
    spool: Option<&Path>,
    out: &Path,
) -> Result<Reported, ReportError> {
    let conn = store::open_read_only(db)?;
    let tx = conn.unchecked_transaction()?;
    let answers = collect(&tx, registry, spool)?;
    drop(tx);
    let views = answers.len();
    let html = render(&answers)?;
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let failed = |source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    file.write_all(html.as_bytes()).map_err(failed)?;
    file.persist(out).map_err(|e| failed(e.error))?;
    Ok(Reported {
        path: out.to_path_buf(),
        bytes: html.len(),
        views,
    })
}

/// Every answer the page may ask for, by its API path.
fn collect(
    conn: &Connection,
    registry: Option<&Path>,
    spool: Option<&Path>,
) -> Result<BTreeMap<String, Value>, ReportError> {
    let all = Filter::default();
    let mut answers = BTreeMap::new();
    let mut put = |path: String, value: Value| {
        answers.insert(path, value);
    };
    let functions = views::functions(conn, &all, registry)?;
    let mined = Mined::mine(conn)?;
    for row in 0..functions.functions.len().min(DETAILS) {
        let Some(Value::String(id)) = functions.functions.get(row, "function_id") else {
            continue;
        };
        let mut detail = views::function_detail(conn, id)?;
        detail.sequences = mined.of_function(id);
        put(api_path("functions", id), serde_json::to_value(detail)?);
    }
    let sessions = views::sessions(conn, &all)?;
    for row in 0..sessions.sessions.len().min(DETAILS) {
        if let Some(Value::String(id)) = sessions.sessions.get(row, "session_id") {
            let detail = views::session_detail(conn, id)?;
            put(api_path("sessions", id), serde_json::to_value(detail)?);
        }
    }
    let sources = PipelineSources {
        spool: spool.map(Path::to_path_buf),
    };
    put(
        "/api/overview".into(),
        serde_json::to_value(views::overview(conn, &all)?)?,
    );
    put("/api/functions".into(), serde_json::to_value(functions)?);
    put(
        "/api/tools".into(),
        serde_json::to_value(views::tools(conn, &all)?)?,
    );
    put("/api/sessions".into(), serde_json::to_value(sessions)?);
    put(
        "/api/patterns".into(),
        serde_json::to_value(views::patterns(conn)?)?,
    );
    put("/api/sequences".into(), mined.shown(SEQUENCES_SHOWN));
    put(
        "/api/proposals".into(),
        serde_json::to_value(views::proposals(registry))?,
    );
    put(
        "/api/violations".into(),
        serde_json::to_value(views::violations(conn, &all)?)?,
    );
    put(
        "/api/quarantine".into(),
        serde_json::to_value(views::quarantine(conn)?)?,
    );
    put(
        "/api/pipeline".into(),
        serde_json::to_value(views::pipeline(conn, &sources)?)?,
    );
    Ok(answers)
}

/// The path the page fetches an item at: its id percent-encoded the way
/// the script's `encodeURIComponent` does.
fn api_path(kind: &str, id: &str) -> String {
    let mut out = format!("/api/{kind}/");
    for b in id.bytes() {
        let unreserved = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        if unreserved {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The dashboard page with its assets and `answers` inline.
fn render(answers: &BTreeMap<String, Value>) -> Result<String, ReportError> {
    // In a <script> element only `</script` (or `<!--`) could end or bend
    // it: every `<` in the JSON is written as \u003c, which JSON reads back
    // as the same character.
    let data = serde_json::to_string(answers)?.replace('<', "\\u003c");
    let (start, end) = ("<!-- assets -->", "<!-- /assets -->");
    let head_end = assets::INDEX
        .find(start)
        .expect("index.html marks where its assets go");
    let body_start = assets::INDEX
        .find(end)
        .expect("index.html closes its assets")
        + end.len();
    let body = &assets::INDEX[body_start..];
    let inline = format!(
        "<style>{}</style><style>{}</style>\n<script type=\"application/json\" id=\"report-data\">{data}</script>\n<script>{}</script><script>{}</script>",
        assets::UPLOT_CSS,
        assets::APP_CSS,
        inline_script(assets::UPLOT_JS),
        inline_script(assets::APP_JS),
    );
    Ok(format!("{}{inline}{body}", &assets::INDEX[..head_end]))
}

/// A script safe inside `<script>…</script>`.
fn inline_script(js: &str) -> String {
    js.replace("</script", "<\\/script")
        .replace("<!--", "<\\!--")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_like_encode_uri_component() {
        assert_eq!(
            api_path("functions", "a b/<x>é"),
            "/api/functions/a%20b%2F%3Cx%3E%C3%A9"
        );
        assert_eq!(api_path("sessions", "s-1_2.3~"), "/api/sessions/s-1_2.3~");
    }

    #[test]
    fn data_cannot_close_its_script_element() {
        let mut answers = BTreeMap::new();
        answers.insert(
            "/api/x".to_string(),
            Value::String("</script><script>alert(1)</script>".into()),
        );
        let html = render(&answers).unwrap();
        assert!(!html.contains("</script><script>alert(1)"));
        assert!(html.contains("\\u003c/script>"));
    }
}

//! Hostile input end to end: every kind of malformed line in `fixtures/bad/`
//! (plus two generated ones too large to commit) goes through a real daemon.
//! Each is quarantined raw, each good neighbour is ingested, nothing panics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::*;

/// One fixture: a good line, the bad line, a good line.
struct Kind {
    name: String,
    content: Vec<u8>,
    /// Where the bad line starts and its bytes (without `\n`).
    bad_offset: usize,
    bad: Vec<u8>,
}

impl Kind {
    fn from_fixture(path: &Path) -> Kind {
        let content = std::fs::read(path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let first = content.iter().position(|&b| b == b'\n').unwrap() + 1;
        let last = content[..content.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap();
        assert!(first <= last, "{name}: one bad line between two good ones");
        Kind {
            bad: content[first..last].to_vec(),
            bad_offset: first,
            name,
            content,
        }
    }

    /// A kind built here: `bad` between two good neighbours.
    fn generated(name: &str, bad: Vec<u8>) -> Kind {
        let before = good_line(name, "before");
        let mut content = before.clone().into_bytes();
        content.extend_from_slice(&bad);
        content.push(b'\n');
        content.extend_from_slice(good_line(name, "after").as_bytes());
        Kind {
            name: name.to_string(),
            content,
            bad_offset: before.len(),
            bad,
        }
    }
}

/// The neighbours' shape, as in the committed fixtures.
fn good_line(kind: &str, which: &str) -> String {
    let id = format!("bad-{kind}-{which}");
    let event = serde_json::json!({
        "session_id": "bad-fixtures", "hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_use_id": id, "command": "fn run csv_read_py_data", "duration_ms": 5
    });
    let envelope = serde_json::json!({"v": 1, "id": id, "ts": "2026-11-24T10:00:00.000Z", "host": "fixture", "event": event});
    format!("{envelope}\n")
}

fn fixtures() -> Vec<Kind> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad");
    let mut kinds: Vec<Kind> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| Kind::from_fixture(&p))
        .collect();
    let pad = "a".repeat(10 * 1024 * 1024);
    kinds.push(Kind::generated(
        "ten_megabyte_line",
        format!(r#"{{"v":1,"id":"big","ts":"2026-11-24T10:00:00.000Z","event":{{"hook_event_name":"Stop","pad":"{pad}"}}}}"#)
            .into_bytes(),
    ));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    kinds.push(Kind::generated(
        "nesting_100k_deep_in_event",
        format!(r#"{{"v":1,"id":"deep","ts":"2026-11-24T10:00:00.000Z","event":{{"hook_event_name":"Stop","deep":{deep}}}}}"#)
            .into_bytes(),
    ));
    kinds
}

#[test]
fn every_kind_of_bad_line_is_quarantined_and_its_neighbours_ingested() {
    let kinds = fixtures();
    assert!(
        kinds.len() >= 32,
        "fixtures/bad holds {} kinds",
        kinds.len()
    );
    let scratch = Scratch::new();
    std::fs::create_dir(scratch.spool()).unwrap();
    std::fs::set_permissions(
        scratch.spool(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    for kind in &kinds {
        std::fs::write(
            scratch.spool().join(format!("{}.jsonl", kind.name)),
            &kind.content,
        )
        .unwrap();
    }
    let daemon = Daemon::start(&scratch, &["--quiet-period", "0s"]);
    wait_until(
        "every fixture to be consumed and deleted",
        Duration::from_secs(120),
        || spool_files(&scratch.spool()).is_empty(),
    );
    let (code, stderr) = daemon.terminate();
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let conn = scratch.read();
    let mut stmt = conn
        .prepare("SELECT file, offset, length, sha256, reason FROM quarantine")
        .unwrap();
    let rows: BTreeMap<String, (usize, usize, String, String)> = stmt
        .query_map([], |r| {
            let file: String = r.get(0)?;
            let name = Path::new(&file).file_stem().unwrap().to_string_lossy();
            Ok((
                name.into_owned(),
                (
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, i64>(2)? as usize,
                    r.get(3)?,
                    r.get(4)?,
                ),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for kind in &kinds {
        let Some((offset, length, sha, reason)) = rows.get(&kind.name) else {
            panic!("{}: not quarantined", kind.name);
        };
        assert_eq!(
            (*offset, *length),
            (kind.bad_offset, kind.bad.len() + 1),
            "{}",
            kind.name
        );
        assert_eq!(
            *sha,
            hex::encode(Sha256::digest(&kind.bad)),
            "{}",
            kind.name
        );
        let kept = scratch
            .spool()
            .join("quarantine")
            .join(format!("{sha}.line"));
        assert!(
            std::fs::read(&kept).unwrap() == kind.bad,
            "{}: raw bytes kept",
            kind.name
        );
        assert!(!reason.is_empty(), "{}", kind.name);
    }
    assert_eq!(rows.len(), kinds.len(), "one quarantine row per kind");
    let good = 2 * kinds.len() as i64;
    assert_eq!(scratch.count("SELECT COUNT(*) FROM events"), good);
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM events WHERE envelope_id LIKE 'bad-%-before' OR envelope_id LIKE 'bad-%-after'"),
        good
    );
    assert_eq!(
        scratch.count("SELECT COUNT(*) FROM calls WHERE function_id = 'csv_read_py_data'"),
        good,
        "every neighbour classified"
    );
}

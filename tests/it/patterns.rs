//! Heredoc clustering on a labelled fixture (`fixtures/patterns/`: one
//! directory per family of near-duplicate heredocs — renamed variables,
//! changed literals, reordered imports, added comments, small edits — and
//! `singletons/`, each its own family), end to end: envelopes replayed by
//! the binary, `patterns` run, membership read back from `patterns`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rusqlite::Connection;

use crate::support::{succeed, Scratch};

/// (session id, family) of every fixture heredoc, after writing them all
/// as one spool file of PreToolUse Bash envelopes, each in its own session.
fn spool_fixture(scratch: &Scratch) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/patterns");
    let mut labelled = Vec::new();
    let mut lines = String::new();
    let mut families: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    families.sort();
    for family_dir in families {
        let family = family_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&family_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            let body = std::fs::read_to_string(&file).unwrap();
            let interpreter = match file.extension().unwrap().to_str().unwrap() {
                "py" => "python3 -",
                "sh" => "bash",
                "js" => "node",
                other => panic!("no interpreter for .{other}"),
            };
            let label = if family == "singletons" {
                format!("single-{stem}")
            } else {
                family.clone()
            };
            let session = format!("pat-{family}-{stem}");
            let n = labelled.len();
            let event = serde_json::json!({
                "session_id": session, "hook_event_name": "PreToolUse", "tool_name": "Bash",
                "tool_use_id": format!("toolu_pat_{n}"),
                "command": format!("{interpreter} <<'EOF'\n{body}EOF"),
            });
            let envelope = serde_json::json!({"v": 1, "id": format!("pat-{n}"),
                "ts": format!("2026-11-20T10:{:02}:00.000Z", n % 60), "host": "t", "event": event});
            lines.push_str(&format!("{envelope}\n"));
            labelled.push((session, label));
        }
    }
    let file = scratch.dir.path().join("patterns.jsonl");
    std::fs::write(&file, lines).unwrap();
    succeed(&mut scratch.cmd(&["replay", file.to_str().unwrap()]));
    labelled
}

/// Session → cluster, from the `patterns` table (a heredoc in no pattern is
/// a cluster of its own).
fn clusters(conn: &Connection) -> BTreeMap<String, String> {
    let mut stmt = conn
        .prepare("SELECT pattern_hash, session_ids FROM patterns")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    let mut of = BTreeMap::new();
    for row in rows {
        let (hash, sessions) = row.unwrap();
        for s in serde_json::from_str::<Vec<String>>(&sessions).unwrap() {
            assert!(
                of.insert(s, hash.clone()).is_none(),
                "a heredoc in two patterns"
            );
        }
    }
    of
}

#[test]
fn clustering_reaches_090_pairwise_precision_and_recall() {
    let scratch = Scratch::new();
    let labelled = spool_fixture(&scratch);
    assert!(labelled.len() >= 30, "the fixture shrank");
    let report = succeed(&mut scratch.cmd(&["patterns", "--json"]));
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["heredocs"], labelled.len());

    let cluster = clusters(&scratch.read());
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for (i, (a, family_a)) in labelled.iter().enumerate() {
        for (b, family_b) in &labelled[i + 1..] {
            let together = cluster.contains_key(a) && cluster.get(a) == cluster.get(b);
            match (together, family_a == family_b) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    eprintln!("pairwise precision {precision:.3} recall {recall:.3} (tp {tp} fp {fp} fn {fn_})");
    assert!(
        precision >= 0.9,
        "precision {precision:.3} (tp {tp} fp {fp})"
    );
    assert!(recall >= 0.9, "recall {recall:.3} (tp {tp} fn {fn_})");

    // Stable: a second pass rewrites the same patterns.
    let before: BTreeSet<String> = cluster.values().cloned().collect();
    succeed(&mut scratch.cmd(&["patterns"]));
    let after: BTreeSet<String> = clusters(&scratch.read()).values().cloned().collect();
    assert_eq!(before, after);
}

#[test]
fn skeletons_hold_no_literal_and_propose_adds_each_pattern_once() {
    let scratch = Scratch::new();
    spool_fixture(&scratch);
    succeed(&mut scratch.cmd(&["patterns"]));
    let conn = scratch.read();
    let skeletons: Vec<String> = conn
        .prepare("SELECT skeleton FROM heredoc_skeletons UNION ALL SELECT skeleton FROM patterns")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for literal in [
        "orders.csv",
        "localhost",
        "country",
        "/home/dev",
        "@babel",
        "5432",
        "failed",
    ] {
        assert!(
            skeletons.iter().all(|s| !s.contains(literal)),
            "{literal} survived in a skeleton"
        );
    }

    let registry = crate::classification::fixture_registry(scratch.dir.path());
    let propose = |days: &str| {
        let mut cmd = scratch.cmd(&["propose", "--pattern-days", days]);
        cmd.arg("--registry").arg(&registry);
        succeed(&mut cmd)
    };
    // Every family was written on one day: by default (sightings must span
    // two UTC days) that is one agent repeating itself, not yet a function.
    let one_day = propose("2");
    assert!(one_day.contains("added=0"), "{one_day}");
    let first = propose("1");
    let again = propose("1");
    let reg = Connection::open(&registry).unwrap();
    let new_functions: i64 = reg
        .query_row(
            "SELECT COUNT(*) FROM proposals WHERE kind = 'new_function'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Eight families of 4-5 sessions each: one proposal per family.
    assert_eq!(new_functions, 8, "{first}");
    assert!(again.contains("added=0"), "{again}");
    let evidence: String = reg
        .query_row(
            "SELECT evidence FROM proposals WHERE kind = 'new_function' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let evidence: serde_json::Value = serde_json::from_str(&evidence).unwrap();
    assert!(evidence["sessions"].as_i64().unwrap() >= 3);
    assert!(evidence["skeleton"].as_str().unwrap().contains("ID"));
}

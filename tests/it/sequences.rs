//! Sequence mining against a brute-force oracle of CONTRACT §6, and the
//! `sequences` command end to end (JSON shape, proposals added once).

use std::collections::BTreeMap;
use std::time::Duration;

use call_monitor::insight::sequences::{self, Params};
use call_monitor::store::{Database, Missing};
use proptest::prelude::*;
use rusqlite::Connection;

use crate::support::{succeed, Scratch};

/// One generated call: session, function (None: a call without a
/// function_id), seconds after the epoch of the test.
type Call = (usize, Option<usize>, i64);

const FUNCTIONS: [&str; 4] = ["a_py_x", "b_py_x", "c_go_y", "d_sh_z"];

fn ts(seconds: i64) -> String {
    let t = chrono::DateTime::from_timestamp(1_790_000_000 + seconds, 0).unwrap();
    call_monitor::contract::timefmt::format(t)
}

/// The contract, read literally: per session sort by (ts, ingest order),
/// split on gaps over `max_gap`, collapse repeats, then test every possible
/// sequence of 2 or 3 functions against every window.
fn oracle(calls: &[Call], params: Params) -> BTreeMap<Vec<String>, (u32, u32)> {
    let max_gap = params.max_gap.as_secs() as i64;
    let mut segments_by_session: BTreeMap<usize, Vec<Vec<usize>>> = BTreeMap::new();
    let sessions: std::collections::BTreeSet<usize> = calls.iter().map(|c| c.0).collect();
    for &session in &sessions {
        let mut mine: Vec<(i64, usize, usize)> = calls
            .iter()
            .enumerate()
            .filter_map(|(id, &(s, f, t))| (s == session).then_some((t, id, f?)))
            .collect();
        mine.sort();
        let mut segments: Vec<Vec<usize>> = Vec::new();
        let mut last_t: Option<i64> = None;
        for (t, _, f) in mine {
            if last_t.is_none_or(|l| t - l > max_gap) {
                segments.push(Vec::new());
            }
            last_t = Some(t);
            let segment = segments.last_mut().unwrap();
            if segment.last() != Some(&f) {
                segment.push(f);
            }
        }
        segments_by_session.insert(session, segments);
    }
    let mut candidates: Vec<Vec<usize>> = Vec::new();
    for a in 0..FUNCTIONS.len() {
        for b in 0..FUNCTIONS.len() {
            candidates.push(vec![a, b]);
            for c in 0..FUNCTIONS.len() {
                candidates.push(vec![a, b, c]);
            }
        }
    }
    let mut found = BTreeMap::new();
    for candidate in candidates {
        let (mut support, mut occurrences) = (0u32, 0u32);
        for segments in segments_by_session.values() {
            let here: u32 = segments
                .iter()
                .map(|s| {
                    s.windows(candidate.len())
                        .filter(|w| *w == candidate.as_slice())
                        .count() as u32
                })
                .sum();
            occurrences += here;
            support += u32::from(here > 0);
        }
        if support >= params.min_support && support > 0 {
            let names = candidate
                .iter()
                .map(|&f| FUNCTIONS[f].to_string())
                .collect();
            found.insert(names, (support, occurrences));
        }
    }
    found
}

fn store(conn: &Connection, calls: &[Call]) {
    let mut insert = conn
        .prepare(
            "INSERT INTO calls (session_id, function_id, tool_used, ts) VALUES (?1, ?2, 'fn_run', ?3)",
        )
        .unwrap();
    for &(session, function, seconds) in calls {
        insert
            .execute((
                format!("sess-{session}"),
                function.map(|f| FUNCTIONS[f]),
                ts(seconds),
            ))
            .unwrap();
    }
}

fn calls_strategy() -> impl Strategy<Value = Vec<Call>> {
    // Few distinct times so that ties are common; gaps of 30 s to 25 min.
    let times = prop::sample::select(vec![0i64, 0, 30, 60, 90, 120, 700, 730, 1500, 1560]);
    let function = prop_oneof![9 => (0..FUNCTIONS.len()).prop_map(Some), 1 => Just(None)];
    prop::collection::vec((0usize..5, function, times), 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn detection_equals_the_brute_force_oracle(
        calls in calls_strategy(),
        min_support in 1u32..4,
        gap in prop::sample::select(vec![60u64, 600]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("ops.db"), Missing::Create).unwrap();
        store(db.conn(), &calls);
        let params = Params { min_support, max_gap: Duration::from_secs(gap) };
        let detection = sequences::detect(db.conn(), params).unwrap();
        let got: BTreeMap<Vec<String>, (u32, u32)> = detection
            .sequences
            .iter()
            .map(|s| (s.functions.clone(), (s.support, s.occurrences)))
            .collect();
        prop_assert_eq!(got.len(), detection.sequences.len(), "a sequence listed twice");
        prop_assert_eq!(&got, &oracle(&calls, params));
        // Report order: support, then occurrences, descending.
        let ordered = detection.sequences.windows(2).all(|w| {
            (w[0].support, w[0].occurrences) >= (w[1].support, w[1].occurrences)
        });
        prop_assert!(ordered, "not in report order");
    }
}

/// Three sessions chain a → b → c; a fourth only a → b; b → c also appears
/// after a gap in a fifth.
fn chained_calls() -> Vec<Call> {
    let mut calls = Vec::new();
    for session in 0..3 {
        calls.extend([
            (session, Some(0), 0),
            (session, Some(1), 30),
            (session, Some(2), 60),
        ]);
    }
    calls.extend([(3, Some(0), 0), (3, Some(1), 30)]);
    calls.extend([(4, Some(1), 0), (4, Some(2), 5000)]);
    calls
}

#[test]
fn sequences_command_reports_json_and_proposes_once() {
    let scratch = Scratch::new();
    succeed(&mut scratch.cmd(&["init"]));
    store(&Connection::open(scratch.db()).unwrap(), &chained_calls());

    let json: serde_json::Value = serde_json::from_str(&succeed(&mut scratch.cmd(&[
        "sequences",
        "--detect",
        "--report",
        "--json",
    ])))
    .unwrap();
    assert_eq!(
        json,
        serde_json::json!({"min_support": 3, "max_gap_s": 600, "sequences": [
            {"functions": ["a_py_x", "b_py_x"], "support": 4, "occurrences": 4},
            {"functions": ["a_py_x", "b_py_x", "c_go_y"], "support": 3, "occurrences": 3},
            {"functions": ["b_py_x", "c_go_y"], "support": 3, "occurrences": 3},
        ]})
    );

    let registry = crate::classification::fixture_registry(scratch.dir.path());
    let propose = |scratch: &Scratch| {
        let mut cmd = scratch.cmd(&["sequences", "--detect", "--propose"]);
        cmd.arg("--registry").arg(&registry);
        succeed(&mut cmd)
    };
    assert!(propose(&scratch).contains("added=2 already_present=0"));
    assert!(propose(&scratch).contains("added=0 already_present=2"));
    let conn = Connection::open(&registry).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, dedupe_key, status, json_extract(evidence, '$.support') FROM proposals ORDER BY dedupe_key")
        .unwrap();
    let rows: Vec<(String, String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // b → c has no more support than a → b → c: not proposed on its own.
    assert_eq!(
        rows,
        [
            (
                "new_pipeline".into(),
                "new_pipeline:a_py_x>b_py_x".into(),
                "open".into(),
                4
            ),
            (
                "new_pipeline".into(),
                "new_pipeline:a_py_x>b_py_x>c_go_y".into(),
                "open".into(),
                3
            ),
        ]
    );
}

#[test]
fn propose_without_a_registry_is_a_usage_error() {
    let scratch = Scratch::new();
    succeed(&mut scratch.cmd(&["init"]));
    let out = scratch.cmd(&["sequences", "--propose"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--registry"));
}

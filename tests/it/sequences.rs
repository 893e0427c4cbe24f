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
        let params = Params { min_support, max_gap: Duration::from_secs(gap), ..Params::default() };
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
    // The contract's fields, as CONTRACT §6 has them …
    let contract: Vec<serde_json::Value> = json["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::json!({"functions": s["functions"], "support": s["support"], "occurrences": s["occurrences"]}))
        .collect();
    assert_eq!(
        (&json["min_support"], &json["max_gap_s"]),
        (&serde_json::json!(3), &serde_json::json!(600))
    );
    assert_eq!(
        contract,
        [
            serde_json::json!({"functions": ["a_py_x", "b_py_x"], "support": 4, "occurrences": 4}),
            serde_json::json!({"functions": ["a_py_x", "b_py_x", "c_go_y"], "support": 3, "occurrences": 3}),
            serde_json::json!({"functions": ["b_py_x", "c_go_y"], "support": 3, "occurrences": 3}),
        ]
    );
    // … and how far chance explains each.
    for s in json["sequences"].as_array().unwrap() {
        let (expected, lift) = (s["expected"].as_f64().unwrap(), s["lift"].as_f64().unwrap());
        assert!(
            expected > 0.0 && (lift - s["support"].as_f64().unwrap() / expected).abs() < 1e-9,
            "{s}"
        );
        assert!(s["p"].as_f64().unwrap() <= s["q"].as_f64().unwrap(), "{s}");
        assert!(
            s["proposed"].is_boolean() && s["sample_sessions"].is_array(),
            "{s}"
        );
        assert_eq!(s["proposed"] == true, s["verdict"] == "proposed", "{s}");
    }
    // In five sessions of three functions, chance alone chains them
    // often (a → b in a shuffle of a, b, c: one in three): nothing is
    // worth a pipeline yet.
    assert!(proposed_in(&json).is_empty(), "{json}");

    // Thirty sessions more, of noise functions, twelve of them with
    // a → b → c: that triple is proposed, its halves (used beyond it in
    // one session at most) are not. (Which noise, if any, passes the 5 %
    // false discovery rate is chance; the generated worlds below measure
    // that. Here it is whatever the JSON says, written once.)
    store_with_noise(&Connection::open(scratch.db()).unwrap(), 30, 12);
    let json: serde_json::Value =
        serde_json::from_str(&succeed(&mut scratch.cmd(&["sequences", "--json"]))).unwrap();
    let proposed = proposed_in(&json);
    let [a, b, c] = FUNCTIONS[..3] else {
        unreachable!()
    };
    assert!(proposed.contains(&&serde_json::json!([a, b, c])), "{json}");
    assert!(!proposed.contains(&&serde_json::json!([a, b])), "{json}");
    assert!(!proposed.contains(&&serde_json::json!([b, c])), "{json}");
    // Each says why: the halves are the triple's, and so is any pair of a
    // proposed triple not proposed itself; the rest weak or chance.
    let in_a_proposed_triple = |pair: &[serde_json::Value]| {
        let triples = proposed.iter().map(|f| f.as_array().unwrap());
        pair.len() == 2
            && triples
                .filter(|t| t.len() == 3)
                .any(|t| t.windows(2).any(|w| w == pair))
    };
    for s in json["sequences"].as_array().unwrap() {
        let functions = s["functions"].as_array().unwrap().as_slice();
        let allowed: &[&str] = match functions {
            [x, y] if [x, y] == [a, b] || [x, y] == [b, c] => &["in_triple"],
            _ if s["proposed"] == true => &["proposed"],
            _ if in_a_proposed_triple(functions) => &["in_triple"],
            _ => &["weak", "chance"],
        };
        assert!(allowed.contains(&s["verdict"].as_str().unwrap()), "{s}");
    }
    let report = succeed(&mut scratch.cmd(&["sequences", "--report"]));
    let line = |sequence: &str| {
        let found = report.lines().find(|l| l.trim_end().ends_with(sequence));
        found.unwrap_or_else(|| panic!("{sequence} not in {report}"))
    };
    assert!(report.contains("verdict"), "{report}");
    assert!(
        line(&format!("{a} → {b} → {c}")).contains("proposed"),
        "{report}"
    );
    assert!(
        line(&format!(" {a} → {b}")).contains("in triple"),
        "{report}"
    );
    let mut expected_keys: Vec<String> = proposed
        .iter()
        .map(|f| {
            let names: Vec<&str> = f
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            format!("new_pipeline:{}", names.join(">"))
        })
        .collect();
    expected_keys.sort();

    let registry = crate::classification::fixture_registry(scratch.dir.path());
    let propose = |scratch: &Scratch| {
        let mut cmd = scratch.cmd(&["sequences", "--detect", "--propose"]);
        cmd.arg("--registry").arg(&registry);
        succeed(&mut cmd)
    };
    let n = expected_keys.len();
    assert!(propose(&scratch).contains(&format!("added={n} already_present=0")));
    assert!(propose(&scratch).contains(&format!("added=0 already_present={n}")));
    let conn = Connection::open(&registry).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, dedupe_key, status, json_extract(evidence, '$.support'), json_extract(evidence, '$.q') FROM proposals ORDER BY dedupe_key")
        .unwrap();
    let rows: Vec<(String, String, String, i64, f64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let keys: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(keys, expected_keys);
    assert!(rows.iter().all(|r| r.0 == "new_pipeline" && r.2 == "open"));
    let triple = rows
        .iter()
        .find(|r| r.1 == "new_pipeline:a_py_x>b_py_x>c_go_y")
        .unwrap();
    assert_eq!(triple.3, 15);
    assert!(rows.iter().all(|r| r.4 <= 0.05), "{rows:?}");
}

/// The functions of the sequences `sequences --json` proposes.
fn proposed_in(json: &serde_json::Value) -> Vec<&serde_json::Value> {
    json["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["proposed"] == true)
        .map(|s| &s["functions"])
        .collect()
}

/// `sessions` sessions of ten calls of six noise functions (a seeded
/// generator — a bare LCG's successive draws correlate, and the model
/// rightly finds the pattern), 30 s apart; the first `chained` of them
/// with a → b → c spliced in.
fn store_with_noise(conn: &Connection, sessions: usize, chained: usize) {
    let mut insert = conn
        .prepare("INSERT INTO calls (session_id, function_id, tool_used, ts) VALUES (?1, ?2, 'fn_run', ?3)")
        .unwrap();
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for session in 0..sessions {
        let mut calls: Vec<String> = (0..10)
            .map(|_| format!("n{}_py_x", rng.random_range(0..6)))
            .collect();
        if session < chained {
            let at = rng.random_range(0..=calls.len());
            let chain = FUNCTIONS[..3].iter().map(|f| f.to_string());
            calls.splice(at..at, chain);
        }
        for (i, function) in calls.iter().enumerate() {
            insert
                .execute((format!("noise-{session}"), function, ts(i as i64 * 30)))
                .unwrap();
        }
    }
}

#[test]
fn propose_without_a_registry_is_a_usage_error() {
    let scratch = Scratch::new();
    succeed(&mut scratch.cmd(&["init"]));
    let out = scratch.cmd(&["sequences", "--propose"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--registry"));
}

/// A generated world of agent sessions: `sessions` sessions of 8–30 calls
/// drawn from 24 functions with Zipf popularity (the most used function
/// ~26 % of calls, the least ~1 %), each planted pipeline spliced whole
/// into 15–30 % of the sessions at a random place. Calls are 30 s apart
/// (one segment per session). Returns the miner and what was planted.
fn world(seed: u64, sessions: usize, planted: usize) -> (sequences::Miner, Vec<Vec<String>>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let functions: Vec<String> = (0..24).map(|i| format!("f{i:02}_py_x")).collect();
    let weights: Vec<f64> = (1..=24).map(|rank| 1.0 / rank as f64).collect();
    let total: f64 = weights.iter().sum();
    let draw = |rng: &mut rand::rngs::StdRng| {
        let mut x = rng.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    };
    let pipelines: Vec<Vec<usize>> = (0..planted)
        .map(|_| {
            let len = rng.random_range(2..=3);
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < len {
                let f = rng.random_range(0..functions.len());
                if !chosen.contains(&f) {
                    chosen.push(f);
                }
            }
            chosen
        })
        .collect();
    let rates: Vec<f64> = pipelines
        .iter()
        .map(|_| rng.random_range(0.15..0.30))
        .collect();
    let mut miner = sequences::Miner::new(Duration::from_secs(600));
    for session in 0..sessions {
        let len = rng.random_range(8..=30);
        let mut calls: Vec<usize> = (0..len).map(|_| draw(&mut rng)).collect();
        for (pipeline, rate) in pipelines.iter().zip(&rates) {
            if rng.random_bool(*rate) {
                let at = rng.random_range(0..=calls.len());
                calls.splice(at..at, pipeline.iter().copied());
            }
        }
        let name = format!("sess-{seed}-{session}");
        for (i, f) in calls.into_iter().enumerate() {
            miner.push(&name, &functions[f], Some(i as i64 * 30_000));
        }
    }
    let planted = pipelines
        .into_iter()
        .map(|p| p.into_iter().map(|f| functions[f].clone()).collect())
        .collect();
    (miner, planted)
}

fn proposed(miner: sequences::Miner) -> Vec<Vec<String>> {
    miner
        .finish(&Params::default())
        .into_iter()
        .filter(|s| s.proposed)
        .map(|s| s.functions)
        .collect()
}

/// Worlds with one to three planted pipelines (40 seeds, 50–500
/// sessions, 79 pipelines in all): at least 95 % of the planted pipelines
/// are proposed, the other proposals average at most one per world, and
/// every pipeline left out is one no rule could propose without proposing
/// chance ([`beyond_any_rule`]).
/// (Measured: 76 of 79 proposed, 8 other proposals in the 40 worlds. The
/// three misses are in 50-session worlds, planted in 6–9 sessions where
/// chance alone gives 1.8–4.4: two are beaten in both p and lift by a
/// sequence nobody planted in their own world; the weakest rule taking the
/// third — p ≤ 0.00082 with lift ≥ 3.9 — fires in 4 of 60 null worlds of
/// 50 sessions, 6 of 60 over 50–500.)
#[test]
fn planted_pipelines_are_proposed_and_little_else() {
    let (mut planted_total, mut missed, mut others) = (0usize, Vec::new(), 0usize);
    let mut null_worlds: BTreeMap<usize, Vec<Vec<sequences::Sequence>>> = BTreeMap::new();
    const WORLDS: u64 = 40;
    for seed in 0..WORLDS {
        let sessions = [50, 100, 200, 500][seed as usize % 4];
        let (miner, planted) = world(seed, sessions, 1 + seed as usize % 3);
        let all = miner.finish(&Params::default());
        let found: Vec<&Vec<String>> = all
            .iter()
            .filter(|s| s.proposed)
            .map(|s| &s.functions)
            .collect();
        for pipeline in &planted {
            planted_total += 1;
            if found.contains(&pipeline) {
                continue;
            }
            let why = match all.iter().find(|s| &s.functions == pipeline) {
                None => "not mined".to_string(),
                Some(miss) => {
                    let nulls = null_worlds
                        .entry(sessions)
                        .or_insert_with(|| mined_null_worlds(sessions));
                    beyond_any_rule(miss, &all, &planted, nulls).unwrap_or_else(|| {
                        panic!("seed {seed}: {miss:?} not proposed, though a rule could take it without chance")
                    })
                }
            };
            missed.push((seed, sessions, pipeline.clone(), why));
        }
        others += found.iter().filter(|f| !planted.contains(f)).count();
    }
    let recall = 1.0 - missed.len() as f64 / planted_total as f64;
    eprintln!(
        "planted worlds: {} of {planted_total} pipelines proposed; {others} other proposals in {WORLDS} worlds",
        planted_total - missed.len()
    );
    for miss in &missed {
        eprintln!("  not proposed: {miss:?}");
    }
    assert!(
        recall >= 0.95,
        "recall {recall:.2}; not proposed: {missed:#?}"
    );
    assert!(
        others as f64 / WORLDS as f64 <= 1.0,
        "{others} proposals besides the planted ones in {WORLDS} worlds"
    );
}

/// Why a planted pipeline that was mined but not proposed is out of reach
/// of any rule that proposes by p-value and lift (the smaller the p and
/// the larger the lift, the more a sequence deserves a proposal), or None
/// when a rule could take it:
/// - a sequence nobody planted (not even as part of a pipeline), in the
///   same world, has a p as small and a lift as large: any such rule
///   proposing the pipeline proposes it too;
/// - or the weakest such rule that takes the pipeline (p at most its p,
///   lift at least its lift) proposes something in more than 5 % of
///   `null_worlds` — worlds of the same size with nothing planted, where
///   the rule must stay silent in 95 %.
fn beyond_any_rule(
    miss: &sequences::Sequence,
    world: &[sequences::Sequence],
    planted: &[Vec<String>],
    null_worlds: &[Vec<sequences::Sequence>],
) -> Option<String> {
    let as_strong = |s: &sequences::Sequence| s.p <= miss.p && s.lift >= miss.lift;
    let nobody_planted = |s: &sequences::Sequence| {
        !planted
            .iter()
            .any(|p| p.windows(s.functions.len()).any(|part| part == s.functions))
    };
    if let Some(chance) = world.iter().find(|s| as_strong(s) && nobody_planted(s)) {
        return Some(format!("beaten by {chance:?}"));
    }
    let firing = null_worlds
        .iter()
        .filter(|sequences| sequences.iter().any(as_strong))
        .count();
    (firing as f64 > 0.05 * null_worlds.len() as f64)
        .then(|| format!("fires in {firing} of {} null worlds", null_worlds.len()))
}

/// Every mined sequence of 60 worlds of `sessions` sessions with nothing
/// planted (seeds apart from the other tests').
fn mined_null_worlds(sessions: usize) -> Vec<Vec<sequences::Sequence>> {
    (0..60)
        .map(|seed| {
            world(2_000 + seed, sessions, 0)
                .0
                .finish(&Params::default())
        })
        .collect()
}

/// Worlds without a planted pipeline (60 seeds, 50–500 sessions): at least
/// 95 % of them get no proposal at all.
#[test]
fn chance_alone_raises_no_proposal_in_95_percent_of_worlds() {
    const WORLDS: u64 = 60;
    let with_proposals: Vec<(u64, Vec<Vec<String>>)> = (0..WORLDS)
        .map(|seed| {
            let sessions = [50, 100, 200, 500][seed as usize % 4];
            (seed, proposed(world(1_000 + seed, sessions, 0).0))
        })
        .filter(|(_, found)| !found.is_empty())
        .collect();
    eprintln!(
        "null worlds: {} of {WORLDS} with a proposal",
        with_proposals.len()
    );
    assert!(
        with_proposals.len() as f64 <= 0.05 * WORLDS as f64,
        "{} of {WORLDS} worlds without a pipeline got proposals: {with_proposals:?}",
        with_proposals.len()
    );
}

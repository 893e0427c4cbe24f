//! Unit tests of the miner, the chance model and the proposal rule.

use super::*;

fn mine(calls: &[(&str, &str, i64)], min_support: u32) -> Vec<(String, u32, u32)> {
    let mut miner = Miner::new(Duration::from_secs(600));
    for &(session, f, ts) in calls {
        miner.push(session, f, Some(ts * 1000));
    }
    let params = Params {
        min_support,
        ..Params::default()
    };
    miner
        .finish(&params)
        .into_iter()
        .map(|s| (s.functions.join(">"), s.support, s.occurrences))
        .collect()
}

#[test]
fn collapses_repeats_and_splits_on_gaps() {
    let calls = [
        ("s1", "a", 0),
        ("s1", "a", 10),
        ("s1", "b", 20),
        // 600 s later exactly: same segment (a gap must *exceed* max_gap).
        ("s1", "c", 620),
        // 601 s later: a new segment, so no c>d.
        ("s1", "d", 1221),
    ];
    assert_eq!(
        mine(&calls, 1),
        [
            ("a>b>c".to_string(), 1, 1),
            ("a>b".to_string(), 1, 1),
            ("b>c".to_string(), 1, 1)
        ]
    );
}

#[test]
fn support_counts_sessions_occurrences_count_windows() {
    let calls = [
        ("s1", "a", 0),
        ("s1", "b", 1),
        ("s1", "a", 2),
        ("s1", "b", 3),
        ("s2", "a", 0),
        ("s2", "b", 1),
    ];
    let found = mine(&calls, 2);
    assert_eq!(found, [("a>b".to_string(), 2, 3)]);
}

#[test]
fn the_chance_model_keeps_each_sessions_mix_and_shuffles_its_order() {
    // One session: a a b c, then after a gap a new segment: a.
    let mut miner = Miner::new(Duration::from_secs(600));
    for (f, ts) in [("a", 0), ("a", 1), ("b", 2), ("c", 3), ("a", 5000)] {
        miner.push("s1", f, Some(ts * 1000));
    }
    let [a, b, c] = ["a", "b", "c"].map(|f| miner.ids[f]);
    // Sorted, as the chance model takes them (a < b < c, NONE last).
    let windows = [[a, b, c], [a, b, NONE], [c, a, NONE]];
    let mut chances = vec![Vec::new(); windows.len()];
    session_chances(&miner.history, &windows, 3, |at, p| chances[at].push(p));
    let chance = |lambda: f64| 1.0 - (-lambda).exp();
    // a→b: in a shuffle of the first segment (a a b c), b is preceded
    // by an a with chance P(b not first) · 2/3 = 1/2; the formula:
    // 1 − (1 − 2·1/4). The second segment (a) cannot show it.
    assert!((chances[1][0] - 0.5).abs() < 1e-12, "{chances:?}");
    // a→b→c: the largest of 1 · 3/5 · 1/5 ÷ 14/25 · (1/5 ÷ 4/5) = 3/56,
    // n(b→c) · f(a)/(1 − f(b)) = 3/4 and n(a→b) · f(c)/(1 − f(b)) = 1/4
    // (the session's mix: f(a) = 3/5, f(b) = f(c) = 1/5, 1 − Σf² =
    // 14/25; collapsed, one window of three).
    assert!((chances[0][0] - chance(0.75)).abs() < 1e-12);
    // c→a: 1 − (1 − 1·2/4) in the first segment, as for a→b.
    assert!((chances[2][0] - 0.5).abs() < 1e-12);
}

/// One `A` among many `B`s is almost surely followed by one; the
/// chance of no `A → B` matches a count over every order.
#[test]
fn pair_chances_count_every_order_of_a_segment() {
    // By enumeration: the distinct orders of a multiset with no A
    // followed by B, over all of them.
    fn by_enumeration(a: u32, b: u32, n: u32) -> f64 {
        let mut items: Vec<u8> = [vec![0; a as usize], vec![1; b as usize]].concat();
        items.resize(n as usize, 2);
        items.sort();
        let (mut total, mut none) = (0u64, 0u64);
        loop {
            total += 1;
            none += u64::from(!items.windows(2).any(|w| w == [0, 1]));
            // next permutation, distinct orders only
            let Some(i) = (0..items.len() - 1)
                .rev()
                .find(|&i| items[i] < items[i + 1])
            else {
                break;
            };
            let j = (i + 1..items.len())
                .rev()
                .find(|&j| items[j] > items[i])
                .unwrap();
            items.swap(i, j);
            items[i + 1..].reverse();
        }
        none as f64 / total as f64
    }
    for (a, b, n) in [
        (1, 1, 2),
        (2, 1, 3),
        (2, 2, 6),
        (3, 2, 7),
        (1, 5, 6),
        (4, 4, 9),
    ] {
        let exact = by_enumeration(a, b, n);
        assert!(
            (chance::no_pair(a, b, n) - exact).abs() < 1e-12,
            "{a} {b} {n}: {} vs {exact}",
            chance::no_pair(a, b, n)
        );
        // Fewer orders without the pair than a Poisson count would
        // have: what lets no_pair stop at λ = 20.
        assert!(exact <= (-f64::from(a * b) / f64::from(n)).exp());
    }
    for (a, b, n) in [(15, 15, 30), (10, 30, 45), (40, 40, 80)] {
        let lambda = f64::from(a * b) / f64::from(n);
        assert!(chance::no_pair(a, b, n) <= (-lambda).exp());
    }
    assert!((chance::no_pair(1, 50, 51) - 1.0 / 51.0).abs() < 1e-12);
    assert_eq!(chance::no_pair(60, 60, 121), 0.0);
}

/// Noise, with a → b → c chained in 12 sessions and x → y in 10
/// others: those two are proposed, the halves of the triple are not,
/// and the noise is not.
#[test]
fn planted_sequences_are_proposed_and_their_parts_and_chance_are_not() {
    let miner = planted_world(&[(&["a", "b", "c"], 12), (&["x", "y"], 10)]);
    let sequences = miner.finish(&Params::default());
    let proposed: Vec<String> = sequences
        .iter()
        .filter(|s| s.proposed)
        .map(|s| s.functions.join(">"))
        .collect();
    assert_eq!(proposed, ["a>b>c", "x>y"]);
    let verdict = |name: &str| {
        let s = sequences.iter().find(|s| s.functions.join(">") == name);
        s.unwrap().verdict
    };
    assert_eq!(verdict("a>b"), Verdict::InTriple);
    assert_eq!(verdict("b>c"), Verdict::InTriple);
    for s in &sequences {
        assert_eq!(s.verdict, verdict_from_figures(s, 60), "{s:?}");
    }
    for kind in [Verdict::Weak, Verdict::Chance] {
        assert!(sequences.iter().any(|s| s.verdict == kind), "no {kind:?}");
    }
    let abc = sequences
        .iter()
        .find(|s| s.functions.join(">") == "a>b>c")
        .unwrap();
    assert!(abc.lift >= 2.0 && abc.q <= 0.05, "{abc:?}");
    assert_eq!(abc.sample_sessions, ["s00", "s01", "s02"]);
    assert_eq!(dedupe_key(abc), "new_pipeline:a>b>c");
}

/// The verdict a sequence that is not a proposed triple's part must have,
/// from its figures alone and the default rule: weak below both lift 2
/// and an excess of 5 % of the `sessions`, else chance above q 0.05.
fn verdict_from_figures(s: &Sequence, sessions: usize) -> Verdict {
    let excess = f64::from(s.support) - s.expected;
    if s.verdict == Verdict::InTriple {
        Verdict::InTriple
    } else if s.lift < 2.0 && excess < 0.05 * sessions as f64 {
        Verdict::Weak
    } else if s.q > 0.05 {
        Verdict::Chance
    } else {
        Verdict::Proposed
    }
}

/// A pair inside a proposed triple is proposed too when it also stands
/// alone often enough.
#[test]
fn a_pair_used_beyond_its_triple_is_proposed_too() {
    let mut miner = planted_world(&[(&["a", "b", "c"], 10), (&["a", "b"], 12)]);
    let found =
        std::mem::replace(&mut miner, Miner::new(Duration::ZERO)).finish(&Params::default());
    let proposed: Vec<String> = found
        .iter()
        .filter(|s| s.proposed)
        .map(|s| s.functions.join(">"))
        .collect();
    assert_eq!(proposed, ["a>b", "a>b>c"], "{found:#?}");
}

/// 60 sessions of 12 calls drawn from eight noise functions (a fixed
/// pseudo-random stream), with each `(sequence, n)` spliced into the
/// next `n` sessions at a random place.
fn planted_world(planted: &[(&[&'static str], usize)]) -> Miner {
    let noise = ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"];
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    let mut plants = planted
        .iter()
        .flat_map(|(sequence, n)| std::iter::repeat_n(*sequence, *n));
    let mut miner = Miner::new(Duration::from_secs(600));
    for session in 0..60 {
        let name = format!("s{session:02}");
        let mut calls: Vec<&str> = (0..12).map(|_| noise[next(noise.len())]).collect();
        if let Some(sequence) = plants.next() {
            let at = next(calls.len());
            calls.splice(at..at, sequence.iter().copied());
        }
        for (i, f) in calls.into_iter().enumerate() {
            miner.push(&name, f, Some(i as i64 * 1000));
        }
    }
    miner
}

/// Sessions where a third of the steps run one chain c1 → c2 → c3 and
/// the others call one of 60 functions at random: between the chain's
/// blocks the random calls sit next to each other more often than a
/// shuffle of all calls would put them. Only the chain (and the chain
/// run twice in a row, read from its middle) is a pipeline.
#[test]
fn a_dominant_chain_does_not_make_pipelines_of_its_surroundings() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut miner = Miner::new(Duration::from_secs(600));
    for session in 0..1_500 {
        let name = format!("s{session:04}");
        let mut calls: Vec<String> = Vec::new();
        while calls.len() < 40 {
            if rng.random_bool(0.3) {
                calls.extend(["c1", "c2", "c3"].map(String::from));
            } else {
                calls.push(format!("r{}", rng.random_range(0..60)));
            }
        }
        for (i, f) in calls.iter().enumerate() {
            miner.push(&name, f, Some(i as i64 * 1000));
        }
    }
    let proposed: Vec<String> = miner
        .finish(&Params::default())
        .into_iter()
        .filter(|s| s.proposed)
        .map(|s| s.functions.join(">"))
        .collect();
    assert!(proposed.contains(&"c1>c2>c3".to_string()), "{proposed:?}");
    let rotations = ["c1>c2>c3", "c2>c3>c1", "c3>c1>c2"];
    let others: Vec<&String> = proposed
        .iter()
        .filter(|p| !rotations.contains(&p.as_str()))
        .collect();
    assert!(others.len() <= 1, "{others:?}");
}

/// Sample sessions are the first three showing a sequence, each once,
/// found again after mining from the history.
#[test]
fn sample_sessions_are_the_first_ones_showing_it_each_once() {
    let mut miner = Miner::new(Duration::from_secs(600));
    let calls = [
        ("s1", "x", 0),
        ("s2", "a", 0),
        ("s2", "b", 1),
        ("s2", "a", 2),
        ("s2", "b", 3), // a→b twice in s2: one sample
        ("s3", "a", 0),
        ("s3", "b", 5000), // split by a gap: no a→b in s3
        ("s4", "a", 0),
        ("s4", "a", 1),
        ("s4", "b", 2), // repeats collapsed: a→b
        ("s5", "a", 0),
        ("s5", "b", 1),
        ("s6", "a", 0),
        ("s6", "b", 1),
    ];
    for (session, f, ts) in calls {
        miner.push(session, f, Some(ts * 1000));
    }
    let found = miner.finish(&Params::default());
    let ab = found.iter().find(|s| s.functions == ["a", "b"]).unwrap();
    assert_eq!(ab.support, 4);
    assert_eq!(ab.sample_sessions, ["s2", "s4", "s5"]);
}

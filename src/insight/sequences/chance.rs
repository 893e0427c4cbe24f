//! The chance model: how many sessions would show a sequence if agents
//! called functions without any order between them.
//!
//! # Null model
//! Within each segment the calls are shuffled: every order of the
//! segment's calls (repeats included) is equally likely, so the session's
//! mix of functions is kept and only their order is random.
//!
//! A pair `A → B` is a window of the collapsed calls exactly when some
//! `A` is immediately followed by a `B` in the raw ones (collapsing only
//! merges equal neighbours). In a segment of `n` calls, `a` of them `A`
//! and `b` of them `B`, the chance that no `A` is followed by a `B` is, by
//! inclusion–exclusion over the `A B` blocks glued together,
//! `Σⱼ (−1)ʲ / j! · (a)ⱼ (b)ⱼ / (n)ⱼ` (falling factorials) — [`no_pair`].
//! A session shows the pair unless none of its segments does. (The
//! Poisson chance `1 − e^(−ab/n)` of the same mean is far too low for
//! popular functions: one `A` among 50 `B`s is followed by one with
//! chance 50/51, not 0.63 — and chance underestimated is a popular pair
//! wrongly called significant.)
//!
//! For triples the shuffled calls are approximated by independent draws
//! from the session's mix — `f(X)`, the share of its calls that were
//! `X` — with consecutive repeats then collapsed: after `A` comes `B` with
//! probability `f(B) / (1 − f(A))`, and a window starts at `A → B` with
//! probability `f(A) f(B) / (1 − Σ f(X)²)`.
//!
//! A triple `A → B → C` must be more than its pairs. Its expected count is
//! the largest of three: all three by chance
//! (`T₃ · f(A) f(B) / (1 − Σ f²) · f(C) / (1 − f(B))`), `A` before a
//! `B → C` the session shows (`n(B→C) · f(A) / (1 − f(B))`, the chance
//! that the call before a `B` is `A`), and `C` after an `A → B` it shows
//! (`n(A→B) · f(C) / (1 − f(B))`). So a popular function that happens to
//! stand next to a real pair does not make a triple with it.
//!
//! A session then shows the triple with probability `1 − e^(−λ)`. A
//! sequence's support under the null is the sum of its sessions'
//! independent chances ([`super::super::significance::SupportTests`]).
//!
//! # Conditioning
//! A habit carves its calls into blocks: where agents chain `A → B → C` in
//! a third of their steps, the other calls sit next to each other far
//! more often than a shuffle of all calls would put them — and every
//! pair of them looks like a pipeline. So once strong sequences are known,
//! the others are scored again on a history where each occurrence of a
//! strong one is a single call ([`contract`]): the shuffle then moves the
//! block whole, as the agents did.
//!
//! # Cost
//! One pass over the history, session by session; each session visits
//! only the candidates whose first function it called, and hands each
//! chance to a sink at once rather than keeping it — at 1 M calls there
//! are ~20 M (candidate, session) chances.

use std::ops::Range;

use foldhash::HashMap;

use super::{Window, NONE};

/// Markers in a miner's history, next to function ids.
pub(super) const SEGMENT_END: u32 = u32::MAX - 1;
pub(super) const SESSION_END: u32 = u32::MAX - 2;

/// For each candidate window, the chance of every session (that could
/// show it at all) to show it under the null model: `sink(candidate,
/// chance)`, session by session in history order. `candidates` must be
/// sorted. `history` is the
/// miner's: every call, segments ended by [`SEGMENT_END`], sessions by
/// [`SESSION_END`]; `functions` the number of interned function ids.
pub(super) fn session_chances(
    history: &[u32],
    candidates: &[Window],
    functions: usize,
    mut sink: impl FnMut(usize, f64),
) {
    let index = CandidateIndex::new(candidates, functions);
    let mut session = Session::new(functions);
    for &item in history {
        match item {
            SESSION_END => {
                session.end_segment();
                session.score(candidates, &index, &mut sink);
                session.clear();
            }
            SEGMENT_END => session.end_segment(),
            f => session.push(f),
        }
    }
    session.end_segment();
    session.score(candidates, &index, &mut sink);
}

/// The candidates by their first two functions. `candidates` must be
/// sorted: a session then walks its candidates (and the caller's state for
/// them) in memory order rather than scattered over all of them, and skips
/// every candidate `A → B …` at once when it did not call `B`.
struct CandidateIndex {
    /// By first function: its groups, by second function.
    by_first: Vec<Vec<Group>>,
}

/// The candidates `A → B` and `A → B → C` of one `A` and `B`.
struct Group {
    second: u32,
    /// The triples, adjacent in the sorted candidates.
    triples: Range<usize>,
    pair: Option<usize>,
}

impl CandidateIndex {
    fn new(candidates: &[Window], functions: usize) -> Self {
        assert!(
            candidates.is_sorted(),
            "chance candidates must be sorted by window"
        );
        let mut by_first: Vec<Vec<Group>> = (0..functions).map(|_| Vec::new()).collect();
        for (at, &[a, b, c]) in candidates.iter().enumerate() {
            let groups = &mut by_first[a as usize];
            if groups.last().is_none_or(|g| g.second != b) {
                groups.push(Group {
                    second: b,
                    triples: at..at,
                    pair: None,
                });
            }
            let group = groups.last_mut().expect("just pushed");
            if c == NONE {
                group.pair = Some(at);
            } else {
                group.triples.end = at + 1;
            }
        }
        CandidateIndex { by_first }
    }
}

/// One session's mix of functions and its windows.
struct Session {
    /// Calls per function id, repeats included (zero for absent ones).
    counts: Vec<u32>,
    /// `f(X)`: each present function's share of the calls, set by
    /// [`Session::score`] (stale for absent ones).
    shares: Vec<f64>,
    /// The ids with a non-zero count, to reset and iterate cheaply.
    present: Vec<u32>,
    calls: u32,
    /// Windows of two and of three calls.
    pairs: u32,
    triples: u32,
    /// `A → B` windows, by pair.
    pair_counts: HashMap<(u32, u32), u32>,
    /// The current segment's length and its last two calls.
    segment: u32,
    last: [u32; 2],
    /// Calls per segment, repeats included; the last one is still open
    /// while `open`.
    segment_calls: Vec<u32>,
    open: bool,
    /// Per function id: (segment, calls in it), in segment order.
    by_segment: Vec<Vec<(u32, u32)>>,
}

impl Session {
    fn new(functions: usize) -> Self {
        Session {
            counts: vec![0; functions],
            shares: vec![0.0; functions],
            present: Vec::new(),
            calls: 0,
            pairs: 0,
            triples: 0,
            pair_counts: HashMap::default(),
            segment: 0,
            last: [NONE; 2],
            segment_calls: Vec::new(),
            open: false,
            by_segment: vec![Vec::new(); functions],
        }
    }

    fn push(&mut self, f: u32) {
        if !self.open {
            self.segment_calls.push(0);
            self.open = true;
        }
        let at = self.segment_calls.len() as u32 - 1;
        self.segment_calls[at as usize] += 1;
        let segments = &mut self.by_segment[f as usize];
        match segments.last_mut() {
            Some((segment, calls)) if *segment == at => *calls += 1,
            _ => segments.push((at, 1)),
        }
        let count = &mut self.counts[f as usize];
        if *count == 0 {
            self.present.push(f);
        }
        *count += 1;
        self.calls += 1;
        if self.last[1] == f {
            return; // collapsed, as the miner does
        }
        self.segment += 1;
        if self.segment >= 2 {
            *self.pair_counts.entry((self.last[1], f)).or_default() += 1;
        }
        self.last = [self.last[1], f];
    }

    fn end_segment(&mut self) {
        self.pairs += self.segment.saturating_sub(1);
        self.triples += self.segment.saturating_sub(2);
        self.segment = 0;
        self.last = [NONE; 2];
        self.open = false;
    }

    fn clear(&mut self) {
        for &f in &self.present {
            self.counts[f as usize] = 0;
            self.by_segment[f as usize].clear();
        }
        self.segment_calls.clear();
        self.open = false;
        self.present.clear();
        self.calls = 0;
        self.pairs = 0;
        self.triples = 0;
        self.pair_counts.clear();
    }

    /// `f(next) / (1 − f(previous))`: the chance that a call after
    /// `previous` is `next`.
    fn follows(&self, previous: u32, next: u32) -> f64 {
        let rest = 1.0 - self.shares[previous as usize];
        if rest <= 0.0 {
            0.0
        } else {
            self.shares[next as usize] / rest
        }
    }

    /// `1 − Σ f(X)²`: the chance that two draws differ.
    fn distinct(&self) -> f64 {
        let same: f64 = self
            .present
            .iter()
            .map(|&f| self.shares[f as usize].powi(2))
            .sum();
        1.0 - same
    }

    fn pair_count(&self, a: u32, b: u32) -> f64 {
        f64::from(self.pair_counts.get(&(a, b)).copied().unwrap_or(0))
    }

    /// The chance that a shuffle of each segment shows `a → b` somewhere.
    fn pair_chance(&self, a: u32, b: u32) -> f64 {
        let (of_a, of_b) = (&self.by_segment[a as usize], &self.by_segment[b as usize]);
        let (mut i, mut j, mut none) = (0, 0, 1.0);
        while let (Some(&(sa, na)), Some(&(sb, nb))) = (of_a.get(i), of_b.get(j)) {
            if sa == sb {
                none *= no_pair(na, nb, self.segment_calls[sa as usize]);
            }
            i += usize::from(sa <= sb);
            j += usize::from(sb <= sa);
        }
        1.0 - none
    }

    /// The expected number of `A → B → C` windows in this session under
    /// the null, given `starts` (module docs: the chance a window starts
    /// with `A → B`).
    fn expected_triple(&self, [a, b, c]: Window, starts: f64) -> f64 {
        let follows = self.follows(b, c);
        let independent = f64::from(self.triples) * starts * follows;
        let before_pair =
            self.pair_count(b, c) * self.shares[a as usize] / (1.0 - self.shares[b as usize]);
        let after_pair = self.pair_count(a, b) * follows;
        independent.max(before_pair).max(after_pair)
    }

    /// Adds this session's chance to every candidate it could show.
    fn score(
        &mut self,
        candidates: &[Window],
        index: &CandidateIndex,
        sink: &mut impl FnMut(usize, f64),
    ) {
        if self.pairs == 0 {
            return;
        }
        for &f in &self.present {
            self.shares[f as usize] = f64::from(self.counts[f as usize]) / f64::from(self.calls);
        }
        let distinct = self.distinct();
        if distinct <= 0.0 {
            return;
        }
        // A chance of 0 is no trial: a session that cannot show a
        // sequence does not count against it.
        let mut chance = |at: usize, p: f64| {
            if p > 0.0 {
                sink(at, p);
            }
        };
        for &a in &self.present {
            for group in &index.by_first[a as usize] {
                let b = group.second;
                if self.counts[b as usize] == 0 {
                    continue;
                }
                let starts = self.shares[a as usize] * self.shares[b as usize] / distinct;
                for at in group.triples.clone() {
                    if self.counts[candidates[at][2] as usize] != 0 {
                        let lambda = self.expected_triple(candidates[at], starts);
                        chance(at, -(-lambda).exp_m1());
                    }
                }
                if let Some(at) = group.pair {
                    chance(at, self.pair_chance(a, b));
                }
            }
        }
    }
}

/// The chance that, in a uniformly random order of `n` calls of which `a`
/// are `A` and `b` are `B` (`A ≠ B`), no `A` is immediately followed by a
/// `B`: `Σⱼ (−1)ʲ / j! · (a)ⱼ (b)ⱼ / (n)ⱼ` (module docs). The terms
/// alternate and grow to about `e^λ`, `λ = ab/n`; beyond λ = 20 the sum
/// would be rounding noise, and the chance is then below `e^−λ` (the
/// number of `A B` neighbours is less spread than a Poisson count of the
/// same mean) — under 10⁻⁸ — so it is taken as 0.
pub(super) fn no_pair(a: u32, b: u32, n: u32) -> f64 {
    let (a, b, n) = (f64::from(a), f64::from(b), f64::from(n));
    if a * b / n > 20.0 {
        return 0.0;
    }
    let (mut sum, mut term, mut j) = (1.0, 1.0, 1.0);
    while j <= a.min(b) {
        term *= -(a - j + 1.0) * (b - j + 1.0) / ((n - j + 1.0) * j);
        sum += term;
        j += 1.0;
    }
    sum.clamp(0.0, 1.0)
}

/// The history with every occurrence of `blocks` (windows of the collapsed
/// calls, taken greedily from the left, triples before pairs) replaced by
/// one call of a new function: `functions + i` for `blocks[i]`. A shuffle
/// of that history keeps each block whole — the null for other sequences
/// once the blocks are known to be habits (module docs, *Conditioning*).
/// Returns it and the new number of function ids.
pub(super) fn contract(history: &[u32], blocks: &[Window], functions: usize) -> (Vec<u32>, usize) {
    let ids: HashMap<Window, u32> = blocks
        .iter()
        .enumerate()
        .map(|(i, &w)| (w, (functions + i) as u32))
        .collect();
    let mut contracted = Vec::with_capacity(history.len());
    let mut segment: Vec<u32> = Vec::new();
    for &item in history {
        if item == SEGMENT_END || item == SESSION_END {
            contract_segment(&segment, &ids, &mut contracted);
            segment.clear();
            contracted.push(item);
        } else {
            segment.push(item);
        }
    }
    contract_segment(&segment, &ids, &mut contracted);
    (contracted, functions + blocks.len())
}

/// One segment's raw calls into `out`, blocks contracted.
fn contract_segment(raw: &[u32], ids: &HashMap<Window, u32>, out: &mut Vec<u32>) {
    // Runs of equal calls: (function, raw start, raw end).
    let mut runs: Vec<(u32, usize, usize)> = Vec::new();
    for (at, &f) in raw.iter().enumerate() {
        match runs.last_mut() {
            Some((g, _, end)) if *g == f => *end = at + 1,
            _ => runs.push((f, at, at + 1)),
        }
    }
    let mut at = 0;
    while at < runs.len() {
        let function = |i: usize| runs.get(i).map_or(NONE, |r| r.0);
        let triple = [function(at), function(at + 1), function(at + 2)];
        let pair = [triple[0], triple[1], NONE];
        if let Some(&id) = ids.get(&triple) {
            out.push(id);
            at += 3;
        } else if let Some(&id) = ids.get(&pair) {
            out.push(id);
            at += 2;
        } else {
            let (_, start, end) = runs[at];
            out.extend_from_slice(&raw[start..end]);
            at += 1;
        }
    }
}

//! The chance model: how many sessions would show a sequence if agents
//! called functions without any order between them.
//!
//! # Null model
//! Within a session, calls are independent draws from the session's own
//! mix of functions — `f(X)`, the share of its calls that were `X`,
//! repeats included — and consecutive repeats are then collapsed, as the
//! miner does. So the session's mix is kept and only the order is random.
//! After collapsing, the calls form a Markov chain: after `A` comes `B`
//! with probability `f(B) / (1 − f(A))`, and a window starts at `A` with
//! probability `f(A)(1 − f(A)) / Σ f(X)(1 − f(X))`. In a session with `T₂`
//! windows of two calls, the expected number of `A → B` windows is
//! `λ = T₂ · f(A) f(B) / (1 − Σ f(X)²)`.
//!
//! A triple `A → B → C` must be more than its pairs. Its expected count is
//! the largest of three: all three by chance
//! (`T₃ · f(A) f(B) / (1 − Σ f²) · f(C) / (1 − f(B))`), `A` before a
//! `B → C` the session shows (`n(B→C) · f(A) / (1 − f(B))`, the chance
//! that the call before a `B` is `A`), and `C` after an `A → B` it shows
//! (`n(A→B) · f(C) / (1 − f(B))`). So a popular function that happens to
//! stand next to a real pair does not make a triple with it.
//!
//! A session then shows the sequence with probability `1 − e^(−λ)`, and
//! its support under the null is the sum of those independent chances
//! over sessions ([`super::super::significance::support_p_value`]).

use std::collections::HashMap;

use super::{Window, NONE};

/// Markers in a miner's history, next to function ids.
pub(super) const SEGMENT_END: u32 = u32::MAX - 1;
pub(super) const SESSION_END: u32 = u32::MAX - 2;

/// For each candidate window, the chance of every session (that could
/// show it at all) to show it under the null model, in session order.
/// `history` is the miner's: every call, segments ended by
/// [`SEGMENT_END`], sessions by [`SESSION_END`]; `functions` the number of
/// interned function ids.
pub(super) fn session_chances(
    history: &[u32],
    candidates: &[Window],
    functions: usize,
) -> Vec<Vec<f64>> {
    let mut by_first: HashMap<u32, Vec<usize>> = HashMap::new();
    for (at, window) in candidates.iter().enumerate() {
        by_first.entry(window[0]).or_default().push(at);
    }
    let mut chances = vec![Vec::new(); candidates.len()];
    let mut session = Session::new(functions);
    for &item in history {
        match item {
            SESSION_END => {
                session.end_segment();
                session.score(candidates, &by_first, &mut chances);
                session.clear();
            }
            SEGMENT_END => session.end_segment(),
            f => session.push(f),
        }
    }
    session.end_segment();
    session.score(candidates, &by_first, &mut chances);
    chances
}

/// One session's mix of functions and its windows.
struct Session {
    /// Calls per function id, repeats included (zero for absent ones).
    counts: Vec<u32>,
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
}

impl Session {
    fn new(functions: usize) -> Self {
        Session {
            counts: vec![0; functions],
            present: Vec::new(),
            calls: 0,
            pairs: 0,
            triples: 0,
            pair_counts: HashMap::new(),
            segment: 0,
            last: [NONE; 2],
        }
    }

    fn push(&mut self, f: u32) {
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
    }

    fn clear(&mut self) {
        for &f in &self.present {
            self.counts[f as usize] = 0;
        }
        self.present.clear();
        self.calls = 0;
        self.pairs = 0;
        self.triples = 0;
        self.pair_counts.clear();
    }

    fn share(&self, f: u32) -> f64 {
        f64::from(self.counts[f as usize]) / f64::from(self.calls)
    }

    /// `f(next) / (1 − f(previous))`: the chance that a call after
    /// `previous` is `next`.
    fn follows(&self, previous: u32, next: u32) -> f64 {
        let rest = 1.0 - self.share(previous);
        if rest <= 0.0 {
            0.0
        } else {
            self.share(next) / rest
        }
    }

    /// `1 − Σ f(X)²`: the chance that two draws differ.
    fn distinct(&self) -> f64 {
        let same: f64 = self.present.iter().map(|&f| self.share(f).powi(2)).sum();
        1.0 - same
    }

    fn pair_count(&self, a: u32, b: u32) -> f64 {
        f64::from(self.pair_counts.get(&(a, b)).copied().unwrap_or(0))
    }

    /// The expected number of `window`s in this session under the null.
    fn expected(&self, window: &Window, distinct: f64) -> f64 {
        let [a, b, c] = *window;
        if distinct <= 0.0 {
            return 0.0;
        }
        let starts = self.share(a) * self.share(b) / distinct;
        if c == NONE {
            return f64::from(self.pairs) * starts;
        }
        let independent = f64::from(self.triples) * starts * self.follows(b, c);
        let before_pair = self.pair_count(b, c) * self.share(a) / (1.0 - self.share(b));
        let after_pair = self.pair_count(a, b) * self.follows(b, c);
        independent.max(before_pair).max(after_pair)
    }

    /// Adds this session's chance to every candidate it could show.
    fn score(
        &self,
        candidates: &[Window],
        by_first: &HashMap<u32, Vec<usize>>,
        chances: &mut [Vec<f64>],
    ) {
        if self.pairs == 0 {
            return;
        }
        let distinct = self.distinct();
        for first in &self.present {
            let Some(starting) = by_first.get(first) else {
                continue;
            };
            for &at in starting {
                let window = &candidates[at];
                let absent = window[1..]
                    .iter()
                    .any(|&f| f != NONE && self.counts[f as usize] == 0);
                if absent {
                    continue;
                }
                let lambda = self.expected(window, distinct);
                if lambda > 0.0 {
                    chances[at].push(-(-lambda).exp_m1());
                }
            }
        }
    }
}

//! Sequence mining (CONTRACT §6): which runs of two or three registry
//! functions agents call together again and again, across sessions — and
//! which of them chance does not explain.
//!
//! Per session, the calls that have a `function_id` are taken in `ts` order
//! (ties in ingest order, the `calls.id`), split into *segments* wherever two
//! consecutive calls are more than `max_gap` apart, and consecutive repeats
//! within a segment are collapsed (A A B → A B). Every window of 2 or 3
//! consecutive calls of a segment is one *occurrence* of that sequence; its
//! *support* is the number of distinct sessions with at least one.
//!
//! The miner is one streaming pass over `calls` in (session, ts, id) order —
//! SQLite walks the sessions in the order of the `calls_tool_use` index and
//! sorts only each session's calls by time — with function ids interned to
//! integers and one counter per distinct window. It keeps each session's
//! calls (4 bytes a call) for the chance model.
//!
//! # Significance
//! Popular functions stand next to each other by chance, and with enough
//! sessions any such pair reaches any support. So every mined sequence is
//! scored against the [`chance`] model — the sessions' own mixes of
//! functions in random order: `expected` is the support chance alone would
//! give, `lift` = support ÷ expected, `p` the one-sided probability of a
//! support at least this high by chance (exact Poisson binomial over the
//! sessions, [`super::significance::SupportTests`]), and `q` its
//! Benjamini–Hochberg q-value over every mined sequence — where those not
//! common enough beyond chance to be worth a pipeline (below) count as
//! tests that found nothing: around a dominant habit thousands of
//! sequences depart from chance a little, and their discoveries would
//! otherwise lower the bar for everything else.
//!
//! # Which sequences are proposed
//! A sequence is worth a pipeline when `q ≤ fdr` (default 0.05: at most
//! one proposal in twenty is expected to be chance), its support reaches
//! `min_support`, and it is common beyond chance: `lift ≥ min_lift`
//! (default 2: twice as many sessions as chance — with thousands of
//! sessions a 10 % excess is "significant" and still not a pipeline), or
//! an excess over chance (support − expected) of at least `min_excess` of
//! all sessions (default 0.05). Lift alone cannot see a habit between the
//! most used functions: when chance already chains them in a third of the
//! sessions, a pipeline used in another fifth of them lifts the support
//! only ×1.3–1.5 — yet one session in twenty more, and significant, is
//! plenty of evidence. Maximal ones first: every such triple
//! is proposed; a pair inside a proposed triple only when the sessions
//! showing it beyond the triple (its support minus the triple's) are
//! significant on their own — below the p-value Benjamini–Hochberg would
//! ask of one more discovery in the family, with the lift — so the two
//! halves of a real triple are not proposed again.
//!
//! Then the proposals are checked once against each other: the sequences
//! proposed in at least [`ANCHOR_SHARE`] of the sessions are anchors, and
//! every other proposed sequence sharing no function with them is scored
//! again with each anchor occurrence shuffled as one block ([`chance`],
//! *Conditioning*) before the proposals are chosen again. On a benchmark
//! world where a third of the steps are one chain, this takes the
//! proposals from 1 131 (pairs of random functions, which sit next to
//! each other more often between the chain's blocks) to 4.

mod chance;
mod report;
mod samples;

use foldhash::{HashMap, HashMapExt, HashSet};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use super::significance::{benjamini_hochberg, SupportTests};
use crate::contract::timefmt;
use chance::{contract, session_chances, SEGMENT_END, SESSION_END};
pub use report::render_text;

/// What `sequences` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Least number of sessions a sequence must occur in.
    pub min_support: u32,
    /// Longest pause between two calls of one segment.
    pub max_gap: Duration,
    /// False discovery rate a proposed sequence's q-value must be within.
    pub fdr: f64,
    /// Least support ÷ expected support of a proposed sequence...
    pub min_lift: f64,
    /// ...unless its support exceeds the expected one by at least this
    /// share of all sessions.
    pub min_excess: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            min_support: 3,
            max_gap: Duration::from_secs(600),
            fdr: 0.05,
            min_lift: 2.0,
            min_excess: 0.05,
        }
    }
}

/// One mined sequence and how far chance explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sequence {
    pub functions: Vec<String>,
    pub support: u32,
    pub occurrences: u32,
    /// Support expected by chance alone.
    pub expected: f64,
    /// `support / expected`.
    pub lift: f64,
    /// P(support at least this high by chance).
    pub p: f64,
    /// Benjamini–Hochberg q-value over every mined sequence.
    pub q: f64,
    /// Worth a `new_pipeline` proposal (module docs).
    pub proposed: bool,
    /// Why it is proposed or not.
    pub verdict: Verdict,
    /// Up to three sessions showing it, first seen first.
    pub sample_sessions: Vec<String>,
}

/// What the proposal rule (module docs) made of a mined sequence: the
/// answer to "why is this habit not proposed?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worth a `new_pipeline` proposal.
    Proposed,
    /// Not common enough beyond chance to be a pipeline, significant or
    /// not: lift below `min_lift` and an excess below `min_excess` of the
    /// sessions.
    Weak,
    /// Common enough, but chance may explain it: `q` above `fdr`.
    Chance,
    /// Inside a proposed triple, and the sessions showing it beyond the
    /// triple are not significant on their own.
    InTriple,
}

impl Verdict {
    /// As the text report and the dashboard print it.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Proposed => "proposed",
            Verdict::Weak => "weak",
            Verdict::Chance => "chance",
            Verdict::InTriple => "in triple",
        }
    }
}

/// The result of a pass, in the JSON shape of CONTRACT §6 (extended).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub min_support: u32,
    pub max_gap_s: u64,
    pub fdr: f64,
    pub min_lift: f64,
    pub min_excess: f64,
    /// Sessions with at least one call of a registry function.
    pub sessions: u32,
    /// Most supported first; then most occurrences, longer, and by name.
    pub sequences: Vec<Sequence>,
}

/// A window key: interned function ids, `NONE` in the third slot for pairs.
type Window = [u32; 3];
const NONE: u32 = u32::MAX;
const SAMPLES: usize = 3;
/// Share of the sessions a proposed sequence must show to be an anchor:
/// the null of weaker proposals is conditioned on it ([`chance`],
/// *Conditioning*). Below it, its blocks hold too few calls to move
/// anyone's chances.
const ANCHOR_SHARE: f64 = 0.05;

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    support: u32,
    occurrences: u32,
    /// The last session (by its ordinal) counted in `support`.
    last_session: u32,
}

/// The streaming core: feed calls in (session, ts, ingest) order.
#[derive(Debug)]
pub struct Miner {
    max_gap_ms: i64,
    names: Vec<String>,
    ids: HashMap<String, u32>,
    windows: HashMap<Window, Counter>,
    /// Session ids by ordinal − 1.
    sessions_seen: Vec<String>,
    last_ts: Option<i64>,
    /// The last two distinct functions of the current segment, newest last.
    tail: [u32; 2],
    /// Every session's calls (repeats included), segments and sessions
    /// ended by markers ([`chance`]).
    history: Vec<u32>,
}

impl Miner {
    pub fn new(max_gap: Duration) -> Self {
        Self {
            max_gap_ms: i64::try_from(max_gap.as_millis()).unwrap_or(i64::MAX),
            names: Vec::new(),
            ids: HashMap::new(),
            windows: HashMap::new(),
            sessions_seen: Vec::new(),
            last_ts: None,
            tail: [NONE; 2],
            history: Vec::new(),
        }
    }

    /// One call. `ts_ms` is `None` when its timestamp cannot be read: it
    /// then starts a new segment, the conservative choice.
    pub fn push(&mut self, session: &str, function: &str, ts_ms: Option<i64>) {
        if self.sessions_seen.last().map(String::as_str) != Some(session) {
            if !self.sessions_seen.is_empty() {
                self.history.push(SESSION_END);
            }
            self.sessions_seen.push(session.to_string());
            self.tail = [NONE; 2];
            // No previous time: the next call starts a new segment.
            self.last_ts = None;
        }
        let split = match (self.last_ts, ts_ms) {
            (Some(last), Some(now)) => now.saturating_sub(last) > self.max_gap_ms,
            _ => true,
        };
        self.last_ts = ts_ms;
        if split {
            if self.tail[1] != NONE {
                self.history.push(SEGMENT_END);
            }
            self.tail = [NONE; 2];
        }
        let f = self.intern(function);
        // Every call, repeats included: the chance model weighs each
        // function by how often the session called it.
        self.history.push(f);
        if self.tail[1] == f {
            return; // a consecutive repeat
        }
        let [older, last] = self.tail;
        if last != NONE {
            self.count([last, f, NONE]);
            if older != NONE {
                self.count([older, last, f]);
            }
        }
        self.tail = [last, f];
    }

    /// Sessions fed so far.
    pub fn sessions(&self) -> usize {
        self.sessions_seen.len()
    }

    fn intern(&mut self, function: &str) -> u32 {
        if let Some(&id) = self.ids.get(function) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 function ids");
        self.names.push(function.to_string());
        self.ids.insert(function.to_string(), id);
        id
    }

    fn count(&mut self, window: Window) {
        let session = self.sessions_seen.len() as u32;
        let counter = self.windows.entry(window).or_default();
        counter.occurrences += 1;
        if counter.last_session != session {
            counter.last_session = session;
            counter.support += 1;
        }
    }

    /// The sequences with at least `params.min_support`, scored and
    /// marked, in report order.
    pub fn finish(self, params: &Params) -> Vec<Sequence> {
        let mut mined: Vec<(Window, Counter)> = self
            .windows
            .iter()
            .filter(|(_, c)| c.support >= params.min_support)
            .map(|(w, c)| (*w, *c))
            .collect();
        // Sorted by window, as the chance model walks them.
        mined.sort_unstable_by_key(|(w, _)| *w);
        let windows: Vec<Window> = mined.iter().map(|(w, _)| *w).collect();
        let supports: Vec<u32> = mined.iter().map(|(_, c)| c.support).collect();
        let mut scores = self.score(&windows, &supports);
        let mut q = self.q_values(params, &mined, &scores);
        let mut verdicts = self.select(params, &mined, &scores, &q);
        let rescored = self.condition(&mined, &verdicts);
        if !rescored.is_empty() {
            for (at, score) in rescored {
                scores[at] = score;
            }
            q = self.q_values(params, &mined, &scores);
            verdicts = self.select(params, &mined, &scores, &q);
        }
        let samples = samples::first_sessions(&self.history, &windows);
        let mut sequences: Vec<Sequence> = mined
            .iter()
            .enumerate()
            .map(|(at, (window, c))| Sequence {
                functions: self.functions(window),
                support: c.support,
                occurrences: c.occurrences,
                expected: scores[at].expected,
                lift: scores[at].lift,
                p: scores[at].p,
                q: q[at],
                proposed: verdicts[at] == Verdict::Proposed,
                verdict: verdicts[at],
                sample_sessions: samples[at]
                    .iter()
                    .filter(|&&s| s > 0)
                    .map(|&s| self.sessions_seen[s as usize - 1].clone())
                    .collect(),
            })
            .collect();
        sequences.sort_by(|a, b| {
            b.support
                .cmp(&a.support)
                .then(b.occurrences.cmp(&a.occurrences))
                .then(b.functions.len().cmp(&a.functions.len()))
                .then_with(|| a.functions.cmp(&b.functions))
        });
        sequences
    }

    fn functions(&self, window: &Window) -> Vec<String> {
        window
            .iter()
            .filter(|&&f| f != NONE)
            .map(|&f| self.names[f as usize].clone())
            .collect()
    }

    /// Common enough beyond chance to be worth a pipeline, whatever the
    /// significance: lift ≥ `min_lift`, or an excess over chance of at
    /// least `min_excess` of the sessions.
    fn worth(&self, params: &Params, support: u32, score: &Score) -> bool {
        let excess = f64::from(support) - score.expected;
        score.lift >= params.min_lift
            || excess >= params.min_excess * self.sessions_seen.len() as f64
    }

    /// Benjamini–Hochberg q-values over every mined sequence, those not
    /// [`Self::worth`] a pipeline counted as tests that found nothing
    /// (p = 1): their discoveries — real departures from chance too small
    /// to propose, thousands of them around a dominant habit — must not
    /// lower the bar for the others.
    fn q_values(&self, params: &Params, mined: &[(Window, Counter)], scores: &[Score]) -> Vec<f64> {
        let p: Vec<f64> = mined
            .iter()
            .zip(scores)
            .map(|((_, c), s)| {
                if self.worth(params, c.support, s) {
                    s.p
                } else {
                    1.0
                }
            })
            .collect();
        benjamini_hochberg(&p)
    }

    /// What the rule makes of each mined sequence (module docs): weak
    /// ones and chance aside, significant triples are proposed, and
    /// significant pairs outside them; a pair inside one is proposed when
    /// its support beyond the triple is significant on its own.
    fn select(
        &self,
        params: &Params,
        mined: &[(Window, Counter)],
        scores: &[Score],
        q: &[f64],
    ) -> Vec<Verdict> {
        let mut verdicts: Vec<Verdict> = mined
            .iter()
            .zip(scores.iter().zip(q))
            .map(|((_, c), (score, &q))| {
                if !self.worth(params, c.support, score) {
                    Verdict::Weak
                } else if q > params.fdr {
                    Verdict::Chance
                } else {
                    Verdict::Proposed
                }
            })
            .collect();
        // What Benjamini–Hochberg would ask of one more discovery: with R
        // of m tests discovered, the (R+1)-th needs p ≤ fdr · (R+1) / m.
        let discoveries = verdicts.iter().filter(|&&v| v == Verdict::Proposed).count();
        let cutoff = params.fdr * (discoveries + 1) as f64 / mined.len().max(1) as f64;
        let mut inside: HashMap<(u32, u32), u32> = HashMap::new();
        for ((w, c), _) in mined
            .iter()
            .zip(&verdicts)
            .filter(|(_, &v)| v == Verdict::Proposed)
        {
            if w[2] != NONE {
                for pair in [(w[0], w[1]), (w[1], w[2])] {
                    let best = inside.entry(pair).or_default();
                    *best = (*best).max(c.support);
                }
            }
        }
        let residual: Vec<(usize, u32)> = mined
            .iter()
            .enumerate()
            .filter(|(at, (w, _))| w[2] == NONE && verdicts[*at] == Verdict::Proposed)
            .filter_map(|(at, (w, c))| {
                let triple = inside.get(&(w[0], w[1]))?;
                Some((at, c.support.saturating_sub(*triple)))
            })
            .collect();
        if residual.is_empty() {
            return verdicts;
        }
        let pairs: Vec<Window> = residual.iter().map(|&(at, _)| mined[at].0).collect();
        let beyond: Vec<u32> = residual.iter().map(|&(_, beyond)| beyond).collect();
        let scores = self.score(&pairs, &beyond);
        for (&(at, beyond), score) in residual.iter().zip(scores) {
            let on_its_own = beyond >= params.min_support
                && score.p <= cutoff
                && self.worth(params, beyond, &score);
            if !on_its_own {
                verdicts[at] = Verdict::InTriple;
            }
        }
        verdicts
    }

    /// The weaker proposed sequences scored again, with every occurrence
    /// of the anchors — proposed sequences in at least [`ANCHOR_SHARE`] of
    /// the sessions — as one call ([`chance`], *Conditioning*): the
    /// sequences sharing no function with an anchor, by their index in
    /// `mined`.
    fn condition(&self, mined: &[(Window, Counter)], verdicts: &[Verdict]) -> Vec<(usize, Score)> {
        let least = ANCHOR_SHARE * self.sessions_seen.len() as f64;
        let proposed = |at: usize| verdicts[at] == Verdict::Proposed;
        let anchor: Vec<bool> = mined
            .iter()
            .enumerate()
            .map(|(at, (_, c))| proposed(at) && f64::from(c.support) >= least)
            .collect();
        let blocks: Vec<Window> = mined
            .iter()
            .zip(&anchor)
            .filter(|(_, &a)| a)
            .map(|((w, _), _)| *w)
            .collect();
        let in_blocks: HashSet<u32> = blocks.iter().flatten().copied().collect();
        let weaker: Vec<usize> = (0..mined.len())
            .filter(|&at| proposed(at) && !anchor[at])
            .filter(|&at| {
                let window = &mined[at].0;
                window.iter().all(|f| *f == NONE || !in_blocks.contains(f))
            })
            .collect();
        if blocks.is_empty() || weaker.is_empty() {
            return Vec::new();
        }
        let (history, functions) = contract(&self.history, &blocks, self.names.len());
        let windows: Vec<Window> = weaker.iter().map(|&at| mined[at].0).collect();
        let supports: Vec<u32> = weaker.iter().map(|&at| mined[at].1.support).collect();
        let scores = score_on(&history, functions, &windows, &supports);
        weaker.into_iter().zip(scores).collect()
    }

    /// Each window's support (`supports`, in the same order) against the
    /// chance model.
    fn score(&self, windows: &[Window], supports: &[u32]) -> Vec<Score> {
        score_on(&self.history, self.names.len(), windows, supports)
    }
}

/// Each window's support against the chance model of `history` (a
/// miner's, or one [`contract`]ed) over `functions` function ids.
fn score_on(history: &[u32], functions: usize, windows: &[Window], supports: &[u32]) -> Vec<Score> {
    let ks: Vec<u64> = supports.iter().map(|&k| u64::from(k)).collect();
    let mut tests = SupportTests::new(&ks);
    session_chances(history, windows, functions, |at, p| tests.add(at, p));
    supports
        .iter()
        .enumerate()
        .map(|(at, &support)| {
            let expected = tests.expected(at);
            Score {
                expected,
                lift: if expected > 0.0 {
                    f64::from(support) / expected
                } else {
                    f64::INFINITY
                },
                p: tests.p_value(at),
            }
        })
        .collect()
}

/// A support against chance.
#[derive(Debug, Clone, Copy)]
struct Score {
    expected: f64,
    lift: f64,
    p: f64,
}

/// Mines `calls` of operations.db.
pub fn detect(conn: &Connection, params: Params) -> rusqlite::Result<Detection> {
    let mut miner = Miner::new(params.max_gap);
    let mut stmt = conn.prepare(
        "SELECT session_id, function_id, ts FROM calls
         WHERE function_id IS NOT NULL ORDER BY session_id, ts, id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let session = row.get_ref(0)?.as_str()?;
        let function = row.get_ref(1)?.as_str()?;
        let ts = row.get_ref(2)?.as_str()?;
        miner.push(session, function, timefmt::epoch_millis(ts));
    }
    Ok(Detection {
        min_support: params.min_support,
        max_gap_s: params.max_gap.as_secs(),
        fdr: params.fdr,
        min_lift: params.min_lift,
        min_excess: params.min_excess,
        sessions: u32::try_from(miner.sessions()).unwrap_or(u32::MAX),
        sequences: miner.finish(&params),
    })
}

/// The `dedupe_key` of a sequence's proposal: `new_pipeline:a>b>c`.
pub fn dedupe_key(sequence: &Sequence) -> String {
    format!("new_pipeline:{}", sequence.functions.join(">"))
}

#[cfg(test)]
mod tests;

//! Sequence mining (CONTRACT §6): which runs of two or three registry
//! functions agents call together again and again, across sessions.
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
//! sorts only each session's calls by time — with
//! function ids interned to integers and one counter per distinct window.
//! Memory is proportional to the distinct windows, not to the calls.
//!
//! # Which sequences are proposed
//! [`worth_a_pipeline`] applies the closed-pattern rule: a pair A→B is not
//! proposed when a triple that contains it (A→B→C or Z→A→B) has the same
//! support — every session that chains A→B then also chains the triple, so
//! the triple is the pipeline and the pair only repeats it. A triple is
//! always proposed (nothing longer is mined).

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

/// What `sequences` is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Least number of sessions a sequence must occur in.
    pub min_support: u32,
    /// Longest pause between two calls of one segment.
    pub max_gap: Duration,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            min_support: 3,
            max_gap: Duration::from_secs(600),
        }
    }
}

/// One mined sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sequence {
    pub functions: Vec<String>,
    pub support: u32,
    pub occurrences: u32,
}

/// The result of a pass, in the JSON shape of CONTRACT §6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub min_support: u32,
    pub max_gap_s: u64,
    /// Most supported first; then most occurrences, longer, and by name.
    pub sequences: Vec<Sequence>,
}

/// A window key: interned function ids, `NONE` in the third slot for pairs.
type Window = [u32; 3];
const NONE: u32 = u32::MAX;

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
    session: Option<String>,
    /// Sessions seen so far; the current one's ordinal is `sessions`.
    sessions: u32,
    last_ts: Option<i64>,
    /// The last two distinct functions of the current segment, newest last.
    tail: [u32; 2],
}

impl Miner {
    pub fn new(max_gap: Duration) -> Self {
        Self {
            max_gap_ms: i64::try_from(max_gap.as_millis()).unwrap_or(i64::MAX),
            names: Vec::new(),
            ids: HashMap::new(),
            windows: HashMap::new(),
            session: None,
            sessions: 0,
            last_ts: None,
            tail: [NONE; 2],
        }
    }

    /// One call. `ts_ms` is `None` when its timestamp cannot be read: it
    /// then starts a new segment, the conservative choice.
    pub fn push(&mut self, session: &str, function: &str, ts_ms: Option<i64>) {
        if self.session.as_deref() != Some(session) {
            self.session = Some(session.to_string());
            self.sessions += 1;
            // No previous time: the next call starts a new segment.
            self.last_ts = None;
        }
        let split = match (self.last_ts, ts_ms) {
            (Some(last), Some(now)) => now.saturating_sub(last) > self.max_gap_ms,
            _ => true,
        };
        self.last_ts = ts_ms;
        if split {
            self.tail = [NONE; 2];
        }
        let f = self.intern(function);
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
        let session = self.sessions;
        let counter = self.windows.entry(window).or_default();
        counter.occurrences += 1;
        if counter.last_session != session {
            counter.last_session = session;
            counter.support += 1;
        }
    }

    /// The sequences with at least `min_support`, in report order.
    pub fn finish(self, min_support: u32) -> Vec<Sequence> {
        let mut sequences: Vec<Sequence> = self
            .windows
            .iter()
            .filter(|(_, c)| c.support >= min_support)
            .map(|(window, c)| Sequence {
                functions: window
                    .iter()
                    .filter(|&&f| f != NONE)
                    .map(|&f| self.names[f as usize].clone())
                    .collect(),
                support: c.support,
                occurrences: c.occurrences,
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
        miner.push(
            session,
            function,
            crate::contract::timefmt::epoch_millis(ts),
        );
    }
    Ok(Detection {
        min_support: params.min_support,
        max_gap_s: params.max_gap.as_secs(),
        sequences: miner.finish(params.min_support),
    })
}

/// The sequences `--propose` turns into `new_pipeline` proposals (the
/// closed-pattern rule of the module docs), in report order.
pub fn worth_a_pipeline(sequences: &[Sequence]) -> Vec<&Sequence> {
    let triple_support: HashMap<(&str, &str), u32> = sequences
        .iter()
        .filter(|s| s.functions.len() == 3)
        .flat_map(|s| {
            let f = &s.functions;
            [
                ((f[0].as_str(), f[1].as_str()), s.support),
                ((f[1].as_str(), f[2].as_str()), s.support),
            ]
        })
        .fold(HashMap::new(), |mut best, (pair, support)| {
            let entry = best.entry(pair).or_insert(0);
            *entry = (*entry).max(support);
            best
        });
    sequences
        .iter()
        .filter(|s| match s.functions.as_slice() {
            [a, b] => triple_support
                .get(&(a.as_str(), b.as_str()))
                .is_none_or(|&longer| longer < s.support),
            _ => true,
        })
        .collect()
}

/// The `dedupe_key` of a sequence's proposal: `new_pipeline:a>b>c`.
pub fn dedupe_key(sequence: &Sequence) -> String {
    format!("new_pipeline:{}", sequence.functions.join(">"))
}

/// The human report.
pub fn render_text(detection: &Detection) -> String {
    if detection.sequences.is_empty() {
        return format!(
            "no sequence reaches support {} (sessions) with gaps up to {}s\n",
            detection.min_support, detection.max_gap_s
        );
    }
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(["support", "occurrences", "sequence"]);
    for s in &detection.sequences {
        table.add_row([
            s.support.to_string(),
            s.occurrences.to_string(),
            s.functions.join(" → "),
        ]);
    }
    format!(
        "{} sequence(s) with support >= {} (max gap {}s):\n{table}\n",
        detection.sequences.len(),
        detection.min_support,
        detection.max_gap_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(calls: &[(&str, &str, i64)], min_support: u32) -> Vec<(String, u32, u32)> {
        let mut miner = Miner::new(Duration::from_secs(600));
        for &(session, f, ts) in calls {
            miner.push(session, f, Some(ts * 1000));
        }
        miner
            .finish(min_support)
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
    fn a_pair_with_a_triple_of_equal_support_is_not_proposed() {
        let seq = |f: &[&str], support| Sequence {
            functions: f.iter().map(|s| s.to_string()).collect(),
            support,
            occurrences: support,
        };
        let all = [
            seq(&["a", "b", "c"], 3),
            seq(&["a", "b"], 3),
            seq(&["b", "c"], 5),
            seq(&["x", "y"], 4),
        ];
        let proposed: Vec<String> = worth_a_pipeline(&all)
            .into_iter()
            .map(|s| s.functions.join(">"))
            .collect();
        assert_eq!(proposed, ["a>b>c", "b>c", "x>y"]);
        assert_eq!(dedupe_key(&all[0]), "new_pipeline:a>b>c");
    }
}

//! Heredoc patterns: the ad-hoc code agents write again and again, clustered
//! into `patterns` (CONTRACT §4) so that a repeated one can be proposed as a
//! registry function.
//!
//! # Lifecycle
//! 1. *At ingest* (inside the ingest transaction, where the raw text still
//!    exists): every heredoc of a Bash command with at least
//!    [`MIN_TOKENS`](crate::recognise::heredoc::MIN_TOKENS) tokens is normalised
//!    ([`crate::recognise::heredoc`]) into a skeleton;
//!    `heredoc_skeletons` keeps each distinct skeleton once (masked, keyed
//!    by its hash), `heredocs` one row per occurrence (session, tool use,
//!    time). The body itself is never stored.
//! 2. *Periodically* ([`refresh`], run by `patterns`, `propose` and the
//!    daemon's schedule): the distinct skeletons are shingled (runs of
//!    [`SHINGLE`] tokens), MinHash signatures put similar ones in the same
//!    LSH bucket, every candidate pair is verified with the exact Jaccard
//!    similarity of its shingle sets (≥ [`Clustering::threshold`]), and
//!    verified pairs are joined with union-find. Every cluster with at least
//!    two heredocs becomes one `patterns` row; the table is rewritten in one
//!    transaction, so readers see the previous pass or this one.
//!
//! # Stable identity
//! A pattern's `pattern_hash` is the skeleton hash of its *oldest* member
//! (earliest first occurrence, then smallest hash). New members joining a
//! cluster, or a younger cluster merging into it, keep the hash; so do
//! proposals keyed on it (`new_function:<pattern_hash>`).

use std::collections::{BTreeSet, HashMap};

use rusqlite::Connection;

/// Tokens per shingle.
pub const SHINGLE: usize = 4;
/// Longest `patterns.skeleton` stored, in characters.
pub const SKELETON_CHARS: usize = 2000;

/// LSH banding: a pair with Jaccard similarity `s` shares a bucket with
/// probability 1 − (1 − s³)²⁰ — 0.93 at the default threshold 0.5, 0.99 at
/// 0.6, 0.73 at 0.4 — and every candidate is then verified exactly, so
/// banding costs recall only near the threshold, never precision.
const BANDS: usize = 20;
const ROWS: usize = 3;
const HASHES: usize = BANDS * ROWS;

/// Clustering settings.
#[derive(Debug, Clone, Copy)]
pub struct Clustering {
    /// Least Jaccard similarity of two skeletons' shingle sets for them to
    /// be near-duplicates.
    pub threshold: f64,
}

impl Default for Clustering {
    fn default() -> Self {
        Self { threshold: 0.5 }
    }
}

/// What a [`refresh`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Refreshed {
    pub heredocs: u64,
    pub skeletons: usize,
    pub patterns: usize,
}

impl std::fmt::Display for Refreshed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heredocs={} skeletons={} patterns={}",
            self.heredocs, self.skeletons, self.patterns
        )
    }
}

/// One distinct skeleton and its occurrences.
#[derive(Debug)]
struct Node {
    hash: String,
    skeleton: String,
    occurrences: u64,
    first_seen: String,
    last_seen: String,
    sessions: BTreeSet<String>,
    shingles: Vec<u64>,
}

/// Re-clusters every recorded heredoc into `patterns`.
pub fn refresh(conn: &mut Connection, clustering: Clustering) -> rusqlite::Result<Refreshed> {
    let mut nodes = load_nodes(conn)?;
    let groups = cluster(&mut nodes, clustering.threshold);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM patterns", [])?;
    let mut written = 0;
    {
        let mut insert = tx.prepare(
            "INSERT INTO patterns (pattern_hash, occurrences, session_ids, first_seen, last_seen, skeleton)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for members in groups {
            let occurrences: u64 = members.iter().map(|&m| nodes[m].occurrences).sum();
            if occurrences < 2 {
                continue;
            }
            let oldest = members
                .iter()
                .map(|&m| &nodes[m])
                .min_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.hash.cmp(&b.hash)))
                .expect("a cluster has members");
            let sessions: BTreeSet<&str> = members
                .iter()
                .flat_map(|&m| nodes[m].sessions.iter().map(String::as_str))
                .collect();
            let first_seen = members.iter().map(|&m| &nodes[m].first_seen).min();
            let last_seen = members.iter().map(|&m| &nodes[m].last_seen).max();
            insert.execute((
                &oldest.hash,
                occurrences as i64,
                serde_json::to_string(&sessions).expect("strings serialise"),
                first_seen,
                last_seen,
                truncate(&oldest.skeleton, SKELETON_CHARS),
            ))?;
            written += 1;
        }
    }
    tx.commit()?;
    Ok(Refreshed {
        heredocs: nodes.iter().map(|n| n.occurrences).sum(),
        skeletons: nodes.len(),
        patterns: written,
    })
}

fn truncate(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

fn load_nodes(conn: &Connection) -> rusqlite::Result<Vec<Node>> {
    let mut stmt = conn.prepare(
        "SELECT s.skeleton_hash, s.skeleton, COUNT(*), MIN(h.ts), MAX(h.ts)
         FROM heredoc_skeletons s JOIN heredocs h ON h.skeleton_hash = s.skeleton_hash
         GROUP BY s.skeleton_hash ORDER BY s.skeleton_hash",
    )?;
    let mut nodes: Vec<Node> = stmt
        .query_map([], |r| {
            let skeleton: String = r.get(1)?;
            Ok(Node {
                hash: r.get(0)?,
                shingles: shingles(&skeleton),
                skeleton,
                occurrences: r.get::<_, i64>(2)? as u64,
                first_seen: r.get(3)?,
                last_seen: r.get(4)?,
                sessions: BTreeSet::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let index: HashMap<String, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.hash.clone(), i))
        .collect();
    let mut stmt = conn.prepare("SELECT DISTINCT skeleton_hash, session_id FROM heredocs")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        if let Some(&i) = index.get(row.get_ref(0)?.as_str()?) {
            nodes[i].sessions.insert(row.get(1)?);
        }
    }
    Ok(nodes)
}

/// The sorted, distinct hashes of a skeleton's token shingles (the whole
/// token list when it is shorter than one shingle).
fn shingles(skeleton: &str) -> Vec<u64> {
    let tokens: Vec<&str> = skeleton.split_whitespace().collect();
    let width = SHINGLE.min(tokens.len()).max(1);
    let mut out: Vec<u64> = tokens
        .windows(width)
        .map(|w| xxhash_rust::xxh3::xxh3_64(w.join(" ").as_bytes()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Exact Jaccard similarity of two sorted sets.
fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - common;
    if union == 0 {
        1.0
    } else {
        common as f64 / union as f64
    }
}

/// MinHash signature: for each of [`HASHES`] permutations (an odd multiplier
/// and an offset, fixed so runs are reproducible), the least permuted value.
fn signature(shingles: &[u64]) -> [u64; HASHES] {
    let mut sig = [u64::MAX; HASHES];
    for &s in shingles {
        for (k, slot) in sig.iter_mut().enumerate() {
            let k = k as u64;
            let a = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(2 * k + 1) | 1;
            let b = 0xD1B5_4A32_D192_ED03u64.wrapping_mul(k + 7);
            let permuted = s.wrapping_mul(a).wrapping_add(b);
            *slot = (*slot).min(permuted);
        }
    }
    sig
}

/// Groups of node indexes: candidates from LSH buckets, verified exactly,
/// joined with union-find.
fn cluster(nodes: &mut [Node], threshold: f64) -> Vec<Vec<usize>> {
    let mut sets = UnionFind::new(nodes.len());
    let mut buckets: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let sig = signature(&node.shingles);
        for band in 0..BANDS {
            let rows = &sig[band * ROWS..(band + 1) * ROWS];
            let key = rows.iter().fold(0u64, |h, &r| {
                xxhash_rust::xxh3::xxh3_64_with_seed(&r.to_le_bytes(), h)
            });
            buckets.entry((band, key)).or_default().push(i);
        }
    }
    for members in buckets.values() {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if sets.find(i) != sets.find(j)
                    && jaccard(&nodes[i].shingles, &nodes[j].shingles) >= threshold
                {
                    sets.union(i, j);
                }
            }
        }
    }
    let mut groups: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..nodes.len() {
        groups.entry(sets.find(i)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    groups.sort();
    groups
}

/// Disjoint sets with path halving and union by size.
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

/// The report of `patterns`: the most widespread first.
pub fn top(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<PatternLine>> {
    let mut stmt = conn.prepare(
        "SELECT pattern_hash, occurrences, json_array_length(session_ids), first_seen, last_seen, skeleton
         FROM patterns ORDER BY json_array_length(session_ids) DESC, occurrences DESC, pattern_hash
         LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(PatternLine {
            pattern_hash: r.get(0)?,
            occurrences: r.get(1)?,
            sessions: r.get(2)?,
            first_seen: r.get(3)?,
            last_seen: r.get(4)?,
            skeleton: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// The human report of `patterns`.
pub fn render_text(refreshed: &Refreshed, top: &[PatternLine]) -> String {
    let mut out = format!("{refreshed}\n");
    if top.is_empty() {
        out.push_str("no heredoc written more than once yet\n");
        return out;
    }
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(["sessions", "heredocs", "pattern", "first line"]);
    for p in top {
        let first_line = p
            .skeleton
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        table.add_row([
            p.sessions.to_string(),
            p.occurrences.to_string(),
            p.pattern_hash.chars().take(12).collect(),
            truncate(first_line, 60).to_string(),
        ]);
    }
    out.push_str(&format!("{table}\n"));
    out
}

/// One row of the `patterns` report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PatternLine {
    pub pattern_hash: String,
    pub occurrences: i64,
    pub sessions: i64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub skeleton: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_of_sorted_sets() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[], &[]), 1.0);
        assert_eq!(jaccard(&[1], &[2]), 0.0);
    }

    #[test]
    fn union_find_joins_transitively() {
        let mut sets = UnionFind::new(4);
        sets.union(0, 1);
        sets.union(2, 1);
        assert_eq!(sets.find(0), sets.find(2));
        assert_ne!(sets.find(0), sets.find(3));
    }
}

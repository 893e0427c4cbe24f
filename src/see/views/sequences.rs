//! Mined sequences as the pages show them: a mining kept with when it ran
//! ([`Mined`]), the most telling of its sequences, and those a function
//! takes part in. Mining is not a view's query (seconds at millions of
//! calls): the server mines in the background, the report once.

use std::time::Instant;

use rusqlite::Connection;
use serde::Serialize;

use crate::insight::{sequences, Detection, Sequence, SequenceParams};

/// How many sequences an answer lists: the proposed ones, then by
/// support. A 10 M-call history mines ~140 000 sequences; no page shows
/// them all.
pub const SEQUENCES_SHOWN: usize = 500;

/// One mining of `calls`.
#[derive(Debug, Clone, Serialize)]
pub struct Mined {
    pub mined_at: String,
    pub millis: u128,
    pub detection: Detection,
}

impl Mined {
    /// Mines with the default parameters (those of `sequences --detect`).
    pub fn mine(conn: &Connection) -> rusqlite::Result<Self> {
        let started = Instant::now();
        let detection = sequences::detect(conn, SequenceParams::default())?;
        Ok(Mined {
            mined_at: crate::contract::timefmt::now(),
            millis: started.elapsed().as_millis(),
            detection,
        })
    }

    /// The answer of `/api/sequences`: the detection with its `limit` most
    /// telling sequences and the number mined (`total`).
    pub fn shown(&self, limit: usize) -> serde_json::Value {
        let all = &self.detection.sequences;
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&a, &b| {
            (all[b].proposed, all[b].support)
                .cmp(&(all[a].proposed, all[a].support))
                .then(a.cmp(&b))
        });
        let shown: Vec<&Sequence> = order.iter().take(limit).map(|&i| &all[i]).collect();
        let d = &self.detection;
        serde_json::json!({ "mined": {
            "mined_at": self.mined_at, "millis": self.millis, "total": all.len(),
            "detection": {
                "min_support": d.min_support, "max_gap_s": d.max_gap_s, "fdr": d.fdr,
                "min_lift": d.min_lift, "min_excess": d.min_excess, "sessions": d.sessions,
                "sequences": shown,
            }
        }})
    }

    /// The first [`SEQUENCES_SHOWN`] sequences `function_id` takes part in.
    pub fn of_function(&self, function_id: &str) -> Vec<Sequence> {
        self.detection
            .sequences
            .iter()
            .filter(|s| s.functions.iter().any(|f| f == function_id))
            .take(SEQUENCES_SHOWN)
            .cloned()
            .collect()
    }
}

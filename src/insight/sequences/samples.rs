//! The first sessions showing each mined sequence, found after mining.
//!
//! Keeping them while mining cost 12 bytes in every window counter — a
//! million of them at 1 M calls, nearly all below the minimum support —
//! so instead one more pass over the miner's history walks the windows
//! again, the miner's way (segments, consecutive repeats collapsed), and
//! notes sessions for the mined windows only.

use foldhash::HashMap;

use super::chance::{SEGMENT_END, SESSION_END};
use super::{Window, NONE, SAMPLES};

/// For each of `mined`, the ordinals (from 1) of the first [`SAMPLES`]
/// sessions of `history` showing it; 0 fills what is missing.
pub(super) fn first_sessions(history: &[u32], mined: &[Window]) -> Vec<[u32; SAMPLES]> {
    let index: HashMap<Window, usize> = mined.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let mut samples = vec![[0u32; SAMPLES]; mined.len()];
    let mut filled = vec![0usize; mined.len()];
    let mut session = 1u32;
    let mut tail = [NONE; 2];
    let mut note = |window: Window, session: u32| {
        if let Some(&at) = index.get(&window) {
            let n = filled[at];
            if n < SAMPLES && (n == 0 || samples[at][n - 1] != session) {
                samples[at][n] = session;
                filled[at] += 1;
            }
        }
    };
    for &item in history {
        match item {
            SESSION_END => {
                session += 1;
                tail = [NONE; 2];
            }
            SEGMENT_END => tail = [NONE; 2],
            f if f == tail[1] => {} // a consecutive repeat
            f => {
                let [older, last] = tail;
                if last != NONE {
                    note([last, f, NONE], session);
                    if older != NONE {
                        note([older, last, f], session);
                    }
                }
                tail = [last, f];
            }
        }
    }
    samples
}

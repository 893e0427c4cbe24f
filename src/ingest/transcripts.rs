//! Transcript files as envelope lines: each line of a Claude Code
//! transcript turned into the envelopes of the hook events it implies
//! ([`crate::capture::transcript`]), reduced by the hook's own reduction,
//! so the rest of the engine — dedupe, pairing, recognition, checkpoints —
//! treats them as spool lines.
//!
//! An implied event's envelope id is derived from the event (session, tool
//! use, event name, time), not drawn: importing a transcript again, under
//! another path or after its checkpoint was lost, yields the same ids, and
//! a tool-use event is a duplicate of the hook's anyway (its key is the
//! session, tool use and event name, CONTRACT §2).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::capture::reduce;
use crate::capture::transcript::{Converter, ImpliedEvent};
use crate::contract::{timefmt, EnvelopeLine, Origin};
use crate::spool::reader::{LineContent, RawLine};

/// What transcripts read so far held, across files and threads.
#[derive(Debug, Default)]
pub struct TranscriptCounts {
    /// Lines that implied no event (other line types, assistant text…).
    pub skipped: AtomicU64,
    /// Tool uses (`tool_use` blocks) read.
    pub tool_uses: AtomicU64,
}

/// The envelopes of one transcript file's lines, in order.
pub struct Envelopes {
    converter: Converter,
    host: String,
    counts: Arc<TranscriptCounts>,
}

impl Envelopes {
    pub fn for_file(
        path: &Path,
        since: Option<DateTime<Utc>>,
        counts: Arc<TranscriptCounts>,
    ) -> Self {
        Envelopes {
            converter: Converter::for_file(path).since(since),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            counts,
        }
    }

    /// Replaces each transcript line by its events' envelope lines, which
    /// keep the transcript line's offset and length. An oversized line
    /// stays, to be quarantined as a spool line would be.
    pub fn convert(&mut self, raw: &mut Vec<RawLine>) {
        let mut out = Vec::with_capacity(raw.len());
        for line in raw.drain(..) {
            let LineContent::Bytes(bytes) = &line.content else {
                out.push(line);
                continue;
            };
            match self.converter.events(bytes) {
                Ok(events) => {
                    let uses = events.iter().filter(|e| e.is_tool_use()).count();
                    self.counts
                        .tool_uses
                        .fetch_add(uses as u64, Ordering::Relaxed);
                    for event in &events {
                        out.push(RawLine {
                            offset: line.offset,
                            len: line.len,
                            content: LineContent::Bytes(self.envelope(event)),
                        });
                    }
                }
                Err(_) => {
                    self.counts.skipped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        *raw = out;
    }

    fn envelope(&self, implied: &ImpliedEvent) -> Vec<u8> {
        let payload = serde_json::to_vec(&implied.payload).unwrap_or_default();
        let mut event = reduce::reduce(&payload);
        event.insert(Origin::MEMBER.into(), Origin::Transcript.as_str().into());
        // The canonical form of the transcript's time; one that does not
        // parse is kept, and the envelope quarantined with its reason.
        let ts = timefmt::parse(&implied.ts)
            .map(timefmt::format)
            .unwrap_or_else(|| implied.ts.clone());
        let id = implied_id(implied);
        let line = EnvelopeLine {
            v: crate::contract::ENVELOPE_VERSION,
            id: &id,
            ts: &ts,
            host: &self.host,
            event: &event,
        };
        serde_json::to_vec(&line).unwrap_or_default()
    }
}

/// `tr-` and 32 hex digits of SHA-256 over what identifies the event.
fn implied_id(implied: &ImpliedEvent) -> String {
    let mut hasher = Sha256::new();
    for key in ["session_id", "tool_use_id", "hook_event_name"] {
        let value = implied.payload.get(key).and_then(|v| v.as_str());
        hasher.update(value.unwrap_or_default().as_bytes());
        hasher.update([0]);
    }
    hasher.update(implied.ts.as_bytes());
    format!("tr-{}", hex::encode(&hasher.finalize()[..16]))
}

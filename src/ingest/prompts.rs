//! Prompts seen by two sources: the hook's `UserPromptSubmit` and the
//! transcript's prompt line are one prompt (issue 23).
//!
//! A tool-use event carries its own key (session, tool use, event), so the
//! hook's and the transcript's copies of it are one row anyway. A prompt has
//! no such key: the hook's envelope id is drawn, the transcript's is derived
//! from the line, and the two reduced events differ (the hook's has
//! `permission_mode` and `prompt_id`). What they share is this:
//!
//! > the session, the agent, the prompt's length in characters, and a time
//! > within [`WINDOW_MS`] of each other.
//!
//! Each stored or matched prompt leaves a mark in `prompt_marks` (migration
//! 012): a hash of those three and of its source, and its time. A prompt is a
//! duplicate when its own mark is already there at the same time (read
//! again: a redelivery, a re-import), or when it pairs with a mark of the
//! other source in the window that has no partner yet — one to one, so two
//! prompts of the same length close together each find their own partner.
//! The price: two distinct prompts of the same length within 30 s, one
//! captured only by the hook and the other only in the transcript, count
//! once. Marks are kept for good (one short row per prompt): a transcript
//! may be imported weeks after its hooks ran.

use rusqlite::Transaction;
use sha2::{Digest, Sha256};

use crate::contract::{events, Envelope, Origin};

/// A hook's prompt and its transcript line this close in time are one
/// prompt. The hook runs as the prompt is submitted and the transcript line
/// is written then too; the margin covers a slow hook and clock rounding.
pub const WINDOW_MS: i64 = 30_000;

/// A prompt's mark under its own source and under the other one.
pub(super) struct Marks {
    own: [u8; 16],
    theirs: [u8; 16],
}

/// The marks of `env` when it is a prompt this check applies to: one with
/// a session and a length. Worked out ahead, on the gathering thread
/// ([`super::events::Keys`]).
pub(super) fn marks_of(env: &Envelope<'_>) -> Option<Marks> {
    let applies = env.hook_event_name() == events::USER_PROMPT_SUBMIT
        && env.field("session_id").is_some()
        && env.int("prompt_chars").is_some();
    if !applies {
        return None;
    }
    let origin = Origin::named(env.field(Origin::MEMBER));
    let other = match origin {
        Origin::Transcript => Origin::Hook,
        _ => Origin::Transcript,
    };
    Some(Marks {
        own: mark(env, origin),
        theirs: mark(env, other),
    })
}

/// Whether the prompt with `marks` at `ts` (ms) was already counted, from
/// its own source or the other's; if not, its mark is left for the other
/// source to find.
pub(super) fn is_counted(tx: &Transaction<'_>, marks: &Marks, ts: i64) -> rusqlite::Result<bool> {
    let Marks { own, theirs } = marks;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO prompt_marks (mark, ts, paired) VALUES (?1, ?2, 0) ON CONFLICT DO NOTHING",
        )?
        .execute((&own[..], ts))?;
    if inserted == 0 {
        return Ok(true); // read before: stored then, or paired then
    }
    // The nearest in time (the earlier of two as near), chosen here: an
    // `ORDER BY abs(ts - ?2)` made SQLite sort in a temporary b-tree for
    // every prompt, and there are rarely more than one or two candidates.
    let mut candidates = tx.prepare_cached(PARTNER_CANDIDATES)?;
    let mut partner: Option<i64> = None;
    for candidate in candidates.query_map((&theirs[..], ts, WINDOW_MS), |r| r.get::<_, i64>(0))? {
        let candidate = candidate?;
        if partner.is_none_or(|best| (candidate - ts).abs() < (best - ts).abs()) {
            partner = Some(candidate);
        }
    }
    let Some(partner_ts) = partner else {
        return Ok(false);
    };
    let pair = "UPDATE prompt_marks SET paired = 1 WHERE mark = ?1 AND ts = ?2";
    tx.prepare_cached(pair)?.execute((&own[..], ts))?;
    tx.prepare_cached(pair)?
        .execute((&theirs[..], partner_ts))?;
    Ok(true)
}

/// The other source's unpaired marks of a prompt (`?1`) within `?3` ms of
/// `?2`, in time order.
pub(super) const PARTNER_CANDIDATES: &str =
    "SELECT ts FROM prompt_marks WHERE mark = ?1 AND ts BETWEEN ?2 - ?3 AND ?2 + ?3 AND paired = 0
     ORDER BY ts";

/// 16 bytes of SHA-256 over the session, the agent, the length and the
/// source of the prompt `env`.
fn mark(env: &Envelope<'_>, origin: Origin) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for part in [
        env.field("session_id").unwrap_or_default(),
        env.field("agent_id").unwrap_or_default(),
        origin.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(env.int("prompt_chars").unwrap_or(-1).to_le_bytes());
    let digest = hasher.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

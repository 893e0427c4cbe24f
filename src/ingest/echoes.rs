//! Echoes: one event delivered twice because the hook is registered twice.
//!
//! Claude Code runs every matching hook of every settings file (user,
//! project, a plugin), so `call_monitor hook` registered in two of them
//! spools each event twice, under two envelope ids, milliseconds apart. A
//! tool-use event is stored once anyway (its key is the tool use, CONTRACT
//! §2); for the other events of a session — prompts, session starts and
//! ends, stops, notifications, compactions, subagents, permission requests —
//! this is the key:
//!
//! > the session, the event name and a hash of the whole reduced event
//! > (every member, in order), within [`WINDOW_MS`] of each other.
//!
//! The two copies of an echo are byte-identical events, because the same
//! reduction made them from the same stdin; their envelope times differ by
//! the few milliseconds between the two hook processes. The second is
//! counted as a duplicate. The price: two genuinely distinct events of one
//! session with identical reduced content within two seconds (two
//! permission requests for parallel `Read`s, say) are stored once.
//!
//! Tool-use events without a `tool_use_id` (Claude Code before late 2025)
//! are not checked: identical commands run back to back are common there,
//! and they pair first in, first out ([`super::tools`]). With the hook
//! registered twice, such a version's tool uses count twice.
//!
//! `event_echoes` keeps (key, time) in the transaction of the rows, so the
//! check holds across batches, files and restarts. It is keyed by time
//! first (migration 016): inserts append, and the check reads the rows of
//! a four-second window. A row is kept for a day
//! after its ingestion (the two copies of an echo are spooled together, so
//! they are ingested together), then dropped.

use rusqlite::{OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::plan::Phase;
use crate::contract::{Envelope, Field};

/// Two deliveries of one event this close in time are one event.
pub const WINDOW_MS: i64 = 2_000;

/// The echo key of `env` when it is subject to the echo check — an event
/// of a session that is not a tool-use phase (PreToolUse, PostToolUse,
/// PostToolUseFailure). Worked out ahead, on the gathering thread
/// ([`super::events::Keys`]).
pub(super) fn key_of(env: &Envelope<'_>) -> Option<[u8; 16]> {
    let applies = env.field("session_id").is_some() && Phase::of(env.hook_event_name()).is_none();
    applies.then(|| echo_key(env))
}

/// The echo key of `env`: 16 bytes of SHA-256 over its members.
fn echo_key(env: &Envelope<'_>) -> [u8; 16] {
    let mut hasher = Sha256::new();
    for (name, value) in env.members() {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        match value {
            Field::Str(s) => {
                hasher.update([b's']);
                hasher.update(s.as_bytes());
            }
            Field::Int(n) => {
                hasher.update([b'i']);
                hasher.update(n.to_le_bytes());
            }
            Field::Bool(b) => hasher.update([b'b', u8::from(*b)]),
            Field::Raw(raw) => {
                hasher.update([b'r']);
                hasher.update(raw.get().as_bytes());
            }
            Field::Opaque => hasher.update([b'o']),
        }
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Whether the event with echo key `key` at `ts` (ms) echoes an event
/// already seen (stored, or earlier in this transaction) within
/// [`WINDOW_MS`]; if not, it is remembered.
pub(super) fn is_echo(
    tx: &Transaction<'_>,
    key: &[u8; 16],
    ts: i64,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    let seen = tx
        .prepare_cached(SEEN)?
        .query_row((&key[..], ts, WINDOW_MS), |_| Ok(()))
        .optional()?
        .is_some();
    if !seen {
        tx.prepare_cached(
            "INSERT INTO event_echoes (echo_key, ts, seen_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute((&key[..], ts, now_ms))?;
    }
    Ok(seen)
}

/// An echo row of key `?1` within `?3` ms of `?2`: a range of the primary
/// key (time first, migration 016), a few rows long.
pub(super) const SEEN: &str =
    "SELECT 1 FROM event_echoes WHERE ts BETWEEN ?2 - ?3 AND ?2 + ?3 AND echo_key = ?1 LIMIT 1";

/// How long an echo row is kept after its ingestion.
const KEEP_MS: i64 = 86_400_000;

/// Drops the echo rows ingested more than a day before `now_ms`.
pub(super) fn forget_old(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM event_echoes WHERE seen_at < ?1")?
        .execute([now_ms - KEEP_MS])?;
    Ok(())
}

//! The `events` rows of a batch: one per valid envelope, under the key that
//! recognises a redelivery ([`dedupe_key`], CONTRACT §2).
//!
//! Every ingested line is one `events` insert, and a statement executed for
//! a single row spent about as much on its own setup and teardown (cursors,
//! bindings, halting) as on the row (BENCHMARKS.md, 0.9.0). So the
//! rows go in [`CHUNK`] at a time, in one multi-row `INSERT`. A chunk with a
//! duplicate fails on the key, and SQLite backs out that statement alone
//! (its statement journal; the transaction goes on), without saying which
//! row it was: the chunk is then inserted again row by row, `ON CONFLICT DO
//! NOTHING`, which says it for each. Duplicates are rare (redeliveries), so
//! nearly every chunk is one statement. (A savepoint around each chunk, with
//! `ON CONFLICT DO NOTHING` in the chunk, cost a third of the gain.)
//!
//! # Invariants
//! - An envelope's row is stored exactly when no row with its key exists
//!   (in the database, or earlier in the batch) and it is no echo of an
//!   event stored within two seconds ([`echoes`]), nor a prompt the other
//!   source already counted ([`prompts`]); [`store`] says, line by line,
//!   which.
//! - Rows are inserted in batch order, so of two lines with one key the
//!   first is stored and the second is the duplicate, as row by row.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, ErrorCode, Transaction};

use super::batches::Parsed;
use super::{echoes, prompts};
use crate::contract::Envelope;

/// Rows per multi-row insert: large enough that the statement's overhead
/// is spread thin, small enough that a chunk with a duplicate costs little
/// to redo row by row.
pub const CHUNK: usize = 32;

/// Inserts the `events` row of every valid envelope of `parsed`, stamped
/// `ingested_at`; per line, whether its row was stored (`false` for a
/// duplicate and for a rejected line).
pub fn store(
    tx: &Transaction<'_>,
    parsed: &[Parsed<'_>],
    ingested_at: i64,
) -> rusqlite::Result<Vec<bool>> {
    let mut stored = vec![false; parsed.len()];
    let mut valid: Vec<Valid<'_, '_>> = Vec::with_capacity(parsed.len());
    for (at, line) in parsed.iter().enumerate() {
        let Ok(env) = line.envelope.as_ref() else {
            continue;
        };
        let ts = env.ts.timestamp_millis();
        // An echo (the hook registered twice) is a duplicate, as a
        // redelivery is: no row.
        if let Some(key) = &line.keys.echo {
            if echoes::is_echo(tx, key, ts, ingested_at)? {
                continue;
            }
        }
        // A prompt the other source (hook or transcript) already counted.
        if let Some(marks) = &line.keys.prompt {
            if prompts::is_counted(tx, marks, ts)? {
                continue;
            }
        }
        valid.push(Valid {
            at,
            env,
            keys: &line.keys,
        });
    }
    echoes::forget_old(tx, ingested_at)?;
    let mut rows = Rows {
        chunk: tx.prepare_cached(&INSERT_CHUNK)?,
        one: tx.prepare_cached(INSERT_EVENT)?,
        ingested_at,
    };
    let mut chunks = valid.chunks_exact(CHUNK);
    for chunk in &mut chunks {
        match rows.insert_chunk(chunk) {
            Ok(()) => chunk.iter().for_each(|line| stored[line.at] = true),
            // Backed out whole; any other failure shows again row by row.
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                rows.insert_each(chunk, &mut stored)?
            }
            Err(e) => return Err(e),
        }
    }
    rows.insert_each(chunks.remainder(), &mut stored)?;
    Ok(stored)
}

/// The keys of a valid envelope, worked out ahead on the gathering thread
/// (on the database thread, building and hashing them cost ~6 % of it,
/// most of it in reading the envelope's scattered members): its dedupe key
/// when that is text ([`dedupe_key`]), the 16 bytes of its id when that is
/// a canonical UUID ([`event_key`]), its echo key ([`echoes`]) and its
/// prompt marks ([`prompts`]) when those checks apply to it.
#[derive(Default)]
pub struct Keys {
    text_key: String,
    uuid: Option<[u8; 16]>,
    echo: Option<[u8; 16]>,
    prompt: Option<prompts::Marks>,
}

impl Keys {
    pub fn of(env: &Envelope<'_>) -> Self {
        let uuid = canonical_uuid(&env.id);
        Keys {
            text_key: text_key(env, uuid.is_some()),
            uuid,
            echo: echoes::key_of(env),
            prompt: prompts::marks_of(env),
        }
    }
}

/// A line with a valid envelope: its position in the batch, the envelope,
/// and its keys.
struct Valid<'p, 'e> {
    at: usize,
    env: &'p Envelope<'e>,
    keys: &'p Keys,
}

/// The statements of one [`store`] and the time it stamps.
struct Rows<'t> {
    chunk: CachedStatement<'t>,
    one: CachedStatement<'t>,
    ingested_at: i64,
}

impl Rows<'_> {
    /// Inserts the rows of `chunk` ([`CHUNK`] lines) in one statement, all
    /// or none: it fails on a key already stored, or twice in the chunk.
    fn insert_chunk(&mut self, chunk: &[Valid<'_, '_>]) -> rusqlite::Result<()> {
        for (row, &Valid { env, keys, .. }) in chunk.iter().enumerate() {
            let first = 4 * row + 1;
            self.chunk.raw_bind_parameter(first, dedupe_key(keys))?;
            self.chunk
                .raw_bind_parameter(first + 1, event_key(&env.id, keys))?;
            self.chunk
                .raw_bind_parameter(first + 2, env.ts.timestamp_millis())?;
            self.chunk.raw_bind_parameter(first + 3, self.ingested_at)?;
        }
        self.chunk.raw_execute().map(drop)
    }

    /// Inserts the rows of `lines` one statement each, marking in `stored`
    /// those that were.
    fn insert_each(
        &mut self,
        lines: &[Valid<'_, '_>],
        stored: &mut [bool],
    ) -> rusqlite::Result<()> {
        for &Valid { at, env, keys } in lines {
            let inserted = self.one.execute((
                dedupe_key(keys),
                event_key(&env.id, keys),
                env.ts.timestamp_millis(),
                self.ingested_at,
            ))?;
            stored[at] = inserted == 1;
        }
        Ok(())
    }
}

/// [`CHUNK`] rows of [`INSERT_EVENT`] in one statement, failing on a
/// duplicate instead of skipping it.
pub(super) static INSERT_CHUNK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows: Vec<String> = (0..CHUNK)
        .map(|row| {
            let first = 4 * row + 1;
            format!(
                "(?{}, ?{}, ?{}, ?{})",
                first,
                first + 1,
                first + 2,
                first + 3
            )
        })
        .collect();
    format!(
        "INSERT INTO events (dedupe_key, envelope_id, ts, ingested_at) VALUES {}",
        rows.join(", ")
    )
});

/// One row.
const INSERT_EVENT: &str = "INSERT INTO events (dedupe_key, envelope_id, ts, ingested_at)
     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";

/// The key that recognises a redelivery of `env`, the key of `events`
/// (migration 008 converts older rows by the same rule):
/// - a tool-use event (with a session and a tool-use id): the text
///   `<bytes>:<session_id> <bytes>:<tool_use_id> <hook_event_name>`, each id
///   preceded by its length in bytes, so equal keys mean equal triples — a
///   line spooled again, under its id or a new one, has the same triple;
/// - any other event: its envelope id ([`event_key`]: a canonical UUID's 16
///   bytes), or the text `id:<id>` for another id. A tool-use key starts
///   with a digit, and a blob never equals a text, so no two kinds collide.
///
/// The key is worked out ahead, in [`Keys`].
fn dedupe_key(keys: &Keys) -> ToSqlOutput<'_> {
    match &keys.uuid {
        Some(bytes) if keys.text_key.is_empty() => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        _ => ToSqlOutput::Borrowed(ValueRef::Text(keys.text_key.as_bytes())),
    }
}

/// The text dedupe key of `env` ([`dedupe_key`]); empty when the key is its
/// id's UUID bytes (`uuid`: it has them).
fn text_key(env: &Envelope<'_>, uuid: bool) -> String {
    let mut key = String::new();
    if let (Some(session), Some(tool_use)) = (env.field("session_id"), env.field("tool_use_id")) {
        key.reserve(session.len() + tool_use.len() + 32);
        let mut length = itoa::Buffer::new();
        for id in [session, tool_use] {
            key.push_str(length.format(id.len()));
            key.push(':');
            key.push_str(id);
            key.push(' ');
        }
        key.push_str(env.hook_event_name());
    } else if !uuid {
        key.push_str("id:");
        key.push_str(&env.id);
    }
    key
}

/// An envelope id as `events` stores it: the 16 bytes of a canonical UUID
/// (lowercase, hyphenated, as the hook writes them), else the id's text.
/// One-to-one, so equal keys mean equal ids; migration 006 converts older
/// rows by the same rule.
/// (`keys.uuid` is `canonical_uuid(id)`, worked out ahead in [`Keys`].)
fn event_key<'a>(id: &'a str, keys: &'a Keys) -> ToSqlOutput<'a> {
    ToSqlOutput::Borrowed(match &keys.uuid {
        Some(bytes) => ValueRef::Blob(bytes),
        None => ValueRef::Text(id.as_bytes()),
    })
}

/// The 16 bytes of `id` when it is a UUID written canonically.
fn canonical_uuid(id: &str) -> Option<[u8; 16]> {
    let canonical = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
    if !canonical {
        return None;
    }
    uuid::Uuid::try_parse(id).ok().map(|uuid| *uuid.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract as envelope;
    use crate::store::{Database, Missing};

    /// Line `i`: a tool use of its own, unless `tool_use` says otherwise.
    fn line(i: usize, tool_use: usize) -> String {
        format!(
            r#"{{"v":1,"id":"01a20f50-4841-7007-b311-{i:012x}","ts":"2026-11-24T10:00:00.000Z","host":"h","event":{{"session_id":"s","tool_use_id":"t{tool_use}","hook_event_name":"PostToolUse","tool_name":"Bash"}}}}"#
        )
    }

    fn parsed(lines: &[String]) -> Vec<Parsed<'_>> {
        lines
            .iter()
            .map(|line| {
                let envelope = envelope::parse(line.as_bytes());
                let keys = envelope.as_ref().map(Keys::of).unwrap_or_default();
                Parsed {
                    envelope,
                    planned: None,
                    keys,
                }
            })
            .collect()
    }

    /// Chunks with duplicates — stored before, twice in one chunk, or
    /// across chunks — and a rejected line: the same answer, line by line,
    /// as inserting each row alone, and the first of two lines with one
    /// key is the one stored.
    #[test]
    fn chunks_with_duplicates_store_what_rows_one_by_one_would() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(&dir.path().join("ops.db"), Missing::Create).unwrap();
        let conn = db.conn_mut();
        let mut lines: Vec<String> = (0..3 * CHUNK + 5).map(|i| line(i, i)).collect();
        lines[40] = line(40, 35); // in the chunk of line 35: a retried hook
        lines[70] = line(70, 10); // a chunk later than line 10
        lines[50] = "not json".to_string();
        let before = [line(80, 80), line(90, 90)]; // stored by an earlier batch
        let tx = conn.transaction().unwrap();
        assert_eq!(store(&tx, &parsed(&before), 1).unwrap(), [true, true]);
        let stored = store(&tx, &parsed(&lines), 2).unwrap();
        let expected: Vec<bool> = (0..lines.len())
            .map(|i| ![40, 70, 50, 80, 90].contains(&i))
            .collect();
        assert_eq!(stored, expected);
        let rows: i64 = tx
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows as usize, lines.len() - 3);
        let kept: Vec<u8> = tx
            .query_row(
                "SELECT envelope_id FROM events WHERE dedupe_key = '1:s 3:t35 PostToolUse'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept.last(), Some(&35));
    }
}

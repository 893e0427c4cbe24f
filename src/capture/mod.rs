//! `call_monitor hook`: one Claude Code hook payload in, one spool line out.
//!
//! Claude Code runs this on every tool event and waits for it, so it must be
//! cheap and must never break the agent:
//! - no database, no network, no lock it could wait on (see [`crate::spool`]);
//! - bounded memory: stdin is read up to [`STDIN_MAX`] (larger input is
//!   drained and spooled as `_invalid`), the line written is bounded by the
//!   reduction's caps (≪ 1 MiB);
//! - it always exits 0; a failure is one line on stderr and the agent goes on.
//!
//! # Lifecycle
//! read stdin → [`reduce::reduce`] (CONTRACT §3) → wrap in an envelope
//! (UUIDv7 id, RFC 3339 ms UTC timestamp, host) → [`crate::spool::append_line`]
//! → on SessionStart, the session's exports into `CLAUDE_ENV_FILE`
//! ([`session_env`]).

pub mod install;
pub mod reduce;
pub mod session_env;
pub mod transcript;

use std::io::{self, Read};
use std::path::Path;

use chrono::Utc;

use crate::contract::envelope_line;

use crate::spool;

/// Stdin beyond this is not parsed (it is drained and the event is spooled
/// as `_invalid` with its first bytes).
pub const STDIN_MAX: usize = 64 * 1024 * 1024;

/// Runs the hook on real stdin. Never fails: problems are reported on
/// stderr and the caller exits 0.
pub fn run(spool_dir: &Path) {
    let input = match read_bounded(io::stdin().lock(), STDIN_MAX) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("call_monitor hook: cannot read stdin: {e}");
            return;
        }
    };
    match spool_event(spool_dir, &input) {
        Ok(event) => export_session(&event, spool_dir),
        Err(e) => eprintln!("call_monitor hook: event not recorded: {e}"),
    }
}

/// On SessionStart, tells the session's later Bash commands their session
/// and spool through `CLAUDE_ENV_FILE` ([`session_env`]).
fn export_session(event: &serde_json::Map<String, serde_json::Value>, spool_dir: &Path) {
    let field = |name| event.get(name).and_then(serde_json::Value::as_str);
    if field("hook_event_name") != Some(crate::contract::events::SESSION_START) {
        return;
    }
    let (Some(session_id), Some(env_file)) = (
        field("session_id").filter(|id| !id.is_empty()),
        std::env::var_os(session_env::CLAUDE_ENV_FILE).filter(|f| !f.is_empty()),
    ) else {
        return;
    };
    if let Err(e) = session_env::export(Path::new(&env_file), session_id, spool_dir) {
        eprintln!("call_monitor hook: cannot write the session's environment file: {e}");
    }
}

/// Stdin as read: its first `max` bytes, and whether there was more.
pub struct Input {
    pub bytes: Vec<u8>,
    pub overflowed: bool,
}

/// Reads up to `max` bytes, then drains (and drops) the rest so the writer
/// on the other end of the pipe is never blocked or broken.
pub fn read_bounded(reader: impl Read, max: usize) -> io::Result<Input> {
    let mut bytes = Vec::new();
    let mut limited = reader.take(max as u64 + 1);
    limited.read_to_end(&mut bytes)?;
    let overflowed = bytes.len() > max;
    if overflowed {
        bytes.truncate(max);
        io::copy(&mut limited.into_inner(), &mut io::sink())?;
    }
    Ok(Input { bytes, overflowed })
}

/// Reduces `input` and appends its envelope to the spool; returns the
/// reduced event.
pub fn spool_event(
    spool_dir: &Path,
    input: &Input,
) -> Result<serde_json::Map<String, serde_json::Value>, spool::SpoolError> {
    let event = if input.overflowed {
        reduce::invalid(&input.bytes)
    } else {
        reduce::reduce(&input.bytes)
    };
    let now = Utc::now();
    let line = envelope_line(&event, now);
    spool::ensure_dir(spool_dir)?;
    spool::append_line(spool_dir, &line, now)?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_stdin_is_drained_and_marked() {
        let data = [b'x'; 100];
        let input = read_bounded(&data[..], 10).unwrap();
        assert_eq!(input.bytes.len(), 10);
        assert!(input.overflowed);
        let exact = read_bounded(&data[..10], 10).unwrap();
        assert!(!exact.overflowed);
    }
}

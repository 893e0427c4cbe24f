//! The wire contract (CONTRACT §2): the one home of the spool line format.
//!
//! Everything that writes a spool line or reads one back goes through here:
//! - [`EnvelopeLine`] / [`envelope_line`]: envelope v1 as a writer puts it
//!   on one line (the hook; later other writers).
//! - [`Envelope`] / [`parse`]: one line read back and validated, zero-copy;
//!   what is not an envelope is a [`Rejection`], whose text (never quoting
//!   the line) becomes the quarantine reason.
//! - The limits of a line ([`MAX_LINE`]), the event names the pipeline acts
//!   on ([`events`]), and the one timestamp format every table stores
//!   ([`timefmt`]).
//! - [`code`]: code as the hook, recognition and `snapshot` all read it —
//!   tokens, and the fingerprints of copy detection.
//!
//! # Invariants
//! - A line written by [`envelope_line`] is accepted by [`parse`] (tested).
//! - This stage imports no other stage: capture, the spool, recognition and
//!   ingestion all depend on it, never the other way round.

pub mod code;
mod envelope;
pub mod timefmt;
mod writer;

pub use envelope::{parse, Envelope, Field, Rejection, MAX_ID_LEN};
pub use writer::{envelope_line, EnvelopeLine};

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Longest line (newline included) the pipeline accepts (CONTRACT §2).
pub const MAX_LINE: usize = 1024 * 1024;

/// Hook event names (CONTRACT §3) the pipeline acts on. Any other name is
/// stored as an event all the same.
pub mod events {
    pub const PRE_TOOL_USE: &str = "PreToolUse";
    pub const POST_TOOL_USE: &str = "PostToolUse";
    pub const POST_TOOL_USE_FAILURE: &str = "PostToolUseFailure";
    pub const SESSION_START: &str = "SessionStart";
    pub const SESSION_END: &str = "SessionEnd";
    pub const USER_PROMPT_SUBMIT: &str = "UserPromptSubmit";
    pub const PERMISSION_REQUEST: &str = "PermissionRequest";
    pub const PRE_COMPACT: &str = "PreCompact";
    pub const SUBAGENT_START: &str = "SubagentStart";
    pub const SUBAGENT_STOP: &str = "SubagentStop";
    pub const NOTIFICATION: &str = "Notification";
    pub const STOP: &str = "Stop";
    pub const STOP_FAILURE: &str = "StopFailure";
    /// What the hook spools for stdin that is not a JSON object; the daemon
    /// quarantines it.
    pub const INVALID: &str = "_invalid";
    /// One registry function call measured by the Python telemetry wrapper
    /// (`clients/python`), with `"origin": "wrapper"`: `function_id`,
    /// `started_at`, `duration_ms`, `success`, `error_class` (an exception
    /// class name), `args_hash`, and `session_id` when the session is known.
    pub const FUNCTION_CALL: &str = "FunctionCall";
}

/// Which writer an event came from (`tool_uses.source`, `calls.source`).
///
/// A writer other than the hook says so in the event's [`Origin::MEMBER`]
/// member (`"origin": "transcript"`); an event without it is the hook's.
/// The hook's reduction keeps only the members of CONTRACT §3, so a payload
/// cannot claim another origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The hook (or another writer of hook payloads into the spool).
    Hook,
    /// A Claude Code transcript (`import-transcripts`).
    Transcript,
    /// The Python telemetry wrapper.
    Wrapper,
}

impl Origin {
    /// The event member naming a writer other than the hook.
    pub const MEMBER: &'static str = "origin";

    /// The origin an event's `origin` member names (the hook's when absent
    /// or unknown).
    pub fn named(member: Option<&str>) -> Self {
        match member {
            Some("transcript") => Origin::Transcript,
            Some("wrapper") => Origin::Wrapper,
            _ => Origin::Hook,
        }
    }

    /// As stored in the `source` columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Hook => "hook",
            Origin::Transcript => "transcript",
            Origin::Wrapper => "wrapper",
        }
    }
}

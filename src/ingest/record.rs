//! Recording a batch: the new envelopes of a transaction applied to the
//! event tables, in order, by the [`Recorder`].
//!
//! What a tool use states is decided by recognition; the [`plan`](super::plan)
//! decides what each event does; the [`rows`](super::rows) writers write its
//! facts; [`Sessions`] merges the session rows; the rollups take the deltas.
//! [`Recorder::finish`] completes the transaction: rollups flushed, then
//! the health of the sessions it touched.

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use rusqlite::Transaction;

use super::plan::{Action, Ahead, Phase, Recognised};
use super::rollups;
use super::row_sql::{CALL_INSERT, TOOL_INSERT};
use super::rows::{duration_of, outcome, record_end, record_start, ToolUse};
use super::sessions::Sessions;
use super::tool_rollups;
use super::tools::{self, ToolOutcome};
use super::wrapper;
use crate::contract::{events, Envelope, Origin};
use crate::recognise::Recogniser;

/// Applies new envelopes to the event tables, one batch at a time, and
/// completes each transaction ([`Recorder::finish`]).
pub struct Recorder {
    recogniser: Arc<Recogniser>,
    sessions: Sessions,
    rollups: rollups::Pending,
    tools: tool_rollups::Pending,
}

impl Recorder {
    pub fn new(recogniser: Recogniser) -> Self {
        Recorder {
            recogniser: Arc::new(recogniser),
            sessions: Sessions::new(),
            rollups: rollups::Pending::default(),
            tools: tool_rollups::Pending::default(),
        }
    }

    /// Uses new rules or a new catalog from the next batch on.
    pub fn set_recogniser(&mut self, recogniser: Recogniser) {
        self.recogniser = Arc::new(recogniser);
    }

    /// The recogniser in use, to work a batch out ahead on another thread
    /// ([`super::plan::work_ahead`]).
    pub fn recogniser(&self) -> Arc<Recogniser> {
        Arc::clone(&self.recogniser)
    }

    /// Forgets cached state; called when a transaction rolls back.
    pub fn forget(&mut self) {
        self.sessions.forget();
        self.rollups.clear();
        self.tools.clear();
    }

    /// Applies the envelopes newly stored in `tx`, in order. `ahead` holds,
    /// position by position, what [`super::plan::work_ahead`] made of them,
    /// fitted to this batch ([`Ahead::fit`]); an event that needs facts and
    /// has none is recognised now. The facts are left in `ahead.plan` (one
    /// entry per envelope), for the caller to free where they were made.
    pub fn apply_batch(
        &mut self,
        tx: &Transaction<'_>,
        batch: &[&Envelope<'_>],
        ahead: &mut Ahead,
    ) -> rusqlite::Result<()> {
        ahead.fit(batch);
        let plan = &mut ahead.plan;
        // Prepared once per batch: a cached statement handed back after each
        // use costs two hashes of its SQL (≈ 4 % of the database thread).
        let mut call_insert = tx.prepare_cached(CALL_INSERT)?;
        let mut tool_insert = tx.prepare_cached(TOOL_INSERT)?;
        let mut starts: HashMap<(&str, &str), &str> = HashMap::new();
        for (i, env) in batch.iter().enumerate() {
            let ts = env.ts_text.as_str();
            let session = env.field("session_id");
            let name = env.hook_event_name();
            // A call the Python wrapper measured: not a Claude Code event.
            if name == events::FUNCTION_CALL {
                if let Some(session_id) = wrapper::record(tx, &mut self.rollups, env)? {
                    self.sessions.touch(session_id);
                }
                continue;
            }
            self.tools.event(name, session, env.field("trigger"), ts);
            let Some(session_id) = session else {
                continue;
            };
            self.sessions.record(tx, env, session_id, ts)?;
            let Some(phase) = Phase::of(name) else {
                continue;
            };
            let key = super::plan::pair_key(env);
            if plan[i].action == Action::StartOnly {
                if let Some(key) = key {
                    starts.insert(key, ts);
                }
                continue;
            }
            let start = match phase {
                Phase::Pre => None,
                Phase::Post { .. } => key.and_then(|k| starts.remove(&k)),
            };
            let tool_name = env.field("tool_name");
            // Payloads from before late 2025 have no tool-use id: one from
            // the session's queue for this input pairs Pre and Post.
            let queued = match (env.field("tool_use_id"), tool_name) {
                (None, Some(_)) => Some(tools::queue_id(tx, session_id, env, phase)?),
                _ => None,
            };
            let tool_use = ToolUse {
                session_id,
                tool_use_id: env.field("tool_use_id").or(queued.as_deref()),
                ts,
                agent_id: env.field("agent_id"),
                agent_type: env.field("agent_type"),
                origin: Origin::named(env.field(Origin::MEMBER)),
            };
            if let Some(tool_name) = tool_name {
                let outcome = match phase {
                    Phase::Pre => None,
                    Phase::Post { success } => Some(ToolOutcome {
                        success,
                        duration_ms: duration_of(env, start),
                        start: start.map(str::to_string),
                    }),
                };
                tools::write_tool_use(
                    tx,
                    &mut tool_insert,
                    &mut self.tools,
                    &tool_use,
                    tool_name,
                    env,
                    outcome.as_ref(),
                )?;
            }
            let Recognised { facts, error_class } = plan[i]
                .recognised
                .get_or_insert_with(|| Recognised::of(&self.recogniser, env));
            if facts.is_empty() {
                continue;
            }
            self.sessions.touch(session_id);
            match phase {
                Phase::Pre => {
                    record_start(tx, &mut call_insert, &mut self.rollups, &tool_use, facts)?
                }
                Phase::Post { success } => {
                    let outcome = outcome(env, success, start, facts, error_class.as_deref());
                    record_end(
                        tx,
                        &mut call_insert,
                        &mut self.rollups,
                        &tool_use,
                        &outcome,
                        facts,
                    )?
                }
            }
        }
        self.rollups.events_inserted(batch.len() as u64);
        Ok(())
    }

    /// Completes the transaction's rows: the rollup deltas, then the health
    /// of the sessions its batches touched (which reads the session tallies
    /// just updated). Called once, last, before the commit.
    pub fn finish(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        self.rollups.flush(tx)?;
        self.tools.flush(tx)?;
        self.sessions.update_health(tx)
    }
}

//! Planning a batch: what each event of it will do, decided before the
//! database is touched — pure, so it runs on the reader thread, one batch
//! ahead of the database work ([`work_ahead`]).
//!
//! # Rules
//! - An event without a `session_id`, or that is not a tool-use phase
//!   (PreToolUse, PostToolUse, PostToolUseFailure), is [`Action::Skip`]ped:
//!   it is stored as an event, nothing more.
//! - A Pre whose Post (same session and tool use) comes later in the same
//!   batch is [`Action::StartOnly`]: it only lends its start time, and the
//!   Post writes the complete row at once (one insert, not two writes).
//! - Every other tool-use event is [`Action::Record`]ed, and only those are
//!   recognised ahead.
//! - A plan holds for the batch it was made for. When some events turn out
//!   duplicates, [`Ahead::fit`] plans the remaining ones again.

use foldhash::{HashMap, HashMapExt};

use crate::contract::{events, Envelope};
use crate::recognise::{Facts, Recogniser};

/// The phase of a tool-use event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Pre,
    Post { success: bool },
}

impl Phase {
    pub(super) fn of(hook_event_name: &str) -> Option<Self> {
        match hook_event_name {
            events::PRE_TOOL_USE => Some(Phase::Pre),
            events::POST_TOOL_USE => Some(Phase::Post { success: true }),
            events::POST_TOOL_USE_FAILURE => Some(Phase::Post { success: false }),
            _ => None,
        }
    }
}

/// What [`Recorder::apply_batch`](super::record::Recorder::apply_batch) does with each event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Not a tool-use event of a session: no facts.
    Skip,
    /// A Pre whose Post comes later in the same batch: it only lends its
    /// start time, and the Post writes the complete row at once (one
    /// insert, not two writes).
    StartOnly,
    /// Recognised and recorded.
    Record,
}

/// One event's action and, when worked out ahead, its recognition.
pub struct Planned {
    pub(super) action: Action,
    pub(super) recognised: Option<Recognised>,
}

/// What an event states: its facts and, for a failed Post with facts, its
/// error class.
pub struct Recognised {
    pub(super) facts: Facts,
    pub(super) error_class: Option<String>,
}

impl Recognised {
    pub(super) fn of(recogniser: &Recogniser, env: &Envelope<'_>) -> Self {
        let failed = Phase::of(env.hook_event_name()) == Some(Phase::Post { success: false });
        let facts = recogniser.recognise(env);
        // Only recorded facts carry an error class.
        let error_class = (failed && !facts.is_empty()).then(|| recogniser.error_class(env));
        Recognised { facts, error_class }
    }
}

/// A batch worked out ahead ([`work_ahead`]) for the recorder.
#[derive(Default)]
pub struct Ahead {
    /// Per event, in batch order.
    pub plan: Vec<Planned>,
    /// Whether the plan was made for exactly the events being applied.
    pub exact: bool,
}

/// Each event's [`Action`]: a Pre whose Post comes later in the batch
/// only lends its start; other tool-use events of a session are recorded;
/// the rest skipped.
pub(super) fn plan_batch(batch: &[&Envelope<'_>]) -> Vec<Planned> {
    let mut post_at: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, env) in batch.iter().enumerate() {
        if let (Some(Phase::Post { .. }), Some(key)) =
            (Phase::of(env.hook_event_name()), pair_key(env))
        {
            post_at.entry(key).or_insert(i);
        }
    }
    batch
        .iter()
        .enumerate()
        .map(|(i, env)| {
            let action = match Phase::of(env.hook_event_name()) {
                _ if env.field("session_id").is_none() => Action::Skip,
                None => Action::Skip,
                Some(Phase::Pre)
                    if pair_key(env)
                        .and_then(|key| post_at.get(&key))
                        .is_some_and(|&post| post > i) =>
                {
                    Action::StartOnly
                }
                Some(_) => Action::Record,
            };
            Planned {
                action,
                recognised: None,
            }
        })
        .collect()
}

/// Plans `batch` and recognises the events to record, as if all of them
/// were new — pure, so it runs on another thread ahead of the database
/// work. (An event found to be a duplicate just has its work dropped, and
/// the batch is planned again; the rare event that then needs facts it was
/// not planned for, a Pre whose Post turned out a duplicate, is recognised
/// at that point.)
pub fn work_ahead(recogniser: &Recogniser, batch: &[&Envelope<'_>]) -> Vec<Planned> {
    let mut plan = plan_batch(batch);
    for (planned, env) in plan.iter_mut().zip(batch) {
        if planned.action == Action::Record {
            planned.recognised = Some(Recognised::of(recogniser, env));
        }
    }
    plan
}

impl Ahead {
    /// Makes the plan fit `batch`, the envelopes actually being applied.
    /// It is kept when it was made for exactly them (`exact`: no event
    /// turned out a duplicate); otherwise the batch is planned again,
    /// keeping the recognition already made for an event that is still to
    /// be recorded (an event that now needs facts it was not planned for,
    /// a Pre whose Post turned out a duplicate, is recognised when applied).
    pub(super) fn fit(&mut self, batch: &[&Envelope<'_>]) {
        if self.exact && self.plan.len() == batch.len() {
            return;
        }
        let mut recognised: Vec<_> = self.plan.drain(..).map(|p| p.recognised).collect();
        recognised.resize_with(batch.len(), || None);
        self.plan = plan_batch(batch)
            .into_iter()
            .zip(recognised)
            .map(|(plan, recognised)| Planned {
                recognised: recognised.filter(|_| plan.action == Action::Record),
                ..plan
            })
            .collect();
    }
}

/// The pairing key of a tool-use event.
pub(super) fn pair_key<'e>(env: &'e Envelope<'_>) -> Option<(&'e str, &'e str)> {
    Some((env.field("session_id")?, env.field("tool_use_id")?))
}

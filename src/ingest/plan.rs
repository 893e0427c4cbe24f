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
//!   Post writes the complete row at once (one insert, not two writes) —
//!   unless a call the Python wrapper measured in that session comes
//!   between them: it refines the row the Pre writes.
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
    // Where the Python wrapper's measured calls are, by session: a Pre
    // with one between it and its Post must write its row first, for the
    // measurement to refine it.
    let mut measured_at: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, env) in batch.iter().enumerate() {
        let name = env.hook_event_name();
        if let (Some(Phase::Post { .. }), Some(key)) = (Phase::of(name), pair_key(env)) {
            post_at.entry(key).or_insert(i);
        } else if name == events::FUNCTION_CALL {
            if let Some(session) = env.field("session_id") {
                measured_at.entry(session).or_default().push(i);
            }
        }
    }
    let measured_between = |session: &str, from: usize, to: usize| {
        measured_at
            .get(session)
            .is_some_and(|at| at.iter().any(|&m| from < m && m < to))
    };
    batch
        .iter()
        .enumerate()
        .map(|(i, env)| {
            let action = match Phase::of(env.hook_event_name()) {
                _ if env.field("session_id").is_none() => Action::Skip,
                None => Action::Skip,
                Some(Phase::Pre)
                    if pair_key(env).is_some_and(|key| {
                        post_at
                            .get(&key)
                            .is_some_and(|&post| post > i && !measured_between(key.0, i, post))
                    }) =>
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recognise::{ArgsKey, Catalog, Rules};

    fn recogniser() -> Recogniser {
        Recogniser::new(Rules::builtin(), Catalog::new("test"), ArgsKey::ephemeral())
    }

    /// An envelope of `hook` in session `session` (none when empty) for
    /// tool use `tool_use` (none when empty), running `fn run a_py_x`.
    fn env(hook: &str, session: &str, tool_use: &str) -> Envelope<'static> {
        let mut event = serde_json::json!({
            "hook_event_name": hook, "tool_name": "Bash", "command": "fn run a_py_x",
        });
        if !session.is_empty() {
            event["session_id"] = session.into();
        }
        if !tool_use.is_empty() {
            event["tool_use_id"] = tool_use.into();
        }
        let line = serde_json::json!({"v": 1, "id": "e", "ts": "2026-11-24T10:00:00.000Z", "event": event})
            .to_string();
        crate::contract::parse(Box::leak(line.into_boxed_str()).as_bytes()).unwrap()
    }

    fn actions(batch: &[Envelope<'static>]) -> Vec<Action> {
        let batch: Vec<&Envelope<'_>> = batch.iter().collect();
        plan_batch(&batch).iter().map(|p| p.action).collect()
    }

    const PRE: &str = events::PRE_TOOL_USE;
    const POST: &str = events::POST_TOOL_USE;
    const FAILED: &str = events::POST_TOOL_USE_FAILURE;

    #[test]
    fn a_pre_whose_post_follows_in_the_batch_only_lends_its_start() {
        let batch = [env(PRE, "s", "t1"), env(POST, "s", "t1")];
        assert_eq!(actions(&batch), [Action::StartOnly, Action::Record]);
        let failed = [env(PRE, "s", "t1"), env(FAILED, "s", "t1")];
        assert_eq!(actions(&failed), [Action::StartOnly, Action::Record]);
    }

    #[test]
    fn a_pre_is_recorded_when_its_post_is_elsewhere() {
        // Post first, another session's Post, another tool use's Post, no
        // tool use id to pair by, and no Post at all.
        assert_eq!(
            actions(&[env(POST, "s", "t1"), env(PRE, "s", "t1")]),
            [Action::Record, Action::Record]
        );
        assert_eq!(
            actions(&[env(PRE, "s", "t1"), env(POST, "other", "t1")]),
            [Action::Record, Action::Record]
        );
        assert_eq!(
            actions(&[env(PRE, "s", "t1"), env(POST, "s", "t2")]),
            [Action::Record, Action::Record]
        );
        assert_eq!(
            actions(&[env(PRE, "s", ""), env(POST, "s", "")]),
            [Action::Record, Action::Record]
        );
        assert_eq!(actions(&[env(PRE, "s", "t1")]), [Action::Record]);
    }

    #[test]
    fn a_measured_call_between_pre_and_post_makes_the_pre_write_its_row() {
        let measured = |session: &str| env(events::FUNCTION_CALL, session, "");
        assert_eq!(
            actions(&[env(PRE, "s", "t1"), measured("s"), env(POST, "s", "t1")]),
            [Action::Record, Action::Skip, Action::Record]
        );
        // Another session's, or one after the Post, changes nothing.
        assert_eq!(
            actions(&[
                env(PRE, "s", "t1"),
                measured("other"),
                env(POST, "s", "t1"),
                measured("s")
            ]),
            [
                Action::StartOnly,
                Action::Skip,
                Action::Record,
                Action::Skip
            ]
        );
    }

    #[test]
    fn events_without_a_session_or_a_tool_phase_are_skipped() {
        assert_eq!(
            actions(&[
                env(PRE, "", "t1"),
                env("SessionStart", "s", ""),
                env("UserPromptSubmit", "s", ""),
                env("SomethingNew", "s", "t1"),
            ]),
            [Action::Skip; 4]
        );
    }

    #[test]
    fn only_recorded_events_are_recognised_ahead() {
        let batch = [
            env(PRE, "s", "t1"),
            env(POST, "s", "t1"),
            env("SessionStart", "s", ""),
            env(PRE, "s", "t2"),
        ];
        let refs: Vec<&Envelope<'_>> = batch.iter().collect();
        let plan = work_ahead(&recogniser(), &refs);
        let recognised: Vec<bool> = plan.iter().map(|p| p.recognised.is_some()).collect();
        assert_eq!(recognised, [false, true, false, true]);
        let calls = &plan[1].recognised.as_ref().unwrap().facts.calls;
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].function_id, "a_py_x");
    }

    #[test]
    fn only_a_failed_post_with_facts_gets_an_error_class() {
        let recogniser = recogniser();
        let class = |e: &Envelope<'_>| Recognised::of(&recogniser, e).error_class;
        assert_eq!(class(&env(FAILED, "s", "t1")).as_deref(), Some("other"));
        assert_eq!(class(&env(POST, "s", "t1")), None);
        assert_eq!(class(&env(PRE, "s", "t1")), None);
        let no_facts = crate::contract::parse(
            br#"{"v":1,"id":"e","ts":"2026-11-24T10:00:00.000Z","event":{"hook_event_name":"PostToolUseFailure","session_id":"s","tool_name":"Bash","command":"ls"}}"#,
        )
        .unwrap();
        assert_eq!(class(&no_facts), None);
    }

    #[test]
    fn a_plan_made_for_exactly_the_batch_is_kept() {
        let batch = [env(PRE, "s", "t1"), env(POST, "s", "t1")];
        let refs: Vec<&Envelope<'_>> = batch.iter().collect();
        let mut ahead = Ahead {
            plan: work_ahead(&recogniser(), &refs),
            exact: true,
        };
        // Marked so that a re-plan would show: the kept plan keeps it.
        ahead.plan[0].recognised = Some(Recognised {
            facts: Facts::default(),
            error_class: Some("marker".into()),
        });
        ahead.fit(&refs);
        assert_eq!(
            ahead.plan[0]
                .recognised
                .as_ref()
                .unwrap()
                .error_class
                .as_deref(),
            Some("marker")
        );
    }

    /// The Post of a Pre/Post pair turned out a duplicate: the batch applied
    /// is the Pre alone, which must now be recorded (it has no facts yet,
    /// and is recognised when applied); recognition made for events still
    /// recorded is kept.
    #[test]
    fn a_batch_with_duplicates_dropped_is_planned_again() {
        let planned = [
            env(PRE, "s", "t1"),
            env(POST, "s", "t1"),
            env(PRE, "s", "t2"),
        ];
        let refs: Vec<&Envelope<'_>> = planned.iter().collect();
        let recogniser = recogniser();
        let mut ahead = Ahead {
            // What the fresh events kept of the plan, in order.
            plan: work_ahead(&recogniser, &refs)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, p)| p)
                .collect(),
            exact: false,
        };
        let applied = [&planned[0], &planned[2]];
        ahead.fit(&applied);
        let fitted: Vec<(Action, bool)> = ahead
            .plan
            .iter()
            .map(|p| (p.action, p.recognised.is_some()))
            .collect();
        assert_eq!(fitted, [(Action::Record, false), (Action::Record, true)]);
    }
}

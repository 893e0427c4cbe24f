//! Any bytes, as a spool line and as a hook's stdin.
//!
//! - As a spool line: [`envelope::parse`] never panics, and an accepted
//!   envelope goes through classification's recognition (rules, Bash
//!   parsing, registry lookups) and error classing without panicking.
//! - As hook stdin: the line the hook would spool is at most 1 MiB and is
//!   one the daemon parses: accepted, or rejected only for what it says (no
//!   event name, the hook's own `_invalid` marker), never as broken JSON.
//!
//! Run: `cargo fuzz run envelope` (CI: `.ci/fuzz`). A crash found here
//! becomes a case in `tests/it/fuzz_regressions.rs`.
#![no_main]

use std::sync::OnceLock;

use call_monitor::contract::{self as envelope, Rejection};
use call_monitor::recognise::{ArgsKey, Recogniser, Rules};
use call_monitor::store::registry;
use libfuzzer_sys::fuzz_target;

/// The builtin rules and the classification fixture's registry.
fn recogniser() -> &'static Recogniser {
    static RECOGNISER: OnceLock<Recogniser> = OnceLock::new();
    RECOGNISER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("registry.db");
        let sql = include_str!("../../fixtures/classification/registry.sql");
        rusqlite::Connection::open(&path)
            .and_then(|conn| conn.execute_batch(sql))
            .expect("fixture registry");
        let catalog = registry::read_catalog(&path).expect("fixture registry loads");
        Recogniser::new(Rules::builtin(), catalog, ArgsKey::ephemeral())
    })
}

fn classify(env: &envelope::Envelope<'_>) {
    let facts = recogniser().recognise(env);
    std::hint::black_box(&facts);
    std::hint::black_box(recogniser().error_class(env));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = envelope::parse(data) {
        classify(&env);
    }

    let event = call_monitor::capture::reduce::reduce(data);
    let line = call_monitor::contract::envelope_line(&event, chrono::Utc::now());
    assert!(
        line.len() <= call_monitor::contract::MAX_LINE,
        "hook line of {} bytes",
        line.len()
    );
    match envelope::parse(&line[..line.len() - 1]) {
        Ok(env) => classify(&env),
        Err(Rejection::Shape(_) | Rejection::InvalidHookInput) => {}
        Err(other) => panic!("the hook spooled a line the daemon cannot parse: {other}"),
    }
});

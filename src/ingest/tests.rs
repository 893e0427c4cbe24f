//! The engine's own tests: transactions that group batches, roll back
//! whole, and pair Posts with rows of earlier batches.

use super::*;
use crate::recognise::{ArgsKey, Catalog, Recogniser, Rules};
use crate::store::{Database, Missing};

/// Batches that are always ready ahead: every transaction takes in as
/// many as it may (with a reader thread that depends on timing).
struct AlwaysReady<'r>(batches::Inline<'r>);

impl Batches for AlwaysReady<'_> {
    fn next(&mut self) -> io::Result<Option<Prepared>> {
        self.0.next()
    }

    fn ready(&mut self) -> io::Result<Option<Prepared>> {
        self.0.next()
    }
}

fn line(i: usize) -> String {
    format!(
        r#"{{"v":1,"id":"e-{i}","ts":"2026-11-24T10:00:00.000Z","host":"h","event":{{"session_id":"s-{}","hook_event_name":"PostToolUse","tool_name":"Bash","tool_use_id":"t-{i}","command":"fn run a_py_x"}}}}"#,
        i / 100
    ) + "\n"
}

/// An ingestor on a fresh database, and a spool file of `lines` lines
/// in `dir`.
fn backlog(dir: &Path, lines: usize) -> (Ingestor, PathBuf, String) {
    let path = dir.join("backlog.jsonl");
    std::fs::write(&path, (0..lines).map(line).collect::<String>()).unwrap();
    let db = Database::open(&dir.join("ops.db"), Missing::Create).unwrap();
    let recogniser = Recogniser::new(Rules::builtin(), Catalog::new("none"), ArgsKey::ephemeral());
    let ingestor = Ingestor::new(db.into_conn(), recogniser, dir.join("q"));
    let key = spool_file::identify(&spool_file::open(&path).unwrap())
        .unwrap()
        .unwrap();
    (ingestor, path, key)
}

/// Commits `path` from `position` with every batch ready ahead; returns
/// the bytes each transaction reported.
fn checkpoint_of(key: &str) -> Checkpoint {
    Checkpoint::new(key.to_string())
}

fn commit_all_ready(
    ingestor: &mut Ingestor,
    path: &Path,
    key: &str,
    position: &mut Position,
) -> Result<Vec<u64>, IngestError> {
    let shared = ingestor.recorder.recogniser();
    let stash = path.with_extension("stash");
    let reader =
        LineReader::new(spool_file::open(path).unwrap(), position.committed, &stash).unwrap();
    let mut batches = AlwaysReady(batches::Inline {
        reader,
        source: batches::Source::Spool,
        recogniser: &shared,
    });
    let mut commits = Vec::new();
    ingestor
        .commit_batches(
            path,
            &checkpoint_of(key),
            position,
            &mut batches,
            &|| false,
            &mut |n| commits.push(n),
        )
        .map(|()| commits)
}

/// A `fn run` event of tool use `t` in session `s`, at second `second`.
fn phase(hook: &str, t: usize, second: usize) -> String {
    format!(
        r#"{{"v":1,"id":"{hook}-{t}","ts":"2026-11-24T10:00:{second:02}.000Z","host":"h","event":{{"session_id":"s","hook_event_name":"{hook}","tool_name":"Bash","tool_use_id":"t-{t}","command":"fn run a_py_x"}}}}"#
    ) + "\n"
}

/// Posts of Pres stored by an earlier batch, mixed with Posts without a
/// Pre and Pre/Post pairs: every Post completes its Pre's row (no second
/// row), the new rows are stored once, and the rollups and session
/// tallies count each row once.
#[test]
fn posts_pair_with_rows_of_earlier_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (mut ingestor, _, _) = backlog(dir.path(), 1);
    let earlier = dir.path().join("earlier.jsonl");
    std::fs::write(
        &earlier,
        (0..40)
            .map(|t| phase("PreToolUse", t, 1))
            .collect::<String>(),
    )
    .unwrap();
    ingestor
        .ingest_file(&earlier, &|| false, &mut |_| {})
        .unwrap();
    // Posts of 20 stored Pres, 20 Posts without a Pre, 40 Pre/Post pairs.
    let mut later: String = (20..60).map(|t| phase("PostToolUse", t, 3)).collect();
    for t in 60..100 {
        later += &phase("PreToolUse", t, 2);
        later += &phase("PostToolUse", t, 4);
    }
    let later_path = dir.path().join("later.jsonl");
    std::fs::write(&later_path, later).unwrap();
    ingestor
        .ingest_file(&later_path, &|| false, &mut |_| {})
        .unwrap();

    let count = |sql| count(&ingestor, sql);
    assert_eq!(count("SELECT COUNT(*) FROM calls"), 100);
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE success IS NULL"),
        20
    );
    // Paired across batches: from the Pre's start, 2 s.
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE duration_ms = 2000"),
        60
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM calls WHERE success = 1 AND duration_ms IS NULL"),
        20
    );
    assert_eq!(count("SELECT calls FROM call_totals"), 100);
    assert_eq!(count("SELECT finished FROM call_totals"), 80);
    assert_eq!(count("SELECT finished FROM session_calls"), 80);
    assert_eq!(count("SELECT n FROM row_counts WHERE tbl = 'calls'"), 100);
}

/// The ingester's statement journals never spill to temporary files
/// (a chunk of `events` rows with scattered keys outgrows the default
/// 64 KiB in memory).
#[test]
fn statement_journals_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (ingestor, _, _) = backlog(dir.path(), 1);
    // 2 = MEMORY.
    assert_eq!(count(&ingestor, "PRAGMA temp_store"), 2);
}

fn count(ingestor: &Ingestor, sql: &str) -> i64 {
    ingestor.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Batches read ahead are committed several to a transaction, each
/// transaction with the offset past its last line: every line is stored
/// once, and nothing is read again.
#[test]
fn transactions_take_in_the_batches_ready_and_commit_past_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let lines = BATCH_LINES * (super::workload::LIVE_BATCHES + 1) + 7;
    let (mut ingestor, path, key) = backlog(dir.path(), lines);
    let size = std::fs::metadata(&path).unwrap().len();
    let mut position = Position {
        stored: 0,
        committed: 0,
    };
    let commits = commit_all_ready(&mut ingestor, &path, &key, &mut position).unwrap();

    // Two transactions: four batches, then the rest.
    assert_eq!(commits.len(), 2, "{commits:?}");
    assert_eq!(commits.iter().sum::<u64>(), size);
    assert_eq!(position.committed, size);
    let count = |sql| count(&ingestor, sql);
    assert_eq!(count("SELECT offset FROM spool_files"), size as i64);
    assert_eq!(count("SELECT COUNT(*) FROM events"), lines as i64);
    assert_eq!(count("SELECT COUNT(*) FROM calls"), lines as i64);
    // Health of every session, rolled-up calls: done for all batches.
    assert_eq!(
        count("SELECT COUNT(*) FROM sessions WHERE health_score IS NOT NULL"),
        lines.div_ceil(100) as i64
    );
    assert_eq!(count("SELECT SUM(calls) FROM call_totals"), lines as i64);
}

/// A `Bulk` ingestor takes in what a `Live` one commits in two
/// transactions in one, with a larger page cache.
#[test]
fn a_bulk_transaction_takes_in_more_batches() {
    let dir = tempfile::tempdir().unwrap();
    let lines = BATCH_LINES * (super::workload::LIVE_BATCHES + 1) + 7;
    let (mut ingestor, path, key) = backlog(dir.path(), lines);
    assert_eq!(count(&ingestor, "PRAGMA cache_size"), -8192);
    ingestor.set_workload(Workload::Bulk).unwrap();
    assert_eq!(count(&ingestor, "PRAGMA cache_size"), -65536);
    let mut position = Position {
        stored: 0,
        committed: 0,
    };
    let commits = commit_all_ready(&mut ingestor, &path, &key, &mut position).unwrap();
    assert_eq!(commits.len(), 1, "{commits:?}");
    assert_eq!(
        count(&ingestor, "SELECT COUNT(*) FROM events"),
        lines as i64
    );
}

/// A line that cannot be stored in the third batch of a transaction
/// rolls back all of it — the batches before it included, and the
/// rollup deltas they left pending — so the retry stores every line,
/// and counts every call, once.
#[test]
fn a_failure_late_in_a_transaction_rolls_back_all_its_batches() {
    let dir = tempfile::tempdir().unwrap();
    let lines = BATCH_LINES * super::workload::LIVE_BATCHES;
    let (mut ingestor, path, key) = backlog(dir.path(), lines);
    let poisoned = BATCH_LINES * 2 + 5;
    ingestor
        .conn
        .execute_batch(&format!(
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.envelope_id = 'e-{poisoned}'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        ))
        .unwrap();
    let mut position = Position {
        stored: 0,
        committed: 0,
    };
    let failed = commit_all_ready(&mut ingestor, &path, &key, &mut position);
    assert!(
        matches!(failed, Err(IngestError::Store { .. })),
        "{failed:?}"
    );
    assert_eq!(position.committed, 0);
    assert_eq!(count(&ingestor, "SELECT COUNT(*) FROM events"), 0);

    ingestor.conn.execute_batch("DROP TRIGGER poison").unwrap();
    commit_all_ready(&mut ingestor, &path, &key, &mut position).unwrap();
    assert_eq!(
        count(&ingestor, "SELECT COUNT(*) FROM events"),
        lines as i64
    );
    assert_eq!(
        count(&ingestor, "SELECT SUM(calls) FROM call_totals"),
        lines as i64
    );
}

/// The statements run for every stored row build no temporary b-tree: an
/// `IN` of three constants in a CHECK, or an `ORDER BY` the index cannot
/// give, made SQLite open (and zero a page of) a temporary database per row
/// — 8 % of a replay for `source IN (…)` (migration 015).
#[test]
fn statements_run_per_row_build_no_temporary_btree() {
    use super::row_sql::*;
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&dir.path().join("ops.db"), Missing::Create).unwrap();
    let conn = db.conn();
    let per_row = [
        CALL_START,
        CALL_END,
        CALL_ROW,
        CALL_INSERT,
        TEST_START,
        TEST_END,
        E2E,
        WRITE,
        EDIT_VERSION,
        COPY_VERSION,
        WRAPPER_REFINE,
        HEREDOC_SKELETON,
        HEREDOC,
        VIOLATION,
        TOOL_START,
        TOOL_END,
        TOOL_INSERT,
        TOOL_ROW,
        super::prompts::PARTNER_CANDIDATES,
        super::echoes::SEEN,
        &super::events::INSERT_CHUNK,
    ];
    for sql in per_row {
        let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        // Parameters left unbound: EXPLAIN only compiles.
        let mut rows = explain.raw_query();
        let mut opcodes: Vec<String> = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            opcodes.push(row.get(1).unwrap());
        }
        assert!(
            !opcodes
                .iter()
                .any(|op| op == "OpenEphemeral" || op == "SorterOpen"),
            "{sql}\n{opcodes:?}"
        );
    }
}

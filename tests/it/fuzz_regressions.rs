//! Every input in `fuzz/regressions/` through the real binary, the two ways
//! the `envelope` fuzz target feeds it (see `fuzz/fuzz_targets/envelope.rs`):
//! - as hook stdin: exit 0, silent, and the one line spooled is one the
//!   pipeline parses — ingested, or quarantined for what it says, never as
//!   broken JSON or an oversized line;
//! - as spool content between two good lines: replay succeeds, every piece
//!   is stored or quarantined, both neighbours are ingested.
//!
//! A crash the fuzzer finds (`.ci/fuzz`) is copied into `fuzz/regressions/`
//! and stays here for good.

use std::path::PathBuf;

use crate::support::*;

fn regressions() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "fuzz/regressions/ is empty");
    inputs
}

#[test]
fn fuzz_regressions_as_hook_stdin_spool_a_line_the_pipeline_parses() {
    for (name, input) in regressions() {
        let scratch = Scratch::new();
        assert_eq!(scratch.hook(&input), (0, String::new()), "{name}");
        let out = succeed(scratch.cmd(&["replay"]).arg(scratch.spool()));
        let (inserted, quarantined) = (
            scratch.count("SELECT COUNT(*) FROM events"),
            scratch.count("SELECT COUNT(*) FROM quarantine"),
        );
        assert_eq!(
            (inserted + quarantined, out.starts_with("events=1 ")),
            (1, true),
            "{name}: {out}"
        );
        assert_eq!(
            scratch.count(
                "SELECT COUNT(*) FROM quarantine WHERE reason LIKE 'invalid JSON%'
                 OR reason LIKE 'invalid UTF-8%' OR reason LIKE 'line of%'"
            ),
            0,
            "{name}: the hook wrote a line that is not JSON"
        );
    }
}

#[test]
fn fuzz_regressions_as_spool_lines_never_hurt_their_neighbours() {
    for (name, input) in regressions() {
        let scratch = Scratch::new();
        let spool = scratch.private_spool();
        let mut content = envelope_line("before", "s", "tu-before", "a_py_b").into_bytes();
        content.extend_from_slice(&input);
        content.push(b'\n');
        content.extend_from_slice(envelope_line("after", "s", "tu-after", "a_py_b").as_bytes());
        std::fs::write(spool.join("regression.jsonl"), &content).unwrap();
        let out = scratch.cmd(&["replay"]).arg(&spool).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let lines = content.iter().filter(|&&b| b == b'\n').count() as i64;
        assert_eq!(
            scratch.count("SELECT COUNT(*) FROM events")
                + scratch.count("SELECT COUNT(*) FROM quarantine"),
            lines,
            "{name}: every line stored or quarantined"
        );
        assert_eq!(
            scratch.count("SELECT COUNT(*) FROM events WHERE envelope_id IN ('before', 'after')"),
            2,
            "{name}"
        );
    }
}

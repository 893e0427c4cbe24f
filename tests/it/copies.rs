//! Copy detection (issue 24): a registry function's code found in a file the
//! agent wrote elsewhere, told from fingerprints alone.
//!
//! `fixtures/copies/` holds a small registry (Python, Go, TypeScript, shell)
//! and labelled written files: copies (renamed, reformatted, commented, a
//! few lines changed, pasted into a bigger file, an Edit fragment, ported
//! to JavaScript) and non-copies (other code of the same languages and
//! imports, near misses that do similar work, tests that import the
//! function).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use call_monitor::contract::code::{Fingerprints, Lang};
use call_monitor::recognise::{Catalog, COPY_SHARE};
use rusqlite::Connection;
use serde_json::json;

use crate::support::{assert_secrets_absent, spool_files, succeed, Scratch};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/copies")
}

/// Function id → its source file, relative to the registry's directory.
fn registry_functions() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(fixture().join("registry/functions.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Written file → the function it copies (`None`: not a copy).
fn labels() -> BTreeMap<String, Option<String>> {
    let text = std::fs::read_to_string(fixture().join("written/labels.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fingerprints(path: &Path) -> Fingerprints {
    let text = std::fs::read_to_string(path).unwrap();
    let lang = Lang::of_path(&path.to_string_lossy()).unwrap();
    Fingerprints::of(&text, lang)
}

fn fixture_catalog() -> Catalog {
    let mut catalog = Catalog::new("fixture");
    for (id, file) in registry_functions() {
        catalog.add_code(&id, &fingerprints(&fixture().join("registry").join(file)));
    }
    catalog
}

/// (precision, recall) of the best match at `share` over the labelled files.
fn score(catalog: &Catalog, share: f64) -> (f64, f64, Vec<String>) {
    let (mut true_pos, mut false_pos, mut false_neg) = (0, 0, 0);
    let mut wrong = Vec::new();
    for (file, label) in labels() {
        let written = fingerprints(&fixture().join("written").join(&file));
        let found = catalog.copied_functions_at(&written, share);
        let predicted = found.first().map(|m| m.function_id.clone());
        match (&predicted, &label) {
            (Some(p), Some(l)) if p == l => true_pos += 1,
            (None, None) => {}
            _ => {
                wrong.push(format!(
                    "{file}: predicted {predicted:?}, labelled {label:?}"
                ));
                false_pos += usize::from(predicted.is_some());
                false_neg += usize::from(label.is_some());
            }
        }
    }
    let precision = true_pos as f64 / (true_pos + false_pos).max(1) as f64;
    let recall = true_pos as f64 / (true_pos + false_neg).max(1) as f64;
    (precision, recall, wrong)
}

#[test]
fn labelled_copies_are_found_with_precision_and_recall_of_at_least_0_9() {
    let catalog = fixture_catalog();
    assert_eq!(catalog.code_len(), registry_functions().len());
    assert!(labels().values().filter(|l| l.is_some()).count() >= 15);
    assert!(labels().values().filter(|l| l.is_none()).count() >= 15);
    // The sweep the default was chosen from (`cargo test copies -- --nocapture`).
    for tenth in 2..=9 {
        let share = f64::from(tenth) / 10.0;
        let (p, r, _) = score(&catalog, share);
        eprintln!("share {share:.1}: precision {p:.2} recall {r:.2}");
    }
    // The margin: the least-copied copy against the most-shared non-copy.
    let (mut lowest_copy, mut highest_other) = (1.0f64, 0.0f64);
    for (file, label) in labels() {
        let written = fingerprints(&fixture().join("written").join(&file));
        let best = catalog.copied_functions_at(&written, 0.0);
        let share = best.first().map_or(0.0, |m| m.share());
        match label {
            Some(_) => lowest_copy = lowest_copy.min(share),
            None => highest_other = highest_other.max(share),
        }
    }
    eprintln!("lowest copy share {lowest_copy:.2}, highest non-copy share {highest_other:.2}");
    assert!(highest_other < COPY_SHARE && COPY_SHARE <= lowest_copy);
    let (precision, recall, wrong) = score(&catalog, COPY_SHARE);
    eprintln!(
        "default {COPY_SHARE}: precision {precision:.2} recall {recall:.2}; misses: {wrong:#?}"
    );
    assert!(precision >= 0.9, "precision {precision}: {wrong:#?}");
    assert!(recall >= 0.9, "recall {recall}: {wrong:#?}");
}

/// A registry like fn_registry's: registry.db next to the sources, whose
/// `file_path`s are relative to it.
fn copy_registry(dir: &Path) -> PathBuf {
    let root = dir.join("fn_registry");
    let conn_path = root.join("registry.db");
    let mut inserts = String::new();
    for (id, file) in registry_functions() {
        let target = root.join(&file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(fixture().join("registry").join(&file), &target).unwrap();
        let (name, lang, domain) = call_monitor::recognise::split_function_id(&id).unwrap();
        inserts.push_str(&format!(
            "INSERT INTO functions VALUES ('{id}', '{name}', '{lang}', '{domain}', '1.0.0', '{file}', NULL, NULL);\n"
        ));
    }
    Connection::open(&conn_path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TABLE functions (id TEXT PRIMARY KEY, name TEXT, lang TEXT, domain TEXT, version TEXT,
                                     file_path TEXT, content_hash TEXT, updated_at TEXT);
             {inserts}"
        ))
        .unwrap();
    conn_path
}

fn write_payload(session: &str, tool_use_id: &str, path: &str, content: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": session, "cwd": "/home/dev/app", "hook_event_name": "PostToolUse",
        "tool_name": "Write", "tool_use_id": tool_use_id,
        "tool_input": {"file_path": path, "content": content},
        "tool_response": {"type": "create", "filePath": path, "content": content, "structuredPatch": []}
    }))
    .unwrap()
}

#[test]
fn a_copy_written_by_the_agent_is_recorded_from_fingerprints_alone() {
    let scratch = Scratch::new();
    let registry = copy_registry(scratch.dir.path());
    let snapshot = |expected: &str| {
        let out = succeed(scratch.cmd(&["snapshot"]).arg("--registry").arg(&registry));
        assert_eq!(out.trim(), expected);
    };
    snapshot("functions=9 recorded=9 unchanged=0 fingerprinted=9 unreadable=0");
    snapshot("functions=9 recorded=0 unchanged=9 fingerprinted=0 unreadable=0");

    let written = fixture().join("written");
    let read = |name: &str| std::fs::read_to_string(written.join(name)).unwrap();
    // A line only the copy has: it must not reach the spool or the database.
    let copy = format!(
        "// SECRET-7f3a in the pasted code\n{}",
        read("c07_sqlite_go_renamed.go")
    );
    let own_file = registry
        .parent()
        .unwrap()
        .join("functions/go/sqlite_open.go");
    let writes = [
        (
            "toolu_copy",
            "/home/dev/app/db.go".to_string(),
            copy.clone(),
        ),
        (
            "toolu_other",
            "/home/dev/app/post.go".to_string(),
            read("n07_go_post.go"),
        ),
        (
            "toolu_own",
            own_file.to_string_lossy().into_owned(),
            std::fs::read_to_string(&own_file).unwrap(),
        ),
        (
            "toolu_notes",
            "/home/dev/app/NOTES.md".to_string(),
            copy.clone(),
        ),
        // Inside the registry's directory but no function's file: still
        // the registry's own code, not a copy.
        (
            "toolu_inside",
            registry
                .parent()
                .unwrap()
                .join("apps/billing/db.go")
                .to_string_lossy()
                .into_owned(),
            copy.clone(),
        ),
    ];
    for (tool_use_id, path, content) in &writes {
        let (code, stderr) = scratch.hook(&write_payload("s-copy", tool_use_id, path, content));
        assert_eq!((code, stderr.as_str()), (0, ""));
    }
    for file in spool_files(&scratch.spool()) {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(!text.contains("SECRET-7f3a") && !text.contains("SetMaxOpenConns"));
        assert!(text.contains("code_fingerprints"));
    }
    succeed(
        scratch
            .cmd(&["replay"])
            .arg("--registry")
            .arg(&registry)
            .arg(scratch.spool()),
    );

    assert_eq!(
        scratch.texts(
            "SELECT function_id || ' ' || file_path || ' ' || session_id || ' ' || tool_use_id
              FROM function_versions WHERE source = 'copy_detected'"
        ),
        ["sqlite_open_go_infra /home/dev/app/db.go s-copy toolu_copy"]
    );
    assert_eq!(
        scratch.texts("SELECT rule_id || ' ' || severity || ' ' || function_id || ' ' || tool_use_id FROM violations"),
        ["copied_code warn sqlite_open_go_infra toolu_copy"]
    );
    // The registry's own file is a write of the function, never a copy.
    assert_eq!(
        scratch.texts("SELECT function_id || ' ' || tool_use_id FROM code_writes"),
        ["sqlite_open_go_infra toolu_own"]
    );
    assert_eq!(
        scratch.count(
            "SELECT violations_caused FROM function_stats WHERE function_id = 'sqlite_open_go_infra'"
        ),
        1
    );
    assert_secrets_absent(&scratch.db(), &["SECRET-7f3a", "SetMaxOpenConns"]);
}

#[test]
fn snapshot_fingerprints_changed_sources_again_and_drops_removed_functions() {
    let scratch = Scratch::new();
    let registry = copy_registry(scratch.dir.path());
    let snapshot = || succeed(scratch.cmd(&["snapshot"]).arg("--registry").arg(&registry));
    snapshot();
    let source = registry.parent().unwrap().join("functions/py/slugify.py");
    let mut text = std::fs::read_to_string(&source).unwrap();
    text.push_str("\n\ndef unslug(slug, separator=\"-\"):\n    return slug.replace(separator, \" \").title()\n");
    std::fs::write(&source, text).unwrap();
    Connection::open(&registry)
        .unwrap()
        .execute_batch(
            "DELETE FROM functions WHERE id = 'debounce_ts_ui';
             UPDATE functions SET file_path = 'functions/py/gone.py' WHERE id = 'retry_call_py_infra';",
        )
        .unwrap();
    assert_eq!(
        snapshot().trim(),
        "functions=8 recorded=0 unchanged=8 fingerprinted=1 unreadable=1"
    );
    let code = |id: &str| {
        scratch.count(&format!(
            "SELECT COUNT(*) FROM function_code WHERE function_id = '{id}'"
        ))
    };
    assert_eq!(
        code("debounce_ts_ui"),
        0,
        "a removed function's fingerprints go"
    );
    assert_eq!(
        code("retry_call_py_infra"),
        1,
        "an unreadable source keeps its last ones"
    );
    assert_eq!(scratch.count("SELECT COUNT(*) FROM function_code"), 8);
}

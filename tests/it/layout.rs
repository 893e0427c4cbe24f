//! The layout the crate map in `src/lib.rs` promises: stage folders that
//! import only the stages they may (no module reaches back up the flow),
//! and no source file over 600 lines. Read from `src/` as text, so a
//! forbidden `use` fails here before anyone has to notice it in review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each stage and the stages its non-test code may import (besides
/// itself). The order of the data: contract → capture → spool → recognise
/// → ingest → store → insight → see → run → cli. Capture writes into the spool,
/// so it may use the spool's writer; recognition is pure (the contract
/// only); ingestion never sees insight; the store builds recognition's
/// catalog from registry.db.
const MAY_IMPORT: &[(&str, &[&str])] = &[
    ("contract", &[]),
    ("capture", &["contract", "spool"]),
    ("spool", &["contract"]),
    ("recognise", &["contract"]),
    ("ingest", &["contract", "capture", "spool", "recognise"]),
    ("store", &["contract", "recognise"]),
    ("insight", &["contract", "recognise", "store"]),
    ("see", &["contract", "spool", "store", "insight"]),
    (
        "run",
        &[
            "contract",
            "capture",
            "spool",
            "recognise",
            "ingest",
            "store",
            "insight",
            "see",
        ],
    ),
    (
        "cli",
        &[
            "contract",
            "capture",
            "spool",
            "recognise",
            "ingest",
            "store",
            "insight",
            "see",
            "run",
        ],
    ),
];

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file that ships: comments dropped, and everything from
/// its inline test module on (`#[cfg(test)] mod tests {`, last by
/// convention). A file that is a test module itself (`tests.rs`) ships
/// nothing.
fn shipped_code(path: &Path, text: &str) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let end = text.find("#[cfg(test)]\nmod tests {").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The stages `code` refers to as `crate::<stage>`.
fn stages_used(code: &str) -> Vec<String> {
    let mut used = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let name: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !used.contains(&name) {
            used.push(name);
        }
    }
    used
}

/// Every `crate::<stage>` a stage's shipped code names that it may not.
fn forbidden_imports(files: &[(PathBuf, String)]) -> Vec<String> {
    let rules: BTreeMap<&str, &[&str]> = MAY_IMPORT.iter().copied().collect();
    let mut found = Vec::new();
    for (path, text) in files {
        let relative = path.strip_prefix(src()).unwrap_or(path);
        let Some(stage) = relative.components().next() else {
            continue;
        };
        let stage = stage.as_os_str().to_string_lossy().to_string();
        let Some(allowed) = rules.get(stage.as_str()) else {
            continue; // lib.rs, main.rs: the crate root may name every stage.
        };
        for used in stages_used(&shipped_code(path, text)) {
            if used != stage
                && rules.contains_key(used.as_str())
                && !allowed.contains(&used.as_str())
            {
                found.push(format!("{}: crate::{used}", relative.display()));
            }
        }
    }
    found
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    rust_files(&src(), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

#[test]
fn no_stage_imports_one_it_may_not() {
    let files = sources();
    let stages: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for stage in &stages {
        assert!(
            MAY_IMPORT.iter().any(|(s, _)| s == stage),
            "src/{stage}/ is not a stage of the crate map; add it to MAY_IMPORT and lib.rs"
        );
    }
    assert_eq!(
        stages.len(),
        MAY_IMPORT.len(),
        "every stage has a folder: {stages:?}"
    );
    let forbidden = forbidden_imports(&files);
    assert!(
        forbidden.is_empty(),
        "imports that reach back up the flow:\n{}",
        forbidden.join("\n")
    );
}

/// The checker itself finds what it must (it reads text, so it could
/// silently match nothing): a planted forbidden import, in code but not in
/// a comment or a test module, is reported.
#[test]
fn the_checker_catches_a_planted_forbidden_import() {
    let planted =
        |text: &str| forbidden_imports(&[(src().join("recognise/planted.rs"), text.to_string())]);
    assert_eq!(
        planted("use crate::spool::reader;\nuse crate::contract::Envelope;\n"),
        ["recognise/planted.rs: crate::spool"]
    );
    assert_eq!(
        planted("fn f() { crate::insight::patterns::refresh(); }"),
        ["recognise/planted.rs: crate::insight"]
    );
    assert!(planted("//! see [`crate::ingest`]\nuse crate::contract;\n").is_empty());
    assert!(planted(
        "use crate::contract;\n#[cfg(test)]\nmod tests {\n    use crate::store::Database;\n}\n"
    )
    .is_empty());
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(path, text)| format!("{} ({} lines)", path.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

//! What recognition knows about the function registry (CONTRACT §5).
//!
//! A [`Catalog`] answers four questions: which function a file path is
//! (for `code_writes`), which function a name denotes (for
//! `heredoc_reinvention`), which functions an app uses (to expand
//! `fn e2e`), and whose code a written file holds (for `copy_detected`,
//! through its [`CodeIndex`]). It is plain data: the store reads it from
//! registry.db, or, without a registry, from the function ids of the
//! latest snapshot (ids alone give names, not paths or apps); the code
//! index comes from the fingerprints `snapshot` recorded, in both cases.
//!
//! # Lifecycle
//! Built when ingestion starts and again when the daemon reloads;
//! recognition only reads it.

use std::collections::{BTreeSet, HashMap};

use super::copies::{CodeIndex, CopyMatch, COPY_SHARE};
use crate::contract::code::Fingerprints;

/// Languages of the registry, as they appear in function ids.
pub const LANGS: &[&str] = &["py", "go", "ts", "rs", "sh"];

#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Function name → ids carrying it (sorted, so the choice is stable).
    by_name: HashMap<String, BTreeSet<String>>,
    /// Registry `file_path` (as stored, relative or absolute) → id.
    by_path: HashMap<String, String>,
    /// App id → the functions it uses.
    apps: HashMap<String, Vec<String>>,
    /// The registry's directory (`/`-separated, no trailing `/`), when
    /// read from a registry: files under it are the registry's own.
    root: Option<String>,
    code: CodeIndex,
    /// Where it was read from, for logs.
    pub source: String,
}

/// A function id split into its CONTRACT §5 parts: `<name>_<lang>_<domain>`.
pub fn split_function_id(id: &str) -> Option<(&str, &str, &str)> {
    // The name may contain underscores, the domain may too: take the
    // right-most `_<lang>_` that leaves a non-empty name and domain.
    let bytes = id.as_bytes();
    (1..id.len()).rev().find_map(|at| {
        if bytes[at] != b'_' {
            return None;
        }
        let (name, rest) = (&id[..at], &id[at + 1..]);
        let (lang, domain) = rest.split_once('_')?;
        (!name.is_empty() && !domain.is_empty() && LANGS.contains(&lang))
            .then_some((name, lang, domain))
    })
}

impl Catalog {
    /// An empty catalog read from `source` (named in logs).
    pub fn new(source: impl Into<String>) -> Self {
        Catalog {
            source: source.into(),
            ..Catalog::default()
        }
    }

    /// Adds a function: known by `name` (else the name part of its id) and,
    /// when given, stored at `file_path` (relative to the registry's root).
    pub fn add_function(&mut self, id: &str, name: Option<&str>, file_path: Option<&str>) {
        let name = name.or_else(|| split_function_id(id).map(|(n, _, _)| n));
        if let Some(name) = name {
            self.by_name
                .entry(name.to_string())
                .or_default()
                .insert(id.to_string());
        }
        if let Some(file_path) = file_path.filter(|p| !p.is_empty()) {
            self.by_path.insert(
                file_path.trim_start_matches("./").to_string(),
                id.to_string(),
            );
        }
    }

    /// Records that `app` uses `function`.
    pub fn add_app_function(&mut self, app: &str, function: &str) {
        self.apps
            .entry(app.to_string())
            .or_default()
            .push(function.to_string());
    }

    /// Sets the registry's directory: files under it are never copies.
    pub fn set_root(&mut self, root: &str) {
        let root = root.replace('\\', "/");
        self.root = Some(root.trim_end_matches('/').to_string());
    }

    /// Adds a function's source fingerprints (recorded by `snapshot`).
    pub fn add_code(&mut self, id: &str, code: &Fingerprints) {
        self.code.add(id, code);
    }

    /// Functions whose code is indexed.
    pub fn code_len(&self) -> usize {
        self.code.function_count()
    }

    /// Whether `path` (`/`-separated) is a file of the registry: a
    /// function's own file, or anything under the registry's directory.
    pub fn in_registry(&self, path: &str) -> bool {
        let under_root = self.root.as_deref().is_some_and(|root| {
            path.strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
        });
        under_root || self.function_at(path).is_some()
    }

    /// The registry functions whose code `written` holds (at least
    /// [`COPY_SHARE`] of each one's fingerprints), the largest share first.
    pub fn copied_functions(&self, written: &Fingerprints) -> Vec<CopyMatch> {
        self.copied_functions_at(written, COPY_SHARE)
    }

    /// [`Self::copied_functions`] at another share (the threshold sweep).
    pub fn copied_functions_at(&self, written: &Fingerprints, share: f64) -> Vec<CopyMatch> {
        self.code.matches(written, share)
    }

    /// The registry function a name denotes. With several (same name in
    /// different languages or domains) the one whose language matches
    /// `lang_hint` wins, else the smallest id.
    pub fn function_named(&self, name: &str, lang_hint: &[&str]) -> Option<&str> {
        let ids = self.by_name.get(name)?;
        ids.iter()
            .find(|id| split_function_id(id).is_some_and(|(_, lang, _)| lang_hint.contains(&lang)))
            .or_else(|| ids.iter().next())
            .map(String::as_str)
    }

    /// The registry function stored at `path`: the registry's `file_path`
    /// equals it or is a suffix of it at a `/` (agents write absolute paths,
    /// registries store them relative to their root).
    pub fn function_at(&self, path: &str) -> Option<&str> {
        if self.by_path.is_empty() {
            return None;
        }
        if let Some(id) = self.by_path.get(path) {
            return Some(id);
        }
        path.match_indices('/')
            .find_map(|(at, _)| self.by_path.get(&path[at + 1..]))
            .map(String::as_str)
    }

    /// The functions `app` uses (empty when unknown).
    pub fn app_functions(&self, app: &str) -> &[String] {
        self.apps.get(app).map_or(&[], Vec::as_slice)
    }

    /// How many functions the catalog knows by name.
    pub fn len(&self) -> usize {
        self.by_name.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_function_ids() {
        assert_eq!(
            split_function_id("sqlite_open_go_infra"),
            Some(("sqlite_open", "go", "infra"))
        );
        assert_eq!(
            split_function_id("parse_py_log_py_data_etl"),
            Some(("parse_py_log", "py", "data_etl"))
        );
        assert_eq!(split_function_id("no_language_here"), None);
        assert_eq!(split_function_id("_py_x"), None);
    }

    #[test]
    fn answers_names_paths_and_apps() {
        let mut catalog = Catalog::new("test");
        catalog.add_function(
            "sqlite_open_go_infra",
            Some("sqlite_open"),
            Some("functions/go/infra/sqlite_open.go"),
        );
        catalog.add_function(
            "sqlite_open_py_infra",
            None,
            Some("./functions/py/infra/sqlite_open.py"),
        );
        catalog.add_app_function("billing", "sqlite_open_go_infra");
        assert_eq!(catalog.len(), 2);
        assert_eq!(
            catalog.function_named("sqlite_open", &["py"]),
            Some("sqlite_open_py_infra")
        );
        assert_eq!(
            catalog.function_named("sqlite_open", &[]),
            Some("sqlite_open_go_infra")
        );
        assert_eq!(
            catalog.function_at("/home/u/reg/functions/py/infra/sqlite_open.py"),
            Some("sqlite_open_py_infra")
        );
        assert_eq!(catalog.function_at("/home/u/other.py"), None);
        assert_eq!(catalog.app_functions("billing"), ["sqlite_open_go_infra"]);
        assert!(catalog.app_functions("other").is_empty());
    }
}

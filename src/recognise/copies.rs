//! Copy detection: which registry functions' code a written file contains,
//! told from fingerprints alone ([`crate::contract::code`]).
//!
//! A [`CodeIndex`] maps each fingerprint of each registry function's source
//! (recorded by `snapshot`) to the functions that have it. A write's
//! fingerprints are looked up once each; a function is *copied* when the
//! file holds at least [`COPY_SHARE`] of its fingerprints. The share is of
//! the function's fingerprints, not the file's, so a function pasted into
//! a much bigger file is still found. Functions with fewer than
//! [`MIN_FUNCTION_FINGERPRINTS`] are not looked for: a few lines of code
//! are too often written the same way by chance.
//!
//! Both constants come from the sweep over the labelled fixture in
//! `fixtures/copies/` (`tests/it/copies.rs`; figures in the README).

use std::collections::HashMap;

use crate::contract::code::Fingerprints;

/// Share of a function's fingerprints a file must contain to copy it. On
/// the labelled fixture copies hold 0.48–1.0 of their function's
/// fingerprints and non-copies at most 0.27: 0.35 sits in the gap (every
/// share from 0.3 to 0.4 gives precision and recall 1.0 there; 0.5 loses
/// two copies).
pub const COPY_SHARE: f64 = 0.35;

/// Fewest fingerprints a function needs to be looked for (about 25 tokens
/// of code, three or four short lines).
pub const MIN_FUNCTION_FINGERPRINTS: usize = 6;

/// The registry's code as fingerprints, inverted.
#[derive(Debug, Default, Clone)]
pub struct CodeIndex {
    /// Function id and how many fingerprints its source has.
    functions: Vec<(String, usize)>,
    /// Function id → its position in `functions`.
    position: HashMap<String, u32>,
    by_hash: HashMap<u32, Vec<u32>>,
}

/// A function found in a written file.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyMatch {
    pub function_id: String,
    /// Its fingerprints found in the file, of `total`.
    pub shared: usize,
    pub total: usize,
}

impl CopyMatch {
    pub fn share(&self) -> f64 {
        self.shared as f64 / self.total as f64
    }
}

impl CodeIndex {
    /// Adds a function's source fingerprints (a function added twice keeps
    /// the first).
    pub fn add(&mut self, function_id: &str, code: &Fingerprints) {
        if code.len() < MIN_FUNCTION_FINGERPRINTS || self.position.contains_key(function_id) {
            return;
        }
        let index = self.functions.len() as u32;
        self.position.insert(function_id.to_string(), index);
        self.functions.push((function_id.to_string(), code.len()));
        for &hash in code.hashes() {
            self.by_hash.entry(hash).or_default().push(index);
        }
    }

    /// Functions indexed.
    pub fn function_count(&self) -> usize {
        self.functions.len()
    }

    /// Every function of which `written` holds at least `share` of the
    /// fingerprints, the largest share first (ties by id).
    pub fn matches(&self, written: &Fingerprints, share: f64) -> Vec<CopyMatch> {
        let mut shared: HashMap<u32, usize> = HashMap::new();
        for hash in written.hashes() {
            for &function in self.by_hash.get(hash).into_iter().flatten() {
                *shared.entry(function).or_default() += 1;
            }
        }
        let mut found: Vec<CopyMatch> = shared
            .into_iter()
            .map(|(function, shared)| {
                let (id, total) = &self.functions[function as usize];
                CopyMatch {
                    function_id: id.clone(),
                    shared,
                    total: *total,
                }
            })
            .filter(|m| m.share() >= share)
            .collect();
        found.sort_by(|a, b| {
            b.share()
                .total_cmp(&a.share())
                .then_with(|| a.function_id.cmp(&b.function_id))
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::code::Lang;

    const FUNCTION: &str = "func Open(path string) (*sql.DB, error) {\n\tdb, err := sql.Open(\"sqlite\", path)\n\tif err != nil {\n\t\treturn nil, fmt.Errorf(\"open %s: %w\", path, err)\n\t}\n\tdb.SetMaxOpenConns(1)\n\treturn db, nil\n}\n";

    #[test]
    fn finds_a_function_inside_a_bigger_file_and_not_elsewhere() {
        let mut index = CodeIndex::default();
        index.add(
            "sqlite_open_go_infra",
            &Fingerprints::of(FUNCTION, Lang::CLike),
        );
        index.add("tiny_go_x", &Fingerprints::of("func A() {}", Lang::CLike));
        assert_eq!(
            index.function_count(),
            1,
            "a function too small to tell is not indexed"
        );

        let bigger = format!(
            "package main\n\nimport \"fmt\"\n\nfunc main() {{\n\tfmt.Println(\"hi\")\n}}\n\n{}\n",
            FUNCTION.replace("path", "p").replace("db", "conn")
        );
        let found = index.matches(&Fingerprints::of(&bigger, Lang::CLike), COPY_SHARE);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].function_id, "sqlite_open_go_infra");
        assert_eq!(found[0].share(), 1.0);

        let other = "func Sum(xs []int) int {\n\ttotal := 0\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\treturn total\n}\n";
        assert!(index
            .matches(&Fingerprints::of(other, Lang::CLike), COPY_SHARE)
            .is_empty());
    }
}

//! Recognition and violation rules as data (CONTRACT §5).
//!
//! The built-in rules live in `src/rules/default.json`; `--rules PATH`
//! names a file in the same format whose entries are merged over them:
//! an entry whose `id` is a built-in rule changes only the members it gives
//! (`{"id": "sqlite3_inline", "severity": "error"}`,
//! `{"id": "import_star", "enabled": false}`), any other entry adds a rule
//! and must be complete. The format is documented in the README.
//!
//! # Matching
//! A rule has a `scope` — the text it is matched against — and a `kind` —
//! what a match produces. Rules are compiled once: per scope, one
//! [`RegexSet`] tells in a single scan which rules match a text, and only
//! those run their own regex for captures. `fn run` rules never look at a
//! Write's path, and a command matched by no rule costs one set scan.
//!
//! # Templates
//! `function_id` and `class` are templates: `{capture}` is replaced by that
//! named capture. A capture called `names` holds a comma-separated list
//! (`a, b as c`); the rule then yields one result per item, available as
//! `{name}`. A rendered function id or class that is not a plain identifier
//! is discarded, so a rule cannot copy free text into the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod compile;

use regex::{Regex, RegexSet};
use serde::Deserialize;
use serde_json::Value;

use compile::{compile_rule, merge, parse_file, RuleSpec, Template};

/// The built-in rules.
pub const DEFAULT_RULES: &str = include_str!("default.json");

/// The text a rule is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each simple command of a Bash command line, words joined by spaces,
    /// the command name as a basename (see [`crate::recognise::bash`]).
    Command,
    /// Each heredoc body of a Bash command line.
    Heredoc,
    /// Both: every simple command and every heredoc body.
    Code,
    /// The name of an MCP tool.
    Mcp,
    /// The path of a completed Edit/Write/MultiEdit/NotebookEdit.
    FilePath,
    /// The error text of a failed tool use.
    Error,
}

impl Scope {
    /// The name used in rules files.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Command => "command",
            Scope::Heredoc => "heredoc",
            Scope::Code => "code",
            Scope::Mcp => "mcp",
            Scope::FilePath => "file_path",
            Scope::Error => "error",
        }
    }
}

const SCOPES: [Scope; 6] = [
    Scope::Command,
    Scope::Heredoc,
    Scope::Code,
    Scope::Mcp,
    Scope::FilePath,
    Scope::Error,
];

/// What a match produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Call,
    Test,
    E2e,
    Write,
    Violation,
    ErrorClass,
}

impl Kind {
    /// The name used in rules files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Test => "test",
            Kind::E2e => "e2e",
            Kind::Write => "write",
            Kind::Violation => "violation",
            Kind::ErrorClass => "error_class",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolUsed {
    FnRun,
    Mcp,
    Heredoc,
}

impl ToolUsed {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolUsed::FnRun => "fn_run",
            ToolUsed::Mcp => "mcp",
            ToolUsed::Heredoc => "heredoc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("rules file {path} is not valid: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("rules file {path}: format version {version} is not supported (expected 1)")]
    Version { path: String, version: u32 },
    #[error("rules file {path}: rule #{index} has no \"id\"")]
    MissingId { path: String, index: usize },
    #[error("rules file {path}: rule `{rule}`: {message}")]
    Rule {
        path: String,
        rule: String,
        message: String,
    },
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub kind: Kind,
    pub regex: Regex,
    pub tool_used: Option<ToolUsed>,
    pub severity: Severity,
    function_id: Template,
    class: Option<Template>,
    pub input_fields: Vec<String>,
    pub registry_name: Option<String>,
}

/// The rules of one scope and the set that prefilters them.
#[derive(Debug)]
struct ScopeRules {
    set: RegexSet,
    rules: Vec<Rule>,
}

/// All enabled rules, compiled.
#[derive(Debug)]
pub struct Rules {
    scopes: HashMap<Scope, ScopeRules>,
    /// Where they came from, for logs: "built-in rules" or the override file.
    pub source: String,
}

impl Rules {
    /// The built-in rules.
    pub fn builtin() -> Self {
        Self::compile(DEFAULT_RULES, None).expect("the built-in rules compile")
    }

    /// The built-in rules, merged with `overrides` when given.
    pub fn load(overrides: Option<&Path>) -> Result<Self, RulesError> {
        let Some(path) = overrides else {
            return Ok(Self::builtin());
        };
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::compile(DEFAULT_RULES, Some((&path.display().to_string(), &text)))
    }

    fn compile(defaults: &str, overrides: Option<(&str, &str)>) -> Result<Self, RulesError> {
        let mut specs = parse_file("built-in rules", defaults)?;
        if let Some((path, text)) = overrides {
            merge(&mut specs, parse_file(path, text)?);
        }
        let source = overrides
            .map_or("built-in rules", |(path, _)| path)
            .to_string();
        let shown = source.as_str();
        let mut compiled: HashMap<Scope, Vec<Rule>> = HashMap::new();
        for (id, spec) in specs {
            let spec = serde_json::from_value::<RuleSpec>(Value::Object(spec)).map_err(|e| {
                RulesError::Rule {
                    path: shown.to_string(),
                    rule: id.clone(),
                    message: e.to_string(),
                }
            })?;
            if !spec.enabled {
                continue;
            }
            let scope = spec.scope;
            let rule = compile_rule(spec).map_err(|message| RulesError::Rule {
                path: shown.to_string(),
                rule: id,
                message,
            })?;
            compiled.entry(scope).or_default().push(rule);
        }
        let scopes = compiled
            .into_iter()
            .map(|(scope, rules)| {
                let set = RegexSet::new(rules.iter().map(|r| r.regex.as_str()))
                    .expect("patterns that compiled alone compile as a set");
                (scope, ScopeRules { set, rules })
            })
            .collect();
        Ok(Rules { scopes, source })
    }

    /// The rules of `scope` that match `text`, in file order.
    pub fn matching<'r>(&'r self, scope: Scope, text: &str) -> Vec<&'r Rule> {
        let Some(scope_rules) = self.scopes.get(&scope) else {
            return Vec::new();
        };
        scope_rules
            .set
            .matches(text)
            .into_iter()
            .map(|i| &scope_rules.rules[i])
            .collect()
    }

    /// Every enabled rule id, per scope in a fixed order (for docs and tests).
    pub fn ids(&self) -> Vec<&str> {
        SCOPES
            .iter()
            .filter_map(|s| self.scopes.get(s))
            .flat_map(|s| s.rules.iter().map(|r| r.id.as_str()))
            .collect()
    }
}

/// What may be stored from a rule's captures: ids, never free text.
pub fn is_identifier(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
}

/// One result of a rule over a text: its named captures, with `name` bound
/// when the rule lists `names`.
pub struct Hit<'r, 't> {
    whole: &'t str,
    named: Vec<(&'r str, &'t str)>,
    name: Option<String>,
}

impl Hit<'_, '_> {
    /// A named capture (or the bound list item for `name`), if it matched.
    pub fn get(&self, name: &str) -> Option<String> {
        if name == "name" {
            if let Some(item) = &self.name {
                return Some(item.clone());
            }
        }
        self.named
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.to_string())
    }

    /// A capture that is an identifier (ids stored in the database).
    pub fn id(&self, name: &str) -> Option<String> {
        self.get(name).filter(|s| is_identifier(s))
    }

    /// The whole match.
    pub fn text(&self) -> &str {
        self.whole
    }

    fn captured(&self, name: &str) -> bool {
        self.named.iter().any(|(n, _)| *n == name)
    }
}

impl Rule {
    /// Every result of this rule over `text`.
    pub fn hits<'r, 't>(&'r self, text: &'t str) -> Vec<Hit<'r, 't>> {
        let mut hits = Vec::new();
        for captures in self.regex.captures_iter(text) {
            let named: Vec<(&str, &str)> = self
                .regex
                .capture_names()
                .flatten()
                .filter_map(|n| Some((n, captures.name(n)?.as_str())))
                .collect();
            let whole = captures.get(0).map_or("", |m| m.as_str());
            let items = captures.name("names").map(|list| {
                list.as_str()
                    .split(',')
                    .filter_map(|item| item.split_whitespace().next())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            });
            match items {
                Some(items) => hits.extend(items.into_iter().map(|name| Hit {
                    whole,
                    named: named.clone(),
                    name: Some(name),
                })),
                None => hits.push(Hit {
                    whole,
                    named,
                    name: None,
                }),
            }
        }
        hits
    }

    /// The function id a hit names, through the rule's template.
    pub fn function_id(&self, hit: &Hit<'_, '_>, external: Option<&str>) -> Option<String> {
        self.function_id.render(&|name| match (name, external) {
            ("function_id", Some(id)) if !hit.captured("function_id") => Some(id.to_string()),
            _ => hit.get(name),
        })
    }

    /// The error class a hit yields (error_class rules).
    pub fn class(&self, hit: &Hit<'_, '_>) -> Option<String> {
        self.class.as_ref()?.render(&|name| hit.get(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(overrides: &str) -> Result<Rules, RulesError> {
        Rules::compile(DEFAULT_RULES, Some(("custom.json", overrides)))
    }

    #[test]
    fn builtin_rules_compile_with_every_contract_rule() {
        let rules = Rules::builtin();
        let ids = rules.ids();
        for id in [
            "fn_run",
            "mcp_registry",
            "heredoc_from_import",
            "fn_test",
            "fn_e2e",
            "registry_file_write",
            "sqlite3_inline",
            "import_star",
            "heredoc_reinvention",
            "error_exit_code",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
    }

    #[test]
    fn overrides_disable_change_and_add() {
        let rules = with(
            r#"{"rules": [
                {"id": "import_star", "enabled": false},
                {"id": "sqlite3_inline", "severity": "error"},
                {"id": "curl_pipe_sh", "kind": "violation", "scope": "command", "pattern": "^curl .*\\| *sh", "severity": "info"}
            ]}"#,
        )
        .unwrap();
        assert!(!rules.ids().contains(&"import_star"));
        let sqlite = rules.matching(Scope::Command, "sqlite3 x.db");
        assert_eq!(sqlite[0].severity, Severity::Error);
        assert!(rules.ids().contains(&"curl_pipe_sh"));
    }

    #[test]
    fn bad_files_name_the_rule_and_the_error() {
        let err = with(r#"{"rules": [{"id": "broken", "kind": "violation", "scope": "command", "pattern": "(", "severity": "warn"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rule `broken`") && err.contains("invalid pattern"),
            "{err}"
        );
        let err = with(r#"{"rules": [{"id": "fn_run", "pattern": "^fn run (?P<x>\\w+)"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rule `fn_run`") && err.contains("{function_id}"),
            "{err}"
        );
        let err = with(r#"{"rules": [{"id": "new", "scope": "command"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rule `new`") && err.contains("missing field"),
            "{err}"
        );
        let err = with(r#"{"rules": [{"id": "fn_run", "colour": 1}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rule `fn_run`") && err.contains("colour"),
            "{err}"
        );
        assert!(with("{").unwrap_err().to_string().contains("custom.json"));
    }

    #[test]
    fn names_lists_yield_one_hit_per_name() {
        let rules = Rules::builtin();
        let body = "from fn_registry.infra import sqlite_open, apply_migrations as am\n";
        let rule = rules.matching(Scope::Heredoc, body)[0];
        let ids: Vec<String> = rule
            .hits(body)
            .iter()
            .filter_map(|h| rule.function_id(h, None))
            .collect();
        assert_eq!(ids, ["sqlite_open_py_infra", "apply_migrations_py_infra"]);
    }

    #[test]
    fn templates_render_identifiers_only() {
        let rules =
            with(r#"{"rules": [{"id": "fn_run", "pattern": "(?s)^fn run (?P<function_id>.+)$"}]}"#)
                .unwrap();
        let rule = rules.matching(Scope::Command, "fn run a b")[0];
        let hit = &rule.hits("fn run a b")[0];
        assert_eq!(rule.function_id(hit, None), None, "free text is not an id");
    }
}

//! Recognition: from one tool-use event to the facts it states — registry
//! calls, test and e2e runs, writes of registry files, rule violations,
//! heredoc skeletons.
//!
//! The parts, all pure (no database, no spool, no clock):
//! - [`rules`]: recognition and violation rules as data, compiled once;
//! - [`bash`]: the simple commands and heredocs of a Bash command line;
//! - [`heredoc`]: Type-2 normalisation of a heredoc body into a skeleton;
//! - [`Catalog`]: what the function registry says (names, paths, apps);
//! - [`ArgsKey`], [`redact`]: privacy — keyed argument hashes, masked text.
//!
//! A [`Recogniser`] holds the rules, the catalog and the key. It gives the
//! same answer for the Pre and the Post event of a tool use (both carry the
//! same input); ingestion decides which facts each phase writes: calls,
//! tests and e2e runs on both (paired), writes only on a successful Post,
//! violations once per tool use and rule.
//!
//! # Invariants
//! - Nothing textual leaves this stage except identifiers (function, app,
//!   check and test ids that pass [`rules::is_identifier`]), keyed hashes
//!   of arguments, and masked skeletons.
//! - It imports only the contract: the tests can run it on an envelope
//!   alone.

mod argkey;
pub mod bash;
mod catalog;
mod copies;
pub mod heredoc;
pub mod redact;
pub mod rules;

use crate::contract::code::Fingerprints;
use crate::contract::Envelope;
pub use argkey::{ArgsKey, ArgsKeyError};
pub use catalog::{split_function_id, Catalog, LANGS};
pub use copies::{CopyMatch, COPY_SHARE, MIN_FUNCTION_FINGERPRINTS};
pub use heredoc::HeredocFact;
pub use rules::{Kind, Rule, Rules, RulesError, Scope, Severity, ToolUsed};

/// Everything classification needs besides the event: the compiled rules,
/// the registry catalog and the args_hash key.
#[derive(Debug)]
pub struct Recogniser {
    pub rules: Rules,
    pub catalog: Catalog,
    key: ArgsKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFact {
    pub function_id: String,
    pub tool_used: ToolUsed,
    pub args_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFact {
    pub function_id: String,
    pub test_id: Option<String>,
}

/// One row of `e2e_runs_fn`: a run of `app_id` on behalf of one function it
/// uses (`None` when the registry does not list the app's functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eFact {
    pub app_id: String,
    pub check_id: Option<String>,
    pub function_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFact {
    pub function_id: String,
    pub file_path: String,
    pub lines_added: i64,
    pub lines_removed: i64,
    /// The hook's digest of the written text, when it sent one.
    pub content_sha256: Option<String>,
}

/// A registry function's code found in a file written outside the
/// registry: a `copy_detected` version of the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFact {
    pub function_id: String,
    pub file_path: String,
    /// The hook's digest of the written text, when it sent one.
    pub content_sha256: Option<String>,
}

/// The violation a copy raises, attributed to the function copied (the
/// one with the largest share when a file holds several).
pub const COPIED_CODE: &str = "copied_code";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationFact {
    pub rule_id: String,
    pub severity: Severity,
    pub function_id: Option<String>,
}

/// What one tool use states.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    pub calls: Vec<CallFact>,
    pub tests: Vec<TestFact>,
    pub e2e: Vec<E2eFact>,
    pub writes: Vec<WriteFact>,
    pub copies: Vec<CopyFact>,
    pub violations: Vec<ViolationFact>,
    /// Heredocs long enough to be pattern candidates, in command order.
    pub heredocs: Vec<HeredocFact>,
}

impl Facts {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.tests.is_empty()
            && self.e2e.is_empty()
            && self.writes.is_empty()
            && self.copies.is_empty()
            && self.violations.is_empty()
            && self.heredocs.is_empty()
    }

    fn violation(&mut self, rule: &Rule, function_id: Option<String>) {
        if self.violations.iter().all(|v| v.rule_id != rule.id) {
            self.violations.push(ViolationFact {
                rule_id: rule.id.clone(),
                severity: rule.severity,
                function_id,
            });
        }
    }
}

/// Tools whose `file_path` is a write.
const WRITE_TOOLS: &[&str] = &["Edit", "MultiEdit", "Write", "NotebookEdit"];

impl Recogniser {
    /// A recogniser from compiled rules, a registry catalog and the
    /// args_hash key (the run stage loads them: `run::load_recogniser`).
    pub fn new(rules: Rules, catalog: Catalog, key: ArgsKey) -> Self {
        Recogniser {
            rules,
            catalog,
            key,
        }
    }

    /// The facts of a tool-use event (empty for other events).
    pub fn recognise(&self, env: &Envelope<'_>) -> Facts {
        let mut facts = Facts::default();
        let tool = env.field("tool_name").unwrap_or_default();
        if tool == "Bash" {
            if let Some(command) = env.field("command") {
                self.bash(command, &mut facts);
            }
        } else if tool.starts_with("mcp__") {
            self.mcp(env, tool, &mut facts);
        } else if WRITE_TOOLS.contains(&tool) {
            if let Some(path) = env.field("file_path") {
                self.write(env, path, &mut facts);
            }
        }
        facts
    }

    fn bash(&self, command: &str, facts: &mut Facts) {
        let script = bash::parse(command);
        let commands = script.commands.iter().map(bash::SimpleCommand::text);
        let mut texts: Vec<(String, &'static [Scope])> = commands
            .map(|text| (text, &[Scope::Command, Scope::Code][..]))
            .collect();
        // Only code is a pattern, and only code breaks code rules: a commit
        // message or a Markdown file written through a heredoc is neither.
        for h in &script.heredocs {
            if let Some(reader) = heredoc::code_reader(h) {
                facts
                    .heredocs
                    .extend(heredoc::heredoc_fact(&h.body, Some(reader)));
                texts.push((h.body.clone(), &[Scope::Heredoc, Scope::Code][..]));
            }
        }
        for (text, scopes) in &texts {
            for &scope in *scopes {
                for rule in self.rules.matching(scope, text) {
                    self.apply(rule, text, facts);
                }
            }
        }
    }

    /// Applies a matching rule of a command or heredoc scope.
    fn apply(&self, rule: &Rule, text: &str, facts: &mut Facts) {
        match rule.kind {
            Kind::Call => {
                let tool_used = rule.tool_used.unwrap_or(ToolUsed::FnRun);
                for hit in rule.hits(text) {
                    let Some(function_id) = rule.function_id(&hit, None) else {
                        continue;
                    };
                    let args = hit.get("args").unwrap_or_else(|| text.to_string());
                    let args_hash = self.key.hash(&[tool_used.as_str(), &function_id, &args]);
                    facts.calls.push(CallFact {
                        function_id,
                        tool_used,
                        args_hash,
                    });
                }
            }
            Kind::Test => {
                for hit in rule.hits(text) {
                    if let Some(function_id) = rule.function_id(&hit, None) {
                        facts.tests.push(TestFact {
                            function_id,
                            test_id: hit.id("test_id"),
                        });
                    }
                }
            }
            Kind::E2e => {
                for hit in rule.hits(text) {
                    if let Some(app_id) = hit.id("app_id") {
                        self.e2e(app_id, hit.id("check_id"), facts);
                    }
                }
            }
            Kind::Violation => self.violation(rule, text, facts),
            // Scopes of their own, handled by `write` and `error_class`.
            Kind::Write | Kind::ErrorClass => {}
        }
    }

    fn e2e(&self, app_id: String, check_id: Option<String>, facts: &mut Facts) {
        let functions = self.catalog.app_functions(&app_id);
        if functions.is_empty() {
            facts.e2e.push(E2eFact {
                app_id,
                check_id,
                function_id: None,
            });
            return;
        }
        for function_id in functions {
            facts.e2e.push(E2eFact {
                app_id: app_id.clone(),
                check_id: check_id.clone(),
                function_id: Some(function_id.clone()),
            });
        }
    }

    fn violation(&self, rule: &Rule, text: &str, facts: &mut Facts) {
        let hits = rule.hits(text);
        match &rule.registry_name {
            // Only a name the registry knows makes it a violation.
            Some(capture) => {
                let named = hits.iter().find_map(|hit| {
                    let name = hit.get(capture)?;
                    let hint = lang_hint(hit.text());
                    self.catalog.function_named(&name, hint).map(str::to_string)
                });
                if let Some(function_id) = named {
                    facts.violation(rule, Some(function_id));
                }
            }
            None => {
                if let Some(hit) = hits.first() {
                    facts.violation(rule, rule.function_id(hit, None));
                }
            }
        }
    }

    fn mcp(&self, env: &Envelope<'_>, tool: &str, facts: &mut Facts) {
        let rules = self.rules.matching(Scope::Mcp, tool);
        if rules.is_empty() {
            return;
        }
        let raw = env.raw("tool_input").map_or("", |r| r.get());
        let input: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw).unwrap_or_default();
        for rule in rules {
            match rule.kind {
                Kind::Call => {
                    let named = rule
                        .input_fields
                        .iter()
                        .find_map(|f| input.get(f).and_then(|v| v.as_str()))
                        .filter(|id| rules::is_identifier(id));
                    let Some(named) = named else {
                        continue;
                    };
                    let hit = &rule.hits(tool)[0];
                    if let Some(function_id) = rule.function_id(hit, Some(named)) {
                        let tool_used = rule.tool_used.unwrap_or(ToolUsed::Mcp);
                        let args_hash = self.key.hash(&[tool_used.as_str(), &function_id, raw]);
                        facts.calls.push(CallFact {
                            function_id,
                            tool_used,
                            args_hash,
                        });
                    }
                }
                Kind::Violation => self.violation(rule, tool, facts),
                _ => {}
            }
        }
    }

    /// A write of a registry function's file: the registry's own path
    /// first, else the first `write` rule; plus `file_path` violations.
    fn write(&self, env: &Envelope<'_>, written: &str, facts: &mut Facts) {
        // A Windows path is matched with `/` separators (registries and
        // rules name paths that way); the path is kept as written.
        let path: std::borrow::Cow<'_, str> = if written.contains('\\') {
            written.replace('\\', "/").into()
        } else {
            written.into()
        };
        let path = path.as_ref();
        let rules = self.rules.matching(Scope::FilePath, path);
        let function_id = self
            .catalog
            .function_at(path)
            .map(str::to_string)
            .or_else(|| {
                rules
                    .iter()
                    .filter(|rule| rule.kind == Kind::Write)
                    .find_map(|rule| rule.function_id(rule.hits(path).first()?, None))
            });
        let content_sha256 = env
            .field("content_sha256")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string);
        if let Some(function_id) = function_id {
            let count = |name| env.int(name).filter(|n| *n >= 0).unwrap_or(0);
            facts.writes.push(WriteFact {
                function_id,
                file_path: written.to_string(),
                lines_added: count("lines_added"),
                lines_removed: count("lines_removed"),
                content_sha256,
            });
        } else if !self.catalog.in_registry(path) {
            self.copies(env, written, content_sha256, facts);
        }
        for rule in rules.into_iter().filter(|r| r.kind == Kind::Violation) {
            self.violation(rule, path, facts);
        }
    }

    /// Registry functions whose code the write put into a file outside the
    /// registry, from the fingerprints the hook sent.
    fn copies(
        &self,
        env: &Envelope<'_>,
        written: &str,
        content_sha256: Option<String>,
        facts: &mut Facts,
    ) {
        let Some(fingerprints) = env
            .field("code_fingerprints")
            .and_then(Fingerprints::from_hex)
        else {
            return;
        };
        let found = self.catalog.copied_functions(&fingerprints);
        if let Some(first) = found.first() {
            facts.violations.push(ViolationFact {
                rule_id: COPIED_CODE.to_string(),
                severity: Severity::Warn,
                function_id: Some(first.function_id.clone()),
            });
        }
        facts.copies.extend(found.into_iter().map(|m| CopyFact {
            function_id: m.function_id,
            file_path: written.to_string(),
            content_sha256: content_sha256.clone(),
        }));
    }

    /// A coarse, text-free class of a failure: `interrupted` from the
    /// payload's flags, else the first `error_class` rule matching the
    /// error text, else `other`.
    pub fn error_class(&self, env: &Envelope<'_>) -> String {
        let interrupted = ["is_interrupt", "interrupted"]
            .iter()
            .any(|k| env.flag(k) == Some(true));
        if interrupted {
            return "interrupted".into();
        }
        let error = env.field("error").unwrap_or_default();
        self.rules
            .matching(Scope::Error, error)
            .into_iter()
            .filter(|r| r.kind == Kind::ErrorClass)
            .find_map(|rule| rule.hits(error).first().and_then(|hit| rule.class(hit)))
            .unwrap_or_else(|| "other".into())
    }
}

/// Languages whose definitions look like `hit` (`def` is Python, `func`
/// Go), to choose among same-named registry functions.
fn lang_hint(definition: &str) -> &'static [&'static str] {
    let keyword = definition
        .split_whitespace()
        .find(|w| *w != "async")
        .unwrap_or_default();
    match keyword {
        "def" => &["py"],
        "func" => &["go"],
        "function" => &["ts", "sh"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests;

//! Compiling rules: the JSON of the built-in file and of an override file,
//! merged by id, checked (kinds, scopes, captures, templates) and turned
//! into [`Rule`]s.

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{is_identifier, Kind, Rule, RulesError, Scope, Severity, ToolUsed};

/// One rule as written in a rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleSpec {
    pub(super) id: String,
    #[serde(default)]
    #[allow(dead_code)] // Documentation for people reading the file.
    pub(super) description: Option<String>,
    pub(super) kind: Kind,
    pub(super) scope: Scope,
    pub(super) pattern: String,
    #[serde(default = "enabled_by_default")]
    pub(super) enabled: bool,
    pub(super) tool_used: Option<ToolUsed>,
    pub(super) function_id: Option<String>,
    pub(super) severity: Option<Severity>,
    pub(super) class: Option<String>,
    pub(super) input_fields: Option<Vec<String>>,
    pub(super) registry_name: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    version: Option<u32>,
    rules: Vec<Map<String, Value>>,
}

/// A rule as a JSON object, with its id.
pub(super) type RawRule = (String, Map<String, Value>);

/// The rules of a file as JSON objects, in order, keyed by id.
pub(super) fn parse_file(path: &str, text: &str) -> Result<Vec<RawRule>, RulesError> {
    let file: RulesFile = serde_json::from_str(text).map_err(|source| RulesError::Json {
        path: path.to_string(),
        source,
    })?;
    if let Some(version) = file.version.filter(|v| *v != 1) {
        return Err(RulesError::Version {
            path: path.to_string(),
            version,
        });
    }
    file.rules
        .into_iter()
        .enumerate()
        .map(
            |(index, rule)| match rule.get("id").and_then(Value::as_str) {
                Some(id) => Ok((id.to_string(), rule)),
                None => Err(RulesError::MissingId {
                    path: path.to_string(),
                    index: index + 1,
                }),
            },
        )
        .collect()
}

/// Applies override entries: members replace those of the rule with the
/// same id; new ids are appended.
pub(super) fn merge(specs: &mut Vec<RawRule>, overrides: Vec<RawRule>) {
    for (id, members) in overrides {
        match specs.iter_mut().find(|(existing, _)| *existing == id) {
            Some((_, spec)) => spec.extend(members),
            None => specs.push((id, members)),
        }
    }
}

pub(super) fn compile_rule(spec: RuleSpec) -> Result<Rule, String> {
    let regex = Regex::new(&spec.pattern).map_err(|e| format!("invalid pattern: {e}"))?;
    let captures: Vec<&str> = regex.capture_names().flatten().collect();
    let allowed: &[Scope] = match spec.kind {
        Kind::Call => &[Scope::Command, Scope::Heredoc, Scope::Code, Scope::Mcp],
        Kind::Test | Kind::E2e => &[Scope::Command, Scope::Heredoc, Scope::Code],
        Kind::Write => &[Scope::FilePath],
        Kind::Violation => &[
            Scope::Command,
            Scope::Heredoc,
            Scope::Code,
            Scope::Mcp,
            Scope::FilePath,
        ],
        Kind::ErrorClass => &[Scope::Error],
    };
    if !allowed.contains(&spec.scope) {
        return Err(format!(
            "a `{}` rule cannot have scope `{}`",
            spec.kind.name(),
            spec.scope.name()
        ));
    }
    let need = |what: &str| format!("a `{}` rule needs \"{what}\"", spec.kind.name());
    let (function_id, class) = match spec.kind {
        Kind::Call | Kind::Test | Kind::Write => {
            if spec.kind == Kind::Call && spec.tool_used.is_none() {
                return Err(need("tool_used"));
            }
            let default = "{function_id}";
            let template = spec.function_id.as_deref().unwrap_or(default);
            (
                Template::parse(template, &captures, spec.scope == Scope::Mcp)?,
                None,
            )
        }
        Kind::E2e => {
            if !captures.contains(&"app_id") {
                return Err("an `e2e` rule's pattern needs an `app_id` capture".into());
            }
            (Template::empty(), None)
        }
        Kind::Violation => {
            if spec.severity.is_none() {
                return Err(need("severity"));
            }
            let template = match &spec.function_id {
                Some(t) => Template::parse(t, &captures, false)?,
                None => Template::empty(),
            };
            (template, None)
        }
        Kind::ErrorClass => {
            let class = spec.class.as_deref().ok_or_else(|| need("class"))?;
            (
                Template::empty(),
                Some(Template::parse(class, &captures, false)?),
            )
        }
    };
    if let Some(name) = &spec.registry_name {
        if !captures.contains(&name.as_str()) {
            return Err(format!(
                "registry_name `{name}` is not a capture of the pattern"
            ));
        }
    }
    let input_fields = spec.input_fields.unwrap_or_default();
    if spec.scope == Scope::Mcp && spec.kind == Kind::Call && input_fields.is_empty() {
        return Err(need("input_fields"));
    }
    Ok(Rule {
        id: spec.id,
        kind: spec.kind,
        regex,
        tool_used: spec.tool_used,
        severity: spec.severity.unwrap_or(Severity::Warn),
        function_id,
        class,
        input_fields,
        registry_name: spec.registry_name,
    })
}

/// A `{capture}` template.
#[derive(Debug, Clone)]
pub(super) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Capture(String),
}

impl Template {
    fn empty() -> Self {
        Template { parts: Vec::new() }
    }

    /// `external` allows `{function_id}` without such a capture (MCP rules
    /// take it from the tool input).
    fn parse(text: &str, captures: &[&str], external: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in template `{text}`"))?;
            let name = &rest[open + 1..open + close];
            let known = captures.contains(&name)
                || (name == "name" && captures.contains(&"names"))
                || (external && name == "function_id");
            if !known {
                return Err(format!(
                    "template `{text}` uses `{{{name}}}`, which the pattern does not capture"
                ));
            }
            parts.push(Part::Capture(name.to_string()));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        Ok(Template { parts })
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The rendered text, or `None` when a capture did not participate or
    /// the result is not an identifier.
    pub(super) fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Capture(name) => out.push_str(&lookup(name)?),
            }
        }
        is_identifier(&out).then_some(out)
    }
}

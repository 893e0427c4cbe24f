//! Heredocs as pattern candidates: Type-2 clone normalisation of a heredoc
//! body into a *skeleton*, and the [`HeredocFact`] ingestion records.
//!
//! Two heredocs that differ only in names, literals, layout, comments or
//! the order of their imports get the same skeleton, as in token-based
//! clone detectors (CCFinder's "parameterised" tokens):
//!
//! - comments and whitespace go; statements are one line each, tokens
//!   separated by one space; `;` ends a statement like a newline;
//! - string literals become `S`, numbers `N`, shell paths and URLs `P` (a docstring,
//!   a statement that is only a string, goes like a comment);
//! - identifiers become `ID`, except keywords and builtins, names bound by
//!   an import (modules, imported names, aliases), attributes (`x.attr`
//!   keeps `attr`) and, in shell, the command word — these carry what the
//!   code *does*, the rest is what the author happened to call things;
//! - import statements are sorted, de-duplicated and put first.
//!
//! The language is guessed from the interpreter the heredoc is fed to
//! (`python3 - <<EOF`, `node <<EOF`, `sqlite3 db <<EOF`, `bash <<EOF`);
//! anything else is read as Python, the common case. The tokenizer never
//! fails: an unterminated string or comment runs to the end of the body.
//!
//! A skeleton holds no literal of the original, only language words,
//! imported and attribute names, placeholders and punctuation; it is
//! masked once more for secret shapes ([`crate::recognise::redact::mask_secrets`])
//! before being stored.
//!
//! Pure: recognition calls [`heredoc_fact`] at ingest time, where the raw
//! text still exists; the body itself is never stored. Clustering the
//! recorded skeletons into patterns is the insight stage's work.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::bash::Heredoc;
use super::redact;
use crate::contract::code::{tokenize, Lang, Token, KEPT_WORDS};

/// Heredocs shorter than this many skeleton tokens are not recorded: a
/// `print(x)` repeated is not a pattern worth a function.
pub const MIN_TOKENS: usize = 12;

/// The recorded form of one heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocFact {
    /// 128-bit hex digest of `skeleton`.
    pub skeleton_hash: String,
    /// The masked skeleton.
    pub skeleton: String,
    pub tokens: usize,
}

/// Programs that read a heredoc as code.
const INTERPRETERS: &[&str] = &[
    "python", "python3", "pypy3", "uv", "node", "deno", "bun", "ts-node", "tsx", "bash", "sh",
    "zsh", "dash", "ksh", "ruby", "perl", "php", "lua", "Rscript", "sqlite3", "psql", "mysql",
    "duckdb", "go",
];

/// File extensions of code, and the interpreter whose language a heredoc
/// written to such a file is read in.
const CODE_FILES: &[(&str, &str)] = &[
    ("py", "python3"),
    ("js", "node"),
    ("mjs", "node"),
    ("cjs", "node"),
    ("ts", "node"),
    ("tsx", "node"),
    ("jsx", "node"),
    ("go", "go"),
    ("rs", "go"),
    ("java", "go"),
    ("c", "go"),
    ("cc", "go"),
    ("cpp", "go"),
    ("h", "go"),
    ("sh", "bash"),
    ("bash", "bash"),
    ("zsh", "bash"),
    ("sql", "sqlite3"),
    ("rb", "ruby"),
    ("pl", "perl"),
    ("php", "php"),
    ("lua", "lua"),
];

/// Whether a heredoc is code, and in which language: `Some(interpreter)`
/// when an interpreter reads it — its command (`python3 - <<EOF`,
/// `sqlite3 db <<SQL`, `bash <<EOF`) or, for `cat`, the command it pipes
/// into (`cat <<EOF | python3 -`) — or when `cat`/`tee` writes it to a file
/// with a code extension (`cat > job.py <<EOF`, `tee run.sh <<EOF`); `None`
/// for everything else: commit messages (`git commit -m "$(cat <<EOF …)"`),
/// PR bodies, notes and configuration written to `.md`, `.txt`, `.json`.
pub fn code_reader(heredoc: &Heredoc) -> Option<&str> {
    let command = heredoc.command.as_deref()?;
    let name = basename(command);
    if is_interpreter(name) {
        return Some(command);
    }
    if !matches!(name, "cat" | "tee") {
        return None;
    }
    if let Some(next) = heredoc
        .pipes_into
        .as_deref()
        .filter(|n| is_interpreter(basename(n)))
    {
        return Some(next);
    }
    let writes_to = heredoc.writes_to.as_deref();
    let file = basename(writes_to?);
    let (_, extension) = file.rsplit_once('.')?;
    CODE_FILES
        .iter()
        .find(|(ext, _)| ext.eq_ignore_ascii_case(extension))
        .map(|(_, reader)| *reader)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_interpreter(name: &str) -> bool {
    INTERPRETERS.contains(&name)
        || name
            .strip_prefix("python")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The fact of a heredoc fed to `interpreter`, or `None` when too short.
pub fn heredoc_fact(body: &str, interpreter: Option<&str>) -> Option<HeredocFact> {
    let skeleton = normalize(body, interpreter);
    if skeleton.tokens < MIN_TOKENS {
        return None;
    }
    let masked = redact::mask_secrets(&skeleton.text);
    Some(HeredocFact {
        skeleton_hash: skeleton_hash(&masked),
        skeleton: masked,
        tokens: skeleton.tokens,
    })
}

fn skeleton_hash(skeleton: &str) -> String {
    hex::encode(&Sha256::digest(skeleton.as_bytes())[..16])
}

/// A normalised heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    /// Statements, one per line, tokens separated by single spaces.
    pub text: String,
    /// How many tokens it has.
    pub tokens: usize,
}

/// The skeleton of `body`, fed to `interpreter` (the heredoc's command).
pub fn normalize(body: &str, interpreter: Option<&str>) -> Skeleton {
    let lang = Lang::of(interpreter);
    let statements: Vec<Vec<Token>> = statements(tokenize(body, lang))
        .into_iter()
        .flat_map(split_import_list)
        .collect();
    let imported: HashSet<&str> = statements
        .iter()
        .filter(|s| is_import(s))
        .flatten()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let mut imports = Vec::new();
    let mut body_lines = Vec::new();
    for statement in &statements {
        if is_docstring(statement) {
            continue;
        }
        let line = render(statement, lang, &imported);
        if is_import(statement) {
            imports.push(line);
        } else {
            body_lines.push(line);
        }
    }
    imports.sort();
    imports.dedup();
    let lines: Vec<String> = imports.into_iter().chain(body_lines).collect();
    let tokens = lines.iter().map(|l| l.split(' ').count()).sum();
    Skeleton {
        text: lines.join("\n"),
        tokens,
    }
}

/// `import a, b as c` → `import a`, `import b as c`, so the sort puts each
/// module where its own `import` line would be.
fn split_import_list(statement: Vec<Token>) -> Vec<Vec<Token>> {
    let plain_import = matches!(statement.first(), Some(Token::Word(w)) if w == "import");
    if !plain_import || !statement.contains(&Token::Punct(',')) {
        return vec![statement];
    }
    let import = statement[0].clone();
    statement[1..]
        .split(|t| *t == Token::Punct(','))
        .filter(|names| !names.is_empty())
        .map(|names| {
            std::iter::once(import.clone())
                .chain(names.iter().cloned())
                .collect()
        })
        .collect()
}

fn is_import(statement: &[Token]) -> bool {
    matches!(statement.first(), Some(Token::Word(w)) if w == "import" || w == "from")
}

fn is_docstring(statement: &[Token]) -> bool {
    matches!(statement, [Token::Str])
}

fn render(statement: &[Token], lang: Lang, imported: &HashSet<&str>) -> String {
    let mut out: Vec<String> = Vec::with_capacity(statement.len());
    for (i, token) in statement.iter().enumerate() {
        let text = match token {
            Token::Word(w) => {
                let attribute = i > 0 && statement[i - 1] == Token::Punct('.');
                let command = lang == Lang::Shell
                    && (i == 0 || matches!(statement[i - 1], Token::Punct('|' | '&' | '(')));
                if attribute
                    || command
                    || KEPT_WORDS.contains(w.as_str())
                    || imported.contains(w.as_str())
                {
                    w.clone()
                } else {
                    "ID".to_string()
                }
            }
            Token::Str => "S".into(),
            Token::Num => "N".into(),
            Token::Path => "P".into(),
            Token::Punct(c) => c.to_string(),
            Token::End => continue,
        };
        out.push(text);
    }
    out.join(" ")
}

/// Groups tokens into statements, dropping empty ones.
fn statements(tokens: Vec<Token>) -> Vec<Vec<Token>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        if token == Token::End {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        } else {
            current.push(token);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(body: &str) -> String {
        normalize(body, Some("python3")).text
    }

    #[test]
    fn names_literals_comments_and_layout_do_not_matter() {
        let a = "import json\nimport sqlite3\n# load rows\nconn = sqlite3.connect('a.db')\nrows = conn.execute(\"SELECT * FROM t WHERE x > 3\").fetchall()\nfor r in rows:\n    print(json.dumps(r))\n";
        let b = "import sqlite3, json\n\n\"\"\"Dump the table.\"\"\"\nimport json\ndb = sqlite3.connect(\"/tmp/other.db\")  # other file\nresult = db.execute('SELECT id FROM users').fetchall()\nfor row in result:\n  print(json.dumps(row))";
        let c = "import sqlite3\nimport json\ndb = sqlite3.connect(\"x\"); result = db.execute('q').fetchall()\nfor row in result:\n  print(json.dumps(row))";
        assert_eq!(
            py(c),
            py(a),
            "reordered imports, renamed names, changed literals"
        );
        assert_eq!(
            py(a),
            "import json\nimport sqlite3\nID = sqlite3 . connect ( S )\nID = ID . execute ( S ) . fetchall ( )\nfor ID in ID :\nprint ( json . dumps ( ID ) )"
        );
        // `import sqlite3, json` split and sorted, a docstring dropped:
        // equal too.
        assert_eq!(py(b), py(a));
    }

    #[test]
    fn keeps_what_the_code_does() {
        let a = py(
            "from fn_registry.data import csv_load as load\nrows = load(path)\nprint(len(rows))",
        );
        assert_eq!(a, "from fn_registry . data import csv_load as load\nID = load ( ID )\nprint ( len ( ID ) )");
        assert_ne!(py("x = y.upper()"), py("x = y.lower()"));
        assert_eq!(py("x = f'{a}'"), py("x = rb\"zz\""));
        assert_eq!(py("t = 0x1F + 3.5e2"), "ID = N + N");
    }

    #[test]
    fn other_languages() {
        let sh = normalize(
            "# comment\ncurl -s https://example.com > /tmp/out.json\njq '.x' ./out.json | wc -l\n",
            Some("bash"),
        );
        assert_eq!(sh.text, "curl - ID P > P\njq S P | wc - ID");
        let js = normalize(
            "// hi\nconst fs = require('fs'); /* x */\nconsole.log(fs.readFileSync(p))",
            Some("node"),
        );
        assert_eq!(
            js.text,
            "const ID = require ( S )\nconsole . log ( ID . readFileSync ( ID ) )"
        );
        let sql = normalize(
            "-- q\nSELECT name FROM users WHERE id = 3;",
            Some("sqlite3"),
        );
        assert_eq!(sql.text, "SELECT ID FROM ID WHERE ID = N");
        assert_eq!(sql.tokens, 8);
    }

    #[test]
    fn never_fails_on_unterminated_input() {
        for body in [
            "'abc",
            "\"\"\"never closed",
            "/* open",
            "x = (",
            "\\",
            "f'",
            "é = ü",
        ] {
            let _ = normalize(body, Some("python3"));
            let _ = normalize(body, Some("node"));
            let _ = normalize(body, Some("bash"));
        }
    }

    #[test]
    fn only_heredocs_read_as_code_are_code() {
        let reader = |command: Option<&str>, writes_to: Option<&str>, pipes_into: Option<&str>| {
            let heredoc = Heredoc {
                body: String::new(),
                command: command.map(str::to_string),
                writes_to: writes_to.map(str::to_string),
                pipes_into: pipes_into.map(str::to_string),
            };
            code_reader(&heredoc).map(str::to_string)
        };
        let code = |r: &str| Some(r.to_string());
        assert_eq!(reader(Some("python3"), None, None), code("python3"));
        assert_eq!(reader(Some("python3.12"), None, None), code("python3.12"));
        assert_eq!(
            reader(Some("/usr/bin/node"), None, None),
            code("/usr/bin/node")
        );
        assert_eq!(reader(Some("sqlite3"), None, None), code("sqlite3"));
        assert_eq!(
            reader(Some("cat"), Some("src/job.py"), None),
            code("python3")
        );
        assert_eq!(reader(Some("cat"), Some("run.SH"), None), code("bash"));
        assert_eq!(reader(Some("tee"), Some("q.sql"), None), code("sqlite3"));
        assert_eq!(reader(Some("cat"), None, Some("python3")), code("python3"));
        // Text, not code.
        assert_eq!(reader(Some("cat"), None, None), None);
        assert_eq!(reader(Some("cat"), None, Some("grep")), None);
        assert_eq!(reader(Some("cat"), Some("notes.md"), None), None);
        assert_eq!(reader(Some("cat"), Some("Makefile"), None), None);
        assert_eq!(reader(Some("cat"), Some("config.json"), None), None);
        assert_eq!(reader(Some("git"), None, None), None);
        assert_eq!(reader(Some("gh"), None, None), None);
        assert_eq!(reader(Some("pythonic"), None, None), None);
        assert_eq!(reader(None, Some("a.py"), None), None);
    }

    #[test]
    fn short_heredocs_are_not_recorded() {
        assert!(heredoc_fact("print(x)", Some("python3")).is_none());
        let fact = heredoc_fact(
            "import json\nrows = json.load(open('a.json'))\nfor r in rows:\n    print(r['id'])\n",
            Some("python3"),
        )
        .unwrap();
        assert_eq!(fact.skeleton_hash.len(), 32);
        assert!(!fact.skeleton.contains("a.json"));
    }
}

//! Type-2 clone normalisation of a heredoc body into a *skeleton*.
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
//! masked once more for secret shapes ([`crate::redact::mask_secrets`])
//! before being stored.

use std::collections::HashSet;
use std::sync::LazyLock;

/// A normalised heredoc body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    /// Statements, one per line, tokens separated by single spaces.
    pub text: String,
    /// How many tokens it has.
    pub tokens: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Shell,
    CLike,
    Sql,
}

fn lang_of(interpreter: Option<&str>) -> Lang {
    let name = interpreter.unwrap_or_default();
    let name = name.rsplit('/').next().unwrap_or(name);
    if name.starts_with("python") || name == "uv" || name == "pypy3" {
        Lang::Python
    } else if matches!(name, "sh" | "bash" | "zsh" | "dash" | "ksh") {
        Lang::Shell
    } else if matches!(name, "node" | "deno" | "bun" | "ts-node" | "tsx" | "go") {
        Lang::CLike
    } else if matches!(name, "sqlite3" | "psql" | "mysql" | "duckdb") {
        Lang::Sql
    } else {
        Lang::Python
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Str,
    Num,
    Path,
    Punct(char),
    /// End of a statement (newline outside brackets, or `;`).
    End,
}

/// Language words kept as they are (a union: a heredoc's language is only
/// guessed, and the words rarely clash).
static KEPT_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    [
        // Python keywords and common builtins
        "False",
        "None",
        "True",
        "and",
        "as",
        "assert",
        "async",
        "await",
        "break",
        "class",
        "continue",
        "def",
        "del",
        "elif",
        "else",
        "except",
        "finally",
        "for",
        "from",
        "global",
        "if",
        "import",
        "in",
        "is",
        "lambda",
        "nonlocal",
        "not",
        "or",
        "pass",
        "raise",
        "return",
        "try",
        "while",
        "with",
        "yield",
        "match",
        "case",
        "self",
        "cls",
        "print",
        "len",
        "range",
        "open",
        "str",
        "int",
        "float",
        "bool",
        "bytes",
        "dict",
        "list",
        "set",
        "tuple",
        "type",
        "enumerate",
        "zip",
        "map",
        "filter",
        "sorted",
        "reversed",
        "sum",
        "min",
        "max",
        "abs",
        "any",
        "all",
        "isinstance",
        "hasattr",
        "getattr",
        "setattr",
        "super",
        "iter",
        "next",
        "round",
        "repr",
        "format",
        "input",
        "object",
        "Exception",
        "ValueError",
        "KeyError",
        "TypeError",
        "RuntimeError",
        "OSError",
        "IOError",
        "StopIteration",
        "__name__",
        "__main__",
        "__init__",
        "__file__",
        // JavaScript / TypeScript / Go
        "const",
        "let",
        "var",
        "function",
        "new",
        "this",
        "extends",
        "export",
        "default",
        "require",
        "module",
        "exports",
        "console",
        "JSON",
        "Object",
        "Array",
        "Promise",
        "Math",
        "null",
        "undefined",
        "true",
        "false",
        "typeof",
        "instanceof",
        "of",
        "throw",
        "catch",
        "switch",
        "do",
        "void",
        "interface",
        "package",
        "func",
        "go",
        "defer",
        "chan",
        "struct",
        "err",
        "nil",
        "fmt",
        "make",
        "append",
        "string",
        "error",
        // Shell
        "then",
        "fi",
        "done",
        "esac",
        "elif",
        "echo",
        "printf",
        "read",
        "local",
        "cd",
        "test",
        "exit",
        "shift",
        "source",
        "unset",
        "set",
        // SQL (as usually written)
        "SELECT",
        "FROM",
        "WHERE",
        "INSERT",
        "INTO",
        "VALUES",
        "UPDATE",
        "DELETE",
        "CREATE",
        "TABLE",
        "INDEX",
        "DROP",
        "JOIN",
        "LEFT",
        "ON",
        "GROUP",
        "BY",
        "ORDER",
        "LIMIT",
        "AND",
        "OR",
        "NOT",
        "NULL",
        "AS",
        "COUNT",
        "DISTINCT",
        "HAVING",
        "SET",
        "PRAGMA",
        "BEGIN",
        "COMMIT",
        "select",
        "from",
        "where",
        "insert",
        "into",
        "values",
        "update",
        "delete",
        "create",
        "table",
        "join",
        "group",
        "by",
        "order",
        "limit",
        "count",
    ]
    .into_iter()
    .collect()
});

/// The skeleton of `body`, fed to `interpreter` (the heredoc's command).
pub fn normalize(body: &str, interpreter: Option<&str>) -> Skeleton {
    let lang = lang_of(interpreter);
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

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    lang: Lang,
    depth: usize,
    out: Vec<Token>,
}

fn tokenize(body: &str, lang: Lang) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: body.chars().collect(),
        at: 0,
        lang,
        depth: 0,
        out: Vec::new(),
    };
    lexer.run();
    lexer.out
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn previous_is_space(&self) -> bool {
        self.at == 0 || self.chars[self.at - 1].is_whitespace() || self.chars[self.at - 1] == '='
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                '\n' => {
                    self.at += 1;
                    if self.depth == 0 {
                        self.out.push(Token::End);
                    }
                }
                '\\' if self.peek(1) == Some('\n') => self.at += 2,
                c if c.is_whitespace() => self.at += 1,
                ';' => {
                    self.at += 1;
                    self.out.push(Token::End);
                }
                _ if self.comment_starts() => self.skip_comment(),
                '"' | '\'' | '`' => self.string(),
                c if c.is_ascii_digit() => {
                    self.take_while(|c| is_word_char(c) || c == '.');
                    self.out.push(Token::Num);
                }
                '/' | '~' | '.' if self.lang == Lang::Shell && self.path_starts() => {
                    self.take_while(|c| !c.is_whitespace() && !";|&<>()\"'".contains(c));
                    self.out.push(Token::Path);
                }
                c if is_word_char(c) => self.word(),
                c => {
                    self.at += 1;
                    match c {
                        '(' | '[' | '{' => self.depth += 1,
                        ')' | ']' | '}' => self.depth = self.depth.saturating_sub(1),
                        _ => {}
                    }
                    self.out.push(Token::Punct(c));
                }
            }
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.at;
        while self.peek(0).is_some_and(&keep) {
            self.at += 1;
        }
        self.chars[start..self.at].iter().collect()
    }

    fn comment_starts(&self) -> bool {
        let (c, next) = (self.peek(0), self.peek(1));
        match self.lang {
            Lang::Python => c == Some('#'),
            Lang::Shell => c == Some('#') && self.previous_is_space(),
            Lang::CLike => c == Some('/') && matches!(next, Some('/' | '*')),
            Lang::Sql => {
                (c == Some('-') && next == Some('-')) || (c == Some('/') && next == Some('*'))
            }
        }
    }

    fn skip_comment(&mut self) {
        if self.peek(0) == Some('/') && self.peek(1) == Some('*') {
            self.at += 2;
            while self.at < self.chars.len()
                && !(self.peek(0) == Some('*') && self.peek(1) == Some('/'))
            {
                self.at += 1;
            }
            self.at = (self.at + 2).min(self.chars.len());
        } else {
            // The newline stays: it may end a statement.
            self.take_while(|c| c != '\n');
        }
    }

    fn path_starts(&self) -> bool {
        if !self.previous_is_space() {
            return false;
        }
        match (self.peek(0), self.peek(1)) {
            (Some('/'), Some(n)) => is_word_char(n) || n == '.',
            (Some('~' | '.'), Some('/')) => true,
            (Some('.'), Some('.')) => self.peek(2) == Some('/'),
            _ => false,
        }
    }

    fn word(&mut self) {
        let word = self.take_while(is_word_char);
        let prefix = self.lang == Lang::Python
            && word.len() <= 2
            && word.chars().all(|c| "rbfuRBFU".contains(c));
        if prefix && matches!(self.peek(0), Some('"' | '\'')) {
            self.string();
            return;
        }
        let url = self.lang == Lang::Shell
            && self.peek(0) == Some(':')
            && self.peek(1) == Some('/')
            && self.peek(2) == Some('/');
        if url {
            self.take_while(|c| !c.is_whitespace() && !";|&<>()\"'".contains(c));
            self.out.push(Token::Path);
            return;
        }
        self.out.push(Token::Word(word));
    }

    /// A quoted literal starting at the quote; Python triple quotes too.
    fn string(&mut self) {
        let quote = self.peek(0).unwrap_or('"');
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        let escapes = !(self.lang == Lang::Shell && quote == '\'');
        self.at += if triple { 3 } else { 1 };
        while let Some(c) = self.peek(0) {
            if escapes && c == '\\' {
                self.at += 2;
                continue;
            }
            if c == quote {
                if !triple {
                    self.at += 1;
                    break;
                }
                if self.peek(1) == Some(quote) && self.peek(2) == Some(quote) {
                    self.at += 3;
                    break;
                }
            }
            self.at += 1;
        }
        self.at = self.at.min(self.chars.len());
        self.out.push(Token::Str);
    }
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
}

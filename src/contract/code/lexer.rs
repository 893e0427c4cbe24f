//! The code tokenizer: a text read as tokens of its (guessed) language,
//! for heredoc skeletons and for copy fingerprints. It never fails: an
//! unterminated string or comment runs to the end of the text.

use foldhash::HashSet;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    Shell,
    CLike,
    Sql,
}

impl Lang {
    /// The language guessed from the interpreter a heredoc is fed to.
    pub fn of(interpreter: Option<&str>) -> Lang {
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

    /// The language of a source file by its extension; `None` for files
    /// that are not code (Markdown, JSON, YAML, text, unknown).
    pub fn of_path(path: &str) -> Option<Lang> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let (_, extension) = name.rsplit_once('.')?;
        let lang = match extension.to_ascii_lowercase().as_str() {
            "py" | "pyi" | "ipynb" => Lang::Python,
            "sh" | "bash" | "zsh" => Lang::Shell,
            "go" | "js" | "mjs" | "cjs" | "jsx" | "ts" | "tsx" | "rs" | "c" | "h" | "cc"
            | "cpp" | "hpp" | "java" | "kt" | "swift" | "cs" | "scala" | "php" => Lang::CLike,
            "sql" => Lang::Sql,
            _ => return None,
        };
        Some(lang)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
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
pub static KEPT_WORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
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

pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer {
    chars: Vec<char>,
    at: usize,
    lang: Lang,
    depth: usize,
    out: Vec<Token>,
}

pub fn tokenize(body: &str, lang: Lang) -> Vec<Token> {
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

//! Just enough Bash to classify what an agent ran.
//!
//! Rules match *simple commands* (`fn run x --flag`, `sqlite3 ops.db`) and
//! *heredoc bodies*, never the raw command line: `echo "fn run x"`,
//! `# fn run x` and `python3 -c "import sqlite3"` must not count, while
//! `a && (fn run x | jq .) ; fn run y` counts twice. [`parse`] splits a
//! command line into both lists.
//!
//! What it understands: `;`, `&`, `&&`, `||`, `|`, `|&`, newlines, `( )`
//! subshells and `{ }` groups; single, double and `$'…'` quotes; backslash
//! escapes and line continuations; comments (a `#` starting a word);
//! command substitution `$( )`, backticks and process substitution
//! `<( )`/`>( )`, whose commands are parsed too; redirections (their
//! targets are not arguments); heredocs with any delimiter, quoted or not,
//! `<<-` stripping leading tabs, several on one line; leading variable
//! assignments, keywords (`if`, `then`, `do`, `!`, …) and wrappers (`sudo`,
//! `env`, `time`, `nohup`, `timeout 5`, …), which are not the command.
//! Code that Bash itself runs — `bash -c '…'`, `eval …`, a heredoc fed to
//! `bash`/`sh` — is parsed as commands as well.
//!
//! It is a classifier's parser, not a shell: it never fails (unterminated
//! quotes run to the end), does no expansion, and keeps `$VAR` as text.

/// The simple commands and heredocs of a command line, in source order.
mod lexer;

use lexer::parse_into;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    pub commands: Vec<SimpleCommand>,
    pub heredocs: Vec<Heredoc>,
}

/// One simple command after unquoting. `words[0]` is the command name as a
/// basename (`/usr/bin/sqlite3` → `sqlite3`), after assignments, keywords
/// and wrappers were dropped; redirections are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleCommand {
    pub words: Vec<String>,
}

impl SimpleCommand {
    /// The words joined by single spaces: the text command rules match.
    pub fn text(&self) -> String {
        self.words.join(" ")
    }

    pub fn name(&self) -> &str {
        &self.words[0]
    }
}

/// A heredoc body (delimiter lines excluded, `<<-` tabs stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub body: String,
    /// Name of the command it feeds (`python3`, `cat`), when there is one.
    pub command: Option<String>,
    /// The file that command writes it to: `cat > x.py <<EOF`,
    /// `cat <<EOF >> x.py`, `tee x.py <<EOF`.
    pub writes_to: Option<String>,
    /// The command that command pipes into: `cat <<EOF | python3 -`.
    pub pipes_into: Option<String>,
}

/// How deep `bash -c`, `eval`, substitutions and shell heredocs nest before
/// the inner text is left unparsed.
const MAX_DEPTH: usize = 8;

/// Splits a command line into its simple commands and heredocs.
pub fn parse(src: &str) -> Script {
    let mut script = Script::default();
    parse_into(src, 0, &mut script);
    script
}

fn is_shell(name: &str) -> bool {
    matches!(name, "bash" | "sh" | "zsh" | "dash" | "ksh")
}

/// Reserved words that may precede a command.
fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "if" | "then"
            | "else"
            | "elif"
            | "fi"
            | "do"
            | "done"
            | "while"
            | "until"
            | "esac"
            | "{"
            | "}"
            | "!"
            | "time"
    )
}

fn is_assignment(word: &str) -> bool {
    let Some(eq) = word.find('=') else {
        return false;
    };
    let name = word[..eq].strip_suffix('+').unwrap_or(&word[..eq]);
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Drops what precedes the real command; `None` when nothing is left or the
/// "command" is a loop header.
fn normalize(words: Vec<String>) -> Option<SimpleCommand> {
    let mut rest = words.as_slice();
    loop {
        match rest {
            [] => return None,
            [first, ..] if matches!(first.as_str(), "for" | "case" | "select" | "function") => {
                return None
            }
            [first, tail @ ..] if is_keyword(first) || is_assignment(first) => rest = tail,
            [first, tail @ ..] => match skip_wrapper(first, tail) {
                Some(after) => rest = after,
                None => break,
            },
        }
    }
    let mut words = rest.to_vec();
    if let Some(slash) = words[0].rfind('/') {
        if slash + 1 < words[0].len() {
            words[0] = words[0][slash + 1..].to_string();
        }
    }
    Some(SimpleCommand { words })
}

/// The words after a wrapper command and its options, or `None` when
/// `name` is not a wrapper (or wraps nothing).
fn skip_wrapper<'w>(name: &str, tail: &'w [String]) -> Option<&'w [String]> {
    let options_with_value: &[&str] = match name {
        "sudo" => &["-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U"],
        "env" => &["-u", "-C", "-S"],
        "nice" => &["-n"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "nohup" | "exec" | "command" | "builtin" | "stdbuf" => &[],
        _ => return None,
    };
    let mut i = 0;
    while let Some(word) = tail.get(i) {
        if options_with_value.contains(&word.as_str()) {
            i += 2;
        } else if word.starts_with('-') || (name == "env" && is_assignment(word)) {
            i += 1;
        } else {
            break;
        }
    }
    // `timeout` takes a duration before the command.
    if name == "timeout" {
        i += 1;
    }
    let after = tail.get(i..).filter(|rest| !rest.is_empty())?;
    Some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        parse(src)
            .commands
            .iter()
            .map(SimpleCommand::text)
            .collect()
    }

    #[test]
    fn splits_on_every_operator() {
        assert_eq!(
            texts("a 1 && b|c; (d) || e & f |& g\nh"),
            ["a 1", "b", "c", "d", "e", "f", "g", "h"]
        );
    }

    #[test]
    fn quotes_and_comments() {
        assert_eq!(
            texts(r#"echo "fn run x" 'a;b' $'c\td' # fn run y"#),
            ["echo fn run x a;b c\td"]
        );
        assert_eq!(texts("# fn run x\nfn run y # z"), ["fn run y"]);
        assert_eq!(texts("echo a#b"), ["echo a#b"]);
        assert_eq!(texts("fn run \\\n  x"), ["fn run x"]);
    }

    #[test]
    fn strips_assignments_keywords_wrappers_and_redirections() {
        assert_eq!(
            texts("FOO=1 sudo -u me env A=b timeout 5 /usr/bin/sqlite3 ops.db > out 2>&1 < in"),
            ["sqlite3 ops.db"]
        );
        assert_eq!(
            texts("if fn run a; then time fn run b; fi"),
            ["fn run a", "fn run b"]
        );
        assert_eq!(
            texts("for f in *.py; do fn run c \"$f\"; done"),
            ["fn run c $f"]
        );
        assert_eq!(texts("X=1"), Vec::<String>::new());
    }

    #[test]
    fn substitutions_are_parsed() {
        assert_eq!(
            texts("echo $(fn run a | head) `fn run b` <(fn run c) $((1+2)) ${X}"),
            [
                "fn run a",
                "head",
                "fn run b",
                "fn run c",
                "echo $(fn run a | head) ` <(fn run c) $((1+2)) ${X}"
            ]
        );
        assert_eq!(
            texts(r#"echo "$(fn run d)""#),
            ["fn run d", "echo $(fn run d)"]
        );
    }

    #[test]
    fn a_heredoc_inside_a_substitution_is_no_part_of_the_word() {
        let script = parse("git commit -m \"$(cat <<'EOF'\nfn run x\nEOF\n)\" && fn run y");
        assert_eq!(script.heredocs[0].body, "fn run x\n");
        let commit = script.commands.iter().find(|c| c.name() == "git").unwrap();
        assert!(!commit.text().contains("fn run x"), "{}", commit.text());
        assert!(commit.text().starts_with("git commit -m $(cat <<'EOF'"));
        assert!(script.commands.iter().any(|c| c.text() == "fn run y"));
    }

    #[test]
    fn inline_shell_code_is_parsed() {
        assert_eq!(
            texts("bash -c 'fn run a && sqlite3 x'; eval fn run b"),
            [
                "fn run a",
                "sqlite3 x",
                "bash -c fn run a && sqlite3 x",
                "fn run b",
                "eval fn run b"
            ]
        );
    }

    #[test]
    fn a_heredocs_written_file_is_its_commands_stdout_or_tee_file() {
        let written = |src: &str| -> Vec<Option<String>> {
            parse(src)
                .heredocs
                .into_iter()
                .map(|h| h.writes_to)
                .collect()
        };
        let file = |f: &str| vec![Some(f.to_string())];
        assert_eq!(written("cat > app.py <<'EOF'\nx\nEOF\n"), file("app.py"));
        assert_eq!(written("cat <<EOF >> lib/a.ts\nx\nEOF\n"), file("lib/a.ts"));
        assert_eq!(written("cat 1>s.sh <<EOF\nx\nEOF\n"), file("s.sh"));
        assert_eq!(
            written("tee -a out.go <<EOF >/dev/null\nx\nEOF\n"),
            file("/dev/null")
        );
        assert_eq!(written("tee -a out.go <<EOF\nx\nEOF\n"), file("out.go"));
        // stderr, descriptor copies and input are not where it goes.
        assert_eq!(written("cat <<EOF 2>err.py\nx\nEOF\n"), [None]);
        assert_eq!(written("cat <<EOF >&2\nx\nEOF\n"), [None]);
        assert_eq!(
            written("git commit -m \"$(cat <<'EOF'\nfix: x\nEOF\n)\" > log.txt"),
            [None]
        );
    }

    #[test]
    fn a_heredoc_piped_into_a_command_knows_it() {
        let into = |src: &str| -> Vec<Option<String>> {
            parse(src)
                .heredocs
                .into_iter()
                .map(|h| h.pipes_into)
                .collect()
        };
        assert_eq!(
            into("cat <<'EOF' | python3 -\nx\nEOF\n"),
            [Some("python3".to_string())]
        );
        assert_eq!(
            into("cat <<EOF | sudo node\nx\nEOF\n"),
            [Some("node".to_string())]
        );
        assert_eq!(into("cat <<EOF || python3\nx\nEOF\n"), [None]);
        assert_eq!(into("cat <<EOF; python3\nx\nEOF\n"), [None]);
    }

    #[test]
    fn heredocs_with_any_delimiter() {
        let src = "python3 - <<'PY' && cat <<-EOT > f.txt\nimport os\nPY\n\tindented\n\tEOT\nfn run after\n";
        let script = parse(src);
        assert_eq!(
            script.heredocs,
            [
                Heredoc {
                    body: "import os\n".into(),
                    command: Some("python3".into()),
                    writes_to: None,
                    pipes_into: None,
                },
                Heredoc {
                    body: "indented\n".into(),
                    command: Some("cat".into()),
                    writes_to: Some("f.txt".into()),
                    pipes_into: None,
                },
            ]
        );
        let texts: Vec<String> = script.commands.iter().map(SimpleCommand::text).collect();
        assert_eq!(texts, ["python3 -", "cat", "fn run after"]);
    }

    #[test]
    fn heredoc_fed_to_a_shell_is_parsed() {
        let script = parse("bash <<EOF\nfn run a\nsqlite3 db\nEOF");
        let texts: Vec<String> = script.commands.iter().map(SimpleCommand::text).collect();
        assert_eq!(texts, ["bash", "fn run a", "sqlite3 db"]);
        assert_eq!(script.heredocs[0].body, "fn run a\nsqlite3 db\n");
    }

    #[test]
    fn unterminated_input_does_not_fail() {
        for src in [
            "echo 'abc",
            "echo \"abc",
            "cat <<EOF\nbody",
            "$(",
            "`",
            "\\",
            "$'",
            "<<",
            "a >",
        ] {
            parse(src);
        }
        assert_eq!(parse("cat <<EOF\nbody").heredocs[0].body, "body\n");
    }
}

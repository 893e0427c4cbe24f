//! The lexer behind [`super::parse`]: one pass over a command line that
//! splits it into simple commands, follows `$(…)`, backticks and
//! `bash -c '…'` into nested scripts (up to a depth), and collects the
//! heredoc bodies that follow a line. It never fails: what it cannot read
//! it skips.

use super::{is_shell, normalize, Heredoc, Script, SimpleCommand, MAX_DEPTH};

pub(super) fn parse_into(src: &str, depth: usize, out: &mut Script) {
    if depth > MAX_DEPTH {
        return;
    }
    Lexer {
        s: src.as_bytes(),
        i: 0,
        depth,
        out,
        words: Vec::new(),
        word: None,
        quoted: false,
        awaiting: Awaiting::Word,
        pending: Vec::new(),
        stdout_target: None,
    }
    .run();
}

/// What the next completed word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    /// An argument of the current command.
    Word,
    /// A redirection target: not an argument. `stdout`: the target of
    /// `>`, `>>`, `>|` or `&>` on standard output, which is kept.
    Target { stdout: bool },
    /// A heredoc delimiter; `true` for `<<-`.
    Delimiter { strip_tabs: bool },
}

/// A heredoc whose body starts after the current line.
struct Pending {
    delimiter: String,
    strip_tabs: bool,
    /// The command it belongs to, once that command has ended.
    command: Option<Option<SimpleCommand>>,
    /// The file that command writes its standard output to.
    writes_to: Option<String>,
    /// Whether that command's output is piped into the next one, and
    /// that next command's name once it has ended.
    piped: bool,
    pipes_into: Option<String>,
}

struct Lexer<'s, 'o> {
    s: &'s [u8],
    i: usize,
    depth: usize,
    out: &'o mut Script,
    /// Words of the command being read.
    words: Vec<String>,
    /// The word being read, if one has started.
    word: Option<Vec<u8>>,
    /// Whether the current word had quotes (`"2">x` redirects stdout to x;
    /// only a bare `2>` names a descriptor).
    quoted: bool,
    awaiting: Awaiting,
    pending: Vec<Pending>,
    /// Where the current command's standard output is redirected.
    stdout_target: Option<String>,
}

impl Lexer<'_, '_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    fn push(&mut self, bytes: &[u8]) {
        self.word
            .get_or_insert_with(Vec::new)
            .extend_from_slice(bytes);
    }

    fn run(mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\r' => {
                    self.end_word();
                    self.i += 1;
                }
                b'\n' => {
                    self.end_command();
                    self.i += 1;
                    self.read_heredoc_bodies();
                }
                b'#' if self.word.is_none() => self.skip_comment(),
                b'\\' => self.escape(),
                b'\'' => self.single_quoted(),
                b'"' => self.double_quoted(),
                b'`' => self.backticks(),
                b'$' => self.dollar(),
                b'<' | b'>' if self.peek(1) == Some(b'(') => self.process_substitution(),
                b'<' | b'>' => self.redirection(),
                b'&' if self.peek(1) == Some(b'>') => {
                    self.end_word();
                    self.i += if self.peek(2) == Some(b'>') { 3 } else { 2 };
                    self.awaiting = Awaiting::Target { stdout: true };
                }
                // A pipe, not the second half of `||`, nor followed by one.
                b'|' if self.peek(1) != Some(b'|')
                    && (self.i == 0 || self.s[self.i - 1] != b'|') =>
                {
                    self.end_command();
                    self.pipe_heredocs();
                    self.i += 1;
                }
                b';' | b'&' | b'|' | b'(' | b')' => {
                    self.end_command();
                    self.i += 1;
                }
                _ => {
                    let start = self.i;
                    while self.peek(0).is_some_and(|c| !is_special(c)) {
                        self.i += 1;
                    }
                    let end = self.i.max(start + 1);
                    self.i = end;
                    let bytes = &self.s[start..end];
                    self.push(bytes);
                }
            }
        }
        self.end_command();
        // Heredocs opened on the last line: bodies run to the end (none left).
        self.read_heredoc_bodies();
    }

    fn skip_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != b'\n') {
            self.i += 1;
        }
    }

    fn escape(&mut self) {
        match self.peek(1) {
            // A line continuation joins the lines.
            Some(b'\n') => self.i += 2,
            Some(c) => {
                self.push(&[c]);
                self.i += 2;
            }
            None => self.i += 1,
        }
    }

    fn single_quoted(&mut self) {
        self.quoted = true;
        let start = self.i + 1;
        let end = find(self.s, start, b'\'');
        let bytes = &self.s[start..end];
        self.push(bytes);
        self.i = (end + 1).min(self.s.len());
    }

    fn double_quoted(&mut self) {
        self.quoted = true;
        self.push(&[]);
        self.i += 1;
        while let Some(c) = self.peek(0) {
            match c {
                b'"' => {
                    self.i += 1;
                    return;
                }
                b'\\' if matches!(self.peek(1), Some(b'"' | b'\\' | b'$' | b'`')) => {
                    let escaped = self.s[self.i + 1];
                    self.push(&[escaped]);
                    self.i += 2;
                }
                b'\\' if self.peek(1) == Some(b'\n') => self.i += 2,
                b'`' => self.backticks(),
                b'$' if self.peek(1) == Some(b'(') => self.dollar(),
                _ => {
                    self.push(&[c]);
                    self.i += 1;
                }
            }
        }
    }

    /// `$(…)`, `$((…))`, `${…}`, `$'…'` or a plain `$`.
    fn dollar(&mut self) {
        match self.peek(1) {
            Some(b'(') if self.peek(2) == Some(b'(') => {
                // Arithmetic: no commands inside.
                let end = matching_paren(self.s, self.i + 1);
                let bytes = &self.s[self.i..end];
                self.push(bytes);
                self.i = end;
            }
            Some(b'(') => {
                let open = self.i + 1;
                self.substitution(open);
            }
            Some(b'{') => {
                let end = (find(self.s, self.i + 2, b'}') + 1).min(self.s.len());
                let bytes = &self.s[self.i..end];
                self.push(bytes);
                self.i = end;
            }
            Some(b'\'') => self.ansi_c_quoted(),
            _ => {
                self.push(b"$");
                self.i += 1;
            }
        }
    }

    fn ansi_c_quoted(&mut self) {
        self.quoted = true;
        self.push(&[]);
        self.i += 2;
        while let Some(c) = self.peek(0) {
            match c {
                b'\'' => {
                    self.i += 1;
                    return;
                }
                b'\\' => {
                    let escaped = match self.peek(1) {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(other) => other,
                        None => break,
                    };
                    self.push(&[escaped]);
                    self.i += 2;
                }
                _ => {
                    self.push(&[c]);
                    self.i += 1;
                }
            }
        }
        self.i = self.s.len();
    }

    /// A parenthesised substitution whose `(` is at `open`: its text is
    /// parsed as commands, and kept in the current word — verbatim but for
    /// the bodies of the heredocs inside it, which are data, not words
    /// (`git commit -m "$(cat <<EOF …)"`: `fn run x` in the message is no
    /// call of the command around it).
    fn substitution(&mut self, open: usize) {
        let end = matching_paren(self.s, open);
        let inner_end = if end > open + 1 && self.s[end - 1] == b')' {
            end - 1
        } else {
            end
        };
        let heredocs_before = self.out.heredocs.len();
        self.nested(&self.s[open + 1..inner_end]);
        let bytes = &self.s[self.i..end];
        let inside = &self.out.heredocs[heredocs_before..];
        if inside.iter().all(|h| h.body.trim().is_empty()) {
            self.push(bytes);
        } else {
            let mut kept = String::from_utf8_lossy(bytes).into_owned();
            for heredoc in inside {
                if !heredoc.body.trim().is_empty() {
                    kept = kept.replacen(&heredoc.body, " ", 1);
                }
            }
            self.push(kept.as_bytes());
        }
        self.i = end;
    }

    fn process_substitution(&mut self) {
        let open = self.i + 1;
        self.substitution(open);
    }

    fn backticks(&mut self) {
        let start = self.i + 1;
        let mut end = start;
        while end < self.s.len() && self.s[end] != b'`' {
            end += if self.s[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(self.s.len());
        self.nested(&self.s[start..end]);
        self.push(b"`");
        self.i = (end + 1).min(self.s.len());
    }

    fn nested(&mut self, text: &[u8]) {
        let text = String::from_utf8_lossy(text);
        parse_into(&text, self.depth + 1, self.out);
    }

    fn redirection(&mut self) {
        // `2>`: the digits before the operator name a descriptor.
        let mut descriptor = None;
        if self
            .word
            .as_ref()
            .is_some_and(|w| !w.is_empty() && !self.quoted && w.iter().all(u8::is_ascii_digit))
        {
            descriptor = self.word.take();
        }
        self.end_word();
        let rest = &self.s[self.i..];
        let output = rest[0] == b'>';
        // `>&2`, `2>&1`: duplicating a descriptor names no file.
        let duplicate = output && rest.get(1) == Some(&b'&');
        let stdout = output && !duplicate && descriptor.is_none_or(|d| d == b"1");
        let (len, awaiting) = if rest.starts_with(b"<<<") {
            (3, Awaiting::Target { stdout: false })
        } else if rest.starts_with(b"<<-") {
            (3, Awaiting::Delimiter { strip_tabs: true })
        } else if rest.starts_with(b"<<") {
            (2, Awaiting::Delimiter { strip_tabs: false })
        } else if rest.len() >= 2 && matches!(rest[1], b'>' | b'&' | b'|') {
            (2, Awaiting::Target { stdout })
        } else {
            (1, Awaiting::Target { stdout })
        };
        self.i += len;
        self.awaiting = awaiting;
    }

    fn end_word(&mut self) {
        let Some(word) = self.word.take() else {
            return;
        };
        let word = String::from_utf8_lossy(&word).into_owned();
        self.quoted = false;
        match std::mem::replace(&mut self.awaiting, Awaiting::Word) {
            Awaiting::Word => self.words.push(word),
            Awaiting::Target { stdout: false } => {}
            Awaiting::Target { stdout: true } => self.stdout_target = Some(word),
            // A quoted delimiter only disables expansion, which we never do.
            Awaiting::Delimiter { strip_tabs } => {
                self.pending.push(Pending {
                    delimiter: word,
                    strip_tabs,
                    command: None,
                    writes_to: None,
                    piped: false,
                    pipes_into: None,
                });
            }
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        self.awaiting = Awaiting::Word;
        let words = std::mem::take(&mut self.words);
        let command = normalize(words);
        let stdout_target = self.stdout_target.take();
        for pending in self.pending.iter_mut().filter(|p| p.piped) {
            pending.piped = false;
            pending.pipes_into = command.as_ref().map(|c| c.words[0].clone());
        }
        for pending in self.pending.iter_mut().filter(|p| p.command.is_none()) {
            pending.command = Some(command.clone());
            pending.writes_to = written_file(command.as_ref(), stdout_target.clone());
        }
        if let Some(command) = command {
            self.run_inline_code(&command);
            self.out.commands.push(command);
        }
    }

    /// The heredocs of the command a `|` just ended feed the next command.
    fn pipe_heredocs(&mut self) {
        for pending in self.pending.iter_mut() {
            if pending.command.is_some() && pending.pipes_into.is_none() {
                pending.piped = true;
            }
        }
    }

    /// `bash -c '…'` and `eval …` run their argument as commands.
    fn run_inline_code(&mut self, command: &SimpleCommand) {
        let words = &command.words;
        let code = if is_shell(command.name()) {
            words
                .iter()
                .position(|w| w == "-c")
                .and_then(|at| words.get(at + 1))
                .cloned()
        } else if command.name() == "eval" {
            Some(words[1..].join(" "))
        } else {
            None
        };
        if let Some(code) = code {
            parse_into(&code, self.depth + 1, self.out);
        }
    }

    fn read_heredoc_bodies(&mut self) {
        for pending in std::mem::take(&mut self.pending) {
            let mut body = String::new();
            while self.i < self.s.len() {
                let end = find(self.s, self.i, b'\n');
                let mut line = &self.s[self.i..end];
                self.i = (end + 1).min(self.s.len());
                if pending.strip_tabs {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                let line = String::from_utf8_lossy(line);
                if line.trim_end_matches('\r') == pending.delimiter {
                    break;
                }
                body.push_str(&line);
                body.push('\n');
            }
            let command = pending.command.flatten();
            if command
                .as_ref()
                .is_some_and(|c| is_shell(c.name()) && !c.words.iter().any(|w| w == "-c"))
            {
                parse_into(&body, self.depth + 1, self.out);
            }
            self.out.heredocs.push(Heredoc {
                body,
                command: command.map(|c| c.words[0].clone()),
                writes_to: pending.writes_to,
                pipes_into: pending.pipes_into,
            });
        }
    }
}

/// Bytes that end a run of plain word characters.
fn is_special(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t'
            | b'\r'
            | b'\n'
            | b'\\'
            | b'\''
            | b'"'
            | b'`'
            | b'$'
            | b'<'
            | b'>'
            | b'&'
            | b';'
            | b'|'
            | b'('
            | b')'
    )
}

/// Index of the next `byte` at or after `from`, or the end.
fn find(s: &[u8], from: usize, byte: u8) -> usize {
    s.get(from..)
        .and_then(|rest| memchr::memchr(byte, rest))
        .map_or(s.len(), |at| from + at)
}

/// One past the `)` matching the `(` at `open` (quotes respected), or the end.
fn matching_paren(s: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < s.len() {
        match s[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'\\' => i += 1,
            b'\'' => i = find(s, i + 1, b'\''),
            b'"' => {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    i += if s[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// The file a command fed a heredoc writes it to: its standard output's
/// redirection, else, for `tee`, its first file argument.
fn written_file(command: Option<&SimpleCommand>, stdout_target: Option<String>) -> Option<String> {
    stdout_target.or_else(|| {
        let command = command?;
        (command.name() == "tee")
            .then(|| {
                command.words[1..]
                    .iter()
                    .find(|w| !w.starts_with('-'))
                    .cloned()
            })
            .flatten()
    })
}

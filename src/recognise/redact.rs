//! Masking free text before it may be stored (`output_snippet`, `skeleton`).
//!
//! CONTRACT §4: free-text columns hold redacted text — literals and anything
//! shaped like a secret masked. [`redact`] first replaces secret shapes
//! (private keys, credentials in URLs, bearer tokens, `password=…`-style
//! assignments, AWS/GitHub/Slack/API tokens, long high-entropy runs), then
//! literals (quoted strings, numbers, paths, e-mail addresses), then cuts
//! the result to a bounded number of characters. What survives is the
//! shape of a message (`AssertionError: expected <n> got <str>`), which is
//! what a reader of test failures needs; the content stays in the spool,
//! which is deleted once consumed.

use std::sync::LazyLock;

use regex::Regex;

/// Longest redacted snippet stored, in characters.
pub const SNIPPET_CHARS: usize = 200;

struct Mask {
    pattern: Regex,
    replacement: Replacement,
}

enum Replacement {
    /// A fixed text (may refer to captures as `$1`).
    Fixed(&'static str),
    /// Token-like runs containing a digit: long ones are secrets (hashes,
    /// keys), short ones numbers.
    ByLength,
}

fn mask(pattern: &str, replacement: &'static str) -> Mask {
    Mask {
        pattern: Regex::new(pattern).expect("valid redaction pattern"),
        replacement: Replacement::Fixed(replacement),
    }
}

/// In order: secrets first (they may contain literal-looking parts), then
/// literals.
static MASKS: LazyLock<Vec<Mask>> = LazyLock::new(|| {
    vec![
        mask(
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
            "<private-key>",
        ),
        mask(
            r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]*:[^\s/@]*@",
            "${1}<credentials>@",
        ),
        mask(
            r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}",
            "$1 <secret>",
        ),
        mask(
            r#"(?i)\b([a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|auth|credentials?))(["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&]+)"#,
            "$1$2<secret>",
        ),
        mask(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b", "<secret>"),
        mask(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
            "<secret>",
        ),
        mask(r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "<secret>"),
        mask(
            r"\b(?:sk|pk|rk)-(?:[A-Za-z0-9_-]+-)?[A-Za-z0-9_-]{16,}",
            "<secret>",
        ),
        mask(r"\bAIza[0-9A-Za-z_-]{30,}", "<secret>"),
        mask(
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            "<secret>",
        ),
        // Token-like runs with a digit: hashes and keys when long, else numbers.
        // (Stays the last secret mask: `mask_secrets` stops after it.)
        Mask {
            pattern: Regex::new(r"[A-Za-z0-9+/_=-]*[0-9][A-Za-z0-9+/_=-]*")
                .expect("valid redaction pattern"),
            replacement: Replacement::ByLength,
        },
        mask(r#""(?:[^"\\\n]|\\.)*""#, "<str>"),
        mask(r"'(?:[^'\\\n]|\\.)*'", "<str>"),
        mask(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", "<email>"),
        mask(r"(?:~|\.{1,2})?(?:/[^\s/:,;'\x22()]+)+/?", "<path>"),
    ]
});

/// Tokens at least this long are masked as secrets, shorter ones as numbers.
const SECRET_TOKEN_LEN: usize = 20;

/// `text` with secrets and literals masked, at most [`SNIPPET_CHARS`]
/// characters, on one line.
pub fn redact(text: &str) -> String {
    let out = mask_all(text);
    let one_line: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(SNIPPET_CHARS) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// `text` with secrets and literals masked, its length and lines otherwise
/// kept.
fn mask_all(text: &str) -> String {
    apply(text, &MASKS, true)
}

/// `text` with only secret shapes masked (short digit-bearing words such as
/// `sqlite3` kept): for skeletons, whose literals normalisation already
/// replaced.
pub fn mask_secrets(text: &str) -> String {
    let secrets = MASKS
        .iter()
        .position(|m| matches!(m.replacement, Replacement::ByLength))
        .map_or(MASKS.len(), |at| at + 1);
    apply(text, &MASKS[..secrets], false)
}

/// Applies `masks` in order; short digit-bearing tokens become `<n>` when
/// `mask_numbers`, else stay.
fn apply(text: &str, masks: &[Mask], mask_numbers: bool) -> String {
    let mut out = text.to_string();
    for m in masks {
        out = match m.replacement {
            Replacement::Fixed(text) => m.pattern.replace_all(&out, text),
            Replacement::ByLength => m.pattern.replace_all(&out, |c: &regex::Captures<'_>| {
                if c[0].len() >= SECRET_TOKEN_LEN {
                    "<secret>".to_string()
                } else if mask_numbers {
                    "<n>".to_string()
                } else {
                    c[0].to_string()
                }
            }),
        }
        .into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_secret_shape() {
        let secrets = [
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOp",
            "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
            "hunter2hunter2",
            "s3cr3t-pass",
            "c2VjcmV0LWJhc2U2NA",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ];
        let text = format!(
            "AWS {} GH {} PAT {} SLACK {} OPENAI {} password={} url https://admin:{}@db.example.com/x \
             Authorization: Bearer {} -----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
            secrets[0], secrets[1], secrets[2], secrets[3], secrets[4], secrets[5], secrets[6], secrets[7], secrets[8]
        );
        let redacted = redact(&text);
        for secret in secrets {
            assert!(
                !redacted.contains(secret),
                "{secret} survived in {redacted}"
            );
        }
        assert!(redacted.contains("<private-key>"), "{redacted}");
    }

    #[test]
    fn masks_literals_and_keeps_the_shape() {
        assert_eq!(
            redact("AssertionError: expected 42 got \"alice\" in /home/u/app/x.py line 7"),
            "AssertionError: expected <n> got <str> in <path> line <n>"
        );
    }

    #[test]
    fn secrets_only_keeps_short_words_with_digits() {
        assert_eq!(
            mask_secrets("import sqlite3\nkey = AKIAIOSFODNN7EXAMPLE . x"),
            "import sqlite3\nkey = <secret> . x"
        );
        assert_eq!(mask_all("import sqlite3"), "import <n>");
    }

    #[test]
    fn bounded_and_on_one_line() {
        let long = "word ".repeat(500);
        let r = redact(&long);
        assert!(r.chars().count() <= SNIPPET_CHARS + 1);
        assert!(!redact("a\nb").contains('\n'));
    }
}

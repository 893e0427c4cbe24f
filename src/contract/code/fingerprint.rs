//! Winnowed k-gram fingerprints of code (Schleimer, Wilkerson and Aiken,
//! *Winnowing*, SIGMOD 2003 — the method behind MOSS), over Type-2
//! normalised tokens.
//!
//! # Protocol
//! 1. Tokenize the text in its file's language ([`super::tokenize`]):
//!    comments and whitespace are gone. Statement ends are dropped too, so
//!    reflowing lines changes nothing.
//! 2. Normalise: language words ([`super::KEPT_WORDS`]) stay, every other
//!    identifier becomes `I`, a string `S`, a number `N`, a path `P`;
//!    punctuation stays. Renaming, new literals, added comments and
//!    reformatting leave the sequence as it was.
//! 3. Hash each token (FNV-1a, 64 bits) and every run of [`K`]
//!    consecutive tokens (a polynomial rolling hash of the token hashes,
//!    mixed and folded to 32 bits).
//! 4. Winnow: of every [`WINDOW`] consecutive k-gram hashes keep the
//!    smallest (the rightmost on ties). A run of at least
//!    `K + WINDOW - 1` tokens shared by two texts gives them at least one
//!    common fingerprint; a text of n tokens yields about
//!    `2n / (WINDOW + 1)` fingerprints.
//! 5. The distinct hashes, at most [`MAX_FINGERPRINTS`] in text order, are
//!    the text's [`Fingerprints`]: on the wire 8 lowercase hex digits each,
//!    concatenated; in operations.db 4 bytes each, little-endian.
//!
//! # Privacy
//! A fingerprint is a 32-bit hash of a run of masked tokens. It holds no
//! identifier, literal or comment, and no code can be read back from it.

use foldhash::{HashSet, HashSetExt};

use super::lexer::{tokenize, Lang, Token, KEPT_WORDS};

/// Tokens per hashed run. Shorter runs are shared by unrelated code of the
/// same language (`I = I ( I , I )`); longer ones miss copies with a few
/// lines changed. Chosen with the sweep in `tests/it/copies.rs`.
pub const K: usize = 12;

/// Winnowing window, in k-grams.
pub const WINDOW: usize = 6;

/// Fingerprints kept per text: about 14 000 tokens, some 1 500 lines of
/// code. Past that the first ones in text order are kept.
pub const MAX_FINGERPRINTS: usize = 4096;

/// Bytes of one text that are fingerprinted (a longer text: its start).
pub const MAX_TEXT: usize = 1024 * 1024;

/// A text's fingerprints, sorted and distinct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints {
    hashes: Vec<u32>,
    /// Whether the text gave more than [`MAX_FINGERPRINTS`] or was longer
    /// than [`MAX_TEXT`].
    pub truncated: bool,
}

/// The fingerprints of several texts written to one file (the new strings
/// of a MultiEdit), as one set.
pub fn fingerprint_texts<'a>(texts: impl IntoIterator<Item = &'a str>, lang: Lang) -> Fingerprints {
    let mut seen = HashSet::new();
    let mut ordered = Vec::new();
    let mut truncated = false;
    for text in texts {
        let cut = text.floor_char_boundary(MAX_TEXT);
        truncated |= cut < text.len();
        for hash in winnow(&kgram_hashes(&text[..cut], lang)) {
            if seen.insert(hash) {
                if ordered.len() == MAX_FINGERPRINTS {
                    truncated = true;
                    break;
                }
                ordered.push(hash);
            }
        }
    }
    ordered.sort_unstable();
    Fingerprints {
        hashes: ordered,
        truncated,
    }
}

impl Fingerprints {
    /// The fingerprints of one text.
    pub fn of(text: &str, lang: Lang) -> Self {
        fingerprint_texts([text], lang)
    }

    pub fn hashes(&self) -> &[u32] {
        &self.hashes
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The wire form: 8 hex digits per fingerprint.
    pub fn to_hex(&self) -> String {
        self.hashes.iter().map(|h| format!("{h:08x}")).collect()
    }

    /// Reads the wire form back; `None` unless it is whole 8-digit groups
    /// of hex, at most [`MAX_FINGERPRINTS`] of them (a line from another
    /// writer is not trusted to be bounded).
    pub fn from_hex(hex: &str) -> Option<Self> {
        if !hex.len().is_multiple_of(8) || hex.len() / 8 > MAX_FINGERPRINTS {
            return None;
        }
        let hashes = (0..hex.len())
            .step_by(8)
            .map(|at| u32::from_str_radix(hex.get(at..at + 8)?, 16).ok())
            .collect::<Option<Vec<u32>>>()?;
        Some(Self::from_hashes(hashes))
    }

    /// The database form: 4 bytes per fingerprint, little-endian.
    pub fn to_blob(&self) -> Vec<u8> {
        self.hashes.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    pub fn from_blob(blob: &[u8]) -> Self {
        let hashes = blob
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Self::from_hashes(hashes)
    }

    fn from_hashes(mut hashes: Vec<u32>) -> Self {
        hashes.sort_unstable();
        hashes.dedup();
        Fingerprints {
            hashes,
            truncated: false,
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Language words that are names by convention only (`err`, `self`): a
/// copy that renames them is still a copy, so they are masked like any
/// identifier here (skeletons keep them).
const CONVENTIONAL_NAMES: &[&str] = &["err", "self", "cls"];

/// One normalised token's hash; `None` for a statement end.
fn token_hash(token: &Token) -> Option<u64> {
    let mut utf8 = [0u8; 4];
    let bytes: &[u8] = match token {
        Token::Word(w) if CONVENTIONAL_NAMES.contains(&w.as_str()) => b"\x01I",
        Token::Word(w) if KEPT_WORDS.contains(w.as_str()) => w.as_bytes(),
        Token::Word(_) => b"\x01I",
        Token::Str => b"\x01S",
        Token::Num => b"\x01N",
        Token::Path => b"\x01P",
        Token::Punct(c) => c.encode_utf8(&mut utf8).as_bytes(),
        Token::End => return None,
    };
    Some(fnv(FNV_OFFSET, bytes))
}

/// Multiplier of the rolling k-gram hash (odd, so every power is too).
const ROLL_BASE: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash of every run of [`K`] tokens, in text order: a polynomial
/// rolling hash over the token hashes (one multiply-add per token, not K),
/// finished by a 64-bit mixer and folded to 32 bits.
fn kgram_hashes(text: &str, lang: Lang) -> Vec<u32> {
    let tokens: Vec<u64> = tokenize(text, lang).iter().filter_map(token_hash).collect();
    if tokens.len() < K {
        return Vec::new();
    }
    // ROLL_BASE^(K-1): the weight of the token leaving the window.
    let leaving = (1..K).fold(1u64, |w, _| w.wrapping_mul(ROLL_BASE));
    let mut rolling = tokens[..K]
        .iter()
        .fold(0u64, |h, t| h.wrapping_mul(ROLL_BASE).wrapping_add(*t));
    let mut hashes = Vec::with_capacity(tokens.len() - K + 1);
    hashes.push(finish(rolling));
    for at in K..tokens.len() {
        rolling = rolling
            .wrapping_sub(tokens[at - K].wrapping_mul(leaving))
            .wrapping_mul(ROLL_BASE)
            .wrapping_add(tokens[at]);
        hashes.push(finish(rolling));
    }
    hashes
}

/// splitmix64's finaliser, folded to 32 bits: every input bit moves the
/// kept ones.
fn finish(mut x: u64) -> u32 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x ^ (x >> 32)) as u32
}

/// The winnowed hashes in text order (a position chosen by consecutive
/// windows is reported once). Fewer k-grams than a window: their minimum.
fn winnow(kgrams: &[u32]) -> Vec<u32> {
    if kgrams.is_empty() {
        return Vec::new();
    }
    let window = WINDOW.min(kgrams.len());
    let mut chosen = Vec::new();
    let mut last: Option<usize> = None;
    for start in 0..=kgrams.len() - window {
        let slice = &kgrams[start..start + window];
        let (offset, _) = slice
            .iter()
            .enumerate()
            .rev()
            .min_by_key(|(_, h)| **h)
            .expect("a window is never empty");
        let at = start + offset;
        if last != Some(at) {
            chosen.push(kgrams[at]);
            last = Some(at);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"
import sqlite3

def open_db(path, timeout=5.0):
    """Open a database with WAL on."""
    conn = sqlite3.connect(path, timeout=timeout)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    for name, value in DEFAULTS.items():
        conn.execute(f"PRAGMA {name}={value}")
    return conn
"#;

    #[test]
    fn renaming_comments_and_reflowing_change_nothing() {
        let disguised = r#"
import sqlite3
# our own helper
def connect_store(db_file, wait=9.5):
    c = sqlite3.connect(db_file,
                        timeout=wait)   # wait longer
    c.execute('PRAGMA journal_mode=DELETE')
    c.execute("PRAGMA busy_timeout=100")
    for k, v in SETTINGS.items():
        c.execute(f"PRAGMA {k}={v}")
    return c
"#;
        let original = Fingerprints::of(ORIGINAL, Lang::Python);
        assert!(original.len() >= 5, "{original:?}");
        // The docstring is a string statement the copy left out: only
        // the k-grams that span it differ.
        let copy = Fingerprints::of(disguised, Lang::Python);
        let shared = shared(&original, &copy);
        assert!(
            shared * 10 >= original.len() * 6,
            "{shared} of {}",
            original.len()
        );
    }

    /// How many of `original`'s fingerprints `other` has too.
    fn shared(original: &Fingerprints, other: &Fingerprints) -> usize {
        original
            .hashes()
            .iter()
            .filter(|h| other.hashes().contains(h))
            .count()
    }

    #[test]
    fn other_code_shares_little() {
        let other = r#"
import sqlite3

def count_rows(conn, table):
    if not table.isidentifier():
        raise ValueError(table)
    cur = conn.cursor()
    row = cur.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    cur.close()
    return row[0] if row else 0
"#;
        let original = Fingerprints::of(ORIGINAL, Lang::Python);
        let other = Fingerprints::of(other, Lang::Python);
        let shared = shared(&original, &other);
        assert!(
            shared * 5 < original.len(),
            "{shared} of {}",
            original.len()
        );
    }

    #[test]
    fn wire_and_database_forms_round_trip() {
        let fp = Fingerprints::of(ORIGINAL, Lang::Python);
        assert_eq!(fp.to_hex().len(), fp.len() * 8);
        assert_eq!(Fingerprints::from_hex(&fp.to_hex()), Some(fp.clone()));
        assert_eq!(Fingerprints::from_blob(&fp.to_blob()), fp);
        assert_eq!(Fingerprints::from_hex("abc"), None);
        assert_eq!(Fingerprints::from_hex("0000000g"), None);
        assert_eq!(
            Fingerprints::from_hex(&"0".repeat(8 * (MAX_FINGERPRINTS + 1))),
            None
        );
    }

    #[test]
    fn bounded_for_huge_texts() {
        // Pseudo-random tokens: every 12-token run is new.
        let words = [
            "if", "for", "(", ")", "x", "1", "'s'", ",", "+", "while", "return", "[", "]", "def",
            ":", "=", "not", "and", "or", "in",
        ];
        let mut state: u32 = 7;
        let mut big = String::new();
        for _ in 0..300_000 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            big.push_str(words[(state >> 16) as usize % words.len()]);
            big.push(' ');
        }
        let fp = Fingerprints::of(&big, Lang::Python);
        assert!(fp.len() <= MAX_FINGERPRINTS);
        assert!(fp.truncated);
        assert_eq!(fp.len(), MAX_FINGERPRINTS);
        assert!(Fingerprints::of("x = 1", Lang::Python).is_empty());
    }

    #[test]
    fn the_rolling_hash_is_the_hash_of_each_run_alone() {
        let text = "def f(a, b):\n    return [x * a for x in b if x > 2] + g(a, 'k', 3)\n";
        let rolled = kgram_hashes(text, Lang::Python);
        let tokens: Vec<u64> = tokenize(text, Lang::Python)
            .iter()
            .filter_map(token_hash)
            .collect();
        assert_eq!(rolled.len(), tokens.len() - K + 1);
        for (at, hash) in rolled.iter().enumerate() {
            let direct = tokens[at..at + K]
                .iter()
                .fold(0u64, |h, t| h.wrapping_mul(ROLL_BASE).wrapping_add(*t));
            assert_eq!(*hash, finish(direct), "run {at}");
        }
    }

    #[test]
    fn winnowing_keeps_a_hash_of_every_long_enough_shared_run() {
        let kgrams: Vec<u32> = (0..200u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        let chosen = winnow(&kgrams);
        for start in 0..=kgrams.len() - WINDOW {
            let window = &kgrams[start..start + WINDOW];
            assert!(window.iter().any(|h| chosen.contains(h)), "window {start}");
        }
        assert!(chosen.len() < kgrams.len() / 2);
    }
}

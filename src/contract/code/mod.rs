//! Code as every stage reads it: the tokenizer behind heredoc skeletons,
//! and the fingerprints that let ingestion find a registry function's code
//! in a file an agent wrote without ever storing the code.
//!
//! Both are part of the contract because two stages must agree on them
//! byte for byte: the hook spools a write's fingerprints, `snapshot`
//! fingerprints the registry's sources, and ingestion compares the two.

mod fingerprint;
mod lexer;

pub use fingerprint::{fingerprint_texts, Fingerprints, K, MAX_FINGERPRINTS, MAX_TEXT, WINDOW};
pub use lexer::{is_word_char, tokenize, Lang, Token, KEPT_WORDS};

//! Reading one spool file: its identity, and its complete lines from an
//! offset.
//!
//! # Identity
//! A file is known by [`identify`]: device, inode and a hash of its first
//! line (up to 4 KiB). Renaming keeps all three, so a rotated file continues
//! from its checkpoint; a file deleted and re-created under the same name
//! gets a new inode or a new first line (envelope ids are unique), so it
//! starts from 0. A file with no complete first line yet has no identity
//! and is simply not read yet.
//!
//! # Lines
//! [`LineReader`] yields only complete lines: a last line without its `\n`
//! (a writer mid-way, or an external appender that writes a line in two
//! parts) is left for a later read, and the reader's offset never passes
//! it. A line longer than [`MAX_LINE`] is never held in memory: it streams
//! into a stash file in the quarantine directory while being hashed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::contract::MAX_LINE;

/// How much of the first line identifies a file.
const IDENTITY_PREFIX: usize = 4096;
/// Read buffer size.
const BUFFER: usize = 256 * 1024;

/// Opens a spool file for reading without following symlinks.
pub fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// The identity key of an open file, or `None` while it has no complete
/// first line (and is shorter than the identifying prefix).
pub fn identify(file: &File) -> io::Result<Option<String>> {
    let meta = file.metadata()?;
    // pread: the file position (shared with any reader) is left alone.
    let mut prefix = vec![0u8; IDENTITY_PREFIX];
    let mut filled = 0;
    while filled < prefix.len() {
        match file.read_at(&mut prefix[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    prefix.truncate(filled);
    let end = match memchr::memchr(b'\n', &prefix) {
        Some(i) => i + 1,
        None if prefix.len() == IDENTITY_PREFIX => prefix.len(),
        None => return Ok(None),
    };
    let digest = Sha256::digest(&prefix[..end]);
    Ok(Some(format!(
        "{:x}:{:x}:{}",
        meta.dev(),
        meta.ino(),
        hex::encode(&digest[..12])
    )))
}

/// One complete line of a spool file.
#[derive(Debug)]
pub struct RawLine {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Length including the `\n`.
    pub len: u64,
    pub content: LineContent,
}

#[derive(Debug)]
pub enum LineContent {
    /// The line without its `\n`.
    Bytes(Vec<u8>),
    /// A line over [`MAX_LINE`], already written to `stash`.
    Oversized { sha256: String, stash: PathBuf },
}

/// Complete lines of a file from a starting offset.
pub struct LineReader {
    reader: BufReader<File>,
    offset: u64,
    stash_dir: PathBuf,
    /// Lines at least this long are stashed, not held ([`MAX_LINE`] unless
    /// [`Self::holding`] says otherwise).
    max_line: usize,
}

impl LineReader {
    /// Positions a reader at `offset` (which must be a line start).
    /// Oversized lines are stashed in `stash_dir`.
    pub fn new(mut file: File, offset: u64, stash_dir: &Path) -> io::Result<Self> {
        file.seek(SeekFrom::Start(offset))?;
        Ok(Self {
            reader: BufReader::with_capacity(BUFFER, file),
            offset,
            stash_dir: stash_dir.to_path_buf(),
            max_line: MAX_LINE,
        })
    }

    /// The same, holding lines up to `max_line` bytes in memory: for files
    /// whose lines are reduced before they are stored (a transcript's line
    /// holds a tool's whole output, an image's base64 even, and only its
    /// events go further).
    pub fn holding(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    /// Offset just past the last complete line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next complete line, or `None` at the end of the complete lines.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine>> {
        let start = self.offset;
        let mut bytes = Vec::new();
        let mut stash: Option<Stash> = None;
        let mut len: u64 = 0;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                // Incomplete last line: leave it for later, as if unread.
                if let Some(stash) = stash {
                    stash.discard();
                }
                self.reader.seek(SeekFrom::Start(start))?;
                return Ok(None);
            }
            let newline = memchr::memchr(b'\n', available);
            let chunk = &available[..newline.unwrap_or(available.len())];
            match stash.as_mut() {
                Some(s) => s.write(chunk)?,
                None => {
                    bytes.extend_from_slice(chunk);
                    if bytes.len() >= self.max_line {
                        let mut s = Stash::create(&self.stash_dir)?;
                        s.write(&bytes)?;
                        bytes = Vec::new();
                        stash = Some(s);
                    }
                }
            }
            let consumed = chunk.len() + usize::from(newline.is_some());
            len += consumed as u64;
            self.reader.consume(consumed);
            if newline.is_some() {
                self.offset = start + len;
                let content = match stash {
                    Some(s) => s.finish()?,
                    None => LineContent::Bytes(bytes),
                };
                return Ok(Some(RawLine {
                    offset: start,
                    len,
                    content,
                }));
            }
        }
    }
}

/// An oversized line being streamed to disk.
struct Stash {
    file: File,
    path: PathBuf,
    hasher: Sha256,
}

impl Stash {
    fn create(dir: &Path) -> io::Result<Self> {
        super::quarantine::ensure_dir(dir)?;
        let path = dir.join(format!(".partial-{}", uuid::Uuid::now_v7().simple()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Self {
            file,
            path,
            hasher: Sha256::new(),
        })
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.file.write_all(chunk)
    }

    fn finish(self) -> io::Result<LineContent> {
        self.file.sync_all()?;
        Ok(LineContent::Oversized {
            sha256: hex::encode(self.hasher.finalize()),
            stash: self.path,
        })
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &Path, offset: u64, stash: &Path) -> (Vec<(u64, Vec<u8>)>, u64) {
        let mut reader = LineReader::new(open(path).unwrap(), offset, stash).unwrap();
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            match line.content {
                LineContent::Bytes(b) => out.push((line.offset, b)),
                LineContent::Oversized { .. } => out.push((line.offset, b"<oversized>".to_vec())),
            }
        }
        (out, reader.offset())
    }

    #[test]
    fn yields_complete_lines_and_waits_for_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, b"one\ntwo\nthr").unwrap();
        let (got, offset) = lines(&path, 0, dir.path());
        assert_eq!(got, vec![(0, b"one".to_vec()), (4, b"two".to_vec())]);
        assert_eq!(offset, 8);
        // The writer finishes its line: it is read from the checkpoint.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"ee\n")
            .unwrap();
        let (got, offset) = lines(&path, 8, dir.path());
        assert_eq!(got, vec![(8, b"three".to_vec())]);
        assert_eq!(offset, 14);
    }

    #[test]
    fn oversized_line_is_stashed_not_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let big = vec![b'x'; MAX_LINE + 10];
        let mut content = big.clone();
        content.extend_from_slice(b"\nsmall\n");
        std::fs::write(&path, &content).unwrap();
        let stash_dir = dir.path().join("q");
        let mut reader = LineReader::new(open(&path).unwrap(), 0, &stash_dir).unwrap();
        let first = reader.next_line().unwrap().unwrap();
        assert_eq!(first.len, big.len() as u64 + 1);
        let LineContent::Oversized { sha256, stash } = first.content else {
            panic!("not stashed")
        };
        assert_eq!(sha256, hex::encode(Sha256::digest(&big)));
        assert_eq!(std::fs::read(&stash).unwrap(), big);
        let second = reader.next_line().unwrap().unwrap();
        assert!(matches!(second.content, LineContent::Bytes(ref b) if b == b"small"));
    }

    #[test]
    fn identity_follows_the_file_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, b"partial").unwrap();
        assert_eq!(
            identify(&open(&a).unwrap()).unwrap(),
            None,
            "no complete first line yet"
        );
        std::fs::write(&a, b"{\"id\":1}\n").unwrap();
        let key = identify(&open(&a).unwrap()).unwrap().unwrap();
        let b = dir.path().join("b.jsonl");
        std::fs::rename(&a, &b).unwrap();
        assert_eq!(
            identify(&open(&b).unwrap()).unwrap().unwrap(),
            key,
            "rename keeps identity"
        );
        std::fs::remove_file(&b).unwrap();
        std::fs::write(&b, b"{\"id\":2}\n").unwrap();
        assert_ne!(
            identify(&open(&b).unwrap()).unwrap().unwrap(),
            key,
            "re-creation is a new file"
        );
    }

    #[test]
    fn symlinks_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"x\n").unwrap();
        let link = dir.path().join("l.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open(&link).is_err());
    }
}

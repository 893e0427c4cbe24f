//! The spool: a directory of JSONL files between hooks and the daemon.
//!
//! Hooks must append in about a millisecond, never wait on the daemon and
//! never lose a line; the daemon must be able to delete what it consumed.
//! The protocol below gives both with one advisory lock per file that the
//! hook only ever *tries* (never waits for).
//!
//! # Layout
//! - `<spool>/` mode `0700`, owned by the user; anything else is refused
//!   (another user could read raw commands or plant lines).
//! - `<spool>/hook-YYYYMMDDHH.jsonl` (UTC hour), mode `0600`: where hooks
//!   append. Any other `*.jsonl` in the directory is ingested too (external
//!   appenders, fallback files, fixtures).
//! - `<spool>/quarantine/`: raw lines that could not be ingested.
//!
//! # Writer protocol ([`append_line`])
//! 1. Open the hour's file with `O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW`, `0600`.
//! 2. `flock(LOCK_SH|LOCK_NB)`. If that would block, the daemon is deleting
//!    this very file right now: switch to a fresh uniquely named file and go
//!    to 2.
//! 3. Check that the path still names the opened inode (`fstat` vs `stat`,
//!    link count > 0). If not, the daemon deleted it between 1 and 2: close
//!    and go to 1.
//! 4. One `write(2)` of the whole line (≤ 1 MiB, ending in `\n`); close,
//!    which releases the lock.
//!
//! # Deletion protocol ([`retire`])
//! The daemon deletes a file only when every byte of it is committed, it has
//! not been modified for the *quiet period*, and, holding
//! `flock(LOCK_EX|LOCK_NB)` (skip the file if any writer holds its lock),
//! its size still equals the committed offset and its path still names the
//! same inode. Then it unlinks and releases.
//!
//! # Why no hook line is lost
//! A hook writes only while holding the shared lock *after* step 3; the
//! daemon unlinks only while holding the exclusive lock. The two intervals
//! cannot overlap. If the hook's interval came first, its bytes are in the
//! size the daemon compares with the committed offset, so an unread line
//! prevents deletion. If the daemon's came first, the hook's step 3 sees the
//! path gone or re-created and starts over on a live file. The hook never
//! blocks: both of its lock calls are non-blocking, and the daemon holds its
//! lock only for an `fstat` and an `unlink`.
//!
//! # External appenders
//! A process that only follows "one `write(2)` per line on an `O_APPEND`
//! descriptor" gets untorn lines (the kernel serialises `O_APPEND` writes on
//! a local file system) and, with no lock, is protected from deletion by the
//! quiet period alone: its lines are safe as long as it writes within the
//! quiet period (default 60 s) of its last write or of opening the file.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

pub mod quarantine;
pub mod reader;

/// Name of the quarantine subdirectory.
pub const QUARANTINE_DIR: &str = "quarantine";
/// Extension of spool files.
pub const EXTENSION: &str = "jsonl";

/// The daemon's note about itself in the spool directory (its state, its
/// back-off, when it last passed), read by the dashboard's pipeline
/// health. Not a spool file: it does not end in `.jsonl`.
pub const DAEMON_STATE: &str = "daemon.json";

/// How often a writer starts over (step 3) before giving up. Each retry
/// means the daemon deleted the file in a window of microseconds; several in
/// a row do not happen outside of tests that try to provoke them.
const MAX_ATTEMPTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path} is not a directory")]
    NotADirectory { path: String },
    #[error("spool {path} is a symlink; refusing to follow it")]
    Symlink { path: String },
    #[error(
        "spool {path} is owned by uid {owner}, not by this user (uid {me}); refusing to use it"
    )]
    WrongOwner { path: String, owner: u32, me: u32 },
    #[error("spool {path} has mode {mode:04o}, other users could read it; run `chmod 700 {path}`")]
    WrongMode { path: String, mode: u32 },
    #[error("cannot create spool {path}: {source}")]
    Create { path: String, source: io::Error },
    #[error("cannot inspect spool {path}: {source}")]
    Inspect { path: String, source: io::Error },
    #[error("cannot append to spool file {path}: {source}")]
    Append { path: String, source: io::Error },
    #[error("short write to spool file {path}: {written} of {len} bytes")]
    ShortWrite {
        path: String,
        written: usize,
        len: usize,
    },
    #[error("spool file {path} kept being replaced while appending; gave up after {MAX_ATTEMPTS} attempts")]
    Contended { path: String },
}

/// Creates the spool directory (`0700`) when missing and checks that an
/// existing one is a real directory, ours, and private.
pub fn ensure_dir(dir: &Path) -> Result<(), SpoolError> {
    let shown = || dir.display().to_string();
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| SpoolError::Create {
                    path: shown(),
                    source,
                })?;
            Ok(())
        }
        Err(source) => Err(SpoolError::Inspect {
            path: shown(),
            source,
        }),
        Ok(meta) => check_private_dir(dir, &meta),
    }
}

fn check_private_dir(dir: &Path, meta: &fs::Metadata) -> Result<(), SpoolError> {
    let path = dir.display().to_string();
    if meta.file_type().is_symlink() {
        return Err(SpoolError::Symlink { path });
    }
    if !meta.is_dir() {
        return Err(SpoolError::NotADirectory { path });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(SpoolError::WrongOwner {
            path,
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SpoolError::WrongMode { path, mode });
    }
    Ok(())
}

/// The file hooks append to during the UTC hour of `now`.
pub fn hook_file(dir: &Path, now: DateTime<Utc>) -> PathBuf {
    dir.join(format!("hook-{}.{EXTENSION}", now.format("%Y%m%d%H")))
}

/// A fresh, unique file for a writer that found the hour's file being
/// deleted (step 2 of the protocol).
fn fallback_file(dir: &Path, now: DateTime<Utc>) -> PathBuf {
    dir.join(format!(
        "hook-{}-{}.{EXTENSION}",
        now.format("%Y%m%d%H"),
        uuid::Uuid::now_v7().simple()
    ))
}

/// Appends one complete line to the spool following the writer protocol;
/// returns the file it landed in. `line` must end with `\n`.
pub fn append_line(dir: &Path, line: &[u8], now: DateTime<Utc>) -> Result<PathBuf, SpoolError> {
    debug_assert!(line.ends_with(b"\n"));
    let mut path = hook_file(dir, now);
    for _ in 0..MAX_ATTEMPTS {
        let file = open_append(&path)?;
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                path = fallback_file(dir, now);
                continue;
            }
            Err(TryLockError::Error(source)) => return Err(append_error(&path, source)),
        }
        if !still_linked(&file, &path).map_err(|e| append_error(&path, e))? {
            continue;
        }
        return write_once(file, &path, line).map(|()| path);
    }
    Err(SpoolError::Contended {
        path: path.display().to_string(),
    })
}

fn open_append(path: &Path) -> Result<File, SpoolError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| append_error(path, e))
}

/// Step 3: the path still names the inode we opened.
fn still_linked(file: &File, path: &Path) -> io::Result<bool> {
    let opened = file.metadata()?;
    if opened.nlink() == 0 {
        return Ok(false);
    }
    match fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == opened.dev() && named.ino() == opened.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Step 4: exactly one `write(2)`. A short write (disk full) cannot be
/// completed by a second write without risking interleaving with another
/// appender, so it is reported; the daemon quarantines the torn remains.
fn write_once(mut file: File, path: &Path, line: &[u8]) -> Result<(), SpoolError> {
    let written = file.write(line).map_err(|e| append_error(path, e))?;
    if written != line.len() {
        return Err(SpoolError::ShortWrite {
            path: path.display().to_string(),
            written,
            len: line.len(),
        });
    }
    Ok(())
}

fn append_error(path: &Path, source: io::Error) -> SpoolError {
    SpoolError::Append {
        path: path.display().to_string(),
        source,
    }
}

/// The spool files to ingest, oldest name first: regular `*.jsonl` files
/// directly in `dir`. Symlinks are never followed.
pub fn list_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_jsonl = path.extension().is_some_and(|e| e == EXTENSION);
        if is_jsonl && entry.file_type()?.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// What [`retire`] did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    Deleted,
    /// Not deleted now; the reason is a normal state, retried next pass.
    Kept(KeepReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepReason {
    Unread,
    RecentlyModified,
    WriterActive,
    Replaced,
}

/// Deletes `path` if the deletion protocol allows it. `file` is the
/// daemon's own descriptor of the file, `committed` the offset committed in
/// the database for it.
pub fn retire(path: &Path, file: &File, committed: u64, quiet: Duration) -> io::Result<Retired> {
    let meta = file.metadata()?;
    if meta.len() != committed {
        return Ok(Retired::Kept(KeepReason::Unread));
    }
    let idle = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    if idle.is_none_or(|idle| idle < quiet) {
        return Ok(Retired::Kept(KeepReason::RecentlyModified));
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Retired::Kept(KeepReason::WriterActive)),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // Under the exclusive lock no hook can be between its steps 3 and 4.
    let outcome = (|| {
        if file.metadata()?.len() != committed {
            return Ok(Retired::Kept(KeepReason::Unread));
        }
        if !still_linked(file, path)? {
            return Ok(Retired::Kept(KeepReason::Replaced));
        }
        fs::remove_file(path)?;
        Ok(Retired::Deleted)
    })();
    file.unlock()?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-24T13:05:00Z".parse().unwrap()
    }

    #[test]
    fn creates_private_dir_and_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("spool");
        ensure_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let path = append_line(&dir, b"{}\n", now()).unwrap();
        assert_eq!(path, dir.join("hook-2026112413.jsonl"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        append_line(&dir, b"{\"b\":1}\n", now()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}\n{\"b\":1}\n");
    }

    #[test]
    fn refuses_shared_or_symlinked_spool() {
        let root = tempfile::tempdir().unwrap();
        let open = root.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            ensure_dir(&open),
            Err(SpoolError::WrongMode { mode: 0o755, .. })
        ));
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&open, &link).unwrap();
        assert!(matches!(ensure_dir(&link), Err(SpoolError::Symlink { .. })));
    }

    #[test]
    fn writer_moves_to_a_fresh_file_while_the_daemon_holds_the_lock() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        let path = append_line(dir, b"1\n", now()).unwrap();
        let daemon = File::open(&path).unwrap();
        daemon.try_lock().unwrap();
        let other = append_line(dir, b"2\n", now()).unwrap();
        assert_ne!(other, path);
        assert_eq!(fs::read(&other).unwrap(), b"2\n");
        daemon.unlock().unwrap();
    }

    #[test]
    fn retire_deletes_only_fully_committed_idle_unlocked_files() {
        let root = tempfile::tempdir().unwrap();
        let path = append_line(root.path(), b"12345\n", now()).unwrap();
        let file = File::open(&path).unwrap();
        assert_eq!(
            retire(&path, &file, 3, Duration::ZERO).unwrap(),
            Retired::Kept(KeepReason::Unread)
        );
        assert_eq!(
            retire(&path, &file, 6, Duration::from_secs(3600)).unwrap(),
            Retired::Kept(KeepReason::RecentlyModified)
        );
        let writer = File::open(&path).unwrap();
        writer.try_lock_shared().unwrap();
        assert_eq!(
            retire(&path, &file, 6, Duration::ZERO).unwrap(),
            Retired::Kept(KeepReason::WriterActive)
        );
        drop(writer);
        assert_eq!(
            retire(&path, &file, 6, Duration::ZERO).unwrap(),
            Retired::Deleted
        );
        assert!(!path.exists());
    }

    #[test]
    fn writer_that_lost_the_race_starts_over_on_a_live_file() {
        // Simulate steps 1–3 interleaved with a deletion: the opened inode is
        // unlinked before the lock, so the check must fail.
        let root = tempfile::tempdir().unwrap();
        let path = hook_file(root.path(), now());
        let file = open_append(&path).unwrap();
        fs::remove_file(&path).unwrap();
        file.try_lock_shared().unwrap();
        assert!(!still_linked(&file, &path).unwrap());
        // And a re-created file under the same name is a different inode.
        let again = open_append(&path).unwrap();
        assert!(!still_linked(&file, &path).unwrap());
        assert!(still_linked(&again, &path).unwrap());
    }
}

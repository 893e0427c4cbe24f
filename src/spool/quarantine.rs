//! Where lines that cannot be ingested go: never dropped, never in the DB.
//!
//! The raw bytes of a rejected line are written to
//! `<spool>/quarantine/<sha256>.line` (mode `0600`, content-addressed, so
//! writing the same line twice is harmless) and synced *before* the
//! `quarantine` row that points at them is committed. The row holds only
//! where the line was (file, offset, length), its sha256 and the reason.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Creates the quarantine directory (`0700`) if needed.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The file holding the raw line with this hash.
pub fn line_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}.line"))
}

/// Stores `bytes` (a line without its `\n`); returns its sha256.
pub fn store(dir: &Path, bytes: &[u8]) -> io::Result<String> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let path = line_path(dir, &sha256);
    if path.exists() {
        return Ok(sha256);
    }
    ensure_dir(dir)?;
    // Written beside its final name and renamed, so a crash never leaves
    // a partial copy under the content's name (tempfile creates it 0600).
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(&path).map_err(|e| e.error)?;
    Ok(sha256)
}

/// Moves an oversized line already streamed to `stash` into place.
pub fn adopt(dir: &Path, stash: &Path, sha256: &str) -> io::Result<()> {
    fs::rename(stash, line_path(dir, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn stores_private_content_addressed_copies() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("quarantine");
        let sha = store(&dir, b"\xffbad").unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(b"\xffbad")));
        let path = line_path(&dir, &sha);
        assert_eq!(fs::read(&path).unwrap(), b"\xffbad");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(store(&dir, b"\xffbad").unwrap(), sha, "idempotent");
    }
}

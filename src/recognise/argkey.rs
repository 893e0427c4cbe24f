//! The key of `calls.args_hash`.
//!
//! Arguments are stored only as a hash, so equal arguments can be counted
//! without being readable. A plain hash would not be enough: arguments are
//! often guessable (`--db ops.db`), and a stolen operations.db could be
//! reversed with a dictionary. `args_hash` is therefore HMAC-SHA-256 under a
//! random 32-byte key that is kept *outside* operations.db, in
//! `<spool>/args.key` (mode 0600, in the 0700 spool directory, the one place
//! meant to hold sensitive bytes). Copying the database does not copy the
//! key; without it the hashes are opaque.
//!
//! # Lifecycle
//! Created on first use with `O_EXCL` (two processes racing both end up
//! reading the winner's key) and never rotated: rotating would make hashes
//! of the same arguments differ over time.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// File name of the key inside the spool directory.
pub const KEY_FILE: &str = "args.key";
const KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct ArgsKey {
    /// HMAC state with the key already absorbed: each hash clones it
    /// instead of re-deriving the inner and outer pads.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for ArgsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgsKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArgsKeyError {
    #[error("cannot create the args_hash key {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the args_hash key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the args_hash key {path} is not {KEY_LEN} bytes; remove it to make a new one (hashes will change)")]
    Corrupt { path: PathBuf },
    #[error("the args_hash key {path} is readable by others (mode {mode:o}); chmod 600 it")]
    Exposed { path: PathBuf, mode: u32 },
}

impl ArgsKey {
    /// Reads `<spool>/args.key`, creating it if missing. The spool
    /// directory must exist.
    pub fn load_or_create(spool: &Path) -> Result<Self, ArgsKeyError> {
        let path = spool.join(KEY_FILE);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).map_err(|e| ArgsKeyError::Create {
                    path: path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                file.write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(|source| ArgsKeyError::Create {
                        path: path.clone(),
                        source,
                    })?;
                Ok(ArgsKey::from_bytes(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read(&path),
            Err(source) => Err(ArgsKeyError::Create { path, source }),
        }
    }

    fn read(path: &Path) -> Result<Self, ArgsKeyError> {
        let read_err = |source| ArgsKeyError::Read {
            path: path.to_path_buf(),
            source,
        };
        // A racing creator may not have written the key yet.
        for _ in 0..50 {
            let mut file = OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(path)
                .map_err(read_err)?;
            let mode = file.metadata().map_err(read_err)?.mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(ArgsKeyError::Exposed {
                    path: path.to_path_buf(),
                    mode,
                });
            }
            let mut bytes = Vec::with_capacity(KEY_LEN);
            file.read_to_end(&mut bytes).map_err(read_err)?;
            if let Ok(key) = <[u8; KEY_LEN]>::try_from(bytes.as_slice()) {
                return Ok(ArgsKey::from_bytes(&key));
            }
            if !bytes.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err(ArgsKeyError::Corrupt {
            path: path.to_path_buf(),
        })
    }

    /// A key for tests and tools that store nothing.
    pub fn ephemeral() -> Self {
        let mut key = [0u8; KEY_LEN];
        let _ = getrandom::fill(&mut key);
        ArgsKey::from_bytes(&key)
    }

    fn from_bytes(key: &[u8; KEY_LEN]) -> Self {
        let keyed = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        ArgsKey { keyed }
    }

    /// The keyed hash of `parts` (unambiguously framed), 128 bits as hex.
    pub fn hash(&self, parts: &[&str]) -> String {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_is_created_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = ArgsKey::load_or_create(dir.path()).unwrap();
        let b = ArgsKey::load_or_create(dir.path()).unwrap();
        assert_eq!(
            a.hash(&["fn_run", "x", "--db ops.db"]),
            b.hash(&["fn_run", "x", "--db ops.db"])
        );
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = ArgsKey::ephemeral();
        assert_ne!(
            a.hash(&["x"]),
            other.hash(&["x"]),
            "the hash depends on the key"
        );
        assert_ne!(
            a.hash(&["ab", "c"]),
            a.hash(&["a", "bc"]),
            "parts are framed"
        );
        assert_eq!(a.hash(&["x"]).len(), 32);
    }

    #[test]
    fn refuses_an_exposed_or_corrupt_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, [1u8; 5]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            ArgsKey::load_or_create(dir.path()),
            Err(ArgsKeyError::Corrupt { .. })
        ));
        std::fs::write(&path, [1u8; KEY_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ArgsKey::load_or_create(dir.path()),
            Err(ArgsKeyError::Exposed { .. })
        ));
    }
}

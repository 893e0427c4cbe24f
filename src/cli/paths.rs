//! Default locations.
//!
//! Telemetry is local to a machine and belongs with the installed binary,
//! not with whatever directory the agent happens to be working in, so the
//! database and the spool default to siblings of the executable
//! (`<exe dir>/operations.db`, `<exe dir>/spool/`). Every default can be
//! overridden by a flag or an environment variable (see [`crate::cli`]).

use std::path::{Path, PathBuf};

/// File name of the database when `--db` is not given.
pub const DEFAULT_DB_NAME: &str = "operations.db";
/// Directory name of the spool when `--spool` is not given.
pub const DEFAULT_SPOOL_NAME: &str = "spool";

/// The directory holding the running executable, or the current directory
/// when the platform cannot tell (the paths stay usable either way).
pub fn executable_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `--db` if given, else `operations.db` next to the executable.
pub fn db_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| executable_dir().join(DEFAULT_DB_NAME))
}

/// `--spool` if given, else `spool/` next to the executable.
pub fn spool_dir(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| executable_dir().join(DEFAULT_SPOOL_NAME))
}

/// Where Claude Code keeps its transcripts: `~/.claude/projects`.
pub fn claude_projects() -> Result<PathBuf, super::CliError> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".claude").join("projects"))
        .ok_or_else(|| {
            super::CliError::MissingOption(
                "HOME is not set: name the transcript directory (import-transcripts PATH)".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_paths_win_over_defaults() {
        assert_eq!(
            db_path(Some(Path::new("/x/a.db"))),
            PathBuf::from("/x/a.db")
        );
        assert_eq!(spool_dir(Some(Path::new("/x/s"))), PathBuf::from("/x/s"));
    }

    #[test]
    fn defaults_sit_next_to_the_executable() {
        let dir = executable_dir();
        assert_eq!(db_path(None), dir.join("operations.db"));
        assert_eq!(spool_dir(None), dir.join("spool"));
    }
}

//! Joining a session's own processes to it (CONTRACT §8): on SessionStart
//! the hook appends
//!
//! ```sh
//! export CALL_MONITOR_SESSION_ID='<session id>'
//! export CALL_MONITOR_SPOOL='<spool directory>'
//! ```
//!
//! to the file Claude Code names in `CLAUDE_ENV_FILE`, which it sources
//! before each of the session's later Bash commands. The Python telemetry
//! wrapper inside those commands reads them to tag its calls with the
//! session and to find the spool.
//!
//! Best effort, like the rest of the hook: a missing variable means nothing
//! to do; a file that cannot be written is one line on stderr. Lines
//! already in the file (a resumed session, a hook registered twice) are not
//! added again. Values are single-quoted for the shell.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The session id, for the session's Bash commands.
pub const SESSION_VAR: &str = "CALL_MONITOR_SESSION_ID";
/// The spool directory, absolute.
pub const SPOOL_VAR: &str = "CALL_MONITOR_SPOOL";
/// The variable Claude Code sets for SessionStart hooks.
pub const CLAUDE_ENV_FILE: &str = "CLAUDE_ENV_FILE";

/// Appends the exports for `session_id` and `spool` to `env_file`, unless
/// they are there already.
pub fn export(env_file: &Path, session_id: &str, spool: &Path) -> io::Result<()> {
    let spool = std::path::absolute(spool)?;
    let lines = [
        export_line(SESSION_VAR, session_id),
        export_line(SPOOL_VAR, &spool.to_string_lossy()),
    ];
    let existing = std::fs::read_to_string(env_file).unwrap_or_default();
    let mut missing = String::new();
    for line in lines {
        if !existing.lines().any(|l| l == line) {
            missing.push_str(&line);
            missing.push('\n');
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !existing.is_empty() && !existing.ends_with('\n') {
        missing.insert(0, '\n');
    }
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(env_file)?;
    file.write_all(missing.as_bytes())
}

/// `export NAME='value'`, with `'` written as `'\''`.
fn export_line(name: &str, value: &str) -> String {
    format!("export {name}='{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_quoted_exports_once() {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join("sessionstart-hook-0.sh");
        std::fs::write(&env_file, "export OTHER=1").unwrap();
        export(&env_file, "s-1'; rm -rf ~; '", Path::new("/var/spool/cm")).unwrap();
        export(&env_file, "s-1'; rm -rf ~; '", Path::new("/var/spool/cm")).unwrap();
        let text = std::fs::read_to_string(&env_file).unwrap();
        assert_eq!(
            text,
            "export OTHER=1\nexport CALL_MONITOR_SESSION_ID='s-1'\\''; rm -rf ~; '\\'''\nexport CALL_MONITOR_SPOOL='/var/spool/cm'\n"
        );
        // What a shell makes of it: the id as it was, nothing run.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                ". '{}' && printf %s \"$CALL_MONITOR_SESSION_ID\"",
                env_file.display()
            ))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "s-1'; rm -rf ~; '");
    }
}

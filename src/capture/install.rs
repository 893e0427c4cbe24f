//! `install-hooks`: merge call_monitor's hook into a Claude Code settings file.
//!
//! Claude Code reads hooks from `settings.json` (`~/.claude/settings.json`
//! for the user, `.claude/settings.json` for a project): per event, a list
//! of groups `{"matcher": …, "hooks": [{"type": "command", "command": …}]}`.
//! The merge adds `call_monitor hook` to each event of [`EVENTS`] and keeps
//! everything else — the user's own hooks and other settings (members are
//! written back in sorted order).
//!
//! # Invariants
//! - **Idempotent.** A command whose program is named `call_monitor` and
//!   whose first argument is `hook` is ours: it is updated in place (a new
//!   binary path, a new `--spool`), never added twice.
//! - **Reversible.** Before a changed file is written, the previous one is
//!   copied to `settings.json.bak-<timestamp>`; a file that would not
//!   change is not touched. The new file replaces the old one atomically
//!   (written beside it, then renamed), keeping its permissions.
//! - A file that is not a JSON object is refused, not overwritten.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

/// The events call_monitor listens to, and whether they take a tool matcher.
pub const EVENTS: &[(&str, bool)] = &[
    ("PreToolUse", true),
    ("PostToolUse", true),
    ("PostToolUseFailure", true),
    ("SessionStart", false),
    ("SessionEnd", false),
    ("UserPromptSubmit", false),
    ("PermissionRequest", true),
    ("Notification", false),
    ("SubagentStart", false),
    ("SubagentStop", false),
    ("PreCompact", false),
    ("Stop", false),
    ("StopFailure", false),
];

/// Seconds Claude Code allows the hook before giving up on it.
const HOOK_TIMEOUT_S: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({source}); fix or move it, it was not changed")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {what}; it was not changed")]
    Shape { path: PathBuf, what: &'static str },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot locate this binary: {0}")]
    Locate(std::io::Error),
    #[error("cannot resolve {path}: {source}")]
    Resolve {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("install-hooks writes paths unquoted and {0} holds spaces or quotes; use --print and edit the snippet")]
    Unquotable(PathBuf),
    #[error("HOME is not set; pass --settings PATH")]
    NoHome,
}

/// What [`install`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    /// The file now has the hooks; `backup` holds the previous version.
    Changed {
        added: usize,
        updated: usize,
        backup: Option<PathBuf>,
    },
    /// Every hook was already there, unchanged.
    AlreadyPresent,
}

/// The hook command for this binary: its absolute path, and `--spool` when
/// one was given (else the hook uses its default next to the binary). The
/// command is written unquoted, so neither path may hold spaces or quotes.
pub fn hook_command(spool: Option<&Path>) -> Result<String, InstallError> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(InstallError::Locate)?;
    let mut paths = vec![exe];
    if let Some(spool) = spool {
        let spool = std::path::absolute(spool).map_err(|source| InstallError::Resolve {
            path: spool.to_path_buf(),
            source,
        })?;
        paths.push(spool);
    }
    if let Some(awkward) = paths.iter().find(|p| {
        p.to_string_lossy()
            .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
    }) {
        return Err(InstallError::Unquotable(awkward.clone()));
    }
    let mut command = format!("{} hook", paths[0].display());
    if let Some(spool) = paths.get(1) {
        command.push_str(&format!(" --spool {}", spool.display()));
    }
    Ok(command)
}

/// The user's settings file, `~/.claude/settings.json`.
pub fn user_settings() -> Result<PathBuf, InstallError> {
    std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".claude/settings.json"))
        .ok_or(InstallError::NoHome)
}

/// The Claude Code hooks snippet for `command` (what `hooks/` ships).
pub fn snippet(command: &str) -> Value {
    let mut hooks = Map::new();
    for (event, takes_matcher) in EVENTS {
        hooks.insert(event.to_string(), json!([group(command, *takes_matcher)]));
    }
    json!({ "hooks": hooks })
}

fn group(command: &str, takes_matcher: bool) -> Value {
    let hook = json!({"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S});
    if takes_matcher {
        json!({"matcher": "*", "hooks": [hook]})
    } else {
        json!({"hooks": [hook]})
    }
}

/// Whether a hook command is call_monitor's: `…/call_monitor hook …`.
fn is_ours(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or_default();
    let name = program.rsplit('/').next().unwrap_or_default();
    name.trim_matches(['"', '\'']) == "call_monitor" && words.next() == Some("hook")
}

/// Whether the settings file at `path` (if there is one, and it is JSON)
/// already runs `call_monitor hook` for some event. Claude Code runs every
/// matching hook of every settings file, so a second registration spools
/// each event twice.
pub fn runs_our_hook(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(settings) = serde_json::from_str::<Value>(&text) else {
        return false;
    };
    let Some(events) = settings.get("hooks").and_then(Value::as_object) else {
        return false;
    };
    events
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|group| group.get("hooks").and_then(Value::as_array))
        .flatten()
        .filter_map(|hook| hook.get("command").and_then(Value::as_str))
        .any(is_ours)
}

/// Merges the hooks calling `command` into the settings file at `path`
/// (created if missing).
pub fn install(path: &Path, command: &str) -> Result<Installed, InstallError> {
    let original = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(InstallError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut settings: Value = match original.as_deref() {
        Some(text) if !text.trim().is_empty() => {
            serde_json::from_str(text).map_err(|source| InstallError::Json {
                path: path.to_path_buf(),
                source,
            })?
        }
        _ => json!({}),
    };
    let shape = |what| InstallError::Shape {
        path: path.to_path_buf(),
        what,
    };
    let root = settings
        .as_object_mut()
        .ok_or_else(|| shape("the settings are not a JSON object"))?;
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| shape("`hooks` is not an object"))?;
    let (mut added, mut updated) = (0, 0);
    for (event, takes_matcher) in EVENTS {
        let groups = hooks
            .entry(event.to_string())
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .ok_or_else(|| shape("an event's hooks are not a list"))?;
        match merge_event(groups, command) {
            Merge::Present => {}
            Merge::Updated => updated += 1,
            Merge::Missing => {
                groups.push(group(command, *takes_matcher));
                added += 1;
            }
        }
    }
    if added == 0 && updated == 0 {
        return Ok(Installed::AlreadyPresent);
    }
    let backup = match &original {
        Some(text) => Some(write_backup(path, text)?),
        None => None,
    };
    write_atomically(path, &settings)?;
    Ok(Installed::Changed {
        added,
        updated,
        backup,
    })
}

enum Merge {
    Present,
    Updated,
    Missing,
}

/// Finds our hook among an event's groups, updating its command if needed.
fn merge_event(groups: &mut [Value], command: &str) -> Merge {
    for group in groups.iter_mut() {
        let Some(hooks) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
            continue;
        };
        for hook in hooks.iter_mut() {
            let Some(existing) = hook.get("command").and_then(Value::as_str) else {
                continue;
            };
            if !is_ours(existing) {
                continue;
            }
            if existing == command {
                return Merge::Present;
            }
            hook["command"] = Value::String(command.to_string());
            return Merge::Updated;
        }
    }
    Merge::Missing
}

fn write_backup(path: &Path, text: &str) -> Result<PathBuf, InstallError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let backup = PathBuf::from(format!("{}.bak-{stamp}", path.display()));
    std::fs::write(&backup, text).map_err(|source| InstallError::Write {
        path: backup.clone(),
        source,
    })?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&backup, meta.permissions());
    }
    Ok(backup)
}

fn write_atomically(path: &Path, settings: &Value) -> Result<(), InstallError> {
    let write_err = |source| InstallError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let mut text = serde_json::to_string_pretty(settings).expect("JSON values serialise");
    text.push('\n');
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    std::fs::write(tmp.path(), text).map_err(write_err)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(write_err)?;
    }
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_snippet_is_the_one_installed() {
        let shipped = include_str!("../../hooks/claude-settings.json");
        let shipped: Value = serde_json::from_str(shipped).unwrap();
        assert_eq!(shipped, snippet("call_monitor hook"));
    }

    #[test]
    fn an_earlier_install_gains_the_new_events_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let ours = |matcher: bool| {
            let mut group =
                json!({"hooks": [{"type": "command", "command": "/opt/call_monitor hook"}]});
            if matcher {
                group["matcher"] = "*".into();
            }
            json!([group])
        };
        // What 0.10.0 installed: six events.
        let earlier = json!({"hooks": {
            "PreToolUse": ours(true), "PostToolUse": ours(true), "PostToolUseFailure": ours(true),
            "SessionStart": ours(false), "SessionEnd": ours(false), "UserPromptSubmit": ours(false),
        }});
        std::fs::write(&path, earlier.to_string()).unwrap();
        let upgraded = install(&path, "/opt/call_monitor hook").unwrap();
        assert!(
            matches!(
                upgraded,
                Installed::Changed {
                    added: 7,
                    updated: 0,
                    ..
                }
            ),
            "{upgraded:?}"
        );
        let settings: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for (event, _) in EVENTS {
            assert_eq!(
                settings["hooks"][event].as_array().unwrap().len(),
                1,
                "{event}"
            );
        }
    }

    #[test]
    fn finds_our_hook_in_another_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert!(!runs_our_hook(&path));
        std::fs::write(
            &path,
            r#"{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "./other.sh"}]}]}}"#,
        )
        .unwrap();
        assert!(!runs_our_hook(&path));
        install(&path, "/opt/call_monitor hook").unwrap();
        assert!(runs_our_hook(&path));
    }

    #[test]
    fn recognises_our_commands_only() {
        assert!(is_ours("/opt/cm/call_monitor hook"));
        assert!(is_ours("call_monitor hook --spool /x"));
        assert!(!is_ours("call_monitor status"));
        assert!(!is_ours("/usr/bin/other hook"));
        assert!(!is_ours("echo call_monitor hook"));
    }

    #[test]
    fn merges_idempotently_keeping_the_users_hooks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let mine = json!({
            "model": "opus",
            "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]}]}
        });
        std::fs::write(&path, mine.to_string()).unwrap();

        let first = install(&path, "/opt/call_monitor hook").unwrap();
        let Installed::Changed {
            added: 13,
            updated: 0,
            backup: Some(backup),
        } = first
        else {
            panic!("unexpected {first:?}");
        };
        assert_eq!(std::fs::read_to_string(backup).unwrap(), mine.to_string());
        assert_eq!(
            install(&path, "/opt/call_monitor hook").unwrap(),
            Installed::AlreadyPresent
        );

        let moved = install(&path, "/new/call_monitor hook").unwrap();
        assert!(matches!(
            moved,
            Installed::Changed {
                added: 0,
                updated: 13,
                ..
            }
        ));
        let settings: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(settings["model"], "opus");
        let pre = settings["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre[0]["hooks"][0]["command"], "./guard.sh");
        for (event, _) in EVENTS {
            let ours: Vec<&str> = settings["hooks"][event]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["hooks"].as_array().unwrap())
                .filter_map(|h| h["command"].as_str())
                .filter(|c| is_ours(c))
                .collect();
            assert_eq!(ours, ["/new/call_monitor hook"], "{event}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            install(&path, "call_monitor hook"),
            Err(InstallError::Json { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
        std::fs::write(&path, "[]").unwrap();
        assert!(matches!(
            install(&path, "call_monitor hook"),
            Err(InstallError::Shape { .. })
        ));
        let fresh = dir.path().join("new/.claude/settings.json");
        assert!(matches!(
            install(&fresh, "call_monitor hook").unwrap(),
            Installed::Changed {
                added: 13,
                backup: None,
                ..
            }
        ));
    }
}

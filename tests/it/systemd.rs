//! The units in `systemd/` pass `systemd-analyze verify`, except for the
//! binary path (not installed on the machine running the tests).

use std::path::Path;
use std::process::Command;

#[test]
fn units_verify_clean_but_for_the_binary_path() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        std::fs::copy(&path, dir.path().join(&name)).unwrap();
        names.push(name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "call_monitor.service",
            "call_monitor_sequences.service",
            "call_monitor_sequences.timer"
        ]
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&names)
        .current_dir(dir.path())
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .expect("systemd-analyze is needed (apt-get install systemd; .ci/run installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (binary, other): (Vec<&str>, Vec<&str>) = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.contains("/.local/bin/call_monitor is not executable"));
    assert!(other.is_empty(), "systemd-analyze verify:\n{report}");
    // Both services were checked (the complaint proves verify read them).
    assert_eq!(binary.len(), 2, "{report}");
}

#[test]
fn timer_runs_every_six_hours_and_catches_up() {
    let timer = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/call_monitor_sequences.timer"),
    )
    .unwrap();
    assert!(timer.contains("OnCalendar=*-*-* 00,06,12,18:00:00"));
    assert!(timer.contains("Persistent=true"));
}

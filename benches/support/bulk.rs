//! Whole-process benchmark helpers: the binary under test, and databases
//! filled by hand then rolled up by the binary.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> String {
    std::env::var("CALL_MONITOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_call_monitor").to_string())
}

/// A new database (`init`) opened for bulk inserts.
pub fn fresh_bulk_db(db: &Path) -> rusqlite::Connection {
    let init = Command::new(bin())
        .args(["init", "--db"])
        .arg(db)
        .output()
        .expect("init");
    assert!(init.status.success());
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -1000000;")
        .expect("pragmas");
    conn
}

/// `init --rebuild-rollups` over rows inserted by hand; prints what the
/// rows (`what`) took to generate and the rollups to rebuild.
pub fn rebuild_rollups(db: &Path, what: &str, generated: Duration) {
    let rebuild = Instant::now();
    let out = Command::new(bin())
        .args(["init", "--rebuild-rollups", "--db"])
        .arg(db)
        .output()
        .expect("rebuild");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{what} generated in {:.1} s, rollups rebuilt in {:.1} s",
        generated.as_secs_f64(),
        rebuild.elapsed().as_secs_f64()
    );
}

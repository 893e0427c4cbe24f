//! Change notification: one task polls `PRAGMA data_version` on a
//! connection of its own (the value changes when *another* connection
//! commits, which is what the daemon's ingest commits are) and publishes a
//! counter on a watch channel; each `/api/live` client turns changes into
//! server-sent events and the page re-reads what it shows.

use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;
use tracing::warn;

/// How often the data version is read: fast enough to feel live, a
/// trivial query.
pub const POLL: Duration = Duration::from_millis(500);

/// Publishes a counter that goes up after every commit seen, until
/// `stop` fires. `open` gives the connection to watch (a fresh one after
/// an error).
pub async fn watch_changes(
    open: impl Fn() -> Result<Connection, String> + Send + 'static,
    changes: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut conn, mut last): (Option<Connection>, Option<i64>) = (None, None);
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if conn.is_none() {
            match open() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    warn!(error = %e, "live updates: cannot open the database");
                    continue;
                }
            }
        }
        let version = conn
            .as_ref()
            .map(|c| c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)));
        match version {
            Some(Ok(v)) => {
                if last.is_some_and(|l| l != v) {
                    changes.send_modify(|n| *n += 1);
                }
                last = Some(v);
            }
            Some(Err(e)) => {
                warn!(error = %e, "live updates: cannot read data_version");
                conn = None;
            }
            None => {}
        }
    }
}

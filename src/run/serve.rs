//! `serve`'s lifecycle: the dashboard ([`crate::see::serve`]) on a tokio
//! runtime of its own, stopped by the same [`Control`] as the daemon (the
//! binary forwards SIGTERM and SIGINT to it; a test shuts it down itself).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Notify;

use super::control::{Control, Event};
use crate::see::{self, ServeConfig, ServeError};

/// Serves until `control` is shut down; `on_ready` is told the address
/// bound.
pub fn run(
    config: ServeConfig,
    control: &Control,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    // Two workers: requests are short SQLite reads on the pool's blocking
    // threads; the runtime only parses HTTP and streams live events.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve")
        .enable_all()
        .build()
        .map_err(ServeError::Serve)?;
    let stop = Arc::new(Notify::new());
    let _subscription = control.subscribe({
        let stop = Arc::clone(&stop);
        move |event| {
            if matches!(event, Event::Shutdown { .. }) {
                // Stores a permit if the server is not waiting yet.
                stop.notify_one();
            }
        }
    });
    runtime.block_on(see::serve(
        config,
        async move { stop.notified().await },
        on_ready,
    ))
}

//! The binary's signal handlers, turned into [`Control`] events: SIGTERM
//! and SIGINT shut the daemon down, SIGHUP reloads it.
//!
//! # Lifecycle
//! [`forward_signals`] installs the handlers before it returns — from then
//! on SIGTERM is a clean stop, never the default action killing the process
//! mid-batch — and forwards signals on a thread of its own (a
//! current-thread tokio runtime) until the control is shut down, by a
//! signal or otherwise.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Notify;

use super::control::{Control, Event};

/// The forwarding thread; [`SignalForwarder::join`] waits for it to end
/// after shutdown.
pub struct SignalForwarder {
    thread: JoinHandle<()>,
}

impl SignalForwarder {
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Installs the handlers and forwards what they catch to `control`.
pub fn forward_signals(control: &Control) -> io::Result<SignalForwarder> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (mut term, mut int, mut hup) = {
        let _context = runtime.enter();
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        )
    };
    let stopped = Arc::new(Notify::new());
    let subscription = control.subscribe({
        let stopped = Arc::clone(&stopped);
        move |event| {
            if matches!(event, Event::Shutdown { .. }) {
                // Stores a permit if the thread is not waiting yet.
                stopped.notify_one();
            }
        }
    });
    let control = control.clone();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let _subscription = subscription;
            runtime.block_on(async {
                loop {
                    tokio::select! {
                        _ = recv(&mut term) => return control.shutdown("SIGTERM"),
                        _ = recv(&mut int) => return control.shutdown("SIGINT"),
                        _ = recv(&mut hup) => control.reload(),
                        _ = stopped.notified() => return,
                    }
                }
            })
        })?;
    Ok(SignalForwarder { thread })
}

async fn recv(signal: &mut Signal) {
    signal.recv().await;
}

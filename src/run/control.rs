//! The daemon's lifecycle events — shutdown and reload — on one path.
//!
//! Whoever holds a [`Control`] can send them: the signal handlers the binary
//! installs ([`super::forward_signals`]: SIGTERM and SIGINT shut down,
//! SIGHUP reloads), or a test that runs the daemon in-process. The daemon
//! fans each event out to its components by [`Control::subscribe`] (the
//! ingester's wake-up, the insight connection's interrupt), and its
//! threads poll [`Control::is_shut_down`] or wait with
//! [`Control::wait_for_shutdown`].
//!
//! # Invariants
//! - Shutdown is final and idempotent: sent twice, its listeners run once;
//!   a listener subscribed after it runs at once. The ingester only acts on
//!   it between batches, so a shutdown always leaves the last batch either
//!   committed or not started.
//! - Reload may be sent any number of times; each reaches every listener.
//! - A [`Subscription`] dropped unsubscribes, so a `Control` outlives the
//!   daemon run that used it without keeping its channels alive.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the daemon is told from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Load rules and registry again before the next pass.
    Reload,
    /// Finish the batch in hand and stop; `cause` is logged.
    Shutdown { cause: &'static str },
}

type Listener = Arc<dyn Fn(Event) + Send + Sync>;

/// A cloneable handle on one daemon's lifecycle events.
#[derive(Clone, Default)]
pub struct Control(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// Read on every batch: an atomic, not the lock.
    shut_down: AtomicBool,
    next_listener: AtomicU64,
    listeners: Mutex<Vec<(u64, Listener)>>,
    /// Signalled (with `listeners` as its lock) when shutdown is sent.
    stopped: Condvar,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

impl Control {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every component to stop at its next safe point.
    pub fn shutdown(&self, cause: &'static str) {
        self.send(Event::Shutdown { cause });
    }

    /// Asks the daemon to load its rules and registry again.
    pub fn reload(&self) {
        self.send(Event::Reload);
    }

    /// Delivers `event` to every listener (shutdown only the first time).
    pub fn send(&self, event: Event) {
        let listeners: Vec<Listener> = {
            let listeners = self.lock();
            if matches!(event, Event::Shutdown { .. }) {
                if self.0.shut_down.swap(true, Ordering::SeqCst) {
                    return;
                }
                self.0.stopped.notify_all();
            }
            listeners.iter().map(|(_, l)| Arc::clone(l)).collect()
        };
        // Called outside the lock: a listener may send or subscribe.
        for listener in listeners {
            listener(event);
        }
    }

    pub fn is_shut_down(&self) -> bool {
        self.0.shut_down.load(Ordering::SeqCst)
    }

    /// Waits until shutdown is sent or `timeout` passes; `true` once shut
    /// down.
    pub fn wait_for_shutdown(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        while !self.is_shut_down() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            guard = match self.0.stopped.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Calls `listener` with every event from now on, until the returned
    /// [`Subscription`] is dropped. Subscribed after shutdown, it is called
    /// with it at once.
    #[must_use = "dropping the subscription unsubscribes"]
    pub fn subscribe(&self, listener: impl Fn(Event) + Send + Sync + 'static) -> Subscription {
        let id = self.0.next_listener.fetch_add(1, Ordering::Relaxed);
        let listener: Listener = Arc::new(listener);
        let late = {
            let mut listeners = self.lock();
            listeners.push((id, Arc::clone(&listener)));
            self.is_shut_down()
        };
        if late {
            listener(Event::Shutdown {
                cause: "shut down already",
            });
        }
        Subscription {
            control: self.clone(),
            id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(u64, Listener)>> {
        // A listener that panicked poisons nothing we rely on.
        self.0.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A listener's registration; dropping it unsubscribes.
pub struct Subscription {
    control: Control,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.control.lock().retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn every_listener_sees_each_reload_and_one_shutdown() {
        let control = Control::new();
        let (tx, rx) = mpsc::channel();
        let _a = control.subscribe({
            let tx = tx.clone();
            move |e| tx.send(("a", e)).unwrap()
        });
        let _b = control.subscribe(move |e| tx.send(("b", e)).unwrap());
        control.reload();
        control.shutdown("test");
        control.shutdown("again");
        let seen: Vec<_> = rx.try_iter().collect();
        let shutdown = Event::Shutdown { cause: "test" };
        assert_eq!(
            seen,
            [
                ("a", Event::Reload),
                ("b", Event::Reload),
                ("a", shutdown),
                ("b", shutdown)
            ]
        );
        assert!(control.is_shut_down());
    }

    #[test]
    fn a_late_subscriber_is_told_at_once_and_a_dropped_one_not_at_all() {
        let control = Control::new();
        let (tx, rx) = mpsc::channel();
        drop(control.subscribe({
            let tx = tx.clone();
            move |e| tx.send(("dropped", e)).unwrap()
        }));
        control.shutdown("test");
        let _late = control.subscribe(move |e| tx.send(("late", e)).unwrap());
        let seen: Vec<_> = rx.try_iter().map(|(who, _)| who).collect();
        assert_eq!(seen, ["late"]);
    }

    #[test]
    fn waiting_ends_on_shutdown_from_another_thread_or_on_timeout() {
        let control = Control::new();
        assert!(!control.wait_for_shutdown(Duration::from_millis(10)));
        let other = control.clone();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.shutdown("test");
        });
        assert!(control.wait_for_shutdown(Duration::from_secs(60)));
        sender.join().unwrap();
    }
}

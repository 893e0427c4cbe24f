//! A small, cloneable shutdown flag shared by the signal handler and the
//! ingestion thread.
//!
//! The ingester polls it between batches (never inside one), so a shutdown
//! always leaves the last batch either committed or not started.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every holder to stop at its next safe point.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_triggered(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

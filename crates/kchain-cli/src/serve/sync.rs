//! Locking shared state across request threads.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`; a panic while it was held leaves the state as it was (a writer that failed
/// mid-append has poisoned itself and says so; caches and counters stay usable).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

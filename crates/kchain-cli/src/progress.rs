//! Progress on a terminal: a single redrawn line on standard error, and nothing at all when
//! standard error is not a terminal (pipes, CI logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A thread-safe progress counter.
pub struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    enabled: bool,
    started: Instant,
    last_draw: Mutex<Instant>,
}

impl Progress {
    /// A counter towards `total` units, drawn only when standard error is a terminal.
    pub fn new(label: impl Into<String>, total: u64) -> Self {
        let now = Instant::now();
        Progress {
            label: label.into(),
            total,
            done: AtomicU64::new(0),
            enabled: std::io::stderr().is_terminal() && !crate::report::quiet(),
            started: now,
            last_draw: Mutex::new(now),
        }
    }

    /// Adds `n` completed units.
    pub fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last_draw.try_lock() else {
            return;
        };
        if last.elapsed() < Duration::from_millis(100) && done < self.total {
            return;
        }
        *last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let pct = if self.total > 0 {
            100.0 * done as f64 / self.total as f64
        } else {
            100.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}: {done}/{} ({pct:.0}%), {:.0}/s",
            self.label,
            self.total,
            done as f64 / secs
        );
        let _ = err.flush();
    }

    /// Clears the progress line.
    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

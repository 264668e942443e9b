//! Waiting for what another thread or process does, and places to put files.

use std::time::{Duration, Instant};

/// Polls `f` every 20 ms until it holds (true) or `secs` seconds pass (false).
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A fresh temporary directory named `kchain-test-*`, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kchain-test-")
        .tempdir()
        .expect("a temporary directory")
}

//! The wall clock, read one way everywhere kchain stamps a record, a checkpoint or a block.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 when the clock reads before the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_reads_after_2020() {
        assert!(super::now_ms() > 1_577_836_800_000);
    }
}

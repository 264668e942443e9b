//! Unique names for topics and chains.
//!
//! The tests of one test binary share one broker (see [`Broker::shared`](crate::Broker)),
//! and a `sqlite://` broker outlives a run, so a topic name must differ between the tests of
//! a run and between runs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `<prefix>-<pid>-<nanos>-<n>`: a name that no other test of this process (`n` counts up)
/// and no other process or earlier run (pid and time) uses. Made of the characters that
/// Kafka topic names allow, as long as `prefix` is.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_and_keep_the_prefix() {
        let (a, b) = (unique_name("t"), unique_name("t"));
        assert_ne!(a, b);
        assert!(a.starts_with("t-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
    }
}

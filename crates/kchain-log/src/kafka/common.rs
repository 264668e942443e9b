//! What the Kafka backend's parts share: its error constructor, Kafka's topic-name rules, a
//! poison-tolerant lock, and the claims that keep one appender per partition in a process.
//! It names none of the other parts, so that each of them can use it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::LogError;

/// Locks a mutex, ignoring poisoning: the maps behind these mutexes stay consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The partitions that have an appender in one [`KafkaLog`].
#[derive(Default)]
pub(crate) struct Claims(Mutex<HashSet<(String, u32)>>);

impl Claims {
    /// Claims a partition for a new appender; [`LogError::Locked`] while another holds it.
    pub(crate) fn take(
        claims: &Arc<Claims>,
        brokers: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Claim, LogError> {
        let key = (topic.to_string(), partition);
        if !lock(&claims.0).insert(key.clone()) {
            return Err(LogError::Locked {
                topic: topic.to_string(),
                partition,
                // Kafka has no lock file; this names what holds the claim instead.
                path: PathBuf::from(format!(
                    "kafka://{brokers}/{topic}/{partition}, in this process"
                )),
            });
        }
        Ok(Claim {
            claims: claims.clone(),
            key,
        })
    }
}

/// An appender's hold on its partition; released on drop.
pub(crate) struct Claim {
    claims: Arc<Claims>,
    key: (String, u32),
}

impl Drop for Claim {
    fn drop(&mut self) {
        lock(&self.claims.0).remove(&self.key);
    }
}

/// A broker or client failure, for [`LogError::Backend`].
pub(crate) fn backend(detail: String) -> LogError {
    LogError::Backend {
        backend: "kafka",
        detail,
    }
}

/// Checks a topic name against Kafka's rules: 1 to 249 characters of `[A-Za-z0-9._-]`, and
/// not `.` or `..` (the same rules as the embedded backend's).
pub(crate) fn validate_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason: String| {
        Err(LogError::InvalidTopicName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty".to_string());
    }
    if name.len() > 249 {
        return invalid("it is longer than 249 characters".to_string());
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed".to_string());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(format!(
            "character {c:?} is not allowed (only ASCII letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_name_rules() {
        for good in ["a", "kchain.blocks-1_x", &"x".repeat(249)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "with space",
            "slash/y",
            "ü",
            &"x".repeat(250),
        ] {
            assert!(
                matches!(validate_name(bad), Err(LogError::InvalidTopicName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn one_claim_per_partition() {
        let claims = Arc::new(Claims::default());
        let first = Claims::take(&claims, "b:9092", "t", 0).unwrap();
        assert!(matches!(
            Claims::take(&claims, "b:9092", "t", 0),
            Err(LogError::Locked { partition: 0, .. })
        ));
        let _other = Claims::take(&claims, "b:9092", "t", 1).unwrap();
        drop(first);
        Claims::take(&claims, "b:9092", "t", 0).unwrap();
    }
}

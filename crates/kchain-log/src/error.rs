//! Errors of the log backends.

use std::path::PathBuf;

/// Everything a log backend can fail with. Messages name the topic, partition, file and byte
/// position concerned, so that a person can act on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("topic '{0}' does not exist")]
    NoSuchTopic(String),

    #[error("topic '{0}' already exists")]
    TopicExists(String),

    #[error("partition {partition} does not exist in topic '{topic}' (it has {partitions})")]
    NoSuchPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },

    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName { name: String, reason: String },

    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The backend cannot do what was asked (the message says what and where).
    #[error("{0}")]
    Unsupported(String),

    #[error("{topic}/{partition} is locked by another appender ({path})")]
    Locked {
        topic: String,
        partition: u32,
        path: PathBuf,
    },

    #[error("corruption in {path} at byte {position}: {detail}")]
    Corruption {
        path: PathBuf,
        position: u64,
        detail: String,
    },

    #[error("offset {offset} is out of range for {topic}/{partition} (stored: {start}..{end})")]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },

    #[error("record too large: {size} bytes (limit {limit})")]
    RecordTooLarge { size: usize, limit: usize },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{backend} backend: {detail}")]
    Backend {
        backend: &'static str,
        detail: String,
    },
}

impl LogError {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LogError::Io {
            context: context.into(),
            source,
        }
    }
}

//! What the topic handlers share: a topic or partition that is not there is a 404, numbers
//! in the query string and the path are checked here (axum's own rejections are plain
//! text), and library errors become the status that fits them.

use std::collections::HashMap;

use kchain_http::axum::http::StatusCode;
use kchain_log::{Log, LogError};
use kchain_topic::TopicError;

use crate::serve::error::{ApiError, ApiResult};

/// The query string of a request, as names and values.
pub type QueryMap = HashMap<String, String>;

/// The partition count of `topic`; 404 when there is no such topic.
pub fn partitions_of(log: &dyn Log, topic: &str) -> ApiResult<u32> {
    log.topic(topic)
        .map(|t| t.partitions)
        .map_err(|e| log_error(e, topic))
}

/// The partition in the path, which must exist in `topic`: 400 when it is not a number,
/// 404 when the topic has no such partition. Returns (partition, partition count).
pub fn partition_of(log: &dyn Log, topic: &str, partition: &str) -> ApiResult<u32> {
    let p: u32 = partition.parse().map_err(|_| {
        ApiError::bad_request(format!("partition '{partition}' is not a partition number"))
    })?;
    let n = partitions_of(log, topic)?;
    if p >= n {
        return Err(ApiError::not_found(format!(
            "topic {topic} has no partition {p} (it has {n})"
        )));
    }
    Ok(p)
}

/// The query parameter `name` as a number, if given: 400 when it is not one.
pub fn number(query: &QueryMap, name: &str) -> ApiResult<Option<u64>> {
    match query.get(name) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("query parameter {name}='{v}' is not a number"))
        }),
    }
}

/// The query parameter `name`, which the route needs.
pub fn required(query: &QueryMap, name: &str) -> ApiResult<u64> {
    number(query, name)?
        .ok_or_else(|| ApiError::bad_request(format!("query parameter {name} is required")))
}

/// A log error as an answer: what is not there is a 404, a name or argument the log
/// refuses a 400, a topic that exists a 409, a record too large a 413, a partition another
/// process appends to a 409; the rest is the server's failure.
pub fn log_error(e: LogError, topic: &str) -> ApiError {
    match e {
        LogError::NoSuchTopic(_) => ApiError::not_found(format!("no topic named {topic}")),
        LogError::NoSuchPartition { .. } | LogError::OffsetOutOfRange { .. } => {
            ApiError::not_found(e.to_string())
        }
        LogError::TopicExists(_) => ApiError::conflict(format!("topic {topic} exists")),
        LogError::InvalidTopicName { .. } | LogError::InvalidArgument(_) => {
            ApiError::bad_request(e.to_string())
        }
        LogError::RecordTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        LogError::Locked { .. } => ApiError::conflict(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// A chained-topic error as an answer: a log error as [`log_error`] says, a foreign record
/// in a chain (another writer) a 409, a request the library calls invalid a 400.
pub fn topic_error(e: TopicError, topic: &str) -> ApiError {
    match e {
        TopicError::Log(e) => log_error(e, topic),
        e @ TopicError::ForeignRecord { .. } => ApiError::conflict(e.to_string()),
        TopicError::Invalid(m) => ApiError::bad_request(m),
        other => ApiError::internal(other),
    }
}

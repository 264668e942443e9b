//! The reader of one Kafka partition: a consumer with the partition assigned, no group.
//!
//! ```text
//! open(from) ──assign(topic, partition, offset = max(from, low watermark))
//! poll(max, wait) ──first record: wait up to `wait`; then whatever librdkafka has already
//!                   fetched (no waiting) until `max` ──> copies into StoredRecords
//! ```
//!
//! librdkafka fetches ahead in the background (large fetches, see `config`), so a poll
//! mostly copies from memory, and `poll_visit` lends the bytes without copying them. The consumer never commits and never resets: with
//! `auto.offset.reset=error`, an offset that retention removed under the reader is an error
//! ([`LogError::OffsetOutOfRange`]) rather than a silent jump.

use std::ffi::{c_char, c_void, CStr};
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::admin::{client_error, watermarks};
use super::common::backend;
use super::config::KafkaOptions;
use crate::api::{Header, HeadersRef, Reader, Record, RecordView, StoredRecord};
use crate::error::LogError;

/// Reads one partition of a Kafka topic in offset order.
pub(crate) struct KafkaReader {
    consumer: BaseConsumer,
    topic: String,
    partition: u32,
    position: u64,
    request_timeout: Duration,
    /// Encoded headers of the record `poll_visit` is lending (reused).
    header_buf: Vec<u8>,
}

impl KafkaReader {
    /// Opens a reader of `topic`/`partition` (which must exist) at `position`, which the
    /// caller has checked against the watermarks.
    pub fn open(
        brokers: &str,
        opts: &KafkaOptions,
        topic: &str,
        partition: u32,
        position: u64,
    ) -> Result<Self, LogError> {
        let consumer: BaseConsumer = opts.consumer(brokers).create().map_err(client_error)?;
        let mut assignment = TopicPartitionList::with_capacity(1);
        assignment
            .add_partition_offset(topic, partition as i32, Offset::Offset(position as i64))
            .map_err(|e| backend(format!("reader of {topic}/{partition}: {e}")))?;
        consumer
            .assign(&assignment)
            .map_err(|e| backend(format!("reader of {topic}/{partition}: {e}")))?;
        Ok(KafkaReader {
            consumer,
            topic: topic.to_string(),
            partition,
            position,
            request_timeout: opts.request_timeout,
            header_buf: Vec::new(),
        })
    }

    /// Turns a consumer error into `Ok(())` when librdkafka recovers from it by itself
    /// (a broker connection dropped, a leader moved), and into the error to report
    /// otherwise.
    fn consumer_error(&self, e: KafkaError) -> Result<(), LogError> {
        let (topic, partition) = (self.topic.as_str(), self.partition);
        match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::OffsetOutOfRange) => {
                let (start, end) = watermarks(
                    self.consumer.client(),
                    topic,
                    partition,
                    self.request_timeout,
                )
                .unwrap_or((0, 0));
                Err(LogError::OffsetOutOfRange {
                    topic: topic.to_string(),
                    partition,
                    offset: self.position,
                    start,
                    end,
                })
            }
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                Err(LogError::NoSuchTopic(topic.to_string()))
            }
            Some(
                code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SSL
                | RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::BadMessage
                | RDKafkaErrorCode::BadCompression
                | RDKafkaErrorCode::UnsupportedCompressionType),
            ) => Err(backend(format!(
                "reading {topic}/{partition} at offset {}: {code}",
                self.position
            ))),
            _ => Ok(()),
        }
    }
}

impl KafkaReader {
    /// Hands up to `max` new messages to `take`, in offset order, and advances past them:
    /// waits up to `wait` for the first, then takes only what librdkafka has already
    /// fetched. Returns how many were taken.
    fn drain(
        &mut self,
        max: usize,
        wait: Duration,
        take: &mut dyn FnMut(u64, &BorrowedMessage<'_>),
    ) -> Result<usize, LogError> {
        let deadline = Instant::now() + wait;
        let mut taken = 0;
        while taken < max {
            let timeout = if taken == 0 {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.consumer.poll(timeout) {
                Some(Ok(message)) => {
                    let offset = message.offset();
                    // After a reconnect librdkafka may hand back a record already returned.
                    if offset < 0 || (offset as u64) < self.position {
                        continue;
                    }
                    take(offset as u64, &message);
                    taken += 1;
                    self.position = offset as u64 + 1;
                }
                Some(Err(e)) => self.consumer_error(e)?,
                None if taken == 0 && Instant::now() < deadline => {}
                None => break,
            }
        }
        Ok(taken)
    }
}

impl Reader for KafkaReader {
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        self.drain(max, wait, &mut |offset, message| {
            out.push(StoredRecord {
                offset,
                record: record_of(message),
            })
        })?;
        Ok(out)
    }

    /// Lends each record straight from librdkafka's buffers; only the headers are copied,
    /// into one buffer reused across records (in the encoding [`HeadersRef`] reads).
    fn poll_visit(
        &mut self,
        max: usize,
        wait: Duration,
        visit: &mut dyn FnMut(&RecordView<'_>),
    ) -> Result<usize, LogError> {
        if max == 0 {
            return Ok(0);
        }
        let mut headers = std::mem::take(&mut self.header_buf);
        let visited = self.drain(max, wait, &mut |offset, message| {
            headers.clear();
            for_each_header(message, &mut |name, value| {
                headers.extend_from_slice(&(name.len() as u32).to_be_bytes());
                headers.extend_from_slice(name.as_bytes());
                headers.extend_from_slice(&(value.len() as u32).to_be_bytes());
                headers.extend_from_slice(value);
            });
            visit(&RecordView {
                offset,
                key: message.key(),
                value: message.payload(),
                headers: HeadersRef::encoded(&headers),
                timestamp_ms: timestamp_of(message),
            });
        });
        self.header_buf = headers;
        visited
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// Copies a consumed message into a [`Record`]: bytes as stored, headers in order.
fn record_of(message: &BorrowedMessage<'_>) -> Record {
    let mut headers = Vec::new();
    for_each_header(message, &mut |name, value| {
        headers.push(Header {
            name: name.to_string(),
            value: value.to_vec(),
        })
    });
    Record {
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: timestamp_of(message),
    }
}

/// The record's timestamp whatever its type (CreateTime, or LogAppendTime on a topic that
/// the broker stamps), -1 when it has none.
fn timestamp_of(message: &BorrowedMessage<'_>) -> i64 {
    message.timestamp().to_millis().unwrap_or(-1)
}

/// The name passed for a header whose name is not valid UTF-8: kchain-core's
/// `H_NAME_NOT_UTF8`, a reserved name that makes the record malformed. (This crate does not
/// depend on the core; the adversary tests check both ends agree.)
const NAME_NOT_UTF8: &str = "kchain.!name-not-utf8";

/// Calls `f` with each header of a message, in order, read through librdkafka's C API:
/// rdkafka's safe accessor panics on a header name that is not UTF-8, which any other
/// producer may write. Such a name is never converted lossily (a lossy conversion maps many
/// names to one, and headers are hashed): it is passed as [`NAME_NOT_UTF8`], which the
/// verifier reports as malformed. A null header value reads as empty.
fn for_each_header(message: &BorrowedMessage<'_>, f: &mut dyn FnMut(&str, &[u8])) {
    let mut native: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is a live message for the lifetime of `message`; librdkafka
    // returns a pointer to headers owned by that message (or an error and no pointer).
    let err = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &mut native) };
    if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || native.is_null() {
        return;
    }
    // SAFETY: `native` is valid while `message` is.
    let count = unsafe { rdsys::rd_kafka_header_cnt(native) };
    for idx in 0..count {
        let mut name: *const c_char = std::ptr::null();
        let mut value: *const c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `idx < count`; on success librdkafka points `name` at a NUL-terminated
        // string and `value` at `size` bytes (or null), both owned by the headers.
        let err = unsafe {
            rdsys::rd_kafka_header_get_all(native, idx, &mut name, &mut value, &mut size)
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            break;
        }
        // SAFETY: as above; both stay valid while `message` does, which outlives `f`'s use.
        let (name, value) = unsafe {
            let value: &[u8] = if value.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(value.cast::<u8>(), size)
            };
            (CStr::from_ptr(name).to_str(), value)
        };
        f(name.unwrap_or(NAME_NOT_UTF8), value);
    }
}

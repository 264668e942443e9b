//! The reader of one Kafka partition: a consumer with the partition assigned, no group.
//!
//! ```text
//! open(from) ──assign(topic, partition, offset = max(from, low watermark))
//! poll(max, wait) ──first record: wait up to `wait`; then whatever librdkafka has already
//!                   fetched (no waiting) until `max` ──> copies into StoredRecords
//! ```
//!
//! librdkafka fetches ahead in the background (large fetches, see `config`), so a poll
//! mostly takes messages from memory, many per call (see `fetched`), and `poll_visit`
//! lends their bytes without copying them. The consumer never commits and never resets: with
//! `auto.offset.reset=error`, an offset that retention removed under the reader is an error
//! ([`LogError::OffsetOutOfRange`]) rather than a silent jump.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::admin::{client_error, watermarks};
use super::common::backend;
use super::config::KafkaOptions;
use super::fetched::{Fetched, Held};
use crate::api::{Header, HeadersRef, Reader, Record, RecordView, StoredRecord};
use crate::error::LogError;

/// Messages taken off the consumer queue per call once a poll has its first record:
/// enough to make the per-call cost vanish, few enough to keep the holding small.
const SLICE: usize = 1024;

/// Reads one partition of a Kafka topic in offset order.
pub(crate) struct KafkaReader {
    /// Messages taken off the consumer's queue and not yet returned. Declared before the
    /// consumer, so dropped before it: the messages point into its fetch buffers.
    held: Held,
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
            held: Held::new(&consumer)?,
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
    ///
    /// The first message comes through rdkafka's event poll, which also serves the
    /// client's error events (authentication, TLS); the rest come straight off the
    /// consumer queue, up to [`SLICE`] per call of `rd_kafka_consume_batch_queue`: one lock
    /// and no clock read or allocation per message, where an event poll per message costs
    /// each of them.
    fn drain(
        &mut self,
        max: usize,
        wait: Duration,
        take: &mut dyn FnMut(u64, &Fetched<'_>),
    ) -> Result<usize, LogError> {
        if max == 0 {
            return Ok(0);
        }
        let mut taken = self.serve_held(max, take)?;
        if taken == 0 {
            let deadline = Instant::now() + wait;
            while taken == 0 {
                match self.consumer.poll(whole_ms(deadline)) {
                    Some(Ok(message)) => {
                        taken += accept(&mut self.position, &Fetched::of(&message), take);
                    }
                    Some(Err(e)) => self.consumer_error(e)?,
                    None if Instant::now() < deadline => {}
                    None => return Ok(0),
                }
            }
        }
        while taken < max {
            let want = (max - taken).min(SLICE);
            if !self.held.refill(want) {
                break;
            }
            taken += self.serve_held(max - taken, take)?;
        }
        Ok(taken)
    }

    /// Hands the held messages to `take`, up to `max`, destroying each once taken; stops
    /// at a message that carries an error the reader reports (the messages after it stay
    /// held for the next poll).
    fn serve_held(
        &mut self,
        max: usize,
        take: &mut dyn FnMut(u64, &Fetched<'_>),
    ) -> Result<usize, LogError> {
        let mut taken = 0;
        while taken < max {
            let Some(message) = self.held.next() else {
                break;
            };
            let fetched = message.view();
            taken += match fetched.error() {
                Some(e) => self.consumer_error(e).map(|()| 0),
                None => Ok(accept(&mut self.position, &fetched, take)),
            }?;
        }
        Ok(taken)
    }
}

/// The time left until `deadline`, rounded up to whole milliseconds: librdkafka waits in
/// whole milliseconds and rdkafka rounds down, so the last fraction of a millisecond of a wait
/// would be spent polling with a zero timeout, over and over.
fn whole_ms(deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    Duration::from_millis(left.as_micros().div_ceil(1000) as u64)
}

/// Hands `message` to `take` and advances `position` past it, unless librdkafka handed
/// back a record already returned (after a reconnect); 1 if taken, else 0.
fn accept(
    position: &mut u64,
    message: &Fetched<'_>,
    take: &mut dyn FnMut(u64, &Fetched<'_>),
) -> usize {
    let offset = message.offset();
    if offset < 0 || (offset as u64) < *position {
        return 0;
    }
    take(offset as u64, message);
    *position = offset as u64 + 1;
    1
}

impl Drop for KafkaReader {
    /// Closes the consumer, waiting only as long as the close takes.
    ///
    /// rdkafka's own drop of a consumer with a `group.id` (the reader has one, which
    /// librdkafka needs for `assign`) starts the close and then polls the consumer queue in
    /// rounds of 100 ms until librdkafka says it is closed; the close completes without
    /// waking that poll, so dropping every reader took a full 100 ms (the bridge's last
    /// 100 ms of every run, which it spent waiting for its reader). `rd_kafka_consumer_close`
    /// waits on the close's own reply instead and returns once it comes (well under a
    /// millisecond here: the reader never joins a group or commits). rdkafka's drop then
    /// finds the consumer closed (its second close fails with "already closed", which it only
    /// logs through the `log` crate) and destroys it. The held messages are destroyed after
    /// this, before the consumer (field order), as before.
    fn drop(&mut self) {
        // SAFETY: a live consumer handle; the call blocks until the close is done and
        // leaves the handle valid for rdkafka's drop to destroy.
        unsafe { rdkafka::bindings::rd_kafka_consumer_close(self.consumer.client().native_ptr()) };
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
            message.for_each_header(&mut |name, value| {
                headers.extend_from_slice(&(name.len() as u32).to_be_bytes());
                headers.extend_from_slice(name.as_bytes());
                headers.extend_from_slice(&(value.len() as u32).to_be_bytes());
                headers.extend_from_slice(value);
            });
            visit(&RecordView {
                offset,
                key: message.key(),
                value: message.value(),
                headers: HeadersRef::encoded(&headers),
                timestamp_ms: message.timestamp_ms(),
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
fn record_of(message: &Fetched<'_>) -> Record {
    let mut headers = Vec::new();
    message.for_each_header(&mut |name, value| {
        headers.push(Header {
            name: name.to_string(),
            value: value.to_vec(),
        })
    });
    Record {
        key: message.key().map(<[u8]>::to_vec),
        value: message.value().map(<[u8]>::to_vec),
        headers,
        timestamp_ms: message.timestamp_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait with a fraction of a millisecond left asks librdkafka for a whole one, not for
    /// none (which returned at once, and the reader polled again until the deadline).
    #[test]
    fn waits_round_up_to_whole_milliseconds() {
        let soon = Instant::now() + Duration::from_micros(400);
        assert_eq!(whole_ms(soon), Duration::from_millis(1));
        let later = Instant::now() + Duration::from_millis(5);
        assert!(
            whole_ms(later) == Duration::from_millis(5)
                || whole_ms(later) == Duration::from_millis(4)
        );
        assert_eq!(whole_ms(Instant::now()), Duration::ZERO);
    }

    /// Dropping a reader waits for its consumer's close and no longer. rdkafka's drop alone
    /// polled in rounds of 100 ms until the close was done and always waited a whole round
    /// (0.100-0.103 s in the bridge's runs); the fastest of three drops must beat that.
    #[test]
    fn a_dropped_reader_does_not_wait_a_poll_round() {
        use crate::api::{Log, Record, TopicConfig};
        use crate::kafka::{KafkaLog, KafkaOptions};

        let brokers = &kchain_testkit::Broker::shared().brokers;
        let log = KafkaLog::connect(brokers, KafkaOptions::default()).unwrap();
        let topic = kchain_testkit::unique_name("reader-drop");
        log.create_topic(&topic, &TopicConfig::default()).unwrap();
        let record = Record {
            value: Some(b"v".to_vec()),
            timestamp_ms: 1_700_000_000_000,
            ..Record::default()
        };
        log.appender(&topic, 0).unwrap().append(&[record]).unwrap();
        let fastest = (0..3)
            .map(|_| {
                let mut reader = log.reader(&topic, 0, 0).unwrap();
                let got = reader.poll(10, Duration::from_secs(30)).unwrap();
                assert_eq!(got.len(), 1);
                let t = Instant::now();
                drop(reader);
                t.elapsed()
            })
            .min()
            .unwrap();
        assert!(fastest < Duration::from_millis(90), "{fastest:?}");
    }
}

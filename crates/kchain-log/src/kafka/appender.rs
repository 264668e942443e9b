//! The appender of one Kafka partition: an idempotent producer with batches in flight.
//!
//! ```text
//! send(records) ──copy (explicit partition, CreateTime, headers)──> librdkafka queue
//!    │             (no syscall per record; librdkafka cuts requests of up to batch.size,
//!    │              acks=all)                         │
//!    │                                                ▼
//! receive() ──wait (deliveries) ◄── delivery(seq, offset | error) ◄── polling thread
//!    until every record of the oldest batch has its report, then return its offsets;
//!    for the last batch in flight, flush once only its last request is left
//! append(records) = send + receive
//! ```
//!
//! Idempotence (`enable.idempotence=true`) makes retries safe and keeps the records of a
//! partition in the order they were sent. librdkafka's idempotent producer then sends one
//! request of a partition at a time, and while that request is out and queued records have
//! outlived their linger (or `rd_kafka_flush` runs), its broker thread wakes again at once:
//! it spins until the response, taking a core from the broker and from the caller. So the
//! appender pushes the last, partial request out itself (`rd_kafka_flush`, which makes
//! linger elapse) only once the requests before it are acknowledged: when the bytes in flight
//! fit in one request. A batch followed by another in flight needs no push: the next one
//! fills its last request.
//!
//! Kafka cannot lock a partition: another producer (in another process) may write to it at
//! the same time. The appender does not hide this: it returns the offsets the broker gave,
//! which the layer above compares with the ones it expected. Within one [`KafkaLog`] a
//! partition has at most one appender at a time (see [`super::Claims`]).
//!
//! [`KafkaLog`]: super::KafkaLog

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::admin::{client_error, watermark_error, watermarks};
use super::common::{backend, lock, Claim};
use super::config::KafkaOptions;
use super::deliveries::{Deliveries, Outcome, Waited};
use crate::api::{Appender, Record};
use crate::error::LogError;

/// Bytes librdkafka counts per header beyond its name and value (an upper bound of the
/// varint lengths), for the `message.max.bytes` check done before anything is sent.
const HEADER_OVERHEAD: usize = 10;

/// Bytes a record takes in a request beyond its key, value and headers (an upper bound:
/// length, attributes, timestamp and offset deltas, key and value lengths, header count).
const RECORD_OVERHEAD: usize = 30;

/// Producers of appenders that were dropped in good order, by partition, with the sequence
/// number they reached: the next appender of the partition in the same [`KafkaLog`] reuses
/// one instead of creating a producer (a new idempotent producer costs a connection, a
/// metadata request and a producer id: tens to hundreds of milliseconds, which a writer
/// publishing a checkpoint every few seconds should not pay each time).
///
/// [`KafkaLog`]: super::KafkaLog
#[derive(Default)]
pub(crate) struct IdleProducers(Mutex<HashMap<(String, u32), Idle>>);

/// An idle producer and the sequence number its next record gets.
type Idle = (ThreadedProducer<Deliveries>, u64);

/// Idle producers kept at most (each holds connections and a polling thread).
const MAX_IDLE: usize = 32;

impl IdleProducers {
    fn take(&self, topic: &str, partition: u32) -> Option<Idle> {
        lock(&self.0).remove(&(topic.to_string(), partition))
    }

    fn put(&self, topic: &str, partition: u32, producer: ThreadedProducer<Deliveries>, seq: u64) {
        let mut idle = lock(&self.0);
        if idle.len() >= MAX_IDLE {
            // Any one: they are all equally cheap to recreate.
            if let Some(k) = idle.keys().next().cloned() {
                idle.remove(&k);
            }
        }
        idle.insert((topic.to_string(), partition), (producer, seq));
    }
}

/// Appends batches to one partition of a Kafka topic.
pub(crate) struct KafkaAppender {
    /// Always `Some` until the appender is dropped (see [`IdleProducers`]).
    producer: Option<ThreadedProducer<Deliveries>>,
    idle: Arc<IdleProducers>,
    topic: String,
    partition: u32,
    opts: KafkaOptions,
    /// Sequence number of the next record sent (the delivery opaque).
    seq: u64,
    next_offset: u64,
    /// Set when a batch failed part-way: what the partition holds is unknown here.
    failed: Option<String>,
    /// Records of each batch sent and not yet received, oldest first.
    in_flight: VecDeque<usize>,
    _claim: Claim,
}

impl KafkaAppender {
    /// Opens a producer for `topic`/`partition` (which must exist) and reads the high
    /// watermark. `claim` is this appender's hold on the partition within its `KafkaLog`.
    pub fn open(
        brokers: &str,
        opts: &KafkaOptions,
        topic: &str,
        partition: u32,
        claim: Claim,
        idle: Arc<IdleProducers>,
    ) -> Result<Self, LogError> {
        let (producer, seq) = match idle.take(topic, partition) {
            Some(reused) => reused,
            None => {
                let producer: ThreadedProducer<Deliveries> = opts
                    .producer(brokers)
                    .create_with_context(Deliveries::default())
                    .map_err(client_error)?;
                // Connects (and authenticates) now rather than in the first append.
                producer
                    .client()
                    .fetch_metadata(Some(topic), opts.request_timeout)
                    .map_err(|e| backend(format!("producer for {topic}/{partition}: {e}")))?;
                (producer, 0)
            }
        };
        producer.context().reset(seq);
        // Another process may have appended since: the high watermark, every time.
        let (_, high) = watermarks(producer.client(), topic, partition, opts.request_timeout)
            .map_err(|e| watermark_error(topic, partition, e))?;
        Ok(KafkaAppender {
            producer: Some(producer),
            idle,
            topic: topic.to_string(),
            partition,
            opts: opts.clone(),
            seq,
            next_offset: high,
            failed: None,
            in_flight: VecDeque::new(),
            _claim: claim,
        })
    }

    fn producer(&self) -> &ThreadedProducer<Deliveries> {
        self.producer
            .as_ref()
            .expect("a live appender has its producer")
    }

    fn fail(&mut self, detail: String) -> LogError {
        self.failed = Some(detail.clone());
        backend(detail)
    }

    /// Rejects, before anything is sent, a batch that librdkafka would refuse part-way.
    fn check(&self, records: &[Record]) -> Result<(), LogError> {
        let limit = self.opts.max_record_bytes();
        for record in records {
            // librdkafka sends "now" in place of 0, and -1 means "no timestamp" to Kafka:
            // either way the stored timestamp would differ from the one the chain hashed.
            if record.timestamp_ms <= 0 {
                return Err(LogError::InvalidArgument(format!(
                    "timestamp {} in a record for {}/{}: the Kafka backend stores only \
                     positive timestamps (milliseconds since 1970)",
                    record.timestamp_ms, self.topic, self.partition
                )));
            }
            if let Some(h) = record.headers.iter().find(|h| h.name.contains('\0')) {
                return Err(LogError::InvalidArgument(format!(
                    "header name {:?} contains a NUL byte, which Kafka clients cannot read back",
                    h.name
                )));
            }
            let size = record_size(record);
            if size > limit {
                return Err(LogError::RecordTooLarge { size, limit });
            }
        }
        Ok(())
    }

    /// Sends what is queued without waiting for `linger.ms`, and waits (up to `timeout`)
    /// until every record has its delivery report.
    ///
    /// `rd_kafka_flush` marks the producer as flushing for as long as it waits, which makes
    /// librdkafka treat linger as elapsed: the last, partial request then costs one round
    /// trip, not linger plus a round trip (see the module docs for when it is called).
    /// rdkafka's own `flush` cannot be used: it polls in steps of up to 100 ms that do not
    /// end when the last report arrives.
    fn send_now(&self, timeout: Duration) {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the pointer is the producer's live librdkafka handle, valid while
        // `self.producer` is; rd_kafka_flush is thread-safe. In event mode (rdkafka's) it
        // only waits for the message count to reach zero while the polling thread serves
        // the delivery reports. Its result (timed out or not) is read from the reports.
        unsafe {
            rdkafka::bindings::rd_kafka_flush(self.producer().client().native_ptr(), ms);
        }
    }

    /// Hands every record to librdkafka, waiting for queue space when it is full.
    fn send_all(&mut self, records: &[Record]) -> Result<(), LogError> {
        let deliveries = self.producer().context().clone();
        let partition = self.partition as i32;
        for (i, record) in records.iter().enumerate() {
            let seq = (self.seq + i as u64) as usize;
            let mut kafka_record: BaseRecord<'_, [u8], [u8], usize> =
                BaseRecord::with_opaque_to(&self.topic, seq)
                    .partition(partition)
                    .timestamp(record.timestamp_ms);
            kafka_record.key = record.key.as_deref();
            kafka_record.payload = record.value.as_deref();
            if !record.headers.is_empty() {
                let headers = record.headers.iter().fold(
                    OwnedHeaders::new_with_capacity(record.headers.len()),
                    |hs, h| {
                        hs.insert(KafkaHeader {
                            key: &h.name,
                            value: Some(h.value.as_slice()),
                        })
                    },
                );
                kafka_record = kafka_record.headers(headers);
            }
            // Read the clock only when the queue is full, not once per record.
            let mut deadline = None;
            loop {
                match self.producer().send(kafka_record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now()
                            < *deadline.get_or_insert_with(|| {
                                Instant::now() + self.opts.delivery_timeout
                            }) =>
                    {
                        kafka_record = back;
                        deliveries.wait_for_any(Duration::from_millis(10));
                    }
                    Err((e, _)) => {
                        let detail = format!(
                            "append to {}/{}: record {i} of {} was not accepted by the \
                             producer ({e}); the {i} before it may still be written",
                            self.topic,
                            self.partition,
                            records.len()
                        );
                        return Err(self.fail(detail));
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses to go on after a failure.
    fn check_live(&self) -> Result<(), LogError> {
        match &self.failed {
            Some(why) => Err(backend(format!(
                "appender of {}/{} stopped after an earlier failure ({why}); open a new one",
                self.topic, self.partition
            ))),
            None => Ok(()),
        }
    }

    /// Waits for the reports of the `n` records of the oldest batch in flight; for the last
    /// batch in flight, pushes its last request out once the requests before it are
    /// acknowledged (see the module docs).
    fn wait_oldest(&mut self, n: usize) -> Result<Vec<Outcome>, LogError> {
        let deliveries = self.producer().context().clone();
        // librdkafka reports every record within message.timeout.ms; the margin covers the
        // report's own trip through the polling thread.
        let patience = self.opts.delivery_timeout + Duration::from_secs(5);
        let deadline = Instant::now() + patience;
        let mut push_at = (self.in_flight.len() == 1).then(|| self.opts.max_request_bytes());
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match deliveries.wait(n, push_at, left) {
                Waited::Done(outcomes) => return Ok(outcomes),
                Waited::Below => {
                    push_at = None;
                    self.send_now(left);
                }
                Waited::TimedOut => {
                    let detail = format!(
                        "append to {}/{}: no delivery report within {patience:?}",
                        self.topic, self.partition
                    );
                    return Err(self.fail(detail));
                }
            }
        }
    }

    /// The offsets of a batch from its records' outcomes; the first failure fails the
    /// appender.
    fn offsets(&mut self, outcomes: Vec<Outcome>) -> Result<Vec<u64>, LogError> {
        let n = outcomes.len();
        let mut offsets = Vec::with_capacity(n);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(offset) if offset >= 0 => offsets.push(offset as u64),
                Ok(offset) => {
                    let detail = format!(
                        "append to {}/{}: the broker acknowledged record {i} without an \
                         offset ({offset})",
                        self.topic, self.partition
                    );
                    return Err(self.fail(detail));
                }
                Err(e) => {
                    let detail = format!(
                        "append to {}/{} failed at record {i} of {n}: {e}{}",
                        self.topic,
                        self.partition,
                        match offsets.last() {
                            Some(last) =>
                                format!(" (records before it are at offsets up to {last})"),
                            None => String::new(),
                        }
                    );
                    return Err(self.fail(detail));
                }
            }
        }
        if let Some(&last) = offsets.last() {
            self.next_offset = last + 1;
        }
        Ok(offsets)
    }
}

/// The bytes a record counts for against `message.max.bytes`.
fn record_size(record: &Record) -> usize {
    record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + record
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len() + HEADER_OVERHEAD)
            .sum::<usize>()
}

impl Appender for KafkaAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        if !self.in_flight.is_empty() {
            return Err(LogError::InvalidArgument(format!(
                "append to {}/{} while {} sent batches wait to be received",
                self.topic,
                self.partition,
                self.in_flight.len()
            )));
        }
        if records.is_empty() {
            self.check_live()?;
            return Ok(Vec::new());
        }
        self.send(records)?;
        Ok(self.receive()?.unwrap_or_default())
    }

    fn pipelines(&self) -> bool {
        true
    }

    fn send(&mut self, records: &[Record]) -> Result<(), LogError> {
        self.check_live()?;
        self.check(records)?;
        let deliveries = self.producer().context().clone();
        deliveries.expect(
            records
                .iter()
                .map(|r| (record_size(r) + RECORD_OVERHEAD) as u64),
        );
        self.in_flight.push_back(records.len());
        let sent = self.send_all(records);
        self.seq += records.len() as u64;
        sent
    }

    fn receive(&mut self) -> Result<Option<Vec<u64>>, LogError> {
        self.check_live()?;
        let Some(&n) = self.in_flight.front() else {
            return Ok(None);
        };
        let outcomes = self.wait_oldest(n)?;
        self.in_flight.pop_front();
        self.offsets(outcomes).map(Some)
    }

    /// Nothing to do: `append` returns only when the brokers have acknowledged every record
    /// (`acks=all`); how durable that is depends on the brokers' replication and flush
    /// settings, which a client cannot force.
    fn flush(&mut self) -> Result<(), LogError> {
        Ok(())
    }

    fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

impl Drop for KafkaAppender {
    /// A producer with nothing in flight and no failure goes back to the log's idle
    /// producers for the partition's next appender; any other is dropped (and flushed by
    /// rdkafka).
    fn drop(&mut self) {
        if let Some(producer) = self.producer.take() {
            if self.failed.is_none() && self.in_flight.is_empty() && producer.in_flight_count() == 0
            {
                self.idle
                    .put(&self.topic, self.partition, producer, self.seq);
            }
        }
    }
}

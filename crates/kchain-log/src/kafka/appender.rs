//! The appender of one Kafka partition: an idempotent producer driven synchronously.
//!
//! ```text
//! append(records) ──send (copy, explicit partition, CreateTime, headers)──> librdkafka queue
//!        │             (no syscall per record; librdkafka batches per partition: linger.ms,
//!        │              batch.size, up to 5 idempotent requests in flight, acks=all)
//!        │
//!        └──wait on Acks ◄── delivery(seq, offset | error) ◄── producer polling thread
//!           until every record of the batch has its report, then return the offsets
//! ```
//!
//! Each record's delivery opaque is its sequence number in this appender, so a report finds
//! its slot without a search, and a report from an abandoned batch is ignored. The caller's
//! thread sleeps on a condition variable that the polling thread signals once, when the
//! last report of the batch arrives. Idempotence (`enable.idempotence=true`) makes retries
//! safe and keeps the records of a partition in the order they were sent.
//!
//! Kafka cannot lock a partition: another producer (in another process) may write to it at
//! the same time. The appender does not hide this: it returns the offsets the broker gave,
//! which the layer above compares with the ones it expected. Within one [`KafkaLog`] a
//! partition has at most one appender at a time (see [`super::Claims`]).
//!
//! [`KafkaLog`]: super::KafkaLog

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header as KafkaHeader, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use super::admin::{client_error, watermark_error, watermarks};
use super::common::{backend, lock, Claim};
use super::config::KafkaOptions;
use crate::api::{Appender, Record};
use crate::error::LogError;

/// Bytes librdkafka counts per header beyond its name and value (an upper bound of the
/// varint lengths), for the `message.max.bytes` check done before anything is sent.
const HEADER_OVERHEAD: usize = 10;

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
            let size = record.key.as_ref().map_or(0, Vec::len)
                + record.value.as_ref().map_or(0, Vec::len)
                + record
                    .headers
                    .iter()
                    .map(|h| h.name.len() + h.value.len() + HEADER_OVERHEAD)
                    .sum::<usize>();
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
    /// librdkafka treat linger as elapsed: an append of a few records then costs one round
    /// trip, not linger plus a round trip, while a large append still goes out in full
    /// batches (it is all queued before this call). rdkafka's own `flush` cannot be used: it
    /// polls in steps of up to 100 ms that do not end when the last report arrives.
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
}

impl Appender for KafkaAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        if let Some(why) = &self.failed {
            return Err(backend(format!(
                "appender of {}/{} stopped after an earlier failure ({why}); open a new one",
                self.topic, self.partition
            )));
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.check(records)?;
        let deliveries = self.producer().context().clone();
        deliveries.expect(self.seq, records.len());
        let sent = self.send_all(records);
        self.seq += records.len() as u64;
        sent?;
        // librdkafka reports every record within message.timeout.ms; the margin covers the
        // report's own trip through the polling thread.
        let patience = self.opts.delivery_timeout + Duration::from_secs(5);
        let deadline = Instant::now() + patience;
        self.send_now(patience);
        let outcomes = match deliveries.wait(deadline.saturating_duration_since(Instant::now())) {
            Some(outcomes) => outcomes,
            None => {
                let detail = format!(
                    "append to {}/{}: no delivery report within {patience:?}",
                    self.topic, self.partition
                );
                return Err(self.fail(detail));
            }
        };
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
            if self.failed.is_none() && producer.in_flight_count() == 0 {
                self.idle
                    .put(&self.topic, self.partition, producer, self.seq);
            }
        }
    }
}

/// The outcome of one record: its offset, or why it was not written.
type Outcome = Result<i64, String>;

/// Delivery reports of the batch being appended, filled in by the polling thread.
#[derive(Default)]
struct Acks {
    /// Sequence number of the first record of the batch.
    base: u64,
    slots: Vec<Option<Outcome>>,
    filled: usize,
    /// Bumped on every report while `append` waits for queue space.
    reports: u64,
    space_wanted: bool,
}

/// The producer context: collects delivery reports into [`Acks`].
#[derive(Default, Clone)]
pub(crate) struct Deliveries(Arc<(Mutex<Acks>, Condvar)>);

impl Deliveries {
    /// Starts a batch of `n` records whose first sequence number is `base`.
    fn expect(&self, base: u64, n: usize) {
        let mut acks = lock(&self.0 .0);
        acks.base = base;
        acks.slots.clear();
        acks.slots.resize(n, None);
        acks.filled = 0;
    }

    /// Waits until every record of the batch has its report; `None` after `patience`.
    fn wait(&self, patience: Duration) -> Option<Vec<Outcome>> {
        let (acks, done) = &*self.0;
        let guard = lock(acks);
        let (mut guard, timeout) = done
            .wait_timeout_while(guard, patience, |a| a.filled < a.slots.len())
            .unwrap_or_else(|e| e.into_inner());
        if timeout.timed_out() && guard.filled < guard.slots.len() {
            return None;
        }
        Some(guard.slots.drain(..).map(Option::unwrap).collect())
    }

    /// Waits up to `timeout` for any delivery report (which frees queue space).
    fn wait_for_any(&self, timeout: Duration) {
        let (acks, done) = &*self.0;
        let mut guard = lock(acks);
        guard.space_wanted = true;
        let seen = guard.reports;
        let (mut guard, _) = done
            .wait_timeout_while(guard, timeout, |a| a.reports == seen)
            .unwrap_or_else(|e| e.into_inner());
        guard.space_wanted = false;
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((e, _)) => Err(e.to_string()),
        };
        let (acks, done) = &*self.0;
        let mut acks = lock(acks);
        let Some(i) = (seq as u64)
            .checked_sub(acks.base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Some(slot) = acks.slots.get_mut(i) else {
            return;
        };
        if slot.is_none() {
            *slot = Some(outcome);
            acks.filled += 1;
        }
        acks.reports += 1;
        // One wake-up per batch, not per record.
        if acks.filled == acks.slots.len() || acks.space_wanted {
            done.notify_all();
        }
    }
}

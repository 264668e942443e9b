//! The appender of one Kafka partition: an idempotent producer with batches in flight.
//!
//! ```text
//! send(records) ──► feeder thread ──one request at a time (`feeder`)──► librdkafka ──► broker
//!                                                                           │ acks=all
//! receive() ──wait (`deliveries`) ◄── delivery(seq, offset | error) ◄── event thread (`poller`)
//!    until every record of the oldest batch has its report, then return its offsets
//! append(records) = the same, fed from the caller's thread, then wait
//! ```
//!
//! Idempotence (`enable.idempotence=true`) makes retries safe and keeps the records of a
//! partition in the order they were sent; `feeder` says why records go to librdkafka one
//! produce request at a time.
//!
//! Kafka cannot lock a partition: another producer (in another process) may write to it at
//! the same time. The appender does not hide this: it returns the offsets the broker gave,
//! which the layer above compares with the ones it expected. Within one [`KafkaLog`] a
//! partition has at most one appender at a time (see [`super::Claims`]).
//!
//! [`KafkaLog`]: super::KafkaLog

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::producer::Producer;

use super::admin::{client_error, watermark_error, watermarks};
use super::common::{backend, lock, Claim};
use super::config::KafkaOptions;
use super::deliveries::{Deliveries, Outcome};
use super::feeder::{record_size, Feeder, Target};
use super::poller::KafkaProducer;
use crate::api::{Appender, Record};
use crate::error::LogError;

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
type Idle = (KafkaProducer, u64);

/// Idle producers kept at most (each holds connections and an event thread).
const MAX_IDLE: usize = 32;

impl IdleProducers {
    fn take(&self, topic: &str, partition: u32) -> Option<Idle> {
        lock(&self.0).remove(&(topic.to_string(), partition))
    }

    /// Drops the idle producers of `topic`: their sequence numbers belong to its records.
    pub(crate) fn forget(&self, topic: &str) {
        lock(&self.0).retain(|(t, _), _| t != topic);
    }

    fn put(&self, topic: &str, partition: u32, producer: KafkaProducer, seq: u64) {
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
    /// Where records go; `Some` until the appender is dropped, when its producer goes back
    /// to [`IdleProducers`].
    target: Option<Target>,
    /// Started by the first [`Appender::send`].
    feeder: Option<Feeder>,
    idle: Arc<IdleProducers>,
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
        let metadata = |producer: &KafkaProducer| {
            producer
                .base()
                .client()
                .fetch_metadata(Some(topic), opts.request_timeout)
                .map(drop)
                .map_err(|e| backend(format!("producer for {topic}/{partition}: {e}")))
        };
        let (producer, seq, fresh) = match idle.take(topic, partition) {
            Some((producer, seq)) => (producer, seq, false),
            None => {
                let producer = KafkaProducer::start(
                    opts.producer(brokers)
                        .create_with_context(Deliveries::default())
                        .map_err(client_error)?,
                );
                // Connects (and authenticates) now rather than in the first append.
                metadata(&producer)?;
                (producer, 0, true)
            }
        };
        producer.context().reset(seq);
        // Another process may have appended since: the high watermark, every time.
        let (_, high) = watermarks(
            producer.base().client(),
            topic,
            partition,
            opts.request_timeout,
        )
        .map_err(|e| watermark_error(topic, partition, e))?;
        if fresh {
            // An idempotent producer cannot send before it has its producer id, which
            // librdkafka asks for when a metadata answer comes from a connected broker, and
            // else on a timer 500 ms after the producer was created. The first answer above
            // comes over the bootstrap connection, which librdkafka closes as it learns the
            // cluster's brokers: unless another answer happened to come once the partition
            // leader was connected, it found no broker to ask and waited for the timer, and
            // the first append after `open` stalled for what was left of the 500 ms (about
            // half of the opens against tansu; strace: InitProducerId sent 500 ms after the
            // producer's first request, its first Produce 5 ms after that). The watermark
            // query has connected the leader; a second metadata answer, from it, gets the id
            // asked for at once. Which appenders of a `kchain bench` run waited decided its
            // Kafka figures (docs/kafka.md, "The producer id").
            metadata(&producer)?;
        }
        Ok(KafkaAppender {
            target: Some(Target {
                producer: Arc::new(producer),
                topic: topic.to_string(),
                partition,
                request_bytes: opts.max_request_bytes(),
                // librdkafka reports every record within message.timeout.ms; the margin
                // covers the report's own trip through the event thread.
                patience: opts.delivery_timeout + Duration::from_secs(5),
            }),
            feeder: None,
            idle,
            opts: opts.clone(),
            seq,
            next_offset: high,
            failed: None,
            in_flight: VecDeque::new(),
            _claim: claim,
        })
    }

    fn target(&self) -> &Target {
        self.target
            .as_ref()
            .expect("a live appender has its target")
    }

    fn deliveries(&self) -> &Deliveries {
        self.target().producer.context()
    }

    fn fail(&mut self, detail: String) -> LogError {
        self.failed = Some(detail.clone());
        backend(detail)
    }

    /// Rejects, before anything is sent, a batch that librdkafka would refuse part-way, and
    /// refuses to go on after a failure.
    fn check(&self, records: &[Record]) -> Result<(), LogError> {
        let (topic, partition) = (&self.target().topic, self.target().partition);
        if let Some(why) = &self.failed {
            return Err(backend(format!(
                "appender of {topic}/{partition} stopped after an earlier failure ({why}); \
                 open a new one"
            )));
        }
        let limit = self.opts.max_record_bytes();
        for record in records {
            // librdkafka sends "now" in place of 0, and -1 means "no timestamp" to Kafka:
            // either way the stored timestamp would differ from the one the chain hashed.
            if record.timestamp_ms <= 0 {
                return Err(LogError::InvalidArgument(format!(
                    "timestamp {} in a record for {topic}/{partition}: the Kafka backend \
                     stores only positive timestamps (milliseconds since 1970)",
                    record.timestamp_ms
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

    /// Numbers a batch of `n` records and expects their reports.
    fn number(&mut self, n: usize) -> u64 {
        let first = self.seq;
        self.deliveries().expect(n);
        self.in_flight.push_back(n);
        self.seq += n as u64;
        first
    }

    /// The offsets of the oldest batch in flight, once every record of it has its report;
    /// the first failure fails the appender.
    fn wait_oldest(&mut self) -> Result<Vec<u64>, LogError> {
        let (topic, partition) = (self.target().topic.clone(), self.target().partition);
        let n = self.in_flight.pop_front().expect("a batch in flight");
        let patience = self.target().patience;
        let Some(outcomes) = self.deliveries().wait(n, patience) else {
            let detail =
                format!("append to {topic}/{partition}: no delivery report within {patience:?}");
            return Err(self.fail(detail));
        };
        self.offsets(outcomes)
    }

    /// The offsets of a batch from its records' outcomes.
    fn offsets(&mut self, outcomes: Vec<Outcome>) -> Result<Vec<u64>, LogError> {
        let (topic, partition) = (&self.target().topic, self.target().partition);
        let n = outcomes.len();
        let mut offsets = Vec::with_capacity(n);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let detail = match outcome {
                Ok(offset) if offset >= 0 => {
                    offsets.push(offset as u64);
                    continue;
                }
                Ok(offset) => format!(
                    "append to {topic}/{partition}: the broker acknowledged record {i} \
                     without an offset ({offset})"
                ),
                Err(e) => format!(
                    "append to {topic}/{partition} failed at record {i} of {n}: {e}{}",
                    match offsets.last() {
                        Some(last) => format!(" (records before it are at offsets up to {last})"),
                        None => String::new(),
                    }
                ),
            };
            return Err(self.fail(detail));
        }
        if let Some(&last) = offsets.last() {
            self.next_offset = last + 1;
        }
        Ok(offsets)
    }
}

impl Appender for KafkaAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        if !self.in_flight.is_empty() {
            return Err(LogError::InvalidArgument(format!(
                "append to {}/{} while {} sent batches wait to be received",
                self.target().topic,
                self.target().partition,
                self.in_flight.len()
            )));
        }
        self.check(records)?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.number(records.len());
        if let Err(why) = self.target().feed((first..).zip(records)) {
            self.deliveries().fail_from(first, &why);
        }
        self.wait_oldest()
    }

    fn pipelines(&self) -> bool {
        true
    }

    fn send(&mut self, records: Vec<Record>) -> Result<(), LogError> {
        self.check(&records)?;
        if records.is_empty() {
            return Ok(());
        }
        let first = self.number(records.len());
        let target = self
            .target
            .as_ref()
            .expect("a live appender has its target");
        self.feeder
            .get_or_insert_with(|| Feeder::start(target.clone()))
            .send(first, records);
        Ok(())
    }

    fn receive(&mut self) -> Result<Option<Vec<u64>>, LogError> {
        self.check(&[])?;
        if self.in_flight.is_empty() {
            return Ok(None);
        }
        self.wait_oldest().map(Some)
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
        // Stops and joins the feeder thread, which holds the producer too.
        self.feeder = None;
        let Some(target) = self.target.take() else {
            return;
        };
        if let Ok(producer) = Arc::try_unwrap(target.producer) {
            if self.failed.is_none() && self.in_flight.is_empty() && producer.in_flight_count() == 0
            {
                self.idle
                    .put(&target.topic, target.partition, producer, self.seq);
            }
        }
    }
}

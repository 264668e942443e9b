//! Handing an appender's records to librdkafka one produce request at a time.
//!
//! ```text
//!  records ──► chunk of at most one request's bytes ──► librdkafka queue ──► rd_kafka_flush
//!                 ▲                                       (one request,        │ returns once
//!                 └────────────── next chunk ◄────────────  nothing behind it)  │ delivered
//!
//!  send (batches in flight): records ──► Feeder queue ──► feeder thread does the above
//!  append (one batch, waiting): the caller's thread does the above
//! ```
//!
//! Why not queue a whole batch at once: librdkafka's idempotent producer sends one request of
//! a partition at a time, and while it is out and queued records wait behind it (their
//! linger over, or `rd_kafka_flush` running), its broker thread wakes again at once, over and
//! over: it spins until the response, taking a core from the broker and from the caller
//! (60-75% of kchain's samples in `kchain bench bridge` on Kafka). Queued one request at a
//! time and pushed out with `rd_kafka_flush`, nothing waits behind a request and the thread
//! sleeps until the response.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};

use super::common::lock;
use super::poller::KafkaProducer;
use crate::api::Record;

/// Bytes librdkafka counts per header beyond its name and value (an upper bound of the
/// varint lengths).
pub(crate) const HEADER_OVERHEAD: usize = 10;

/// Bytes a record takes in a request beyond its key, value and headers (an upper bound:
/// length, attributes, timestamp and offset deltas, key and value lengths, header count).
const RECORD_OVERHEAD: usize = 40;

/// Bytes of a request's record batch beyond its records.
const BATCH_OVERHEAD: u64 = 100;

/// The bytes a record counts for against `message.max.bytes`.
pub(crate) fn record_size(record: &Record) -> usize {
    record.key.as_ref().map_or(0, Vec::len)
        + record.value.as_ref().map_or(0, Vec::len)
        + record
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.len() + HEADER_OVERHEAD)
            .sum::<usize>()
}

/// The bytes a record takes in a produce request, at most.
pub(crate) fn request_size(record: &Record) -> u64 {
    (record_size(record) + RECORD_OVERHEAD) as u64
}

/// Where records go, and how much one request holds.
#[derive(Clone)]
pub(crate) struct Target {
    pub producer: Arc<KafkaProducer>,
    pub topic: String,
    pub partition: u32,
    /// The most bytes of records one request carries (`batch.size`, `message.max.bytes`).
    pub request_bytes: u64,
    /// How long a request may take to be delivered.
    pub patience: Duration,
}

impl Target {
    /// Hands `records` (each with its sequence number, the delivery opaque) to librdkafka one
    /// request's worth at a time, each pushed out and delivered before the next is queued.
    /// Fails with the reason when librdkafka refuses a record: the records before it may be
    /// written, none after it is sent.
    pub(crate) fn feed<'r>(
        &self,
        records: impl Iterator<Item = (u64, &'r Record)>,
    ) -> Result<(), String> {
        let budget = self.request_bytes.saturating_sub(BATCH_OVERHEAD);
        let mut bytes = 0u64;
        for (seq, record) in records {
            let size = request_size(record);
            if bytes > 0 && bytes + size > budget {
                self.push()?;
                bytes = 0;
            }
            bytes += size;
            self.queue(seq, record)?;
        }
        if bytes > 0 {
            self.push()?;
        }
        Ok(())
    }

    /// Sends what is queued without waiting for `linger.ms`, and waits (up to the patience)
    /// until every record has its delivery report.
    ///
    /// `rd_kafka_flush` marks the producer as flushing for as long as it waits, which makes
    /// librdkafka treat linger as elapsed. rdkafka's own `flush` cannot be used: it polls in
    /// steps of up to 100 ms that do not end when the last report arrives.
    ///
    /// Fails once any record has failed: nothing after it is handed over, so the partition
    /// never holds a later record of this appender beyond a gap (the same guarantee as
    /// `enable.gapless.guarantee` gives within librdkafka's queue, see `config`).
    fn push(&self) -> Result<(), String> {
        let ms = self.patience.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the pointer is the producer's live librdkafka handle, valid while
        // `self.producer` is; rd_kafka_flush is thread-safe. In event mode (rdkafka's) it
        // only waits for the message count to reach zero while the event thread (`poller`)
        // serves the delivery reports. Its result (timed out or not) is read from the
        // reports.
        unsafe {
            rdkafka::bindings::rd_kafka_flush(self.producer.base().client().native_ptr(), ms);
        }
        match self.producer.context().any_failed() {
            true => Err("not sent: an earlier record of this appender failed".into()),
            false => Ok(()),
        }
    }

    /// Hands one record to librdkafka, waiting for queue space when it is full.
    fn queue(&self, seq: u64, record: &Record) -> Result<(), String> {
        let mut kafka_record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, seq as usize)
                .partition(self.partition as i32)
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
            match self.producer.base().send(kafka_record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if Instant::now()
                        < *deadline.get_or_insert_with(|| Instant::now() + self.patience) =>
                {
                    kafka_record = back;
                    self.producer
                        .context()
                        .wait_for_any(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("not accepted by the producer ({e})")),
            }
        }
    }
}

/// Records sent and not yet handed to librdkafka, for the feeder thread.
#[derive(Default)]
struct Queue {
    records: VecDeque<(u64, Record)>,
    stop: bool,
}

/// The feeder thread of an appender with batches in flight: it feeds what [`Feeder::send`]
/// queues, in order, as [`Target::feed`] does.
pub(crate) struct Feeder {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    /// Starts the thread feeding `target`.
    pub(crate) fn start(target: Target) -> Feeder {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let shared = queue.clone();
        let thread = std::thread::Builder::new()
            .name("kchain-feeder".into())
            .spawn(move || run(&target, &shared))
            .expect("spawn the Kafka feeder thread");
        Feeder {
            queue,
            thread: Some(thread),
        }
    }

    /// Queues `records`, numbered from `seq`, behind those queued before.
    pub(crate) fn send(&self, seq: u64, records: Vec<Record>) {
        let (queue, wake) = &*self.queue;
        let mut q = lock(queue);
        q.records.extend((seq..).zip(records));
        wake.notify_one();
    }
}

impl Drop for Feeder {
    /// Stops the thread after the chunk it is feeding; what is still queued is not sent.
    fn drop(&mut self) {
        lock(&self.queue.0).stop = true;
        self.queue.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The feeder thread: a chunk of at most one request at a time, until stopped. A record
/// librdkafka refuses fails its delivery and every one queued after it, and stops the feed.
fn run(target: &Target, queue: &(Mutex<Queue>, Condvar)) {
    let budget = target.request_bytes.saturating_sub(BATCH_OVERHEAD);
    loop {
        let chunk: Vec<(u64, Record)> = {
            let mut q = lock(&queue.0);
            while q.records.is_empty() && !q.stop {
                q = queue.1.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.stop {
                return;
            }
            let mut bytes = 0u64;
            let mut take = 0;
            for (_, r) in &q.records {
                let size = request_size(r);
                if take > 0 && bytes + size > budget {
                    break;
                }
                bytes += size;
                take += 1;
            }
            q.records.drain(..take).collect()
        };
        if let Err(why) = target.feed(chunk.iter().map(|(seq, r)| (*seq, r))) {
            let first = chunk.first().map_or(0, |(seq, _)| *seq);
            target.producer.context().fail_from(first, &why);
            let mut q = lock(&queue.0);
            q.records.clear();
            q.stop = true;
            return;
        }
    }
}

//! Handing an appender's records to librdkafka one produce request at a time.
//!
//! ```text
//!  records ──► chunk of at most one request's bytes ──► librdkafka queue ──► rd_kafka_flush
//!                 ▲                                       (one request,        │ returns once
//!                 └────────────── next chunk ◄────────────  nothing behind it)  │ delivered
//!
//!  send (batches in flight): records ──► Feeder queue ──► feeder thread does the above
//!                                                  ▲  │ chunk k+1 (headers), chunk k (free)
//!                                                  │  ▼
//!                                  prepared ◄── its helper thread: librdkafka's header lists
//!                                               of the next chunk, the fed chunk freed
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
//!
//! So every step is in one chain: queue a chunk, push it, its delivery, queue the next. The
//! feeder thread's part of it is what it does between two pushes, and with batches in
//! flight it does only what must happen there: it hands each record to librdkafka. Building
//! librdkafka's header list of each record (a third of that thread's time, in allocations)
//! and freeing the chunk fed (a fifth: its buffers were allocated on the writer's threads)
//! go to a helper thread, which builds the next chunk's header lists while this chunk's
//! request is out (docs/benchmarks.md, eighth pass).

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, Sender};
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
        self.feed_with(records.map(|(seq, record)| (seq, record, kafka_headers(record))))
    }

    /// [`Target::feed`] of records whose header lists are built already.
    fn feed_with<'r>(
        &self,
        records: impl Iterator<Item = (u64, &'r Record, Option<OwnedHeaders>)>,
    ) -> Result<(), String> {
        let budget = self.request_bytes.saturating_sub(BATCH_OVERHEAD);
        let mut bytes = 0u64;
        for (seq, record, headers) in records {
            let size = request_size(record);
            if bytes > 0 && bytes + size > budget {
                self.push()?;
                bytes = 0;
            }
            bytes += size;
            self.queue(seq, record, headers)?;
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

    /// Hands one record, with its header list, to librdkafka, waiting for queue space when
    /// it is full.
    fn queue(
        &self,
        seq: u64,
        record: &Record,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), String> {
        let mut kafka_record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(&self.topic, seq as usize)
                .partition(self.partition as i32)
                .timestamp(record.timestamp_ms);
        kafka_record.key = record.key.as_deref();
        kafka_record.payload = record.value.as_deref();
        if let Some(headers) = headers {
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

/// `record`'s headers as the list librdkafka takes (`None` when it has none).
fn kafka_headers(record: &Record) -> Option<OwnedHeaders> {
    if record.headers.is_empty() {
        return None;
    }
    Some(record.headers.iter().fold(
        OwnedHeaders::new_with_capacity(record.headers.len()),
        |hs, h| {
            hs.insert(KafkaHeader {
                key: &h.name,
                value: Some(h.value.as_slice()),
            })
        },
    ))
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

/// A chunk of records taken from the queue, with their sequence numbers.
type Chunk = Vec<(u64, Record)>;

/// Work for the feeder's helper thread.
enum Job {
    /// Build the header lists of a chunk, and send them back with it.
    Prepare(Chunk),
    /// Free a chunk librdkafka holds copies of.
    Free(Chunk),
}

/// A chunk with the header list of each record.
type Prepared = (Chunk, Vec<Option<OwnedHeaders>>);

/// The helper thread's loop: jobs in order, until the feeder drops its sender.
fn help(jobs: Receiver<Job>, prepared: Sender<Prepared>) {
    for job in jobs {
        match job {
            Job::Prepare(chunk) => {
                let headers = chunk.iter().map(|(_, r)| kafka_headers(r)).collect();
                if prepared.send((chunk, headers)).is_err() {
                    return;
                }
            }
            Job::Free(chunk) => drop(chunk),
        }
    }
}

/// What taking a chunk from the queue found.
enum Take {
    Chunk(Chunk),
    Empty,
    Stop,
}

/// Takes at most one request's worth of records (`budget` bytes) from the queue; waits for
/// records, or for the stop, when `wait`.
fn take(queue: &(Mutex<Queue>, Condvar), budget: u64, wait: bool) -> Take {
    let mut q = lock(&queue.0);
    while wait && q.records.is_empty() && !q.stop {
        q = queue.1.wait(q).unwrap_or_else(|e| e.into_inner());
    }
    if q.stop {
        return Take::Stop;
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
    match take {
        0 => Take::Empty,
        _ => Take::Chunk(q.records.drain(..take).collect()),
    }
}

/// The feeder thread: a chunk of at most one request at a time, until stopped. A record
/// librdkafka refuses fails its delivery and every one queued after it, and stops the feed.
///
/// The helper thread builds the header lists of the chunk after the one being fed, when the
/// queue holds it already, and frees each chunk fed.
fn run(target: &Target, queue: &(Mutex<Queue>, Condvar)) {
    let budget = target.request_bytes.saturating_sub(BATCH_OVERHEAD);
    let (jobs, job_rx) = channel::<Job>();
    let (prepared_tx, prepared) = channel::<Prepared>();
    let helper = std::thread::Builder::new()
        .name("kchain-feed-help".into())
        .spawn(move || help(job_rx, prepared_tx))
        .expect("spawn the Kafka feeder's helper thread");
    // Whether the helper holds (or has sent back) the next chunk.
    let mut ahead = false;
    loop {
        if ahead && lock(&queue.0).stop {
            // The chunk with the helper was taken, not fed: it is dropped with the queue.
            break;
        }
        if !ahead {
            match take(queue, budget, true) {
                Take::Chunk(chunk) => send_job(&jobs, Job::Prepare(chunk)),
                Take::Empty | Take::Stop => break,
            }
        }
        let Ok((chunk, headers)) = prepared.recv() else {
            break;
        };
        // The next chunk's header lists are built while this one's request is out.
        let stop = match take(queue, budget, false) {
            Take::Chunk(next) => {
                send_job(&jobs, Job::Prepare(next));
                ahead = true;
                false
            }
            Take::Empty => {
                ahead = false;
                false
            }
            Take::Stop => true,
        };
        let records = chunk.iter().zip(headers).map(|((seq, r), h)| (*seq, r, h));
        if let Err(why) = target.feed_with(records) {
            let first = chunk.first().map_or(0, |(seq, _)| *seq);
            target.producer.context().fail_from(first, &why);
            let mut q = lock(&queue.0);
            q.records.clear();
            q.stop = true;
            break;
        }
        send_job(&jobs, Job::Free(chunk));
        if stop {
            break;
        }
    }
    drop(jobs);
    let _ = helper.join();
}

/// Hands `job` to the helper thread. The helper ends only once `jobs` is dropped, so the
/// send cannot fail; if it did, the job's chunk would be freed here.
fn send_job(jobs: &Sender<Job>, job: Job) {
    let _ = jobs.send(job);
}

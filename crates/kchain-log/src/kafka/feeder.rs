//! Handing an appender's records to librdkafka so that the next produce request is queued,
//! ready, while one is in flight, and goes out as soon as that one is answered.
//!
//! ```text
//!  records ──► librdkafka queue ──────────────────────────────► broker
//!   (while      [unsent: key+value bytes ≥ batch.size] [request in flight]
//!    there is    ▲ ready: librdkafka's broker thread sends    │ answered: the next
//!    room)       │ one request's worth as soon as none is     │ ready request goes
//!                │ in flight, by itself                       │ out at once
//!  the tail (unsent, not ready, nothing in flight) ──► rd_kafka_flush: sent, waited for
//!
//!  send (batches in flight): records ──► Feeder queue ──► feeder thread does the above
//!  append (one batch, waiting): the caller's thread does the above
//! ```
//!
//! librdkafka's idempotent producer (2.12) sends one request of a partition at a time: it
//! allows five in flight, but counts the *messages* in flight against that limit
//! (`rd_kafka_toppar_producer_serve`). What it can do is send the next request the moment
//! the previous one is answered, on its own broker thread, if that request is *ready* then:
//! its records' linger elapsed, `rd_kafka_flush` running, or the key and value bytes waiting
//! reaching `batch.size`. The first two cannot be used while a request is out: ready records
//! waiting behind a request with their linger over (or a flush running) make the broker
//! thread wake again at once, over and over, spinning until the answer (60-75% of kchain's
//! samples in `kchain bench bridge` on Kafka, before records were fed one request at a
//! time). A batch ready by size does not: the thread then sleeps until the answer or the
//! first record's linger. So the feeder keeps enough waiting behind the request in flight
//! that the next one is ready by size (a model of librdkafka's queue, [`Pipe`], says how
//! much is waiting), with `linger.ms` long enough never to elapse meanwhile; only a tail that
//! cannot reach `batch.size` (the end of what there is to send) is pushed out with
//! `rd_kafka_flush`, once no request is in flight.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Requests' worth of records (by [`request_size`]) that may wait unsent behind the request
/// in flight, at most. The feeder hands records over until their key and value bytes reach
/// twice `batch.size`, so that what is left once librdkafka has taken the next request is
/// still ready; this bound holds when key and value are at least a quarter of a record's
/// bytes (chained records: about three fifths, their `kchain.*` headers the rest). Records
/// with less wait for a push ([`Pipe::advance`]), as all did before.
const UNSENT_REQUESTS: u64 = 8;

/// How long the feeder waits for the answer to a request it believes in flight before it
/// pushes what is queued anyway: its model of librdkafka's queue ([`Pipe`]) may be wrong
/// (a request answered in two report events, another `batch.size` given), and then records
/// would wait for their linger.
const ANSWER_PATIENCE: Duration = Duration::from_millis(200);

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

/// The bytes of a record that librdkafka compares with `batch.size` to find a request
/// ready: its key and value (not its headers).
fn payload_size(record: &Record) -> u64 {
    (record.key.as_ref().map_or(0, Vec::len) + record.value.as_ref().map_or(0, Vec::len)) as u64
}

/// Where records go, and how much one request holds.
#[derive(Clone)]
pub(crate) struct Target {
    pub producer: Arc<KafkaProducer>,
    pub topic: String,
    pub partition: u32,
    /// The most bytes of records one request carries (`batch.size`, `message.max.bytes`).
    pub request_bytes: u64,
    /// librdkafka's `batch.size`: once the key and value bytes of the records waiting to be
    /// sent reach it, librdkafka sends the next request by itself when none is in flight.
    pub ready_bytes: u64,
    /// How long a request may take to be delivered.
    pub patience: Duration,
    /// How many times records were pushed out with `rd_kafka_flush` (shared by clones).
    pub pushes: Arc<AtomicU64>,
}

impl Target {
    /// Hands `records` (each with its sequence number, the delivery opaque) to librdkafka as
    /// [`Pipe`] says, and returns once every one of them has its delivery report. Fails with
    /// the reason when librdkafka refuses a record, or an earlier record failed: the records
    /// before it may be written, none after it is handed over.
    pub(crate) fn feed<'r>(
        &self,
        records: impl Iterator<Item = (u64, &'r Record)>,
    ) -> Result<(), String> {
        let mut pipe = Pipe::new(self);
        for (seq, record) in records {
            while !pipe.has_room() {
                pipe.advance()?;
            }
            pipe.hand(seq, record)?;
        }
        while !pipe.is_idle() {
            pipe.advance()?;
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
        self.pushes.fetch_add(1, Ordering::Relaxed);
        let ms = self.patience.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the pointer is the producer's live librdkafka handle, valid while
        // `self.producer` is; rd_kafka_flush is thread-safe. In event mode (rdkafka's) it
        // only waits for the message count to reach zero while the event thread (`poller`)
        // serves the delivery reports, and counts a message out only after its report.
        let left = unsafe {
            rdkafka::bindings::rd_kafka_flush(self.producer.base().client().native_ptr(), ms)
        };
        self.check()?;
        match left {
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => Ok(()),
            _ => Err(format!(
                "not delivered within {:?}: records left in the producer",
                self.patience
            )),
        }
    }

    /// Fails once any record of the appender has failed (see [`Target::push`]).
    fn check(&self) -> Result<(), String> {
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
                    let deliveries = self.producer.context();
                    deliveries.wait_for_reports(deliveries.reports(), Duration::from_millis(10));
                }
                Err((e, _)) => return Err(format!("not accepted by the producer ({e})")),
            }
        }
    }
}

/// The records of one feed handed to librdkafka and not yet reported, as librdkafka's
/// queue holds them: the first `in_flight` in the request it has sent, the others unsent.
///
/// A model, kept from what the feeder knows: the records it hands over, the number of
/// delivery reports, and librdkafka's rule (one request at a time; the unsent records go
/// out, one request's worth, once none is in flight and their key and value bytes reach
/// `batch.size`). It decides only when the feeder waits and when it pushes; a wrong guess
/// costs time (a push while a request is out, or [`ANSWER_PATIENCE`]), never a record:
/// every record is reported, and reports are what the appender acknowledges.
struct Pipe<'t> {
    target: &'t Target,
    /// Sequence number, request bytes and key and value bytes of each record handed over
    /// and not reported, oldest first (librdkafka reports a partition's records in order).
    handed: VecDeque<(u64, u64, u64)>,
    /// How many of `handed` are in the request in flight (0: none is).
    in_flight: usize,
    /// Request bytes and key and value bytes of the unsent ones, `handed[in_flight..]`.
    unsent_bytes: u64,
    unsent_payload: u64,
    /// The producer's count of delivery reports when the model last looked.
    reports: u64,
}

impl<'t> Pipe<'t> {
    fn new(target: &'t Target) -> Self {
        Pipe {
            target,
            handed: VecDeque::new(),
            in_flight: 0,
            unsent_bytes: 0,
            unsent_payload: 0,
            reports: target.producer.context().reports(),
        }
    }

    /// Whether every record handed over has its report.
    fn is_idle(&self) -> bool {
        self.handed.is_empty()
    }

    /// Whether another record may be handed over now: the unsent ones are less than twice
    /// ready by size, and fewer than [`UNSENT_REQUESTS`] requests' worth.
    fn has_room(&self) -> bool {
        room(
            self.unsent_bytes,
            self.unsent_payload,
            self.target.ready_bytes,
            self.target.request_bytes,
        )
    }

    /// The sequence number of the oldest record handed over and not reported.
    fn oldest(&self) -> Option<u64> {
        self.handed.front().map(|&(seq, _, _)| seq)
    }

    /// Hands one record to librdkafka, behind the others.
    fn hand(&mut self, seq: u64, record: &Record) -> Result<(), String> {
        self.target.queue(seq, record)?;
        let (bytes, payload) = (request_size(record), payload_size(record));
        self.handed.push_back((seq, bytes, payload));
        self.unsent_bytes += bytes;
        self.unsent_payload += payload;
        self.sent_if_ready();
        Ok(())
    }

    /// librdkafka's step: with no request in flight and the unsent records ready by size,
    /// it sends one request's worth of them (cut as it cuts: by bytes, the first record
    /// always).
    fn sent_if_ready(&mut self) {
        if self.in_flight > 0 || self.unsent_payload < self.target.ready_bytes {
            return;
        }
        let budget = self.target.request_bytes.saturating_sub(BATCH_OVERHEAD);
        let mut bytes = 0;
        for &(_, size, payload) in &self.handed {
            if self.in_flight > 0 && bytes + size > budget {
                break;
            }
            bytes += size;
            self.in_flight += 1;
            self.unsent_bytes -= size;
            self.unsent_payload -= payload;
        }
    }

    /// Takes the reports that came in since the model last looked: the request in flight
    /// (and any record beyond it) is done, and librdkafka sends the next if it is ready.
    fn reported(&mut self, reports: u64) {
        let n = reports.saturating_sub(self.reports);
        self.reports = reports;
        for _ in 0..n {
            let Some((_, size, payload)) = self.handed.pop_front() else {
                break;
            };
            if self.in_flight > 0 {
                self.in_flight -= 1;
            } else {
                self.unsent_bytes -= size;
                self.unsent_payload -= payload;
            }
        }
        self.sent_if_ready();
    }

    /// Moves the records handed over along: waits for the answer to the request in flight,
    /// or, when none is (the unsent records are not ready by size, and more cannot come
    /// now), pushes them out and waits until all are delivered. Fails as [`Target::push`].
    fn advance(&mut self) -> Result<(), String> {
        let deliveries = self.target.producer.context();
        if self.in_flight > 0 {
            let reports = deliveries.wait_for_reports(self.reports, ANSWER_PATIENCE);
            if reports > self.reports {
                self.reported(reports);
                return self.target.check();
            }
        }
        self.target.push()?;
        self.reported(deliveries.reports());
        Ok(())
    }
}

/// Whether a record may be handed over while `bytes` request bytes and `payload` key and
/// value bytes are unsent (see [`Pipe::has_room`]).
fn room(bytes: u64, payload: u64, ready_bytes: u64, request_bytes: u64) -> bool {
    payload < 2 * ready_bytes && bytes < UNSENT_REQUESTS * request_bytes
}

/// Records sent and not yet handed to librdkafka, for the feeder thread.
#[derive(Default)]
struct Queue {
    records: VecDeque<(u64, Record)>,
    stop: bool,
}

/// The feeder thread of an appender with batches in flight: it feeds what [`Feeder::send`]
/// queues, in order, as [`Target::feed`] does, across batches.
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
    /// Stops the thread after what it is handing over or waiting for; what is still queued
    /// is not sent.
    fn drop(&mut self) {
        lock(&self.queue.0).stop = true;
        self.queue.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The feeder thread: hands records over while [`Pipe`] has room, else moves the ones
/// handed over along, until stopped. A record librdkafka refuses, or any failed record,
/// fails every record not yet reported and stops the feed.
fn run(target: &Target, queue: &(Mutex<Queue>, Condvar)) {
    let mut pipe = Pipe::new(target);
    loop {
        let (taken, next): (Vec<(u64, Record)>, Option<u64>) = {
            let mut q = lock(&queue.0);
            while q.records.is_empty() && pipe.is_idle() && !q.stop {
                q = queue.1.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.stop {
                return;
            }
            // As many as the pipe has room for, were none sent meanwhile.
            let (mut bytes, mut payload) = (pipe.unsent_bytes, pipe.unsent_payload);
            let mut take = 0;
            for (_, r) in &q.records {
                if !room(bytes, payload, target.ready_bytes, target.request_bytes) {
                    break;
                }
                bytes += request_size(r);
                payload += payload_size(r);
                take += 1;
            }
            let next = q.records.front().map(|(seq, _)| *seq);
            (q.records.drain(..take).collect(), next)
        };
        let moved = match taken.is_empty() {
            true => pipe.advance().map_err(|why| (pipe.oldest().or(next), why)),
            false => taken
                .iter()
                .try_for_each(|(seq, r)| pipe.hand(*seq, r).map_err(|why| (Some(*seq), why))),
        };
        if let Err((from, why)) = moved {
            target
                .producer
                .context()
                .fail_from(from.unwrap_or(u64::MAX), &why);
            let mut q = lock(&queue.0);
            q.records.clear();
            q.stop = true;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use kchain_testkit::{unique_name, Broker};

    use super::*;
    use crate::api::{Header, Log, TopicConfig};
    use crate::kafka::deliveries::Deliveries;
    use crate::kafka::{KafkaLog, KafkaOptions};

    /// A target on a new topic of the test broker, with a producer of its own.
    fn target(case: &str) -> Target {
        let brokers = &Broker::shared().brokers;
        let opts = KafkaOptions::default();
        let topic = unique_name(&format!("feeder-{case}"));
        let log = KafkaLog::connect(brokers, opts.clone()).unwrap();
        log.create_topic(&topic, &TopicConfig::default()).unwrap();
        let producer = KafkaProducer::start(
            opts.producer(brokers)
                .create_with_context(Deliveries::default())
                .unwrap(),
        );
        producer.context().reset(0);
        Target {
            producer: Arc::new(producer),
            topic,
            partition: 0,
            request_bytes: opts.max_request_bytes(),
            ready_bytes: opts.batch_size(),
            patience: Duration::from_secs(60),
            pushes: Arc::default(),
        }
    }

    /// `n` records of about 1,100 bytes, three fifths of them key and value, as in a
    /// chained record.
    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'v'; 640]),
                headers: vec![Header::new("kchain.prev", vec![b'0' + (i % 10) as u8; 400])],
                timestamp_ms: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    /// The offsets of the first `n` records reported, in order; fails on any failure.
    fn offsets(target: &Target, n: usize) -> Vec<i64> {
        let outcomes = target
            .producer
            .context()
            .wait(n, Duration::from_secs(60))
            .expect("every report within a minute");
        outcomes.into_iter().map(|o| o.unwrap()).collect()
    }

    /// About twelve requests' worth of records, fed at once (`append`) and through the
    /// feeder thread (`send`, in three batches), go out with the next request waiting, ready
    /// by size, behind the one in flight: librdkafka sends it when the first is answered,
    /// and the feeder pushes (`rd_kafka_flush`) only what is left at the end, not each
    /// request. Fed one request at a time, as before, each of the twelve was pushed on its
    /// own. A push more per feed is let pass, for a request slower than `ANSWER_PATIENCE`
    /// on a loaded machine.
    #[test]
    fn the_next_request_waits_ready_behind_the_one_in_flight() {
        let target = target("ready");
        let batch = records(11_000);
        let requests = batch.iter().map(request_size).sum::<u64>() / target.request_bytes;
        assert!(requests >= 11, "{requests} requests' worth");
        let deliveries = target.producer.context();

        deliveries.expect(batch.len());
        target.feed((0..).zip(&batch)).unwrap();
        let first = offsets(&target, batch.len());
        assert_eq!(first, (0..batch.len() as i64).collect::<Vec<_>>());
        let pushes = target.pushes.load(Ordering::Relaxed);
        assert!((1..=2).contains(&pushes), "{pushes} pushes for one append");

        let feeder = Feeder::start(target.clone());
        let mut seq = batch.len() as u64;
        for part in batch.chunks(4_000) {
            deliveries.expect(part.len());
            feeder.send(seq, part.to_vec());
            seq += part.len() as u64;
        }
        let second = offsets(&target, batch.len());
        let n = batch.len() as i64;
        assert_eq!(second, (n..2 * n).collect::<Vec<_>>());
        let pushes = target.pushes.load(Ordering::Relaxed) - pushes;
        assert!(
            pushes <= 2,
            "{pushes} pushes for three batches sent at once"
        );
    }
}

//! [`TopicProducer`]: the chained producer of a whole topic, as an application uses a Kafka
//! producer. It routes each record to a partition, gathers per-partition batches, and hands
//! each full or lingering batch to that partition's [`ChainWriter`] (one signature per batch).
//!
//! ```text
//!  send(key, value, headers, timestamp)
//!    key     ──► murmur2(key) % partitions          (Kafka's default partitioner)
//!    no key  ──► the sticky partition               (moves on each time its batch is sent)
//!        │
//!        ▼
//!  batch of partition p ── full (records or bytes) ──────────┐
//!                       ── older than linger (on send, or ───┤
//!                          flush_due on a caller's timer)    ▼
//!                                    ChainWriter p (opened on first use, kept in a pool,
//!                                    pipelined): .append hash-links, signs the last entry and
//!                                    hands the batch to the log, which writes it while the
//!                                    next is gathered and built
//!  flush() ──► send every batch, ChainWriter::flush (wait, fsync, checkpoint) ──► receipts
//! ```
//!
//! As a Kafka producer's, sending is asynchronous and `flush` is the point of durability: a
//! receipt says where a batch's records land once it is written, and a batch that could not
//! be written fails the next call for its partition (`docs/decisions.md`, "Pipelined
//! appends").
//!
//! The partitioner matches the Java client's and librdkafka's `murmur2_random`, so a keyed
//! record lands where any Kafka producer would put it. Each partition still has one writer:
//! one producer per topic, as a chained partition allows one writer.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kchain_core::{DataKey, Item, WriterKey};
use kchain_log::{Log, LogError};

use crate::batches::item_size;
use crate::checkpoints::CheckpointOptions;
use crate::error::TopicError;
use crate::partitioner::partition_for_key;
use crate::writer::{AppendReceipt, ChainWriter, WriterOptions};

/// How a [`TopicProducer`] batches and signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerOptions {
    /// The size bound of one signed batch (records and bytes), per partition.
    pub writer: WriterOptions,
    /// The time bound: a batch this old is sent on the next `send` or `flush_due`, so that
    /// the records of a slow source are signed, and so verifiable, soon after they arrive.
    pub linger: Duration,
    /// Publish signed checkpoints of every partition (`None`: none).
    pub checkpoints: Option<CheckpointOptions>,
}

impl Default for ProducerOptions {
    /// Batches of the writer's default size, sent after at most 100 ms, with checkpoints.
    fn default() -> Self {
        ProducerOptions {
            writer: WriterOptions::default(),
            linger: Duration::from_millis(100),
            checkpoints: Some(CheckpointOptions::default()),
        }
    }
}

/// What one append of a batch to one partition appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionReceipt {
    pub partition: u32,
    pub receipt: AppendReceipt,
}

/// Records gathered for one partition, not yet appended.
struct Batch {
    items: Vec<Item>,
    bytes: usize,
    since: Instant,
}

/// The chained producer of one topic: a partitioner, per-partition batches and a pool of
/// [`ChainWriter`]s, one per partition, all signing with one writer key.
pub struct TopicProducer<'k> {
    log: &'k dyn Log,
    topic: String,
    partitions: u32,
    key: &'k WriterKey,
    encryption: Option<&'k DataKey>,
    options: ProducerOptions,
    writers: BTreeMap<u32, ChainWriter<'k>>,
    batches: BTreeMap<u32, Batch>,
    sticky: u32,
    receipts: Vec<PartitionReceipt>,
}

impl<'k> TopicProducer<'k> {
    /// The producer of `topic` (which must exist), signing with `key`. Writers are opened
    /// on the first record of their partition.
    pub fn open(
        log: &'k dyn Log,
        topic: &str,
        key: &'k WriterKey,
        options: ProducerOptions,
    ) -> Result<Self, TopicError> {
        let partitions = log.topic(topic)?.partitions;
        if partitions == 0 {
            return Err(TopicError::Invalid(format!("{topic}: no partitions")));
        }
        Ok(TopicProducer {
            log,
            topic: topic.to_owned(),
            partitions,
            key,
            encryption: None,
            options,
            writers: BTreeMap::new(),
            batches: BTreeMap::new(),
            sticky: 0,
            receipts: Vec::new(),
        })
    }

    /// This producer, encrypting every value under `key` (see
    /// [`ChainWriter::with_encryption`]), or not at all for `None`. Applies to writers
    /// opened from now on: call it before the first `send`.
    pub fn with_encryption(mut self, key: Option<&'k DataKey>) -> Self {
        self.encryption = key;
        self
    }

    /// The topic's partition count, read when the producer opened.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition a record with `key` goes to: Kafka's default partitioner for a key,
    /// the sticky partition for none.
    pub fn partition_for(&self, key: Option<&[u8]>) -> u32 {
        match key {
            Some(k) => partition_for_key(k, self.partitions),
            None => self.sticky,
        }
    }

    /// Queues one record for the partition its key picks, and returns that partition. Sends
    /// the partition's batch when it is full, and every batch older than the linger.
    pub fn send(
        &mut self,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
        timestamp_ms: i64,
    ) -> Result<u32, TopicError> {
        let partition = self.partition_for(key.as_deref());
        let item = Item {
            key,
            value,
            headers,
            timestamp_ms,
        };
        self.send_to(partition, item)?;
        Ok(partition)
    }

    /// Queues `item` for `partition` (chosen by the caller), like [`send`](Self::send).
    pub fn send_to(&mut self, partition: u32, item: Item) -> Result<(), TopicError> {
        if partition >= self.partitions {
            return Err(LogError::NoSuchPartition {
                topic: self.topic.clone(),
                partition,
                partitions: self.partitions,
            }
            .into());
        }
        let limits = self.options.writer;
        let batch = self.batches.entry(partition).or_insert_with(|| Batch {
            items: Vec::new(),
            bytes: 0,
            since: Instant::now(),
        });
        batch.bytes += item_size(&item);
        batch.items.push(item);
        let full =
            batch.items.len() >= limits.max_batch_records || batch.bytes >= limits.max_batch_bytes;
        if full {
            self.send_batch(partition)?;
        }
        self.send_lingering()
    }

    /// Sends every batch older than the linger; returns the receipts of everything appended
    /// since the last call that returned receipts (the last batch of a partition may still
    /// be being written: [`TopicProducer::flush`] waits). For a caller's timer, so that a
    /// source that stops sending still gets its last records signed.
    pub fn flush_due(&mut self) -> Result<Vec<PartitionReceipt>, TopicError> {
        self.send_lingering()?;
        Ok(std::mem::take(&mut self.receipts))
    }

    /// Sends every batch, waits until each writer's appends are written and forced to stable
    /// storage, and publishes its checkpoint if the chain grew; returns the receipts of
    /// everything appended since the last call that returned receipts.
    pub fn flush(&mut self) -> Result<Vec<PartitionReceipt>, TopicError> {
        let pending: Vec<u32> = self.batches.keys().copied().collect();
        for p in pending {
            self.send_batch(p)?;
        }
        for w in self.writers.values_mut() {
            w.flush()?;
        }
        Ok(std::mem::take(&mut self.receipts))
    }

    /// Opens the writer of `partition` now, unless it is open, rather than on its first
    /// batch: a caller that wants to say in its own words which partition's writer cannot
    /// open (a tip another key signed, a chain that contradicts a signed checkpoint) opens
    /// them first. Requires `partition < partitions()`.
    pub fn open_writer(&mut self, partition: u32) -> Result<(), TopicError> {
        self.open_writer_staged(partition).map_err(|e| e.error)
    }

    /// [`open_writer`](Self::open_writer), saying which step failed: the chain (a tip
    /// another key signed, a foreign record) or its checkpoints (a chain that contradicts a
    /// signed checkpoint, an unreadable checkpoints topic). A command line can then advise
    /// writing without checkpoints only when they are what failed.
    pub fn open_writer_staged(&mut self, partition: u32) -> Result<(), WriterOpenError> {
        if !self.writers.contains_key(&partition) {
            let w = open_writer(
                self.log,
                &self.topic,
                partition,
                self.key,
                self.encryption,
                &self.options,
            )?;
            self.writers.insert(partition, w);
        }
        Ok(())
    }

    /// The writers opened so far, by partition (for their tips and last checkpoints).
    pub fn writers(&self) -> impl Iterator<Item = (u32, &ChainWriter<'k>)> {
        self.writers.iter().map(|(p, w)| (*p, w))
    }

    /// Sends the batches older than the linger.
    fn send_lingering(&mut self) -> Result<(), TopicError> {
        let linger = self.options.linger;
        let due: Vec<u32> = self
            .batches
            .iter()
            .filter(|(_, b)| b.since.elapsed() >= linger)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.send_batch(p)?;
        }
        Ok(())
    }

    /// Appends the batch of `partition` with its writer (opening it on first use), and moves
    /// the sticky partition on when it was the sticky partition's batch.
    fn send_batch(&mut self, partition: u32) -> Result<(), TopicError> {
        if !self.batches.contains_key(&partition) {
            return Ok(());
        }
        // Opened before the batch is taken: a writer that cannot open loses no record.
        self.open_writer(partition)?;
        let batch = self.batches.remove(&partition).expect("checked above");
        if partition == self.sticky {
            self.sticky = (self.sticky + 1) % self.partitions;
        }
        let writer = self.writers.get_mut(&partition).expect("opened above");
        let receipt = writer.append(batch.items)?;
        self.receipts.push(PartitionReceipt { partition, receipt });
        Ok(())
    }
}

/// Which step of opening a partition's writer failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriterOpenStage {
    /// Reading the chain back to its tip.
    Chain,
    /// Opening its checkpoints (only when the producer publishes them).
    Checkpoints,
}

/// A partition's writer that could not open, and at which step.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
#[non_exhaustive]
pub struct WriterOpenError {
    pub partition: u32,
    pub stage: WriterOpenStage,
    #[source]
    pub error: TopicError,
}

/// Opens the writer of one partition with the producer's encryption and checkpoints.
fn open_writer<'k>(
    log: &'k dyn Log,
    topic: &str,
    partition: u32,
    key: &'k WriterKey,
    encryption: Option<&'k DataKey>,
    options: &ProducerOptions,
) -> Result<ChainWriter<'k>, WriterOpenError> {
    let failed = |stage| {
        move |error| WriterOpenError {
            partition,
            stage,
            error,
        }
    };
    let w = ChainWriter::open(log, topic, partition, key, options.writer)
        .map_err(failed(WriterOpenStage::Chain))?
        .with_optional_encryption(encryption)
        .with_pipelining();
    match &options.checkpoints {
        Some(c) => w
            .with_checkpoints(log, c.clone())
            .map_err(failed(WriterOpenStage::Checkpoints)),
        None => Ok(w),
    }
}

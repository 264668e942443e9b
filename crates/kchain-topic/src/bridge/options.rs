//! What a bridge is told, and what it tells while it runs.

use std::time::Duration;

use crate::checkpoints::CheckpointOptions;
use crate::writer::WriterOptions;

/// The header that carries, on every chained record a bridge writes, the offset of the raw
/// record it copies (canonical decimal, after the record's own headers). It is an
/// application header as far as hashing goes (like `kchain.enc`): the entry hash commits to
/// it and the batch signature covers it, so the resume position is as tamper-evident as the
/// records. Ordinary Kafka clients see one more header.
pub const SRC_HEADER: &str = "kchain.src";

/// How a [`super::Bridge`] copies.
#[derive(Clone, Debug)]
pub struct BridgeOptions {
    /// The bounds of one signed batch; a read of the raw topic takes at most one batch.
    pub writer: WriterOptions,
    /// Publish signed checkpoints of every chained partition (`None`: none).
    pub checkpoints: Option<CheckpointOptions>,
    /// How long one read of a raw partition waits for records: the most a record arriving on
    /// an idle partition waits before it is read (then it is appended and signed at once).
    pub poll_wait: Duration,
    /// Stop once every raw partition is copied to its end offset (for scripts and tests),
    /// instead of following it until asked to stop.
    pub until_idle: bool,
    /// How often [`super::Bridge::run`] reports the partitions' status (and once when every
    /// partition has found where it resumes).
    pub status_every: Duration,
}

impl Default for BridgeOptions {
    /// The writer's default batches, checkpoints at their defaults, reads that wait 100 ms,
    /// following until stopped, status every 5 s.
    fn default() -> Self {
        BridgeOptions {
            writer: WriterOptions::default(),
            checkpoints: Some(CheckpointOptions::default()),
            poll_wait: Duration::from_millis(100),
            until_idle: false,
            status_every: Duration::from_secs(5),
        }
    }
}

/// Where one partition of a bridge stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    pub partition: u32,
    /// Whether the partition's writer has opened and found where to resume (the fields
    /// below are known from then on).
    pub open: bool,
    /// The raw offset this run resumed at (the chained tip's source offset plus one).
    pub resumed_at: u64,
    /// The raw offset of the next record to copy.
    pub next_raw: u64,
    /// Records this run copied.
    pub copied: u64,
    /// Records found at the chained tip that a crash left unsigned, checked against the raw
    /// records they copy and signed over by this run's first append.
    pub adopted: u64,
    /// Height of the chained partition's tip.
    pub tip_height: Option<u64>,
}

//! The embedded backend: a [`Log`] in a data directory of segment files, like a Kafka
//! partition log, with no server.
//!
//! ```text
//! <dir>/topics/<topic>/topic.json                  partitions, retention (written once)
//! <dir>/topics/<topic>/<partition>/appender.lock   flock'ed by the one appender
//! <dir>/topics/<topic>/<partition>/<base:020>.log    batches, back to back
//! <dir>/topics/<topic>/<partition>/<base:020>.index  sparse (relative offset, position)
//! ```
//!
//! Each `append` writes one batch (a 40-byte header with two CRC32Cs, then length-prefixed
//! records) with one write call; a segment rolls when it would pass `segment_bytes`. One
//! appender per partition (in any process) holds `appender.lock`; any number of readers, in
//! any process, read alongside it and never write. The byte layout, the recovery policy and
//! the reasons for both are in `docs/log-format.md`; the modules are:
//!
//! - [`batch`]: batch and record encoding (pure),
//! - [`segment`]: segment files and buffered batch reading,
//! - [`index`]: the sparse offset index (kept exact, never trusted),
//! - [`partition`]: partition paths and scanning to the end of valid data,
//! - [`walk`]: walking batch headers, the only way a reader finds a position in a segment,
//! - [`recovery`]: the torn-tail policy run when an appender opens (it quarantines
//!   what it cuts),
//! - [`topic`]: topic names and `topic.json`,
//! - [`appender`] and [`reader`]: the [`Appender`] and [`Reader`] implementations,
//! - [`syncer`]: the appender's interval fsync, on a thread of its own.

mod appender;
mod batch;
#[cfg(test)]
mod bench;
mod index;
#[cfg(feature = "internals")]
pub mod internals;
mod partition;
mod reader;
mod recovery;
#[cfg(test)]
mod retention_tests;
mod segment;
mod syncer;
mod topic;
mod walk;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::api::{Appender, FsyncPolicy, Log, Reader, TopicConfig, TopicInfo};
use crate::error::LogError;
use appender::EmbeddedAppender;
use partition::{scan, ClosedTail, PartitionDir, Tail, TailPolicy};
use reader::EmbeddedReader;
use segment::SegmentReader;

/// Settings of an [`EmbeddedLog`]. They apply to what this handle writes and reads; they are
/// not stored, and different handles on one directory may use different settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// When appended data is forced to stable storage.
    pub fsync: FsyncPolicy,
    /// A segment rolls when the next batch would take it past this size. A batch larger than
    /// this gets a segment of its own. Range: 1 to 4 GiB - 1 (index positions are u32).
    pub segment_bytes: u64,
    /// Bytes of segment between two sparse index entries (0: an entry for every batch).
    pub index_interval_bytes: u32,
    /// Largest encoded record (see `docs/log-format.md`) that `append` accepts and readers
    /// read. Range: 24 bytes to 2 GiB - 1.
    pub max_record_bytes: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            fsync: FsyncPolicy::default(),
            segment_bytes: 128 << 20,
            index_interval_bytes: 4096,
            max_record_bytes: 8 << 20,
        }
    }
}

impl EmbeddedOptions {
    fn validate(&self) -> Result<(), LogError> {
        if self.segment_bytes == 0 || self.segment_bytes > u64::from(u32::MAX) {
            return Err(LogError::InvalidArgument(format!(
                "segment_bytes {} is outside 1..=4294967295",
                self.segment_bytes
            )));
        }
        if self.max_record_bytes < batch::MIN_RECORD_LEN
            || self.max_record_bytes > i32::MAX as usize
        {
            return Err(LogError::InvalidArgument(format!(
                "max_record_bytes {} is outside {}..=2147483647",
                self.max_record_bytes,
                batch::MIN_RECORD_LEN
            )));
        }
        Ok(())
    }
}

/// An ordered, partitioned, append-only log stored in a local data directory.
///
/// Cheap to share: all methods take `&self`. Handles in different processes may use the same
/// directory; the partition lock keeps appenders exclusive.
pub struct EmbeddedLog {
    root: PathBuf,
    opts: EmbeddedOptions,
    shared: Arc<Shared>,
}

impl EmbeddedLog {
    /// Opens an existing data directory (one made by [`EmbeddedLog::create`]). Fails with an
    /// error naming the path when it is missing, unreadable or not a data directory.
    pub fn open(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self, LogError> {
        opts.validate()?;
        let root = dir.as_ref().to_path_buf();
        let context = || format!("opening data directory {}", root.display());
        let meta = fs::metadata(&root).map_err(|e| LogError::io(context(), e))?;
        if !meta.is_dir() {
            return Err(LogError::InvalidArgument(format!(
                "data directory {} is not a directory",
                root.display()
            )));
        }
        fs::read_dir(&root).map_err(|e| LogError::io(context(), e))?;
        if !root.join("topics").is_dir() {
            return Err(LogError::InvalidArgument(format!(
                "{} is not a kchain data directory (it has no topics/ directory)",
                root.display()
            )));
        }
        Ok(EmbeddedLog {
            root,
            opts,
            shared: Arc::default(),
        })
    }

    /// Opens a data directory, creating it (and its parents) first if it is missing.
    pub fn create(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self, LogError> {
        opts.validate()?;
        let topics = dir.as_ref().join("topics");
        fs::create_dir_all(&topics).map_err(|e| {
            LogError::io(format!("creating data directory {}", topics.display()), e)
        })?;
        Self::open(dir, opts)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The settings this handle was opened with.
    pub fn options(&self) -> &EmbeddedOptions {
        &self.opts
    }

    fn topics_dir(&self) -> PathBuf {
        self.root.join("topics")
    }

    /// The directory of an existing partition.
    fn partition(&self, topic: &str, partition: u32) -> Result<PartitionDir, LogError> {
        let cached = lock(&self.shared.partitions).get(topic).copied();
        let partitions = match cached {
            Some(n) => n,
            None => {
                let n = topic::load(&self.topics_dir(), topic)?.partitions;
                lock(&self.shared.partitions).insert(topic.to_string(), n);
                n
            }
        };
        if partition >= partitions {
            return Err(LogError::NoSuchPartition {
                topic: topic.to_string(),
                partition,
                partitions,
            });
        }
        Ok(PartitionDir {
            topic: topic.to_string(),
            partition,
            dir: self.topics_dir().join(topic).join(partition.to_string()),
        })
    }

    /// The offset after the last complete batch of a partition whose segments are
    /// `segments`, or an offset of at least `stop_at` if the partition reaches that far.
    ///
    /// Walks the last segment's batch headers from the cached tail, else from its start
    /// (never from the index, see [`walk`]), and checks the final batch in full. A
    /// complete batch that fails a check at the end is [`LogError::Corruption`], like a gap
    /// or overlap between the last segment and the one before it.
    fn end_of(&self, part: &PartitionDir, segments: &[u64], stop_at: u64) -> Result<u64, LogError> {
        let Some(&base) = segments.last() else {
            return Ok(0);
        };
        if let [.., prev, _] = segments {
            self.check_follows(part, *prev, base)?;
        }
        let mut seg = SegmentReader::open(part.log_path(base))?;
        let len = seg.file().metadata().map_or(0, |m| m.len());
        let cached = self
            .shared
            .tail(part)
            .filter(|t| t.base == base && t.position <= len);
        let zero = Tail {
            base,
            position: 0,
            next_offset: base,
        };
        // From the cached end if there is one; from the segment start if there is none, or
        // if the cached end no longer starts a batch (only possible if something other than
        // kchain changed the file).
        let end = match cached.map(|t| self.walk_then_scan(&mut seg, t, stop_at)) {
            Some(Ok(end)) => end,
            _ => self.walk_then_scan(&mut seg, zero, stop_at)?,
        };
        self.shared.set_tail(part, end.tail);
        Ok(end.tail.next_offset)
    }

    /// Walks the headers of the last segment `seg` from the trusted boundary `start` (or a
    /// remembered one past it) towards `stop_at`, then checks the final batch (or the one
    /// holding `stop_at`) and what follows it in full.
    fn walk_then_scan(
        &self,
        seg: &mut SegmentReader,
        start: Tail,
        stop_at: u64,
    ) -> Result<partition::ScanEnd, LogError> {
        let landmarks = &self.shared.landmarks;
        let start = landmarks.best(seg.path(), start, stop_at);
        let mut marks = Vec::new();
        let walked = walk::walk(seg.file(), seg.path(), start, stop_at, &mut marks)?;
        let from = match walked.stop {
            walk::Stop::Reached => walked.at,
            _ => walked.last.unwrap_or(walked.at),
        };
        let max = self.opts.max_record_bytes;
        let policy = TailPolicy::Incomplete;
        let end = scan(seg, from, stop_at, policy, max, &mut |_, _| {})?;
        landmarks.remember(seg.path(), &marks, end.tail.position);
        Ok(end)
    }

    /// Checks that segment `base` starts right where segment `prev` (the one before it)
    /// ends: segments that overlap or leave a gap are corruption, whichever offset a reader
    /// starts at. A sealed segment's end is walked once per [`EmbeddedLog`] and remembered.
    fn check_follows(&self, part: &PartitionDir, prev: u64, base: u64) -> Result<(), LogError> {
        let prev_path = part.log_path(prev);
        let cached = lock(&self.shared.sealed_ends).get(&prev_path).copied();
        let end = match cached {
            Some(end) => end,
            None => {
                let seg = SegmentReader::open(prev_path.clone())?;
                let mut marks = Vec::new();
                let end = walk::sealed_end(seg.file(), seg.path(), prev, &mut marks)?;
                self.shared.landmarks.remember(seg.path(), &marks, u64::MAX);
                lock(&self.shared.sealed_ends).insert(prev_path, end);
                end
            }
        };
        if end != base {
            let detail = format!(
                "segment starts at offset {base} but the previous one ends at offset {end}"
            );
            return Err(partition::corruption(&part.log_path(base), 0, detail));
        }
        Ok(())
    }
}

fn info(name: &str, meta: &topic::TopicMeta) -> TopicInfo {
    let retention = meta
        .retention_ms
        .map_or("-1".to_string(), |ms| ms.to_string());
    TopicInfo {
        name: name.to_string(),
        partitions: meta.partitions,
        settings: vec![("retention.ms".to_string(), retention)],
    }
}

impl Log for EmbeddedLog {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    /// A reader is a file handle and a position.
    fn cheap_readers(&self) -> bool {
        true
    }

    /// An appender holds the partition's lock file.
    fn exclusive_appenders(&self) -> bool {
        true
    }

    fn create_topic(&self, name: &str, config: &TopicConfig) -> Result<(), LogError> {
        let durable = self.opts.fsync != FsyncPolicy::Never;
        topic::create(&self.topics_dir(), name, config, durable)?;
        lock(&self.shared.partitions).insert(name.to_string(), config.partitions);
        Ok(())
    }

    fn list_topics(&self) -> Result<Vec<TopicInfo>, LogError> {
        let dir = self.topics_dir();
        topic::list(&dir)?
            .iter()
            .map(|name| Ok(info(name, &topic::load(&dir, name)?)))
            .collect()
    }

    fn topic(&self, name: &str) -> Result<TopicInfo, LogError> {
        Ok(info(name, &topic::load(&self.topics_dir(), name)?))
    }

    fn appender(&self, topic: &str, partition: u32) -> Result<Box<dyn Appender>, LogError> {
        let part = self.partition(topic, partition)?;
        let appender = EmbeddedAppender::open(part, self.opts.clone(), self.shared.clone())?;
        Ok(Box::new(appender))
    }

    fn reader(&self, topic: &str, partition: u32, from: u64) -> Result<Box<dyn Reader>, LogError> {
        let part = self.partition(topic, partition)?;
        let segments = part.segments()?;
        let start = segments.first().copied().unwrap_or(0);
        // Only as far as `from`: a reader must reach the records before a corrupt batch.
        let end = self.end_of(&part, &segments, from)?;
        if from > end {
            return Err(LogError::OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset: from,
                start,
                end,
            });
        }
        let from = from.max(start);
        // The segment the reader starts in must follow the one before it, as a reader that
        // came from that one would check.
        if let Some(k) = segments.iter().rposition(|&b| b <= from).filter(|&k| k > 0) {
            self.check_follows(&part, segments[k - 1], segments[k])?;
        }
        let reader = EmbeddedReader::open(
            part,
            from,
            &segments,
            self.opts.max_record_bytes,
            self.shared.clone(),
        )?;
        Ok(Box::new(reader))
    }

    fn end_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        let part = self.partition(topic, partition)?;
        self.end_of(&part, &part.segments()?, u64::MAX)
    }

    fn start_offset(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        let part = self.partition(topic, partition)?;
        Ok(part.segments()?.first().copied().unwrap_or(0))
    }

    /// Deletes, oldest first, every segment but the last whose records all lie below
    /// `offset` (the next segment starts at or below it): the start offset moves to the
    /// first segment kept. The index goes before its segment, so a crash in between leaves
    /// a segment without its index, which is rebuilt (indexes are never trusted).
    fn delete_records_before(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<u64, LogError> {
        let part = self.partition(topic, partition)?;
        let segments = part.segments()?;
        let mut start = segments.first().copied().unwrap_or(0);
        for pair in segments.windows(2) {
            let (base, next) = (pair[0], pair[1]);
            if next > offset {
                break;
            }
            for path in [part.index_path(base), part.log_path(base)] {
                match fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(LogError::io(format!("deleting {}", path.display()), e));
                    }
                    _ => {}
                }
            }
            lock(&self.shared.sealed_ends).remove(&part.log_path(base));
            start = next;
        }
        if self.opts.fsync != FsyncPolicy::Never {
            partition::sync_dir(&part.dir)?;
        }
        Ok(start)
    }
}

/// State shared by an [`EmbeddedLog`] and the appenders and readers it made.
#[derive(Default)]
pub(crate) struct Shared {
    /// Partition counts of topics known to exist (topics never change once created).
    partitions: Mutex<HashMap<String, u32>>,
    /// A known-valid prefix of each partition's last segment (where `end_offset` resumes).
    tails: Mutex<HashMap<(String, u32), Tail>>,
    /// Where the last appender of each partition, dropped cleanly, left it (where the next
    /// appender of this handle continues without recovery, if the files are unchanged).
    closed: Mutex<HashMap<(String, u32), ClosedTail>>,
    /// Recoveries run by appenders of this handle (what a reopen without one saves).
    pub(crate) recoveries: std::sync::atomic::AtomicU64,
    /// The offset after the last record of each sealed segment walked so far (sealed
    /// segments never change).
    sealed_ends: Mutex<HashMap<PathBuf, u64>>,
    /// Batch boundaries that walks have confirmed, where the next walk may start.
    landmarks: walk::Landmarks,
    /// Bumped after every append through this handle, to wake waiting readers at once.
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Shared {
    pub(crate) fn tail(&self, part: &PartitionDir) -> Option<Tail> {
        lock(&self.tails)
            .get(&(part.topic.clone(), part.partition))
            .copied()
    }

    /// Records a valid prefix of a partition's last segment. Any valid prefix will do (a
    /// racing update may store an older one), it only decides where the next scan starts.
    pub(crate) fn set_tail(&self, part: &PartitionDir, tail: Tail) {
        lock(&self.tails).insert((part.topic.clone(), part.partition), tail);
    }

    /// Takes where the last appender of a partition left it, if it was dropped cleanly.
    pub(crate) fn take_closed(&self, part: &PartitionDir) -> Option<ClosedTail> {
        lock(&self.closed).remove(&(part.topic.clone(), part.partition))
    }

    /// Records where a cleanly dropped appender left its partition.
    pub(crate) fn set_closed(&self, part: &PartitionDir, closed: ClosedTail) {
        lock(&self.closed).insert((part.topic.clone(), part.partition), closed);
    }

    pub(crate) fn notify(&self) {
        *lock(&self.generation) += 1;
        self.changed.notify_all();
    }

    pub(crate) fn generation(&self) -> u64 {
        *lock(&self.generation)
    }

    /// Waits until an append through this handle happens after `seen`, or `timeout` passes.
    pub(crate) fn wait_for_change(&self, seen: u64, timeout: Duration) {
        let guard = lock(&self.generation);
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |g| *g == seen);
    }
}

/// Locks a mutex, ignoring poisoning: the data behind these mutexes stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! The single appender of a partition.
//!
//! ```text
//! append(records) --encode--> buf: [header | record | record | ...]   (reused, no syscalls)
//!                   roll?     new <next offset>.log/.index when the segment would pass
//!                             segment_bytes (old one synced first)
//!                   write     one write(2) of the whole batch to the segment (O_APPEND)
//!                   index     8-byte entry when index_interval_bytes have passed
//!                   fsync     per FsyncPolicy, then the batch is acknowledged (an interval
//!                             fsync is requested of the sync thread, see `syncer`)
//! open             the lock, then recovery; or, after an appender of this handle was dropped
//!                   cleanly and the files are as it left them, its end (no scan)
//! append_encoded(records built in place by the writer, see `encoded`)
//!                   --check-->  every record as a reader checks it; header into its room
//!                   roll?, write, index, fsync as above
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{
    check_payload, encode_batch, payload_crc, BatchHeader, EncodeError, HEADER_LEN, MIN_RECORD_LEN,
};
use super::index::IndexPolicy;
use super::partition::{ClosedTail, FileId, PartitionDir, Tail};
use super::syncer::Syncer;
use super::{recovery, EmbeddedOptions, Shared};
use crate::api::{Appender, FsyncPolicy, Record};
use crate::encoded::{self, EncodedRecords};
use crate::error::LogError;

/// Under `FsyncPolicy::IntervalMs`, the bytes after which the sync thread is asked to sync
/// even before the interval has passed: the disk works while the appender writes, so that
/// the sync of a segment roll (inline: a sealed segment must be whole on disk before the
/// next begins) or of a flush finds at most this much left to write, not a whole segment.
const SYNC_BYTES: u64 = 8 << 20;

/// Appends batches to one partition of an embedded log while holding its lock file.
pub(crate) struct EmbeddedAppender {
    part: PartitionDir,
    opts: EmbeddedOptions,
    shared: Arc<Shared>,
    /// Holds the exclusive lock until the appender is dropped, which unlocks it (see Drop).
    lock: File,
    /// Base offset of the active (last) segment.
    base: u64,
    /// The active segment, shared with the sync thread.
    log: Arc<File>,
    index: File,
    /// Forces the segment to disk off the write path under `FsyncPolicy::IntervalMs`.
    syncer: Syncer,
    /// Bytes in the active segment.
    size: u64,
    policy: IndexPolicy,
    /// An index write failed: stop writing entries to this segment (recovery rebuilds it).
    index_broken: bool,
    /// An index write failed in any segment since opening: the next open must recover.
    index_ever_broken: bool,
    next_offset: u64,
    buf: Vec<u8>,
    last_sync: Instant,
    /// Appended data not yet synced.
    dirty: bool,
    /// Bytes appended since the last sync (inline or requested).
    unsynced: u64,
    /// Set after a failure that left the segment in an unknown state: refuse to append.
    failed: Option<String>,
}

impl EmbeddedAppender {
    /// Takes the partition lock, runs recovery (see [`recovery`]) and opens the last segment.
    /// Recovery is skipped when the last appender of this handle was dropped cleanly and the
    /// partition's files are exactly as it left them ([`ClosedTail::still_holds`]): nothing
    /// can have torn since, and its end is the one a scan would find.
    pub fn open(
        part: PartitionDir,
        opts: EmbeddedOptions,
        shared: Arc<Shared>,
    ) -> Result<Self, LogError> {
        let lock = lock(&part)?;
        let recovered = match shared.take_closed(&part) {
            Some(c) if c.still_holds(&part)? => recovery::Recovered {
                tail: c.tail,
                last_index_position: c.last_index_position,
            },
            _ => {
                shared.recoveries.fetch_add(1, Ordering::Relaxed);
                recovery::recover(&part, &opts)?
            }
        };
        let tail = recovered.tail;
        let log_path = part.log_path(tail.base);
        let log = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(|e| LogError::io(format!("opening segment {}", log_path.display()), e))?;
        let index_path = part.index_path(tail.base);
        let index = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&index_path)
            .map_err(|e| LogError::io(format!("opening index {}", index_path.display()), e))?;
        shared.set_tail(&part, tail);
        Ok(EmbeddedAppender {
            policy: IndexPolicy::new(opts.index_interval_bytes, recovered.last_index_position),
            part,
            opts,
            shared,
            lock,
            base: tail.base,
            log: Arc::new(log),
            index,
            syncer: Syncer::default(),
            size: tail.position,
            index_broken: false,
            index_ever_broken: false,
            next_offset: tail.next_offset,
            buf: Vec::new(),
            last_sync: Instant::now(),
            dirty: false,
            unsynced: 0,
            failed: None,
        })
    }

    fn segment_path(&self) -> std::path::PathBuf {
        self.part.log_path(self.base)
    }

    /// Starts a new segment at the next offset, after syncing the current one.
    fn roll(&mut self) -> Result<(), LogError> {
        if self.opts.fsync != FsyncPolicy::Never {
            self.sync()?;
            // The index is a hint, but a sealed segment's index is not rebuilt on every
            // open, so it should reach the disk with its segment.
            let _ = self.index.sync_data();
        }
        let (log, index) = self
            .part
            .create_segment(self.next_offset, self.opts.fsync)?;
        self.log = Arc::new(log);
        self.index = index;
        self.base = self.next_offset;
        self.size = 0;
        self.policy = IndexPolicy::new(self.opts.index_interval_bytes, 0);
        self.index_broken = false;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LogError> {
        if let Err(e) = self.log.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages: nothing
            // appended since the last good sync can be vouched for.
            let err = LogError::io(format!("syncing {}", self.segment_path().display()), e);
            self.failed = Some(err.to_string());
            return Err(err);
        }
        self.last_sync = Instant::now();
        self.dirty = false;
        self.unsynced = 0;
        Ok(())
    }

    /// Applies the fsync policy after a write of `len` bytes: syncs now under `EveryBatch`;
    /// under `IntervalMs`, asks the sync thread once the interval has passed or
    /// [`SYNC_BYTES`] were written since the last sync (the data stays `dirty` for `Drop`
    /// until an inline sync).
    fn sync_per_policy(&mut self, len: u64) -> Result<(), LogError> {
        self.dirty = true;
        self.unsynced += len;
        match self.opts.fsync {
            FsyncPolicy::EveryBatch => self.sync(),
            FsyncPolicy::IntervalMs(ms)
                if self.last_sync.elapsed() >= Duration::from_millis(ms)
                    || self.unsynced >= SYNC_BYTES =>
            {
                self.unsynced = 0;
                let path = self.segment_path();
                self.syncer.request(&self.log, &path.display().to_string());
                self.last_sync = Instant::now();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Takes up a failure of the sync thread, so that it fails this and every later call.
    fn take_sync_failure(&mut self) {
        if self.failed.is_none() {
            self.failed = self.syncer.failure();
        }
    }

    /// Undoes a failed batch write by cutting the segment back to `pos`.
    fn undo_write(&mut self, pos: u64, e: std::io::Error) -> LogError {
        let path = self.segment_path();
        if let Err(e2) = self.log.set_len(pos) {
            self.failed = Some(format!(
                "a failed write could not be undone ({e2}); reopen the appender to recover {}",
                path.display()
            ));
        }
        LogError::io(format!("appending to {}", path.display()), e)
    }
}

/// Opens the partition's lock file and takes its exclusive lock without waiting.
fn lock(part: &PartitionDir) -> Result<File, LogError> {
    let path = part.lock_path();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| LogError::io(format!("opening lock file {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(LogError::Locked {
            topic: part.topic.clone(),
            partition: part.partition,
            path,
        }),
        Err(TryLockError::Error(e)) => Err(LogError::io(format!("locking {}", path.display()), e)),
    }
}

// The room `EncodedRecords` keeps in front is exactly one batch header.
const _: () =
    assert!(encoded::HEADER_LEN == HEADER_LEN && encoded::MIN_RECORD_LEN == MIN_RECORD_LEN);

impl EmbeddedAppender {
    /// Refuses to append after a failure that left the segment in an unknown state.
    fn check_usable(&mut self) -> Result<(), LogError> {
        self.take_sync_failure();
        match &self.failed {
            Some(why) => Err(LogError::Backend {
                backend: "embedded",
                detail: format!(
                    "appender of {}/{} is unusable: {why}",
                    self.part.topic, self.part.partition
                ),
            }),
            None => Ok(()),
        }
    }

    /// The offset after a batch of `count` records from the next offset.
    fn end_after(&self, count: usize) -> Result<u64, LogError> {
        self.next_offset
            .checked_add(count as u64)
            .ok_or_else(|| LogError::InvalidArgument("offsets would overflow u64".into()))
    }

    /// Writes one encoded batch (`header` encoded at the start of `batch`) at the end of the
    /// partition: the roll, write, index and fsync steps of the module diagram.
    fn write_batch(&mut self, header: BatchHeader, batch: &[u8]) -> Result<Vec<u64>, LogError> {
        let first = header.base_offset;
        let end = header.next_offset();
        // Index entries hold offsets relative to the segment base as u32.
        let relative_overflow = end - self.base > u64::from(u32::MAX);
        if self.size > 0
            && (self.size + header.batch_len() > self.opts.segment_bytes || relative_overflow)
        {
            self.roll()?;
        }
        let pos = self.size;
        if let Err(e) = (&*self.log).write_all(batch) {
            return Err(self.undo_write(pos, e));
        }
        self.size += header.batch_len();
        self.next_offset = end;
        if !self.index_broken {
            if let Some(entry) = self.policy.entry_for(self.base, pos, first) {
                // The batch is written: an index failure must not fail the append (the caller
                // would retry and duplicate it). Recovery rebuilds the index.
                self.index_broken = self.index.write_all(&entry.encode()).is_err();
                self.index_ever_broken |= self.index_broken;
            }
        }
        self.sync_per_policy(header.batch_len())?;
        self.shared.set_tail(
            &self.part,
            Tail {
                base: self.base,
                position: self.size,
                next_offset: end,
            },
        );
        self.shared.notify();
        Ok((first..end).collect())
    }
}

/// Checks every record of `records` as a reader would, then computes the batch header (from
/// `base_offset`) and writes it into the room in front. Fails without writing anything.
fn seal_encoded(
    records: &mut EncodedRecords,
    base_offset: u64,
    max_record_bytes: usize,
) -> Result<BatchHeader, LogError> {
    let bad = |detail: String| LogError::InvalidArgument(format!("encoded records: {detail}"));
    let payload = records.payload();
    let count = u32::try_from(records.len()).map_err(|_| bad("too many records".into()))?;
    let payload_len =
        u32::try_from(payload.len()).map_err(|_| bad("the batch exceeds 4 GiB".into()))?;
    // The limit first, as `append` applies it (a record too large is the caller's to split).
    let mut start = 0;
    for &end in records.ends() {
        if end - start > max_record_bytes {
            let (size, limit) = (end - start, max_record_bytes);
            return Err(LogError::RecordTooLarge { size, limit });
        }
        start = end;
    }
    let max_ts = match records.confirmed_max_ts() {
        // Every record has its encoder's receipt: well formed by construction.
        Some(ts) => ts,
        _ => {
            check_payload(payload, count, max_record_bytes)
                .map_err(|(pos, why)| bad(format!("at byte {pos}: {why}")))?;
            // Checked above: each record starts with its length, then its timestamp.
            let (mut start, mut max_ts) = (0, i64::MIN);
            for &end in records.ends() {
                let ts: [u8; 8] = payload[start + 4..start + 12].try_into().expect("8 bytes");
                max_ts = max_ts.max(i64::from_be_bytes(ts));
                start = end;
            }
            max_ts
        }
    };
    let header = BatchHeader {
        base_offset,
        record_count: count,
        payload_len,
        max_timestamp_ms: max_ts,
        payload_crc: payload_crc(payload),
    };
    records.batch_mut()[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok(header)
}

impl Appender for EmbeddedAppender {
    fn append(&mut self, records: &[Record]) -> Result<Vec<u64>, LogError> {
        self.check_usable()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.next_offset;
        self.end_after(records.len())?;
        let header = encode_batch(&mut self.buf, first, records, self.opts.max_record_bytes)
            .map_err(|e| match e {
                EncodeError::RecordTooLarge { size, limit } => {
                    LogError::RecordTooLarge { size, limit }
                }
                EncodeError::BatchTooLarge(size) => LogError::InvalidArgument(format!(
                    "a batch of {size} bytes exceeds the 4 GiB batch limit; \
                     append fewer records at once"
                )),
            })?;
        let buf = std::mem::take(&mut self.buf);
        let written = self.write_batch(header, &buf);
        self.buf = buf;
        written
    }

    fn takes_encoded(&self) -> bool {
        true
    }

    fn append_encoded(&mut self, records: &mut EncodedRecords) -> Result<Vec<u64>, LogError> {
        self.check_usable()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.end_after(records.len())?;
        let header = seal_encoded(records, self.next_offset, self.opts.max_record_bytes)?;
        self.write_batch(header, records.batch_mut())
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.take_sync_failure();
        if let Some(why) = &self.failed {
            return Err(LogError::Backend {
                backend: "embedded",
                detail: why.clone(),
            });
        }
        self.sync()
    }

    fn next_offset(&self) -> u64 {
        self.next_offset
    }
}

impl EmbeddedAppender {
    /// Where this appender leaves its partition, for the next appender of this handle: only
    /// when nothing failed (its segment and index are whole) and the files are as it wrote
    /// them.
    fn closed_tail(&self) -> Option<ClosedTail> {
        if self.failed.is_some() || self.index_ever_broken {
            return None;
        }
        let log = FileId::of(&self.log).filter(|f| f.len == self.size)?;
        Some(ClosedTail {
            tail: Tail {
                base: self.base,
                position: self.size,
                next_offset: self.next_offset,
            },
            last_index_position: self.policy.last_position(),
            log,
            index_len: FileId::of(&self.index)?.len,
        })
    }
}

impl Drop for EmbeddedAppender {
    fn drop(&mut self) {
        self.syncer.stop();
        self.take_sync_failure();
        let synced = !self.dirty
            || !matches!(self.opts.fsync, FsyncPolicy::IntervalMs(_))
            || self.log.sync_data().is_ok();
        // Still holding the lock: no other appender has touched the partition yet.
        if let Some(closed) = synced.then(|| self.closed_tail()).flatten() {
            self.shared.set_closed(&self.part, closed);
        }
        // Unlocked explicitly, not only by closing the file: a child process forked by
        // another thread of this process (a test starting a broker, say) holds a copy of the
        // descriptor until it execs, and the lock, which belongs to the open file shared with
        // that copy, would outlive this appender until then.
        let _ = self.lock.unlock();
    }
}

#[cfg(test)]
mod tests;

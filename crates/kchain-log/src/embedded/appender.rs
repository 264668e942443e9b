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
    check_payload, encode_batch, BatchHeader, EncodeError, HEADER_LEN, MIN_RECORD_LEN,
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
    /// Holds the exclusive lock until the appender is dropped (closing the file releases it).
    _lock: File,
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
            _lock: lock,
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
        payload_crc: crc32c::crc32c(payload),
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
        if self.dirty
            && matches!(self.opts.fsync, FsyncPolicy::IntervalMs(_))
            && self.log.sync_data().is_err()
        {
            return;
        }
        // Still holding the lock: no other appender has touched the partition yet.
        if let Some(closed) = self.closed_tail() {
            self.shared.set_closed(&self.part, closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::{Seek, SeekFrom, Write};
    use std::sync::atomic::Ordering;

    use crate::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, LogError, Record, TopicConfig};

    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                key: None,
                value: Some(vec![b'v'; 100 + i % 7]),
                headers: Vec::new(),
                timestamp_ms: 1_700_000_000_000 + i as i64,
            })
            .collect()
    }

    fn log_in(dir: &std::path::Path) -> EmbeddedLog {
        let opts = EmbeddedOptions {
            fsync: FsyncPolicy::IntervalMs(100),
            index_interval_bytes: 512,
            ..EmbeddedOptions::default()
        };
        EmbeddedLog::create(dir, opts).unwrap()
    }

    fn recoveries(log: &EmbeddedLog) -> u64 {
        log.shared.recoveries.load(Ordering::Relaxed)
    }

    fn segment(dir: &std::path::Path) -> std::path::PathBuf {
        dir.join("topics/t/0/00000000000000000000.log")
    }

    /// Appends `batches` batches of 10 with a new appender of `log`, then drops it.
    fn append(log: &EmbeddedLog, batches: usize) -> u64 {
        let mut app = log.appender("t", 0).unwrap();
        for _ in 0..batches {
            app.append(&records(10)).unwrap();
        }
        app.next_offset()
    }

    fn read_all(log: &EmbeddedLog) -> Vec<u64> {
        let mut r = log.reader("t", 0, 0).unwrap();
        let mut offsets = Vec::new();
        loop {
            let got = r.poll(1000, std::time::Duration::ZERO).unwrap();
            if got.is_empty() {
                return offsets;
            }
            offsets.extend(got.iter().map(|r| r.offset));
        }
    }

    #[test]
    fn a_reopen_by_the_same_handle_continues_without_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path());
        log.create_topic("t", &TopicConfig::default()).unwrap();
        assert_eq!(append(&log, 30), 300);
        assert_eq!(recoveries(&log), 1);
        for round in 1..=5u64 {
            assert_eq!(append(&log, 3), 300 + 30 * round);
        }
        assert_eq!(
            recoveries(&log),
            1,
            "each reopen continued where the last left"
        );
        assert_eq!(read_all(&log), (0..450).collect::<Vec<_>>());
        // A fresh handle (another process) recovers, and finds the same end and index.
        let index = std::fs::read(dir.path().join("topics/t/0/00000000000000000000.index"));
        let other = log_in(dir.path());
        assert_eq!(other.appender("t", 0).unwrap().next_offset(), 450);
        assert_eq!(recoveries(&other), 1);
        let rebuilt = std::fs::read(dir.path().join("topics/t/0/00000000000000000000.index"));
        assert_eq!(index.unwrap(), rebuilt.unwrap());
    }

    #[test]
    fn a_reopen_after_another_handle_appended_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path());
        log.create_topic("t", &TopicConfig::default()).unwrap();
        append(&log, 2);
        let other = log_in(dir.path());
        assert_eq!(append(&other, 3), 50);
        assert_eq!(append(&log, 1), 60, "the other handle's batches are found");
        assert_eq!(recoveries(&log), 2);
        assert_eq!(read_all(&log), (0..60).collect::<Vec<_>>());
    }

    #[test]
    fn a_torn_tail_written_after_the_last_close_is_cut_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path());
        log.create_topic("t", &TopicConfig::default()).unwrap();
        append(&log, 2);
        let len = std::fs::metadata(segment(dir.path())).unwrap().len();
        // A batch header announcing more than follows: a write that never returned.
        let mut f = OpenOptions::new()
            .append(true)
            .open(segment(dir.path()))
            .unwrap();
        f.write_all(&[0u8; 30]).unwrap();
        drop(f);
        assert_eq!(append(&log, 1), 30);
        assert_eq!(recoveries(&log), 2);
        let quarantined = dir.path().join(format!(
            "topics/t/0/00000000000000000000.log.quarantine-{len}"
        ));
        assert!(quarantined.exists());
    }

    #[test]
    fn a_reopen_after_bytes_changed_in_place_checks_the_segment_again() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path());
        log.create_topic("t", &TopicConfig::default()).unwrap();
        append(&log, 3);
        // Past the granularity of a coarse file clock, so the change time moves.
        std::thread::sleep(std::time::Duration::from_millis(25));
        // Same length, one byte of a record's value changed: only a scan can tell.
        let mut f = OpenOptions::new()
            .write(true)
            .open(segment(dir.path()))
            .unwrap();
        f.seek(SeekFrom::Start(100)).unwrap();
        f.write_all(b"X").unwrap();
        drop(f);
        match log.appender("t", 0) {
            Err(LogError::Corruption { .. }) => {}
            other => panic!(
                "expected corruption, got {:?}",
                other.map(|a| a.next_offset())
            ),
        }
    }

    /// An appender of `t`/0 in `dir` under `fsync`, as the log opens one.
    fn appender_in(dir: &std::path::Path, fsync: FsyncPolicy) -> super::EmbeddedAppender {
        let opts = EmbeddedOptions {
            fsync,
            ..EmbeddedOptions::default()
        };
        let log = EmbeddedLog::create(dir, opts.clone()).unwrap();
        log.create_topic("t", &TopicConfig::default()).unwrap();
        let part = log.partition("t", 0).unwrap();
        super::EmbeddedAppender::open(part, opts, log.shared.clone()).unwrap()
    }

    #[test]
    fn interval_syncs_run_on_the_sync_thread() {
        use crate::Appender;
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender_in(dir.path(), FsyncPolicy::IntervalMs(0));
        app.append(&records(10)).unwrap();
        assert!(
            app.syncer.started(),
            "the interval passed: a sync was requested"
        );
        assert!(app.dirty, "and the data stays dirty until an inline sync");
        app.flush().unwrap();
        assert!(!app.dirty);
        // Long interval: the bytes written ask for a sync all the same.
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender_in(dir.path(), FsyncPolicy::IntervalMs(3_600_000));
        let big = vec![Record {
            value: Some(vec![7; 1 << 20]),
            ..records(1).remove(0)
        }];
        for _ in 0..(super::SYNC_BYTES >> 20) - 1 {
            app.append(&big).unwrap();
        }
        assert!(!app.syncer.started());
        app.append(&big).unwrap();
        assert!(app.syncer.started());
    }

    #[test]
    fn a_failed_background_sync_fails_the_next_calls_and_the_next_open_recovers() {
        use crate::Appender;
        let dir = tempfile::tempdir().unwrap();
        let mut app = appender_in(dir.path(), FsyncPolicy::IntervalMs(0));
        app.append(&records(10)).unwrap();
        app.syncer.fail_for_test("disk gone");
        for _ in 0..2 {
            let err = app.append(&records(1)).unwrap_err().to_string();
            assert!(err.contains("disk gone"), "{err}");
        }
        assert!(app.flush().unwrap_err().to_string().contains("disk gone"));
        let shared = app.shared.clone();
        drop(app);
        assert_eq!(shared.recoveries.load(Ordering::Relaxed), 1);
        let part = super::PartitionDir {
            topic: "t".into(),
            partition: 0,
            dir: dir.path().join("topics/t/0"),
        };
        let opts = EmbeddedOptions::default();
        let again = super::EmbeddedAppender::open(part, opts, shared.clone()).unwrap();
        assert_eq!(
            shared.recoveries.load(Ordering::Relaxed),
            2,
            "no trusted end"
        );
        assert_eq!(crate::Appender::next_offset(&again), 10);
    }
}

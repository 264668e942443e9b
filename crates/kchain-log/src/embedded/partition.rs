//! One partition directory: its paths, its segments, and scanning a segment to the end of
//! its valid data (what `end_offset`, recovery and index rebuilding share).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::batch::{check_payload, BatchHeader};
use super::segment::{self, find_valid_batch, At, SegmentReader};
use crate::api::FsyncPolicy;
use crate::error::LogError;

/// Name of the file whose exclusive lock makes an appender the only one of its partition.
pub(crate) const LOCK_FILE: &str = "appender.lock";

/// The directory `<data dir>/topics/<topic>/<partition>` and what lives in it.
#[derive(Clone, Debug)]
pub(crate) struct PartitionDir {
    pub topic: String,
    pub partition: u32,
    pub dir: PathBuf,
}

impl PartitionDir {
    pub fn log_path(&self, base: u64) -> PathBuf {
        self.dir.join(segment::log_name(base))
    }

    pub fn index_path(&self, base: u64) -> PathBuf {
        self.dir.join(segment::index_name(base))
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// Base offsets of the segments, ascending.
    pub fn segments(&self) -> Result<Vec<u64>, LogError> {
        segment::list_segments(&self.dir)
    }

    /// Creates the empty segment `base` (log and index) and, unless the policy is `Never`,
    /// makes its directory entry durable before anything is acknowledged in it.
    pub fn create_segment(&self, base: u64, fsync: FsyncPolicy) -> Result<(File, File), LogError> {
        let log_path = self.log_path(base);
        let log = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&log_path)
            .map_err(|e| LogError::io(format!("creating segment {}", log_path.display()), e))?;
        let index_path = self.index_path(base);
        let index = File::create(&index_path)
            .and_then(|_| OpenOptions::new().append(true).open(&index_path))
            .map_err(|e| LogError::io(format!("creating index {}", index_path.display()), e))?;
        if fsync != FsyncPolicy::Never {
            sync_dir(&self.dir)?;
        }
        Ok((log, index))
    }
}

/// Makes a directory's entries (files created or renamed in it) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A corruption error at byte `position` of `path`.
pub(crate) fn corruption(path: &Path, position: u64, detail: impl Into<String>) -> LogError {
    LogError::Corruption {
        path: path.to_path_buf(),
        position,
        detail: detail.into(),
    }
}

/// A known-valid prefix of segment `base`: bytes `0..position` hold offsets
/// `base..next_offset`. Recovery only ever cuts after a valid batch, so such a prefix stays
/// valid for the life of the segment and is safe to cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    pub base: u64,
    pub position: u64,
    pub next_offset: u64,
}

/// Where an appender of this process left a partition when it was dropped cleanly: its last
/// segment's valid end, its index, and the files as they were then. The next appender of the
/// same [`EmbeddedLog`](super::EmbeddedLog) handle continues from here instead of running
/// recovery, if the files are still exactly as they were (see [`ClosedTail::still_holds`]).
/// Kept only in memory: after a crash of the process (or the machine) there is none, and
/// recovery runs as always.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClosedTail {
    pub tail: Tail,
    /// Position of the last index entry of the segment (0 if none).
    pub last_index_position: u64,
    /// The segment file and the length of its index.
    pub log: FileId,
    pub index_len: u64,
}

/// A file's identity, length and last change (status change time: any write to the file
/// moves it, and no one can set it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub changed: (i64, i64),
}

impl FileId {
    /// The identity of an open file (`None` where the platform gives none).
    pub fn of(file: &File) -> Option<FileId> {
        file.metadata().ok().and_then(|m| Self::from_meta(&m))
    }

    /// The identity of the file at `path`, if it exists.
    pub fn at(path: &Path) -> Option<FileId> {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Self::from_meta(&m))
    }

    #[cfg(unix)]
    fn from_meta(m: &std::fs::Metadata) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            changed: (m.ctime(), m.ctime_nsec()),
        })
    }

    #[cfg(not(unix))]
    fn from_meta(_: &std::fs::Metadata) -> Option<FileId> {
        None
    }
}

impl ClosedTail {
    /// Whether the partition is still as the appender left it: the same last segment (same
    /// file, length and change time) and the same index length. Every appender holds the
    /// partition's lock, grows the segment with each batch, starts a new segment to roll,
    /// and recovery cuts only after the valid end it found (at or past this one), so a
    /// segment of the same file and length holds exactly the batches this one recorded; the
    /// change time also catches a write that kept the length (something other than kchain
    /// changing the file), after which recovery checks the segment again.
    pub fn still_holds(&self, part: &PartitionDir) -> Result<bool, LogError> {
        let segments = part.segments()?;
        Ok(segments.last() == Some(&self.tail.base)
            && self.log.len == self.tail.position
            && FileId::at(&part.log_path(self.tail.base)) == Some(self.log)
            && FileId::at(&part.index_path(self.tail.base)).map(|f| f.len) == Some(self.index_len))
    }
}

/// Where a scan stopped.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    pub tail: Tail,
    /// Bytes follow `tail.position` that the scan's [`TailPolicy`] lets it stop in front of:
    /// a torn tail for recovery, a batch not yet completely written for a reader.
    pub torn: bool,
}

/// What a scan accepts at the end of a segment, after the last valid batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TailPolicy {
    /// A sealed segment (not the last one): it must end exactly at a batch boundary; any bad
    /// or incomplete batch in it is corruption.
    Sealed,
    /// Only a batch that the file ends inside (its 40-byte header, or the payload its header
    /// announces) may follow: a write in progress, or one that never returned. A complete
    /// batch that fails a check is corruption. What readers use, and recovery under
    /// `FsyncPolicy::EveryBatch`.
    Incomplete,
    /// Also a bad batch with no valid batch anywhere after it (see [`torn_or_corrupt`]):
    /// recovery under `IntervalMs` and `Never`, whose unsynced pages may reach the disk out
    /// of order.
    BadTail,
}

/// Scans segment `seg` (whose first offset is `start.base`) forward from the batch boundary
/// `start` to the end of its valid data, or until it has passed offset `stop_at`, calling
/// `on_batch(position, header)` for each batch. What may follow the valid data is `policy`'s
/// to say; anything else is [`LogError::Corruption`] naming the file and byte.
pub(crate) fn scan(
    seg: &mut SegmentReader,
    start: Tail,
    stop_at: u64,
    policy: TailPolicy,
    max_record_bytes: usize,
    on_batch: &mut dyn FnMut(u64, &BatchHeader),
) -> Result<ScanEnd, LogError> {
    let mut tail = start;
    let mut second_look = false;
    loop {
        if tail.next_offset >= stop_at {
            return Ok(ScanEnd { tail, torn: false });
        }
        let pos = tail.position;
        let (resume, detail) = match seg.batch_at(pos)? {
            At::Batch(h) => {
                check_batch(seg, pos, &h, tail.next_offset, max_record_bytes)?;
                on_batch(pos, &h);
                tail.position += h.batch_len();
                tail.next_offset = h.next_offset();
                second_look = false;
                continue;
            }
            At::End => return Ok(ScanEnd { tail, torn: false }),
            At::Incomplete => (None, "the segment ends inside this batch".to_string()),
            At::BadHeader(detail) => (Some(pos + 1), detail),
            At::BadPayload(h, detail) => (Some(pos + h.batch_len()), detail),
        };
        let Some(from) = resume else {
            if policy == TailPolicy::Sealed {
                return Err(corruption(
                    seg.path(),
                    pos,
                    format!("{detail} in a sealed segment"),
                ));
            }
            return Ok(ScanEnd { tail, torn: true });
        };
        if !second_look && policy == TailPolicy::Incomplete {
            // A reader's buffer may mix bytes read before and after a recovery cut the
            // tail and an appender wrote a new batch there: read the batch once more, fresh.
            second_look = true;
            continue;
        }
        match policy {
            TailPolicy::Sealed => {
                return Err(corruption(
                    seg.path(),
                    pos,
                    format!("{detail} in a sealed segment"),
                ))
            }
            TailPolicy::Incomplete => return Err(complete_but_bad(seg.path(), pos, &detail)),
            TailPolicy::BadTail => {
                torn_or_corrupt(seg, pos, from, &detail)?;
                return Ok(ScanEnd { tail, torn: true });
            }
        }
    }
}

/// The corruption error for a complete batch (or a complete 40-byte header) that fails a
/// check at the end of the last segment. A live appender writes each batch with one write
/// call and the file only ever shows a prefix of it, so this is not a write in progress.
pub(crate) fn complete_but_bad(path: &Path, pos: u64, detail: &str) -> LogError {
    corruption(
        path,
        pos,
        format!(
            "{detail}; the batch is complete, so this is not a write in progress or a torn \
             write"
        ),
    )
}

/// Checks a batch with matching CRCs: it must carry the offset that follows the previous
/// batch and hold exactly its records.
pub(crate) fn check_batch(
    seg: &SegmentReader,
    pos: u64,
    h: &BatchHeader,
    expected_offset: u64,
    max_record_bytes: usize,
) -> Result<(), LogError> {
    if h.base_offset != expected_offset {
        return Err(corruption(
            seg.path(),
            pos,
            format!(
                "batch starts at offset {}, expected {expected_offset}",
                h.base_offset
            ),
        ));
    }
    check_payload(seg.payload(pos, h), h.record_count, max_record_bytes).map_err(|(at, detail)| {
        corruption(
            seg.path(),
            pos,
            format!("{detail} (payload byte {at} of the batch)"),
        )
    })
}

/// Decides what the bad batch at `pos` of the last segment is: `Ok` (a torn tail) when no
/// valid batch starts at or after byte `from`, else a corruption error at `pos`.
pub(crate) fn torn_or_corrupt(
    seg: &SegmentReader,
    pos: u64,
    from: u64,
    detail: &str,
) -> Result<(), LogError> {
    let found = find_valid_batch(seg.file(), from)
        .map_err(|e| LogError::io(format!("scanning {}", seg.path().display()), e))?;
    match found {
        None => Ok(()),
        Some(valid) => Err(corruption(
            seg.path(),
            pos,
            format!("{detail}; a valid batch follows at byte {valid}, so this is not a torn tail"),
        )),
    }
}

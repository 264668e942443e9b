//! Crash recovery of a partition, run by an appender when it opens (after it holds the lock).
//!
//! The policy, in one sentence: **recovery cuts only a torn tail (under the default
//! `EveryBatch`, a final batch that the file ends inside; under `IntervalMs` and `Never`, also
//! a bad final batch with no valid batch after it), moves every byte it cuts into a
//! quarantine file beside the segment, and changes nothing on disk when it finds anything
//! else.** In raft-engine's words: absolute consistency, except for a torn tail.
//!
//! - The last segment is scanned from its first byte; every batch must have valid CRCs, carry
//!   the offset after the previous batch and hold exactly its records.
//! - A *torn tail* is the trace of a write that never returned, so no append acknowledged
//!   it. The appender writes a batch with one write call and a file only ever keeps a prefix
//!   of it, so a torn write is a batch the file ends inside (its 40-byte header, or the
//!   payload its valid header announces). Under `EveryBatch` that is the only torn tail: a
//!   complete batch with a bad CRC was synced and acknowledged, then damaged. Under
//!   `IntervalMs` and `Never`, unsynced pages may reach the disk out of order after a power
//!   loss, so a bad final batch with nothing valid after it counts as torn too.
//! - A torn tail is moved, not deleted: its bytes are copied to
//!   `<segment>.quarantine-<byte position>` (a new file, never one that exists; `.1`, `.2`,
//!   ... are added if needed), which is synced before the segment is cut; then index entries
//!   past the cut are dropped.
//! - Anything else that is wrong is *corruption*: recovery returns [`LogError::Corruption`]
//!   naming the file and byte position, and the appender does not open. Every check runs
//!   before anything is written, so a recovery that fails changes nothing on disk.
//! - Earlier (sealed) segments were complete and synced when the appender rolled past them;
//!   recovery checks that their indexes are sound (rebuilding those that are missing or
//!   wrong) and, by walking its batch headers, that the last segment starts where the one
//!   before it ends.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::index::{self, IndexEntry, IndexPolicy};
use super::partition::{corruption, scan, sync_dir, PartitionDir, Tail, TailPolicy};
use super::segment::{header_at, SegmentReader};
use super::walk::sealed_end;
use super::EmbeddedOptions;
use crate::api::FsyncPolicy;
use crate::error::LogError;

/// The state of the last segment after recovery: where the appender continues.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub tail: Tail,
    /// Position of the last index entry of the segment (0 if none).
    pub last_index_position: u64,
}

/// Recovers a partition (see the module docs). Requires the partition lock to be held.
/// Creates the first segment when the partition has none.
pub(crate) fn recover(part: &PartitionDir, opts: &EmbeddedOptions) -> Result<Recovered, LogError> {
    let segments = part.segments()?;
    let Some((&base, sealed)) = segments.split_last() else {
        part.create_segment(0, opts.fsync)?;
        return Ok(Recovered {
            tail: Tail {
                base: 0,
                position: 0,
                next_offset: 0,
            },
            last_index_position: 0,
        });
    };
    // First every check, then every change.
    let mut index_rewrites = Vec::new();
    for &sealed_base in sealed {
        index_rewrites.extend(check_sealed(part, sealed_base, opts)?);
    }
    if let Some(&prev) = sealed.last() {
        let path = part.log_path(prev);
        let seg = SegmentReader::open(path.clone())?;
        let end = sealed_end(seg.file(), &path, prev, &mut Vec::new())?;
        if end != base {
            let detail = format!(
                "segment starts at offset {base} but the previous one ends at offset {end}"
            );
            return Err(corruption(&part.log_path(base), 0, detail));
        }
    }
    let last = scan_last(part, base, opts)?;
    if last.torn {
        quarantine_tail(&part.log_path(base), last.tail.position, opts.fsync)?;
    }
    for (path, entries) in index_rewrites {
        index::write(&path, &entries)?;
    }
    let index_path = part.index_path(base);
    if index::read(&index_path)?.as_deref() != Some(&index::encode(&last.entries)[..]) {
        index::write(&index_path, &last.entries)?;
    }
    Ok(Recovered {
        tail: last.tail,
        last_index_position: last.entries.last().map_or(0, |e| u64::from(e.position)),
    })
}

/// What a scan of the last segment found: where its valid data ends, whether bytes after
/// that are a torn tail to cut, and the index the valid data should have.
struct LastSegment {
    tail: Tail,
    torn: bool,
    entries: Vec<IndexEntry>,
}

/// Scans the last segment under the policy of `opts.fsync` (see the module docs).
fn scan_last(
    part: &PartitionDir,
    base: u64,
    opts: &EmbeddedOptions,
) -> Result<LastSegment, LogError> {
    let mut seg = SegmentReader::open(part.log_path(base))?;
    let mut policy = IndexPolicy::new(opts.index_interval_bytes, 0);
    let mut entries: Vec<IndexEntry> = Vec::new();
    let start = Tail {
        base,
        position: 0,
        next_offset: base,
    };
    let tail_policy = match opts.fsync {
        FsyncPolicy::EveryBatch => TailPolicy::Incomplete,
        FsyncPolicy::IntervalMs(_) | FsyncPolicy::Never => TailPolicy::BadTail,
    };
    let end = scan(
        &mut seg,
        start,
        u64::MAX,
        tail_policy,
        opts.max_record_bytes,
        &mut |pos, h| entries.extend(policy.entry_for(base, pos, h.base_offset)),
    )?;
    Ok(LastSegment {
        tail: end.tail,
        torn: end.torn,
        entries,
    })
}

/// Moves bytes `from..` of the segment at `path` into a new quarantine file beside it
/// (synced, with its directory entry) and then cuts the segment at `from`. If the cut fails,
/// the quarantine file it made is removed again, so a failure changes nothing. Returns the
/// quarantine file's path.
fn quarantine_tail(path: &Path, from: u64, fsync: FsyncPolicy) -> Result<PathBuf, LogError> {
    let io = |what: &str, e| LogError::io(format!("{what} {}", path.display()), e);
    let mut seg = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io("opening to cut its torn tail:", e))?;
    let len = seg.metadata().map_err(|e| io("reading", e))?.len();
    let tail_len = len.saturating_sub(from);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut made = None;
    for n in 0u32.. {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!(".{n}")
        };
        let q = dir.join(format!("{name}.quarantine-{from}{suffix}"));
        match File::create_new(&q) {
            Ok(mut file) => {
                let copied = copy_tail(&mut seg, from, tail_len, &mut file)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| LogError::io(format!("writing {}", q.display()), e))
                    .and_then(|()| sync_dir(dir));
                if let Err(e) = copied {
                    let _ = std::fs::remove_file(&q);
                    return Err(e);
                }
                made = Some((q, true));
                break;
            }
            // The same bytes were quarantined before (a crash between copy and cut).
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if same_bytes(&mut seg, from, tail_len, &q).unwrap_or(false) {
                    made = Some((q, false));
                    break;
                }
            }
            Err(e) => return Err(LogError::io(format!("creating {}", q.display()), e)),
        }
    }
    let (q, created) = made.expect("the loop ends with a quarantine file");
    let cut = seg
        .set_len(from)
        .map_err(|e| io("cutting the torn tail of", e));
    let cut = cut.and_then(|()| match fsync {
        FsyncPolicy::Never => Ok(()),
        _ => seg.sync_all().map_err(|e| io("syncing", e)),
    });
    if let Err(e) = cut {
        if created {
            let _ = std::fs::remove_file(&q);
        }
        return Err(e);
    }
    Ok(q)
}

/// Copies `len` bytes of `seg` from byte `from` into `out`.
fn copy_tail(seg: &mut File, from: u64, len: u64, out: &mut File) -> std::io::Result<()> {
    seg.seek(SeekFrom::Start(from))?;
    let copied = std::io::copy(&mut seg.take(len), out)?;
    if copied != len {
        return Err(std::io::Error::new(
            ErrorKind::UnexpectedEof,
            "the segment shrank while its tail was copied",
        ));
    }
    out.flush()
}

/// Whether the file at `q` holds exactly the `len` bytes of `seg` from byte `from`.
fn same_bytes(seg: &mut File, from: u64, len: u64, q: &Path) -> std::io::Result<bool> {
    let mut other = File::open(q)?;
    if other.metadata()?.len() != len {
        return Ok(false);
    }
    seg.seek(SeekFrom::Start(from))?;
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut left = len;
    while left > 0 {
        let n = left.min(a.len() as u64) as usize;
        seg.read_exact(&mut a[..n])?;
        other.read_exact(&mut b[..n])?;
        if a[..n] != b[..n] {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Checks the index of sealed segment `base`: the rewrite it needs (path and entries) when
/// it is missing or does not match the log, else `None`. Writes nothing.
fn check_sealed(
    part: &PartitionDir,
    base: u64,
    opts: &EmbeddedOptions,
) -> Result<Option<(PathBuf, Vec<IndexEntry>)>, LogError> {
    let path = part.log_path(base);
    let mut seg = SegmentReader::open(path.clone())?;
    let log_len = seg
        .file()
        .metadata()
        .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?
        .len();
    let index_path = part.index_path(base);
    let entries = index::read(&index_path)?.and_then(|b| index::parse_strict(&b, log_len));
    let sound = entries.is_some_and(|entries| {
        let last = entries.last().copied().unwrap_or_default();
        let start = Tail {
            base,
            position: u64::from(last.position),
            next_offset: base + u64::from(last.relative_offset),
        };
        index_is_complete(seg.file(), start, log_len, opts)
    });
    if sound {
        return Ok(None);
    }
    let mut policy = IndexPolicy::new(opts.index_interval_bytes, 0);
    let mut rebuilt = Vec::new();
    let start = Tail {
        base,
        position: 0,
        next_offset: base,
    };
    scan(
        &mut seg,
        start,
        u64::MAX,
        TailPolicy::Sealed,
        opts.max_record_bytes,
        &mut |pos, h| rebuilt.extend(policy.entry_for(base, pos, h.base_offset)),
    )?;
    Ok(Some((index_path, rebuilt)))
}

/// Whether a sealed segment's index, whose last entry is `last` (the segment start if it has
/// none), ends where it should: `last` points at the batch it names, and walking the batch
/// headers from there reaches the end of the file without passing a batch that should have
/// had an entry. Reads only headers (a few per segment), not payloads.
fn index_is_complete(file: &File, last: Tail, log_len: u64, opts: &EmbeddedOptions) -> bool {
    let mut policy = IndexPolicy::new(opts.index_interval_bytes, last.position);
    let mut at = last;
    while at.position < log_len {
        let Ok(Some(h)) = header_at(file, at.position) else {
            return false;
        };
        let missing = at.position != last.position
            && policy
                .entry_for(last.base, at.position, h.base_offset)
                .is_some();
        if h.base_offset != at.next_offset || missing {
            return false;
        }
        at.position += h.batch_len();
        at.next_offset = h.next_offset();
    }
    at.position == log_len
}

//! Crash recovery of a partition, run by an appender when it opens (after it holds the lock).
//!
//! The policy, in the words of raft-engine's `RecoveryMode`: tolerate a torn tail, nothing
//! else.
//!
//! - The last segment is scanned from its first byte; every batch must have valid CRCs, carry
//!   the offset after the previous batch and hold exactly its records.
//! - A *torn tail* is a final batch that is incomplete (header or payload past the end of the
//!   file) or that fails a check with no valid batch anywhere after it. It is the trace of a
//!   write that never returned, so no append acknowledged it: the file is cut at its first
//!   byte and index entries past the cut are dropped.
//! - A bad batch with a valid batch after it is *corruption*: recovery returns
//!   [`LogError::Corruption`] naming the file and byte position and changes nothing, because
//!   cutting there would lose acknowledged data.
//! - Earlier (sealed) segments were complete and synced when the appender rolled past them;
//!   recovery checks that their indexes are sound (rebuilding those that are missing or
//!   wrong) and that the last segment starts where the one before it ends.

use std::fs::{File, OpenOptions};

use super::index::{self, IndexEntry, IndexPolicy};
use super::partition::{corruption, scan, PartitionDir, Tail};
use super::segment::{header_at, SegmentReader};
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
    for (i, &sealed_base) in sealed.iter().enumerate() {
        let end = check_sealed(part, sealed_base, opts, i + 1 == sealed.len())?;
        if let Some(end) = end {
            if end != base {
                let detail = format!(
                    "segment starts at offset {base} but the previous one ends at offset {end}"
                );
                return Err(corruption(&part.log_path(base), 0, detail));
            }
        }
    }
    recover_last(part, base, opts)
}

/// Scans the last segment, cuts a torn tail, and rewrites its index if it differs from the
/// one the scan rebuilt.
fn recover_last(
    part: &PartitionDir,
    base: u64,
    opts: &EmbeddedOptions,
) -> Result<Recovered, LogError> {
    let path = part.log_path(base);
    let mut seg = SegmentReader::open(path.clone())?;
    let mut policy = IndexPolicy::new(opts.index_interval_bytes, 0);
    let mut entries: Vec<IndexEntry> = Vec::new();
    let start = Tail {
        base,
        position: 0,
        next_offset: base,
    };
    let end = scan(
        &mut seg,
        start,
        u64::MAX,
        false,
        opts.max_record_bytes,
        &mut |pos, h| entries.extend(policy.entry_for(base, pos, h.base_offset)),
    )?;
    drop(seg);
    if end.torn {
        let file = OpenOptions::new().write(true).open(&path).map_err(|e| {
            LogError::io(
                format!("opening {} to cut its torn tail", path.display()),
                e,
            )
        })?;
        file.set_len(end.tail.position)
            .map_err(|e| LogError::io(format!("cutting the torn tail of {}", path.display()), e))?;
        if opts.fsync != FsyncPolicy::Never {
            file.sync_all()
                .map_err(|e| LogError::io(format!("syncing {}", path.display()), e))?;
        }
    }
    let index_path = part.index_path(base);
    if index::read(&index_path)?.as_deref() != Some(&index::encode(&entries)[..]) {
        index::write(&index_path, &entries)?;
    }
    Ok(Recovered {
        tail: end.tail,
        last_index_position: entries.last().map_or(0, |e| u64::from(e.position)),
    })
}

/// Checks the index of sealed segment `base` and rebuilds it when it is missing or does not
/// match the log. When `want_end`, also returns the offset after the segment's last record.
fn check_sealed(
    part: &PartitionDir,
    base: u64,
    opts: &EmbeddedOptions,
    want_end: bool,
) -> Result<Option<u64>, LogError> {
    let path = part.log_path(base);
    let mut seg = SegmentReader::open(path.clone())?;
    let log_len = seg
        .file()
        .metadata()
        .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?
        .len();
    let index_path = part.index_path(base);
    let entries = index::read(&index_path)?.and_then(|b| index::parse_strict(&b, log_len));
    let trusted = entries.and_then(|entries| {
        let last = entries.last().copied().unwrap_or_default();
        let start = Tail {
            base,
            position: u64::from(last.position),
            next_offset: base + u64::from(last.relative_offset),
        };
        index_is_complete(seg.file(), start, log_len, opts).then_some(start)
    });
    if let Some(start) = trusted {
        if !want_end {
            return Ok(None);
        }
        let end = scan(
            &mut seg,
            start,
            u64::MAX,
            true,
            opts.max_record_bytes,
            &mut |_, _| {},
        )?;
        return Ok(Some(end.tail.next_offset));
    }
    let mut policy = IndexPolicy::new(opts.index_interval_bytes, 0);
    let mut rebuilt = Vec::new();
    let start = Tail {
        base,
        position: 0,
        next_offset: base,
    };
    let end = scan(
        &mut seg,
        start,
        u64::MAX,
        true,
        opts.max_record_bytes,
        &mut |pos, h| rebuilt.extend(policy.entry_for(base, pos, h.base_offset)),
    )?;
    index::write(&index_path, &rebuilt)?;
    Ok(want_end.then_some(end.tail.next_offset))
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

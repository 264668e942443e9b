//! Walking a segment's batch headers: how a reader finds where the batch holding an offset
//! starts, without trusting anything but the log itself.
//!
//! A byte position inside a segment means something only if it was reached by walking batch
//! headers (`batch_len` after `batch_len`) from a position already known to start a batch:
//! the segment start, or a position an earlier walk or scan reached. Any other position,
//! such as one read from the `.index` file, may point into the middle of a payload, where an
//! attacker can plant a perfectly valid batch (CRCs and all) that the log does not hold. So
//! readers never seek by the index; they walk.
//!
//! ```text
//!  segment: | hdr payload........ | hdr payload.. | hdr payload....... | ...
//!            ^ start               ^ +batch_len    ^ +batch_len
//!            reads 40 bytes here, then jumps; payloads are never read
//! ```
//!
//! A walk reads only headers: where batches are large, one 40-byte `pread` per batch; where
//! they are small, one 64 KiB read covers many headers. Payload CRCs are not checked here;
//! the reader checks each batch in full before it returns any of its records.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::batch::{parse_header, BatchHeader, HeaderError, HEADER_LEN};
use super::partition::{corruption, Tail};
use super::segment::read_full_at;
use crate::error::LogError;

/// How much a walk reads at once where batches are small.
const WALK_CHUNK: usize = 64 * 1024;

/// Bytes of segment between two positions a walk offers to remember (see [`Landmarks`]).
const LANDMARK_SPACING: u64 = 1 << 20;

/// Why a walk stopped before reaching the offset it was looking for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// It reached the batch that holds the offset (or the one after it ends at the offset).
    Reached,
    /// The file ends exactly at the walk's position.
    End,
    /// The file ends inside the header or payload of the batch at the walk's position.
    Incomplete,
    /// The 40 bytes at the walk's position are not a valid batch header.
    BadHeader(String),
}

/// Where a walk stopped: `at` is a batch boundary reached from the trusted start, and
/// `last` the start of the complete batch walked just before it (if any).
#[derive(Debug)]
pub(crate) struct Walked {
    pub at: Tail,
    pub last: Option<Tail>,
    pub stop: Stop,
}

/// Walks the headers of segment `file` (at `path`) from the batch boundary `start` until the
/// batch that holds offset `stop_at` (it stops at that batch's first byte), or until the file
/// ends or a header is bad. Every header must carry the offset that follows the previous
/// batch; one that does not is corruption (a valid header in the wrong place). Pushes to
/// `marks` a batch boundary about every [`LANDMARK_SPACING`] bytes that it walks past.
pub(crate) fn walk(
    file: &File,
    path: &Path,
    start: Tail,
    stop_at: u64,
    marks: &mut Vec<Tail>,
) -> Result<Walked, LogError> {
    let len = file
        .metadata()
        .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?
        .len();
    // `buf[..have]` holds the file's bytes from `buf_start` (allocated once, never zeroed
    // again: a walk may refill it hundreds of thousands of times).
    let mut buf = vec![0u8; WALK_CHUNK];
    let mut have = 0usize;
    let mut buf_start = 0u64;
    let mut big_batches = false;
    let mut at = start;
    let mut last = None;
    loop {
        if at.next_offset > stop_at {
            // Only possible at the start (a walk stops at the batch holding `stop_at`).
            return Ok(Walked {
                at,
                last,
                stop: Stop::Reached,
            });
        }
        if at.position >= len {
            let stop = if at.position == len {
                Stop::End
            } else {
                Stop::Incomplete
            };
            return Ok(Walked { at, last, stop });
        }
        let buffered =
            buf_start <= at.position && at.position + HEADER_LEN as u64 <= buf_start + have as u64;
        if !buffered {
            // Large batches: read just their headers; small ones: many headers at a time.
            let want = if big_batches { HEADER_LEN } else { WALK_CHUNK };
            let want = want.min((len - at.position) as usize);
            have = read_full_at(file, &mut buf[..want], at.position)
                .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
            buf_start = at.position;
        }
        let from = (at.position - buf_start) as usize;
        let h: BatchHeader = match parse_header(&buf[from..have]) {
            Ok(h) => h,
            Err(HeaderError::Incomplete) => {
                return Ok(Walked {
                    at,
                    last,
                    stop: Stop::Incomplete,
                })
            }
            Err(HeaderError::Invalid(detail)) => {
                return Ok(Walked {
                    at,
                    last,
                    stop: Stop::BadHeader(detail),
                })
            }
        };
        if h.base_offset != at.next_offset {
            let detail = format!(
                "batch starts at offset {}, expected {}",
                h.base_offset, at.next_offset
            );
            return Err(corruption(path, at.position, detail));
        }
        if at.position + h.batch_len() > len {
            return Ok(Walked {
                at,
                last,
                stop: Stop::Incomplete,
            });
        }
        if h.next_offset() > stop_at {
            return Ok(Walked {
                at,
                last,
                stop: Stop::Reached,
            });
        }
        big_batches = h.batch_len() > WALK_CHUNK as u64;
        if marks
            .last()
            .map_or(start.position, |m| m.position)
            .saturating_add(LANDMARK_SPACING)
            <= at.position
        {
            marks.push(at);
        }
        last = Some(at);
        at.position += h.batch_len();
        at.next_offset = h.next_offset();
    }
}

/// The offset after the last record of sealed segment `file`, which must be whole: its
/// headers, walked from the start, must end exactly at the end of the file. Anything else
/// (a bad header, a batch the file ends inside) is corruption, since a segment is complete
/// and synced before the appender rolls past it.
pub(crate) fn sealed_end(
    file: &File,
    path: &Path,
    base: u64,
    marks: &mut Vec<Tail>,
) -> Result<u64, LogError> {
    let start = Tail {
        base,
        position: 0,
        next_offset: base,
    };
    let walked = walk(file, path, start, u64::MAX, marks)?;
    let detail = match walked.stop {
        Stop::End | Stop::Reached => return Ok(walked.at.next_offset),
        Stop::Incomplete => "the segment ends inside this batch".to_string(),
        Stop::BadHeader(detail) => detail,
    };
    Err(corruption(
        path,
        walked.at.position,
        format!("{detail} in a sealed segment"),
    ))
}

/// Batch boundaries that walks have confirmed, remembered by an `EmbeddedLog` handle so that
/// the next walk in the same segment starts near its target instead of at the segment start
/// (about one per MiB of segment, so memory stays small). Only boundaries that cannot stop
/// being boundaries are kept: anywhere in a sealed segment, and in the last segment up to an
/// end that a full scan has checked (recovery never cuts before a batch whose CRCs match).
#[derive(Default)]
pub(crate) struct Landmarks {
    by_segment: Mutex<HashMap<PathBuf, Vec<Tail>>>,
}

impl Landmarks {
    /// The furthest remembered boundary of segment `path` whose next offset is at most
    /// `offset`, if it is past `start`; else `start`.
    pub fn best(&self, path: &Path, start: Tail, offset: u64) -> Tail {
        let map = super::lock(&self.by_segment);
        let Some(marks) = map.get(path) else {
            return start;
        };
        let n = marks.partition_point(|m| m.next_offset <= offset);
        match n.checked_sub(1).map(|i| marks[i]) {
            Some(m) if m.position > start.position && m.next_offset <= offset => m,
            _ => start,
        }
    }

    /// Remembers the boundaries `found` in segment `path` that lie at or before byte `until`.
    pub fn remember(&self, path: &Path, found: &[Tail], until: u64) {
        if found.is_empty() {
            return;
        }
        let mut map = super::lock(&self.by_segment);
        let marks = map.entry(path.to_path_buf()).or_default();
        marks.extend(found.iter().filter(|m| m.position <= until));
        marks.sort_unstable_by_key(|m| m.position);
        marks.dedup_by_key(|m| m.position);
    }
}

//! Readers of a partition: any number, in any process, alongside one appender.
//!
//! A reader never writes. It finds the batch holding its start offset by walking batch
//! headers from the segment start (never by the index: see [`super::walk`]), so that every
//! reader, whatever offset it starts at, sees the same batches. It reads whole batches through
//! a large buffer, checks each one (CRCs, offsets, record framing) before returning any of its
//! records, and so never shows a partial or reordered record. At the end of the data it
//! distinguishes:
//!
//! ```text
//! end of the last segment, or a batch the file ends
//!   inside (header or payload) ......................... not yet written: wait and re-read
//! end of a sealed segment ............................... continue in the next segment
//! a complete batch (or 40-byte header) that fails a
//!   check, anywhere, or anything wrong in a sealed
//!   segment ............................................. LogError::Corruption
//! ```
//!
//! Why a complete bad batch at the very end is corruption and not "being written": the
//! appender writes each batch (header and payload) with one write call, and a file only ever
//! shows a prefix of what is being written to it, so a batch in progress always looks
//! incomplete. A complete one that fails its CRC was damaged after it was written (or is
//! the debris of a crash that recovery has not yet sorted out).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::batch::{decode_record, decode_view_split, record_body, BatchHeader, NO_HEADERS};
use super::partition::{complete_but_bad, corruption, PartitionDir, Tail};
use super::segment::{At, SegmentReader};
use super::{walk, Shared};
use crate::api::{Reader, RecordView, StoredRecord};
use crate::error::LogError;

/// Receives each record's offset and body; an `Err` names what is wrong with the body.
type RecordSink<'s> = dyn FnMut(u64, &[u8]) -> Result<(), String> + 's;

/// Longest sleep between two looks at the files while `poll` waits (appenders in other
/// processes cannot wake us).
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// How long a reader at the end of the last segment goes on trusting its last listing of
/// the partition directory while the one segment that may legitimately follow (the one
/// starting where this one ends) does not exist: a look then costs a `stat` instead of a
/// listing (an idle ledger node spent 12% of its thread listing), and a segment with any
/// other base, which is corruption, is still found within this time.
const RELIST_AFTER: Duration = Duration::from_millis(100);

/// The batch whose records are being returned.
struct Current {
    /// File position of the batch.
    pos: u64,
    header: BatchHeader,
    /// Position of the next record inside the payload.
    record_pos: usize,
    /// Offset of that record.
    offset: u64,
}

/// Reads one partition of an embedded log in offset order.
pub(crate) struct EmbeddedReader {
    part: PartitionDir,
    max_record_bytes: usize,
    shared: Arc<Shared>,
    /// The segment being read and its base offset (`None` while the partition has none).
    seg: Option<(u64, SegmentReader)>,
    /// Position of the next batch to load in `seg`.
    read_pos: u64,
    /// Offset the batch at `read_pos` must start with.
    batch_offset: u64,
    current: Option<Current>,
    /// Next offset to return; records below it (the start of the first batch) are skipped.
    position: u64,
    /// The current segment's end and the time when a listing of the partition directory
    /// last found no segment after it (see [`later_segment`]).
    listed: Option<(u64, Instant)>,
}

impl EmbeddedReader {
    /// A reader at `from`. Requires `from` to be at least the partition's start offset;
    /// `segments` are its segment bases, ascending.
    pub fn open(
        part: PartitionDir,
        from: u64,
        segments: &[u64],
        max_record_bytes: usize,
        shared: Arc<Shared>,
    ) -> Result<Self, LogError> {
        let mut reader = EmbeddedReader {
            part,
            max_record_bytes,
            shared,
            seg: None,
            read_pos: 0,
            batch_offset: from,
            current: None,
            position: from,
            listed: None,
        };
        if let Some(&base) = segments.iter().rev().find(|&&b| b <= from) {
            reader.enter_segment(base)?;
            // Trusted starting points: the segment start, or the end of the valid data
            // that this handle's appender or `end_offset` established.
            let start = reader
                .shared
                .tail(&reader.part)
                .filter(|t| t.base == base && t.next_offset <= from)
                .unwrap_or(Tail {
                    base,
                    position: 0,
                    next_offset: base,
                });
            let (_, seg) = reader.seg.as_ref().expect("just entered");
            let landmarks = &reader.shared.landmarks;
            let start = landmarks.best(seg.path(), start, from);
            let mut marks = Vec::new();
            let walked = walk::walk(seg.file(), seg.path(), start, from, &mut marks)?;
            // What may be remembered: all of a sealed segment, a checked prefix of the last.
            let until = if segments.iter().any(|&b| b > base) {
                u64::MAX
            } else {
                reader
                    .shared
                    .tail(&reader.part)
                    .filter(|t| t.base == base)
                    .map_or(0, |t| t.position)
            };
            landmarks.remember(seg.path(), &marks, until);
            reader.read_pos = walked.at.position;
            reader.batch_offset = walked.at.next_offset;
        }
        Ok(reader)
    }

    fn enter_segment(&mut self, base: u64) -> Result<(), LogError> {
        self.seg = Some((base, SegmentReader::open(self.part.log_path(base))?));
        self.read_pos = 0;
        self.batch_offset = base;
        Ok(())
    }

    /// Hands up to `max - *got` available record bodies (with their offsets) to `sink`
    /// without waiting, counting them in `got`.
    fn read_available(
        &mut self,
        max: usize,
        got: &mut usize,
        sink: &mut RecordSink<'_>,
    ) -> Result<(), LogError> {
        while *got < max {
            if let (Some(cur), Some((_, seg))) = (&mut self.current, &self.seg) {
                if cur.offset < cur.header.next_offset() {
                    let payload = seg.payload(cur.pos, &cur.header);
                    let body = record_body(payload, cur.record_pos, self.max_record_bytes)
                        .map_err(|d| corruption(seg.path(), cur.pos, d))?;
                    let offset = cur.offset;
                    cur.record_pos += 4 + body.len();
                    cur.offset += 1;
                    if offset >= self.position {
                        sink(offset, body).map_err(|d| corruption(seg.path(), cur.pos, d))?;
                        *got += 1;
                        self.position = offset + 1;
                    }
                    continue;
                }
                if cur.record_pos != cur.header.payload_len as usize {
                    let detail = format!(
                        "{} bytes after the last of {} records",
                        cur.header.payload_len as usize - cur.record_pos,
                        cur.header.record_count
                    );
                    return Err(corruption(seg.path(), cur.pos, detail));
                }
            }
            self.current = None;
            if !self.next_batch()? {
                break;
            }
        }
        Ok(())
    }

    /// Loads the next batch (or moves to the next segment); `false` when nothing more is
    /// written yet.
    fn next_batch(&mut self) -> Result<bool, LogError> {
        let Some((base, seg)) = &mut self.seg else {
            return self.find_first_segment();
        };
        let base = *base;
        let first = seg.batch_at(self.read_pos)?;
        if let At::Batch(h) = first {
            if h.base_offset != self.batch_offset {
                let detail = format!(
                    "batch starts at offset {}, expected {}",
                    h.base_offset, self.batch_offset
                );
                return Err(corruption(seg.path(), self.read_pos, detail));
            }
            // Records are checked as they are decoded (the CRCs already matched): one pass
            // over the payload instead of two.
            self.current = Some(Current {
                pos: self.read_pos,
                header: h,
                record_pos: 0,
                offset: h.base_offset,
            });
            self.read_pos += h.batch_len();
            self.batch_offset = h.next_offset();
            return Ok(true);
        }
        let later = later_segment(&self.part, &mut self.listed, base, self.batch_offset)?;
        let Some(next) = later else {
            // The last segment: a batch the file ends inside may still be being written.
            let (At::BadHeader(_) | At::BadPayload(..)) = first else {
                return Ok(false);
            };
            // Look once more with a fresh read: the buffer may mix bytes from before and
            // after a recovery cut the tail and an appender wrote a new batch there.
            return match seg.batch_at(self.read_pos)? {
                At::Batch(_) => Ok(true),
                At::End | At::Incomplete => Ok(false),
                At::BadHeader(detail) | At::BadPayload(_, detail) => {
                    Err(complete_but_bad(seg.path(), self.read_pos, &detail))
                }
            };
        };
        // A later segment exists, so this one is sealed; look again, since the appender may
        // have finished it after our first look.
        let detail = match seg.batch_at(self.read_pos)? {
            At::Batch(_) => return Ok(true),
            At::End if next == self.batch_offset => {
                self.enter_segment(next)?;
                return Ok(true);
            }
            At::End => {
                let detail = format!(
                    "segment starts at offset {next} but the previous one ends at offset {}",
                    self.batch_offset
                );
                return Err(corruption(&self.part.log_path(next), 0, detail));
            }
            At::Incomplete => "the segment ends inside this batch".to_string(),
            At::BadHeader(d) | At::BadPayload(_, d) => d,
        };
        Err(corruption(
            seg.path(),
            self.read_pos,
            format!("{detail} in a sealed segment"),
        ))
    }

    /// Opens the partition's first segment once an appender has created it.
    fn find_first_segment(&mut self) -> Result<bool, LogError> {
        let Some(&base) = self.part.segments()?.first() else {
            return Ok(false);
        };
        self.enter_segment(base)?;
        self.position = self.position.max(base);
        Ok(true)
    }
}

impl EmbeddedReader {
    /// Waits up to `wait` for records and hands up to `max` of them to `sink`.
    fn poll_with(
        &mut self,
        max: usize,
        wait: Duration,
        sink: &mut RecordSink<'_>,
    ) -> Result<usize, LogError> {
        let mut got = 0;
        if max == 0 {
            return Ok(0);
        }
        let start = Instant::now();
        let mut backoff = Duration::from_millis(1);
        loop {
            let seen = self.shared.generation();
            if let Err(e) = self.read_available(max, &mut got, sink) {
                // Hand out the good records first; the reader stays in front of the bad
                // batch, so the next poll reports the error again.
                return if got == 0 { Err(e) } else { Ok(got) };
            }
            let waited = start.elapsed();
            if got > 0 || waited >= wait {
                return Ok(got);
            }
            self.shared
                .wait_for_change(seen, backoff.min(wait - waited));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

impl Reader for EmbeddedReader {
    fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredRecord>, LogError> {
        let mut out = Vec::with_capacity(max.min(4096));
        self.poll_with(max, wait, &mut |offset, body| {
            out.push(StoredRecord {
                offset,
                record: decode_record(body)?,
            });
            Ok(())
        })?;
        Ok(out)
    }

    fn poll_visit(
        &mut self,
        max: usize,
        wait: Duration,
        visit: &mut dyn FnMut(&RecordView<'_>),
    ) -> Result<usize, LogError> {
        self.poll_with(max, wait, &mut |offset, body| {
            // Split once here; the verifier walks the headers more than once.
            let mut slots = NO_HEADERS;
            visit(&decode_view_split(offset, body, &mut slots)?);
            Ok(())
        })
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// The base of the first segment of `part` after `base`, the current segment, which ends at
/// `end`. Only the segment starting at `end` can follow it: while that file does not exist,
/// a listing that found nothing after this same end less than [`RELIST_AFTER`] ago stands
/// (`listed`: that end and the time). A reader that reaches a new end always lists, so a
/// missing or misnamed segment is found at the first look there, as before.
fn later_segment(
    part: &PartitionDir,
    listed: &mut Option<(u64, Instant)>,
    base: u64,
    end: u64,
) -> Result<Option<u64>, LogError> {
    let recent = listed.is_some_and(|(at, t)| at == end && t.elapsed() < RELIST_AFTER);
    if recent && !part.log_path(end).exists() {
        return Ok(None);
    }
    let later = part.segments()?.into_iter().find(|&b| b > base);
    // Only "nothing after this end" is remembered: what a later segment leads to (entering
    // it, or a corruption error that the next poll must give again) is decided anew.
    *listed = later.is_none().then(|| (end, Instant::now()));
    Ok(later)
}

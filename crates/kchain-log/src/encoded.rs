//! Records built in place in the segment encoding, for a writer that would otherwise build
//! [`Record`]s only for the appender to copy them into a batch.
//!
//! ```text
//! writer:   EncodedRecords::with_lengths(buf, lens) ──► record_slots() ──► RecordEncoder per
//!           record (on any thread: the slots are disjoint) ──► content filled in place
//! appender: append_encoded ──► every record checked (lengths, UTF-8 names) ──► batch header
//!           written into the 40 bytes kept in front ──► one write(2), as append does
//! ```
//!
//! The bytes are the embedded log's record encoding (`docs/log-format.md`), so a batch
//! appended this way is byte for byte the batch [`Appender::append`](crate::Appender::append)
//! writes for the same records. The embedded appender checks every record before it writes (as
//! a reader does after it reads), so a writer's mistake can fail an append but never store a
//! malformed batch. Only an appender whose [`Appender::takes_encoded`](crate::Appender) says
//! so takes records this way (the embedded log's); for the others a writer builds
//! [`Record`](crate::Record)s.

/// Bytes kept in front of the records for the batch header (the embedded log's `HEADER_LEN`).
pub(crate) const HEADER_LEN: usize = 40;
/// Smallest encoded record: length, timestamp, two null lengths, header count.
pub(crate) const MIN_RECORD_LEN: usize = 4 + 8 + 4 + 4 + 4;

/// A batch of records in the segment encoding, built in place by a writer (see the module
/// docs), with room for the batch header in front so that the appender writes it with one
/// call.
#[derive(Debug, Default)]
pub struct EncodedRecords {
    /// `HEADER_LEN` bytes for the batch header, then the records back to back.
    buf: Vec<u8>,
    /// Where each record ends, relative to the payload.
    ends: Vec<usize>,
    /// Names the slots last handed out, so that only their encoders' receipts count.
    slots_id: u64,
    /// The largest timestamp, once every record has a receipt (see [`Finished`]).
    confirmed_max_ts: Option<i64>,
}

/// The record bytes one [`RecordEncoder`] fills (see [`EncodedRecords::record_slots`]).
#[derive(Debug)]
pub struct RecordSlot<'a> {
    bytes: &'a mut [u8],
    slots_id: u64,
}

/// A receipt that a [`RecordEncoder`] wrote its record whole and in order (the only way to
/// get one), for [`EncodedRecords::confirm`].
#[derive(Clone, Copy, Debug)]
pub struct Finished {
    slots_id: u64,
    timestamp_ms: i64,
}

/// A fresh name for a set of slots.
fn next_slots_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl EncodedRecords {
    /// Room for records of the given encoded lengths (each from [`RecordEncoder::len`]),
    /// reusing the allocation of `buf` (from [`EncodedRecords::into_buffer`]; its bytes
    /// do not matter). Fill every record through [`EncodedRecords::record_slots`].
    pub fn with_lengths(mut buf: Vec<u8>, lens: impl IntoIterator<Item = usize>) -> Self {
        let mut ends = Vec::new();
        let mut end = 0usize;
        for len in lens {
            end += len;
            ends.push(end);
        }
        // Every byte is overwritten by the encoders: resizing zero-fills only what the
        // buffer never held before.
        buf.resize(HEADER_LEN + end, 0);
        EncodedRecords {
            buf,
            ends,
            slots_id: 0,
            confirmed_max_ts: None,
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of each record, in order, to hand to a [`RecordEncoder`] each. Receipts
    /// of slots handed out before no longer count.
    pub fn record_slots(&mut self) -> Vec<RecordSlot<'_>> {
        self.slots_id = next_slots_id();
        self.confirmed_max_ts = None;
        let mut rest = &mut self.buf[HEADER_LEN..];
        let mut start = 0;
        let mut slots = Vec::with_capacity(self.ends.len());
        for &end in &self.ends {
            let (bytes, after) = std::mem::take(&mut rest).split_at_mut(end - start);
            slots.push(RecordSlot {
                bytes,
                slots_id: self.slots_id,
            });
            rest = after;
            start = end;
        }
        slots
    }

    /// Hands over the receipts of the encoders of the slots last handed out. With one for
    /// every record, the appender knows every record is well formed and skips checking
    /// them one by one (without, it checks them, as a reader would). Returns whether they
    /// were all there.
    pub fn confirm(&mut self, receipts: impl IntoIterator<Item = Finished>) -> bool {
        let (mut n, mut max_ts) = (0usize, i64::MIN);
        for r in receipts {
            if r.slots_id != self.slots_id {
                return false;
            }
            n += 1;
            max_ts = max_ts.max(r.timestamp_ms);
        }
        let whole = n == self.ends.len() && self.slots_id != 0;
        self.confirmed_max_ts = whole.then_some(max_ts);
        whole
    }

    /// The largest timestamp, if [`EncodedRecords::confirm`] vouched for every record.
    pub(crate) fn confirmed_max_ts(&self) -> Option<i64> {
        self.confirmed_max_ts
    }

    /// The buffer back, for the next batch.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Where each record ends, relative to the payload.
    pub(crate) fn ends(&self) -> &[usize] {
        &self.ends
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf[HEADER_LEN..]
    }

    /// The whole batch: header room, then the payload.
    pub(crate) fn batch_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// Writes one record into a slot of exactly [`RecordEncoder::len`] bytes, field by field in
/// the encoding's order: [`RecordEncoder::new`] (length and timestamp), the key, the value,
/// the header count, then each header. Parts the writer fills later (a value it encrypts in
/// place, a header value it knows only after hashing) are handed back as slices of the slot.
///
/// Requires the calls in that order (a call out of order panics) and lengths that add up to
/// the slot; [`RecordEncoder::finish`] gives a receipt only for a record written whole, and
/// the appender refuses a batch with any record that does not decode.
pub struct RecordEncoder<'a> {
    rest: &'a mut [u8],
    slots_id: u64,
    timestamp_ms: i64,
    stage: Stage,
}

/// Where a [`RecordEncoder`] is in its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Key,
    Value,
    Count,
    /// This many headers still to write.
    Headers(usize),
}

impl<'a> RecordEncoder<'a> {
    /// Encoded length of a record (its length prefix included) with a key and a value of
    /// these lengths (`None`: null) and headers of these (name, value) lengths.
    pub fn len(
        key: Option<usize>,
        value: Option<usize>,
        headers: impl IntoIterator<Item = (usize, usize)>,
    ) -> usize {
        MIN_RECORD_LEN
            + key.unwrap_or(0)
            + value.unwrap_or(0)
            + headers.into_iter().map(|(n, v)| 8 + n + v).sum::<usize>()
    }

    /// Starts the record that fills `slot`: its length and timestamp.
    pub fn new(slot: RecordSlot<'a>, timestamp_ms: i64) -> Self {
        let body_len = u32::try_from(slot.bytes.len().saturating_sub(4)).unwrap_or(u32::MAX);
        let mut e = RecordEncoder {
            rest: slot.bytes,
            slots_id: slot.slots_id,
            timestamp_ms,
            stage: Stage::Key,
        };
        e.put(&body_len.to_be_bytes());
        e.put(&timestamp_ms.to_be_bytes());
        e
    }

    /// Moves from `from` to `to`; panics on a call out of order (a bug of the caller).
    fn step(&mut self, from: Stage, to: Stage) {
        assert_eq!(self.stage, from, "RecordEncoder calls out of order");
        self.stage = to;
    }

    fn carve(&mut self, n: usize) -> &'a mut [u8] {
        let (head, tail) = std::mem::take(&mut self.rest).split_at_mut(n);
        self.rest = tail;
        head
    }

    fn put(&mut self, bytes: &[u8]) {
        self.carve(bytes.len()).copy_from_slice(bytes);
    }

    /// A length-prefixed field of `len` bytes (`i32`, -1 for null), returned to fill.
    fn nullable(&mut self, len: Option<usize>) -> Option<&'a mut [u8]> {
        match len {
            None => {
                self.put(&(-1i32).to_be_bytes());
                None
            }
            Some(n) => {
                self.put(&i32::try_from(n).unwrap_or(-1).to_be_bytes());
                Some(self.carve(n))
            }
        }
    }

    /// The key.
    pub fn key(&mut self, key: Option<&[u8]>) {
        self.step(Stage::Key, Stage::Value);
        if let (Some(slot), Some(k)) = (self.nullable(key.map(<[u8]>::len)), key) {
            slot.copy_from_slice(k);
        }
    }

    /// The value.
    pub fn value(&mut self, value: Option<&[u8]>) {
        self.step(Stage::Value, Stage::Count);
        if let (Some(slot), Some(v)) = (self.nullable(value.map(<[u8]>::len)), value) {
            slot.copy_from_slice(v);
        }
    }

    /// Room for a value of `len` bytes (`None`: null), to fill in place.
    pub fn value_slot(&mut self, len: Option<usize>) -> Option<&'a mut [u8]> {
        self.step(Stage::Value, Stage::Count);
        self.nullable(len)
    }

    /// The number of headers that follow.
    pub fn header_count(&mut self, count: usize) {
        self.step(Stage::Count, Stage::Headers(count));
        self.put(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
    }

    /// One header.
    pub fn header(&mut self, name: &str, value: &[u8]) {
        self.header_slot(name, value.len()).copy_from_slice(value);
    }

    /// One header whose value of `len` bytes is filled in place.
    pub fn header_slot(&mut self, name: &str, len: usize) -> &'a mut [u8] {
        match self.stage {
            Stage::Headers(n) if n > 0 => self.stage = Stage::Headers(n - 1),
            _ => panic!("RecordEncoder: a header out of order or beyond the count"),
        }
        self.put(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.put(name.as_bytes());
        self.put(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        self.carve(len)
    }

    /// Bytes of the slot not written yet (0 for a record written whole).
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The receipt for a record written whole (every field, every header counted, every
    /// byte of the slot), or `None`.
    pub fn finish(self) -> Option<Finished> {
        (self.stage == Stage::Headers(0) && self.rest.is_empty()).then_some(Finished {
            slots_id: self.slots_id,
            timestamp_ms: self.timestamp_ms,
        })
    }
}

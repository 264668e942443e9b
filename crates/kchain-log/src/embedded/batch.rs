//! Batch and record encoding: the bytes inside a segment file. Pure: no I/O.
//!
//! ```text
//! batch  = header(40) payload(payload_len)
//! header = magic "KCLB" | version u8 = 1 | flags u8 = 0 | reserved u16 = 0
//!        | base_offset u64 | record_count u32 | payload_len u32
//!        | max_timestamp_ms i64 | payload_crc u32 | header_crc u32
//! record = body_len u32 | timestamp_ms i64 | key_len i32 (-1 = null) | key
//!        | value_len i32 (-1 = null) | value | header_count u32
//!        | (name_len u32 | name UTF-8 | value_len u32 | value) * header_count
//! ```
//!
//! All integers are big-endian. `payload_crc` is CRC32C (Castagnoli) of the payload;
//! `header_crc` is CRC32C of header bytes 0..36, so it covers `payload_crc` too. See
//! `docs/log-format.md` for the full description and the reasons.
//!
//! Every decoder here is bounds-checked: any byte string gives a value or an error, never a
//! panic, and no length read from the input is trusted before it has been checked against the
//! bytes that remain.

use std::mem::MaybeUninit;

use crate::api::{Header, HeadersRef, Record, RecordView};

/// The four bytes every batch starts with.
pub(crate) const MAGIC: [u8; 4] = *b"KCLB";
/// The only batch format version this code reads and writes.
pub(crate) const VERSION: u8 = 1;
/// Length of the fixed batch header.
pub(crate) const HEADER_LEN: usize = 40;
/// Smallest possible encoded record: body_len, timestamp, two null lengths, header count.
pub(crate) const MIN_RECORD_LEN: usize = 4 + 8 + 4 + 4 + 4;

/// The decoded fixed header of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: u64,
    pub record_count: u32,
    pub payload_len: u32,
    pub max_timestamp_ms: i64,
    pub payload_crc: u32,
}

impl BatchHeader {
    /// Bytes of the whole batch, header included.
    pub fn batch_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.payload_len)
    }

    /// The offset of the record after this batch. `parse_header` guarantees it fits in u64.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count)
    }

    /// Encodes the header, computing `header_crc`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4] = VERSION;
        // h[5] flags and h[6..8] reserved stay zero.
        h[8..16].copy_from_slice(&self.base_offset.to_be_bytes());
        h[16..20].copy_from_slice(&self.record_count.to_be_bytes());
        h[20..24].copy_from_slice(&self.payload_len.to_be_bytes());
        h[24..32].copy_from_slice(&self.max_timestamp_ms.to_be_bytes());
        h[32..36].copy_from_slice(&self.payload_crc.to_be_bytes());
        let crc = crc32c::crc32c(&h[0..36]);
        h[36..40].copy_from_slice(&crc.to_be_bytes());
        h
    }
}

/// Why the bytes at a position are not a valid batch header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes are available.
    Incomplete,
    /// The header bytes are all there but wrong.
    Invalid(String),
}

/// Parses and checks a batch header from the start of `bytes`.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<BatchHeader, HeaderError> {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(HeaderError::Incomplete);
    };
    if h[0..4] != MAGIC {
        return Err(HeaderError::Invalid(format!(
            "bad magic {:02x?} (expected \"KCLB\")",
            &h[0..4]
        )));
    }
    let stored_crc = be_u32(&h[36..40]);
    let crc = crc32c::crc32c(&h[0..36]);
    if stored_crc != crc {
        return Err(HeaderError::Invalid(format!(
            "header CRC32C mismatch (stored {stored_crc:08x}, computed {crc:08x})"
        )));
    }
    if h[4] != VERSION {
        return Err(HeaderError::Invalid(format!(
            "unsupported batch version {} (this build reads {VERSION})",
            h[4]
        )));
    }
    if h[5..8] != [0, 0, 0] {
        return Err(HeaderError::Invalid("non-zero flags/reserved bytes".into()));
    }
    let header = BatchHeader {
        base_offset: be_u64(&h[8..16]),
        record_count: be_u32(&h[16..20]),
        payload_len: be_u32(&h[20..24]),
        max_timestamp_ms: be_u64(&h[24..32]) as i64,
        payload_crc: be_u32(&h[32..36]),
    };
    if header.record_count == 0 {
        return Err(HeaderError::Invalid("batch with zero records".into()));
    }
    if header
        .base_offset
        .checked_add(u64::from(header.record_count))
        .is_none()
    {
        return Err(HeaderError::Invalid(
            "base offset + record count overflows".into(),
        ));
    }
    if (header.payload_len as usize) < header.record_count as usize * MIN_RECORD_LEN {
        return Err(HeaderError::Invalid(format!(
            "payload of {} bytes cannot hold {} records",
            header.payload_len, header.record_count
        )));
    }
    Ok(header)
}

/// What the bytes at one position of a segment hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A complete batch whose CRCs match; its payload is `bytes[HEADER_LEN..batch_len]`.
    Batch(BatchHeader),
    /// The batch runs past the end of `bytes`: `needed` bytes from the start would decide.
    Incomplete { needed: u64 },
    /// The header is wrong (bad magic, version or header CRC).
    BadHeader(String),
    /// The header is valid and the payload complete, but the payload CRC does not match.
    BadPayload(BatchHeader, String),
}

/// Parses the batch at the start of `bytes` and checks its CRCs.
pub(crate) fn parse_batch(bytes: &[u8]) -> Parsed {
    let header = match parse_header(bytes) {
        Ok(h) => h,
        Err(HeaderError::Incomplete) => {
            return Parsed::Incomplete {
                needed: HEADER_LEN as u64,
            }
        }
        Err(HeaderError::Invalid(detail)) => return Parsed::BadHeader(detail),
    };
    let len = header.batch_len();
    if (bytes.len() as u64) < len {
        return Parsed::Incomplete { needed: len };
    }
    let payload = &bytes[HEADER_LEN..len as usize];
    let crc = payload_crc(payload);
    if crc != header.payload_crc {
        let detail = format!(
            "payload CRC32C mismatch (stored {:08x}, computed {crc:08x})",
            header.payload_crc
        );
        return Parsed::BadPayload(header, detail);
    }
    Parsed::Batch(header)
}

/// The CRC32C of a batch payload, for every writer and reader of batches: as
/// `crc32c::crc32c` computes it (tested), but with the carry-less multiplications of
/// AVX-512 (VPCLMULQDQ) or SSE (PCLMULQDQ) where the CPU has them, detected at run time:
/// every record appended or returned passes through it, and payloads are large (a batch of
/// 8,192 records of 256 bytes is 2.3 MB). Short payloads keep the crc32c crate's hardware
/// CRC instruction, which is as fast there.
#[inline]
pub(crate) fn payload_crc(payload: &[u8]) -> u32 {
    if payload.len() < 1024 {
        return crc32c::crc32c(payload);
    }
    // CRC-32/ISCSI is CRC32C; the result fits 32 bits.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, payload) as u32
}

/// Why an append cannot be encoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EncodeError {
    RecordTooLarge { size: usize, limit: usize },
    BatchTooLarge(usize),
}

/// Encodes `records` as one batch with offsets from `base_offset` into `buf` (cleared first).
/// Requires `records` to be non-empty and `max_record_bytes <= i32::MAX`. On error `buf`
/// holds garbage and nothing has been written anywhere.
pub(crate) fn encode_batch(
    buf: &mut Vec<u8>,
    base_offset: u64,
    records: &[Record],
    max_record_bytes: usize,
) -> Result<BatchHeader, EncodeError> {
    debug_assert!(!records.is_empty());
    buf.clear();
    buf.resize(HEADER_LEN, 0);
    let mut max_ts = i64::MIN;
    for r in records {
        let size = encoded_len(r);
        if size > max_record_bytes as u64 {
            return Err(EncodeError::RecordTooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: max_record_bytes,
            });
        }
        encode_record(buf, r, size as u32 - 4);
        max_ts = max_ts.max(r.timestamp_ms);
    }
    let payload_len = buf.len() - HEADER_LEN;
    let payload_len32 =
        u32::try_from(payload_len).map_err(|_| EncodeError::BatchTooLarge(payload_len))?;
    let record_count =
        u32::try_from(records.len()).map_err(|_| EncodeError::BatchTooLarge(payload_len))?;
    let header = BatchHeader {
        base_offset,
        record_count,
        payload_len: payload_len32,
        max_timestamp_ms: max_ts,
        payload_crc: payload_crc(&buf[HEADER_LEN..]),
    };
    buf[..HEADER_LEN].copy_from_slice(&header.encode());
    Ok(header)
}

/// Encoded size of one record, its `body_len` prefix included (u64: cannot overflow).
pub(crate) fn encoded_len(r: &Record) -> u64 {
    let opt = |b: &Option<Vec<u8>>| b.as_ref().map_or(0, |v| v.len() as u64);
    let headers: u64 = r
        .headers
        .iter()
        .map(|h| 8 + h.name.len() as u64 + h.value.len() as u64)
        .sum();
    MIN_RECORD_LEN as u64 + opt(&r.key) + opt(&r.value) + headers
}

/// Appends one record whose body is `body_len` bytes (from [`encoded_len`] - 4, which the
/// caller has checked against the limit, so every length fits its field).
fn encode_record(buf: &mut Vec<u8>, r: &Record, body_len: u32) {
    buf.reserve(body_len as usize + 4);
    buf.extend_from_slice(&body_len.to_be_bytes());
    buf.extend_from_slice(&r.timestamp_ms.to_be_bytes());
    for field in [&r.key, &r.value] {
        match field {
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(v) => {
                buf.extend_from_slice(&(v.len() as i32).to_be_bytes());
                buf.extend_from_slice(v);
            }
        }
    }
    buf.extend_from_slice(&(r.headers.len() as u32).to_be_bytes());
    for h in &r.headers {
        buf.extend_from_slice(&(h.name.len() as u32).to_be_bytes());
        buf.extend_from_slice(h.name.as_bytes());
        buf.extend_from_slice(&(h.value.len() as u32).to_be_bytes());
        buf.extend_from_slice(&h.value);
    }
}

/// Checks that `payload` holds exactly `count` well-formed records, each at most
/// `max_record_bytes` long. On error, returns the byte position inside the payload and why.
pub(crate) fn check_payload(
    payload: &[u8],
    count: u32,
    max_record_bytes: usize,
) -> Result<(), (usize, String)> {
    let mut pos = 0;
    for i in 0..count {
        let body = record_body(payload, pos, max_record_bytes)
            .map_err(|e| (pos, format!("record {i}: {e}")))?;
        check_record(body).map_err(|e| (pos, format!("record {i}: {e}")))?;
        pos += 4 + body.len();
    }
    if pos != payload.len() {
        return Err((
            pos,
            format!(
                "{} bytes after the last of {count} records",
                payload.len() - pos
            ),
        ));
    }
    Ok(())
}

/// The body of the record whose length prefix is at `payload[pos..]`.
#[inline(always)]
pub(crate) fn record_body(
    payload: &[u8],
    pos: usize,
    max_record_bytes: usize,
) -> Result<&[u8], String> {
    let rest = payload.get(pos..).unwrap_or_default();
    let mut c = Cursor {
        bytes: rest,
        pos: 0,
    };
    let len = c.u32()? as usize;
    if len.saturating_add(4) > max_record_bytes {
        return Err(format!(
            "record of {} bytes exceeds max_record_bytes {max_record_bytes}",
            len.saturating_add(4)
        ));
    }
    c.take(len)
}

/// Decodes one record body (without its length prefix). Never panics.
pub(crate) fn decode_record(body: &[u8]) -> Result<Record, String> {
    // The same walk as `check_record`, keeping what it reads: the reader's hot path.
    let mut c = Cursor {
        bytes: body,
        pos: 0,
    };
    let timestamp_ms = c.u64()? as i64;
    let key = c.nullable()?.map(<[u8]>::to_vec);
    let value = c.nullable()?.map(<[u8]>::to_vec);
    let count = header_count(&mut c)?;
    let mut headers = Vec::with_capacity(count);
    for i in 0..count {
        let (name, value) = c.header(i)?;
        headers.push(Header {
            name: name.to_owned(),
            value: value.to_vec(),
        });
    }
    c.finish()?;
    Ok(Record {
        key,
        value,
        headers,
        timestamp_ms,
    })
}

/// How many headers [`decode_view_split`] splits into its caller's slots; a record with more
/// keeps its encoded header block (parsed again by each walk over it).
pub(crate) const SPLIT_HEADERS: usize = 8;

/// Room for the headers [`decode_view_split`] splits, left uninitialized until the walk
/// writes them: a reader takes new slots for every record, and filling all eight with empty
/// pairs first was a copy of 256 bytes per record (about 1% of a verify).
pub(crate) type HeaderSlots<'a> = [MaybeUninit<(&'a str, &'a [u8])>; SPLIT_HEADERS];

/// Slots for [`decode_view_split`], none written yet.
pub(crate) const NO_HEADERS: HeaderSlots<'static> = [MaybeUninit::uninit(); SPLIT_HEADERS];

/// Decodes one record body into a borrowed view (checking it fully). Never panics.
#[cfg(feature = "internals")]
pub(crate) fn decode_view(offset: u64, body: &[u8]) -> Result<RecordView<'_>, String> {
    let mut slots = NO_HEADERS;
    let (view, _) = walk_view(offset, body, &mut slots)?;
    Ok(view)
}

/// [`decode_view`], with the headers split into `slots` as the walk checks them (when there
/// are at most [`SPLIT_HEADERS`]), so that the view's readers iterate the pairs instead of
/// parsing the header block again. Never panics.
pub(crate) fn decode_view_split<'b, 'a: 'b>(
    offset: u64,
    body: &'a [u8],
    slots: &'b mut HeaderSlots<'a>,
) -> Result<RecordView<'b>, String> {
    let (mut view, split) = walk_view(offset, body, slots)?;
    if let Some(n) = split {
        let written: &'b [MaybeUninit<(&'a str, &'a [u8])>] = &slots[..n];
        // SAFETY: `walk_view` returns `Some(n)` only when the record has `n` headers, at most
        // SPLIT_HEADERS, and it wrote each of them into its slot (`slots[..n]`) before it
        // returned; MaybeUninit<T> has T's layout, and the pairs live as long as `written`.
        let pairs = unsafe { std::slice::from_raw_parts(written.as_ptr().cast(), n) };
        view.headers = HeadersRef::split(pairs);
    }
    Ok(view)
}

/// The view of `body` with its headers encoded, and how many headers went to `slots` when
/// all of them fit (then `slots[..n]` are written).
fn walk_view<'a>(
    offset: u64,
    body: &'a [u8],
    slots: &mut HeaderSlots<'a>,
) -> Result<(RecordView<'a>, Option<usize>), String> {
    let mut c = Cursor {
        bytes: body,
        pos: 0,
    };
    let timestamp_ms = c.u64()? as i64;
    let key = c.nullable()?;
    let value = c.nullable()?;
    let count = header_count(&mut c)?;
    let start = c.pos;
    // One UTF-8 check of everything after the count (the header block, when the record is
    // well-formed) decides every name at once in the usual case; a name it cannot decide
    // (the block is not all UTF-8, or the name does not start and end on its character
    // boundaries) is checked alone, as `header` does.
    let text = utf8(&body[start..]);
    for i in 0..count {
        let pair = c.header_in(i, text.map(|t| (t, start)))?;
        if let Some(slot) = slots.get_mut(i) {
            slot.write(pair);
        }
    }
    let headers = HeadersRef::encoded(&body[start..c.pos]);
    c.finish()?;
    let view = RecordView {
        offset,
        key,
        value,
        headers,
        timestamp_ms,
    };
    Ok((view, (count <= SPLIT_HEADERS).then_some(count)))
}

/// `bytes` as text when they are UTF-8. Chain headers are ASCII (names and values), and an
/// ASCII check is an OR of eight bytes at a time where a UTF-8 check walks the bytes (it was
/// a tenth of a record's walk); anything else takes the full check.
#[inline(always)]
fn utf8(bytes: &[u8]) -> Option<&str> {
    if is_ascii(bytes) {
        // SAFETY: ASCII is UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// True when no byte of `bytes` has its high bit set. (`<[u8]>::is_ascii` compiled to a
/// loop over the bytes here.)
#[inline(always)]
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = |b: &[u8; 8]| u64::from_ne_bytes(*b);
    let mut words = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for w in &mut words {
        acc |= word(w.try_into().expect("8 bytes"));
    }
    match bytes.last_chunk::<8>() {
        // The last eight bytes again, which cover the remainder.
        Some(last) => acc |= word(last),
        None => acc |= words.remainder().iter().fold(0, |a, &b| a | u64::from(b)),
    }
    acc & HIGH == 0
}

/// Checks a record body without allocating.
fn check_record(body: &[u8]) -> Result<(), String> {
    let mut c = Cursor {
        bytes: body,
        pos: 0,
    };
    c.u64()?;
    c.nullable()?;
    c.nullable()?;
    for i in 0..header_count(&mut c)? {
        c.header(i)?;
    }
    c.finish()
}

/// Reads a header count, refusing one that cannot fit in what remains (each header takes
/// at least 8 bytes), so that a lie never drives an allocation.
#[inline(always)]
fn header_count(c: &mut Cursor<'_>) -> Result<usize, String> {
    let count = c.u32()? as usize;
    if count > (c.bytes.len() - c.pos) / 8 {
        return Err(format!("{count} headers cannot fit in the record"));
    }
    Ok(count)
}

/// A bounds-checked reader over a byte slice.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let remaining = self.bytes.len() - self.pos;
        if n > remaining {
            return Err(self.overrun(n, remaining));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The next `N` bytes as an array: one load, where a slice of a length the compiler
    /// does not know was read byte by byte (a record's dozen length fields were a fifth of
    /// its walk).
    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let remaining = self.bytes.len() - self.pos;
        match self.bytes[self.pos..].first_chunk::<N>() {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.overrun(N, remaining)),
        }
    }

    #[inline(always)]
    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_be_bytes)
    }

    #[inline(always)]
    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_be_bytes)
    }

    /// One header: name (UTF-8) and value.
    #[inline(always)]
    fn header(&mut self, i: usize) -> Result<(&'a str, &'a [u8]), String> {
        self.header_in(i, None)
    }

    /// [`header`](Self::header), its name taken from `block` (text known to be UTF-8, and
    /// the position in `bytes` where it starts) when the name starts and ends on a
    /// character boundary of it: then the name is UTF-8 without a check of its own.
    #[inline(always)]
    fn header_in(
        &mut self,
        i: usize,
        block: Option<(&'a str, usize)>,
    ) -> Result<(&'a str, &'a [u8]), String> {
        let name_len = self.u32()? as usize;
        let at = self.pos;
        let bytes = self.take(name_len)?;
        let known = block.and_then(|(text, from)| text.get(at - from..at - from + name_len));
        let name = match known {
            Some(name) => name,
            None => {
                std::str::from_utf8(bytes).map_err(|_| format!("header {i} name is not UTF-8"))?
            }
        };
        let value_len = self.u32()? as usize;
        Ok((name, self.take(value_len)?))
    }

    /// Checks that every byte was used.
    fn finish(&self) -> Result<(), String> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            n => Err(format!("{n} unexpected bytes at the end of the record")),
        }
    }

    #[inline(always)]
    fn nullable(&mut self) -> Result<Option<&'a [u8]>, String> {
        match self.u32()? as i32 {
            -1 => Ok(None),
            n if n < 0 => Err(format!("negative length {n}")),
            n => self.take(n as usize).map(Some),
        }
    }

    /// The error of a length that runs past the end (off the per-record path).
    #[cold]
    fn overrun(&self, n: usize, remaining: usize) -> String {
        format!(
            "length {n} at byte {} exceeds the {remaining} bytes left",
            self.pos
        )
    }
}

/// Requires `b.len() == 4`.
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Requires `b.len() == 8`.
fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests;

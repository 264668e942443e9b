//! Entry bundles (tlog-tiles) and record bundles (kchain's): their encodings, and the entry
//! hash of an archived record recomputed from the record alone. Pure.
//!
//! ```text
//! entry bundle   = (uint16 BE length = 32 || entry hash)*      the tlog entry is the entry
//!                                                             hash: leaf = SHA-256(0x00 || it)
//! record bundle  = (uint32 BE length || record)*
//! record         = timestamp i64 BE
//!                  || key?   (0x00 | 0x01 || uint32 BE length || bytes)
//!                  || value? (0x00 | 0x01 || uint32 BE length || bytes)
//!                  || uint32 BE header count
//!                  || (uint16 BE name length || name || uint32 BE value length || value)*
//! ```
//!
//! A record keeps every header as the log held it, the `kchain.*` chain headers included, so
//! its entry hash (and its writer's signature) can be recomputed with no log at hand.

use kchain_core::{is_chain_header, record_entry_header, ChainId, ChainMeta, Hash, ItemRef};
use kchain_log::{Header, HeadersRef, Record, RecordView};

/// A malformed bundle: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("bundle ends inside its entry {entry}")]
    Truncated { entry: usize },
    #[error("entry {entry} of an entry bundle is {len} bytes, not a 32-byte entry hash")]
    NotAnEntryHash { entry: usize, len: usize },
    #[error("record {entry} of a record bundle is malformed: {detail}")]
    BadRecord { entry: usize, detail: String },
}

/// Encodes an entry bundle of entry hashes.
pub fn encode_entries(hashes: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hashes.len() * 34);
    for h in hashes {
        out.extend_from_slice(&32u16.to_be_bytes());
        out.extend_from_slice(h);
    }
    out
}

/// Decodes an entry bundle of entry hashes. Never panics.
pub fn decode_entries(data: &[u8]) -> Result<Vec<Hash>, BundleError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let entry = out.len();
        let len = data
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or(BundleError::Truncated { entry })?;
        let body = data
            .get(at + 2..at + 2 + len)
            .ok_or(BundleError::Truncated { entry })?;
        let hash: Hash = body
            .try_into()
            .map_err(|_| BundleError::NotAnEntryHash { entry, len })?;
        out.push(hash);
        at += 2 + len;
    }
    Ok(out)
}

/// Appends one record to a record bundle.
pub fn encode_record(r: &Record, out: &mut Vec<u8>) {
    encode_view(&view_of(r), out);
}

/// Appends one record, borrowed from a log reader, to a record bundle (no copy of the
/// record on the way).
pub fn encode_view(r: &RecordView<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&r.timestamp_ms.to_be_bytes());
    for part in [r.key, r.value] {
        match part {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let count_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut count = 0u32;
    for (name, value) in r.headers.iter() {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_be_bytes());
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// An owned record seen as a borrowed one (offset 0: bundles do not keep offsets).
fn view_of(r: &Record) -> RecordView<'_> {
    RecordView {
        offset: 0,
        key: r.key.as_deref(),
        value: r.value.as_deref(),
        headers: HeadersRef::owned(&r.headers),
        timestamp_ms: r.timestamp_ms,
    }
}

/// Decodes a record bundle. Never panics.
pub fn decode_records(data: &[u8]) -> Result<Vec<Record>, BundleError> {
    let mut out = Vec::new();
    let mut r = Cursor { data, at: 0 };
    while r.at < data.len() {
        let entry = out.len();
        let len = r.u32().ok_or(BundleError::Truncated { entry })? as usize;
        let body = r.take(len).ok_or(BundleError::Truncated { entry })?;
        let record = decode_record(body).map_err(|detail| BundleError::BadRecord {
            entry,
            detail: detail.into(),
        })?;
        out.push(record);
    }
    Ok(out)
}

fn decode_record(body: &[u8]) -> Result<Record, &'static str> {
    let mut c = Cursor { data: body, at: 0 };
    let short = "ends early";
    let timestamp_ms = i64::from_be_bytes(c.take(8).ok_or(short)?.try_into().unwrap());
    let opt = |c: &mut Cursor| -> Result<Option<Vec<u8>>, &'static str> {
        match c.take(1).ok_or(short)?[0] {
            0 => Ok(None),
            1 => {
                let n = c.u32().ok_or(short)? as usize;
                Ok(Some(c.take(n).ok_or(short)?.to_vec()))
            }
            _ => Err("presence flag is neither 0 nor 1"),
        }
    };
    let key = opt(&mut c)?;
    let value = opt(&mut c)?;
    let count = c.u32().ok_or(short)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let n = c.take(2).ok_or(short)?;
        let name = c
            .take(u16::from_be_bytes([n[0], n[1]]) as usize)
            .ok_or(short)?;
        let name = std::str::from_utf8(name).map_err(|_| "header name is not UTF-8")?;
        let v = c.u32().ok_or(short)? as usize;
        headers.push(Header::new(name, c.take(v).ok_or(short)?));
    }
    if c.at != body.len() {
        return Err("trailing bytes");
    }
    Ok(Record {
        key,
        value,
        headers,
        timestamp_ms,
    })
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    }
}

/// What a record's chain headers say, and the entry hash it has in chain `chain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    pub meta: ChainMeta,
    pub entry_hash: Hash,
}

/// Recomputes a record's entry hash in chain `chain` from its chain headers and its item (its
/// key, value, application headers and timestamp). `scratch` is reused between calls.
pub fn record_entry(
    chain: ChainId,
    r: &Record,
    scratch: &mut Vec<u8>,
) -> Result<RecordEntry, kchain_core::MetaError> {
    view_entry(chain, &view_of(r), scratch)
}

/// [`record_entry`] of a record borrowed from a log reader.
pub fn view_entry(
    chain: ChainId,
    r: &RecordView<'_>,
    scratch: &mut Vec<u8>,
) -> Result<RecordEntry, kchain_core::MetaError> {
    let pairs = r.headers.iter();
    let meta = ChainMeta::parse(pairs.clone())?;
    let item = ItemRef {
        key: r.key,
        value: r.value,
        headers: pairs.filter(|(n, _)| !is_chain_header(n)),
        timestamp_ms: r.timestamp_ms,
    };
    let entry_hash = record_entry_header(chain, meta.height, meta.prev, &item, scratch).hash();
    Ok(RecordEntry { meta, entry_hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = Record {
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![
                Header::new("a", b"1".to_vec()),
                Header::new("kchain.v", b"1".to_vec()),
            ],
            timestamp_ms: -5,
        };
        let mut buf = Vec::new();
        encode_record(&r, &mut buf);
        encode_record(&r, &mut buf);
        assert_eq!(decode_records(&buf).unwrap(), vec![r.clone(), r]);
        for cut in 0..buf.len() / 2 {
            assert!(decode_records(&buf[..cut]).is_err() || cut == 0);
        }
    }

    #[test]
    fn entries_round_trip() {
        let hashes = [[1u8; 32], [2u8; 32]];
        let b = encode_entries(&hashes);
        assert_eq!(&b[..2], &[0, 32]);
        assert_eq!(decode_entries(&b).unwrap(), hashes);
        assert!(decode_entries(&b[..33]).is_err());
    }
}

//! Entry points into the segment decoders for kchain's fuzz targets and their corpus replay
//! (feature `internals`). Not a stable API: each function runs a decoder on hostile bytes and
//! panics when one of its properties fails, which is what a fuzzer looks for.
//!
//! The properties: decoding never panics and never allocates more than its input justifies;
//! the three record decoders (`check_record`, `decode_record`, `decode_view`) agree; and the
//! format is canonical, so an accepted record or batch re-encodes to exactly its bytes.

use super::batch::{
    check_payload, decode_record, decode_view, decode_view_split, encode_batch, encoded_len,
    parse_batch, payload_crc, record_body, BatchHeader, Parsed, HEADER_LEN, MIN_RECORD_LEN,
    NO_HEADERS,
};
use crate::api::Record;

/// The record size limit the checks decode with (the embedded log's default is larger; a
/// small one makes the limit itself reachable).
pub const MAX_RECORD_BYTES: usize = 1 << 16;

/// Decodes one record body (without its length prefix), as a segment reader does.
pub fn decode_record_body(body: &[u8]) -> Result<Record, String> {
    decode_record(body)
}

/// Runs every record decoder on `body` and checks that they agree and that an accepted body
/// re-encodes to itself.
pub fn check_record_body(body: &[u8]) {
    let owned = decode_record(body);
    let view = decode_view(7, body);
    assert_eq!(owned.is_ok(), view.is_ok(), "decoders disagree: {owned:?}");
    let (Ok(record), Ok(view)) = (owned, view) else {
        return;
    };
    assert_eq!(view.offset, 7);
    assert_eq!(view.key, record.key.as_deref());
    assert_eq!(view.value, record.value.as_deref());
    assert_eq!(view.timestamp_ms, record.timestamp_ms);
    let headers: Vec<(&str, &[u8])> = view.headers.iter().collect();
    let expected: Vec<(&str, &[u8])> = record
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_slice()))
        .collect();
    assert_eq!(headers, expected);
    let mut slots = NO_HEADERS;
    let split = decode_view_split(7, body, &mut slots).expect("decode_view accepted it");
    assert_eq!(split.headers.iter().collect::<Vec<_>>(), expected);
    assert_eq!((split.key, split.value), (view.key, view.value));
    assert_eq!(encoded_len(&record), body.len() as u64 + 4);
    // Canonical: the batch of this one record carries exactly `body` after its length prefix.
    let mut buf = Vec::new();
    encode_batch(&mut buf, 0, std::slice::from_ref(&record), usize::MAX >> 1)
        .expect("a decoded record encodes");
    assert_eq!(&buf[HEADER_LEN + 4..], body);
}

/// Walks `bytes` as a segment image: batch after batch while they parse, decoding every record
/// of each and checking the batch re-encodes to its bytes. Returns the number of batches read.
pub fn check_segment(mut bytes: &[u8]) -> usize {
    let mut batches = 0;
    while let Parsed::Batch(header) = parse_batch(bytes) {
        let len = usize::try_from(header.batch_len()).expect("batch fits in memory");
        check_batch(header, &bytes[..len]);
        batches += 1;
        bytes = &bytes[len..];
    }
    batches
}

/// Interprets `data` as a record count (first byte) and a payload, wraps the payload in a
/// batch header with correct CRCs, then checks it as a segment. This gets a fuzzer past the
/// CRCs, which the disk attacker recomputes anyway.
pub fn check_payload_bytes(data: &[u8]) {
    let Some((&count, payload)) = data.split_first() else {
        return;
    };
    let Ok(payload_len) = u32::try_from(payload.len()) else {
        return;
    };
    let header = BatchHeader {
        base_offset: u64::MAX - 300,
        record_count: u32::from(count),
        payload_len,
        max_timestamp_ms: 0,
        payload_crc: payload_crc(payload),
    };
    let mut batch = header.encode().to_vec();
    batch.extend_from_slice(payload);
    let valid = count > 0 && payload.len() >= usize::from(count) * MIN_RECORD_LEN;
    match parse_batch(&batch) {
        Parsed::Batch(parsed) => {
            assert!(valid, "accepted an impossible header {parsed:?}");
            assert_eq!(parsed, header);
        }
        other => assert!(!valid, "refused a valid header: {other:?}"),
    }
    check_segment(&batch);
    // Every proper prefix of a valid batch is incomplete, never a different batch.
    if valid {
        for cut in [0, 1, HEADER_LEN - 1, HEADER_LEN, batch.len() - 1] {
            let parsed = parse_batch(&batch[..cut]);
            assert!(matches!(parsed, Parsed::Incomplete { .. }), "{parsed:?}");
        }
    }
}

/// Checks one batch whose CRCs passed: its payload decodes as exactly its records or is
/// refused, and an accepted batch re-encodes to its bytes (with the header's maximum
/// timestamp, which the writer computes and the reader does not rely on).
fn check_batch(header: BatchHeader, batch: &[u8]) {
    let payload = &batch[HEADER_LEN..];
    let checked = check_payload(payload, header.record_count, MAX_RECORD_BYTES);
    let mut records = Vec::new();
    let mut pos = 0;
    let mut walked = Ok(());
    for _ in 0..header.record_count {
        let body = match record_body(payload, pos, MAX_RECORD_BYTES) {
            Ok(body) => body,
            Err(e) => {
                walked = Err(e);
                break;
            }
        };
        check_record_body(body);
        match decode_record(body) {
            Ok(r) => records.push(r),
            Err(e) => {
                walked = Err(e);
                break;
            }
        }
        pos += 4 + body.len();
    }
    if walked.is_ok() && pos != payload.len() {
        walked = Err("trailing bytes".into());
    }
    assert_eq!(checked.is_ok(), walked.is_ok(), "{checked:?} vs {walked:?}");
    if checked.is_err() {
        return;
    }
    let mut buf = Vec::new();
    let encoded = encode_batch(&mut buf, header.base_offset, &records, MAX_RECORD_BYTES)
        .expect("a decoded batch encodes");
    assert_eq!(encoded.record_count, header.record_count);
    assert_eq!(&buf[HEADER_LEN..], payload);
    let same = BatchHeader {
        max_timestamp_ms: encoded.max_timestamp_ms,
        ..header
    };
    assert_eq!(encoded, same);
}

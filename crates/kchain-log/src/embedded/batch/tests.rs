//! The batch and record encoding's tests: layouts pinned, round trips, hostile bytes.

use super::*;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

fn record() -> impl Strategy<Value = Record> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..64);
    let header = ("[a-z.\\u{e9}\\u{4e2d}]{0,12}", bytes()).prop_map(|(n, v)| Header::new(n, v));
    (
        proptest::option::of(bytes()),
        proptest::option::of(bytes()),
        proptest::collection::vec(header, 0..5),
        any::<i64>(),
    )
        .prop_map(|(key, value, headers, timestamp_ms)| Record {
            key,
            value,
            headers,
            timestamp_ms,
        })
}

/// Decodes every batch of a segment image, as a reader would, stopping at the first
/// thing that is not a complete valid batch.
fn decode_segment(mut bytes: &[u8], max: usize) -> Vec<Record> {
    let mut out = Vec::new();
    while let Parsed::Batch(h) = parse_batch(bytes) {
        let payload = &bytes[HEADER_LEN..h.batch_len() as usize];
        if check_payload(payload, h.record_count, max).is_err() {
            break;
        }
        let mut pos = 0;
        for _ in 0..h.record_count {
            let body = record_body(payload, pos, max).unwrap();
            out.push(decode_record(body).unwrap());
            pos += 4 + body.len();
        }
        bytes = &bytes[h.batch_len() as usize..];
    }
    out
}

proptest! {
    #[test]
    fn encoding_round_trips(batches in proptest::collection::vec(
        proptest::collection::vec(record(), 1..8), 1..5)) {
        let mut segment = Vec::new();
        let mut buf = Vec::new();
        let mut offset = 7;
        for records in &batches {
            let h = encode_batch(&mut buf, offset, records, MAX).unwrap();
            prop_assert_eq!(h.base_offset, offset);
            prop_assert_eq!(h.batch_len() as usize, buf.len());
            prop_assert_eq!(parse_batch(&buf), Parsed::Batch(h));
            offset = h.next_offset();
            segment.extend_from_slice(&buf);
        }
        let all: Vec<Record> = batches.concat();
        prop_assert_eq!(decode_segment(&segment, MAX), all);
        // Every proper prefix of the last batch reads as incomplete.
        let last = segment.len() - buf.len();
        for cut in last..segment.len() {
            let parsed = parse_batch(&segment[last..cut]);
            prop_assert!(matches!(parsed, Parsed::Incomplete { .. }), "{:?}", parsed);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = decode_segment(&bytes, 256);
        let _ = decode_record(&bytes);
        let _ = check_payload(&bytes, 3, 64);
    }

    #[test]
    fn decoding_mutated_batches_never_panics(
        records in proptest::collection::vec(record(), 1..4),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut buf = Vec::new();
        encode_batch(&mut buf, 0, &records, MAX).unwrap();
        for (i, x) in flips {
            let n = buf.len();
            buf[i % n] ^= x | 1;
        }
        let _ = decode_segment(&buf, MAX);
        // A payload that passes the CRC by chance must still decode safely.
        let payload = &buf[HEADER_LEN..];
        let _ = check_payload(payload, records.len() as u32, MAX);
        let mut pos = 0;
        while let Ok(body) = record_body(payload, pos, MAX) {
            let _ = decode_record(body);
            pos += 4 + body.len();
        }
    }
}

proptest! {
    #[test]
    fn split_views_agree_with_owned_decoding(
        record in record(),
        extra in proptest::collection::vec(("[a-z]{0,6}", any::<u8>()), 0..12),
    ) {
        // Up to 16 headers: on both sides of what the slots hold.
        let mut record = record;
        record.headers.extend(extra.into_iter().map(|(n, v)| Header::new(n, vec![v])));
        let mut buf = Vec::new();
        encode_batch(&mut buf, 0, std::slice::from_ref(&record), MAX).unwrap();
        let body = record_body(&buf[HEADER_LEN..], 0, MAX).unwrap();
        let mut slots = NO_HEADERS;
        let view = decode_view_split(3, body, &mut slots).unwrap();
        let got: Vec<(&str, &[u8])> = view.headers.iter().collect();
        let want: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_slice()))
            .collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(view.value, record.value.as_deref());
        prop_assert_eq!(view.key, record.key.as_deref());
        prop_assert_eq!((view.offset, view.timestamp_ms), (3, record.timestamp_ms));
    }
}

/// A record body of `headers` whose names are any bytes (UTF-8 or not).
fn raw_body(headers: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut b = 5i64.to_be_bytes().to_vec();
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.push(b'v');
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (n, v) in headers {
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n);
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v);
    }
    b
}

proptest! {
    /// The walk that checks the header block's UTF-8 once takes and refuses exactly the
    /// names that checking each name alone does, at the same header, and gives the same
    /// names: whatever the bytes of names and values (lengths of 128 and more, names
    /// split inside a character, invalid sequences).
    #[test]
    fn one_utf8_check_of_the_block_decides_as_one_per_name(
        headers in proptest::collection::vec((
            proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::sample::select(b"kchain.vhetp".to_vec()),
                1 => proptest::sample::select(vec![0xc3, 0xa9, 0xe4, 0xb8, 0xad, 0x80, 0xff]),
            ], 0..10),
            proptest::collection::vec(proptest::prop_oneof![
                4 => proptest::sample::select(b"0123456789abcdef".to_vec()),
                1 => proptest::sample::select(vec![0xc3, 0xa9, 0x80, 0xe4, 0xb8, 0xad]),
            ], 0..140),
        ), 0..5),
    ) {
        let body = raw_body(&headers);
        let mut slots = NO_HEADERS;
        // The split view: its names are the ones the walk took.
        let got = decode_view_split(0, &body, &mut slots)
            .map(|v| v.headers.iter().map(|(n, v)| (n.to_owned(), v.to_vec())));
        // The reference: each name checked alone.
        let want = (|| {
            let mut c = Cursor { bytes: &body, pos: 0 };
            c.u64()?;
            c.nullable()?;
            c.nullable()?;
            let mut out = Vec::new();
            for i in 0..header_count(&mut c)? {
                let (n, v) = c.header(i)?;
                out.push((n.to_owned(), v.to_vec()));
            }
            c.finish().map(|()| out)
        })();
        prop_assert_eq!(got.map(Iterator::collect::<Vec<_>>), want);
    }
}

#[test]
fn header_layout_is_pinned() {
    let h = BatchHeader {
        base_offset: 0x0102030405060708,
        record_count: 3,
        payload_len: 72,
        max_timestamp_ms: -2,
        payload_crc: 0xdeadbeef,
    };
    let bytes = h.encode();
    assert_eq!(&bytes[0..8], b"KCLB\x01\x00\x00\x00");
    assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&bytes[16..24], &[0, 0, 0, 3, 0, 0, 0, 72]);
    assert_eq!(bytes[24..32], (-2i64).to_be_bytes());
    assert_eq!(&bytes[32..36], &[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(parse_header(&bytes), Ok(h));
}

#[test]
fn record_layout_is_pinned() {
    let r = Record {
        key: None,
        value: Some(b"v".to_vec()),
        headers: vec![Header::new("h", b"xy".to_vec())],
        timestamp_ms: 1,
    };
    let mut buf = Vec::new();
    encode_batch(&mut buf, 0, std::slice::from_ref(&r), MAX).unwrap();
    let expected: &[u8] = &[
        0, 0, 0, 32, // body_len
        0, 0, 0, 0, 0, 0, 0, 1, // timestamp
        0xff, 0xff, 0xff, 0xff, // key: null
        0, 0, 0, 1, b'v', // value
        0, 0, 0, 1, // one header
        0, 0, 0, 1, b'h', 0, 0, 0, 2, b'x', b'y',
    ];
    assert_eq!(&buf[HEADER_LEN..], expected);
    assert_eq!(encoded_len(&r), expected.len() as u64);
}

/// The worked example of `docs/log-format.md`, byte for byte (CRCs cross-checked with an
/// independent bitwise CRC32C in Python).
#[test]
fn documented_example_batch() {
    let r = Record {
        key: Some(b"k".to_vec()),
        value: Some(b"hello".to_vec()),
        headers: vec![Header::new("kchain.v", vec![1])],
        timestamp_ms: 1_700_000_000_000,
    };
    let mut buf = Vec::new();
    encode_batch(&mut buf, 5, &[r], MAX).unwrap();
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "4b434c42010000000000000000000005000000010000002f0000018bcfe56800\
         37a7856c591693cf0000002b0000018bcfe56800000000016b0000000568656c\
         6c6f00000001000000086b636861696e2e760000000101"
    );
}

#[test]
fn oversized_record_is_refused() {
    let r = Record {
        value: Some(vec![0; 100]),
        ..Record::default()
    };
    let err = encode_batch(&mut Vec::new(), 0, &[r], 100).unwrap_err();
    assert_eq!(
        err,
        EncodeError::RecordTooLarge {
            size: 124,
            limit: 100
        }
    );
}

proptest! {
    /// The batch check's CRC is CRC32C as the crc32c crate computes it (the reference the
    /// appender writes with), on both sides of the length where it changes implementation.
    #[test]
    fn payload_crc_is_crc32c(
        bytes in proptest::collection::vec(any::<u8>(), 0..9000),
        cut in 0usize..9000,
    ) {
        let part = &bytes[..cut.min(bytes.len())];
        prop_assert_eq!(payload_crc(part), crc32c::crc32c(part));
        prop_assert_eq!(payload_crc(&bytes), crc32c::crc32c(&bytes));
    }
}

/// A large batch (its CRC taken by the vector path) with any one payload bit flipped is a
/// payload CRC mismatch, never a batch.
#[test]
fn a_flipped_bit_in_a_large_payload_fails_its_crc() {
    let records: Vec<Record> = (0..40u8)
        .map(|i| Record {
            key: None,
            value: Some(vec![i; 256]),
            headers: vec![Header::new("kchain.v", b"1".to_vec())],
            timestamp_ms: i64::from(i),
        })
        .collect();
    let mut buf = Vec::new();
    let h = encode_batch(&mut buf, 0, &records, MAX).unwrap();
    assert!(h.payload_len > 8192);
    assert_eq!(parse_batch(&buf), Parsed::Batch(h));
    for at in (HEADER_LEN..buf.len()).step_by(97).chain([buf.len() - 1]) {
        for bit in [0, 7] {
            let mut bad = buf.clone();
            bad[at] ^= 1 << bit;
            assert!(
                matches!(parse_batch(&bad), Parsed::BadPayload(..)),
                "byte {at} bit {bit}"
            );
        }
    }
}

/// The header block's ASCII check agrees with the standard library's at every length around
/// its eight-byte steps, with a byte of each kind (high bit set or not) at every position.
#[test]
fn ascii_check_agrees_with_std() {
    for len in 0..41 {
        for at in 0..len {
            for high in [0x7f, 0x80, 0xc3, 0xff] {
                let mut bytes = vec![b'k'; len];
                bytes[at] = high;
                assert_eq!(
                    is_ascii(&bytes),
                    bytes.is_ascii(),
                    "len {len}, {high:#x} at {at}"
                );
            }
        }
        assert!(is_ascii(&vec![b'0'; len]));
    }
}

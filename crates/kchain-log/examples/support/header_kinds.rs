//! The records the `header_bytes` examples compare, shared by both: a 256-byte value with no
//! headers (`raw`), with the three text chain headers every chained record carries (`text`),
//! or with one binary header of the same facts (`binary`, 41 bytes: version, height,
//! previous hash).

use kchain_log::{Header, Record};

/// The kinds of records, raw (the baseline) first.
pub const KINDS: [&str; 3] = ["raw", "text", "binary"];

/// The records of one kind: `raw`, `text` (today's chain headers) or `binary`.
pub fn records(kind: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let height = 100_000 + i as u64;
            let headers = match kind {
                "raw" => vec![],
                "text" => vec![
                    header("kchain.v", b"1".to_vec()),
                    header("kchain.height", height.to_string().into_bytes()),
                    header("kchain.prev", vec![b'f'; 64]),
                ],
                _ => {
                    let mut v = vec![2u8];
                    v.extend_from_slice(&height.to_be_bytes());
                    v.extend_from_slice(&[0xff; 32]);
                    vec![header("kchain", v)]
                }
            };
            Record {
                key: None,
                value: Some(vec![b'a' + (i % 26) as u8; 256]),
                headers,
                timestamp_ms: 1_700_000_000_000 + i as i64,
            }
        })
        .collect()
}

fn header(name: &str, value: Vec<u8>) -> Header {
    Header {
        name: name.into(),
        value,
    }
}

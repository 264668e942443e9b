//! The pieces every canonical encoding of the ledger is made of: kchain-core's
//! [`Encoder`](kchain_core::Encoder) and [`Decoder`], and canonical JSON for opaque payloads.
//!
//! ```text
//! canonical JSON = compact JSON (no whitespace), object members sorted by the UTF-8 bytes of
//!                  their keys, strings and numbers as serde_json writes them
//! ```
//!
//! Data payloads are hashed and signed in this form, so that reformatting a payload (spaces,
//! member order, `\u00e9` for `é`) never changes a hash, while changing any value does.

use serde_json::Value;

pub use kchain_core::{DecodeError, Decoder};

/// Appends the canonical JSON text of `v` to `out`.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // Sorted here rather than trusting the map's order: serde_json's `preserve_order`
            // feature, enabled anywhere in a build, would change it.
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, v).expect("writing JSON to a Vec cannot fail");
}

/// Lower-case hex of bytes.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    kchain_core::encode_hex(bytes)
}

/// Appends the lower-case hex of `bytes` to `out`: what [`hex_lower`] spells, without a
/// `String` per value (a block's JSON carries four hex fields per transaction).
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(start + 2 * bytes.len(), 0);
    kchain_core::hex::encode_into(bytes, &mut out[start..]);
}

/// Appends the decimal digits of `n` to `out`, as `write!` spells it.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Parses exactly `2 * N` hex digits (either case).
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    kchain_core::decode_hex(s.as_bytes(), &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_hex_and_numbers_are_spelled_as_format_spells_them() {
        for n in [0, 1, 9, 10, 99, 100, 12345, u64::MAX / 7, u64::MAX] {
            let mut out = b"x".to_vec();
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        push_hex(&mut out, &bytes);
        assert_eq!(out, hex_lower(&bytes).into_bytes());
    }

    #[test]
    fn canonical_json_sorts_members_and_drops_whitespace() {
        let a: Value = serde_json::from_str(r#"{ "b": [1, {"y":2,"x":"é"}], "a": null }"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":null,"b":[1,{"x":"\u00e9","y":2}]}"#).unwrap();
        let (mut x, mut y) = (Vec::new(), Vec::new());
        canonical_json(&a, &mut x);
        canonical_json(&b, &mut y);
        assert_eq!(x, y);
        assert_eq!(
            String::from_utf8(x).unwrap(),
            r#"{"a":null,"b":[1,{"x":"é","y":2}]}"#
        );
    }
}

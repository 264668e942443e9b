//! Hex: the one spelling kchain uses for hashes, key ids, signatures and encoded bytes in
//! headers, trust files, proof files and reports.
//!
//! kchain writes lower-case digits only. It reads either case where a human may have typed
//! the value (trust files, proof files, the command line), and lower-case only where the
//! text is part of what a record carries but not itself hashed (the chain headers): there,
//! accepting two spellings of one value would let the text change unseen.
//!
//! Decoding is table-driven and branch-free per byte: a verifier runs it for every record.

/// Lower-case hex of any bytes.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize]);
        out.push(DIGITS[(b & 0x0f) as usize]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Lower-case hex of a hash (64 digits).
pub fn to_hex(h: &[u8; 32]) -> String {
    encode(h)
}

/// Parses 64 hex digits (either case) into a hash.
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    decode_array(s)
}

/// Parses exactly `2 * N` hex digits (either case) into `N` bytes.
pub fn decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    decode_into(s.as_bytes(), &mut out).then_some(out)
}

/// Parses an even number of hex digits (either case) into bytes.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; s.len() / 2];
    decode_into(s.as_bytes(), &mut out).then_some(out)
}

/// Decodes hex digits into `out`; true when `src` is exactly `2 * out.len()` hex digits
/// (either case).
pub fn decode_into(src: &[u8], out: &mut [u8]) -> bool {
    decode_with(&ANY_CASE, src, out)
}

/// Decodes lower-case hex digits into `out`; true when `src` is exactly `2 * out.len()`
/// lower-case hex digits: the canonical form kchain writes.
pub fn decode_lower_into(src: &[u8], out: &mut [u8]) -> bool {
    decode_with(&LOWER, src, out)
}

const INVALID_DIGIT: u8 = 0xff;
const ANY_CASE: [u8; 256] = table(true);
const LOWER: [u8; 256] = table(false);

const fn table(upper: bool) -> [u8; 256] {
    let mut t = [INVALID_DIGIT; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if upper {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}

fn decode_with(table: &[u8; 256], src: &[u8], out: &mut [u8]) -> bool {
    if src.len() != out.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let (hi, lo) = (table[pair[0] as usize], table[pair[1] as usize]);
        bad |= (hi | lo) & 0xf0;
        *o = (hi << 4) | (lo & 0x0f);
    }
    bad == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_hex_is_the_only_canonical_spelling() {
        let mut b = [0u8; 2];
        assert!(decode_lower_into(b"0aff", &mut b) && b == [0x0a, 0xff]);
        for bad in [&b"0AFF"[..], b"0aFf", b"0af", b"0aff0", b"0ag0", b" aff"] {
            assert!(!decode_lower_into(bad, &mut b), "{bad:?}");
        }
        assert!(decode_into(b"0AFF", &mut b) && b == [0x0a, 0xff]);
    }

    #[test]
    fn decoding_takes_whole_even_digit_strings_only() {
        assert_eq!(decode("0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode(""), Some(vec![]));
        for bad in ["0", "0af", "0g", "+1", "é0"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert_eq!(decode_array::<2>("0aff"), Some([0x0a, 0xff]));
        assert_eq!(decode_array::<2>("0aff00"), None);
        let h = [0xab; 32];
        assert_eq!(from_hex(&to_hex(&h)), Some(h));
        assert_eq!(encode([0, 0x7f, 0xff]), "007fff");
    }
}

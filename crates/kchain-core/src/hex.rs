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
    let mut out = vec![0; bytes.len() * 2];
    encode_into(bytes, &mut out);
    String::from_utf8(out).expect("hex digits are ASCII")
}

/// Writes the lower-case hex of `bytes` into `out`, which is twice as long: a table lookup
/// and one two-byte store per byte, with no allocation (the chain writer spells every
/// record's `kchain.prev` with it, the ledger its JSON's hex fields).
pub fn encode_into(bytes: &[u8], out: &mut [u8]) {
    assert_eq!(out.len(), 2 * bytes.len(), "hex needs two digits a byte");
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&DIGIT_PAIRS[usize::from(b)]);
    }
}

/// The two lower-case hex digits of every byte.
const DIGIT_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    table
};

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
#[inline]
pub fn decode_lower_into(src: &[u8], out: &mut [u8]) -> bool {
    if src.len() != out.len() * 2 {
        return false;
    }
    // Sixteen digits at a time in a vector register (every record's `kchain.prev` is 64;
    // `x86::lower_hex_into`), then eight at a time, the rest by the table.
    #[cfg(target_arch = "x86_64")]
    let (src, out, mut ok) = {
        let sixteens = out.len() / 8 * 8;
        let ok = crate::x86::lower_hex_into(&src[..2 * sixteens], &mut out[..sixteens]);
        (&src[2 * sixteens..], &mut out[sixteens..], ok)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let mut ok = true;
    let whole = out.len() / 4 * 4;
    for (o, digits) in out[..whole].chunks_exact_mut(4).zip(src.chunks_exact(8)) {
        let digits = u64::from_le_bytes(digits.try_into().expect("eight bytes"));
        match lower8(digits) {
            Some(v) => o.copy_from_slice(&v.to_le_bytes()),
            None => ok = false,
        }
    }
    decode_with(&LOWER, &src[2 * whole..], &mut out[whole..]) && ok
}

/// Eight lower-case hex digits (byte `i` of `x` the `i`-th digit) as four bytes (byte `j`
/// of the result from digits `2j`, `2j+1`), or `None` when any is not one: in-register
/// byte-wise comparisons, a quarter of the table's work.
#[inline]
fn lower8(x: u64) -> Option<u32> {
    const fn each(b: u8) -> u64 {
        u64::from_le_bytes([b; 8])
    }
    const HIGH: u64 = each(0x80);
    if x & HIGH != 0 {
        return None;
    }
    // Every byte is below 0x80, so adding up to 0x7f sets its high bit, with no carry
    // into the next byte, exactly when the byte is at least the bound.
    let ge = |bound: u8| x.wrapping_add(each(0x80 - bound)) & HIGH;
    let digit = ge(b'0') & !ge(b'9' + 1);
    let alpha = ge(b'a') & !ge(b'f' + 1);
    if digit | alpha != HIGH {
        return None;
    }
    let nibbles = (x & each(0x0f)) + (alpha >> 7) * 9;
    let m = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let m = (m | (m >> 8)) & 0x0000_ffff_0000_ffff;
    Some((m | (m >> 16)) as u32)
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

    proptest::proptest! {
        /// Eight digits at a time decode and refuse exactly what the table does.
        #[test]
        fn lower_case_decoding_agrees_with_the_table(
            src in proptest::collection::vec(proptest::prop_oneof![
                proptest::sample::select(b"0123456789abcdefABCDEF/:`g@G".to_vec()),
                proptest::prelude::any::<u8>(),
            ], 0..80),
        ) {
            let n = src.len() / 2;
            let (mut fast, mut table) = (vec![0u8; n], vec![0u8; n]);
            let ok = decode_with(&LOWER, &src, &mut table);
            proptest::prop_assert_eq!(decode_lower_into(&src, &mut fast), ok);
            if ok {
                proptest::prop_assert_eq!(fast, table);
            }
        }
    }

    #[test]
    fn every_lower_case_digit_pair_decodes() {
        let digits = b"0123456789abcdef";
        for (i, &hi) in digits.iter().enumerate() {
            for (j, &lo) in digits.iter().enumerate() {
                let src = [hi, lo, b'0', b'0', b'0', b'0', b'0', b'0'];
                let mut b = [0u8; 4];
                assert!(decode_lower_into(&src, &mut b));
                assert_eq!(b, [(i * 16 + j) as u8, 0, 0, 0]);
            }
        }
        let mut all = [0u8; 32];
        let text = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";
        assert!(decode_lower_into(text.as_bytes(), &mut all));
        assert_eq!(encode(all), text);
    }

    /// Every byte at every place of sixteen digits (the vector path) and of the eight and
    /// the table after them: decoded or refused exactly as the table does.
    #[test]
    fn every_byte_at_every_place_is_judged_as_the_table_does() {
        let good = b"0123456789abcdef0f1e2d3c4b5a6978a1b";
        for at in 0..good.len() {
            for byte in 0..=255u8 {
                let mut src = good[..34].to_vec();
                if at < src.len() {
                    src[at] = byte;
                }
                let (mut fast, mut table) = ([0u8; 17], [0u8; 17]);
                let ok = decode_with(&LOWER, &src, &mut table);
                assert_eq!(decode_lower_into(&src, &mut fast), ok, "{at} {byte}");
                assert!(!ok || fast == table, "{at} {byte}");
            }
        }
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

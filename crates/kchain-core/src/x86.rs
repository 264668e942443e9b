//! x86-64 vector code, the only `unsafe` code of kchain-core: SHA-256's block function over
//! N independent messages at once with the SHA extensions (SHA-NI, detected at run time by
//! [`available`]), and lower-case hex digits sixteen at a time with SSE2 (part of x86-64).
//!
//! **SHA-256.** The messages' rounds are interleaved.
//! `sha256rnds2` (two rounds) has a latency of several cycles, and each one needs the result
//! of the one before: one message's block function waits on it most of the time, with the
//! SHA unit idle. Messages whose rounds alternate keep it busy. Measured on the AMD EPYC
//! (Zen 4) kchain is benchmarked on, 5-block messages (a 256-byte value's leaf), millions of
//! blocks per second: one at a time 29.5-31.1 (the sha2 crate's the same), two at a time
//! 49.4-53.7 (1.7x), three 54.9-57.0, four 41.7-42.5 (their state no longer fits the 16
//! vector registers). Two it is ([`crate::sha256_x2`]).
//!
//! ```text
//!  message 0: rnds2 ─► rnds2 ─► rnds2 ─► ...        (each waits on the one before)
//!  message 1:    rnds2 ─► rnds2 ─► rnds2 ─► ...     (issued while message 0 waits)
//! ```
//!
//! The intrinsics need the CPU features, which [`available`] detects at run time (std
//! caches the answer).

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_add_epi8, _mm_alignr_epi8, _mm_and_si128, _mm_blend_epi16,
    _mm_cmpgt_epi8, _mm_cvtsi128_si64, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
    _mm_packus_epi16, _mm_set1_epi16, _mm_set1_epi8, _mm_set_epi64x, _mm_set_epi8,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
    _mm_shuffle_epi8, _mm_slli_epi16, _mm_srli_epi16, _mm_storeu_si128,
};

/// True when this CPU has the SHA extensions and the SSE levels the block function uses.
#[inline]
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse2")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// SHA-256's round constants (FIPS 180-4, 4.2.2), four to a vector in lane order.
#[rustfmt::skip]
static K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Four rounds of every message: `w` holds each message's next four schedule words.
macro_rules! rounds4 {
    ($n:expr, $abef:ident, $cdgh:ident, $w:expr, $i:expr) => {{
        let k = _mm_loadu_si128(K.as_ptr().add(4 * $i).cast::<__m128i>());
        let mut t = [k; $n];
        for j in 0..$n {
            t[j] = _mm_add_epi32($w[j], k);
        }
        for j in 0..$n {
            $cdgh[j] = _mm_sha256rnds2_epu32($cdgh[j], $abef[j], t[j]);
        }
        for j in 0..$n {
            t[j] = _mm_shuffle_epi32(t[j], 0x0E);
        }
        for j in 0..$n {
            $abef[j] = _mm_sha256rnds2_epu32($abef[j], $cdgh[j], t[j]);
        }
    }};
}

/// The next four schedule words of every message, from the sixteen before them, then four
/// rounds.
macro_rules! schedule_rounds4 {
    ($n:expr, $abef:ident, $cdgh:ident, $w0:ident, $w1:ident, $w2:ident, $w3:ident,
     $w4:ident, $i:expr) => {{
        for j in 0..$n {
            let t1 = _mm_sha256msg1_epu32($w0[j], $w1[j]);
            let t2 = _mm_alignr_epi8($w3[j], $w2[j], 4);
            $w4[j] = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), $w3[j]);
        }
        rounds4!($n, $abef, $cdgh, $w4, $i);
    }};
}

/// Runs the block function over `blocks` 64-byte blocks of each of `N` messages:
/// `states[j]` over `data[j][..64 * blocks]`, the messages' rounds interleaved.
///
/// # Safety
///
/// The CPU must have the features [`available`] checks, and every `data[j]` must hold at
/// least `64 * blocks` bytes.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(crate) unsafe fn compress<const N: usize>(
    states: &mut [[u32; 8]; N],
    data: [&[u8]; N],
    blocks: usize,
) {
    let mask = _mm_set_epi64x(
        0x0C0D_0E0F_0809_0A0Bu64 as i64,
        0x0405_0607_0001_0203u64 as i64,
    );
    let zero = _mm_set_epi64x(0, 0);
    let (mut abef, mut cdgh) = ([zero; N], [zero; N]);
    for j in 0..N {
        // SAFETY: a [u32; 8] is 32 bytes, read as two unaligned 16-byte vectors.
        let (dcba, efgh) = unsafe {
            let p = states[j].as_ptr().cast::<__m128i>();
            (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
        };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        abef[j] = _mm_alignr_epi8(cdab, efgh, 8);
        cdgh[j] = _mm_blend_epi16(efgh, cdab, 0xF0);
    }
    for b in 0..blocks {
        let (abef_save, cdgh_save) = (abef, cdgh);
        let (mut w0, mut w1, mut w2, mut w3, mut w4) =
            ([zero; N], [zero; N], [zero; N], [zero; N], [zero; N]);
        for j in 0..N {
            debug_assert!(data[j].len() >= 64 * blocks);
            // SAFETY: the caller promises 64 * blocks bytes in data[j]; block b's four
            // 16-byte unaligned loads are within them.
            unsafe {
                let p = data[j].as_ptr().add(64 * b).cast::<__m128i>();
                w0[j] = _mm_shuffle_epi8(_mm_loadu_si128(p), mask);
                w1[j] = _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), mask);
                w2[j] = _mm_shuffle_epi8(_mm_loadu_si128(p.add(2)), mask);
                w3[j] = _mm_shuffle_epi8(_mm_loadu_si128(p.add(3)), mask);
            }
        }
        // SAFETY: the round constants' loads read K[4 * i..4 * i + 4], i < 16.
        unsafe {
            rounds4!(N, abef, cdgh, w0, 0);
            rounds4!(N, abef, cdgh, w1, 1);
            rounds4!(N, abef, cdgh, w2, 2);
            rounds4!(N, abef, cdgh, w3, 3);
            schedule_rounds4!(N, abef, cdgh, w0, w1, w2, w3, w4, 4);
            schedule_rounds4!(N, abef, cdgh, w1, w2, w3, w4, w0, 5);
            schedule_rounds4!(N, abef, cdgh, w2, w3, w4, w0, w1, 6);
            schedule_rounds4!(N, abef, cdgh, w3, w4, w0, w1, w2, 7);
            schedule_rounds4!(N, abef, cdgh, w4, w0, w1, w2, w3, 8);
            schedule_rounds4!(N, abef, cdgh, w0, w1, w2, w3, w4, 9);
            schedule_rounds4!(N, abef, cdgh, w1, w2, w3, w4, w0, 10);
            schedule_rounds4!(N, abef, cdgh, w2, w3, w4, w0, w1, 11);
            schedule_rounds4!(N, abef, cdgh, w3, w4, w0, w1, w2, 12);
            schedule_rounds4!(N, abef, cdgh, w4, w0, w1, w2, w3, 13);
            schedule_rounds4!(N, abef, cdgh, w0, w1, w2, w3, w4, 14);
            schedule_rounds4!(N, abef, cdgh, w1, w2, w3, w4, w0, 15);
        }
        for j in 0..N {
            abef[j] = _mm_add_epi32(abef[j], abef_save[j]);
            cdgh[j] = _mm_add_epi32(cdgh[j], cdgh_save[j]);
        }
    }
    for j in 0..N {
        let feba = _mm_shuffle_epi32(abef[j], 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh[j], 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        // SAFETY: two unaligned 16-byte stores into the 32 bytes of a [u32; 8].
        unsafe {
            let p = states[j].as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, dcba);
            _mm_storeu_si128(p.add(1), hgef);
        }
    }
}

/// The digests of `N` final states: each state's words as big-endian bytes, swapped sixteen
/// bytes at a time. Swapped word by word, the four-byte stores of the bytes and the
/// sixteen-byte loads that read them next (the entry encoding, the next block function)
/// could not be forwarded, and waited on each other: 2-3% of a verify.
///
/// # Safety
///
/// The CPU must have SSSE3 (every CPU [`available`] accepts has it).
#[target_feature(enable = "ssse3")]
pub(crate) unsafe fn digests<const N: usize>(states: &[[u32; 8]; N]) -> [[u8; 32]; N] {
    let swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    let mut out = [[0u8; 32]; N];
    for (o, state) in out.iter_mut().zip(states) {
        // SAFETY: two unaligned 16-byte loads from the 32 bytes of a [u32; 8], two stores
        // into the 32 bytes of a [u8; 32].
        unsafe {
            let p = state.as_ptr().cast::<__m128i>();
            let q = o.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(q, _mm_shuffle_epi8(_mm_loadu_si128(p), swap));
            _mm_storeu_si128(q.add(1), _mm_shuffle_epi8(_mm_loadu_si128(p.add(1)), swap));
        }
    }
    out
}

/// Decodes the lower-case hex digits `src` into `out`, sixteen digits (eight bytes) at a
/// time with SSE2; true when every digit is one. Requires `src.len() == 2 * out.len()` and
/// `out.len()` a multiple of 8. The whole loop is one call: a record's `kchain.prev` is
/// four steps, which as four calls cost more than the decoding.
#[inline]
pub(crate) fn lower_hex_into(src: &[u8], out: &mut [u8]) -> bool {
    assert!(src.len() == 2 * out.len() && out.len().is_multiple_of(8));
    // SAFETY: SSE2 is part of x86-64: every CPU this code runs on has it.
    unsafe { lower_hex_sse2(src, out) }
}

#[target_feature(enable = "sse2")]
fn lower_hex_sse2(src: &[u8], out: &mut [u8]) -> bool {
    let mut ok = true;
    for (o, digits) in out.chunks_exact_mut(8).zip(src.chunks_exact(16)) {
        let word = |i: usize| u64::from_le_bytes(digits[i..i + 8].try_into().expect("8"));
        match lower_hex16_sse2(word(0), word(8)) {
            Some(v) => o.copy_from_slice(&v.to_le_bytes()),
            None => ok = false,
        }
    }
    ok
}

/// Sixteen lower-case hex digits (`lo` the first eight, byte `i` the `i`-th digit) as eight
/// bytes, or `None` when any is not one: `hex::lower8`'s work on twice the digits at once,
/// with SSE2.
#[target_feature(enable = "sse2")]
#[inline]
fn lower_hex16_sse2(lo: u64, hi: u64) -> Option<u64> {
    let x = _mm_set_epi64x(hi as i64, lo as i64);
    // Signed byte comparisons: a byte of 0x80 or more is negative, below every bound.
    let within = |low: u8, high: u8| {
        let above = _mm_cmpgt_epi8(x, _mm_set1_epi8(low as i8 - 1));
        let below = _mm_cmpgt_epi8(_mm_set1_epi8(high as i8 + 1), x);
        _mm_and_si128(above, below)
    };
    let (digit, alpha) = (within(b'0', b'9'), within(b'a', b'f'));
    if _mm_movemask_epi8(_mm_or_si128(digit, alpha)) != 0xffff {
        return None;
    }
    let nibbles = _mm_add_epi8(
        _mm_and_si128(x, _mm_set1_epi8(0x0f)),
        _mm_and_si128(alpha, _mm_set1_epi8(9)),
    );
    // Each 16-bit lane holds digits 2j (low byte) and 2j+1 (high byte): one output byte.
    let high = _mm_and_si128(_mm_slli_epi16(nibbles, 4), _mm_set1_epi16(0x00f0));
    let bytes = _mm_or_si128(high, _mm_srli_epi16(nibbles, 8));
    Some(_mm_cvtsi128_si64(_mm_packus_epi16(bytes, bytes)) as u64)
}

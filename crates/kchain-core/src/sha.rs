//! SHA-256 at the level of its block function: messages padded in place
//! ([`sha256_in_place`], [`compress_blocks`]), and two independent messages at once
//! ([`sha256_x2`]).
//!
//! On x86-64 with the SHA extensions the two messages' block functions run interleaved
//! (`x86`), which hashes them in about 0.6 of the time of one after the other; elsewhere
//! the two are hashed one after the other with the sha2 crate. Either way the results are
//! SHA-256's, byte for byte.
//!
//! ```text
//!  message a: [ whole blocks, read in place ][ tail + padding (stack) ]
//!  message b: [ whole blocks ][ tail + padding ]
//!             └──── both at once while both have blocks ────┘└ the longer alone ┘
//! ```

use sha2::{Digest, Sha256};

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
pub(crate) const SHA256_H0: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256 of `a` and of `b`, the two computed at once where the CPU allows it (x86-64 with
/// the SHA extensions, detected at run time); the same results as two calls of
/// [`crate::sha256`] everywhere. Worth it wherever two hashes do not depend on each other:
/// the leaves of a batch, the nodes of one level of a Merkle tree, the records a verifier
/// checks.
///
/// ```
/// let [a, b] = kchain_core::sha256_x2(b"abc", b"");
/// assert_eq!(a, kchain_core::sha256(b"abc"));
/// assert_eq!(b, kchain_core::sha256(b""));
/// ```
pub fn sha256_x2(a: &[u8], b: &[u8]) -> [[u8; 32]; 2] {
    sha256_x2_with(interleaved(), a, b)
}

/// True when [`sha256_x2`] interleaves the two messages on this CPU.
#[inline]
pub(crate) fn interleaved() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::x86::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`sha256_x2`] with the interleaved block function (`interleave`, which requires
/// [`interleaved`]) or the sha2 crate's, one message after the other (the tests run both).
pub(crate) fn sha256_x2_with(interleave: bool, a: &[u8], b: &[u8]) -> [[u8; 32]; 2] {
    #[cfg(target_arch = "x86_64")]
    if interleave {
        assert!(crate::x86::available());
        let (a, b) = (Padded::new(a), Padded::new(b));
        let mut states = [SHA256_H0; 2];
        // SAFETY: the CPU has the features (asserted above); `compress_pair` hands the block
        // function only whole blocks of the messages' segments.
        unsafe { compress_pair(&mut states, [a.segments(), b.segments()]) };
        // SAFETY: as above.
        return unsafe { crate::x86::digests(&states) };
    }
    let _ = interleave;
    [Sha256::digest(a).into(), Sha256::digest(b).into()]
}

/// SHA-256 of two messages already padded to whole blocks (SHA-256's padding written by the
/// caller, in place: the verifier's leaf messages and entry encodings), without the copy of
/// their tails that [`sha256_x2`] makes.
#[inline]
pub(crate) fn compress_padded_x2(a: &[u8], b: &[u8]) -> [[u8; 32]; 2] {
    compress_padded_x2_with(interleaved(), a, b)
}

/// [`compress_padded_x2`] on the code path `interleave` chooses, as [`sha256_x2_with`].
#[inline]
fn compress_padded_x2_with(interleave: bool, a: &[u8], b: &[u8]) -> [[u8; 32]; 2] {
    assert!(a.len().is_multiple_of(64) && b.len().is_multiple_of(64));
    #[cfg(target_arch = "x86_64")]
    if interleave {
        assert!(crate::x86::available());
        let mut states = [SHA256_H0; 2];
        // SAFETY: the CPU has the features (asserted above); both messages are whole blocks.
        unsafe { compress_pair(&mut states, [[a, &[]], [b, &[]]]) };
        // SAFETY: as above.
        return unsafe { crate::x86::digests(&states) };
    }
    let _ = interleave;
    [compress_blocks(a), compress_blocks(b)]
}

/// SHA-256 of what `buf` holds, computed by padding `buf` in place (it is scratch space,
/// left holding the padded message) and running the block function over it directly: no
/// hasher state to set up, no copy of the tail into a block buffer. The verifier hashes two
/// short messages per record, where that overhead was a tenth of the hashing.
pub(crate) fn sha256_in_place(buf: &mut Vec<u8>) -> [u8; 32] {
    pad_in_place(buf);
    compress_blocks(buf)
}

/// A message of `len` bytes (at most 119: it and its padding fit two blocks) at the start
/// of `blocks`, the rest zeros, with SHA-256's padding written after it: the two blocks the
/// block function hashes, on the stack, for the fixed-size messages of the hot paths (an
/// entry header, a Merkle node).
#[inline]
pub(crate) fn pad_two_blocks(blocks: &mut [u8; 128], len: usize) {
    debug_assert!(
        len <= 128 - 9,
        "{len} bytes and the padding do not fit two blocks"
    );
    blocks[len] = 0x80;
    blocks[120..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
}

/// Appends SHA-256's padding to the message `buf` holds: whole blocks then.
#[inline]
pub(crate) fn pad_in_place(buf: &mut Vec<u8>) {
    let bits = (buf.len() as u64).wrapping_mul(8);
    buf.push(0x80);
    let zeros = (64 - (buf.len() + 8) % 64) % 64;
    buf.resize(buf.len() + zeros, 0);
    buf.extend_from_slice(&bits.to_be_bytes());
}

/// SHA-256 of a message already padded to whole 64-byte blocks (the caller's).
pub(crate) fn compress_blocks(padded: &[u8]) -> [u8; 32] {
    use sha2::digest::generic_array::GenericArray;
    /// Messages of up to this many blocks (a record's leaf and entry) go to the block
    /// function in one call: each call loads and stores the state again.
    const IN_ONE_CALL: usize = 8;
    debug_assert!(padded.len().is_multiple_of(64));
    let mut state = SHA256_H0;
    let n = padded.len() / 64;
    if n <= IN_ONE_CALL {
        let mut blocks = [GenericArray::default(); IN_ONE_CALL];
        for (b, c) in blocks.iter_mut().zip(padded.chunks_exact(64)) {
            b.copy_from_slice(c);
        }
        sha2::compress256(&mut state, &blocks[..n]);
    } else {
        for block in padded.chunks_exact(64) {
            sha2::compress256(
                &mut state,
                std::slice::from_ref(GenericArray::from_slice(block)),
            );
        }
    }
    state_bytes(state)
}

/// SHA-256 of `prefix || a[0] || a[1] ...` and of `prefix || b[0] || ...` at once (the leaf
/// and node hashes of a Merkle tree): the two messages joined on the stack when they fit
/// (a node's 65 bytes do), else on the heap.
pub(crate) fn sha256_prefixed_x2(prefix: u8, a: &[&[u8]], b: &[&[u8]]) -> [[u8; 32]; 2] {
    const ON_STACK: usize = 128;
    let len = |parts: &[&[u8]]| 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    if len(a).max(len(b)) > ON_STACK {
        let joined = |parts: &[&[u8]]| {
            [&[prefix][..]]
                .iter()
                .chain(parts)
                .copied()
                .collect::<Vec<_>>()
                .concat()
        };
        return sha256_x2(&joined(a), &joined(b));
    }
    let joined = |parts: &[&[u8]]| {
        let mut msg = [0u8; ON_STACK];
        msg[0] = prefix;
        let mut at = 1;
        for p in parts {
            msg[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        (msg, at)
    };
    let ((ma, la), (mb, lb)) = (joined(a), joined(b));
    sha256_x2(&ma[..la], &mb[..lb])
}

/// A message as the block function sees it: its whole blocks in place, then its last
/// partial block with SHA-256's padding (one or two blocks) on the stack.
struct Padded<'a> {
    body: &'a [u8],
    tail: [u8; 128],
    tail_len: usize,
}

impl<'a> Padded<'a> {
    fn new(msg: &'a [u8]) -> Self {
        let whole = msg.len() / 64 * 64;
        let rest = &msg[whole..];
        let mut tail = [0u8; 128];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        // The 0x80 byte and the 8-byte bit length must fit after the rest.
        let tail_len = if rest.len() + 9 <= 64 { 64 } else { 128 };
        let bits = (msg.len() as u64).wrapping_mul(8);
        tail[tail_len - 8..tail_len].copy_from_slice(&bits.to_be_bytes());
        Padded {
            body: &msg[..whole],
            tail,
            tail_len,
        }
    }

    fn segments(&self) -> [&[u8]; 2] {
        [self.body, &self.tail[..self.tail_len]]
    }
}

/// Runs the block function over two messages, each given as segments of whole blocks:
/// both at once as long as both have blocks left, then the rest of the longer alone.
///
/// # Safety
///
/// The CPU must have the features `x86::available` checks; every segment's length is a
/// multiple of 64.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
unsafe fn compress_pair(states: &mut [[u32; 8]; 2], segs: [[&[u8]; 2]; 2]) {
    use crate::x86::compress;
    // (segment index, byte position in it) of each message.
    let mut at = [(0usize, 0usize); 2];
    let left = |m: usize, at: &[(usize, usize); 2]| segs[m][at[m].0].len() - at[m].1;
    loop {
        for (m, a) in at.iter_mut().enumerate() {
            while a.0 < 2 && segs[m][a.0].len() == a.1 {
                *a = (a.0 + 1, 0);
            }
        }
        if at[0].0 == 2 || at[1].0 == 2 {
            break;
        }
        let k = left(0, &at).min(left(1, &at)) / 64;
        let data = [&segs[0][at[0].0][at[0].1..], &segs[1][at[1].0][at[1].1..]];
        // SAFETY: the features are the caller's promise; both slices hold k whole blocks.
        unsafe { compress::<2>(states, data, k) };
        at[0].1 += 64 * k;
        at[1].1 += 64 * k;
    }
    for m in 0..2 {
        while at[m].0 < 2 {
            let rest = &segs[m][at[m].0][at[m].1..];
            let mut one = [states[m]];
            // SAFETY: the features are the caller's promise; `rest` is whole blocks.
            unsafe { compress::<1>(&mut one, [rest], rest.len() / 64) };
            states[m] = one[0];
            at[m] = (at[m].0 + 1, 0);
        }
    }
}

/// A final state as the digest's 32 bytes.
#[inline]
pub(crate) fn state_bytes(state: [u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Padding in place gives SHA-256 at every length around the block and padding edges.
    #[test]
    fn sha256_in_place_is_sha256() {
        // Past 8 blocks too, where the blocks go to the block function one by one.
        let data: Vec<u8> = (0..700u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut buf = Vec::new();
        for n in 0..=data.len() {
            buf.clear();
            buf.extend_from_slice(&data[..n]);
            assert_eq!(
                sha256_in_place(&mut buf),
                reference(&data[..n]),
                "{n} bytes"
            );
            assert_eq!(buf.len() % 64, 0);
        }
        // The FIPS 180-2 example.
        let mut abc = b"abc".to_vec();
        assert_eq!(
            crate::hex::to_hex(&sha256_in_place(&mut abc)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn reference(m: &[u8]) -> [u8; 32] {
        Sha256::digest(m).into()
    }

    /// Both code paths, from whole messages and from messages padded in place, give the sha2
    /// crate's SHA-256 for every pair of lengths whose
    /// difference crosses the block and padding edges, up to 700 bytes.
    #[test]
    fn both_paths_match_sha2_at_every_length() {
        let data: Vec<u8> = (0..701u32).map(|i| (i * 131 + 7) as u8).collect();
        let other: Vec<u8> = (0..701u32).map(|i| (i * 17 + 91) as u8).collect();
        let mut paths = vec![false];
        if interleaved() {
            paths.push(true);
        }
        for &ni in &paths {
            for n in 0..=700 {
                // The partner's length: the same, and lengths around it and far from it.
                for m in [
                    n,
                    (n + 1) % 701,
                    (n * 7 + 3) % 701,
                    700 - n,
                    n / 2,
                    55,
                    56,
                    64,
                ] {
                    let (a, b) = (&data[..n], &other[..m]);
                    let got = sha256_x2_with(ni, a, b);
                    assert_eq!(got, [reference(a), reference(b)], "{ni} {n} {m}");
                    let (mut pa, mut pb) = (a.to_vec(), b.to_vec());
                    pad_in_place(&mut pa);
                    pad_in_place(&mut pb);
                    let got = compress_padded_x2_with(ni, &pa, &pb);
                    assert_eq!(got, [reference(a), reference(b)], "padded {ni} {n} {m}");
                }
            }
        }
    }

    /// Prefixed pairs (the Merkle leaves and nodes), on the stack and copied, are SHA-256
    /// of the prefixed messages.
    #[test]
    fn prefixed_pairs_are_sha256_of_the_prefixed_messages() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 29 + 1) as u8).collect();
        for n in 0..300 {
            for m in [n, 0, 54, 55, 63, 64, 118, 119, 299 - n] {
                let (a, b) = (&data[..n], &data[300 - m..]);
                let want = [
                    reference(&[&[1], a].concat()),
                    reference(&[&[1], b].concat()),
                ];
                assert_eq!(sha256_prefixed_x2(1, &[a], &[b]), want, "{n} {m}");
                let (a2, b2) = (a.split_at(n / 3), b.split_at(m / 2));
                let got = sha256_prefixed_x2(1, &[a2.0, a2.1], &[b2.0, b2.1]);
                assert_eq!(got, want, "parts {n} {m}");
            }
        }
    }

    /// The FIPS 180-2 examples (appendix B), on both code paths and in both places.
    #[test]
    fn fips_180_2_vectors() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let two = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
        let million = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let a_million = vec![b'a'; 1_000_000];
        let mut paths = vec![false];
        if interleaved() {
            paths.push(true);
        }
        let hex = crate::hex::to_hex;
        for &ni in &paths {
            let [x, y] = sha256_x2_with(ni, b"abc", long);
            assert_eq!((hex(&x), hex(&y)), (abc.to_owned(), two.to_owned()));
            let [x, y] = sha256_x2_with(ni, long, &a_million);
            assert_eq!((hex(&x), hex(&y)), (two.to_owned(), million.to_owned()));
            let [x, y] = sha256_x2_with(ni, &a_million, b"abc");
            assert_eq!((hex(&x), hex(&y)), (million.to_owned(), abc.to_owned()));
        }
    }
}

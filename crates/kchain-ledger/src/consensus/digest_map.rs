//! Hash maps keyed by digests (transaction ids, addresses, block hashes, public keys), with a
//! hasher cheaper than the standard library's SipHash: a sealer looks such keys up several
//! times per transaction (the state's balances, nonces and sealed ids, the verifier's caches).
//!
//! ```text
//! h = seed                      per process, from the standard library's random keys
//! per 8 bytes x of the key:     h = fold(h ^ x, k)       fold(a, b) = lo(a * b) ^ hi(a * b)
//! finish:                       fold(h, k ^ K)
//! ```
//!
//! The folded 128-bit multiply is the mixing step of foldhash (hashbrown's default hasher).
//! The seeds are secret and random per process, so whoever picks the keys (an attacker
//! grinding transaction ids or addresses to collide in one bucket) cannot predict which keys
//! collide. Iteration order is as arbitrary as with `RandomState`; nothing in the ledger
//! depends on it (snapshots and digests sort).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A map with a digest key.
pub(crate) type DigestMap<K, V> = HashMap<K, V, DigestState>;
/// A set of digests.
pub(crate) type DigestSet<K> = HashSet<K, DigestState>;

/// Builds [`DigestHasher`]s with the process's secret seeds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DigestState {
    seed: u64,
    key: u64,
}

impl Default for DigestState {
    fn default() -> Self {
        static SEEDS: OnceLock<(u64, u64)> = OnceLock::new();
        let &(seed, key) = SEEDS.get_or_init(|| {
            let random = std::collections::hash_map::RandomState::new();
            // An odd multiplier, so that no key bit is lost to the low half of the product.
            (random.hash_one(1u8), random.hash_one(2u8) | 1)
        });
        DigestState { seed, key }
    }
}

impl BuildHasher for DigestState {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher {
            h: self.seed,
            key: self.key,
        }
    }
}

/// The hasher of [`DigestState`].
#[derive(Clone, Debug)]
pub(crate) struct DigestHasher {
    h: u64,
    key: u64,
}

/// The low and high halves of the 128-bit product, folded together.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl DigestHasher {
    #[inline(always)]
    fn mix(&mut self, x: u64) {
        self.h = fold(self.h ^ x, self.key);
    }
}

impl Hasher for DigestHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            // The length in the top byte, so that trailing zeros are not lost.
            self.mix(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.key ^ 0x9e37_79b9_7f4a_7c15)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_close_keys_apart() {
        let s = DigestState::default();
        let a = [7u8; 32];
        let mut b = a;
        b[31] ^= 1;
        assert_eq!(s.hash_one(a), DigestState::default().hash_one(a));
        assert_ne!(s.hash_one(a), s.hash_one(b));
        // A trailing zero byte changes the hash of a short key.
        assert_ne!(
            s.hash_one([1u8; 3].as_slice()),
            s.hash_one([1u8, 1, 1, 0].as_slice())
        );
    }

    #[test]
    fn keys_that_differ_in_one_bit_spread_over_the_buckets() {
        // 4,096 keys that differ only in their low 12 bits (what a grinding attacker would
        // make alike) fall into at least half of 4,096 buckets.
        let s = DigestState::default();
        let mut buckets = DigestSet::default();
        for i in 0u32..4096 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            buckets.insert(s.hash_one(k) & 4095);
        }
        assert!(buckets.len() > 2048, "{} buckets", buckets.len());
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut m: DigestMap<[u8; 20], u64> = DigestMap::default();
        for i in 0..1000u64 {
            let mut k = [0u8; 20];
            k[..8].copy_from_slice(&i.to_le_bytes());
            m.insert(k, i);
        }
        for i in 0..1000u64 {
            let mut k = [0u8; 20];
            k[..8].copy_from_slice(&i.to_le_bytes());
            assert_eq!(m.get(&k), Some(&i));
        }
    }
}

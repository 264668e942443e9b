//! A small seeded random source for tests (xorshift64).
//!
//! Not for keys or anything secret: only for workloads and mutations that a test must be able
//! to replay from its seed. The sequence for a seed is fixed: tests pin outcomes on it.

/// A xorshift64 generator; the state is public so a test can print and restore it.
/// Requires a non-zero seed (zero stays zero forever).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator seeded from the clock, the seed printed on standard error so that a
    /// failing run (a kill test's random moments) can be replayed with `Rng(seed)`.
    pub fn from_clock() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let seed = nanos | 1;
        eprintln!("random seed {seed} (replay with Rng({seed}))");
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`. Requires `n > 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_of_a_seed_is_pinned() {
        let mut rng = Rng(99);
        let first: Vec<u64> = (0..3).map(|_| rng.below(1000)).collect();
        let mut again = Rng(99);
        assert_eq!(first, (0..3).map(|_| again.below(1000)).collect::<Vec<_>>());
        assert_eq!(Rng(1).next_u64(), 1082269761);
    }
}

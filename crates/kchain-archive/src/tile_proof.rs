//! Hashes of the chain tree read from its tiles, as a tlog-tiles client reads them: any
//! complete subtree, any range's RFC 6962 root, and an inclusion proof, each from the few
//! tiles on its path instead of every entry bundle.
//!
//! ```text
//!  level l tile t holds the roots of the subtrees of 256^l leaves numbered 256·t .. 256·t+255
//!  subtree [s, s + 2^k) ── l = k / 8, j = k % 8 ──► 2^j hashes of one level-l tile ──► their root
//!  range [a, b)         ── split at the largest power of two below b - a (RFC 6962) ──► subtrees
//!  proofs               ── kchain_core::merkle's walks, each range's root asked of the tiles
//! ```
//!
//! Nothing read here is trusted: the caller holds what it computes to the signed
//! checkpoint's root (a tile that lies gives another root, never a valid proof).

use std::collections::HashMap;

use kchain_core::{merkle, Hash};

use crate::error::ArchiveError;
use crate::path::{hashes_at, tile_path, TILE_WIDTH};
use crate::store::Store;

/// Reads the tiles of one chain's tree of `size` leaves under `prefix`, each at most once.
pub(crate) struct TileHashes<'s> {
    store: &'s Store,
    prefix: String,
    size: u64,
    tiles: HashMap<(u8, u64), Vec<Hash>>,
}

impl<'s> TileHashes<'s> {
    pub(crate) fn new(store: &'s Store, prefix: &str, size: u64) -> Self {
        TileHashes {
            store,
            prefix: prefix.to_owned(),
            size,
            tiles: HashMap::new(),
        }
    }

    /// How many tiles were read so far (a proof reads a handful, not all).
    #[cfg(test)]
    fn tiles_read(&self) -> usize {
        self.tiles.len()
    }

    /// The RFC 6962 inclusion proof of leaf `m` in the tree: bottom-up sibling hashes.
    /// Requires `m < size`.
    pub(crate) fn inclusion_proof(&mut self, m: u64) -> Result<Vec<Hash>, ArchiveError> {
        merkle::inclusion_proof_by(self.size, m, |a, b| self.range_root(a, b))
    }

    /// The RFC 6962 consistency proof that the tree of the first `old` leaves is a prefix of
    /// the tree of the first `new` (`0 < old <= new <= size`; bottom-up).
    pub(crate) fn consistency_proof(
        &mut self,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, ArchiveError> {
        merkle::consistency_proof_by(old, new, |a, b| self.range_root(a, b))
    }

    /// The leaf hash at `m`, as its level-0 tile holds it.
    pub(crate) fn leaf(&mut self, m: u64) -> Result<Hash, ArchiveError> {
        self.subtree(m, 0)
    }

    /// The root of leaves `[a, b)`, where `a` is a multiple of the largest power of two not
    /// above `b - a` (as every range of the RFC 6962 recursion is).
    fn range_root(&mut self, a: u64, b: u64) -> Result<Hash, ArchiveError> {
        let n = b - a;
        if n.is_power_of_two() {
            return self.subtree(a, n.trailing_zeros());
        }
        let k = 1 << (63 - (n - 1).leading_zeros());
        let left = self.range_root(a, a + k)?;
        let right = self.range_root(a + k, b)?;
        Ok(merkle::node_hash(&left, &right))
    }

    /// The root of the complete subtree of `2^height` leaves starting at leaf `start`.
    fn subtree(&mut self, start: u64, height: u32) -> Result<Hash, ArchiveError> {
        let level = (height / 8) as u8;
        let span = 1usize << (height % 8);
        let first = start >> (8 * u32::from(level));
        let (tile, at) = (first / TILE_WIDTH, (first % TILE_WIDTH) as usize);
        let hashes = self.tile(level, tile)?;
        let held = hashes.len();
        match hashes.get(at..at + span) {
            Some(h) => Ok(merkle::root(h)),
            None => Err(self.bad(format!(
                "tile {level}/{tile} holds {held} hashes, not {}",
                at + span
            ))),
        }
    }

    /// The hashes of tile `index` at `level`, full or the partial one the size gives.
    fn tile(&mut self, level: u8, index: u64) -> Result<&[Hash], ArchiveError> {
        if !self.tiles.contains_key(&(level, index)) {
            let width = (hashes_at(level, self.size) - index * TILE_WIDTH).min(TILE_WIDTH);
            let path = format!("{}/{}", self.prefix, tile_path(level, index, width));
            let bytes = self
                .store
                .get(&path)?
                .ok_or_else(|| self.bad(format!("{path} is missing")))?;
            if bytes.len() as u64 != width * 32 {
                return Err(self.bad(format!(
                    "{path} has {} bytes, not {}",
                    bytes.len(),
                    width * 32
                )));
            }
            let hashes = bytes
                .chunks_exact(32)
                .map(|c| <Hash>::try_from(c).expect("32-byte chunk"))
                .collect();
            self.tiles.insert((level, index), hashes);
        }
        Ok(&self.tiles[&(level, index)])
    }

    fn bad(&self, detail: String) -> ArchiveError {
        ArchiveError::Chain {
            chain: self.prefix.clone(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::TreeTiles;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect()
    }

    fn store_with(tree: &TreeTiles, dir: &std::path::Path) -> Store {
        let store = Store::open(&format!("file://{}", dir.display())).unwrap();
        let objects = tree
            .tiles_from(0)
            .into_iter()
            .map(|t| {
                (
                    format!("c/{}", tile_path(t.level, t.index, t.width)),
                    tree.tile(t),
                )
            })
            .collect();
        store.put_all(objects).unwrap();
        store
    }

    #[test]
    fn proofs_from_tiles_are_the_proofs_from_all_leaves() {
        for n in [1u64, 2, 3, 255, 256, 257, 511, 65_536, 65_537, 70_000] {
            let all = leaves(n);
            let dir = tempfile::tempdir().unwrap();
            let store = store_with(&TreeTiles::new(all.clone()), dir.path());
            let mut t = TileHashes::new(&store, "c", n);
            let picks = [
                0,
                1,
                n / 3,
                n / 2,
                n.saturating_sub(257),
                n.saturating_sub(2),
                n - 1,
            ];
            for m in picks.into_iter().filter(|&m| m < n) {
                let want = merkle::inclusion_proof(&all, m).unwrap();
                assert_eq!(t.inclusion_proof(m).unwrap(), want, "size {n}, leaf {m}");
                assert_eq!(t.leaf(m).unwrap(), all[m as usize]);
            }
            for old in [1, n / 2, n.saturating_sub(300), n - 1, n]
                .into_iter()
                .filter(|&o| o > 0)
            {
                let want = merkle::consistency_proof(&all[..n as usize], old).unwrap();
                assert_eq!(t.consistency_proof(old, n).unwrap(), want, "{old} of {n}");
                let mid = (old + n) / 2;
                let want = merkle::consistency_proof(&all[..mid as usize], old).unwrap();
                assert_eq!(
                    t.consistency_proof(old, mid).unwrap(),
                    want,
                    "{old} of {mid}"
                );
            }
            if n == 70_000 {
                // 273 full level-0 tiles exist; a handful of proofs reads a handful of tiles.
                assert!(t.tiles_read() <= 24, "read {} tiles", t.tiles_read());
            }
        }
    }

    #[test]
    fn a_missing_or_short_tile_is_an_error_that_names_it() {
        let all = leaves(600);
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(&TreeTiles::new(all), dir.path());
        store
            .delete(&format!("c/{}", tile_path(0, 1, 256)))
            .unwrap();
        let err = TileHashes::new(&store, "c", 600).inclusion_proof(300);
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("tile/0/001 is missing"));
        store
            .put(&format!("c/{}", tile_path(0, 2, 88)), vec![0; 31])
            .unwrap();
        let err = TileHashes::new(&store, "c", 600).leaf(599);
        assert!(err.unwrap_err().to_string().contains("31 bytes"));
    }
}

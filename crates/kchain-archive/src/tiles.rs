//! The Merkle tiles of a tree, built from its leaf hashes as tlog-tiles defines them. Pure.
//!
//! ```text
//! level 0 tile n   = leaf hashes n*256 .. n*256+255
//! level l tile n   = MTH of each full level l-1 tile, i.e. the hashes of the perfect
//!                    subtrees of 256^l leaves, n*256 .. n*256+255 of them
//! partial tiles    = the rightmost hashes of a level, 1..=255 of them; never hashed upwards
//! ```

use kchain_core::merkle::{self, Hash};

use crate::path::{tiles_at, TileRef, TILE_WIDTH};

/// The hashes of every level of a tree's tiles: `levels[l]` holds the level-l hashes
/// (`floor(size / 256^l)` of them).
#[derive(Clone, Debug, Default)]
pub struct TreeTiles {
    levels: Vec<Vec<Hash>>,
}

impl TreeTiles {
    /// The tiles over `leaves` (leaf hashes, i.e. `chain_leaf(entry hash)` for kchain).
    pub fn new(leaves: Vec<Hash>) -> TreeTiles {
        let mut levels = vec![leaves];
        loop {
            let below = levels.last().unwrap();
            if below.len() < TILE_WIDTH as usize {
                break;
            }
            let up: Vec<Hash> = below
                .chunks_exact(TILE_WIDTH as usize)
                .map(merkle::root)
                .collect();
            levels.push(up);
        }
        TreeTiles { levels }
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        &self.levels[0]
    }

    /// The bytes of one tile: its hashes concatenated. Requires the tile to be in the tree.
    pub fn tile(&self, t: TileRef) -> Vec<u8> {
        let start = (t.index * TILE_WIDTH) as usize;
        self.levels[t.level as usize][start..start + t.width as usize].concat()
    }

    /// Every tile of the tree from tile index `from` on at each level (index `from >> 8l` at
    /// level l): what a run must upload when an earlier one archived up to tile `from` of
    /// level 0.
    pub fn tiles_from(&self, from: u64) -> Vec<TileRef> {
        (0..self.levels.len() as u8)
            .flat_map(|l| tiles_at(l, self.size(), from >> (8 * u32::from(l))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_one_hash_is_the_root_of_a_full_tile() {
        let leaves: Vec<Hash> = (0..600u32)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let t = TreeTiles::new(leaves.clone());
        let l1 = t.tile(TileRef {
            level: 1,
            index: 0,
            width: 2,
        });
        assert_eq!(&l1[..32], merkle::root(&leaves[..256]));
        assert_eq!(&l1[32..], merkle::root(&leaves[256..512]));
        assert_eq!(t.tiles_from(0).len(), 3 + 1);
        assert_eq!(t.tiles_from(2).len(), 1 + 1);
    }
}

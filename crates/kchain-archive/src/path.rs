//! Object names of an archived chain: the C2SP tlog-tiles paths, and kchain's record bundles
//! beside them. Pure.
//!
//! ```text
//! <chain>/checkpoint                      the signed checkpoint note (written last)
//! <chain>/tile/<L>/<N>[.p/<W>]            Merkle tiles: 256 hashes of 32 bytes when full
//! <chain>/tile/entries/<N>[.p/<W>]        entry bundles: uint16 length || entry hash, each
//! <chain>/kchain/records/<N>[.p/<W>]      record bundles: the full records of those entries
//! ```
//!
//! `<N>` is the tile index in zero-padded 3-digit elements, all but the last prefixed with
//! `x` (1234067 is `x001/x234/067`); `.p/<W>` marks a partial tile of width 1..=255.

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// The tile index `n` in tlog-tiles path form: `x001/x234/067` for 1234067, `000` for 0.
pub fn tile_index(n: u64) -> String {
    let mut groups = Vec::new();
    let mut rest = n;
    loop {
        groups.push(rest % 1000);
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i == last {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `<N>` followed by `.p/<W>` when `width` < 256. Requires 1 <= width <= 256.
fn indexed(n: u64, width: u64) -> String {
    if width == TILE_WIDTH {
        tile_index(n)
    } else {
        format!("{}.p/{width}", tile_index(n))
    }
}

/// The path of the Merkle tile at `level`, index `n`, with `width` hashes (256 when full).
pub fn tile_path(level: u8, n: u64, width: u64) -> String {
    format!("tile/{level}/{}", indexed(n, width))
}

/// The path of entry bundle `n` with `width` entries (256 when full).
pub fn entries_path(n: u64, width: u64) -> String {
    format!("tile/entries/{}", indexed(n, width))
}

/// The path of record bundle `n` with `width` records (256 when full): kchain's own, beside
/// the entry bundles, as tlog-tiles allows for entries in another format.
pub fn records_path(n: u64, width: u64) -> String {
    format!("kchain/records/{}", indexed(n, width))
}

/// The path of the checkpoint.
pub const CHECKPOINT_PATH: &str = "checkpoint";

/// The prefix under which a chain lives in an archive: its chain name, `<topic>/<partition>`
/// (the name its checkpoints' origin ends in), so `orders/0/tile/0/000`.
pub fn chain_prefix(topic: &str, partition: u32) -> String {
    format!("{topic}/{partition}")
}

/// One tile of a tree: its level, index and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRef {
    pub level: u8,
    pub index: u64,
    pub width: u64,
}

/// Every tile (full and the partial ones) of a tree of `size` leaves at `level`, in index
/// order, starting at tile `from` (tiles before it are left out).
pub fn tiles_at(level: u8, size: u64, from: u64) -> Vec<TileRef> {
    let hashes = hashes_at(level, size);
    let (full, partial) = (hashes / TILE_WIDTH, hashes % TILE_WIDTH);
    let mut out: Vec<TileRef> = (from..full)
        .map(|index| TileRef {
            level,
            index,
            width: TILE_WIDTH,
        })
        .collect();
    if partial > 0 && full >= from {
        out.push(TileRef {
            level,
            index: full,
            width: partial,
        });
    }
    out
}

/// How many hashes level `level` of the tiles of a tree of `size` leaves holds:
/// `floor(size / 256^level)`.
pub fn hashes_at(level: u8, size: u64) -> u64 {
    let shift = 8 * u32::from(level);
    if shift >= 64 {
        0
    } else {
        size >> shift
    }
}

/// The levels that hold any tile for a tree of `size` leaves: 0 up to the highest non-empty.
pub fn levels(size: u64) -> u8 {
    (0u8..8).take_while(|&l| hashes_at(l, size) > 0).count() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_path_examples() {
        assert_eq!(tile_index(1234067), "x001/x234/067");
        assert_eq!(tile_index(0), "000");
        assert_eq!(tile_index(999), "999");
        assert_eq!(tile_index(1000), "x001/000");
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 5, 17), "tile/1/005.p/17");
        assert_eq!(entries_path(1234067, 3), "tile/entries/x001/x234/067.p/3");
    }

    #[test]
    fn spec_tree_of_70000() {
        // "273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1
        // tile, one partial level 1 tile of width 17, and one partial level 2 tile of width 1"
        let l0 = tiles_at(0, 70_000, 0);
        assert_eq!(l0.len(), 274);
        assert_eq!(l0[273].width, 112);
        let l1 = tiles_at(1, 70_000, 0);
        assert_eq!((l1[0].width, l1[1].width, l1.len()), (256, 17, 2));
        assert_eq!(tiles_at(2, 70_000, 0)[0].width, 1);
        assert_eq!(levels(70_000), 3);
        // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
        // tile of width 1"
        assert_eq!(tiles_at(0, 256, 0).len(), 1);
        assert_eq!(tiles_at(1, 256, 0)[0].width, 1);
        assert_eq!(levels(256), 2);
    }
}

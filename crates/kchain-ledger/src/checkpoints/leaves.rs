//! What every side of the checkpoints shares: the chain tree's leaves (one per canonical
//! block, genesis first) and the checkpoints of one origin among the records of the
//! checkpoints topic.

use kchain_core::{chain_leaf, Checkpoint, Hash, NoteVerifier, SignedNote};
use kchain_topic::checkpoints::CheckpointRecord;

use crate::consensus::chain::Chain;

/// The partition of the blocks topic (its only one), which is also the checkpoint records'
/// key.
pub(super) const BLOCKS_PARTITION: u32 = 0;

/// The chain-tree leaves of the canonical heights `0..size`. Requires `size` <= the chain's
/// length (tip height + 1).
pub(super) fn chain_leaves(chain: &Chain, size: u64) -> Vec<Hash> {
    chain_leaves_between(chain, 0, size)
}

/// The chain-tree leaves of the canonical heights `from..to` (`to` <= the chain's length).
pub(super) fn chain_leaves_between(chain: &Chain, from: u64, to: u64) -> Vec<Hash> {
    (from..to)
        .map(|h| chain_leaf(&chain.block_at(h).expect("height within the chain").0))
        .collect()
}

/// The number of canonical blocks, genesis included.
pub(super) fn chain_len(chain: &Chain) -> u64 {
    chain.tip().height + 1
}

/// The checkpoints of `origin` among `records` (those of the blocks partition), one note per
/// text with the union of its signatures; with `known`, only notes with a verified line by
/// one of them, whose lines claiming one of `known` are kept only if they verify (the lines
/// by other keys, such as witnesses' cosignatures, are kept as they are).
pub(super) fn origin_checkpoints(
    records: &[CheckpointRecord],
    origin: &str,
    known: Option<&[NoteVerifier]>,
) -> Vec<(SignedNote, Checkpoint)> {
    let notes = records
        .iter()
        .filter(|r| r.chain_partition == BLOCKS_PARTITION)
        .map(|r| &r.note);
    let merged = match known {
        Some(known) => kchain_core::merge_keeping_unknown(notes, known).notes,
        None => kchain_core::merge_unverified(notes),
    };
    merged
        .into_iter()
        .filter_map(|n| {
            let c = Checkpoint::parse(n.text()).ok()?;
            (c.origin() == origin).then_some((n, c))
        })
        .collect()
}

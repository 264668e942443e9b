//! Reading back what an archive holds for one chain: its checkpoint when it meets the trust
//! policy, and single entry hashes (what retention and the seam with the log need).

use kchain_core::{Checkpoint, Hash, SignedNote, TrustFile};

use crate::bundle::decode_entries;
use crate::error::ArchiveError;
use crate::path::{chain_prefix, entries_path, CHECKPOINT_PATH, TILE_WIDTH};
use crate::store::Store;

/// The archive's checkpoint of `topic`/`partition` when there is one and it meets the
/// trust file's checkpoint policy; `None` otherwise (nothing the archive says can be relied
/// on then).
pub(crate) fn trusted_checkpoint(
    store: &Store,
    topic: &str,
    partition: u32,
    trust: &TrustFile,
) -> Result<Option<Checkpoint>, ArchiveError> {
    let prefix = chain_prefix(topic, partition);
    let Some(bytes) = store.get(&format!("{prefix}/{CHECKPOINT_PATH}"))? else {
        return Ok(None);
    };
    let Ok(note) = SignedNote::parse(&bytes) else {
        return Ok(None);
    };
    let policy = trust.policy(topic, partition)?;
    Ok(policy.check(&note).ok().map(|t| t.checkpoint))
}

/// The entry hash at `height` in the entry bundles of a tree of `size` entries (`None` when
/// the bundle is missing or malformed, or `height` is not below `size`).
pub(crate) fn entry_at(
    store: &Store,
    prefix: &str,
    size: u64,
    height: u64,
) -> Result<Option<Hash>, ArchiveError> {
    if height >= size {
        return Ok(None);
    }
    let tile = height / TILE_WIDTH;
    let width = (size - tile * TILE_WIDTH).min(TILE_WIDTH);
    let Some(bytes) = store.get(&format!("{prefix}/{}", entries_path(tile, width)))? else {
        return Ok(None);
    };
    Ok(decode_entries(&bytes)
        .ok()
        .and_then(|e| e.get((height % TILE_WIDTH) as usize).copied()))
}

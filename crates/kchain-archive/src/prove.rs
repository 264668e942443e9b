//! Proofs served from an archive: the inclusion of an archived entry in the archive's
//! checkpoint, with its record, as the same proof file `kchain prove` writes from a log
//! (checked offline by `kchain verify-proof`), so a record stays provable once retention
//! deleted it from the log.
//!
//! ```text
//!  checkpoint ──► size n, root r, the signed note the proof carries
//!  entry bundle of h ──► entry hash e ──► leaf SHA-256(0x00 || e) == tile/0's hash at h?
//!  tiles on h's path (a few per level, as any tlog-tiles client reads them)
//!        ──► inclusion proof of leaf h ──► root from proof and leaf == r?
//!  record bundle of h ──► the record ──► its entry hash == e?
//!                                    ──► entry header and item in the proof file
//! ```
//!
//! The archive is read as it is, not verified first: the proof file carries the checkpoint,
//! and its verifier holds it to the trust file; this side only refuses an archive that does
//! not add up (a proof that does not reach the checkpoint's root, a record that is not its
//! entry). Three objects plus about two tiles per level are read, whatever the archive's size.

use kchain_core::{
    chain_leaf, merkle, record_entry_header, ChainId, Checkpoint, ConsistencyProofFile,
    InclusionProofFile, SignedNote,
};
use kchain_topic::checkpoints::split_origin;

use crate::bundle::{decode_entries, decode_records, record_entry};
use crate::error::ArchiveError;
use crate::path::{
    chain_prefix, entries_path, records_path, tiles_at, CHECKPOINT_PATH, TILE_WIDTH,
};
use crate::store::Store;
use crate::tile_proof::TileHashes;

/// A proof that the entry at `height` of `topic`/`partition` is in the archive's
/// checkpoint, with its record. `height` is the record's offset in a log that holds the
/// chain from genesis at offset 0 (what `kchain prove --offset` takes).
pub fn prove_inclusion(
    store: &Store,
    topic: &str,
    partition: u32,
    height: u64,
) -> Result<InclusionProofFile, ArchiveError> {
    let prefix = chain_prefix(topic, partition);
    let bad = |detail: String| ArchiveError::Chain {
        chain: prefix.clone(),
        detail,
    };
    let (note, cp) = archived_checkpoint(store, &prefix)?;
    if height >= cp.size() {
        return Err(bad(format!(
            "the archive's checkpoint covers offsets 0..{}, not {height}",
            cp.size()
        )));
    }
    let t = tiles_at(0, cp.size(), height / TILE_WIDTH)[0];
    let path = format!("{prefix}/{}", entries_path(t.index, t.width));
    let got = store
        .get(&path)?
        .ok_or_else(|| bad(format!("{path} is missing")))?;
    let hashes = decode_entries(&got).map_err(|e| bad(format!("{path}: {e}")))?;
    let entry_hash = *hashes
        .get((height % TILE_WIDTH) as usize)
        .ok_or_else(|| bad(format!("{path} holds {} entries", hashes.len())))?;
    let mut tree = TileHashes::new(store, &prefix, cp.size());
    let leaf = chain_leaf(&entry_hash);
    let proof = tree.inclusion_proof(height)?;
    let reaches = merkle::root_from_inclusion_proof(&leaf, height, cp.size(), &proof);
    if tree.leaf(height)? != leaf || reaches.ok().as_ref() != Some(cp.root()) {
        return Err(bad(
            "the archived entries and tiles do not have the checkpoint's root; run `kchain \
             verify --archive`"
                .into(),
        ));
    }
    let path = format!("{prefix}/{}", records_path(t.index, t.width));
    let got = store
        .get(&path)?
        .ok_or_else(|| bad(format!("{path} is missing")))?;
    let records = decode_records(&got).map_err(|e| bad(format!("{path}: {e}")))?;
    let record = records
        .get((height % TILE_WIDTH) as usize)
        .ok_or_else(|| bad(format!("{path} holds {} records", records.len())))?;
    let chain = ChainId::for_partition(topic, partition);
    let mut scratch = Vec::new();
    let e = record_entry(chain, record, &mut scratch).map_err(|e| bad(e.to_string()))?;
    if e.entry_hash != entry_hash || e.meta.height != height {
        return Err(bad(format!(
            "the archived record at {height} is not its entry; run `kchain verify --archive`"
        )));
    }
    let item = kchain_topic::item_of(record);
    let header = record_entry_header(chain, height, e.meta.prev, &item.as_ref(), &mut scratch);
    Ok(InclusionProofFile::new(height, &entry_hash, &proof, &note)
        .with_offset(height)
        .with_entry(&header, Some((&item, 0, &[]))))
}

/// A proof that checkpoint `old` is a prefix of checkpoint `new` (two notes of one chain,
/// origin `<namespace>/<topic>/<partition>`), from the archive's tiles: for a chain whose
/// log retention has cut, as `kchain prove --consistency` makes it from a log. The archive
/// must hold at least `new`'s size; the proof must then lead from `old`'s root to `new`'s
/// (a tile that lies cannot make it), else the archive is refused.
pub fn prove_consistency(
    store: &Store,
    old: &SignedNote,
    new: &SignedNote,
    namespace: &str,
) -> Result<ConsistencyProofFile, ArchiveError> {
    let parse = |n: &SignedNote, which: &str| {
        Checkpoint::parse(n.text()).map_err(|e| ArchiveError::Chain {
            chain: which.to_owned(),
            detail: format!("{which} checkpoint: {e}"),
        })
    };
    let (o, n) = (parse(old, "old")?, parse(new, "new")?);
    let bad = |detail: String| ArchiveError::Chain {
        chain: n.origin().to_owned(),
        detail,
    };
    if o.origin() != n.origin() || o.size() > n.size() {
        return Err(bad(format!(
            "not an old and a new checkpoint of one chain: {} size {} and {} size {}",
            o.origin(),
            o.size(),
            n.origin(),
            n.size()
        )));
    }
    let (topic, partition) = split_origin(namespace, n.origin())
        .ok_or_else(|| bad(format!("origin is not <{namespace}>/<topic>/<partition>")))?;
    let prefix = chain_prefix(topic, partition);
    let (_, held) = archived_checkpoint(store, &prefix)?;
    if held.size() < n.size() {
        return Err(bad(format!(
            "the archive's checkpoint covers 0..{}, not 0..{}",
            held.size(),
            n.size()
        )));
    }
    let proof = if o.size() == 0 || o.size() == n.size() {
        Vec::new()
    } else {
        TileHashes::new(store, &prefix, held.size()).consistency_proof(o.size(), n.size())?
    };
    let proves = o.size() == 0
        || merkle::verify_consistency(o.size(), n.size(), &proof, o.root(), n.root()).is_ok();
    if !proves {
        return Err(bad(
            "the archive's tiles do not lead from the old checkpoint's root to the new one's: \
             the checkpoints are not of this chain, or the archive is damaged (run `kchain \
             verify --archive`)"
                .into(),
        ));
    }
    Ok(ConsistencyProofFile::new(old, new, &proof))
}

/// The archive's checkpoint of the chain under `prefix`, as a note and parsed.
fn archived_checkpoint(
    store: &Store,
    prefix: &str,
) -> Result<(SignedNote, Checkpoint), ArchiveError> {
    let bad = |detail: String| ArchiveError::Chain {
        chain: prefix.to_owned(),
        detail,
    };
    let bytes = store
        .get(&format!("{prefix}/{CHECKPOINT_PATH}"))?
        .ok_or_else(|| bad(format!("no archived checkpoint at {}", store.url())))?;
    let note = SignedNote::parse(&bytes).map_err(|e| bad(format!("checkpoint: {e}")))?;
    let cp = Checkpoint::parse(note.text()).map_err(|e| bad(format!("checkpoint: {e}")))?;
    Ok((note, cp))
}

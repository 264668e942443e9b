//! The witness's side of checkpoints on a chained topic: one pass over its checkpoints
//! topic, cosigning each new checkpoint that extends the last one this witness cosigned
//! (the work on each partition's origin is `cosign`'s, its files `witness_state`'s).
//!
//! ```text
//! pass:  fresh checkpoints (larger than the last, or same size and other text), by size
//!        leaves since the last: entry hashes from the `kchain.prev` headers of the records
//!        after them (no hashing); if the log does not look like a chain there, from the
//!        chain read and hashed record by record
//!        frontier + leaves ──► root at the checkpoint's size = its root?
//!            yes ──► consistency proof from the frontier and the leaves ──► Witness::observe
//!            no  ──► skipped (the log's chain does not match it; nothing to prove with)
//! ```
//!
//! The leaves come from the log, which the witness does not trust: they only serve to build
//! a proof, and a proof made of wrong leaves fails against the roots the writer signed.

use std::collections::BTreeMap;
use std::path::Path;

use kchain_core::{
    chain_leaf, ChainContext, ChainId, ChainMeta, Hash, NoteVerifier, Observation, SignedNote,
    Trust, Witness, ZERO_HASH,
};
use kchain_log::Log;

use super::cosign::{witness_origin, OriginLog, WitnessEvent};
use super::topic::{partition_origin, publish_note, read_checkpoints};
use crate::error::TopicError;
use crate::scan::{observe_record, read_chain, Chunks};

/// One pass of a witness over the checkpoints of `topic`: for each partition, offers every
/// checkpoint larger than the one it last cosigned (kept in `state_dir`, see the module
/// documentation) to `witness` (whose writer keys are `writers`), in size order, with a
/// consistency proof built from the log, and appends each cosigned note to the checkpoints
/// topic. After a fork or an inconsistency the witness marks the origin and never cosigns
/// for it again. `now` is POSIX seconds.
pub fn witness_pass(
    log: &dyn Log,
    topic: &str,
    witness: &Witness,
    writers: &[NoteVerifier],
    state_dir: &Path,
    namespace: &str,
    now: u64,
) -> Result<Vec<WitnessEvent>, TopicError> {
    let records = read_checkpoints(log, topic)?;
    // Grouped by partition in one pass; a record key naming a partition the topic does not
    // have proves nothing (anyone can append one).
    let count = log.topic(topic)?.partitions;
    let mut by_partition: BTreeMap<u32, Vec<&SignedNote>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.chain_partition < count) {
        by_partition
            .entry(r.chain_partition)
            .or_default()
            .push(&r.note);
    }
    let mut events = Vec::new();
    for (p, notes) in by_partition {
        let origin = partition_origin(namespace, topic, p);
        let have = log.end_offset(topic, p)? - log.start_offset(topic, p)?;
        let mut leaves = |from: u64, to: u64| leaves_between(log, topic, p, from, to);
        let origin_log = OriginLog {
            origin: &origin,
            notes: &notes,
            writers,
            entries: have,
            leaves: &mut leaves,
        };
        events.extend(witness_origin(
            origin_log,
            witness,
            state_dir,
            now,
            &mut |note| publish_note(log, topic, p, note).map(drop),
        )?);
    }
    Ok(events)
}

/// The chain-tree leaves of heights `from..to`. Fast path: entry hash `h` is the
/// `kchain.prev` of the record at height `h + 1`, so only the record at height `to - 1`,
/// when it is the last, is hashed. Falls back to reading and hashing the whole chain when the
/// records are not at the offsets their heights imply (foreign records, a damaged chain).
fn leaves_between(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, TopicError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let mut leaves = Vec::with_capacity((to - from) as usize);
    let mut fast = true;
    // Records at heights from+1 ..= to give the entry hashes of heights from .. to.
    let last = (start + to + 1).min(end);
    let mut chunks = Chunks::new(log.reader(topic, partition, start + from + 1)?, last, 4096);
    'read: while let Some(recs) = chunks.next_chunk()? {
        for r in &recs {
            let meta = ChainMeta::parse(
                r.record
                    .headers
                    .iter()
                    .map(|h| (h.name.as_str(), &h.value[..])),
            );
            match meta {
                Ok(m) if m.height == r.offset - start && m.prev != ZERO_HASH => {
                    leaves.push(chain_leaf(&m.prev))
                }
                _ => {
                    fast = false;
                    break 'read;
                }
            }
        }
    }
    if fast && leaves.len() as u64 + 1 == to - from {
        // The tip itself: nothing after it names its hash yet.
        match entry_hash_at(log, topic, partition, to - 1)? {
            Some(h) => leaves.push(chain_leaf(&h)),
            None => fast = false,
        }
    }
    if fast && leaves.len() as u64 == to - from {
        return Ok(leaves);
    }
    let mut all = Vec::new();
    if read_chain(log, topic, partition, to, &mut |height, h, _| {
        if height >= from {
            all.push(chain_leaf(h))
        }
    })
    .is_err()
    {
        all.clear();
    }
    Ok(all)
}

/// The entry hash of the record at `height`, computed from the record, if it is one.
fn entry_hash_at(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    height: u64,
) -> Result<Option<Hash>, TopicError> {
    let offset = log.start_offset(topic, partition)? + height;
    let mut chunks = Chunks::new(log.reader(topic, partition, offset)?, offset + 1, 1);
    let trust = Trust::default();
    let ctx = ChainContext {
        topic,
        chain: ChainId::for_partition(topic, partition),
        trust: &trust,
    };
    let recs = chunks.next_chunk()?.unwrap_or_default();
    Ok(
        match recs
            .first()
            .map(|r| observe_record(&ctx, r, &mut Vec::new()))
        {
            Some(Observation::Entry(o)) if o.height == height => Some(o.hash),
            _ => None,
        },
    )
}

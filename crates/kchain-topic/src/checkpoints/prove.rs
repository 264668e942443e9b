//! Proofs from the chain of a partition: an entry's inclusion in the newest checkpoint that
//! covers it, and the consistency of two checkpoints of one chain. Both are exported as
//! small files (`kchain_core::InclusionProofFile`, `ConsistencyProofFile`) and checked
//! offline.

use kchain_core::merkle;
use kchain_core::{
    chain_leaf, record_entry_header, ChainId, Checkpoint, ConsistencyProofFile, EntryHeader, Hash,
    InclusionProofFile, Item, SignedNote,
};
use kchain_log::{Log, Record};

use super::topic::{partition_checkpoints, split_origin};
use crate::error::TopicError;
use crate::mapping::{item_of, meta_of};
use crate::scan::{chain_leaves, read_chain};

/// A proof that the record at `offset` of `topic`/`partition` is in the newest checkpoint of
/// its chain that covers it, with the record itself (its entry header and item). Fails when no
/// checkpoint covers the record yet, or when the chain does not match the checkpoint.
pub fn prove_inclusion(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    offset: u64,
    namespace: &str,
) -> Result<InclusionProofFile, TopicError> {
    let start = log.start_offset(topic, partition)?;
    if offset < start || offset >= log.end_offset(topic, partition)? {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: no record at offset {offset}"
        )));
    }
    let height = offset - start;
    let (note, checkpoint) = partition_checkpoints(log, topic, partition, namespace)?
        .into_iter()
        .max_by_key(|(n, c)| (c.size(), n.signatures().len()))
        .filter(|(_, c)| c.size() > height)
        .ok_or_else(|| {
            TopicError::Invalid(format!(
                "{topic}/{partition}: no checkpoint covers offset {offset} yet (the writer \
                 publishes one every few seconds and when it stops)"
            ))
        })?;
    let mut leaves = Vec::with_capacity(checkpoint.size() as usize);
    let mut record = None;
    read_chain(
        log,
        topic,
        partition,
        checkpoint.size(),
        &mut |h, hash, r| {
            leaves.push(chain_leaf(hash));
            if h == height {
                record = Some((*hash, r.record.clone()));
            }
        },
    )?;
    check_root(topic, partition, &leaves, &checkpoint)?;
    let (entry_hash, record) = record.expect("the chain reached the record's height");
    let item = item_of(&record);
    let header = entry_header(topic, partition, &record, &item)?;
    if header.hash() != entry_hash {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: the record at offset {offset} does not hash to its entry"
        )));
    }
    let proof = merkle::inclusion_proof(&leaves, height)
        .map_err(|e| TopicError::Invalid(format!("{topic}/{partition}: {e}")))?;
    Ok(InclusionProofFile::new(height, &entry_hash, &proof, &note)
        .with_offset(offset)
        .with_entry(&header, Some((&item, 0, &[]))))
}

fn entry_header(
    topic: &str,
    partition: u32,
    record: &Record,
    item: &Item,
) -> Result<EntryHeader, TopicError> {
    let meta =
        meta_of(record).map_err(|e| TopicError::Invalid(format!("{topic}/{partition}: {e}")))?;
    Ok(record_entry_header(
        ChainId::for_partition(topic, partition),
        meta.height,
        meta.prev,
        &item.as_ref(),
        &mut Vec::new(),
    ))
}

fn check_root(
    topic: &str,
    partition: u32,
    leaves: &[Hash],
    checkpoint: &Checkpoint,
) -> Result<(), TopicError> {
    let root = merkle::root(leaves);
    if root != *checkpoint.root() {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: the chain's tree at size {} does not match the checkpoint \
             (rewritten history?); run `kchain verify {topic} --trust FILE`",
            checkpoint.size()
        )));
    }
    Ok(())
}

/// A proof that checkpoint `old` is a prefix of checkpoint `new` (both of one chain of
/// `log`, named by their origin under `namespace`), computed from the chain. Fails when
/// either does not match the chain. Requires `old`'s size <= `new`'s.
pub fn prove_consistency(
    log: &dyn Log,
    old: &SignedNote,
    new: &SignedNote,
    namespace: &str,
) -> Result<ConsistencyProofFile, TopicError> {
    let parse = |n: &SignedNote, which: &str| {
        Checkpoint::parse(n.text())
            .map_err(|e| TopicError::Invalid(format!("{which} checkpoint: {e}")))
    };
    let (o, n) = (parse(old, "old")?, parse(new, "new")?);
    if o.origin() != n.origin() {
        return Err(TopicError::Invalid(format!(
            "the checkpoints are of different chains: {} and {}",
            o.origin(),
            n.origin()
        )));
    }
    if o.size() > n.size() {
        return Err(TopicError::Invalid(format!(
            "the old checkpoint (size {}) is larger than the new one (size {})",
            o.size(),
            n.size()
        )));
    }
    let (topic, partition) = split_origin(namespace, n.origin()).ok_or_else(|| {
        TopicError::Invalid(format!(
            "origin {} is not <{namespace}>/<topic>/<partition>",
            n.origin()
        ))
    })?;
    let leaves = chain_leaves(log, topic, partition, n.size())?;
    check_root(topic, partition, &leaves[..o.size() as usize], &o)?;
    check_root(topic, partition, &leaves, &n)?;
    let proof = if o.size() == 0 || o.size() == n.size() {
        Vec::new()
    } else {
        merkle::consistency_proof(&leaves, o.size())
            .map_err(|e| TopicError::Invalid(format!("{topic}/{partition}: {e}")))?
    };
    Ok(ConsistencyProofFile::new(old, new, &proof))
}

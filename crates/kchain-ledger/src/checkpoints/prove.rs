//! Proofs that a transaction is in its canonical block and the block in a checkpoint signed
//! by a sealer, checkable offline ([`crate::verify_tx_proof`]).

use kchain_core::merkle;
use kchain_core::{Checkpoint, Hash, Policy, SignedNote};
use kchain_log::Log;
use kchain_topic::checkpoints::read_checkpoints;

use super::leaves::{chain_leaves, chain_len, origin_checkpoints};
use crate::client::{read_block, tx_status, TxStatus};
use crate::consensus::block::Block;
use crate::consensus::chain::Chain;
use crate::consensus::encoding::hex_lower;
use crate::consensus::genesis::sealer_verifiers;
use crate::consensus::proof::{ledger_origin, ProofSealer, TxProof, TX_PROOF_FORMAT};
use crate::consensus::tx::TxId;
use crate::error::LedgerError;

/// A proof that transaction `id` is in its canonical block and the block in the newest
/// checkpoint that covers it, signed by a sealer of the genesis and matching `chain` (the
/// canonical chain replayed from `log`). Fails when the transaction is not sealed, when no
/// checkpoint covers its block yet, or when the chain does not match the checkpoints.
pub fn prove_tx(
    log: &dyn Log,
    chain: &Chain,
    blocks_topic: &str,
    id: &TxId,
    namespace: &str,
) -> Result<TxProof, LedgerError> {
    let (height, block_offset, index) = sealed_at(log, chain, id)?;
    let stored = read_block(log, blocks_topic, block_offset)?;
    let txs = stored.body.clone().map_err(LedgerError::Invalid)?;
    let tx_leaves: Vec<Hash> = txs.iter().map(|s| s.leaf_hash()).collect();
    let tx_path = merkle::inclusion_proof(&tx_leaves, index as u64).map_err(invalid)?;
    let (note, leaves) = newest_covering(log, chain, blocks_topic, namespace, height)?;
    let block_path = merkle::inclusion_proof(&leaves, height).map_err(invalid)?;
    let genesis_path = merkle::inclusion_proof(&leaves, 0).map_err(invalid)?;
    let header_only = Block {
        header: stored.header.clone(),
        signature: stored.signature,
        txs: vec![],
        genesis: None,
    };
    let sealed = &txs[index];
    let hex_path = |path: Vec<Hash>| path.iter().map(|h| hex_lower(h)).collect();
    Ok(TxProof {
        format: TX_PROOF_FORMAT.to_owned(),
        tx: sealed.tx.to_json_value(),
        partition: sealed.partition,
        offset: sealed.offset,
        index: index as u64,
        tx_proof: hex_path(tx_path),
        block: serde_json::from_slice(&header_only.to_json()).map_err(invalid)?,
        height,
        block_proof: hex_path(block_path),
        checkpoint: note.to_text(),
        sealers: chain
            .genesis()
            .sealers
            .iter()
            .map(|s| ProofSealer {
                name: s.name.clone(),
                public_key: s.key.to_hex(),
            })
            .collect(),
        genesis_proof: hex_path(genesis_path),
    })
}

fn invalid(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Invalid(e.to_string())
}

/// Where transaction `id` is sealed in the canonical chain: (height, block offset, index in
/// the block). An error when it is not sealed there.
fn sealed_at(log: &dyn Log, chain: &Chain, id: &TxId) -> Result<(u64, u64, usize), LedgerError> {
    match tx_status(log, chain, id)? {
        TxStatus::Sealed {
            height,
            block_offset,
            index,
            ..
        } => Ok((height, block_offset, index)),
        other => Err(LedgerError::Invalid(format!(
            "transaction {} is not sealed in the canonical chain ({})",
            hex_lower(id),
            match other {
                TxStatus::Rejected(_) => "rejected",
                TxStatus::Pending { .. } => "pending",
                _ => "unknown",
            }
        ))),
    }
}

/// The newest checkpoint signed by a sealer of the genesis that covers `height` and matches
/// the canonical chain, with the chain-tree leaves of its size.
fn newest_covering(
    log: &dyn Log,
    chain: &Chain,
    blocks_topic: &str,
    namespace: &str,
    height: u64,
) -> Result<(SignedNote, Vec<Hash>), LedgerError> {
    let origin = ledger_origin(namespace, blocks_topic);
    let sealers = sealer_verifiers(chain.genesis());
    let signed_by_sealer = Policy::new(sealers.clone(), vec![], 0).map_err(invalid)?;
    let records = read_checkpoints(log, blocks_topic)?;
    let len = chain_len(chain);
    let mut candidates: Vec<(SignedNote, Checkpoint)> =
        origin_checkpoints(&records, &origin, Some(&sealers))
            .into_iter()
            .filter(|(n, c)| {
                c.size() > height && c.size() <= len && signed_by_sealer.check(n).is_ok()
            })
            .collect();
    candidates.sort_by_key(|(n, c)| (c.size(), n.signatures().len()));
    let mut leaves = chain_leaves(chain, candidates.last().map_or(0, |(_, c)| c.size()));
    let (note, checkpoint) = candidates
        .into_iter()
        .rev()
        .find(|(_, c)| merkle::root(&leaves[..c.size() as usize]) == *c.root())
        .ok_or_else(|| {
            LedgerError::Invalid(format!(
                "{origin}: no checkpoint signed by a sealer covers height {height} and matches \
                 the canonical chain yet (sealers publish one every few blocks or seconds and \
                 when they stop; if one exists, run `kchain ledger verify`)"
            ))
        })?;
    leaves.truncate(checkpoint.size() as usize);
    Ok((note, leaves))
}

//! A witness of the ledger's checkpoints: the chained topics' witness, fed the canonical
//! chain's leaves.

use kchain_core::SignedNote;
use kchain_log::Log;
use kchain_topic::checkpoints::{publish_note, read_checkpoints};

use super::leaves::{chain_leaves_between, chain_len, BLOCKS_PARTITION};
use crate::client::replay;
use crate::consensus::genesis::sealer_verifiers;
use crate::consensus::proof::ledger_origin;
use crate::error::LedgerError;

/// One pass of a witness over a ledger's checkpoints (`<blocks>.checkpoints`): replays the
/// blocks topic into the canonical chain and, exactly as for a chained topic
/// ([`kchain_topic::checkpoints::witness_origin`]), cosigns every checkpoint signed by a genesis sealer
/// that extends the last one it cosigned (its leaves: the canonical block hashes), refuses
/// and marks a fork, and publishes its cosignatures to the checkpoints topic. `state_dir`
/// keeps its state per origin. A blocks topic with a finding is an error: a witness does not
/// prove anything from a log that was tampered with.
pub fn witness_ledger_pass(
    log: &dyn Log,
    blocks_topic: &str,
    cosigner: &kchain_core::Cosigner,
    state_dir: &std::path::Path,
    namespace: &str,
    now: u64,
) -> Result<Vec<kchain_topic::checkpoints::WitnessEvent>, LedgerError> {
    let replayed = replay(log, blocks_topic, None)?;
    if let Some(f) = replayed.finding {
        return Err(LedgerError::Tampered(Box::new(f)));
    }
    let chain = &replayed.chain;
    let writers = sealer_verifiers(chain.genesis());
    let witness = kchain_core::Witness::new(cosigner.clone(), writers.clone());
    let records = read_checkpoints(log, blocks_topic)?;
    let notes: Vec<&SignedNote> = records
        .iter()
        .filter(|r| r.chain_partition == BLOCKS_PARTITION)
        .map(|r| &r.note)
        .collect();
    let origin = ledger_origin(namespace, blocks_topic);
    let entries = chain_len(chain);
    let mut leaves = |from: u64, to: u64| Ok(chain_leaves_between(chain, from, to.min(entries)));
    let events = kchain_topic::checkpoints::witness_origin(
        kchain_topic::checkpoints::OriginLog {
            origin: &origin,
            notes: &notes,
            writers: &writers,
            entries,
            leaves: &mut leaves,
        },
        &witness,
        state_dir,
        now,
        &mut |note| publish_note(log, blocks_topic, BLOCKS_PARTITION, note).map(drop),
    )?;
    Ok(events)
}

//! `ledger balance`, `ledger tx` (with `--proof`), `ledger rejected` and `ledger verify-proof`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use kchain_core::{from_hex, to_hex, CheckpointTrust};
use kchain_ledger::{
    prove_tx, tx_status, verify_tx_proof, Address, Chain, RejectionRecord, Replayed, TrustedLedger,
    TrustedSealers, TxId, TxProof, TxProofError, TxProofTrust, TxStatus,
};
use kchain_log::Log;
use serde_json::json;

use crate::cmd::anchors::read_checkpoint_trust;
use crate::cmd::ledger_args::{outcome, parse_address, read_genesis, replayed, LedgerOpts};
use crate::global::Global;
use crate::outcome::Outcome;
use crate::report::{proof_outcome, rejected_header, rejected_row};

pub(crate) fn write_tx_proof(
    g: &Global,
    l: &LedgerOpts,
    id: &str,
    path: &Path,
    namespace: &str,
) -> Result<Outcome> {
    let id = from_hex(id).with_context(|| format!("'{id}' is not a transaction id"))?;
    let (log, r) = replayed(g, l)?;
    let proof = tx_proof(log.as_ref(), &r, &l.blocks(), &id, namespace)?;
    std::fs::write(path, proof.to_json()).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {}: transaction at height {}, in a checkpoint signed by the sealers",
        path.display(),
        proof.height
    );
    Ok(Outcome::Clean)
}

/// The proof of `ledger tx ID --proof` (and of `kchain serve`): none from a ledger that
/// shows tampering.
pub(crate) fn tx_proof(
    log: &dyn Log,
    r: &Replayed,
    blocks: &str,
    id: &TxId,
    namespace: &str,
) -> Result<TxProof> {
    if r.finding.is_some() {
        bail!("the ledger shows tampering; no proof is written from it");
    }
    Ok(prove_tx(log, &r.chain, blocks, id, namespace)?)
}

pub(crate) fn verify_proof(
    g: &Global,
    file: &Path,
    genesis: Option<&Path>,
    json: bool,
) -> Result<Outcome> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading proof file {}", file.display()))?;
    let proof =
        TxProof::from_json(&text).with_context(|| format!("proof file {}", file.display()))?;
    // The trust file: --trust, else the default one if it exists (optional with --genesis).
    let trust_path = g.trust_path();
    let (trust_text, checkpoints) = match (&g.trust, trust_path.exists()) {
        (Some(_), _) | (None, true) => {
            let (text, ct) = read_checkpoint_trust(&trust_path)?;
            (Some(text), ct.unwrap_or_default())
        }
        (None, false) => (None, CheckpointTrust::default()),
    };
    // The ledger the proof must be of: the genesis file, else the trust file's [[ledger]]
    // entries. A [[writer]] key is never a ledger's sealer.
    let sealers = match (genesis, &trust_text) {
        (Some(path), _) => TrustedSealers::Genesis(Box::new(read_genesis(path)?.0)),
        (None, Some(t)) => {
            let ledgers = TrustedLedger::from_trust_toml(t)
                .map_err(|e| anyhow::anyhow!("trust file {}: {e}", trust_path.display()))?;
            if ledgers.is_empty() {
                bail!(
                    "trust file {} names no ledger: pass --genesis FILE, or add a [[ledger]]                      entry (chain, genesis or chain_id, sealers) to it; a [[writer]] key is                      never a ledger's sealer",
                    trust_path.display()
                );
            }
            TrustedSealers::Ledgers(ledgers)
        }
        (None, None) => bail!(
            "no keys to trust: pass --genesis FILE (the ledger's genesis), or --trust FILE              with a [[ledger]] entry naming the ledger's genesis or chain_id and its sealers"
        ),
    };
    let trust = TxProofTrust {
        sealers,
        checkpoints,
    };
    let verdict = match verify_tx_proof(&proof, &trust) {
        Ok(v) => Ok(format!(
            "included: transaction {} is at position {} of block {} (height {}) of chain \
             {}, in checkpoint {} of size {} signed by {} (cosigned by {} witness(es))",
            to_hex(v.tx.id()),
            proof.index,
            to_hex(&v.block_hash),
            v.height,
            v.chain,
            v.checkpoint.checkpoint.origin(),
            v.checkpoint.checkpoint.size(),
            v.checkpoint.writers.join(", "),
            v.checkpoint.cosigners.len()
        )),
        Err(e @ (TxProofError::UnsupportedFormat { .. } | TxProofError::UnknownLedger { .. })) => {
            return Err(e).with_context(|| format!("proof file {}", file.display()))
        }
        Err(e) => Err(e.to_string()),
    };
    Ok(proof_outcome(file, json, verdict))
}

pub(crate) fn balance(g: &Global, l: &LedgerOpts, address: &str, json: bool) -> Result<Outcome> {
    let addr = parse_address(address)?;
    let (_log, r) = replayed(g, l)?;
    let value = account_json(&r.chain, &addr);
    if json {
        println!("{value}");
    } else {
        println!(
            "{addr}: balance {}, nonce {} (at height {})",
            value["balance"], value["nonce"], value["height"]
        );
    }
    Ok(outcome(&r))
}

/// An address's balance and nonce at the tip of `chain`: what `ledger balance --json` prints
/// (and `kchain serve` answers).
pub(crate) fn account_json(chain: &Chain, addr: &Address) -> serde_json::Value {
    let state = chain.state();
    json!({"address": addr.to_hex(), "balance": state.balance(addr),
           "nonce": state.nonce(addr), "height": chain.tip().height})
}

pub(crate) fn tx_info(g: &Global, l: &LedgerOpts, id: &str, json: bool) -> Result<Outcome> {
    let id =
        from_hex(id).with_context(|| format!("'{id}' is not a transaction id (64 hex digits)"))?;
    let (log, r) = replayed(g, l)?;
    let status = tx_status(log.as_ref(), &r.chain, &id)?;
    let Some((text, value)) = tx_status_report(&status) else {
        bail!("transaction {} is not in this ledger", to_hex(&id));
    };
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(outcome(&r))
}

/// What `ledger tx ID` prints of a transaction's status, as text and as its `--json` object
/// (which `kchain serve` answers too); `None` for a transaction the ledger does not hold.
pub(crate) fn tx_status_report(status: &TxStatus) -> Option<(String, serde_json::Value)> {
    let (text, value) =
        match status {
            TxStatus::Sealed {
                height,
                block,
                block_offset,
                index,
                partition,
                offset,
                tx,
            } => (
                format!(
                    "sealed in block {height} ({}) at offset {block_offset}, position {index}; \
                 read from partition {partition} offset {offset}\n{}",
                    to_hex(block),
                    String::from_utf8_lossy(&tx.to_json())
                ),
                json!({"status": "sealed", "height": height, "block": to_hex(block),
                   "block_offset": block_offset, "index": index, "partition": partition,
                   "offset": offset, "tx": tx.to_json_value()}),
            ),
            TxStatus::Rejected(rec) => {
                (
                    format!(
                "rejected: {}: {} (decided by block {} at height {}, sealer {}); it was at \
                 partition {} offset {}",
                rec.reason, rec.detail, rec.block, rec.height, rec.sealer, rec.partition, rec.offset
            ),
                    json!({"status": "rejected", "rejection": rec}),
                )
            }
            TxStatus::Pending {
                partition,
                offset,
                void,
            } => (
                format!(
                "pending at partition {partition} offset {offset} (not yet decided by a canonical \
                 block{})",
                if void.is_empty() {
                    String::new()
                } else {
                    format!("; {} rejection(s) by blocks that lost a race do not count", void.len())
                }
            ),
                json!({"status": "pending", "partition": partition, "offset": offset}),
            ),
            TxStatus::Unknown => return None,
        };
    Some((text, value))
}

/// `ledger rejected`: every record of the ledger's rejected topic, with whether the block
/// that decided it is canonical. A record that is not a rejection (anyone may write to the
/// topic) is listed as `unreadable` and the listing goes on.
pub(crate) fn rejected(g: &Global, l: &LedgerOpts, json: bool) -> Result<Outcome> {
    let (log, r) = replayed(g, l)?;
    let topic = r.chain.genesis().topics.rejected.clone();
    let end = log.end_offset(&topic, 0)?;
    let mut reader = log.reader(&topic, 0, 0)?;
    if !json {
        println!("{}", rejected_header());
    }
    let mut next = 0;
    while next < end {
        let recs = reader.poll(1024, std::time::Duration::from_millis(500))?;
        if recs.is_empty() {
            bail!("reading {topic} stalled at offset {next} (end offset {end})");
        }
        for s in recs {
            next = s.offset + 1;
            let rec: Option<RejectionRecord> = s
                .record
                .value
                .as_deref()
                .and_then(|v| serde_json::from_slice(v).ok());
            let Some(rec) = rec else {
                if json {
                    println!(
                        "{}",
                        json!({"rejected_offset": s.offset, "status": "unreadable"})
                    );
                } else {
                    println!("{:>6}  unreadable (not a rejection record)", s.offset);
                }
                continue;
            };
            let canonical = rec
                .block_hash()
                .is_some_and(|h| r.chain.height_of(&h).is_some());
            let status = if canonical { "rejected" } else { "void" };
            if json {
                let mut v = serde_json::to_value(&rec)?;
                v["rejected_offset"] = json!(s.offset);
                v["status"] = json!(status);
                println!("{v}");
            } else {
                println!("{}", rejected_row(s.offset, status, &rec));
            }
        }
    }
    Ok(outcome(&r))
}

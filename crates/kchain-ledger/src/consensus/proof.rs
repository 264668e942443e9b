//! A transaction's inclusion proof, checkable offline: the transaction is in its block, and
//! the block is in a signed checkpoint of the blocks chain. No log and no broker are needed:
//! only the proof file and the ledger to trust: its genesis file, or a trust file's
//! `[[ledger]]` entry naming its chain id or genesis hash and its sealers ([`TrustedLedger`]).
//! A proof is always checked against one ledger: its chain id (or genesis hash, at leaf 0 of
//! the checkpoint) and its sealers alone.
//!
//! ```text
//! proof file (format "kchain-ledger-tx-proof/v1", JSON)
//!   tx, partition, offset   the transaction (its JSON) and where the sealer read it
//!   index, tx_proof         its position in the block; RFC 6962 audit path (hex) from its
//!                           leaf to the block's items root
//!   block                   the block as on the blocks topic, without its transactions
//!                           (the header, its hash and the sealer's signature)
//!   height, block_proof     the block's height = its leaf index in the chain tree; audit path
//!                           (hex) from chain_leaf(block hash) to the checkpoint's root
//!   checkpoint              the signed checkpoint note, with any witness cosignatures
//!   sealers                 the genesis's sealers (name, public key), for information only
//!   genesis_proof           audit path (hex) from chain_leaf(genesis hash) to the
//!                           checkpoint's root, for a trust file that names the genesis hash
//!
//! tx leaf ──tx_proof──► items root ∈ header ──SHA-256──► block hash
//!         ──chain_leaf, block_proof──► checkpoint root ◄── signed by a sealer, cosigned
//! ```
//!
//! Every way a file can be wrong has its own [`TxProofError`]: a changed transaction or
//! flipped hash breaks a path (`TxNotInBlock`, `BlockNotInCheckpoint`), a changed header no
//! longer hashes to its `hash` field or moves the block's leaf, a changed height does not
//! match the header, a swapped or edited checkpoint fails the policy or the path.

use kchain_core::merkle::{self, Hash};
use kchain_core::{
    chain_leaf, ChainId, CheckpointTrust, NoteVerifier, Policy, PolicyError, PublicKey, SignedNote,
    TrustedCheckpoint,
};
use serde::{Deserialize, Serialize};

use crate::consensus::block::{BlockHeader, SealedTx, StoredBlock, BLOCK_SIG_TAG};
use crate::consensus::encoding::{hex_lower, parse_hex};
use crate::consensus::genesis::{sealer_verifiers, Genesis};
use crate::consensus::tx::Transaction;

/// The `format` of a transaction proof file.
pub const TX_PROOF_FORMAT: &str = "kchain-ledger-tx-proof/v1";

/// A transaction's inclusion in a block and the block's in a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxProof {
    /// Always [`TX_PROOF_FORMAT`].
    pub format: String,
    /// The transaction, as on the transactions topic.
    pub tx: serde_json::Value,
    /// Where the sealer read it (part of its leaf).
    pub partition: u32,
    pub offset: u64,
    /// Its position in the block.
    pub index: u64,
    /// The audit path, hex, from its leaf to the block's items root.
    pub tx_proof: Vec<String>,
    /// The block as on the blocks topic, with an empty `transactions` list.
    pub block: serde_json::Value,
    /// The block's height: its leaf index in the chain tree.
    pub height: u64,
    /// The audit path, hex, from the block's chain leaf to the checkpoint's root.
    pub block_proof: Vec<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The genesis's sealers, for information: they are never trusted from the file.
    pub sealers: Vec<ProofSealer>,
    /// The audit path, hex, from the genesis block's chain leaf (leaf 0) to the checkpoint's
    /// root: binds the checkpoint to a genesis hash that a trust file names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub genesis_proof: Vec<String>,
}

/// A sealer as the genesis names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofSealer {
    pub name: String,
    /// 64 hex digits.
    pub public_key: String,
}

/// Whom a verifier of a [`TxProof`] trusts.
#[derive(Clone, Debug)]
pub struct TxProofTrust {
    pub sealers: TrustedSealers,
    /// Witnesses, threshold and origin namespace (a trust file's `[[witness]]` and `[policy]`).
    pub checkpoints: CheckpointTrust,
}

/// Where the sealer keys come from, and which ledger the proof must be of. Never a chained
/// topic's writer keys: a key trusted to write `orders` could otherwise mint a ledger of its
/// own and prove anything in it.
#[derive(Clone, Debug)]
pub enum TrustedSealers {
    /// The ledger's genesis: its sealers, and the proof must be of its chain id and of the
    /// origin of its blocks topic.
    Genesis(Box<Genesis>),
    /// A trust file's `[[ledger]]` entries: the one whose blocks topic the checkpoint is of
    /// gives the sealers, and the chain id and/or genesis hash the proof must be of.
    Ledgers(Vec<TrustedLedger>),
}

/// A ledger as a trust file names it:
///
/// ```toml
/// [[ledger]]
/// chain = "demo"                   # the genesis `chain` name
/// genesis = "<64 hex>"             # the genesis hash (`kchain ledger init` prints it)
/// chain_id = "<32 hex>"            # and/or the chain id (printed beside it)
/// blocks_topic = "demo.blocks"     # optional, default "<chain>.blocks"
/// sealers = [{ name = "s1", public_key = "<64 hex>" }]
/// ```
///
/// At least one of `genesis` and `chain_id` is required, and at least one sealer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedLedger {
    pub chain: String,
    pub blocks_topic: String,
    pub genesis: Option<Hash>,
    pub chain_id: Option<ChainId>,
    pub sealers: Vec<crate::consensus::genesis::SealerInfo>,
}

#[derive(Deserialize)]
struct TrustLedgers {
    #[serde(default)]
    ledger: Vec<LedgerToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerToml {
    chain: String,
    #[serde(default)]
    genesis: Option<String>,
    #[serde(default)]
    chain_id: Option<String>,
    #[serde(default)]
    blocks_topic: Option<String>,
    #[serde(default)]
    sealers: Vec<ProofSealer>,
}

impl TrustedLedger {
    /// The `[[ledger]]` entries of trust file text (other tables are not looked at). An
    /// entry without a genesis hash or chain id, or without sealers, is an error.
    pub fn from_trust_toml(text: &str) -> Result<Vec<TrustedLedger>, String> {
        let file: TrustLedgers = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        file.ledger
            .into_iter()
            .map(|l| {
                let bad = |what: &str| format!("[[ledger]] '{}': {what}", l.chain);
                let genesis = match &l.genesis {
                    Some(h) => Some(
                        parse_hex::<32>(h).ok_or_else(|| bad("genesis is not 64 hex digits"))?,
                    ),
                    None => None,
                };
                let chain_id = match &l.chain_id {
                    Some(h) => Some(ChainId(
                        parse_hex::<16>(h).ok_or_else(|| bad("chain_id is not 32 hex digits"))?,
                    )),
                    None => None,
                };
                if genesis.is_none() && chain_id.is_none() {
                    return Err(bad(
                        "needs `genesis` (the genesis hash) or `chain_id`, to bind proofs to it",
                    ));
                }
                if l.sealers.is_empty() {
                    return Err(bad("lists no sealers"));
                }
                let sealers = l
                    .sealers
                    .iter()
                    .map(|s| {
                        PublicKey::from_hex(&s.public_key)
                            .map(|key| crate::consensus::genesis::SealerInfo {
                                name: s.name.clone(),
                                key,
                            })
                            .map_err(|e| bad(&format!("sealer '{}': {e}", s.name)))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(TrustedLedger {
                    blocks_topic: l
                        .blocks_topic
                        .clone()
                        .unwrap_or_else(|| format!("{}.blocks", l.chain)),
                    chain: l.chain,
                    genesis,
                    chain_id,
                    sealers,
                })
            })
            .collect()
    }
}

/// The ledger a proof is checked against: its sealers, the origin of its checkpoints, and
/// what binds the proof to it.
struct Bound {
    writers: Vec<NoteVerifier>,
    sealers: Vec<crate::consensus::genesis::SealerInfo>,
    origin: String,
    chain_id: Option<ChainId>,
    genesis: Option<Hash>,
}

/// What a valid proof established.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedTx {
    pub tx: Transaction,
    pub chain: ChainId,
    pub height: u64,
    pub block_hash: Hash,
    pub checkpoint: TrustedCheckpoint,
}

/// Why a transaction proof does not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxProofError {
    #[error("unsupported proof format {found:?}, expected {TX_PROOF_FORMAT:?}")]
    UnsupportedFormat { found: String },
    #[error("{field}: {detail}")]
    Malformed { field: &'static str, detail: String },
    #[error("no sealer key to trust: give the genesis, or a trust file listing a sealer's key")]
    NoTrustedSealer,
    #[error("the trust file names no ledger whose checkpoints have origin {origin} (a [[ledger]] entry with its chain, genesis or chain_id, and sealers; or pass --genesis FILE)")]
    UnknownLedger { origin: String },
    #[error("the checkpoint does not cover the genesis {genesis} the trust file names: {detail}")]
    GenesisNotInCheckpoint { genesis: String, detail: String },
    #[error("the checkpoint does not meet the trust policy: {0}")]
    Policy(PolicyError),
    #[error("the block's hash field says {stated}, but its header hashes to {computed}")]
    BlockHashMismatch { stated: String, computed: String },
    #[error("the block header is at height {header}, but the proof is for height {claimed}")]
    HeightMismatch { header: u64, claimed: u64 },
    #[error("the block is of chain {block}, {what} is of chain {other}")]
    ChainMismatch {
        block: String,
        what: &'static str,
        other: String,
    },
    #[error("the transaction is not at position {index} of the block's {count} (items root {root}): {source}")]
    TxNotInBlock {
        index: u64,
        count: u32,
        root: String,
        source: merkle::MerkleError,
    },
    #[error("the block's signature does not verify with the key of its sealer {sealer}")]
    BadBlockSignature { sealer: String },
    #[error("block {hash} at height {height} is not in the checkpoint of size {size}: {source}")]
    BlockNotInCheckpoint {
        hash: String,
        height: u64,
        size: u64,
        source: merkle::MerkleError,
    },
}

fn malformed(field: &'static str, detail: impl Into<String>) -> TxProofError {
    TxProofError::Malformed {
        field,
        detail: detail.into(),
    }
}

fn hashes(field: &'static str, hex: &[String]) -> Result<Vec<Hash>, TxProofError> {
    hex.iter()
        .map(|h| parse_hex::<32>(h).ok_or_else(|| malformed(field, "not 64 hex digits")))
        .collect()
}

impl TxProof {
    /// Parses a proof file (JSON). Fails on anything that is not one.
    pub fn from_json(text: &str) -> Result<TxProof, TxProofError> {
        let proof: TxProof =
            serde_json::from_str(text).map_err(|e| malformed("proof file", e.to_string()))?;
        if proof.format != TX_PROOF_FORMAT {
            return Err(TxProofError::UnsupportedFormat {
                found: proof.format,
            });
        }
        Ok(proof)
    }

    /// The JSON form (pretty, ending in a newline).
    pub fn to_json(&self) -> String {
        format!(
            "{}\n",
            serde_json::to_string_pretty(self).expect("a proof serializes")
        )
    }
}

/// The ledger `proof` must be of under `trust`, chosen by the origin of its checkpoint.
fn bound(proof: &TxProof, trust: &TxProofTrust) -> Result<Bound, TxProofError> {
    let ns = &trust.checkpoints.namespace;
    match &trust.sealers {
        TrustedSealers::Genesis(g) => Ok(Bound {
            writers: sealer_verifiers(g),
            sealers: g.sealers.clone(),
            origin: ledger_origin(ns, &g.topics.blocks),
            chain_id: Some(g.chain_id()),
            genesis: None,
        }),
        TrustedSealers::Ledgers(ledgers) => {
            let note = SignedNote::parse(proof.checkpoint.as_bytes())
                .map_err(|e| malformed("checkpoint", e.to_string()))?;
            let origin = kchain_core::Checkpoint::parse(note.text())
                .map_err(|e| malformed("checkpoint", e.to_string()))?
                .origin()
                .to_owned();
            let l = ledgers
                .iter()
                .find(|l| ledger_origin(ns, &l.blocks_topic) == origin)
                .ok_or(TxProofError::UnknownLedger {
                    origin: origin.clone(),
                })?;
            Ok(Bound {
                writers: l
                    .sealers
                    .iter()
                    .filter_map(|s| s.key.note_verifier(&s.name).ok())
                    .collect(),
                sealers: l.sealers.clone(),
                origin,
                chain_id: l.chain_id,
                genesis: l.genesis,
            })
        }
    }
}

/// Checks `proof` against `trust`, offline: the checkpoint meets the policy; the block is
/// whole (its header hashes to its `hash` field and is at the claimed height, of the
/// genesis's chain when known); the transaction is at `index` under the header's items root;
/// the block hash is leaf `height` under the checkpoint's root; the block's sealer signed it.
/// The checks run in that order, so that each mutation of a proof meets the check that
/// explains it.
pub fn verify_tx_proof(proof: &TxProof, trust: &TxProofTrust) -> Result<VerifiedTx, TxProofError> {
    if proof.format != TX_PROOF_FORMAT {
        return Err(TxProofError::UnsupportedFormat {
            found: proof.format.clone(),
        });
    }
    let bound = bound(proof, trust)?;
    if bound.writers.is_empty() {
        return Err(TxProofError::NoTrustedSealer);
    }
    let ct = &trust.checkpoints;
    let policy = Policy::new(bound.writers.clone(), ct.witnesses.clone(), ct.threshold)
        .map_err(TxProofError::Policy)?
        .for_origin(&bound.origin);
    let note = SignedNote::parse(proof.checkpoint.as_bytes())
        .map_err(|e| malformed("checkpoint", e.to_string()))?;
    let checkpoint = policy.check(&note).map_err(TxProofError::Policy)?;
    if let Some(genesis) = bound.genesis {
        genesis_in_checkpoint(proof, &genesis, &checkpoint.checkpoint)?;
    }
    let (tx, block) = whole_block(proof, bound.chain_id)?;
    tx_in_block(proof, &tx, &block.header)?;
    let c = &checkpoint.checkpoint;
    let block_path = hashes("block_proof", &proof.block_proof)?;
    merkle::verify_inclusion(
        &chain_leaf(&block.hash),
        proof.height,
        c.size(),
        &block_path,
        c.root(),
    )
    .map_err(|source| TxProofError::BlockNotInCheckpoint {
        hash: hex_lower(&block.hash),
        height: proof.height,
        size: c.size(),
        source,
    })?;
    // Last: the checkpoint already vouches for the block hash; the sealer's signature makes
    // the file whole.
    sealer_signed(&bound, &block)?;
    Ok(VerifiedTx {
        tx,
        chain: block.header.chain,
        height: proof.height,
        block_hash: block.hash,
        checkpoint,
    })
}

/// Checks that the trusted genesis is leaf 0 of the checkpoint.
fn genesis_in_checkpoint(
    proof: &TxProof,
    genesis: &Hash,
    c: &kchain_core::Checkpoint,
) -> Result<(), TxProofError> {
    let path = hashes("genesis_proof", &proof.genesis_proof)?;
    let why = if path.is_empty() {
        Some(
            "the proof carries no genesis_proof (made by an older kchain: make it again)"
                .to_owned(),
        )
    } else {
        merkle::verify_inclusion(&chain_leaf(genesis), 0, c.size(), &path, c.root())
            .err()
            .map(|e| e.to_string())
    };
    match why {
        Some(detail) => Err(TxProofError::GenesisNotInCheckpoint {
            genesis: hex_lower(genesis),
            detail,
        }),
        None => Ok(()),
    }
}

/// The proof's transaction and block, checked whole: the block's header hashes to its `hash`
/// field, is at the claimed height, and is of the trusted chain (`chain`, when known) and of
/// the transaction's.
fn whole_block(
    proof: &TxProof,
    chain: Option<ChainId>,
) -> Result<(Transaction, StoredBlock), TxProofError> {
    let tx = Transaction::from_json_value(&proof.tx).map_err(|e| malformed("tx", e))?;
    let block_json =
        serde_json::to_vec(&proof.block).map_err(|e| malformed("block", e.to_string()))?;
    let block = StoredBlock::parse(&block_json).map_err(|e| malformed("block", e))?;
    let header = &block.header;
    match &block.stated_hash {
        Some(_) if block.stated_hash_matches() => {}
        stated => {
            return Err(TxProofError::BlockHashMismatch {
                stated: stated.clone().unwrap_or_else(|| "nothing".into()),
                computed: hex_lower(&block.hash),
            })
        }
    }
    if header.height != proof.height {
        return Err(TxProofError::HeightMismatch {
            header: header.height,
            claimed: proof.height,
        });
    }
    let mismatch = |what, other: ChainId| TxProofError::ChainMismatch {
        block: hex_lower(&header.chain.0),
        what,
        other: hex_lower(&other.0),
    };
    if let Some(want) = chain.filter(|want| header.chain != *want) {
        return Err(mismatch("the trusted ledger", want));
    }
    if tx.chain() != header.chain {
        return Err(mismatch("the transaction", tx.chain()));
    }
    Ok((tx, block))
}

/// Checks that `tx` is at the proof's index under the header's items root.
fn tx_in_block(
    proof: &TxProof,
    tx: &Transaction,
    header: &BlockHeader,
) -> Result<(), TxProofError> {
    let leaf = SealedTx {
        tx: tx.clone(),
        partition: proof.partition,
        offset: proof.offset,
    }
    .leaf_hash();
    let tx_path = hashes("tx_proof", &proof.tx_proof)?;
    merkle::verify_inclusion(
        &leaf,
        proof.index,
        u64::from(header.tx_count),
        &tx_path,
        &header.items_root,
    )
    .map_err(|source| TxProofError::TxNotInBlock {
        index: proof.index,
        count: header.tx_count,
        root: hex_lower(&header.items_root),
        source,
    })
}

/// Checks that the block's sealer is a trusted one and signed the block's hash.
fn sealer_signed(bound: &Bound, block: &StoredBlock) -> Result<(), TxProofError> {
    let sealer = block.header.sealer;
    let sealer_key = bound
        .sealers
        .iter()
        .find(|s| s.key.id() == sealer)
        .map(|s| s.key);
    let signed = match (sealer_key, &block.signature) {
        (Some(k), Some(sig)) => k.verify_tagged(BLOCK_SIG_TAG, &block.hash, sig),
        _ => false,
    };
    if signed {
        Ok(())
    } else {
        Err(TxProofError::BadBlockSignature {
            sealer: sealer.to_string(),
        })
    }
}

/// The origin of a ledger's checkpoints: `<namespace>/<blocks topic>`.
pub fn ledger_origin(namespace: &str, blocks_topic: &str) -> String {
    kchain_core::chain_origin(namespace, blocks_topic)
}

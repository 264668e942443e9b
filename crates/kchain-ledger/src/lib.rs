//! kchain-ledger: a small permissioned blockchain on any kchain [`Log`](kchain_log::Log)
//! backend (embedded segment files, or Kafka). Clients append signed transactions to a
//! multi-partition transactions topic; sealers batch them into blocks on a single-partition
//! blocks topic; every node replays the blocks, validates them and keeps the state.
//! Consensus is the log order: the canonical chain is the valid blocks, in log order, each
//! extending the tip.
//!
//! ```text
//! address    = SHA-256(0x0E "kchain:addr:v1" || public key)[..20]
//! tx body    = 0x0C "kchain:tx:v1" || kind || chain id || public key || fields
//! tx id      = SHA-256(tx body)          tx signature = Ed25519(0x0F "kchain:txsig:v1" || id)
//! tx leaf    = SHA-256(0x00 || tx body || signature || partition || offset)
//! block hash = SHA-256(0x0F "kchain:block:v1" || version || chain id || height || prev
//!                      || timestamp || items root || tx count || reward || sealer key id
//!                      || source ranges || difficulty || nonce)
//! block sig  = Ed25519(0x12 "kchain:blocksig:v1" || block hash)
//! chain id   = SHA-256(0x11 "kchain:genesis:v1" || the genesis)[..16]
//! ```
//!
//! Sealers publish signed checkpoints of the blocks chain (C2SP tlog-checkpoint; the chain
//! tree's leaf h is `chain_leaf(hash of the canonical block at height h)`), which `ledger
//! verify` holds the chain against and which a transaction proof ([`TxProof`]) ends in.
//!
//! Byte-by-byte layouts, the consensus rules and how tampering is told apart from stale or
//! invalid blocks are in `docs/ledger.md`.
//!
//! ```
//! use kchain_core::WriterKey;
//! use kchain_ledger::{Address, Genesis, SealerInfo, Transaction};
//!
//! let sealer = WriterKey::from_seed("sealer", [1; 32]);
//! let alice = WriterKey::from_seed("alice", [2; 32]);
//! let genesis = Genesis::new(
//!     "demo",
//!     vec![SealerInfo { name: "s1".into(), key: sealer.public() }],
//!     [(Address::of(&alice), 100)].into(),
//! );
//! let tx = Transaction::transfer(&alice, genesis.chain_id(), Address([9; 20]), 5, 1);
//! let back = Transaction::from_json(&tx.to_json()).unwrap();
//! assert_eq!(back.id(), tx.id());
//! ```
//!
//! References: RFC 8032 (Ed25519), ZIP 215 (cofactored verification), RFC 6962 section 2.1
//! (Merkle trees).

mod bench;
mod block;
mod chain;
mod checkpoints;
mod client;
mod encoding;
mod error;
mod genesis;
mod logio;
mod node;
mod pool;
mod proof;
mod rejected;
mod sealer;
pub mod sig;
mod snapshot;
mod state;
mod tx;
mod validate;
mod verify;

pub use bench::{bench, BenchOptions, BenchReport};
pub use block::{
    items_root, leading_zero_bits, Block, BlockHeader, SealedTx, SourceRange, StoredBlock,
    BLOCK_SIG_TAG, BLOCK_TAG, BLOCK_VERSION,
};
pub use chain::{Chain, Finding, FindingKind, IgnoreReason, Observed, Verdict};
pub use checkpoints::{
    ledger_origin, ledger_policy, prove_tx, sealer_verifiers, witness_ledger_pass,
    CheckpointAnchors, CheckpointFinding, CheckpointOptions, CheckpointStatus,
};
pub use client::{
    canonical_blocks, init, next_nonce, partition_of, read_block, replay, state_digest, submit,
    submit_raw, tx_status, wait_sealed, Initialised, Replayed, Submitter, TxStatus,
};
pub use encoding::{canonical_json, DecodeError};
pub use error::LedgerError;
pub use genesis::{Genesis, SealerInfo, Topics, GENESIS_TAG};
pub use kchain_topic::CheckpointFindingKind;
pub use node::{open_chain, state_dir, Event, Node, NodeOptions, NodeStats};
pub use pool::MAX_TX_RECORD_BYTES;
pub use proof::{
    verify_tx_proof, ProofSealer, TrustedLedger, TrustedSealers, TxProof, TxProofError,
    TxProofTrust, VerifiedTx, TX_PROOF_FORMAT,
};
pub use rejected::{RejectReason, Rejection, RejectionRecord, Submitted};
pub use sealer::{SealEvent, SealOptions};
pub use snapshot::{snapshot_file, Loaded};
pub use state::State;
pub use tx::{Address, Transaction, TxBody, TxId, ADDRESS_TAG, TX_SIG_TAG, TX_TAG};
pub use validate::{check_static, InvalidBlock, Tip, Verifier};
pub use verify::{
    verify_ledger, verify_ledger_with_checkpoints, IgnoredBlock, LedgerReport, VerifyOptions,
};

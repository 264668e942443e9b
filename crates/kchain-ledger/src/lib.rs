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

//! # Layout
//!
//! ```text
//! consensus/   the rules, pure (no log, no files): tx, block, genesis, state, validate,
//!              sig, chain, proof, encoding, reject, and their error
//! node/        a node: follows the blocks topic, seals (sealer, pool, rejected), snapshots,
//!              and the store (opening a chain from its log, the state directory, log I/O)
//! client       init a ledger, submit transactions, replay, query
//! checkpoints  the sealers' signed checkpoints: publish, check, prove, witness
//! verify       `ledger verify`: the whole chain against its anchors
//! audit        every record of the blocks topic with its verdict
//! bench        the ledger benchmark
//! ```

mod audit;
mod bench;
mod checkpoints;
mod client;
mod consensus;
mod error;
mod node;
mod verify;

pub use audit::{audit, AuditRecord, AuditVerdict};
pub use bench::{bench, BenchOptions, BenchReport, Stage as BenchStage};
pub use checkpoints::{
    ledger_policy, prove_tx, witness_ledger_pass, CheckpointAnchors, CheckpointFinding,
    CheckpointOptions, CheckpointStatus,
};
pub use client::{
    canonical_blocks, catch_up, check_submission, init, next_nonce, read_block, replay,
    state_digest, submit, submit_raw, tx_status, wait_sealed, Initialised, Replayed, Submitter,
    TxStatus,
};
pub use consensus::block::{
    items_root, leading_zero_bits, Block, BlockHeader, SealedTx, SourceRange, StoredBlock,
    BLOCK_SIG_TAG, BLOCK_VERSION,
};
pub use consensus::chain::Chain;
pub use consensus::error::ConsensusError;
pub use consensus::finding::{Finding, FindingKind, IgnoreReason, Observed, Verdict};
pub use consensus::genesis::{sealer_verifiers, Genesis, SealerInfo, Topics};
pub use consensus::proof::{
    ledger_origin, verify_tx_proof, ProofSealer, TrustedLedger, TrustedSealers, TxProof,
    TxProofError, TxProofTrust, VerifiedTx, TX_PROOF_FORMAT,
};
pub use consensus::reject::RejectReason;
pub use consensus::state::State;
pub use consensus::tx::{Address, Transaction, TxBody, TxId, TX_SIG_TAG};
pub use consensus::validate::{InvalidBlock, Tip, Verifier};
pub use error::LedgerError;
pub use kchain_topic::checkpoints::CheckpointFindingKind;
pub use node::rejected::RejectionRecord;
pub use node::sealer::{SealEvent, SealOptions};
// A follower that is not a node (`kchain monitor --ledger`) keeps its chain in a snapshot too.
pub use node::snapshot::{
    load as load_snapshot, save as save_snapshot, snapshot_file, Loaded as SnapshotLoaded,
};
pub use node::store::{open_chain, state_dir};
pub use node::{Event, Node, NodeOptions, NodeStats};
pub use verify::{verify_ledger, IgnoredBlock, LedgerReport, VerifyOptions};

//! Checkpoints: what a writer or sealer signs about a chain, what witnesses cosign, and how a
//! verifier holds a chain to them. Pure: the callers read the notes, the chain and the trust
//! file; these modules only parse, sign and decide.
//!
//! ```text
//!  note_key ─► note            C2SP signed notes and their keys
//!                │
//!              text            the checkpoint text (origin, size, root) of a chain tree
//!                ├─ cosign     witness cosignatures (cosignature/v1) and the witness key
//!                ├─ witness    the witness's decision to cosign
//!                └─ policy     which writers sign, how many witnesses must cosign
//!                     ├─ merge        notes merged by text, each known line verified once
//!                     ├─ judge        fork / truncated / rollback / rewritten / none, written once
//!                     ├─ proof        inclusion and consistency proof files
//!                     ├─ proof_file   a proof file's format dispatch, and its policy from a trust file
//!                     └─ remember     remembered checkpoints, bundles, witness evidence (JSON)
//! ```
//!
//! ```
//! use kchain_core::{merkle, chain_leaf, Checkpoint, Cosigner, NoteSigner, Policy, Witness};
//!
//! let writer = NoteSigner::from_seed("acme-orders", [1; 32])?;
//! let witness = Witness::new(Cosigner::from_seed("witness.example/w1", [2; 32])?, vec![writer.verifier()]);
//! let leaves: Vec<merkle::Hash> = (0u8..3).map(|i| chain_leaf(&[i; 32])).collect();
//! let checkpoint = Checkpoint::new("kchain/orders/0", 3, merkle::root(&leaves))?;
//!
//! let mut note = checkpoint.sign(&writer);
//! let cosignature = witness.observe(None, &note, &[], 1_700_000_000).unwrap();
//! note.add_signature(cosignature.to_note_signature());
//!
//! let policy = Policy::new(vec![writer.verifier()], vec![witness.cosigner().verifier()], 1)?;
//! assert_eq!(policy.check(&note)?.checkpoint, checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! References: [c2sp.org/signed-note](https://c2sp.org/signed-note),
//! [c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint),
//! [c2sp.org/tlog-cosignature](https://c2sp.org/tlog-cosignature),
//! [c2sp.org/tlog-witness](https://c2sp.org/tlog-witness), RFC 6962 section 2.1.

pub(crate) mod cosign;
pub(crate) mod judge;
pub(crate) mod merge;
pub(crate) mod note;
pub(crate) mod note_key;
pub(crate) mod policy;
pub(crate) mod proof;
pub(crate) mod proof_file;
pub(crate) mod remember;
pub(crate) mod remote;
pub(crate) mod text;
pub(crate) mod witness;
pub mod witness_wire;

pub use cosign::{Cosignature, Cosigner};
pub use judge::{
    judge, signer_contradiction, stale, ChainCheckpoints, CheckpointFindingKind, Judged, Judgement,
    RootsAt,
};
pub use merge::{
    merge_keeping_unknown, merge_unverified, merge_verified, MergedNotes, MAX_NOTES_PER_CHAIN,
};
pub use note::{SignedNote, MAX_SIGNATURES};
pub use note_key::{
    cosignature_message, is_valid_key_name, key_id, NoteError, NoteSignature, NoteSigner,
    NoteVerifier, SignatureType, COSIGNATURE_V1_HEADER,
};
pub use policy::{Policy, PolicyError, TrustedCheckpoint};
pub use proof::{
    verify_consistency_proof, verify_inclusion_proof, ConsistencyProofFile, EntryEvidence,
    InclusionProofFile, ItemEvidence, ProofError, VerifiedConsistency, VerifiedInclusion,
    CONSISTENCY_PROOF_FORMAT, INCLUSION_PROOF_FORMAT,
};
pub use proof_file::{
    policy_for_note, split_origin, verify_proof_file, ProofFileError, ProofVerdict,
};
pub use remember::{
    bundle_to_json, notes_from_file, remembered_from_json, remembered_to_json, RememberError,
    WitnessEvidence, CHECKPOINT_BUNDLE_FORMAT, REMEMBERED_FORMAT, WITNESS_EVIDENCE_FORMAT,
};
pub use remote::{ProofFrom, RemoteWitness, RemoteWitnessError};
pub use text::{chain_leaf, chain_origin, Checkpoint, CheckpointError, DEFAULT_ORIGIN_NAMESPACE};
pub use witness::{extension, Evidence, Extension, Witness, WitnessRefusal};

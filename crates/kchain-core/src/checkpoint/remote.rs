//! Witnesses reached over the network, as the parties that call them see them: writers and
//! sealers ask for cosignatures (c2sp.org/tlog-witness `add-checkpoint`), verifiers and
//! monitors fetch the newest checkpoint a witness cosigned.
//!
//! ```text
//!  writer / sealer ── add_checkpoint(note, proof_from) ──► RemoteWitness ──► cosignature lines
//!  verifier / monitor ── latest(origin) ─────────────────► RemoteWitness ──► cosigned note
//! ```
//!
//! Pure traits: kchain-witness implements them over HTTP, tests may implement them in memory.
//! The libraries that push and fetch (kchain-topic, kchain-ledger) depend on these traits,
//! not on an HTTP stack.

use super::note::SignedNote;
use super::note_key::NoteSignature;
use crate::merkle::Hash;

/// Why a call to a remote witness gave no cosignature or no checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteWitnessError {
    /// The witness could not be reached, or did not answer in time.
    #[error("{witness} is unreachable: {why}")]
    Unreachable { witness: String, why: String },
    /// The witness answered with a refusal (the tlog-witness status and its body).
    #[error("{witness} refused (HTTP {status}): {message}")]
    Refused {
        witness: String,
        status: u16,
        message: String,
    },
    /// The witness answered something that is not what the protocol says.
    #[error("{witness} answered malformed data: {why}")]
    Malformed { witness: String, why: String },
    /// The caller could not produce the consistency proof the witness needs.
    #[error("no consistency proof from size {old_size} for {witness}: {why}")]
    NoProof {
        witness: String,
        old_size: u64,
        why: String,
    },
}

/// Gives the RFC 6962 consistency proof from `old_size` to the size of the checkpoint being
/// submitted (empty when `old_size` is 0 or equal to it).
pub type ProofFrom<'a> = dyn Fn(u64) -> Result<Vec<Hash>, String> + 'a;

/// A witness reached over the network.
pub trait RemoteWitness: Send + Sync {
    /// What to call it in messages: its URL (and key name when known).
    fn describe(&self) -> String;

    /// Asks for a cosignature of `note` (a checkpoint signed by the log), sending the
    /// consistency proof from the size the witness last cosigned. When the witness answers
    /// that it holds another size (409 with its size), resends once with the proof from that
    /// size. Returns the witness's signature lines (its cosignatures), unchecked: the caller
    /// keeps those that verify under the witness keys it trusts.
    fn add_checkpoint(
        &self,
        note: &SignedNote,
        proof_from: &ProofFrom<'_>,
    ) -> Result<Vec<NoteSignature>, RemoteWitnessError>;

    /// The newest checkpoint this witness cosigned for `origin`, with the log's signatures and
    /// its cosignature, or `None` if it never cosigned one. Unchecked: the caller holds it to
    /// its policy.
    fn latest(&self, origin: &str) -> Result<Option<SignedNote>, RemoteWitnessError>;
}

//! The witness's decision to cosign a checkpoint (c2sp.org/tlog-witness).
//!
//! A witness keeps, per chain, the last checkpoint it cosigned; [`Witness::observe`] cosigns a
//! new one only when a trusted writer signed it and an RFC 6962 consistency proof leads to it
//! from the last, and otherwise refuses, with evidence when the writer signed two checkpoints
//! that cannot both be true:
//!
//! ```text
//!   last cosigned (size m, root r)      offered (size n, root s), proof
//!        |                                      |
//!        +---- writer signature? ---- no ------> UnknownWriter / BadWriterSignature
//!        +---- n < m ----------------------------> Replay
//!        +---- n = m, s != r --------------------> Fork { evidence: both notes }
//!        +---- proof from (m, r) to (n, s) fails -> Inconsistent { evidence, cause }
//!        +---- otherwise ------------------------> cosign (n, s) at `now`
//! ```
//!
//! Reference: [c2sp.org/tlog-witness](https://c2sp.org/tlog-witness).

use super::cosign::{Cosignature, Cosigner};
use super::note::SignedNote;
use super::note_key::{NoteError, NoteVerifier};
use super::text::{Checkpoint, CheckpointError};
use crate::merkle::{self, Hash, MerkleError};

/// Two signed checkpoints of one chain that a witness could not reconcile, with the proof it
/// was given: enough for anyone holding the writer keys to check the claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The checkpoint the witness cosigned last, as it stored it.
    pub cosigned: SignedNote,
    /// The checkpoint it was asked to cosign.
    pub offered: SignedNote,
    /// The consistency proof offered with it.
    pub proof: Vec<Hash>,
}

/// Why a witness did not cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessRefusal {
    #[error("offered note is not a checkpoint: {0}")]
    Malformed(CheckpointError),
    #[error("the witness's stored checkpoint is unreadable: {0}")]
    BadState(CheckpointError),
    #[error("checkpoint for {origin} is not signed by a writer key this witness trusts")]
    UnknownWriter { origin: String },
    #[error("checkpoint for {origin}: {source}")]
    BadWriterSignature { origin: String, source: NoteError },
    #[error("checkpoint is for {offered}, but the stored checkpoint is for {cosigned}")]
    OriginMismatch { cosigned: String, offered: String },
    /// The offered checkpoint is smaller than the one cosigned: a replayed old checkpoint, or
    /// a rollback. A witness never cosigns backwards.
    #[error(
        "{origin}: offered size {offered_size} is older than the cosigned size {cosigned_size}"
    )]
    Replay {
        origin: String,
        cosigned_size: u64,
        offered_size: u64,
    },
    /// A proof was offered where none is needed: for the first checkpoint of a chain, or for
    /// the checkpoint already cosigned.
    #[error("{origin}: a consistency proof of {len} hashes was offered where none is needed")]
    UnexpectedProof { origin: String, len: usize },
    /// The writer signed two different roots for one size: the evidence proves the fork by
    /// itself.
    #[error("fork: {origin} has two different roots signed for size {size}")]
    Fork {
        origin: String,
        size: u64,
        evidence: Box<Evidence>,
    },
    /// The proof does not lead from the cosigned checkpoint to the offered one: either the
    /// writer signed a tree that does not extend the cosigned one (a fork), or the proof is
    /// wrong. A writer that did not fork can always produce a proof that passes.
    #[error("inconsistent: the offered checkpoint does not extend the cosigned one: {cause}")]
    Inconsistent {
        evidence: Box<Evidence>,
        cause: MerkleError,
    },
}

/// Why an offered checkpoint does not extend the one a witness cosigned last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// It is smaller: a replay or a rollback.
    Shrinks { cosigned_size: u64 },
    /// Same size, another root: two roots signed for one size, a proven fork.
    Fork,
    /// A proof where none is needed (from nothing, or to the same checkpoint).
    UnexpectedProof,
    /// The proof does not lead from the cosigned tree to the offered one.
    Inconsistent(MerkleError),
}

/// The one rule every witness of kchain applies once the checkpoint's signature and origin
/// are settled, the pull-mode [`Witness`] and the HTTP witness alike, in c2sp.org/tlog-witness
/// order: never backwards; the same size with another root is a fork; otherwise the
/// consistency proof from `old` (none: from the empty tree, so the proof must be empty) to
/// `new` must verify.
pub fn extension(
    old: Option<&Checkpoint>,
    new: &Checkpoint,
    proof: &[Hash],
) -> Result<(), Extension> {
    let Some(old) = old else {
        return match proof.is_empty() {
            true => Ok(()),
            false => Err(Extension::UnexpectedProof),
        };
    };
    if new.size < old.size {
        return Err(Extension::Shrinks {
            cosigned_size: old.size,
        });
    }
    if new.size == old.size && new.root != old.root {
        return Err(Extension::Fork);
    }
    if new.size == old.size && !proof.is_empty() {
        return Err(Extension::UnexpectedProof);
    }
    merkle::verify_consistency(old.size, new.size, proof, &old.root, &new.root)
        .map_err(Extension::Inconsistent)
}

/// A witness: its cosigning key and the writer keys whose checkpoints it accepts. Pure: the
/// caller keeps the last cosigned note of each chain and supplies the time.
#[derive(Clone, Debug)]
pub struct Witness {
    cosigner: Cosigner,
    writers: Vec<NoteVerifier>,
}

impl Witness {
    /// A witness signing with `cosigner` for checkpoints signed by any of `writers`.
    pub fn new(cosigner: Cosigner, writers: Vec<NoteVerifier>) -> Witness {
        Witness { cosigner, writers }
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// Decides whether to cosign `offered`, given `last_cosigned`, the note this witness last
    /// cosigned for the same chain (None if it never did), and `consistency_proof` from it to
    /// `offered` (empty when there is none or the sizes are equal). `now` is the time in POSIX
    /// seconds (`<= 2^63 - 1`).
    ///
    /// The stored note is taken as trusted (it is the witness's own state). Cosigning the same
    /// checkpoint again gives a fresh cosignature. The caller stores `offered` as the new
    /// state on success.
    pub fn observe(
        &self,
        last_cosigned: Option<&SignedNote>,
        offered: &SignedNote,
        consistency_proof: &[Hash],
        now: u64,
    ) -> Result<Cosignature, WitnessRefusal> {
        let new = Checkpoint::parse(offered.text()).map_err(WitnessRefusal::Malformed)?;
        self.check_writer(offered, &new)?;
        let evidence = |cosigned: &SignedNote| {
            Box::new(Evidence {
                cosigned: cosigned.clone(),
                offered: offered.clone(),
                proof: consistency_proof.to_vec(),
            })
        };
        let old = match last_cosigned {
            None => None,
            Some(note) => {
                let old = Checkpoint::parse(note.text()).map_err(WitnessRefusal::BadState)?;
                if old.origin != new.origin {
                    return Err(WitnessRefusal::OriginMismatch {
                        cosigned: old.origin,
                        offered: new.origin,
                    });
                }
                Some((note, old))
            }
        };
        let origin = || new.origin.clone();
        // Fork and Inconsistent come only past a cosigned note.
        let against_last = || evidence(old.as_ref().expect("a cosigned note").0);
        if let Err(e) = extension(old.as_ref().map(|(_, c)| c), &new, consistency_proof) {
            return Err(match e {
                Extension::Shrinks { cosigned_size } => WitnessRefusal::Replay {
                    origin: origin(),
                    cosigned_size,
                    offered_size: new.size,
                },
                Extension::Fork => WitnessRefusal::Fork {
                    origin: origin(),
                    size: new.size,
                    evidence: against_last(),
                },
                Extension::UnexpectedProof => WitnessRefusal::UnexpectedProof {
                    origin: origin(),
                    len: consistency_proof.len(),
                },
                Extension::Inconsistent(cause) => WitnessRefusal::Inconsistent {
                    evidence: against_last(),
                    cause,
                },
            });
        }
        Ok(self.cosigner.cosign(offered.text(), now))
    }

    fn check_writer(
        &self,
        note: &SignedNote,
        checkpoint: &Checkpoint,
    ) -> Result<(), WitnessRefusal> {
        match note.verify(&self.writers) {
            Ok(_) => Ok(()),
            Err(NoteError::NoVerifiedSignature { .. }) => Err(WitnessRefusal::UnknownWriter {
                origin: checkpoint.origin.clone(),
            }),
            Err(source) => Err(WitnessRefusal::BadWriterSignature {
                origin: checkpoint.origin.clone(),
                source,
            }),
        }
    }
}

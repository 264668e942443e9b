//! The policy a verifier applies to a checkpoint.
//!
//! [`Policy`] is what a verifier trusts: the writer keys, the witness keys and how many
//! witnesses must have cosigned ("k of n").
//!

use super::cosign::Cosignature;
use super::note::SignedNote;
use super::note_key::{find_signer, NoteError, NoteVerifier, SignatureType};
use super::text::{Checkpoint, CheckpointError};

/// Why a checkpoint does not meet a [`Policy`], or why a policy cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("policy: writer key {name} is not an Ed25519 note key (type 0x01)")]
    WriterKeyType { name: String },
    #[error("policy: witness key {name} is not a cosignature key (type 0x04)")]
    WitnessKeyType { name: String },
    #[error("policy: witness {name} uses a writer's public key; a writer cannot witness itself")]
    WitnessIsWriter { name: String },
    #[error("policy: witness key {name}+{key_id:08x} is listed twice")]
    DuplicateWitness { name: String, key_id: u32 },
    #[error("policy: {threshold} cosignatures required but only {witnesses} distinct witness keys listed")]
    ThresholdTooHigh { threshold: usize, witnesses: usize },
    #[error("not a checkpoint: {0}")]
    Malformed(CheckpointError),
    #[error("checkpoint is for origin {found}, the policy is for {expected}")]
    WrongOrigin { expected: String, found: String },
    #[error("checkpoint for {origin} carries no signature by a trusted writer key")]
    UnknownWriter { origin: String },
    #[error("checkpoint for {origin}: invalid signature by writer key {name}+{key_id:08x}")]
    BadWriterSignature {
        origin: String,
        name: String,
        key_id: u32,
    },
    #[error("checkpoint for {origin}: invalid cosignature by witness {name}+{key_id:08x}")]
    BadCosignature {
        origin: String,
        name: String,
        key_id: u32,
    },
    #[error("checkpoint for {origin}: {have} of the required {need} witness cosignatures ({cosigners:?})")]
    NotEnoughCosignatures {
        origin: String,
        have: usize,
        need: usize,
        cosigners: Vec<String>,
    },
    #[error("checkpoint: {0}")]
    Note(NoteError),
}

/// A checkpoint that met a policy, with who vouched for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedCheckpoint {
    pub checkpoint: Checkpoint,
    /// Names of the writer keys whose signatures verified.
    pub writers: Vec<String>,
    /// Name and timestamp of each witness whose cosignature verified, once per witness public
    /// key (the latest timestamp when a witness cosigned more than once, or under two names).
    pub cosigners: Vec<(String, u64)>,
}

/// What a verifier trusts about one chain, or about every chain when no origin is set: which
/// keys may sign its checkpoints and how many of the listed witnesses must cosign them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    origin: Option<String>,
    writers: Vec<NoteVerifier>,
    witnesses: Vec<NoteVerifier>,
    threshold: usize,
}

impl Policy {
    /// A policy: a checkpoint must carry a valid signature by one of `writers` (type 0x01) and
    /// valid cosignatures by at least `threshold` distinct `witnesses` (type 0x04). Requires
    /// `threshold <= witnesses.len()`, no witness listed twice, and no witness with a writer's
    /// public key.
    pub fn new(
        writers: Vec<NoteVerifier>,
        witnesses: Vec<NoteVerifier>,
        threshold: usize,
    ) -> Result<Policy, PolicyError> {
        if let Some(w) = writers.iter().find(|w| w.kind() != SignatureType::Ed25519) {
            return Err(PolicyError::WriterKeyType {
                name: w.name().into(),
            });
        }
        if let Some(w) = witnesses
            .iter()
            .find(|w| w.kind() != SignatureType::CosignatureV1)
        {
            return Err(PolicyError::WitnessKeyType {
                name: w.name().into(),
            });
        }
        if let Some(w) = witnesses
            .iter()
            .find(|w| writers.iter().any(|v| v.public_key() == w.public_key()))
        {
            // A writer's plain signature of a text starting "cosignature/v1" would pass as its
            // cosignature, and a log vouching for itself is no witness.
            return Err(PolicyError::WitnessIsWriter {
                name: w.name().into(),
            });
        }
        for (i, w) in witnesses.iter().enumerate() {
            if witnesses[..i]
                .iter()
                .any(|v| v.name() == w.name() && v.key_id() == w.key_id())
            {
                return Err(PolicyError::DuplicateWitness {
                    name: w.name().into(),
                    key_id: w.key_id(),
                });
            }
        }
        // Witnesses are counted by public key: one key under two names is one witness.
        let mut keys: Vec<&[u8; 32]> = witnesses.iter().map(|w| w.public_key()).collect();
        keys.sort_unstable();
        keys.dedup();
        if threshold > keys.len() {
            return Err(PolicyError::ThresholdTooHigh {
                threshold,
                witnesses: keys.len(),
            });
        }
        Ok(Policy {
            origin: None,
            writers,
            witnesses,
            threshold,
        })
    }

    /// This policy restricted to checkpoints of one origin.
    pub fn for_origin(mut self, origin: &str) -> Policy {
        self.origin = Some(origin.into());
        self
    }

    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    pub fn writers(&self) -> &[NoteVerifier] {
        &self.writers
    }

    pub fn witnesses(&self) -> &[NoteVerifier] {
        &self.witnesses
    }

    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Checks `note` against this policy: it is a checkpoint (of the policy's origin, if set),
    /// signed by a writer key, and cosigned by at least `threshold` witnesses. Keys are
    /// matched by key material, whatever name the policy lists them under (see
    /// `find_signer`), and reported under the policy's names. Signatures by other keys are
    /// ignored; a signature by a listed key that fails rejects the note.
    pub fn check(&self, note: &SignedNote) -> Result<TrustedCheckpoint, PolicyError> {
        let checkpoint = Checkpoint::parse(note.text()).map_err(PolicyError::Malformed)?;
        let origin = checkpoint.origin().to_owned();
        if let Some(expected) = &self.origin {
            if *expected != origin {
                return Err(PolicyError::WrongOrigin {
                    expected: expected.clone(),
                    found: origin,
                });
            }
        }
        let mut writers: Vec<String> = Vec::new();
        let mut cosigners: Vec<(String, u64)> = Vec::new();
        let mut cosigner_keys: Vec<[u8; 32]> = Vec::new();
        for sig in note.signatures() {
            let (name, key_id) = (sig.name(), sig.key_id());
            if let Some(w) = find_signer(&self.writers, name, key_id).map_err(PolicyError::Note)? {
                if !w.verify(note.text(), sig.signature()) {
                    return Err(PolicyError::BadWriterSignature {
                        origin,
                        name: name.into(),
                        key_id,
                    });
                }
                if !writers.iter().any(|n| n == w.name()) {
                    writers.push(w.name().into());
                }
                continue;
            }
            let Some(w) = find_signer(&self.witnesses, name, key_id).map_err(PolicyError::Note)?
            else {
                continue;
            };
            let timestamp = match Cosignature::from_note_signature(sig) {
                Ok(c) if w.verify(note.text(), sig.signature()) => c.timestamp,
                _ => {
                    return Err(PolicyError::BadCosignature {
                        origin,
                        name: name.into(),
                        key_id,
                    })
                }
            };
            // One witness is one public key, whatever names a trust file lists it under:
            // the same key under two names must not count as two cosigners.
            match cosigner_keys.iter().position(|k| k == w.public_key()) {
                Some(i) => cosigners[i].1 = cosigners[i].1.max(timestamp),
                None => {
                    cosigner_keys.push(*w.public_key());
                    cosigners.push((w.name().into(), timestamp));
                }
            }
        }
        if writers.is_empty() {
            return Err(PolicyError::UnknownWriter { origin });
        }
        if cosigners.len() < self.threshold {
            return Err(PolicyError::NotEnoughCosignatures {
                origin,
                have: cosigners.len(),
                need: self.threshold,
                cosigners: cosigners.into_iter().map(|(n, _)| n).collect(),
            });
        }
        Ok(TrustedCheckpoint {
            checkpoint,
            writers,
            cosigners,
        })
    }
}

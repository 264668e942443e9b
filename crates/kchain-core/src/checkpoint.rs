//! Checkpoints (c2sp.org/tlog-checkpoint), witness cosignatures (c2sp.org/tlog-cosignature
//! v1), the witness's decision to cosign, and the policy a verifier applies to a checkpoint.
//!
//! ```text
//! checkpoint text = origin "\n"                  kchain: "<namespace>/<chain name>", e.g.
//!                                                  kchain/orders/0 (see chain_origin)
//!                   tree size "\n"                decimal, no leading zeros ("0" if empty)
//!                   base64(root hash) "\n"        RFC 6962 root of the chain tree: 32 bytes
//!                   (extension line "\n")*        non-empty, opaque; kchain writes none
//! chain tree      = RFC 6962 tree whose leaf i is leaf_hash(entry hash at height i)
//!
//! cosignature     = note signature of type 0x04 by the witness key:
//!                   key id  = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]
//!                   bytes   = u64 BE timestamp (POSIX seconds, < 2^63) || Ed25519 signature
//!                   message = "cosignature/v1\n" "time " decimal timestamp "\n" checkpoint text
//! ```
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
//! [`Policy`] is what a verifier trusts: the writer keys, the witness keys and how many
//! witnesses must have cosigned ("k of n").
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
//! References: [c2sp.org/tlog-checkpoint](https://c2sp.org/tlog-checkpoint),
//! [c2sp.org/tlog-cosignature](https://c2sp.org/tlog-cosignature),
//! [c2sp.org/tlog-witness](https://c2sp.org/tlog-witness), RFC 6962 section 2.1.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};

use crate::merkle::{self, Hash, MerkleError};
use crate::note::{
    find_verifier, format_signer_key, is_valid_key_name, key_id, parse_signer_key, NoteError,
    NoteSignature, NoteSigner, NoteVerifier, SignatureType, SignedNote,
};

/// The namespace of kchain's origins when a deployment sets none.
pub const DEFAULT_ORIGIN_NAMESPACE: &str = "kchain";

/// The first line of every cosignature/v1 signed message.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// What is wrong with a checkpoint text or a cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("checkpoint text does not end in a newline")]
    MissingFinalNewline,
    #[error("checkpoint text holds a control character")]
    ControlCharacter,
    #[error("checkpoint has {lines} lines; it needs an origin, a tree size and a root hash")]
    TooFewLines { lines: usize },
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    #[error("checkpoint tree size {value:?} is not a decimal number without leading zeros that fits 64 bits")]
    BadTreeSize { value: String },
    #[error("checkpoint root hash {value:?} is not the base64 of 32 bytes")]
    BadRootHash { value: String },
    #[error("a checkpoint of size 0 must have the empty tree's root, SHA-256 of the empty string")]
    EmptyTreeRoot,
    #[error("checkpoint line {line} is an empty extension line")]
    EmptyExtensionLine { line: usize },
    #[error("checkpoint extension line {line} holds a newline")]
    InvalidExtensionLine { line: usize },
    #[error("a cosignature is 72 bytes (timestamp and Ed25519 signature), got {len}")]
    BadCosignatureLength { len: usize },
    #[error("cosignature timestamp {timestamp} exceeds 2^63 - 1")]
    TimestampOutOfRange { timestamp: u64 },
}

/// A checkpoint: a chain (origin) has `size` entries and this chain-tree root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines. Requires a non-empty origin without control
    /// characters ([`CheckpointError::EmptyOrigin`], [`CheckpointError::ControlCharacter`]),
    /// and the empty tree's root when `size` is 0 ([`CheckpointError::EmptyTreeRoot`]).
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Checkpoint, CheckpointError> {
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        if origin.contains(|c: char| c < ' ') {
            return Err(CheckpointError::ControlCharacter);
        }
        if size == 0 && root != merkle::empty_root() {
            return Err(CheckpointError::EmptyTreeRoot);
        }
        Ok(Checkpoint {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// This checkpoint with extension lines. Requires each to be non-empty and free of
    /// control characters (line numbers in errors count from 1 at the origin).
    pub fn with_extensions(
        mut self,
        extensions: Vec<String>,
    ) -> Result<Checkpoint, CheckpointError> {
        for (i, e) in extensions.iter().enumerate() {
            if e.is_empty() {
                return Err(CheckpointError::EmptyExtensionLine { line: i + 4 });
            }
            if e.contains(|c: char| c < ' ') {
                return Err(CheckpointError::InvalidExtensionLine { line: i + 4 });
            }
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// Parses a checkpoint text (a note's text, with its final newline), strictly: at least
    /// three lines, a non-empty origin, a canonical decimal size, the base64 of a 32-byte
    /// root (the empty tree's root for size 0), and only non-empty extension lines. Never
    /// panics.
    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingFinalNewline)?;
        if body.contains(|c: char| c < ' ' && c != '\n') {
            return Err(CheckpointError::ControlCharacter);
        }
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::TooFewLines { lines: lines.len() });
        }
        if lines[0].is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_tree_size(lines[1]).ok_or_else(|| CheckpointError::BadTreeSize {
            value: lines[1].into(),
        })?;
        let root = BASE64
            .decode(lines[2])
            .ok()
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(|| CheckpointError::BadRootHash {
                value: lines[2].into(),
            })?;
        if size == 0 && root != merkle::empty_root() {
            return Err(CheckpointError::EmptyTreeRoot);
        }
        if let Some(i) = lines[3..].iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyExtensionLine { line: i + 4 });
        }
        Ok(Checkpoint {
            origin: lines[0].into(),
            size,
            root,
            extensions: lines[3..].iter().map(|l| (*l).into()).collect(),
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of entries (leaves) in the chain tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The RFC 6962 root of the chain tree at this size.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The checkpoint text: what the writer signs and witnesses cosign.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// A note with this checkpoint's text, signed by `writer`.
    pub fn sign(&self, writer: &NoteSigner) -> SignedNote {
        let mut note =
            SignedNote::new(self.to_text()).expect("a checkpoint text is a valid note text");
        note.sign(writer);
        note
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Decimal digits only, no sign, no leading zero unless the value is 0.
fn parse_tree_size(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The leaf hash of the chain tree for the entry with hash `entry_hash`: the RFC 6962 leaf
/// hash SHA-256(0x00 || entry hash), the entry hash being the leaf's data.
pub fn chain_leaf(entry_hash: &Hash) -> Hash {
    merkle::leaf_hash(entry_hash)
}

/// The origin line of a chain's checkpoints: `<namespace>/<chain name>`, e.g.
/// `kchain/orders/0` for partition 0 of topic `orders` (chain name `orders/0`). A deployment
/// whose checkpoints reach witnesses shared with others should use a namespace it owns
/// (`kchain.example.com/prod`), since a witness tells logs apart by origin alone.
pub fn chain_origin(namespace: &str, chain_name: &str) -> String {
    format!("{namespace}/{chain_name}")
}

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <timestamp>\n` followed by the
/// checkpoint text (the note text, with its final newline).
pub fn cosignature_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

/// A witness's cosignature of a checkpoint (c2sp.org/tlog-cosignature, Ed25519 v1).
#[derive(Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The witness's key name.
    pub name: String,
    /// The witness key's id (type 0x04).
    pub key_id: u32,
    /// When the witness signed, in POSIX seconds (< 2^63).
    pub timestamp: u64,
    pub signature: [u8; 64],
}

impl Cosignature {
    /// Reads a cosignature from a note signature line: 72 bytes after the key id, the first 8
    /// a big-endian timestamp below 2^63. Does not check the signature.
    pub fn from_note_signature(sig: &NoteSignature) -> Result<Cosignature, CheckpointError> {
        let bytes = sig.signature();
        let blob: &[u8; 72] = bytes
            .try_into()
            .map_err(|_| CheckpointError::BadCosignatureLength { len: bytes.len() })?;
        let (ts, signature) = blob.split_at(8);
        let timestamp = u64::from_be_bytes(ts.try_into().expect("8 bytes"));
        if timestamp > i64::MAX as u64 {
            return Err(CheckpointError::TimestampOutOfRange { timestamp });
        }
        Ok(Cosignature {
            name: sig.name().into(),
            key_id: sig.key_id(),
            timestamp,
            signature: signature.try_into().expect("64 bytes"),
        })
    }

    /// The note signature line carrying this cosignature.
    pub fn to_note_signature(&self) -> NoteSignature {
        let mut blob = Vec::with_capacity(72);
        blob.extend_from_slice(&self.timestamp.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        NoteSignature::new(&self.name, self.key_id, blob).expect("a cosigner's name is valid")
    }
}

impl fmt::Debug for Cosignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cosignature({}+{:08x} at {})",
            self.name, self.key_id, self.timestamp
        )
    }
}

/// A witness's named Ed25519 secret key, which makes cosignature/v1 signatures (type 0x04).
/// Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl Cosigner {
    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<Cosigner, NoteError> {
        Cosigner::from_seed(name, SigningKey::generate(&mut rand_core::OsRng).to_bytes())
    }

    /// The key with this 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Cosigner, NoteError> {
        if !is_valid_key_name(name) {
            return Err(NoteError::InvalidKeyName { name: name.into() });
        }
        let key = SigningKey::from_bytes(&seed);
        Ok(Cosigner {
            name: name.into(),
            key_id: key_id(
                name,
                SignatureType::CosignatureV1,
                key.verifying_key().as_bytes(),
            ),
            key,
        })
    }

    /// Parses a signer key `PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>` of type 0x04,
    /// or of type 0x01 (a plain note key, as transparency-dev witnesses keep theirs; the
    /// cosignature key id is then derived with type 0x04).
    pub fn from_signer_key(skey: &str) -> Result<Cosigner, NoteError> {
        let secret = parse_signer_key(skey)?;
        Cosigner::from_seed(&secret.name, secret.key.to_bytes())
    }

    /// The signer key text, of type 0x04 (so that no note tool mistakes it for a key that
    /// signs arbitrary texts). It holds the secret: write it with mode 0600.
    pub fn to_signer_key(&self) -> String {
        format_signer_key(&self.name, SignatureType::CosignatureV1, &self.key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier (type 0x04).
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier::new(
            &self.name,
            SignatureType::CosignatureV1,
            self.key.verifying_key().as_bytes(),
        )
        .expect("a signing key's public key is a valid point")
    }

    /// Cosigns `checkpoint_text` at `timestamp` (POSIX seconds). Requires
    /// `timestamp <= 2^63 - 1`. This only signs: [`Witness::observe`] decides whether to.
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Cosignature {
        assert!(
            timestamp <= i64::MAX as u64,
            "cosignature timestamps are below 2^63"
        );
        let message = cosignature_message(timestamp, checkpoint_text);
        Cosignature {
            name: self.name.clone(),
            key_id: self.key_id,
            timestamp,
            signature: self.key.sign(&message).to_bytes(),
        }
    }
}

impl fmt::Debug for Cosigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({}+{:08x})", self.name, self.key_id)
    }
}

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
        match last_cosigned {
            None => {
                // A first checkpoint is trusted on first use: there is nothing to prove from.
                if !consistency_proof.is_empty() {
                    return Err(WitnessRefusal::UnexpectedProof {
                        origin: new.origin,
                        len: consistency_proof.len(),
                    });
                }
            }
            Some(note) => {
                let old = Checkpoint::parse(note.text()).map_err(WitnessRefusal::BadState)?;
                if old.origin != new.origin {
                    return Err(WitnessRefusal::OriginMismatch {
                        cosigned: old.origin,
                        offered: new.origin,
                    });
                }
                if new.size < old.size {
                    return Err(WitnessRefusal::Replay {
                        origin: new.origin,
                        cosigned_size: old.size,
                        offered_size: new.size,
                    });
                }
                if new.size == old.size && new.root != old.root {
                    return Err(WitnessRefusal::Fork {
                        origin: new.origin,
                        size: new.size,
                        evidence: evidence(note),
                    });
                }
                if new.size == old.size && !consistency_proof.is_empty() {
                    return Err(WitnessRefusal::UnexpectedProof {
                        origin: new.origin,
                        len: consistency_proof.len(),
                    });
                }
                merkle::verify_consistency(
                    old.size,
                    new.size,
                    consistency_proof,
                    &old.root,
                    &new.root,
                )
                .map_err(|cause| WitnessRefusal::Inconsistent {
                    evidence: evidence(note),
                    cause,
                })?;
            }
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
    /// signed by a writer key, and cosigned by at least `threshold` witnesses. Signatures by
    /// other keys are ignored; a signature by a listed key that fails rejects the note.
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
            if let Some(w) =
                find_verifier(&self.writers, name, key_id).map_err(PolicyError::Note)?
            {
                if !w.verify(note.text(), sig.signature()) {
                    return Err(PolicyError::BadWriterSignature {
                        origin,
                        name: name.into(),
                        key_id,
                    });
                }
                if !writers.iter().any(|n| n == name) {
                    writers.push(name.into());
                }
                continue;
            }
            let Some(w) =
                find_verifier(&self.witnesses, name, key_id).map_err(PolicyError::Note)?
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
                    cosigners.push((name.into(), timestamp));
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

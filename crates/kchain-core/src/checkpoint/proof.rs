//! Self-contained proof files, checkable offline against a [`Policy`]: an entry's inclusion in
//! a signed checkpoint (optionally with the entry header and one of its items), and the
//! consistency of two signed checkpoints of one chain. The types derive serde; kchain writes
//! them as JSON.
//!
//! ```text
//! inclusion proof (format "kchain-inclusion-proof/v1")
//!   index        height of the entry = its leaf index in the chain tree
//!   entry_hash   hex; the chain tree's leaf i is leaf_hash(entry hash)
//!   proof        hex hashes, RFC 6962 audit path from the leaf up to the checkpoint's root
//!   checkpoint   the signed checkpoint note (text, blank line, writer and witness signatures)
//!   offset?      the record's offset in its partition, as the prover read it (not signed:
//!                the chain commits to heights; for a chain from its partition's start,
//!                offset = height)
//!   entry?       header: hex of the 117-byte canonical entry header (hashes to entry_hash)
//!                item?: { encoded: hex of the canonical item, index: its position in the
//!                         entry, proof: hex audit path up to the header's items root }
//!
//! consistency proof (format "kchain-consistency-proof/v1")
//!   old, new     two signed checkpoint notes of one origin
//!   proof        hex hashes, RFC 6962 consistency proof from old to new
//! ```
//!
//! Verification authenticates the checkpoints first (the policy), then the entry evidence,
//! then the Merkle paths; every way a file can be wrong has its own [`ProofError`].
//!
//! ```
//! use kchain_core::{merkle, chain_leaf, verify_inclusion_proof, Checkpoint, InclusionProofFile, NoteSigner, Policy};
//!
//! let writer = NoteSigner::from_seed("acme-orders", [1; 32])?;
//! let entry_hashes: Vec<merkle::Hash> = (0u8..5).map(|i| [i; 32]).collect();
//! let leaves: Vec<merkle::Hash> = entry_hashes.iter().map(chain_leaf).collect();
//! let note = Checkpoint::new("kchain/orders/0", 5, merkle::root(&leaves))?.sign(&writer);
//!
//! let file = InclusionProofFile::new(3, &entry_hashes[3], &merkle::inclusion_proof(&leaves, 3)?, &note);
//! let policy = Policy::new(vec![writer.verifier()], vec![], 0)?;
//! assert_eq!(verify_inclusion_proof(&file, &policy)?.index, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::{Deserialize, Serialize};

use super::note::SignedNote;
use super::note_key::NoteError;
use super::policy::{Policy, PolicyError, TrustedCheckpoint};
use super::text::chain_leaf;
use super::witness::Evidence;
use crate::entry::EntryHeader;
use crate::hash::{DecodeError, Hash};
use crate::hex::{self, from_hex, to_hex};
use crate::item::Item;
use crate::merkle::{self, MerkleError};

/// The `format` of an inclusion proof file.
pub const INCLUSION_PROOF_FORMAT: &str = "kchain-inclusion-proof/v1";
/// The `format` of a consistency proof file.
pub const CONSISTENCY_PROOF_FORMAT: &str = "kchain-consistency-proof/v1";

/// Why a proof file does not prove what it claims. Each names the part of the file at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    #[error("unsupported proof format {found:?}, expected {expected:?}")]
    UnsupportedFormat {
        found: String,
        expected: &'static str,
    },
    #[error("{field} is not 64 hex digits")]
    MalformedHash { field: String },
    #[error("{field} is not hex")]
    MalformedHex { field: String },
    #[error("{which}: {source}")]
    Note {
        which: &'static str,
        source: NoteError,
    },
    #[error("{which} does not meet the trust policy: {source}")]
    Policy {
        which: &'static str,
        source: PolicyError,
    },
    #[error("the checkpoints are of different chains: old {old:?}, new {new:?}")]
    OriginMismatch { old: String, new: String },
    #[error("malformed entry header: {0}")]
    MalformedEntry(DecodeError),
    #[error("the entry header hashes to {computed}, but the proof is for entry {claimed}")]
    EntryHashMismatch { computed: String, claimed: String },
    #[error("the entry header is at height {height}, but the proof is for index {index}")]
    HeightMismatch { height: u64, index: u64 },
    #[error("entry {index} is not in the checkpoint of size {size}: {source}")]
    NotIncluded {
        index: u64,
        size: u64,
        source: MerkleError,
    },
    #[error("malformed item: {0}")]
    MalformedItem(DecodeError),
    #[error("item {index} is not in the entry's {count} items: {source}")]
    ItemNotIncluded {
        index: u32,
        count: u32,
        source: MerkleError,
    },
    #[error("the new checkpoint (size {new_size}) does not extend the old one (size {old_size}): {source}")]
    Inconsistent {
        old_size: u64,
        new_size: u64,
        source: MerkleError,
    },
}

/// An entry's inclusion in a signed checkpoint of its chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProofFile {
    /// Always [`INCLUSION_PROOF_FORMAT`].
    pub format: String,
    /// The entry's height: its leaf index in the chain tree.
    pub index: u64,
    /// The entry hash, hex.
    pub entry_hash: String,
    /// The audit path, hex, from the leaf upwards.
    pub proof: Vec<String>,
    /// The signed checkpoint note.
    pub checkpoint: String,
    /// The record's offset in its partition as the prover read it, shown to the verifier
    /// beside the proven height (nothing signs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The entry itself, so that the record can be checked too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryEvidence>,
}

/// The header of the proven entry and, optionally, one of its items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryEvidence {
    /// The canonical entry header, hex.
    pub header: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemEvidence>,
}

/// One item of an entry and its path to the entry's items root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemEvidence {
    /// The canonical item encoding (the record), hex.
    pub encoded: String,
    /// The item's position in the entry.
    pub index: u32,
    /// The audit path, hex, from the item's leaf to the items root (empty for a one-item entry).
    pub proof: Vec<String>,
}

/// What a valid inclusion proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedInclusion {
    pub checkpoint: TrustedCheckpoint,
    pub index: u64,
    /// The offset the file states (unsigned, see [`InclusionProofFile::offset`]).
    pub offset: Option<u64>,
    pub entry_hash: Hash,
    pub entry: Option<EntryHeader>,
    pub item: Option<Item>,
}

impl InclusionProofFile {
    /// A proof that the entry with hash `entry_hash` at height `index` is leaf `index` of the
    /// tree of the signed checkpoint `checkpoint`, by the audit path `proof`.
    pub fn new(index: u64, entry_hash: &Hash, proof: &[Hash], checkpoint: &SignedNote) -> Self {
        InclusionProofFile {
            format: INCLUSION_PROOF_FORMAT.into(),
            index,
            entry_hash: to_hex(entry_hash),
            proof: proof.iter().map(to_hex).collect(),
            checkpoint: checkpoint.to_text(),
            offset: None,
            entry: None,
        }
    }

    /// This proof with the record's offset in its partition, as the prover read it.
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// This proof with the entry's header and, optionally, one item with its position and
    /// audit path in the entry.
    pub fn with_entry(mut self, header: &EntryHeader, item: Option<(&Item, u32, &[Hash])>) -> Self {
        self.entry = Some(EntryEvidence {
            header: hex::encode(header.encode()),
            item: item.map(|(item, index, proof)| ItemEvidence {
                encoded: hex::encode(item.encode()),
                index,
                proof: proof.iter().map(to_hex).collect(),
            }),
        });
        self
    }
}

/// Two signed checkpoints of one chain and the consistency proof between them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProofFile {
    /// Always [`CONSISTENCY_PROOF_FORMAT`].
    pub format: String,
    /// The older signed checkpoint note.
    pub old: String,
    /// The newer signed checkpoint note.
    pub new: String,
    /// The consistency proof, hex.
    pub proof: Vec<String>,
}

/// What a valid consistency proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedConsistency {
    pub old: TrustedCheckpoint,
    pub new: TrustedCheckpoint,
}

impl ConsistencyProofFile {
    /// A proof that the tree of `old` is a prefix of the tree of `new`.
    pub fn new(old: &SignedNote, new: &SignedNote, proof: &[Hash]) -> Self {
        ConsistencyProofFile {
            format: CONSISTENCY_PROOF_FORMAT.into(),
            old: old.to_text(),
            new: new.to_text(),
            proof: proof.iter().map(to_hex).collect(),
        }
    }
}

impl From<&Evidence> for ConsistencyProofFile {
    /// A witness's evidence as a consistency proof file, which fails verification the way the
    /// witness saw it fail: anyone can re-check the claim.
    fn from(e: &Evidence) -> Self {
        ConsistencyProofFile::new(&e.cosigned, &e.offered, &e.proof)
    }
}

/// Checks an inclusion proof file against `policy`: the checkpoint meets the policy, the entry
/// evidence (if any) hashes to the entry hash at the proven height, the audit path leads from
/// the entry to the checkpoint's root, and the item (if any) is in the entry.
pub fn verify_inclusion_proof(
    file: &InclusionProofFile,
    policy: &Policy,
) -> Result<VerifiedInclusion, ProofError> {
    check_format(&file.format, INCLUSION_PROOF_FORMAT)?;
    let entry_hash = parse_hash(&file.entry_hash, "entry_hash")?;
    let proof = parse_hashes(&file.proof, "proof")?;
    let checkpoint = trusted(&file.checkpoint, "checkpoint", policy)?;

    let mut entry = None;
    let mut item = None;
    if let Some(evidence) = &file.entry {
        let header = EntryHeader::decode(&parse_hex(&evidence.header, "entry.header")?)
            .map_err(ProofError::MalformedEntry)?;
        let computed = header.hash();
        if computed != entry_hash {
            return Err(ProofError::EntryHashMismatch {
                computed: to_hex(&computed),
                claimed: to_hex(&entry_hash),
            });
        }
        if header.height != file.index {
            return Err(ProofError::HeightMismatch {
                height: header.height,
                index: file.index,
            });
        }
        if let Some(it) = &evidence.item {
            let decoded = Item::decode(&parse_hex(&it.encoded, "entry.item.encoded")?)
                .map_err(ProofError::MalformedItem)?;
            let path = parse_hashes(&it.proof, "entry.item.proof")?;
            merkle::verify_inclusion(
                &decoded.leaf_hash(),
                u64::from(it.index),
                u64::from(header.item_count),
                &path,
                &header.items_root,
            )
            .map_err(|source| ProofError::ItemNotIncluded {
                index: it.index,
                count: header.item_count,
                source,
            })?;
            item = Some(decoded);
        }
        entry = Some(header);
    }

    let (size, root) = (checkpoint.checkpoint.size(), *checkpoint.checkpoint.root());
    merkle::verify_inclusion(&chain_leaf(&entry_hash), file.index, size, &proof, &root).map_err(
        |source| ProofError::NotIncluded {
            index: file.index,
            size,
            source,
        },
    )?;
    Ok(VerifiedInclusion {
        checkpoint,
        index: file.index,
        offset: file.offset,
        entry_hash,
        entry,
        item,
    })
}

/// Checks a consistency proof file against `policy`: both checkpoints meet the policy, are of
/// one origin, and the proof shows the old tree to be a prefix of the new one.
pub fn verify_consistency_proof(
    file: &ConsistencyProofFile,
    policy: &Policy,
) -> Result<VerifiedConsistency, ProofError> {
    check_format(&file.format, CONSISTENCY_PROOF_FORMAT)?;
    let proof = parse_hashes(&file.proof, "proof")?;
    let old = trusted(&file.old, "old checkpoint", policy)?;
    let new = trusted(&file.new, "new checkpoint", policy)?;
    let (o, n) = (&old.checkpoint, &new.checkpoint);
    if o.origin() != n.origin() {
        return Err(ProofError::OriginMismatch {
            old: o.origin().into(),
            new: n.origin().into(),
        });
    }
    merkle::verify_consistency(o.size(), n.size(), &proof, o.root(), n.root()).map_err(
        |source| ProofError::Inconsistent {
            old_size: o.size(),
            new_size: n.size(),
            source,
        },
    )?;
    Ok(VerifiedConsistency { old, new })
}

fn check_format(found: &str, expected: &'static str) -> Result<(), ProofError> {
    if found == expected {
        Ok(())
    } else {
        Err(ProofError::UnsupportedFormat {
            found: found.into(),
            expected,
        })
    }
}

fn trusted(
    note: &str,
    which: &'static str,
    policy: &Policy,
) -> Result<TrustedCheckpoint, ProofError> {
    let note =
        SignedNote::parse(note.as_bytes()).map_err(|source| ProofError::Note { which, source })?;
    policy
        .check(&note)
        .map_err(|source| ProofError::Policy { which, source })
}

fn parse_hash(s: &str, field: &str) -> Result<Hash, ProofError> {
    from_hex(s).ok_or_else(|| ProofError::MalformedHash {
        field: field.into(),
    })
}

fn parse_hashes(list: &[String], field: &str) -> Result<Vec<Hash>, ProofError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| parse_hash(s, &format!("{field}[{i}]")))
        .collect()
}

fn parse_hex(s: &str, field: &str) -> Result<Vec<u8>, ProofError> {
    hex::decode(s).ok_or_else(|| ProofError::MalformedHex {
        field: field.into(),
    })
}

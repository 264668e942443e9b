//! kchain-core: the pure core of kchain. Formats, hashing, RFC 6962 Merkle trees, keys, the
//! trust file, the chain verifier, and encrypted payloads (AES-256-GCM data keys and the
//! keyring); no files, no network.
//!
//! A chained partition is a sequence of entries. Each record of a chained topic is one entry
//! holding one item:
//!
//! ```text
//! item leaf  = SHA-256(0x00 || 0x0E "kchain:item:v1" || timestamp || key? || value? || headers)
//! entry hash = SHA-256(0x0F "kchain:entry:v1" || version || chain id || height || prev
//!                      || timestamp || items root || item count)
//! items root = RFC 6962 root over the item leaves (for one item: its leaf hash)
//! ```
//!
//! Byte-by-byte layouts are in `docs/format.md`.
//!
//! ```
//! use kchain_core::{ChainId, Item};
//! let item = Item { value: Some(b"hello".to_vec()), timestamp_ms: 1, ..Item::default() };
//! assert_eq!(Item::decode(&item.encode()).unwrap(), item);
//! let _chain = ChainId::for_partition("orders", 0);
//! ```
//!
//! An encrypted record's value is `nonce || ciphertext || tag` under a data key named by its
//! `kchain.enc` header, with associated data binding it to its chain, partition and height
//! (`docs/encryption.md`); it is encrypted before it is hashed, so verifying needs no key.
//!
//! References: RFC 6962 section 2.1 (Merkle trees), RFC 8032 (Ed25519), NIST SP 800-38D
//! (AES-GCM).

mod chain;
mod checkpoint;
mod crypt;
mod entry;
mod hash;
pub mod hex;
mod item;
mod judge;
mod keyring;
mod keys;
pub mod merkle;
mod note;
mod proof;
mod remember;
pub mod time;
mod trust;
mod verify;

pub use chain::{
    is_chain_header, record_entry_header, ChainMeta, MetaError, HEADER_PREFIX, H_HEIGHT, H_KEY,
    H_NAME_NOT_UTF8, H_PREV, H_SIG, H_VERSION,
};
pub use checkpoint::{
    chain_leaf, chain_origin, cosignature_message, Checkpoint, CheckpointError, Cosignature,
    Cosigner, Evidence, Policy, PolicyError, TrustedCheckpoint, Witness, WitnessRefusal,
    COSIGNATURE_V1_HEADER, DEFAULT_ORIGIN_NAMESPACE,
};
pub use crypt::{
    decrypt_record, fill_random_nonces, parse_enc_header, random_nonces, CryptError, DataKey,
    DataKeyId, Decryption, OpenError, RecordPlace, ENC_SCHEME, H_ENC, NONCE_LEN, TAG_LEN,
};
pub use entry::{ChainId, EntryHeader, ENCODED_LEN as ENTRY_ENCODED_LEN, ENTRY_VERSION};
pub use hash::{sha256, tag, DecodeError, Decoder, Encoder, Hash, ZERO_HASH};
pub use hex::{decode_into as decode_hex, encode as encode_hex, from_hex, to_hex};
pub use item::{Item, ItemRef};
pub use judge::{
    judge, merge_keeping_unknown, merge_unverified, merge_verified, signer_contradiction,
    ChainCheckpoints, CheckpointFindingKind, Judged, Judgement, MergedNotes, RootsAt,
    MAX_NOTES_PER_CHAIN,
};
pub use keyring::{KeyEntry, KeyState, Keyring};
pub use keys::{KeyError, KeyId, PublicKey, Signature, WriterKey};
pub use note::{
    is_valid_key_name, key_id as note_key_id, NoteError, NoteSignature, NoteSigner, NoteVerifier,
    SignatureType, SignedNote, MAX_SIGNATURES,
};
pub use proof::{
    verify_consistency_proof, verify_inclusion_proof, ConsistencyProofFile, EntryEvidence,
    InclusionProofFile, ItemEvidence, ProofError, VerifiedConsistency, VerifiedInclusion,
    CONSISTENCY_PROOF_FORMAT, INCLUSION_PROOF_FORMAT,
};
pub use remember::{
    bundle_to_json, notes_from_file, remembered_from_json, remembered_to_json, RememberError,
    WitnessEvidence, CHECKPOINT_BUNDLE_FORMAT, REMEMBERED_FORMAT, WITNESS_EVIDENCE_FORMAT,
};
pub use trust::{
    CheckpointTrust, KeyStanding, Pin, TopicPin, Trust, TrustError, TrustFile, TrustedWriter,
};
pub use verify::{
    observe, ChainContext, ChainVerifier, Expectations, Finding, FindingKind, Link, Observation,
    Observed, PendingLimits, SigCheck, Summary,
};

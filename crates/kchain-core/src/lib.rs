//! kchain-core: the pure core of kchain. Formats, hashing, RFC 6962 Merkle trees, keys, the
//! trust file, the chain verifier, checkpoints and their judge, and encrypted payloads
//! (AES-256-GCM data keys and the keyring); no files, no network.
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

// Records and chains: the canonical encodings and the chain headers.
mod chain;
mod entry;
mod hash;
mod item;
// SHA-256 by blocks: padded in place, two messages at once; the x86-64 vector code (SHA
// extensions, SSE2 hex digits) in `x86`, the crate's only `unsafe` code.
mod sha;
#[cfg(target_arch = "x86_64")]
mod x86;
// Keys and trust: writer keys, the trust file.
mod keys;
mod trust;
// The streaming chain verifier.
mod verify;
// Encrypted payloads: data keys and the keyring.
mod crypt;
mod decrypt;
mod keyring;
// Checkpoints, witnesses, proofs and the checkpoint judge.
pub mod checkpoint;
// Small shared tools.
pub mod hex;
pub mod merkle;
pub mod time;

// Records and chains.
pub use chain::{
    is_chain_header, record_entry_header, ChainMeta, MetaError, HEADER_PREFIX, H_HEIGHT, H_KEY,
    H_NAME_NOT_UTF8, H_PREV, H_SIG, H_VERSION,
};
pub use entry::{ChainId, EntryHeader, ENCODED_LEN as ENTRY_ENCODED_LEN, ENTRY_VERSION};
pub use hash::{sha256, tag, DecodeError, Decoder, Encoder, Hash, ZERO_HASH};
pub use hex::{decode_into as decode_hex, encode as encode_hex, from_hex, to_hex};
pub use item::{Item, ItemRef};
pub use sha::sha256_x2;

// Keys and trust.
pub use keys::{KeyError, KeyId, PublicKey, Signature, WriterKey};
pub use trust::{
    is_witness_url, CheckpointTrust, KeyStanding, Pin, TopicPin, Trust, TrustError, TrustFile,
    TrustedWriter, WitnessEndpoint,
};

// The chain verifier.
pub use verify::{
    observe, ChainContext, ChainVerifier, Expectations, Finding, FindingKind, Link, Observation,
    Observed, PairObserver, PendingLimits, SigCheck, Summary,
};

// Encrypted payloads.
pub use crypt::{
    fill_random_nonces, random_nonces, CryptError, DataKey, DataKeyId, OpenError, RecordPlace,
    H_ENC, NONCE_LEN,
};
pub use decrypt::{decrypt_record, parse_enc_header, Decryption};
pub use keyring::{KeyEntry, KeyState, Keyring};

// Checkpoints: the names writers, witnesses and verifiers use; the rest is in [`checkpoint`].
pub use checkpoint::{
    bundle_to_json, chain_leaf, chain_origin, judge, merge_keeping_unknown, merge_unverified,
    merge_verified, notes_from_file, remembered_from_json, remembered_to_json,
    signer_contradiction, verify_consistency_proof, verify_inclusion_proof, ChainCheckpoints,
    Checkpoint, CheckpointFindingKind, ConsistencyProofFile, Cosignature, Cosigner,
    InclusionProofFile, Judged, Judgement, NoteSignature, NoteSigner, NoteVerifier, Policy,
    PolicyError, ProofError, ProofFrom, RemoteWitness, RemoteWitnessError, SignedNote,
    TrustedCheckpoint, Witness, WitnessEvidence, WitnessRefusal, CONSISTENCY_PROOF_FORMAT,
    DEFAULT_ORIGIN_NAMESPACE, WITNESS_EVIDENCE_FORMAT,
};

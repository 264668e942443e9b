//! Witness cosignatures (c2sp.org/tlog-cosignature v1) and the witness key that makes them.
//!
//! ```text
//! cosignature = note signature of type 0x04 by the witness key:
//!               key id  = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4]
//!               bytes   = u64 BE timestamp (POSIX seconds, < 2^63) || Ed25519 signature
//!               message = "cosignature/v1\n" "time " decimal timestamp "\n" checkpoint text
//! ```
//!
//! Reference: [c2sp.org/tlog-cosignature](https://c2sp.org/tlog-cosignature).

use std::fmt;

use ed25519_dalek::{Signer, SigningKey};

use super::note_key::{
    cosignature_message, format_signer_key, is_valid_key_name, key_id, parse_signer_key, NoteError,
    NoteSignature, NoteVerifier, SignatureType,
};
use super::text::CheckpointError;

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
    /// `timestamp <= 2^63 - 1`. This only signs: [`Witness::observe`](super::witness::Witness::observe) decides whether to.
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

//! Writer keys (Ed25519): generation, the key file text, key ids, and entry signatures.
//!
//! ```text
//! key id    = first 8 bytes of SHA-256(0x0D "kchain:key:v1" || 32-byte public key)
//! signature = Ed25519 over (0x0D "kchain:sig:v1" || 32-byte entry hash)
//! ```
//!
//! The domain tag keeps an entry signature from ever being valid as any other statement the
//! same key signs (checkpoints, transactions).

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::checkpoint::note_key::{NoteError, NoteSigner, NoteVerifier, SignatureType};
use crate::hash::{sha256, tag, Encoder, Hash};
use crate::hex;

/// Names what is wrong with a key, key file or signature encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("malformed key file: {0}")]
    MalformedKeyFile(String),
    #[error("invalid public key '{0}': {problem}", problem = public_key_problem(.0))]
    InvalidPublicKey(String),
    #[error("key file's public key does not match its secret key")]
    PublicMismatch,
    #[error("invalid key id '{0}': expected 16 hex digits")]
    InvalidKeyId(String),
    #[error("invalid signature encoding: expected 128 hex digits")]
    InvalidSignature,
}

/// What is wrong with the text of a public key that did not parse: its length or digits,
/// or (with 64 hex digits) the point it encodes.
fn public_key_problem(text: &str) -> String {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        "64 hex digits, but not an Ed25519 public key".into()
    } else {
        format!(
            "expected 64 hex digits, got {} characters",
            text.chars().count()
        )
    }
}

/// The 8-byte id of a public key, shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// Parses 16 hex digits.
    pub fn from_hex(s: &str) -> Result<KeyId, KeyError> {
        hex::decode_array(s)
            .map(KeyId)
            .ok_or_else(|| KeyError::InvalidKeyId(s.into()))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// An Ed25519 public key that verifies entry signatures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 64 hex digits; rejects encodings that are not a valid curve point.
    pub fn from_hex(s: &str) -> Result<PublicKey, KeyError> {
        let b: [u8; 32] =
            hex::decode_array(s.trim()).ok_or_else(|| KeyError::InvalidPublicKey(s.into()))?;
        VerifyingKey::from_bytes(&b)
            .map(PublicKey)
            .map_err(|_| KeyError::InvalidPublicKey(s.into()))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        let mut buf = Vec::with_capacity(48);
        Encoder::with_tag(&mut buf, tag::KEY_ID).fixed(self.0.as_bytes());
        KeyId(sha256(&buf)[..8].try_into().unwrap())
    }

    /// Checks an entry signature (strict Ed25519: rejects non-canonical and small-order
    /// encodings).
    pub fn verify_entry(&self, entry_hash: &Hash, signature: &Signature) -> bool {
        let msg = signed_message(entry_hash);
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0.verify_strict(&msg, &sig).is_ok()
    }

    /// Checks a signature made by [`WriterKey::sign_tagged`] with the same tag.
    pub fn verify_tagged(&self, tag: &str, message: &[u8], signature: &Signature) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(&tagged_message(tag, message), &sig)
            .is_ok()
    }

    /// This key as a C2SP note verifier (type 0x01) named `name`: the verifier of the
    /// checkpoints that [`WriterKey::note_signer`] signs when the writer key has that name.
    /// Requires a valid note key name ([`NoteError::InvalidKeyName`]).
    pub fn note_verifier(&self, name: &str) -> Result<NoteVerifier, NoteError> {
        NoteVerifier::new(name, SignatureType::Ed25519, self.0.as_bytes())
    }

    /// The underlying ed25519-dalek key, for batch verification.
    pub fn as_dalek(&self) -> &VerifyingKey {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

/// A 64-byte Ed25519 signature, shown as 128 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn from_hex(s: &str) -> Result<Signature, KeyError> {
        hex::decode_array(s)
            .map(Signature)
            .ok_or(KeyError::InvalidSignature)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

fn tagged_message(tag: &str, message: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(1 + tag.len() + message.len());
    Encoder::with_tag(&mut msg, tag).fixed(message);
    msg
}

fn signed_message(entry_hash: &Hash) -> Vec<u8> {
    let mut msg = Vec::with_capacity(48);
    Encoder::with_tag(&mut msg, tag::SIGNATURE).fixed(entry_hash);
    msg
}

/// A writer's Ed25519 secret key with a human-readable name. Its `Debug` never prints the
/// secret.
pub struct WriterKey {
    name: String,
    secret: SigningKey,
}

impl WriterKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate(name: &str) -> WriterKey {
        WriterKey {
            name: name.to_owned(),
            secret: SigningKey::generate(&mut rand_core::OsRng),
        }
    }

    /// A key from a 32-byte seed (tests and test vectors).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> WriterKey {
        WriterKey {
            name: name.to_owned(),
            secret: SigningKey::from_bytes(&seed),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.secret.verifying_key())
    }

    pub fn id(&self) -> KeyId {
        self.public().id()
    }

    /// This key as a C2SP note signer (type 0x01) under the key's name, for signing
    /// checkpoints. Requires the name to be a valid note key name (non-empty, no white space,
    /// no `+`): [`NoteError::InvalidKeyName`] otherwise.
    pub fn note_signer(&self) -> Result<NoteSigner, NoteError> {
        self.note_signer_named(&self.name)
    }

    /// This key as a note signer under another name (e.g. the name a ledger's genesis gives
    /// a sealer, whatever its key file calls it). Verifiers know a note key by name and key.
    pub fn note_signer_named(&self, name: &str) -> Result<NoteSigner, NoteError> {
        NoteSigner::from_seed(name, self.secret.to_bytes())
    }

    /// Signs an entry hash.
    pub fn sign_entry(&self, entry_hash: &Hash) -> Signature {
        Signature(self.secret.sign(&signed_message(entry_hash)).to_bytes())
    }

    /// Signs `message` under a domain tag (`0x.. tag || message`), for statements other than
    /// entries (transactions, blocks, checkpoints): a signature made for one tag never
    /// verifies under another. Requires `tag.len() <= 255`.
    pub fn sign_tagged(&self, tag: &str, message: &[u8]) -> Signature {
        Signature(self.secret.sign(&tagged_message(tag, message)).to_bytes())
    }

    /// The key file text (TOML). Whoever writes it to disk must create the file with mode 0600.
    pub fn to_key_file(&self) -> String {
        let file = KeyFile {
            kind: KEY_FILE_KIND.into(),
            name: self.name.clone(),
            public: self.public().to_hex(),
            secret: hex::encode(self.secret.to_bytes()),
        };
        format!(
            "# kchain writer key (Ed25519). Keep this file secret.\n{}",
            toml::to_string(&file).expect("key file serializes")
        )
    }

    /// Parses key file text. Errors never include the secret.
    pub fn from_key_file(text: &str) -> Result<WriterKey, KeyError> {
        let file: KeyFile = toml::from_str(text).map_err(|e| {
            KeyError::MalformedKeyFile(format!("not a kchain key file ({})", e.message()))
        })?;
        if file.kind != KEY_FILE_KIND {
            return Err(KeyError::MalformedKeyFile(format!(
                "kind is '{}', expected '{KEY_FILE_KIND}'",
                file.kind
            )));
        }
        let seed: [u8; 32] = hex::decode_array(&file.secret)
            .ok_or_else(|| KeyError::MalformedKeyFile("secret is not 64 hex digits".into()))?;
        let key = WriterKey::from_seed(&file.name, seed);
        if key.public() != PublicKey::from_hex(&file.public)? {
            return Err(KeyError::PublicMismatch);
        }
        Ok(key)
    }
}

impl fmt::Debug for WriterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterKey")
            .field("name", &self.name)
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

const KEY_FILE_KIND: &str = "kchain-ed25519-secret-v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    kind: String,
    name: String,
    public: String,
    secret: String,
}

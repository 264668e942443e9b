//! The keys of signed notes: names, ids, the verifier and signer key encodings of the Go
//! reference implementation, and one signature line (see [`super::note`] for the format).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The prefix of every signature line: U+2014 em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";
const SIGNER_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// What is wrong with a note, a key encoding or a signature. Messages name keys by name and id,
/// never by key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    #[error("malformed note: not valid UTF-8 at byte {offset}")]
    NotUtf8 { offset: usize },
    #[error("malformed note: control character 0x{byte:02x} at byte {offset}")]
    ControlCharacter { offset: usize, byte: u8 },
    #[error("malformed note: no blank line separates the text from the signatures")]
    NoSignatureBlock,
    #[error("malformed note: the blank line is not followed by any signature line")]
    NoSignatures,
    #[error("malformed note: the last signature line does not end in a newline")]
    MissingFinalNewline,
    #[error("malformed note: line {line}: {reason}")]
    MalformedSignatureLine { line: usize, reason: &'static str },
    #[error("malformed note: more than {max} signature lines")]
    TooManySignatures { max: usize },
    #[error(
        "note text must be non-empty, end in a newline and hold no control characters but newlines"
    )]
    InvalidText,
    #[error("invalid key name {name:?}: it must be non-empty, without spaces, '+' or control characters")]
    InvalidKeyName { name: String },
    #[error("malformed verifier key: {reason}")]
    MalformedVerifierKey { reason: &'static str },
    #[error("malformed signer key: {reason}")]
    MalformedSignerKey { reason: &'static str },
    #[error("key {name}: declared key id {declared:08x} is not the key's id {computed:08x}")]
    KeyIdMismatch {
        name: String,
        declared: u32,
        computed: u32,
    },
    #[error("key {name}: unknown signature type 0x{byte:02x}")]
    UnknownSignatureType { name: String, byte: u8 },
    #[error("key {name}: not a valid Ed25519 public key")]
    InvalidPublicKey { name: String },
    #[error("ambiguous key {name}+{key_id:08x}: more than one known key has this name and id")]
    AmbiguousKey { name: String, key_id: u32 },
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("note has no verifiable signatures ({signatures} by unknown keys)")]
    NoVerifiedSignature { signatures: usize },
}

/// The signature types kchain reads and writes (type bytes of c2sp.org/signed-note).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureType {
    /// 0x01: Ed25519 over the note text.
    Ed25519,
    /// 0x04: timestamped Ed25519 witness cosignature (c2sp.org/tlog-cosignature v1).
    CosignatureV1,
}

impl SignatureType {
    /// The type's identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            SignatureType::Ed25519 => 0x01,
            SignatureType::CosignatureV1 => 0x04,
        }
    }

    /// The type of an identifier byte, if kchain supports it.
    pub fn from_byte(byte: u8) -> Option<SignatureType> {
        match byte {
            0x01 => Some(SignatureType::Ed25519),
            0x04 => Some(SignatureType::CosignatureV1),
            _ => None,
        }
    }
}

/// Whether `name` may name a key: non-empty, no Unicode white space (what Go's `unicode.IsSpace`
/// and Rust's `char::is_whitespace` agree on), no '+', and no ASCII control character (a note
/// carrying one could not be parsed).
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

/// The key id of a public key: the first four bytes, big-endian, of
/// SHA-256(name || 0x0A || type byte || public key).
pub fn key_id(name: &str, kind: SignatureType, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind.byte()]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName { name: name.into() })
    }
}

/// One signature line of a note: a key name, a key id and the signature bytes (after the id).
#[derive(Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub(super) name: String,
    pub(super) key_id: u32,
    pub(super) signature: Vec<u8>,
}

impl NoteSignature {
    /// A signature line. Requires a valid key name and at least one signature byte.
    pub fn new(name: &str, key_id: u32, signature: Vec<u8>) -> Result<NoteSignature, NoteError> {
        check_name(name)?;
        if signature.is_empty() {
            return Err(NoteError::MalformedSignatureLine {
                line: 0,
                reason: "a signature needs at least one byte after the key id",
            });
        }
        Ok(NoteSignature {
            name: name.into(),
            key_id,
            signature,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The signature bytes after the 4-byte key id.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The line as it appears in a note, with its final newline.
    pub fn to_line(&self) -> String {
        let mut blob = Vec::with_capacity(4 + self.signature.len());
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        format!("{SIG_PREFIX}{} {}\n", self.name, BASE64.encode(blob))
    }

    /// Parses one line without its newline; `line` is its 1-based number in the note, for
    /// error messages.
    pub(super) fn parse_line(text: &str, line: usize) -> Result<NoteSignature, NoteError> {
        let bad = |reason| NoteError::MalformedSignatureLine { line, reason };
        let rest = text
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("does not start with an em dash and a space"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no space between the key name and the signature"))?;
        if !is_valid_key_name(name) {
            return Err(bad("invalid key name"));
        }
        let blob = BASE64
            .decode(b64)
            .map_err(|_| bad("the signature is not standard padded base64"))?;
        if blob.len() < 5 {
            return Err(bad("the signature is shorter than a key id and one byte"));
        }
        Ok(NoteSignature {
            name: name.into(),
            key_id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
            signature: blob[4..].to_vec(),
        })
    }
}

impl fmt::Debug for NoteSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NoteSignature({}+{:08x}, {} bytes)",
            self.name,
            self.key_id,
            self.signature.len()
        )
    }
}

/// The one key among `known` with this name and id, if any (the Go reference's lookup,
/// which [`super::note::SignedNote::verify`] keeps).
pub(crate) fn find_verifier<'k>(
    known: &'k [NoteVerifier],
    name: &str,
    key_id: u32,
) -> Result<Option<&'k NoteVerifier>, NoteError> {
    let mut matching = known
        .iter()
        .filter(|v| v.key_id == key_id && v.name == name);
    let first = matching.next();
    if first.is_some() && matching.next().is_some() {
        return Err(NoteError::AmbiguousKey {
            name: name.into(),
            key_id,
        });
    }
    Ok(first)
}

/// The key among `known` that made a signature line naming `name` with `key_id`, if any:
/// the key listed under that name and id, else the one whose key material matches.
///
/// The id of a C2SP key is derived from a name and the key, so a key `K` that a verifier
/// trusts under a name of its own (an auditor calls the writer `shop-inc`, the writer called
/// itself `writer`) made the line when `key_id(name, kind, K) == key_id`; the signature is
/// then checked with `K`. Two different keys matching one line (a 32-bit id collision) are
/// ambiguous; one key listed under two names is one key.
pub(crate) fn find_signer<'k>(
    known: &'k [NoteVerifier],
    name: &str,
    key_id: u32,
) -> Result<Option<&'k NoteVerifier>, NoteError> {
    if let Some(listed) = find_verifier(known, name, key_id)? {
        return Ok(Some(listed));
    }
    let mut by_key = known
        .iter()
        .filter(|v| self::key_id(name, v.kind, v.public_key()) == key_id);
    let Some(first) = by_key.next() else {
        return Ok(None);
    };
    if by_key.any(|v| v.public_key() != first.public_key() || v.kind != first.kind) {
        return Err(NoteError::AmbiguousKey {
            name: name.into(),
            key_id,
        });
    }
    Ok(Some(first))
}

/// A public key that checks note signatures of one [`SignatureType`], with its name and id.
#[derive(Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    kind: SignatureType,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for the Ed25519 public key `public_key` under `name`. Rejects invalid names
    /// and byte strings that are not a curve point.
    pub fn new(
        name: &str,
        kind: SignatureType,
        public_key: &[u8; 32],
    ) -> Result<NoteVerifier, NoteError> {
        check_name(name)?;
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| NoteError::InvalidPublicKey { name: name.into() })?;
        Ok(NoteVerifier {
            name: name.into(),
            key_id: key_id(name, kind, public_key),
            kind,
            key,
        })
    }

    /// Parses a verifier key `<name>+<hex id>+<base64(type || public key)>`. The id must be 8
    /// lowercase hex digits equal to the key's id (as the Go reference writes them).
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let bad = |reason| NoteError::MalformedVerifierKey { reason };
        let (name, rest) = vkey
            .split_once('+')
            .ok_or(bad("expected <name>+<id>+<key>"))?;
        let (id_hex, key_b64) = rest
            .split_once('+')
            .ok_or(bad("expected <name>+<id>+<key>"))?;
        check_name(name)?;
        let declared =
            parse_key_id(id_hex).ok_or(bad("the key id is not 8 lowercase hex digits"))?;
        let blob = BASE64
            .decode(key_b64)
            .map_err(|_| bad("the key is not standard padded base64"))?;
        let (&type_byte, public) = blob.split_first().ok_or(bad("the key is empty"))?;
        let computed = id_of_blob(name, &blob);
        if declared != computed {
            return Err(NoteError::KeyIdMismatch {
                name: name.into(),
                declared,
                computed,
            });
        }
        let kind = SignatureType::from_byte(type_byte).ok_or(NoteError::UnknownSignatureType {
            name: name.into(),
            byte: type_byte,
        })?;
        let public: &[u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::InvalidPublicKey { name: name.into() })?;
        NoteVerifier::new(name, kind, public)
    }

    /// The verifier key text `<name>+<hex id>+<base64(type || public key)>`.
    pub fn to_vkey(&self) -> String {
        let mut blob = vec![self.kind.byte()];
        blob.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(blob))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    pub fn kind(&self) -> SignatureType {
        self.kind
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Whether `signature` (the bytes after the key id) is this key's signature of `text`.
    /// Ed25519 is checked strictly (RFC 8032 with canonical encodings, no small-order keys).
    /// A cosignature is 8 timestamp bytes (big-endian, below 2^63) and an Ed25519 signature
    /// of the cosignature/v1 message (see [`cosignature_message`]).
    pub fn verify(&self, text: &str, signature: &[u8]) -> bool {
        match self.kind {
            SignatureType::Ed25519 => self.verify_raw(text.as_bytes(), signature),
            SignatureType::CosignatureV1 => {
                let Some((ts, sig)) = signature.split_first_chunk::<8>() else {
                    return false;
                };
                let timestamp = u64::from_be_bytes(*ts);
                timestamp <= i64::MAX as u64
                    && self.verify_raw(&cosignature_message(timestamp, text), sig)
            }
        }
    }

    fn verify_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <&[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.key
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok()
    }
}

impl fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteVerifier({})", self.to_vkey())
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_vkey())
    }
}

fn parse_key_id(hex_id: &str) -> Option<u32> {
    let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if hex_id.len() != 8 || !hex_id.as_bytes().iter().all(lower_hex) {
        return None;
    }
    u32::from_str_radix(hex_id, 16).ok()
}

/// The key id over an already encoded `type || public key` blob.
fn id_of_blob(name: &str, blob: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(blob);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// An Ed25519 secret key with a name, as read from a signer key.
pub(crate) struct SecretKey {
    pub name: String,
    pub kind: SignatureType,
    pub key: SigningKey,
}

/// Parses `PRIVATE+KEY+<name>+<hex id>+<base64(type || seed)>` and checks the id against the
/// public key derived from the seed. Errors never include key material.
pub(crate) fn parse_signer_key(skey: &str) -> Result<SecretKey, NoteError> {
    let bad = |reason| NoteError::MalformedSignerKey { reason };
    let rest = skey
        .strip_prefix(SIGNER_KEY_PREFIX)
        .ok_or(bad("expected PRIVATE+KEY+<name>+<id>+<key>"))?;
    let (name, rest) = rest
        .split_once('+')
        .ok_or(bad("expected PRIVATE+KEY+<name>+<id>+<key>"))?;
    let (id_hex, key_b64) = rest
        .split_once('+')
        .ok_or(bad("expected PRIVATE+KEY+<name>+<id>+<key>"))?;
    check_name(name)?;
    let declared = parse_key_id(id_hex).ok_or(bad("the key id is not 8 lowercase hex digits"))?;
    let blob = BASE64
        .decode(key_b64)
        .map_err(|_| bad("the key is not standard padded base64"))?;
    let (&type_byte, seed) = blob.split_first().ok_or(bad("the key is empty"))?;
    let kind = SignatureType::from_byte(type_byte).ok_or(NoteError::UnknownSignatureType {
        name: name.into(),
        byte: type_byte,
    })?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| bad("the seed is not 32 bytes"))?;
    let key = SigningKey::from_bytes(&seed);
    let computed = key_id(name, kind, key.verifying_key().as_bytes());
    if declared != computed {
        return Err(NoteError::KeyIdMismatch {
            name: name.into(),
            declared,
            computed,
        });
    }
    Ok(SecretKey {
        name: name.into(),
        kind,
        key,
    })
}

/// The signer key text of `key` (which must be of `kind`).
pub(crate) fn format_signer_key(name: &str, kind: SignatureType, key: &SigningKey) -> String {
    let mut blob = vec![kind.byte()];
    blob.extend_from_slice(key.as_bytes());
    format!(
        "{SIGNER_KEY_PREFIX}{name}+{:08x}+{}",
        key_id(name, kind, key.verifying_key().as_bytes()),
        BASE64.encode(blob)
    )
}

/// A named Ed25519 secret key that signs note texts (signature type 0x01). Its `Debug` never
/// shows the secret.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// A fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<NoteSigner, NoteError> {
        NoteSigner::from_seed(name, SigningKey::generate(&mut rand_core::OsRng).to_bytes())
    }

    /// The key with this 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<NoteSigner, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        Ok(NoteSigner {
            name: name.into(),
            key_id: key_id(name, SignatureType::Ed25519, key.verifying_key().as_bytes()),
            key,
        })
    }

    /// Parses a signer key `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
    pub fn from_signer_key(skey: &str) -> Result<NoteSigner, NoteError> {
        let secret = parse_signer_key(skey)?;
        if secret.kind != SignatureType::Ed25519 {
            return Err(NoteError::MalformedSignerKey {
                reason: "not an Ed25519 note signer key (type 0x01)",
            });
        }
        NoteSigner::from_seed(&secret.name, secret.key.to_bytes())
    }

    /// The signer key text. It holds the secret: whoever writes it to disk must create the
    /// file with mode 0600.
    pub fn to_signer_key(&self) -> String {
        format_signer_key(&self.name, SignatureType::Ed25519, &self.key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            kind: SignatureType::Ed25519,
            key: self.key.verifying_key(),
        }
    }

    /// This key's signature line for `text` (Ed25519 is deterministic: the same text always
    /// gives the same line).
    pub fn sign(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            key_id: self.key_id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteSigner({}+{:08x})", self.name, self.key_id)
    }
}

/// The first line of every cosignature/v1 signed message.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1";

/// The message a cosignature/v1 signs: `cosignature/v1\ntime <timestamp>\n` followed by the
/// checkpoint text (the note text, with its final newline).
pub fn cosignature_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("{COSIGNATURE_V1_HEADER}\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

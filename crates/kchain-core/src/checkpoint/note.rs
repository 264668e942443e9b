//! C2SP signed notes: a text signed by one or more named keys, and the key encodings of the Go
//! reference implementation (golang.org/x/mod/sumdb/note), which every C2SP tool reads.
//!
//! ```text
//! note        = text "\n" signature-line+       the blank line ends the text; the text is
//!                                               everything before the LAST blank line
//! text        = valid UTF-8 ending in "\n"; no control characters but "\n"; may hold blank lines
//! signature   = "— " key-name " " base64(key id || signature bytes) "\n"      (U+2014 em dash)
//! key name    = non-empty, no Unicode white space, no "+"
//! key id      = SHA-256(key name || 0x0A || type || public key)[:4], a big-endian u32
//! type        = 0x01  Ed25519 over the text (RFC 8032)
//!               0x04  timestamped Ed25519 cosignature/v1 (c2sp.org/tlog-cosignature)
//!
//! verifier key = key-name "+" 8 lowercase hex digits of the key id "+" base64(type || public key)
//! signer key   = "PRIVATE+KEY+" key-name "+" hex key id "+" base64(type || 32-byte seed)
//! ```
//!
//! Parsing is as strict as the spec and the reference implementation: the whole note must be
//! valid UTF-8 without control characters, the signature block must end in a newline, every
//! signature line must be well formed, and a note may carry at most [`MAX_SIGNATURES`] lines.
//! Verification follows the spec's rules: a signature by an unknown key (name and id do not
//! both match a known key) is ignored but kept, so a note re-serializes byte for byte; a
//! signature by a known key that fails rejects the whole note; and a note without any verified
//! signature is rejected.
//!
//! ```
//! use kchain_core::{NoteVerifier, SignedNote};
//!
//! let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
//! let msg = "If you think cryptography is the answer to your problem,\n\
//!            then you don't know what your problem is.\n\
//!            \n\
//!            — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
//! let verifier = NoteVerifier::parse(vkey)?;
//! let note = SignedNote::parse(msg.as_bytes())?;
//! assert_eq!(note.verify(std::slice::from_ref(&verifier))?[0].name(), "PeterNeumann");
//! assert_eq!(note.to_text(), msg);
//! # Ok::<(), kchain_core::checkpoint::NoteError>(())
//! ```
//!
//! References: [c2sp.org/signed-note](https://c2sp.org/signed-note),
//! [golang.org/x/mod/sumdb/note](https://pkg.go.dev/golang.org/x/mod/sumdb/note), RFC 8032.

use std::fmt;

use super::note_key::{find_verifier, NoteError, NoteSignature, NoteSigner, NoteVerifier};

/// The most signature lines a note may carry (the Go reference's limit; the spec asks for at
/// least 16). More is refused before any signature is checked.
pub const MAX_SIGNATURES: usize = 100;

fn is_valid_text(text: &str) -> bool {
    text.ends_with('\n') && !text.chars().any(|c| c < ' ' && c != '\n')
}

/// A note: its text and its signature lines, verified or not, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedNote {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// An unsigned note with `text`. Requires a non-empty text that ends in a newline and holds
    /// no control characters but newlines ([`NoteError::InvalidText`]).
    pub fn new(text: impl Into<String>) -> Result<SignedNote, NoteError> {
        let text = text.into();
        if !is_valid_text(&text) {
            return Err(NoteError::InvalidText);
        }
        Ok(SignedNote {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note strictly (see the module documentation). Signatures are not
    /// checked: see [`SignedNote::verify`]. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<SignedNote, NoteError> {
        let msg = std::str::from_utf8(bytes).map_err(|e| NoteError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        if let Some(offset) = msg.bytes().position(|b| b < b' ' && b != b'\n') {
            return Err(NoteError::ControlCharacter {
                offset,
                byte: bytes[offset],
            });
        }
        let split = msg.rfind("\n\n").ok_or(NoteError::NoSignatureBlock)?;
        let (text, block) = (&msg[..split + 1], &msg[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if !block.ends_with('\n') {
            return Err(NoteError::MissingFinalNewline);
        }
        let first_line = text.matches('\n').count() + 2;
        let mut signatures = Vec::new();
        for (i, line) in block[..block.len() - 1].split('\n').enumerate() {
            if i == MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures {
                    max: MAX_SIGNATURES,
                });
            }
            signatures.push(NoteSignature::parse_line(line, first_line + i)?);
        }
        Ok(SignedNote {
            text: text.into(),
            signatures,
        })
    }

    /// The signed text, with its final newline.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every signature line, verified or not, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds `signature` after the others, first removing any signature with the same key name
    /// and id (so re-signing replaces, as the Go reference does).
    pub fn add_signature(&mut self, signature: NoteSignature) {
        self.signatures
            .retain(|s| !(s.name == signature.name && s.key_id == signature.key_id));
        self.signatures.push(signature);
    }

    /// Signs the text with `signer` (see [`SignedNote::add_signature`]).
    pub fn sign(&mut self, signer: &NoteSigner) {
        let signature = signer.sign(&self.text);
        self.add_signature(signature);
    }

    /// Checks the signatures against `known` keys and returns the keys whose signatures
    /// verified, each once, in the order of first appearance.
    ///
    /// A signature whose key name and id do not both match a known key is ignored. A signature
    /// by a known key that does not verify gives [`NoteError::InvalidSignature`]; two known
    /// keys with the same name and id give [`NoteError::AmbiguousKey`]; no verified signature
    /// gives [`NoteError::NoVerifiedSignature`].
    pub fn verify<'k>(
        &self,
        known: &'k [NoteVerifier],
    ) -> Result<Vec<&'k NoteVerifier>, NoteError> {
        let mut verified: Vec<&NoteVerifier> = Vec::new();
        let mut unknown = 0;
        for sig in &self.signatures {
            let Some(v) = find_verifier(known, &sig.name, sig.key_id)? else {
                unknown += 1;
                continue;
            };
            if !v.verify(&self.text, &sig.signature) {
                return Err(NoteError::InvalidSignature {
                    name: sig.name.clone(),
                    key_id: sig.key_id,
                });
            }
            if !verified.iter().any(|w| std::ptr::eq(*w, v)) {
                verified.push(v);
            }
        }
        if verified.is_empty() {
            return Err(NoteError::NoVerifiedSignature {
                signatures: unknown,
            });
        }
        Ok(verified)
    }

    /// The encoded note: text, blank line, signature lines. A note must carry at least one
    /// signature to be parsed back.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 1 + 110 * self.signatures.len());
        out.push_str(&self.text);
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.to_line());
        }
        out
    }
}

impl fmt::Display for SignedNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

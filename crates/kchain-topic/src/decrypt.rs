//! Decryption checks while verifying with a keyring: each encrypted record either decrypts,
//! or was encrypted under a shredded key (counted, not a finding), or is a finding
//! (`key_missing`, `decrypt_failed`) at its offset.
//!
//! These findings stand beside the chain's: the chain verifies without any key, and a
//! record can be intact in the chain yet not decrypt (a wrong key under its id), or be both
//! changed and undecryptable (a ciphertext moved to another height).

use kchain_core::{
    decrypt_record, ChainId, DataKeyId, Decryption, Finding, FindingKind, Keyring, RecordPlace,
};

/// What verifying with a keyring found among a partition's records. Records are counted up
/// to the one at which the chain verifier stopped, as the chain's entries are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionSummary {
    /// Records whose value is not encrypted.
    pub plain: u64,
    /// Encrypted records that decrypted.
    pub decrypted: u64,
    /// Encrypted records whose key was shredded: unreadable by design, not a finding.
    pub shredded: u64,
    /// Encrypted records whose key the keyring does not hold.
    pub key_missing: u64,
    /// Encrypted records that did not decrypt (authentication failed, truncated, malformed
    /// `kchain.enc` header).
    pub failed: u64,
    /// The first record that is missing its key or did not decrypt.
    pub finding: Option<Finding>,
}

impl EncryptionSummary {
    pub fn ok(&self) -> bool {
        self.finding.is_none()
    }

    pub(crate) fn add(&mut self, offset: u64, height: u64, checked: Checked) {
        let (kind, detail) = match checked {
            Checked::Plain => {
                self.plain += 1;
                return;
            }
            Checked::Decrypted => {
                self.decrypted += 1;
                return;
            }
            Checked::Shredded => {
                self.shredded += 1;
                return;
            }
            Checked::Missing(id) => {
                self.key_missing += 1;
                (
                    FindingKind::KeyMissing,
                    format!("encrypted under data key {id}, which the keyring does not hold"),
                )
            }
            Checked::Failed(id, why) => {
                self.failed += 1;
                let detail = match id {
                    Some(id) => format!("data key {id}: {why}"),
                    None => why,
                };
                (FindingKind::DecryptFailed, detail)
            }
        };
        self.finding.get_or_insert(Finding {
            offset,
            height,
            kind,
            detail,
        });
    }
}

/// One record's decryption outcome, without the plaintext (a verifier has no use for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    Plain,
    Decrypted,
    Shredded,
    Missing(DataKeyId),
    Failed(Option<DataKeyId>, String),
}

/// The keyring a verifier decrypts with, and the partition it verifies.
#[derive(Clone, Copy)]
pub(crate) struct Decrypting<'a> {
    pub keyring: &'a Keyring,
    pub chain: ChainId,
    pub partition: u32,
}

impl Decrypting<'_> {
    /// Tries to decrypt the record at `height`.
    pub fn check<'h>(
        &self,
        height: u64,
        value: Option<&[u8]>,
        headers: impl Iterator<Item = (&'h str, &'h [u8])>,
    ) -> Checked {
        let place = RecordPlace {
            chain: self.chain,
            partition: self.partition,
            height,
        };
        match decrypt_record(self.keyring, &place, value, headers) {
            Decryption::Plain => Checked::Plain,
            Decryption::Decrypted { .. } => Checked::Decrypted,
            Decryption::Shredded { .. } => Checked::Shredded,
            Decryption::MissingKey { key } => Checked::Missing(key),
            Decryption::Failed { key, why } => Checked::Failed(key, why),
        }
    }
}

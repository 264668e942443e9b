//! What the verifier finds wrong with a chain: the kind, and where.

use std::fmt;

/// What the verifier found wrong with a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// A record's content (key, value, application headers, timestamp) was changed.
    PayloadChanged,
    /// A `kchain.*` header field (height) was changed.
    HeaderChanged,
    /// A record's link to its predecessor was changed.
    LinkBroken,
    /// Records were deleted: heights are missing.
    Missing,
    /// A record that does not belong to the chain was inserted.
    Inserted,
    /// Records appear out of height order.
    Reordered,
    /// A record appears twice.
    Duplicate,
    /// A signature does not verify (forged, or the signed record was changed).
    BadSignature,
    /// Records that no writer signature covers: forged at the tip, or an unfinished batch.
    Unsigned,
    /// Records signed by a key the trust file does not list.
    UnknownKey,
    /// Records from another writer: not a kchain record, or a key not trusted for this topic.
    ForeignWriter,
    /// `kchain.*` headers that do not parse.
    Malformed,
    /// The genesis record differs from the trusted or linked one.
    GenesisMismatch,
    /// The chain ends below a trusted tip.
    Truncated,
    /// The entry at a trusted tip's height differs from the trusted hash (rewritten history).
    TipMismatch,
    /// An encrypted record's data key is not in the keyring (only when verifying with one).
    KeyMissing,
    /// An encrypted record does not decrypt with its keyring key: wrong key under that id,
    /// a ciphertext moved to another place, truncated, or a malformed `kchain.enc` header.
    DecryptFailed,
    /// A stored batch of records fails its integrity check (CRC, framing, offsets): the
    /// bytes at this offset were changed on disk or by the broker.
    Corrupt,
    /// A partition that a pin or a remembered checkpoint names is missing from the log.
    PartitionMissing,
}

impl FindingKind {
    /// The stable machine name of this kind (used in `--json` output).
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::PayloadChanged => "payload_changed",
            FindingKind::HeaderChanged => "header_changed",
            FindingKind::LinkBroken => "link_broken",
            FindingKind::Missing => "missing",
            FindingKind::Inserted => "inserted",
            FindingKind::Reordered => "reordered",
            FindingKind::Duplicate => "duplicate",
            FindingKind::BadSignature => "bad_signature",
            FindingKind::Unsigned => "unsigned",
            FindingKind::UnknownKey => "unknown_key",
            FindingKind::ForeignWriter => "foreign_writer",
            FindingKind::Malformed => "malformed",
            FindingKind::GenesisMismatch => "genesis_mismatch",
            FindingKind::Truncated => "truncated",
            FindingKind::TipMismatch => "tip_mismatch",
            FindingKind::KeyMissing => "key_missing",
            FindingKind::DecryptFailed => "decrypt_failed",
            FindingKind::Corrupt => "corrupt",
            FindingKind::PartitionMissing => "partition_missing",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bad record of a chain: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub offset: u64,
    pub height: u64,
    pub kind: FindingKind,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {} (height {}): {}",
            self.kind, self.offset, self.height, self.detail
        )
    }
}

//! What the chain makes of a record of the blocks topic: canonical, ignored for a reason that
//! is normal life, or a finding (tampering), with the offset where it is (see
//! [`crate::consensus::chain`] for how each is told apart).

use std::fmt;

use kchain_core::Hash;

use crate::consensus::block::BlockHeader;
use crate::consensus::validate::InvalidBlock;

/// What a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// An allowed sealer's signature does not verify over the block's content.
    BadSignature,
    /// The JSON `hash` field is not the block's hash.
    HashMismatch,
    /// The transactions do not match the items root and count the sealer signed.
    BodyMismatch,
    /// The parent appears nowhere earlier in the log.
    MissingParent,
    /// The parent was seen earlier but never was canonical.
    ParentNotCanonical,
    /// Block 0 is not the expected genesis.
    GenesisChanged,
    /// A pinned block is not in the canonical chain at its height.
    AnchorMismatch,
    /// The canonical chain is shorter than a pinned height.
    Truncated,
}

impl FindingKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FindingKind::BadSignature => "bad_signature",
            FindingKind::HashMismatch => "hash_mismatch",
            FindingKind::BodyMismatch => "body_mismatch",
            FindingKind::MissingParent => "missing_parent",
            FindingKind::ParentNotCanonical => "parent_not_canonical",
            FindingKind::GenesisChanged => "genesis_changed",
            FindingKind::AnchorMismatch => "anchor_mismatch",
            FindingKind::Truncated => "truncated",
        }
    }
}

/// Evidence that the stored blocks were changed: where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Offset in the blocks topic of the record that shows it.
    pub offset: u64,
    pub height: Option<u64>,
    pub kind: FindingKind,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.kind.as_str(), self.offset)?;
        if let Some(h) = self.height {
            write!(f, " (height {h})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Why a record of the blocks topic is ignored (normal life under log-order consensus).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// Not a block (not JSON, not a block header, empty).
    Malformed(String),
    /// A block of another ledger.
    OtherChain,
    /// A second block at height 0.
    ExtraGenesis,
    /// Sealed by a key the genesis does not allow.
    UnknownSealer,
    /// Built on a canonical block that is no longer the tip: it lost a race (or repeats a
    /// block already in the chain).
    Stale { parent_height: u64 },
    /// Extends the tip but breaks a consensus rule.
    Invalid(InvalidBlock),
    /// Does not hold together (its signature, `hash` field or transactions do not match what
    /// its sealer signed). Ignored at the tip; a finding once anything builds on it.
    Broken { kind: FindingKind, detail: String },
}

impl IgnoreReason {
    pub fn code(&self) -> &'static str {
        match self {
            IgnoreReason::Malformed(_) => "malformed",
            IgnoreReason::OtherChain => "other_chain",
            IgnoreReason::ExtraGenesis => "extra_genesis",
            IgnoreReason::UnknownSealer => "unknown_sealer",
            IgnoreReason::Stale { .. } => "stale",
            IgnoreReason::Invalid(_) => "invalid",
            IgnoreReason::Broken { kind, .. } => kind.as_str(),
        }
    }
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreReason::Malformed(d) => write!(f, "not a block: {d}"),
            IgnoreReason::OtherChain => write!(f, "a block of another ledger"),
            IgnoreReason::ExtraGenesis => write!(f, "a second genesis block"),
            IgnoreReason::UnknownSealer => write!(f, "sealed by a key the genesis does not allow"),
            IgnoreReason::Stale { parent_height } => write!(
                f,
                "stale: builds on height {parent_height}, which is no longer the tip"
            ),
            IgnoreReason::Invalid(why) => write!(f, "invalid: {why}"),
            IgnoreReason::Broken { detail, .. } => write!(f, "does not hold together: {detail}"),
        }
    }
}

/// The verdict on one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Canonical,
    Ignored(IgnoreReason),
    Finding(Finding),
}

/// One record of the blocks topic, judged.
#[derive(Clone, Debug)]
pub struct Observed {
    pub offset: u64,
    pub verdict: Verdict,
    /// The header, when the record parsed as a block.
    pub header: Option<BlockHeader>,
    pub hash: Option<Hash>,
}

//! What verifying an archive found: tampering, each at the entry where it shows.

use crate::seam::LogVerified;

/// A kind of tampering found in an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArchiveFindingKind {
    /// The chain has no checkpoint in the archive.
    CheckpointMissing,
    /// The archive's checkpoint does not meet the trust policy (or is not a signed note).
    CheckpointUntrusted,
    /// The archive's checkpoint is older than, or contradicts, the one this verifier
    /// remembers: the archive was rolled back or rewritten.
    CheckpointRollback,
    /// A tile or bundle the checkpoint needs is not in the archive.
    ObjectMissing,
    /// A tile or bundle does not decode, or has the wrong number of entries.
    ObjectMalformed,
    /// A record does not hash to the entry the tree commits to: its key, value, headers or
    /// timestamp were changed.
    RecordChanged,
    /// A record's height or link to the entry before it is wrong: records were inserted,
    /// dropped, reordered, or a bundle was taken from another chain.
    LinkBroken,
    /// A tile's hash is not the one the entries below it give.
    TileChanged,
    /// The archived entries do not have the checkpoint's root.
    RootMismatch,
    /// An archived ledger block breaks the ledger's rules when replayed from its genesis
    /// (a bad sealer signature, an invalid transaction), or its genesis is not the trusted one.
    BlockInvalid,
}

impl ArchiveFindingKind {
    /// The stable machine name of this kind (used in `--json` output).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheckpointMissing => "archive_checkpoint_missing",
            Self::CheckpointUntrusted => "archive_checkpoint_untrusted",
            Self::CheckpointRollback => "archive_checkpoint_rollback",
            Self::ObjectMissing => "archive_object_missing",
            Self::ObjectMalformed => "archive_object_malformed",
            Self::RecordChanged => "archive_record_changed",
            Self::LinkBroken => "archive_link_broken",
            Self::TileChanged => "archive_tile_changed",
            Self::RootMismatch => "archive_root_mismatch",
            Self::BlockInvalid => "archive_block_invalid",
        }
    }
}

/// One finding: what, at which entry (height) when it is at one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveFinding {
    pub kind: ArchiveFindingKind,
    pub entry: Option<u64>,
    pub detail: String,
}

/// Findings kept per chain: one tampered bundle can break every entry after it, and the
/// first findings say where; the count says how many more.
pub const MAX_FINDINGS: usize = 100;

/// The verdict on one archived chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainVerified {
    pub partition: u32,
    /// The size of the archive's checkpoint (0 when there is none that could be read).
    pub size: u64,
    /// The witnesses whose cosignatures on it verified.
    pub cosigners: Vec<String>,
    pub findings: Vec<ArchiveFinding>,
    /// Findings beyond [`MAX_FINDINGS`], counted and not kept.
    pub more_findings: u64,
}

impl ChainVerified {
    pub(crate) fn new(partition: u32) -> ChainVerified {
        ChainVerified {
            partition,
            size: 0,
            cosigners: Vec::new(),
            findings: Vec::new(),
            more_findings: 0,
        }
    }

    pub(crate) fn find(&mut self, kind: ArchiveFindingKind, entry: Option<u64>, detail: String) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(ArchiveFinding {
                kind,
                entry,
                detail,
            });
        } else {
            self.more_findings += 1;
        }
    }

    pub(crate) fn object_problem(&mut self, path: &str, first: u64, missing: bool, what: &str) {
        let (kind, how) = if missing {
            (ArchiveFindingKind::ObjectMissing, "is missing")
        } else {
            (ArchiveFindingKind::ObjectMalformed, "is malformed")
        };
        self.find(kind, Some(first), format!("{what} {path} {how}"));
    }

    /// True when nothing was found.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// The verdict on a topic's archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveVerifyReport {
    pub topic: String,
    pub url: String,
    pub chains: Vec<ChainVerified>,
    /// The log's part of each clean chain, verified after the archive
    /// ([`crate::verify_log_after`]); empty when no log was given.
    pub log: Vec<LogVerified>,
}

impl ArchiveVerifyReport {
    /// True when every chain is clean (and there is at least one), in the archive and in
    /// the log.
    pub fn ok(&self) -> bool {
        !self.chains.is_empty()
            && self.chains.iter().all(ChainVerified::ok)
            && self.log.iter().all(LogVerified::ok)
    }
}

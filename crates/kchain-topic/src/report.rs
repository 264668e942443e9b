//! What verifying a topic found: per partition, the chain's summary (and with a keyring,
//! the decryption outcomes); per topic, the partitions and the warnings that are not
//! findings. Shared by the verifier and the checkpoint check, which reads it.

use kchain_core::Summary;

use crate::decrypt::EncryptionSummary;

/// The verification result of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReport {
    pub partition: u32,
    pub start_offset: u64,
    /// The end offset when verification began; records appended later are not covered.
    pub end_offset: u64,
    pub summary: Summary,
    /// Decryption outcomes, when verifying with a keyring.
    pub encryption: Option<EncryptionSummary>,
}

impl PartitionReport {
    /// True when neither the chain nor (with a keyring) decryption has a finding.
    pub fn ok(&self) -> bool {
        self.summary.ok() && self.encryption.as_ref().is_none_or(EncryptionSummary::ok)
    }
}

/// The verification result of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: String,
    pub partitions: Vec<PartitionReport>,
    /// Things a person should know that are not findings (e.g. retention settings).
    pub warnings: Vec<String>,
}

impl TopicReport {
    /// True when no partition has a finding (of the chain, or of decryption).
    pub fn ok(&self) -> bool {
        self.partitions.iter().all(PartitionReport::ok)
    }
}

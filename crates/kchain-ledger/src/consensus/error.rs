//! Errors of the consensus rules. They know nothing of logs or files: a genesis that is not
//! acceptable, or a blocks topic that does not start with a genesis block. A block that breaks
//! a rule is not an error either: it is an [`IgnoreReason`](crate::IgnoreReason) or a
//! [`Finding`](crate::Finding) of the chain.

/// What the pure rules refuse. The ledger's error type carries each variant under the same
/// name, so a caller of the node or the client sees one error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// A genesis file or genesis block that is not acceptable.
    #[error("genesis: {0}")]
    Genesis(String),

    /// The blocks topic does not start with a genesis block.
    #[error("{topic}: no genesis block at offset {offset}: {detail} (run `kchain ledger init`)")]
    NoGenesis {
        topic: String,
        offset: u64,
        detail: String,
    },
}

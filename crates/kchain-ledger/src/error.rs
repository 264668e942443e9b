//! Errors of the ledger. A tampered blocks topic is not an error of the program: it is a
//! [`Finding`](crate::Finding), reported with its offset; [`LedgerError::Tampered`] only carries
//! one out of a node that refuses to go on.

use std::path::PathBuf;

use kchain_log::LogError;
use kchain_topic::TopicError;

use crate::consensus::error::ConsensusError;
use crate::consensus::finding::Finding;

/// What can go wrong running or querying a ledger. Messages name the topic, offset, file or
/// field concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    Log(#[from] LogError),

    /// Reading or writing a key file.
    #[error(transparent)]
    Key(#[from] TopicError),

    /// A genesis file or genesis block that is not acceptable (see [`ConsensusError`]).
    #[error("genesis: {0}")]
    Genesis(String),

    /// The blocks topic does not start with a genesis block.
    #[error("{topic}: no genesis block at offset {offset}: {detail} (run `kchain ledger init`)")]
    NoGenesis {
        topic: String,
        offset: u64,
        detail: String,
    },

    /// The node found tampering and stopped; the finding says where.
    #[error("tampering found in the blocks topic: {0}")]
    Tampered(Box<Finding>),

    #[error("snapshot {path}: {detail}")]
    Snapshot { path: PathBuf, detail: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A request that cannot be carried out as asked (a bad address, an unknown transaction).
    #[error("{0}")]
    Invalid(String),

    #[error("timed out: {0}")]
    Timeout(String),

    /// A sealer refuses to sign a checkpoint that would contradict one it signed before (the
    /// canonical chain no longer extends it: truncated or rewritten).
    #[error("checkpoints of {origin}: {detail}")]
    CheckpointRefused { origin: String, detail: String },
}

impl LedgerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LedgerError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<ConsensusError> for LedgerError {
    /// The same variant under the same name: a caller matches one error type.
    fn from(e: ConsensusError) -> Self {
        match e {
            ConsensusError::Genesis(detail) => LedgerError::Genesis(detail),
            ConsensusError::NoGenesis {
                topic,
                offset,
                detail,
            } => LedgerError::NoGenesis {
                topic,
                offset,
                detail,
            },
        }
    }
}

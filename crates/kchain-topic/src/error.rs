//! Errors of chained topics.

use std::path::PathBuf;

use kchain_core::{CryptError, KeyError, TrustError};
use kchain_log::LogError;

/// What can go wrong writing or reading a chained topic. A tampered chain is not an error:
/// it is a [`kchain_core::Finding`] in a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    #[error(transparent)]
    Log(#[from] LogError),

    #[error(
        "{topic}/{partition}: a record this writer did not write is at offset {offset} ({detail}); \
         a chained partition has one writer"
    )]
    ForeignRecord {
        topic: String,
        partition: u32,
        offset: u64,
        detail: String,
    },

    #[error("{topic}/{partition}: the writer stopped after an earlier error and must be reopened")]
    Poisoned { topic: String, partition: u32 },

    #[error("key file {path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },

    #[error("key file {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    KeyPermissions { path: PathBuf, mode: u32 },

    #[error("keyring {path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")]
    KeyringPermissions { path: PathBuf, mode: u32 },

    #[error("keyring {path}: {source}")]
    Keyring {
        path: PathBuf,
        #[source]
        source: CryptError,
    },

    #[error("trust file {path}: {source}")]
    Trust {
        path: PathBuf,
        #[source]
        source: TrustError,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Invalid(String),
}

impl TopicError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TopicError::Io {
            context: context.into(),
            source,
        }
    }
}

//! The monitor's errors: what stops it (not what it finds: findings are alerts).

use std::path::{Path, PathBuf};

/// Why the monitor cannot go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("monitor state {path}: {detail}")]
    State { path: PathBuf, detail: String },
    #[error(transparent)]
    Topic(#[from] kchain_topic::TopicError),
    #[error(transparent)]
    Log(#[from] kchain_log::LogError),
    #[error("the trust file's checkpoint policy: {0}")]
    Policy(String),
    #[error(transparent)]
    Http(#[from] kchain_http::HttpError),
    #[error(transparent)]
    Ledger(#[from] kchain_ledger::LedgerError),
}

impl MonitorError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> MonitorError {
        MonitorError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

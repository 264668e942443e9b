//! What can go wrong while archiving or reading an archive (tampering is not an error: it is
//! a finding, see `check.rs`).

/// An archive error: the store, the log, or a chain that cannot be archived.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("archive URL {url}: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("object store at {path}: {detail}")]
    Store { path: String, detail: String },
    #[error("async runtime: {0}")]
    Runtime(String),
    #[error(transparent)]
    Topic(#[from] kchain_topic::TopicError),
    #[error(transparent)]
    Log(#[from] kchain_log::LogError),
    #[error(transparent)]
    Trust(#[from] kchain_core::TrustError),
    #[error(transparent)]
    Ledger(#[from] kchain_ledger::LedgerError),
    #[error("{chain}: {detail}")]
    Chain { chain: String, detail: String },
}

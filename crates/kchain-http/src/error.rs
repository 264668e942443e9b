//! What can go wrong in the HTTP stack.

use std::path::PathBuf;

/// An error of kchain's HTTP server or client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {}: {why}", path.display())]
    BadPem {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the HTTP server's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{url}: {why}")]
    Request { url: String, why: String },
    #[error("{url}: the response is larger than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
}

//! The errors of the witness server: its configuration, its state directory, its socket.

use kchain_http::HttpError;
use kchain_topic::TopicError;

/// Why the witness server could not be configured, started, or keep its state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A `--log ORIGIN=VKEY` argument or a line of a logs file is not an origin and a note
    /// verifier key.
    #[error("log {what}: {why}")]
    BadLog { what: String, why: String },
    /// The state directory could not be read or written.
    #[error("witness state: {0}")]
    State(#[from] TopicError),
    /// The state directory could not be created.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The server could not bind or start.
    #[error(transparent)]
    Http(#[from] HttpError),
}

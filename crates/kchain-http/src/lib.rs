//! kchain's HTTP stack, shared by every party that talks over the network: witness servers
//! (`kchain witness serve`), the monitor's `/metrics`, and the writers, sealers and verifiers
//! that call witnesses.
//!
//! ```text
//!   server: axum Router ──► Server::start (own tokio runtime, TCP or rustls) ──► RunningServer
//!   client: Client (blocking ureq + rustls, extra CA file) ──► Response {status, type, body}
//!   tls:    PEM files ──► rustls configs;   selfsigned (feature): a CA + a 127.0.0.1 cert
//! ```
//!
//! The rest of kchain is synchronous; the server runs on a runtime of its own and the client
//! blocks, so no other crate has to become async.

mod client;
mod error;
mod metrics;
mod server;
mod tls;

#[cfg(feature = "selfsigned")]
mod selfsigned;

pub use client::{Client, ClientOptions, Response};
pub use error::HttpError;
pub use metrics::{MetricKind, MetricsText, METRICS_CONTENT_TYPE};
pub use server::{RunningServer, Server, ServerOptions};
pub use tls::{client_config, server_config, TlsFiles};

#[cfg(feature = "selfsigned")]
pub use selfsigned::TestPki;

/// Runs blocking work (the log, the verifier, signing) on the server runtime's blocking pool
/// from an async handler; `None` when it panicked.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// Re-exported so that handler crates build routers against the same axum version.
pub use axum;

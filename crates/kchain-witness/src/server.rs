//! The witness over HTTP: the routes of c2sp.org/tlog-witness and the monitoring GETs, on
//! kchain-http's server.
//!
//! ```text
//!  POST /add-checkpoint      body <= 64 KiB (else 413) ──► blocking pool ──► WitnessService
//!  GET  /checkpoint/<origin> the newest cosigned checkpoint (404 if none)
//!  GET  / , /origins         "origin size" per line
//!  GET  /healthz             "ok"
//!  other methods on these paths: 405
//! ```
//!
//! The service signs and waits for its group commit, so it runs on tokio's blocking pool:
//! other requests go on (and join the next batch) while one waits for its disk.

use std::sync::Arc;

use kchain_http::axum::body::Bytes;
use kchain_http::axum::extract::{DefaultBodyLimit, Path, State};
use kchain_http::axum::http::{header, StatusCode};
use kchain_http::axum::response::{IntoResponse, Response};
use kchain_http::axum::routing::{get, post};
use kchain_http::axum::Router;
use kchain_http::{RunningServer, Server, ServerOptions};

use crate::error::ServeError;
use crate::service::{Reply, WitnessService};

/// The largest add-checkpoint body accepted (a checkpoint, 63 proof lines and signatures
/// fit in a few KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The witness's routes over `service`.
pub fn router(service: Arc<WitnessService>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/checkpoint/{*origin}", get(latest))
        .route("/", get(origins))
        .route("/origins", get(origins))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

/// Serves `service` as `options` say until the returned server is shut down or dropped.
pub fn serve(
    options: &ServerOptions,
    service: Arc<WitnessService>,
) -> Result<RunningServer, ServeError> {
    Ok(Server::start(options, router(service))?)
}

async fn add_checkpoint(State(service): State<Arc<WitnessService>>, body: Bytes) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    blocking(move || service.add_checkpoint(&body, now)).await
}

async fn latest(
    State(service): State<Arc<WitnessService>>,
    Path(origin): Path<String>,
) -> Response {
    blocking(move || service.latest(&origin)).await
}

async fn origins(State(service): State<Arc<WitnessService>>) -> Response {
    blocking(move || service.origins()).await
}

async fn blocking(f: impl FnOnce() -> Reply + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(reply) => respond(reply),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the witness failed\n").into_response(),
    }
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

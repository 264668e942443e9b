//! Chained topics over HTTP, under `/api/v1/topics` (see docs/openapi.json): list and
//! create, produce (one record or a batch), consume verified records, verify, inspect,
//! inclusion and consistency proofs, the newest checkpoint.

use std::sync::Arc;

use kchain_http::axum::Router;

use crate::serve::state::AppState;

/// The topic routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}

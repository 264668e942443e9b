//! Ledgers over HTTP, under `/api/v1/ledgers/{chain}` (see docs/openapi.json): submit a
//! signed transaction, its status and proof, blocks, accounts, and the `ledger verify`
//! report.

use std::sync::Arc;

use kchain_http::axum::Router;

use crate::serve::state::AppState;

/// The ledger routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}

//! The block explorer: a page and its assets embedded in the binary under `/explorer/`, and
//! the overview it polls (`/api/v1/overview`).

use std::sync::Arc;

use kchain_http::axum::Router;

use crate::serve::state::AppState;

/// The explorer's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}

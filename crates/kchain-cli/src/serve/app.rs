//! The router: the common routes (`/healthz`, `/metrics`, `/openapi.json`), then the
//! sections (topics, ledgers, the explorer), a JSON 404 for anything else, the body limit,
//! and the middleware that counts every request.

use std::sync::Arc;

use kchain_http::axum::extract::{DefaultBodyLimit, State};
use kchain_http::axum::http::header;
use kchain_http::axum::response::IntoResponse;
use kchain_http::axum::routing::get;
use kchain_http::axum::{middleware, Json, Router};

use crate::serve::error::no_route;
use crate::serve::state::AppState;
use crate::serve::{explorer, ledger, metrics, topics};

/// The OpenAPI description of every route, checked into the repository.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// The whole API.
pub fn router(state: Arc<AppState>, max_body: usize) -> Router {
    let counting = middleware::from_fn_with_state(state.metrics.clone(), metrics::count);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/openapi.json", get(openapi))
        .merge(topics::routes())
        .merge(ledger::routes())
        .merge(explorer::routes())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(counting)
        .with_state(state)
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "backend": state.log.backend(),
    }))
}

async fn metrics_page(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, kchain_http::METRICS_CONTENT_TYPE)],
        state.metrics.render(),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

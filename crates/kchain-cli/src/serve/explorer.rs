//! The block explorer: a page and its assets embedded in the binary under `/explorer/` (`/`
//! redirects there), and the overview it polls (`/api/v1/overview`), answered from the
//! verification the server keeps (watch.rs). The page reads records, blocks and transactions
//! from the topic and ledger routes; it is plain HTML, CSS and JavaScript of ours, with no
//! build step and nothing fetched from elsewhere.
//!
//! ```text
//!  browser ── GET /explorer/ ──────────────► assets/index.html, explorer.css, explorer.js
//!          ── GET /api/v1/overview (2 s) ──► watch::Watch (cached pass) ──► overview.rs
//!          ── GET /api/v1/explorer/topics/{t}/partitions/{p}/entries ──► entries.rs (links)
//!          ── GET /api/v1/topics/{t}/partitions/{p}/records, /api/v1/ledgers/{c}/blocks,
//!             /api/v1/ledgers/{c}/transactions/{id}   (topics.rs, ledger.rs)
//! ```

mod entries;
mod overview;
mod watch;

use std::sync::Arc;

use kchain_http::axum::extract::rejection::QueryRejection;
use kchain_http::axum::extract::{Query, State};
use kchain_http::axum::http::header;
use kchain_http::axum::response::{IntoResponse, Redirect, Response};
use kchain_http::axum::routing::get;
use kchain_http::axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::{blocking, AppState};
use watch::Watch;

const INDEX_HTML: &str = include_str!("explorer/assets/index.html");
const EXPLORER_JS: &str = include_str!("explorer/assets/explorer.js");
const EXPLORER_CSS: &str = include_str!("explorer/assets/explorer.css");

/// The explorer's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/explorer/") }))
        .route(
            "/explorer",
            get(|| async { Redirect::permanent("/explorer/") }),
        )
        .route(
            "/explorer/",
            get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/explorer/explorer.js",
            get(|| asset("text/javascript; charset=utf-8", EXPLORER_JS)),
        )
        .route(
            "/explorer/explorer.css",
            get(|| asset("text/css; charset=utf-8", EXPLORER_CSS)),
        )
        .route("/api/v1/overview", get(overview))
        .route(
            "/api/v1/explorer/topics/{topic}/partitions/{partition}/entries",
            get(entries::entries),
        )
        .layer(Extension(Arc::new(Watch::default())))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `?refresh=true`: verify now rather than answer the kept pass.
#[derive(Deserialize)]
struct OverviewQuery {
    #[serde(default)]
    refresh: bool,
}

async fn overview(
    State(st): State<Arc<AppState>>,
    Extension(watch): Extension<Arc<Watch>>,
    query: Result<Query<OverviewQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let refresh = query
        .map_err(|e| ApiError::bad_request(e.body_text()))?
        .refresh;
    let v = blocking(move || Ok(watch.overview(&st, refresh))).await?;
    Ok(Json(Value::clone(&v)))
}

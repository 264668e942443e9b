//! What every handler shares: the log the server opened, the global options it was started
//! with (keys, trust file, data directory), the write tokens and the metrics.

use std::sync::Arc;

use kchain_log::Log;

use crate::global::Global;
use crate::serve::auth::Tokens;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::metrics::Metrics;
use crate::serve::topics::pages::Pages;
use crate::serve::topics::writers::Producers;

/// The state behind every route (shared as `Arc<AppState>`).
pub struct AppState {
    /// The options `kchain serve` was started with: where keys, the trust file and the
    /// embedded log live, and which backend.
    pub global: Global,
    /// The log, opened once at start.
    pub log: Arc<dyn Log>,
    /// Who may write where.
    pub tokens: Tokens,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// The chained writers of the topics written through the API, kept open across
    /// requests and flushed when the server stops.
    pub producers: Producers,
    /// Readers paused between pages of records (`GET .../records`).
    pub pages: Pages,
}

/// Runs blocking work (reading or appending the log, verifying, signing) off the async
/// workers; a panic in it is a 500, not a dropped connection.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    match kchain_http::blocking(f).await {
        Some(result) => result,
        None => Err(ApiError::internal("the request's work failed (a panic)")),
    }
}

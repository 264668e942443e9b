//! Chained topics over HTTP, under `/api/v1/topics` (see docs/openapi.json): list and
//! create, produce (one record or a batch), consume verified records, verify, inspect,
//! inclusion and consistency proofs, the newest checkpoint.
//!
//! ```text
//!  GET  /api/v1/topics                               admin.rs    list
//!  POST /api/v1/topics                    (token)    admin.rs    create
//!  GET  /api/v1/topics/{t}                           read.rs     inspect: tips, checkpoints
//!  POST /api/v1/topics/{t}/records        (token)    produce.rs  ──► writers.rs: one chained
//!                                                                 writer per partition, kept
//!                                                                 open across requests
//!  GET  /api/v1/topics/{t}/partitions/{p}/records    read.rs     verified records, paged
//!  GET  /api/v1/topics/{t}/verify                    read.rs     the `verify --json` report
//!  GET  /api/v1/topics/{t}/partitions/{p}/proof      proofs.rs   inclusion proof file
//!  GET  /api/v1/topics/{t}/partitions/{p}/consistency proofs.rs  consistency proof file
//!  GET  /api/v1/topics/{t}/checkpoint                proofs.rs   newest signed notes
//!  POST /api/v1/topics/{t}/checkpoint     (token)    proofs.rs   sign one now
//! ```
//!
//! `pages.rs` keeps readers paused between pages of records, so that paging goes on from
//! where the last page stopped. `lookup.rs` holds what the handlers share (a topic or partition that is not there is a
//! 404, query numbers, library errors as statuses); it imports none of them.

mod admin;
mod lookup;
pub(crate) mod pages;
mod produce;
mod proofs;
mod read;
pub(crate) mod writers;

use std::sync::Arc;

use kchain_http::axum::routing::{get, post};
use kchain_http::axum::Router;

use crate::serve::state::AppState;

/// The topic routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/topics", get(admin::list).post(admin::create))
        .route("/api/v1/topics/{topic}", get(read::inspect))
        .route("/api/v1/topics/{topic}/records", post(produce::produce))
        .route(
            "/api/v1/topics/{topic}/partitions/{partition}/records",
            get(read::records),
        )
        .route("/api/v1/topics/{topic}/verify", get(read::verify))
        .route(
            "/api/v1/topics/{topic}/partitions/{partition}/proof",
            get(proofs::inclusion),
        )
        .route(
            "/api/v1/topics/{topic}/partitions/{partition}/consistency",
            get(proofs::consistency),
        )
        .route(
            "/api/v1/topics/{topic}/checkpoint",
            get(proofs::newest).post(proofs::sign),
        )
}

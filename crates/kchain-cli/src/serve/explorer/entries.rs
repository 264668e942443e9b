//! The chain links of a partition as stored, for the explorer's records view:
//! `GET /api/v1/explorer/topics/{topic}/partitions/{partition}/entries?from=&limit=`, each
//! entry with its height, previous hash, recomputed hash, whether the link holds and the key
//! id of the signature it carries (`kchain_topic::inspect`, the rows of `kchain inspect
//! --json`). The records route gives verified records without their `kchain.*` headers;
//! this gives the links and signatures beside them. Nothing here is a verdict: the overview's
//! verification is.

use std::sync::Arc;

use kchain_http::axum::extract::rejection::QueryRejection;
use kchain_http::axum::extract::{Path, Query, State};
use kchain_http::axum::Json;
use kchain_log::LogError;
use kchain_topic::TopicError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cmd::topic::inspect_row_json;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::{blocking, AppState};

/// The most entries one request reads.
const MAX_LIMIT: usize = 500;

#[derive(Deserialize)]
pub struct EntriesQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// The handler.
pub async fn entries(
    State(st): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, u32)>,
    query: Result<Query<EntriesQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    blocking(move || {
        let log = st.log.as_ref();
        let partitions = log.topic(&topic).map_err(not_found)?.partitions;
        if partition >= partitions {
            return Err(ApiError::not_found(format!(
                "partition {partition} does not exist in topic '{topic}' (it has {partitions})"
            )));
        }
        let from = q.from.unwrap_or(0);
        let rows =
            kchain_topic::inspect(log, &topic, partition, from, limit).map_err(|e| match e {
                TopicError::Log(e) => not_found(e),
                e => ApiError::internal(e),
            })?;
        let end = log.end_offset(&topic, partition).map_err(not_found)?;
        let next = rows.last().map(|r| r.offset + 1).filter(|&n| n < end);
        let entries: Vec<Value> = rows.iter().map(inspect_row_json).collect();
        Ok(Json(json!({ "entries": entries, "next": next })))
    })
    .await
}

/// A missing topic is a 404; any other failure of the log is a 503.
fn not_found(e: LogError) -> ApiError {
    match e {
        LogError::NoSuchTopic(t) => ApiError::not_found(format!("topic '{t}' does not exist")),
        e => ApiError::unavailable(format!("{e:#}")),
    }
}

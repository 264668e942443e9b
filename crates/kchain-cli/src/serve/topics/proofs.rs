//! Proofs and checkpoints of a topic's chains: an inclusion proof of an offset in the newest
//! checkpoint and a consistency proof between two checkpointed sizes (the files `kchain
//! prove` writes, checked offline by `kchain verify-proof`), the newest checkpoint of each
//! partition, and a checkpoint signed now by the server's writers.

use std::sync::Arc;

use kchain_core::{to_hex, Checkpoint, SignedNote, DEFAULT_ORIGIN_NAMESPACE};
use kchain_http::axum::extract::{Path, Query, State};
use kchain_http::axum::http::HeaderMap;
use kchain_http::axum::Json;
use kchain_log::Log;
use kchain_topic::checkpoints::{
    newest_checkpoint, partition_checkpoints, prove_consistency, prove_inclusion,
};
use serde_json::{json, Value};

use super::lookup::{
    log_error, number, partition_of, partitions_of, required, topic_error, QueryMap,
};
use crate::serve::auth::Scope;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::{blocking, AppState};

const NS: &str = DEFAULT_ORIGIN_NAMESPACE;

/// `GET .../partitions/{p}/proof?offset=`: the inclusion proof file of the record at
/// `offset` in the newest checkpoint that covers it; 404 when there is no such record or
/// no checkpoint covers it yet.
pub async fn inclusion(
    State(st): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Json<Value>> {
    let offset = required(&q, "offset")?;
    blocking(move || {
        let log = st.log.as_ref();
        let p = partition_of(log, &topic, &partition)?;
        let start = log
            .start_offset(&topic, p)
            .map_err(|e| log_error(e, &topic))?;
        let end = log
            .end_offset(&topic, p)
            .map_err(|e| log_error(e, &topic))?;
        if offset < start || offset >= end {
            return Err(ApiError::not_found(format!(
                "{topic}/{p} has no record at offset {offset} (its records are {start}..{end})"
            )));
        }
        let file = prove_inclusion(log, &topic, p, offset, NS).map_err(|e| match e {
            kchain_topic::TopicError::Invalid(m) => ApiError::not_found(m),
            e => topic_error(e, &topic),
        })?;
        Ok(Json(
            serde_json::to_value(&file).map_err(ApiError::internal)?,
        ))
    })
    .await
}

/// `GET .../partitions/{p}/consistency?old=&new=`: the consistency proof file between the
/// checkpoints of sizes `old` and `new` (default: the newest); 404 when no checkpoint of
/// that size was published, 400 when `old` > `new`.
pub async fn consistency(
    State(st): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Json<Value>> {
    let old = required(&q, "old")?;
    let new = number(&q, "new")?;
    if new.is_some_and(|n| n < old) {
        return Err(ApiError::bad_request(format!(
            "old ({old}) must not be larger than new ({})",
            new.unwrap_or_default()
        )));
    }
    blocking(move || {
        let log = st.log.as_ref();
        let p = partition_of(log, &topic, &partition)?;
        let notes =
            partition_checkpoints(log, &topic, p, NS).map_err(|e| topic_error(e, &topic))?;
        let of_size = |size: u64| {
            notes
                .iter()
                .filter(|(_, c)| c.size() == size)
                .max_by_key(|(n, _)| n.signatures().len())
                .map(|(n, _)| n)
                .ok_or_else(|| {
                    ApiError::not_found(format!("{topic}/{p} has no checkpoint of size {size}"))
                })
        };
        let old_note = of_size(old)?;
        let new_note = match new {
            Some(n) => of_size(n)?,
            None => notes
                .iter()
                .max_by_key(|(n, c)| (c.size(), n.signatures().len()))
                .map(|(n, _)| n)
                .ok_or_else(|| ApiError::not_found(format!("{topic}/{p} has no checkpoint")))?,
        };
        let file =
            prove_consistency(log, old_note, new_note, NS).map_err(|e| topic_error(e, &topic))?;
        Ok(Json(
            serde_json::to_value(&file).map_err(ApiError::internal)?,
        ))
    })
    .await
}

/// `GET .../checkpoint`: the newest checkpoint of each partition (null for none yet).
pub async fn newest(
    State(st): State<Arc<AppState>>,
    Path(topic): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || checkpoints_json(st.log.as_ref(), &topic).map(Json)).await
}

/// `POST .../checkpoint` (token): the server's writers sign and publish a checkpoint of
/// every partition that grew since its last, now rather than when one is due; answers as
/// the GET does.
pub async fn sign(
    State(st): State<Arc<AppState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    st.tokens.authorize(&headers, Scope::Topic(&topic))?;
    blocking(move || {
        let partitions = partitions_of(st.log.as_ref(), &topic)?;
        let writers = st
            .producers
            .topic(&st.global, &st.log, &topic, partitions)?;
        writers.writers().checkpoint()?;
        checkpoints_json(st.log.as_ref(), &topic).map(Json)
    })
    .await
}

fn checkpoints_json(log: &dyn Log, topic: &str) -> ApiResult<Value> {
    let n = partitions_of(log, topic)?;
    let mut out = Vec::new();
    for p in 0..n {
        let note = newest_checkpoint(log, topic, p, NS).map_err(|e| topic_error(e, topic))?;
        out.push(json!({"partition": p, "checkpoint": note.as_ref().map(note_json)}));
    }
    Ok(json!({"topic": topic, "partitions": out}))
}

/// A checkpoint: its origin, size and root, and the signed note as text (the writer's
/// signature and every cosignature seen), as `kchain checkpoint export` writes it.
fn note_json(note: &SignedNote) -> Value {
    let parsed = Checkpoint::parse(note.text()).ok();
    json!({
        "origin": parsed.as_ref().map(|c| c.origin().to_owned()),
        "size": parsed.as_ref().map(|c| c.size()),
        "root": parsed.as_ref().map(|c| to_hex(c.root())),
        "signatures": note.signatures().len(),
        "note": note.to_text(),
    })
}

//! `POST /api/v1/topics/{topic}/records`: one record or a batch, appended by the server's
//! writer of each partition (writers.rs). The token is checked, then every record of the
//! body, before anything is appended: a request with one bad record appends none.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use kchain_core::Item;
use kchain_http::axum::extract::{Path, State};
use kchain_http::axum::http::HeaderMap;
use kchain_http::axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::lookup::partitions_of;
use super::writers::NewItem;
use crate::global::now_ms;
use crate::serve::auth::Scope;
use crate::serve::error::{ApiError, ApiResult, JsonBody};
use crate::serve::state::{blocking, AppState};

/// The most records of one request (docs/openapi.json, `NewRecords.maxItems`).
pub const MAX_RECORDS: usize = 10_000;

/// One record of a request: key and value as UTF-8 text or as base64, text headers, and a
/// partition if the client picks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    key: Option<String>,
    key_b64: Option<String>,
    value: Option<String>,
    value_b64: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    partition: Option<u32>,
}

/// A batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecords {
    records: Vec<NewRecord>,
}

/// The body: a batch (`{"records": [...]}`) or one record.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ProduceBody {
    Batch(NewRecords),
    One(NewRecord),
}

/// Appends the records of the body; answers each one's partition, offset and height, in
/// the body's order, once they are appended (durable as `--fsync` says, like `produce`).
pub async fn produce(
    State(st): State<Arc<AppState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ProduceBody>,
) -> ApiResult<Json<Value>> {
    st.tokens.authorize(&headers, Scope::Topic(&topic))?;
    let records = match body {
        ProduceBody::Batch(b) => b.records,
        ProduceBody::One(r) => vec![r],
    };
    if records.is_empty() || records.len() > MAX_RECORDS {
        return Err(ApiError::bad_request(format!(
            "a request holds 1 to {MAX_RECORDS} records, not {}",
            records.len()
        )));
    }
    blocking(move || {
        let partitions = partitions_of(st.log.as_ref(), &topic)?;
        let at = now_ms();
        let items = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| new_item(i, r, partitions, at))
            .collect::<ApiResult<Vec<_>>>()?;
        let writers = st
            .producers
            .topic(&st.global, &st.log, &topic, partitions)?;
        let placed = writers.append(items)?;
        st.metrics.produced(placed.len() as u64);
        let mut tips = BTreeMap::new();
        for p in &placed {
            tips.insert(p.partition, p.height);
        }
        for (p, h) in tips {
            st.metrics.tip("topic", &format!("{topic}/{p}"), h);
        }
        Ok(Json(json!({ "records": placed })))
    })
    .await
}

/// Record `i` of a request as an item stamped `at`: 400 naming the record and the field
/// when a field is given twice, is not base64, names a kchain header, or a partition the
/// topic does not have.
fn new_item(i: usize, r: NewRecord, partitions: u32, at: i64) -> ApiResult<NewItem> {
    let bad = |m: String| ApiError::bad_request(format!("record {i}: {m}"));
    let bytes = |text: Option<String>, b64: Option<String>, name: &str| match (text, b64) {
        (Some(_), Some(_)) => Err(bad(format!("give {name} or {name}_b64, not both"))),
        (Some(t), None) => Ok(Some(t.into_bytes())),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(Some)
            .map_err(|e| bad(format!("{name}_b64 is not base64: {e}"))),
        (None, None) => Ok(None),
    };
    let key = bytes(r.key, r.key_b64, "key")?;
    let value = bytes(r.value, r.value_b64, "value")?;
    if let Some(p) = r.partition.filter(|&p| p >= partitions) {
        return Err(bad(format!(
            "partition {p} does not exist (the topic has {partitions})"
        )));
    }
    let mut headers = Vec::with_capacity(r.headers.len());
    for (name, v) in r.headers {
        if name.starts_with(kchain_core::HEADER_PREFIX) {
            return Err(bad(format!(
                "header {name}: names starting with 'kchain.' are kchain's own"
            )));
        }
        headers.push((name, v.into_bytes()));
    }
    Ok(NewItem {
        partition: r.partition,
        item: Item {
            key,
            value,
            headers,
            timestamp_ms: at,
        },
    })
}

//! `GET /api/v1/topics` and `POST /api/v1/topics`: the chained topics of the log, and a new
//! one (with a token for its name).

use std::sync::Arc;

use kchain_http::axum::extract::State;
use kchain_http::axum::http::{HeaderMap, StatusCode};
use kchain_http::axum::Json;
use kchain_log::TopicConfig;
use kchain_topic::checkpoints::CHECKPOINTS_SUFFIX;
use serde::Deserialize;
use serde_json::{json, Value};

use super::lookup::log_error;
use crate::serve::auth::Scope;
use crate::serve::error::{ApiError, ApiResult, JsonBody};
use crate::serve::state::{blocking, AppState};

/// The most partitions a topic created over HTTP may have.
const MAX_PARTITIONS: u32 = 1024;

/// The body of a create.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    name: String,
    #[serde(default = "one")]
    partitions: u32,
}

fn one() -> u32 {
    1
}

/// The topics of the log, without the companion checkpoints topics.
pub async fn list(State(st): State<Arc<AppState>>) -> ApiResult<Json<Value>> {
    blocking(move || {
        let topics = st.log.list_topics().map_err(|e| log_error(e, ""))?;
        let topics: Vec<Value> = topics
            .iter()
            .filter(|t| !t.name.ends_with(CHECKPOINTS_SUFFIX))
            .map(|t| json!({"name": t.name, "partitions": t.partitions}))
            .collect();
        Ok(Json(json!({ "topics": topics })))
    })
    .await
}

/// Creates a topic: 201, or 409 when it exists.
pub async fn create(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateTopic>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    st.tokens.authorize(&headers, Scope::Topic(&body.name))?;
    if body.partitions == 0 || body.partitions > MAX_PARTITIONS {
        return Err(ApiError::bad_request(format!(
            "partitions must be 1 to {MAX_PARTITIONS}, not {}",
            body.partitions
        )));
    }
    if body.name.is_empty() || body.name.ends_with(CHECKPOINTS_SUFFIX) {
        return Err(ApiError::bad_request(format!(
            "'{}' cannot name a chained topic (empty, or a checkpoints topic's name)",
            body.name
        )));
    }
    blocking(move || {
        let config = TopicConfig {
            partitions: body.partitions,
            ..TopicConfig::default()
        };
        st.log
            .create_topic(&body.name, &config)
            .map_err(|e| log_error(e, &body.name))?;
        let created = json!({"name": body.name, "partitions": body.partitions});
        Ok((StatusCode::CREATED, Json(created)))
    })
    .await
}

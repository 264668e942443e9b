//! A submitted transaction's body, read before anything touches the log: raw bytes
//! (`application/octet-stream`) or JSON (`application/json`). Whatever does not decode into
//! a transaction is refused here with 400 (415 for another content type).
//!
//! Raw bytes are either the record value `kchain tx` appends to the transactions topic (the
//! transaction's JSON), or the canonical encoding: the body the id hashes followed by the 64
//! bytes of the signature (docs/ledger.md). JSON is the transaction's object, or the line
//! `kchain tx ... --json` prints (the transaction in its `tx` member).

use kchain_http::axum::http::{header, HeaderMap, StatusCode};
use kchain_ledger::Transaction;
use serde_json::Value;

use crate::serve::error::{ApiError, ApiResult};

/// The transaction in a request body of the request's content type.
pub fn parse(headers: &HeaderMap, body: &[u8]) -> ApiResult<Transaction> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/octet-stream" => raw(body),
        "application/json" => json(body),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "a transaction is sent as application/octet-stream or application/json, \
                 not '{content_type}'"
            ),
        )),
    }
}

fn malformed(detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed",
        format!("not a transaction: {detail}"),
    )
}

/// The record value `kchain tx` writes (JSON), or the canonical body and signature.
fn raw(body: &[u8]) -> ApiResult<Transaction> {
    if body.first() == Some(&b'{') {
        return Transaction::from_json(body).map_err(malformed);
    }
    let Some(split) = body.len().checked_sub(64) else {
        return Err(malformed(format!(
            "{} bytes, shorter than a signature",
            body.len()
        )));
    };
    let signature: [u8; 64] = body[split..].try_into().expect("64 bytes");
    Transaction::decode(&body[..split], signature).map_err(malformed)
}

/// A transaction object, or `{"tx": {...}}` as `kchain tx --json` prints it.
fn json(body: &[u8]) -> ApiResult<Transaction> {
    let value: Value = serde_json::from_slice(body).map_err(malformed)?;
    let tx = match value.get("tx") {
        Some(inner) if inner.is_object() => inner,
        _ => &value,
    };
    Transaction::from_json_value(tx).map_err(malformed)
}

//! Ledgers over HTTP, under `/api/v1/ledgers/{chain}` (see docs/openapi.json): submit a
//! signed transaction, its status and proof, blocks, accounts, and the `ledger verify`
//! report. The answers are the JSON the ledger commands print with `--json`.
//!
//! ```text
//!  POST .../transactions  token (auth.rs) ──► submit::parse (400/415) ──► check_submission
//!                         (chain, signature: 400) ──► append to <chain>.transactions ──► 202
//!  GET  .../transactions/{id}[/proof], blocks[/{height}], accounts/{address}
//!                         ──► cache::Ledgers (replayed once, caught up per request) ──► JSON
//!  GET  .../verify        ──► verify_ledger from genesis, as `ledger verify --json`
//! ```

mod cache;
mod submit;

use std::sync::Arc;

use kchain_core::{from_hex, DEFAULT_ORIGIN_NAMESPACE};
use kchain_http::axum::body::Bytes;
use kchain_http::axum::extract::rejection::{BytesRejection, QueryRejection};
use kchain_http::axum::extract::{Path, Query, State};
use kchain_http::axum::http::{HeaderMap, StatusCode};
use kchain_http::axum::routing::{get, post};
use kchain_http::axum::{Extension, Json, Router};
use kchain_ledger::{
    canonical_blocks, check_submission, tx_status, verify_ledger, Address, LedgerError, Replayed,
    TxId,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cmd::anchors::{ledger_anchors, AnchorArgs};
use crate::cmd::ledger::{block_json, verify_options};
use crate::cmd::ledger_query::{account_json, tx_proof, tx_status_report};
use crate::cmd::tx::submitted_json;
use crate::serve::auth::Scope;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::{blocking, AppState};
use cache::{blocks_topic, ledger_error, Ledgers};

/// The ledger routes, with the replayed ledgers they share.
pub fn routes() -> Router<Arc<AppState>> {
    // Literal paths, so that the OpenAPI test finds every route in the source.
    Router::new()
        .route("/api/v1/ledgers/{chain}/transactions", post(submit_tx))
        .route("/api/v1/ledgers/{chain}/transactions/{id}", get(tx))
        .route(
            "/api/v1/ledgers/{chain}/transactions/{id}/proof",
            get(proof),
        )
        .route("/api/v1/ledgers/{chain}/blocks", get(blocks))
        .route("/api/v1/ledgers/{chain}/blocks/{height}", get(block))
        .route("/api/v1/ledgers/{chain}/accounts/{address}", get(account))
        .route("/api/v1/ledgers/{chain}/verify", get(verify))
        .layer(Extension(Arc::new(Ledgers::default())))
}

type Ledgered = Extension<Arc<Ledgers>>;

/// `POST .../transactions`: the token first, then the body, then the checks that need no
/// state; only a transaction that passes them is appended.
async fn submit_tx(
    State(st): State<Arc<AppState>>,
    Extension(ledgers): Ledgered,
    Path(chain): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    st.tokens.authorize(&headers, Scope::Ledger(&chain))?;
    let body = body.map_err(|r| {
        let code = match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            _ => "bad_request",
        };
        ApiError::new(r.status(), code, r.body_text())
    })?;
    let tx = submit::parse(&headers, &body)?;
    let answer = blocking(move || {
        ledgers.with(&st, &chain, |r| {
            check_submission(&r.chain, &tx).map_err(|reason| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    reason.code(),
                    format!("refused: {reason}"),
                )
            })?;
            let genesis = r.chain.genesis();
            let appended =
                kchain_ledger::submit(st.log.as_ref(), genesis, std::slice::from_ref(&tx))
                    .map_err(|e| ledger_error(e, &chain))?;
            let (partition, offset) = appended[0];
            let mut v = submitted_json(&tx, partition, offset);
            v["status"] = json!("pending");
            Ok(v)
        })
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// A transaction id from the path: 64 hex digits.
fn tx_id(id: &str) -> ApiResult<TxId> {
    from_hex(id).ok_or_else(|| {
        ApiError::bad_request(format!("'{id}' is not a transaction id (64 hex digits)"))
    })
}

/// Adds the replay's finding, if any, to an answer: what it says is as of the height
/// before the tampering (the commands say so on standard error).
fn with_finding(mut v: Value, r: &Replayed) -> Value {
    if let Some(f) = &r.finding {
        v["finding"] = json!(f.to_string());
    }
    v
}

/// `GET .../transactions/{id}`: as `ledger tx ID --json`, with the id (and, when rejected,
/// the reason's code as `reason`).
async fn tx(
    State(st): State<Arc<AppState>>,
    Extension(ledgers): Ledgered,
    Path((chain, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = tx_id(&id)?;
    blocking(move || {
        ledgers.with(&st, &chain, |r| {
            let status =
                tx_status(st.log.as_ref(), &r.chain, &id).map_err(|e| ledger_error(e, &chain))?;
            let hex = kchain_core::to_hex(&id);
            let (_, mut v) = tx_status_report(&status).ok_or_else(|| {
                ApiError::not_found(format!("transaction {hex} is not in ledger {chain}"))
            })?;
            v["id"] = json!(hex);
            if let Some(reason) = v["rejection"].get("reason").cloned() {
                v["reason"] = reason;
            }
            Ok(Json(with_finding(v, r)))
        })
    })
    .await
}

#[derive(Deserialize)]
struct ProofQuery {
    namespace: Option<String>,
}

/// `GET .../transactions/{id}/proof`: the file `ledger tx ID --proof` writes.
async fn proof(
    State(st): State<Arc<AppState>>,
    Extension(ledgers): Ledgered,
    Path((chain, id)): Path<(String, String)>,
    query: Result<Query<ProofQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let id = tx_id(&id)?;
    let Query(q) = query.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let namespace = q
        .namespace
        .unwrap_or_else(|| DEFAULT_ORIGIN_NAMESPACE.to_owned());
    blocking(move || {
        ledgers.with(&st, &chain, |r| {
            if r.finding.is_some() {
                return Err(ApiError::conflict(
                    "the ledger shows tampering; no proof is given from it (see .../verify)",
                ));
            }
            if r.chain.state().sealed_at(&id).is_none() {
                return Err(ApiError::not_found(format!(
                    "transaction {} is not sealed in ledger {chain}",
                    kchain_core::to_hex(&id)
                )));
            }
            let proof = tx_proof(st.log.as_ref(), r, &blocks_topic(&chain), &id, &namespace)
                .map_err(|e| match e.downcast_ref::<LedgerError>() {
                    // No checkpoint covers the block yet.
                    Some(LedgerError::Invalid(m)) => ApiError::not_found(m.clone()),
                    _ => ApiError::internal(e),
                })?;
            let v: Value = serde_json::from_str(&proof.to_json()).map_err(ApiError::internal)?;
            Ok(Json(v))
        })
    })
    .await
}

/// Most blocks in one page, and the default.
const MAX_PAGE: usize = 500;
const DEFAULT_PAGE: usize = 50;

#[derive(Deserialize)]
struct PageQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// A canonical block as `ledger blocks --json` prints it, with its transactions.
fn full_block(r: &Replayed, offset: u64, b: &kchain_ledger::StoredBlock) -> Value {
    let mut v = block_json(r.chain.genesis(), offset, b);
    v["transactions"] = match &b.body {
        Ok(txs) => txs
            .iter()
            .map(|s| {
                json!({"partition": s.partition, "offset": s.offset,
                       "id": kchain_core::to_hex(s.tx.id()), "tx": s.tx.to_json_value()})
            })
            .collect(),
        Err(_) => Value::Null,
    };
    v
}

/// `GET .../blocks?from=&limit=`: a page of canonical blocks; `next` is the height to ask
/// for next, null past the tip.
async fn blocks(
    State(st): State<Arc<AppState>>,
    Extension(ledgers): Ledgered,
    Path(chain): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) = query.map_err(|r| ApiError::bad_request(r.body_text()))?;
    let from = q.from.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit {limit}: between 1 and {MAX_PAGE}"
        )));
    }
    blocking(move || {
        ledgers.with(&st, &chain, |r| {
            let page = canonical_blocks(st.log.as_ref(), &r.chain, from, limit)
                .map_err(|e| ledger_error(e, &chain))?;
            let next = from.saturating_add(page.len() as u64);
            let next = (next <= r.chain.tip().height).then_some(next);
            let blocks: Vec<Value> = page.iter().map(|(o, b)| full_block(r, *o, b)).collect();
            let v = json!({"blocks": blocks, "next": next, "height": r.chain.tip().height});
            Ok(Json(with_finding(v, r)))
        })
    })
    .await
}

/// `GET .../blocks/{height}`: one canonical block with its transactions.
async fn block(
    State(st): State<Arc<AppState>>,
    Extension(ledgers): Ledgered,
    Path((chain, height)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let height: u64 = height
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{height}' is not a block height")))?;
    blocking(move || {
        ledgers.with(&st, &chain, |r| {
            let (offset, b) = canonical_blocks(st.log.as_ref(), &r.chain, height, 1)
                .map_err(|e| ledger_error(e, &chain))?
                .pop()
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "no canonical block at height {height} of ledger {chain} (tip {})",
                        r.chain.tip().height
                    ))
                })?;
            Ok(Json(with_finding(full_block(r, offset, &b), r)))
        })
    })
    .await
}

/// `GET .../accounts/{address}`: as `ledger balance ADDRESS --json`.
async fn account(
    State(st): State<Arc<AppState>>,
    Extension(ledgers): Ledgered,
    Path((chain, address)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let addr = Address::from_hex(&address).ok_or_else(|| {
        ApiError::bad_request(format!("'{address}' is not an address (40 hex digits)"))
    })?;
    blocking(move || {
        ledgers.with(&st, &chain, |r| {
            Ok(Json(with_finding(account_json(&r.chain, &addr), r)))
        })
    })
    .await
}

/// `GET .../verify`: the `ledger verify --json` report with `exit`, the code the command
/// exits with (0 intact, 3 findings). Verifies from genesis every time, with the server's
/// trust file for checkpoints as the command does.
async fn verify(
    State(st): State<Arc<AppState>>,
    Path(chain): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let g = &st.global;
        let blocks = blocks_topic(&chain);
        let anchors = ledger_anchors(g, &AnchorArgs::default())?;
        let opts = verify_options(g, &blocks, None, &[], false, anchors)?;
        let report = verify_ledger(st.log.as_ref(), &blocks, &opts, &|_| {})
            .map_err(|e| ledger_error(e, &chain))?;
        st.metrics.verified(report.records);
        if let Some(f) = &report.finding {
            st.metrics.finding(f.kind.as_str());
        }
        if report.checkpoint_finding.is_some() {
            st.metrics.finding("checkpoint");
        }
        st.metrics.tip("ledger", &chain, report.height);
        let mut v = report.to_json();
        v["exit"] = json!(if report.ok() { 0 } else { 3 });
        Ok(Json(v))
    })
    .await
}

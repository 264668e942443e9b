//! The read routes of a topic: records verified from genesis and paged (each as `consume
//! --json` prints it), the `verify --json` report, and the topic inspected (tips, newest
//! checkpoints, entries). They need no token.

use std::sync::Arc;

use kchain_core::{Finding, Keyring};
use kchain_http::axum::extract::{Path, Query, State};
use kchain_http::axum::Json;
use kchain_log::Log;
use kchain_topic::checkpoints::newest_checkpoint;
use kchain_topic::{TopicError, VerifiedRecord, VerifyReport, VerifyingReader};
use serde_json::{json, Value};

use super::lookup::{log_error, number, partition_of, partitions_of, topic_error, QueryMap};
use crate::cmd::topic::inspect_row_json;
use crate::cmd::verify::{report_json, verify_report, VerifyArgs};
use crate::global::load_trust_on;
use crate::report::{finding_json, record_json};
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::metrics::Metrics;
use crate::serve::state::{blocking, AppState};

/// Records of a page unless `limit` says otherwise, and the most it may say.
const PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;
/// Entries `inspect` shows unless `count` says otherwise, and the most.
const ENTRIES: u64 = 20;
const MAX_ENTRIES: u64 = 1000;

/// `GET .../partitions/{p}/records?from=&limit=`: up to `limit` verified records from
/// `from`, `next` the offset to ask for next (null at the partition's end, and after a
/// finding, which the page names: nothing after it is shown).
pub async fn records(
    State(st): State<Arc<AppState>>,
    Path((topic, partition)): Path<(String, String)>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Json<Value>> {
    let limit = number(&q, "limit")?.unwrap_or(PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    let from = number(&q, "from")?;
    blocking(move || {
        let log = st.log.as_ref();
        let p = partition_of(log, &topic, &partition)?;
        let trust = load_trust_on(&st.global, log)?;
        let keyring = crate::cmd::crypt::reading_keyring(&st.global)?;
        let end = log
            .end_offset(&topic, p)
            .map_err(|e| log_error(e, &topic))?;
        let start = log
            .start_offset(&topic, p)
            .map_err(|e| log_error(e, &topic))?;
        let from = from.unwrap_or(start).max(start);
        let topic_err = |e| topic_error(e, &topic);
        let resumed = match st.pages.find(&topic, p, &trust, from) {
            Some(paused) => VerifyingReader::resume(log, paused, &trust, from)
                .map_err(topic_err)?
                .ok(),
            None => None,
        };
        let mut page = match resumed {
            Some(reader) => {
                st.metrics.resumed();
                Some(read_page(reader, keyring.as_ref(), from, limit, &st).map_err(topic_err)?)
            }
            None => None,
        };
        // A finding on a resumed page is read again from genesis, so that the page says what
        // a reader from genesis says (the finding may be before where the pause stood).
        if page.as_ref().is_none_or(|pg| pg.finding.is_some()) {
            let reader = VerifyingReader::open(log, &topic, p, &trust, from).map_err(topic_err)?;
            page = Some(read_page(reader, keyring.as_ref(), from, limit, &st).map_err(topic_err)?);
        }
        let Page {
            records,
            next,
            finding,
        } = page.expect("read above");
        let records = (records.iter())
            .map(|rec| {
                let line = record_json(p, rec)?;
                serde_json::from_str::<Value>(&line).map_err(ApiError::internal)
            })
            .collect::<ApiResult<Vec<Value>>>()?;
        st.metrics.verified(records.len() as u64);
        let finding = finding.map(|f| {
            st.metrics.finding(f.kind.as_str());
            finding_json(&f)
        });
        let more = finding.is_none() && next < end;
        Ok(Json(json!({
            "topic": topic,
            "partition": p,
            "records": records,
            "next": more.then_some(next),
            "finding": finding,
        })))
    })
    .await
}

/// One page of verified records.
struct Page {
    records: Vec<VerifiedRecord>,
    /// The offset after the last record delivered (`from` when none was).
    next: u64,
    finding: Option<Finding>,
}

/// Up to `limit` records of `reader`, decrypted with `keyring` when one is given. The reader
/// is kept (see `pages.rs`) as it stood before the page, for the same page again, and after
/// it, for the next one; not after a finding.
fn read_page(
    reader: VerifyingReader<'_>,
    keyring: Option<&Keyring>,
    from: u64,
    limit: u64,
    st: &AppState,
) -> Result<Page, TopicError> {
    let mut reader = match keyring {
        Some(k) => reader.with_keyring(k),
        None => reader,
    };
    reader.ready()?;
    if let Some(before) = reader.snapshot() {
        st.pages.keep(before);
    }
    let mut records = Vec::new();
    let mut next = from;
    for rec in reader.by_ref() {
        let rec = rec?;
        next = rec.offset + 1;
        records.push(rec);
        if records.len() as u64 >= limit {
            break;
        }
    }
    let finding = reader.finding().cloned();
    if let Some(after) = reader.pause() {
        st.pages.keep(after);
    }
    Ok(Page {
        records,
        next,
        finding,
    })
}

/// `GET .../verify`: what `kchain verify TOPIC --json` prints, and `exit`, what it would
/// exit with (0 verified, 3 findings).
pub async fn verify(
    State(st): State<Arc<AppState>>,
    Path(topic): Path<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let log = st.log.as_ref();
        partitions_of(log, &topic)?;
        let args = VerifyArgs {
            topic: topic.clone(),
            partition: None,
            threads: None,
            json: true,
            state: None,
            checkpoints: Vec::new(),
            archive: None,
            checkpoints_from: Vec::new(),
        };
        let (log_id, report) = verify_report(&st.global, log, &args)?;
        count(&st.metrics, &report);
        let mut v = report_json(&st.global, log, &log_id, &report);
        v["exit"] = json!(if report.ok() { 0 } else { 3 });
        Ok(Json(v))
    })
    .await
}

/// Counts a verification into the metrics: records, findings, tips.
fn count(m: &Metrics, report: &VerifyReport) {
    let topic = &report.chain.topic;
    for p in &report.chain.partitions {
        let s = &p.summary;
        m.verified(s.entries);
        if let Some(f) = &s.finding {
            m.finding(f.kind.as_str());
        }
        if let Some(tip) = s.tip {
            m.tip("topic", &format!("{topic}/{}", p.partition), tip.height);
        }
    }
}

/// `GET /api/v1/topics/{topic}[?partition=&from=&count=]`: each partition's offsets, tip
/// entry (as `inspect --json` prints an entry) and newest checkpoint; with `partition`,
/// also its `entries` from `from` (`kchain inspect TOPIC -p P -o FROM -c COUNT --json`).
pub async fn inspect(
    State(st): State<Arc<AppState>>,
    Path(topic): Path<String>,
    Query(q): Query<QueryMap>,
) -> ApiResult<Json<Value>> {
    let count = number(&q, "count")?.unwrap_or(ENTRIES);
    if count == 0 || count > MAX_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "count must be 1 to {MAX_ENTRIES}, not {count}"
        )));
    }
    let from = number(&q, "from")?;
    let chosen = q.get("partition").cloned();
    blocking(move || {
        let log = st.log.as_ref();
        let n = partitions_of(log, &topic)?;
        let partitions = (0..n)
            .map(|p| partition_json(log, &topic, p))
            .collect::<ApiResult<Vec<_>>>()?;
        let mut v = json!({"topic": topic, "partitions": partitions});
        if let Some(p) = chosen {
            let p = partition_of(log, &topic, &p)?;
            let start = log
                .start_offset(&topic, p)
                .map_err(|e| log_error(e, &topic))?;
            let rows = kchain_topic::inspect(log, &topic, p, from.unwrap_or(start), count as usize)
                .map_err(|e| topic_error(e, &topic))?;
            v["partition"] = json!(p);
            v["entries"] = rows.iter().map(inspect_row_json).collect();
        }
        Ok(Json(v))
    })
    .await
}

/// One partition of `inspect`: offsets, the tip entry, the newest checkpoint's size.
fn partition_json(log: &dyn Log, topic: &str, p: u32) -> ApiResult<Value> {
    let start = log
        .start_offset(topic, p)
        .map_err(|e| log_error(e, topic))?;
    let end = log.end_offset(topic, p).map_err(|e| log_error(e, topic))?;
    let tip = match end > start {
        true => kchain_topic::inspect(log, topic, p, end - 1, 1)
            .map_err(|e| topic_error(e, topic))?
            .first()
            .map(inspect_row_json),
        false => None,
    };
    let checkpoint = newest_checkpoint(log, topic, p, kchain_core::DEFAULT_ORIGIN_NAMESPACE)
        .map_err(|e| topic_error(e, topic))?
        .and_then(|note| kchain_core::Checkpoint::parse(note.text()).ok())
        .map(|c| json!({"origin": c.origin(), "size": c.size()}));
    Ok(json!({
        "partition": p,
        "start_offset": start,
        "end_offset": end,
        "tip": tip,
        "checkpoint": checkpoint,
    }))
}

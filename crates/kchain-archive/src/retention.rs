//! Retention that is finally applied: a chain's records leave the log only once its archive
//! holds them under a checkpoint that meets the trust policy, and only when they are older
//! than the topic's `retention.ms`.
//!
//! ```text
//!  archive checkpoint (trusted, size n) ─┐
//!  topic's retention.ms ──► cutoff ──────┼─► the log from its start: records of height < n,
//!                                        │   older than the cutoff, linked ──► last (h, offset)
//!  archive entry at height h ────────────┴─► == the log's entry hash at h?
//!                                              │ yes
//!                                              ▼
//!                            Log::delete_records_before(offset + 1) ──► new start offset
//! ```
//!
//! The one comparison at the cut is enough: the log's record at `h` links by hash to every
//! record before it, so when its entry hash is the archive's, the log's prefix is the
//! archive's, record for record. The log decides how much it can delete (the embedded log:
//! whole segments), so the start offset may stay below the cut.

use std::time::{Duration, Instant};

use kchain_core::{ChainId, TrustFile, ZERO_HASH};
use kchain_log::{Log, LogError};

use crate::archived::{entry_at, trusted_checkpoint};
use crate::bundle::record_entry;
use crate::error::ArchiveError;
use crate::path::chain_prefix;
use crate::store::Store;

/// What applying retention did to one chain's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionApplied {
    pub partition: u32,
    /// The log's start offset before and after.
    pub start_before: u64,
    pub start_after: u64,
    /// The offset below which the log's records are archived and old enough (the log may
    /// delete less: whole segments only).
    pub cut: u64,
    /// Why nothing could be deleted, when nothing could.
    pub skipped: Option<String>,
}

/// Applies the retention of `topic` on `log` to every partition that `store` archives,
/// with `now_ms` the current time (milliseconds since the epoch).
pub fn apply_retention(
    log: &dyn Log,
    topic: &str,
    trust: &TrustFile,
    store: &Store,
    now_ms: i64,
) -> Result<Vec<RetentionApplied>, ArchiveError> {
    let info = log.topic(topic)?;
    let retention = info
        .settings
        .iter()
        .find(|(k, _)| k == "retention.ms")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .filter(|ms| *ms >= 0);
    let mut out = Vec::new();
    for p in 0..info.partitions {
        let start = log.start_offset(topic, p)?;
        let mut done = RetentionApplied {
            partition: p,
            start_before: start,
            start_after: start,
            cut: start,
            skipped: None,
        };
        let Some(ms) = retention else {
            done.skipped = Some("the topic keeps its records forever (retention.ms=-1)".into());
            out.push(done);
            continue;
        };
        let Some(cp) = trusted_checkpoint(store, topic, p, trust)? else {
            done.skipped = Some("the archive has no checkpoint that meets the policy".into());
            out.push(done);
            continue;
        };
        let Some((height, offset, hash)) =
            last_deletable(log, topic, p, cp.size(), now_ms.saturating_sub(ms))?
        else {
            done.skipped = Some("no archived record is older than the retention".into());
            out.push(done);
            continue;
        };
        let archived = entry_at(store, &chain_prefix(topic, p), cp.size(), height)?;
        if archived != Some(hash) {
            return Err(ArchiveError::Chain {
                chain: format!("{topic}/{p}"),
                detail: format!(
                    "the log's entry at height {height} (offset {offset}) is not the archive's: \
                     nothing deleted; run `kchain verify {topic}` and `kchain verify {topic} \
                     --archive URL`"
                ),
            });
        }
        done.cut = offset + 1;
        match log.delete_records_before(topic, p, done.cut) {
            Ok(s) => done.start_after = s,
            Err(LogError::Unsupported(why)) => done.skipped = Some(why),
            Err(e) => return Err(e.into()),
        }
        out.push(done);
    }
    Ok(out)
}

/// The last record, from the log's start on, that is below height `size`, older than
/// `cutoff_ms` and linked to the records before it: (height, offset, entry hash).
fn last_deletable(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    size: u64,
    cutoff_ms: i64,
) -> Result<Option<(u64, u64, kchain_core::Hash)>, ArchiveError> {
    let chain = ChainId::for_partition(topic, partition);
    let end = log.end_offset(topic, partition)?;
    let mut reader = log.reader(topic, partition, log.start_offset(topic, partition)?)?;
    let mut last: Option<(u64, u64, kchain_core::Hash)> = None;
    let mut scratch = Vec::new();
    let mut progress = Instant::now();
    while reader.position() < end {
        let batch = reader.poll(4096, Duration::from_millis(200))?;
        if batch.is_empty() {
            if progress.elapsed() > kchain_topic::stall_timeout() {
                break;
            }
            continue;
        }
        progress = Instant::now();
        for r in batch {
            let Ok(e) = record_entry(chain, &r.record, &mut scratch) else {
                return Ok(last);
            };
            let linked = match last {
                None => true,
                Some((h, _, hash)) => e.meta.height == h + 1 && e.meta.prev == hash,
            };
            let genesis_ok = e.meta.height > 0 || e.meta.prev == ZERO_HASH;
            if e.meta.height >= size || r.record.timestamp_ms >= cutoff_ms || !linked || !genesis_ok
            {
                return Ok(last);
            }
            last = Some((e.meta.height, r.offset, e.entry_hash));
        }
    }
    Ok(last)
}

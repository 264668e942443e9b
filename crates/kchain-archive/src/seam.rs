//! The log after its archive: once retention deleted a chain's archived prefix from the log,
//! the log's records are verified from where the archive ends, as one chain from genesis.
//!
//! ```text
//!  archive (verified: records, tiles, root, checkpoint)   heights 0 .. n-1
//!                              ▲ entry hash at h-1, and at n-1 (the tip to reach)
//!  log: start offset ──► first record, height h ──► ChainVerifier::resume(after h-1)
//!                                                  ──► every record to the end ──► Summary
//! ```
//!
//! The first record must link to the archived entry before it (a gap or another chain at
//! the seam is a finding at its offset), and the log must reach the archive's last entry
//! and agree with it, so the records the log and the archive both hold are the same. A log
//! that still holds genesis is verified from genesis, against the archive's tip all the same.

use std::time::{Duration, Instant};

use kchain_core::{observe, ChainContext, ChainId, ChainVerifier, Link, Summary, Trust, ZERO_HASH};
use kchain_log::Log;

use crate::archived::entry_at;
use crate::bundle::record_entry;
use crate::error::ArchiveError;
use crate::path::chain_prefix;
use crate::store::Store;

/// The verdict on the part of a chain that its log holds, verified after its archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogVerified {
    pub partition: u32,
    /// The log's start offset (above 0 when retention deleted records).
    pub start_offset: u64,
    pub end_offset: u64,
    /// The height of the archived entry that the log's first record was held against, when
    /// the log does not start at genesis.
    pub resumed_after: Option<u64>,
    /// The chain verifier's summary: entries counted from genesis, the first finding.
    pub summary: Summary,
}

impl LogVerified {
    /// True when nothing was found.
    pub fn ok(&self) -> bool {
        self.summary.ok()
    }
}

/// Verifies `topic`/`partition` on `log` as the continuation of its archive in `store`,
/// whose verified checkpoint has `size` entries. `trust` gives the writers' keys and the
/// pins (a pinned tip beyond the archive is still required).
pub fn verify_log_after(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    trust: &Trust,
    store: &Store,
    size: u64,
) -> Result<LogVerified, ArchiveError> {
    let prefix = chain_prefix(topic, partition);
    let chain = ChainId::for_partition(topic, partition);
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let mut expect = kchain_topic::expectations(trust, topic, partition);
    let archive_tip = match size {
        0 => None,
        n => entry_at(store, &prefix, n, n - 1)?.map(|h| (n - 1, h)),
    };
    if expect.tip.is_none_or(|(h, _)| h < size) {
        expect.tip = archive_tip.or(expect.tip);
    }
    let first = first_height(log, topic, partition, chain, start, end)?;
    // Where the chain resumes: after the archived entry before the log's first record, or
    // after the archive's last entry when that record is beyond it or unreadable (the
    // verifier then reports the gap or the record at its offset).
    let after = match first {
        Some(0) => None,
        Some(h) if h <= size => Some(h - 1),
        _ => size.checked_sub(1),
    };
    let mut verifier = match after {
        None => ChainVerifier::new(expect),
        Some(h) => {
            let hash = entry_at(store, &prefix, size, h)?.ok_or_else(|| ArchiveError::Chain {
                chain: prefix.clone(),
                detail: format!("the archive has no entry at height {h}"),
            })?;
            ChainVerifier::resume(
                expect,
                Link {
                    offset: start.saturating_sub(1),
                    height: h,
                    hash,
                    prev: ZERO_HASH,
                    signed: true,
                },
            )
        }
    };
    let ctx = ChainContext {
        topic,
        chain,
        trust,
    };
    read_into(log, topic, partition, (start, end), &ctx, &mut verifier)?;
    Ok(LogVerified {
        partition,
        start_offset: start,
        end_offset: end,
        resumed_after: after,
        summary: verifier.finish(),
    })
}

/// The height the log's first stored record claims (`None` when the log is empty or the
/// record has no readable chain headers).
fn first_height(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    chain: ChainId,
    start: u64,
    end: u64,
) -> Result<Option<u64>, ArchiveError> {
    if start >= end {
        return Ok(None);
    }
    let mut reader = log.reader(topic, partition, start)?;
    let batch = reader.poll(1, Duration::from_secs(10))?;
    Ok(batch
        .first()
        .and_then(|r| record_entry(chain, &r.record, &mut Vec::new()).ok())
        .map(|e| e.meta.height))
}

/// Feeds offsets `start..end` of the log to `verifier`, in order, until a finding.
fn read_into(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    (start, end): (u64, u64),
    ctx: &ChainContext<'_>,
    verifier: &mut ChainVerifier,
) -> Result<(), ArchiveError> {
    if start >= end {
        return Ok(());
    }
    let mut reader = log.reader(topic, partition, start)?;
    let mut scratch = Vec::new();
    let mut last_progress = Instant::now();
    while reader.position() < end && verifier.finding().is_none() {
        let batch = reader.poll(4096, Duration::from_millis(200))?;
        if batch.is_empty() {
            if last_progress.elapsed() > kchain_topic::stall_timeout() {
                return Err(ArchiveError::Chain {
                    chain: format!("{topic}/{partition}"),
                    detail: format!(
                        "reading stalled at offset {} below the end offset {end}",
                        reader.position()
                    ),
                });
            }
            continue;
        }
        last_progress = Instant::now();
        for r in batch.iter().take_while(|r| r.offset < end) {
            let rec = &r.record;
            let headers = rec
                .headers
                .iter()
                .map(|h| (h.name.as_str(), h.value.as_slice()));
            verifier.push(observe(
                ctx,
                r.offset,
                rec.key.as_deref(),
                rec.value.as_deref(),
                headers,
                rec.timestamp_ms,
                &mut scratch,
            ));
        }
    }
    Ok(())
}

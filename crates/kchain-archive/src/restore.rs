//! Restoring a topic from its archive: every chain's records appended again, in height
//! order, exactly as archived (key, value, headers with the chain headers, timestamp), so
//! the restored chain is the archived one entry for entry and verifies against the same
//! checkpoints.
//!
//! ```text
//!  archive ──► verify_chain (clean, or nothing is written) ──► record bundles in order
//!          ──► an empty topic (created with the archive's partitions when missing)
//! ```
//!
//! A chain keeps its chain name (`<topic>/<partition>` of the topic it was written to) when
//! restored under another topic name: a verifier holds the restored topic to it through the
//! trust file's `[[topic]] name = "<to>", chain = "<topic>"` (`docs/trust.md`).

use kchain_core::TrustFile;
use kchain_log::{Log, LogError, TopicConfig};

use crate::bundle::decode_records;
use crate::check::{archived_partitions, verify_chain};
use crate::error::ArchiveError;
use crate::path::{chain_prefix, records_path, tiles_at};
use crate::store::Store;

/// What restoring did to one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainRestored {
    pub partition: u32,
    /// Records appended (the archive's checkpoint size).
    pub records: u64,
}

/// Restores the chains of `topic` archived in `store` into `to` on `log` (the same name or
/// another). Refuses (an error, nothing written) a topic that holds records, and an archive
/// with any finding.
pub fn restore_topic(
    store: &Store,
    topic: &str,
    to: &str,
    trust: &TrustFile,
    log: &dyn Log,
) -> Result<Vec<ChainRestored>, ArchiveError> {
    let refuse = |detail: String| ArchiveError::Chain {
        chain: to.to_owned(),
        detail,
    };
    let parts = archived_partitions(store, topic)?;
    if parts.is_empty() {
        return Err(refuse(format!("the archive holds no chain of {topic}")));
    }
    let mut sizes = Vec::new();
    for &p in &parts {
        let v = verify_chain(store, topic, p, trust, None)?;
        if let Some(f) = v.findings.first() {
            return Err(refuse(format!(
                "the archive of {topic}/{p} does not verify ({}: {}); nothing restored",
                f.kind.as_str(),
                f.detail
            )));
        }
        sizes.push((p, v.size));
    }
    let partitions = parts.iter().max().map_or(1, |m| m + 1);
    prepare(log, to, partitions)?;
    let mut out = Vec::new();
    for (p, size) in sizes {
        out.push(restore_chain(store, topic, p, size, to, log)?);
    }
    Ok(out)
}

/// Creates `to` with `partitions` partitions, or checks that the existing topic has enough
/// and holds no record at all.
fn prepare(log: &dyn Log, to: &str, partitions: u32) -> Result<(), ArchiveError> {
    let config = TopicConfig {
        partitions,
        retention_ms: None,
    };
    match log.create_topic(to, &config) {
        Ok(()) => return Ok(()),
        Err(LogError::TopicExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let refuse = |detail: String| ArchiveError::Chain {
        chain: to.to_owned(),
        detail,
    };
    let info = log.topic(to)?;
    if info.partitions < partitions {
        return Err(refuse(format!(
            "the topic has {} partition(s), the archive {partitions}; nothing restored",
            info.partitions
        )));
    }
    for p in 0..info.partitions {
        let end = log.end_offset(to, p)?;
        if end > 0 {
            return Err(refuse(format!(
                "partition {p} is not empty (end offset {end}): a restore only fills an \
                 empty topic; nothing restored"
            )));
        }
    }
    Ok(())
}

/// Appends the `size` archived records of one chain, a record bundle per batch.
fn restore_chain(
    store: &Store,
    topic: &str,
    partition: u32,
    size: u64,
    to: &str,
    log: &dyn Log,
) -> Result<ChainRestored, ArchiveError> {
    let prefix = chain_prefix(topic, partition);
    let mut appender = log.appender(to, partition)?;
    for tile in tiles_at(0, size, 0) {
        let path = format!("{prefix}/{}", records_path(tile.index, tile.width));
        let bytes = store.get(&path)?.ok_or_else(|| ArchiveError::Chain {
            chain: prefix.clone(),
            detail: format!("{path} is missing"),
        })?;
        let records = decode_records(&bytes).map_err(|e| ArchiveError::Chain {
            chain: prefix.clone(),
            detail: format!("{path}: {e}"),
        })?;
        appender.append(&records)?;
    }
    appender.flush()?;
    Ok(ChainRestored {
        partition,
        records: size,
    })
}

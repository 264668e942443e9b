//! Verifying whole partitions and topics: in parallel across partitions, and within a
//! partition, reading and hash recomputation in parallel while links are checked in order.
//!
//! ```text
//!  topic: partitions to verify (the trust file's pins count) ──► in parallel, per partition:
//!    end offset ──► serial read, or chunks on several readers (observe.rs) ──► ChainVerifier
//!    ──► at the end, a pending tail waits for its signature (the grace) ──► PartitionReport
//!  ──► TopicReport, with retention and deleted-start warnings
//! ```
//!
//! With the checkpoints known before the pass ([`Known`]), the in-order stage also grows
//! each partition's chain tree ([`ChainTree`]) for the checkpoint check: one read of the
//! log for both.
//!
//! With a keyring ([`crate::TopicVerifier::keyring`]), the workers also try to decrypt every
//! encrypted record, and the in-order stage tallies the outcomes beside the chain's.

use std::collections::HashMap;
use std::time::Duration;

use kchain_core::{
    ChainContext, ChainId, ChainVerifier, Finding, FindingKind, Keyring, Summary, Trust,
};
use kchain_log::{Log, LogError};
use rayon::prelude::*;

use crate::checkpoints::{ChainTree, Known};
use crate::decrypt::{Decrypting, EncryptionSummary};
use crate::error::TopicError;
use crate::observe::{
    corrupt_or, observe_next, observe_view, ChunkRange, ObserveCtx, Pairs, Tally,
};
use crate::report::{PartitionReport, TopicReport};
use crate::scan::expectations;

/// How to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Records read and hashed per step.
    pub chunk: usize,
    /// Verify the records below this offset instead of those below the partition's end
    /// offset when verification begins (for a reader that knows where a chain ends, or a
    /// broker whose reported end offset cannot be trusted).
    pub until: Option<u64>,
    /// How long to wait, by this process's clock, for the signature of records read at the
    /// end that no signature covers yet, before calling them `unsigned` (docs/pending.md).
    pub grace: Duration,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            threads: 0,
            chunk: 16384,
            until: None,
            grace: crate::reader::DEFAULT_GRACE,
        }
    }
}

/// Verifies `partitions` of `topic` (all of them when `None`) against `trust`, with
/// `keyring` also checking that every encrypted record decrypts. The engine under
/// [`crate::TopicVerifier`]. With `grow`, also grows each partition's chain tree at the
/// sizes its known checkpoints name, returned by partition.
pub(crate) fn verify_chains(
    log: &dyn Log,
    topic: &str,
    partitions: Option<&[u32]>,
    (trust, keyring): (&Trust, Option<&Keyring>),
    options: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
    grow: Option<&Known<'_>>,
) -> Result<(TopicReport, HashMap<u32, ChainTree>), TopicError> {
    let (info, parts) = partitions_to_verify(log, topic, partitions, trust)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|e| TopicError::Invalid(format!("cannot start verifier threads: {e}")))?;
    // Partitions run in parallel; a topic with fewer partitions than threads also splits
    // each partition among the spare threads.
    // Splitting a partition into chunks pays where opening a reader is cheap (the embedded
    // log); a Kafka consumer per chunk costs more than it saves (librdkafka already fetches
    // on threads of its own), measured with `kchain bench -b`.
    let threads = pool.current_num_threads();
    let per_partition = if log.cheap_readers() {
        (threads / parts.len().max(1)).max(1)
    } else {
        1
    };
    let reports = pool.install(|| {
        parts
            .par_iter()
            .map(|&p| {
                if p >= info.partitions {
                    return Ok((missing_partition(p, info.partitions), None));
                }
                let part = Partition {
                    log,
                    topic,
                    partition: p,
                    trust,
                    keyring,
                };
                let tree = grow.map(|k| k.sizes(p)).transpose()?.map(ChainTree::new);
                part.verify(options, per_partition, progress, tree)
            })
            .collect::<Result<Vec<_>, TopicError>>()
    })?;
    let mut trees = HashMap::new();
    let reports: Vec<PartitionReport> = (reports.into_iter())
        .map(|(r, tree)| {
            if let Some(t) = tree {
                trees.insert(r.partition, t);
            }
            r
        })
        .collect();
    let mut warnings = retention_warnings(&info.settings);
    warnings.extend(reports.iter().filter_map(|r| deleted_start(topic, r)));
    let report = TopicReport {
        topic: topic.to_owned(),
        partitions: reports,
        warnings,
    };
    Ok((report, trees))
}

/// The topic's metadata as the log tells it, and the partitions to verify: `partitions`, or
/// all. The log's metadata is hostile: a partition the trust file pins (by count, or by a
/// pin of its own) is verified, and reported missing, whatever the log says it has. A pinned
/// topic that the log lacks altogether is all missing partitions, not an error.
fn partitions_to_verify(
    log: &dyn Log,
    topic: &str,
    partitions: Option<&[u32]>,
    trust: &Trust,
) -> Result<(kchain_log::TopicInfo, Vec<u32>), TopicError> {
    let pinned = trust.pinned_partitions(topic);
    let info = match log.topic(topic) {
        Err(LogError::NoSuchTopic(_)) if pinned.is_some() => kchain_log::TopicInfo {
            name: topic.to_owned(),
            partitions: 0,
            settings: Vec::new(),
        },
        other => other?,
    };
    let known = info.partitions.max(pinned.unwrap_or(0));
    let parts = match partitions {
        Some(ps) => {
            for &p in ps {
                if p >= known {
                    return Err(LogError::NoSuchPartition {
                        topic: topic.to_owned(),
                        partition: p,
                        partitions: info.partitions,
                    }
                    .into());
                }
            }
            ps.to_vec()
        }
        None => (0..known).collect(),
    };
    Ok((info, parts))
}

/// The warning for a partition whose first records were deleted, if they were.
fn deleted_start(topic: &str, r: &PartitionReport) -> Option<String> {
    (r.start_offset > 0 && r.summary.entries > 0).then(|| {
        format!(
            "{topic}/{}: the partition starts at offset {}: the records below it were \
             deleted, and only a pinned genesis can tell whether this chain is the original",
            r.partition, r.start_offset
        )
    })
}

/// The report of a partition that the trust file pins and the log does not have.
fn missing_partition(partition: u32, partitions: u32) -> PartitionReport {
    PartitionReport {
        partition,
        start_offset: 0,
        end_offset: 0,
        summary: Summary {
            entries: 0,
            tip: None,
            pending: 0,
            pending_from: None,
            finding: Some(Finding {
                offset: 0,
                height: 0,
                kind: FindingKind::PartitionMissing,
                detail: format!(
                    "the trust file pins this partition, but the log reports only {partitions} \
                     partition(s): a partition was hidden or deleted"
                ),
            }),
        },
        encryption: None,
    }
}

fn retention_warnings(settings: &[(String, String)]) -> Vec<String> {
    let mut w = Vec::new();
    for (k, v) in settings {
        match (k.as_str(), v.as_str()) {
            ("retention.ms", v) if v != "-1" => w.push(format!(
                "retention.ms={v}: the log may delete old records, including genesis; chained \
                 topics want retention.ms=-1"
            )),
            ("retention.bytes", v) if v != "-1" => w.push(format!(
                "retention.bytes={v}: the log may delete old records, including genesis"
            )),
            ("cleanup.policy", v) if v.contains("compact") => w.push(format!(
                "cleanup.policy={v}: compaction removes records and breaks the chain"
            )),
            _ => {}
        }
    }
    w
}

/// Verifies one partition from its start offset to the end offset it has now, with up to
/// `workers` threads (at least one).
///
/// With one worker it reads and hashes in order. With more, each worker takes the next chunk
/// of offsets, reads it with its own reader and recomputes its hashes; the calling thread
/// feeds the chunks' observations to the verifier in order. Workers run at most two chunks
/// per worker ahead of the verifier, so memory stays bounded however long the partition is.
pub fn verify_partition(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    trust: &Trust,
    options: VerifyOptions,
    workers: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PartitionReport, TopicError> {
    let part = Partition {
        log,
        topic,
        partition,
        trust,
        keyring: None,
    };
    Ok(part.verify(options, workers, progress, None)?.0)
}

/// One partition to verify, and the keyring to decrypt it with, if any.
struct Partition<'a> {
    log: &'a dyn Log,
    topic: &'a str,
    partition: u32,
    trust: &'a Trust,
    keyring: Option<&'a Keyring>,
}

impl Partition<'_> {
    /// The partition's report, and `tree` grown by the pass.
    fn verify(
        &self,
        options: VerifyOptions,
        workers: usize,
        progress: &(dyn Fn(u64) + Sync),
        tree: Option<ChainTree>,
    ) -> Result<(PartitionReport, Option<ChainTree>), TopicError> {
        let (log, topic, partition) = (self.log, self.topic, self.partition);
        let start = log.start_offset(topic, partition)?;
        let end = self.end_offset(options)?;
        let (end, end_known) = (end.unwrap_or(u64::MAX), end.is_some());
        // The chain's identity: its chain name (the topic name unless the trust file names
        // another, for a topic restored or mirrored under a new name), not where it is read.
        let name = self.trust.chain_name(topic);
        let chain = ChainId::for_partition(name, partition);
        let ctx = ChainContext {
            topic: name,
            chain,
            trust: self.trust,
        };
        let decrypting = self.keyring.map(|keyring| Decrypting {
            keyring,
            chain,
            partition,
        });
        let ctx = (&ctx, decrypting.as_ref());
        let mut verifier = ChainVerifier::new(expectations(self.trust, topic, partition));
        let mut tally = Tally {
            summary: self.keyring.map(|_| EncryptionSummary::default()),
            tree,
        };
        let chunk = options.chunk.max(1) as u64;
        let corrupt = if workers <= 1 || !end_known || end - start <= chunk {
            let range = (start, end, chunk);
            match self.verify_serial(ctx, range, &mut verifier, &mut tally, progress)? {
                Serial::Read(corrupt) => corrupt,
                Serial::Unreadable(c) => {
                    let report = self.report(start, end, verifier.finish(), tally, Some(c));
                    return Ok((report, None));
                }
            }
        } else {
            let range = ChunkRange {
                log,
                topic,
                partition,
                start,
                end,
                chunk,
            };
            range.verify_parallel(ctx, &mut verifier, &mut tally, workers, progress)?
        };
        let summary = if corrupt.is_some() {
            // Nothing can be read past a corrupt batch: the records before it that no
            // signature covers are pending, and the corruption is the finding.
            verifier.finish_pending()
        } else {
            self.finish_with_grace(ctx, verifier, &mut tally, options.grace)?
        };
        let tree = tally.tree.take();
        Ok((self.report(start, end, summary, tally, corrupt), tree))
    }

    /// The offset to verify up to: `options.until`, else the partition's end offset now;
    /// `None` when the log cannot say where the partition ends because its stored bytes do
    /// not check (it is then read in order until the reader meets the corrupt batch).
    fn end_offset(&self, options: VerifyOptions) -> Result<Option<u64>, TopicError> {
        match options
            .until
            .map(Ok)
            .unwrap_or_else(|| self.log.end_offset(self.topic, self.partition))
        {
            Ok(end) => Ok(Some(end)),
            Err(LogError::Corruption { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads and observes offsets `start..end` in order, `chunk` at a time, with one reader,
    /// until the end, a finding, or a corrupt batch.
    fn verify_serial(
        &self,
        ctx: ObserveCtx<'_, '_>,
        (start, end, chunk): (u64, u64, u64),
        verifier: &mut ChainVerifier,
        tally: &mut Tally,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Serial, TopicError> {
        let mut reader = match self.log.reader(self.topic, self.partition, start) {
            Err(e) => return Ok(Serial::Unreadable(corrupt_or(e.into(), start)?)),
            Ok(r) => r,
        };
        let mut pairs = Pairs::new();
        loop {
            let n = match observe_next(
                reader.as_mut(),
                end,
                chunk as usize,
                ctx,
                &mut pairs,
                &mut |o, c| tally.push(verifier, o, c),
            ) {
                Ok(n) => n,
                Err(e) => return Ok(Serial::Read(Some(corrupt_or(e, reader.position())?))),
            };
            if n == 0 {
                return Ok(Serial::Read(None));
            }
            progress(n as u64);
            if verifier.finding().is_some() {
                return Ok(Serial::Read(None));
            }
        }
    }

    /// The summary of a partition read to its end: a batch still being written at the end is
    /// pending, so its signature is waited for, for at most `grace`, before it is unsigned.
    fn finish_with_grace(
        &self,
        ctx: ObserveCtx<'_, '_>,
        verifier: ChainVerifier,
        tally: &mut Tally,
        grace: Duration,
    ) -> Result<Summary, TopicError> {
        let mut scratch = Vec::new();
        crate::reader::finish_with_grace(
            self.log,
            self.topic,
            self.partition,
            verifier,
            grace,
            &mut |v, r| {
                let (o, checked) = observe_view(ctx, r, &mut scratch);
                tally.push(v, o, checked);
            },
        )
    }

    /// The partition's report; a corrupt batch becomes the finding unless the chain had an
    /// earlier one.
    fn report(
        &self,
        start: u64,
        end: u64,
        mut summary: Summary,
        tally: Tally,
        corrupt: Option<(u64, LogError)>,
    ) -> PartitionReport {
        // An end the log could not tell is where reading stopped.
        let end = match (end, &corrupt) {
            (u64::MAX, Some((offset, _))) => *offset,
            (u64::MAX, None) => start + summary.entries + summary.pending,
            _ => end,
        };
        if let (None, Some((offset, e))) = (&summary.finding, corrupt) {
            summary.finding = Some(Finding {
                offset,
                height: summary.tip.map_or(0, |t| t.height + 1) + summary.pending,
                kind: FindingKind::Corrupt,
                detail: e.to_string(),
            });
        }
        PartitionReport {
            partition: self.partition,
            start_offset: start,
            end_offset: end,
            summary,
            encryption: tally.summary,
        }
    }
}

/// How a serial read of a partition ended: read up to its end, a finding or a corrupt batch
/// (`Read`, with the corrupt batch's offset and error), or no reader could be opened at all.
enum Serial {
    Read(Option<(u64, LogError)>),
    Unreadable((u64, LogError)),
}

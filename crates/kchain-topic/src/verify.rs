//! Verifying whole partitions and topics: in parallel across partitions, and within a
//! partition, reading and hash recomputation in parallel while links are checked in order.
//!
//! ```text
//!  worker 1: read chunk 0, observe ─┐
//!  worker 2: read chunk 1, observe ─┼─► reorder ─► ChainVerifier::push (in order)
//!  worker 1: read chunk 2, observe ─┘     (at most 2 chunks per worker ahead)
//! ```
//!
//! With a keyring ([`crate::TopicVerifier::keyring`]), the workers also try to decrypt every
//! encrypted record, and the in-order stage tallies the outcomes beside the chain's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use kchain_core::{
    ChainContext, ChainId, ChainVerifier, Finding, FindingKind, Keyring, Observation, Summary,
    Trust,
};
use kchain_log::{Log, LogError, Reader};
use rayon::prelude::*;

use crate::decrypt::{Checked, Decrypting, EncryptionSummary};
use crate::error::TopicError;
use crate::report::{PartitionReport, TopicReport};
use crate::scan::{expectations, STALL};

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
/// [`crate::TopicVerifier`].
pub(crate) fn verify_chains(
    log: &dyn Log,
    topic: &str,
    partitions: Option<&[u32]>,
    trust: &Trust,
    keyring: Option<&Keyring>,
    options: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TopicReport, TopicError> {
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
                    return Ok(missing_partition(p, info.partitions));
                }
                let part = Partition {
                    log,
                    topic,
                    partition: p,
                    trust,
                    keyring,
                };
                part.verify(options, per_partition, progress)
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    let mut warnings = retention_warnings(&info.settings);
    warnings.extend(reports.iter().filter_map(|r| deleted_start(topic, r)));
    Ok(TopicReport {
        topic: topic.to_owned(),
        partitions: reports,
        warnings,
    })
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
    part.verify(options, workers, progress)
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
    fn verify(
        &self,
        options: VerifyOptions,
        workers: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<PartitionReport, TopicError> {
        let (log, topic, partition) = (self.log, self.topic, self.partition);
        let start = log.start_offset(topic, partition)?;
        let end = self.end_offset(options)?;
        let (end, end_known) = (end.unwrap_or(u64::MAX), end.is_some());
        let chain = ChainId::for_partition(topic, partition);
        let ctx = ChainContext {
            topic,
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
        };
        let chunk = options.chunk.max(1) as u64;
        let corrupt = if workers <= 1 || !end_known || end - start <= chunk {
            let range = (start, end, chunk);
            match self.verify_serial(ctx, range, &mut verifier, &mut tally, progress)? {
                Serial::Read(corrupt) => corrupt,
                Serial::Unreadable(c) => {
                    return Ok(self.report(start, end, verifier.finish(), tally, Some(c)));
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
        Ok(self.report(start, end, summary, tally, corrupt))
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
        let mut scratch = Vec::new();
        loop {
            let n = match observe_next(
                reader.as_mut(),
                end,
                chunk as usize,
                ctx,
                &mut scratch,
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

/// Stored bytes that fail the log's integrity checks are evidence about the partition (a
/// finding at `offset`, where reading stopped), not a failure of the verifier; any other
/// error is returned as it is.
fn corrupt_or(e: TopicError, offset: u64) -> Result<(u64, LogError), TopicError> {
    match e {
        TopicError::Log(e @ LogError::Corruption { .. }) => Ok((offset, e)),
        e => Err(e),
    }
}

/// Decryption outcomes, tallied in log order beside the chain verifier. A record counts when
/// the verifier had no finding yet as it took the record, so the tally does not depend on
/// how the partition was cut into chunks.
struct Tally {
    summary: Option<EncryptionSummary>,
}

impl Tally {
    fn push(&mut self, verifier: &mut ChainVerifier, o: Observation, checked: Option<Checked>) {
        if let (Some(s), Some(c), Observation::Entry(e)) = (&mut self.summary, checked, &o) {
            if verifier.finding().is_none() {
                s.add(e.offset, e.height, c);
            }
        }
        verifier.push(o);
    }
}

/// A chunk's observations, and where it stopped at a corrupt batch, if it did.
type Observed = (Vec<(Observation, Option<Checked>)>, Option<(u64, LogError)>);

/// What observing a record needs: the chain, and the keyring to decrypt with, if any.
type ObserveCtx<'c, 'a> = (&'c ChainContext<'a>, Option<&'c Decrypting<'a>>);

/// A partition's offsets `start..end`, cut into chunks of `chunk` offsets.
struct ChunkRange<'a> {
    log: &'a dyn Log,
    topic: &'a str,
    partition: u32,
    start: u64,
    end: u64,
    chunk: u64,
}

impl ChunkRange<'_> {
    /// Reads chunk `j` and observes its records, up to a corrupt batch if there is one (its
    /// offset and error come second).
    fn observe_chunk(
        &self,
        ctx: ObserveCtx<'_, '_>,
        j: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Observed, TopicError> {
        let from = self.start + j * self.chunk;
        let to = (from + self.chunk).min(self.end);
        let mut reader = match self.log.reader(self.topic, self.partition, from) {
            Ok(r) => r,
            Err(e) => return Ok((Vec::new(), Some(corrupt_or(e.into(), from)?))),
        };
        let mut out = Vec::with_capacity((to - from) as usize);
        loop {
            match observe_next(
                reader.as_mut(),
                to,
                self.chunk as usize,
                ctx,
                scratch,
                &mut |o, c| out.push((o, c)),
            ) {
                Ok(0) => return Ok((out, None)),
                Ok(_) => {}
                Err(e) => {
                    let corrupt = corrupt_or(e, reader.position())?;
                    return Ok((out, Some(corrupt)));
                }
            }
        }
    }

    fn verify_parallel(
        &self,
        ctx: ObserveCtx<'_, '_>,
        verifier: &mut ChainVerifier,
        tally: &mut Tally,
        workers: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Option<(u64, LogError)>, TopicError> {
        let chunks = (self.end - self.start).div_ceil(self.chunk);
        let ahead = 2 * workers as u64;
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        // The chunk the verifier needs next; workers wait while they are `ahead` past it.
        let needed = (Mutex::new(0u64), Condvar::new());
        let (tx, rx) = sync_channel::<(u64, Result<Observed, TopicError>)>(ahead as usize);
        std::thread::scope(|s| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop, needed) = (&next, &stop, &needed);
                s.spawn(move || {
                    let mut scratch = Vec::new();
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j >= chunks || stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let mut n = needed.0.lock().expect("no panics while held");
                        while j >= *n + ahead && !stop.load(Ordering::Relaxed) {
                            n = needed.1.wait(n).expect("no panics while held");
                        }
                        drop(n);
                        let res = self.observe_chunk(ctx, j, &mut scratch);
                        if tx.send((j, res)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let result = (|| {
                let mut held = BTreeMap::new();
                let mut want = 0u64;
                for (j, res) in rx.iter() {
                    held.insert(j, res);
                    while let Some(res) = held.remove(&want) {
                        let (obs, corrupt) = res?;
                        let n = obs.len() as u64;
                        for (o, c) in obs {
                            tally.push(verifier, o, c);
                        }
                        progress(n);
                        if corrupt.is_some() && verifier.finding().is_none() {
                            return Ok(corrupt);
                        }
                        want += 1;
                        *needed.0.lock().expect("no panics while held") = want;
                        needed.1.notify_all();
                        if verifier.finding().is_some() {
                            return Ok(None);
                        }
                    }
                }
                Ok(None)
            })();
            stop.store(true, Ordering::Relaxed);
            needed.1.notify_all();
            drop(rx);
            result
        })
    }
}

/// Observes one record lent by a reader and, with a keyring, checks that it decrypts.
fn observe_view(
    (ctx, decrypting): ObserveCtx<'_, '_>,
    v: &kchain_log::RecordView<'_>,
    scratch: &mut Vec<u8>,
) -> (Observation, Option<Checked>) {
    let o = kchain_core::observe(
        ctx,
        v.offset,
        v.key,
        v.value,
        v.headers.iter(),
        v.timestamp_ms,
        scratch,
    );
    let checked = match (&o, decrypting) {
        (Observation::Entry(e), Some(d)) => Some(d.check(e.height, v.value, v.headers.iter())),
        _ => None,
    };
    (o, checked)
}

/// Observes the next records of `reader` below offset `end` (at most `max`), lending them
/// from the backend without copies, and hands each observation to `sink`. Returns how many
/// it observed: 0 once the reader is at `end`. Waits for a slow backend, but not forever.
/// With a keyring, each observation comes with the record's decryption outcome.
fn observe_next(
    reader: &mut dyn Reader,
    end: u64,
    max: usize,
    (ctx, decrypting): ObserveCtx<'_, '_>,
    scratch: &mut Vec<u8>,
    sink: &mut dyn FnMut(Observation, Option<Checked>),
) -> Result<usize, TopicError> {
    let since = Instant::now();
    while reader.position() < end {
        let want = (end - reader.position()).min(max.max(1) as u64) as usize;
        let mut n = 0;
        reader.poll_visit(want, Duration::from_millis(500), &mut |v| {
            if v.offset < end {
                let (o, checked) = observe_view((ctx, decrypting), v, scratch);
                sink(o, checked);
                n += 1;
            }
        })?;
        if n > 0 {
            return Ok(n);
        }
        if since.elapsed() > STALL {
            return Err(TopicError::Invalid(format!(
                "reading stalled at offset {} (end offset {end})",
                reader.position()
            )));
        }
    }
    Ok(0)
}

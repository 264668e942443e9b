//! Verifying whole partitions and topics: in parallel across partitions, and within a
//! partition, hash recomputation in parallel while links are checked in order.
//!
//! ```text
//!  reader thread ──chunks──► observe (rayon, parallel) ──► ChainVerifier (in order)
//! ```

use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use kchain_core::{
    ChainContext, ChainId, ChainVerifier, Expectations, Observation, Summary, Trust,
};
use kchain_log::{Log, LogError, Reader, StoredRecord};
use rayon::prelude::*;

use crate::error::TopicError;
use crate::writer::header_pairs;

/// How to verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Records read and hashed per step.
    pub chunk: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            threads: 0,
            chunk: 16384,
        }
    }
}

/// The verification result of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReport {
    pub partition: u32,
    pub start_offset: u64,
    /// The end offset when verification began; records appended later are not covered.
    pub end_offset: u64,
    pub summary: Summary,
}

/// The verification result of a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicReport {
    pub topic: String,
    pub partitions: Vec<PartitionReport>,
    /// Things a person should know that are not findings (e.g. retention settings).
    pub warnings: Vec<String>,
}

impl TopicReport {
    /// True when no partition has a finding.
    pub fn ok(&self) -> bool {
        self.partitions.iter().all(|p| p.summary.ok())
    }
}

/// Verifies `partitions` of `topic` (all of them when `None`) against `trust`. `progress` is
/// called with the number of records each step verified.
pub fn verify_topic(
    log: &dyn Log,
    topic: &str,
    partitions: Option<&[u32]>,
    trust: &Trust,
    options: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<TopicReport, TopicError> {
    let info = log.topic(topic)?;
    let parts: Vec<u32> = match partitions {
        Some(ps) => {
            for &p in ps {
                if p >= info.partitions {
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
        None => (0..info.partitions).collect(),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|e| TopicError::Invalid(format!("cannot start verifier threads: {e}")))?;
    let reports = pool.install(|| {
        parts
            .par_iter()
            .map(|&p| verify_partition(log, topic, p, trust, options, progress))
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok(TopicReport {
        topic: topic.to_owned(),
        partitions: reports,
        warnings: retention_warnings(&info.settings),
    })
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

/// Verifies one partition from its start offset to the end offset it has now. Runs inside
/// the current rayon pool: with more than one thread, reading overlaps hashing.
pub fn verify_partition(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    trust: &Trust,
    options: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PartitionReport, TopicError> {
    let start = log.start_offset(topic, partition)?;
    let end = log.end_offset(topic, partition)?;
    let reader = log.reader(topic, partition, start)?;
    let expect = expectations(trust, topic, partition);
    let ctx = ChainContext {
        topic,
        chain: ChainId::for_partition(topic, partition),
        trust,
    };
    let mut verifier = ChainVerifier::new(expect);
    let chunk = options.chunk.max(1);
    let mut step = |recs: Vec<StoredRecord>| -> bool {
        let n = recs.len() as u64;
        let obs: Vec<Observation> = recs
            .par_iter()
            .with_min_len(256)
            .map_init(Vec::new, |scratch, r| observe_record(&ctx, r, scratch))
            .collect();
        for o in obs {
            verifier.push(o);
        }
        progress(n);
        verifier.finding().is_none()
    };
    if rayon::current_num_threads() > 1 {
        std::thread::scope(|s| -> Result<(), TopicError> {
            let (tx, rx) = sync_channel(2);
            let handle = s.spawn(move || {
                let mut chunks = Chunks::new(reader, end, chunk);
                while let Some(c) = chunks.next_chunk().transpose() {
                    if tx.send(c).is_err() {
                        break;
                    }
                }
            });
            for c in rx {
                if !step(c?) {
                    break;
                }
            }
            handle.join().expect("reader thread does not panic");
            Ok(())
        })?;
    } else {
        let mut chunks = Chunks::new(reader, end, chunk);
        while let Some(c) = chunks.next_chunk()? {
            if !step(c) {
                break;
            }
        }
    }
    Ok(PartitionReport {
        partition,
        start_offset: start,
        end_offset: end,
        summary: verifier.finish(),
    })
}

/// The anchors the trust file holds for a partition.
pub fn expectations(trust: &Trust, topic: &str, partition: u32) -> Expectations {
    trust
        .pin(topic, partition)
        .map_or_else(Expectations::default, |p| Expectations {
            genesis: p.genesis,
            tip: p.tip,
        })
}

/// Observes one stored record.
pub fn observe_record(
    ctx: &ChainContext<'_>,
    r: &StoredRecord,
    scratch: &mut Vec<u8>,
) -> Observation {
    let rec = &r.record;
    kchain_core::observe(
        ctx,
        r.offset,
        rec.key.as_deref(),
        rec.value.as_deref(),
        header_pairs(&rec.headers),
        rec.timestamp_ms,
        scratch,
    )
}

/// Reads a partition in chunks up to a fixed end offset, waiting for a slow backend but not
/// forever.
pub(crate) struct Chunks {
    reader: Box<dyn Reader>,
    end: u64,
    chunk: usize,
}

const STALL: Duration = Duration::from_secs(30);

impl Chunks {
    pub(crate) fn new(reader: Box<dyn Reader>, end: u64, chunk: usize) -> Self {
        Chunks { reader, end, chunk }
    }

    pub(crate) fn next_chunk(&mut self) -> Result<Option<Vec<StoredRecord>>, TopicError> {
        let since = Instant::now();
        while self.reader.position() < self.end {
            let want = (self.end - self.reader.position()).min(self.chunk as u64) as usize;
            let mut recs = self.reader.poll(want, Duration::from_millis(500))?;
            recs.retain(|r| r.offset < self.end);
            if !recs.is_empty() {
                return Ok(Some(recs));
            }
            if since.elapsed() > STALL {
                return Err(TopicError::Invalid(format!(
                    "reading stalled at offset {} (end offset {})",
                    self.reader.position(),
                    self.end
                )));
            }
        }
        Ok(None)
    }
}

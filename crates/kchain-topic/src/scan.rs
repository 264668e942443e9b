//! Reading a partition's chain back in order: the shared first step of every reader of a
//! chained topic that is not the streaming verifier (checkpoints, proofs, witnesses, the
//! writer resuming its tree).
//!
//! ```text
//!  Log::reader ──► Chunks (fixed end offset, bounded wait) ──► observe_record
//!      ──► read_chain: heights contiguous from 0, each links to the one before ──► visit
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kchain_core::{
    chain_leaf, ChainContext, ChainId, Expectations, Hash, Observation, PairObserver, Trust,
};
use kchain_log::{Log, Reader, StoredRecord};

use crate::error::TopicError;
use crate::mapping::header_pairs;

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
pub(crate) fn observe_record(
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

/// Observes stored records in order, two at a time ([`PairObserver`]): the observations
/// [`observe_record`] gives one by one.
pub(crate) fn observe_records(
    ctx: &ChainContext<'_>,
    recs: &[StoredRecord],
    pairs: &mut PairObserver<()>,
) -> Vec<Observation> {
    let mut out = Vec::with_capacity(recs.len());
    let mut sink = |o, ()| out.push(o);
    for r in recs {
        let rec = &r.record;
        let (key, value) = (rec.key.as_deref(), rec.value.as_deref());
        let headers = header_pairs(&rec.headers);
        let ts = rec.timestamp_ms;
        pairs.push(ctx, r.offset, key, value, headers, ts, |_| (), &mut sink);
    }
    pairs.flush(ctx, &mut sink);
    out
}

/// Reads a partition in chunks up to a fixed end offset, waiting for a slow backend but not
/// forever.
pub(crate) struct Chunks {
    reader: Box<dyn Reader>,
    end: u64,
    chunk: usize,
}

/// How long a read waits for the next record below the end offset before it fails with
/// "reading stalled" (default 30 s; [`set_stall_timeout`]).
static STALL_MS: AtomicU64 = AtomicU64::new(30_000);

/// Sets how long every read of this process waits for a record below the end offset before
/// it fails ("reading stalled"): a slow broker may need longer, a test less. A process-wide
/// setting because the CLI's `--timeout` applies to every read of the one command it runs.
/// Requires a positive duration (zero is taken as one millisecond).
pub fn set_stall_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    STALL_MS.store(ms, Ordering::Relaxed);
}

/// The current stall timeout (see [`set_stall_timeout`]).
pub fn stall_timeout() -> Duration {
    Duration::from_millis(STALL_MS.load(Ordering::Relaxed))
}

/// The "reading stalled" error of a read that waited [`stall_timeout`] at `position`.
pub(crate) fn stalled(position: u64, end: u64) -> TopicError {
    TopicError::Invalid(format!(
        "reading stalled at offset {position} (end offset {end}): no record within {} s",
        stall_timeout().as_secs_f64()
    ))
}

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
            if since.elapsed() > stall_timeout() {
                return Err(stalled(self.reader.position(), self.end));
            }
        }
        Ok(None)
    }
}
/// Reads the entries at heights `0..count` of a partition in order, checking that heights
/// are contiguous from the partition's start and that each links to the one before, and
/// hands each (height, entry hash, record) to `visit`. A chain that is not intact up to
/// `count` is an error: `kchain verify` says what is wrong with it.
pub(crate) fn read_chain(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    count: u64,
    visit: &mut dyn FnMut(u64, &Hash, &StoredRecord),
) -> Result<(), TopicError> {
    read_chain_named(log, topic, topic, partition, count, visit)
}

/// [`read_chain`] of a topic whose chains are held under the chain name `name` (see
/// `Trust::chain_name`).
pub(crate) fn read_chain_named(
    log: &dyn Log,
    topic: &str,
    name: &str,
    partition: u32,
    count: u64,
    visit: &mut dyn FnMut(u64, &Hash, &StoredRecord),
) -> Result<(), TopicError> {
    if count == 0 {
        return Ok(());
    }
    let start = log.start_offset(topic, partition)?;
    let trust = Trust::default();
    let ctx = ChainContext {
        topic: name,
        chain: ChainId::for_partition(name, partition),
        trust: &trust,
    };
    let mut chunks = Chunks::new(log.reader(topic, partition, start)?, start + count, 4096);
    let mut scratch = Vec::new();
    let mut next = 0u64;
    let mut prev = kchain_core::ZERO_HASH;
    let broken = |offset: u64, why: &str| {
        TopicError::Invalid(format!(
            "{topic}/{partition}: the chain is not intact at offset {offset} ({why}); run \
             `kchain verify {topic}`"
        ))
    };
    while let Some(recs) = chunks.next_chunk()? {
        for r in &recs {
            match observe_record(&ctx, r, &mut scratch) {
                Observation::Entry(o) if o.height == next && o.prev == prev => {
                    visit(o.height, &o.hash, r);
                    prev = o.hash;
                    next += 1;
                }
                Observation::Entry(o) => {
                    return Err(broken(
                        r.offset,
                        &format!("height {} expected {next}", o.height),
                    ))
                }
                Observation::Malformed { error, .. } => {
                    return Err(broken(r.offset, &error.to_string()))
                }
            }
        }
    }
    if next < count {
        return Err(TopicError::Invalid(format!(
            "{topic}/{partition}: the chain has {next} entries, fewer than {count}"
        )));
    }
    Ok(())
}

/// The chain-tree leaves of heights `0..count`.
pub(crate) fn chain_leaves(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    count: u64,
) -> Result<Vec<Hash>, TopicError> {
    let mut leaves = Vec::with_capacity(count as usize);
    read_chain(log, topic, partition, count, &mut |_, h, _| {
        leaves.push(chain_leaf(h))
    })?;
    Ok(leaves)
}

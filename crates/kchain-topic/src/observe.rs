//! Observing a partition's records for the verifier: lent by a reader without copies, in
//! chunks, and with several readers at once, each observation with its decryption outcome
//! when a keyring is given.
//!
//! ```text
//!  worker 1: read chunk 0, observe ─┐   (verify: two records' hashes at once, PairObserver)
//!  worker 2: read chunk 1, observe ─┼─► reorder ─► Tally::push ─► ChainVerifier (in order)
//!  worker 1: read chunk 2, observe ─┘     (at most 2 chunks per worker ahead)
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use kchain_core::{ChainContext, ChainVerifier, Observation, PairObserver};
use kchain_log::{Log, LogError, Reader};

use crate::checkpoints::ChainTree;
use crate::decrypt::{Checked, Decrypting, EncryptionSummary};
use crate::error::TopicError;
use crate::scan::{stall_timeout, stalled};

/// Stored bytes that fail the log's integrity checks are evidence about the partition (a
/// finding at `offset`, where reading stopped), not a failure of the verifier; any other
/// error is returned as it is.
pub(crate) fn corrupt_or(e: TopicError, offset: u64) -> Result<(u64, LogError), TopicError> {
    match e {
        TopicError::Log(e @ LogError::Corruption { .. }) => Ok((offset, e)),
        e => Err(e),
    }
}

/// What is kept in log order beside the chain verifier: decryption outcomes (a record counts
/// when the verifier had no finding yet as it took the record, so the tally does not depend
/// on how the partition was cut into chunks), and the chain tree grown for the checkpoint
/// check, so that it needs no second read of the log.
pub(crate) struct Tally {
    pub(crate) summary: Option<EncryptionSummary>,
    pub(crate) tree: Option<ChainTree>,
}

impl Tally {
    pub(crate) fn push(
        &mut self,
        verifier: &mut ChainVerifier,
        o: Observation,
        checked: Option<Checked>,
    ) {
        if let (Some(s), Some(c), Observation::Entry(e)) = (&mut self.summary, checked, &o) {
            if verifier.finding().is_none() {
                s.add(e.offset, e.height, c);
            }
        }
        if let Some(tree) = &mut self.tree {
            tree.push(&o);
        }
        verifier.push(o);
    }
}

/// A chunk's results (one per record), and where it stopped at a corrupt batch, if it did.
type Observed<T> = (Vec<T>, Option<(u64, LogError)>);

/// What a worker makes of one chunk (its number; the worker's own scratch state second).
type EachChunk<'f, T, S> = dyn Fn(u64, &mut S) -> Result<Observed<T>, TopicError> + Sync + 'f;

/// What observing a record needs: the chain, and the keyring to decrypt with, if any.
pub(crate) type ObserveCtx<'c, 'a> = (&'c ChainContext<'a>, Option<&'c Decrypting<'a>>);

/// What a worker makes of one record lent by a reader (its scratch buffer second).
pub type EachRecord<'f, T> = dyn Fn(&kchain_log::RecordView<'_>, &mut Vec<u8>) -> T + Sync + 'f;

/// A partition's offsets `start..end`, cut into chunks of `chunk` offsets.
pub(crate) struct ChunkRange<'a> {
    pub(crate) log: &'a dyn Log,
    pub(crate) topic: &'a str,
    pub(crate) partition: u32,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) chunk: u64,
}

impl ChunkRange<'_> {
    /// Reads chunk `j`, lending each record to `visit`, up to a corrupt batch if there is
    /// one (its offset and error are returned).
    fn read_chunk(
        &self,
        j: u64,
        visit: &mut dyn FnMut(&kchain_log::RecordView<'_>),
    ) -> Result<Option<(u64, LogError)>, TopicError> {
        let from = self.start + j * self.chunk;
        let to = (from + self.chunk).min(self.end);
        let mut reader = match self.log.reader(self.topic, self.partition, from) {
            Ok(r) => r,
            Err(e) => return Ok(Some(corrupt_or(e.into(), from)?)),
        };
        loop {
            match visit_next(reader.as_mut(), to, self.chunk as usize, visit) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Ok(Some(corrupt_or(e, reader.position())?)),
            }
        }
    }

    /// Reads chunk `j` and maps its records with `each`, up to a corrupt batch if there is
    /// one (its offset and error come second).
    fn observe_chunk<T>(
        &self,
        each: &EachRecord<'_, T>,
        j: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Observed<T>, TopicError> {
        let mut out = Vec::with_capacity(self.chunk as usize);
        let corrupt = self.read_chunk(j, &mut |v| out.push(each(v, scratch)))?;
        Ok((out, corrupt))
    }

    /// Reads chunk `j` and observes its records two at a time, up to a corrupt batch if
    /// there is one (its offset and error come second).
    fn observe_chunk_paired(
        &self,
        ctx: ObserveCtx<'_, '_>,
        j: u64,
        pairs: &mut Pairs,
    ) -> Result<Observed<(Observation, Option<Checked>)>, TopicError> {
        let mut out = Vec::with_capacity(self.chunk as usize);
        let mut sink = |o, c| out.push((o, c));
        let corrupt = self.read_chunk(j, &mut |v| observe_paired(ctx, v, pairs, &mut sink));
        pairs.flush(ctx.0, &mut sink);
        Ok((out, corrupt?))
    }

    pub(crate) fn verify_parallel(
        &self,
        ctx: ObserveCtx<'_, '_>,
        verifier: &mut ChainVerifier,
        tally: &mut Tally,
        workers: usize,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Option<(u64, LogError)>, TopicError> {
        let each = |j, pairs: &mut Pairs| self.observe_chunk_paired(ctx, j, pairs);
        self.map_chunks(&each, workers, &mut |obs| {
            let n = obs.len() as u64;
            for (o, c) in obs {
                tally.push(verifier, o, c);
            }
            progress(n);
            verifier.finding().is_none()
        })
    }

    /// Maps every record with `each` on `workers` threads, a chunk per reader, and hands
    /// each chunk's results to `sink` in log order until it returns false. Returns the
    /// offset and error of a corrupt batch where reading had to stop (after the results
    /// before it were handed on), if there is one and `sink` still wanted more.
    pub(crate) fn map_parallel<T: Send>(
        &self,
        each: &EachRecord<'_, T>,
        workers: usize,
        sink: &mut dyn FnMut(Vec<T>) -> bool,
    ) -> Result<Option<(u64, LogError)>, TopicError> {
        let chunk = |j, scratch: &mut Vec<u8>| self.observe_chunk(each, j, scratch);
        self.map_chunks(&chunk, workers, sink)
    }

    /// Reads and maps chunk after chunk with `chunk` (chunk number, the worker's own
    /// scratch state) on `workers` threads, and hands each chunk's results to `sink` in log
    /// order until it returns false (see [`Self::map_parallel`]).
    fn map_chunks<T: Send, S: Default>(
        &self,
        chunk: &EachChunk<'_, T, S>,
        workers: usize,
        sink: &mut dyn FnMut(Vec<T>) -> bool,
    ) -> Result<Option<(u64, LogError)>, TopicError> {
        let chunks = (self.end.saturating_sub(self.start)).div_ceil(self.chunk);
        let ahead = 2 * workers as u64;
        let next = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        // The chunk the sink needs next; workers wait while they are `ahead` past it.
        let needed = (Mutex::new(0u64), Condvar::new());
        let (tx, rx) = sync_channel::<(u64, Result<Observed<T>, TopicError>)>(ahead as usize);
        std::thread::scope(|s| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop, needed) = (&next, &stop, &needed);
                s.spawn(move || {
                    let mut scratch = S::default();
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
                        let res = chunk(j, &mut scratch);
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
                        let (out, corrupt) = res?;
                        if !sink(out) {
                            return Ok(None);
                        }
                        if corrupt.is_some() {
                            return Ok(corrupt);
                        }
                        want += 1;
                        *needed.0.lock().expect("no panics while held") = want;
                        needed.1.notify_all();
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

/// Reads a partition's offsets `start..end` with `workers` readers at once, `chunk` offsets
/// each, lending every record without copies to `each` on the readers' threads, and hands
/// the results to `sink` in log order, a chunk at a time, until it returns false. This is
/// how `verify` reads a partition; a follower (such as a monitor catching up) uses it to
/// read a backlog at `verify`'s speed. It pays where opening a reader is cheap
/// ([`Log::cheap_readers`]).
///
/// Returns the offset and error of a corrupt batch where reading had to stop, if there was
/// one before the end and `sink` still wanted more; a log that fails otherwise is an error.
#[allow(clippy::too_many_arguments)]
pub fn map_parallel<T: Send>(
    log: &dyn Log,
    topic: &str,
    partition: u32,
    (start, end): (u64, u64),
    chunk: u64,
    workers: usize,
    each: &EachRecord<'_, T>,
    sink: &mut dyn FnMut(Vec<T>) -> bool,
) -> Result<Option<(u64, LogError)>, TopicError> {
    let range = ChunkRange {
        log,
        topic,
        partition,
        start,
        end,
        chunk: chunk.max(1),
    };
    range.map_parallel(each, workers.max(1), sink)
}

/// Observes one record lent by a reader and, with a keyring, checks that it decrypts.
pub(crate) fn observe_view(
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

/// A worker's observer of records two at a time, each with its decryption outcome.
pub(crate) type Pairs = PairObserver<Option<Checked>>;

/// Pushes one record lent by a reader into `pairs` (with a keyring, its decryption outcome
/// is checked at once); observations come out through `sink`.
fn observe_paired(
    (ctx, decrypting): ObserveCtx<'_, '_>,
    v: &kchain_log::RecordView<'_>,
    pairs: &mut Pairs,
    sink: &mut dyn FnMut(Observation, Option<Checked>),
) {
    let check = |height: Option<u64>| {
        let d = decrypting?;
        Some(d.check(height?, v.value, v.headers.iter()))
    };
    let headers = v.headers.iter();
    pairs.push(
        ctx,
        v.offset,
        v.key,
        v.value,
        headers,
        v.timestamp_ms,
        check,
        sink,
    );
}

/// Observes the next records of `reader` below offset `end` (at most `max`), lending them
/// from the backend without copies, two at a time, and hands each observation to `sink`.
/// Returns how many it observed: 0 once the reader is at `end`. Every record read is
/// observed and handed on before it returns, also when reading failed. Waits for a slow
/// backend, but not forever. With a keyring, each observation comes with the record's
/// decryption outcome.
pub(crate) fn observe_next(
    reader: &mut dyn Reader,
    end: u64,
    max: usize,
    ctx: ObserveCtx<'_, '_>,
    pairs: &mut Pairs,
    sink: &mut dyn FnMut(Observation, Option<Checked>),
) -> Result<usize, TopicError> {
    let n = visit_next(reader, end, max, &mut |v| {
        observe_paired(ctx, v, pairs, sink)
    });
    pairs.flush(ctx.0, sink);
    n
}

/// Lends the next records of `reader` below offset `end` (at most `max`) to `visit`, and
/// returns how many: 0 once the reader is at `end`. Waits for a slow backend, but not
/// forever.
fn visit_next(
    reader: &mut dyn Reader,
    end: u64,
    max: usize,
    visit: &mut dyn FnMut(&kchain_log::RecordView<'_>),
) -> Result<usize, TopicError> {
    let since = Instant::now();
    while reader.position() < end {
        let want = (end - reader.position()).min(max.max(1) as u64) as usize;
        let mut n = 0;
        reader.poll_visit(want, Duration::from_millis(500), &mut |v| {
            if v.offset < end {
                visit(v);
                n += 1;
            }
        })?;
        if n > 0 {
            return Ok(n);
        }
        if since.elapsed() > stall_timeout() {
            return Err(stalled(reader.position(), end));
        }
    }
    Ok(0)
}

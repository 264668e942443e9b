//! A sealer's pool: the transactions it has read from each partition of the transactions
//! topic that no canonical block has decided yet, each already judged on what needs no
//! state (shape, chain, size, signature).
//!
//! ```text
//! partition 0  [from ............................ read position)
//! partition 1  [from ...... read position)            from = the tip's `to` for the partition
//!
//!   node thread                         ingest workers (two threads of their own)
//!   ingest: poll partitions ──jobs──>   (jobs queued up taken together, numbered)
//!                                       parse (rayon) ──> check_static
//!                                         ──> Verifier (batched, rayon)
//!           queues <──in job order───   entries, in the order they were read
//!   canonical block ──> advance: drop everything below its `to`
//! ```
//!
//! Parsing and signature verification, most of a sealer's work, run on the workers while
//! the node thread builds, appends and validates blocks, so the stages overlap: the cores
//! verify the next transactions while a block is written and read back. Two workers take
//! jobs in turn, so that one's batches keep rayon's threads busy while the other does its
//! sequential steps (looking up cached keys and verdicts, matching verdicts to entries) or
//! waits for the last batch of its job; their results are queued in job order
//! ([`InOrder`]), so each partition's entries arrive in offset order.
//!
//! Nothing leaves the pool because a block was *built*: only a canonical block (anyone's)
//! decides transactions. A sealer whose block lost the race still holds what it did not
//! decide, and seals it again.

use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kchain_core::ChainId;
use kchain_log::{Log, LogError, Reader, StoredRecord};
use rayon::prelude::*;

use crate::consensus::block::SourceRange;
use crate::consensus::genesis::Genesis;
use crate::consensus::reject::RejectReason;
use crate::consensus::tx::Transaction;
use crate::consensus::validate::{check_static, Verifier};
use crate::node::rejected::Submitted;

/// Bytes a transaction record may have beyond the largest payload.
const RECORD_SLACK: usize = 16 * 1024;
/// The largest transaction record a sealer takes, whatever the genesis allows for payloads:
/// a block holds whole transactions, so one transaction must never be able to make a block
/// pass the record size limit of the log (Kafka's default is 1,000,000 bytes; blocks are cut
/// at [`crate::SealOptions::max_block_bytes`], 900,000 by default). A larger record is
/// rejected (`oversize`) like any other bad transaction.
pub const MAX_TX_RECORD_BYTES: usize = 256 * 1024;
/// Bytes a transaction takes in a block beyond its payload: the transfer or data JSON around
/// it, and the `{"partition":…,"offset":…,"tx":…}` entry around that.
const TX_BLOCK_OVERHEAD: usize = 512;
/// Bytes a rejection record takes beyond what it keeps of the record (see
/// [`crate::node::rejected`]), for the same budget: rejections are appended in one batch before
/// the block.
const REJECTION_OVERHEAD: usize = crate::node::rejected::MAX_DETAIL + 1024;
/// Records read from one partition per ingest.
const POLL_MAX: usize = 4096;
/// A reader this far behind the partition's decided offset is reopened rather than read on.
const SKIP_REOPEN: u64 = 50_000;
/// Records per job of the ingest worker: on two cores, one signature batch of
/// [`crate::consensus::sig::MAX_BATCH`] per core.
const JOB_MAX: usize = 8 * crate::consensus::sig::BATCH;
/// The most records the worker judges together when jobs have queued up behind the one it
/// takes (see [`with_queued`]).
const MERGED_MAX: usize = 4 * JOB_MAX;
/// How long an ingest that found nothing new waits for the worker's next judged records.
const WORKER_WAIT: Duration = Duration::from_millis(2);
/// Ingest workers. Two: while one does the sequential steps of its job or waits for its
/// slowest batch, the other's batches keep rayon's threads busy. More would only queue
/// more batches behind the same cores.
const WORKERS: usize = 2;

/// One transaction record, judged.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub partition: u32,
    pub offset: u64,
    pub arrived: Instant,
    /// Bytes the entry takes in the block (its transaction) or on the rejected topic (its
    /// rejection), at most: what the block size budget counts.
    pub size: usize,
    pub verdict: Result<Arc<Transaction>, (RejectReason, Submitted)>,
}

/// The undecided transactions of every partition, in offset order.
pub(crate) struct Pool {
    topic: String,
    readers: Vec<Box<dyn Reader>>,
    queues: Vec<VecDeque<Entry>>,
    /// Per partition, the first offset no canonical block has decided.
    decided: Vec<u64>,
    next_partition: usize,
    /// Started at the first ingest.
    worker: Option<Worker>,
}

/// The ingest workers: threads that judge the records the pool hands them, one job (or a
/// run of queued jobs) at a time each.
struct Worker {
    jobs: Sender<Job>,
    judged: Receiver<Judged>,
    /// The number of the next job handed over.
    next_job: u64,
    /// Results that arrived before those of earlier jobs.
    in_order: InOrder,
    /// Records handed over and not queued yet.
    in_flight: usize,
}

/// Records read together, for a worker to judge, numbered in the order they were read.
struct Job {
    number: u64,
    records: Vec<(u32, StoredRecord)>,
}

/// What a worker judged: the entries of jobs `first..end`, in order; `None` when judging
/// them panicked.
struct Judged {
    first: u64,
    end: u64,
    entries: Option<Vec<Entry>>,
}

/// Puts the workers' results back in job order: a worker that took later jobs may finish
/// before one that took earlier ones.
#[derive(Default)]
struct InOrder {
    /// The first job whose entries have not been released.
    next: u64,
    /// Results of later jobs, by their first job.
    held: BTreeMap<u64, Judged>,
}

impl InOrder {
    /// Takes `j` and returns the entries now in order (those of `next` and of the results
    /// that follow it without a gap), oldest first.
    fn put(&mut self, j: Judged) -> Vec<Vec<Entry>> {
        self.held.insert(j.first, j);
        let mut out = Vec::new();
        while let Some(j) = self.held.remove(&self.next) {
            self.next = j.end;
            out.push(
                j.entries
                    .expect("an ingest worker panicked while judging records"),
            );
        }
        out
    }
}

/// What judging a record needs: the ledger's rules and the shared signature verifier.
#[derive(Clone)]
struct Judge {
    genesis: Genesis,
    chain: ChainId,
    limit: usize,
    verifier: Arc<Verifier>,
}

impl Worker {
    /// Starts the worker threads; `None` when the system has no thread to give.
    fn start(judge: Judge) -> Option<Worker> {
        let (jobs, todo) = mpsc::channel::<Job>();
        let todo = Arc::new(Mutex::new(todo));
        let (done, judged) = mpsc::channel();
        for _ in 0..WORKERS {
            let (todo, done, judge) = (Arc::clone(&todo), done.clone(), judge.clone());
            std::thread::Builder::new()
                .name("kchain-ingest".into())
                .spawn(move || loop {
                    // Taken under the lock, so that a run of jobs is one worker's.
                    let (first, end, records) = {
                        let todo = todo.lock().unwrap_or_else(|e| e.into_inner());
                        let Ok(job) = todo.recv() else { break };
                        with_queued(job, &todo)
                    };
                    let entries = catch_unwind(AssertUnwindSafe(|| judge.entries(records))).ok();
                    let stop = entries.is_none();
                    if done
                        .send(Judged {
                            first,
                            end,
                            entries,
                        })
                        .is_err()
                        || stop
                    {
                        break;
                    }
                })
                .ok()?;
        }
        Some(Worker {
            jobs,
            judged,
            next_job: 0,
            in_order: InOrder::default(),
            in_flight: 0,
        })
    }
}

/// The records of `job` and of the jobs queued behind it, in order, up to about
/// [`MERGED_MAX`], with the numbers of the jobs taken (`first..end`). When the workers are
/// behind, one judges what waits together: the signatures are then verified in more
/// batches than threads, which rayon spreads over the cores as they come free, where one
/// job's batches (one per thread) would leave a core idle while the other finishes its last
/// batch. When the workers keep up, a job is judged alone and its entries come back as soon
/// as they can.
fn with_queued(job: Job, todo: &Receiver<Job>) -> (u64, u64, Vec<(u32, StoredRecord)>) {
    let (first, mut records) = (job.number, job.records);
    let mut end = first + 1;
    while records.len() < MERGED_MAX {
        match todo.try_recv() {
            Ok(more) => {
                end = more.number + 1;
                records.extend(more.records);
            }
            Err(_) => break,
        }
    }
    (first, end, records)
}

impl Pool {
    /// Opens readers at the tip's source offsets.
    pub fn open(log: &dyn Log, topic: &str, tip_sources: &[SourceRange]) -> Result<Self, LogError> {
        let readers = tip_sources
            .iter()
            .map(|s| log.reader(topic, s.partition, s.to))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pool {
            topic: topic.to_owned(),
            queues: tip_sources.iter().map(|_| VecDeque::new()).collect(),
            decided: tip_sources.iter().map(|s| s.to).collect(),
            readers,
            next_partition: 0,
            worker: None,
        })
    }

    /// Number of undecided transactions held.
    pub fn len(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// When the oldest undecided transaction was queued, judged.
    pub fn oldest(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|q| q.front())
            .map(|e| e.arrived)
            .min()
    }

    /// Whether every reader has reached its partition's end offset.
    pub fn read_all(&self, log: &dyn Log) -> Result<bool, LogError> {
        for (p, r) in self.readers.iter().enumerate() {
            if r.position() < log.end_offset(&self.topic, p as u32)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Forgets what a canonical block with these source ranges decided.
    pub fn advance(&mut self, log: &dyn Log, sources: &[SourceRange]) -> Result<(), LogError> {
        for s in sources {
            let p = s.partition as usize;
            let Some(q) = self.queues.get_mut(p) else {
                continue;
            };
            self.decided[p] = self.decided[p].max(s.to);
            while q.front().is_some_and(|e| e.offset < s.to) {
                q.pop_front();
            }
            if self.readers[p].position() + SKIP_REOPEN < s.to {
                self.readers[p] = log.reader(&self.topic, s.partition, s.to)?;
            }
        }
        Ok(())
    }

    /// Records handed to the ingest worker and not judged yet.
    pub fn in_flight(&self) -> usize {
        self.worker.as_ref().map_or(0, |w| w.in_flight)
    }

    /// Queues what the ingest worker has judged, and hands it what is available to read
    /// (without waiting) while the pool holds fewer than `cap` transactions, judged or not.
    /// Returns the number of records read or queued.
    ///
    /// ```text
    /// poll each partition ─> worker: parse + static checks (parallel) ─> signatures
    ///   (batched) ─> queue per partition, each entry a transaction or why it is rejected
    /// ```
    pub fn ingest(
        &mut self,
        g: &Genesis,
        chain: ChainId,
        verifier: &Arc<Verifier>,
        cap: usize,
    ) -> Result<usize, LogError> {
        let mut count = self.take_judged(Duration::ZERO);
        let records = self.poll(cap)?;
        if records.is_empty() {
            return Ok(count);
        }
        count += records.len();
        let judge = || Judge {
            genesis: g.clone(),
            chain,
            limit: tx_record_limit(g),
            verifier: Arc::clone(verifier),
        };
        if self.worker.is_none() {
            self.worker = Worker::start(judge());
        }
        match &mut self.worker {
            Some(w) => {
                w.in_flight += records.len();
                // In jobs of a few batches, so that the first judged entries come back soon.
                let mut records = records.into_iter().peekable();
                while records.peek().is_some() {
                    let job = Job {
                        number: w.next_job,
                        records: records.by_ref().take(JOB_MAX).collect(),
                    };
                    w.next_job += 1;
                    w.jobs
                        .send(job)
                        .expect("the ingest workers run while the pool holds their sender");
                }
            }
            None => {
                let entries = judge().entries(records);
                self.queue(entries);
            }
        }
        Ok(count)
    }

    /// Waits a moment for the worker to judge records in flight and queues them; returns
    /// how many it took (0 at once when none are in flight).
    pub fn wait_judged(&mut self) -> usize {
        self.take_judged(WORKER_WAIT)
    }

    /// Queues the entries the workers have judged, in job order, waiting up to `wait` for
    /// the next in order; returns how many it took.
    fn take_judged(&mut self, wait: Duration) -> usize {
        let Some(w) = self.worker.as_mut().filter(|w| w.in_flight > 0) else {
            return 0;
        };
        let deadline = Instant::now() + wait;
        let mut batches = Vec::new();
        while batches.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                w.judged
                    .try_recv()
                    .map_err(|e| e == TryRecvError::Disconnected)
            } else {
                w.judged
                    .recv_timeout(left)
                    .map_err(|e| e == RecvTimeoutError::Disconnected)
            };
            match next {
                Ok(j) => batches.extend(w.in_order.put(j)),
                Err(false) => break,
                Err(true) => panic!("the ingest workers stopped"),
            }
        }
        for j in w.judged.try_iter() {
            batches.extend(w.in_order.put(j));
        }
        let n: usize = batches.iter().map(Vec::len).sum();
        w.in_flight -= n;
        for entries in batches {
            self.queue(entries);
        }
        n
    }

    /// Queues judged entries, but for what a canonical block decided since they were read.
    /// An entry's wait (for [`crate::SealOptions::block_ms`]) starts here, once it is judged:
    /// a block is not cut short for transactions the worker is still verifying.
    fn queue(&mut self, entries: Vec<Entry>) {
        let now = Instant::now();
        for mut e in entries {
            e.arrived = now;
            let p = e.partition as usize;
            if e.offset >= self.decided[p] {
                self.queues[p].push_back(e);
            }
        }
    }

    /// The undecided records available now, partition by partition from the one after the
    /// last poll's first, while the pool and they hold fewer than `cap`.
    fn poll(&mut self, cap: usize) -> Result<Vec<(u32, StoredRecord)>, LogError> {
        let mut records: Vec<(u32, StoredRecord)> = Vec::new();
        let n = self.readers.len();
        let held = self.len() + self.in_flight();
        for i in 0..n {
            if held + records.len() >= cap {
                break;
            }
            let p = (self.next_partition + i) % n;
            for r in self.readers[p].poll(POLL_MAX, Duration::ZERO)? {
                if r.offset >= self.decided[p] {
                    records.push((p as u32, r));
                }
            }
        }
        self.next_partition = (self.next_partition + 1) % n.max(1);
        Ok(records)
    }

    /// The next candidates for a block: up to `max_txs` entries and about `max_bytes` of
    /// records, taken round-robin across partitions, each partition's in offset order (so
    /// that what is taken from a partition is a prefix of it).
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Vec<&Entry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut next: Vec<usize> = vec![0; self.queues.len()];
        loop {
            let mut took = false;
            for (p, q) in self.queues.iter().enumerate() {
                if out.len() >= max_txs {
                    return out;
                }
                if let Some(e) = q.get(next[p]) {
                    if bytes + e.size > max_bytes && !out.is_empty() {
                        return out;
                    }
                    bytes += e.size;
                    next[p] += 1;
                    out.push(e);
                    took = true;
                }
            }
            if !took {
                return out;
            }
        }
    }
}

impl Judge {
    /// Judges records: parsed and checked in parallel, then their signatures verified in
    /// batches. Each entry's `arrived` is set when it is queued (see `Pool::queue`).
    fn entries(&self, records: Vec<(u32, StoredRecord)>) -> Vec<Entry> {
        let arrived = Instant::now();
        let parsed: Vec<Entry> = records
            .into_par_iter()
            .map(|(partition, r)| {
                let raw = r.record.value.unwrap_or_default();
                let (size, verdict) =
                    match judge_static(&raw, &self.genesis, self.chain, self.limit) {
                        Ok(tx) => (block_bytes(&tx), Ok(Arc::new(tx))),
                        Err(reason) => (
                            raw.len().min(crate::node::rejected::MAX_RAW) * 4 / 3
                                + REJECTION_OVERHEAD,
                            Err((reason, Submitted::of(raw))),
                        ),
                    };
                Entry {
                    partition,
                    offset: r.offset,
                    arrived,
                    size,
                    verdict,
                }
            })
            .collect();
        let txs: Vec<&Transaction> = parsed
            .iter()
            .filter_map(|e| e.verdict.as_ref().ok().map(|t| t.as_ref()))
            .collect();
        let verdicts = self.verifier.check(&txs);
        let mut verdicts = verdicts.into_iter();
        parsed
            .into_iter()
            .map(|mut e| {
                if let Ok(tx) = &e.verdict {
                    if let Some(Err(reason)) = verdicts.next() {
                        e.verdict = Err((reason, Submitted::of(tx.to_json())));
                    }
                }
                e
            })
            .collect()
    }
}

/// The largest transaction record a sealer of `g` takes: the largest payload plus the
/// transaction around it, and never more than [`MAX_TX_RECORD_BYTES`].
pub(crate) fn tx_record_limit(g: &Genesis) -> usize {
    (g.max_payload_bytes as usize)
        .saturating_add(RECORD_SLACK)
        .min(MAX_TX_RECORD_BYTES)
}

/// Bytes `tx` takes in a block's JSON, at most.
fn block_bytes(tx: &Transaction) -> usize {
    match tx.body() {
        crate::consensus::tx::TxBody::Transfer { .. } => TX_BLOCK_OVERHEAD,
        crate::consensus::tx::TxBody::Data { .. } => tx.payload_len() + TX_BLOCK_OVERHEAD,
    }
}

/// A submitted record judged without the state or signatures: at most `limit` bytes as
/// submitted and as a block carries it, a transaction, and for this ledger.
fn judge_static(
    raw: &[u8],
    g: &Genesis,
    chain: ChainId,
    limit: usize,
) -> Result<Transaction, RejectReason> {
    if raw.len() > limit {
        return Err(RejectReason::Oversize {
            size: raw.len(),
            limit,
        });
    }
    let tx = Transaction::from_json(raw).map_err(RejectReason::Malformed)?;
    check_static(&tx, chain, g)?;
    // Its JSON as a block carries it (a payload re-written in canonical form may be longer
    // than it was submitted).
    let size = block_bytes(&tx);
    if size > limit {
        return Err(RejectReason::Oversize { size, limit });
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_log::Record;

    fn job(number: u64, partition: u32, offsets: std::ops::Range<u64>) -> Job {
        let records = offsets
            .map(|offset| {
                let record = Record {
                    key: None,
                    value: None,
                    headers: vec![],
                    timestamp_ms: 0,
                };
                (partition, StoredRecord { offset, record })
            })
            .collect();
        Job { number, records }
    }

    #[test]
    fn queued_jobs_are_taken_together_in_order_up_to_the_limit() {
        let (tx, rx) = mpsc::channel();
        tx.send(job(1, 1, 0..5)).unwrap();
        tx.send(job(2, 0, 10..MERGED_MAX as u64)).unwrap();
        tx.send(job(3, 0, 0..1)).unwrap();
        let (first, end, taken) = with_queued(job(0, 0, 0..10), &rx);
        assert_eq!((first, end), (0, 3));
        let order: Vec<(u32, u64)> = taken.iter().map(|(p, r)| (*p, r.offset)).collect();
        let want: Vec<(u32, u64)> = (0..10)
            .map(|o| (0, o))
            .chain((0..5).map(|o| (1, o)))
            .chain((10..MERGED_MAX as u64).map(|o| (0, o)))
            .collect();
        assert_eq!(order, want);
        assert_eq!(rx.try_recv().map(|j| j.records.len()).ok(), Some(1));
        let (first, end, taken) = with_queued(job(4, 2, 0..3), &rx);
        assert_eq!((first, end, taken.len()), (4, 5, 3));
    }

    /// Judged entries of jobs `first..end`, one entry per job, at offset = job number.
    fn judged(first: u64, end: u64) -> Judged {
        let entries = (first..end)
            .map(|offset| Entry {
                partition: 0,
                offset,
                arrived: Instant::now(),
                size: 0,
                verdict: Err((
                    RejectReason::Malformed("test".into()),
                    Submitted::of(vec![]),
                )),
            })
            .collect();
        Judged {
            first,
            end,
            entries: Some(entries),
        }
    }

    #[test]
    fn results_that_finish_early_wait_for_those_of_earlier_jobs() {
        let mut in_order = InOrder::default();
        let offsets = |out: Vec<Vec<Entry>>| -> Vec<u64> {
            out.into_iter().flatten().map(|e| e.offset).collect()
        };
        assert_eq!(offsets(in_order.put(judged(3, 5))), Vec::<u64>::new());
        assert_eq!(offsets(in_order.put(judged(1, 3))), Vec::<u64>::new());
        assert_eq!(offsets(in_order.put(judged(0, 1))), [0, 1, 2, 3, 4]);
        assert_eq!(offsets(in_order.put(judged(5, 6))), [5]);
        assert_eq!(offsets(in_order.put(judged(7, 8))), Vec::<u64>::new());
        assert_eq!(offsets(in_order.put(judged(6, 7))), [6, 7]);
    }

    #[test]
    #[should_panic(expected = "panicked while judging")]
    fn a_worker_that_panicked_stops_the_node_when_its_turn_comes() {
        let mut in_order = InOrder::default();
        in_order.put(judged(1, 2));
        in_order.put(Judged {
            first: 0,
            end: 1,
            entries: None,
        });
    }
}

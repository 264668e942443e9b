//! One chained partition under watch: verified incrementally from where the monitor's state
//! left it, its chain tree grown as records verify, and the roots at batch ends kept for the
//! checkpoints that arrive after the tree passed their size.
//!
//! ```text
//!  backlog >= 2 chunks (cheap readers): map_parallel (a reader per worker, lent records) ─┐
//!  Reader (from the next offset) ──► observe (parallel, per poll) ──────────────────────┴► ChainVerifier::push
//!        │                                   held: (offset, hash, signed, time) until covered
//!        └─ at the end: a clone of the verifier, finished as pending, says what is verified
//!           now; a tail no signature covers for longer than the grace is `unsigned`
//!  covered records ──► TreeBuilder::push(chain_leaf) ──► at a signed record: roots (size, root)
//! ```
//!
//! Nothing is read twice: a live watch keeps its reader and verifier between passes; a
//! restarted one resumes after the last verified record (`ChainVerifier::resume_after`),
//! once it has checked that this record still hashes as it did. A live reader that can no
//! longer see the partition (its end moved below what was read, or, on the embedded log, a
//! poll below the end returns nothing: the directory was replaced under it) is dropped the
//! same way, and the resume point checked again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use kchain_core::merkle::TreeBuilder;
use kchain_core::{
    chain_leaf, observe, ChainContext, ChainId, ChainVerifier, Finding, Hash, Link, Observation,
    PendingLimits, SigCheck, Trust,
};
use kchain_log::{Log, Reader, StoredRecord};
use rayon::prelude::*;

use crate::error::MonitorError;
use crate::late::Chain;
use crate::state::{hashes, PartitionState, TipState};
use crate::watch::{Event, Watch};

/// The most records one poll asks for.
const POLL: usize = 8192;
/// A backlog is read in chunks of this many offsets, one reader per worker (on a log where
/// readers are cheap), as `verify` reads; a shorter one with the live reader.
const CHUNK: u64 = 16 * 1024;
/// The most records one pass reads of one partition, so that checkpoints, stalls and the
/// other partitions get their turn within the alert deadline.
const PASS_BUDGET: u64 = 256 * 1024;
/// Roots at batch ends kept in memory, and in the state file.
const ROOTS_KEPT: usize = 4096;
const ROOTS_SAVED: usize = 256;

/// A record observed but not yet covered by a signature.
struct Held {
    offset: u64,
    /// The record's chain-tree leaf (computed with its observation, in parallel).
    leaf: Hash,
    signed: bool,
    timestamp_ms: i64,
}

/// One partition's incremental verification.
pub(crate) struct PartitionWatch {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    chain: ChainId,
    verifier: ChainVerifier,
    reader: Option<Box<dyn Reader>>,
    held: VecDeque<Held>,
    pub(crate) tree: TreeBuilder,
    roots: VecDeque<(u64, Hash)>,
    pub(crate) tip: Option<Link>,
    pub(crate) entries: u64,
    /// Records read by this process (resuming reads none twice).
    pub(crate) read: u64,
    /// The timestamp of the last verified record, and the end offset last seen.
    pub(crate) tip_time_ms: i64,
    pub(crate) end: u64,
    /// Since when a tail has waited for its signature, and from which offset.
    pending_since: Option<(Instant, u64)>,
    grace: Duration,
    /// Whether the resume point still has to be checked.
    check_resume: bool,
    pub(crate) stopped: Option<String>,
}

impl PartitionWatch {
    /// A watch that goes on from `saved` (fresh when it is the default).
    pub(crate) fn resume(
        topic: &str,
        partition: u32,
        trust: &Trust,
        saved: &PartitionState,
        grace: Duration,
    ) -> PartitionWatch {
        let expect = kchain_topic::expectations(trust, topic, partition);
        let limits = PendingLimits::default();
        let tip = saved.tip.as_ref().and_then(TipState::to_link);
        let verifier = match tip {
            Some(t) => ChainVerifier::resume_after(expect, limits, t),
            None => ChainVerifier::with_limits(expect, limits),
        };
        let tree = hashes(&saved.peaks)
            .and_then(|p| TreeBuilder::from_peaks(saved.tree_size, p))
            .unwrap_or_default();
        let roots = saved
            .roots
            .iter()
            .filter_map(|(s, r)| Some((*s, kchain_core::from_hex(r)?)))
            .collect();
        PartitionWatch {
            topic: topic.to_owned(),
            partition,
            chain: ChainId::for_partition(topic, partition),
            verifier,
            reader: None,
            held: VecDeque::new(),
            tree,
            roots,
            tip,
            entries: saved.entries,
            read: 0,
            tip_time_ms: 0,
            end: 0,
            pending_since: None,
            grace,
            check_resume: tip.is_some(),
            stopped: saved.stopped.clone(),
        }
    }

    /// The partition's state to save.
    pub(crate) fn save_into(&self, into: &mut PartitionState) {
        into.tip = self.tip.as_ref().map(TipState::from_link);
        into.entries = self.entries;
        into.tree_size = self.tree.size();
        into.peaks = self.tree.peaks().iter().map(kchain_core::to_hex).collect();
        let skip = self.roots.len().saturating_sub(ROOTS_SAVED);
        into.roots = (self.roots.iter().skip(skip))
            .map(|(s, r)| (*s, kchain_core::to_hex(r)))
            .collect();
        into.stopped = self.stopped.clone();
    }

    /// The root of the chain tree at `size`, when the monitor knows it: the current size, or
    /// a recent batch end.
    pub(crate) fn kept_root(&self, size: u64) -> Option<Hash> {
        if size == self.tree.size() {
            return Some(self.tree.root());
        }
        let i = self.roots.binary_search_by_key(&size, |(s, _)| *s).ok()?;
        Some(self.roots[i].1)
    }

    /// The root of the chain tree at `size`, computed from the tree's frontier and leaves
    /// read back from the log (see `late`), for a checkpoint that came after the tree passed
    /// its size where no root was kept.
    pub(crate) fn root_from_log(&self, log: &dyn Log, trust: &Trust, size: u64) -> Option<Hash> {
        let chain = Chain {
            log,
            topic: &self.topic,
            partition: self.partition,
            trust,
            tree: &self.tree,
            tip: self.tip?,
        };
        chain.root_at(size)
    }

    /// The offset after the last verified record.
    pub(crate) fn verified_next(&self) -> u64 {
        self.tip.map_or(0, |t| t.offset + 1)
    }

    /// Whether records wait for a signature.
    pub(crate) fn pending(&self) -> bool {
        self.pending_since.is_some()
    }

    /// Whether records below the end seen last wait to be read (the pass's budget ran out).
    pub(crate) fn behind(&self) -> bool {
        let next = match &self.reader {
            Some(r) => r.position(),
            None if self.tip.is_some() || self.read > 0 => self.verifier.next_offset(),
            None => return false,
        };
        self.stopped.is_none() && next < self.end
    }

    /// Stopped at a finding, or read to the end seen last with no tail waiting.
    pub(crate) fn settled(&self) -> bool {
        let at_end = self
            .reader
            .as_ref()
            .is_some_and(|r| r.position() >= self.end);
        self.stopped.is_some() || (at_end && !self.pending())
    }

    /// One pass: reads what was appended since the last (up to a budget) and verifies it.
    /// Returns what the monitor must act on; an error is the log's (the reader is dropped
    /// and reopened at the same place next time).
    pub(crate) fn pass(
        &mut self,
        log: &dyn Log,
        trust: &Trust,
    ) -> Result<Vec<Event>, kchain_log::LogError> {
        let mut events = Vec::new();
        if self.stopped.is_some() {
            return Ok(events);
        }
        let r = self.pass_inner(log, trust, &mut events);
        if r.is_err() {
            self.reader = None;
        }
        r.map(|()| events)
    }

    fn pass_inner(
        &mut self,
        log: &dyn Log,
        trust: &Trust,
        events: &mut Vec<Event>,
    ) -> Result<(), kchain_log::LogError> {
        let end = log.end_offset(&self.topic, self.partition)?;
        self.end = end;
        if self.reader.as_ref().is_some_and(|r| r.position() > end) {
            // The log's end moved below what the live reader read: the partition was cut
            // or replaced under it.
            self.reopen(trust);
        }
        if end < self.verified_next() {
            events.push(Event::EndBelow {
                end,
                verified: self.verified_next(),
            });
            self.stopped = Some(format!("the log ends at {end}, below what was verified"));
            return Ok(());
        }
        if self.check_resume {
            if let Some(ev) = self.check_resume_point(log, trust)? {
                events.push(ev);
                self.stopped = Some("the record at the resume point changed".into());
                return Ok(());
            }
            self.check_resume = false;
        }
        let mut budget = PASS_BUDGET;
        if log.cheap_readers() {
            self.catch_up(log, trust, end, &mut budget, events)?;
            if self.stopped.is_some() {
                return Ok(());
            }
        }
        if self.reader.is_none() {
            let from = self.read_from(log)?;
            self.reader = Some(log.reader(&self.topic, self.partition, from)?);
        }
        // Reading the next poll overlaps observing the last (the observations of one poll
        // run in parallel; linking them stays in order).
        let mut recs = self.poll_more(end)?;
        while !recs.is_empty() {
            budget = budget.saturating_sub(recs.len() as u64);
            let (topic, chain) = (self.topic.as_str(), self.chain);
            let reader = self.reader.as_mut().expect("opened above");
            let more = budget > 0;
            let (observed, next) = rayon::join(
                || observe_all(topic, chain, trust, &recs),
                || match more && reader.position() < end {
                    true => reader.poll(POLL, Duration::from_millis(200)),
                    false => Ok(Vec::new()),
                },
            );
            self.take(observed, events);
            if self.stopped.is_some() {
                return Ok(());
            }
            recs = next?;
        }
        self.settle_tail(events);
        let stuck = self.reader.as_ref().is_some_and(|r| r.position() < end);
        if stuck && budget > 0 && log.cheap_readers() && self.stopped.is_none() {
            // On the embedded log a poll below the end returns at once; one that returns
            // nothing reads a segment file that is no longer the partition's (its directory
            // was replaced under the reader, which keeps the deleted file open).
            self.reopen(trust);
        }
        Ok(())
    }

    /// Drops the live reader and what was read past the last verified record, as a restart
    /// does: the next pass checks the resume point again and reads on after it.
    fn reopen(&mut self, trust: &Trust) {
        let expect = kchain_topic::expectations(trust, &self.topic, self.partition);
        let limits = PendingLimits::default();
        self.verifier = match self.tip {
            Some(t) => ChainVerifier::resume_after(expect, limits, t),
            None => ChainVerifier::with_limits(expect, limits),
        };
        self.held.clear();
        self.reader = None;
        self.pending_since = None;
        self.check_resume = self.tip.is_some();
    }

    /// The offset reading goes on from: after the last record read, else after the resume
    /// point, else the partition's start.
    fn read_from(&self, log: &dyn Log) -> Result<u64, kchain_log::LogError> {
        if let Some(r) = &self.reader {
            return Ok(r.position());
        }
        let start = log.start_offset(&self.topic, self.partition)?;
        match self.tip.is_some() || self.read > 0 {
            true => Ok(self.verifier.next_offset().max(start)),
            false => Ok(start),
        }
    }

    /// Reads a backlog of at least two chunks (up to the pass's budget) the way `verify`
    /// does: a chunk per reader on several threads, records lent without copies
    /// (`kchain_topic::map_parallel`). The live reader is dropped; the tail is read with a
    /// new one.
    fn catch_up(
        &mut self,
        log: &dyn Log,
        trust: &Trust,
        end: u64,
        budget: &mut u64,
        events: &mut Vec<Event>,
    ) -> Result<(), kchain_log::LogError> {
        let from = self.read_from(log)?;
        if end.saturating_sub(from) < 2 * CHUNK {
            return Ok(());
        }
        self.reader = None;
        let to = end.min(from + *budget);
        *budget -= to - from;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let topic = self.topic.clone();
        let ctx = ChainContext {
            topic: &topic,
            chain: self.chain,
            trust,
        };
        let each = |v: &kchain_log::RecordView<'_>, scratch: &mut Vec<u8>| {
            let obs = observe(
                &ctx,
                v.offset,
                v.key,
                v.value,
                v.headers.iter(),
                v.timestamp_ms,
                scratch,
            );
            with_leaf(obs, v.timestamp_ms)
        };
        let (p, range) = (self.partition, (from, to));
        let corrupt = kchain_topic::map_parallel(log, &topic, p, range, CHUNK, workers, &each, {
            &mut |observed| {
                self.take(observed, events);
                self.stopped.is_none()
            }
        });
        match corrupt {
            Ok(None) => Ok(()),
            Ok(Some((_, e))) => Err(e),
            Err(kchain_topic::TopicError::Log(e)) => Err(e),
            Err(e) => Err(kchain_log::LogError::io(
                format!(
                    "{}/{}: reading from offset {from}",
                    self.topic, self.partition
                ),
                std::io::Error::other(e.to_string()),
            )),
        }
    }

    /// Re-reads the record at the resume point and compares its hash.
    fn check_resume_point(
        &self,
        log: &dyn Log,
        trust: &Trust,
    ) -> Result<Option<Event>, kchain_log::LogError> {
        let Some(tip) = self.tip else { return Ok(None) };
        let mut reader = log.reader(&self.topic, self.partition, tip.offset)?;
        let started = Instant::now();
        let rec = loop {
            let recs = reader.poll(1, Duration::from_millis(200))?;
            if let Some(r) = recs.into_iter().find(|r| r.offset == tip.offset) {
                break r;
            }
            if started.elapsed() > kchain_topic::stall_timeout() {
                return Err(kchain_log::LogError::io(
                    format!(
                        "{}/{}: reading the resume offset {}",
                        self.topic, self.partition, tip.offset
                    ),
                    std::io::ErrorKind::TimedOut.into(),
                ));
            }
        };
        let obs = observe_all(&self.topic, self.chain, trust, std::slice::from_ref(&rec));
        let same = matches!(&obs[0].0, Observation::Entry(o) if o.hash == tip.hash);
        Ok((!same).then_some(Event::ResumePointChanged { offset: tip.offset }))
    }

    /// The next poll, when the reader is below `end`.
    fn poll_more(&mut self, end: u64) -> Result<Vec<StoredRecord>, kchain_log::LogError> {
        let reader = self.reader.as_mut().expect("opened above");
        if reader.position() >= end {
            return Ok(Vec::new());
        }
        reader.poll(POLL, Duration::from_millis(200))
    }

    /// Pushes observations (each with its leaf and timestamp), then moves what became
    /// verified into the tree.
    fn take(&mut self, observed: Vec<(Observation, Hash, i64)>, events: &mut Vec<Event>) {
        self.read += observed.len() as u64;
        for (obs, leaf, timestamp_ms) in observed {
            if let Observation::Entry(o) = &obs {
                self.held.push_back(Held {
                    offset: o.offset,
                    leaf,
                    signed: matches!(o.sig, SigCheck::Valid(_)),
                    timestamp_ms,
                });
            }
            self.verifier.push(obs);
            if let Some(f) = self.verifier.finding() {
                events.push(tamper(f));
                self.stopped = Some(f.to_string());
                return;
            }
        }
        if let Some(through) = self.verifier.verified_through() {
            self.cover(through, events);
        }
    }

    /// At the end of what was read: what a finished copy of the verifier says is verified
    /// now, and the grace of a tail that no signature covers yet.
    fn settle_tail(&mut self, events: &mut Vec<Event>) {
        let now = self.verifier.clone().finish_pending();
        if let Some(f) = now.finding {
            events.push(tamper(&f));
            self.stopped = Some(f.to_string());
            return;
        }
        if let Some(t) = now.tip {
            self.cover(t.offset, events);
            self.tip = Some(t);
        }
        let reading_done = self
            .reader
            .as_ref()
            .is_some_and(|r| r.position() >= self.end);
        match (now.pending_from, reading_done) {
            (Some(from), true) => {
                let (since, at) = *self.pending_since.get_or_insert((Instant::now(), from));
                if at != from {
                    self.pending_since = Some((Instant::now(), from));
                } else if since.elapsed() >= self.grace {
                    if let Some(f) = self.verifier.clone().finish().finding {
                        events.push(tamper(&f));
                        self.stopped = Some(f.to_string());
                    }
                }
            }
            _ => self.pending_since = None,
        }
    }

    /// Moves the held records up to offset `through` into the chain tree.
    fn cover(&mut self, through: u64, events: &mut Vec<Event>) {
        while let Some(h) = self.held.front() {
            if h.offset > through {
                break;
            }
            let h = self.held.pop_front().expect("front exists");
            self.tree.push(&h.leaf);
            self.entries += 1;
            self.tip_time_ms = h.timestamp_ms;
            if h.signed {
                let (size, root) = (self.tree.size(), self.tree.root());
                if self.roots.len() == ROOTS_KEPT {
                    self.roots.pop_front();
                }
                self.roots.push_back((size, root));
                events.push(Event::Root { size, root });
            }
        }
    }
}

/// The event of a finding of kchain-core's verifier.
fn tamper(f: &Finding) -> Event {
    Event::Tamper {
        offset: f.offset,
        detail: format!("{}: {}", f.kind.as_str(), f.detail),
    }
}

impl Watch for PartitionWatch {
    fn chain(&self) -> &str {
        &self.topic
    }

    fn partition(&self) -> u32 {
        self.partition
    }

    fn pass(&mut self, log: &dyn Log, trust: &Trust) -> Result<Vec<Event>, kchain_log::LogError> {
        PartitionWatch::pass(self, log, trust)
    }

    fn tree_size(&self) -> u64 {
        self.tree.size()
    }

    fn root_at(&self, log: &dyn Log, trust: &Trust, size: u64) -> Option<Hash> {
        self.kept_root(size)
            .or_else(|| self.root_from_log(log, trust, size))
    }

    fn entries(&self) -> u64 {
        self.entries
    }

    fn read(&self) -> u64 {
        self.read
    }

    fn lag(&self) -> (u64, i64) {
        (
            self.end.saturating_sub(self.verified_next()),
            self.tip_time_ms,
        )
    }

    fn stopped(&self) -> bool {
        self.stopped.is_some()
    }

    fn behind(&self) -> bool {
        PartitionWatch::behind(self)
    }

    fn settled(&self) -> bool {
        PartitionWatch::settled(self)
    }

    fn save(
        &self,
        into: &mut PartitionState,
        _dir: &std::path::Path,
        _last: bool,
    ) -> Result<(), MonitorError> {
        self.save_into(into);
        Ok(())
    }
}

/// An observation with its chain-tree leaf (zeros for a malformed record) and timestamp.
fn with_leaf(obs: Observation, timestamp_ms: i64) -> (Observation, Hash, i64) {
    let leaf = match &obs {
        Observation::Entry(o) => chain_leaf(&o.hash),
        Observation::Malformed { .. } => [0; 32],
    };
    (obs, leaf, timestamp_ms)
}

/// Observes `recs` in parallel, each with its chain-tree leaf and timestamp.
fn observe_all(
    topic: &str,
    chain: ChainId,
    trust: &Trust,
    recs: &[StoredRecord],
) -> Vec<(Observation, Hash, i64)> {
    let ctx = ChainContext {
        topic,
        chain,
        trust,
    };
    recs.par_iter()
        .map_init(Vec::new, |scratch, r| {
            let rec = &r.record;
            let obs = observe(
                &ctx,
                r.offset,
                rec.key.as_deref(),
                rec.value.as_deref(),
                rec.headers
                    .iter()
                    .map(|h| (h.name.as_str(), h.value.as_slice())),
                rec.timestamp_ms,
                scratch,
            );
            with_leaf(obs, rec.timestamp_ms)
        })
        .collect()
}

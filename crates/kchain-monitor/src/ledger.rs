//! One ledger's blocks chain under watch: every new record of the blocks topic judged by
//! kchain-ledger's `Chain::observe` (the consensus rules `ledger verify` and every node
//! apply: canonical, ignored for a reason of normal life, or a finding), the canonical
//! blocks grown into the chain tree the sealers' checkpoints commit to (leaf h =
//! `chain_leaf(hash of the canonical block at height h)`, genesis first).
//!
//! ```text
//!  <ledger>.blocks ──► Reader (from Chain::next_offset) ──► Chain::observe
//!        canonical ──► TreeBuilder::push ──► Event::Root (size = height + 1)
//!        ignored (stale, invalid, broken at the tip) ──► counted
//!        finding (a broken block built upon, a missing or never-canonical parent) ──► Tamper
//!  save: Chain ──► ledgers/<blocks topic>/snapshot.json (kchain-ledger's snapshot), then
//!        the tip (genesis, height, hash, offset) into the monitor's state file
//! ```
//!
//! A restarted watch resumes from its snapshot, which kchain-ledger takes back only when the
//! log still holds its tip; never from genesis again. When the snapshot cannot be taken
//! back, the tip the state file names decides: a log that ends before it, or holds another
//! block there, is a `rollback`; a log that still holds it (the snapshot was lost) is
//! replayed from genesis, as the monitor's first run did. A live reader that can no longer
//! see the blocks topic (its directory replaced under it on the embedded log) is dropped,
//! and the tip checked the same way.

use std::cell::Cell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kchain_core::merkle::{self, TreeBuilder};
use kchain_core::{chain_leaf, from_hex, to_hex, Hash, Trust};
use kchain_ledger::{
    load_snapshot, open_chain, save_snapshot, snapshot_file, Chain, SnapshotLoaded, StoredBlock,
    Verdict, Verifier,
};
use kchain_log::{Log, LogError, Reader};

use crate::error::MonitorError;
use crate::metrics::LedgerFigures;
use crate::state::{LedgerTip, PartitionState};
use crate::watch::{Event, Watch};

/// The most records one pass reads, so that the other chains get their turn.
const PASS_BUDGET: u64 = 64 * 1024;
/// The snapshot (the whole replayed chain) is rewritten at most this often while the chain
/// grows, and when the monitor stops; the state file names the newer tip in between.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(10);
/// Roots of the tree at recent heights kept in memory (older ones are rebuilt from the
/// chain's canonical hashes).
const ROOTS_KEPT: usize = 4096;

/// What the first pass must settle before reading on.
#[derive(Clone, Debug)]
enum Resume {
    /// Nothing: a first run, or the snapshot was taken back.
    Done,
    /// The snapshot could not be taken back: the log must still hold this tip.
    Check(LedgerTip),
    /// The log's genesis is not the one the monitor verified before (its hash).
    GenesisChanged(String),
}

/// One ledger's incremental verification.
pub(crate) struct LedgerWatch {
    ledger: String,
    blocks: String,
    chain: Chain,
    verifier: Verifier,
    reader: Option<Box<dyn Reader>>,
    tree: TreeBuilder,
    roots: VecDeque<(u64, Hash)>,
    read: u64,
    ignored: u64,
    end: u64,
    resume: Resume,
    /// The saved tip, kept as it was until the resume is settled.
    saved: Option<LedgerTip>,
    stopped: Option<String>,
    snapshot: PathBuf,
    /// The chain's next offset when the snapshot was last written, and when.
    snapshot_at: Cell<(Option<u64>, Option<Instant>)>,
}

impl LedgerWatch {
    /// The watch of ledger `ledger` (its blocks topic `blocks`), going on from `saved` and
    /// the snapshot under `dir`; a fresh one starts at the genesis block.
    pub(crate) fn open(
        log: &dyn Log,
        ledger: &str,
        blocks: &str,
        saved: &PartitionState,
        dir: &Path,
    ) -> Result<LedgerWatch, MonitorError> {
        let fresh = open_chain(log, blocks, None)?;
        let snapshot = snapshot_file(&dir.join("ledgers").join(blocks));
        let mut chain = fresh.clone();
        let mut resume = Resume::Done;
        match &saved.ledger {
            _ if saved.stopped.is_some() => {}
            None => {}
            Some(t) if t.genesis != to_hex(&fresh.genesis_hash()) => {
                resume = Resume::GenesisChanged(t.genesis.clone());
            }
            Some(t) => match load_snapshot(&snapshot, &fresh, log)? {
                // A snapshot older than the tip the state names: the log must still hold
                // that tip too (a cut between the two would go unseen otherwise).
                SnapshotLoaded::Resumed(c) if c.tip().height < t.height => {
                    chain = *c;
                    resume = Resume::Check(t.clone());
                }
                SnapshotLoaded::Resumed(c) => chain = *c,
                _ => resume = Resume::Check(t.clone()),
            },
        }
        let mut tree = TreeBuilder::new();
        for h in 0..=chain.tip().height {
            tree.push(&chain_leaf(
                &chain.block_at(h).expect("a canonical height").0,
            ));
        }
        // A snapshot taken back is what is on disk: no need to write it again.
        let restored = matches!(resume, Resume::Done) && saved.ledger.is_some();
        let snapshot_at = Cell::new((restored.then(|| chain.next_offset()), None));
        Ok(LedgerWatch {
            ledger: ledger.to_owned(),
            blocks: blocks.to_owned(),
            chain,
            verifier: Verifier::new(),
            reader: None,
            tree,
            roots: VecDeque::new(),
            read: 0,
            ignored: 0,
            end: 0,
            resume,
            saved: saved.ledger.clone(),
            stopped: saved.stopped.clone(),
            snapshot,
            snapshot_at,
        })
    }

    /// The chain replayed so far (its genesis names the sealers whose checkpoints count).
    pub(crate) fn replayed(&self) -> &Chain {
        &self.chain
    }

    fn stop(&mut self, events: &mut Vec<Event>, event: Event, why: String) {
        events.push(event);
        self.stopped = Some(why);
    }

    /// Settles the resume point; false when the pass must stop here.
    fn settle_resume(
        &mut self,
        log: &dyn Log,
        end: u64,
        events: &mut Vec<Event>,
    ) -> Result<bool, LogError> {
        match self.resume.clone() {
            Resume::Done => Ok(true),
            Resume::GenesisChanged(was) => {
                let offset = self.chain.block_at(0).map_or(0, |(_, o)| o);
                let detail = format!(
                    "genesis_changed: the genesis block hashes to {}, but the monitor verified \
                     the ledger from genesis {was}",
                    to_hex(&self.chain.genesis_hash())
                );
                let why = "the genesis block changed".to_owned();
                self.stop(events, Event::Tamper { offset, detail }, why);
                Ok(false)
            }
            Resume::Check(t) => {
                if end <= t.offset {
                    let verified = t.offset + 1;
                    let why = format!("the log ends at {end}, below what was verified");
                    self.stop(events, Event::EndBelow { end, verified }, why);
                    return Ok(false);
                }
                if block_hash_at(log, &self.blocks, t.offset)? != from_hex(&t.hash) {
                    let event = Event::ResumePointChanged { offset: t.offset };
                    self.stop(
                        events,
                        event,
                        "the block at the resume point changed".into(),
                    );
                    return Ok(false);
                }
                // The log still holds the tip: reading goes on after what the chain in memory
                // observed (from genesis again when only the snapshot was lost).
                self.resume = Resume::Done;
                Ok(true)
            }
        }
    }

    fn pass_inner(&mut self, log: &dyn Log, events: &mut Vec<Event>) -> Result<(), LogError> {
        let end = log.end_offset(&self.blocks, 0)?;
        self.end = end;
        if self.reader.as_ref().is_some_and(|r| r.position() > end) {
            // The log's end moved below what the live reader read: cut or replaced.
            self.reopen();
        }
        if !self.settle_resume(log, end, events)? {
            return Ok(());
        }
        let next = self.chain.next_offset();
        if end < next {
            let why = format!("the log ends at {end}, below what was verified");
            self.stop(
                events,
                Event::EndBelow {
                    end,
                    verified: next,
                },
                why,
            );
            return Ok(());
        }
        if self.reader.is_none() {
            self.reader = Some(log.reader(&self.blocks, 0, next)?);
        }
        let mut budget = PASS_BUDGET;
        let mut stuck = false;
        while budget > 0 {
            let reader = self.reader.as_mut().expect("opened above");
            if reader.position() >= end {
                break;
            }
            let recs = reader.poll(1024, Duration::from_millis(200))?;
            if recs.is_empty() {
                stuck = true;
                break;
            }
            budget = budget.saturating_sub(recs.len() as u64);
            for r in recs {
                if r.offset < self.chain.next_offset() {
                    continue;
                }
                self.read += 1;
                let seen = self
                    .chain
                    .observe(r.offset, r.record.value.as_deref(), &self.verifier);
                match seen.verdict {
                    Verdict::Canonical => self.grow(seen.hash.expect("a block"), events),
                    Verdict::Ignored(_) => self.ignored += 1,
                    Verdict::Finding(f) => {
                        let detail = format!("{}: {}", f.kind.as_str(), f.detail);
                        let event = Event::Tamper {
                            offset: f.offset,
                            detail,
                        };
                        self.stop(events, event, f.to_string());
                        return Ok(());
                    }
                }
            }
        }
        if stuck && log.cheap_readers() {
            // On the embedded log a poll below the end returns at once; one that returns
            // nothing reads a segment file that is no longer the partition's (its directory
            // was replaced under the reader).
            self.reopen();
        }
        Ok(())
    }

    /// Drops the live reader; the next pass checks that the log still holds the tip.
    fn reopen(&mut self) {
        self.reader = None;
        let tip = self.tip_state();
        self.saved = Some(tip.clone());
        self.resume = Resume::Check(tip);
    }

    /// The canonical tip as the state file names it.
    fn tip_state(&self) -> LedgerTip {
        let tip = self.chain.tip();
        LedgerTip {
            genesis: to_hex(&self.chain.genesis_hash()),
            height: tip.height,
            hash: to_hex(&tip.hash),
            offset: tip.offset,
        }
    }

    /// A canonical block: its leaf into the tree, and the tree's root at the new size.
    fn grow(&mut self, hash: Hash, events: &mut Vec<Event>) {
        self.tree.push(&chain_leaf(&hash));
        let (size, root) = (self.tree.size(), self.tree.root());
        if self.roots.len() == ROOTS_KEPT {
            self.roots.pop_front();
        }
        self.roots.push_back((size, root));
        events.push(Event::Root { size, root });
    }
}

/// The hash of the block stored at `offset` of the blocks topic, if it holds one.
fn block_hash_at(log: &dyn Log, blocks: &str, offset: u64) -> Result<Option<Hash>, LogError> {
    let mut reader = log.reader(blocks, 0, offset)?;
    let started = std::time::Instant::now();
    loop {
        let recs = reader.poll(1, Duration::from_millis(200))?;
        if let Some(r) = recs.into_iter().find(|r| r.offset == offset) {
            let value = r.record.value.unwrap_or_default();
            return Ok(StoredBlock::parse(&value).ok().map(|b| b.hash));
        }
        if started.elapsed() > kchain_topic::stall_timeout() {
            return Err(LogError::io(
                format!("{blocks}/0: reading the resume offset {offset}"),
                std::io::ErrorKind::TimedOut.into(),
            ));
        }
    }
}

impl Watch for LedgerWatch {
    fn chain(&self) -> &str {
        &self.blocks
    }

    fn partition(&self) -> u32 {
        0
    }

    fn pass(&mut self, log: &dyn Log, _trust: &Trust) -> Result<Vec<Event>, LogError> {
        let mut events = Vec::new();
        if self.stopped.is_some() {
            return Ok(events);
        }
        let r = self.pass_inner(log, &mut events);
        if r.is_err() {
            self.reader = None;
        }
        r.map(|()| events)
    }

    fn tree_size(&self) -> u64 {
        self.tree.size()
    }

    fn root_at(&self, _log: &dyn Log, _trust: &Trust, size: u64) -> Option<Hash> {
        if size == self.tree.size() {
            return Some(self.tree.root());
        }
        if let Ok(i) = self.roots.binary_search_by_key(&size, |(s, _)| *s) {
            return Some(self.roots[i].1);
        }
        // Every canonical hash is held: the root at any size is rebuilt from them.
        let leaves: Option<Vec<Hash>> = (0..size)
            .map(|h| Some(chain_leaf(&self.chain.block_at(h)?.0)))
            .collect();
        Some(merkle::root(&leaves?))
    }

    fn entries(&self) -> u64 {
        self.tree.size()
    }

    fn read(&self) -> u64 {
        self.read
    }

    fn lag(&self) -> (u64, i64) {
        let lag = self.end.saturating_sub(self.chain.next_offset());
        (lag, self.chain.tip().timestamp_ms)
    }

    fn stopped(&self) -> bool {
        self.stopped.is_some()
    }

    fn behind(&self) -> bool {
        let at = self.reader.as_ref().map(|r| r.position());
        self.stopped.is_none() && at.is_some_and(|p| p < self.end)
    }

    fn settled(&self) -> bool {
        let at = self.reader.as_ref().map(|r| r.position());
        self.stopped.is_some() || at.is_some_and(|p| p >= self.end)
    }

    fn ledger(&self) -> Option<&str> {
        Some(&self.ledger)
    }

    fn ledger_figures(&self) -> Option<LedgerFigures> {
        Some(LedgerFigures {
            ledger: self.ledger.clone(),
            height: self.chain.tip().height,
            ignored: self.ignored,
        })
    }

    fn save(&self, into: &mut PartitionState, _dir: &Path, last: bool) -> Result<(), MonitorError> {
        into.stopped = self.stopped.clone();
        if !matches!(self.resume, Resume::Done) {
            // The chain in memory is not the one verified before: keep the saved tip.
            into.ledger = self.saved.clone();
            return Ok(());
        }
        let next = self.chain.next_offset();
        let (at, when) = self.snapshot_at.get();
        let due = last || when.is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY);
        if at != Some(next) && due {
            save_snapshot(&self.chain, &self.snapshot)?;
            self.snapshot_at.set((Some(next), Some(Instant::now())));
        }
        into.ledger = Some(self.tip_state());
        into.entries = self.tree.size();
        into.tree_size = self.tree.size();
        Ok(())
    }
}

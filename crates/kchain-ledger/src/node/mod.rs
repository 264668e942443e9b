//! The ledger node: follows the blocks topic into the canonical chain, snapshots it, and
//! with a sealer key seals blocks from the transactions topic.
//!
//! ```text
//!             ┌──────────── step() ─────────────────────────────────────────────┐
//! blocks ───> │ follow: observe new records ──> Chain (state, tip)             │
//! topic       │         canonical block ──> pool.advance(its source ranges)     │
//!             │ seal:   ingest transactions ──> pool ──> build ──> append ──────┼──> blocks
//!             │         (one phase per step, see node/sealer.rs)                │     topic
//!             │ snapshot every N canonical blocks ──> <state dir>/snapshot.json │
//!             │ sealer: checkpoint every N blocks / T s / on stop ──────────────┼──> blocks
//!             └─────────────────────────────────────────────────────────────────┘     .checkpoints
//! ```
//!
//! A finding (tampering in the blocks topic) stops the node with
//! [`LedgerError::Tampered`]: it never seals on top of a log that was changed. Nor on a log
//! that no longer holds the tip of the node's own snapshot (blocks cut off the end, or
//! replaced): the snapshot is discarded and, once the node has caught up, its tip must be
//! canonical.

pub(crate) mod pool;
pub(crate) mod rejected;
pub(crate) mod sealer;
pub(crate) mod snapshot;
pub(crate) mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kchain_core::{Hash, KeyId, WriterKey};
use kchain_log::{Log, Reader};

use crate::checkpoints::{CheckpointOptions, Publisher};
use crate::consensus::chain::Chain;
use crate::consensus::finding::{Finding, FindingKind, IgnoreReason, Observed, Verdict};
use crate::consensus::validate::Verifier;
use crate::error::LedgerError;
use crate::node::sealer::{Phase, ReadBack, SealEvent, SealOptions, Sealer};
use crate::node::snapshot::Loaded;
use crate::node::store::open_chain;

/// Records of the blocks topic read per step.
const FOLLOW_MAX: usize = 256;
/// How many blocks' worth of transactions (of [`crate::SealOptions::block_txs`], at least
/// 1,024) a sealer's pool reads ahead, judged or being judged: a bound on its memory (an
/// entry is about half a kilobyte). The ingest workers verify only what the node's thread
/// has handed them, and that thread blocks while it appends a block (an fsync of up to a
/// megabyte, 2-30 ms on this project's machines) and reads it back; a look-ahead of 4
/// blocks ran out during such waits and left the cores idle (both of rayon's threads
/// asleep 50-95 ms in each of 5 runs of 100,000 transfers under `perf sched` on a loaded
/// machine; at 16, 14-49 ms in 4 runs of 5 and 145 ms in the fifth).
const LOOK_AHEAD_BLOCKS: usize = 16;

/// How a node runs.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The ledger's blocks topic (its genesis names the other topics).
    pub blocks_topic: String,
    /// Where snapshots go; `None`: no snapshots.
    pub state_dir: Option<PathBuf>,
    /// Canonical blocks between snapshots (0: only when the node stops).
    pub snapshot_every: u64,
    /// The genesis hash the ledger must have, if known.
    pub expected_genesis: Option<Hash>,
    /// When a sealing node publishes signed checkpoints of the blocks chain (see
    /// [`CheckpointOptions`]); `None`: never. A node that does not seal publishes none.
    pub checkpoints: Option<CheckpointOptions>,
}

impl NodeOptions {
    pub fn new(blocks_topic: &str) -> Self {
        NodeOptions {
            blocks_topic: blocks_topic.to_owned(),
            state_dir: None,
            snapshot_every: 100,
            expected_genesis: None,
            checkpoints: Some(CheckpointOptions::default()),
        }
    }
}

/// Something a node did or saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node resumed from a snapshot at this height.
    Resumed { height: u64 },
    /// A snapshot was found and discarded.
    SnapshotDiscarded(String),
    /// A block became canonical.
    Canonical {
        offset: u64,
        height: u64,
        hash: Hash,
        txs: u32,
        sealer: KeyId,
    },
    /// A record of the blocks topic was ignored.
    Ignored {
        offset: u64,
        height: Option<u64>,
        reason: IgnoreReason,
    },
    /// A sealing step.
    Seal(SealEvent),
    /// A snapshot was written at this height.
    Snapshot { height: u64 },
    /// A signed checkpoint of `size` blocks was published at `offset` of the checkpoints
    /// topic.
    Checkpoint { size: u64, root: Hash, offset: u64 },
}

/// Counters of a node's life.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub canonical: u64,
    pub ignored: u64,
    /// Blocks this node built, appended, and saw win / lose.
    pub won: u64,
    pub lost: u64,
    pub abandoned: u64,
    /// Transactions in this node's winning blocks.
    pub sealed_txs: u64,
    /// Wall time the node's thread spent ingesting transactions: reading them, handing
    /// them to the ingest workers and queueing what they judged (not waiting for them).
    pub ingest_time: Duration,
    /// Wall time the node's thread spent building blocks: deciding their transactions
    /// against the state, the items root, the JSON, the signature.
    pub build_time: Duration,
}

/// A ledger node over a [`Log`].
pub struct Node<'a> {
    log: &'a dyn Log,
    chain: Chain,
    verifier: Arc<Verifier>,
    reader: Box<dyn Reader>,
    opts: NodeOptions,
    sealer: Option<Sealer>,
    checkpoints: Option<Publisher>,
    since_snapshot: u64,
    stats: NodeStats,
}

impl<'a> Node<'a> {
    /// Opens a node: reads the genesis, resumes from a matching snapshot, and catches up
    /// with the blocks topic. With `seal`, the node also seals with that key.
    pub fn open(
        log: &'a dyn Log,
        opts: NodeOptions,
        seal: Option<(WriterKey, SealOptions)>,
        events: &mut Vec<Event>,
    ) -> Result<Node<'a>, LedgerError> {
        let mut chain = open_chain(log, &opts.blocks_topic, opts.expected_genesis)?;
        let anchor = resume(log, &opts, &mut chain, events)?;
        let reader = log.reader(&opts.blocks_topic, 0, chain.next_offset())?;
        let mut node = Node {
            log,
            chain,
            verifier: Arc::new(Verifier::new()),
            reader,
            opts,
            sealer: None,
            checkpoints: None,
            since_snapshot: 0,
            stats: NodeStats::default(),
        };
        // No snapshot may replace the discarded one before its tip is found canonical.
        let snapshot_every = node.opts.snapshot_every;
        if anchor.is_some() {
            node.opts.snapshot_every = 0;
        }
        node.catch_up(events)?;
        if let Some((height, hash)) = anchor {
            let end = log.end_offset(&node.opts.blocks_topic, 0)?;
            if let Some(f) = node.chain.anchor_finding(height, &hash, end) {
                // Never seal on a chain shorter than, or other than, what this node saw.
                return Err(LedgerError::Tampered(Box::new(f)));
            }
            node.opts.snapshot_every = snapshot_every;
        }
        if let Some((key, seal_opts)) = seal {
            if let Some(copts) = node.opts.checkpoints.clone() {
                node.checkpoints = Some(Publisher::open(
                    log,
                    &node.chain,
                    &node.opts.blocks_topic,
                    &key,
                    copts,
                )?);
            }
            node.sealer = Some(Sealer::new(log, &node.chain, key, seal_opts)?);
        }
        Ok(node)
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    /// Stops waiting for more transactions: from now on a sealing node cuts a block from
    /// what its pool holds as soon as everything it has read is judged, rather than waiting
    /// [`SealOptions::block_ms`] for a partial block to fill. For a node told that no more
    /// transactions are coming (the benchmark, once its submitter is done), so that the last
    /// block is not held back for transactions that will not arrive. Only when blocks are cut
    /// changes: what a block may hold and how it is validated do not.
    pub fn drain(&mut self) {
        if let Some(s) = &mut self.sealer {
            s.draining = true;
        }
    }

    /// The signature verifier (shared with whatever the node is embedded in).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Reads the blocks topic up to its current end. The checks made on opening (the
    /// snapshot's tip, the sealer's own checkpoints) need every block the log holds, so a poll
    /// that comes back empty early is retried (for up to 10 s) rather than taken as the end:
    /// a chain cut short by a slow poll must not look like a truncation.
    pub fn catch_up(&mut self, events: &mut Vec<Event>) -> Result<(), LedgerError> {
        let end = self.log.end_offset(&self.opts.blocks_topic, 0)?;
        let mut empty = 0;
        while self.chain.next_offset() < end && empty < 50 {
            if self.follow(Duration::from_millis(200), events)? == 0 {
                empty += 1;
            } else {
                empty = 0;
            }
        }
        Ok(())
    }

    /// Observes the blocks that arrive within `wait`. Returns how many records it read.
    pub fn follow(
        &mut self,
        wait: Duration,
        events: &mut Vec<Event>,
    ) -> Result<usize, LedgerError> {
        let records = self.reader.poll(FOLLOW_MAX, wait)?;
        let n = records.len();
        for r in records {
            let value = r.record.value.as_deref();
            let back = match &mut self.sealer {
                Some(s) => s.read_back(r.offset, value),
                None => ReadBack::NotOwn,
            };
            if r.offset < self.chain.next_offset() {
                if let ReadBack::Changed = back {
                    return Err(LedgerError::Tampered(Box::new(own_block_changed(r.offset))));
                }
                continue;
            }
            let seen = match back {
                ReadBack::Unobserved(own) => self.chain.observe_own(r.offset, *own, &self.verifier),
                _ => self.chain.observe(r.offset, value, &self.verifier),
            };
            self.record(seen, events)?;
        }
        if self.opts.snapshot_every > 0 && self.since_snapshot >= self.opts.snapshot_every {
            self.save_snapshot(events)?;
        }
        self.publish_pushed(events)?;
        if self
            .checkpoints
            .as_ref()
            .is_some_and(|p| p.due(&self.chain))
        {
            self.checkpoint_now(false, events)?;
        }
        Ok(n)
    }

    fn record(&mut self, seen: Observed, events: &mut Vec<Event>) -> Result<(), LedgerError> {
        match seen.verdict {
            Verdict::Canonical => {
                let h = seen.header.expect("a canonical block has a header");
                self.stats.canonical += 1;
                self.since_snapshot += 1;
                if let Some(s) = &mut self.sealer {
                    s.pool.advance(self.log, &h.sources)?;
                }
                events.push(Event::Canonical {
                    offset: seen.offset,
                    height: h.height,
                    hash: seen.hash.unwrap_or_default(),
                    txs: h.tx_count,
                    sealer: h.sealer,
                });
            }
            Verdict::Ignored(reason) => {
                self.stats.ignored += 1;
                events.push(Event::Ignored {
                    offset: seen.offset,
                    height: seen.header.map(|h| h.height),
                    reason,
                });
            }
            Verdict::Finding(f) => return Err(LedgerError::Tampered(Box::new(f))),
        }
        Ok(())
    }

    /// Does one unit of work: follow new blocks, or one sealing phase. Returns whether it did
    /// anything. Dropping the node between any two steps is a safe crash.
    pub fn step(&mut self, events: &mut Vec<Event>) -> Result<bool, LedgerError> {
        if self.follow(Duration::ZERO, events)? > 0 {
            return Ok(true);
        }
        let Some(sealer) = self.sealer.as_mut() else {
            return Ok(false);
        };
        let tip = self.chain.tip().hash;
        let phase = std::mem::replace(&mut sealer.phase, Phase::Gathering);
        let event = match phase {
            Phase::Gathering => match gather(sealer, &self.chain, &self.verifier, &mut self.stats)?
            {
                Ok(built) => built,
                Err(ingested) => {
                    if !ingested {
                        sealer.release_idle();
                    }
                    return Ok(ingested);
                }
            },
            Phase::Built(c) | Phase::RejectionsWritten(c) if c.block.header.prev != tip => {
                self.stats.abandoned += 1;
                SealEvent::Abandoned {
                    height: c.block.header.height,
                }
            }
            Phase::Built(c) => {
                sealer.write_rejections(self.log, &c)?;
                let ev = SealEvent::Rejected {
                    count: c.rejections.len(),
                };
                sealer.phase = Phase::RejectionsWritten(c);
                ev
            }
            Phase::RejectionsWritten(c) => {
                let (hash, height, txs) = (c.hash, c.block.header.height, c.block.txs.len());
                let offset = sealer.write_block(self.log, *c)?;
                sealer.phase = Phase::Appended {
                    offset,
                    hash,
                    height,
                    txs,
                };
                events.push(Event::Seal(SealEvent::Appended { height, offset }));
                self.observe_own(events)?;
                return Ok(true);
            }
            appended @ Phase::Appended { .. } => {
                match confirm(&self.chain, &mut self.stats, &appended) {
                    Some(ev) => ev,
                    None => {
                        sealer.phase = appended;
                        sealer.release_idle();
                        return Ok(false);
                    }
                }
            }
        };
        events.push(Event::Seal(event));
        Ok(true)
    }

    /// Observes the block this sealer just appended without waiting to read it back, when
    /// the chain has observed every record before it: the log acknowledged it at that
    /// offset, so reading it back would give the same bytes. They are still compared with
    /// what the log holds when the reader reaches them ([`ReadBack::Changed`]).
    fn observe_own(&mut self, events: &mut Vec<Event>) -> Result<(), LedgerError> {
        let next = self.chain.next_offset();
        let parsed = self
            .sealer
            .as_mut()
            .and_then(|s| s.own.as_mut())
            .filter(|o| o.offset == next)
            .and_then(|o| o.parsed.take());
        if let Some(own) = parsed {
            let seen = self.chain.observe_own(next, own, &self.verifier);
            self.record(seen, events)?;
        }
        Ok(())
    }

    /// Whether the node has read every block and, when sealing, has read every transaction
    /// and holds none undecided.
    pub fn caught_up(&self) -> Result<bool, LedgerError> {
        if self.chain.next_offset() < self.log.end_offset(&self.opts.blocks_topic, 0)? {
            return Ok(false);
        }
        match &self.sealer {
            None => Ok(true),
            Some(s) => Ok(matches!(s.phase, Phase::Gathering)
                && s.pool.len() == 0
                && s.pool.in_flight() == 0
                && s.pool.read_all(self.log)?),
        }
    }

    /// Writes a snapshot now (when the node has a state directory).
    pub fn save_snapshot(&mut self, events: &mut Vec<Event>) -> Result<(), LedgerError> {
        if let Some(dir) = &self.opts.state_dir {
            snapshot::save(&self.chain, &snapshot::snapshot_file(dir))?;
            self.since_snapshot = 0;
            events.push(Event::Snapshot {
                height: self.chain.tip().height,
            });
        }
        Ok(())
    }

    /// Signs and publishes a checkpoint of the canonical chain now, if this node seals with
    /// checkpoints on and the chain grew since its last one. Returns the signed note. In push
    /// mode, waits (a bounded time) for the witnesses and publishes it with their
    /// cosignatures.
    pub fn publish_checkpoint(
        &mut self,
        events: &mut Vec<Event>,
    ) -> Result<Option<kchain_core::SignedNote>, LedgerError> {
        self.checkpoint_now(true, events)
    }

    /// Signs a checkpoint (see [`Node::publish_checkpoint`]); `settle`: wait for its push.
    fn checkpoint_now(
        &mut self,
        settle: bool,
        events: &mut Vec<Event>,
    ) -> Result<Option<kchain_core::SignedNote>, LedgerError> {
        let Some(p) = &mut self.checkpoints else {
            return Ok(None);
        };
        let mut published = Vec::new();
        let note = p.publish(self.log, &self.chain, &mut published)?;
        if settle {
            p.settle(self.log, &self.chain, &mut published)?;
        }
        events.extend(published.into_iter().map(checkpoint_event));
        Ok(note)
    }

    /// Publishes the checkpoints whose pushes to the witnesses are over; never waits.
    fn publish_pushed(&mut self, events: &mut Vec<Event>) -> Result<(), LedgerError> {
        let Some(p) = &mut self.checkpoints else {
            return Ok(());
        };
        let mut published = Vec::new();
        p.publish_pushed(self.log, &mut published)?;
        events.extend(published.into_iter().map(checkpoint_event));
        Ok(())
    }

    /// Runs until `stop` is set or, with `until_idle`, until [`Node::caught_up`]; reports
    /// every event to `on_event`; writes a snapshot and, when sealing, a checkpoint at the
    /// end.
    pub fn run(
        &mut self,
        until_idle: bool,
        stop: &AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), LedgerError> {
        let mut events = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let worked = self.step(&mut events)?;
            events.drain(..).for_each(|e| on_event(&e));
            if !worked {
                if until_idle && self.caught_up()? {
                    break;
                }
                self.follow(Duration::from_millis(5), &mut events)?;
                events.drain(..).for_each(|e| on_event(&e));
            }
        }
        self.save_snapshot(&mut events)?;
        self.publish_checkpoint(&mut events)?;
        events.drain(..).for_each(|e| on_event(&e));
        Ok(())
    }
}

/// The finding when the log holds other bytes at the offset of a block this sealer appended
/// and observed than the block it appended.
fn own_block_changed(offset: u64) -> Finding {
    Finding {
        offset,
        height: None,
        kind: FindingKind::AnchorMismatch,
        detail: "this node appended a block at this offset and took it as read, but the log \
                 now holds other bytes there: it was changed after it was stored"
            .into(),
    }
}

/// The event of a checkpoint published at `offset` of the checkpoints topic.
fn checkpoint_event((c, offset): (kchain_core::Checkpoint, u64)) -> Event {
    Event::Checkpoint {
        size: c.size(),
        root: *c.root(),
        offset,
    }
}

/// The gathering phase: ingests transactions into the pool and, when a block is due, builds
/// it. `Ok(the event)` when it built one, else `Err(whether it ingested anything)`.
fn gather(
    sealer: &mut Sealer,
    chain: &Chain,
    verifier: &Arc<Verifier>,
    stats: &mut NodeStats,
) -> Result<Result<SealEvent, bool>, LedgerError> {
    let cap = LOOK_AHEAD_BLOCKS * sealer.opts.block_txs.max(1024);
    let started = Instant::now();
    let mut n = sealer
        .pool
        .ingest(chain.genesis(), chain.chain_id(), verifier, cap)?;
    stats.ingest_time += started.elapsed();
    if n == 0 && !sealer.due() {
        // Nothing new to read: the transactions read are being judged, if any.
        n = sealer.pool.wait_judged();
    }
    if !sealer.due() {
        return Ok(Err(n > 0));
    }
    let started = Instant::now();
    let c = sealer.build(chain)?;
    stats.build_time += started.elapsed();
    let ev = SealEvent::Built {
        height: c.block.header.height,
        txs: c.block.txs.len(),
        rejected: c.rejections.len(),
    };
    sealer.phase = Phase::Built(Box::new(c));
    Ok(Ok(ev))
}

/// Whether the block a sealer appended (`appended`, a [`Phase::Appended`]) won: `None`
/// while the chain has not read that far yet, else the event, counted in `stats`.
fn confirm(chain: &Chain, stats: &mut NodeStats, appended: &Phase) -> Option<SealEvent> {
    let &Phase::Appended {
        offset,
        hash,
        height,
        txs,
    } = appended
    else {
        return None;
    };
    if chain.next_offset() <= offset {
        return None;
    }
    let won = chain.block_at(height).map(|b| b.0) == Some(hash);
    if won {
        stats.won += 1;
        stats.sealed_txs += txs as u64;
    } else {
        stats.lost += 1;
    }
    Some(SealEvent::Confirmed {
        height,
        offset,
        won,
    })
}

/// Resumes `chain` from the snapshot in the node's state directory when it matches the log.
/// Returns the (height, hash) of a discarded snapshot's tip: a snapshot of this ledger that
/// is discarded because the log no longer holds its tip is still the node's own record of a
/// block it saw canonical, checked once the node has caught up.
fn resume(
    log: &dyn Log,
    opts: &NodeOptions,
    chain: &mut Chain,
    events: &mut Vec<Event>,
) -> Result<Option<(u64, Hash)>, LedgerError> {
    let Some(dir) = &opts.state_dir else {
        return Ok(None);
    };
    let file = snapshot::snapshot_file(dir);
    Ok(match snapshot::load(&file, chain, log)? {
        Loaded::Resumed(c) => {
            events.push(Event::Resumed {
                height: c.tip().height,
            });
            *chain = *c;
            None
        }
        Loaded::Missing => None,
        Loaded::Discarded(why) => {
            events.push(Event::SnapshotDiscarded(why));
            snapshot::anchor(&file)
                .filter(|(genesis, _, _)| *genesis == chain.genesis_hash())
                .map(|(_, height, hash)| (height, hash))
        }
    })
}

//! Sealing: cutting a block from the pool, against the state of the canonical tip, and
//! appending it, one small step at a time so that a crash between any two steps is safe.
//!
//! ```text
//!            cut (N txs or T ms)                  tip moved? ──> abandon (back to Gathering)
//! Gathering ─────────────────────> Built ──append rejections──> RejectionsWritten
//!     ^                                                               │ append block
//!     └──────── the blocks topic reached our offset ◄── Appended(o) ◄─┘
//!               (won: canonical; lost: stale, re-seal what is still undecided)
//! ```
//!
//! Exactly once without Kafka transactions: a block records, per partition, the offsets it
//! decided (`from..to`, contiguous with the previous canonical block). Every transaction in
//! those ranges is either in the block or rejected; the next block starts where it ended. A
//! restarted sealer resumes from the ranges of the last canonical block, so nothing accepted
//! is lost, and the transaction-id index of the state keeps anything from being sealed twice.
//! A crash after the rejections but before the block leaves void rejection records (see
//! [`crate::node::rejected`]); a crash after the block is harmless (the block is in the log).

use std::sync::Arc;
use std::time::Duration;

use kchain_core::{Hash, WriterKey};
use kchain_log::{Log, Record};

use crate::consensus::block::{
    Block, BlockHeader, SealedTx, SourceRange, StoredBlock, BLOCK_VERSION,
};
use crate::consensus::chain::{Chain, OwnBlock};
use crate::consensus::reject::RejectReason;
use crate::consensus::state::{Delta, Pending};
use crate::consensus::tx::{Address, Transaction};
use crate::error::LedgerError;
use crate::node::pool::{Entry, Pool};
use crate::node::rejected::{Rejection, Submitted};
use crate::node::store::{now_ms, SharedAppender};

/// How a sealer cuts blocks.
#[derive(Clone, Debug)]
pub struct SealOptions {
    /// Cut a block once this many transactions are waiting.
    pub block_txs: usize,
    /// Or once the oldest waiting transaction has waited this long.
    pub block_ms: u64,
    /// Keep a block's JSON under about this many bytes (Kafka's default limit is 1 MB).
    pub max_block_bytes: usize,
    /// Keep appenders open between appends. `None`: yes on Kafka; on the embedded log (whose
    /// appender is exclusive: other sealers wait) the blocks appender for consecutive blocks
    /// within 500 ms of opening it, then closed at the next block or when the sealer idles.
    pub hold_appenders: Option<bool>,
}

impl Default for SealOptions {
    fn default() -> Self {
        SealOptions {
            block_txs: 1000,
            block_ms: 200,
            max_block_bytes: 900_000,
            hold_appenders: None,
        }
    }
}

/// How long a sealer keeps an exclusive appender (the embedded log's) over consecutive
/// blocks, unless [`SealOptions::hold_appenders`] says otherwise: closing it costs an fsync
/// of the partition, and opening it after another process appended a recovery scan of the
/// partition's last segment (at 100 ms that was 4% of a busy sealer's CPU; reopening one this
/// process closed cleanly no longer scans), and another sealer waits for it at most this
/// long.
const APPENDER_LEASE: Duration = Duration::from_millis(500);

/// A block built but not yet known to have won.
pub(crate) struct Candidate {
    pub block: Block,
    pub hash: Hash,
    pub json: Vec<u8>,
    pub rejections: Vec<Rejection>,
    /// The state changes of the block, computed over the state of the tip it is built on
    /// (`None`: the reward overflows the sealer's balance).
    pub delta: Option<Delta>,
}

pub(crate) enum Phase {
    Gathering,
    Built(Box<Candidate>),
    RejectionsWritten(Box<Candidate>),
    Appended {
        offset: u64,
        hash: Hash,
        height: u64,
        txs: usize,
    },
}

/// What a sealing step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealEvent {
    /// Built a candidate block.
    Built {
        height: u64,
        txs: usize,
        rejected: usize,
    },
    /// Appended the candidate's rejections.
    Rejected { count: usize },
    /// Appended the candidate at `offset`.
    Appended { height: u64, offset: u64 },
    /// The tip moved before the candidate was appended; it was dropped.
    Abandoned { height: u64 },
    /// Our block at `offset` became canonical (`won`) or lost the race.
    Confirmed { height: u64, offset: u64, won: bool },
}

/// A block this sealer appended, until it is read back from the log.
pub(crate) struct Own {
    pub offset: u64,
    pub json: Vec<u8>,
    /// The block as built, until the chain observes it.
    pub parsed: Option<OwnBlock>,
}

pub(crate) struct Sealer {
    pub key: WriterKey,
    /// The last block this sealer appended: its offset, JSON and parsed form (taken once
    /// the chain observes it), so that reading it back need not parse it again, and so that
    /// a block observed before it was read back is still compared with what the log holds.
    pub own: Option<Own>,
    pub opts: SealOptions,
    pub pool: Pool,
    pub phase: Phase,
    /// Cut a partial block as soon as the pool has judged everything it read, rather than
    /// waiting [`SealOptions::block_ms`] for more (see [`crate::Node::drain`]).
    pub draining: bool,
    blocks_out: SharedAppender,
    rejected_out: SharedAppender,
}

impl Sealer {
    pub fn new(
        log: &dyn Log,
        chain: &Chain,
        key: WriterKey,
        opts: SealOptions,
    ) -> Result<Self, LedgerError> {
        let g = chain.genesis();
        if g.sealer(&key.id()).is_none() {
            return Err(LedgerError::Invalid(format!(
                "key {} ('{}') is not an allowed sealer of ledger '{}'",
                key.id(),
                key.name(),
                g.chain
            )));
        }
        let hold = opts.hold_appenders.unwrap_or(!log.exclusive_appenders());
        let mut blocks_out = SharedAppender::new(&g.topics.blocks, 0, hold);
        if opts.hold_appenders.is_none() {
            blocks_out = blocks_out.with_lease(APPENDER_LEASE);
        }
        blocks_out.open(log)?;
        Ok(Sealer {
            pool: Pool::open(log, &g.topics.transactions, &chain.tip().sources)?,
            blocks_out,
            rejected_out: SharedAppender::new(&g.topics.rejected, 0, hold),
            phase: Phase::Gathering,
            draining: false,
            own: None,
            key,
            opts,
        })
    }

    /// Whether a block should be cut now: a full one is waiting, or the oldest transaction
    /// has waited long enough, or (draining) nothing read is still being judged.
    pub fn due(&self) -> bool {
        let n = self.pool.len();
        let waited = || {
            self.pool
                .oldest()
                .is_some_and(|t| t.elapsed() >= Duration::from_millis(self.opts.block_ms))
        };
        n >= self.opts.block_txs
            || (n > 0 && ((self.draining && self.pool.in_flight() == 0) || waited()))
    }

    /// Builds a candidate on the chain's tip from the pool.
    pub fn build(&self, chain: &Chain) -> Result<Candidate, LedgerError> {
        let g = chain.genesis();
        let tip = chain.tip();
        let max_txs = self.opts.block_txs.min(g.max_block_txs as usize).max(1);
        let candidates = self.pool.candidates(max_txs, self.opts.max_block_bytes);
        let (txs, rejections, mut pending) = decide(chain, &candidates);
        let mut to: Vec<u64> = tip.sources.iter().map(|s| s.to).collect();
        for e in &candidates {
            let t = &mut to[e.partition as usize];
            *t = (*t).max(e.offset + 1);
        }
        let header = BlockHeader {
            version: BLOCK_VERSION,
            chain: chain.chain_id(),
            height: tip.height + 1,
            prev: tip.hash,
            timestamp_ms: now_ms().max(tip.timestamp_ms),
            items_root: [0; 32],
            tx_count: 0,
            reward: g.reward,
            sealer: self.key.id(),
            sources: tip
                .sources
                .iter()
                .zip(&to)
                .map(|(s, to)| SourceRange {
                    partition: s.partition,
                    from: s.to,
                    to: *to,
                })
                .collect(),
            difficulty: g.difficulty,
            // Racing miners start apart so that they do not repeat each other's work.
            nonce: u64::from_le_bytes(self.key.id().0) ^ now_ms() as u64,
        };
        // The reward, credited as validating the block credits it (after its transactions).
        let sealer = g
            .sealer(&self.key.id())
            .map(|s| Address::of_key(s.key.as_bytes()));
        let delta = sealer
            .filter(|a| pending.credit(a, g.reward).is_ok())
            .map(|_| pending.into_delta(header.height));
        let block = Block::seal(header, txs, &self.key);
        Ok(Candidate {
            hash: block.hash(),
            json: block.to_json(),
            block,
            rejections,
            delta,
        })
    }

    /// Appends the candidate's rejections to the rejected topic.
    pub fn write_rejections(&mut self, log: &dyn Log, c: &Candidate) -> Result<(), LedgerError> {
        if c.rejections.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let records: Vec<Record> = c
            .rejections
            .iter()
            .map(|r| r.to_record(&c.hash, c.block.header.height, self.key.id(), now))
            .collect();
        self.rejected_out.append(log, &records)?;
        Ok(())
    }

    /// Closes the appenders whose lease is over (when the sealer has nothing to do, so
    /// that other sealers get their turn).
    pub fn release_idle(&mut self) {
        self.blocks_out.release_expired();
        self.rejected_out.release_expired();
    }

    /// What the record read back at `offset` (with `value`) says about the last block this
    /// sealer appended; forgets the block once it is read back.
    pub fn read_back(&mut self, offset: u64, value: Option<&[u8]>) -> ReadBack {
        let Some(own) = self.own.take_if(|o| o.offset == offset) else {
            return ReadBack::NotOwn;
        };
        let same = value == Some(own.json.as_slice());
        match (own.parsed, same) {
            (Some(parsed), true) => ReadBack::Unobserved(Box::new(parsed)),
            (Some(_), false) => ReadBack::NotOwn,
            (None, true) => ReadBack::Matches,
            (None, false) => ReadBack::Changed,
        }
    }

    /// Appends the candidate block; returns its offset.
    pub fn write_block(&mut self, log: &dyn Log, c: Candidate) -> Result<u64, LedgerError> {
        let built_on = c.block.header.prev;
        let block = StoredBlock::from_block(c.block, c.hash);
        let record = Record {
            key: Some(block.header.height.to_string().into_bytes()),
            value: Some(c.json),
            headers: vec![],
            timestamp_ms: block.header.timestamp_ms,
        };
        let offsets = self.blocks_out.append(log, std::slice::from_ref(&record))?;
        self.own = Some(Own {
            offset: offsets[0],
            json: record.value.unwrap_or_default(),
            parsed: Some(OwnBlock {
                block,
                built_on,
                delta: c.delta,
            }),
        });
        Ok(offsets[0])
    }
}

/// A record read back at the offset of the sealer's own last block.
pub(crate) enum ReadBack {
    /// Not the sealer's block (another offset, or other bytes than it appended, which the
    /// chain judges like any record).
    NotOwn,
    /// The block, not observed yet: the form it was built in.
    Unobserved(Box<OwnBlock>),
    /// The block, observed when it was appended (the chain had read everything before
    /// it), and the log holds the same bytes.
    Matches,
    /// The block was observed when it was appended, but the log now holds other bytes at
    /// its offset: it was changed after it was stored.
    Changed,
}

/// Decides each candidate against the state of the tip: sealed (in block order) or rejected.
/// A transfer that fails only for its nonce being ahead or for want of funds is tried again
/// after the others, since a transaction from another partition may come first in the block
/// and make it valid.
///
/// Returns the state changes of the sealed transactions too, for the block's validation.
fn decide<'c>(
    chain: &'c Chain,
    candidates: &[&Entry],
) -> (Vec<SealedTx>, Vec<Rejection>, Pending<'c>) {
    let mut pending = Pending::new(chain.state());
    let mut sealed = Vec::with_capacity(candidates.len());
    let mut rejected = Vec::new();
    let mut retry: Vec<(&Entry, &Arc<Transaction>, RejectReason)> = Vec::new();
    let reject =
        |e: &Entry, tx: Option<&Transaction>, reason: RejectReason, raw: Submitted| Rejection {
            partition: e.partition,
            offset: e.offset,
            reason,
            tx_id: tx.map(|t| *t.id()),
            raw,
        };
    let seal = |e: &Entry, tx: &Arc<Transaction>| SealedTx {
        tx: Transaction::clone(tx),
        partition: e.partition,
        offset: e.offset,
    };
    for e in candidates {
        match &e.verdict {
            Err((reason, raw)) => {
                let tx = raw.whole().and_then(|v| Transaction::from_json(v).ok());
                rejected.push(reject(e, tx.as_ref(), reason.clone(), raw.clone()));
            }
            Ok(tx) => match pending.apply(tx) {
                Ok(()) => sealed.push(seal(e, tx)),
                Err(r @ RejectReason::Overdraft { .. }) => retry.push((e, tx, r)),
                Err(r @ RejectReason::WrongNonce { expected, got }) if got > expected => {
                    retry.push((e, tx, r))
                }
                Err(r) => rejected.push(reject(e, Some(tx), r, Submitted::of(tx.to_json()))),
            },
        }
    }
    loop {
        let before = retry.len();
        let mut still = Vec::new();
        for (e, tx, _) in retry {
            match pending.apply(tx) {
                Ok(()) => sealed.push(seal(e, tx)),
                Err(r @ (RejectReason::Overdraft { .. } | RejectReason::WrongNonce { .. })) => {
                    still.push((e, tx, r))
                }
                Err(r) => rejected.push(reject(e, Some(tx), r, Submitted::of(tx.to_json()))),
            }
        }
        retry = still;
        if retry.len() == before || retry.is_empty() {
            break;
        }
    }
    for (e, tx, reason) in retry {
        rejected.push(reject(e, Some(tx), reason, Submitted::of(tx.to_json())));
    }
    (sealed, rejected, pending)
}

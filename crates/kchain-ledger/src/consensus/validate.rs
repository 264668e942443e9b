//! The consensus rules: what makes a block that extends the tip valid, and the checks of one
//! transaction that need no state.
//!
//! A block whose parent is the tip is valid when, in this order:
//!
//! 1. its version is 1, its height is the tip's + 1 and its timestamp is not before the tip's;
//! 2. its difficulty is the genesis difficulty and its hash has that many leading zero bits;
//! 3. its reward is the genesis reward and it has at most `max_block_txs` transactions;
//! 4. its sources list every transactions partition in order, each starting where the tip's
//!    ended (`from` = tip's `to`, `to >= from`), and every transaction's (partition, offset)
//!    lies in its partition's range, no two the same;
//! 5. every transaction passes [`check_static`] and the state rules of [`crate::consensus::state`], in
//!    block order, then the reward is credited to the sealer's address;
//! 6. every transaction signature verifies ([`crate::consensus::sig`], cofactored Ed25519).
//!
//! The chain id, the sealer's signature and the items root are checked before (see
//! [`crate::consensus::chain`]): a block that fails them is not merely invalid.

use std::fmt;
use std::sync::{Mutex, RwLock};

use curve25519_dalek::edwards::EdwardsPoint;
use kchain_core::{ChainId, Hash};
use rayon::prelude::*;

use crate::consensus::block::{
    leading_zero_bits, BlockHeader, SealedTx, SourceRange, BLOCK_VERSION,
};
use crate::consensus::digest_map::{DigestMap, DigestSet};
use crate::consensus::encoding::hex_lower;
use crate::consensus::genesis::Genesis;
use crate::consensus::reject::RejectReason;
use crate::consensus::sig::{self, SigError, SigItem};
use crate::consensus::state::{Delta, Pending, State};
use crate::consensus::tx::{Address, Transaction, TxBody, TxId};

/// What a block is built on: the tip of the canonical chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    pub hash: Hash,
    /// Offset of the tip in the blocks topic.
    pub offset: u64,
    pub timestamp_ms: i64,
    /// The tip's source ranges: the next block's ranges start at their `to`.
    pub sources: Vec<SourceRange>,
}

/// Why a block that extends the tip is not valid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidBlock {
    Version(u8),
    Height {
        expected: u64,
        got: u64,
    },
    Timestamp {
        parent: i64,
        got: i64,
    },
    Difficulty {
        expected: u8,
        got: u8,
    },
    ProofOfWork {
        zeros: u32,
        difficulty: u8,
    },
    Reward {
        expected: u64,
        got: u64,
    },
    TooManyTxs {
        count: usize,
        max: u32,
    },
    Sources(String),
    Tx {
        index: usize,
        id: TxId,
        reason: RejectReason,
    },
    RewardOverflow,
    UnknownSealer,
}

impl fmt::Display for InvalidBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidBlock::Version(v) => write!(f, "version {v}, expected {BLOCK_VERSION}"),
            InvalidBlock::Height { expected, got } => {
                write!(f, "height {got}, expected {expected}")
            }
            InvalidBlock::Timestamp { parent, got } => {
                write!(f, "timestamp {got} is before its parent's {parent}")
            }
            InvalidBlock::Difficulty { expected, got } => {
                write!(f, "difficulty {got}, the genesis says {expected}")
            }
            InvalidBlock::ProofOfWork { zeros, difficulty } => write!(
                f,
                "insufficient proof of work: {zeros} leading zero bits, {difficulty} required"
            ),
            InvalidBlock::Reward { expected, got } => {
                write!(f, "reward {got}, the genesis says {expected}")
            }
            InvalidBlock::TooManyTxs { count, max } => {
                write!(f, "{count} transactions, at most {max} allowed")
            }
            InvalidBlock::Sources(d) => write!(f, "source offsets: {d}"),
            InvalidBlock::Tx { index, id, reason } => {
                write!(f, "transaction {index} ({}): {reason}", hex_lower(id))
            }
            InvalidBlock::RewardOverflow => write!(f, "the reward overflows the sealer's balance"),
            InvalidBlock::UnknownSealer => write!(f, "the sealer is not allowed"),
        }
    }
}

/// The checks of a transaction that need no state: the chain, a positive amount, the size of
/// a data payload.
pub fn check_static(tx: &Transaction, chain: ChainId, g: &Genesis) -> Result<(), RejectReason> {
    if tx.chain() != chain {
        return Err(RejectReason::WrongChain);
    }
    match tx.body() {
        TxBody::Transfer { amount: 0, .. } => Err(RejectReason::ZeroAmount),
        TxBody::Data { .. } if tx.payload_len() > g.max_payload_bytes as usize => {
            Err(RejectReason::Oversize {
                size: tx.payload_len(),
                limit: g.max_payload_bytes as usize,
            })
        }
        _ => Ok(()),
    }
}

/// Checks transaction signatures, remembering decoded public keys and the signatures it has
/// already accepted. Sound because a verdict depends on the signature alone (cofactored
/// Ed25519, see `consensus/sig.rs`): a transaction checked when it arrived is not checked
/// again in a block.
#[derive(Default)]
pub struct Verifier {
    keys: RwLock<DigestMap<[u8; 32], Result<EdwardsPoint, SigError>>>,
    accepted: Mutex<DigestMap<TxId, [u8; 64]>>,
}

/// Remembered keys and signatures are forgotten past this many (a bound on memory).
const CACHE_LIMIT: usize = 1 << 20;

impl Verifier {
    pub fn new() -> Self {
        Verifier::default()
    }

    /// The decoded keys, in order: those remembered looked up under one read lock, the
    /// others decoded and then remembered under one write lock.
    fn keys<'k>(
        &self,
        bytes: impl ExactSizeIterator<Item = &'k [u8; 32]>,
    ) -> Vec<Result<EdwardsPoint, SigError>> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut missing = Vec::new();
        {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            for (i, b) in bytes.enumerate() {
                match keys.get(b) {
                    Some(k) => out.push(*k),
                    None => {
                        missing.push((i, b));
                        out.push(Err(SigError::BadKey));
                    }
                }
            }
        }
        if missing.is_empty() {
            return out;
        }
        // A new node meets every sender's key once (a point decompression and compression,
        // about 30 µs each): on every core, not on the thread that asked.
        let decoded: Vec<_> = missing
            .par_iter()
            .with_min_len(16)
            .map(|&(_, b)| sig::decode_key(b))
            .collect();
        for (&(i, _), key) in missing.iter().zip(decoded) {
            out[i] = key;
        }
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.len() + missing.len() > CACHE_LIMIT {
            keys.clear();
        }
        for (i, b) in missing {
            keys.insert(*b, out[i]);
        }
        out
    }

    /// Verdicts for `txs`, in order.
    pub fn check(&self, txs: &[&Transaction]) -> Vec<Result<(), RejectReason>> {
        let mut out: Vec<Result<(), RejectReason>> = vec![Ok(()); txs.len()];
        let mut todo: Vec<usize> = Vec::new();
        {
            let accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
            for (i, tx) in txs.iter().enumerate() {
                if accepted.get(tx.id()) != Some(tx.signature()) {
                    todo.push(i);
                }
            }
        }
        if todo.is_empty() {
            return out;
        }
        let keys = self.keys(todo.iter().map(|&i| txs[i].public_key()));
        let messages: Vec<[u8; 48]> = todo.iter().map(|&i| txs[i].signed_message()).collect();
        let mut items = Vec::with_capacity(todo.len());
        let mut item_of = Vec::with_capacity(todo.len());
        for (j, &i) in todo.iter().enumerate() {
            match &keys[j] {
                Ok(point) => {
                    item_of.push(i);
                    items.push(SigItem {
                        key: point,
                        key_bytes: txs[i].public_key(),
                        message: &messages[j],
                        signature: txs[i].signature(),
                    });
                }
                Err(_) => out[i] = Err(RejectReason::BadPublicKey),
            }
        }
        let verdicts = sig::verify_many(&items);
        let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        if accepted.len() + items.len() > CACHE_LIMIT {
            accepted.clear();
        }
        for (v, &i) in verdicts.iter().zip(&item_of) {
            match v {
                Ok(()) => {
                    accepted.insert(*txs[i].id(), *txs[i].signature());
                }
                Err(_) => out[i] = Err(RejectReason::BadSignature),
            }
        }
        out
    }

    /// Forgets accepted signatures of transactions that are now sealed (they can never be
    /// sealed again, so their verdict is not needed).
    pub fn forget(&self, ids: impl Iterator<Item = TxId>) {
        let mut accepted = self.accepted.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            accepted.remove(&id);
        }
    }
}

/// Validates a block whose parent is `tip` against the state at the tip; returns the state
/// changes. Requires `header.prev == tip.hash`.
pub fn validate(
    g: &Genesis,
    chain: ChainId,
    tip: &Tip,
    state: &State,
    header: &BlockHeader,
    txs: &[SealedTx],
    verifier: &Verifier,
) -> Result<Delta, InvalidBlock> {
    check_header(g, tip, header, txs.len())?;
    check_sources(tip, header, txs)?;
    let bad = |index: usize, reason: RejectReason| InvalidBlock::Tx {
        index,
        id: *txs[index].tx.id(),
        reason,
    };
    let mut pending = Pending::new(state);
    for (i, s) in txs.iter().enumerate() {
        check_static(&s.tx, chain, g).map_err(|r| bad(i, r))?;
        pending.apply(&s.tx).map_err(|r| bad(i, r))?;
    }
    let sealer = g
        .sealer(&header.sealer)
        .map(|s| Address::of_key(s.key.as_bytes()))
        .ok_or(InvalidBlock::UnknownSealer)?;
    pending
        .credit(&sealer, header.reward)
        .map_err(|_| InvalidBlock::RewardOverflow)?;
    let refs: Vec<&Transaction> = txs.iter().map(|s| &s.tx).collect();
    if let Some((i, Err(r))) = verifier
        .check(&refs)
        .into_iter()
        .enumerate()
        .find(|(_, v)| v.is_err())
    {
        return Err(bad(i, r));
    }
    Ok(pending.into_delta(header.height))
}

/// Validates a block this node built on `tip` (see [`crate::Chain`]'s own-block path): the
/// header and source rules only, since its transactions were decided against the state at
/// `tip` when it was built and their signatures verified when they were ingested.
pub(crate) fn validate_own(
    g: &Genesis,
    tip: &Tip,
    header: &BlockHeader,
    txs: &[SealedTx],
) -> Result<(), InvalidBlock> {
    check_header(g, tip, header, txs.len())?;
    check_sources(tip, header, txs)
}

/// The rules on a block's header alone: version, height and timestamp after its parent,
/// the genesis's difficulty (met by the header's hash) and reward, and at most the
/// genesis's transactions per block (`count`).
fn check_header(
    g: &Genesis,
    tip: &Tip,
    header: &BlockHeader,
    count: usize,
) -> Result<(), InvalidBlock> {
    if header.version != BLOCK_VERSION {
        return Err(InvalidBlock::Version(header.version));
    }
    if header.height != tip.height + 1 {
        return Err(InvalidBlock::Height {
            expected: tip.height + 1,
            got: header.height,
        });
    }
    if header.timestamp_ms < tip.timestamp_ms {
        return Err(InvalidBlock::Timestamp {
            parent: tip.timestamp_ms,
            got: header.timestamp_ms,
        });
    }
    if header.difficulty != g.difficulty {
        return Err(InvalidBlock::Difficulty {
            expected: g.difficulty,
            got: header.difficulty,
        });
    }
    let zeros = leading_zero_bits(&header.hash());
    if zeros < u32::from(g.difficulty) {
        return Err(InvalidBlock::ProofOfWork {
            zeros,
            difficulty: g.difficulty,
        });
    }
    if header.reward != g.reward {
        return Err(InvalidBlock::Reward {
            expected: g.reward,
            got: header.reward,
        });
    }
    if count > g.max_block_txs as usize {
        return Err(InvalidBlock::TooManyTxs {
            count,
            max: g.max_block_txs,
        });
    }
    Ok(())
}

fn check_sources(tip: &Tip, header: &BlockHeader, txs: &[SealedTx]) -> Result<(), InvalidBlock> {
    let err = |d: String| Err(InvalidBlock::Sources(d));
    if header.sources.len() != tip.sources.len() {
        return err(format!(
            "{} ranges, expected one per partition ({})",
            header.sources.len(),
            tip.sources.len()
        ));
    }
    for (s, prev) in header.sources.iter().zip(&tip.sources) {
        if s.partition != prev.partition {
            return err(format!("partition {} out of order", s.partition));
        }
        if s.from != prev.to {
            return err(format!(
                "partition {} starts at {}, but the previous block ended at {}",
                s.partition, s.from, prev.to
            ));
        }
        if s.to < s.from {
            return err(format!("partition {} ends before it starts", s.partition));
        }
    }
    let mut seen = DigestSet::with_capacity_and_hasher(txs.len(), Default::default());
    for (i, t) in txs.iter().enumerate() {
        let inside = header
            .sources
            .get(t.partition as usize)
            .is_some_and(|r| r.from <= t.offset && t.offset < r.to);
        if !inside {
            return err(format!(
                "transaction {i} comes from {}:{}, outside the block's ranges",
                t.partition, t.offset
            ));
        }
        if !seen.insert((t.partition, t.offset)) {
            return err(format!(
                "two transactions come from {}:{}",
                t.partition, t.offset
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kchain_core::WriterKey;

    /// Keys met for the first time are decoded together (on rayon's threads past 16): each
    /// verdict stays with its own transaction, the first time and from the cache.
    #[test]
    fn keys_decoded_together_keep_their_verdicts() {
        let chain = ChainId([5; 16]);
        let mut small_order = [0u8; 32];
        small_order[0] = 1; // the identity
        let txs: Vec<Transaction> = (0..70u8)
            .map(|i| {
                let key = WriterKey::from_seed("k", [i; 32]);
                let tx = Transaction::transfer(&key, chain, Address([1; 20]), 1, 1);
                if i % 9 == 4 {
                    let body = tx.body().clone();
                    Transaction::from_parts(chain, small_order, body, *tx.signature())
                } else if i % 11 == 6 {
                    let mut sig = *tx.signature();
                    sig[40] ^= 1;
                    Transaction::from_parts(chain, *tx.public_key(), tx.body().clone(), sig)
                } else {
                    tx
                }
            })
            .collect();
        let refs: Vec<&Transaction> = txs.iter().collect();
        let want: Vec<Result<(), RejectReason>> = (0..70)
            .map(|i| match i {
                i if i % 9 == 4 => Err(RejectReason::BadPublicKey),
                i if i % 11 == 6 => Err(RejectReason::BadSignature),
                _ => Ok(()),
            })
            .collect();
        let v = Verifier::new();
        assert_eq!(v.check(&refs), want);
        assert_eq!(v.check(&refs), want, "from the caches");
    }
}

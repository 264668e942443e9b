//! What clients and operators do with a ledger: create it, submit transactions, ask for a
//! balance, a nonce, a transaction's fate, and the canonical blocks.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kchain_core::{sha256, Hash};
use kchain_log::{Log, LogError, Record, TopicConfig};
use kchain_topic::partition_for_key;

use crate::consensus::block::{SourceRange, StoredBlock};
use crate::consensus::chain::Chain;
use crate::consensus::encoding::push_hex;
use crate::consensus::finding::{Finding, Verdict};
use crate::consensus::genesis::Genesis;
use crate::consensus::reject::RejectReason;
use crate::consensus::tx::{Address, Transaction, TxBody, TxId};
use crate::consensus::validate::{check_static, Verifier};
use crate::error::LedgerError;
use crate::node::rejected::RejectionRecord;
use crate::node::snapshot::{self, Loaded};
use crate::node::store::open_chain;
use crate::node::store::{now_ms, read_record, read_to_end, SharedAppender};

/// What `init` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initialised {
    pub genesis_hash: Hash,
    /// Topics created (existing empty ones are reused).
    pub created: Vec<String>,
    /// The blocks topic already held this very genesis.
    pub already: bool,
}

/// Creates a ledger's topics (unlimited retention) and appends its genesis block. Running it
/// again with the same genesis does nothing; with another genesis it fails.
pub fn init(log: &dyn Log, g: &Genesis, timestamp_ms: i64) -> Result<Initialised, LedgerError> {
    g.check().map_err(LedgerError::Genesis)?;
    let block = g.block(timestamp_ms);
    let hash = block.hash();
    let created = create_topics(log, g)?;
    let blocks = &g.topics.blocks;
    let start = log.start_offset(blocks, 0)?;
    if let Some(first) = read_record(log, blocks, 0, start)? {
        let same = first
            .record
            .value
            .and_then(|v| StoredBlock::parse(&v).ok())
            .is_some_and(|b| b.hash == hash);
        if same {
            return Ok(Initialised {
                genesis_hash: hash,
                created,
                already: true,
            });
        }
        return Err(LedgerError::Genesis(format!(
            "{blocks} already holds another ledger (its first block is not this genesis)"
        )));
    }
    for p in 0..g.transaction_partitions {
        if log.end_offset(&g.topics.transactions, p)? > 0 {
            return Err(LedgerError::Genesis(format!(
                "{} already holds records; a ledger starts on empty topics",
                g.topics.transactions
            )));
        }
    }
    let record = Record {
        key: Some(b"0".to_vec()),
        value: Some(block.to_json()),
        headers: vec![],
        timestamp_ms: if timestamp_ms > 0 {
            timestamp_ms
        } else {
            now_ms()
        },
    };
    SharedAppender::new(blocks, 0, false).append(log, &[record])?;
    Ok(Initialised {
        genesis_hash: hash,
        created,
        already: false,
    })
}

/// Creates the ledger's topics that do not exist yet (unlimited retention) and returns
/// their names; one that exists must have the partitions the genesis needs.
fn create_topics(log: &dyn Log, g: &Genesis) -> Result<Vec<String>, LedgerError> {
    let mut created = Vec::new();
    for (topic, partitions) in [
        (&g.topics.transactions, g.transaction_partitions),
        (&g.topics.blocks, 1),
        (&g.topics.rejected, 1),
    ] {
        let config = TopicConfig {
            partitions,
            retention_ms: None,
        };
        match log.create_topic(topic, &config) {
            Ok(()) => created.push(topic.clone()),
            Err(LogError::TopicExists(_)) => {
                let have = log.topic(topic)?.partitions;
                if have != partitions {
                    return Err(LedgerError::Genesis(format!(
                        "topic {topic} exists with {have} partitions, the genesis needs {partitions}"
                    )));
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

/// A transaction's record key: its sender's address in hex. The key picks the partition
/// (as Kafka's default partitioner places a keyed record), so that one sender's transactions
/// stay in order.
fn record_key(tx: &Transaction) -> Vec<u8> {
    let mut key = Vec::with_capacity(40);
    push_hex(&mut key, &tx.sender().0);
    key
}

/// Appends transactions to the transactions topic (keyed by sender); returns each one's
/// (partition, offset). Opens and closes an appender per partition; see [`Submitter`] to keep
/// them open.
pub fn submit(
    log: &dyn Log,
    g: &Genesis,
    txs: &[Transaction],
) -> Result<Vec<(u32, u64)>, LedgerError> {
    Submitter::new(g, false).submit(log, txs)
}

/// Submits transactions, keeping (with `hold`) one appender per partition open between calls:
/// right for one busy client, wrong on the embedded log when other processes submit too (its
/// appenders are exclusive).
pub struct Submitter {
    partitions: u32,
    appenders: Vec<SharedAppender>,
}

impl Submitter {
    pub fn new(g: &Genesis, hold: bool) -> Self {
        Submitter {
            partitions: g.transaction_partitions,
            appenders: (0..g.transaction_partitions)
                .map(|p| SharedAppender::new(&g.topics.transactions, p, hold))
                .collect(),
        }
    }

    /// Opens the held appenders of every partition now rather than at the first append.
    pub fn open(&mut self, log: &dyn Log) -> Result<(), LedgerError> {
        for a in &mut self.appenders {
            a.open(log)?;
        }
        Ok(())
    }

    /// Appends `txs`; returns each one's (partition, offset).
    pub fn submit(
        &mut self,
        log: &dyn Log,
        txs: &[Transaction],
    ) -> Result<Vec<(u32, u64)>, LedgerError> {
        // Per partition, the transactions' indices and their records (appended in place).
        let mut by_partition: BTreeMap<u32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
        let now = now_ms();
        for (i, tx) in txs.iter().enumerate() {
            let key = record_key(tx);
            let p = partition_for_key(&key, self.partitions);
            let (indices, records) = by_partition.entry(p).or_default();
            indices.push(i);
            records.push(Record {
                key: Some(key),
                value: Some(tx.to_json()),
                headers: vec![],
                timestamp_ms: now,
            });
        }
        let mut out = vec![(0, 0); txs.len()];
        for (p, (indices, records)) in by_partition {
            let appender = &mut self.appenders[p as usize];
            for (is, chunk) in indices.chunks(8192).zip(records.chunks(8192)) {
                let offsets = appender.append(log, chunk)?;
                for (i, o) in is.iter().zip(offsets) {
                    out[*i] = (p, o);
                }
            }
        }
        Ok(out)
    }
}

/// Appends raw record values to one partition of the transactions topic (for testing what
/// nodes do with anything a producer may write).
pub fn submit_raw(
    log: &dyn Log,
    g: &Genesis,
    partition: u32,
    values: &[Vec<u8>],
) -> Result<Vec<u64>, LedgerError> {
    let now = now_ms();
    let records: Vec<Record> = values
        .iter()
        .map(|v| Record {
            key: None,
            value: Some(v.clone()),
            headers: vec![],
            timestamp_ms: now,
        })
        .collect();
    Ok(SharedAppender::new(&g.topics.transactions, partition, false).append(log, &records)?)
}

/// A chain replayed to the end of the blocks topic.
#[derive(Debug)]
pub struct Replayed {
    pub chain: Chain,
    /// The first finding, where replay stopped.
    pub finding: Option<Finding>,
    /// What became of the snapshot, if a state directory was given.
    pub snapshot: Option<String>,
}

/// Replays a ledger to the current end of its blocks topic, from the snapshot in
/// `state_dir` when it matches. Stops at the first finding.
pub fn replay(
    log: &dyn Log,
    blocks_topic: &str,
    state_dir: Option<&Path>,
) -> Result<Replayed, LedgerError> {
    let mut chain = open_chain(log, blocks_topic, None)?;
    let mut note = None;
    if let Some(dir) = state_dir {
        match snapshot::load(&snapshot::snapshot_file(dir), &chain, log)? {
            Loaded::Resumed(c) => {
                note = Some(format!(
                    "resumed from the snapshot at height {}",
                    c.tip().height
                ));
                chain = *c;
            }
            Loaded::Missing => {}
            Loaded::Discarded(why) => note = Some(format!("snapshot discarded: {why}")),
        }
    }
    let finding = observe_to_end(log, blocks_topic, &mut chain)?;
    Ok(Replayed {
        chain,
        finding,
        snapshot: note,
    })
}

/// Observes the records of the blocks topic after those `chain` has seen, to the topic's
/// current end; stops at the first finding and returns it.
fn observe_to_end(
    log: &dyn Log,
    blocks_topic: &str,
    chain: &mut Chain,
) -> Result<Option<Finding>, LedgerError> {
    let verifier = Verifier::new();
    let mut finding = None;
    read_to_end(log, blocks_topic, 0, chain.next_offset(), |r| {
        let seen = chain.observe(r.offset, r.record.value.as_deref(), &verifier);
        if let Verdict::Finding(f) = seen.verdict {
            finding = Some(f);
            return false;
        }
        true
    })?;
    Ok(finding)
}

/// Brings a replayed chain up to the current end of its blocks topic, reading only the
/// records after those it has seen (a server answering many requests replays once). Returns
/// how many records it read, or `None`, changing nothing, when the log no longer holds what
/// `r` was replayed from: the topic ends before the records seen, or the record at the tip's
/// offset is no longer the tip (the topic was rewritten or made anew), or the replay had
/// stopped at a finding. The caller then replays anew, which is what the commands do.
pub fn catch_up(
    log: &dyn Log,
    blocks_topic: &str,
    r: &mut Replayed,
) -> Result<Option<u64>, LedgerError> {
    let seen = r.chain.next_offset();
    if r.finding.is_some() || log.end_offset(blocks_topic, 0)? < seen {
        return Ok(None);
    }
    let tip = r.chain.tip();
    let Some((_, tip_offset)) = r.chain.block_at(tip.height) else {
        return Ok(None);
    };
    let stored = read_record(log, blocks_topic, 0, tip_offset)?
        .and_then(|s| s.record.value)
        .and_then(|v| StoredBlock::parse(&v).ok());
    if stored.map(|b| b.hash) != Some(tip.hash) {
        return Ok(None);
    }
    r.finding = observe_to_end(log, blocks_topic, &mut r.chain)?;
    Ok(Some(r.chain.next_offset() - seen))
}

/// The checks of a transaction submitted to the ledger of `chain` that need no state: what
/// a sealer would reject it for whatever the balances and nonces (signed for another ledger,
/// a zero amount, a data payload too large, a public key or signature that does not
/// verify). A front end refuses such a transaction instead of appending it.
pub fn check_submission(chain: &Chain, tx: &Transaction) -> Result<(), RejectReason> {
    check_static(tx, chain.chain_id(), chain.genesis())?;
    Verifier::new()
        .check(&[tx])
        .pop()
        .unwrap_or(Err(RejectReason::BadSignature))
}

/// The nonce for `sender`'s next transfer: one more than its last sealed nonce, counting on
/// from there through its own pending transfers (still undecided in the transactions topic)
/// while their nonces follow on without a gap.
///
/// Only transfers whose signature verifies count: anyone can write a transfer in `sender`'s
/// name with a made-up nonce, and letting it move the count would block the wallet (its
/// next transfer would be rejected `wrong_nonce` for ever). A gap means a transfer that can
/// never be sealed (its predecessor is missing), so counting stops there too.
pub fn next_nonce(log: &dyn Log, chain: &Chain, sender: &Address) -> Result<u64, LedgerError> {
    let sealed = chain.state().nonce(sender);
    let mut pending: Vec<Transaction> = Vec::new();
    for s in &chain.tip().sources {
        read_to_end(
            log,
            &chain.genesis().topics.transactions,
            s.partition,
            s.to,
            |r| {
                if let Some(tx) = r.record.value.and_then(|v| Transaction::from_json(&v).ok()) {
                    if let TxBody::Transfer { nonce, .. } = tx.body() {
                        if tx.sender() == *sender
                            && tx.chain() == chain.chain_id()
                            && *nonce > sealed
                        {
                            pending.push(tx);
                        }
                    }
                }
                true
            },
        )?;
    }
    let refs: Vec<&Transaction> = pending.iter().collect();
    let verdicts = Verifier::new().check(&refs);
    let mut used: Vec<u64> = pending
        .iter()
        .zip(verdicts)
        .filter(|(_, v)| v.is_ok())
        .filter_map(|(tx, _)| match tx.body() {
            TxBody::Transfer { nonce, .. } => Some(*nonce),
            TxBody::Data { .. } => None,
        })
        .collect();
    used.sort_unstable();
    let mut next = sealed + 1;
    for n in used {
        if n == next {
            next += 1;
        } else if n > next {
            break;
        }
    }
    Ok(next)
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum TxStatus {
    Sealed {
        height: u64,
        block: Hash,
        block_offset: u64,
        index: usize,
        partition: u32,
        offset: u64,
        tx: Box<Transaction>,
    },
    /// Rejected by the sealer of the canonical block `record.block`.
    Rejected(Box<RejectionRecord>),
    /// In the transactions topic, not yet decided. `void` lists rejections by sealers whose
    /// blocks lost.
    Pending {
        partition: u32,
        offset: u64,
        void: Vec<RejectionRecord>,
    },
    Unknown,
}

/// Finds what became of transaction `id`: sealed in the canonical chain, rejected by a
/// canonical block, pending in the transactions topic beyond the tip's source ranges, or
/// unknown.
pub fn tx_status(log: &dyn Log, chain: &Chain, id: &TxId) -> Result<TxStatus, LedgerError> {
    if let Some(height) = chain.state().sealed_at(id) {
        return sealed_status(log, chain, id, height);
    }
    let g = chain.genesis();
    let mut void = Vec::new();
    let mut decided = None;
    read_to_end(log, &g.topics.rejected, 0, 0, |r| {
        let rec: Option<RejectionRecord> =
            r.record.value.and_then(|v| serde_json::from_slice(&v).ok());
        if let Some(rec) = rec.filter(|rec| rec.tx_id().as_ref() == Some(id)) {
            let canonical = rec
                .block_hash()
                .is_some_and(|h| chain.height_of(&h).is_some());
            if canonical {
                decided = Some(rec);
                return false;
            }
            void.push(rec);
        }
        true
    })?;
    if let Some(rec) = decided {
        return Ok(TxStatus::Rejected(Box::new(rec)));
    }
    for s in &chain.tip().sources {
        if let Some(offset) = find_pending(log, &g.topics.transactions, s, id)? {
            return Ok(TxStatus::Pending {
                partition: s.partition,
                offset,
                void,
            });
        }
    }
    Ok(TxStatus::Unknown)
}

/// The status of transaction `id`, sealed in the canonical block at `height`.
fn sealed_status(
    log: &dyn Log,
    chain: &Chain,
    id: &TxId,
    height: u64,
) -> Result<TxStatus, LedgerError> {
    let (hash, offset) = chain
        .block_at(height)
        .ok_or_else(|| LedgerError::Invalid(format!("no canonical block at {height}")))?;
    let block = read_block(log, &chain.genesis().topics.blocks, offset)?;
    let txs = block.body.map_err(LedgerError::Invalid)?;
    let (index, s) = txs
        .into_iter()
        .enumerate()
        .find(|(_, s)| s.tx.id() == id)
        .ok_or_else(|| LedgerError::Invalid("the sealing block does not hold it".into()))?;
    Ok(TxStatus::Sealed {
        height,
        block: hash,
        block_offset: offset,
        index,
        partition: s.partition,
        offset: s.offset,
        tx: Box::new(s.tx),
    })
}

/// The offset of transaction `id` in the partition of `range`, after what the range
/// consumed, if it is there.
fn find_pending(
    log: &dyn Log,
    topic: &str,
    range: &SourceRange,
    id: &TxId,
) -> Result<Option<u64>, LedgerError> {
    let mut found = None;
    read_to_end(log, topic, range.partition, range.to, |r| {
        let hit = r
            .record
            .value
            .as_deref()
            .and_then(|v| Transaction::from_json(v).ok())
            .is_some_and(|tx| tx.id() == id);
        if hit {
            found = Some(r.offset);
        }
        !hit
    })?;
    Ok(found)
}

/// Reads and parses the block at `offset` of the blocks topic.
pub fn read_block(
    log: &dyn Log,
    blocks_topic: &str,
    offset: u64,
) -> Result<StoredBlock, LedgerError> {
    let rec = read_record(log, blocks_topic, 0, offset)?
        .and_then(|r| r.record.value)
        .ok_or_else(|| LedgerError::Invalid(format!("no record at offset {offset}")))?;
    StoredBlock::parse(&rec).map_err(LedgerError::Invalid)
}

/// The canonical blocks from `from_height`, at most `count`.
pub fn canonical_blocks(
    log: &dyn Log,
    chain: &Chain,
    from_height: u64,
    count: usize,
) -> Result<Vec<(u64, StoredBlock)>, LedgerError> {
    let topic = &chain.genesis().topics.blocks;
    let mut out = Vec::new();
    let mut h = from_height;
    while out.len() < count {
        let Some((_, offset)) = chain.block_at(h) else {
            break;
        };
        out.push((offset, read_block(log, topic, offset)?));
        h += 1;
    }
    Ok(out)
}

/// Waits until the chain (replayed from `log`) has sealed every id in `ids`, or `timeout`.
pub fn wait_sealed(
    log: &dyn Log,
    blocks_topic: &str,
    ids: &[TxId],
    timeout: Duration,
) -> Result<Chain, LedgerError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let r = replay(log, blocks_topic, None)?;
        if let Some(f) = r.finding {
            return Err(LedgerError::Tampered(Box::new(f)));
        }
        if ids.iter().all(|id| r.chain.state().sealed_at(id).is_some()) {
            return Ok(r.chain);
        }
        if std::time::Instant::now() > deadline {
            return Err(LedgerError::Timeout(format!(
                "{} transactions not sealed",
                ids.iter()
                    .filter(|id| r.chain.state().sealed_at(id).is_none())
                    .count()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fingerprint of a chain's state (for comparing replays): SHA-256 over its sorted
/// balances, nonces and sealed ids, and its tip.
pub fn state_digest(chain: &Chain) -> Hash {
    let s = chain.state();
    let mut items: Vec<String> = s
        .balances
        .iter()
        .map(|(a, v)| format!("b{a}={v}"))
        .chain(s.nonces.iter().map(|(a, v)| format!("n{a}={v}")))
        .chain(
            s.sealed
                .iter()
                .map(|(id, h)| format!("s{}={h}", kchain_core::to_hex(id))),
        )
        .collect();
    items.sort_unstable();
    items.push(format!("tip={}", kchain_core::to_hex(&chain.tip().hash)));
    sha256(items.join("\n").as_bytes())
}

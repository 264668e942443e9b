//! Shared helpers of the behaviour tests. Scenarios take a `&dyn Log`, so that the same
//! tests can run on the Kafka backend; the wrappers here make embedded logs.

#![allow(dead_code)]

pub mod scenarios;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use kchain_core::WriterKey;
use kchain_ledger::{
    init, Address, Block, BlockHeader, Event, Genesis, Node, NodeOptions, SealOptions, SealedTx,
    SealerInfo, SourceRange, Transaction, BLOCK_VERSION,
};
use kchain_log::{EmbeddedLog, EmbeddedOptions, FsyncPolicy, Log, Record};
use tempfile::TempDir;

/// A fresh embedded log in a temporary directory.
pub fn embedded() -> (TempDir, EmbeddedLog) {
    let dir = kchain_testkit::tempdir();
    let log = EmbeddedLog::create(
        dir.path().join("data"),
        EmbeddedOptions {
            fsync: FsyncPolicy::Never,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap();
    (dir, log)
}

pub fn key(name: &str, i: u64) -> WriterKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[8..8 + name.len().min(24)].copy_from_slice(&name.as_bytes()[..name.len().min(24)]);
    WriterKey::from_seed(name, seed)
}

/// A ledger's cast: its genesis, its sealers' keys and funded wallets.
pub struct Cast {
    pub genesis: Genesis,
    pub sealers: Vec<WriterKey>,
    pub wallets: Vec<WriterKey>,
}

impl Cast {
    /// `sealers` sealers, `wallets` wallets with `balance` each, `partitions` partitions.
    pub fn new(chain: &str, sealers: usize, wallets: usize, balance: u64, partitions: u32) -> Cast {
        let sealers: Vec<WriterKey> = (0..sealers as u64).map(|i| key("sealer", i)).collect();
        let wallets: Vec<WriterKey> = (0..wallets as u64).map(|i| key("wallet", i)).collect();
        let balances: BTreeMap<Address, u64> =
            wallets.iter().map(|w| (Address::of(w), balance)).collect();
        let mut genesis = Genesis::new(
            chain,
            sealers
                .iter()
                .enumerate()
                .map(|(i, k)| SealerInfo {
                    name: format!("sealer{i}"),
                    key: k.public(),
                })
                .collect(),
            balances,
        );
        genesis.transaction_partitions = partitions;
        Cast {
            genesis,
            sealers,
            wallets,
        }
    }

    pub fn init(&self, log: &dyn Log) {
        init(log, &self.genesis, 1_700_000_000_000).unwrap();
    }

    pub fn sealer_key(&self, i: usize) -> WriterKey {
        key("sealer", i as u64)
    }

    pub fn address(&self, wallet: usize) -> Address {
        Address::of(&self.wallets[wallet])
    }

    pub fn transfer(&self, from: usize, to: Address, amount: u64, nonce: u64) -> Transaction {
        Transaction::transfer(
            &self.wallets[from],
            self.genesis.chain_id(),
            to,
            amount,
            nonce,
        )
    }

    pub fn node_options(&self) -> NodeOptions {
        NodeOptions {
            snapshot_every: 0,
            ..NodeOptions::new(&self.genesis.topics.blocks)
        }
    }
}

pub fn seal_options(block_txs: usize) -> SealOptions {
    SealOptions {
        block_txs,
        block_ms: 20,
        ..SealOptions::default()
    }
}

/// Runs a sealer node until it is caught up; returns its events.
pub fn seal_until_idle(log: &dyn Log, cast: &Cast, sealer: usize, block_txs: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut node = Node::open(
        log,
        cast.node_options(),
        Some((cast.sealer_key(sealer), seal_options(block_txs))),
        &mut events,
    )
    .unwrap();
    node.run(true, &AtomicBool::new(false), &mut |e| {
        events.push(e.clone())
    })
    .unwrap();
    events
}

/// Reads every record value of a partition.
pub fn values(log: &dyn Log, topic: &str, partition: u32) -> Vec<Vec<u8>> {
    kchain_topic::tamper::read_all(log, topic, partition)
        .unwrap()
        .into_iter()
        .map(|r| r.value.unwrap_or_default())
        .collect()
}

/// Appends one raw record to the blocks topic, as any producer with write access could.
pub fn append_block_record(log: &dyn Log, cast: &Cast, value: Vec<u8>) -> u64 {
    let mut a = log.appender(&cast.genesis.topics.blocks, 0).unwrap();
    let o = a
        .append(&[Record {
            key: None,
            value: Some(value),
            headers: vec![],
            timestamp_ms: 1,
        }])
        .unwrap();
    o[0]
}

/// A block built by hand on `prev` (a misbehaving or racing sealer), signed by `sealer`.
pub fn hand_block(
    cast: &Cast,
    sealer: usize,
    height: u64,
    prev: [u8; 32],
    sources: Vec<SourceRange>,
    txs: Vec<SealedTx>,
    edit: impl FnOnce(&mut BlockHeader),
) -> Block {
    let mut header = BlockHeader {
        version: BLOCK_VERSION,
        chain: cast.genesis.chain_id(),
        height,
        prev,
        timestamp_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
        items_root: [0; 32],
        tx_count: 0,
        reward: cast.genesis.reward,
        sealer: cast.sealers[sealer].id(),
        sources,
        difficulty: cast.genesis.difficulty,
        nonce: 0,
    };
    edit(&mut header);
    Block::seal(header, txs, &cast.sealer_key(sealer))
}

/// Signs a header as it is (no proof of work solved, no fields filled in).
pub fn sign_as_is(header: BlockHeader, txs: Vec<SealedTx>, key: &WriterKey) -> Block {
    let signature = Some(key.sign_tagged(kchain_ledger::BLOCK_SIG_TAG, &header.hash()));
    Block {
        header,
        signature,
        txs,
        genesis: None,
    }
}

/// The source ranges of a block that consumes nothing after `tip_sources`.
pub fn empty_sources(tip_sources: &[SourceRange]) -> Vec<SourceRange> {
    tip_sources
        .iter()
        .map(|s| SourceRange {
            partition: s.partition,
            from: s.to,
            to: s.to,
        })
        .collect()
}
